//! Caddy JSON access log lines, with `duration` in seconds, nanoseconds or milliseconds.

use super::text::{decimal, json_string, put};
use super::{client_host, end_ns};
use crate::synth::{HttpVersion, Request};

pub(super) fn caddy(out: &mut Vec<u8>, r: &Request, duration_scale: u32) {
    let host = client_host(r);
    put(
        out,
        format_args!(
            "{{\"level\":\"{}\",\"ts\":",
            if r.status >= 500 { "error" } else { "info" }
        ),
    );
    decimal(out, end_ns(r), 9);
    put(
        out,
        format_args!(
            ",\"logger\":\"http.log.access.log0\",\"msg\":\"handled request\",\"request\":{{\"remote_ip\":\"{host}\",\"remote_port\":\"{}\",\"client_ip\":\"{host}\",\"proto\":\"{}\",\"method\":\"{}\",\"host\":",
            r.client_port,
            r.version.as_str(),
            r.method
        ),
    );
    json_string(out, &r.host, false);
    out.extend_from_slice(b",\"uri\":");
    json_string(out, &r.target, false);
    out.extend_from_slice(b",\"headers\":{");
    let mut first = true;
    for (name, value) in [
        ("User-Agent", r.user_agent.as_deref()),
        ("Referer", r.referer),
    ] {
        if let Some(value) = value {
            if !first {
                out.push(b',');
            }
            first = false;
            put(out, format_args!("\"{name}\":["));
            json_string(out, value, false);
            out.push(b']');
        }
    }
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(b"\"Accept-Encoding\":[\"gzip, deflate, br\"]}");
    if r.tls {
        put(
            out,
            format_args!(
                ",\"tls\":{{\"resumed\":false,\"version\":772,\"cipher_suite\":4865,\"proto\":\"{}\",\"server_name\":",
                match r.version {
                    HttpVersion::Http11 => "http/1.1",
                    HttpVersion::Http2 => "h2",
                    HttpVersion::Http3 => "h3",
                }
            ),
        );
        json_string(out, &r.host, false);
        out.push(b'}');
    }
    put(
        out,
        format_args!(
            "}},\"bytes_read\":{},\"user_id\":\"\",\"duration\":",
            r.bytes_received
        ),
    );
    decimal(out, r.duration_ns, duration_scale);
    put(
        out,
        format_args!(
            ",\"size\":{},\"status\":{},\"resp_headers\":{{\"Server\":[\"Caddy\"],\"Content-Type\":[\"application/json\"]}}}}",
            r.bytes_sent, r.status
        ),
    );
}

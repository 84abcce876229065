//! nginx lines of any `log_format`: `combined`, `combined` with `$request_time`, custom
//! formats and ingress-nginx's `upstreaminfo`.

use super::text::{clf_date, iso_date, put};
use super::{client_host, end_ns, end_secs, ms};
use crate::format::LogFormat;
use crate::synth::names::ingress_upstream;
use crate::synth::{Attempt, NANOS_PER_MILLI, Request};

/// Header bytes added to the body size for nginx's `$bytes_sent`.
pub(in crate::synth) const HEADER_BYTES: u64 = 180;

/// nginx's `$uri`: the path without the query, percent-decoded.
pub(in crate::synth) fn decoded_path(target: &str) -> Vec<u8> {
    let path = target.split('?').next().unwrap_or(target).as_bytes();
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if path[i] == b'%' {
            if let (Some(h), Some(l)) = (
                path.get(i + 1).and_then(|&b| hex(b)),
                path.get(i + 2).and_then(|&b| hex(b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

/// An nginx upstream list: `, ` within a group, ` : ` after an internal redirect.
fn upstream_list(
    out: &mut Vec<u8>,
    attempts: &[Attempt],
    mut element: impl FnMut(&mut Vec<u8>, &Attempt),
) {
    for (i, attempt) in attempts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(if attempt.after_redirect {
                b" : "
            } else {
                b", "
            });
        }
        element(out, attempt);
    }
}

fn seconds_ms(out: &mut Vec<u8>, ns: u64) {
    let ms = ms(ns);
    put(out, format_args!("{}.{:03}", ms / 1000, ms % 1000));
}

pub(super) fn nginx(out: &mut Vec<u8>, format: &LogFormat, r: &Request) {
    let end = end_ns(r);
    let end_secs = end_secs(r);
    format.render(out, |name, value| match name {
        "remote_addr" => value.extend_from_slice(client_host(r).as_bytes()),
        "remote_port" => put(value, format_args!("{}", r.client_port)),
        "remote_user" => value.extend_from_slice(r.user.as_deref().unwrap_or("").as_bytes()),
        "time_local" => {
            clf_date(value, end_secs);
            value.extend_from_slice(b" +0000");
        }
        "time_iso8601" => {
            iso_date(value, end_secs);
            value.extend_from_slice(b"+00:00");
        }
        "msec" => put(
            value,
            format_args!(
                "{}.{:03}",
                end / 1_000_000_000,
                end / NANOS_PER_MILLI % 1000
            ),
        ),
        "request" => put(
            value,
            format_args!("{} {} {}", r.method, r.target, r.version.as_str()),
        ),
        "request_method" => value.extend_from_slice(r.method.as_bytes()),
        "request_uri" => value.extend_from_slice(r.target.as_bytes()),
        "uri" | "document_uri" => value.extend_from_slice(&decoded_path(&r.target)),
        "args" | "query_string" => {
            value.extend_from_slice(r.target.split_once('?').map_or("", |(_, q)| q).as_bytes())
        }
        "server_protocol" => value.extend_from_slice(r.version.as_str().as_bytes()),
        "scheme" => value.extend_from_slice(if r.tls { b"https" } else { b"http" }),
        "status" => put(value, format_args!("{}", r.status)),
        "body_bytes_sent" => put(value, format_args!("{}", r.bytes_sent)),
        "bytes_sent" => put(value, format_args!("{}", r.bytes_sent + HEADER_BYTES)),
        "request_length" => put(value, format_args!("{}", 150 + r.target.len())),
        "request_time" => seconds_ms(value, r.duration_ns),
        "upstream_addr" => upstream_list(value, &r.attempts, |out, a| {
            out.extend_from_slice(a.addr.as_bytes())
        }),
        "upstream_response_length" => upstream_list(value, &r.attempts, |out, a| {
            put(out, format_args!("{}", a.bytes))
        }),
        "upstream_response_time" => {
            upstream_list(value, &r.attempts, |out, a| seconds_ms(out, a.duration_ns))
        }
        "upstream_connect_time" | "upstream_header_time" => {
            upstream_list(value, &r.attempts, |out, _| out.extend_from_slice(b"0.000"));
        }
        "upstream_status" => upstream_list(value, &r.attempts, |out, a| match a.status {
            Some(status) => put(out, format_args!("{status}")),
            None => out.push(b'-'),
        }),
        "host" | "http_host" | "server_name" => value.extend_from_slice(r.host.as_bytes()),
        "http_referer" => value.extend_from_slice(r.referer.unwrap_or("").as_bytes()),
        "http_user_agent" => {
            value.extend_from_slice(r.user_agent.as_deref().unwrap_or("").as_bytes())
        }
        "http_x_forwarded_for" => value.extend_from_slice(r.client.as_bytes()),
        "proxy_upstream_name" => value.extend_from_slice(ingress_upstream(r).as_bytes()),
        "req_id" | "request_id" => put(value, format_args!("{:032x}", r.request_id)),
        "connection" => put(value, format_args!("{}", r.request_count)),
        "pid" => value.extend_from_slice(b"1"),
        _ => {}
    });
}

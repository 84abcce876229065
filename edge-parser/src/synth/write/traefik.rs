//! Traefik `common` and `json` access log lines.

use super::text::{clf_date, iso_date, json_string, put};
use super::{client_host, end_secs, ms};
use crate::synth::Request;

/// A Traefik quoted field: `"` escaped as `\"`, absent as `"-"`.
fn traefik_quoted(out: &mut Vec<u8>, value: Option<&str>) {
    out.push(b'"');
    match value.filter(|v| !v.is_empty()) {
        None => out.push(b'-'),
        Some(value) => {
            for b in value.bytes() {
                if b == b'"' {
                    out.push(b'\\');
                }
                out.push(b);
            }
        }
    }
    out.push(b'"');
}

pub(super) fn traefik_common(out: &mut Vec<u8>, r: &Request) {
    put(
        out,
        format_args!("{} - {} [", r.client, r.user.as_deref().unwrap_or("-")),
    );
    clf_date(out, r.start.unix_secs());
    put(
        out,
        format_args!(
            " +0000] \"{} {} {}\" {} {} ",
            r.method,
            r.target,
            r.version.as_str(),
            r.status,
            r.bytes_sent
        ),
    );
    traefik_quoted(out, r.referer);
    out.push(b' ');
    traefik_quoted(out, r.user_agent.as_deref());
    put(out, format_args!(" {} ", r.request_count));
    traefik_quoted(out, r.router.as_deref());
    out.push(b' ');
    let url = r.attempts.last().map(|a| format!("http://{}", a.addr));
    traefik_quoted(out, url.as_deref());
    put(out, format_args!(" {}ms", ms(r.duration_ns)));
}

pub(super) fn traefik_json(out: &mut Vec<u8>, r: &Request) {
    let host = client_host(r);
    let origin_ns: u64 = r.attempts.iter().map(|a| a.duration_ns).sum();
    let origin_status = r.attempts.last().and_then(|a| a.status).unwrap_or(0);
    let origin_bytes = r.attempts.last().map_or(0, |a| a.bytes);
    let client_addr = if host.contains(':') {
        format!("[{host}]:{}", r.client_port)
    } else {
        format!("{host}:{}", r.client_port)
    };
    out.extend_from_slice(b"{\"ClientAddr\":");
    json_string(out, &client_addr, true);
    out.extend_from_slice(b",\"ClientHost\":");
    json_string(out, &r.client, true);
    put(
        out,
        format_args!(
            ",\"ClientPort\":\"{}\",\"ClientUsername\":\"{}\",\"DownstreamContentSize\":{},\"DownstreamStatus\":{},\"Duration\":{},\"OriginContentSize\":{origin_bytes},\"OriginDuration\":{origin_ns},\"OriginStatus\":{origin_status},\"Overhead\":{},\"RequestAddr\":",
            r.client_port,
            r.user.as_deref().unwrap_or("-"),
            r.bytes_sent,
            r.status,
            r.duration_ns,
            r.duration_ns.saturating_sub(origin_ns)
        ),
    );
    json_string(out, &r.host, true);
    put(
        out,
        format_args!(
            ",\"RequestContentSize\":{},\"RequestCount\":{},\"RequestHost\":",
            r.bytes_received, r.request_count
        ),
    );
    json_string(out, &r.host, true);
    put(
        out,
        format_args!(",\"RequestMethod\":\"{}\",\"RequestPath\":", r.method),
    );
    json_string(out, &r.target, true);
    put(
        out,
        format_args!(
            ",\"RequestPort\":\"-\",\"RequestProtocol\":\"{}\",\"RequestScheme\":\"{}\",\"RetryAttempts\":{}",
            r.version.as_str(),
            if r.tls { "https" } else { "http" },
            r.attempts.len().saturating_sub(1)
        ),
    );
    if let Some(router) = &r.router {
        out.extend_from_slice(b",\"RouterName\":");
        json_string(out, router, true);
    }
    if let (Some(service), Some(attempt)) = (&r.service, r.attempts.last()) {
        put(
            out,
            format_args!(",\"ServiceAddr\":\"{}\",\"ServiceName\":", attempt.addr),
        );
        json_string(out, service, true);
        if r.odd {
            put(
                out,
                format_args!(
                    ",\"ServiceURL\":{{\"Scheme\":\"http\",\"Opaque\":\"\",\"User\":null,\"Host\":\"{}\",\"Path\":\"\",\"RawPath\":\"\",\"ForceQuery\":false,\"RawQuery\":\"\",\"Fragment\":\"\",\"RawFragment\":\"\"}}",
                    attempt.addr
                ),
            );
        } else {
            put(
                out,
                format_args!(",\"ServiceURL\":\"http://{}\"", attempt.addr),
            );
        }
    }
    let start = r.start.unix_secs();
    for key in ["StartLocal", "StartUTC"] {
        put(out, format_args!(",\"{key}\":\""));
        iso_date(out, start);
        if r.start.subsec_nanos() != 0 {
            let frac = format!("{:09}", r.start.subsec_nanos());
            put(out, format_args!(".{}", frac.trim_end_matches('0')));
        }
        out.extend_from_slice(b"Z\"");
    }
    if r.tls {
        out.extend_from_slice(b",\"TLSCipher\":\"TLS_AES_128_GCM_SHA256\",\"TLSVersion\":\"1.3\"");
    }
    if r.odd {
        out.extend_from_slice(b",\"downstream_Content-Type\":\"text/plain; charset=utf-8\"");
    }
    put(
        out,
        format_args!(
            ",\"entryPointName\":\"{}\",\"level\":\"info\",\"msg\":\"\",\"time\":\"",
            if r.tls { "websecure" } else { "web" }
        ),
    );
    iso_date(out, end_secs(r));
    out.extend_from_slice(b"Z\"}");
}

//! HAProxy `option httplog` lines, raw or behind a syslog header, and TCP-mode log lines.

use super::text::{clf_date, put, syslog_date};
use super::{answered, client_host, ms};
use crate::synth::Request;
use crate::synth::names::haproxy_backend;

/// `Mar  9 12:00:00 lb1 <tag>: `.
pub(in crate::synth) fn syslog_prefix(out: &mut Vec<u8>, secs: i64, tag: &str) {
    syslog_date(out, secs);
    put(out, format_args!(" lb1 {tag}: "));
}

/// HAProxy's request-line encoding: `"`, `#`, `{`, `|`, `}`, controls and non-ASCII as `#XX`.
fn haproxy_encoded(out: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        if matches!(b, b'"' | b'#' | b'{' | b'|' | b'}') || !(0x20..0x7f).contains(&b) {
            put(out, format_args!("#{b:02X}"));
        } else {
            out.push(b);
        }
    }
}

pub(super) fn haproxy(out: &mut Vec<u8>, r: &Request) {
    let host = client_host(r);
    let ta = ms(r.duration_ns);
    let tr_request = ta.min(r.request_count % 3);
    let (server, tc, tr) = match r.attempts.last() {
        None => ("<NOSRV>".to_owned(), -1, -1),
        Some(last) => (
            format!("srv{}", last.server + 1),
            i64::from(r.request_count % 5 == 0),
            answered(r).map_or(-1, |a| i64::try_from(ms(a.duration_ns)).unwrap_or(i64::MAX)),
        ),
    };
    let (status, termination) = match r.status {
        499 => (-1, "CH--"),
        503 if r.attempts.is_empty() => (503, "SC--"),
        504 => (504, "sH--"),
        502 => (502, "SH--"),
        other => (other, "----"),
    };
    let ac = 200 + r.request_count % 300;
    put(out, format_args!("{host}:{} [", r.client_port));
    clf_date(out, r.start.unix_secs());
    put(
        out,
        format_args!(
            ".{:03}] {} {}/{server} {tr_request}/0/{tc}/{tr}/{ta} {status} {} - - {termination} {ac}/{}/{}/{}/0 0/0 ",
            r.start.subsec_nanos() / 1_000_000,
            if r.tls { "fe_https~" } else { "fe_http" },
            haproxy_backend(r),
            r.bytes_sent,
            ac - 5,
            3 + r.request_count % 20,
            1 + r.request_count % 10,
        ),
    );
    if r.odd {
        put(out, format_args!("{{{}}} {{}} ", r.host));
    }
    put(out, format_args!("\"{} ", r.method));
    haproxy_encoded(out, &r.target);
    put(out, format_args!(" {}\"", r.version.as_str()));
}

pub(in crate::synth) fn tcp_log(out: &mut Vec<u8>, r: &Request) {
    put(out, format_args!("{}:{} [", client_host(r), r.client_port));
    clf_date(out, r.start.unix_secs());
    put(
        out,
        format_args!(
            ".{:03}] fe_db be_db/db1 0/0/{} {} -- 1/1/0/0/0 0/0",
            r.start.subsec_nanos() / 1_000_000,
            ms(r.duration_ns),
            r.bytes_sent
        ),
    );
}

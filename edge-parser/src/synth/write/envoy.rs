//! Envoy default text format lines.

use super::text::{iso_date, put};
use super::{answered, ms};
use crate::synth::Request;

pub(super) fn envoy(out: &mut Vec<u8>, r: &Request) {
    out.push(b'[');
    iso_date(out, r.start.unix_secs());
    let code = if r.status == 499 { 0 } else { r.status };
    let flags = match r.status {
        499 => "DC",
        503 => "UH",
        504 => "UT",
        502 if r.attempts.len() > 1 => "URX",
        404 if r.router.is_none() => "NR",
        _ => "-",
    };
    let upstream_ms = answered(r).map_or_else(|| "-".to_owned(), |a| ms(a.duration_ns).to_string());
    let id = r.request_id;
    put(
        out,
        format_args!(
            ".{:03}Z] \"{} {} {}\" {code} {flags} {} {} {} {upstream_ms} \"{}\" \"{}\" \"{:08x}-{:04x}-{:04x}-{:04x}-{:012x}\" \"{}\" \"{}\"",
            r.start.subsec_nanos() / 1_000_000,
            r.method,
            r.target,
            r.version.as_envoy_str(),
            r.bytes_received,
            r.bytes_sent,
            ms(r.duration_ns),
            r.client,
            r.user_agent.as_deref().unwrap_or("-"),
            id >> 96,
            (id >> 80) & 0xffff,
            (id >> 64) & 0xffff,
            (id >> 48) & 0xffff,
            id & 0xffff_ffff_ffff,
            r.host,
            r.attempts.last().map_or("-", |a| a.addr.as_str()),
        ),
    );
}

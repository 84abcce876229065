//! Writing a [`Request`] as a line of each format: [`write_request`] dispatches to one writer
//! per format family.

mod caddy;
mod envoy;
mod haproxy;
mod nginx;
mod text;
mod traefik;

pub(super) use haproxy::{syslog_prefix, tcp_log};
pub(super) use nginx::{HEADER_BYTES, decoded_path};
pub(super) use text::{decimal, put};

use self::caddy::caddy;
use self::envoy::envoy;
use self::haproxy::haproxy;
use self::nginx::nginx;
use self::traefik::{traefik_common, traefik_json};
use super::NANOS_PER_MILLI;
use super::request::{Attempt, Request};
use crate::format::Format;

/// Writes `request` as a line of `format` (without the `\n`).
#[must_use]
pub fn write_request(format: &Format, request: &Request) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    match format {
        Format::TraefikCommon => traefik_common(&mut out, request),
        Format::TraefikJson => traefik_json(&mut out, request),
        Format::Envoy => envoy(&mut out, request),
        Format::Haproxy => haproxy(&mut out, request),
        Format::HaproxySyslog => {
            syslog_prefix(&mut out, end_secs(request), "haproxy[1712]");
            haproxy(&mut out, request);
        }
        Format::CaddyJson => caddy(&mut out, request, 9),
        Format::CaddyJsonNanos => caddy(&mut out, request, 0),
        Format::CaddyJsonMillis => caddy(&mut out, request, 6),
        other => {
            if let Some(log_format) = other.log_format() {
                nginx(&mut out, log_format, request);
            }
        }
    }
    out
}

/// When the request ended, in nanoseconds since the Unix epoch.
pub(super) fn end_ns(request: &Request) -> u64 {
    u64::try_from(request.start.unix_nanos()).unwrap_or(0) + request.duration_ns
}

/// When the request ended, in whole seconds since the Unix epoch.
pub(super) fn end_secs(request: &Request) -> i64 {
    i64::try_from(end_ns(request) / 1_000_000_000).unwrap_or(0)
}

/// The client's own address: the first of an `X-Forwarded-For` list.
fn client_host(request: &Request) -> &str {
    request.client.split(", ").next().unwrap_or(&request.client)
}

/// The last attempt, if the server answered it.
pub(super) fn answered(request: &Request) -> Option<&Attempt> {
    request.attempts.last().filter(|a| a.status.is_some())
}

/// Whole milliseconds of `ns`, truncated as the formats that log milliseconds do.
pub(super) fn ms(ns: u64) -> u64 {
    ns / NANOS_PER_MILLI
}

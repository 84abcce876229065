//! Deterministic synthetic access logs, with the ground truth of every line.
//!
//! A [`Generator`] draws requests from a seeded model (weighted routes with id-like path
//! segments, a status mix, per-route latency distributions, Poisson arrivals, upstream retries
//! and internal redirects, IPv4/IPv6 clients, user agents with quotes and backslashes) and
//! writes each one as a line of the chosen [`Format`]. Each [`SynthLine`] carries its
//! [`Truth`]: the [`Request`] with every generated field, or the kind of malformed or filtered
//! line it is. [`Request::expected`] is the [`Record`] a correct parser returns for that line in
//! a given format (the format's resolution and vocabulary applied), so tests can assert exact
//! counts and percentiles. The same seed and configuration always give the same bytes.
//!
//! Per-format conventions of the model: lines are written in arrival order, stamped with the
//! request start (Traefik, Envoy, HAProxy) or end (nginx, ingress-nginx, Caddy), all in UTC. A
//! request the client abandoned (status 499) is logged as `0` by Envoy and `-1` by HAProxy.
//! Names derived from a router `users-api@kubernetescrd`: service `users-api-svc@kubernetescrd`,
//! host `users-api.example.com`, ingress-nginx upstream `default-users-api-80`, HAProxy backend
//! `be_users_api`. A request no router matched (a scanner probe) has no router: Traefik's `-`,
//! ingress-nginx's `upstream-default-backend`, HAProxy's `be_default`.
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::{Format, Parsed};
//! use vantage_edge::synth::{Generator, SynthConfig, Truth};
//!
//! let config = SynthConfig::new().seed(7).malformed_rate(0.01);
//! for line in Generator::new(Format::TraefikCommon, config).take(1000) {
//!     let parsed = Format::TraefikCommon.parse(&line.text);
//!     match &line.truth {
//!         Truth::Request(request) => {
//!             let expected = request.expected(&Format::TraefikCommon);
//!             assert_eq!(parsed, Ok(Parsed::Record(expected)));
//!         }
//!         Truth::Malformed(_) => assert!(parsed.is_err()),
//!         Truth::Filtered => assert!(matches!(parsed, Ok(Parsed::Filtered(_)))),
//!     }
//! }
//! ```
//!
//! [`Record`]: crate::format::Record

use crate::format::Format;

mod generator;
mod model;
mod names;
mod request;
mod truth;
mod write;

#[cfg(test)]
mod tests;

pub use generator::Generator;
pub use model::{Latency, Route, StatusMix, SynthConfig};
pub use request::{Attempt, HttpVersion, MalformedKind, Request, SynthLine, Truth};
pub use write::write_request;

/// Nanoseconds in a millisecond.
const NANOS_PER_MILLI: u64 = 1_000_000;

/// A whole generated log: newline-terminated lines and the truth of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthLog {
    /// The log, every line ending in `\n`.
    pub text: Vec<u8>,
    /// The truth of each line, in order.
    pub lines: Vec<Truth>,
}

/// Generates `lines` lines of `format` into one buffer.
#[must_use]
pub fn generate(format: &Format, config: &SynthConfig, lines: usize) -> SynthLog {
    let mut log = SynthLog {
        text: Vec::new(),
        lines: Vec::with_capacity(lines),
    };
    for line in Generator::new(format.clone(), config.clone()).take(lines) {
        log.text.extend_from_slice(&line.text);
        log.text.push(b'\n');
        log.lines.push(line.truth);
    }
    log
}

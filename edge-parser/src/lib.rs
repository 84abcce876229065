//! Edge-side traffic measurement for Vantage: parse the access logs of the ingress in front of
//! the services into request rate, status mix and latency histograms.
//!
//! # Modules
//!
//! - [`format`](mod@format): one parser per proxy log format, all producing the same borrowed
//!   [`Record`](format::Record); format detection.
//! - [`read`]: the one bounded line reader and splitter, used by `report` and `serve` alike.
//! - [`route`]: route templates and normalisation, so that labels are `/users/{id}`, never raw
//!   paths.
//! - [`aggregate`]: the model: an [`Aggregate`](aggregate::Aggregate) of groups keyed by
//!   [`Dimension`](aggregate::Dimension)s, made by an [`Aggregator`](aggregate::Aggregator),
//!   bounded by a group cap, mergeable across threads.
//! - [`histogram`]: sparse HdrHistogram-layout latency histograms (≤ 0.1 % error).
//! - [`export`]: the views of the model: report table and JSON, Prometheus exposition.
//! - [`report`]: `edge-parser report`: read logs once into an aggregate, on several threads.
//! - [`tail`]: follow files like `tail -F`, across rotations, with exactly-once checkpoints.
//! - [`slowest`]: the slowest requests of the last five minutes, a few per minute.
//! - [`watch`]: the watch tower: per-router baselines, drops, spikes and error bursts.
//! - [`state`]: what `serve` persists (checkpoint and snapshot), versioned and validated.
//! - [`serve`] (feature `serve`): `edge-parser serve`: follow logs live, serve `/metrics`,
//!   health, summaries and a live stream over HTTP.
//! - [`reconcile`]: the services' side of the same routes: their `/metrics` read per
//!   `http_route` (requests, duration histogram, route templates).
//! - [`synth`]: a deterministic generator of realistic synthetic log lines with their ground
//!   truth, for tests, benches and demos.
//!
//! # Feature flags
//!
//! - `serve` (default): the [`serve`] module and its HTTP side (tokio, hyper).
//! - `cli` (default): the `edge-parser` binary (clap, anyhow, indicatif, tracing-subscriber);
//!   implies `serve`.
//!
//! With `default-features = false` the crate is the parsers, the reader, the aggregate and its
//! exports, the tailer and the watch tower, without an async runtime or an HTTP stack.
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::{Format, Parsed, detect};
//! use vantage_edge::read::lines;
//!
//! let log = br#"{"DownstreamStatus":200,"Duration":8764859,"RequestMethod":"GET","RequestPath":"/users/42","RouterName":"users@docker"}
//! {"DownstreamStatus":502,"Duration":3100000,"RequestMethod":"POST","RequestPath":"/orders","RouterName":"orders@docker"}
//! "#;
//! let detection = detect(log)?;
//! assert_eq!(detection.format, Format::TraefikJson);
//! for line in lines(log) {
//!     if let Ok(Parsed::Record(record)) = detection.format.parse(line) {
//!         assert!(record.duration_ns.is_some());
//!     }
//! }
//! # Ok::<(), vantage_edge::format::DetectError>(())
//! ```
//!
//! # Formats
//!
//! | name | proxy configuration | latency (unit as logged) | upstream latency | router / service / host |
//! |---|---|---|---|---|
//! | `traefik-common` | Traefik `accessLog.format: common` (default) | `<N>ms` (ms, truncated) | — | router / — / — |
//! | `traefik-json` | Traefik `accessLog.format: json` | `Duration` (ns) | `OriginDuration` (ns) | `RouterName` / `ServiceName` / `RequestHost` |
//! | `nginx-combined` | nginx `combined`, Traefik `genericCLF` | — | — | — |
//! | `nginx-combined-rt` | `combined` + ` $request_time` | `$request_time` (s, ms resolution) | — | — |
//! | `nginx-custom` | any `log_format`, see [`format::LogFormat`] | `$request_time` | `$upstream_response_time` (sum) | `$proxy_upstream_name` / — / `$host` |
//! | `ingress-nginx` | ingress-nginx default `upstreaminfo` | `$request_time` | `$upstream_response_time` (sum of retries and redirects) | `[$proxy_upstream_name]` / — / — |
//! | `envoy` | Envoy default text format | `%DURATION%` (ms) | `x-envoy-upstream-service-time` (ms) | — / — / `:authority` |
//! | `haproxy` | HAProxy `option httplog`, `log stdout format raw` | `Ta` (ms; `-1` is missing) | `Tr` (ms) | backend / — / — |
//! | `haproxy-syslog` | the same behind an RFC 3164 / 5424 syslog header | `Ta` | `Tr` | backend / — / — |
//! | `caddy-json` | Caddy JSON access log | `duration` (s, float) | — | — / — / `request.host` |
//! | `caddy-json-ns`, `caddy-json-ms` | Caddy with `duration_format ns` / `ms` | `duration` (ns / ms) | — | — / — / `request.host` |
//!
//! All latencies are stored as nanoseconds, timestamps as nanoseconds since the Unix epoch
//! (UTC); statuses are kept as logged, including Caddy's and Envoy's `0` and HAProxy's `-1`.
//! Every line is either a record, filtered (Caddy entries of other loggers; HAProxy TCP logs
//! and non-HTTP syslog messages) or malformed with an error kind and byte offset: see
//! [`format`](mod@format).

pub mod aggregate;
mod bounded;
pub mod export;
pub mod format;
pub mod histogram;
mod pipeline;
pub mod read;
pub mod reconcile;
pub mod report;
pub mod route;
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub mod serve;
pub mod slowest;
pub mod state;
pub mod synth;
pub mod tail;
#[cfg(test)]
mod test_support;
pub mod watch;

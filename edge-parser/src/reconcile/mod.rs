//! Reading the two vantage points together: what the services behind the proxy say about the
//! same routes.
//!
//! - [`exposition`]: the Prometheus text a service's `/metrics` answers, read line by line,
//!   bounded, never panicking (`vantage_instrument::exposition::text`).
//! - [`service`]: one scrape of a service, per `http_route`: its requests and duration histogram,
//!   and the route templates it uses (the vocabulary the edge adopts).
//! - [`since_start`]: per route, the edge's requests against the services' since a common
//!   start, the difference by reason.
//! - [`windows`]: the same over the last minute, 5 minutes and hour.
//! - [`split`]: where a route's time goes (proxy, in front of the handler, handler) from both
//!   sides' histograms.
//! - [`slowest`]: the edge's slowest recent requests per route, with their trace ids.
//! - [`trace_join`]: those joined by trace id with the services' own slowest (`/debug/slow`).
//! - [`scrape`] (feature `serve`): scraping the services' `/metrics`, every address of each URL
//!   an instance, with timeouts, size limits, backoff and a record of every failure.

pub use vantage_instrument::exposition::text as exposition;
#[cfg(feature = "serve")]
pub mod scrape;
pub mod service;
pub mod since_start;
pub mod slowest;
pub mod split;
pub mod trace_join;
pub mod windows;

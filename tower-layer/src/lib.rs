//! Tower middleware for Vantage: per-route request rate, latency and errors of an axum or hyper
//! service, recorded as OpenTelemetry HTTP server metrics, in one line; and W3C trace context
//! carried through the service, from the request to the logs and to outgoing calls.
//!
//! ```no_run
//! # let app: axum::Router = axum::Router::new();
//! let app = app.layer(vantage_tower::HttpMetricsLayer::new());
//! ```
//!
//! - [`http_metrics`]: what is recorded, when, and how; and `vantage_instrument`'s
//!   `PrometheusExporter` (feature `prometheus`) to serve it on `/metrics`.
//! - [`trace`]: [`TraceContextLayer`] continues the caller's trace and makes its context
//!   current while the request is handled: its ids go into every log line (through
//!   `trace::TraceIdFields`, feature `fmt`) and outgoing calls continue it.
//! - [`propagate`]: the client side, [`PropagateTraceLayer`]
//!   and [`inject_current`](propagate::inject_current).
//! - [`slow`]: the trace ids of the slowest recent requests per route, served as JSON.
//!
//! The recommended stack is one layer, `HttpMetricsLayer::new().trace_context()`: metrics and
//! trace context for the price of one set of wrappers. With the two layers, `TraceContextLayer`
//! goes outside `HttpMetricsLayer` (with `Router::layer`, add it last: the layer added last is
//! the outermost).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use vantage_tower::HttpMetricsLayer;
//! use vantage_tower::slow::SlowRequests;
//!
//! let slow = SlowRequests::new();
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "user" }))
//!     .layer(HttpMetricsLayer::new().slow_requests(slow.clone()).trace_context())
//!     .route_service("/debug/slow", slow.service());
//! ```
//!
//! # Feature flags
//!
//! - `axum` (default): take `http_route` from axum's `MatchedPath`.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod http_metrics;
mod macros;
pub mod propagate;
pub mod slow;
pub mod trace;

pub use http_metrics::{HttpMetrics, HttpMetricsLayer};
pub use propagate::PropagateTraceLayer;
pub use trace::TraceContextLayer;

#[cfg(test)]
mod test_helpers;

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

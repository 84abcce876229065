//! Tower middleware for Vantage: per-route request rate, latency and errors of an axum or hyper
//! service, recorded as OpenTelemetry HTTP server metrics, in one line.
//!
//! ```no_run
//! # let app: axum::Router = axum::Router::new();
//! let app = app.layer(vantage_tower::HttpMetricsLayer::new());
//! ```
//!
//! See [`http_metrics`] for what is recorded, when, and how; and
//! [`PrometheusExporter`](vantage_instrument::PrometheusExporter) to serve it on `/metrics`.
//!
//! # Feature flags
//!
//! - `axum` (default): take `http_route` from axum's `MatchedPath`.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod http_metrics;

pub use http_metrics::{HttpMetrics, HttpMetricsLayer};

#[cfg(test)]
mod test_helpers;

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

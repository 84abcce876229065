//! Service-side instrumentation for Vantage: the metric contract, and the Prometheus exporter
//! setup that the [`vantage-tower`](https://docs.rs/vantage-tower) HTTP metrics layer records into.
//!
//! - [`names`]: every metric name, label name and default bucket layout, as constants.
//! - [`PrometheusExporter`]: installs a Prometheus recorder whose duration metrics are
//!   histograms with the OpenTelemetry buckets, and returns the [`MetricsEndpoint`] that serves
//!   `/metrics`.
//! - [`exposition`]: the Prometheus expositions (text, OpenMetrics with exemplars, protobuf
//!   with native histograms) and the `Accept` negotiation between them.
//! - [`endpoint`]: [`RenderService`](endpoint::RenderService), the tower service behind
//!   `/metrics` and vantage-tower's `/debug/slow`: every request answered with a rendered body.
//! - [`trace_context`]: W3C Trace Context (`traceparent`, `tracestate`): parse, format, inject
//!   and extract on `http::HeaderMap`, ids from a fast per-thread generator.
//! - [`timing`]: function timing as `function_calls_total` and
//!   `function_calls_duration_seconds`, through a guard, a macro, a future wrapper, or a
//!   `tracing` layer for spans marked `vantage.timed`.
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(feature = "prometheus")] {
//! let metrics = vantage_instrument::PrometheusExporter::new().install();
//! // ... record through the `metrics` facade or the vantage-tower layer, then:
//! let text = metrics.render().unwrap_or_default();
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `prometheus` (default): [`PrometheusExporter`] and the `/metrics` service.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod endpoint;
mod error;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod exporter;
pub mod exposition;
pub mod names;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod recorder;
pub mod shard;
pub mod timing;
pub mod trace_context;

pub use error::{ConfigError, validate_buckets};
#[cfg(feature = "prometheus")]
pub use exporter::{MetricsEndpoint, PrometheusExporter};

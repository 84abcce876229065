//! Prometheus exporter setup: histograms with the OpenTelemetry buckets, and a `/metrics` service.
//!
//! [`PrometheusExporter::install`] installs Vantage's [recorder](crate::recorder) as the global
//! `metrics` recorder: counters through [metrics-exporter-prometheus], its own gauges, and every
//! histogram a Prometheus *histogram* (never a summary: summaries cannot be aggregated across
//! instances) with classic buckets, native buckets and exemplars. It returns a
//! [`MetricsEndpoint`] whose [`service`](MetricsEndpoint::service) answers `GET /metrics` in
//! axum (`route_service`) or under a plain hyper server, in the format the scrape's `Accept`
//! asks for: text, OpenMetrics with exemplars, or protobuf with native histograms.
//!
//! If the application installed its own recorder first, `install` does not panic and does not
//! replace it: Vantage records into the application's recorder, logs a warning saying so, and the
//! endpoint answers `503` with an explanation (serve `/metrics` from the application's exporter).
//!
//! # Example
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use vantage_instrument::PrometheusExporter;
//!
//! let metrics = PrometheusExporter::new().install();
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .route_service("/metrics", metrics.service());
//! ```
//!
//! [metrics-exporter-prometheus]: https://docs.rs/metrics-exporter-prometheus

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::error::{ConfigError, validate_buckets};
use crate::exposition::Format;
use crate::names;
use crate::recorder::{Bounds, MetricsHandle, VantageRecorder};

/// How often the installed recorder drains recorded samples into its histograms.
pub const DEFAULT_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The content type of the Prometheus text exposition format: an alias of
/// [`names::PROMETHEUS_TEXT_CONTENT_TYPE`], kept for existing callers.
pub use crate::names::PROMETHEUS_TEXT_CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE;

/// Builder for a Prometheus recorder that exports Vantage's histograms as histograms.
///
/// See the [module docs](self) for an example.
#[derive(Debug, Clone)]
pub struct PrometheusExporter {
    duration_buckets: Vec<f64>,
    body_size_buckets: Vec<f64>,
    upkeep_interval: Duration,
    eager_native_buckets: bool,
}

impl Default for PrometheusExporter {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusExporter {
    /// An exporter with the OpenTelemetry duration buckets
    /// ([`DEFAULT_DURATION_BUCKETS`](names::DEFAULT_DURATION_BUCKETS)).
    pub fn new() -> Self {
        Self {
            duration_buckets: names::DEFAULT_DURATION_BUCKETS.to_vec(),
            body_size_buckets: names::DEFAULT_BODY_SIZE_BUCKETS.to_vec(),
            upkeep_interval: DEFAULT_UPKEEP_INTERVAL,
            eager_native_buckets: false,
        }
    }

    /// Sets the bucket upper bounds, in seconds, of every duration histogram (and of any other
    /// histogram the application records through the same recorder).
    ///
    /// # Errors
    ///
    /// Refuses an empty list, a bound that is not positive and finite, or bounds that are not
    /// strictly increasing.
    pub fn duration_buckets(mut self, bounds: &[f64]) -> Result<Self, ConfigError> {
        validate_buckets("duration", bounds)?;
        self.duration_buckets = bounds.to_vec();
        Ok(self)
    }

    /// Sets the bucket upper bounds, in bytes, of the body size histograms.
    ///
    /// # Errors
    ///
    /// As for [`duration_buckets`](Self::duration_buckets).
    pub fn body_size_buckets(mut self, bounds: &[f64]) -> Result<Self, ConfigError> {
        validate_buckets("body size", bounds)?;
        self.body_size_buckets = bounds.to_vec();
        Ok(self)
    }

    /// Sets how often the installed recorder's counters get their upkeep
    /// (default [`DEFAULT_UPKEEP_INTERVAL`]). Rendering `/metrics` does it too.
    pub fn upkeep_interval(mut self, interval: Duration) -> Self {
        self.upkeep_interval = interval;
        self
    }

    /// Allocates each histogram series' native buckets when the series is made (48 KiB a
    /// series) instead of a 512-byte block when its values first reach a new doubling (the
    /// default: a series of request durations holds a handful). With it, recording a sample
    /// never allocates.
    pub fn eager_native_buckets(mut self, eager: bool) -> Self {
        self.eager_native_buckets = eager;
        self
    }

    /// Builds a recorder without installing it, for a layer given an explicit recorder or for
    /// tests. Render it through [`VantageRecorder::handle`].
    pub fn build_recorder(self) -> VantageRecorder {
        let exact = |name: &str| {
            (
                name.to_owned(),
                Arc::from(self.body_size_buckets.as_slice()),
            )
        };
        let bounds = Bounds {
            default: Arc::from(self.duration_buckets.as_slice()),
            by_name: vec![
                exact(names::HTTP_SERVER_REQUEST_BODY_SIZE),
                exact(names::HTTP_SERVER_RESPONSE_BODY_SIZE),
            ],
            eager: self.eager_native_buckets,
        };
        VantageRecorder::new(PrometheusBuilder::new().build_recorder(), bounds)
    }

    /// Installs the recorder globally and starts its upkeep thread; returns the `/metrics`
    /// endpoint. Never panics: if a recorder is already installed it is kept and used, a
    /// warning says so, and the endpoint answers `503`.
    pub fn install(self) -> MetricsEndpoint {
        let upkeep_interval = self.upkeep_interval;
        let recorder = self.build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                spawn_upkeep(handle.clone(), upkeep_interval);
                MetricsEndpoint::from_handle(handle)
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    "a metrics recorder is already installed: Vantage records into it; \
                     serve /metrics from that recorder's exporter"
                );
                MetricsEndpoint { handle: None }
            }
        }
    }
}

fn spawn_upkeep(handle: MetricsHandle, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("vantage-metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "could not start the metrics upkeep thread; /metrics scrapes will do it");
    }
}

/// What answers `GET /metrics`: the handle of the recorder Vantage installed, if it installed one.
///
/// Cheap to clone. See the [module docs](self) for an example.
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    handle: Option<MetricsHandle>,
}

impl MetricsEndpoint {
    /// An endpoint serving a recorder the application built itself.
    pub fn from_handle(handle: MetricsHandle) -> Self {
        Self {
            handle: Some(handle),
        }
    }

    /// The handle of the recorder this endpoint renders, if Vantage installed one.
    pub fn handle(&self) -> Option<&MetricsHandle> {
        self.handle.as_ref()
    }

    /// The current exposition in the Prometheus text format, if Vantage installed the recorder.
    pub fn render(&self) -> Option<String> {
        self.handle.as_ref().map(MetricsHandle::render)
    }

    /// A tower service answering every request with the exposition in the format its
    /// `Accept` header asks for (mount it at `/metrics`).
    pub fn service(&self) -> MetricsService {
        MetricsService {
            endpoint: self.clone(),
        }
    }

    /// The exposition in `format` with its status: `503` and why when Vantage did not
    /// install the recorder.
    #[must_use]
    pub fn render_as(&self, format: Format) -> (StatusCode, &'static str, Vec<u8>) {
        match &self.handle {
            Some(handle) => (
                StatusCode::OK,
                format.content_type(),
                handle.render_as(format),
            ),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                names::PROMETHEUS_TEXT_CONTENT_TYPE,
                b"another metrics recorder was installed before Vantage's; \
                 serve /metrics from that recorder's exporter\n"
                    .to_vec(),
            ),
        }
    }
}

/// Tower service rendering the exposition; see [`MetricsEndpoint::service`]. It never fails
/// and is always ready.
#[derive(Debug, Clone)]
pub struct MetricsService {
    endpoint: MetricsEndpoint,
}

impl<B> tower_service::Service<Request<B>> for MetricsService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let accept = request.headers().get(header::ACCEPT);
        let format = Format::negotiate(accept.and_then(|a| a.to_str().ok()), true);
        let (status, content_type, body) = self.endpoint.render_as(format);
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[test]
    fn durations_are_histograms_with_the_otel_buckets() {
        let recorder = PrometheusExporter::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!(names::HTTP_SERVER_REQUEST_DURATION).record(0.02);
            metrics::histogram!(names::HTTP_SERVER_RESPONSE_BODY_SIZE).record(100.0);
        });
        let text = handle.render();
        assert!(text.contains("# TYPE http_server_request_duration_seconds histogram"));
        assert!(text.contains("http_server_request_duration_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("http_server_request_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("http_server_request_duration_seconds_bucket{le=\"10\"} 1\n"));
        assert!(text.contains("http_server_response_body_size_bytes_bucket{le=\"64\"} 0\n"));
        assert!(text.contains("http_server_response_body_size_bytes_bucket{le=\"256\"} 1\n"));
        assert!(!text.contains("quantile="));
    }

    #[test]
    fn custom_buckets_are_used_and_bad_ones_refused() {
        let recorder = PrometheusExporter::new()
            .duration_buckets(&[0.5, 1.0])
            .expect("valid buckets")
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!(names::HTTP_SERVER_REQUEST_DURATION).record(0.7);
        });
        let text = handle.render();
        assert!(text.contains("http_server_request_duration_seconds_bucket{le=\"0.5\"} 0\n"));
        assert!(text.contains("http_server_request_duration_seconds_bucket{le=\"1\"} 1\n"));
        assert_eq!(
            PrometheusExporter::new()
                .duration_buckets(&[1.0, 0.5])
                .err(),
            Some(ConfigError::UnsortedBuckets {
                what: "duration",
                previous: 1.0,
                next: 0.5
            })
        );
    }

    #[tokio::test]
    async fn service_renders_the_exposition() {
        let recorder = PrometheusExporter::new().build_recorder();
        let endpoint = MetricsEndpoint::from_handle(recorder.handle());
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("jobs_total").increment(3);
        });
        let response = endpoint
            .service()
            .oneshot(Request::new(()))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            PROMETHEUS_CONTENT_TYPE
        );
        let body = response.into_body().collect().await.expect("infallible");
        assert!(String::from_utf8_lossy(&body.to_bytes()).contains("jobs_total 3\n"));
    }

    #[tokio::test]
    async fn endpoint_without_recorder_explains_itself() {
        let response = MetricsEndpoint { handle: None }
            .service()
            .oneshot(Request::new(()))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response.into_body().collect().await.expect("infallible");
        assert!(String::from_utf8_lossy(&body.to_bytes()).contains("another metrics recorder"));
    }
}

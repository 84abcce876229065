//! Prometheus exporter setup: histograms with the OpenTelemetry buckets, and a `/metrics` service.
//!
//! [`PrometheusExporter::install`] installs [metrics-exporter-prometheus] as the global `metrics`
//! recorder, configured so that every Vantage histogram is exported as a Prometheus *histogram*
//! (buckets, `_sum`, `_count`) and never as a summary: summaries cannot be aggregated across
//! instances. It returns a [`MetricsEndpoint`] whose [`service`](MetricsEndpoint::service) answers
//! `GET /metrics` in axum (`route_service`) or under a plain hyper server.
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

use std::time::Duration;

use http::StatusCode;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::endpoint::{RenderBody, RenderService};
use crate::error::{ConfigError, validate_buckets};
use crate::names;

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

    /// Sets how often the installed recorder folds recorded samples into its histograms
    /// (default [`DEFAULT_UPKEEP_INTERVAL`]). Rendering `/metrics` does it too.
    pub fn upkeep_interval(mut self, interval: Duration) -> Self {
        self.upkeep_interval = interval;
        self
    }

    /// Builds a recorder without installing it, for a layer given an explicit recorder or for
    /// tests. Render it through [`PrometheusRecorder::handle`].
    pub fn build_recorder(self) -> PrometheusRecorder {
        self.builder().build_recorder()
    }

    /// Installs the recorder globally and starts its upkeep thread; returns the `/metrics`
    /// endpoint. Never panics: if a recorder is already installed it is kept and used, a
    /// warning says so, and the endpoint answers `503`.
    pub fn install(self) -> MetricsEndpoint {
        let upkeep_interval = self.upkeep_interval;
        match self.builder().install_recorder() {
            Ok(handle) => {
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

    fn builder(&self) -> PrometheusBuilder {
        const VALIDATED: &str = "bucket lists are validated non-empty by the setters";
        let mut builder = PrometheusBuilder::new()
            .set_buckets(&self.duration_buckets)
            .expect(VALIDATED);
        for name in [
            names::HTTP_SERVER_REQUEST_BODY_SIZE,
            names::HTTP_SERVER_RESPONSE_BODY_SIZE,
        ] {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), &self.body_size_buckets)
                .expect(VALIDATED);
        }
        builder
    }
}

fn spawn_upkeep(handle: PrometheusHandle, interval: Duration) {
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
    handle: Option<PrometheusHandle>,
}

impl MetricsEndpoint {
    /// An endpoint serving a recorder the application built itself.
    pub fn from_handle(handle: PrometheusHandle) -> Self {
        Self {
            handle: Some(handle),
        }
    }

    /// The handle of the recorder this endpoint renders, if Vantage installed one.
    pub fn handle(&self) -> Option<&PrometheusHandle> {
        self.handle.as_ref()
    }

    /// The current exposition in the Prometheus text format, if Vantage installed the recorder.
    pub fn render(&self) -> Option<String> {
        self.handle.as_ref().map(PrometheusHandle::render)
    }

    /// A tower service answering every request with the exposition (mount it at `/metrics`).
    pub fn service(&self) -> MetricsService {
        RenderService::new(names::PROMETHEUS_TEXT_CONTENT_TYPE, self.clone())
    }
}

/// The exposition with `200`, or `503` and why there is none.
impl RenderBody for MetricsEndpoint {
    fn render_body(&self) -> (StatusCode, String) {
        match self.render() {
            Some(text) => (StatusCode::OK, text),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                "another metrics recorder was installed before Vantage's; \
                 serve /metrics from that recorder's exporter\n"
                    .to_owned(),
            ),
        }
    }
}

/// Tower service rendering the Prometheus exposition; see [`MetricsEndpoint::service`].
pub type MetricsService = RenderService<MetricsEndpoint>;

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, header};
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
        assert!(response.body().contains("jobs_total 3\n"));
    }

    #[tokio::test]
    async fn endpoint_without_recorder_explains_itself() {
        let response = MetricsEndpoint { handle: None }
            .service()
            .oneshot(Request::new(()))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.body().contains("another metrics recorder"));
    }
}

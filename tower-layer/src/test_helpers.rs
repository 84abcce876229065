//! Shared test setup: a private Prometheus recorder per test, read back through its exposition.

use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};
use vantage_instrument::PrometheusExporter;

/// A recorder for one test and the handle that renders what it recorded.
pub(crate) fn recorder() -> (PrometheusRecorder, Scrape) {
    let recorder = PrometheusExporter::new().build_recorder();
    let scrape = Scrape {
        handle: recorder.handle(),
    };
    (recorder, scrape)
}

/// Reads series back from a recorder's exposition.
pub(crate) struct Scrape {
    handle: PrometheusHandle,
}

impl Scrape {
    pub(crate) fn text(&self) -> String {
        self.handle.render()
    }

    /// The value of one series, written as it is rendered: `name{label="value",...}`.
    pub(crate) fn value(&self, series: &str) -> Option<f64> {
        let text = self.text();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok())?
            })
    }

    /// How many requests were recorded with these labels.
    pub(crate) fn requests(&self, method: &str, route: &str, status: &str, error: &str) -> u64 {
        self.value(&duration_series("count", method, route, status, error))
            .map_or(0, |count| count as u64)
    }

    /// The summed duration, in seconds, of the requests recorded with these labels.
    pub(crate) fn duration_sum(&self, method: &str, route: &str, status: &str, error: &str) -> f64 {
        self.value(&duration_series("sum", method, route, status, error))
            .unwrap_or(f64::NAN)
    }

    /// The in-flight gauge of a method.
    pub(crate) fn active(&self, method: &str) -> f64 {
        self.value(&format!(
            "http_server_active_requests{{http_request_method=\"{method}\"}}"
        ))
        .unwrap_or(f64::NAN)
    }

    /// The number of distinct duration series (label sets).
    pub(crate) fn duration_series_count(&self) -> usize {
        self.text()
            .lines()
            .filter(|line| line.starts_with("http_server_request_duration_seconds_count{"))
            .count()
    }
}

fn duration_series(suffix: &str, method: &str, route: &str, status: &str, error: &str) -> String {
    format!(
        "http_server_request_duration_seconds_{suffix}{{http_request_method=\"{method}\",\
         http_route=\"{route}\",http_response_status_code=\"{status}\",error_type=\"{error}\"}}"
    )
}

//! Vantage's Prometheus recorder: [metrics-exporter-prometheus] for counters, and its own gauges
//! (whole-number changes in one `fetch_add`) and histograms, so that one set of observations renders as classic `le` buckets (text),
//! OpenMetrics with exemplars and protobuf with native histograms.
//!
//! Every histogram recorded through it is a series histogram: classic buckets
//! from the exporter's bounds, native buckets at schema 6 (≤ 1 % relative error, at most
//! [`MAX_BUCKETS`](crate::exposition::native::MAX_BUCKETS) per series) and, for samples
//! recorded inside [`with_exemplar_trace`](crate::exposition::with_exemplar_trace), an exemplar
//! per classic bucket. The scrape's `Accept` header picks the encoding
//! ([`Format::negotiate`]).
//!
//! [metrics-exporter-prometheus]: https://docs.rs/metrics-exporter-prometheus

mod gauge;
mod histogram;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::fast::RandomState;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

use crate::exposition::{self, Extras, Format};
use gauge::GaugeCell;
use histogram::SeriesHistogram;

/// Histogram bounds: the default, and by full metric name.
#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    pub(crate) default: Arc<[f64]>,
    pub(crate) by_name: Vec<(String, Arc<[f64]>)>,
    /// Whether each series allocates all its native blocks when made.
    pub(crate) eager: bool,
}

impl Bounds {
    fn of(&self, name: &str) -> Arc<[f64]> {
        self.by_name
            .iter()
            .find(|(full, _)| full == name)
            .map_or_else(|| Arc::clone(&self.default), |(_, b)| Arc::clone(b))
    }
}

/// The histograms of a recorder, shared with its handles.
struct Histograms {
    bounds: Bounds,
    series: papaya::HashMap<Key, Arc<SeriesHistogram>, RandomState>,
    gauges: papaya::HashMap<Key, Arc<GaugeCell>, RandomState>,
    /// `# HELP` texts by metric name (histograms and gauges).
    help: Mutex<BTreeMap<String, String>>,
}

/// The recorder [`PrometheusExporter`](crate::PrometheusExporter) installs or builds.
pub struct VantageRecorder {
    inner: PrometheusRecorder,
    histograms: Arc<Histograms>,
}

impl std::fmt::Debug for VantageRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VantageRecorder")
            .field("histograms", &self.histograms.series.len())
            .finish_non_exhaustive()
    }
}

impl VantageRecorder {
    pub(crate) fn new(inner: PrometheusRecorder, bounds: Bounds) -> Self {
        Self {
            inner,
            histograms: Arc::new(Histograms {
                bounds,
                series: papaya::HashMap::builder()
                    .hasher(RandomState::default())
                    .build(),
                gauges: papaya::HashMap::builder()
                    .hasher(RandomState::default())
                    .build(),
                help: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// A handle rendering this recorder's metrics.
    #[must_use]
    pub fn handle(&self) -> MetricsHandle {
        MetricsHandle {
            inner: self.inner.handle(),
            histograms: Arc::clone(&self.histograms),
        }
    }
}

impl Recorder for VantageRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe_histogram(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        let mut help = self
            .histograms
            .help
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        help.insert(key.as_str().to_owned(), description.into_owned());
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        let gauges = self.histograms.gauges.pin();
        let gauge = match gauges.get(key) {
            Some(gauge) => Arc::clone(gauge),
            None => Arc::clone(gauges.get_or_insert_with(key.clone(), Arc::default)),
        };
        Gauge::from_arc(gauge)
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        let series = self.histograms.series.pin();
        let histogram = match series.get(key) {
            Some(histogram) => Arc::clone(histogram),
            None => Arc::clone(series.get_or_insert_with(key.clone(), || {
                let bounds = &self.histograms.bounds;
                Arc::new(SeriesHistogram::new(bounds.of(key.name()), bounds.eager))
            })),
        };
        Histogram::from_arc(histogram)
    }
}

/// Renders a [`VantageRecorder`]'s metrics. Cheap to clone.
#[derive(Clone)]
pub struct MetricsHandle {
    inner: PrometheusHandle,
    histograms: Arc<Histograms>,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// The Prometheus text exposition (classic buckets).
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = self.inner.render();
        self.render_gauges(&mut text);
        self.render_histograms(&mut text);
        text
    }

    /// The exposition in `format`: text, OpenMetrics with the exemplars (each marked shown),
    /// or protobuf with native histograms and the exemplars.
    #[must_use]
    pub fn render_as(&self, format: Format) -> Vec<u8> {
        let text = self.render();
        match format {
            Format::Text => text.into_bytes(),
            Format::OpenMetrics => {
                let mut out = String::with_capacity(text.len() + text.len() / 8);
                exposition::openmetrics::encode(&text, &self.extras(false), &mut out);
                out.into_bytes()
            }
            Format::Protobuf => exposition::protobuf::encode(&text, &self.extras(true)),
        }
    }

    /// Runs the counters' and gauges' exporter upkeep (idle series).
    pub fn run_upkeep(&self) {
        self.inner.run_upkeep();
    }

    /// Each series' exemplars, and its native buckets when `natives` (protobuf).
    fn extras(&self, natives: bool) -> Extras {
        let series = self.histograms.series.pin();
        series
            .iter()
            .map(|(key, histogram)| {
                let labels = key.labels().map(|label| (label.key(), label.value()));
                let key = (sanitize(key.name()), exposition::sorted_labels(labels));
                (key, histogram.extras(natives))
            })
            .collect()
    }

    fn render_gauges(&self, out: &mut String) {
        let gauges = self.histograms.gauges.pin();
        self.render_families(out, "gauge", gauges.iter(), |out, name, key, gauge| {
            let braces = braces(&label_text(key));
            let value = exposition::Value(gauge.value());
            let _ = writeln!(out, "{name}{braces} {value}");
        });
    }

    fn render_histograms(&self, out: &mut String) {
        let series = self.histograms.series.pin();
        self.render_families(out, "histogram", series.iter(), write_series);
    }

    /// Writes each family of `metrics` (by sanitised name, series in label order) with its
    /// `# HELP` and `# TYPE kind`, each series by `write`.
    fn render_families<'a, T: 'a>(
        &self,
        out: &mut String,
        kind: &str,
        metrics: impl Iterator<Item = (&'a Key, &'a Arc<T>)>,
        write: impl Fn(&mut String, &str, &Key, &T),
    ) {
        let mut by_name: BTreeMap<String, Vec<(&Key, &Arc<T>)>> = BTreeMap::new();
        for (key, metric) in metrics {
            by_name
                .entry(sanitize(key.name()))
                .or_default()
                .push((key, metric));
        }
        let help = self
            .histograms
            .help
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, mut members) in by_name {
            members.sort_by(|a, b| a.0.labels().cmp(b.0.labels()));
            if let Some(text) = members.first().and_then(|(key, _)| help.get(key.name())) {
                let _ = writeln!(out, "# HELP {name} {}", escape_help(text));
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (key, metric) in members {
                write(out, &name, key, metric);
            }
            out.push('\n');
        }
    }
}

/// A key's labels as written inside braces, each followed by a comma.
fn label_text(key: &Key) -> String {
    let mut labels = String::new();
    for label in key.labels() {
        let _ = write!(
            labels,
            "{}=\"{}\",",
            label.key(),
            escape_value(label.value())
        );
    }
    labels
}

/// `{labels}` from [`label_text`], or nothing for no labels.
fn braces(labels: &str) -> String {
    let labels = labels.trim_end_matches(',');
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

fn write_series(out: &mut String, name: &str, key: &Key, histogram: &SeriesHistogram) {
    let labels = label_text(key);
    let (buckets, sum, count) = histogram.classic();
    for (bound, cumulative) in buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
    let braces = braces(&labels);
    let _ = writeln!(out, "{name}_sum{braces} {}", exposition::Value(sum));
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

/// A metric name as Prometheus allows it: `[a-zA-Z_:][a-zA-Z0-9_:]*`, others `_`.
fn sanitize(name: &str) -> String {
    name.char_indices()
        .map(|(at, c)| match c {
            'a'..='z' | 'A'..='Z' | '_' | ':' => c,
            '0'..='9' if at > 0 => c,
            _ => '_',
        })
        .collect()
}

fn escape_value(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        value.into()
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests;

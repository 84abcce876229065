//! `/metrics`: the edge metric contract and edge-parser's own health, in the Prometheus text
//! format.
//!
//! - `edge_requests_total{router, service, method, code}`: requests seen in the access log.
//! - `edge_request_duration_seconds{router, service}` and, where the format logs it,
//!   `edge_upstream_duration_seconds{router, service}`: histograms with the same buckets as the
//!   service side ([`DEFAULT_DURATION_BUCKETS`]). Bucket counts come from the HdrHistogram-layout
//!   histograms, where a value less than 1/1024 above a bound may share the bound's counter and
//!   count below it: exact for logs in whole milliseconds at the bounds up to 2.5 s, while
//!   5001 ms counts at or below 5 s, 7501 to 7503 ms below 7.5 s and 10 001 to 10 002 ms below
//!   10 s. `_sum` is exact to the microsecond.
//! - Health: `edge_lines_total{result}`, `edge_bytes_read_total`,
//!   `edge_last_line_timestamp_seconds`, `edge_lag_seconds`, `edge_file_rotations_total{kind}`,
//!   `edge_files_open`, `edge_checkpoint_*`, `edge_clock_skew_lines_total{direction}`,
//!   `edge_anomaly{router, kind}`.
//!
//! The exposition comes in two parts: [`Exposition::render_counters`], everything derived from
//! the persisted state (what must never go backwards across a restart, so `serve` renders it
//! from the state of its last durable checkpoint), and [`Exposition::render_gauges`], what
//! describes the present moment.
//!
//! # Labels, by dimension
//!
//! Labels are read from the group key by [`Dimension`], whatever the grouping:
//!
//! | label | value |
//! |---|---|
//! | `router` | the `router` dimension; without one, the `route` dimension (formats that log no router); else `-` |
//! | `service` | the `service` dimension, else `-` |
//! | `http_route` | the `route` dimension, when the grouping also has `router`, or (beside the services: [`Exposition::route_label`]) whenever the grouping has it: the label the service side uses, so that `sum by (http_route)` joins both sides |
//! | `host` | the `host` dimension |
//! | `method`, `code` | the `method` / `status` dimension if grouped by it, else (on the counter) the counted method and code |
//!
//! Label sets are bounded: groups past the aggregate's cap are `(overflow)`, methods outside the
//! standard set `_OTHER`.

use std::fmt::Write as _;

use vantage_instrument::names::{self, DEFAULT_DURATION_BUCKETS};

use crate::aggregate::{ABSENT, Aggregate, Dimension, Group};
use crate::histogram::LatencyHistogram;
use crate::state::Health;

/// One anomaly signal for export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnomalyState {
    /// The `router` label value it is about.
    pub router: String,
    /// `drop`, `spike` or `errors`.
    pub kind: &'static str,
    /// Whether it is on.
    pub active: bool,
}

/// The index, in the group key, of the value that fills the `router` label: the `router`
/// dimension, or the `route` dimension for a grouping without one.
#[cfg(any(test, feature = "serve"))]
pub(crate) fn router_index(group_by: &[Dimension]) -> Option<usize> {
    first_of(group_by, &[Dimension::Router, Dimension::Route])
}

/// Where the first of `wanted` that `group_by` has is in it.
#[cfg(any(test, feature = "serve"))]
pub(crate) fn first_of(group_by: &[Dimension], wanted: &[Dimension]) -> Option<usize> {
    wanted
        .iter()
        .find_map(|wanted| group_by.iter().position(|d| d == wanted))
}

/// What `/metrics` shows at one moment.
#[derive(Debug)]
pub struct Exposition<'a> {
    /// The cumulative aggregate (with codes counted).
    pub aggregate: &'a Aggregate,
    /// Health counters.
    pub health: &'a Health,
    /// Files followed now.
    pub files_open: usize,
    /// Whether the counters continue from a restored checkpoint.
    pub restored: bool,
    /// The anomaly signals.
    pub anomalies: &'a [AnomalyState],
    /// Now, unix seconds (for the lag).
    pub now: f64,
    /// The timestamp of the last line whose time is trusted, ns since the epoch (for the lag).
    pub last_line: Option<i64>,
    /// Lines stamped too far ahead of the clock, and too far behind, since the process started.
    pub clock_skew: [u64; 2],
    /// Whether a route that fills the `router` label (formats that log no router) is also the
    /// `http_route` label: when the edge is read beside the services (`--service-metrics`), the
    /// label both sides are joined on. Otherwise it would only repeat `router` in every series.
    pub route_label: bool,
}

/// The labels of one group; see the [module docs](self).
fn group_labels<'a>(group: &Group<'a>, route_label: bool) -> Vec<(&'static str, &'a str)> {
    let has_router = group.value(Dimension::Router).is_some();
    let router = group
        .value(Dimension::Router)
        .or_else(|| group.value(Dimension::Route))
        .unwrap_or(ABSENT);
    let service = group.value(Dimension::Service).unwrap_or(ABSENT);
    let mut labels = vec![(names::ROUTER, router), (names::SERVICE, service)];
    for (dimension, value) in group.labels() {
        let name = match dimension {
            Dimension::Router | Dimension::Service => continue,
            Dimension::Route if !has_router && !route_label => continue,
            Dimension::Route => names::HTTP_ROUTE,
            Dimension::Host => names::HOST,
            Dimension::Method => names::METHOD,
            Dimension::Status => names::CODE,
        };
        labels.push((name, value));
    }
    labels
}

impl Exposition<'_> {
    /// What the latency families carry beyond the text, for the OpenMetrics and protobuf
    /// expositions (`vantage_instrument::exposition`): each group's native histograms, and its
    /// request duration [`exemplars`](super::exemplars), under its labels.
    #[cfg(feature = "serve")]
    pub fn extras(
        &self,
        exemplars: &super::exemplars::Exemplars,
    ) -> vantage_instrument::exposition::Extras {
        use super::native::native_of;
        use vantage_instrument::exposition::SeriesExtras;
        let mut extras = vantage_instrument::exposition::Extras::new();
        for group in self.aggregate.groups() {
            let mut labels: Vec<(String, String)> = group_labels(&group, self.route_label)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect();
            labels.sort();
            let stats = group.stats();
            extras.insert(
                (names::EDGE_REQUEST_DURATION.to_owned(), labels.clone()),
                SeriesExtras {
                    native: Some(native_of(&stats.latency)),
                    exemplars: exemplars.of(group.key()),
                },
            );
            if stats.upstream_latency.count() > 0 {
                extras.insert(
                    (names::EDGE_UPSTREAM_DURATION.to_owned(), labels),
                    SeriesExtras {
                        native: Some(native_of(&stats.upstream_latency)),
                        exemplars: Vec::new(),
                    },
                );
            }
        }
        extras
    }

    /// Renders the exposition into `out` (appending): the counters, then the gauges.
    pub fn render(&self, out: &mut String) {
        self.render_counters(out);
        self.render_gauges(out);
    }

    /// Renders what the persisted state holds: requests, durations, lines, bytes, rotations,
    /// checkpoint writes.
    ///
    /// At the default cap of 1 000 groups this is a few MiB of text, rendered once per
    /// checkpoint: each group's labels are escaped once, each histogram is read once for all
    /// its buckets, and counts are written as integers.
    pub fn render_counters(&self, out: &mut String) {
        let mut groups: Vec<Group<'_>> = self.aggregate.groups().collect();
        groups.sort_by(|a, b| a.key().cmp(b.key()));
        // `name{labels` of each group, without the closing brace.
        let labelled: Vec<_> = groups
            .iter()
            .map(|group| {
                let labels = group_labels(group, self.route_label);
                (label_prefix(&labels), group.stats())
            })
            .collect();
        let group_by = self.aggregate.group_by();
        let by_method = group_by.contains(&Dimension::Method);
        let by_status = group_by.contains(&Dimension::Status);

        family(
            out,
            names::EDGE_REQUESTS_TOTAL,
            "counter",
            "Requests seen in the proxy's access log.",
        );
        let mut code_text = itoa::Buffer::new();
        for (labels, stats) in &labelled {
            for code in &stats.codes {
                out.push_str(names::EDGE_REQUESTS_TOTAL);
                out.push_str(labels);
                if !by_method {
                    push_label(out, names::METHOD, code.method);
                }
                if !by_status {
                    push_label(out, names::CODE, code_text.format(code.code));
                }
                push_count(out, code.count);
            }
        }
        let histograms = [
            (
                names::EDGE_REQUEST_DURATION,
                "Request duration as the proxy logged it.",
                false,
            ),
            (
                names::EDGE_UPSTREAM_DURATION,
                "Time spent upstream, where the format logs it separately.",
                true,
            ),
        ];
        let bounds = Bounds::new();
        for (name, help, upstream) in histograms {
            let with_data: Vec<_> = labelled
                .iter()
                .map(|(labels, stats)| {
                    let histogram = if upstream {
                        &stats.upstream_latency
                    } else {
                        &stats.latency
                    };
                    (labels, histogram)
                })
                .filter(|(_, histogram)| histogram.count() > 0 || !upstream)
                .collect();
            if with_data.is_empty() {
                continue;
            }
            family(out, name, "histogram", help);
            let names = SeriesNames::new(name);
            for (labels, histogram) in with_data {
                histogram_samples(out, &names, &bounds, labels, histogram);
            }
        }
        self.render_health_counters(out);
    }

    fn render_health_counters(&self, out: &mut String) {
        let lines = self.aggregate.lines();
        family(
            out,
            names::EDGE_LINES_TOTAL,
            "counter",
            "Access-log lines read, by result.",
        );
        for (result, count) in [
            ("parsed", lines.parsed),
            ("malformed", lines.malformed),
            ("filtered", lines.filtered),
        ] {
            sample(
                out,
                names::EDGE_LINES_TOTAL,
                &[(names::LINE_RESULT, result)],
                count as f64,
            );
        }
        let health = self.health;
        gauge(
            out,
            names::EDGE_BYTES_READ_TOTAL,
            "counter",
            "Bytes read from the access logs.",
            health.bytes_read as f64,
        );
        family(
            out,
            names::EDGE_FILE_ROTATIONS_TOTAL,
            "counter",
            "Log rotations seen, by kind.",
        );
        for (kind, count) in &health.rotations {
            sample(
                out,
                names::EDGE_FILE_ROTATIONS_TOTAL,
                &[(names::KIND, kind)],
                *count as f64,
            );
        }
    }

    /// Renders what describes the present moment: the last line's time and the lag, files
    /// open, checkpoint errors and age, skewed lines, anomalies.
    pub fn render_gauges(&self, out: &mut String) {
        let health = self.health;
        if let Some(last) = self.last_line {
            let last = last as f64 / 1e9;
            gauge(
                out,
                names::EDGE_LAST_LINE_TIMESTAMP,
                "gauge",
                "Timestamp of the newest request read, in seconds since the epoch.",
                last,
            );
            gauge(
                out,
                names::EDGE_LAG,
                "gauge",
                "How far the newest request read lies behind the clock, in seconds.",
                (self.now - last).max(0.0),
            );
        }
        gauge(
            out,
            names::EDGE_FILES_OPEN,
            "gauge",
            "Log files followed now.",
            self.files_open as f64,
        );
        gauge(
            out,
            names::EDGE_CHECKPOINT_WRITES_TOTAL,
            "counter",
            "Checkpoints written.",
            health.checkpoint_writes as f64,
        );
        gauge(
            out,
            names::EDGE_CHECKPOINT_ERRORS_TOTAL,
            "counter",
            "Checkpoint writes that failed.",
            health.checkpoint_errors as f64,
        );
        if let Some(at) = health.checkpoint_last_success {
            gauge(
                out,
                names::EDGE_CHECKPOINT_LAST_SUCCESS,
                "gauge",
                "When the last checkpoint was written, in seconds since the epoch.",
                at as f64,
            );
        }
        gauge(
            out,
            names::EDGE_CHECKPOINT_RESTORED,
            "gauge",
            "1 if the counters continue from a checkpoint restored at startup.",
            f64::from(u8::from(self.restored)),
        );
        if !self.anomalies.is_empty() {
            family(
                out,
                names::EDGE_ANOMALY,
                "gauge",
                "1 while a router's traffic is far outside its baseline, by kind.",
            );
            for anomaly in self.anomalies {
                sample(
                    out,
                    names::EDGE_ANOMALY,
                    &[
                        (names::ROUTER, &anomaly.router),
                        (names::KIND, anomaly.kind),
                    ],
                    f64::from(u8::from(anomaly.active)),
                );
            }
        }
        family(
            out,
            names::EDGE_CLOCK_SKEW_LINES_TOTAL,
            "counter",
            "Lines whose timestamp was not trusted (too far ahead of the clock, or behind the newest line), since the process started; counted, placed at their arrival.",
        );
        for (direction, count) in [
            ("ahead", self.clock_skew[0]),
            ("behind", self.clock_skew[1]),
        ] {
            sample(
                out,
                names::EDGE_CLOCK_SKEW_LINES_TOTAL,
                &[(names::DIRECTION, direction)],
                count as f64,
            );
        }
    }
}

pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A family of one unlabelled sample.
fn gauge(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    family(out, name, kind, help);
    sample(out, name, &[], value);
}

/// The bucket bounds of the duration histograms: `le` texts and microseconds.
struct Bounds(Vec<(String, u64)>);

impl Bounds {
    fn new() -> Self {
        Self(
            DEFAULT_DURATION_BUCKETS
                .iter()
                .map(|bound| (bound.to_string(), (bound * 1e6).round() as u64))
                .collect(),
        )
    }
}

/// The series names of one histogram family.
struct SeriesNames {
    bucket: String,
    sum: String,
    count: String,
}

impl SeriesNames {
    fn new(name: &str) -> Self {
        Self {
            bucket: format!("{name}_bucket"),
            sum: format!("{name}_sum"),
            count: format!("{name}_count"),
        }
    }
}

/// `{label="value",...` (no closing brace) of a label set, escaped; empty for no labels.
fn label_prefix(labels: &[(&str, &str)]) -> String {
    let mut prefix = String::new();
    for (label, text) in labels {
        push_label(&mut prefix, label, text);
    }
    prefix
}

/// Appends `,label="value"` (or `{label="value"` as the first label).
fn push_label(out: &mut String, label: &str, text: &str) {
    out.push(if out.ends_with('"') { ',' } else { '{' });
    out.push_str(label);
    out.push_str("=\"");
    escape_into(out, text);
    out.push('"');
}

/// Closes the labels (if any) and appends an integer value and the line's end.
fn push_count(out: &mut String, value: u64) {
    if out.ends_with('"') {
        out.push('}');
    }
    out.push(' ');
    out.push_str(itoa::Buffer::new().format(value));
    out.push('\n');
}

fn histogram_samples(
    out: &mut String,
    names: &SeriesNames,
    bounds: &Bounds,
    labels: &str,
    histogram: &LatencyHistogram,
) {
    let mut counts = histogram.counts_at_or_below(bounds.0.iter().map(|(_, micros)| *micros));
    let buckets = bounds.0.iter().map(|(le, _)| le.as_str());
    for le in buckets.chain(["+Inf"]) {
        out.push_str(&names.bucket);
        out.push_str(labels);
        push_label(out, "le", le);
        push_count(out, counts.next().unwrap_or(histogram.count()));
    }
    let _ = write!(out, "{}{labels}", names.sum);
    if !labels.is_empty() {
        out.push('}');
    }
    let _ = writeln!(out, " {}", histogram.sum() as f64 / 1e6);
    out.push_str(&names.count);
    out.push_str(labels);
    push_count(out, histogram.count());
}

pub(crate) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (n, (label, text)) in labels.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_into(out, text);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;

//! `/metrics`: the edge metric contract and edge-parser's own health, in the Prometheus text
//! format.
//!
//! - `edge_requests_total{router, service, method, code}`: requests seen in the access log;
//!   `router` is the proxy's router, or the route template for formats that log none.
//! - `edge_request_duration_seconds{router, service}` and, where the format logs it,
//!   `edge_upstream_duration_seconds{router, service}`: histograms with the same buckets as the
//!   service side ([`DEFAULT_DURATION_BUCKETS`]). Bucket counts come from the HdrHistogram-layout
//!   histograms: exact for logs in whole milliseconds, otherwise a value within 0.1 % above a
//!   bound may count below it. `_sum` is exact to the microsecond.
//! - Health: `edge_lines_total{result}`, `edge_bytes_read_total`,
//!   `edge_last_line_timestamp_seconds`, `edge_lag_seconds`, `edge_file_rotations_total{kind}`,
//!   `edge_files_open`, `edge_checkpoint_*`, `edge_anomaly{router, kind}`.
//!
//! Label sets are bounded: groups past the aggregate's cap are `(overflow)`, methods outside the
//! standard set `_OTHER`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use vantage_instrument::names::{self, DEFAULT_DURATION_BUCKETS};

use crate::aggregate::{ABSENT, GroupKey, GroupStats, LineCounts};
use crate::histogram::LatencyHistogram;

/// Counters of edge-parser's own work, kept in the checkpoint so they never go backwards.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Bytes read from the logs.
    pub bytes_read: u64,
    /// Rotations seen, by kind.
    pub rotations: BTreeMap<String, u64>,
    /// Checkpoints written.
    pub checkpoint_writes: u64,
    /// Checkpoint writes that failed.
    pub checkpoint_errors: u64,
    /// When the last checkpoint was written, unix seconds.
    pub checkpoint_last_success: Option<i64>,
}

/// One anomaly signal for export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnomalyState {
    /// The router.
    pub router: String,
    /// `drop`, `spike` or `errors`.
    pub kind: &'static str,
    /// Whether it is on.
    pub active: bool,
}

/// What `/metrics` shows at one moment.
#[derive(Debug)]
pub struct Exposition<'a> {
    /// The cumulative groups (router or route, then service), with codes counted, borrowed.
    pub groups: &'a [(GroupKey, &'a GroupStats)],
    /// The line accounting.
    pub lines: LineCounts,
    /// The newest request's timestamp, ns since the epoch.
    pub last_timestamp: Option<i64>,
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
}

impl Exposition<'_> {
    /// Renders the exposition into `out` (appending).
    pub fn render(&self, out: &mut String) {
        let mut groups: Vec<(&GroupKey, &GroupStats)> = self
            .groups
            .iter()
            .map(|(key, stats)| (key, *stats))
            .collect();
        groups.sort_by(|a, b| a.0.cmp(b.0));
        let label = |values: &[String], index: usize| {
            values.get(index).map_or(ABSENT, String::as_str).to_owned()
        };

        family(
            out,
            names::EDGE_REQUESTS_TOTAL,
            "counter",
            "Requests seen in the proxy's access log.",
        );
        for (key, stats) in &groups {
            for code in &stats.codes {
                sample(
                    out,
                    names::EDGE_REQUESTS_TOTAL,
                    &[
                        (names::ROUTER, &label(&key.0, 0)),
                        (names::SERVICE, &label(&key.0, 1)),
                        (names::METHOD, &code.method),
                        (names::CODE, &code.code.to_string()),
                    ],
                    code.count as f64,
                );
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
        for (name, help, upstream) in histograms {
            let with_data: Vec<_> = groups
                .iter()
                .map(|(key, stats)| {
                    let histogram = if upstream {
                        &stats.upstream_latency
                    } else {
                        &stats.latency
                    };
                    (key, histogram)
                })
                .filter(|(_, histogram)| histogram.count() > 0 || !upstream)
                .collect();
            if with_data.is_empty() {
                continue;
            }
            family(out, name, "histogram", help);
            for (key, histogram) in with_data {
                let router = label(&key.0, 0);
                let service = label(&key.0, 1);
                histogram_samples(out, name, &router, &service, histogram);
            }
        }

        let lines = self.lines;
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
        family(
            out,
            names::EDGE_BYTES_READ_TOTAL,
            "counter",
            "Bytes read from the access logs.",
        );
        sample(
            out,
            names::EDGE_BYTES_READ_TOTAL,
            &[],
            self.health.bytes_read as f64,
        );
        if let Some(last) = self.last_timestamp {
            let last = last as f64 / 1e9;
            family(
                out,
                names::EDGE_LAST_LINE_TIMESTAMP,
                "gauge",
                "Timestamp of the newest request read, in seconds since the epoch.",
            );
            sample(out, names::EDGE_LAST_LINE_TIMESTAMP, &[], last);
            family(
                out,
                names::EDGE_LAG,
                "gauge",
                "How far the newest request read lies behind the clock, in seconds.",
            );
            sample(out, names::EDGE_LAG, &[], (self.now - last).max(0.0));
        }
        family(
            out,
            names::EDGE_FILE_ROTATIONS_TOTAL,
            "counter",
            "Log rotations seen, by kind.",
        );
        for (kind, count) in &self.health.rotations {
            sample(
                out,
                names::EDGE_FILE_ROTATIONS_TOTAL,
                &[(names::KIND, kind)],
                *count as f64,
            );
        }
        family(
            out,
            names::EDGE_FILES_OPEN,
            "gauge",
            "Log files followed now.",
        );
        sample(out, names::EDGE_FILES_OPEN, &[], self.files_open as f64);
        family(
            out,
            names::EDGE_CHECKPOINT_WRITES_TOTAL,
            "counter",
            "Checkpoints written.",
        );
        sample(
            out,
            names::EDGE_CHECKPOINT_WRITES_TOTAL,
            &[],
            self.health.checkpoint_writes as f64,
        );
        family(
            out,
            names::EDGE_CHECKPOINT_ERRORS_TOTAL,
            "counter",
            "Checkpoint writes that failed.",
        );
        sample(
            out,
            names::EDGE_CHECKPOINT_ERRORS_TOTAL,
            &[],
            self.health.checkpoint_errors as f64,
        );
        if let Some(at) = self.health.checkpoint_last_success {
            family(
                out,
                names::EDGE_CHECKPOINT_LAST_SUCCESS,
                "gauge",
                "When the last checkpoint was written, in seconds since the epoch.",
            );
            sample(out, names::EDGE_CHECKPOINT_LAST_SUCCESS, &[], at as f64);
        }
        family(
            out,
            names::EDGE_CHECKPOINT_RESTORED,
            "gauge",
            "1 if the counters continue from a checkpoint restored at startup.",
        );
        sample(
            out,
            names::EDGE_CHECKPOINT_RESTORED,
            &[],
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
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram_samples(
    out: &mut String,
    name: &str,
    router: &str,
    service: &str,
    histogram: &LatencyHistogram,
) {
    let bucket = format!("{name}_bucket");
    for bound in DEFAULT_DURATION_BUCKETS {
        let micros = (bound * 1e6).round() as u64;
        let le = bound.to_string();
        sample(
            out,
            &bucket,
            &[
                (names::ROUTER, router),
                (names::SERVICE, service),
                ("le", &le),
            ],
            histogram.count_at_or_below(micros) as f64,
        );
    }
    let labels = [(names::ROUTER, router), (names::SERVICE, service)];
    let mut with_inf = labels.to_vec();
    with_inf.push(("le", "+Inf"));
    sample(out, &bucket, &with_inf, histogram.count() as f64);
    sample(
        out,
        &format!("{name}_sum"),
        &labels,
        histogram.sum() as f64 / 1e6,
    );
    sample(
        out,
        &format!("{name}_count"),
        &labels,
        histogram.count() as f64,
    );
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
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
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator, Dimension, LinePosition};
    use crate::format::Format;

    fn aggregate() -> crate::aggregate::Aggregate {
        let mut config = AggregateConfig::new(Format::TraefikCommon);
        config.group_by = vec![Dimension::Router, Dimension::Service];
        config.count_codes = true;
        let mut aggregator = Aggregator::new(&config);
        let lines = [
            r#"1.1.1.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 10 "-" "-" 1 "a\"q@docker" "http://x" 4ms"#,
            r#"1.1.1.1 - - [09/Mar/2025:12:00:01 +0000] "GET /a HTTP/1.1" 503 10 "-" "-" 2 "a\"q@docker" "http://x" 30ms"#,
            r#"1.1.1.1 - - [09/Mar/2025:12:00:02 +0000] "BREW /a HTTP/1.1" 200 10 "-" "-" 3 "a\"q@docker" "http://x" 5ms"#,
            "junk",
        ];
        for (n, line) in lines.iter().enumerate() {
            aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
        }
        aggregator.into_aggregate()
    }

    #[test]
    fn the_exposition_follows_the_contract() {
        let aggregate = aggregate();
        let health = Health {
            bytes_read: 4096,
            rotations: BTreeMap::from([("rename".to_owned(), 2)]),
            checkpoint_writes: 3,
            checkpoint_errors: 0,
            checkpoint_last_success: Some(1_741_521_605),
        };
        let anomalies = [AnomalyState {
            router: "a\"q@docker".to_owned(),
            kind: "drop",
            active: true,
        }];
        let groups: Vec<_> = aggregate
            .groups
            .iter()
            .map(|(k, s)| (k.clone(), s))
            .collect();
        let mut text = String::new();
        Exposition {
            groups: &groups,
            lines: aggregate.lines,
            last_timestamp: aggregate.last_timestamp,
            health: &health,
            files_open: 1,
            restored: true,
            anomalies: &anomalies,
            now: 1_741_521_612.5,
        }
        .render(&mut text);
        for expected in [
            "edge_requests_total{router=\"a\\\"q@docker\",service=\"-\",method=\"GET\",code=\"200\"} 1\n",
            "edge_requests_total{router=\"a\\\"q@docker\",service=\"-\",method=\"GET\",code=\"503\"} 1\n",
            "edge_requests_total{router=\"a\\\"q@docker\",service=\"-\",method=\"_OTHER\",code=\"200\"} 1\n",
            "edge_request_duration_seconds_bucket{router=\"a\\\"q@docker\",service=\"-\",le=\"0.005\"} 2\n",
            "edge_request_duration_seconds_bucket{router=\"a\\\"q@docker\",service=\"-\",le=\"0.025\"} 2\n",
            "edge_request_duration_seconds_bucket{router=\"a\\\"q@docker\",service=\"-\",le=\"0.05\"} 3\n",
            "edge_request_duration_seconds_bucket{router=\"a\\\"q@docker\",service=\"-\",le=\"+Inf\"} 3\n",
            "edge_request_duration_seconds_sum{router=\"a\\\"q@docker\",service=\"-\"} 0.039\n",
            "edge_request_duration_seconds_count{router=\"a\\\"q@docker\",service=\"-\"} 3\n",
            "edge_lines_total{result=\"parsed\"} 3\n",
            "edge_lines_total{result=\"malformed\"} 1\n",
            "edge_bytes_read_total 4096\n",
            "edge_last_line_timestamp_seconds 1741521602\n",
            "edge_lag_seconds 10.5\n",
            "edge_file_rotations_total{kind=\"rename\"} 2\n",
            "edge_checkpoint_writes_total 3\n",
            "edge_checkpoint_restored 1\n",
            "edge_anomaly{router=\"a\\\"q@docker\",kind=\"drop\"} 1\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("edge_upstream_duration_seconds"));
        assert!(text.contains("# TYPE edge_request_duration_seconds histogram\n"));
    }
}

//! Output of `edge-parser report`: a table for people and one JSON document for programs.
//!
//! Both show, per group and in total: requests, requests per second over the log's time span,
//! the status-class mix and latency percentiles (nearest rank, from the
//! [`LatencyHistogram`]s: within 0.1 % of exact, maximum
//! exact), and the line accounting: every line parsed, malformed or filtered.
//!
//! # JSON document
//!
//! ```text
//! {
//!   "format": "traefik-common", "group_by": ["router"], "inputs": ["access.log"],
//!   "lines": {"total": 0, "parsed": 0, "malformed": 0, "filtered": 0},
//!   "malformed_samples": [{"input": "access.log", "line_number": 17, "text": "...", "error": "..."}],
//!   "time": {"first": "2025-03-09T12:00:00Z", "last": "...", "seconds": 3600.0},
//!   "total": {group without "key"},
//!   "groups": [{
//!     "key": {"router": "users@docker"},
//!     "requests": 0, "rps": 0.0,
//!     "status_class": {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "other": 0},
//!     "latency_seconds": {"count": 0, "min": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0,
//!                         "p999": 0.0, "max": 0.0, "mean": 0.0},
//!     "latency_missing": 0,
//!     "upstream_latency_seconds": {same fields} or null,
//!     "bytes_sent": 0
//!   }],
//!   "timeline": {"start_epoch_second": 0, "step_seconds": 1, "requests": [0]}
//! }
//! ```
//!
//! `total` has the same fields as a group (without `key`) plus `status`, the requests per exact
//! status code. `time.first`/`last` are `null` when no line had a timestamp; `seconds` is at
//! least 1. The timeline covers every second from the first to the last request, by the log's
//! own timestamps floored to the second.

use std::cmp::Reverse;
use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::{Value, json};

use crate::aggregate::{Aggregate, GroupKey, GroupStats, STATUS_CLASS_NAMES};
use crate::format::Timestamp;
use crate::histogram::LatencyHistogram;

/// How groups are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Most requests first (the default).
    #[default]
    Requests,
    /// Highest p99 latency first.
    P99,
    /// Highest share of 5xx first.
    Errors,
    /// By key, alphabetically.
    Key,
}

impl SortKey {
    /// The accepted names.
    pub const NAMES: &'static str = "requests, p99, errors, key";
}

/// A sort key name that is not one of [`SortKey::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sort key {0:?} (known: requests, p99, errors, key)")]
pub struct UnknownSortKey(pub String);

impl FromStr for SortKey {
    type Err = UnknownSortKey;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "requests" => Ok(Self::Requests),
            "p99" => Ok(Self::P99),
            "errors" => Ok(Self::Errors),
            "key" => Ok(Self::Key),
            _ => Err(UnknownSortKey(name.to_owned())),
        }
    }
}

/// What the report is about, beside the aggregate.
#[derive(Debug, Clone, Default)]
pub struct ReportMeta {
    /// The format's name.
    pub format: String,
    /// The inputs, in reading order.
    pub inputs: Vec<String>,
}

/// Which groups to show, in which order.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportOptions {
    /// Order of the groups.
    pub sort: SortKey,
    /// Show only the first this many groups.
    pub top: Option<usize>,
}

/// The groups in display order, cut to `top`; also how many were left out.
fn ordered(
    aggregate: &Aggregate,
    options: ReportOptions,
) -> (Vec<(&GroupKey, &GroupStats)>, usize) {
    let mut groups: Vec<_> = aggregate.groups.iter().collect();
    match options.sort {
        SortKey::Requests => groups.sort_by_key(|(key, stats)| (Reverse(stats.requests), *key)),
        SortKey::P99 => {
            groups.sort_by_key(|(key, stats)| (Reverse(stats.latency.quantile(0.99)), *key));
        }
        SortKey::Errors => groups
            .sort_by(|(ka, a), (kb, b)| error_share(b).total_cmp(&error_share(a)).then(ka.cmp(kb))),
        SortKey::Key => groups.sort_by_key(|(key, _)| *key),
    }
    let shown = options.top.unwrap_or(usize::MAX).min(groups.len());
    let hidden = groups.len() - shown;
    groups.truncate(shown);
    (groups, hidden)
}

fn error_share(stats: &GroupStats) -> f64 {
    share(stats.status_classes[4], stats.requests)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The JSON document described in the [module docs](self).
pub fn to_json(aggregate: &Aggregate, meta: &ReportMeta, options: ReportOptions) -> Value {
    let seconds = aggregate.seconds();
    let (groups, _) = ordered(aggregate, options);
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(key, stats)| {
            let mut group = group_json(stats, seconds);
            let key: serde_json::Map<String, Value> = aggregate
                .group_by
                .iter()
                .zip(&key.0)
                .map(|(dimension, value)| (dimension.name().to_owned(), json!(value)))
                .collect();
            group["key"] = Value::Object(key);
            group
        })
        .collect();
    let mut total = group_json(&aggregate.total(), seconds);
    total["status"] = aggregate
        .statuses
        .iter()
        .map(|(code, count)| (code.to_string(), json!(count)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let samples: Vec<Value> = aggregate
        .malformed_samples
        .iter()
        .map(|sample| {
            json!({
                "input": meta.inputs.get(sample.position.input as usize),
                "line_number": sample.position.line,
                "text": sample.text,
                "error": sample.error,
            })
        })
        .collect();
    let timestamp = |nanos: Option<i64>| nanos.map(rfc3339);
    json!({
        "format": meta.format,
        "group_by": aggregate.group_by,
        "inputs": meta.inputs,
        "lines": aggregate.lines,
        "malformed_samples": samples,
        "time": {
            "first": timestamp(aggregate.first_timestamp),
            "last": timestamp(aggregate.last_timestamp),
            "seconds": seconds,
        },
        "total": total,
        "groups": groups,
        "timeline": timeline_json(aggregate),
    })
}

fn group_json(stats: &GroupStats, seconds: f64) -> Value {
    let classes: serde_json::Map<String, Value> = STATUS_CLASS_NAMES
        .iter()
        .zip(stats.status_classes)
        .map(|(name, count)| ((*name).to_owned(), json!(count)))
        .collect();
    json!({
        "requests": stats.requests,
        "rps": stats.requests as f64 / seconds,
        "status_class": classes,
        "latency_seconds": latency_json(&stats.latency),
        "latency_missing": stats.latency_missing,
        "upstream_latency_seconds": (stats.upstream_latency.count() > 0)
            .then(|| latency_json(&stats.upstream_latency)),
        "bytes_sent": stats.bytes_sent,
    })
}

fn latency_json(histogram: &LatencyHistogram) -> Value {
    let seconds = |micros: u64| micros as f64 / 1e6;
    json!({
        "count": histogram.count(),
        "min": seconds(histogram.min()),
        "p50": seconds(histogram.quantile(0.50)),
        "p90": seconds(histogram.quantile(0.90)),
        "p99": seconds(histogram.quantile(0.99)),
        "p999": seconds(histogram.quantile(0.999)),
        "max": seconds(histogram.max()),
        "mean": histogram.mean() / 1e6,
    })
}

fn timeline_json(aggregate: &Aggregate) -> Value {
    let (Some(&start), Some(&end)) = (
        aggregate.timeline.keys().next(),
        aggregate.timeline.keys().next_back(),
    ) else {
        return json!({"start_epoch_second": null, "step_seconds": 1, "requests": []});
    };
    let requests: Vec<u64> = (start..=end)
        .map(|second| aggregate.timeline.get(&second).copied().unwrap_or(0))
        .collect();
    json!({"start_epoch_second": start, "step_seconds": 1, "requests": requests})
}

/// The table described in the [module docs](self).
pub fn to_table(aggregate: &Aggregate, meta: &ReportMeta, options: ReportOptions) -> String {
    let seconds = aggregate.seconds();
    let (groups, hidden) = ordered(aggregate, options);
    let lines = aggregate.lines;
    let mut out = String::new();
    let span = match (aggregate.first_timestamp, aggregate.last_timestamp) {
        (Some(first), Some(last)) => {
            format!("{} to {} ({seconds:.0} s)", rfc3339(first), rfc3339(last))
        }
        _ => "no timestamps".to_owned(),
    };
    let _ = writeln!(
        out,
        "{}: {} input{}, {} lines: {} parsed, {} malformed, {} filtered; {span}\n",
        meta.format,
        meta.inputs.len(),
        if meta.inputs.len() == 1 { "" } else { "s" },
        lines.total,
        lines.parsed,
        lines.malformed,
        lines.filtered,
    );
    let key_header = aggregate
        .group_by
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(" ");
    let key_width = groups
        .iter()
        .map(|(key, _)| key.0.join(" ").chars().count())
        .chain([key_header.len(), 5])
        .max()
        .unwrap_or(5)
        .min(60);
    let _ = writeln!(
        out,
        "{key_header:<key_width$} {:>9} {:>8} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "requests", "rps", "2xx", "3xx", "4xx", "5xx", "p50", "p90", "p99", "p99.9", "max"
    );
    for (key, stats) in &groups {
        let name: String = key.0.join(" ").chars().take(key_width).collect();
        row(&mut out, &name, key_width, stats, seconds);
    }
    if hidden > 0 {
        let _ = writeln!(out, "({hidden} more groups; --top to show more)");
    }
    let total = aggregate.total();
    row(&mut out, "total", key_width, &total, seconds);
    if total.latency_missing > 0 {
        let _ = writeln!(
            out,
            "\n{} requests had no latency in their line: counted, left out of the percentiles",
            total.latency_missing
        );
    }
    if total.status_classes[5] > 0 {
        let _ = writeln!(
            out,
            "{} requests had a status outside 100-599 (no response sent)",
            total.status_classes[5]
        );
    }
    if !aggregate.malformed_samples.is_empty() {
        let _ = writeln!(
            out,
            "\nmalformed lines ({} in all; the first {}):",
            lines.malformed,
            aggregate.malformed_samples.len()
        );
        for sample in &aggregate.malformed_samples {
            let input = meta
                .inputs
                .get(sample.position.input as usize)
                .map_or("?", String::as_str);
            let text: String = sample.text.chars().take(120).collect();
            let _ = writeln!(
                out,
                "  {input}:{}: {} ({})",
                sample.position.line, text, sample.error
            );
        }
    }
    out
}

fn row(out: &mut String, name: &str, key_width: usize, stats: &GroupStats, seconds: f64) {
    let pct = |n: u64| format!("{:.1}%", 100.0 * share(n, stats.requests));
    let latency = |q: f64| {
        if stats.latency.count() == 0 {
            "-".to_owned()
        } else {
            micros(stats.latency.quantile(q))
        }
    };
    let _ = writeln!(
        out,
        "{name:<key_width$} {:>9} {:>8.1} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        stats.requests,
        stats.requests as f64 / seconds,
        pct(stats.status_classes[1]),
        pct(stats.status_classes[2]),
        pct(stats.status_classes[3]),
        pct(stats.status_classes[4]),
        latency(0.5),
        latency(0.9),
        latency(0.99),
        latency(0.999),
        latency(1.0),
    );
}

/// RFC 3339 in UTC, with as many fractional digits as needed (none for whole seconds).
fn rfc3339(nanos: i64) -> String {
    let text = Timestamp::from_unix_nanos(nanos).to_string();
    match text.split_once('.') {
        Some((seconds, fraction)) => {
            let digits = fraction.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{digits}Z")
            }
        }
        None => text,
    }
}

/// A duration in microseconds, in the unit that reads best.
pub fn micros(value: u64) -> String {
    match value {
        0..1_000 => format!("{value}µs"),
        1_000..10_000 => format!("{:.2}ms", value as f64 / 1e3),
        10_000..1_000_000 => format!("{:.1}ms", value as f64 / 1e3),
        _ => format!("{:.2}s", value as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator, LinePosition};
    use crate::format::Format;

    fn aggregate() -> Aggregate {
        let config = AggregateConfig::new(Format::TraefikCommon);
        let mut aggregator = Aggregator::new(&config);
        let lines = [
            r#"1.1.1.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 10 "-" "-" 1 "a@docker" "http://x" 10ms"#,
            r#"1.1.1.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 10 "-" "-" 2 "a@docker" "http://x" 20ms"#,
            r#"1.1.1.1 - - [09/Mar/2025:12:00:03 +0000] "GET /b HTTP/1.1" 502 0 "-" "-" 3 "b@docker" "http://x" 3000ms"#,
            "not a log line",
        ];
        for (n, line) in lines.iter().enumerate() {
            aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
        }
        let mut aggregate = aggregator.into_aggregate();
        aggregate.finish(config.max_groups);
        aggregate
    }

    fn meta() -> ReportMeta {
        ReportMeta {
            format: "traefik-common".to_owned(),
            inputs: vec!["access.log".to_owned()],
        }
    }

    #[test]
    fn the_json_document_has_every_documented_field() {
        let json = to_json(&aggregate(), &meta(), ReportOptions::default());
        assert_eq!(
            json["lines"],
            json!({"total": 4, "parsed": 3, "malformed": 1, "filtered": 0})
        );
        assert_eq!(json["malformed_samples"][0]["line_number"], 4);
        assert_eq!(json["malformed_samples"][0]["input"], "access.log");
        assert_eq!(json["time"]["first"], "2025-03-09T12:00:00Z");
        assert_eq!(json["time"]["seconds"], 3.0);
        assert_eq!(json["total"]["requests"], 3);
        assert_eq!(json["total"]["status"], json!({"200": 2, "502": 1}));
        assert_eq!(json["total"]["status_class"]["5xx"], 1);
        assert_eq!(json["total"]["latency_seconds"]["max"], 3.0);
        assert_eq!(json["total"]["latency_seconds"]["p50"], 0.02);
        assert_eq!(json["groups"][0]["key"], json!({"router": "a@docker"}));
        assert_eq!(json["groups"][0]["requests"], 2);
        assert_eq!(json["groups"][0]["rps"], 2.0 / 3.0);
        assert_eq!(json["groups"][0]["upstream_latency_seconds"], Value::Null);
        assert_eq!(
            json["timeline"],
            json!({"start_epoch_second": 1_741_521_600, "step_seconds": 1, "requests": [2, 0, 0, 1]})
        );
    }

    #[test]
    fn the_table_shows_groups_totals_and_malformed_samples() {
        let table = to_table(&aggregate(), &meta(), ReportOptions::default());
        let expected = "\
traefik-common: 1 input, 4 lines: 3 parsed, 1 malformed, 0 filtered; 2025-03-09T12:00:00Z to 2025-03-09T12:00:03Z (3 s)

router    requests      rps    2xx    3xx    4xx    5xx      p50      p90      p99    p99.9      max
a@docker         2      0.7 100.0%   0.0%   0.0%   0.0%   10.0ms   20.0ms   20.0ms   20.0ms   20.0ms
b@docker         1      0.3   0.0%   0.0%   0.0% 100.0%    3.00s    3.00s    3.00s    3.00s    3.00s
total            3      1.0  66.7%   0.0%   0.0%  33.3%   20.0ms    3.00s    3.00s    3.00s    3.00s

malformed lines (1 in all; the first 1):
  access.log:4: not a log line (";
        assert!(table.starts_with(expected), "{table}");
    }

    #[test]
    fn top_and_sort_choose_the_groups() {
        let aggregate = aggregate();
        let options = ReportOptions {
            sort: SortKey::P99,
            top: Some(1),
        };
        let table = to_table(&aggregate, &meta(), options);
        assert!(table.contains("b@docker"));
        assert!(!table.contains("a@docker"));
        assert!(table.contains("(1 more groups; --top to show more)"));
        let json = to_json(&aggregate, &meta(), options);
        assert_eq!(json["groups"].as_array().map(Vec::len), Some(1));
        assert_eq!("errors".parse::<SortKey>(), Ok(SortKey::Errors));
        assert!("speed".parse::<SortKey>().is_err());
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(1_234), "1.23ms");
        assert_eq!(micros(45_600), "45.6ms");
        assert_eq!(micros(2_500_000), "2.50s");
        assert_eq!(
            rfc3339(1_741_521_600_120_000_000),
            "2025-03-09T12:00:00.12Z"
        );
    }
}

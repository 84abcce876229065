//! The report JSON document (`edge-parser report --json`), as a value ([`to_json`]) or as
//! text safe for a terminal ([`to_json_text`]).
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
//! least 1. The timeline counts the requests of every step from the first request's to the
//! last's, by the log's own timestamps: `step_seconds` is 1, or coarser (5, 10, 30 s, 1, 5, 10,
//! 30 min, 1, 3, 6, 12 h, a day, then doubling days) when one-second steps would be more than
//! [`MAX_TIMELINE_POINTS`]; `start_epoch_second` is the first step's start, a multiple of the
//! step (see [`Timeline`]).
//!
//! [`MAX_TIMELINE_POINTS`]: crate::aggregate::MAX_TIMELINE_POINTS
//! [`Timeline`]: crate::aggregate::Timeline

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{ReportMeta, ReportOptions, ordered, rfc3339};
use crate::aggregate::{Aggregate, GroupStats, StatusClasses};
use crate::histogram::LatencyHistogram;

/// The JSON document described in the [module docs](self).
pub fn to_json(aggregate: &Aggregate, meta: &ReportMeta, options: ReportOptions) -> Value {
    let seconds = aggregate.seconds();
    let (groups, _) = ordered(aggregate, options);
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let mut value = group_json(group.stats(), seconds);
            let key: serde_json::Map<String, Value> = group
                .labels()
                .map(|(dimension, value)| (dimension.name().to_owned(), json!(value)))
                .collect();
            value["key"] = Value::Object(key);
            value
        })
        .collect();
    let mut total = group_json(&aggregate.total(), seconds);
    total["status"] = aggregate
        .statuses()
        .iter()
        .map(|(code, count)| (code.to_string(), json!(count)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let samples: Vec<Value> = aggregate
        .malformed_samples()
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
        "group_by": aggregate.group_by(),
        "inputs": meta.inputs,
        "lines": aggregate.lines(),
        "malformed_samples": samples,
        "time": {
            "first": timestamp(aggregate.first_timestamp()),
            "last": timestamp(aggregate.last_timestamp()),
            "seconds": seconds,
        },
        "total": total,
        "groups": groups,
        "timeline": timeline_json(aggregate),
    })
}

/// The [document](to_json) as pretty-printed text ending in a newline, every control
/// character escaped (serde_json escapes C0 but writes DEL and C1 raw, which JSON allows and
/// some terminals act on): safe to print where a terminal shows it, and the same JSON value.
///
/// # Errors
///
/// Serialisation failed (it does not for this document's values).
pub fn to_json_text(
    aggregate: &Aggregate,
    meta: &ReportMeta,
    options: ReportOptions,
) -> serde_json::Result<String> {
    let text = serde_json::to_string_pretty(&to_json(aggregate, meta, options))?;
    let mut safe = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        // Outside strings serde_json writes no control character but `\n`.
        if c.is_control() && c != '\n' {
            let _ = write!(safe, "\\u{:04x}", u32::from(c));
        } else {
            safe.push(c);
        }
    }
    safe.push('\n');
    Ok(safe)
}

/// `{"1xx": n, …, "other": n}`.
pub(crate) fn classes_json(classes: &StatusClasses) -> Value {
    classes
        .iter()
        .map(|(name, count)| (name.to_owned(), json!(count)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn group_json(stats: &GroupStats, seconds: f64) -> Value {
    json!({
        "requests": stats.requests,
        "rps": stats.requests as f64 / seconds,
        "status_class": classes_json(&stats.status_classes),
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
    let timeline = aggregate.timeline();
    let step = timeline.step();
    match timeline.points() {
        Some((start, requests)) => {
            json!({"start_epoch_second": start, "step_seconds": step, "requests": requests})
        }
        None => json!({"start_epoch_second": null, "step_seconds": step, "requests": []}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::SortKey;
    use crate::export::test_aggregate::{LINES, meta, traefik};

    #[test]
    fn the_json_document_has_every_documented_field() {
        let json = to_json(&traefik(&LINES), &meta(), ReportOptions::default());
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
    fn top_and_sort_choose_the_groups() {
        let options = ReportOptions {
            sort: SortKey::P99,
            top: Some(1),
        };
        let json = to_json(&traefik(&LINES), &meta(), options);
        assert_eq!(json["groups"].as_array().map(Vec::len), Some(1));
        assert_eq!(json["groups"][0]["key"], json!({"router": "b@docker"}));
        assert_eq!("errors".parse::<SortKey>(), Ok(SortKey::Errors));
        assert!("speed".parse::<SortKey>().is_err());
    }
}

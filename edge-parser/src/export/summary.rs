//! The JSON documents of `serve`: `/ready` and `/api/summary` (also each event of
//! `/api/stream`).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::json::classes_json;
use super::prometheus::AnomalyState;
use crate::aggregate::{Aggregate, GroupKey};
use crate::serve::clock::{SkewCounts, SkewSample};
use crate::serve::window::{Percentiles, Summary};
use crate::tail::TailStatus;

/// A window is marked partial when more than this share of its process's lines were not
/// requests.
const MALFORMED_PARTIAL_SHARE: f64 = 0.01;

/// The `/ready` document and whether it says ready.
pub(crate) fn ready(status: &TailStatus, restored: bool) -> (bool, Value) {
    let mut reasons = Vec::new();
    if status.polls == 0 {
        reasons.push("the log files have not been looked at yet".to_owned());
    }
    for pattern in &status.patterns {
        if pattern.followed.is_empty() && pattern.failing.is_empty() {
            reasons.push(format!("{} matches no file yet", pattern.pattern));
        }
    }
    let failing: Vec<Value> = status
        .patterns
        .iter()
        .flat_map(|pattern| &pattern.failing)
        .map(|(path, reason)| json!({"path": path.display().to_string(), "reason": reason}))
        .collect();
    let ready = reasons.is_empty();
    let body = json!({
        "ready": ready,
        "reasons": reasons,
        "checkpoint_restored": restored,
        "failing": failing,
    });
    (ready, body)
}

/// What `/api/summary` is made of.
#[derive(Debug)]
pub(crate) struct SummaryView<'a, S> {
    /// Now, unix seconds.
    pub(crate) now: f64,
    /// The format's name.
    pub(crate) format: &'a str,
    /// The cumulative aggregate: its groups are the ones windows show (past the cap, windows
    /// fold into `(overflow)` too).
    pub(crate) aggregate: &'a Aggregate,
    /// Each window's figures.
    pub(crate) windows: Vec<Summary>,
    /// When each group last had a line, on this process's clock.
    pub(crate) last_seen: &'a HashMap<GroupKey, Instant, S>,
    /// A group with no line for this long is stale.
    pub(crate) stale_after: Duration,
    /// How long this process has been running.
    pub(crate) uptime: Duration,
    /// Whether the state continues from a checkpoint.
    pub(crate) restored: bool,
    /// Lines read by this process, and how many of them were not requests.
    pub(crate) recent_lines: (u64, u64),
    /// Files followed now.
    pub(crate) files_open: usize,
    /// The watch's signals.
    pub(crate) anomalies: &'a [AnomalyState],
    /// The timestamp of the last line whose time is trusted, ns.
    pub(crate) last_line: Option<i64>,
    /// Lines whose time was not trusted, since the process started.
    pub(crate) clock_skew: SkewCounts,
    /// The last few of them.
    pub(crate) skew_samples: Vec<SkewSample>,
}

impl<S: BuildHasher> SummaryView<'_, S> {
    /// The document.
    pub(crate) fn into_json(self) -> Value {
        let now = self.now;
        let lag = self
            .last_line
            .map(|last| (now - last as f64 / 1e9).max(0.0));
        let (recent, recent_bad) = self.recent_lines;
        let malformed_share = if recent == 0 {
            0.0
        } else {
            recent_bad as f64 / recent as f64
        };
        let uptime = self.uptime.as_secs_f64();
        let group_by = self.aggregate.group_by();
        let kept: HashSet<&GroupKey> = self.aggregate.groups().map(|group| group.key()).collect();
        let overflow = GroupKey::overflow(group_by.len());
        let windows: Vec<Value> = self
            .windows
            .into_iter()
            .map(|mut window| {
                window.fold_into(&overflow, |key| kept.contains(key));
                // Before a window's length has passed since the start, only that much of it
                // was watched: rates are over what was watched.
                let seconds = if self.restored {
                    window.seconds as f64
                } else {
                    (window.seconds as f64).min(uptime.max(1.0))
                };
                let mut partial = Vec::new();
                if uptime < window.seconds as f64 && !self.restored {
                    partial.push("started less than a window ago");
                }
                if lag.is_some_and(|lag| lag > seconds / 10.0 && lag > 10.0) {
                    partial.push("the log lags behind the clock");
                }
                if malformed_share > MALFORMED_PARTIAL_SHARE {
                    partial.push("many lines could not be parsed");
                }
                let mut groups: Vec<_> = window.groups.iter().collect();
                groups.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
                let groups: Vec<Value> = groups
                    .into_iter()
                    .map(|(key, stats)| {
                        let since = self.last_seen.get(key).map(Instant::elapsed);
                        let stale = since.is_none_or(|since| since > self.stale_after);
                        let key_json: serde_json::Map<String, Value> = group_by
                            .iter()
                            .zip(key.values())
                            .map(|(dimension, value)| (dimension.name().to_owned(), json!(value)))
                            .collect();
                        json!({
                            "key": key_json,
                            "requests": stats.requests,
                            "rps": stats.requests as f64 / seconds,
                            "status_class": classes_json(&stats.status_classes),
                            "latency_seconds": Percentiles::of(&stats.latency),
                            "stale": stale,
                            "partial": !partial.is_empty(),
                            "seconds_since_last_line": since.map(|s| s.as_secs_f64()),
                        })
                    })
                    .collect();
                json!({
                    "window": window.spec.name,
                    "seconds": window.seconds,
                    "covered_seconds": seconds,
                    "partial": partial,
                    "groups": groups,
                })
            })
            .collect();
        let anomalies: Vec<Value> = self
            .anomalies
            .iter()
            .filter(|anomaly| anomaly.active)
            .map(|anomaly| json!({"router": anomaly.router, "kind": anomaly.kind}))
            .collect();
        let group_names: Vec<&str> = group_by.iter().map(|d| d.name()).collect();
        json!({
            "now": now,
            "format": self.format,
            "group_by": group_names,
            "lines": self.aggregate.lines(),
            "lag_seconds": lag,
            "last_line_timestamp": self.last_line.map(|last| last as f64 / 1e9),
            "clock_skew": {
                "ahead": self.clock_skew.ahead,
                "behind": self.clock_skew.behind,
                "samples": self.skew_samples,
            },
            "stale": self.last_seen.values().all(|seen| seen.elapsed() > self.stale_after),
            "files_open": self.files_open,
            "windows": windows,
            "anomalies": anomalies,
        })
    }
}

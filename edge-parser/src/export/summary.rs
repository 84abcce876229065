//! The JSON documents of `serve`: `/ready` and `/api/summary` (also each event of
//! `/api/stream`).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::prometheus::AnomalyState;
use crate::aggregate::{Aggregate, Dimension, GroupKey, LineCounts, StatusClasses};
use crate::reconcile::since_start::Reconciliation;
use crate::serve::clock::{SkewCounts, SkewSample};
use crate::serve::history::HistoryDoc;
use crate::serve::requests::{Kept, Requests};
use crate::serve::window::{Percentiles, Summary};
use crate::state::Health;
use crate::tail::TailStatus;
use crate::watch::{AnomalyKind, RouterStatus, Watch};

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
    pub(crate) windows: Vec<Summary<'a>>,
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
    /// The edge against the services per route, with `--service-metrics`.
    pub(crate) reconcile: Option<&'a Reconciliation>,
    /// Rotations and checkpoint writes.
    pub(crate) health: &'a Health,
    /// The last hour of all traffic.
    pub(crate) history: HistoryDoc,
    /// The watch tower: the context of each anomaly.
    pub(crate) watch: &'a Watch,
    /// A sampled tail of requests, and the slowest.
    pub(crate) requests: &'a Requests,
    /// The windows' groups by only some of the grouping's dimensions, or by all of them.
    pub(crate) by: Option<By>,
}

/// A coarser grouping than the aggregate's, for the windows (`/api/summary?by=router`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct By {
    /// Where each dimension is in the aggregate's grouping.
    indices: Vec<usize>,
    dimensions: Vec<Dimension>,
}

impl By {
    /// The grouping by `names` (comma-separated, as `--by` takes them), each one of
    /// `group_by`'s.
    pub(crate) fn parse(group_by: &[Dimension], names: &str) -> Result<Self, String> {
        let mut by = Self {
            indices: Vec::new(),
            dimensions: Vec::new(),
        };
        for name in names.split(',').filter(|name| !name.is_empty()) {
            let index = group_by
                .iter()
                .position(|dimension| dimension.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = group_by.iter().map(|d| d.name()).collect();
                    format!(
                        "{name:?} is not one of this server's groupings: {}",
                        names.join(", ")
                    )
                })?;
            if !by.indices.contains(&index) {
                by.indices.push(index);
                by.dimensions.push(group_by[index]);
            }
        }
        if by.indices.is_empty() {
            return Err("by= names at least one dimension".to_owned());
        }
        Ok(by)
    }
}

/// The `/api/summary` document, serialised as it is built (a thousand groups times three
/// windows: a tree of `serde_json::Value`s first would cost tens of milliseconds of the ingest
/// loop every second).
#[derive(Serialize)]
struct Document<'a> {
    anomalies: Vec<AnomalyDoc<'a>>,
    checkpoint_errors: u64,
    checkpoint_last_success: Option<i64>,
    clock_skew: ClockSkewDoc<'a>,
    files_open: usize,
    format: &'a str,
    group_by: Vec<&'static str>,
    /// Every dimension the server groups by: `?by=` may name any of them.
    groupable_by: Vec<&'static str>,
    history: &'a HistoryDoc,
    lag_seconds: Option<f64>,
    last_line_timestamp: Option<f64>,
    lines: LineCounts,
    malformed_samples: Vec<MalformedDoc<'a>>,
    now: f64,
    recent_requests: Vec<RequestDoc<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reconcile: Option<&'a Reconciliation>,
    rotations: &'a std::collections::BTreeMap<String, u64>,
    slowest_requests: Vec<RequestDoc<'a>>,
    stale: bool,
    stale_after_seconds: f64,
    windows: Vec<WindowDoc<'a>>,
}

/// A malformed line kept by the aggregate: where and why, not its text (raw lines are in the
/// guarded snapshot only; this document is open).
#[derive(Serialize)]
struct MalformedDoc<'a> {
    error: &'a str,
    line_number: u64,
}

/// A request of the tail or the slowest.
#[derive(Serialize)]
struct RequestDoc<'a> {
    at: i64,
    duration_seconds: Option<f64>,
    key: KeyDoc<'a>,
    method: Option<&'a str>,
    status: Option<i16>,
    /// 32 hex digits, where the log carries the request's trace id.
    trace_id: Option<String>,
    upstream_seconds: Option<f64>,
}

impl<'a> RequestDoc<'a> {
    fn new(kept: &'a Kept, group_by: &'a [Dimension]) -> Self {
        let seconds = |us: u64| us as f64 / 1e6;
        Self {
            at: kept.at,
            duration_seconds: kept.duration_us.map(seconds),
            key: KeyDoc {
                group_by,
                key: kept.key.clone(),
            },
            method: kept.method.as_deref(),
            status: kept.status,
            trace_id: kept.trace_id.map(|id| id.to_string()),
            upstream_seconds: kept.upstream_us.map(seconds),
        }
    }
}

/// An active anomaly with its context: since when, and the baseline against the minute in
/// progress.
#[derive(Serialize)]
struct AnomalyDoc<'a> {
    kind: &'a str,
    router: &'a str,
    /// The start of the minute it came on in, unix seconds.
    since: Option<i64>,
    #[serde(flatten)]
    context: Option<AnomalyContext>,
}

#[derive(Serialize)]
struct AnomalyContext {
    baseline_requests_per_minute: f64,
    baseline_error_share: f64,
    minute_requests: u64,
    minute_errors_5xx: u64,
}

impl AnomalyDoc<'_> {
    fn since(status: Option<&RouterStatus>, kind: &str) -> Option<i64> {
        let index = AnomalyKind::ALL
            .iter()
            .position(|known| known.as_str() == kind)?;
        status?.active_since[index]
    }
}

#[derive(Serialize)]
struct ClockSkewDoc<'a> {
    ahead: u64,
    behind: u64,
    samples: &'a [SkewSample],
}

#[derive(Serialize)]
struct WindowDoc<'a> {
    covered_seconds: f64,
    groups: Vec<GroupDoc<'a>>,
    partial: Vec<&'static str>,
    seconds: i64,
    window: &'static str,
}

#[derive(Serialize)]
struct GroupDoc<'a> {
    key: KeyDoc<'a>,
    latency_seconds: Option<Percentiles>,
    partial: bool,
    requests: u64,
    rps: f64,
    seconds_since_last_line: Option<f64>,
    stale: bool,
    status_class: ClassesDoc,
}

/// A group key as `{dimension: value}`.
struct KeyDoc<'a> {
    group_by: &'a [Dimension],
    key: GroupKey,
}

impl Serialize for KeyDoc<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.group_by
                .iter()
                .map(|dimension| dimension.name())
                .zip(self.key.values()),
        )
    }
}

/// Requests by status class as `{"1xx": n, ...}`.
struct ClassesDoc(StatusClasses);

impl Serialize for ClassesDoc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter())
    }
}

impl<S: BuildHasher> SummaryView<'_, S> {
    /// The document as a JSON value.
    #[cfg(test)]
    pub(crate) fn into_json(self) -> Value {
        serde_json::from_slice(&self.to_json()).unwrap_or_default()
    }

    /// The document as JSON text.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.document()).unwrap_or_default()
    }

    fn document(&self) -> Document<'_> {
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
        let by = self.by.as_ref().map(|by| by.indices.as_slice());
        let shown_by = self.by.as_ref().map_or(group_by, |by| &by.dimensions);
        // When each shown group last had a line: the latest of its groups, when coarser.
        let last_seen: HashMap<GroupKey, Duration> = match by {
            None => HashMap::new(),
            Some(by) => {
                let mut seen: HashMap<GroupKey, Duration> = HashMap::new();
                for (key, at) in self.last_seen {
                    let since = at.elapsed();
                    seen.entry(key.project(by))
                        .and_modify(|least| *least = (*least).min(since))
                        .or_insert(since);
                }
                seen
            }
        };
        let since = |key: &GroupKey| match by {
            None => self.last_seen.get(key).map(Instant::elapsed),
            Some(_) => last_seen.get(key).copied(),
        };
        let windows = self
            .windows
            .iter()
            .map(|window| {
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
                let mut groups = window.figures(&overflow, |key| kept.contains(key), by);
                groups.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
                let groups = groups
                    .into_iter()
                    .map(|(key, stats)| {
                        let since = since(&key);
                        GroupDoc {
                            latency_seconds: stats.latency,
                            partial: !partial.is_empty(),
                            requests: stats.requests,
                            rps: stats.requests as f64 / seconds,
                            seconds_since_last_line: since.map(|s| s.as_secs_f64()),
                            stale: since.is_none_or(|since| since > self.stale_after),
                            status_class: ClassesDoc(stats.status_classes),
                            key: KeyDoc {
                                group_by: shown_by,
                                key,
                            },
                        }
                    })
                    .collect();
                WindowDoc {
                    covered_seconds: seconds,
                    groups,
                    partial,
                    seconds: window.seconds,
                    window: window.spec.name,
                }
            })
            .collect();
        Document {
            anomalies: self
                .anomalies
                .iter()
                .filter(|anomaly| anomaly.active)
                .map(|anomaly| {
                    let status = self.watch.router(&anomaly.router);
                    AnomalyDoc {
                        kind: anomaly.kind,
                        router: &anomaly.router,
                        since: AnomalyDoc::since(status.as_ref(), anomaly.kind),
                        context: status.map(|status| AnomalyContext {
                            baseline_requests_per_minute: status.baseline_requests_per_minute,
                            baseline_error_share: status.baseline_error_share,
                            minute_requests: status.minute_requests,
                            minute_errors_5xx: status.minute_errors,
                        }),
                    }
                })
                .collect(),
            checkpoint_errors: self.health.checkpoint_errors,
            checkpoint_last_success: self.health.checkpoint_last_success,
            clock_skew: ClockSkewDoc {
                ahead: self.clock_skew.ahead,
                behind: self.clock_skew.behind,
                samples: &self.skew_samples,
            },
            files_open: self.files_open,
            format: self.format,
            group_by: shown_by.iter().map(|d| d.name()).collect(),
            groupable_by: group_by.iter().map(|d| d.name()).collect(),
            history: &self.history,
            lag_seconds: lag,
            last_line_timestamp: self.last_line.map(|last| last as f64 / 1e9),
            lines: self.aggregate.lines(),
            malformed_samples: self
                .aggregate
                .malformed_samples()
                .iter()
                .map(|sample| MalformedDoc {
                    error: &sample.error,
                    line_number: sample.position.line,
                })
                .collect(),
            now,
            recent_requests: self
                .requests
                .tail()
                .map(|kept| RequestDoc::new(kept, group_by))
                .collect(),
            reconcile: self.reconcile,
            rotations: &self.health.rotations,
            slowest_requests: self
                .requests
                .slowest(now as i64)
                .map(|kept| RequestDoc::new(kept, group_by))
                .collect(),
            stale: self
                .last_seen
                .values()
                .all(|seen| seen.elapsed() > self.stale_after),
            stale_after_seconds: self.stale_after.as_secs_f64(),
            windows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::By;
    use crate::aggregate::Dimension::{Router, Service};

    #[test]
    fn a_coarser_grouping_names_dimensions_of_the_servers() {
        let by = By::parse(&[Router, Service], "service,router,service").expect("valid");
        assert_eq!(
            (by.indices, by.dimensions),
            (vec![1, 0], vec![Service, Router])
        );
        assert_eq!(
            By::parse(&[Router, Service], "host"),
            Err(r#""host" is not one of this server's groupings: router, service"#.to_owned())
        );
        assert_eq!(
            By::parse(&[Router], ""),
            Err("by= names at least one dimension".to_owned())
        );
    }
}

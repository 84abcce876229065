//! What `serve` persists: the [`EdgeState`] that the checkpoint holds beside the file positions
//! and that `/api/snapshot` downloads, its configuration [`fingerprint`], and the grouping
//! `serve` uses ([`serve_config`]).
//!
//! The persisted form is its own versioned type (`v1` below), written straight from the live
//! state without copying the histograms and validated when read back: a group key with the
//! wrong number of values, an unknown method or counts that do not add up make the file
//! corrupt, named with the reason, rather than a state that renders wrong numbers. The version
//! is the checkpoint envelope's ([`CHECKPOINT_VERSION`](crate::tail::CHECKPOINT_VERSION)): a
//! change of this shape is a new `v2` module and a new envelope version, and files of a version
//! this build does not read are refused naming it.
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::Format;
//! use vantage_edge::route::RouteRules;
//! use vantage_edge::state::{fingerprint, serve_config};
//!
//! let config = serve_config(Format::TraefikJson, RouteRules::auto(), 1000, None);
//! assert_eq!(fingerprint(&config), "format=traefik-json by=router,service");
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, AggregateConfig, Dimension, default_dimension};
use crate::format::Format;
use crate::route::RouteRules;
#[cfg(any(test, feature = "serve"))]
use crate::tail::FilePosition;
use crate::tail::{Checkpoint, CheckpointError};

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

/// What the checkpoint holds beside the file positions, and what a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdgeState {
    /// The cumulative aggregate.
    pub aggregate: Aggregate,
    /// edge-parser's own counters.
    pub health: Health,
    /// Lines taken in since the first start: the order of first appearance of groups.
    pub sequence: u64,
}

/// A snapshot read back from a file: the state and the configuration it was made with.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The configuration fingerprint of the `serve` that wrote it (see [`fingerprint`]).
    pub config: String,
    /// The state.
    pub state: EdgeState,
}

/// How `serve` groups: by `group_by`, or by default by router (route for formats that log no
/// router) and service, counting requests per method and status code for
/// `edge_requests_total{method, code}`, and without a per-second timeline (it runs for months).
pub fn serve_config(
    format: Format,
    routes: RouteRules,
    max_groups: usize,
    group_by: Option<Vec<Dimension>>,
) -> AggregateConfig {
    let group_by = group_by.unwrap_or_else(|| vec![default_dimension(&format), Dimension::Service]);
    let mut config = AggregateConfig::new(format);
    config.group_by = group_by;
    config.routes = routes;
    config.max_groups = max_groups.max(1);
    config.count_codes = true;
    config.timeline = false;
    config
}

/// What a checkpoint's counters mean: resuming one made with another format, grouping or
/// routes would mix different things under the same names.
pub fn fingerprint(config: &AggregateConfig) -> String {
    let group_by: Vec<&str> = config.group_by.iter().map(|d| d.name()).collect();
    let mut fingerprint = format!("format={} by={}", config.format.name(), group_by.join(","));
    if let Some(log_format) = config.format.log_format() {
        fingerprint.push_str(&format!(" log_format={:?}", log_format.source()));
    }
    let routes: Vec<&str> = config.routes.templates().collect();
    if !routes.is_empty() {
        fingerprint.push_str(&format!(" routes={}", routes.join(",")));
    }
    fingerprint
}

/// Reads a snapshot saved from `/api/snapshot` (or a checkpoint), whatever configuration it
/// was made with, to show it.
///
/// # Errors
///
/// A file that is missing, unreadable, not a checkpoint, of another format version, or whose
/// state is corrupt.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, CheckpointError> {
    let checkpoint = Checkpoint::<v1::State<'static>>::read_any(path)?;
    Ok(Snapshot {
        state: checkpoint.state.into_state(path)?,
        config: checkpoint.config,
    })
}

/// The state and positions of the checkpoint at `path` made for `config`; `None` when there is
/// none (a first start).
#[cfg(any(test, feature = "serve"))]
pub(crate) fn restore(
    path: &Path,
    config: &AggregateConfig,
) -> Result<Option<(EdgeState, Vec<FilePosition>)>, CheckpointError> {
    let Some(checkpoint) = Checkpoint::<v1::State<'static>>::read(path, &fingerprint(config))?
    else {
        return Ok(None);
    };
    let state = checkpoint.state.into_state(path)?;
    if state.aggregate.group_by() != config.group_by {
        return Err(CheckpointError::Corrupt {
            path: path.to_owned(),
            reason: format!(
                "its state is grouped by {:?}, its configuration says {:?}",
                state.aggregate.group_by(),
                config.group_by
            ),
        });
    }
    Ok(Some((state, checkpoint.files)))
}

/// The persisted form of the state, in the version this build writes.
#[cfg(any(test, feature = "serve"))]
pub(crate) type Persisted<'a> = v1::State<'a>;

/// The checkpoint of the live state, borrowing it (the histograms are not copied).
#[cfg(any(test, feature = "serve"))]
pub(crate) fn checkpoint<'a>(
    config: String,
    files: Vec<FilePosition>,
    aggregate: &'a Aggregate,
    health: &'a Health,
    sequence: u64,
) -> Checkpoint<Persisted<'a>> {
    Checkpoint {
        config,
        files,
        state: v1::State::of(aggregate, health, sequence),
    }
}

/// Version 1 of the persisted state: the JSON shape of the first checkpoints, kept as it was.
mod v1 {
    use std::borrow::Cow;
    use std::collections::BTreeMap;
    use std::path::Path;

    use serde::{Deserialize, Serialize};
    use vantage_instrument::names::OTHER_METHOD;

    use super::{EdgeState, Health};
    use crate::aggregate::{
        Aggregate, CodeCount, Dimension, GroupKey, GroupStats, LineCounts, LinePosition,
        MalformedSample, StatusClasses, method_label,
    };
    use crate::histogram::LatencyHistogram;
    use crate::tail::CheckpointError;

    #[derive(Serialize, Deserialize)]
    pub(crate) struct State<'a> {
        aggregate: AggregateV1<'a>,
        health: Cow<'a, Health>,
        sequence: u64,
    }

    #[derive(Serialize, Deserialize)]
    struct AggregateV1<'a> {
        group_by: Vec<Dimension>,
        lines: LineCounts,
        malformed_samples: Cow<'a, [MalformedSample]>,
        first_timestamp: Option<i64>,
        last_timestamp: Option<i64>,
        statuses: BTreeMap<i16, u64>,
        timeline: BTreeMap<i64, u64>,
        groups: Vec<GroupV1<'a>>,
    }

    #[derive(Serialize, Deserialize)]
    struct GroupV1<'a> {
        key: Vec<Cow<'a, str>>,
        stats: StatsV1<'a>,
    }

    #[derive(Serialize, Deserialize)]
    struct StatsV1<'a> {
        first_seen: LinePosition,
        requests: u64,
        status_classes: [u64; 6],
        latency: Cow<'a, LatencyHistogram>,
        latency_missing: u64,
        upstream_latency: Cow<'a, LatencyHistogram>,
        bytes_sent: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        codes: Vec<CodeV1<'a>>,
    }

    #[derive(Serialize, Deserialize)]
    struct CodeV1<'a> {
        method: Cow<'a, str>,
        code: i16,
        count: u64,
    }

    impl<'a> State<'a> {
        #[cfg(any(test, feature = "serve"))]
        pub(crate) fn of(aggregate: &'a Aggregate, health: &'a Health, sequence: u64) -> Self {
            let mut groups: Vec<GroupV1<'a>> = aggregate
                .groups()
                .map(|group| GroupV1 {
                    key: group.key().values().map(Cow::Borrowed).collect(),
                    stats: StatsV1::of(group.stats()),
                })
                .collect();
            groups.sort_by(|a, b| a.key.cmp(&b.key));
            Self {
                aggregate: AggregateV1 {
                    group_by: aggregate.group_by().to_vec(),
                    lines: aggregate.lines(),
                    malformed_samples: Cow::Borrowed(aggregate.malformed_samples()),
                    first_timestamp: aggregate.first_timestamp(),
                    last_timestamp: aggregate.last_timestamp(),
                    statuses: aggregate.statuses().iter().collect(),
                    timeline: aggregate.timeline().iter().collect(),
                    groups,
                },
                health: Cow::Borrowed(health),
                sequence,
            }
        }

        /// The state, validated; `path` names the file in errors.
        pub(crate) fn into_state(self, path: &Path) -> Result<EdgeState, CheckpointError> {
            let corrupt = |reason: String| CheckpointError::Corrupt {
                path: path.to_owned(),
                reason,
            };
            let saved = self.aggregate;
            let mut aggregate = Aggregate::new(saved.group_by);
            aggregate.lines = saved.lines;
            aggregate.malformed_samples = saved.malformed_samples.into_owned();
            aggregate.first_timestamp = saved.first_timestamp;
            aggregate.last_timestamp = saved.last_timestamp;
            aggregate.statuses = saved.statuses.into_iter().collect();
            aggregate.timeline = saved.timeline.into_iter().collect();
            for group in saved.groups {
                if group.key.len() != aggregate.group_by.len() {
                    return Err(corrupt(format!(
                        "group {:?} has {} values, the grouping {:?} has {}",
                        group.key,
                        group.key.len(),
                        aggregate.group_by,
                        aggregate.group_by.len()
                    )));
                }
                let key = GroupKey::new(&group.key);
                let stats = group
                    .stats
                    .into_stats()
                    .map_err(|reason| corrupt(format!("group {:?}: {reason}", group.key)))?;
                if aggregate.groups.insert(key, stats).is_some() {
                    return Err(corrupt(format!("group {:?} appears twice", group.key)));
                }
            }
            Ok(EdgeState {
                aggregate,
                health: self.health.into_owned(),
                sequence: self.sequence,
            })
        }
    }

    impl<'a> StatsV1<'a> {
        #[cfg(any(test, feature = "serve"))]
        fn of(stats: &'a GroupStats) -> Self {
            Self {
                first_seen: stats.first_seen,
                requests: stats.requests,
                status_classes: stats.status_classes.counts(),
                latency: Cow::Borrowed(&stats.latency),
                latency_missing: stats.latency_missing,
                upstream_latency: Cow::Borrowed(&stats.upstream_latency),
                bytes_sent: stats.bytes_sent,
                codes: stats
                    .codes
                    .iter()
                    .map(|code| CodeV1 {
                        method: Cow::Borrowed(code.method),
                        code: code.code,
                        count: code.count,
                    })
                    .collect(),
            }
        }

        fn into_stats(self) -> Result<GroupStats, String> {
            let classes: u64 = self.status_classes.iter().sum();
            if classes != self.requests {
                return Err(format!(
                    "{} requests but {classes} by status class",
                    self.requests
                ));
            }
            let timed = self.latency.count() + self.latency_missing;
            if timed != self.requests {
                return Err(format!(
                    "{} requests but {timed} with or without a latency",
                    self.requests
                ));
            }
            let mut codes = Vec::with_capacity(self.codes.len());
            for code in self.codes {
                let method = method_label(Some(code.method.as_bytes()));
                if method == OTHER_METHOD && code.method != OTHER_METHOD {
                    return Err(format!("unknown method {:?}", code.method));
                }
                codes.push(CodeCount {
                    method,
                    code: code.code,
                    count: code.count,
                });
            }
            codes.sort();
            let coded: u64 = codes.iter().map(|code| code.count).sum();
            if !codes.is_empty() && coded != self.requests {
                return Err(format!(
                    "{} requests but {coded} by method and code",
                    self.requests
                ));
            }
            Ok(GroupStats {
                first_seen: self.first_seen,
                requests: self.requests,
                status_classes: StatusClasses::from_counts(self.status_classes),
                latency: self.latency.into_owned(),
                latency_missing: self.latency_missing,
                upstream_latency: self.upstream_latency.into_owned(),
                bytes_sent: self.bytes_sent,
                codes,
            })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;

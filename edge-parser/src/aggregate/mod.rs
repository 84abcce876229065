//! [`Aggregate`]: what a stream of access-log lines amounts to, keyed by group, mergeable. The
//! one model that `report` prints, `serve` exports, the checkpoint persists and the snapshot
//! downloads (see [`crate::export`] and [`crate::state`]).
//!
//! An [`Aggregator`] turns lines into an [`Aggregate`]: every line counted as parsed, malformed
//! (with the first few kept as samples) or filtered; every parsed record counted in its group
//! (the values of the [`Dimension`]s chosen, such as router or route), with its status class and
//! its latency and upstream latency in [`LatencyHistogram`](crate::histogram::LatencyHistogram)s;
//! and a [`Timeline`] of the log's own timestamps (per second, in coarser steps past a bounded
//! number of points). Aggregates made on several threads [`merge`](Aggregate::merge) into
//! exactly the aggregate one thread would have made.
//!
//! Group keys are bounded: past [`AggregateConfig::max_groups`] groups, the groups first seen
//! latest are folded into one `(overflow)` group ([`GroupKey::overflow`]) when the aggregate is
//! [finished](Aggregate::finish), in line order, so the result does not depend on how lines
//! were shared between threads. Each aggregator also stops creating groups at four times the
//! cap, which bounds memory whatever the input; `serve` makes the cap exact as lines come.
//!
//! # Example
//!
//! ```
//! use vantage_edge::aggregate::{AggregateConfig, Aggregator, Dimension, LinePosition};
//! use vantage_edge::format::Format;
//!
//! let config = AggregateConfig::new(Format::TraefikCommon);
//! let mut aggregator = Aggregator::new(&config);
//! let line = br#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /users/42 HTTP/1.1" 200 512 "-" "-" 1 "users@docker" "http://10.0.0.7:80" 12ms"#;
//! aggregator.add_line(LinePosition::new(0, 1), line);
//! aggregator.add_line(LinePosition::new(0, 2), b"garbage");
//! let aggregate = aggregator.finish();
//! assert_eq!((aggregate.lines().parsed, aggregate.lines().malformed), (1, 1));
//! let group = aggregate.groups().next().expect("one group");
//! assert_eq!(group.value(Dimension::Router), Some("users@docker"));
//! assert_eq!(group.stats().latency.max(), 12_000);
//! ```

mod aggregator;
pub(crate) mod chunks;
mod key;
mod stats;

use std::collections::HashMap;

pub use aggregator::Aggregator;
#[cfg(feature = "serve")]
pub(crate) use key::encoded_value;
pub use key::{ABSENT, Dimension, GroupKey, UnknownDimension};
pub(crate) use stats::method_label;
pub use stats::{
    CodeCount, GroupStats, LineCounts, MAX_TIMELINE_POINTS, StatusClasses, StatusCounts, Timeline,
    UpstreamCounts,
};

use crate::format::Format;
use crate::route::RouteRules;

/// Default cap on the number of groups.
pub const DEFAULT_MAX_GROUPS: usize = 1000;
/// Default number of malformed lines kept as samples.
pub const DEFAULT_MALFORMED_SAMPLES: usize = 5;
/// Samples of malformed lines are cut to this many bytes.
pub const MAX_SAMPLE_BYTES: usize = 512;

/// How lines are parsed and grouped.
#[derive(Debug, Clone)]
pub struct AggregateConfig {
    /// The log format.
    pub format: Format,
    /// The dimensions of the group key, in order.
    pub group_by: Vec<Dimension>,
    /// How request targets become routes.
    pub routes: RouteRules,
    /// Cap on the number of groups.
    pub max_groups: usize,
    /// How many malformed lines to keep as samples.
    pub malformed_samples: usize,
    /// Also count each group's requests by method and status code (for `serve`'s
    /// `edge_requests_total{method, code}`).
    pub count_codes: bool,
    /// Keep the per-second timeline (`report`); `serve`, which runs for months, does not.
    pub timeline: bool,
}

impl AggregateConfig {
    /// A configuration with the defaults: grouped by router for formats that log one, by route
    /// otherwise; automatic route normalisation.
    pub fn new(format: Format) -> Self {
        let group_by = vec![default_dimension(&format)];
        Self {
            format,
            group_by,
            routes: RouteRules::auto(),
            max_groups: DEFAULT_MAX_GROUPS,
            malformed_samples: DEFAULT_MALFORMED_SAMPLES,
            count_codes: false,
            timeline: true,
        }
    }
}

/// Router for the formats that name one, route for the others.
pub fn default_dimension(format: &Format) -> Dimension {
    match format {
        Format::TraefikCommon
        | Format::TraefikJson
        | Format::IngressNginx
        | Format::Haproxy
        | Format::HaproxySyslog => Dimension::Router,
        _ => Dimension::Route,
    }
}

/// Where a line is: which input (in reading order, from 0) and which line of it (from 1).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct LinePosition {
    /// The input's index in reading order.
    pub input: u32,
    /// The line number within the input, from 1.
    pub line: u64,
}

impl LinePosition {
    /// Line `line` of input `input`.
    pub const fn new(input: u32, line: u64) -> Self {
        Self { input, line }
    }
}

/// A malformed line kept to show what went wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MalformedSample {
    /// Where the line is.
    pub position: LinePosition,
    /// The line (lossily decoded, cut to [`MAX_SAMPLE_BYTES`]).
    pub text: String,
    /// Why it could not be parsed.
    pub error: String,
}

pub(crate) type Groups = HashMap<GroupKey, GroupStats, foldhash::fast::RandomState>;

/// What a stream of lines amounts to; see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aggregate {
    pub(crate) group_by: Vec<Dimension>,
    pub(crate) lines: LineCounts,
    pub(crate) malformed_samples: Vec<MalformedSample>,
    pub(crate) first_timestamp: Option<i64>,
    pub(crate) last_timestamp: Option<i64>,
    pub(crate) statuses: StatusCounts,
    pub(crate) timeline: Timeline,
    pub(crate) groups: Groups,
}

/// One group of an [`Aggregate`]: its key read by dimension, and its statistics.
#[derive(Clone, Copy, Debug)]
pub struct Group<'a> {
    group_by: &'a [Dimension],
    key: &'a GroupKey,
    stats: &'a GroupStats,
}

impl<'a> Group<'a> {
    /// The value of `dimension`, if the aggregate is grouped by it.
    pub fn value(&self, dimension: Dimension) -> Option<&'a str> {
        let index = self.group_by.iter().position(|d| *d == dimension)?;
        self.key.value(index)
    }

    /// `(dimension, value)` for each grouping dimension, in order.
    pub fn labels(&self) -> impl Iterator<Item = (Dimension, &'a str)> + 'a {
        self.group_by.iter().copied().zip(self.key.values())
    }

    /// The key.
    pub fn key(&self) -> &'a GroupKey {
        self.key
    }

    /// The statistics.
    pub fn stats(&self) -> &'a GroupStats {
        self.stats
    }
}

impl Aggregate {
    /// An empty aggregate grouped by `group_by`.
    pub fn new(group_by: Vec<Dimension>) -> Self {
        Self {
            group_by,
            ..Self::default()
        }
    }

    /// The dimensions of the group keys, in order.
    pub fn group_by(&self) -> &[Dimension] {
        &self.group_by
    }

    /// Line accounting.
    pub fn lines(&self) -> LineCounts {
        self.lines
    }

    /// The first malformed lines, in line order.
    pub fn malformed_samples(&self) -> &[MalformedSample] {
        &self.malformed_samples
    }

    /// Earliest request timestamp, ns since the epoch.
    pub fn first_timestamp(&self) -> Option<i64> {
        self.first_timestamp
    }

    /// Latest request timestamp, ns since the epoch.
    pub fn last_timestamp(&self) -> Option<i64> {
        self.last_timestamp
    }

    /// Requests by exact status code.
    pub fn statuses(&self) -> &StatusCounts {
        &self.statuses
    }

    /// Requests per step of the log's own timestamps (empty when not kept).
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Every group, in no particular order.
    pub fn groups(&self) -> impl Iterator<Item = Group<'_>> + '_ {
        self.groups.iter().map(|(key, stats)| Group {
            group_by: &self.group_by,
            key,
            stats,
        })
    }

    /// The statistics of the group with this key.
    pub fn group(&self, key: &GroupKey) -> Option<&GroupStats> {
        self.groups.get(key)
    }

    /// How many groups there are.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Adds `other` (grouped the same way) into `self`, keeping the first `max_samples`
    /// malformed samples in line order.
    pub fn merge(&mut self, other: &Self, max_samples: usize) {
        self.merge_counts(other, max_samples);
        for (key, stats) in &other.groups {
            self.groups.entry(key.clone()).or_default().merge(stats);
        }
    }

    /// Adds everything of `other` but its groups.
    pub(crate) fn merge_counts(&mut self, other: &Self, max_samples: usize) {
        self.lines.merge(&other.lines);
        self.malformed_samples
            .extend(other.malformed_samples.iter().cloned());
        self.malformed_samples.sort_by_key(|sample| sample.position);
        self.malformed_samples.truncate(max_samples);
        self.first_timestamp = min_option(self.first_timestamp, other.first_timestamp);
        self.last_timestamp = self.last_timestamp.max(other.last_timestamp);
        self.statuses.merge(&other.statuses);
        self.timeline.merge(&other.timeline);
    }

    /// Applies the group cap: keeps the `max_groups` groups first seen earliest, in line order,
    /// and folds the others into the [overflow key](GroupKey::overflow).
    pub fn finish(&mut self, max_groups: usize) {
        if self.groups.len() <= max_groups {
            return;
        }
        let mut groups: Vec<_> = self.groups.drain().collect();
        groups.sort_by(|a, b| (a.1.first_seen, &a.0).cmp(&(b.1.first_seen, &b.0)));
        let overflow_key = GroupKey::overflow(self.group_by.len());
        let mut overflow = GroupStats::default();
        for (n, (key, stats)) in groups.into_iter().enumerate() {
            if n < max_groups && key != overflow_key {
                self.groups.insert(key, stats);
            } else {
                overflow.merge(&stats);
            }
        }
        self.groups.insert(overflow_key, overflow);
    }

    /// Everything in one group: the totals line.
    pub fn total(&self) -> GroupStats {
        let mut total = GroupStats::default();
        for stats in self.groups.values() {
            total.merge(stats);
        }
        total
    }

    /// The seconds between the first and the last request, at least 1.
    pub fn seconds(&self) -> f64 {
        match (self.first_timestamp, self.last_timestamp) {
            // As u64: from 1677 to 2262 is more nanoseconds than an i64 holds.
            (Some(first), Some(last)) => (last.abs_diff(first) as f64 / 1e9).max(1.0),
            _ => 1.0,
        }
    }
}

fn min_option(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests;

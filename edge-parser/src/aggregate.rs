//! [`Aggregate`]: what a stream of access-log lines amounts to, keyed by group, mergeable.
//!
//! An [`Aggregator`] turns lines into an [`Aggregate`]: every line counted as parsed, malformed
//! (with the first few kept as samples) or filtered; every parsed record counted in its group
//! (the values of the [`Dimension`]s chosen, such as router or route), with its status class and
//! its latency and upstream latency in [`LatencyHistogram`]s; and a per-second timeline of the
//! log's own timestamps. Aggregates made on several threads [`merge`](Aggregate::merge) into
//! exactly the aggregate one thread would have made.
//!
//! Group keys are bounded: past [`AggregateConfig::max_groups`] groups, the groups first seen
//! latest are folded into one `(overflow)` group when the aggregate is
//! [finished](Aggregate::finish), in line order, so the result does not depend on how lines were
//! shared between threads. Each aggregator also stops creating groups at four times the cap,
//! which bounds memory whatever the input.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vantage_instrument::names::{OTHER_METHOD, OVERFLOW_ROUTE};

use crate::format::{Format, Parsed, Record, StatusClass};
use crate::histogram::LatencyHistogram;
use crate::route::RouteRules;

/// Default cap on the number of groups.
pub const DEFAULT_MAX_GROUPS: usize = 1000;
/// Default number of malformed lines kept as samples.
pub const DEFAULT_MALFORMED_SAMPLES: usize = 5;
/// Samples of malformed lines are cut to this many bytes.
pub const MAX_SAMPLE_BYTES: usize = 512;
/// Each aggregator creates at most this many times [`AggregateConfig::max_groups`] groups.
const LOCAL_GROUP_FACTOR: usize = 4;
/// The value of a dimension the record does not have.
pub const ABSENT: &str = "-";

/// A dimension of the group key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// The proxy's router (Traefik router, ingress-nginx upstream, HAProxy backend).
    Router,
    /// The route template of the request target; see [`RouteRules`].
    Route,
    /// The service the proxy sent the request to.
    Service,
    /// The requested host.
    Host,
    /// The request method.
    Method,
    /// The status code.
    Status,
}

impl Dimension {
    /// Every dimension, in the order of the `--by` help.
    pub const ALL: [Self; 6] = [
        Self::Router,
        Self::Route,
        Self::Service,
        Self::Host,
        Self::Method,
        Self::Status,
    ];

    /// The name used on the command line and in JSON keys.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Router => "router",
            Self::Route => "route",
            Self::Service => "service",
            Self::Host => "host",
            Self::Method => "method",
            Self::Status => "status",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dimension name that is not one of [`Dimension::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown group dimension {0:?} (known: router, route, service, host, method, status)")]
pub struct UnknownDimension(pub String);

impl FromStr for Dimension {
    type Err = UnknownDimension;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|dimension| dimension.name() == name)
            .ok_or_else(|| UnknownDimension(name.to_owned()))
    }
}

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

/// How the input lines were accounted for: every line is exactly one of the three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCounts {
    /// All lines read.
    pub total: u64,
    /// Lines that were requests.
    pub parsed: u64,
    /// Lines that could not be parsed.
    pub malformed: u64,
    /// Well-formed lines that are not requests.
    pub filtered: u64,
}

/// Where a line is: which input (in reading order, from 0) and which line of it (from 1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedSample {
    /// Where the line is.
    pub position: LinePosition,
    /// The line (lossily decoded, cut to [`MAX_SAMPLE_BYTES`]).
    pub text: String,
    /// Why it could not be parsed.
    pub error: String,
}

/// Counts and latencies of one group (or of everything).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Where the group's first request is, to apply the cap in line order.
    pub first_seen: LinePosition,
    /// Requests.
    pub requests: u64,
    /// Requests by status class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub status_classes: [u64; 6],
    /// Request durations, µs.
    pub latency: LatencyHistogram,
    /// Requests whose line had no (or a negative) duration.
    pub latency_missing: u64,
    /// Upstream durations, µs, where the format logs them.
    pub upstream_latency: LatencyHistogram,
    /// Response bytes sent.
    pub bytes_sent: u64,
    /// Requests by method and status code, when [`AggregateConfig::count_codes`] is set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<CodeCount>,
}

/// Requests of one method and status code.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CodeCount {
    /// The method: a standard one, or `_OTHER` (methods are the client's choice: bounded).
    pub method: String,
    /// The status code as logged (`-1` when the line had none).
    pub code: i16,
    /// Requests.
    pub count: u64,
}

/// The methods counted by name; any other is [`OTHER_METHOD`].
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The bounded label of a logged method.
fn method_label(method: Option<&[u8]>) -> &'static str {
    method
        .and_then(|method| METHODS.iter().find(|known| known.as_bytes() == method))
        .copied()
        .unwrap_or(OTHER_METHOD)
}

/// The index of a status class in [`GroupStats::status_classes`].
pub const fn class_index(class: StatusClass) -> usize {
    match class {
        StatusClass::Informational => 0,
        StatusClass::Success => 1,
        StatusClass::Redirection => 2,
        StatusClass::ClientError => 3,
        StatusClass::ServerError => 4,
        _ => 5,
    }
}

/// The label of each index of [`GroupStats::status_classes`].
pub const STATUS_CLASS_NAMES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

impl GroupStats {
    fn add(&mut self, record: &Record<'_>, count_codes: bool) {
        self.requests += 1;
        if count_codes {
            let method = method_label(record.method.as_deref());
            let code = record.status.map_or(-1, |status| status.code());
            match self
                .codes
                .iter_mut()
                .find(|c| c.code == code && c.method == method)
            {
                Some(counted) => counted.count += 1,
                None => self.codes.push(CodeCount {
                    method: method.to_owned(),
                    code,
                    count: 1,
                }),
            }
        }
        let class = record.status.map_or(StatusClass::Other, |s| s.class());
        self.status_classes[class_index(class)] += 1;
        match record.duration_ns {
            Some(ns) => self.latency.record(ns / 1000),
            None => self.latency_missing += 1,
        }
        if let Some(ns) = record.upstream_duration_ns {
            self.upstream_latency.record(ns / 1000);
        }
        self.bytes_sent += record.bytes_sent.unwrap_or(0);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        if other.requests == 0 {
            return;
        }
        if self.requests == 0 || other.first_seen < self.first_seen {
            self.first_seen = other.first_seen;
        }
        self.requests += other.requests;
        for (mine, theirs) in self.status_classes.iter_mut().zip(other.status_classes) {
            *mine += theirs;
        }
        self.latency.merge(&other.latency);
        self.latency_missing += other.latency_missing;
        self.upstream_latency.merge(&other.upstream_latency);
        self.bytes_sent += other.bytes_sent;
        for theirs in &other.codes {
            match self
                .codes
                .iter_mut()
                .find(|c| c.code == theirs.code && c.method == theirs.method)
            {
                Some(mine) => mine.count += theirs.count,
                None => self.codes.push(theirs.clone()),
            }
        }
        self.codes.sort();
    }
}

/// A group key: one value per dimension, in the configured order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKey(pub Vec<String>);

/// What a stream of lines amounts to; see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The dimensions of the group keys.
    pub group_by: Vec<Dimension>,
    /// Line accounting.
    pub lines: LineCounts,
    /// The first malformed lines.
    pub malformed_samples: Vec<MalformedSample>,
    /// Earliest request timestamp, ns since the epoch.
    pub first_timestamp: Option<i64>,
    /// Latest request timestamp, ns since the epoch.
    pub last_timestamp: Option<i64>,
    /// Requests by exact status code (`-1` and `0` included as logged).
    pub statuses: BTreeMap<i16, u64>,
    /// Requests per second of the log's own timestamps.
    pub timeline: BTreeMap<i64, u64>,
    /// Per group.
    #[serde(with = "groups_as_list")]
    pub groups: HashMap<GroupKey, GroupStats>,
}

impl Aggregate {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self, max_samples: usize) {
        self.merge_counts(other, max_samples);
        for (key, stats) in &other.groups {
            self.groups.entry(key.clone()).or_default().merge(stats);
        }
    }

    /// Adds everything of `other` but its groups.
    fn merge_counts(&mut self, other: &Self, max_samples: usize) {
        self.lines.total += other.lines.total;
        self.lines.parsed += other.lines.parsed;
        self.lines.malformed += other.lines.malformed;
        self.lines.filtered += other.lines.filtered;
        self.malformed_samples
            .extend(other.malformed_samples.iter().cloned());
        self.malformed_samples.sort_by_key(|sample| sample.position);
        self.malformed_samples.truncate(max_samples);
        self.first_timestamp = min_option(self.first_timestamp, other.first_timestamp);
        self.last_timestamp = self.last_timestamp.max(other.last_timestamp);
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        for (second, count) in &other.timeline {
            *self.timeline.entry(*second).or_default() += count;
        }
    }

    /// Applies the group cap: keeps the `max_groups` groups first seen earliest, in line order,
    /// and folds the others into one group whose every dimension is `(overflow)`.
    pub fn finish(&mut self, max_groups: usize) {
        if self.groups.len() <= max_groups {
            return;
        }
        let mut groups: Vec<_> = self.groups.drain().collect();
        groups.sort_by(|a, b| (a.1.first_seen, &a.0).cmp(&(b.1.first_seen, &b.0)));
        let overflow_key = GroupKey(vec![OVERFLOW_ROUTE.to_owned(); self.group_by.len()]);
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
            (Some(first), Some(last)) => ((last - first) as f64 / 1e9).max(1.0),
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

/// Groups serialise as a list of `{key, stats}`: their keys are not strings.
mod groups_as_list {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{GroupKey, GroupStats};

    #[derive(Serialize, Deserialize)]
    struct Entry<K, S> {
        key: K,
        stats: S,
    }

    pub(super) fn serialize<S: Serializer>(
        groups: &HashMap<GroupKey, GroupStats>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serialize_pairs(groups.iter(), serializer)
    }

    /// Groups as the sorted list of `{key, stats}`, from borrowed pairs.
    pub(super) fn serialize_pairs<'a, K, S>(
        groups: impl Iterator<Item = (K, &'a GroupStats)>,
        serializer: S,
    ) -> Result<S::Ok, S::Error>
    where
        K: std::borrow::Borrow<GroupKey> + Serialize,
        S: Serializer,
    {
        let mut entries: Vec<_> = groups.map(|(key, stats)| Entry { key, stats }).collect();
        entries.sort_by(|a, b| a.key.borrow().cmp(b.key.borrow()));
        entries.serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<HashMap<GroupKey, GroupStats>, D::Error> {
        let entries = Vec::<Entry<GroupKey, GroupStats>>::deserialize(deserializer)?;
        Ok(entries.into_iter().map(|e| (e.key, e.stats)).collect())
    }
}

/// Turns lines into an [`Aggregate`], reusing its buffers: no allocation per line once the
/// groups are known.
#[derive(Debug)]
pub struct Aggregator<'c> {
    config: &'c AggregateConfig,
    aggregate: Aggregate,
    /// Groups keyed by their encoded key (each value length-prefixed), for lookups by bytes.
    groups: HashMap<Box<[u8]>, GroupStats, foldhash::fast::RandomState>,
    /// New groups past this many go to the overflow group.
    group_limit: usize,
    statuses: Vec<u64>,
    key: Vec<u8>,
    route: Vec<u8>,
    second: Option<(i64, u64)>,
}

type EncodedGroups = HashMap<Box<[u8]>, GroupStats, foldhash::fast::RandomState>;

/// What an [`Aggregator`] made of one chunk of lines, to be [absorbed](Aggregator::absorb) in
/// chunk order by another.
#[derive(Debug, Default)]
pub struct ChunkAggregate {
    groups: EncodedGroups,
    counts: Aggregate,
}

/// An aggregator serialises exactly as the [`Aggregate`] it would return, without copying its
/// histograms: what `serve` writes into checkpoints and snapshots.
impl Serialize for Aggregator<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The fields of [`Aggregate`], borrowed.
        #[derive(Serialize)]
        struct Shape<'a> {
            group_by: &'a [Dimension],
            lines: LineCounts,
            malformed_samples: &'a [MalformedSample],
            first_timestamp: Option<i64>,
            last_timestamp: Option<i64>,
            statuses: BTreeMap<i16, u64>,
            timeline: BTreeMap<i64, u64>,
            groups: Groups<'a>,
        }
        struct Groups<'a>(&'a EncodedGroups);
        impl Serialize for Groups<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                groups_as_list::serialize_pairs(
                    self.0.iter().map(|(key, stats)| (decode_key(key), stats)),
                    serializer,
                )
            }
        }
        let mut counts = Aggregate {
            statuses: self.aggregate.statuses.clone(),
            timeline: self.aggregate.timeline.clone(),
            ..Aggregate::default()
        };
        if let Some((second, count)) = self.second {
            *counts.timeline.entry(second).or_default() += count;
        }
        fold_statuses(&self.statuses, &mut counts);
        Shape {
            group_by: &self.aggregate.group_by,
            lines: self.aggregate.lines,
            malformed_samples: &self.aggregate.malformed_samples,
            first_timestamp: self.aggregate.first_timestamp,
            last_timestamp: self.aggregate.last_timestamp,
            statuses: counts.statuses,
            timeline: counts.timeline,
            groups: Groups(&self.groups),
        }
        .serialize(serializer)
    }
}

/// Status codes counted in [`Aggregator::statuses`] directly: `-1` to `999`.
const STATUS_SLOTS: usize = 1001;

impl<'c> Aggregator<'c> {
    /// An empty aggregator.
    pub fn new(config: &'c AggregateConfig) -> Self {
        Self {
            config,
            aggregate: Aggregate {
                group_by: config.group_by.clone(),
                ..Aggregate::default()
            },
            groups: HashMap::default(),
            group_limit: config.max_groups.saturating_mul(LOCAL_GROUP_FACTOR),
            statuses: vec![0; STATUS_SLOTS],
            key: Vec::new(),
            route: Vec::new(),
            second: None,
        }
    }

    /// Accounts for one line of the input (without its line ending).
    #[inline]
    pub fn add_line(&mut self, position: LinePosition, line: &[u8]) {
        self.add_line_with(position, line, |_, _| {});
    }

    /// As [`add_line`](Self::add_line), and calls `each` with the request's record and its
    /// encoded group key when the line is one (for live windows and watches).
    #[inline]
    pub fn add_line_with(
        &mut self,
        position: LinePosition,
        line: &[u8],
        each: impl FnOnce(&Record<'_>, &[u8]),
    ) {
        self.aggregate.lines.total += 1;
        match self.config.format.parse(line) {
            Ok(Parsed::Record(record)) => {
                self.aggregate.lines.parsed += 1;
                let key = self.add_record(position, &record);
                each(&record, key);
            }
            Ok(Parsed::Filtered(_)) => self.aggregate.lines.filtered += 1,
            Err(error) => self.malformed(position, line, &error),
        }
    }

    /// Accounts for a line longer than the reader's limit, of which only `prefix` was kept.
    pub fn add_too_long(&mut self, position: LinePosition, prefix: &[u8], limit: usize) {
        self.aggregate.lines.total += 1;
        self.malformed(
            position,
            prefix,
            &format_args!("line longer than {limit} bytes"),
        );
    }

    /// Counts a line that could not be parsed, keeping it as a sample while there is room.
    fn malformed(&mut self, position: LinePosition, line: &[u8], error: &dyn fmt::Display) {
        self.aggregate.lines.malformed += 1;
        if self.aggregate.malformed_samples.len() < self.config.malformed_samples {
            let text = &line[..line.len().min(MAX_SAMPLE_BYTES)];
            self.aggregate.malformed_samples.push(MalformedSample {
                position,
                text: String::from_utf8_lossy(text).into_owned(),
                error: error.to_string(),
            });
        }
    }

    /// Counts one request record; returns its encoded group key (see [`decode_key`]).
    pub fn add_record(&mut self, position: LinePosition, record: &Record<'_>) -> &[u8] {
        self.encode_key(record);
        let count_codes = self.config.count_codes;
        let stats = match self.groups.get_mut(&self.key[..]) {
            Some(stats) => stats,
            None => self.new_group(position),
        };
        stats.add(record, count_codes);
        let status = record.status.map_or(-1, |status| status.code());
        match usize::try_from(i32::from(status) + 1) {
            Ok(slot) if slot < STATUS_SLOTS => self.statuses[slot] += 1,
            _ => *self.aggregate.statuses.entry(status).or_default() += 1,
        }
        if let Some(timestamp) = record.timestamp {
            let nanos = timestamp.unix_nanos();
            if self.config.timeline {
                self.count_second(timestamp.unix_secs());
            }
            self.aggregate.first_timestamp =
                min_option(self.aggregate.first_timestamp, Some(nanos));
            self.aggregate.last_timestamp = self.aggregate.last_timestamp.max(Some(nanos));
        }
        &self.key
    }

    #[cold]
    fn new_group(&mut self, position: LinePosition) -> &mut GroupStats {
        if self.groups.len() >= self.group_limit {
            self.key.clear();
            for _ in &self.config.group_by {
                push_value(&mut self.key, OVERFLOW_ROUTE.as_bytes());
            }
        }
        self.groups
            .entry(self.key.clone().into_boxed_slice())
            .or_insert_with(|| GroupStats {
                first_seen: position,
                ..GroupStats::default()
            })
    }

    /// Lines are mostly in time order: count the current second in place.
    fn count_second(&mut self, second: i64) {
        match &mut self.second {
            Some((current, count)) if *current == second => *count += 1,
            slot => {
                if let Some((previous, count)) = slot.take() {
                    *self.aggregate.timeline.entry(previous).or_default() += count;
                }
                *slot = Some((second, 1));
            }
        }
    }

    fn encode_key(&mut self, record: &Record<'_>) {
        self.key.clear();
        for dimension in &self.config.group_by {
            let value: &[u8] = match dimension {
                Dimension::Router => record.router.as_deref().unwrap_or(ABSENT.as_bytes()),
                Dimension::Service => record.service.as_deref().unwrap_or(ABSENT.as_bytes()),
                Dimension::Host => record.host.as_deref().unwrap_or(ABSENT.as_bytes()),
                Dimension::Method => record.method.as_deref().unwrap_or(ABSENT.as_bytes()),
                Dimension::Route => {
                    self.config
                        .routes
                        .route_into(record.target.as_deref(), &mut self.route);
                    &self.route
                }
                Dimension::Status => {
                    let code = record.status.map_or(-1, |status| status.code());
                    push_value(&mut self.key, itoa::Buffer::new().format(code).as_bytes());
                    continue;
                }
            };
            push_value(&mut self.key, value);
        }
    }

    /// An aggregator that goes on from `aggregate` (restored from a checkpoint): what it
    /// returns later includes everything `aggregate` holds.
    pub fn resume(config: &'c AggregateConfig, aggregate: Aggregate) -> Self {
        let mut aggregator = Self::new(config);
        aggregator.aggregate = Aggregate {
            groups: HashMap::new(),
            group_by: config.group_by.clone(),
            ..aggregate.clone()
        };
        for (key, stats) in aggregate.groups {
            let mut encoded = Vec::new();
            for value in &key.0 {
                push_value(&mut encoded, value.as_bytes());
            }
            aggregator.groups.insert(encoded.into_boxed_slice(), stats);
        }
        aggregator
    }

    /// An aggregator of one chunk at a time for the parallel pipeline: it creates every group
    /// its chunk holds (a chunk is bounded, so is its memory), and the cap is applied when the
    /// chunks are [absorbed](Self::absorb) in order, exactly as one aggregator reading every
    /// line in order would apply it.
    pub fn for_chunks(config: &'c AggregateConfig) -> Self {
        Self {
            group_limit: usize::MAX,
            ..Self::new(config)
        }
    }

    /// Takes what the lines added since the last call amount to, leaving the aggregator empty.
    pub fn take_chunk(&mut self) -> ChunkAggregate {
        let mut counts = std::mem::replace(
            &mut self.aggregate,
            Aggregate {
                group_by: self.config.group_by.clone(),
                ..Aggregate::default()
            },
        );
        if let Some((second, count)) = self.second.take() {
            *counts.timeline.entry(second).or_default() += count;
        }
        fold_statuses(&self.statuses, &mut counts);
        self.statuses.iter_mut().for_each(|count| *count = 0);
        ChunkAggregate {
            groups: std::mem::take(&mut self.groups),
            counts,
        }
    }

    /// Adds a chunk's aggregate. Chunks absorbed in line order give exactly what this
    /// aggregator would have made of their lines itself: new groups are admitted in the order
    /// of their first line, up to the same limit.
    pub fn absorb(&mut self, chunk: ChunkAggregate) {
        self.aggregate
            .merge_counts(&chunk.counts, self.config.malformed_samples);
        let mut groups: Vec<_> = chunk.groups.into_iter().collect();
        groups.sort_by_key(|(_, stats)| stats.first_seen);
        for (key, stats) in groups {
            if let Some(mine) = self.groups.get_mut(&key) {
                mine.merge(&stats);
            } else if self.groups.len() < self.group_limit {
                self.groups.insert(key, stats);
            } else {
                let mut overflow = Vec::new();
                for _ in &self.config.group_by {
                    push_value(&mut overflow, OVERFLOW_ROUTE.as_bytes());
                }
                self.groups
                    .entry(overflow.into_boxed_slice())
                    .or_default()
                    .merge(&stats);
            }
        }
    }

    /// Makes the group cap exact as lines come: past [`AggregateConfig::max_groups`] groups,
    /// new ones go straight to `(overflow)` (for one aggregator that reads every line in
    /// order, as `serve` does; [`Aggregate::finish`] then has nothing to fold).
    pub fn with_exact_cap(mut self) -> Self {
        self.group_limit = self.config.max_groups;
        self
    }

    /// Every group, decoded, with its statistics, borrowed (for exports that must not copy
    /// the histograms).
    pub fn groups(&self) -> impl Iterator<Item = (GroupKey, &GroupStats)> {
        self.groups
            .iter()
            .map(|(key, stats)| (decode_key(key), stats))
    }

    /// The line accounting so far.
    pub fn lines(&self) -> LineCounts {
        self.aggregate.lines
    }

    /// The latest request timestamp so far, ns since the epoch.
    pub fn last_timestamp(&self) -> Option<i64> {
        self.aggregate.last_timestamp
    }

    /// What [`into_aggregate`](Self::into_aggregate) would return now, leaving the aggregator
    /// as it is (for live exports and checkpoints).
    pub fn snapshot(&self) -> Aggregate {
        let mut aggregate = self.aggregate.clone();
        if let Some((second, count)) = self.second {
            *aggregate.timeline.entry(second).or_default() += count;
        }
        fold_statuses(&self.statuses, &mut aggregate);
        for (key, stats) in &self.groups {
            aggregate
                .groups
                .entry(decode_key(key))
                .or_default()
                .merge(stats);
        }
        aggregate
    }

    /// The aggregate of every line added, groups decoded, cap not yet applied (see
    /// [`Aggregate::finish`]).
    pub fn into_aggregate(mut self) -> Aggregate {
        if let Some((second, count)) = self.second.take() {
            *self.aggregate.timeline.entry(second).or_default() += count;
        }
        fold_statuses(&self.statuses, &mut self.aggregate);
        for (key, stats) in self.groups {
            self.aggregate
                .groups
                .entry(decode_key(&key))
                .or_default()
                .merge(&stats);
        }
        self.aggregate
    }
}

/// Adds the per-slot status counts into the aggregate's map.
fn fold_statuses(slots: &[u64], aggregate: &mut Aggregate) {
    for (slot, count) in slots.iter().enumerate() {
        if *count > 0 {
            let status = slot as i16 - 1;
            *aggregate.statuses.entry(status).or_default() += count;
        }
    }
}

/// Appends one key value, length-prefixed (values longer than 64 KiB are cut).
fn push_value(key: &mut Vec<u8>, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX))];
    key.extend_from_slice(&(value.len() as u16).to_le_bytes());
    key.extend_from_slice(value);
}

/// The values of an encoded group key, borrowed, without decoding them.
pub fn key_values(mut key: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let [low, high, rest @ ..] = key else {
            return None;
        };
        let len = usize::from(u16::from_le_bytes([*low, *high])).min(rest.len());
        let (value, after) = rest.split_at(len);
        key = after;
        Some(value)
    })
}

/// The values of an encoded group key, as [`Aggregator::add_record`] returns it.
pub fn decode_key(key: &[u8]) -> GroupKey {
    GroupKey(
        key_values(key)
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &[&str] = &[
        r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /users/42 HTTP/1.1" 200 512 "-" "-" 1 "users@docker" "http://10.0.0.7:80" 12ms"#,
        r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /users/43 HTTP/1.1" 503 10 "-" "-" 2 "users@docker" "http://10.0.0.7:80" 30ms"#,
        "garbage",
        r#"10.0.0.1 - - [09/Mar/2025:12:00:02 +0000] "POST /orders HTTP/1.1" 201 0 "-" "-" 3 "orders@docker" "http://10.0.0.8:80" 5ms"#,
    ];

    fn aggregate(config: &AggregateConfig, lines: &[&str]) -> Aggregate {
        let mut aggregator = Aggregator::new(config);
        for (n, line) in lines.iter().enumerate() {
            aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
        }
        let mut aggregate = aggregator.into_aggregate();
        aggregate.finish(config.max_groups);
        aggregate
    }

    fn key(values: &[&str]) -> GroupKey {
        GroupKey(values.iter().map(|v| (*v).to_owned()).collect())
    }

    #[test]
    fn every_line_is_accounted_and_grouped_by_router() {
        let config = AggregateConfig::new(Format::TraefikCommon);
        let aggregate = aggregate(&config, LINES);
        assert_eq!(
            aggregate.lines,
            LineCounts {
                total: 4,
                parsed: 3,
                malformed: 1,
                filtered: 0
            }
        );
        assert_eq!(
            aggregate.malformed_samples[0].position,
            LinePosition::new(0, 3)
        );
        assert_eq!(aggregate.malformed_samples[0].text, "garbage");
        let users = &aggregate.groups[&key(&["users@docker"])];
        assert_eq!(users.requests, 2);
        assert_eq!(users.status_classes, [0, 1, 0, 0, 1, 0]);
        assert_eq!(users.latency.max(), 30_000);
        assert_eq!(users.latency.min(), 12_000);
        assert_eq!(aggregate.groups[&key(&["orders@docker"])].requests, 1);
        assert_eq!(
            aggregate.statuses,
            BTreeMap::from([(200, 1), (201, 1), (503, 1)])
        );
        assert_eq!(
            aggregate.timeline,
            BTreeMap::from([(1_741_521_600, 2), (1_741_521_602, 1)])
        );
        assert_eq!(aggregate.seconds(), 2.0);
        assert_eq!(aggregate.total().requests, 3);
    }

    #[test]
    fn groups_combine_dimensions() {
        let mut config = AggregateConfig::new(Format::TraefikCommon);
        config.group_by = vec![Dimension::Route, Dimension::Method, Dimension::Status];
        let aggregate = aggregate(&config, LINES);
        let mut keys: Vec<_> = aggregate.groups.keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                key(&["/orders", "POST", "201"]),
                key(&["/users/{id}", "GET", "200"]),
                key(&["/users/{id}", "GET", "503"]),
            ]
        );
    }

    #[test]
    fn the_cap_keeps_the_groups_seen_first_and_folds_the_rest() {
        let mut config = AggregateConfig::new(Format::TraefikCommon);
        config.max_groups = 1;
        let aggregate = aggregate(&config, LINES);
        assert_eq!(aggregate.groups.len(), 2);
        assert_eq!(aggregate.groups[&key(&["users@docker"])].requests, 2);
        assert_eq!(aggregate.groups[&key(&["(overflow)"])].requests, 1);
    }

    #[test]
    fn merged_halves_equal_the_whole() {
        let config = AggregateConfig::new(Format::TraefikCommon);
        let whole = aggregate(&config, LINES);
        let mut first = Aggregator::new(&config);
        let mut second = Aggregator::new(&config);
        for (n, line) in LINES.iter().enumerate() {
            let half = if n % 2 == 0 { &mut first } else { &mut second };
            half.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
        }
        let mut merged = first.into_aggregate();
        merged.merge(&second.into_aggregate(), config.malformed_samples);
        merged.finish(config.max_groups);
        assert_eq!(merged, whole);
    }

    #[test]
    fn a_resumed_aggregator_goes_on_from_its_snapshot() {
        let mut config = AggregateConfig::new(Format::TraefikCommon);
        config.count_codes = true;
        let whole = aggregate(&config, LINES);
        let mut first = Aggregator::new(&config);
        for (n, line) in LINES[..2].iter().enumerate() {
            first.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
        }
        let checkpoint: Aggregate =
            serde_json::from_str(&serde_json::to_string(&first.snapshot()).expect("json"))
                .expect("json");
        let mut resumed = Aggregator::resume(&config, checkpoint);
        for (n, line) in LINES.iter().enumerate().skip(2) {
            resumed.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
        }
        assert_eq!(resumed.snapshot(), resumed.snapshot());
        let mut got = resumed.into_aggregate();
        got.finish(config.max_groups);
        assert_eq!(got, whole);
        assert_eq!(
            got.groups[&key(&["users@docker"])].codes,
            [
                CodeCount {
                    method: "GET".to_owned(),
                    code: 200,
                    count: 1
                },
                CodeCount {
                    method: "GET".to_owned(),
                    code: 503,
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn an_aggregator_serialises_as_its_aggregate() {
        let config = AggregateConfig::new(Format::TraefikCommon);
        let mut aggregator = Aggregator::new(&config);
        for (n, line) in LINES.iter().enumerate() {
            aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
        }
        let direct = serde_json::to_value(&aggregator).expect("serialises");
        let copied = serde_json::to_value(aggregator.snapshot()).expect("serialises");
        assert_eq!(direct, copied);
    }

    #[test]
    fn keys_survive_any_bytes() {
        let mut key_bytes = Vec::new();
        push_value(&mut key_bytes, b"a\x00b");
        push_value(&mut key_bytes, b"");
        push_value(&mut key_bytes, "é".as_bytes());
        assert_eq!(decode_key(&key_bytes), key(&["a\u{0}b", "", "é"]));
    }

    #[test]
    fn dimensions_parse_by_name() {
        assert_eq!("route".parse::<Dimension>(), Ok(Dimension::Route));
        assert_eq!(
            "path".parse::<Dimension>().unwrap_err().to_string(),
            "unknown group dimension \"path\" (known: router, route, service, host, method, status)"
        );
    }

    #[test]
    fn an_aggregate_round_trips_through_json() {
        let config = AggregateConfig::new(Format::TraefikCommon);
        let aggregate = aggregate(&config, LINES);
        let json = serde_json::to_string(&aggregate).expect("serialises");
        let back: Aggregate = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, aggregate);
    }
}

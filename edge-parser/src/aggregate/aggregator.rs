//! [`Aggregator`]: the hot path from a line to the [`Aggregate`]: parse, build the group key in a
//! reused buffer, count. No allocation per line once the groups are known.

use std::fmt;

use super::key::KeyBuilder;
use super::{
    ABSENT, Aggregate, AggregateConfig, Dimension, GroupKey, GroupStats, LinePosition,
    MAX_SAMPLE_BYTES, MalformedSample, min_option,
};
use crate::format::{Parsed, Record};
use crate::route::RouteRules;

/// Each aggregator creates at most this many times [`AggregateConfig::max_groups`] groups.
const LOCAL_GROUP_FACTOR: usize = 4;

/// Turns lines into an [`Aggregate`]; see the [module docs](super).
#[derive(Debug)]
pub struct Aggregator<'c> {
    pub(super) config: &'c AggregateConfig,
    pub(super) aggregate: Aggregate,
    /// New groups past this many go to the overflow group.
    pub(super) group_limit: usize,
    key: KeyBuilder,
    route: Vec<u8>,
    /// Route rules that replace the configuration's (templates learned while running).
    routes: Option<RouteRules>,
}

impl<'c> Aggregator<'c> {
    /// An empty aggregator.
    pub fn new(config: &'c AggregateConfig) -> Self {
        Self {
            config,
            aggregate: Aggregate::new(config.group_by.clone()),
            group_limit: config.max_groups.saturating_mul(LOCAL_GROUP_FACTOR),
            key: KeyBuilder::default(),
            route: Vec::new(),
            routes: None,
        }
    }

    /// An aggregator that goes on from `aggregate` (restored from a checkpoint): what it
    /// returns later includes everything `aggregate` holds.
    pub fn resume(config: &'c AggregateConfig, aggregate: Aggregate) -> Self {
        let mut aggregator = Self::new(config);
        aggregator.aggregate = Aggregate {
            group_by: config.group_by.clone(),
            ..aggregate
        };
        aggregator
    }

    /// Makes the group cap exact as lines come: past [`AggregateConfig::max_groups`] groups,
    /// new ones go straight to `(overflow)` (for one aggregator that reads every line in
    /// order, as `serve` does; [`Aggregate::finish`] then has nothing to fold).
    #[must_use]
    pub fn with_exact_cap(mut self) -> Self {
        self.group_limit = self.config.max_groups;
        self
    }

    /// Routes the lines that come next by `rules` instead of the configuration's (`serve`,
    /// when it learns a service's route templates). Groups made before keep their routes.
    pub fn set_routes(&mut self, rules: RouteRules) {
        self.routes = Some(rules);
    }

    /// The route rules in use.
    pub fn routes(&self) -> &RouteRules {
        self.routes.as_ref().unwrap_or(&self.config.routes)
    }

    /// Accounts for one line of the input (without its line ending).
    #[inline]
    pub fn add_line(&mut self, position: LinePosition, line: &[u8]) {
        self.add_line_with(position, line, |_, _| {});
    }

    /// As [`add_line`](Self::add_line), and calls `each` with the request's record and its
    /// encoded group key when the line is one (for live windows and watches).
    #[inline]
    pub(crate) fn add_line_with(
        &mut self,
        position: LinePosition,
        line: &[u8],
        each: impl FnOnce(&Record<'_>, &[u8]),
    ) {
        let lines = &mut self.aggregate.lines;
        lines.total = lines.total.saturating_add(1);
        match self.config.format.parse(line) {
            Ok(Parsed::Record(record)) => {
                let lines = &mut self.aggregate.lines;
                lines.parsed = lines.parsed.saturating_add(1);
                let key = self.add_record(position, &record);
                each(&record, key);
            }
            Ok(Parsed::Filtered(_)) => {
                let lines = &mut self.aggregate.lines;
                lines.filtered = lines.filtered.saturating_add(1);
            }
            Err(error) => self.malformed(position, line, &error),
        }
    }

    /// Accounts for a line longer than the reader's limit, of which only `prefix` was kept.
    pub fn add_too_long(&mut self, position: LinePosition, prefix: &[u8], limit: usize) {
        let lines = &mut self.aggregate.lines;
        lines.total = lines.total.saturating_add(1);
        self.malformed(
            position,
            prefix,
            &format_args!("line longer than {limit} bytes"),
        );
    }

    /// Counts a line that could not be parsed, keeping it as a sample while there is room.
    fn malformed(&mut self, position: LinePosition, line: &[u8], error: &dyn fmt::Display) {
        let lines = &mut self.aggregate.lines;
        lines.malformed = lines.malformed.saturating_add(1);
        if self.aggregate.malformed_samples.len() < self.config.malformed_samples {
            let text = &line[..line.len().min(MAX_SAMPLE_BYTES)];
            self.aggregate.malformed_samples.push(MalformedSample {
                position,
                text: String::from_utf8_lossy(text).into_owned(),
                error: error.to_string(),
            });
        }
    }

    /// Counts one request record; returns its encoded group key.
    fn add_record(&mut self, position: LinePosition, record: &Record<'_>) -> &[u8] {
        self.encode_key(record);
        let count_codes = self.config.count_codes;
        let stats = match self.aggregate.groups.get_mut(self.key.as_bytes()) {
            Some(stats) => stats,
            None => self.new_group(position),
        };
        stats.add(record, count_codes);
        let aggregate = &mut self.aggregate;
        aggregate
            .statuses
            .add(record.status.map_or(-1, |status| status.code()), 1);
        if let Some(timestamp) = record.timestamp {
            let nanos = timestamp.unix_nanos();
            if self.config.timeline {
                aggregate.timeline.add(timestamp.unix_secs(), 1);
            }
            aggregate.first_timestamp = min_option(aggregate.first_timestamp, Some(nanos));
            aggregate.last_timestamp = aggregate.last_timestamp.max(Some(nanos));
        }
        self.key.as_bytes()
    }

    /// The group of a key not found as logged: made text first (it may then be known).
    #[cold]
    fn new_group(&mut self, position: LinePosition) -> &mut GroupStats {
        self.key.make_text();
        let groups = &mut self.aggregate.groups;
        if !groups.contains_key(self.key.as_bytes()) && groups.len() >= self.group_limit {
            self.key.overflow(self.config.group_by.len());
        }
        groups
            .entry(GroupKey::from_encoded(self.key.as_bytes()))
            .or_insert_with(|| GroupStats {
                first_seen: position,
                ..GroupStats::default()
            })
    }

    fn encode_key(&mut self, record: &Record<'_>) {
        let absent = ABSENT.as_bytes();
        self.key.clear();
        for dimension in &self.config.group_by {
            match dimension {
                Dimension::Router => self.key.push(record.router.as_deref().unwrap_or(absent)),
                Dimension::Service => self.key.push(record.service.as_deref().unwrap_or(absent)),
                Dimension::Host => self.key.push(record.host.as_deref().unwrap_or(absent)),
                Dimension::Method => self.key.push(record.method.as_deref().unwrap_or(absent)),
                Dimension::Route => {
                    let rules = self.routes.as_ref().unwrap_or(&self.config.routes);
                    rules.route_into(record.target.as_deref(), &mut self.route);
                    self.key.push(&self.route);
                }
                Dimension::Status => {
                    let code = record.status.map_or(-1, |status| status.code());
                    self.key.push(itoa::Buffer::new().format(code).as_bytes());
                }
            }
        }
    }

    /// The aggregate so far, borrowed (for live exports and checkpoints).
    pub fn aggregate(&self) -> &Aggregate {
        &self.aggregate
    }

    /// The aggregate of every line added, cap not yet applied (see [`Aggregate::finish`]).
    pub fn into_aggregate(self) -> Aggregate {
        self.aggregate
    }

    /// The aggregate of every line added, with the group cap applied.
    pub fn finish(self) -> Aggregate {
        let max_groups = self.config.max_groups;
        let mut aggregate = self.aggregate;
        aggregate.finish(max_groups);
        aggregate
    }
}

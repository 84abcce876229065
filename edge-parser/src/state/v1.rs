//! Version 1 of the persisted state: the JSON shape of the first checkpoints, kept as it was,
//! written straight from the live state and read back through every rule of the
//! [module docs](super).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use vantage_instrument::names::OTHER_METHOD;

use super::{EdgeState, Health, Limits};
use crate::aggregate::{
    Aggregate, CodeCount, Dimension, GroupKey, GroupStats, LineCounts, LinePosition,
    MAX_SAMPLE_BYTES, MalformedSample, StatusClasses, UpstreamCounts, method_label,
};
use crate::bounded;
use crate::format::Status;
use crate::histogram::LatencyHistogram;

/// Malformed samples in a state at most, whatever the configuration.
const MAX_SAMPLES: usize = 1 << 10;
/// Bytes of a sample's text at most: [`MAX_SAMPLE_BYTES`] of a line, each byte that is not
/// UTF-8 replaced by the three bytes of U+FFFD.
const MAX_SAMPLE_TEXT_BYTES: usize = 3 * MAX_SAMPLE_BYTES;
/// Bytes of a sample's error at most (parse errors are a few words).
const MAX_SAMPLE_ERROR_BYTES: usize = 1 << 10;
/// Seconds in a timeline at most (`serve` keeps none).
const MAX_TIMELINE_SECONDS: usize = 1 << 20;
/// Status codes are `i16`.
const MAX_STATUSES: usize = 1 << 16;
/// Bytes of one value of a group key at most: what [`GroupKey`] keeps.
const MAX_KEY_VALUE_BYTES: usize = u16::MAX as usize;

/// The state. Written with its groups (`G` = `Vec<GroupV1>`); read with them left as JSON
/// (`G` = `&RawValue`) until their number is known to be within [`Limits::groups`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct State<'a, G = Vec<GroupV1<'a>>> {
    aggregate: AggregateV1<'a, G>,
    health: Cow<'a, Health>,
    sequence: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateV1<'a, G> {
    #[serde(deserialize_with = "group_by")]
    group_by: Vec<Dimension>,
    lines: LineCounts,
    #[serde(deserialize_with = "samples")]
    malformed_samples: Cow<'a, [MalformedSample]>,
    first_timestamp: Option<i64>,
    last_timestamp: Option<i64>,
    #[serde(deserialize_with = "statuses")]
    statuses: BTreeMap<i16, u64>,
    #[serde(deserialize_with = "timeline")]
    timeline: BTreeMap<i64, u64>,
    groups: G,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupV1<'a> {
    #[serde(deserialize_with = "key")]
    key: Vec<Cow<'a, str>>,
    stats: StatsV1<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Absent from checkpoints written before it was counted, and when nothing was.
    #[serde(default, skip_serializing_if = "UpstreamCounts::is_empty")]
    upstream: UpstreamCounts,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeV1<'a> {
    method: Cow<'a, str>,
    code: i16,
    count: u64,
}

fn group_by<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Dimension>, D::Error> {
    bounded::seq(deserializer, Dimension::ALL.len(), "dimensions in group_by")
}

fn samples<'de, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Cow<'a, [MalformedSample]>, D::Error> {
    bounded::seq(deserializer, MAX_SAMPLES, "malformed samples").map(Cow::Owned)
}

fn statuses<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<i16, u64>, D::Error> {
    bounded::map(deserializer, MAX_STATUSES, "statuses")
}

fn timeline<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<i64, u64>, D::Error> {
    bounded::map(deserializer, MAX_TIMELINE_SECONDS, "timeline")
}

fn key<'de, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Cow<'a, str>>, D::Error> {
    bounded::seq(deserializer, Dimension::ALL.len(), "values in a group key")
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
}

/// Reads a state from its JSON text within `limits`, every rule checked; the error is the
/// reason it is refused.
pub(crate) fn parse(json: &str, limits: Limits) -> Result<EdgeState, String> {
    let state: State<'_, &RawValue> =
        serde_json::from_str(json).map_err(|error| format!("its state: {error}"))?;
    let saved = state.aggregate;
    check_lines(&saved, state.sequence, limits)?;
    let mut aggregate = Aggregate::new(saved.group_by);
    aggregate.lines = saved.lines;
    aggregate.malformed_samples = saved.malformed_samples.into_owned();
    aggregate.first_timestamp = saved.first_timestamp;
    aggregate.last_timestamp = saved.last_timestamp;
    aggregate.statuses = saved.statuses.iter().map(|(&code, &n)| (code, n)).collect();
    aggregate.timeline = saved.timeline.into_iter().collect();

    let groups: Vec<&RawValue> = bounded::seq(
        &mut serde_json::Deserializer::from_str(saved.groups.get()),
        limits.groups,
        "groups",
    )
    .map_err(|error| format!("its groups: {error}"))?;
    let mut totals = Totals::default();
    for (n, group) in groups.into_iter().enumerate() {
        let group: GroupV1<'_> =
            serde_json::from_str(group.get()).map_err(|error| format!("groups[{n}]: {error}"))?;
        if let Some(long) = group.key.iter().find(|v| v.len() > MAX_KEY_VALUE_BYTES) {
            return Err(format!(
                "groups[{n}]: a key value of {} bytes, more than {MAX_KEY_VALUE_BYTES}",
                long.len()
            ));
        }
        let named = |reason: String| format!("group {:?}: {reason}", group.key);
        if group.key.len() != aggregate.group_by.len() {
            return Err(named(format!(
                "it has {} values, the grouping {:?} has {}",
                group.key.len(),
                aggregate.group_by,
                aggregate.group_by.len()
            )));
        }
        let key = GroupKey::new(&group.key);
        let stats = group
            .stats
            .into_stats(state.sequence, limits)
            .map_err(named)?;
        totals.add(&stats).map_err(named)?;
        if aggregate.groups.insert(key, stats).is_some() {
            return Err(named("it appears twice".to_owned()));
        }
    }
    totals.check(&saved.lines, &saved.statuses)?;
    Ok(EdgeState {
        aggregate,
        health: state.health.into_owned(),
        sequence: state.sequence,
    })
}

/// The rules on everything but the groups.
fn check_lines<G>(saved: &AggregateV1<'_, G>, sequence: u64, limits: Limits) -> Result<(), String> {
    let lines = saved.lines;
    let sum = lines
        .parsed
        .checked_add(lines.malformed)
        .and_then(|sum| sum.checked_add(lines.filtered));
    if sum != Some(lines.total) {
        return Err(format!(
            "its {} lines are not its {} parsed, {} malformed and {} filtered",
            lines.total, lines.parsed, lines.malformed, lines.filtered
        ));
    }
    if sequence != lines.total {
        return Err(format!(
            "its sequence {sequence} is not its {} lines",
            lines.total
        ));
    }
    for (n, dimension) in saved.group_by.iter().enumerate() {
        if saved.group_by[..n].contains(dimension) {
            return Err(format!("its grouping names {dimension} twice"));
        }
    }
    check_samples(&saved.malformed_samples, lines.malformed, sequence, limits)?;
    match (saved.first_timestamp, saved.last_timestamp) {
        (Some(first), Some(last)) if first > last => {
            return Err(format!(
                "its first timestamp {first} is after its last {last}"
            ));
        }
        (Some(_), Some(_)) if lines.parsed == 0 => {
            return Err("it has timestamps but no parsed line".to_owned());
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err("it has one of its first and last timestamps, not both".to_owned());
        }
        _ => {}
    }
    let statuses = counted(saved.statuses.values().copied())
        .map_err(|reason| format!("its statuses: {reason}"))?;
    if statuses != lines.parsed {
        return Err(format!(
            "its statuses count {statuses} requests, its parsed lines are {}",
            lines.parsed
        ));
    }
    let timeline = counted(saved.timeline.values().copied())
        .map_err(|reason| format!("its timeline: {reason}"))?;
    if timeline > lines.parsed {
        return Err(format!(
            "its timeline counts {timeline} requests, more than its {} parsed lines",
            lines.parsed
        ));
    }
    Ok(())
}

/// The sum of counts none of which may be zero.
fn counted(mut counts: impl Iterator<Item = u64>) -> Result<u64, String> {
    counts.try_fold(0u64, |sum, count| match count {
        0 => Err("a count of zero".to_owned()),
        count => sum
            .checked_add(count)
            .ok_or_else(|| "counts past 2^64".to_owned()),
    })
}

fn check_samples(
    samples: &[MalformedSample],
    malformed: u64,
    sequence: u64,
    limits: Limits,
) -> Result<(), String> {
    if samples.len() > limits.samples || samples.len() as u64 > malformed {
        return Err(format!(
            "it has {} malformed samples, more than its {malformed} malformed lines or the {} kept",
            samples.len(),
            limits.samples
        ));
    }
    let mut previous = None;
    for sample in samples {
        let position = sample.position;
        if !(1..=sequence).contains(&position.line) {
            return Err(format!(
                "a malformed sample is at line {}, outside its {sequence} lines",
                position.line
            ));
        }
        if previous.is_some_and(|previous| position <= previous) {
            return Err(format!(
                "its malformed samples are out of order at line {}",
                position.line
            ));
        }
        previous = Some(position);
        if sample.text.len() > MAX_SAMPLE_TEXT_BYTES || sample.error.len() > MAX_SAMPLE_ERROR_BYTES
        {
            return Err(format!(
                "the malformed sample at line {} has {} bytes of text and {} of error, more than {MAX_SAMPLE_TEXT_BYTES} and {MAX_SAMPLE_ERROR_BYTES}",
                position.line,
                sample.text.len(),
                sample.error.len()
            ));
        }
    }
    Ok(())
}

/// What the groups add up to, checked against the aggregate's own counts.
#[derive(Default)]
struct Totals {
    requests: u64,
    classes: [u64; 6],
    /// Requests by status code, from the groups' counts by method and code.
    codes: BTreeMap<i16, u64>,
    /// Whether every group counts by method and code.
    all_coded: bool,
    groups: usize,
}

impl Totals {
    fn add(&mut self, stats: &GroupStats) -> Result<(), String> {
        let overflow = || "counts past 2^64 across groups".to_owned();
        self.requests = self
            .requests
            .checked_add(stats.requests)
            .ok_or_else(overflow)?;
        for (total, count) in self.classes.iter_mut().zip(stats.status_classes.counts()) {
            *total = total.checked_add(count).ok_or_else(overflow)?;
        }
        self.all_coded = (self.groups == 0 || self.all_coded) && !stats.codes.is_empty();
        self.groups += 1;
        if self.all_coded {
            for code in &stats.codes {
                let total = self.codes.entry(code.code).or_default();
                *total = total.checked_add(code.count).ok_or_else(overflow)?;
            }
        }
        Ok(())
    }

    fn check(&self, lines: &LineCounts, statuses: &BTreeMap<i16, u64>) -> Result<(), String> {
        if self.requests != lines.parsed {
            return Err(format!(
                "its groups count {} requests, its parsed lines are {}",
                self.requests, lines.parsed
            ));
        }
        let mut classes = [0u64; 6];
        for (&code, &count) in statuses {
            classes[class_index(code)] += count;
        }
        if classes != self.classes {
            return Err(format!(
                "its statuses by class {classes:?} are not its groups' {:?}",
                self.classes
            ));
        }
        if self.all_coded && self.codes != *statuses {
            return Err(format!(
                "its statuses {statuses:?} are not its groups' counts by code {:?}",
                self.codes
            ));
        }
        Ok(())
    }
}

/// Where a status code counts in [`StatusClasses::counts`].
fn class_index(code: i16) -> usize {
    StatusClasses::index(Status::new(code).class())
}

/// Checks that `counts` add up to the group's `requests`; `what` says what they count.
fn adds_up(requests: u64, counts: &[u64], what: &str) -> Result<(), String> {
    let sum = counts
        .iter()
        .try_fold(0u64, |sum, &count| sum.checked_add(count));
    if sum == Some(requests) {
        return Ok(());
    }
    let sum = sum.map_or_else(|| "more than 2^64".to_owned(), |sum| sum.to_string());
    Err(format!("{requests} requests but {sum} {what}"))
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
            upstream: stats.upstream,
        }
    }

    /// The statistics of a group of a state of `sequence` lines, validated.
    fn into_stats(self, sequence: u64, limits: Limits) -> Result<GroupStats, String> {
        if self.requests == 0 {
            return Err("it has no request".to_owned());
        }
        if !(1..=sequence).contains(&self.first_seen.line) {
            return Err(format!(
                "it was first seen at line {}, outside its {sequence} lines",
                self.first_seen.line
            ));
        }
        adds_up(self.requests, &self.status_classes, "by status class")?;
        adds_up(
            self.requests,
            &[self.latency.count(), self.latency_missing],
            "with or without a latency",
        )?;
        if self.upstream_latency.count() > self.requests {
            return Err(format!(
                "{} requests but {} upstream latencies",
                self.requests,
                self.upstream_latency.count()
            ));
        }
        if self.upstream.unforwarded > self.requests {
            return Err(format!(
                "{} requests but {} answered without an upstream",
                self.requests, self.upstream.unforwarded
            ));
        }
        let codes = self.codes()?;
        if limits.codes && codes.is_empty() {
            return Err("it has no counts by method and code".to_owned());
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
            upstream: self.upstream,
        })
    }

    /// The counts by method and code: known methods, each pair once, none zero, adding up to
    /// the requests and to the status classes.
    fn codes(&self) -> Result<Vec<CodeCount>, String> {
        let mut codes = Vec::with_capacity(self.codes.len());
        for code in &self.codes {
            let method = method_label(Some(code.method.as_bytes()));
            if method == OTHER_METHOD && code.method != OTHER_METHOD {
                return Err(format!("unknown method {:?}", code.method));
            }
            if code.count == 0 {
                return Err(format!("{} {} has a count of zero", code.method, code.code));
            }
            codes.push(CodeCount {
                method,
                code: code.code,
                count: code.count,
            });
        }
        codes.sort();
        if let Some(pair) = codes
            .windows(2)
            .find(|pair| (pair[0].method, pair[0].code) == (pair[1].method, pair[1].code))
        {
            return Err(format!("{} {} appears twice", pair[0].method, pair[0].code));
        }
        if codes.is_empty() {
            return Ok(codes);
        }
        let mut classes = [0u64; 6];
        for code in &codes {
            let class = &mut classes[class_index(code.code)];
            *class = class
                .checked_add(code.count)
                .ok_or_else(|| "counts by method and code past 2^64".to_owned())?;
        }
        adds_up(self.requests, &classes, "by method and code")?;
        if classes != self.status_classes {
            return Err(format!(
                "its counts by code make {classes:?} by status class, not {:?}",
                self.status_classes
            ));
        }
        Ok(codes)
    }
}

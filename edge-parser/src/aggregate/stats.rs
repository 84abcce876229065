//! The counters of an aggregate: per group ([`GroupStats`]) and for everything
//! ([`LineCounts`], [`StatusCounts`], [`Timeline`]).
//!
//! Each type keeps its own fast path (a dense array of status slots, the second being counted
//! held apart from the map) behind methods that always show the complete counts: nothing needs
//! flushing before it is read, merged or saved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vantage_instrument::names::{OTHER_METHOD, STANDARD_METHODS};

use crate::format::{Record, StatusClass};
use crate::histogram::LatencyHistogram;

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

impl LineCounts {
    pub(crate) fn merge(&mut self, other: &Self) {
        self.total = self.total.saturating_add(other.total);
        self.parsed = self.parsed.saturating_add(other.parsed);
        self.malformed = self.malformed.saturating_add(other.malformed);
        self.filtered = self.filtered.saturating_add(other.filtered);
    }
}

/// Requests by status class: 1xx, 2xx, 3xx, 4xx, 5xx and other (no status, or outside
/// 100–599).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusClasses([u64; 6]);

impl StatusClasses {
    /// The label of each class, in order.
    pub const NAMES: [&'static str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

    /// The counts in the order of [`NAMES`](Self::NAMES).
    pub const fn from_counts(counts: [u64; 6]) -> Self {
        Self(counts)
    }

    /// The counts in the order of [`NAMES`](Self::NAMES).
    pub const fn counts(&self) -> [u64; 6] {
        self.0
    }

    /// Counts one request of `class`.
    #[inline]
    pub(crate) fn add(&mut self, class: StatusClass) {
        let slot = &mut self.0[Self::index(class)];
        *slot = slot.saturating_add(1);
    }

    /// Requests of `class`.
    pub const fn get(&self, class: StatusClass) -> u64 {
        self.0[Self::index(class)]
    }

    /// `(name, count)` per class, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Self::NAMES.into_iter().zip(self.0)
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// Where `class` is in [`counts`](Self::counts).
    pub(crate) const fn index(class: StatusClass) -> usize {
        match class {
            StatusClass::Informational => 0,
            StatusClass::Success => 1,
            StatusClass::Redirection => 2,
            StatusClass::ClientError => 3,
            StatusClass::ServerError => 4,
            _ => 5,
        }
    }
}

/// The bounded label of a logged method: a standard one, or `_OTHER` (methods are the client's
/// choice).
pub(crate) fn method_label(method: Option<&[u8]>) -> &'static str {
    method
        .and_then(|method| {
            STANDARD_METHODS
                .iter()
                .find(|known| known.as_bytes() == method)
        })
        .copied()
        .unwrap_or(OTHER_METHOD)
}

/// Requests of one method and status code.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CodeCount {
    /// The method: a standard one, or `_OTHER`.
    pub method: &'static str,
    /// The status code as logged (`-1` when the line had none).
    pub code: i16,
    /// Requests.
    pub count: u64,
}

/// Counts and latencies of one group (or of everything).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Where the group's first request is, to apply the cap in line order.
    pub(crate) first_seen: super::LinePosition,
    /// Requests.
    pub requests: u64,
    /// Requests by status class.
    pub status_classes: StatusClasses,
    /// Request durations, µs.
    pub latency: LatencyHistogram,
    /// Requests whose line had no (or a negative) duration.
    pub latency_missing: u64,
    /// Upstream durations, µs, where the format logs them.
    pub upstream_latency: LatencyHistogram,
    /// Response bytes sent (saturating).
    pub bytes_sent: u64,
    /// Requests by method and status code, sorted, when
    /// [`AggregateConfig::count_codes`](super::AggregateConfig::count_codes) is set.
    pub codes: Vec<CodeCount>,
    /// What the log says of the requests' upstream attempts.
    pub upstream: UpstreamCounts,
}

/// What a group's lines say of their upstream attempts (where the format logs them: see
/// [`Record::upstream_attempts`]): the reasons a request reached the proxy and no service, or
/// reached a service more than once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamCounts {
    /// Requests the proxy answered without trying an upstream, other than 499 (the client
    /// left) and 502–504, which the reconciliation already reads by status.
    pub unforwarded: u64,
    /// Attempts beyond each request's first (retries, internal redirects).
    pub retries: u64,
}

impl UpstreamCounts {
    #[inline]
    fn add(&mut self, record: &Record<'_>) {
        let Some(attempts) = record.upstream_attempts else {
            return;
        };
        let code = record.status.map_or(0, |status| status.code());
        if attempts == 0 && !matches!(code, 499 | 502..=504) {
            self.unforwarded = self.unforwarded.saturating_add(1);
        }
        self.retries = self
            .retries
            .saturating_add(u64::from(attempts.saturating_sub(1)));
    }

    fn merge(&mut self, other: &Self) {
        self.unforwarded = self.unforwarded.saturating_add(other.unforwarded);
        self.retries = self.retries.saturating_add(other.retries);
    }

    /// Nothing counted (a format that does not log its upstream attempts).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl GroupStats {
    #[inline]
    pub(crate) fn add(&mut self, record: &Record<'_>, count_codes: bool) {
        self.requests = self.requests.saturating_add(1);
        if count_codes {
            let method = method_label(record.method.as_deref());
            let code = record.status.map_or(-1, |status| status.code());
            self.add_code(method, code, 1);
        }
        self.status_classes
            .add(record.status.map_or(StatusClass::Other, |s| s.class()));
        match record.duration_ns {
            Some(ns) => self.latency.record(ns / 1000),
            None => self.latency_missing = self.latency_missing.saturating_add(1),
        }
        if let Some(ns) = record.upstream_duration_ns {
            self.upstream_latency.record(ns / 1000);
        }
        self.bytes_sent = self
            .bytes_sent
            .saturating_add(record.bytes_sent.unwrap_or(0));
        self.upstream.add(record);
    }

    fn add_code(&mut self, method: &'static str, code: i16, count: u64) {
        match self
            .codes
            .binary_search_by(|c| (c.method, c.code).cmp(&(method, code)))
        {
            Ok(at) => self.codes[at].count = self.codes[at].count.saturating_add(count),
            Err(at) => self.codes.insert(
                at,
                CodeCount {
                    method,
                    code,
                    count,
                },
            ),
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        if other.requests == 0 {
            return;
        }
        if self.requests == 0 || other.first_seen < self.first_seen {
            self.first_seen = other.first_seen;
        }
        self.requests = self.requests.saturating_add(other.requests);
        self.status_classes.merge(&other.status_classes);
        self.latency.merge(&other.latency);
        self.latency_missing = self.latency_missing.saturating_add(other.latency_missing);
        self.upstream_latency.merge(&other.upstream_latency);
        self.bytes_sent = self.bytes_sent.saturating_add(other.bytes_sent);
        for theirs in &other.codes {
            self.add_code(theirs.method, theirs.code, theirs.count);
        }
        self.upstream.merge(&other.upstream);
    }
}

/// Status codes counted in a dense array: `-1` to `999`.
const STATUS_SLOTS: usize = 1001;

/// Requests by exact status code (`-1` and `0` included as logged).
#[derive(Clone, Debug, Default)]
pub struct StatusCounts {
    /// Codes `-1..=999`, allocated on the first count.
    slots: Option<Box<[u64]>>,
    /// Any other code.
    others: BTreeMap<i16, u64>,
}

impl StatusCounts {
    /// Counts `count` requests of `code`.
    #[inline]
    pub(crate) fn add(&mut self, code: i16, count: u64) {
        match usize::try_from(i32::from(code) + 1) {
            Ok(slot) if slot < STATUS_SLOTS => {
                let slots = self
                    .slots
                    .get_or_insert_with(|| vec![0; STATUS_SLOTS].into_boxed_slice());
                slots[slot] = slots[slot].saturating_add(count);
            }
            _ => {
                let counted = self.others.entry(code).or_default();
                *counted = counted.saturating_add(count);
            }
        }
    }

    /// `(code, requests)` for every code seen, in code order.
    pub fn iter(&self) -> impl Iterator<Item = (i16, u64)> + '_ {
        let dense = self.slots.iter().flat_map(|slots| {
            slots
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(slot, count)| (slot as i16 - 1, *count))
        });
        let below = self.others.range(..-1).map(|(code, count)| (*code, *count));
        let above = self
            .others
            .range(1000..)
            .map(|(code, count)| (*code, *count));
        below.chain(dense).chain(above)
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (code, count) in other.iter() {
            self.add(code, count);
        }
    }
}

impl PartialEq for StatusCounts {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for StatusCounts {}

impl FromIterator<(i16, u64)> for StatusCounts {
    fn from_iter<I: IntoIterator<Item = (i16, u64)>>(iter: I) -> Self {
        let mut counts = Self::default();
        for (code, count) in iter {
            counts.add(code, count);
        }
        counts
    }
}

/// Most points a [`Timeline`] holds: a day of seconds. Past it, its step grows.
pub const MAX_TIMELINE_POINTS: usize = 86_400;

/// The steps a [`Timeline`] takes, in seconds, each a multiple of the one before (past the
/// last, the step doubles): coarsening re-buckets counts without splitting any.
const TIMELINE_STEPS: [i64; 13] = [
    1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10_800, 21_600, 43_200, 86_400,
];

/// The step after `step`.
fn next_step(step: i64) -> i64 {
    TIMELINE_STEPS
        .into_iter()
        .find(|&next| next > step)
        .unwrap_or_else(|| step.saturating_mul(2))
}

/// Requests per step of the log's own timestamps: per second, or per coarser step when the
/// seconds from the first request to the last would be more than [`MAX_TIMELINE_POINTS`].
///
/// Its step is the finest of `1, 5, 10, 30 s, 1, 5, 10, 30 min, 1, 3, 6, 12 h, 1 day`, then
/// doubling days, that covers the first to the last request in at most
/// [`MAX_TIMELINE_POINTS`] steps, aligned on the epoch. That depends on the requests only, not
/// on their order nor on how they were shared between threads, and bounds the memory whatever
/// the timestamps: a line from 1970 among lines from 2025 makes the steps coarser, not the
/// timeline longer.
///
/// Lines are mostly in time order, so the second being counted is held apart and only enters
/// the map when another second comes.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Seconds per step.
    step: i64,
    /// Requests by step index (`second.div_euclid(step)`).
    steps: BTreeMap<i64, u64>,
    /// The first and the last step index with a request, the held one included.
    bounds: Option<(i64, i64)>,
    /// The second being counted, its step index and its requests (not in `steps` yet).
    current: Option<(i64, i64, u64)>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            step: 1,
            steps: BTreeMap::new(),
            bounds: None,
            current: None,
        }
    }
}

impl Timeline {
    /// Counts `count` requests in `second` (unix seconds).
    #[inline]
    pub(crate) fn add(&mut self, second: i64, count: u64) {
        match &mut self.current {
            Some((current, _, counted)) if *current == second => {
                *counted = counted.saturating_add(count);
            }
            _ => self.add_new(second, count),
        }
    }

    /// Holds `second` as the one being counted, after the one held before.
    fn add_new(&mut self, second: i64, count: u64) {
        self.flush();
        self.admit(second.div_euclid(self.step));
        self.current = Some((second, second.div_euclid(self.step), count));
    }

    /// Moves the held second into the map.
    fn flush(&mut self) {
        if let Some((_, index, counted)) = self.current.take() {
            let slot = self.steps.entry(index).or_default();
            *slot = slot.saturating_add(counted);
        }
    }

    /// Widens the bounds to step `index`, coarsening the steps until they fit.
    fn admit(&mut self, index: i64) {
        let (first, last) = self.bounds.map_or((index, index), |(first, last)| {
            (first.min(index), last.max(index))
        });
        self.bounds = Some((first, last));
        while self.len() > MAX_TIMELINE_POINTS as u64 {
            self.coarsen(next_step(self.step));
        }
    }

    /// Steps from the first request's to the last's.
    fn len(&self) -> u64 {
        self.bounds
            .map_or(0, |(first, last)| last.abs_diff(first).saturating_add(1))
    }

    /// Re-buckets everything into steps of `step` seconds (a multiple of the current step).
    fn coarsen(&mut self, step: i64) {
        let ratio = step / self.step;
        let mut steps = BTreeMap::new();
        for (index, count) in std::mem::take(&mut self.steps) {
            let slot = steps.entry(index.div_euclid(ratio)).or_insert(0u64);
            *slot = slot.saturating_add(count);
        }
        self.steps = steps;
        self.bounds = self
            .bounds
            .map(|(first, last)| (first.div_euclid(ratio), last.div_euclid(ratio)));
        if let Some((_, index, _)) = &mut self.current {
            *index = index.div_euclid(ratio);
        }
        self.step = step;
    }

    /// Seconds per step: 1 unless the timeline spans more than [`MAX_TIMELINE_POINTS`] seconds.
    pub fn step(&self) -> u64 {
        self.step.unsigned_abs()
    }

    /// `(start, requests)` for every step with a request, in order; `start` is the step's
    /// first second (unix seconds).
    pub fn iter(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.indexed()
            .map(|(index, count)| (index.saturating_mul(self.step), count))
    }

    /// `(step index, requests)` for every step with a request, in order.
    fn indexed(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        let mut held = self.current.map(|(_, index, count)| (index, count));
        let mut steps = self.steps.iter().peekable();
        std::iter::from_fn(move || {
            let next_in_map = steps.peek().map(|(index, count)| (**index, **count));
            match (next_in_map, held) {
                (Some((mapped, in_map)), Some((index, count))) if index <= mapped => {
                    held = None;
                    if index == mapped {
                        steps.next();
                        Some((index, count.saturating_add(in_map)))
                    } else {
                        Some((index, count))
                    }
                }
                (Some(_), _) => steps.next().map(|(index, count)| (*index, *count)),
                (None, Some(pair)) => {
                    held = None;
                    Some(pair)
                }
                (None, None) => None,
            }
        })
    }

    /// The requests of every step from the first request's to the last's, zeros included (at
    /// most [`MAX_TIMELINE_POINTS`]), and the first step's start (unix seconds); `None` when
    /// no request was counted.
    pub fn points(&self) -> Option<(i64, Vec<u64>)> {
        let (first, _) = self.bounds?;
        let len = usize::try_from(self.len()).unwrap_or(MAX_TIMELINE_POINTS);
        let mut requests = vec![0; len];
        for (index, count) in self.indexed() {
            let at = index.abs_diff(first);
            if let Some(slot) = usize::try_from(at).ok().and_then(|at| requests.get_mut(at)) {
                *slot = count;
            }
        }
        Some((first.saturating_mul(self.step), requests))
    }

    /// Adds `other` into `self`: the result is the timeline of both timelines' requests.
    pub(crate) fn merge(&mut self, other: &Self) {
        if other.is_empty() {
            return;
        }
        self.flush();
        while self.step < other.step {
            self.coarsen(next_step(self.step));
        }
        for (index, count) in other.indexed() {
            // Steps nest, so theirs falls in one of ours (`admit` may coarsen ours).
            self.admit(index.div_euclid(self.step / other.step));
            let index = index.div_euclid(self.step / other.step);
            let slot = self.steps.entry(index).or_default();
            *slot = slot.saturating_add(count);
        }
    }

    /// Whether no request was counted.
    pub fn is_empty(&self) -> bool {
        self.bounds.is_none()
    }
}

impl PartialEq for Timeline {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Timeline {}

impl FromIterator<(i64, u64)> for Timeline {
    fn from_iter<I: IntoIterator<Item = (i64, u64)>>(iter: I) -> Self {
        let mut timeline = Self::default();
        for (second, count) in iter {
            timeline.add(second, count);
        }
        timeline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_list_every_code_in_order() {
        let mut counts = StatusCounts::default();
        for code in [200, -1, 200, 1200, -5, 999, 0] {
            counts.add(code, 1);
        }
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            [(-5, 1), (-1, 1), (0, 1), (200, 2), (999, 1), (1200, 1)]
        );
        let mut merged = StatusCounts::default();
        merged.merge(&counts);
        merged.merge(&counts);
        assert_eq!(merged.iter().nth(3), Some((200, 4)));
    }

    #[test]
    fn the_timeline_shows_the_second_being_counted() {
        let mut timeline = Timeline::default();
        for second in [10, 10, 12, 11, 12, 12] {
            timeline.add(second, 1);
        }
        assert_eq!(
            timeline.iter().collect::<Vec<_>>(),
            [(10, 2), (11, 1), (12, 3)]
        );
        assert_eq!(timeline.points(), Some((10, vec![2, 1, 3])));
        timeline.add(5, 1);
        assert_eq!(
            timeline.iter().collect::<Vec<_>>(),
            [(5, 1), (10, 2), (11, 1), (12, 3)]
        );
        assert_eq!(timeline.points(), Some((5, vec![1, 0, 0, 0, 0, 2, 1, 3])));
        assert_eq!(timeline.step(), 1);
        let flat: Timeline = timeline.iter().collect();
        assert_eq!(flat, timeline);
        assert!(Timeline::default().is_empty());
        assert_eq!(Timeline::default().points(), None);
    }

    /// 2025-03-09T12:00:00Z.
    const START: i64 = 1_741_521_600;

    #[test]
    fn a_timeline_longer_than_its_points_takes_coarser_steps() {
        let mut timeline = Timeline::default();
        timeline.add(START, 1);
        timeline.add(START + MAX_TIMELINE_POINTS as i64 - 1, 1);
        assert_eq!(timeline.step(), 1);
        timeline.add(START + MAX_TIMELINE_POINTS as i64, 1);
        assert_eq!(timeline.step(), 5);
        let (start, requests) = timeline.points().expect("requests");
        assert_eq!((start, requests.len()), (START, 17_281));
        assert_eq!(requests.iter().sum::<u64>(), 3);
        assert_eq!((requests[0], requests[17_279], requests[17_280]), (1, 1, 1));
        // A request in 1970 among requests in 2025: steps of 6 hours, 80 631 of them.
        timeline.add(0, 1);
        assert_eq!(timeline.step(), 21_600);
        let (start, requests) = timeline.points().expect("requests");
        assert_eq!((start, requests.len()), (0, 80_631));
        assert_eq!(requests.iter().sum::<u64>(), 4);
        assert_eq!(requests[0], 1);
        assert_eq!(timeline.iter().last(), Some((1_741_608_000, 1)));
    }

    #[test]
    fn the_extremes_of_time_stay_within_the_points() {
        let mut timeline = Timeline::default();
        for second in [i64::MAX, i64::MIN, 0, i64::MAX, i64::MIN] {
            timeline.add(second, u64::MAX);
        }
        let (_, requests) = timeline.points().expect("requests");
        assert!(requests.len() <= MAX_TIMELINE_POINTS, "{}", requests.len());
        assert_eq!(requests.iter().filter(|&&count| count > 0).count(), 3);
        assert_eq!(requests.first(), Some(&u64::MAX));
        assert_eq!(requests.last(), Some(&u64::MAX));
    }

    #[test]
    fn timelines_merge_to_the_same_steps_whatever_the_split() {
        let seconds: Vec<i64> = (0..200_000)
            .map(|n: i64| START + (n * 7_919) % 300_000)
            .chain([START - 400_000_000, START + 1])
            .collect();
        let whole: Timeline = seconds.iter().map(|&second| (second, 1)).collect();
        assert_eq!(whole.step(), 10_800);
        for parts in [2, 3, 7, 1000] {
            let mut merged = Timeline::default();
            for part in seconds.chunks(seconds.len().div_ceil(parts)) {
                let part: Timeline = part.iter().map(|&second| (second, 1)).collect();
                merged.merge(&part);
            }
            assert_eq!(merged.step(), whole.step(), "{parts} parts");
            assert_eq!(merged.points(), whole.points(), "{parts} parts");
        }
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let mut counts = StatusCounts::default();
        counts.add(200, u64::MAX);
        counts.add(200, 1);
        counts.add(1200, u64::MAX);
        counts.add(1200, 1);
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            [(200, u64::MAX), (1200, u64::MAX)]
        );
        let mut lines = LineCounts {
            total: u64::MAX,
            parsed: u64::MAX,
            malformed: u64::MAX,
            filtered: u64::MAX,
        };
        lines.merge(&lines.clone());
        assert_eq!(lines.total, u64::MAX);
        let mut classes = StatusClasses::from_counts([u64::MAX; 6]);
        classes.merge(&StatusClasses::from_counts([1; 6]));
        classes.add(StatusClass::Success);
        assert_eq!(classes.counts(), [u64::MAX; 6]);
        let mut stats = GroupStats {
            requests: u64::MAX,
            latency_missing: u64::MAX,
            bytes_sent: u64::MAX,
            ..GroupStats::default()
        };
        stats.add_code("GET", 200, u64::MAX);
        stats.merge(&stats.clone());
        stats.add(&Record::default(), true);
        assert_eq!(
            (stats.requests, stats.latency_missing, stats.bytes_sent),
            (u64::MAX, u64::MAX, u64::MAX)
        );
        assert_eq!(stats.codes[0].count, u64::MAX);
    }

    #[test]
    fn codes_stay_sorted_and_add_up() {
        let mut stats = GroupStats::default();
        stats.add_code("POST", 201, 1);
        stats.add_code("GET", 503, 1);
        stats.add_code("GET", 200, 2);
        stats.add_code("GET", 503, 1);
        let codes: Vec<_> = stats
            .codes
            .iter()
            .map(|c| (c.method, c.code, c.count))
            .collect();
        assert_eq!(codes, [("GET", 200, 2), ("GET", 503, 2), ("POST", 201, 1)]);
    }
}

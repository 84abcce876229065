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
        self.total += other.total;
        self.parsed += other.parsed;
        self.malformed += other.malformed;
        self.filtered += other.filtered;
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
        self.0[Self::index(class)] += 1;
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
            *mine += theirs;
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
}

impl GroupStats {
    #[inline]
    pub(crate) fn add(&mut self, record: &Record<'_>, count_codes: bool) {
        self.requests += 1;
        if count_codes {
            let method = method_label(record.method.as_deref());
            let code = record.status.map_or(-1, |status| status.code());
            self.add_code(method, code, 1);
        }
        self.status_classes
            .add(record.status.map_or(StatusClass::Other, |s| s.class()));
        match record.duration_ns {
            Some(ns) => self.latency.record(ns / 1000),
            None => self.latency_missing += 1,
        }
        if let Some(ns) = record.upstream_duration_ns {
            self.upstream_latency.record(ns / 1000);
        }
        self.bytes_sent = self
            .bytes_sent
            .saturating_add(record.bytes_sent.unwrap_or(0));
    }

    fn add_code(&mut self, method: &'static str, code: i16, count: u64) {
        match self
            .codes
            .binary_search_by(|c| (c.method, c.code).cmp(&(method, code)))
        {
            Ok(at) => self.codes[at].count += count,
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
        self.requests += other.requests;
        self.status_classes.merge(&other.status_classes);
        self.latency.merge(&other.latency);
        self.latency_missing += other.latency_missing;
        self.upstream_latency.merge(&other.upstream_latency);
        self.bytes_sent = self.bytes_sent.saturating_add(other.bytes_sent);
        for theirs in &other.codes {
            self.add_code(theirs.method, theirs.code, theirs.count);
        }
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
                self.slots
                    .get_or_insert_with(|| vec![0; STATUS_SLOTS].into_boxed_slice())[slot] += count;
            }
            _ => *self.others.entry(code).or_default() += count,
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

/// Requests per second of the log's own timestamps.
///
/// Lines are mostly in time order, so the second being counted is held apart and only enters
/// the map when another second comes.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    seconds: BTreeMap<i64, u64>,
    current: Option<(i64, u64)>,
}

impl Timeline {
    /// Counts `count` requests in `second` (unix seconds).
    #[inline]
    pub(crate) fn add(&mut self, second: i64, count: u64) {
        match &mut self.current {
            Some((current, counted)) if *current == second => *counted += count,
            slot => {
                if let Some((previous, counted)) = slot.replace((second, count)) {
                    *self.seconds.entry(previous).or_default() += counted;
                }
            }
        }
    }

    /// Requests in `second`.
    pub fn get(&self, second: i64) -> u64 {
        let held = match self.current {
            Some((current, count)) if current == second => count,
            _ => 0,
        };
        self.seconds.get(&second).copied().unwrap_or(0) + held
    }

    /// The first and the last second with a request.
    pub fn span(&self) -> Option<(i64, i64)> {
        let held = self.current.map(|(second, _)| second);
        let first = self
            .seconds
            .keys()
            .next()
            .copied()
            .into_iter()
            .chain(held)
            .min()?;
        let last = self
            .seconds
            .keys()
            .next_back()
            .copied()
            .into_iter()
            .chain(held)
            .max()?;
        Some((first, last))
    }

    /// `(second, requests)` for every second with a request, in order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        let mut held = self
            .current
            .filter(|(second, _)| !self.seconds.contains_key(second));
        let mut seconds = self.seconds.iter().peekable();
        std::iter::from_fn(move || {
            let next_in_map = seconds.peek().map(|(second, _)| **second);
            match (next_in_map, held) {
                (Some(mapped), Some((second, count))) if second < mapped => {
                    held = None;
                    Some((second, count))
                }
                (Some(_), _) => seconds
                    .next()
                    .map(|(second, _)| (*second, self.get(*second))),
                (None, Some(pair)) => {
                    held = None;
                    Some(pair)
                }
                (None, None) => None,
            }
        })
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (second, count) in other.iter() {
            *self.seconds.entry(second).or_default() += count;
        }
    }

    /// Whether no request was counted.
    pub fn is_empty(&self) -> bool {
        self.current.is_none() && self.seconds.is_empty()
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
            *timeline.seconds.entry(second).or_default() += count;
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
        assert_eq!((timeline.get(12), timeline.span()), (3, Some((10, 12))));
        timeline.add(5, 1);
        assert_eq!(
            timeline.iter().collect::<Vec<_>>(),
            [(5, 1), (10, 2), (11, 1), (12, 3)]
        );
        let flat: Timeline = timeline.iter().collect();
        assert_eq!(flat, timeline);
        assert!(Timeline::default().is_empty());
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

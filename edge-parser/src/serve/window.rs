//! Sliding windows (1 minute, 5 minutes, 1 hour) of requests, status classes and latency per
//! group, for `/api/summary` and the live stream.
//!
//! Each window is a ring of slots (6 of 10 s, 5 of 1 min, 12 of 5 min): a request is counted in
//! the slot of its own timestamp (the time the proxy logged, so a backlog read late still lands
//! in the right minute), and a window's figures merge the slots that lie within it. Memory is
//! bounded by the number of slots times the number of groups, which the aggregate caps; slot
//! histograms are sparse and of 2 significant digits (see [`WindowHistogram`]): within 1 %,
//! plenty for a live view, at a fraction of the memory of the cumulative histograms.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::aggregate::{GroupKey, StatusClasses};
use crate::format::StatusClass;
use crate::histogram::{Histogram, WindowHistogram};

/// One window: how far back it looks and how finely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WindowSpec {
    /// The name in JSON (`1m`).
    pub(crate) name: &'static str,
    /// Seconds per slot.
    pub(crate) slot_seconds: i64,
    /// Slots in the window.
    pub(crate) slots: usize,
}

impl WindowSpec {
    /// The window's length in seconds.
    pub(crate) const fn seconds(&self) -> i64 {
        self.slot_seconds * self.slots as i64
    }
}

/// The windows `/api/summary` shows.
pub(crate) const WINDOWS: [WindowSpec; 3] = [
    WindowSpec {
        name: "1m",
        slot_seconds: 10,
        slots: 6,
    },
    WindowSpec {
        name: "5m",
        slot_seconds: 60,
        slots: 5,
    },
    WindowSpec {
        name: "1h",
        slot_seconds: 300,
        slots: 12,
    },
];

/// What one group did within a slot or a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WindowStats {
    /// Requests.
    pub(crate) requests: u64,
    /// Requests by status class.
    pub(crate) status_classes: StatusClasses,
    /// Latencies, µs.
    pub(crate) latency: WindowHistogram,
}

impl WindowStats {
    fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.status_classes.merge(&other.status_classes);
        self.latency.merge(&other.latency);
    }
}

#[derive(Debug)]
struct Slot {
    start: i64,
    groups: HashMap<GroupKey, WindowStats, foldhash::fast::RandomState>,
}

#[derive(Debug)]
struct Ring {
    spec: WindowSpec,
    /// Oldest first; at most `spec.slots`.
    slots: VecDeque<Slot>,
}

impl Ring {
    fn record(&mut self, key: &[u8], at: i64, class: StatusClass, latency_us: Option<u64>) {
        let start = at.div_euclid(self.spec.slot_seconds) * self.spec.slot_seconds;
        let newest = self.slots.back().map_or(i64::MIN, |slot| slot.start);
        if start > newest {
            self.slots.push_back(Slot {
                start,
                groups: HashMap::default(),
            });
            self.expire(start + self.spec.slot_seconds);
        }
        // Lines come in roughly in time order (nginx logs at the end of a request, files are
        // interleaved): a slot before the newest one that had no line yet is made in its place,
        // as long as it is still within the window.
        let position = self.slots.iter().rposition(|slot| slot.start <= start);
        let index = match position {
            Some(index) if self.slots[index].start == start => index,
            _ if start < newest.saturating_add(self.spec.slot_seconds) - self.spec.seconds() => {
                // Older than the window: not in any window.
                return;
            }
            position => {
                let index = position.map_or(0, |index| index + 1);
                self.slots.insert(
                    index,
                    Slot {
                        start,
                        groups: HashMap::default(),
                    },
                );
                index
            }
        };
        let slot = &mut self.slots[index];
        let stats = match slot.groups.get_mut(key) {
            Some(stats) => stats,
            None => slot.groups.entry(GroupKey::from_encoded(key)).or_default(),
        };
        stats.requests += 1;
        stats.status_classes.add(class);
        if let Some(latency) = latency_us {
            stats.latency.record(latency);
        }
    }

    /// Drops the slots that end before the window that ends at `end`.
    fn expire(&mut self, end: i64) {
        let window_start = end - self.spec.seconds();
        while self
            .slots
            .front()
            .is_some_and(|slot| slot.start < window_start)
        {
            self.slots.pop_front();
        }
    }

    fn summarise(&self, now: i64) -> Summary {
        // The slot holding `now` and the ones before it, back to a window's length.
        let first_start = (now.div_euclid(self.spec.slot_seconds) + 1 - self.spec.slots as i64)
            * self.spec.slot_seconds;
        let mut groups: HashMap<GroupKey, WindowStats> = HashMap::new();
        for slot in self
            .slots
            .iter()
            .filter(|slot| slot.start >= first_start && slot.start <= now)
        {
            for (key, stats) in &slot.groups {
                groups.entry(key.clone()).or_default().merge(stats);
            }
        }
        Summary {
            spec: self.spec,
            seconds: now - first_start + 1,
            groups,
        }
    }
}

/// One window's figures per group.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    /// The window.
    pub(crate) spec: WindowSpec,
    /// The seconds it covers: from its oldest slot's start to now (slots are whole, so this is
    /// a little less than a slot beyond [`WindowSpec::seconds`] at most).
    pub(crate) seconds: i64,
    /// Per group.
    pub(crate) groups: HashMap<GroupKey, WindowStats>,
}

impl Summary {
    /// Folds every group that `keep` refuses into the group `overflow` (the cap of the
    /// cumulative aggregate applied to the window).
    pub(crate) fn fold_into(&mut self, overflow: &GroupKey, keep: impl Fn(&GroupKey) -> bool) {
        let folded: Vec<GroupKey> = self
            .groups
            .keys()
            .filter(|key| !keep(key) && *key != overflow)
            .cloned()
            .collect();
        for key in folded {
            if let Some(stats) = self.groups.remove(&key) {
                self.groups
                    .entry(overflow.clone())
                    .or_default()
                    .merge(&stats);
            }
        }
    }
}

/// The three windows of every group; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Windows {
    rings: Vec<Ring>,
}

impl Default for Windows {
    fn default() -> Self {
        Self::new()
    }
}

impl Windows {
    /// Empty windows.
    pub(crate) fn new() -> Self {
        Self {
            rings: WINDOWS
                .iter()
                .map(|spec| Ring {
                    spec: *spec,
                    slots: VecDeque::with_capacity(spec.slots + 1),
                })
                .collect(),
        }
    }

    /// Counts a request of group `key` (encoded as the aggregator returns it) made at `at`
    /// (unix seconds), of status class `class`, with its latency if logged.
    pub(crate) fn record(
        &mut self,
        key: &[u8],
        at: i64,
        class: StatusClass,
        latency_us: Option<u64>,
    ) {
        for ring in &mut self.rings {
            ring.record(key, at, class, latency_us);
        }
    }

    /// Forgets slots that fell out of every window by `now` (unix seconds), so that a router
    /// that stops sending lines stops holding memory.
    pub(crate) fn expire(&mut self, now: i64) {
        for ring in &mut self.rings {
            ring.expire(now + 1);
        }
    }

    /// Each window's figures per group as of `now` (unix seconds): the slot holding `now` and
    /// the slots before it, a window's worth.
    pub(crate) fn summarise(&self, now: i64) -> Vec<Summary> {
        self.rings.iter().map(|ring| ring.summarise(now)).collect()
    }
}

/// Latency percentiles of a window, in seconds, for JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Percentiles {
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// 99.9th percentile.
    pub(crate) p999: f64,
}

impl Percentiles {
    /// The percentiles of `histogram` (µs), or `None` when it is empty.
    pub(crate) fn of<const BITS: u32>(histogram: &Histogram<BITS>) -> Option<Self> {
        let seconds = |q: f64| histogram.quantile(q) as f64 / 1e6;
        (histogram.count() > 0).then(|| Self {
            p50: seconds(0.5),
            p90: seconds(0.9),
            p99: seconds(0.99),
            p999: seconds(0.999),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(router: &str) -> Vec<u8> {
        std::borrow::Borrow::<[u8]>::borrow(&group(router)).to_vec()
    }

    fn group(router: &str) -> GroupKey {
        GroupKey::new([router])
    }

    #[test]
    fn each_window_counts_its_own_span() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600; // a multiple of 300
        for second in 0..3600 {
            windows.record(
                &key("a"),
                t0 + second,
                StatusClass::Success,
                Some(1_000 + second as u64),
            );
        }
        let now = t0 + 3599;
        let summary = windows.summarise(now);
        let requests: Vec<(&str, i64, u64)> = summary
            .iter()
            .map(|window| {
                (
                    window.spec.name,
                    window.seconds,
                    window.groups[&group("a")].requests,
                )
            })
            .collect();
        // The 1-minute window holds the current 10 s slot and the five before it.
        assert_eq!(
            requests,
            [("1m", 60, 60), ("5m", 300, 300), ("1h", 3600, 3600)]
        );
        let minute = &summary[0].groups;
        assert_eq!(minute[&group("a")].latency.min(), 1_000 + 3540);
        assert_eq!(
            minute[&group("a")].status_classes.counts(),
            [0, 60, 0, 0, 0, 0]
        );
    }

    #[test]
    fn old_requests_and_quiet_groups_fall_out() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600;
        windows.record(&key("a"), t0, StatusClass::ServerError, None);
        windows.record(&key("b"), t0 + 100, StatusClass::Success, Some(5));
        // Late line for a slot that left the 1-minute window: only longer windows count it.
        windows.record(&key("a"), t0 + 10, StatusClass::ServerError, None);
        let summary = windows.summarise(t0 + 100);
        assert!(!summary[0].groups.contains_key(&group("a")));
        assert_eq!(summary[0].groups[&group("b")].requests, 1);
        assert_eq!(summary[1].groups[&group("a")].requests, 2);
        // Nothing arrived for two hours: the windows are empty (and hold no memory).
        assert!(
            windows
                .summarise(t0 + 7200)
                .iter()
                .all(|w| w.groups.is_empty())
        );
        windows.expire(t0 + 7200);
        assert!(windows.rings.iter().all(|ring| ring.slots.is_empty()));
    }

    #[test]
    fn a_late_line_for_a_slot_that_had_none_yet_is_counted() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600;
        // The newer slot first (nginx logs a long request after a short one that started
        // later), then lines for two older slots that had no line yet.
        windows.record(&key("a"), t0 + 15, StatusClass::Success, Some(5));
        windows.record(&key("a"), t0 + 5, StatusClass::Success, Some(5));
        windows.record(&key("a"), t0 - 25, StatusClass::Success, Some(5));
        windows.record(&key("a"), t0 + 9, StatusClass::Success, Some(5));
        let summary = windows.summarise(t0 + 20);
        assert_eq!(summary[0].groups[&group("a")].requests, 4);
        let starts: Vec<i64> = windows.rings[0].slots.iter().map(|s| s.start).collect();
        assert_eq!(starts, [t0 - 30, t0, t0 + 10]);
        // Past the window: not counted, no slot made.
        windows.record(&key("a"), t0 - 60, StatusClass::Success, Some(5));
        assert_eq!(
            windows.summarise(t0 + 20)[0].groups[&group("a")].requests,
            4
        );
        assert_eq!(windows.rings[0].slots.len(), 3);
    }

    #[test]
    fn groups_past_the_cap_fold_into_overflow() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600;
        for router in ["a", "b", "c"] {
            windows.record(&key(router), t0, StatusClass::Success, Some(10));
        }
        let mut minute = windows.summarise(t0).swap_remove(0);
        let overflow = group("(overflow)");
        minute.fold_into(&overflow, |key| *key == group("a"));
        assert_eq!(minute.groups.len(), 2);
        assert_eq!(minute.groups[&group("a")].requests, 1);
        assert_eq!(minute.groups[&overflow].requests, 2);
        assert_eq!(minute.groups[&overflow].latency.count(), 2);
    }

    #[test]
    fn percentiles_are_in_seconds() {
        let mut histogram = WindowHistogram::new();
        for micros in [1_000, 2_000, 3_000, 4_000] {
            histogram.record(micros);
        }
        assert_eq!(
            Percentiles::of(&histogram),
            Some(Percentiles {
                p50: 0.002,
                p90: 0.004,
                p99: 0.004,
                p999: 0.004
            })
        );
        assert_eq!(Percentiles::of(&WindowHistogram::new()), None);
    }
}

//! Sliding windows (1 minute, 5 minutes, 1 hour) of requests, status classes and latency per
//! group, for `/api/summary` and the live stream.
//!
//! Each window is a ring of slots (6 of 10 s, 5 of 1 min, 12 of 5 min): a request is counted in
//! the slot of its own timestamp (the time the proxy logged, so a backlog read late still lands
//! in the right minute), and a window's figures merge the slots that lie within it.
//!
//! # Memory
//!
//! Every group has its 23 slots in one place, found with one lookup per line: the slot of a
//! time is at `time / slot length` modulo the number of slots, and holds the start of the span
//! it counts, so a slot of a span that left the window is recognised as stale and reused.
//! Slot histograms are [`WindowHistogram`]s: 2 significant digits (within 1 %, plenty for a
//! live view), packed to about two bytes per distinct latency once their slot is closed. At
//! the default cap of 1 000 groups with a full hour of latencies in whole milliseconds (a few
//! hundred distinct values in an hour) the windows take about 7 MiB. [`Windows::expire`], on
//! every tick, packs the slots that closed and forgets groups whose every slot is stale, so a
//! router that stops sending lines stops holding memory.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::history::HistoryDoc;
use crate::aggregate::{GroupKey, StatusClasses};
use crate::format::StatusClass;
use crate::histogram::{WindowHistogram, WindowMerge};

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
    /// The start of the slot that holds `at`.
    const fn slot_start(&self, at: i64) -> i64 {
        at.div_euclid(self.slot_seconds) * self.slot_seconds
    }

    /// Where the slot that starts at `start` sits in a ring.
    const fn position(&self, start: i64) -> usize {
        start
            .div_euclid(self.slot_seconds)
            .rem_euclid(self.slots as i64) as usize
    }

    /// The start of the oldest slot of the window that holds `now`.
    const fn first_start(&self, now: i64) -> i64 {
        (now.div_euclid(self.slot_seconds) + 1 - self.slots as i64) * self.slot_seconds
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

/// Slots of all windows of one group: `WINDOWS[0].slots` of the first, then the second's...
const SLOTS_PER_GROUP: usize = WINDOWS[0].slots + WINDOWS[1].slots + WINDOWS[2].slots;

/// What one group did within one slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Slot {
    /// The start of the span counted, unix seconds; `i64::MIN` for a slot never used.
    start: i64,
    /// Requests by status class (a slot of 5 minutes would need 14 million requests a second
    /// of one class to overflow).
    classes: [u32; 6],
    /// Latencies, µs.
    latency: WindowHistogram,
}

impl Slot {
    fn reset(&mut self, start: i64) {
        self.start = start;
        self.classes = [0; 6];
        self.latency = WindowHistogram::default();
    }
}

/// The slots of one group.
#[derive(Debug)]
struct GroupSlots(Box<[Slot; SLOTS_PER_GROUP]>);

impl GroupSlots {
    fn new() -> Self {
        Self(Box::new(std::array::from_fn(|_| Slot {
            start: i64::MIN,
            ..Slot::default()
        })))
    }

    /// The slots of window `ring` (an index of [`WINDOWS`]).
    fn ring(&self, ring: usize) -> &[Slot] {
        let offset: usize = WINDOWS[..ring].iter().map(|spec| spec.slots).sum();
        &self.0[offset..offset + WINDOWS[ring].slots]
    }

    fn ring_mut(&mut self, ring: usize) -> &mut [Slot] {
        let offset: usize = WINDOWS[..ring].iter().map(|spec| spec.slots).sum();
        &mut self.0[offset..offset + WINDOWS[ring].slots]
    }
}

/// The figures of one group over one window.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct WindowFigures {
    /// Requests.
    pub(crate) requests: u64,
    /// Requests by status class.
    pub(crate) status_classes: StatusClasses,
    /// Latency percentiles, when some request logged its latency.
    pub(crate) latency: Option<Percentiles>,
}

/// One window as of a moment; its figures are computed by [`Summary::figures`].
#[derive(Debug)]
pub(crate) struct Summary<'a> {
    /// The window.
    pub(crate) spec: WindowSpec,
    /// The seconds it covers: from its oldest slot's start to now (slots are whole, so this is
    /// a little less than a slot beyond the window's length at most).
    pub(crate) seconds: i64,
    ring: usize,
    now: i64,
    windows: &'a Windows,
}

impl Summary<'_> {
    /// The figures of every group with requests in the window, with the groups `keep` refuses
    /// folded into `overflow` (the cap of the cumulative aggregate applied to the window).
    /// With `by` (indices of a key's values), the groups that share those values are one,
    /// keyed by them alone: their counts added, their latency histograms merged.
    pub(crate) fn figures(
        &self,
        overflow: &GroupKey,
        keep: impl Fn(&GroupKey) -> bool,
        by: Option<&[usize]>,
    ) -> Vec<(GroupKey, WindowFigures)> {
        let first_start = self.spec.first_start(self.now);
        let in_window = |slot: &&Slot| slot.start >= first_start && slot.start <= self.now;
        let mut merge = WindowMerge::default();
        let mut figures = Vec::new();
        let mut add = |slots: &[&GroupSlots], key: GroupKey, merge: &mut WindowMerge| {
            let mut classes = [0u64; 6];
            for slot in slots
                .iter()
                .flat_map(|group| group.ring(self.ring).iter().filter(in_window))
            {
                for (sum, count) in classes.iter_mut().zip(slot.classes) {
                    *sum += u64::from(count);
                }
                slot.latency.add_into(merge);
            }
            let requests: u64 = classes.iter().sum();
            if requests > 0 {
                figures.push((
                    key,
                    WindowFigures {
                        requests,
                        status_classes: StatusClasses::from_counts(classes),
                        latency: Percentiles::of(merge),
                    },
                ));
            }
            merge.clear();
        };
        // Groups made of several: the folded ones, and every group of a coarser grouping.
        let mut merged: BTreeMap<GroupKey, Vec<&GroupSlots>> = BTreeMap::new();
        for (key, slots) in &self.windows.groups {
            let kept = key != overflow && keep(key);
            match by {
                None if kept => add(&[slots], key.clone(), &mut merge),
                None => merged.entry(overflow.clone()).or_default().push(slots),
                Some(by) => {
                    let key = if kept { key } else { overflow };
                    merged.entry(key.project(by)).or_default().push(slots);
                }
            }
        }
        for (key, slots) in merged {
            add(&slots, key, &mut merge);
        }
        figures
    }
}

/// The three windows of every group; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Windows {
    groups: HashMap<GroupKey, GroupSlots, foldhash::fast::RandomState>,
}

impl Windows {
    /// Empty windows.
    pub(crate) fn new() -> Self {
        Self::default()
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
        let slots = match self.groups.get_mut(key) {
            Some(slots) => slots,
            None => self
                .groups
                .entry(GroupKey::from_encoded(key))
                .or_insert_with(GroupSlots::new),
        };
        let class = StatusClasses::index(class);
        for (ring, spec) in WINDOWS.iter().enumerate() {
            let start = spec.slot_start(at);
            let slot = &mut slots.ring_mut(ring)[spec.position(start)];
            if slot.start < start {
                // A span that left the window: the slot is reused.
                slot.reset(start);
            } else if slot.start > start {
                // Older than the window: in none of its slots.
                continue;
            }
            slot.classes[class] = slot.classes[class].saturating_add(1);
            if let Some(latency) = latency_us {
                slot.latency.record(latency);
            }
        }
    }

    /// The last hour of group `key` in its hour window's steps of 5 minutes, the last one in
    /// progress, as the page charts it: steps before `watched_from` (when this process started
    /// watching) with nothing counted are unknown. `None` when the group had no request in the
    /// hour (or is not known).
    pub(crate) fn hour(&self, key: &GroupKey, now: i64, watched_from: i64) -> Option<HistoryDoc> {
        const HOUR: usize = 2;
        let spec = WINDOWS[HOUR];
        let ring = self.groups.get(key)?.ring(HOUR);
        let first = spec.first_start(now);
        let mut doc = HistoryDoc::new(first, spec.slot_seconds, spec.slots);
        let mut merge = WindowMerge::default();
        let mut any = false;
        for start in (0..spec.slots as i64).map(|i| first + i * spec.slot_seconds) {
            let slot = &ring[spec.position(start)];
            if slot.start == start {
                any = true;
                let requests = slot
                    .classes
                    .iter()
                    .fold(0_u32, |sum, n| sum.saturating_add(*n));
                let errors = [StatusClass::ClientError, StatusClass::ServerError]
                    .map(|class| slot.classes[StatusClasses::index(class)]);
                doc.push_counted(requests, errors, &slot.latency, &mut merge);
            } else {
                doc.push_empty(start + spec.slot_seconds > watched_from);
            }
        }
        any.then_some(doc)
    }

    /// Packs the slots that closed by `now` (unix seconds) and forgets the groups whose every
    /// slot left its window, so that a router that stops sending lines stops holding memory.
    pub(crate) fn expire(&mut self, now: i64) {
        self.groups.retain(|_, slots| {
            let mut live = false;
            for (ring, spec) in WINDOWS.iter().enumerate() {
                let (open, first) = (spec.slot_start(now), spec.first_start(now));
                for slot in slots.ring_mut(ring) {
                    if slot.start < first {
                        if slot.start != i64::MIN {
                            slot.reset(i64::MIN);
                        }
                    } else {
                        live = true;
                        if slot.start < open {
                            slot.latency.shrink();
                        }
                    }
                }
            }
            live
        });
    }

    /// Each window as of `now` (unix seconds): the slot holding `now` and the slots before it,
    /// a window's worth.
    pub(crate) fn summarise(&self, now: i64) -> Vec<Summary<'_>> {
        WINDOWS
            .iter()
            .enumerate()
            .map(|(ring, spec)| Summary {
                spec: *spec,
                seconds: now - spec.first_start(now) + 1,
                ring,
                now,
                windows: self,
            })
            .collect()
    }

    /// Memory held by the windows' slots and keys, in bytes (without the map's own table).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|(key, slots)| {
                std::borrow::Borrow::<[u8]>::borrow(key).len()
                    + std::mem::size_of::<[Slot; SLOTS_PER_GROUP]>()
                    + slots
                        .0
                        .iter()
                        .map(|slot| slot.latency.heap_bytes())
                        .sum::<usize>()
            })
            .sum()
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
    pub(crate) fn of(histogram: &WindowMerge) -> Option<Self> {
        let [p50, p90, p99, p999] = histogram
            .quantiles([0.5, 0.9, 0.99, 0.999])
            .map(|micros| micros as f64 / 1e6);
        (histogram.count() > 0).then_some(Self {
            p50,
            p90,
            p99,
            p999,
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

    /// A window's name, the seconds it covers and its figures per group.
    type Figures = (&'static str, i64, Vec<(GroupKey, WindowFigures)>);

    /// Every window's figures as of `now`, sorted by key, nothing folded.
    fn figures(windows: &Windows, now: i64) -> Vec<Figures> {
        let overflow = GroupKey::overflow(1);
        windows
            .summarise(now)
            .iter()
            .map(|window| {
                let mut figures = window.figures(&overflow, |_| true, None);
                figures.sort_by(|a, b| a.0.cmp(&b.0));
                (window.spec.name, window.seconds, figures)
            })
            .collect()
    }

    fn requests(windows: &Windows, now: i64, router: &str) -> [u64; 3] {
        let figures = figures(windows, now);
        std::array::from_fn(|ring| {
            figures[ring]
                .2
                .iter()
                .find(|(key, _)| *key == group(router))
                .map_or(0, |(_, figures)| figures.requests)
        })
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
            windows.expire(t0 + second);
        }
        let now = t0 + 3599;
        let summary = figures(&windows, now);
        let seconds: Vec<(&str, i64)> = summary.iter().map(|w| (w.0, w.1)).collect();
        assert_eq!(seconds, [("1m", 60), ("5m", 300), ("1h", 3600)]);
        // The 1-minute window holds the current 10 s slot and the five before it.
        assert_eq!(requests(&windows, now, "a"), [60, 300, 3600]);
        let minute = &summary[0].2[0].1;
        assert_eq!(minute.status_classes.counts(), [0, 60, 0, 0, 0, 0]);
        // Latencies 4540..=4599 µs in counters 32 µs wide: p50 is the 30th, 4569, counted in
        // 4544..=4575; p90 the 54th, 4593, in 4576..=4607.
        assert_eq!(
            minute.latency,
            Some(Percentiles {
                p50: 0.004544,
                p90: 0.004576,
                p99: 0.004576,
                p999: 0.004576,
            })
        );
    }

    #[test]
    fn a_groups_hour_is_its_five_minute_steps_unknown_before_it_was_watched() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600; // a multiple of 300
        // Watched from t0 - 600: two steps of nothing, then a step of three requests (one a
        // 5xx), a step of none, and the step in progress with one.
        for (at, class) in [
            (t0, StatusClass::Success),
            (t0 + 10, StatusClass::ServerError),
            (t0 + 299, StatusClass::Success),
            (t0 + 610, StatusClass::Success),
        ] {
            windows.record(&key("a"), at, class, Some(250_000));
        }
        let now = t0 + 650;
        let hour = windows.hour(&group("a"), now, t0 - 600).expect("an hour");
        let doc = serde_json::to_value(&hour).expect("JSON");
        // Twelve steps ending with the one that holds `now`: t0 - 2700 .. t0 + 600.
        assert_eq!(doc["start_epoch_second"], t0 - 2700);
        assert_eq!(doc["step_seconds"], 300);
        let unknown = serde_json::Value::Null;
        let mut requests = vec![unknown.clone(); 7];
        requests.extend([0, 0, 3, 0, 1].map(serde_json::Value::from));
        assert_eq!(doc["requests"], serde_json::Value::Array(requests));
        assert_eq!(doc["errors_5xx"][9], 1);
        assert_eq!(doc["errors_4xx"][9], 0);
        // 250 ms at two significant digits: the lower bound of its counter.
        assert_eq!(doc["p50_seconds"][9], 0.249856);
        assert_eq!(doc["p99_seconds"][10], unknown);
        // A group without a request in the hour has no hour.
        assert_eq!(windows.hour(&group("b"), now, t0), None);
        assert_eq!(windows.hour(&group("a"), t0 + 7200, t0), None);
    }

    #[test]
    fn groups_that_share_the_values_asked_for_are_one() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600;
        let two = |router: &str, service: &str| GroupKey::new([router, service]);
        let record = |windows: &mut Windows, key: &GroupKey, latency_us: u64| {
            let encoded = std::borrow::Borrow::<[u8]>::borrow(key).to_vec();
            windows.record(&encoded, t0, StatusClass::Success, Some(latency_us));
        };
        for _ in 0..3 {
            record(&mut windows, &two("a", "x"), 1_000);
        }
        record(&mut windows, &two("a", "y"), 9_000);
        record(&mut windows, &two("b", "x"), 5_000);
        // `c` is past the cap: by router, it is in `(overflow)`.
        record(&mut windows, &two("c", "z"), 5_000);
        let summary = windows.summarise(t0 + 5);
        let overflow = GroupKey::overflow(2);
        let mut by_router = summary[0].figures(&overflow, |key| *key != two("c", "z"), Some(&[0]));
        by_router.sort_by(|a, b| a.0.cmp(&b.0));
        let rows: Vec<(GroupKey, u64, f64)> = by_router
            .into_iter()
            .map(|(key, figures)| (key, figures.requests, figures.latency.expect("latency").p99))
            .collect();
        assert_eq!(
            rows,
            [
                (GroupKey::new(["(overflow)"]), 1, 0.004_992),
                (GroupKey::new(["a"]), 4, 0.008_960),
                (GroupKey::new(["b"]), 1, 0.004_992),
            ]
        );
        // By service (the second value), across routers.
        let by_service = summary[0].figures(&overflow, |_| true, Some(&[1]));
        let x = by_service
            .iter()
            .find(|(key, _)| *key == GroupKey::new(["x"]));
        assert_eq!(x.map(|(_, figures)| figures.requests), Some(4));
    }

    #[test]
    fn old_requests_and_quiet_groups_fall_out() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600;
        windows.record(&key("a"), t0, StatusClass::ServerError, None);
        windows.record(&key("b"), t0 + 100, StatusClass::Success, Some(5));
        // Late line for a slot that left the 1-minute window: only longer windows count it.
        windows.record(&key("a"), t0 + 10, StatusClass::ServerError, None);
        assert_eq!(requests(&windows, t0 + 100, "a"), [0, 2, 2]);
        assert_eq!(requests(&windows, t0 + 100, "b"), [1, 1, 1]);
        // A line older than every window: counted nowhere.
        windows.record(&key("b"), t0 - 4000, StatusClass::Success, None);
        assert_eq!(requests(&windows, t0 + 100, "b"), [1, 1, 1]);
        // Nothing arrived for two hours: the windows are empty and hold no memory.
        assert!(figures(&windows, t0 + 7200).iter().all(|w| w.2.is_empty()));
        windows.expire(t0 + 7200);
        assert!(windows.groups.is_empty());
        assert_eq!(windows.heap_bytes(), 0);
    }

    #[test]
    fn a_late_line_for_a_slot_that_had_none_yet_is_counted() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600;
        // The newer slot first (nginx logs a long request after a short one that started
        // later), then lines for two older slots that had no line yet.
        for at in [t0 + 15, t0 + 5, t0 - 25, t0 + 9] {
            windows.record(&key("a"), at, StatusClass::Success, Some(5));
        }
        assert_eq!(requests(&windows, t0 + 20, "a"), [4, 4, 4]);
        // Past the 1-minute window (its slot is now t0's): counted by the longer ones only.
        windows.record(&key("a"), t0 - 60, StatusClass::Success, Some(5));
        assert_eq!(requests(&windows, t0 + 20, "a"), [4, 5, 5]);
    }

    #[test]
    fn a_slot_of_a_span_gone_by_is_reused_for_the_new_span() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600;
        windows.record(&key("a"), t0, StatusClass::Success, Some(7));
        // 60 s later the 10 s slot of t0 is the one of t0 + 60 (six slots in the ring).
        windows.record(&key("a"), t0 + 60, StatusClass::ClientError, Some(9));
        let summary = figures(&windows, t0 + 60);
        assert_eq!(
            summary[0].2[0].1.status_classes.counts(),
            [0, 0, 0, 1, 0, 0]
        );
        assert_eq!(summary[0].2[0].1.latency.map(|p| p.p50), Some(0.000009));
        assert_eq!(summary[1].2[0].1.requests, 2);
    }

    #[test]
    fn groups_past_the_cap_fold_into_overflow() {
        let mut windows = Windows::new();
        let t0 = 1_741_521_600;
        let overflow = group("(overflow)");
        for router in ["a", "b", "c", "(overflow)"] {
            windows.record(&key(router), t0, StatusClass::Success, Some(10));
        }
        let minute = windows.summarise(t0).swap_remove(0);
        let mut figures = minute.figures(&overflow, |key| *key == group("a"), None);
        figures.sort_by(|a, b| a.0.cmp(&b.0));
        let requests: Vec<(GroupKey, u64)> = figures
            .iter()
            .map(|(key, figures)| (key.clone(), figures.requests))
            .collect();
        assert_eq!(requests, [(overflow, 3), (group("a"), 1)]);
    }

    #[test]
    fn percentiles_are_in_seconds() {
        let mut histogram = WindowHistogram::default();
        for micros in [1_000, 2_000, 3_000, 4_000] {
            histogram.record(micros);
        }
        let mut merge = WindowMerge::default();
        histogram.add_into(&mut merge);
        assert_eq!(
            Percentiles::of(&merge),
            Some(Percentiles {
                p50: 0.002,
                p90: 0.004,
                p99: 0.004,
                p999: 0.004
            })
        );
        merge.clear();
        assert_eq!(Percentiles::of(&merge), None);
    }

    /// The memory figures of `BENCHMARKS.md`: `cargo test --release -p vantage-edge --lib
    /// full_hour -- --ignored --nocapture`.
    #[test]
    #[ignore = "a minute of work: run with --release"]
    fn a_full_hour_of_a_thousand_groups_stays_within_its_budget() {
        // 1 000 groups, 10 requests a second each for an hour (the flood of the serve bench),
        // latencies log-normal: (median ms, sigma, resolution µs) of each route drawn from.
        let one_route = [(20.0, 0.8, 1000)];
        // Every route of the synthetic model, as loadgen gives each path requests of all.
        let every_route = [
            (18.0, 0.7, 1000),
            (12.0, 0.8, 1000),
            (45.0, 0.9, 1000),
            (25.0, 0.6, 1000),
            (6.0, 1.1, 1000),
            (35.0, 0.5, 1000),
            (150.0, 0.8, 1000),
            (900.0, 1.0, 1000),
        ];
        let microseconds = [(20.0, 0.8, 1)];
        /// A model's name, its routes' (median ms, sigma, resolution µs), its budget in MiB.
        type Model<'a> = (&'a str, &'a [(f64, f64, u64)], usize);
        let models: [Model<'_>; 3] = [
            ("one route, whole ms", &one_route, 8),
            ("every route, whole ms", &every_route, 20),
            ("one route, µs", &microseconds, 24),
        ];
        for (name, routes, budget_mib) in models {
            let mut windows = Windows::new();
            let mut rng = fastrand::Rng::with_seed(7);
            let keys: Vec<Vec<u8>> = (0..1000).map(|n| key(&format!("/pages/{n}"))).collect();
            let t0 = 1_741_521_600;
            let mut at_ten_minutes = 0;
            for second in 0..3600 {
                for key in &keys {
                    for _ in 0..10 {
                        let (median, sigma, resolution) = routes[rng.usize(..routes.len())];
                        let normal = (-2.0 * (1.0 - rng.f64()).ln()).sqrt()
                            * (std::f64::consts::TAU * rng.f64()).cos();
                        let micros = (median * 1000.0 * (sigma * normal).exp()) as u64;
                        let micros = micros / resolution * resolution;
                        windows.record(key, t0 + second, StatusClass::Success, Some(micros));
                    }
                }
                windows.expire(t0 + second);
                if second == 599 {
                    at_ten_minutes = windows.heap_bytes();
                }
            }
            let requests = figures(&windows, t0 + 3599)
                .iter()
                .map(|w| w.2.iter().map(|(_, f)| f.requests).sum::<u64>())
                .collect::<Vec<_>>();
            assert_eq!(requests, [600_000, 3_000_000, 36_000_000]);
            let bytes = windows.heap_bytes();
            eprintln!(
                "windows of 1 000 groups, {name}: {} KiB after 10 minutes, {} KiB after an hour",
                at_ten_minutes >> 10,
                bytes >> 10
            );
            assert!(bytes < budget_mib << 20, "{name}: {} KiB", bytes >> 10);
        }
    }
}

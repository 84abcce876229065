//! The reconciliation over the last minute, 5 minutes and hour.
//!
//! At every scrape round after the start the reconciler records both sides' counts since the
//! start, per route (a mark); a window is the difference between the newest mark and the one
//! closest to a window's length before it. Both ends are scrape rounds, so the edge and the
//! services are read at the same moments, as for the counts since the start. A window the
//! history does not reach back to yet covers what there is and is `partial`, with its
//! `covered_seconds`.
//!
//! Bounded: marks are kept every 10 s for the last 6 minutes and every 5 minutes for the hour
//! before (about 50), each six counters per route (routes capped by the services' scrapes).

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::service::MAX_ROUTES;
use super::since_start::{RouteCounts, RouteReconciliation, row};

/// The windows, in seconds.
pub const WINDOWS: [u64; 3] = [60, 300, 3_600];

/// Marks this recent are kept every [`FINE_STEP`] seconds; older ones every [`COARSE_STEP`].
const FINE_SPAN: f64 = 360.0;
const FINE_STEP: f64 = 10.0;
const COARSE_STEP: f64 = 300.0;
/// Marks older than this are dropped: the longest window and one coarse step.
const KEPT: f64 = 3_600.0 + COARSE_STEP;

/// Requests, proxy errors and 499s of the edge, then of the services.
type Pair = [u64; 6];

/// Both sides' counts since the start at one round.
#[derive(Debug, Clone)]
struct Mark {
    at: f64,
    /// By route index; routes first seen later are not there (zeros).
    pairs: Vec<Pair>,
}

/// The marks; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    routes: Vec<String>,
    index: HashMap<String, usize>,
    marks: VecDeque<Mark>,
}

/// One window's reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowReconciliation {
    /// The window's length.
    pub seconds: u64,
    /// How much of it the history covers (less than `seconds` early on).
    pub covered_seconds: f64,
    /// One row per route (no latency split: that is since the start only).
    pub routes: Vec<RouteReconciliation>,
}

impl History {
    /// Records the counts since the start of a round at `at`.
    pub(crate) fn record(
        &mut self,
        at: f64,
        since_start: &BTreeMap<String, (RouteCounts, RouteCounts)>,
    ) {
        let mut pairs = vec![[0; 6]; self.routes.len()];
        for (route, (edge, service)) in since_start {
            let index = match self.index.get(route) {
                Some(&index) => index,
                None if self.routes.len() < MAX_ROUTES => {
                    self.index.insert(route.clone(), self.routes.len());
                    self.routes.push(route.clone());
                    pairs.push([0; 6]);
                    self.routes.len() - 1
                }
                None => continue,
            };
            pairs[index] = [
                edge.requests,
                edge.proxy_errors,
                edge.cancelled,
                service.requests,
                service.proxy_errors,
                service.cancelled,
            ];
        }
        self.marks.push_back(Mark { at, pairs });
        self.thin(at);
    }

    /// Keeps the newest mark, and of the others the first of each fine step recently, of each
    /// coarse step before, none past the hour: a window's start then falls on a kept mark.
    fn thin(&mut self, now: f64) {
        let Some(newest) = self.marks.pop_back() else {
            return;
        };
        let mut kept: VecDeque<Mark> = VecDeque::with_capacity(self.marks.len() + 1);
        let mut last_slot: Option<(f64, f64)> = None;
        for mark in self.marks.drain(..) {
            let age = now - mark.at;
            if age > KEPT {
                continue;
            }
            let step = if age <= FINE_SPAN {
                FINE_STEP
            } else {
                COARSE_STEP
            };
            let slot = (step, (mark.at / step).floor());
            if last_slot != Some(slot) {
                last_slot = Some(slot);
                kept.push_back(mark);
            }
        }
        kept.push_back(newest);
        self.marks = kept;
    }

    /// Every window from the newest mark back; `partial` rows when `partial_reasons` say so or
    /// the history does not reach back a whole window.
    /// `measured` says whether some service measures a route (see [`row`]).
    pub(crate) fn windows(
        &self,
        partial_reasons: &[String],
        measured: impl Fn(&str) -> bool,
    ) -> Vec<WindowReconciliation> {
        let Some(newest) = self.marks.back() else {
            return Vec::new();
        };
        WINDOWS
            .iter()
            .map(|&seconds| {
                let wanted = newest.at - seconds as f64;
                // The latest mark at or before the window's start, else the oldest.
                let from = self
                    .marks
                    .iter()
                    .rev()
                    .find(|mark| mark.at <= wanted)
                    .or_else(|| self.marks.front())
                    .unwrap_or(newest);
                let covered = newest.at - from.at;
                let partial = !partial_reasons.is_empty() || covered + 1e-9 < seconds as f64;
                let mut routes: Vec<RouteReconciliation> = self
                    .routes
                    .iter()
                    .enumerate()
                    .filter_map(|(index, route)| {
                        let now = newest.pairs.get(index).copied().unwrap_or_default();
                        let then = from.pairs.get(index).copied().unwrap_or_default();
                        let diff: Pair = std::array::from_fn(|i| now[i].saturating_sub(then[i]));
                        (diff != [0; 6]).then(|| {
                            let side = |n: &[u64]| RouteCounts {
                                requests: n[0],
                                proxy_errors: n[1],
                                cancelled: n[2],
                                ..RouteCounts::default()
                            };
                            let (edge, service) = (side(&diff[..3]), side(&diff[3..]));
                            row(route, &edge, &service, partial, measured(route))
                        })
                    })
                    .collect();
                routes.sort_by(|a, b| a.route.cmp(&b.route));
                WindowReconciliation {
                    seconds,
                    covered_seconds: covered,
                    routes,
                }
            })
            .collect()
    }

    #[cfg(test)]
    fn mark_times(&self) -> Vec<f64> {
        self.marks.iter().map(|mark| mark.at).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(requests: u64, proxy_errors: u64) -> RouteCounts {
        RouteCounts {
            requests,
            proxy_errors,
            ..RouteCounts::default()
        }
    }

    /// A round at `at` where, since the start, the edge logged `edge` requests of `/a` (of them
    /// `proxy` answered 502 by the proxy) and the service ended `service`.
    fn round(history: &mut History, at: f64, edge: u64, proxy: u64, service: u64) {
        let since = BTreeMap::from([("/a".to_owned(), (counts(edge, proxy), counts(service, 0)))]);
        history.record(at, &since);
    }

    #[test]
    fn a_window_is_the_difference_since_the_round_a_window_before() {
        let mut history = History::default();
        // One round every 5 s for 10 minutes: 10 requests a round, one of them lost to a 502.
        for n in 0..=120_u64 {
            round(&mut history, 1_000.0 + 5.0 * n as f64, 10 * n, n, 9 * n);
        }
        let windows = history.windows(&[], |_| true);
        let minute = &windows[0];
        assert_eq!((minute.seconds, minute.covered_seconds), (60, 60.0));
        let a = &minute.routes[0];
        assert_eq!(
            (a.edge_requests, a.service_requests, a.lost),
            (120, 108, 12)
        );
        assert_eq!(a.reasons.proxy_answered, 12);
        assert!(!a.partial);
        let five = &windows[1];
        assert_eq!(
            (five.covered_seconds, five.routes[0].edge_requests),
            (300.0, 600)
        );
        // The hour is not there yet: what there is, partial.
        let hour = &windows[2];
        assert_eq!(hour.covered_seconds, 600.0);
        assert_eq!(hour.routes[0].edge_requests, 1_200);
        assert!(hour.routes[0].partial);
    }

    #[test]
    fn marks_are_thinned_and_bounded() {
        let mut history = History::default();
        // Two hours of rounds every 5 s.
        for n in 0..=1_440_u64 {
            round(&mut history, 5.0 * n as f64, n, 0, n);
        }
        let times = history.mark_times();
        assert!(times.len() <= 50, "{} marks", times.len());
        let newest = *times.last().unwrap();
        assert_eq!(newest, 7_200.0);
        assert!(times.iter().all(|at| newest - at <= KEPT));
        // The hour is covered from a mark at most a coarse step past its start.
        let hour = &history.windows(&[], |_| true)[2];
        assert!(hour.covered_seconds >= 3_600.0, "{}", hour.covered_seconds);
        assert!(!hour.routes[0].partial);
    }

    #[test]
    fn an_instance_failing_makes_every_window_partial() {
        let mut history = History::default();
        for n in 0..=20_u64 {
            round(&mut history, 5.0 * n as f64, n, 0, n);
        }
        let windows = history.windows(&["a: its last scrape failed".to_owned()], |_| true);
        assert!(windows.iter().all(|w| w.routes.iter().all(|r| r.partial)));
    }
}

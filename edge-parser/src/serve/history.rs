//! The last hour of all traffic in steps of 10 s, for the page's chart: requests, 4xx, 5xx,
//! p50 and p99 per step.
//!
//! Like the [windows](super::window), a ring of steps where a request is counted by its own
//! time, a step reused once its span has left the hour. What this process did not watch is
//! not known: a step before it started, with nothing read into it from a backlog, is `null`
//! in the summary, never zero traffic.
//!
//! # Memory
//!
//! 360 steps, each with a [`WindowHistogram`] (about two bytes per distinct latency once
//! packed): tens of KiB at most, whatever the number of groups. In the summary, four arrays
//! of 360 numbers (about 10 KiB of JSON).

use serde::Serialize;

use crate::format::StatusClass;
use crate::histogram::{WindowHistogram, WindowMerge};

/// Seconds per step.
pub(crate) const STEP_SECONDS: i64 = 10;
/// Steps kept: an hour.
pub(crate) const STEPS: usize = 360;

/// The history; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct History {
    steps: Vec<Step>,
    /// When this process started watching, unix seconds.
    watched_from: i64,
}

#[derive(Debug, Default)]
struct Step {
    /// The start of the span counted, unix seconds; `i64::MIN` for a step never used.
    start: i64,
    requests: u32,
    /// 4xx and 5xx answers.
    errors: [u32; 2],
    /// Latencies, µs.
    latency: WindowHistogram,
}

/// The history as `/api/summary` shows it: `requests[i]` is the step that starts at
/// `start_epoch_second + i * step_seconds`, the last one in progress.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct HistoryDoc {
    start_epoch_second: i64,
    step_seconds: i64,
    requests: Vec<Option<u32>>,
    errors_4xx: Vec<Option<u32>>,
    errors_5xx: Vec<Option<u32>>,
    p50_seconds: Vec<Option<f64>>,
    p99_seconds: Vec<Option<f64>>,
}

impl History {
    /// An empty history of a process that started watching at `watched_from` (unix seconds).
    pub(crate) fn new(watched_from: i64) -> Self {
        Self {
            steps: (0..STEPS)
                .map(|_| Step {
                    start: i64::MIN,
                    ..Step::default()
                })
                .collect(),
            watched_from,
        }
    }

    /// Counts a request made at `at` (unix seconds), of status class `class`, with its
    /// latency if logged.
    pub(crate) fn record(&mut self, at: i64, class: StatusClass, latency_us: Option<u64>) {
        let start = at.div_euclid(STEP_SECONDS) * STEP_SECONDS;
        let step = &mut self.steps[position(start)];
        if step.start < start {
            // A span that left the hour: the step is reused.
            *step = Step {
                start,
                ..Step::default()
            };
        } else if step.start > start {
            // Older than the hour.
            return;
        }
        step.requests = step.requests.saturating_add(1);
        let error = match class {
            StatusClass::ClientError => Some(0),
            StatusClass::ServerError => Some(1),
            _ => None,
        };
        if let Some(error) = error {
            step.errors[error] = step.errors[error].saturating_add(1);
        }
        if let Some(latency) = latency_us {
            step.latency.record(latency);
        }
    }

    /// The hour that ends with the step holding `now`.
    pub(crate) fn summarise(&self, now: i64) -> HistoryDoc {
        let first = (now.div_euclid(STEP_SECONDS) + 1 - STEPS as i64) * STEP_SECONDS;
        let mut doc = HistoryDoc::new(first, STEP_SECONDS, STEPS);
        let mut merge = WindowMerge::default();
        for start in (0..STEPS as i64).map(|i| first + i * STEP_SECONDS) {
            let step = &self.steps[position(start)];
            if step.start == start {
                doc.push_counted(step.requests, step.errors, &step.latency, &mut merge);
            } else {
                doc.push_empty(start + STEP_SECONDS > self.watched_from);
            }
        }
        doc
    }
}

impl HistoryDoc {
    /// A history of `steps` steps of `step_seconds` from `start_epoch_second`, to be pushed.
    pub(crate) fn new(start_epoch_second: i64, step_seconds: i64, steps: usize) -> Self {
        Self {
            start_epoch_second,
            step_seconds,
            requests: Vec::with_capacity(steps),
            errors_4xx: Vec::with_capacity(steps),
            errors_5xx: Vec::with_capacity(steps),
            p50_seconds: Vec::with_capacity(steps),
            p99_seconds: Vec::with_capacity(steps),
        }
    }

    /// The next step: what was counted in it, its 4xx and 5xx in `errors` (`merge` is a
    /// buffer, reused from step to step).
    pub(crate) fn push_counted(
        &mut self,
        requests: u32,
        errors: [u32; 2],
        latency: &WindowHistogram,
        merge: &mut WindowMerge,
    ) {
        merge.clear();
        latency.add_into(merge);
        let [p50, p99] = merge.quantiles([0.5, 0.99]).map(|us| us as f64 / 1e6);
        let known = merge.count() > 0;
        self.requests.push(Some(requests));
        self.errors_4xx.push(Some(errors[0]));
        self.errors_5xx.push(Some(errors[1]));
        self.p50_seconds.push(known.then_some(p50));
        self.p99_seconds.push(known.then_some(p99));
    }

    /// The next step, with nothing counted in it: no traffic if it was `watched`, otherwise
    /// unknown (`null`).
    pub(crate) fn push_empty(&mut self, watched: bool) {
        let zero = watched.then_some(0);
        self.requests.push(zero);
        self.errors_4xx.push(zero);
        self.errors_5xx.push(zero);
        self.p50_seconds.push(None);
        self.p99_seconds.push(None);
    }
}

/// Where the step that starts at `start` sits in the ring.
fn position(start: i64) -> usize {
    start.div_euclid(STEP_SECONDS).rem_euclid(STEPS as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_741_521_600;

    #[test]
    fn steps_before_the_start_are_unknown_and_after_it_zero() {
        let history = History::new(T0);
        let doc = history.summarise(T0 + 25);
        assert_eq!(doc.requests.len(), STEPS);
        assert_eq!(doc.start_epoch_second, T0 + 20 - (STEPS as i64 - 1) * 10);
        let tail = &doc.requests[STEPS - 4..];
        assert_eq!(tail, [None, Some(0), Some(0), Some(0)]);
        assert_eq!(doc.p99_seconds[STEPS - 1], None);
    }

    #[test]
    fn requests_count_in_the_step_of_their_own_time() {
        let mut history = History::new(T0 + 3600);
        // A backlog read late lands in its steps, known though before the start.
        history.record(T0 + 3000, StatusClass::Success, Some(2_000));
        history.record(T0 + 3005, StatusClass::ServerError, Some(40_000));
        history.record(T0 + 3006, StatusClass::ClientError, None);
        history.record(T0 + 3599, StatusClass::Success, None);
        // Older than the hour: nowhere.
        history.record(T0, StatusClass::Success, Some(1));
        let doc = history.summarise(T0 + 3600);
        let at = |t: i64| ((t - doc.start_epoch_second) / STEP_SECONDS) as usize;
        assert_eq!(doc.requests[at(T0 + 3000)], Some(3));
        assert_eq!(doc.errors_5xx[at(T0 + 3000)], Some(1));
        assert_eq!(doc.errors_4xx[at(T0 + 3000)], Some(1));
        assert_eq!(doc.p50_seconds[at(T0 + 3000)], Some(0.002));
        // The low end of the histogram's counter: within 1 % below.
        assert_eq!(doc.p99_seconds[at(T0 + 3000)], Some(0.039_936));
        assert_eq!(doc.requests[at(T0 + 3599)], Some(1));
        assert_eq!(doc.p50_seconds[at(T0 + 3599)], None);
        assert_eq!(doc.requests[at(T0 + 2990)], None);
        assert_eq!(doc.requests.iter().flatten().sum::<u32>(), 4);
    }

    #[test]
    fn a_step_is_reused_an_hour_later() {
        let mut history = History::new(T0);
        history.record(T0, StatusClass::Success, Some(1_000));
        history.record(T0 + 3600, StatusClass::Success, Some(1_000));
        let doc = history.summarise(T0 + 3600);
        assert_eq!(doc.requests.iter().flatten().sum::<u32>(), 1);
        assert_eq!(doc.requests[STEPS - 1], Some(1));
    }
}

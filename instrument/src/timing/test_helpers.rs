//! Reading function metrics back from a `metrics-util` debugging recorder.

use std::time::Duration;

use metrics::Unit;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, Snapshotter};

use crate::names;

/// The function metrics of one snapshot (taking it drains the recorded histogram samples).
#[derive(Debug)]
pub(super) struct Recorded {
    /// `(function, module, result, count)` per counter.
    calls: Vec<(String, String, String, u64)>,
    /// `(function, module, samples)` per histogram.
    durations: Vec<(String, String, Vec<f64>)>,
    /// Units described for the duration histogram.
    duration_units: Vec<Unit>,
}

impl Recorded {
    pub(super) fn take(snapshotter: &Snapshotter) -> Self {
        let mut recorded = Self {
            calls: Vec::new(),
            durations: Vec::new(),
            duration_units: Vec::new(),
        };
        for (key, unit, _description, value) in snapshotter.snapshot().into_vec() {
            let label = |name: &str| {
                key.key()
                    .labels()
                    .find(|label| label.key() == name)
                    .map(|label| label.value().to_owned())
                    .unwrap_or_default()
            };
            let (function, module) = (label(names::FUNCTION), label(names::MODULE));
            match (key.kind(), key.key().name(), value) {
                (MetricKind::Counter, names::FUNCTION_CALLS_TOTAL, DebugValue::Counter(count)) => {
                    let result = label(names::RESULT);
                    recorded.calls.push((function, module, result, count));
                }
                (
                    MetricKind::Histogram,
                    names::FUNCTION_CALLS_DURATION,
                    DebugValue::Histogram(samples),
                ) => {
                    assert_eq!(key.key().labels().count(), 2, "duration labels: {key:?}");
                    recorded.duration_units.extend(unit);
                    let samples = samples.into_iter().map(|sample| sample.0).collect();
                    recorded.durations.push((function, module, samples));
                }
                other => panic!("unexpected metric {other:?}"),
            }
        }
        recorded
    }

    /// Calls of `function` in `module` recorded with `result`.
    pub(super) fn calls(&self, function: &str, module: &str, result: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(f, m, r, _)| {
                (f.as_str(), m.as_str(), r.as_str()) == (function, module, result)
            })
            .map(|(.., count)| count)
            .sum()
    }

    /// Calls of `function` in `module` as `[ok, error, cancelled]`.
    pub(super) fn results(&self, function: &str, module: &str) -> [u64; 3] {
        ["ok", "error", "cancelled"].map(|result| self.calls(function, module, result))
    }

    /// Every call recorded, whatever its labels.
    pub(super) fn total_calls(&self) -> u64 {
        self.calls.iter().map(|(.., count)| count).sum()
    }

    /// The duration samples of `function` in `module`, in seconds.
    pub(super) fn durations(&self, function: &str, module: &str) -> Vec<f64> {
        self.durations
            .iter()
            .filter(|(f, m, _)| (f.as_str(), m.as_str()) == (function, module))
            .flat_map(|(.., samples)| samples.iter().copied())
            .collect()
    }

    /// Whether the duration histogram was described in seconds.
    pub(super) fn durations_in_seconds(&self) -> bool {
        self.duration_units
            .iter()
            .all(|unit| *unit == Unit::Seconds)
            && !self.duration_units.is_empty()
    }
}

/// Relative tolerance between the clock the samples are measured with (`quanta`, calibrated
/// against the OS clock) and the OS clock the bounds are measured with.
const CLOCK_TOLERANCE: f64 = 0.01;

/// Asserts that every sample lies between `at_least` (a sleep inside the call) and `at_most`
/// (the time the test measured around the call), give or take [`CLOCK_TOLERANCE`], so that no
/// assertion depends on scheduling.
pub(super) fn assert_bracketed(samples: &[f64], at_least: Duration, at_most: Duration) {
    assert!(!samples.is_empty(), "no duration recorded");
    let low = at_least.as_secs_f64() * (1.0 - CLOCK_TOLERANCE);
    let high = at_most.as_secs_f64() * (1.0 + CLOCK_TOLERANCE);
    for &sample in samples {
        assert!(
            (low..=high).contains(&sample),
            "duration {sample}s outside [{at_least:?}, {at_most:?}]"
        );
    }
}

/// Asserts that every sample is at least `at_least`, give or take [`CLOCK_TOLERANCE`].
pub(super) fn assert_at_least(samples: &[f64], at_least: Duration) {
    assert_bracketed(samples, at_least, Duration::MAX / 2);
}

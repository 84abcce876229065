//! How a finished call becomes metrics: the `result` label and the handles it records into.

use std::time::Duration;

use metrics::{Counter, Histogram, Key, Level, Metadata, Recorder, Unit};

use crate::names;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// How a timed call ended: the value of the `result` label of `function_calls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallResult {
    /// The call completed and did not fail.
    Ok,
    /// The call returned an error or panicked.
    Error,
    /// The call started and was abandoned before it completed (a dropped future).
    Cancelled,
}

impl CallResult {
    /// Every result, in the order of [`CallResult::index`].
    const ALL: [Self; 3] = [Self::Ok, Self::Error, Self::Cancelled];

    /// The label value: `ok`, `error` or `cancelled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }

    /// A dense index, `0..3`, for arrays of handles or labels.
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Ok => 0,
            Self::Error => 1,
            Self::Cancelled => 2,
        }
    }
}

/// A value that tells how the call which produced it went.
///
/// Implemented for [`Result`] (`Err` is an error), `()` and [`CallResult`]; implement it for
/// your own return types to time them with [`TimedExt::timed`](super::TimedExt::timed).
pub trait Outcome {
    /// The `result` label of the call that produced `self`.
    fn call_result(&self) -> CallResult;
}

impl<T, E> Outcome for Result<T, E> {
    fn call_result(&self) -> CallResult {
        match self {
            Ok(_) => CallResult::Ok,
            Err(_) => CallResult::Error,
        }
    }
}

impl Outcome for () {
    fn call_result(&self) -> CallResult {
        CallResult::Ok
    }
}

impl Outcome for CallResult {
    fn call_result(&self) -> CallResult {
        *self
    }
}

/// The handles of one timed function: a counter per result and the duration histogram.
#[derive(Debug)]
pub(crate) struct FunctionHandles {
    calls: [Counter; 3],
    duration: Histogram,
}

impl FunctionHandles {
    /// Registers the handles of a function with `recorder`. `call_key` gives the counter key of
    /// each result; `duration` is the histogram key.
    #[cold]
    pub(crate) fn register(
        recorder: &dyn Recorder,
        call_key: impl Fn(CallResult) -> Key,
        duration: &Key,
    ) -> Self {
        recorder.describe_counter(
            names::FUNCTION_CALLS_TOTAL.into(),
            None,
            "Calls of timed functions, by result.".into(),
        );
        recorder.describe_histogram(
            names::FUNCTION_CALLS_DURATION.into(),
            Some(Unit::Seconds),
            "Duration of timed function calls.".into(),
        );
        Self {
            calls: CallResult::ALL
                .map(|result| recorder.register_counter(&call_key(result), &METADATA)),
            duration: recorder.register_histogram(duration, &METADATA),
        }
    }

    /// Records one finished call: two atomic operations on handles resolved in advance.
    #[inline]
    pub(crate) fn record(&self, result: CallResult, elapsed: Duration) {
        self.calls[result.index()].increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// Runs `register` with the current `metrics` recorder (the thread's local one, else the global
/// one, else the no-op one) and whether handles registered with it may be cached.
///
/// Handles from a zero-sized recorder are not cached: such a recorder holds no metric, and the
/// no-op recorder `metrics` falls back on before an exporter is installed is one of them. Caching
/// its handles would lose every call made after the exporter is installed.
pub(crate) fn with_current_recorder<T>(register: impl FnOnce(&dyn Recorder, bool) -> T) -> T {
    metrics::with_recorder(|recorder| register(recorder, size_of_val(recorder) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_have_the_autometrics_label_values() {
        let values = CallResult::ALL.map(CallResult::as_str);
        assert_eq!(values, ["ok", "error", "cancelled"]);
        for (index, result) in CallResult::ALL.into_iter().enumerate() {
            assert_eq!(result.index(), index);
        }
    }

    #[test]
    fn results_are_errors_only_for_err() {
        assert_eq!(Ok::<u8, ()>(1).call_result(), CallResult::Ok);
        assert_eq!(Err::<u8, ()>(()).call_result(), CallResult::Error);
        assert_eq!(().call_result(), CallResult::Ok);
        assert_eq!(CallResult::Cancelled.call_result(), CallResult::Cancelled);
    }
}

//! The fast path: call sites that resolve their metric handles once, a stopwatch guard, the
//! [`timed!`](crate::timed) and [`call_site!`](crate::call_site) macros, and a future wrapper.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use metrics::{Key, Label};
use pin_project::pin_project;
use quanta::Instant;

use super::record::{CallResult, FunctionHandles, Outcome, with_current_recorder};
use crate::names;

/// One timed function or block: its `function` and `module` labels and, once resolved, its
/// metric handles.
///
/// Declare it in a `static`, usually through [`call_site!`](crate::call_site), which fills in
/// `module_path!()`. The handles are registered on the first call, with the recorder current on
/// that thread (as [`metrics::with_recorder`] finds it), and every later call records into
/// them: two atomic operations, no allocation, no lock and no label building. Like any `metrics`
/// handle they stay bound to that recorder. Calls made while only the no-op recorder is
/// available (before an exporter is installed) go to it without being cached, so the calls made
/// once the exporter is installed are recorded.
///
/// See the [module docs](super) for an example.
pub struct CallSite {
    /// Counter labels (function, module, result) per result, indexed by `CallResult::index`.
    /// The duration key is the first two labels of any of them.
    labels: [[Label; 3]; 3],
    handles: OnceLock<FunctionHandles>,
}

impl CallSite {
    /// A call site for `function` in `module`; both become label values.
    pub const fn new(function: &'static str, module: &'static str) -> Self {
        Self {
            labels: [
                call_labels(function, module, CallResult::Ok),
                call_labels(function, module, CallResult::Error),
                call_labels(function, module, CallResult::Cancelled),
            ],
            handles: OnceLock::new(),
        }
    }

    /// The `function` label value.
    pub fn function(&self) -> &str {
        self.labels[0][0].value()
    }

    /// The `module` label value.
    pub fn module(&self) -> &str {
        self.labels[0][1].value()
    }

    /// Starts timing a call. The returned [`Stopwatch`] records when it is stopped or dropped.
    #[inline]
    pub fn start(&'static self) -> Stopwatch {
        Stopwatch {
            site: self,
            start: Instant::now(),
            if_dropped: CallResult::Ok,
            stopped: false,
        }
    }

    /// Records one call that took `elapsed`, for callers that measure time themselves.
    #[inline]
    pub fn record(&'static self, result: CallResult, elapsed: Duration) {
        match self.handles.get() {
            Some(handles) => handles.record(result, elapsed),
            None => self.register_and_record(result, elapsed),
        }
    }

    #[cold]
    fn register_and_record(&'static self, result: CallResult, elapsed: Duration) {
        with_current_recorder(|recorder, cacheable| {
            let register = || {
                let duration =
                    Key::from_static_parts(names::FUNCTION_CALLS_DURATION, &self.labels[0][..2]);
                FunctionHandles::register(
                    recorder,
                    |result| {
                        Key::from_static_parts(
                            names::FUNCTION_CALLS_TOTAL,
                            &self.labels[result.index()],
                        )
                    },
                    &duration,
                )
            };
            if cacheable {
                self.handles.get_or_init(register).record(result, elapsed);
            } else {
                register().record(result, elapsed);
            }
        });
    }
}

const fn call_labels(
    function: &'static str,
    module: &'static str,
    result: CallResult,
) -> [Label; 3] {
    [
        Label::from_static_parts(names::FUNCTION, function),
        Label::from_static_parts(names::MODULE, module),
        Label::from_static_parts(names::RESULT, result.as_str()),
    ]
}

impl fmt::Debug for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSite")
            .field("function", &self.function())
            .field("module", &self.module())
            .field("registered", &self.handles.get().is_some())
            .finish()
    }
}

/// Times one call of a [`CallSite`] and records it exactly once: when stopped, or when dropped.
///
/// Stop it with [`ok`](Self::ok), [`error`](Self::error), [`observe`](Self::observe) or
/// [`stop`](Self::stop). Dropped without being stopped, it records
/// [`CallResult::Error`] while the thread panics and otherwise its
/// [`if_dropped`](Self::if_dropped) result, [`CallResult::Ok`] unless changed: held in a `let`,
/// it times the rest of the scope.
///
/// See the [module docs](super) for an example.
#[must_use = "a stopwatch records when it is stopped or dropped: bind it to a variable"]
#[derive(Debug)]
pub struct Stopwatch {
    site: &'static CallSite,
    start: Instant,
    if_dropped: CallResult,
    stopped: bool,
}

impl Stopwatch {
    /// Sets the result recorded when the stopwatch is dropped without being stopped (a panic
    /// still records [`CallResult::Error`]).
    pub fn if_dropped(mut self, result: CallResult) -> Self {
        self.if_dropped = result;
        self
    }

    /// The time since the stopwatch started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records the call with `result`.
    #[inline]
    pub fn stop(mut self, result: CallResult) {
        self.finish(result);
    }

    /// Records the call as [`CallResult::Ok`].
    #[inline]
    pub fn ok(self) {
        self.stop(CallResult::Ok);
    }

    /// Records the call as [`CallResult::Error`].
    #[inline]
    pub fn error(self) {
        self.stop(CallResult::Error);
    }

    /// Records the call with the result `value` tells, for instance an `Err` as an error.
    #[inline]
    pub fn observe<T: Outcome + ?Sized>(self, value: &T) {
        self.stop(value.call_result());
    }

    #[inline]
    fn finish(&mut self, result: CallResult) {
        self.stopped = true;
        self.site.record(result, self.start.elapsed());
    }
}

impl Drop for Stopwatch {
    fn drop(&mut self) {
        if !self.stopped {
            let result = if std::thread::panicking() {
                CallResult::Error
            } else {
                self.if_dropped
            };
            self.finish(result);
        }
    }
}

/// A future timed from its first poll to its completion; made by [`TimedExt`].
///
/// On completion the output's [`CallResult`] is recorded. Dropped after its first poll and
/// before completion, the call is recorded as [`CallResult::Cancelled`] (as
/// [`CallResult::Error`] if dropped by a panic). Dropped before its first poll, nothing is
/// recorded: the call never started.
///
/// See the [module docs](super) for an example.
#[pin_project]
#[must_use = "futures do nothing unless polled"]
pub struct Timed<F: Future> {
    #[pin]
    inner: F,
    /// Taken at the first poll, when the stopwatch starts.
    site: Option<&'static CallSite>,
    stopwatch: Option<Stopwatch>,
    classify: fn(&F::Output) -> CallResult,
}

impl<F: Future> Timed<F> {
    /// Times `inner` at `site`, classifying its output with `classify`.
    pub fn new(site: &'static CallSite, inner: F, classify: fn(&F::Output) -> CallResult) -> Self {
        Self {
            inner,
            site: Some(site),
            stopwatch: None,
            classify,
        }
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Some(site) = this.site.take() {
            *this.stopwatch = Some(site.start().if_dropped(CallResult::Cancelled));
        }
        let output = std::task::ready!(this.inner.poll(cx));
        if let Some(stopwatch) = this.stopwatch.take() {
            stopwatch.stop((this.classify)(&output));
        }
        Poll::Ready(output)
    }
}

impl<F: Future> fmt::Debug for Timed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timed")
            .field("site", &self.site)
            .field("stopwatch", &self.stopwatch)
            .finish_non_exhaustive()
    }
}

/// Adds [`timed`](Self::timed) to every future.
///
/// See the [module docs](super) for an example.
pub trait TimedExt: Future + Sized {
    /// Times this future at `site`: wall time from its first poll to its completion, across every
    /// `.await` in between. An `Err` output is recorded as an error; see [`Timed`] for dropped
    /// futures.
    fn timed(self, site: &'static CallSite) -> Timed<Self>
    where
        Self::Output: Outcome,
    {
        Timed::new(site, self, <Self::Output as Outcome>::call_result)
    }

    /// As [`timed`](Self::timed), for any output: `classify` tells the result of the call. A
    /// closure that captures nothing will do, e.g. `|_| CallResult::Ok`.
    fn timed_with(
        self,
        site: &'static CallSite,
        classify: fn(&Self::Output) -> CallResult,
    ) -> Timed<Self> {
        Timed::new(site, self, classify)
    }
}

impl<F: Future> TimedExt for F {}

/// A `&'static` [`CallSite`] for the named function, in the module where the macro is used.
///
/// The name must be a constant expression (a string literal or a `const`). Each use of the macro
/// is its own call site, with its own handles.
///
/// ```
/// use vantage_instrument::{call_site, timing::CallResult};
///
/// fn checksum(data: &[u8]) -> u32 {
///     let stopwatch = call_site!("checksum").start();
///     let sum = data.iter().map(|&byte| u32::from(byte)).sum();
///     stopwatch.stop(CallResult::Ok);
///     sum
/// }
/// # assert_eq!(checksum(b"ab"), 195);
/// ```
#[macro_export]
macro_rules! call_site {
    ($function:expr $(,)?) => {{
        static CALL_SITE: $crate::timing::CallSite =
            $crate::timing::CallSite::new($function, ::core::module_path!());
        &CALL_SITE
    }};
}

/// Times an expression as a call of the named function, in the module where the macro is used,
/// and evaluates to its value.
///
/// The result is `error` when the value is an `Err` (or any [`Outcome`] that says so) and `ok`
/// otherwise. If the expression does not produce a value, because a `?`, `return` or `break`
/// inside it leaves early or it panics, the call is recorded as `error`. In an `async` block, a
/// dropped future is also recorded as `error` there: use [`TimedExt::timed`] to have it counted
/// as `cancelled`.
///
/// The value's type must be known where the macro is, not inferred from what the caller does
/// with it later: write `iter.sum::<u64>()` rather than
/// `let total: u64 = timed!("total", iter.sum())`, which fails to compile asking for `Outcome`.
///
/// ```
/// use vantage_instrument::timed;
///
/// fn parse_port(text: &str) -> Result<u16, std::num::ParseIntError> {
///     timed!("parse_port", text.trim().parse::<u16>())
/// }
///
/// fn total(prices: &[u64]) -> u64 {
///     timed!("total", prices.iter().sum::<u64>())
/// }
/// # assert_eq!(parse_port(" 8080 "), Ok(8080));
/// # assert_eq!(total(&[1, 2]), 3);
/// ```
#[macro_export]
macro_rules! timed {
    ($function:expr, $body:expr $(,)?) => {{
        let stopwatch = $crate::call_site!($function)
            .start()
            .if_dropped($crate::timing::CallResult::Error);
        let value = $body;
        {
            #[allow(unused_imports)]
            use $crate::timing::__private::{ClassifyAny as _, ClassifyOutcome as _};
            stopwatch.stop((&$crate::timing::__private::Classify(&value)).call_result());
        }
        value
    }};
}

/// Support for [`timed!`](crate::timed): classifies a value of any type, through [`Outcome`]
/// when the type implements it and as `ok` otherwise. Method resolution picks the first trait
/// whose receiver matches without an extra reference, which is the [`Outcome`] one when it
/// applies.
#[doc(hidden)]
pub mod __private {
    use super::{CallResult, Outcome};

    /// A borrowed value to classify.
    #[derive(Debug)]
    pub struct Classify<'a, T: ?Sized>(pub &'a T);

    /// Classifies values whose type implements [`Outcome`].
    pub trait ClassifyOutcome {
        /// The value's result.
        fn call_result(&self) -> CallResult;
    }

    impl<T: Outcome + ?Sized> ClassifyOutcome for Classify<'_, T> {
        #[inline]
        fn call_result(&self) -> CallResult {
            self.0.call_result()
        }
    }

    /// Classifies every other value as `ok`.
    pub trait ClassifyAny {
        /// Always [`CallResult::Ok`].
        fn call_result(&self) -> CallResult;
    }

    impl<T: ?Sized> ClassifyAny for &Classify<'_, T> {
        #[inline]
        fn call_result(&self) -> CallResult {
            CallResult::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use metrics::NoopRecorder;
    use metrics_util::debugging::DebuggingRecorder;

    use super::*;
    use crate::timing::test_helpers::{Recorded, assert_at_least, assert_bracketed};

    const MODULE: &str = module_path!();
    const SLEEP: Duration = Duration::from_millis(10);

    /// Runs `calls` with a fresh debugging recorder as the thread's recorder.
    fn capture(calls: impl FnOnce()) -> Recorded {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, calls);
        Recorded::take(&snapshotter)
    }

    #[test]
    fn call_site_labels_are_the_name_and_the_module_path() {
        let site = call_site!("labelled");
        assert_eq!((site.function(), site.module()), ("labelled", MODULE));
    }

    #[test]
    fn stopwatch_held_in_a_scope_counts_each_call_and_times_it() {
        let began = Instant::now();
        let recorded = capture(|| {
            for _ in 0..3 {
                let _stopwatch = call_site!("scoped").start();
                std::thread::sleep(SLEEP);
            }
        });
        assert_eq!(recorded.results("scoped", MODULE), [3, 0, 0]);
        let durations = recorded.durations("scoped", MODULE);
        assert_eq!(durations.len(), 3);
        assert_bracketed(&durations, SLEEP, began.elapsed());
        assert!(recorded.durations_in_seconds());
    }

    #[cfg(feature = "prometheus")]
    #[test]
    fn prometheus_exposition_has_the_autometrics_series() {
        let recorder = crate::PrometheusExporter::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let _ = timed!("rendered", "x".parse::<u8>());
            let _ = timed!("rendered", "1".parse::<u8>());
        });
        let text = handle.render();
        let labels = format!("function=\"rendered\",module=\"{MODULE}\"");
        for line in [
            format!("function_calls_total{{{labels},result=\"ok\"}} 1"),
            format!("function_calls_total{{{labels},result=\"error\"}} 1"),
            format!("function_calls_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2"),
            format!("function_calls_duration_seconds_count{{{labels}}} 2"),
        ] {
            assert!(
                text.lines().any(|rendered| rendered == line),
                "{line} not in\n{text}"
            );
        }
    }

    #[test]
    fn stopped_stopwatch_records_its_result_once() {
        fn site() -> &'static CallSite {
            call_site!("explicit")
        }
        let recorded = capture(|| {
            site().start().ok();
            site().start().error();
            site().start().observe(&Err::<(), _>("failed"));
            site().start().stop(CallResult::Cancelled);
            site().start().observe(&CallResult::Cancelled);
            let _dropped = site().start().if_dropped(CallResult::Cancelled);
        });
        assert_eq!(recorded.results("explicit", MODULE), [1, 2, 3]);
        assert_eq!(recorded.durations("explicit", MODULE).len(), 6);
    }

    #[test]
    fn timed_macro_classifies_the_value_and_returns_it() {
        let recorded = capture(|| {
            let parsed: Result<u16, _> = timed!("parse", "8080".parse::<u16>());
            assert_eq!(parsed, Ok(8080));
            let failed: Result<u16, _> = timed!("parse", "port".parse::<u16>());
            assert!(failed.is_err());
            let sum = timed!("sum", [1_u64, 2, 3].iter().sum::<u64>());
            assert_eq!(sum, 6);
            timed!("unit", std::thread::sleep(SLEEP));
        });
        // Each use of the macro is a call site, so `parse` has two with the same labels.
        assert_eq!(recorded.results("parse", MODULE), [1, 1, 0]);
        assert_eq!(recorded.results("sum", MODULE), [1, 0, 0]);
        assert_eq!(recorded.results("unit", MODULE), [1, 0, 0]);
        assert_at_least(&recorded.durations("unit", MODULE), SLEEP);
    }

    #[test]
    fn timed_macro_records_an_early_exit_as_error() {
        fn double(text: &str) -> Result<u32, std::num::ParseIntError> {
            let number = timed!("early_exit", text.parse::<u32>()?);
            Ok(number * 2)
        }
        let recorded = capture(|| {
            assert_eq!(double("21"), Ok(42));
            assert!(double("twenty").is_err());
            assert!(double("").is_err());
        });
        assert_eq!(recorded.results("early_exit", MODULE), [1, 2, 0]);
    }

    #[test]
    fn panic_in_a_timed_scope_is_recorded_as_error() {
        let recorded = capture(|| {
            let outcome = std::panic::catch_unwind(|| {
                let _stopwatch = call_site!("panics").start();
                panic!("timed code panicked");
            });
            assert!(outcome.is_err());
        });
        assert_eq!(recorded.results("panics", MODULE), [0, 1, 0]);
    }

    #[test]
    fn calls_before_a_recorder_is_available_do_not_pin_the_noop_recorder() {
        fn site() -> &'static CallSite {
            call_site!("before_install")
        }
        metrics::with_local_recorder(&NoopRecorder, || site().start().ok());
        let recorded = capture(|| site().start().ok());
        assert_eq!(recorded.results("before_install", MODULE), [1, 0, 0]);
    }

    #[test]
    fn handles_stay_bound_to_the_first_recorder_like_metrics_handles() {
        fn site() -> &'static CallSite {
            call_site!("bound")
        }
        let first = DebuggingRecorder::new();
        let first_snapshotter = first.snapshotter();
        metrics::with_local_recorder(&first, || site().start().ok());
        let second = capture(|| site().start().ok());
        assert_eq!(second.total_calls(), 0);
        let first = Recorded::take(&first_snapshotter);
        assert_eq!(first.results("bound", MODULE), [2, 0, 0]);
        assert!(format!("{:?}", site()).contains("registered: true"));
    }

    /// Runs `test` on a current-thread runtime with a debugging recorder as the thread's
    /// recorder.
    fn capture_async<T>(test: impl Future<Output = T>) -> (T, Recorded) {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime builds");
        let output = metrics::with_local_recorder(&recorder, || runtime.block_on(test));
        (output, Recorded::take(&snapshotter))
    }

    #[test]
    fn timed_future_measures_wall_time_from_first_poll_across_awaits() {
        let (awaited, recorded) = capture_async(async {
            let future = async {
                tokio::time::sleep(SLEEP).await;
                tokio::time::sleep(SLEEP).await;
                Ok::<_, ()>(7)
            }
            .timed(call_site!("two_sleeps"));
            // Time before the first poll is not part of the call.
            std::thread::sleep(5 * SLEEP);
            let polled = Instant::now();
            assert_eq!(future.await, Ok(7));
            polled.elapsed()
        });
        assert_eq!(recorded.results("two_sleeps", MODULE), [1, 0, 0]);
        assert_bracketed(
            &recorded.durations("two_sleeps", MODULE),
            2 * SLEEP,
            awaited,
        );
    }

    #[test]
    fn timed_future_records_err_output_as_error() {
        let ((), recorded) = capture_async(async {
            let failed = async { Err::<(), _>("unavailable") }
                .timed(call_site!("fails"))
                .await;
            assert!(failed.is_err());
        });
        assert_eq!(recorded.results("fails", MODULE), [0, 1, 0]);
    }

    #[test]
    fn timed_with_classifies_any_output() {
        let ((), recorded) = capture_async(async {
            for n in [1_u8, 5, 9] {
                let classify: fn(&u8) -> CallResult = |n| {
                    if *n > 3 {
                        CallResult::Error
                    } else {
                        CallResult::Ok
                    }
                };
                let out = async move { n }
                    .timed_with(call_site!("classified"), classify)
                    .await;
                assert_eq!(out, n);
            }
        });
        assert_eq!(recorded.results("classified", MODULE), [1, 2, 0]);
    }

    #[test]
    fn dropped_future_is_cancelled_and_never_polled_one_is_not_recorded() {
        let (waited, recorded) = capture_async(async {
            let began = Instant::now();
            let mut pending = Box::pin(std::future::pending::<()>().timed(call_site!("abandoned")));
            assert!(tokio::time::timeout(SLEEP, &mut pending).await.is_err());
            // Alive for at least this long after its first poll.
            std::thread::sleep(SLEEP);
            drop(pending);
            let waited = began.elapsed();
            drop(async {}.timed(call_site!("never_polled")));
            waited
        });
        assert_eq!(recorded.results("abandoned", MODULE), [0, 0, 1]);
        assert_eq!(recorded.results("never_polled", MODULE), [0, 0, 0]);
        assert_bracketed(&recorded.durations("abandoned", MODULE), SLEEP, waited);
    }
}

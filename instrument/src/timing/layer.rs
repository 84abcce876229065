//! A `tracing_subscriber` layer that turns marked spans into function metrics.

use std::fmt;
use std::sync::Arc;

use foldhash::fast::RandomState;
use metrics::{Key, Label, Recorder};
use quanta::Instant;
use tracing_core::callsite::Identifier;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::record::{CallResult, FunctionHandles, with_current_recorder};
use crate::names;

/// The span field that marks a span as a timed function call: declare it, with or without a
/// value, as in `#[tracing::instrument(fields(vantage.timed))]`.
pub const TIMED_FIELD: &str = "vantage.timed";

/// The [`TIMED_FIELD`] value that declares that every completed call emits a completion event
/// (`#[instrument(ret)]` or `err`), so that a span closed without one was cancelled:
/// `#[tracing::instrument(fields(vantage.timed = "ret"), ret, err)]`.
pub const EXPECT_RETURN: &str = "ret";

/// The event field `#[instrument(ret)]` records the returned value in.
const RETURN_FIELD: &str = "return";
/// The event field `#[instrument(err)]` records the error in.
const ERROR_FIELD: &str = "error";

/// A recorder shared by a layer and its clones.
type SharedRecorder = Arc<dyn Recorder + Send + Sync>;

/// A [`Layer`] that records each span marked with [`TIMED_FIELD`] as one call of a function:
/// `function_calls_total{function, module, result}` and
/// `function_calls_duration_seconds{function, module}`.
///
/// `function` is the span name (the function's name for `#[instrument]`), `module` the span's
/// module path (its target when the module path is unknown). The duration is wall time from the
/// span's first enter to its close: for an `async fn`, from the first poll to the end, across
/// every `.await`, not the sum of the polls.
///
/// # Result
///
/// 1. A span closed while its thread panics is `error`.
/// 2. Otherwise the last completion event recorded in the span itself (events in its child
///    spans do not count) decides: an event with a `return` field (what `#[instrument(ret)]`
///    emits) is `ok`, an `ERROR` event with an `error` field (what `#[instrument(err)]` emits) is
///    `error`.
/// 3. With no completion event, the call is `cancelled` if the span declared
///    `vantage.timed = "ret"` ([`EXPECT_RETURN`]), and `ok` otherwise.
///
/// The declaration is needed because `tracing` shows a layer no difference between a future
/// that completed and one that was dropped: both exit and close their span the same way. Only a
/// completion event tells them apart, and only `ret` emits one on every successful return.
///
/// # Limits
///
/// - With `ret` but not `err`, a function returning `Result` emits `return` for an `Err` too,
///   which counts as `ok`: use both.
/// - `err` at a level below `ERROR` does not count as an error; with [`EXPECT_RETURN`] such a
///   return counts as `cancelled`.
/// - An `ERROR` event with an `error` field logged inside the function marks the call as an
///   error, unless a later `return` event follows.
/// - A span never entered, or disabled by a filter, is not recorded. A span closes when its last
///   handle drops: a clone kept elsewhere delays the record and lengthens the duration.
///
/// # Performance
///
/// The metric handles of each span call site are resolved on its first span and cached in the
/// layer. Each timed span then costs one extension in the span registry, a clock read on its
/// first enter and one on close. Every span enter costs the layer a span lookup, and every event
/// a scan of its field names.
///
/// See the [module docs](super) for an example.
#[derive(Clone)]
pub struct FunctionTimingLayer {
    shared: Arc<Shared>,
}

struct Shared {
    recorder: Option<SharedRecorder>,
    handles: papaya::HashMap<Identifier, Arc<FunctionHandles>, RandomState>,
}

impl FunctionTimingLayer {
    /// A layer recording into the `metrics` recorder current when a call site's first span is
    /// created (the globally installed one, in a service).
    pub fn new() -> Self {
        Self::with_shared(None)
    }

    /// Records into `recorder` instead of the globally installed one (tests running side by
    /// side, or one registry per subscriber).
    pub fn recorder<R>(self, recorder: R) -> Self
    where
        R: Recorder + Send + Sync + 'static,
    {
        Self::with_shared(Some(Arc::new(recorder)))
    }

    fn with_shared(recorder: Option<SharedRecorder>) -> Self {
        Self {
            shared: Arc::new(Shared {
                recorder,
                handles: papaya::HashMap::builder()
                    .hasher(RandomState::default())
                    .build(),
            }),
        }
    }

    /// The handles of a span call site.
    fn handles(&self, metadata: &'static Metadata<'static>) -> Arc<FunctionHandles> {
        let callsite = metadata.callsite();
        match self.shared.handles.pin().get(&callsite) {
            Some(handles) => Arc::clone(handles),
            None => self.register(callsite, metadata),
        }
    }

    #[cold]
    fn register(
        &self,
        callsite: Identifier,
        metadata: &'static Metadata<'static>,
    ) -> Arc<FunctionHandles> {
        let function = Label::from_static_parts(names::FUNCTION, metadata.name());
        let module = Label::from_static_parts(
            names::MODULE,
            metadata.module_path().unwrap_or_else(|| metadata.target()),
        );
        let resolve = |recorder: &dyn Recorder| {
            let duration = Key::from_parts(
                names::FUNCTION_CALLS_DURATION,
                vec![function.clone(), module.clone()],
            );
            let call_key = |result: CallResult| {
                let result = Label::from_static_parts(names::RESULT, result.as_str());
                let labels = vec![function.clone(), module.clone(), result];
                Key::from_parts(names::FUNCTION_CALLS_TOTAL, labels)
            };
            Arc::new(FunctionHandles::register(recorder, call_key, &duration))
        };
        let cache = |handles: Arc<FunctionHandles>| {
            Arc::clone(self.shared.handles.pin().get_or_insert(callsite, handles))
        };
        match &self.shared.recorder {
            Some(recorder) => cache(resolve(recorder.as_ref())),
            None => with_current_recorder(|recorder, cacheable| {
                let handles = resolve(recorder);
                if cacheable { cache(handles) } else { handles }
            }),
        }
    }
}

impl Default for FunctionTimingLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FunctionTimingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionTimingLayer")
            .field("explicit_recorder", &self.shared.recorder.is_some())
            .field("call_sites", &self.shared.handles.len())
            .finish()
    }
}

/// What the layer keeps in a timed span's extensions.
struct SpanTiming {
    handles: Arc<FunctionHandles>,
    expects_return: bool,
    /// Set at the first enter.
    started: Option<Instant>,
    /// The last completion event seen in the span.
    completion: Option<CallResult>,
}

/// Finds whether a span's [`TIMED_FIELD`] is [`EXPECT_RETURN`].
struct ExpectsReturn(bool);

impl Visit for ExpectsReturn {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == TIMED_FIELD {
            self.0 = value == EXPECT_RETURN;
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

/// The result an event marks its span's call with, if it is a completion event.
fn completion(event: &Event<'_>) -> Option<CallResult> {
    let metadata = event.metadata();
    let fields = metadata.fields();
    if fields.field(RETURN_FIELD).is_some() {
        Some(CallResult::Ok)
    } else if *metadata.level() == Level::ERROR && fields.field(ERROR_FIELD).is_some() {
        Some(CallResult::Error)
    } else {
        None
    }
}

impl<S> Layer<S> for FunctionTimingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        if metadata.fields().field(TIMED_FIELD).is_none() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut expects_return = ExpectsReturn(false);
        attrs.record(&mut expects_return);
        span.extensions_mut().insert(SpanTiming {
            handles: self.handles(metadata),
            expects_return: expects_return.0,
            started: None,
            completion: None,
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if let Some(timing) = span.extensions_mut().get_mut::<SpanTiming>() {
            timing.started.get_or_insert_with(Instant::now);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(result) = completion(event) else {
            return;
        };
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        if let Some(timing) = span.extensions_mut().get_mut::<SpanTiming>() {
            timing.completion = Some(result);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(timing) = span.extensions_mut().remove::<SpanTiming>() else {
            return;
        };
        let Some(started) = timing.started else {
            return;
        };
        let result = if std::thread::panicking() {
            CallResult::Error
        } else {
            match (timing.completion, timing.expects_return) {
                (Some(result), _) => result,
                (None, false) => CallResult::Ok,
                (None, true) => CallResult::Cancelled,
            }
        };
        timing.handles.record(result, started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::{Duration, Instant};

    use metrics_util::debugging::DebuggingRecorder;
    use tracing_subscriber::prelude::*;

    use super::*;
    use crate::timing::test_helpers::{Recorded, assert_bracketed};

    const MODULE: &str = module_path!();
    const SLEEP: Duration = Duration::from_millis(10);

    #[tracing::instrument(fields(vantage.timed))]
    fn sleepy() {
        std::thread::sleep(SLEEP);
    }

    #[tracing::instrument]
    fn untimed() {}

    #[tracing::instrument(fields(vantage.timed), err)]
    fn fallible(fail: bool) -> Result<(), String> {
        if fail {
            Err("failed".to_owned())
        } else {
            Ok(())
        }
    }

    #[tracing::instrument(fields(vantage.timed))]
    fn handles_an_error_in_a_child_span() {
        tracing::info_span!("child").in_scope(|| tracing::error!(error = "lost", "handled"));
    }

    #[tracing::instrument(fields(vantage.timed = "ret"), ret)]
    fn recovers() -> u32 {
        tracing::error!(error = "transient", "retrying");
        1
    }

    #[tracing::instrument(fields(vantage.timed))]
    fn panics() {
        panic!("timed function panicked");
    }

    #[tracing::instrument(fields(vantage.timed = "ret"), ret, err)]
    async fn fetch(sleeps: u32) -> Result<u32, String> {
        for _ in 0..sleeps {
            tokio::time::sleep(SLEEP).await;
        }
        if sleeps == 1 {
            Err("odd".to_owned())
        } else {
            Ok(sleeps)
        }
    }

    #[tracing::instrument(fields(vantage.timed))]
    async fn without_markers() {
        std::future::pending::<()>().await;
    }

    /// Runs `calls` with a subscriber whose timing layer records into a fresh recorder.
    fn capture<T>(calls: impl FnOnce() -> T) -> (T, Recorded) {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let layer = FunctionTimingLayer::new().recorder(recorder);
        let subscriber = tracing_subscriber::registry().with(layer);
        let output = tracing::subscriber::with_default(subscriber, calls);
        (output, Recorded::take(&snapshotter))
    }

    /// As [`capture`], on a current-thread runtime.
    fn capture_async<T>(test: impl Future<Output = T>) -> (T, Recorded) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime builds");
        capture(|| runtime.block_on(test))
    }

    #[test]
    fn marked_spans_are_counted_and_timed_and_others_ignored() {
        let (elapsed, recorded) = capture(|| {
            let began = Instant::now();
            for _ in 0..3 {
                sleepy();
                untimed();
            }
            began.elapsed()
        });
        assert_eq!(recorded.results("sleepy", MODULE), [3, 0, 0]);
        assert_eq!(recorded.total_calls(), 3);
        let durations = recorded.durations("sleepy", MODULE);
        assert_eq!(durations.len(), 3);
        assert_bracketed(&durations, SLEEP, elapsed);
        assert!(recorded.durations_in_seconds());
    }

    #[test]
    fn err_events_mark_the_call_as_error() {
        let ((), recorded) = capture(|| {
            for fail in [true, false, true] {
                assert_eq!(fallible(fail).is_err(), fail);
            }
        });
        assert_eq!(recorded.results("fallible", MODULE), [1, 2, 0]);
    }

    #[test]
    fn errors_in_child_spans_do_not_mark_the_parent() {
        let ((), recorded) = capture(handles_an_error_in_a_child_span);
        assert_eq!(
            recorded.results("handles_an_error_in_a_child_span", MODULE),
            [1, 0, 0]
        );
    }

    #[test]
    fn the_last_completion_event_wins() {
        let (value, recorded) = capture(recovers);
        assert_eq!(value, 1);
        assert_eq!(recorded.results("recovers", MODULE), [1, 0, 0]);
    }

    #[test]
    fn a_panic_is_an_error() {
        let (outcome, recorded) = capture(|| std::panic::catch_unwind(panics));
        assert!(outcome.is_err());
        assert_eq!(recorded.results("panics", MODULE), [0, 1, 0]);
    }

    #[test]
    fn async_spans_are_timed_from_first_poll_to_close_across_awaits() {
        let (awaited, recorded) = capture_async(async {
            let future = fetch(2);
            // Time between creating the span and the first poll is not part of the call.
            std::thread::sleep(5 * SLEEP);
            let polled = Instant::now();
            assert_eq!(future.await, Ok(2));
            polled.elapsed()
        });
        assert_eq!(recorded.results("fetch", MODULE), [1, 0, 0]);
        assert_bracketed(&recorded.durations("fetch", MODULE), 2 * SLEEP, awaited);
    }

    #[test]
    fn an_async_err_is_an_error() {
        let (output, recorded) = capture_async(fetch(1));
        assert_eq!(output, Err("odd".to_owned()));
        assert_eq!(recorded.results("fetch", MODULE), [0, 1, 0]);
    }

    #[test]
    fn a_dropped_future_expecting_a_return_is_cancelled() {
        let (waited, recorded) = capture_async(async {
            let began = Instant::now();
            let mut fetching = Box::pin(fetch(1000));
            assert!(tokio::time::timeout(SLEEP, &mut fetching).await.is_err());
            // Alive for at least this long after its first poll.
            std::thread::sleep(SLEEP);
            drop(fetching);
            began.elapsed()
        });
        assert_eq!(recorded.results("fetch", MODULE), [0, 0, 1]);
        assert_bracketed(&recorded.durations("fetch", MODULE), SLEEP, waited);
    }

    #[test]
    fn without_expect_return_a_dropped_future_counts_as_ok() {
        let ((), recorded) = capture_async(async {
            let timeout = tokio::time::timeout(SLEEP, without_markers()).await;
            assert!(timeout.is_err());
        });
        assert_eq!(recorded.results("without_markers", MODULE), [1, 0, 0]);
    }

    #[test]
    fn spans_never_entered_are_not_recorded() {
        let ((), recorded) = capture(|| {
            drop(tracing::info_span!(
                "created_only",
                vantage.timed = tracing::field::Empty
            ));
            tracing::info_span!("entered", vantage.timed = true).in_scope(|| {});
        });
        assert_eq!(recorded.results("created_only", MODULE), [0, 0, 0]);
        assert_eq!(recorded.results("entered", MODULE), [1, 0, 0]);
    }

    #[test]
    fn without_a_recorder_the_layer_uses_the_current_one() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let subscriber = tracing_subscriber::registry().with(FunctionTimingLayer::new());
        metrics::with_local_recorder(&recorder, || {
            tracing::subscriber::with_default(subscriber, || {
                sleepy();
                sleepy();
            });
        });
        let recorded = Recorded::take(&snapshotter);
        assert_eq!(recorded.results("sleepy", MODULE), [2, 0, 0]);
    }
}

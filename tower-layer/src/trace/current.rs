//! The current trace context: a thread-local slot that a traced future fills while it is polled.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;
use vantage_instrument::trace_context::TraceContext;

thread_local! {
    static CURRENT: RefCell<Option<TraceContext>> = const { RefCell::new(None) };
}

/// A clone of the trace context of the request being handled on this thread, if any.
///
/// Set while [`Traced`](super::Traced) polls the inner service's future and the response body,
/// and while a [`Scoped`] future is polled. The client side
/// ([`PropagateTraceLayer`](crate::propagate::PropagateTraceLayer),
/// [`inject_current`](crate::propagate::inject_current)) reads it. See the
/// [module docs](super) for an example.
#[must_use]
pub fn current() -> Option<TraceContext> {
    with_current(|context| context.cloned())
}

/// Calls `f` with the current trace context (see [`current`]) without cloning it.
///
/// A [`Scoped`] future polled from inside `f` cannot make its own context current: it sees the
/// one `f` sees.
pub fn with_current<R>(f: impl FnOnce(Option<&TraceContext>) -> R) -> R {
    let mut f = Some(f);
    let called = CURRENT.try_with(|cell| {
        let current = cell.try_borrow().ok()?;
        f.take().map(|f| f(current.as_ref()))
    });
    match (called, f) {
        (Ok(Some(result)), _) => result,
        // The thread is exiting (its thread-locals are gone): there is no request.
        (_, Some(f)) => f(None),
        (Err(_) | Ok(None), None) => unreachable!("`f` is only taken to be called"),
    }
}

/// Makes the context in `slot` current until dropped, then moves it back into `slot` and
/// restores the context that was current before: a stack, as nested futures need.
///
/// The context is moved, not cloned, so entering costs no allocation and no reference count.
pub(crate) struct Entered<'a> {
    slot: &'a mut Option<TraceContext>,
    previous: Option<TraceContext>,
    entered: bool,
}

impl<'a> Entered<'a> {
    #[inline]
    pub(crate) fn new(slot: &'a mut Option<TraceContext>) -> Self {
        if slot.is_none() {
            // Nothing to make current (a layer without trace context): no thread-local touched.
            return Self {
                slot,
                previous: None,
                entered: false,
            };
        }
        Self::enter(slot)
    }

    fn enter(slot: &'a mut Option<TraceContext>) -> Self {
        let mut previous = None;
        let entered = slot.is_some()
            && CURRENT
                .try_with(|cell| match cell.try_borrow_mut() {
                    Ok(mut current) => {
                        previous = std::mem::replace(&mut *current, slot.take());
                        true
                    }
                    // Polled from inside a `with_current` closure.
                    Err(_) => false,
                })
                .unwrap_or(false);
        Self {
            slot,
            previous,
            entered,
        }
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.entered {
            self.leave();
        }
    }
}

impl Entered<'_> {
    fn leave(&mut self) {
        let previous = self.previous.take();
        let slot = &mut *self.slot;
        // Runs on unwinding too, so a panicking poll cannot leave its context behind.
        let _ = CURRENT.try_with(|cell| {
            if let Ok(mut current) = cell.try_borrow_mut() {
                *slot = std::mem::replace(&mut *current, previous);
            }
        });
    }
}

/// A future that makes a trace context current while it is polled: for work that leaves the
/// request's task, such as `tokio::spawn`.
///
/// ```
/// use vantage_instrument::trace_context::TraceContext;
/// use vantage_tower::trace::{self, Scoped};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let context = TraceContext::new_root();
/// let trace_id = context.trace_id();
/// // In a handler: `let context = trace::current();`, then spawn the work in its scope.
/// let seen = Scoped::new(context, async { trace::current().map(|c| c.trace_id()) }).await;
/// assert_eq!(seen, Some(trace_id));
/// assert_eq!(trace::current(), None);
/// # }
/// ```
#[pin_project]
#[derive(Debug)]
pub struct Scoped<F> {
    #[pin]
    inner: F,
    context: Option<TraceContext>,
}

impl<F> Scoped<F> {
    /// `future`, with `context` current whenever it is polled.
    pub fn new(context: TraceContext, future: F) -> Self {
        Self {
            inner: future,
            context: Some(context),
        }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = Entered::new(this.context);
        this.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use futures_util::FutureExt;

    use super::*;

    fn trace_id() -> Option<String> {
        current().map(|context| context.trace_id().to_string())
    }

    fn context(traceparent: &str) -> TraceContext {
        TraceContext::from_traceparent(traceparent.parse().unwrap(), Default::default())
    }

    const OUTER: &str = "00-11111111111111111111111111111111-1111111111111111-01";
    const INNER: &str = "00-22222222222222222222222222222222-2222222222222222-01";

    #[test]
    fn nothing_is_current_outside_a_scope() {
        assert_eq!(current(), None);
        assert!(!with_current(|context| context.is_some()));
    }

    #[test]
    fn nested_scopes_stack_and_restore() {
        let inner = Scoped::new(context(INNER), async { trace_id() });
        let outer = Scoped::new(context(OUTER), async {
            let before = trace_id();
            let nested = inner.await;
            let after = trace_id();
            (before, nested, after)
        });
        let seen = outer.now_or_never().unwrap();
        assert_eq!(
            seen,
            (
                Some("11111111111111111111111111111111".to_owned()),
                Some("22222222222222222222222222222222".to_owned()),
                Some("11111111111111111111111111111111".to_owned()),
            )
        );
        assert_eq!(current(), None);
    }

    #[test]
    fn the_context_stays_with_its_future_across_polls() {
        let mut polls = 0;
        let mut scoped = Box::pin(Scoped::new(
            context(OUTER),
            std::future::poll_fn(move |cx| {
                polls += 1;
                if polls < 3 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(trace_id())
            }),
        ));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert_eq!(scoped.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(current(), None);
        assert_eq!(scoped.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(
            scoped.as_mut().poll(&mut cx),
            Poll::Ready(Some("11111111111111111111111111111111".to_owned()))
        );
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panicking_poll_restores_the_previous_context() {
        let outer = Scoped::new(context(OUTER), async {
            let panicked = catch_unwind(AssertUnwindSafe(|| {
                Scoped::new(context(INNER), async { panic!("handler bug") }).now_or_never()
            }));
            (panicked.is_err(), trace_id())
        });
        assert_eq!(
            outer.now_or_never().unwrap(),
            (true, Some("11111111111111111111111111111111".to_owned()))
        );
        assert_eq!(current(), None);
    }

    #[test]
    fn a_scope_polled_inside_with_current_runs_without_its_context() {
        let seen = Scoped::new(context(OUTER), async {
            with_current(|_| Scoped::new(context(INNER), async { trace_id() }).now_or_never())
        })
        .now_or_never()
        .unwrap();
        assert_eq!(
            seen,
            Some(Some("11111111111111111111111111111111".to_owned()))
        );
    }
}

//! The current trace context: a thread-local slot that a traced future fills while it is polled.

use std::cell::Cell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;
use vantage_instrument::trace_context::TraceContext;

thread_local! {
    // A `Cell`, not a `RefCell`: entering and leaving are two moves with no borrow flag, and
    // a reader takes the context out and puts it back. `ManuallyDrop`: a thread-local with
    // nothing to drop needs no destructor registered, so each access is a plain read of the
    // thread's slot, with no check of its state; the slot is empty whenever nothing is polled
    // on the thread (every entry is undone on the way out, a panic included), so nothing is
    // left to drop when the thread ends.
    static CURRENT: Cell<ManuallyDrop<Option<TraceContext>>> =
        const { Cell::new(ManuallyDrop::new(None)) };
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
    peek(|context| context.cloned())
}

/// Calls `f` with the current trace context (see [`current`]).
///
/// `f` gets a copy (its `tracestate` shared, not copied), so the context stays current for
/// whatever `f` does, a [`Scoped`] future polled inside included.
pub fn with_current<R>(f: impl FnOnce(Option<&TraceContext>) -> R) -> R {
    f(current().as_ref())
}

/// Calls `f` with the current trace context without copying it: it is taken out of the
/// thread-local slot for the call, so `f` must not read the current context again (nothing
/// it calls may log); for the readers of this crate that only copy ids out of it.
#[inline]
pub(crate) fn peek<R>(f: impl FnOnce(Option<&TraceContext>) -> R) -> R {
    let taken =
        CURRENT.with(|cell| ManuallyDrop::into_inner(cell.replace(ManuallyDrop::new(None))));
    match taken {
        Some(context) => {
            let result = f(Some(&context));
            CURRENT.with(|cell| cell.set(ManuallyDrop::new(Some(context))));
            result
        }
        // No request: the slot is as it was.
        None => f(None),
    }
}

/// Calls `f` with the context in `slot` current, then puts it back into `slot` and restores
/// the context that was current before: a stack, as nested futures need. With no context in
/// `slot` (a layer without trace context), `f` is called and no thread-local is touched.
///
/// The context is exchanged with the thread-local's, not cloned: while `f` runs, `slot` holds
/// the previous context, and exchanging again on the way out (on unwinding too, so a panicking
/// poll cannot leave its context behind) restores both. No allocation, no reference count.
#[inline]
pub(crate) fn in_context<R>(slot: &mut Option<TraceContext>, f: impl FnOnce() -> R) -> R {
    if slot.is_none() {
        return f();
    }
    CURRENT.with(|current| exchange(current, slot));
    let _exchanged_back = ExchangeBack(slot);
    f()
}

/// Puts `slot`'s context into `current` and `current`'s into `slot`: typed moves (a few vector
/// loads and stores), where `Cell::swap` of the 80-byte context runs a byte-chunk loop.
#[inline]
fn exchange(current: &Cell<ManuallyDrop<Option<TraceContext>>>, slot: &mut Option<TraceContext>) {
    *slot = ManuallyDrop::into_inner(current.replace(ManuallyDrop::new(slot.take())));
}

/// Exchanges a slot with the current context when dropped.
struct ExchangeBack<'a>(&'a mut Option<TraceContext>);

impl Drop for ExchangeBack<'_> {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|current| exchange(current, self.0));
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
        in_context(this.context, || this.inner.poll(cx))
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
    fn a_scope_polled_inside_with_current_runs_with_its_own_context() {
        let seen = Scoped::new(context(OUTER), async {
            with_current(|outer| {
                let inner = Scoped::new(context(INNER), async { trace_id() }).now_or_never();
                (outer.map(|c| c.trace_id().to_string()), inner, trace_id())
            })
        })
        .now_or_never()
        .unwrap();
        assert_eq!(
            seen,
            (
                Some("11111111111111111111111111111111".to_owned()),
                Some(Some("22222222222222222222222222222222".to_owned())),
                Some("11111111111111111111111111111111".to_owned()),
            )
        );
    }

    #[test]
    fn peek_puts_the_context_back() {
        let seen = Scoped::new(context(OUTER), async {
            let peeked = peek(|context| context.map(TraceContext::trace_id));
            (peeked.map(|id| id.to_string()), trace_id())
        })
        .now_or_never()
        .unwrap();
        assert_eq!(
            seen,
            (
                Some("11111111111111111111111111111111".to_owned()),
                Some("11111111111111111111111111111111".to_owned()),
            )
        );
    }
}

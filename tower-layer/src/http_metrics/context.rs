//! Whether a layer continues each request's trace, as a type: without
//! [`trace_context`](super::HttpMetricsLayer::trace_context) the response future and body carry
//! no context slot at all (smaller futures to move, nothing to enter on each poll).

use std::fmt;

use http::HeaderMap;
use vantage_instrument::trace_context::{TraceContext, TraceId};

use crate::trace::current::in_context;

/// Whether [`HttpMetricsLayer`](super::HttpMetricsLayer) continues each request's W3C trace:
/// [`NoTraceContext`] (the default) or [`WithTraceContext`].
pub trait ContextMode: sealed::Sealed + Send + Sync + 'static {
    /// What a request's response future and body carry.
    #[doc(hidden)]
    type Slot: ContextSlot;

    /// The slot of a request with these headers.
    #[doc(hidden)]
    fn start(headers: &HeaderMap) -> Self::Slot;
}

/// The layer leaves trace context alone (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTraceContext;

/// The layer continues (or starts) each request's trace; see
/// [`trace_context`](super::HttpMetricsLayer::trace_context).
#[derive(Debug, Clone, Copy, Default)]
pub struct WithTraceContext;

impl ContextMode for NoTraceContext {
    type Slot = ();

    #[inline]
    fn start(_headers: &HeaderMap) {}
}

impl ContextMode for WithTraceContext {
    type Slot = Option<TraceContext>;

    #[inline]
    fn start(headers: &HeaderMap) -> Option<TraceContext> {
        Some(TraceContext::continue_or_start(headers))
    }
}

/// A request's trace context slot: nothing, or the context, current while it is entered.
#[doc(hidden)]
pub trait ContextSlot: sealed::Sealed + Default + fmt::Debug + Send + 'static {
    /// The trace id of the context held.
    fn trace_id(&self) -> Option<TraceId>;

    /// Calls `f` with the context held current.
    fn in_context<R>(&mut self, f: impl FnOnce() -> R) -> R;

    /// Moves the context out, leaving the slot empty.
    fn take(&mut self) -> Self;
}

impl ContextSlot for () {
    #[inline]
    fn trace_id(&self) -> Option<TraceId> {
        None
    }

    #[inline]
    fn in_context<R>(&mut self, f: impl FnOnce() -> R) -> R {
        f()
    }

    #[inline]
    fn take(&mut self) {}
}

impl ContextSlot for Option<TraceContext> {
    #[inline]
    fn trace_id(&self) -> Option<TraceId> {
        self.as_ref().map(TraceContext::trace_id)
    }

    #[inline]
    fn in_context<R>(&mut self, f: impl FnOnce() -> R) -> R {
        in_context(self, f)
    }

    #[inline]
    fn take(&mut self) -> Self {
        Self::take(self)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoTraceContext {}
    impl Sealed for super::WithTraceContext {}
    impl Sealed for () {}
    impl Sealed for Option<vantage_instrument::trace_context::TraceContext> {}
}

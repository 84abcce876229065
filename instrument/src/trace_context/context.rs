//! [`TraceContext`]: one position in a trace, and how the next one is made.

use super::ids::{SpanId, TraceId};
use super::traceparent::{TraceFlags, TraceParent};
use super::tracestate::TraceState;

/// A position in a distributed trace: the trace, the span this context names, the span that one
/// is a child of (when known), the trace flags and the `tracestate`.
///
/// Three ways to get one:
/// - [`from_headers`](Self::from_headers) (or [`from_traceparent`](Self::from_traceparent)):
///   the caller's context, whose [`span_id`](Self::span_id) is the caller's span;
/// - [`child`](Self::child): a new span in the same trace, e.g. a server span under the
///   caller's, or a client span for an outgoing call;
/// - [`new_root`](Self::new_root): a new trace, when the request carried none (or an invalid
///   one: the trace restarts).
///
/// [`continue_or_start`](Self::continue_or_start) does the usual server-side choice in one
/// call, and [`inject`](Self::inject) writes the context into outgoing headers. See the
/// [module docs](super) for an example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    parent_id: Option<SpanId>,
    flags: TraceFlags,
    state: TraceState,
}

impl TraceContext {
    /// The start of a new trace: random trace and span ids, no parent, empty `tracestate`, the
    /// `random-trace-id` flag set (the trace id is uniformly random, see [`TraceId::random`]) and
    /// the `sampled` flag unset (this crate records metrics, not trace data; set it with
    /// [`with_sampled`](Self::with_sampled) when something does record).
    ///
    /// This is also what a restart of the trace gives (an invalid `traceparent`, or a front gate
    /// that will not continue an untrusted caller's trace): Level 2 regenerates every field,
    /// flags included, and cleans up the `tracestate`, so nothing of the received context is
    /// kept.
    #[must_use]
    pub fn new_root() -> Self {
        Self {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_id: None,
            flags: TraceFlags::RANDOM,
            state: TraceState::default(),
        }
    }

    /// The context a received `traceparent` (and `tracestate`) describe: its span is the
    /// caller's span (the header's `parent-id`), whose own parent is unknown.
    #[must_use]
    pub fn from_traceparent(traceparent: TraceParent, state: TraceState) -> Self {
        Self {
            trace_id: traceparent.trace_id,
            span_id: traceparent.parent_id,
            parent_id: None,
            flags: traceparent.flags,
            state,
        }
    }

    /// A child span of this one: the same trace id, a new random span id, this span as its
    /// parent, the same `sampled` and `random-trace-id` flags and the same `tracestate`.
    ///
    /// The `random-trace-id` flag goes on exactly as received: a trace continued under the same
    /// trace id must keep it set when it came set, and unset when it came unset (Level 2,
    /// "Random Trace ID Flag"). The reserved trace flags are cleared: a vendor that writes its
    /// own `traceparent` must set the flags it does not know to zero ("Other Flags"). To pass a
    /// received context on unchanged, [`inject`](Self::inject) it without taking a child.
    #[must_use]
    pub fn child(&self) -> Self {
        self.clone().into_child()
    }

    /// [`child`](Self::child) of a context no longer needed: its `tracestate` moves over.
    pub(super) fn into_child(self) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            parent_id: Some(self.span_id),
            flags: self.flags.known(),
            state: self.state,
        }
    }

    /// This context with the `sampled` flag set or cleared.
    ///
    /// The specification lets the flag change only together with the span id, so use it on a
    /// context fresh from [`new_root`](Self::new_root) or [`child`](Self::child).
    #[must_use]
    pub fn with_sampled(mut self, sampled: bool) -> Self {
        self.flags = self.flags.with_sampled(sampled);
        self
    }

    /// The trace this context belongs to.
    #[must_use]
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span this context names; [`inject`](Self::inject) sends it as the `parent-id`.
    #[must_use]
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The span this one is a child of: `Some` for a [`child`](Self::child), `None` for a
    /// root or a context read from headers.
    #[must_use]
    pub fn parent_id(&self) -> Option<SpanId> {
        self.parent_id
    }

    /// The trace flags.
    #[must_use]
    pub fn flags(&self) -> TraceFlags {
        self.flags
    }

    /// Whether the `sampled` flag is set.
    #[must_use]
    pub fn sampled(&self) -> bool {
        self.flags.sampled()
    }

    /// Whether the `random-trace-id` flag is set: the right-most 7 bytes of the trace id are
    /// uniformly random, so they may serve to sample or shard.
    #[must_use]
    pub fn random_trace_id(&self) -> bool {
        self.flags.random()
    }

    /// The `tracestate`.
    #[must_use]
    pub fn trace_state(&self) -> &TraceState {
        &self.state
    }

    /// The `tracestate`, to add or update this service's own entry with
    /// [`TraceState::insert`].
    pub fn trace_state_mut(&mut self) -> &mut TraceState {
        &mut self.state
    }

    /// The `traceparent` that passes this context on: this trace, this span as the parent, these
    /// flags.
    #[must_use]
    pub fn traceparent(&self) -> TraceParent {
        TraceParent {
            trace_id: self.trace_id,
            parent_id: self.span_id,
            flags: self.flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> TraceContext {
        // Sampled, random-trace-id, and two reserved flags.
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0f"
            .parse()
            .unwrap();
        TraceContext::from_traceparent(traceparent, "congo=t61rcWkgMzE".parse().unwrap())
    }

    #[test]
    fn a_received_context_names_the_callers_span() {
        let context = received();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(context.parent_id(), None);
        assert_eq!(context.flags(), TraceFlags::new(0x0f));
        assert!(context.sampled());
        assert!(context.random_trace_id());
        assert_eq!(context.trace_state().as_str(), "congo=t61rcWkgMzE");
        assert_eq!(
            context.traceparent().to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0f"
        );
    }

    #[test]
    fn a_child_keeps_trace_flags_and_state_and_takes_a_new_span() {
        let parent = received();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        assert_eq!(child.parent_id(), Some(parent.span_id()));
        assert_eq!(child.flags(), TraceFlags::new(0x03));
        assert!(child.random_trace_id());
        assert_eq!(child.trace_state(), parent.trace_state());
        let grandchild = child.child();
        assert_eq!(grandchild.parent_id(), Some(child.span_id()));
        assert_eq!(grandchild.trace_id(), parent.trace_id());
    }

    #[test]
    fn a_root_is_a_new_random_unsampled_trace_without_state() {
        let root = TraceContext::new_root();
        let other = TraceContext::new_root();
        assert_ne!(root.trace_id(), other.trace_id());
        assert_ne!(root.span_id(), other.span_id());
        assert_eq!(root.parent_id(), None);
        assert_eq!(root.flags(), TraceFlags::RANDOM);
        assert!(root.random_trace_id());
        assert!(!root.sampled());
        assert!(root.trace_state().is_empty());
        assert_eq!(root.clone().with_sampled(true).flags().bits(), 0x03);
        assert_eq!(
            root.with_sampled(true).with_sampled(false).flags(),
            TraceFlags::RANDOM
        );
    }

    #[test]
    fn our_entry_goes_in_front_of_the_received_state() {
        let mut context = received().child();
        let span = context.span_id().to_string();
        context.trace_state_mut().insert("rojo", &span).unwrap();
        assert_eq!(
            context.trace_state().as_str(),
            format!("rojo={span},congo=t61rcWkgMzE")
        );
    }
}

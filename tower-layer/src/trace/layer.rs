//! [`TraceContextLayer`]: the server side of W3C trace context.

use tower_layer::Layer;

use super::service::Traced;

/// Continues the caller's W3C trace (or starts one) for every request of the service it wraps.
///
/// Each request gets a server span: its [`TraceContext`] goes into the request extensions and
/// it is the [current](super::current) context while the inner service runs and while the
/// response body is polled (so [`TraceIds`](super::TraceIds) puts its ids in the log lines);
/// with [`with_span`](Self::with_span), a `tracing` span `http.request` carries its ids too.
/// See the [module docs](super) for an example and the layer order.
///
/// [`TraceContext`]: vantage_instrument::trace_context::TraceContext
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer {
    span: bool,
}

impl TraceContextLayer {
    /// The layer, without a `tracing` span per request.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Also opens an `http.request` span (INFO) per request, for subscribers that work with
    /// spans; see the [module docs](super) for its fields and its cost.
    #[must_use]
    pub fn with_span(mut self) -> Self {
        self.span = true;
        self
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Traced::new(inner, self.span)
    }
}

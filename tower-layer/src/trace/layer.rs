//! [`TraceContextLayer`]: the server side of W3C trace context.

use tower_layer::Layer;

use super::service::Traced;

/// Continues the caller's W3C trace (or starts one) for every request of the service it wraps.
///
/// Each request gets a server span: its [`TraceContext`] goes into the request extensions, a
/// `tracing` span `http.request` carries its ids, and it is the [current](super::current)
/// context while the inner service runs and while the response body is polled. See the
/// [module docs](super) for an example and the layer order.
///
/// [`TraceContext`]: vantage_instrument::trace_context::TraceContext
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer {
    _private: (),
}

impl TraceContextLayer {
    /// The layer; it has no options.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Traced::new(inner)
    }
}

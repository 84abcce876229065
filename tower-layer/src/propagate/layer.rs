//! [`PropagateTraceLayer`]: configuration of the client side.

use tower_layer::Layer;

use super::service::PropagateTrace;

/// Writes the current W3C trace context into every outgoing request of the client it wraps.
///
/// See the [module docs](super) for what is written, when, and an example.
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateTraceLayer {
    _private: (),
}

impl PropagateTraceLayer {
    /// The layer; it has no options.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for PropagateTraceLayer {
    type Service = PropagateTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateTrace::new(inner)
    }
}

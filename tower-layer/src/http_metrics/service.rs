//! [`HttpMetrics`]: the service that starts each request's record.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;
use vantage_instrument::trace_context::TraceContext;

use super::body::{BodySizes, NoBodySizes};
use super::context::{ContextMode, ContextSlot, NoTraceContext};
use super::future::ResponseFuture;
use super::guard::Recording;
use super::labels::MethodLabel;
use super::layer::SharedRefs;
use crate::trace::current::peek;

/// Middleware recording HTTP server metrics; made by [`HttpMetricsLayer`](super::HttpMetricsLayer).
///
/// See the [module docs](super) for an example.
pub struct HttpMetrics<S, M = NoBodySizes, C = NoTraceContext> {
    inner: S,
    shared: SharedRefs,
    _mode: PhantomData<fn() -> (M, C)>,
}

impl<S, M, C> HttpMetrics<S, M, C> {
    pub(crate) fn new(inner: S, shared: SharedRefs) -> Self {
        Self {
            inner,
            shared,
            _mode: PhantomData,
        }
    }

    crate::macros::define_inner_service_accessors!();
}

impl<S: Clone, M, C> Clone for HttpMetrics<S, M, C> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), self.shared.clone())
    }
}

impl<S: fmt::Debug, M, C> fmt::Debug for HttpMetrics<S, M, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpMetrics")
            .field("inner", &self.inner)
            .field("shared", self.shared.shared())
            .finish()
    }
}

impl<S, M, C, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetrics<S, M, C>
where
    S: Service<Request<M::RequestBody<ReqBody>>, Response = Response<ResBody>>,
    S::Error: Any,
    M: BodySizes,
    C: ContextMode,
    ResBody: Body,
{
    type Response = Response<super::ResponseBody<ResBody, C>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let shared = self.shared.shared();
        let route = if shared.reads_parts() {
            let route;
            (route, request) = shared.route_of_parts(request);
            route
        } else {
            shared.route(&request)
        };
        let Some(route) = route else {
            let future = self.inner.call(M::request(request, None));
            return ResponseFuture::new(future, None, C::Slot::default());
        };
        let method = MethodLabel::of(request.method());
        let mut context = C::start(request.headers());
        // The request's trace: its duration sample's exemplar, and its entry in the slow store.
        // Without its own, the current one first: a `TraceContextLayer` outside makes its
        // context current around this call, and a thread-local is cheaper to read than an
        // extension.
        let trace_id = context.trace_id().or_else(|| {
            peek(|current| current.map(TraceContext::trace_id)).or_else(|| {
                request
                    .extensions()
                    .get::<TraceContext>()
                    .map(TraceContext::trace_id)
            })
        });
        // Started before the inner call: a panic inside it is recorded by the guard's drop.
        let recording = Recording::start(self.shared.reference(), method, route, trace_id);
        let size = M::RECORDS.then(|| shared.registry.request_size(route, method));
        // The request moved once, into the inner call (a binding of its own would copy it).
        let future = context.in_context(|| self.inner.call(M::request(request, size)));
        ResponseFuture::new(future, Some(recording), context)
    }
}

//! [`Traced`]: the service that gives each request its server span.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;
use tracing::Span;
use tracing::field::{self, Empty};
use vantage_instrument::trace_context::TraceContext;

use super::current::in_context;
use super::future::ResponseFuture;
use crate::macros::matched_path;

/// The `tracing` target of the `http.request` spans, for filters such as
/// `RUST_LOG=vantage_tower::trace=info`.
pub const SPAN_TARGET: &str = "vantage_tower::trace";

/// Middleware continuing or starting a W3C trace per request; made by
/// [`TraceContextLayer`](super::TraceContextLayer).
///
/// See the [module docs](super) for an example.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    span: bool,
}

impl<S> Traced<S> {
    pub(crate) fn new(inner: S, span: bool) -> Self {
        Self { inner, span }
    }

    crate::macros::define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Traced<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<super::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let context = TraceContext::continue_or_start(request.headers());
        // Without a subscriber interested in the span, this is a disabled span: no field is
        // formatted and nothing is allocated.
        let span = if self.span {
            tracing::info_span!(
                target: SPAN_TARGET,
                "http.request",
                trace_id = %context.trace_id(),
                span_id = %context.span_id(),
                parent_span_id = context.parent_id().map(field::display),
                http.request.method = %request.method(),
                http.route = matched_path(request.extensions()),
                http.response.status_code = Empty,
            )
        } else {
            Span::none()
        };
        request.extensions_mut().insert(context.clone());
        let mut context = Some(context);
        let future = {
            let _span = span.enter();
            in_context(&mut context, || self.inner.call(request))
        };
        ResponseFuture::new(future, span, context)
    }
}

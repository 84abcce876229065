//! [`ResponseFuture`]: polls the inner future inside the request's span and trace context.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project::pin_project;
use tracing::Span;
use vantage_instrument::trace_context::TraceContext;

use super::body::ResponseBody;
use super::current::in_context;

/// Response future of [`Traced`](super::Traced).
///
/// Every poll of the inner future runs inside the request's `http.request` span with its trace
/// context [current](super::current); the response status is recorded on the span, and the span
/// and context move on to the [`ResponseBody`].
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
    span: Span,
    context: Option<TraceContext>,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: Span, context: Option<TraceContext>) -> Self {
        Self {
            inner,
            span,
            context,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _span = this.span.enter();
            ready!(in_context(this.context, || this.inner.poll(cx)))
        };
        Poll::Ready(result.map(|response| {
            this.span
                .record("http.response.status_code", response.status().as_u16());
            let span = std::mem::replace(this.span, Span::none());
            response.map(|body| ResponseBody::new(body, span, this.context.take()))
        }))
    }
}

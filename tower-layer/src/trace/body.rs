//! [`ResponseBody`]: polls the response body inside the request's span and trace context.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project::pin_project;
use tracing::Span;
use vantage_instrument::trace_context::TraceContext;

use super::current::in_context;

/// Response body of [`Traced`](super::Traced): a streamed body is produced inside the
/// request's `http.request` span with its trace context [current](super::current), so what a
/// stream logs or calls carries the trace too. The span closes when the body is dropped.
#[pin_project]
#[derive(Debug)]
pub struct ResponseBody<B> {
    #[pin]
    inner: B,
    span: Span,
    context: Option<TraceContext>,
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, span: Span, context: Option<TraceContext>) -> Self {
        Self {
            inner,
            span,
            context,
        }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let _span = this.span.enter();
        in_context(this.context, || this.inner.poll_frame(cx))
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

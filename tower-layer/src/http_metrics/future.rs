//! [`ResponseFuture`]: waits for the response head and hands the record to the body.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use http_body::Body;
use pin_project::pin_project;

use super::body::ResponseBody;
use super::classify;
use super::context::{ContextMode, ContextSlot, NoTraceContext};
use super::guard::{PanicGuard, Recording};

/// Response future of [`HttpMetrics`](super::HttpMetrics).
///
/// An `Err` from the inner service is recorded with its `error_type` and passed through
/// unchanged; dropping the future before the response (a client that went away) records the
/// request as cancelled.
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F, C: ContextMode = NoTraceContext> {
    #[pin]
    inner: F,
    recording: Option<Recording>,
    /// The request's trace context, with [`trace_context`](super::HttpMetricsLayer::trace_context).
    context: C::Slot,
}

impl<F, C: ContextMode> ResponseFuture<F, C> {
    pub(crate) fn new(inner: F, recording: Option<Recording>, context: C::Slot) -> Self {
        Self {
            inner,
            recording,
            context,
        }
    }
}

impl<F, B, E, C> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    E: Any,
    C: ContextMode,
{
    type Output = Result<Response<ResponseBody<B, C>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _guard = PanicGuard(this.recording);
            ready!(this.context.in_context(|| this.inner.poll(cx)))
        };
        let mut recording = this.recording.take();
        match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let mut bodyless = matches!(parts.status.as_u16(), 100..=199 | 204 | 304);
                if let Some(recording) = recording.as_mut() {
                    recording.set_status(parts.status);
                    bodyless |= recording.method().is_head();
                }
                let body = ResponseBody::new(body, recording, bodyless, this.context.take());
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(error) => {
                if let Some(recording) = recording {
                    recording.finish_error(classify::error(&error));
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

//! Body wrappers: the response body carries the request's record to its end; the request body
//! (with [`body_sizes`](super::HttpMetricsLayer::body_sizes)) counts what the handler read.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use metrics::Histogram;
use pin_project::pin_project;

use super::context::{ContextMode, ContextSlot, NoTraceContext};
use super::guard::{PanicGuard, Recording};

/// Whether request body sizes are recorded, as a type: without them the request body reaches
/// the inner service untouched (axum then does not re-box it).
pub trait BodySizes: sealed::Sealed + Send + Sync + 'static {
    /// The request body the inner service receives.
    type RequestBody<B>;

    /// Wraps a request's body; `size` is where its size goes, if anywhere.
    #[doc(hidden)]
    fn request<B>(request: Request<B>, size: Option<Histogram>) -> Request<Self::RequestBody<B>>;

    /// Whether the request body size histogram is recorded.
    #[doc(hidden)]
    const RECORDS: bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoBodySizes {}
    impl Sealed for super::RecordBodySizes {}
}

/// Body sizes are not recorded (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBodySizes;

/// Request and response body sizes are recorded; see
/// [`body_sizes`](super::HttpMetricsLayer::body_sizes).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordBodySizes;

impl BodySizes for NoBodySizes {
    type RequestBody<B> = B;
    const RECORDS: bool = false;

    #[inline]
    fn request<B>(request: Request<B>, _size: Option<Histogram>) -> Request<B> {
        request
    }
}

impl BodySizes for RecordBodySizes {
    type RequestBody<B> = RequestBody<B>;
    const RECORDS: bool = true;

    fn request<B>(request: Request<B>, size: Option<Histogram>) -> Request<RequestBody<B>> {
        request.map(|inner| RequestBody {
            inner,
            size: size.map(|histogram| SizeRecord {
                histogram,
                bytes: 0,
            }),
        })
    }
}

/// Response body of [`HttpMetrics`](super::HttpMetrics): records the request when the stream
/// ends, fails, or is dropped before its end (a client that went away).
#[pin_project]
#[derive(Debug)]
pub struct ResponseBody<B, C: ContextMode = NoTraceContext> {
    #[pin]
    inner: B,
    recording: Option<Recording>,
    /// The request's trace context, current while the body is polled.
    context: C::Slot,
}

impl<B: Body, C: ContextMode> ResponseBody<B, C> {
    /// `bodyless` responses (to HEAD, or 1xx/204/304) are never polled by the server, so they
    /// end with their head, as do bodies that are empty from the start.
    pub(crate) fn new(
        inner: B,
        mut recording: Option<Recording>,
        bodyless: bool,
        context: C::Slot,
    ) -> Self {
        if bodyless || inner.is_end_stream() {
            if let Some(recording) = recording.take() {
                recording.finish();
            }
        }
        Self {
            inner,
            recording,
            context,
        }
    }
}

impl<B: Body, C: ContextMode> Body for ResponseBody<B, C> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        if this.recording.is_none() {
            // Ended (or not recorded at all): nothing left to time or to enter for a stream
            // that has said it is done.
            return this.inner.poll_frame(cx);
        }
        let polled = {
            let _guard = PanicGuard(this.recording);
            ready!(
                this.context
                    .in_context(|| this.inner.as_mut().poll_frame(cx))
            )
        };
        let Some(recording) = this.recording.as_mut() else {
            return Poll::Ready(polled);
        };
        match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    recording.add_response_bytes(data.remaining());
                }
                // The server may not poll again once the body says it is done.
                if this.inner.is_end_stream() {
                    finish(this.recording, Recording::finish);
                }
            }
            Some(Err(_)) => finish(this.recording, Recording::finish_body_error),
            None => finish(this.recording, Recording::finish),
        }
        Poll::Ready(polled)
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

fn finish(slot: &mut Option<Recording>, end: fn(Recording)) {
    if let Some(recording) = slot.take() {
        end(recording);
    }
}

/// Request body handed to the inner service when body sizes are recorded: counts the bytes the
/// handler read and records them once, when the body is dropped.
#[pin_project]
#[derive(Debug)]
pub struct RequestBody<B> {
    #[pin]
    inner: B,
    size: Option<SizeRecord>,
}

#[derive(Debug)]
struct SizeRecord {
    histogram: Histogram,
    bytes: u64,
}

impl Drop for SizeRecord {
    fn drop(&mut self) {
        self.histogram.record(self.bytes as f64);
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = ready!(this.inner.poll_frame(cx));
        if let (Some(size), Some(Ok(frame))) = (this.size.as_mut(), &polled) {
            if let Some(data) = frame.data_ref() {
                size.bytes += data.remaining() as u64;
            }
        }
        Poll::Ready(polled)
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

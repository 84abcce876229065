//! [`PropagateTrace`]: writes the trace context into each outgoing request.

use std::task::{Context, Poll};

use http::{HeaderMap, Request};
use tower_service::Service;
use vantage_instrument::trace_context::TRACEPARENT;

use crate::trace::with_current;

/// Middleware writing the current trace context into outgoing requests; made by
/// [`PropagateTraceLayer`](super::PropagateTraceLayer).
///
/// The inner service's future is returned as it is: the headers are written in `call`, while
/// the caller's context is current. See the [module docs](super) for an example.
#[derive(Debug, Clone)]
pub struct PropagateTrace<S> {
    inner: S,
}

impl<S> PropagateTrace<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner }
    }

    crate::macros::define_inner_service_accessors!();
}

impl<S, B> Service<Request<B>> for PropagateTrace<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !request.headers().contains_key(TRACEPARENT) {
            inject_current(request.headers_mut());
        }
        self.inner.call(request)
    }
}

/// Writes a child of the [current](crate::trace::current) trace context into `headers`:
/// `traceparent` with the current trace id and a new span id, and the `tracestate` (replacing
/// earlier values of both). Returns whether there was a current context; without one, `headers`
/// are left as they are.
///
/// For clients that are not tower services; see the [module docs](super) for an example.
pub fn inject_current(headers: &mut HeaderMap) -> bool {
    with_current(|current| {
        current
            .map(|server| server.child().inject(headers))
            .is_some()
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::HeaderValue;
    use tower::{ServiceBuilder, ServiceExt};
    use vantage_instrument::trace_context::{TRACESTATE, TraceContext};

    use super::*;
    use crate::propagate::PropagateTraceLayer;
    use crate::trace::Scoped;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SERVER_SPAN: &str = "00f067aa0ba902b7";

    /// The server span of a request that came with `sampled`, `random-trace-id`, two reserved
    /// flags and a `tracestate`.
    fn server() -> TraceContext {
        let traceparent = format!("00-{TRACE}-{SERVER_SPAN}-0f").parse().unwrap();
        TraceContext::from_traceparent(traceparent, "congo=t61rcWkgMzE".parse().unwrap())
    }

    /// Sends a request with `headers` through the layer and returns the headers the inner
    /// client service received.
    async fn sent(headers: &[(&str, &str)]) -> HeaderMap {
        let client = ServiceBuilder::new()
            .layer(PropagateTraceLayer::new())
            .service_fn(|request: Request<()>| async move {
                Ok::<_, Infallible>(request.headers().clone())
            });
        let mut request = Request::new(());
        for (name, value) in headers {
            request.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        client.oneshot(request).await.unwrap()
    }

    /// The `traceparent` fields: trace id, parent id, flags.
    fn fields(headers: &HeaderMap) -> (String, String, String) {
        let value = headers[TRACEPARENT].to_str().unwrap();
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!((parts.len(), parts[0]), (4, "00"), "{value}");
        (
            parts[1].to_owned(),
            parts[2].to_owned(),
            parts[3].to_owned(),
        )
    }

    #[tokio::test]
    async fn a_request_in_a_scope_carries_a_child_of_the_current_context() {
        let (first, second) = Scoped::new(server(), async {
            (sent(&[("accept", "*/*")]).await, sent(&[]).await)
        })
        .await;
        let (trace, span, flags) = fields(&first);
        assert_eq!((trace.as_str(), flags.as_str()), (TRACE, "03"));
        assert_ne!(span, SERVER_SPAN);
        assert_eq!(first[TRACESTATE], "congo=t61rcWkgMzE");
        assert_eq!(first["accept"], "*/*");
        assert_eq!(first.len(), 3);
        // Every call is a span of its own.
        let (trace, other_span, _) = fields(&second);
        assert_eq!(trace, TRACE);
        assert_ne!(other_span, span);
        assert_ne!(other_span, SERVER_SPAN);
    }

    #[tokio::test]
    async fn without_a_current_context_the_request_is_left_alone() {
        let headers = sent(&[("accept", "*/*"), ("tracestate", "foo=1")]).await;
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["accept"], "*/*");
        assert_eq!(headers[TRACESTATE], "foo=1");
    }

    #[tokio::test]
    async fn a_traceparent_set_by_hand_is_kept() {
        let by_hand = "00-12345678901234567890123456789012-1234567890123456-00";
        let headers = Scoped::new(server(), async {
            sent(&[("traceparent", by_hand), ("tracestate", "mine=1")]).await
        })
        .await;
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[TRACEPARENT], by_hand);
        assert_eq!(headers[TRACESTATE], "mine=1");
    }

    #[tokio::test]
    async fn inject_current_replaces_both_headers_and_drops_an_empty_state() {
        let root = TraceContext::new_root();
        let (trace_id, root_span) = (root.trace_id().to_string(), root.span_id().to_string());
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static("stale"));
        headers.insert(TRACESTATE, HeaderValue::from_static("stale=1"));
        let (injected, headers) = Scoped::new(root, async move {
            let injected = inject_current(&mut headers);
            (injected, headers)
        })
        .await;
        assert!(injected);
        assert_eq!(headers.len(), 1);
        let (trace, span, flags) = fields(&headers);
        // A new trace: its random trace id carries the `random-trace-id` flag.
        assert_eq!((trace, flags), (trace_id, "02".to_owned()));
        assert_ne!(span, root_span);
    }
}

//! [`SlowRequestsService`]: serves the slowest requests as JSON.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, header};
use tower_service::Service;

use super::SlowRequests;

impl SlowRequests {
    /// A tower service answering every request with [`to_json`](Self::to_json) (mount it at
    /// `/debug/slow`, behind whatever protects your debug endpoints).
    #[must_use]
    pub fn service(&self) -> SlowRequestsService {
        SlowRequestsService { slow: self.clone() }
    }
}

/// Tower service answering with the slowest requests as JSON; see [`SlowRequests::service`].
#[derive(Debug, Clone)]
pub struct SlowRequestsService {
    slow: SlowRequests,
}

impl<B> Service<Request<B>> for SlowRequestsService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        let mut response = Response::new(self.slow.to_json());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;
    use vantage_instrument::trace_context::TraceId;

    use super::*;

    #[tokio::test]
    async fn the_service_answers_with_the_json_snapshot() {
        let slow = SlowRequests::new().top(1).unwrap();
        let trace_id = TraceId::from_u128(0x1234).unwrap();
        slow.offer("/users/{id}", 1.5, trace_id);
        let response = slow.service().oneshot(Request::new(())).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let json: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(json["window_seconds"], 300.0);
        assert_eq!(json["top"], 1);
        assert_eq!(json["routes"][0]["route"], "/users/{id}");
        let slowest = &json["routes"][0]["slowest"];
        assert_eq!(slowest.as_array().map(Vec::len), Some(1));
        assert_eq!(slowest[0]["trace_id"], "00000000000000000000000000001234");
        assert_eq!(slowest[0]["seconds"], 1.5);
    }
}

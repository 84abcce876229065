//! [`SlowRequestsService`]: serves the slowest requests as JSON.

use http::StatusCode;
use vantage_instrument::endpoint::{RenderBody, RenderService};

use super::SlowRequests;

impl SlowRequests {
    /// A tower service answering every request with [`to_json`](Self::to_json) (mount it at
    /// `/debug/slow`, behind whatever protects your debug endpoints).
    #[must_use]
    pub fn service(&self) -> SlowRequestsService {
        RenderService::new("application/json", self.clone())
    }
}

/// Always `200`, with [`to_json`](SlowRequests::to_json).
impl RenderBody for SlowRequests {
    fn render_body(&self) -> (StatusCode, String) {
        (StatusCode::OK, self.to_json())
    }
}

/// Tower service answering with the slowest requests as JSON; see [`SlowRequests::service`].
pub type SlowRequestsService = RenderService<SlowRequests>;

#[cfg(test)]
mod tests {
    use http::{Request, header};
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

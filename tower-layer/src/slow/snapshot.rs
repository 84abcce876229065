//! What [`SlowRequests::snapshot`](super::SlowRequests::snapshot) reports, and its JSON form.

use std::time::Duration;

use serde::{Serialize, Serializer};
use vantage_instrument::trace_context::TraceId;

/// The slowest recent requests of one route.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SlowRoute {
    /// The route: the `http_route` label value of the requests.
    pub route: String,
    /// Its slowest requests of the window, slowest first.
    pub slowest: Vec<SlowRequest>,
}

/// One of the slowest requests: its trace id leads to its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SlowRequest {
    /// The request's trace id (JSON: 32 lowercase hex digits).
    #[serde(serialize_with = "hex")]
    pub trace_id: TraceId,
    /// How long it took, in seconds (for `HttpMetricsLayer`: to the end of the response body).
    pub seconds: f64,
    /// How long ago it finished (JSON: `age_seconds`).
    #[serde(rename = "age_seconds", serialize_with = "seconds")]
    pub age: Duration,
}

fn hex<S: Serializer>(trace_id: &TraceId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(trace_id)
}

fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

#[derive(Serialize)]
struct Report<'a> {
    window_seconds: f64,
    top: usize,
    routes: &'a [SlowRoute],
}

/// The JSON document the `/debug/slow` service answers with.
pub(crate) fn to_json(window: Duration, top: usize, routes: &[SlowRoute]) -> String {
    let report = Report {
        window_seconds: window.as_secs_f64(),
        top,
        routes,
    };
    // Plain structs of strings and numbers: serialising them cannot fail.
    serde_json::to_string(&report).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_json_with_hex_trace_ids_and_seconds() {
        let routes = [SlowRoute {
            route: "/users/{id}".to_owned(),
            slowest: vec![SlowRequest {
                trace_id: TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736).unwrap(),
                seconds: 2.5,
                age: Duration::from_millis(12_250),
            }],
        }];
        assert_eq!(
            to_json(Duration::from_secs(300), 5, &routes),
            r#"{"window_seconds":300.0,"top":5,"routes":[{"route":"/users/{id}","slowest":[{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","seconds":2.5,"age_seconds":12.25}]}]}"#
        );
        assert_eq!(
            to_json(Duration::from_secs(60), 3, &[]),
            r#"{"window_seconds":60.0,"top":3,"routes":[]}"#
        );
    }
}

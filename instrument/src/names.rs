//! Every metric name, label name and default bucket layout Vantage uses: the contract that
//! dashboards and alerts depend on, in one file.
//!
//! The service side follows the OpenTelemetry HTTP semantic conventions in their Prometheus form
//! (dots become underscores, the unit becomes a suffix). The edge side mirrors it with the `edge_`
//! prefix, so both vantage points can be read together with the same buckets and route names.

/// Histogram of server request durations, in seconds, to the end of the response body.
///
/// Its `_count` series is the request counter: requests per second is `rate(..._count[1m])`.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Gauge of requests that have started and not yet finished (response body included).
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "http_server_active_requests";
/// Histogram of request body sizes, in bytes, counted from the frames the handler read.
pub const HTTP_SERVER_REQUEST_BODY_SIZE: &str = "http_server_request_body_size_bytes";
/// Histogram of response body sizes, in bytes, counted from the frames that were sent.
pub const HTTP_SERVER_RESPONSE_BODY_SIZE: &str = "http_server_response_body_size_bytes";

/// Label: the request method, or [`OTHER_METHOD`] for a non-standard one.
pub const HTTP_REQUEST_METHOD: &str = "http_request_method";
/// Label: the matched route template (`/users/{id}`), never a raw path.
pub const HTTP_ROUTE: &str = "http_route";
/// Label: the response status code, empty when no response was produced.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http_response_status_code";
/// Label: why the request failed, empty when it did not.
pub const ERROR_TYPE: &str = "error_type";

/// The request methods OpenTelemetry names: each is its own method label value, and any other
/// method is recorded as [`OTHER_METHOD`].
pub const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
/// Method label value for any method outside [`STANDARD_METHODS`] (OpenTelemetry's `_OTHER`).
pub const OTHER_METHOD: &str = "_OTHER";
/// Route label value for a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "(other)";
/// Route label value for every route past the cardinality cap.
pub const OVERFLOW_ROUTE: &str = "(overflow)";
/// Status label value of a request whose client went away before the response finished
/// (nginx's convention, so the edge and the service agree).
///
/// [`CLIENT_CLOSED_STATUS_CODE`] is the same status as a number.
pub const CLIENT_CLOSED_STATUS: &str = "499";
/// [`CLIENT_CLOSED_STATUS`] as a number: the status recorded for a request whose client went
/// away before the response finished.
pub const CLIENT_CLOSED_STATUS_CODE: u16 = 499;

/// The content type of the Prometheus text exposition format (version 0.0.4), which `/metrics`
/// answers with.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `error_type` values that are not a status code or an error's type name.
pub mod error_type {
    /// The handler panicked.
    pub const PANIC: &str = "panic";
    /// The request timed out (tower `Elapsed`, or a 408/504 timeout response).
    pub const TIMEOUT: &str = "timeout";
    /// The client went away before the response finished.
    pub const CANCELLED: &str = "cancelled";
    /// The response body stream returned an error.
    pub const BODY_ERROR: &str = "body_error";
    /// The inner service failed with an error whose type has no useful name.
    pub const OTHER: &str = "_OTHER";
}

/// Counter of timed function calls (autometrics' name, so its dashboards work).
pub const FUNCTION_CALLS_TOTAL: &str = "function_calls_total";
/// Histogram of timed function durations, in seconds (autometrics' name).
pub const FUNCTION_CALLS_DURATION: &str = "function_calls_duration_seconds";
/// Label: the timed function's name.
pub const FUNCTION: &str = "function";
/// Label: the module path of the timed function.
pub const MODULE: &str = "module";
/// Label: `ok`, `error` or `cancelled`.
pub const RESULT: &str = "result";

/// Edge: requests seen in the proxy's access log.
pub const EDGE_REQUESTS_TOTAL: &str = "edge_requests_total";
/// Edge: request duration as the proxy logged it, in seconds.
pub const EDGE_REQUEST_DURATION: &str = "edge_request_duration_seconds";
/// Edge: upstream (backend) duration, where the format logs it separately.
pub const EDGE_UPSTREAM_DURATION: &str = "edge_upstream_duration_seconds";
/// Edge: input lines by `result` (`parsed`, `malformed`, `filtered`).
pub const EDGE_LINES_TOTAL: &str = "edge_lines_total";
/// Edge: bytes read from the access logs.
pub const EDGE_BYTES_READ_TOTAL: &str = "edge_bytes_read_total";
/// Edge: timestamp of the newest parsed line, in seconds since the epoch.
pub const EDGE_LAST_LINE_TIMESTAMP: &str = "edge_last_line_timestamp_seconds";
/// Edge: how far the newest parsed line lags behind the wall clock, in seconds.
pub const EDGE_LAG: &str = "edge_lag_seconds";
/// Edge: log rotations seen, by `kind`.
pub const EDGE_FILE_ROTATIONS_TOTAL: &str = "edge_file_rotations_total";
/// Edge: 1 while a router's traffic is far outside its baseline, by `kind`.
pub const EDGE_ANOMALY: &str = "edge_anomaly";
/// Edge: checkpoints written.
pub const EDGE_CHECKPOINT_WRITES_TOTAL: &str = "edge_checkpoint_writes_total";
/// Edge: checkpoint writes that failed.
pub const EDGE_CHECKPOINT_ERRORS_TOTAL: &str = "edge_checkpoint_errors_total";
/// Edge: when the last checkpoint was written, in seconds since the epoch.
pub const EDGE_CHECKPOINT_LAST_SUCCESS: &str = "edge_checkpoint_last_success_timestamp_seconds";
/// Edge: 1 if the counters continue from a checkpoint restored at startup.
pub const EDGE_CHECKPOINT_RESTORED: &str = "edge_checkpoint_restored";
/// Edge: log files currently followed.
pub const EDGE_FILES_OPEN: &str = "edge_files_open";
/// Edge counter: lines whose timestamp was not trusted (`direction`: `ahead` of the clock, or
/// `behind` the newest line), placed at their arrival time in the live windows.
pub const EDGE_CLOCK_SKEW_LINES_TOTAL: &str = "edge_clock_skew_lines_total";
/// Counter: scrapes of the services' `/metrics` by `edge-parser serve --service-metrics`, by
/// `url`, `instance` (the address scraped) and `result` (`success`, `failure`).
pub const EDGE_SERVICE_SCRAPES_TOTAL: &str = "edge_service_scrapes_total";
/// Gauge: 1 when the last scrape of a service instance succeeded, 0 when it failed.
pub const EDGE_SERVICE_UP: &str = "edge_service_up";
/// Gauge: route templates learned from the services' `http_route` values and in use.
pub const EDGE_ROUTE_TEMPLATES_LEARNED: &str = "edge_route_templates_learned";
/// Gauge: requests per `http_route` since the edge and the services' common start, by `side`
/// (`edge`: logged by the proxy, `service`: ended by the services).
pub const EDGE_RECONCILE_REQUESTS: &str = "edge_reconcile_requests";
/// Gauge: requests per `http_route` that reached the proxy but no service since the common
/// start, by `reason` (`proxy_answered`, `client_cancelled`, `unexplained`).
pub const EDGE_RECONCILE_LOST_REQUESTS: &str = "edge_reconcile_lost_requests";
/// Gauge: requests per `http_route` since the common start that an upstream answered on a
/// route no service instance measures (it has never exported it): they reached an app, and are
/// not counted as lost.
pub const EDGE_RECONCILE_UNMEASURED_REQUESTS: &str = "edge_reconcile_unmeasured_requests";
/// Gauge: 1 when the reconciliation misses something (a failing or late service instance).
pub const EDGE_RECONCILE_PARTIAL: &str = "edge_reconcile_partial";
/// Gauge: HTTP connections open on `edge-parser serve`'s port.
pub const EDGE_HTTP_CONNECTIONS_OPEN: &str = "edge_http_connections_open";
/// Counter: HTTP connections accepted since the process started.
pub const EDGE_HTTP_CONNECTIONS_ACCEPTED_TOTAL: &str = "edge_http_connections_accepted_total";
/// Counter: failed accepts (out of file descriptors or memory) since the process started.
pub const EDGE_HTTP_ACCEPT_ERRORS_TOTAL: &str = "edge_http_accept_errors_total";
/// Counter: idle HTTP connections closed to make room under the connection cap.
pub const EDGE_HTTP_CONNECTIONS_EVICTED_TOTAL: &str = "edge_http_connections_evicted_total";
/// Counter: HTTP connections closed at once because the cap was reached and none was idle.
pub const EDGE_HTTP_CONNECTIONS_REFUSED_TOTAL: &str = "edge_http_connections_refused_total";

/// Edge label: the proxy's router, or the route template for formats that log no router.
pub const ROUTER: &str = "router";
/// Edge label: the service the proxy sent the request to (`-` when not logged).
pub const SERVICE: &str = "service";
/// Edge label: the requested host, when the edge groups by it.
pub const HOST: &str = "host";
/// Edge label: the request method (standard methods, else `_OTHER`).
pub const METHOD: &str = "method";
/// Edge label: the status code as logged.
pub const CODE: &str = "code";
/// Edge label: `parsed`, `malformed` or `filtered`.
pub const LINE_RESULT: &str = "result";
/// Edge label: what kind of rotation or anomaly.
pub const KIND: &str = "kind";
/// Edge label: `ahead` or `behind`, of `edge_clock_skew_lines_total`.
pub const DIRECTION: &str = "direction";

/// Default duration buckets in seconds: the OpenTelemetry recommendation for
/// `http.server.request.duration`, shared by the service and the edge.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Default body size buckets in bytes: powers of four from 64 B to 64 MiB.
pub const DEFAULT_BODY_SIZE_BUCKETS: &[f64] = &[
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_closed_status_is_one_value_as_text_and_number() {
        assert_eq!(CLIENT_CLOSED_STATUS, CLIENT_CLOSED_STATUS_CODE.to_string());
    }
}

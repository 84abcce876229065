//! Middleware that records OpenTelemetry HTTP server metrics: request rate, duration and errors
//! per route, at near-zero cost per request.
//!
//! For every request, exactly once when it ends, [`HttpMetricsLayer`] records one sample of
//! `http_server_request_duration_seconds` (a histogram whose `_count` is the request counter)
//! labelled with
//!
//! - `http_request_method`: the standard methods as they are, anything else `_OTHER`;
//! - `http_route`: axum's `MatchedPath` template (feature `axum`) or what the
//!   [`route_fn`](HttpMetricsLayer::route_fn) says, `(other)` for a request that matched no
//!   route, and `(overflow)` for every route past the [cap](HttpMetricsLayer::max_routes);
//! - `http_response_status_code`: the status sent, `499` when the client went away first, empty
//!   when the inner service failed without a response;
//! - `error_type`: empty for success, else why it failed: the status code for 5xx, `timeout`
//!   (tower `Elapsed`, or a 408/504 response such as tower-http's `TimeoutLayer` sends),
//!   `panic`, `cancelled` (the response future or body was dropped before the end),
//!   `body_error` (the response body stream failed), or the type name of the inner service's
//!   error.
//!
//! The duration runs to the **end of the response body**, not to the response head: a streamed
//! or server-sent-events response is timed as the client experiences it.
//! `http_server_active_requests{http_request_method}` goes up when a request starts and down
//! exactly once when it ends, whatever the end. With [`body_sizes`](HttpMetricsLayer::body_sizes),
//! `http_server_request_body_size_bytes` and `http_server_response_body_size_bytes` count the
//! body bytes that actually flowed. With [`slow_requests`](HttpMetricsLayer::slow_requests),
//! each recorded request is also offered, with its trace id, to a
//! [slow-request store](crate::slow) that keeps the slowest recent ones per route.
//!
//! # Differences from tower-http's `TraceLayer`
//!
//! `TraceLayer` emits events for a subscriber to interpret; this layer aggregates into `metrics`
//! handles resolved once per label combination, so a request costs no allocation, no lock and no
//! label string in the steady state. Histogram buckets belong to the recorder: see
//! `vantage_instrument`'s `PrometheusExporter` (feature `prometheus`).
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use vantage_instrument::PrometheusExporter;
//! use vantage_tower::HttpMetricsLayer;
//!
//! # async fn serve() -> std::io::Result<()> {
//! let metrics = PrometheusExporter::new().install();
//! let app = Router::new()
//!     .route("/users/{id}", get(|| async { "user" }))
//!     .layer(HttpMetricsLayer::new())
//!     .route_service("/metrics", metrics.service());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The layer also goes outside a router with `ServiceBuilder`, or in front of any hyper service
//! with a [`route_fn`](HttpMetricsLayer::route_fn):
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//! use vantage_tower::HttpMetricsLayer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let layer = HttpMetricsLayer::new()
//!     .route_fn(|parts| parts.uri.path().starts_with("/users/").then_some("/users/{id}"))
//!     .exclude_paths(["/metrics", "/health"]);
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|_request: Request<String>| async {
//!         Ok::<_, Infallible>(Response::new(String::from("user")))
//!     });
//! let response = service.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```

mod body;
mod classify;
mod context;
mod future;
mod guard;
mod labels;
mod layer;
mod routes;
mod service;
mod slow_hook;

pub use body::{BodySizes, NoBodySizes, RecordBodySizes, RequestBody, ResponseBody};
pub use context::{ContextMode, ContextSlot, NoTraceContext, WithTraceContext};
pub use future::ResponseFuture;
pub use layer::{DEFAULT_MAX_ROUTES, HttpMetricsLayer};
pub use service::HttpMetrics;

#[cfg(test)]
mod tests;

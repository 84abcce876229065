//! Slow-request exemplars: the trace ids of the slowest recent requests of each route.
//!
//! A latency histogram says *that* the p99 of `/users/{id}` jumped; [`SlowRequests`] says
//! *which* requests made it: for each route it keeps the trace ids of the few slowest requests
//! of the last minutes, and [`SlowRequests::service`] serves them as JSON (mount it at
//! `/debug/slow`). Search the logs for one of those trace ids and every line that request
//! logged comes up (see [`TraceContextLayer`](crate::TraceContextLayer)).
//!
//! Hand a clone to [`HttpMetricsLayer::slow_requests`](crate::HttpMetricsLayer::slow_requests):
//! the metrics layer then offers every request it records, with the route and the duration (to
//! the end of the response body) it measured anyway and the trace id it took from the request's
//! [`TraceContext`](vantage_instrument::trace_context::TraceContext) extension when the
//! request started. That extension is put there by `TraceContextLayer`, which must therefore sit
//! **outside** `HttpMetricsLayer`; requests without it are not offered.
//!
//! # Cost
//!
//! Without the option the metrics layer does nothing more. With it, a request costs its trace
//! id (the layer's own context, or a lookup in the extensions), a clock read, a lookup of its
//! route's entry and one atomic load, which turns away every request that is not slower than
//! the current bucket's slowest few. **The route's lock is taken exactly** by a request whose
//! duration is at or above that gate: while the current bucket (one of the window's time
//! slices) holds fewer than its top requests, or by a request at least as slow as the fastest
//! of them; in steady state that is a handful of requests per route per bucket, uncontended.
//! Reading the store (`/debug/slow`) takes each route's lock once. A test counts the locks
//! (`a_full_bucket_admits_only_slower_requests_and_reopens_on_rotation`). Nothing is allocated
//! per request: a route's buckets are allocated once, when it is first seen.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use vantage_tower::slow::SlowRequests;
//! use vantage_tower::{HttpMetricsLayer, TraceContextLayer};
//!
//! # async fn serve() -> std::io::Result<()> {
//! let slow = SlowRequests::new(); // the 5 slowest per route over 5 minutes
//! let app = Router::new()
//!     .route("/users/{id}", get(|| async { "user" }))
//!     .layer(HttpMetricsLayer::new().slow_requests(slow.clone()))
//!     .layer(TraceContextLayer::new()) // outside the metrics layer
//!     .route_service("/debug/slow", slow.service());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! `GET /debug/slow` then answers
//!
//! ```json
//! {"window_seconds":300.0,"top":5,"routes":[{"route":"/users/{id}","slowest":[
//!   {"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","seconds":2.51,"age_seconds":41.2}]}]}
//! ```

mod service;
mod snapshot;
mod store;

pub use service::SlowRequestsService;
pub use snapshot::{SlowRequest, SlowRoute};
pub(crate) use store::RouteSlowest;
pub use store::{DEFAULT_BUCKETS, DEFAULT_TOP, DEFAULT_WINDOW, SlowRequests};

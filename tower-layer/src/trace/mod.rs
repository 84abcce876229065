//! Middleware that carries W3C trace context through a service: the server side.
//!
//! For every request, [`TraceContextLayer`]
//!
//! 1. continues the caller's trace from its `traceparent` / `tracestate` headers, or starts a new
//!    one when there is no valid `traceparent`
//!    ([`TraceContext::continue_or_start`]): the result is the request's **server span**, with a
//!    new span id whose parent is the caller's;
//! 2. puts that [`TraceContext`] in the request extensions (an axum handler takes it with
//!    `Extension<TraceContext>`; [`HttpMetricsLayer`](crate::HttpMetricsLayer) reads its trace id
//!    for the [slow-request exemplars](crate::slow));
//! 3. makes the context [current] while the inner service's `call` runs, at every poll of its
//!    future and at every poll of the response body: the log lines written there carry the
//!    request's `trace_id` and `span_id` through [`TraceIdFields`] (text lines) or
//!    [`TraceIds`] (JSON lines, or around any other event formatter; feature `fmt`), and the
//!    client side
//!    ([`PropagateTraceLayer`](crate::propagate::PropagateTraceLayer),
//!    [`inject_current`](crate::propagate::inject_current)) reads it there, so an outgoing call
//!    made by the handler continues the trace without the context being passed by hand. Work
//!    moved to another task (`tokio::spawn`) takes it along with [`Scoped`];
//! 4. with [`with_span`](TraceContextLayer::with_span), also opens a `tracing` span
//!    `http.request` (level INFO, target [`SPAN_TARGET`]) over the same stretches, with the
//!    fields `trace_id`, `span_id`, `parent_span_id` (when continued), `http.request.method`,
//!    `http.route` (axum's `MatchedPath`, when the layer sits inside a `Router`) and
//!    `http.response.status_code` (recorded when the response head is ready): for subscribers
//!    that work with spans (an OpenTelemetry exporter, span-aware formatters).
//!
//! # Log correlation
//!
//! ```
//! use vantage_tower::trace::{TraceIdFields, TraceIds};
//!
//! // Every line written while a request is handled ends with ` trace_id=… span_id=…`.
//! tracing_subscriber::fmt()
//!     .fmt_fields(TraceIdFields::default())
//!     .map_event_format(TraceIds::after_fields)
//!     .init();
//! // Or, as JSON members: tracing_subscriber::fmt().json().map_event_format(TraceIds::json)
//! ```
//!
//! Without a span per request this costs a thread-local read per log line: the recommended
//! stack (`TraceContextLayer` and `HttpMetricsLayer`) stays within a few hundred nanoseconds per
//! request with a subscriber installed (BENCHMARKS.md), where a span per request (registry
//! slot, formatted fields, enter and exit at every poll) costs about a microsecond.
//!
//! # Layer order
//!
//! With metrics, prefer one layer: [`HttpMetricsLayer::trace_context`](crate::HttpMetricsLayer::trace_context)
//! does what this layer does, in the metrics layer's own wrappers and without the request
//! extension. With the two layers, put `TraceContextLayer` **outside** `HttpMetricsLayer`, so
//! that the metrics layer finds the context current. With `Router::layer` the layer added last
//! is the outermost; with `ServiceBuilder` the first one is.
//!
//! # Cost
//!
//! Per request: one `traceparent` parse (or two random ids), one clone of the context into the
//! request extensions, and a thread-local swap per poll (the context is moved in and out, not
//! cloned). The extension is the only thing the layer allocates itself: three allocations on a
//! request that had no extensions yet (the map, its table, the boxed context; proved by
//! `tower-layer/tests/allocations.rs`), one or two on a request that had some (the boxed context,
//! and the table when it grows). With [`with_span`](TraceContextLayer::with_span) and a
//! subscriber interested in the span, the subscriber pays for what it stores.
//!
//! # Differences from tower-http's `TraceLayer`
//!
//! `TraceLayer` opens a span and emits events whose contents you configure; it knows nothing of
//! W3C trace context. This layer gives every request its W3C ids, puts them in the request's log
//! lines and makes the context available to outgoing calls; it emits no events of its own.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Extension, Router, routing::get};
//! use vantage_instrument::trace_context::TraceContext;
//! use vantage_tower::{HttpMetricsLayer, TraceContextLayer};
//!
//! async fn user(Extension(context): Extension<TraceContext>) -> String {
//!     tracing::info!("looking the user up"); // ... trace_id=… span_id=… (with `TraceIds`)
//!     format!("trace {}", context.trace_id())
//! }
//!
//! # async fn serve() -> std::io::Result<()> {
//! let app = Router::new()
//!     .route("/users/{id}", get(user))
//!     .layer(HttpMetricsLayer::new())
//!     .layer(TraceContextLayer::new()); // added last: outside the metrics layer
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! In front of any service with `ServiceBuilder` (the first layer is the outermost):
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//! use vantage_instrument::trace_context::TraceContext;
//! use vantage_tower::{TraceContextLayer, trace};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(TraceContextLayer::new())
//!     .service_fn(|request: Request<String>| async move {
//!         let context = request.extensions().get::<TraceContext>().cloned();
//!         assert_eq!(trace::current(), context);
//!         Ok::<_, Infallible>(Response::new(String::from("traced")))
//!     });
//! let request = Request::builder()
//!     .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
//!     .body(String::new())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```
//!
//! [`TraceContext`]: vantage_instrument::trace_context::TraceContext
//! [`TraceContext::continue_or_start`]: vantage_instrument::trace_context::TraceContext::continue_or_start

mod body;
pub(crate) mod current;
mod future;
#[cfg(feature = "fmt")]
mod ids;
mod layer;
mod service;

pub use body::ResponseBody;
pub use current::{Scoped, current, with_current};
pub use future::ResponseFuture;
#[cfg(feature = "fmt")]
#[cfg_attr(docsrs, doc(cfg(feature = "fmt")))]
pub use ids::{TraceIdFields, TraceIds, TraceIdsAfterFields};
pub use layer::TraceContextLayer;
pub use service::{SPAN_TARGET, Traced};

#[cfg(test)]
mod tests;

//! Middleware that carries W3C trace context into outgoing requests: the client side.
//!
//! [`PropagateTraceLayer`] wraps an HTTP client service (hyper-util's legacy `Client`, or any
//! `tower::Service<http::Request<B>>`). For each request sent while a trace context is
//! [current](crate::trace::current) (inside a handler behind
//! [`TraceContextLayer`](crate::TraceContextLayer), or a [`Scoped`](crate::trace::Scoped)
//! future), it writes
//!
//! - `traceparent`: the current trace id, a **new child span id** for the outgoing call (its
//!   parent is the server span), and the `sampled` and `random-trace-id` flags as the server
//!   span has them (reserved flags cleared), as Trace Context Level 2 asks;
//! - `tracestate`: the received list, passed on unchanged (at most 512 bytes of it), or no
//!   header when it is empty.
//!
//! Two choices, on purpose:
//!
//! - **No current context: the request is left alone.** Nothing is invented for a call made
//!   outside any request (a start-up task, a timer): the service called starts its own trace,
//!   as it would for any client without tracing. Wrap such work in a
//!   [`Scoped`](crate::trace::Scoped) future with [`TraceContext::new_root`] to trace it.
//! - **A `traceparent` set by hand is kept**, together with its `tracestate`: the caller said
//!   what to send.
//!
//! For clients that are not tower services (reqwest, ureq, ...), call [`inject_current`] on the
//! outgoing headers.
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{ServiceBuilder, ServiceExt};
//! use vantage_tower::propagate::PropagateTraceLayer;
//!
//! # async fn call() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = ServiceBuilder::new()
//!     .layer(PropagateTraceLayer::new())
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
//! // Inside a handler behind `TraceContextLayer`: the call continues the request's trace.
//! let request = http::Request::get("http://127.0.0.1:3001/users/7").body(Full::default())?;
//! let response = client.oneshot(request).await?;
//! # Ok(()) }
//! ```
//!
//! With another client:
//!
//! ```
//! use http::HeaderMap;
//! use vantage_instrument::trace_context::TraceContext;
//! use vantage_tower::propagate::inject_current;
//! use vantage_tower::trace::Scoped;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut headers = HeaderMap::new();
//! assert!(!inject_current(&mut headers)); // no request is being handled
//! assert!(headers.is_empty());
//!
//! let server = TraceContext::new_root();
//! let trace_id = server.trace_id();
//! let headers = Scoped::new(server, async {
//!     let mut headers = HeaderMap::new();
//!     assert!(inject_current(&mut headers));
//!     headers // a reqwest `RequestBuilder::headers(headers)` would send these
//! })
//! .await;
//! assert!(headers["traceparent"].to_str().unwrap().contains(&trace_id.to_string()));
//! # }
//! ```
//!
//! [`TraceContext::new_root`]: vantage_instrument::trace_context::TraceContext::new_root

mod layer;
mod service;

pub use layer::PropagateTraceLayer;
pub use service::{PropagateTrace, inject_current};

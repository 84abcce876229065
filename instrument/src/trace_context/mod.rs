//! [W3C Trace Context Level 1](https://www.w3.org/TR/trace-context-1/): the `traceparent` and
//! `tracestate` headers that carry a distributed trace from service to service.
//!
//! - [`TraceContext`]: a position in a trace. Read one from request headers
//!   ([`TraceContext::from_headers`], or [`TraceContext::continue_or_start`] for a server span),
//!   make a [`child`](TraceContext::child) for each operation, and
//!   [`inject`](TraceContext::inject) it into outgoing headers.
//! - [`TraceParent`]: the `traceparent` value, parsed and formatted without allocating.
//! - [`TraceState`]: the `tracestate` list, validated, kept in order and truncated as the
//!   specification says.
//! - [`TraceId`] and [`SpanId`]: the ids, written as lowercase hex by `Display` without
//!   allocating; new ones come from a fast thread-local generator.
//!
//! Invalid input never becomes an error for the service: an invalid or repeated `traceparent`
//! makes [`TraceContext::from_headers`] return `None` (start a new trace, and ignore
//! `tracestate`), and an invalid `tracestate` is dropped while the `traceparent` is kept. The
//! parse functions return [`TraceParentError`] and [`TraceStateError`] to say why.
//!
//! # Example
//!
//! ```
//! use http::HeaderMap;
//! use vantage_instrument::trace_context::TraceContext;
//!
//! let mut request = HeaderMap::new();
//! request.insert(
//!     "traceparent",
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?,
//! );
//! request.insert("tracestate", "congo=t61rcWkgMzE".parse()?);
//!
//! // Server side: continue the caller's trace with a span of our own.
//! let server = TraceContext::continue_or_start(&request);
//! assert_eq!(server.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_eq!(
//!     server.parent_id().map(|id| id.to_string()).as_deref(),
//!     Some("00f067aa0ba902b7")
//! );
//! assert!(server.sampled());
//!
//! // Client side: a child span for an outgoing call, with our entry in front of the state.
//! let mut client = server.child();
//! let span = client.span_id().to_string();
//! client.trace_state_mut().insert("vantage", &span)?;
//! let mut outgoing = HeaderMap::new();
//! client.inject(&mut outgoing);
//! assert_eq!(
//!     outgoing["traceparent"],
//!     format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{span}-01").as_str()
//! );
//! assert_eq!(
//!     outgoing["tracestate"],
//!     format!("vantage={span},congo=t61rcWkgMzE").as_str()
//! );
//!
//! // No (or an invalid) traceparent: a new trace.
//! let root = TraceContext::continue_or_start(&HeaderMap::new());
//! assert_eq!(root.parent_id(), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Performance
//!
//! Parsing a valid `traceparent` takes about 23 ns and does not allocate; the OpenTelemetry SDK's
//! `TraceContextPropagator` takes 230 to 300 ns to extract the same value from a `HashMap`.
//! Reading a whole context from a `HeaderMap` takes 50 to 65 ns, a child context about 13 ns, a
//! new span id about 1 ns. Bench: `cargo bench -p vantage-benches --bench trace_context`
//! (groups `traceparent`, `tracestate`, `ids`).

mod context;
mod ids;
mod propagate;
mod traceparent;
mod tracestate;

pub use context::TraceContext;
pub use ids::{SpanId, TraceId};
pub use propagate::{TRACEPARENT, TRACESTATE};
pub use traceparent::{TraceFlags, TraceParent, TraceParentError};
pub use tracestate::{TraceState, TraceStateError};

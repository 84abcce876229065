//! W3C Trace Context: `traceparent` and `tracestate`.

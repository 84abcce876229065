//! End-to-end tests: real servers on loopback TCP ports, real clients, real `promtool`.

// Helpers: servers on 127.0.0.1:0, an HTTP client, scraping, promtool.
mod util;

// The HTTP metrics layer in a real axum service, seen from a real client.
mod service_metrics;

// W3C trace context from a caller through one service to another, in headers and in logs.
mod trace_propagation;

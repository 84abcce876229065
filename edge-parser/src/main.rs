//! `edge-parser`: reads ingress access logs and reports rate and latency per route.

fn main() {}

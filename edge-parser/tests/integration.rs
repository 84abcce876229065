//! Integration tests of the `edge-parser` library and binary.

// Real sample lines per format (`tests/data/<format>/`) against hand-checked expectations.
mod corpus;
// Format detection on the corpora, on generated logs, and its refusals.
mod detection;
// Samples written by loggen.py (an independent generator) against its ground truth.
mod loggen;
// Property tests: arbitrary bytes never panic; generated records parse back exactly.
mod props;
// Helpers: a temporary directory per test, and a runner for the real binary.
mod util;
// The binary's exit codes, messages, inputs, output and options.
mod cli;
// `report` against hostile input: far timestamps, empty or over-long first inputs, numbers at
// the edge of u64, inputs read only once, terminal control sequences.
mod report_hostile;
// Real nginx, Caddy and HAProxy logs, read back against what the client sent.
mod proxies;
// The deployment files: Kubernetes manifests, Dockerfile and systemd unit.
mod deploy;
// Helpers for `serve`: a running server found by its port, an HTTP client, exposition parsing.
mod serve_util;
// `serve` against a model through appends, partial lines, rotations and restarts.
mod serve_model;
// `serve` for an operator: shutdown, checkpoints, endpoints, stream, snapshot, group cap.
mod serve_cli;
// `serve` following a real nginx log rotated by a real logrotate (copytruncate, create).
mod serve_logrotate;
// `serve` where a sidecar lives: no log yet, few descriptors, clock jumps, a read-only
// checkpoint, hostile clients, kill -9 while scraped.
mod serve_hostile;
// `serve` following a real Traefik's log through a rotation, a Traefik restart and a kill -9.
mod serve_traefik;
// Native histograms of two sidecars merged by a real Prometheus against the exact quantiles.
mod serve_native;
// A real axum service's exemplars and native histograms in two real Prometheus servers.
mod service_exemplars;
// `serve` beside a real instrumented axum service: its route templates adopted, its scrapes
// counted, its failures survived.
mod serve_reconcile;

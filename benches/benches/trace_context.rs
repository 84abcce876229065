//! W3C Trace Context: `traceparent` parse and format, `tracestate` parse, id generation, beside
//! the OpenTelemetry SDK's `TraceContextPropagator` as the baseline.
//!
//! `cargo bench -p vantage-benches --bench trace_context`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TraceFlags as OtelFlags};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use vantage_instrument::trace_context::{
    SpanId, TRACEPARENT, TRACESTATE, TraceContext, TraceId, TraceParent, TraceState,
};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const STATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,fw529a3039@dt=some-value";

/// Reads OpenTelemetry fields from an `http::HeaderMap`, as `opentelemetry-http` does.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

fn traceparent(c: &mut Criterion) {
    let mut group = c.benchmark_group("traceparent");
    let propagator = TraceContextPropagator::new();
    let mut headers = HeaderMap::new();
    headers.insert(TRACEPARENT, HeaderValue::from_static(PARENT));
    let map = HashMap::from([("traceparent".to_owned(), PARENT.to_owned())]);

    group.bench_function("parse_vantage", |b| {
        b.iter(|| TraceParent::from_bytes(black_box(PARENT.as_bytes())));
    });
    group.bench_function("parse_otel", |b| {
        b.iter(|| propagator.extract(black_box(&map)));
    });
    group.bench_function("extract_vantage", |b| {
        b.iter(|| TraceContext::from_headers(black_box(&headers)));
    });
    group.bench_function("extract_otel", |b| {
        b.iter(|| propagator.extract(&HeaderExtractor(black_box(&headers))));
    });

    let parsed: TraceParent = PARENT.parse().expect("a valid traceparent");
    group.bench_function("format_vantage", |b| {
        b.iter(|| black_box(parsed).to_header_value());
    });
    let context = TraceContext::from_headers(&headers).expect("a valid traceparent");
    let mut outgoing = HeaderMap::new();
    group.bench_function("inject_vantage", |b| {
        b.iter(|| black_box(&context).inject(&mut outgoing));
    });
    let otel_context = propagator.extract(&map);
    assert_eq!(
        otel_context.span().span_context().trace_flags(),
        OtelFlags::SAMPLED
    );
    let mut otel_outgoing = HashMap::new();
    group.bench_function("inject_otel", |b| {
        b.iter(|| propagator.inject_context(black_box(&otel_context), &mut otel_outgoing));
    });
    group.finish();
}

fn tracestate(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracestate");
    group.bench_function("parse", |b| {
        b.iter(|| black_box(STATE).parse::<TraceState>());
    });
    group.bench_function("parse_otel", |b| {
        b.iter(|| black_box(STATE).parse::<opentelemetry::trace::TraceState>());
    });
    let mut headers = HeaderMap::new();
    headers.insert(TRACESTATE, HeaderValue::from_static(STATE));
    group.bench_function("from_header_values", |b| {
        b.iter(|| TraceState::from_header_values(black_box(&headers).get_all(TRACESTATE)));
    });
    let state: TraceState = STATE.parse().expect("a valid tracestate");
    group.bench_function("insert", |b| {
        b.iter(|| {
            let mut state = state.clone();
            state.insert("vantage", "00f067aa0ba902b7")
        });
    });
    group.finish();
}

fn ids(c: &mut Criterion) {
    let mut group = c.benchmark_group("ids");
    group.bench_function("new_span_id", |b| b.iter(SpanId::random));
    group.bench_function("new_trace_id", |b| b.iter(TraceId::random));
    group.bench_function("new_root", |b| b.iter(TraceContext::new_root));
    let mut headers = HeaderMap::new();
    headers.insert(TRACEPARENT, HeaderValue::from_static(PARENT));
    headers.insert(TRACESTATE, HeaderValue::from_static(STATE));
    let caller = TraceContext::from_headers(&headers).expect("a valid traceparent");
    group.bench_function("child", |b| b.iter(|| black_box(&caller).child()));
    group.bench_function("display_trace_id", |b| {
        let id = caller.trace_id();
        let mut out = String::with_capacity(32);
        b.iter(|| {
            out.clear();
            std::fmt::Write::write_fmt(&mut out, format_args!("{}", black_box(id)))
        });
    });
    group.finish();
}

criterion_group!(benches, traceparent, tracestate, ids);
criterion_main!(benches);

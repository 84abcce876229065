//! Allocation counts of the hot paths, measured per thread by `allocation-counter` (a counting
//! global allocator): parsing and formatting a `traceparent`, reading a whole context and
//! continuing or starting a trace, new ids, and a timed call on the fast path after its first
//! call resolved the handles.

use std::fmt::Write as _;

use http::{HeaderMap, HeaderValue};
use vantage_instrument::trace_context::{
    SpanId, TRACEPARENT, TRACESTATE, TraceContext, TraceId, TraceParent,
};
use vantage_instrument::{call_site, timed};

const HEADER: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn parsing_and_formatting_a_traceparent_allocates_nothing() {
    let mut formatted = String::with_capacity(64);
    let info = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            let parent = TraceParent::from_bytes(std::hint::black_box(HEADER)).expect("valid");
            formatted.clear();
            write!(formatted, "{parent}").expect("formats");
            std::hint::black_box(TraceId::random());
            std::hint::black_box(SpanId::random());
        }
    });
    assert_eq!(formatted.as_bytes(), HEADER);
    assert_eq!(info.count_total, 0);
}

#[test]
fn continuing_or_starting_a_trace_allocates_nothing() {
    let mut headers = HeaderMap::new();
    headers.insert(
        TRACEPARENT,
        HeaderValue::from_bytes(HEADER).expect("a header value"),
    );
    // A canonical tracestate (Level 2 keys included) is kept as received, not copied.
    headers.insert(
        TRACESTATE,
        HeaderValue::from_static("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,fw529a3039@dt=x,a@b@c=1"),
    );
    let info = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            let server = TraceContext::continue_or_start(std::hint::black_box(&headers));
            std::hint::black_box(server.child());
            std::hint::black_box(TraceContext::new_root());
        }
    });
    let server = TraceContext::continue_or_start(&headers);
    assert_eq!(server.trace_state().len(), 4);
    assert_eq!(server.flags().bits(), 0x01);
    assert_eq!(info.count_total, 0);
}

#[test]
fn a_timed_call_allocates_only_what_the_recorder_does() {
    let recorder = vantage_instrument::PrometheusExporter::new()
        .eager_native_buckets(true)
        .build_recorder();
    metrics::with_local_recorder(&recorder, || {
        let parse = |text: &str| timed!("parse_port", text.parse::<u16>());
        let scope = || call_site!("scope").start().ok();
        assert_eq!(parse("80"), Ok(80));
        scope();
        // The same samples recorded straight into handles of the same recorder: what the
        // recorder itself allocates (it stores samples in blocks).
        let histograms = [
            metrics::histogram!("baseline_a"),
            metrics::histogram!("baseline_b"),
        ];
        let counters = [
            metrics::counter!("baseline_a"),
            metrics::counter!("baseline_b"),
        ];
        for histogram in &histograms {
            histogram.record(0.001);
        }
        let baseline = allocation_counter::measure(|| {
            for _ in 0..1_000 {
                for (histogram, counter) in histograms.iter().zip(&counters) {
                    histogram.record(std::hint::black_box(0.001));
                    counter.increment(1);
                }
            }
        });
        let timed = allocation_counter::measure(|| {
            for _ in 0..1_000 {
                std::hint::black_box(parse(std::hint::black_box("8080")).ok());
                scope();
            }
        });
        assert_eq!(timed.count_total, baseline.count_total);
    });
}

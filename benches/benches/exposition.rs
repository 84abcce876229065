//! The cost of a service's `/metrics` in each exposition format, for 1 000 histogram series:
//! the text (classic buckets), OpenMetrics (with an exemplar on every bucket that has one) and
//! protobuf (with native histograms), rendered from one `VantageRecorder`.
//!
//! 250 routes × 4 status codes of `http_server_request_duration_seconds`, each series with 200
//! samples spread over 1 ms – 2 s, a quarter of them traced (exemplars). The edge's `/metrics`
//! at 1 000 groups is timed whole-process by `benches/exposition_scrape.sh`.
//!
//! `cargo bench -p vantage-benches --bench exposition`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vantage_instrument::PrometheusExporter;
use vantage_instrument::exposition::{Format, with_exemplar_trace};
use vantage_instrument::names;
use vantage_instrument::trace_context::TraceId;

fn exposition(c: &mut Criterion) {
    let recorder = PrometheusExporter::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        let mut rng = fastrand::Rng::with_seed(7);
        for route in 0..250 {
            for status in ["200", "404", "500", "503"] {
                let histogram = metrics::histogram!(
                    names::HTTP_SERVER_REQUEST_DURATION,
                    names::HTTP_REQUEST_METHOD => "GET",
                    names::HTTP_ROUTE => format!("/api/v1/resource{route}/{{id}}"),
                    names::HTTP_RESPONSE_STATUS_CODE => status,
                );
                for _ in 0..200 {
                    let seconds = 0.001 * 2000f64.powf(rng.f64());
                    let trace = TraceId::from_u128(rng.u128(1..)).filter(|_| rng.u8(..4) == 0);
                    with_exemplar_trace(trace, || histogram.record(seconds));
                }
            }
        }
    });
    let handle = recorder.handle();
    let mut group = c.benchmark_group("exposition_1000_series");
    group.sample_size(30);
    for (name, format) in [
        ("text", Format::Text),
        ("openmetrics", Format::OpenMetrics),
        ("protobuf", Format::Protobuf),
    ] {
        eprintln!("{name}: {} bytes", handle.render_as(format).len());
        group.bench_function(name, |b| b.iter(|| black_box(handle.render_as(format))));
    }
    group.finish();
}

criterion_group!(benches, exposition);
criterion_main!(benches);

//! Cost per timed call of Vantage's function timing: the fast path (a `Stopwatch` guard, the
//! `timed!` macro, a `.timed()` future), beside the same call untimed, the `metrics` macros with
//! labels built per call, and the tracing layer on an `#[instrument]`ed function.
//!
//! Everything records into one globally installed Prometheus recorder (with its upkeep thread,
//! duration histograms with buckets), as in production. The timed function is the same trivial
//! one everywhere, so the differences to `baseline_empty` are the cost of timing it.
//!
//! `cargo bench -p vantage-benches --bench function_timing`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::prelude::*;
use vantage_instrument::names;
use vantage_instrument::timing::{FunctionTimingLayer, TimedExt};
use vantage_instrument::{PrometheusExporter, call_site, timed};

/// The timed function: as little work as possible, and not optimised away.
#[inline(never)]
fn work(input: u64) -> Result<u64, ()> {
    Ok(black_box(input).wrapping_mul(3))
}

/// The same function, timed by the tracing layer.
#[tracing::instrument(fields(vantage.timed))]
#[inline(never)]
fn work_instrumented(input: u64) -> Result<u64, ()> {
    work(input)
}

/// Polls a future that completes on its first poll.
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the benchmarked futures complete on their first poll"),
    }
}

fn function_timing(c: &mut Criterion) {
    // A bench records tens of millions of samples a second, which the recorder buffers until
    // its upkeep folds them into the histograms: upkeep often, so the buffer stays as small as a
    // service's would be.
    let _metrics = PrometheusExporter::new()
        .upkeep_interval(Duration::from_millis(100))
        .install();
    let mut group = c.benchmark_group("function_timing");

    group.bench_function("baseline_empty", |b| b.iter(|| work(black_box(7))));

    group.bench_function("vantage_guard", |b| {
        b.iter(|| {
            let stopwatch = call_site!("work_guard").start();
            let output = work(black_box(7));
            stopwatch.observe(&output);
            output
        });
    });

    group.bench_function("vantage_timed_macro", |b| {
        b.iter(|| timed!("work_macro", work(black_box(7))));
    });

    group.bench_function("baseline_future", |b| {
        b.iter(|| poll_once(async { work(black_box(7)) }));
    });

    group.bench_function("vantage_timed_future", |b| {
        b.iter(|| poll_once(async { work(black_box(7)) }.timed(call_site!("work_future"))));
    });

    group.bench_function("naive_metrics_macros", |b| {
        b.iter(|| {
            let start = Instant::now();
            let output = work(black_box(7));
            let result = if output.is_ok() { "ok" } else { "error" };
            metrics::counter!(
                names::FUNCTION_CALLS_TOTAL,
                names::FUNCTION => "work_naive",
                names::MODULE => module_path!(),
                names::RESULT => result,
            )
            .increment(1);
            metrics::histogram!(
                names::FUNCTION_CALLS_DURATION,
                names::FUNCTION => "work_naive",
                names::MODULE => module_path!(),
            )
            .record(start.elapsed().as_secs_f64());
            output
        });
    });

    let no_layer = tracing_subscriber::registry();
    tracing::subscriber::with_default(no_layer, || {
        group.bench_function("tracing_span_no_layer", |b| {
            b.iter(|| work_instrumented(black_box(7)));
        });
    });

    let with_layer = tracing_subscriber::registry().with(FunctionTimingLayer::new());
    tracing::subscriber::with_default(with_layer, || {
        group.bench_function("tracing_layer", |b| {
            b.iter(|| work_instrumented(black_box(7)));
        });
    });

    group.finish();
}

criterion_group!(benches, function_timing);
criterion_main!(benches);

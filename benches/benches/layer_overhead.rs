//! Cost per request of the HTTP metrics layer, in process (`oneshot`, no sockets), beside the
//! bare router, axum-prometheus and tower-http's `TraceLayer`; on one thread and with two
//! threads hitting the same route at once.
//!
//! All layers record into one globally installed Prometheus recorder (with its upkeep thread),
//! as in production. Each measured request includes building the request and draining the
//! response body, the same for every variant: compare the differences to `bare`.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower::util::MapResponseLayer;
use vantage_instrument::PrometheusExporter;
use vantage_tower::HttpMetricsLayer;

fn routes() -> Router {
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/health", get(|| async { "ok" }))
}

/// The variants, each served as `axum::serve` would (`with_state` turns handlers into routes).
fn variants() -> Vec<(&'static str, Router)> {
    vec![
        ("bare", routes().with_state(())),
        // What `Router::layer` costs any layer that wraps the response body: axum boxes the
        // layered route, its future and the wrapped body.
        (
            "identity_body_layer",
            routes()
                .layer(MapResponseLayer::new(|response: Response| {
                    response.map(|body| body.map_err(std::convert::identity))
                }))
                .with_state(()),
        ),
        (
            "vantage",
            routes().layer(HttpMetricsLayer::new()).with_state(()),
        ),
        (
            "axum_prometheus",
            routes()
                .layer(axum_prometheus::PrometheusMetricLayer::new())
                .with_state(()),
        ),
        (
            "tower_http_trace",
            routes()
                .layer(tower_http::trace::TraceLayer::new_for_http())
                .with_state(()),
        ),
    ]
}

/// Runs `iters` requests on this thread and returns how long they took.
fn run(router: &Router, iters: u64) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let request = Request::get("/users/7")
                .body(Body::empty())
                .expect("request");
            let response = router.clone().oneshot(request).await.expect("infallible");
            let body = response.into_body().collect().await.expect("body");
            std::hint::black_box(body);
        }
        start.elapsed()
    })
}

/// Runs `iters` requests on each of two threads at once; returns the slower thread's time, so
/// the figure is the time per request as each thread sees it.
fn run_two_threads(router: &Router, iters: u64) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let router = router.clone();
                    barrier.wait();
                    run(&router, iters)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn layer_overhead(c: &mut Criterion) {
    let _metrics = PrometheusExporter::new().install();
    let variants = variants();
    let mut group = c.benchmark_group("layer_overhead");
    for (name, router) in &variants {
        group.bench_with_input(BenchmarkId::new("1_thread", name), router, |b, router| {
            b.iter_custom(|iters| run(router, iters));
        });
    }
    for (name, router) in &variants {
        group.bench_with_input(BenchmarkId::new("2_threads", name), router, |b, router| {
            b.iter_custom(|iters| run_two_threads(router, iters));
        });
    }
    group.finish();
}

criterion_group!(benches, layer_overhead);
criterion_main!(benches);

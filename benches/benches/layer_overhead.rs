//! Cost per request of Vantage's service-side layers beside the bare router and the peers, under
//! the conditions users have: an axum 0.8 `Router` served in process (`oneshot`, as
//! `axum::serve` would call it: `with_state`), every request carrying a `traceparent` header
//! among five others a client and a proxy add,
//! the handler writing one INFO log line, a global `tracing_subscriber::fmt` subscriber at INFO
//! (with Vantage's trace-id field formatter, the recommended set-up) writing into `io::sink`, and one
//! installed Prometheus recorder with its upkeep thread. One route, `GET /users/{id}`.
//!
//! Interleaved rounds: each round runs every variant for one batch, in an order rotated from
//! round to round, so that a noisy neighbour slows every variant alike; the figure of a variant
//! is its median over the rounds, and its added cost the median of its differences from the
//! base variant within each round (paired, so the machine's drift between rounds cancels). On
//! one thread, and on two threads hitting the same route at
//! once (a barrier starts them together; the figure is the slower thread's time per request).
//!
//! ```text
//! cargo bench -p vantage-benches --bench layer_overhead -- [--rounds N] [--batch N] [--threads 1,2]
//!     [--only VARIANT,VARIANT]
//! ```
//!
//! The table printed is the one in BENCHMARKS.md: per variant, ns per request and the cost added
//! over the bare router and over an identity layer (what axum charges any layer that wraps the
//! response body), the latter also as a share of the bare router's time (on a machine where two
//! threads slow each other down, the share is what compares across thread counts).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use tower::util::MapResponseLayer;
use tower::{Layer, Service, ServiceExt};
use tracing::Level;
use vantage_instrument::PrometheusExporter;
use vantage_tower::trace::{TraceIdFields, TraceIds};
use vantage_tower::{HttpMetricsLayer, TraceContextLayer};

mod support;
use support::{median, option, slowest_thread};

/// One handler log line per request: what "trace ids in every handler log line" is about.
async fn user() -> &'static str {
    tracing::info!(user = 7, "user looked up");
    "user"
}

#[autometrics::autometrics]
async fn user_autometrics() -> &'static str {
    tracing::info!(user = 7, "user looked up");
    "user"
}

fn routes() -> Router {
    Router::new().route("/users/{id}", get(user))
}

/// The floor any metrics middleware pays: two clock reads, an unlabelled counter and an
/// unlabelled histogram sample, recorded when the response head is ready.
#[derive(Clone)]
struct FloorLayer {
    counter: metrics::Counter,
    histogram: metrics::Histogram,
}

#[derive(Clone)]
struct Floor<S> {
    inner: S,
    layer: FloorLayer,
}

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;
    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            layer: self.clone(),
        }
    }
}

impl<S: Service<Request<Body>>> Service<Request<Body>> for Floor<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        FloorFuture {
            inner: self.inner.call(request),
            start: Instant::now(),
            layer: self.layer.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    struct FloorFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        layer: FloorLayer,
    }
}

impl<F: Future> Future for FloorFuture<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        this.layer.counter.increment(1);
        this.layer
            .histogram
            .record(this.start.elapsed().as_secs_f64());
        Poll::Ready(output)
    }
}

/// A variant: its name, its router, and whether its log lines go to a JSON subscriber.
struct Variant {
    name: &'static str,
    router: Router,
    json: bool,
}

fn variants() -> Vec<Variant> {
    let identity = || {
        MapResponseLayer::new(|response: Response| {
            response.map(|body| body.map_err(std::convert::identity))
        })
    };
    let floor = FloorLayer {
        counter: metrics::counter!("bench_floor_requests_total"),
        histogram: metrics::histogram!("bench_floor_duration_seconds"),
    };
    let stack = || {
        routes()
            .layer(HttpMetricsLayer::new())
            .layer(TraceContextLayer::new())
            .with_state(())
    };
    let info = |router: Router| {
        router.layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(Level::INFO))
                .on_response(tower_http::trace::DefaultOnResponse::new().level(Level::INFO)),
        )
    };
    let variant = |name, router, json| Variant { name, router, json };
    vec![
        variant("bare", routes().with_state(()), false),
        variant(
            "identity_layer",
            routes().layer(identity()).with_state(()),
            false,
        ),
        variant("floor", routes().layer(floor).with_state(()), false),
        variant(
            "vantage_metrics",
            routes().layer(HttpMetricsLayer::new()).with_state(()),
            false,
        ),
        variant(
            "vantage_trace_context",
            routes().layer(TraceContextLayer::new()).with_state(()),
            false,
        ),
        variant("vantage_stack", stack(), false),
        // Under the JSON subscriber: read against `bare_json_logs`.
        variant("bare_json_logs", routes().with_state(()), true),
        variant("vantage_stack_json_logs", stack(), true),
        variant(
            "vantage_one_layer",
            routes()
                .layer(HttpMetricsLayer::new().trace_context())
                .with_state(()),
            false,
        ),
        variant(
            "vantage_one_layer_json_logs",
            routes()
                .layer(HttpMetricsLayer::new().trace_context())
                .with_state(()),
            true,
        ),
        variant(
            "vantage_stack_with_span",
            routes()
                .layer(HttpMetricsLayer::new())
                .layer(TraceContextLayer::new().with_span())
                .with_state(()),
            false,
        ),
        variant(
            "axum_prometheus",
            routes()
                .layer(axum_prometheus::PrometheusMetricLayer::new())
                .with_state(()),
            false,
        ),
        variant(
            "autometrics",
            Router::new()
                .route("/users/{id}", get(user_autometrics))
                .with_state(()),
            false,
        ),
        variant(
            "tower_http_trace_info",
            info(routes()).with_state(()),
            false,
        ),
    ]
}

/// Request headers as a client behind a proxy sends them, a `traceparent` on every request.
fn request(n: u64) -> Request<Body> {
    Request::get("/users/7")
        .header("host", "api.example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101",
        )
        .header("accept", "application/json")
        .header("accept-encoding", "gzip, deflate, br")
        .header("x-forwarded-for", "203.0.113.7")
        .header(
            "traceparent",
            TRACEPARENTS[(n % TRACEPARENTS.len() as u64) as usize],
        )
        .body(Body::empty())
        .expect("request")
}

const TRACEPARENTS: [&str; 4] = [
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-3d2a8b1e7c4f4a5e9f6b0c1d2e3f4a5b-1a2b3c4d5e6f7a8b-00",
    "00-9e107d9d372bb6826bd81d3542a419d6-e4d909c290d0fb1c-01",
];

/// `count` requests on this thread; nanoseconds per request.
fn run(router: &Router, count: u64, json: bool) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let go = || {
        runtime.block_on(async {
            let start = Instant::now();
            for n in 0..count {
                let response = router
                    .clone()
                    .oneshot(request(n))
                    .await
                    .expect("infallible");
                let body = response.into_body().collect().await.expect("body");
                std::hint::black_box(body);
            }
            start.elapsed()
        })
    };
    let elapsed: Duration = if json {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(Level::INFO)
            .with_writer(std::io::sink)
            .map_event_format(TraceIds::json)
            .finish();
        tracing::subscriber::with_default(subscriber, go)
    } else {
        go()
    };
    elapsed.as_nanos() as f64 / count as f64
}

/// The median over rounds of `variant`'s figure minus `base`'s in the same round: a difference
/// paired within each round, so a drift of the machine's speed from round to round (a noisy
/// VM's) cancels out instead of widening the spread.
fn paired_median(variant: &[f64], base: &[f64]) -> f64 {
    let mut differences: Vec<f64> = variant.iter().zip(base).map(|(v, b)| v - b).collect();
    median(&mut differences)
}

/// `count` requests on each of `threads` threads at once; the slower thread's ns per request.
fn run_threads(router: &Router, count: u64, json: bool, threads: usize) -> f64 {
    if threads == 1 {
        return run(router, count, json);
    }
    slowest_thread(
        threads,
        || router.clone(),
        |router| run(&router, count, json),
    )
}

fn main() {
    let rounds: usize = option("--rounds").map_or(21, |v| v.parse().expect("--rounds N"));
    let batch: u64 = option("--batch").map_or(20_000, |v| v.parse().expect("--batch N"));
    let thread_counts: Vec<usize> = option("--threads").map_or(vec![1, 2], |v| {
        v.split(',')
            .map(|n| n.parse().expect("--threads 1,2"))
            .collect()
    });
    let _metrics = PrometheusExporter::new().install();
    tracing_subscriber::fmt()
        .with_max_level(Level::INFO)
        .with_writer(std::io::sink)
        .fmt_fields(TraceIdFields::default())
        .map_event_format(TraceIds::after_fields)
        .init();
    let only: Option<Vec<String>> =
        option("--only").map(|v| v.split(',').map(str::to_owned).collect());
    let mut variants = variants();
    if let Some(only) = &only {
        // For profiling one variant at a time; the table's columns then compare with the
        // first two variants kept.
        variants.retain(|variant| only.iter().any(|name| name == variant.name));
    }
    println!(
        "{} rounds of {batch} requests per variant, order rotated per round; load average {}",
        rounds,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for &threads in &thread_counts {
        // Warm-up: every handle, cache and buffer in place.
        for variant in &variants {
            run_threads(&variant.router, batch / 10, variant.json, threads);
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for round in 0..rounds {
            for step in 0..variants.len() {
                let index = (round + step) % variants.len();
                let variant = &variants[index];
                samples[index].push(run_threads(&variant.router, batch, variant.json, threads));
            }
        }
        // Each variant's added cost is the median of its differences paired by round (see
        // `paired_median`), not the difference of two medians.
        let identity_index = usize::from(variants.len() > 1);
        let added: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| {
                (
                    paired_median(s, &samples[0]),
                    paired_median(s, &samples[identity_index]),
                )
            })
            .collect();
        let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
        let bare = medians[0];
        println!(
            "\n{threads} thread(s): median ns per request; added: median of per-round differences"
        );
        // The last column reads the added cost against the machine's own speed with this many
        // threads: compare it across thread counts when two threads slow the bare router too.
        println!(
            "| variant | ns | added over bare | added over identity layer | the same, share of bare |"
        );
        println!("|---|---|---|---|---|");
        for ((variant, ns), (over_bare, over_identity)) in variants.iter().zip(&medians).zip(&added)
        {
            println!(
                "| {} | {:.0} | {:+.0} | {:+.0} | {:+.1} % |",
                variant.name,
                ns,
                over_bare,
                over_identity,
                100.0 * over_identity / bare
            );
        }
    }
}

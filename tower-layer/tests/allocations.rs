//! No allocation per request, proved under the conditions users have: the real Prometheus
//! recorder (`PrometheusExporter`, installed once for this test binary) and a global
//! `tracing_subscriber::fmt` subscriber at INFO (with `TraceIdFields`), a handler that writes one
//! log line, requests that carry `traceparent` and `tracestate`.
//!
//! `allocation_counter` counts the allocations of the current thread (the tests run on a
//! current-thread runtime). Each test compares N requests through the layer with N through a
//! baseline that does what the layer asks of the recorder and of the request without the
//! layer's logic: it records the same number of samples into the same recorder (so the
//! recorder's own storage allocates alike), raises and lowers a gauge, and inserts the same
//! request extension where the layer does. The assertions are exact equalities, with no
//! fitted constant: whatever the layer allocates per request shows up.
//!
//! Paths: 2xx, 4xx, 5xx, a future dropped before the response (cancelled), a panicking
//! handler, HEAD, a streamed body, `.body_sizes()`, the recommended stack in one layer
//! (`.trace_context()`) and as two layers (`TraceContextLayer` outside `HttpMetricsLayer`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use futures_util::{FutureExt, stream};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tower::{Layer, Service, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use vantage_instrument::trace_context::TraceContext;
use vantage_instrument::{MetricsEndpoint, PrometheusExporter, names};
use vantage_tower::slow::SlowRequests;
use vantage_tower::trace::{TraceIdFields, TraceIds};
use vantage_tower::{HttpMetricsLayer, TraceContextLayer};

const REQUESTS: u64 = 500;
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

/// The recorder and the subscriber of this test binary, installed once. The recorder's upkeep
/// is an hour away: its drains must not fall inside one side of a comparison only.
fn setup() {
    static METRICS: OnceLock<MetricsEndpoint> = OnceLock::new();
    METRICS.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .fmt_fields(TraceIdFields::default())
            .map_event_format(TraceIds::after_fields)
            .init();
        // The panicking handler would print a message per request otherwise.
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"handler bug") {
                report(info);
            }
        }));
        // Every native bucket block up front: a sample never allocates, on either side.
        PrometheusExporter::new()
            .upkeep_interval(Duration::from_secs(3600))
            .eager_native_buckets(true)
            .install()
    });
}

/// What the handlers answer, by path.
async fn handler(request: Request<Body>) -> Response<Body> {
    tracing::info!(path = request.uri().path(), "handled");
    let path = request.uri().path();
    let status = match &path[path.rfind('/').unwrap_or(0)..] {
        "/missing" => StatusCode::NOT_FOUND,
        "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
        "/panic" => panic!("handler bug"),
        "/pending" => return std::future::pending().await,
        "/stream" => {
            let frames = stream::iter(["one ", "two ", "three"]).map(|chunk| {
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(chunk.as_bytes())))
            });
            return Response::new(Body::new(StreamBody::new(frames)));
        }
        _ => StatusCode::OK,
    };
    let mut response = Response::new(Body::from("hello"));
    *response.status_mut() = status;
    response
}

use futures_util::StreamExt as _;

/// The handler's routes under `prefix`: each test has its own, so that its series are its own
/// (tests run side by side on one recorder).
fn routes(prefix: &str) -> Router {
    let any = |request| handler(request);
    PATHS
        .iter()
        .filter(|(method, _)| *method == Method::GET)
        .fold(Router::new(), |router, (_, path)| {
            router.route(&format!("{prefix}{path}"), get(any))
        })
}

/// The baseline: the recorder calls of the layer without its logic. Per request it wraps the
/// response body as the layer does (axum boxes a wrapped body again), and with `samples > 0`
/// raises and lowers an in-flight gauge and records one sample into each of `samples`
/// histograms of the request's method and path (as the layer records into histograms of the
/// request's outcome, so the recorder's storage fills alike); with `extension`, it puts a
/// trace context in the request extensions as `TraceContextLayer` does; with `request_body`,
/// it wraps the request body as `.body_sizes()` does (axum boxes that again too).
#[derive(Clone)]
struct Baseline {
    gauge: metrics::Gauge,
    histograms: Vec<((Method, String), Vec<metrics::Histogram>)>,
    samples: usize,
    extension: bool,
    request_body: bool,
}

impl Baseline {
    fn new(prefix: &str, samples: usize, extension: bool) -> Self {
        let histograms = PATHS
            .iter()
            .map(|(method, path)| {
                let path = format!("{prefix}{path}");
                // The layer's own metric names (the exporter configures their buckets), under
                // labels of the baseline's.
                let histograms = [
                    names::HTTP_SERVER_REQUEST_DURATION,
                    names::HTTP_SERVER_REQUEST_BODY_SIZE,
                    names::HTTP_SERVER_RESPONSE_BODY_SIZE,
                ][..samples]
                    .iter()
                    .map(|&name| {
                        metrics::histogram!(
                            name,
                            "baseline_method" => method.as_str().to_owned(),
                            "baseline_path" => path.clone()
                        )
                    })
                    .collect();
                ((method.clone(), path), histograms)
            })
            .collect();
        Self {
            gauge: metrics::gauge!("baseline_active"),
            histograms,
            samples,
            extension,
            request_body: false,
        }
    }

    fn request_body(mut self) -> Self {
        self.request_body = true;
        self
    }
}

/// The response body as the baseline hands it on: wrapped, unchanged.
type Wrapped<B> = http_body_util::combinators::MapErr<
    B,
    fn(<B as http_body::Body>::Error) -> <B as http_body::Body>::Error,
>;

impl<S> Layer<S> for Baseline {
    type Service = BaselineService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BaselineService {
            inner,
            baseline: Arc::new(self.clone()),
        }
    }
}

#[derive(Clone)]
struct BaselineService<S> {
    inner: S,
    baseline: Arc<Baseline>,
}

impl<S, B> Service<Request<Body>> for BaselineService<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body,
    S::Future: Send + 'static,
{
    type Response = Response<Wrapped<B>>;
    type Error = S::Error;
    type Future = Recorded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        if self.baseline.extension {
            let context = TraceContext::continue_or_start(request.headers());
            request.extensions_mut().insert(context);
        }
        if self.baseline.request_body {
            let unchanged: fn(axum::Error) -> axum::Error = std::convert::identity;
            request = request.map(|body| Body::new(body.map_err(unchanged)));
        }
        if self.baseline.samples > 0 {
            self.baseline.gauge.increment(1.0);
        }
        let histograms = self
            .baseline
            .histograms
            .iter()
            .position(|((method, path), _)| {
                method == request.method() && *path == request.uri().path()
            });
        Recorded {
            inner: self.inner.call(request),
            baseline: Some((Arc::clone(&self.baseline), histograms)),
        }
    }
}

pin_project_lite::pin_project! {
    /// Records the baseline's samples once, when the response is ready or the future dropped.
    struct Recorded<F> {
        #[pin]
        inner: F,
        baseline: Option<(Arc<Baseline>, Option<usize>)>,
    }

    impl<F> PinnedDrop for Recorded<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some((baseline, histograms)) = this.project().baseline.take() {
                baseline.record(histograms);
            }
        }
    }
}

impl Baseline {
    fn record(&self, histograms: Option<usize>) {
        if self.samples == 0 {
            return;
        }
        if let Some((_, histograms)) = histograms.and_then(|index| self.histograms.get(index)) {
            for histogram in histograms {
                histogram.record(0.001);
            }
        }
        self.gauge.decrement(1.0);
    }
}

impl<F, B, E> Future for Recorded<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<Wrapped<B>>, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Some((baseline, histograms)) = this.baseline.take() {
            baseline.record(histograms);
        }
        let unchanged: fn(B::Error) -> B::Error = std::convert::identity;
        Poll::Ready(output.map(|response| response.map(|body| body.map_err(unchanged))))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// A request as hyper hands it over: its header values share the bytes of the request head
/// (here static ones), so keeping one is a reference count, not a copy.
fn request(method: &Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method.clone())
        .uri(path)
        .header("traceparent", HeaderValue::from_static(TRACEPARENT))
        .header("tracestate", HeaderValue::from_static(TRACESTATE))
        .body(Body::empty())
        .expect("request")
}

/// Allocations of `REQUESTS` requests `method path` through `service` (after a warm-up that
/// resolves every handle and fills every buffer); `/pending` is dropped after its first poll.
fn allocations<S>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    method: &Method,
    path: &str,
) -> u64
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let run = |count: u64| {
        runtime.block_on(async {
            for _ in 0..count {
                let call = service.clone().oneshot(request(method, path));
                if path.ends_with("/pending") {
                    let mut call = Box::pin(call);
                    assert!((&mut call).now_or_never().is_none(), "still pending");
                    drop(call);
                    continue;
                }
                let response = call.await.expect("infallible");
                let body = response.into_body().collect().await.expect("body");
                std::hint::black_box(body);
            }
        });
    };
    run(REQUESTS / 5);
    allocation_counter::measure(|| run(REQUESTS)).count_total
}

/// Every path, as (method, path): the layered and the baseline router allocate alike.
const PATHS: [(Method, &str); 7] = [
    (Method::GET, "/ok"),
    (Method::GET, "/missing"),
    (Method::GET, "/fail"),
    (Method::GET, "/panic"),
    (Method::GET, "/pending"),
    (Method::HEAD, "/ok"),
    (Method::GET, "/stream"),
];

/// Compares, path by path, `layered` with `baseline` (both built on [`routes`] of `prefix`).
fn assert_allocates_like(prefix: &str, layered: Router, baseline: Router) {
    setup();
    let runtime = runtime();
    // Outermost, as applications put it: the layer sees the handler's panic unwind.
    let (layered, baseline) = (
        layered.layer(CatchPanicLayer::new()).with_state(()),
        baseline.layer(CatchPanicLayer::new()).with_state(()),
    );
    for (method, path) in PATHS {
        let path = format!("{prefix}{path}");
        let through_layer = allocations(&runtime, &layered, &method, &path);
        let through_baseline = allocations(&runtime, &baseline, &method, &path);
        assert_eq!(
            through_layer, through_baseline,
            "{method} {path}: {through_layer} allocations through the layer, {through_baseline} through the baseline"
        );
    }
}

#[test]
fn the_metrics_layer_allocates_nothing_of_its_own() {
    // Before any handle is made: the baseline registers its handles as it is built.
    setup();
    let prefix = "/metrics";
    assert_allocates_like(
        prefix,
        routes(prefix).layer(HttpMetricsLayer::new()),
        routes(prefix).layer(Baseline::new(prefix, 1, false)),
    );
}

#[test]
fn body_sizes_allocate_nothing_of_their_own() {
    // Before any handle is made: the baseline registers its handles as it is built.
    setup();
    // A request size, a duration and a response size per request.
    let prefix = "/sizes";
    assert_allocates_like(
        prefix,
        routes(prefix).layer(HttpMetricsLayer::new().body_sizes()),
        routes(prefix).layer(Baseline::new(prefix, 3, false).request_body()),
    );
}

#[test]
fn the_recommended_stack_in_one_layer_allocates_nothing_of_its_own() {
    // Before any handle is made: the baseline registers its handles as it is built.
    setup();
    let slow = SlowRequests::new();
    let prefix = "/one";
    assert_allocates_like(
        prefix,
        routes(prefix).layer(
            HttpMetricsLayer::new()
                .trace_context()
                .slow_requests(slow.clone()),
        ),
        routes(prefix).layer(Baseline::new(prefix, 1, false)),
    );
    assert!(slow.route_count() > 0, "the slow-request store was fed");
}

#[test]
fn the_recommended_stack_as_two_layers_allocates_only_its_extension() {
    // Before any handle is made: the baseline registers its handles as it is built.
    setup();
    let slow = SlowRequests::new();
    let prefix = "/two";
    assert_allocates_like(
        prefix,
        routes(prefix)
            .layer(HttpMetricsLayer::new().slow_requests(slow.clone()))
            .layer(TraceContextLayer::new()),
        // Axum boxes each layer's service: the baseline is two layers too.
        routes(prefix)
            .layer(Baseline::new(prefix, 1, false))
            .layer(Baseline::new(prefix, 0, true)),
    );
    assert!(slow.route_count() > 0, "the slow-request store was fed");
}

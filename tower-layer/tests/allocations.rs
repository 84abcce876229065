//! The layer's steady state allocates nothing: `allocation_counter` (a counting global
//! allocator, per thread) measures N requests through the layer and N through the bare service.
//! The same holds with slow-request exemplars on; the trace context layer allocates exactly the
//! request extension it adds.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, Response};
use http_body_util::BodyExt;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use tower::util::MapResponseLayer;
use tower::{Service, ServiceBuilder, ServiceExt};
use vantage_instrument::trace_context::TraceContext;
use vantage_tower::slow::SlowRequests;
use vantage_tower::{HttpMetricsLayer, TraceContextLayer};

const REQUESTS: u64 = 1_000;

/// A recorder whose handles are plain atomics, so that what is measured is the layer, not a
/// recorder's sample storage.
#[derive(Debug, Default)]
struct AtomicRecorder {
    samples: Arc<AtomicCell>,
}

#[derive(Debug, Default)]
struct AtomicCell(AtomicU64);

impl CounterFn for AtomicCell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl GaugeFn for AtomicCell {
    fn increment(&self, _value: f64) {}
    fn decrement(&self, _value: f64) {}
    fn set(&self, _value: f64) {}
}

impl HistogramFn for AtomicCell {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Recorder for AtomicRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.samples.clone())
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.samples.clone())
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.samples.clone())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Allocations made by `REQUESTS` requests through `service`, after a warm-up that resolves
/// every handle. Building each request allocates the same for both sides.
fn allocations<S>(runtime: &tokio::runtime::Runtime, service: &S) -> u64
where
    S: Service<Request<Body>, Error = Infallible> + Clone,
    S::Response: IntoBody,
{
    allocations_of(runtime, service, |request| request)
}

/// [`allocations`] of requests that `prepare` changes after building them.
fn allocations_of<S>(
    runtime: &tokio::runtime::Runtime,
    service: &S,
    prepare: impl Fn(Request<Body>) -> Request<Body>,
) -> u64
where
    S: Service<Request<Body>, Error = Infallible> + Clone,
    S::Response: IntoBody,
{
    let run = |count: u64| {
        runtime.block_on(async {
            for n in 0..count {
                let path = if n % 2 == 0 { "/users/7" } else { "/health" };
                let request = prepare(Request::get(path).body(Body::empty()).expect("request"));
                let response = service.clone().oneshot(request).await.expect("infallible");
                response.drain().await;
            }
        });
    };
    run(100);
    allocation_counter::measure(|| run(REQUESTS)).count_total
}

trait IntoBody {
    async fn drain(self);
}

impl<B: http_body::Body> IntoBody for Response<B>
where
    B::Error: std::fmt::Debug,
{
    async fn drain(self) {
        self.into_body().collect().await.expect("body");
    }
}

fn layer(recorder: AtomicRecorder) -> HttpMetricsLayer {
    HttpMetricsLayer::new()
        .recorder(recorder)
        .route_fn(|parts| {
            parts
                .uri
                .path()
                .starts_with("/users/")
                .then_some("/users/{id}")
        })
}

#[test]
fn a_plain_service_allocates_nothing_more_through_the_layer() {
    let runtime = runtime();
    let handler = tower::service_fn(|_request: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(String::from("hello")))
    });
    let recorder = AtomicRecorder::default();
    let samples = Arc::clone(&recorder.samples);
    let bare = allocations(&runtime, &handler);
    let layered = allocations(
        &runtime,
        &ServiceBuilder::new()
            .layer(layer(recorder))
            .service(handler),
    );
    assert_eq!(layered, bare);
    assert_eq!(samples.0.load(Ordering::Relaxed), 100 + REQUESTS);
}

#[test]
fn an_axum_router_allocates_nothing_more_with_the_layer_outside() {
    let runtime = runtime();
    let router = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/health", get(|| async { "ok" }));
    let recorder = AtomicRecorder::default();
    let samples = Arc::clone(&recorder.samples);
    let bare = allocations(&runtime, &router);
    let layered = allocations(
        &runtime,
        &ServiceBuilder::new().layer(layer(recorder)).service(router),
    );
    assert_eq!(layered, bare);
    assert_eq!(samples.0.load(Ordering::Relaxed), 100 + REQUESTS);
}

#[test]
fn inside_an_axum_router_the_layer_costs_what_an_identity_layer_costs() {
    let runtime = runtime();
    let routes = || {
        Router::new()
            .route("/users/{id}", get(|| async { "user" }))
            .route("/health", get(|| async { "ok" }))
    };
    // `Router::layer` boxes each layered route and re-boxes any wrapped response body: axum's
    // own cost for every body-wrapping middleware there (tower-http's TraceLayer too). The
    // baseline pays it with a layer that only wraps the body (keeping its size hint, from
    // which axum sets `content-length`).
    let identity = MapResponseLayer::new(|response: Response<Body>| {
        response.map(|body| body.map_err(std::convert::identity))
    });
    let recorder = AtomicRecorder::default();
    let samples = Arc::clone(&recorder.samples);
    // `with_state` turns the handlers into routes once, as `axum::serve` does.
    let baseline = allocations(&runtime, &routes().layer(identity).with_state(()));
    let layered = allocations(
        &runtime,
        &routes()
            .layer(HttpMetricsLayer::new().recorder(recorder))
            .with_state(()),
    );
    assert_eq!(layered, baseline);
    assert_eq!(samples.0.load(Ordering::Relaxed), 100 + REQUESTS);
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Requests that come with the context a `TraceContextLayer` further out would have added.
fn with_context(mut request: Request<Body>) -> Request<Body> {
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let caller = TraceContext::from_traceparent(
        traceparent.parse().expect("valid traceparent"),
        Default::default(),
    );
    request.extensions_mut().insert(caller.child());
    request
}

#[test]
fn slow_request_exemplars_allocate_nothing_more_per_request() {
    let runtime = runtime();
    let handler = tower::service_fn(|_request: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(String::from("hello")))
    });
    let recorder = AtomicRecorder::default();
    let samples = Arc::clone(&recorder.samples);
    let slow = SlowRequests::new();
    let bare = allocations_of(&runtime, &handler, with_context);
    let layered = allocations_of(
        &runtime,
        &ServiceBuilder::new()
            .layer(layer(recorder).slow_requests(slow.clone()))
            .service(handler),
        with_context,
    );
    assert_eq!(layered, bare);
    assert_eq!(samples.0.load(Ordering::Relaxed), 100 + REQUESTS);
    let kept: Vec<(String, Vec<String>)> = slow
        .snapshot()
        .into_iter()
        .map(|route| {
            let ids = route.slowest.iter().map(|r| r.trace_id.to_string());
            (route.route, ids.collect())
        })
        .collect();
    let top = vec![TRACE.to_owned(); 5];
    assert_eq!(
        kept,
        [
            ("(other)".to_owned(), top.clone()),
            ("/users/{id}".to_owned(), top)
        ]
    );
}

/// What `Extensions::insert` costs on a request that had no extensions: the map's box, its
/// table, and the boxed value.
const EXTENSION_ALLOCATIONS: u64 = 3;

#[test]
fn the_trace_context_layer_allocates_only_its_request_extension() {
    let runtime = runtime();
    let handler = tower::service_fn(|_request: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(String::from("hello")))
    });
    let bare = allocations(&runtime, &handler);
    let traced = allocations(
        &runtime,
        &ServiceBuilder::new()
            .layer(TraceContextLayer::new())
            .service(handler),
    );
    assert_eq!(traced, bare + REQUESTS * EXTENSION_ALLOCATIONS);
}

#[test]
fn the_recommended_stack_allocates_only_the_trace_context_extension() {
    let runtime = runtime();
    let handler = tower::service_fn(|_request: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(String::from("hello")))
    });
    let recorder = AtomicRecorder::default();
    let slow = SlowRequests::new();
    let bare = allocations(&runtime, &handler);
    let stacked = allocations(
        &runtime,
        &ServiceBuilder::new()
            .layer(TraceContextLayer::new())
            .layer(layer(recorder).slow_requests(slow.clone()))
            .service(handler),
    );
    assert_eq!(stacked, bare + REQUESTS * EXTENSION_ALLOCATIONS);
    assert_eq!(slow.route_count(), 2);
}

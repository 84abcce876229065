use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;

use super::HttpMetricsLayer;
use crate::TraceContextLayer;
use crate::slow::SlowRequests;
use crate::test_helpers::{Scrape, install_subscriber, recorder};

fn layer() -> (HttpMetricsLayer, Scrape) {
    let (recorder, scrape) = recorder();
    let layer = HttpMetricsLayer::new()
        .recorder(recorder)
        .route_fn(|parts| Some(parts.uri.path()));
    (layer, scrape)
}

fn get_request(path: &str) -> Request<Body> {
    Request::get(path)
        .body(Body::empty())
        .expect("valid request")
}

async fn ok(_request: Request<Body>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::from("hello")))
}

async fn read_all<B: http_body::Body>(response: Response<B>) -> Bytes
where
    B::Error: std::fmt::Debug,
{
    response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes()
}

#[tokio::test]
async fn a_completed_request_is_recorded_once() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new().layer(layer).service_fn(ok);
    let response = service.oneshot(get_request("/hello")).await.unwrap();
    assert_eq!(read_all(response).await, "hello");
    assert_eq!(scrape.requests("GET", "/hello", "200", ""), 1);
    assert_eq!(scrape.duration_series_count(), 1);
    assert_eq!(scrape.active("GET"), 0.0);
}

#[tokio::test]
async fn axum_matched_path_is_the_route_and_unmatched_is_one_value() {
    let (recorder, scrape) = recorder();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .layer(HttpMetricsLayer::new().recorder(recorder));
    for path in ["/users/1", "/users/2", "/nope/1", "/nope/2"] {
        let response = app.clone().oneshot(get_request(path)).await.unwrap();
        read_all(response).await;
    }
    assert_eq!(scrape.requests("GET", "/users/{id}", "200", ""), 2);
    assert_eq!(scrape.requests("GET", "(other)", "404", ""), 2);
    assert_eq!(scrape.duration_series_count(), 2);
}

#[tokio::test]
async fn a_route_with_more_outcomes_than_slots_records_each_once() {
    // Twelve statuses on one route and method: eight take its slots, four the map behind them.
    let (recorder, scrape) = recorder();
    let layer = HttpMetricsLayer::new()
        .recorder(recorder)
        .route_fn(|_| Some("/status/{code}"));
    let statuses: Vec<u16> = vec![200, 201, 204, 301, 302, 400, 401, 403, 404, 409, 500, 503];
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|request: Request<Body>| async move {
                let status: u16 = request.uri().path()[1..].parse().expect("a status path");
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::from_u16(status).expect("a status");
                Ok::<_, Infallible>(response)
            });
    for round in 1..=3 {
        for status in &statuses {
            let response = service
                .clone()
                .oneshot(get_request(&format!("/{status}")))
                .await
                .unwrap();
            read_all(response).await;
        }
        for status in &statuses {
            let error = if *status >= 500 {
                status.to_string()
            } else {
                String::new()
            };
            assert_eq!(
                scrape.requests("GET", "/status/{code}", &status.to_string(), &error),
                round,
                "status {status}"
            );
        }
    }
    assert_eq!(scrape.duration_series_count(), statuses.len());
}

#[tokio::test]
async fn unmatched_route_value_is_configurable() {
    let (recorder, scrape) = recorder();
    let app = Router::new().route("/", get(|| async { "root" })).layer(
        HttpMetricsLayer::new()
            .recorder(recorder)
            .unmatched_route("unknown"),
    );
    read_all(app.oneshot(get_request("/x")).await.unwrap()).await;
    assert_eq!(scrape.requests("GET", "unknown", "404", ""), 1);
}

#[tokio::test]
async fn server_errors_are_named_by_their_status() {
    let (layer, scrape) = layer();
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|request: Request<Body>| async move {
                let status = match request.uri().path() {
                    "/unavailable" => StatusCode::SERVICE_UNAVAILABLE,
                    "/missing" => StatusCode::NOT_FOUND,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let mut response = Response::new(Full::<Bytes>::from("no"));
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            });
    for path in ["/fail", "/unavailable", "/missing"] {
        let response = service.clone().oneshot(get_request(path)).await.unwrap();
        read_all(response).await;
    }
    assert_eq!(scrape.requests("GET", "/fail", "500", "500"), 1);
    assert_eq!(scrape.requests("GET", "/unavailable", "503", "503"), 1);
    assert_eq!(scrape.requests("GET", "/missing", "404", ""), 1);
}

#[derive(Debug)]
struct Refused;

#[tokio::test]
async fn an_inner_error_is_named_and_passed_through_unchanged() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_request: Request<Body>| async { Err::<Response<Body>, _>(Refused) });
    let error = service.oneshot(get_request("/refuse")).await.unwrap_err();
    assert!(matches!(error, Refused));
    assert_eq!(
        scrape.requests(
            "GET",
            "/refuse",
            "",
            "vantage_tower::http_metrics::tests::Refused"
        ),
        1
    );
    assert_eq!(scrape.active("GET"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_tower_timeout_is_a_timeout() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(layer)
        .timeout(Duration::from_millis(100))
        .service_fn(|_request: Request<Body>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ok(get_request("/")).await
        });
    let error = service.oneshot(get_request("/slow")).await.unwrap_err();
    assert!(error.is::<tower::timeout::error::Elapsed>());
    assert_eq!(scrape.requests("GET", "/slow", "", "timeout"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_tower_http_timeout_response_is_a_timeout() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(layer)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(100),
        ))
        .service_fn(|_request: Request<Body>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ok(get_request("/")).await
        });
    let response = service.oneshot(get_request("/slow")).await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    read_all(response).await;
    assert_eq!(scrape.requests("GET", "/slow", "408", "timeout"), 1);
}

#[tokio::test]
async fn a_panicking_handler_is_recorded_as_panic() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(CatchPanicLayer::new())
        .layer(layer)
        .service_fn(|request: Request<Body>| async move {
            if request.uri().path() == "/panic" {
                panic!("handler bug");
            }
            ok(request).await
        });
    let response = service
        .clone()
        .oneshot(get_request("/panic"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    read_all(response).await;
    assert_eq!(scrape.requests("GET", "/panic", "500", "panic"), 1);
    assert_eq!(scrape.duration_series_count(), 1);
    assert_eq!(scrape.active("GET"), 0.0);
}

#[tokio::test]
async fn a_panic_in_the_inner_call_is_recorded_as_panic() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(CatchPanicLayer::new())
        .layer(layer)
        .service(tower::service_fn(|_request: Request<Body>| {
            panic!("panics before returning a future");
            #[allow(unreachable_code)]
            ok(get_request("/"))
        }));
    let response = service.oneshot(get_request("/sync")).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(scrape.requests("GET", "/sync", "500", "panic"), 1);
    assert_eq!(scrape.active("GET"), 0.0);
}

#[tokio::test]
async fn a_dropped_response_future_is_a_cancelled_499() {
    let (layer, scrape) = layer();
    let mut service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|_request: Request<Body>| async {
                std::future::pending::<()>().await;
                ok(get_request("/")).await
            });
    let future = service.call(get_request("/slow"));
    let mut future = Box::pin(future);
    assert!(future.as_mut().now_or_never().is_none());
    assert_eq!(scrape.active("GET"), 1.0);
    drop(future);
    assert_eq!(scrape.requests("GET", "/slow", "499", "cancelled"), 1);
    assert_eq!(scrape.duration_series_count(), 1);
    assert_eq!(scrape.active("GET"), 0.0);
}

type ChunkStream =
    StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>>>;

fn streaming(chunks: Vec<Result<&'static str, std::io::Error>>) -> Response<ChunkStream> {
    let frames = stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        chunk.map(|text| Frame::data(Bytes::from_static(text.as_bytes())))
    });
    Response::new(StreamBody::new(Box::pin(frames) as _))
}

use futures_util::{FutureExt, StreamExt};
use tower::Service;

#[tokio::test]
async fn a_dropped_response_body_is_a_cancelled_499() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_request: Request<Body>| async {
            Ok::<_, Infallible>(streaming(vec![Ok("a"), Ok("b"), Ok("c")]))
        });
    let response = service.oneshot(get_request("/stream")).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("no error");
    assert_eq!(first.into_data().expect("data"), "a");
    assert_eq!(scrape.requests("GET", "/stream", "200", ""), 0);
    assert_eq!(scrape.active("GET"), 1.0);
    drop(body);
    assert_eq!(scrape.requests("GET", "/stream", "499", "cancelled"), 1);
    assert_eq!(scrape.duration_series_count(), 1);
    assert_eq!(scrape.active("GET"), 0.0);
}

#[tokio::test]
async fn a_streamed_body_is_timed_to_its_end() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_request: Request<Body>| async {
            Ok::<_, Infallible>(streaming(vec![Ok("a"), Ok("b"), Ok("c"), Ok("d")]))
        });
    let response = service.oneshot(get_request("/stream")).await.unwrap();
    assert_eq!(read_all(response).await, "abcd");
    assert_eq!(scrape.requests("GET", "/stream", "200", ""), 1);
    // Four chunks 50 ms apart: the request lasted at least 200 ms.
    assert!(scrape.duration_sum("GET", "/stream", "200", "") >= 0.2);
}

#[tokio::test]
async fn a_failing_body_stream_is_a_body_error() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_request: Request<Body>| async {
            let broken = std::io::Error::other("disk gone");
            Ok::<_, Infallible>(streaming(vec![Ok("a"), Err(broken)]))
        });
    let response = service.oneshot(get_request("/stream")).await.unwrap();
    let error = response.into_body().collect().await.unwrap_err();
    assert_eq!(error.to_string(), "disk gone");
    assert_eq!(scrape.requests("GET", "/stream", "200", "body_error"), 1);
    assert_eq!(scrape.duration_series_count(), 1);
    assert_eq!(scrape.active("GET"), 0.0);
}

#[tokio::test]
async fn an_empty_body_is_recorded_with_the_head() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_request: Request<Body>| async {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            Ok::<_, Infallible>(response)
        });
    let response = service.oneshot(get_request("/empty")).await.unwrap();
    assert_eq!(scrape.requests("GET", "/empty", "204", ""), 1);
    drop(response);
    assert_eq!(scrape.requests("GET", "/empty", "204", ""), 1);
    assert_eq!(scrape.duration_series_count(), 1);
}

#[tokio::test]
async fn a_head_response_is_recorded_without_its_body_being_polled() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new().layer(layer).service_fn(ok);
    let request = Request::head("/hello").body(Body::empty()).unwrap();
    let response = service.oneshot(request).await.unwrap();
    drop(response);
    assert_eq!(scrape.requests("HEAD", "/hello", "200", ""), 1);
    assert_eq!(scrape.duration_series_count(), 1);
}

#[tokio::test]
async fn non_standard_methods_are_other() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new().layer(layer).service_fn(ok);
    let request = Request::builder()
        .method(Method::from_bytes(b"PURGE").unwrap())
        .uri("/cache")
        .body(Body::empty())
        .unwrap();
    read_all(service.oneshot(request).await.unwrap()).await;
    assert_eq!(scrape.requests("_OTHER", "/cache", "200", ""), 1);
    assert_eq!(scrape.active("_OTHER"), 0.0);
}

#[tokio::test]
async fn excluded_paths_and_predicates_are_not_recorded() {
    let (recorder, scrape) = recorder();
    let layer = HttpMetricsLayer::new()
        .recorder(recorder)
        .route_fn(|parts| Some(parts.uri.path()))
        .exclude_paths(["/metrics", "/health"])
        .exclude_if(|parts| parts.headers.contains_key("x-probe"));
    let service = ServiceBuilder::new().layer(layer).service_fn(ok);
    for path in ["/metrics", "/health", "/work"] {
        read_all(service.clone().oneshot(get_request(path)).await.unwrap()).await;
    }
    let probe = Request::get("/work")
        .header("x-probe", "1")
        .body(Body::empty())
        .unwrap();
    read_all(service.oneshot(probe).await.unwrap()).await;
    assert_eq!(scrape.requests("GET", "/work", "200", ""), 1);
    assert_eq!(scrape.duration_series_count(), 1);
    assert!(!scrape.text().contains("/metrics"));
}

#[tokio::test]
async fn random_paths_past_the_route_cap_do_not_grow_the_series() {
    let (recorder, scrape) = recorder();
    let layer = HttpMetricsLayer::new()
        .recorder(recorder)
        .route_fn(|parts| Some(parts.uri.path()))
        .max_routes(100)
        .unwrap();
    let service = ServiceBuilder::new().layer(layer.clone()).service_fn(ok);
    for n in 0..10_000u64 {
        let path = format!("/random/{:x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        read_all(service.clone().oneshot(get_request(&path)).await.unwrap()).await;
    }
    assert_eq!(layer.route_count(), 100);
    assert_eq!(scrape.duration_series_count(), 101);
    assert_eq!(scrape.requests("GET", "(overflow)", "200", ""), 9_900);
}

#[tokio::test]
async fn body_sizes_count_the_bytes_that_flowed() {
    let (recorder, scrape) = recorder();
    let layer = HttpMetricsLayer::new()
        .recorder(recorder)
        .route_fn(|parts| Some(parts.uri.path()))
        .body_sizes();
    let service = ServiceBuilder::new().layer(layer).service_fn(
        |request: Request<super::RequestBody<Body>>| async move {
            let received = request.into_body().collect().await?.to_bytes();
            Ok::<_, axum::Error>(Response::new(Full::<Bytes>::from(format!(
                "{} bytes",
                received.len()
            ))))
        },
    );
    let request = Request::post("/upload")
        .body(Body::from("0123456789"))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(read_all(response).await, "10 bytes");
    assert_eq!(
        scrape.value(
            "http_server_request_body_size_bytes_sum{http_request_method=\"POST\",http_route=\"/upload\"}"
        ),
        Some(10.0)
    );
    assert_eq!(
        scrape.value(
            "http_server_response_body_size_bytes_sum{http_request_method=\"POST\",http_route=\"/upload\",http_response_status_code=\"200\"}"
        ),
        Some(8.0)
    );
    assert_eq!(scrape.requests("POST", "/upload", "200", ""), 1);
}

#[tokio::test]
async fn body_sizes_are_off_by_default() {
    let (layer, scrape) = layer();
    let service = ServiceBuilder::new().layer(layer).service_fn(ok);
    read_all(service.oneshot(get_request("/hello")).await.unwrap()).await;
    assert!(!scrape.text().contains("body_size"));
}

const TRACE_A: &str = "0af7651916cd43dd8448eb211c80319c";
const TRACE_B: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_C: &str = "12345678901234567890123456789012";

fn traced_request(path: &str, trace: &str) -> Request<Body> {
    Request::get(path)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(Body::empty())
        .expect("valid request")
}

/// The trace ids kept by a slow-request store, per route, sorted (the order within a route
/// depends on timing).
fn slow_trace_ids(slow: &SlowRequests) -> Vec<(String, Vec<String>)> {
    slow.snapshot()
        .into_iter()
        .map(|route| {
            let mut ids: Vec<String> = route
                .slowest
                .iter()
                .map(|request| request.trace_id.to_string())
                .collect();
            ids.sort();
            (route.route, ids)
        })
        .collect()
}

#[tokio::test]
async fn slow_requests_are_offered_with_the_trace_id_of_the_context_extension() {
    install_subscriber();
    let (layer, scrape) = layer();
    let slow = SlowRequests::new();
    let service = ServiceBuilder::new()
        .layer(TraceContextLayer::new())
        .layer(layer.slow_requests(slow.clone()))
        .service_fn(|request: Request<Body>| async move {
            match request.uri().path() {
                "/refuse" => Err(Refused),
                _ => Ok(Response::new(Full::<Bytes>::from("hello"))),
            }
        });
    for (path, trace) in [("/a", TRACE_A), ("/b", TRACE_B), ("/a", TRACE_C)] {
        let response = service.clone().oneshot(traced_request(path, trace)).await;
        read_all(response.unwrap()).await;
    }
    let error = service
        .clone()
        .oneshot(traced_request("/refuse", TRACE_B))
        .await;
    assert!(matches!(error, Err(Refused)));
    assert_eq!(
        slow_trace_ids(&slow),
        [
            (
                "/a".to_owned(),
                vec![TRACE_A.to_owned(), TRACE_C.to_owned()]
            ),
            ("/b".to_owned(), vec![TRACE_B.to_owned()]),
            ("/refuse".to_owned(), vec![TRACE_B.to_owned()]),
        ]
    );
    assert_eq!(scrape.requests("GET", "/a", "200", ""), 2);
    assert_eq!(slow.route_count(), 3);
}

#[tokio::test]
async fn slow_requests_need_the_trace_context_layer_outside_the_metrics_layer() {
    install_subscriber();
    let (layer, scrape) = layer();
    let slow = SlowRequests::new();
    // The wrong order: the metrics layer starts its record before the context exists.
    let service = ServiceBuilder::new()
        .layer(layer.slow_requests(slow.clone()))
        .layer(TraceContextLayer::new())
        .service_fn(ok);
    read_all(
        service
            .oneshot(traced_request("/a", TRACE_A))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(slow_trace_ids(&slow), []);
    assert_eq!(slow.route_count(), 0);
    assert_eq!(scrape.requests("GET", "/a", "200", ""), 1);
}

#[tokio::test]
async fn slow_requests_share_the_metrics_route_names_and_cap() {
    install_subscriber();
    let (recorder, _scrape) = recorder();
    let slow = SlowRequests::new();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/items/{id}", get(|| async { "item" }))
        .layer(
            HttpMetricsLayer::new()
                .recorder(recorder)
                .max_routes(1)
                .unwrap()
                .slow_requests(slow.clone()),
        )
        .layer(TraceContextLayer::new());
    for (path, trace) in [
        ("/users/1", TRACE_A),
        ("/users/2", TRACE_B),
        ("/nope", TRACE_C),
        ("/items/1", TRACE_A),
    ] {
        read_all(
            app.clone()
                .oneshot(traced_request(path, trace))
                .await
                .unwrap(),
        )
        .await;
    }
    assert_eq!(
        slow_trace_ids(&slow),
        [
            ("(other)".to_owned(), vec![TRACE_C.to_owned()]),
            (
                "/users/{id}".to_owned(),
                vec![TRACE_A.to_owned(), TRACE_B.to_owned()]
            ),
            ("(overflow)".to_owned(), vec![TRACE_A.to_owned()]),
        ]
    );
    // The metrics layer's overflow value is the store's own overflow entry.
    assert_eq!(slow.route_count(), 2);
}

#[tokio::test]
async fn with_trace_context_one_layer_continues_the_trace_for_the_handler_and_slow_requests() {
    let logs = crate::test_helpers::capture_logs();
    let (layer, scrape) = layer();
    let slow = SlowRequests::new();
    let service = ServiceBuilder::new()
        .layer(layer.trace_context().slow_requests(slow.clone()))
        .service_fn(|_request: Request<Body>| async move {
            let context = crate::trace::current().expect("the request's context is current");
            tracing::info!("handled");
            let frames = stream::iter([context.trace_id().to_string()]).map(|id| {
                tracing::info!("streamed");
                Ok::<_, Infallible>(Frame::data(Bytes::from(id)))
            });
            Ok::<_, Infallible>(Response::new(StreamBody::new(frames)))
        });
    let response = service
        .clone()
        .oneshot(traced_request("/a", TRACE_A))
        .await
        .unwrap();
    assert_eq!(read_all(response).await, TRACE_A);
    // Without a valid traceparent a new trace starts.
    let response = service.oneshot(get_request("/b")).await.unwrap();
    let started = String::from_utf8(read_all(response).await.to_vec()).unwrap();
    assert_eq!(started.len(), 32);
    assert_ne!(started, TRACE_A);
    assert_eq!(crate::trace::current(), None);

    assert_eq!(
        slow_trace_ids(&slow),
        [
            ("/a".to_owned(), vec![TRACE_A.to_owned()]),
            ("/b".to_owned(), vec![started.clone()]),
        ]
    );
    assert_eq!(scrape.requests("GET", "/a", "200", ""), 1);
    let lines = logs.text.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for (line, (message, trace)) in lines.iter().zip([
        ("handled", TRACE_A),
        ("streamed", TRACE_A),
        ("handled", started.as_str()),
        ("streamed", started.as_str()),
    ]) {
        assert!(
            line.contains(&format!(": {message} trace_id={trace} span_id=")),
            "{line}"
        );
        // A server span of its own: a new span id, not the caller's.
        assert!(!line.ends_with("span_id=00f067aa0ba902b7"), "{line}");
    }
}

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::stream;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower_http::catch_panic::CatchPanicLayer;
use vantage_edge::reconcile::service::ServiceScrape;
use vantage_instrument::PrometheusExporter;
use vantage_instrument::recorder::MetricsHandle;
use vantage_tower::HttpMetricsLayer;

use crate::util::{Exposition, HttpClient, bounded, eventually, promtool_check, serve};

const STREAM_CHUNKS: u64 = 5;
const STREAM_GAP: Duration = Duration::from_millis(100);

async fn user(Path(id): Path<String>) -> (StatusCode, String) {
    match id.parse::<u64>() {
        Ok(id) => (StatusCode::OK, format!("user {id}")),
        Err(_) => (StatusCode::BAD_REQUEST, format!("bad id {id}")),
    }
}

async fn stream_body() -> Body {
    let chunks = stream::iter(0..STREAM_CHUNKS).then(|n| async move {
        tokio::time::sleep(STREAM_GAP).await;
        Ok::<_, Infallible>(Bytes::from(format!("chunk {n}\n")))
    });
    Body::from_stream(chunks)
}

use futures_util::StreamExt;

async fn panics() -> &'static str {
    panic!("handler bug")
}

/// The service under test, recording into its own recorder.
fn app() -> (Router, MetricsHandle) {
    let recorder = PrometheusExporter::new().build_recorder();
    let handle = recorder.handle();
    let metrics = HttpMetricsLayer::new()
        .recorder(recorder)
        .exclude_paths(["/health"]);
    let app = Router::new()
        .route("/users/{id}", get(user))
        .route("/users", post(|| async { StatusCode::CREATED }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/unavailable",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route("/panic", get(panics))
        .route("/stream", get(stream_body))
        .route("/health", get(|| async { "ok" }))
        .layer(metrics)
        .layer(CatchPanicLayer::new());
    (app, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_mix_is_counted_exactly_per_route_and_status() {
    let (app, handle) = app();
    let client = HttpClient::new(serve(app).await);
    let mix: &[(&str, &str, u16, usize)] = &[
        ("GET", "/users/1", 200, 7),
        ("GET", "/users/x", 400, 3),
        ("POST", "/users", 201, 2),
        ("GET", "/slow", 200, 2),
        ("GET", "/fail", 500, 4),
        ("GET", "/unavailable", 503, 1),
        ("GET", "/nowhere", 404, 5),
        ("DELETE", "/users/1", 405, 1),
        ("GET", "/health", 200, 3),
    ];
    for &(method, path, status, times) in mix {
        for _ in 0..times {
            assert_eq!(client.send(method, path).await.0, status, "{method} {path}");
        }
    }
    let scrape = Exposition::of(&handle);
    assert_eq!(scrape.requests("GET", "/users/{id}", "200", ""), 7);
    assert_eq!(scrape.requests("GET", "/users/{id}", "400", ""), 3);
    assert_eq!(scrape.requests("POST", "/users", "201", ""), 2);
    assert_eq!(scrape.requests("GET", "/slow", "200", ""), 2);
    assert_eq!(scrape.requests("GET", "/fail", "500", "500"), 4);
    assert_eq!(scrape.requests("GET", "/unavailable", "503", "503"), 1);
    assert_eq!(scrape.requests("GET", "(other)", "404", ""), 5);
    assert_eq!(scrape.requests("DELETE", "/users/{id}", "405", ""), 1);
    assert_eq!(scrape.total_requests(), 25, "health checks are excluded");
    assert!(scrape.duration_sum("GET", "/slow", "200", "") >= 0.6);
    assert_eq!(scrape.active("GET"), 0.0);
}

/// What the edge reads from the service's `/metrics`, scraped over HTTP, is what the clients
/// sent, route by route: the templates it adopts and the requests it reconciles against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_reads_each_routes_requests_and_templates_from_a_real_scrape() {
    let (app, handle) = app();
    let app = app.route("/metrics", get(move || std::future::ready(handle.render())));
    let client = HttpClient::new(serve(app).await);
    let mix: &[(&str, &str, usize)] = &[
        ("GET", "/users/1", 7),
        ("GET", "/users/x", 3),
        ("DELETE", "/users/2", 1),
        ("POST", "/users", 2),
        ("GET", "/fail", 4),
        ("GET", "/nowhere", 5),
        ("GET", "/health", 3),
    ];
    for &(method, path, times) in mix {
        for _ in 0..times {
            client.send(method, path).await;
        }
    }
    let (status, text) = client.send("GET", "/metrics").await;
    assert_eq!(status, 200);
    let scrape = ServiceScrape::read(std::str::from_utf8(&text).expect("utf-8"));
    assert_eq!(scrape.malformed_lines, 0, "{:?}", scrape.errors());
    assert_eq!(
        scrape.templates().collect::<Vec<_>>(),
        ["/fail", "/users", "/users/{id}"]
    );
    let requests: Vec<(&str, u64)> = scrape
        .routes()
        .map(|(route, side)| (route, side.requests))
        .collect();
    assert_eq!(
        requests,
        [
            ("(other)", 5),
            ("/fail", 4),
            ("/users", 2),
            ("/users/{id}", 11)
        ]
    );
    for (route, side) in scrape.routes() {
        let last = side.buckets.last().copied();
        assert_eq!(last, Some((f64::INFINITY, side.requests)), "{route}");
        assert!(
            side.buckets
                .windows(2)
                .all(|pair| pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_request_is_one_cancelled_499() {
    let (app, handle) = app();
    let addr = serve(app).await;
    let mut stream = bounded(TcpStream::connect(addr)).await.expect("connect");
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("send request");
    eventually("the request to start", || {
        Exposition::of(&handle).active("GET") == 1.0
    })
    .await;
    drop(stream);
    eventually("the cancelled request to be recorded", || {
        Exposition::of(&handle).requests("GET", "/hang", "499", "cancelled") == 1
    })
    .await;
    let scrape = Exposition::of(&handle);
    assert_eq!(scrape.total_requests(), 1);
    assert_eq!(scrape.active("GET"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_one_panic_500() {
    let (app, handle) = app();
    let client = HttpClient::new(serve(app).await);
    assert_eq!(client.get("/panic").await, 500);
    assert_eq!(client.get("/users/2").await, 200);
    let scrape = Exposition::of(&handle);
    assert_eq!(scrape.requests("GET", "/panic", "500", "panic"), 1);
    assert_eq!(scrape.total_requests(), 2);
    assert_eq!(scrape.active("GET"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_response_is_timed_to_its_last_chunk() {
    let (app, handle) = app();
    let client = HttpClient::new(serve(app).await);
    let (status, body) = client.send("GET", "/stream").await;
    assert_eq!(status, 200);
    assert_eq!(body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    let scrape = Exposition::of(&handle);
    assert_eq!(scrape.requests("GET", "/stream", "200", ""), 1);
    let lower_bound = (STREAM_GAP * STREAM_CHUNKS as u32).as_secs_f64();
    assert!(scrape.duration_sum("GET", "/stream", "200", "") >= lower_bound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_paths_do_not_grow_the_series() {
    let (app, handle) = app();
    let client = HttpClient::new(serve(app).await);
    assert_eq!(client.get("/users/1").await, 200);
    let before = Exposition::of(&handle).duration_series();
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = worker.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for _ in 0..1_250 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                assert_eq!(
                    client.get(&format!("/probe/{rng:x}/x{}", rng % 977)).await,
                    404
                );
            }
        }));
    }
    for task in tasks {
        bounded(task).await.expect("load task");
    }
    let scrape = Exposition::of(&handle);
    assert_eq!(scrape.requests("GET", "(other)", "404", ""), 10_000);
    assert_eq!(scrape.duration_series(), before + 1);
    assert!(!scrape.text().contains("/probe/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_passes_promtool() {
    let (app, handle) = app();
    let client = HttpClient::new(serve(app).await);
    for path in [
        "/users/1", "/users/x", "/fail", "/nowhere", "/panic", "/stream",
    ] {
        client.get(path).await;
    }
    let scrape = Exposition::of(&handle);
    assert_eq!(scrape.total_requests(), 6);
    if let Err(problems) = promtool_check(scrape.text()) {
        panic!(
            "promtool check metrics failed:\n{problems}\n---\n{}",
            scrape.text()
        );
    }
}

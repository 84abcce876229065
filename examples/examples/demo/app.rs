//! The example service: an axum app with fast, slow, failing, panicking and streaming routes,
//! instrumented with one `HttpMetricsLayer` line.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use futures_util::StreamExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use vantage_instrument::MetricsEndpoint;
use vantage_tower::HttpMetricsLayer;

/// Requests slower than this are answered `504` by the timeout layer.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(800);

/// The service, with `/metrics` served from `metrics` and `/health` left out of the metrics.
pub(crate) fn app(metrics: &MetricsEndpoint) -> Router {
    Router::new()
        .route("/", get(|| async { "Vantage example service\n" }))
        .route("/users/{id}", get(user))
        .route("/users", post(create_user))
        .route(
            "/orders/{id}",
            get(|Path(id): Path<u64>| async move { format!("order {id}\n") }),
        )
        .route("/slow", get(slow))
        .route("/fail", get(fail))
        .route("/panic", get(panics))
        .route("/stream", get(stream))
        .route("/health", get(|| async { "ok\n" }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            TIMEOUT,
        ))
        .layer(HttpMetricsLayer::new().exclude_paths(["/health"]))
        .layer(CatchPanicLayer::new())
        .route_service("/metrics", metrics.service())
}

/// Users 1 to 1000 exist; anything that is not a number is a bad request.
async fn user(Path(id): Path<String>) -> (StatusCode, String) {
    match id.parse::<u32>() {
        Ok(id @ 1..=1000) => (StatusCode::OK, format!("user {id}\n")),
        Ok(id) => (StatusCode::NOT_FOUND, format!("no user {id}\n")),
        Err(_) => (StatusCode::BAD_REQUEST, format!("bad user id {id:?}\n")),
    }
}

async fn create_user(body: Bytes) -> StatusCode {
    if body.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CREATED
    }
}

/// 50 to 1050 ms: the slowest fifth runs into the timeout.
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(50 + fastrand::u64(0..1000))).await;
    "finally\n"
}

async fn fail() -> StatusCode {
    if fastrand::u8(0..4) == 0 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

async fn panics() -> &'static str {
    panic!("the /panic route panics, as a demonstration")
}

/// Five events 40 ms apart: timed to the last one, as the client sees it.
async fn stream() -> Body {
    let events = futures_util::stream::iter(0..5).then(|n| async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Ok::<_, Infallible>(format!("data: tick {n}\n\n"))
    });
    Body::from_stream(events)
}

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use vantage_instrument::trace_context::TraceContext;

use super::{TraceContextLayer, current};
use crate::test_helpers::{capture_logs, install_subscriber};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn request(headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::get("/users/7");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).expect("valid request")
}

/// What a handler saw: the context in the extensions, and the current one.
#[derive(Debug, PartialEq)]
struct Seen {
    extension: Option<TraceContext>,
    current: Option<TraceContext>,
}

async fn seen_by_handler(request: Request<Body>) -> Seen {
    install_subscriber();
    let seen = Arc::new(Mutex::new(None));
    let capture = Arc::clone(&seen);
    let service = ServiceBuilder::new()
        .layer(TraceContextLayer::new())
        .service_fn(move |request: Request<Body>| {
            let capture = Arc::clone(&capture);
            async move {
                tokio::task::yield_now().await;
                *capture.lock().unwrap() = Some(Seen {
                    extension: request.extensions().get::<TraceContext>().cloned(),
                    current: current(),
                });
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }
        });
    service.oneshot(request).await.unwrap();
    assert_eq!(current(), None);
    seen.lock().unwrap().take().expect("the handler ran")
}

/// A body made of the trace ids current when each of its two frames was polled.
fn body_of_current_trace_ids()
-> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let frames = stream::iter(0..2).then(|_| async {
        tokio::task::yield_now().await;
        let trace_id = current().map_or_else(|| "none".to_owned(), |c| c.trace_id().to_string());
        Ok(Frame::data(Bytes::from(format!("{trace_id}\n"))))
    });
    StreamBody::new(frames)
}

use futures_util::StreamExt;

#[tokio::test]
async fn a_valid_traceparent_is_continued_with_a_server_span() {
    let seen = seen_by_handler(request(&[
        ("traceparent", TRACEPARENT),
        ("tracestate", "congo=t61rcWkgMzE"),
    ]))
    .await;
    let context = seen.extension.clone().expect("the extension is set");
    assert_eq!(context.trace_id().to_string(), TRACE);
    assert_eq!(
        context.parent_id().map(|id| id.to_string()).as_deref(),
        Some(CALLER_SPAN)
    );
    assert_ne!(context.span_id().to_string(), CALLER_SPAN);
    assert!(context.sampled());
    assert_eq!(context.trace_state().as_str(), "congo=t61rcWkgMzE");
    assert_eq!(seen.current, Some(context));
}

#[tokio::test]
async fn without_a_valid_traceparent_a_new_trace_starts() {
    for headers in [
        &[][..],
        &[("tracestate", "congo=t61rcWkgMzE")],
        &[(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
    ] {
        let seen = seen_by_handler(request(headers)).await;
        let context = seen.extension.clone().expect("the extension is set");
        assert_ne!(context.trace_id().to_string(), TRACE);
        assert_eq!(context.parent_id(), None, "{headers:?}");
        assert!(!context.sampled());
        assert!(context.random_trace_id());
        assert!(context.trace_state().is_empty());
        assert_eq!(seen.current, Some(context));
    }
}

#[tokio::test]
async fn the_response_body_is_polled_in_the_trace_context() {
    install_subscriber();
    let service = ServiceBuilder::new()
        .layer(TraceContextLayer::new())
        .service_fn(|_request: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(body_of_current_trace_ids()))
        });
    let response = service
        .oneshot(request(&[("traceparent", TRACEPARENT)]))
        .await
        .unwrap();
    assert_eq!(current(), None);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, format!("{TRACE}\n{TRACE}\n"));
    assert_eq!(current(), None);
}

#[tokio::test]
async fn errors_pass_through_unchanged() {
    install_subscriber();
    let service = ServiceBuilder::new()
        .layer(TraceContextLayer::new())
        .service(service_fn(|_request: Request<Body>| async {
            Err::<Response<Body>, _>(std::io::Error::other("refused"))
        }));
    let error = service.oneshot(request(&[])).await.unwrap_err();
    assert_eq!(error.to_string(), "refused");
    assert_eq!(current(), None);
}

async fn logged(
    request: Request<Body>,
) -> Response<StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>>> {
    tracing::info!("in the handler");
    let path = Bytes::from(request.uri().path().to_owned());
    let frames = stream::iter(0..1).map(move |_| {
        tracing::info!("in the body");
        Ok(Frame::data(path.clone()))
    });
    Response::new(StreamBody::new(frames))
}

/// Runs a request through `layer` to a handler and a streamed body that log, then logs after
/// it; returns the captured logs and the request's context.
async fn log_a_request(layer: TraceContextLayer) -> (crate::test_helpers::Capture, TraceContext) {
    let logs = capture_logs();
    let captured = Arc::new(Mutex::new(None));
    let capture = Arc::clone(&captured);
    let app = Router::new()
        .route(
            "/users/{id}",
            get(move |request: Request<Body>| {
                *capture.lock().unwrap() = request.extensions().get::<TraceContext>().cloned();
                logged(request)
            }),
        )
        .layer(layer);
    let response = app
        .oneshot(request(&[("traceparent", TRACEPARENT)]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "/users/7");
    tracing::info!("after the request");
    let context = captured.lock().unwrap().clone().expect("the handler ran");
    (logs, context)
}

#[tokio::test]
async fn every_log_line_of_the_request_carries_its_ids_in_text_and_json() {
    let (logs, context) = log_a_request(TraceContextLayer::new()).await;
    let ids = format!("trace_id={TRACE} span_id={}", context.span_id());
    let target = "vantage_tower::trace::tests";
    assert_eq!(
        logs.text.lines(),
        [
            format!(" INFO {target}: in the handler {ids}"),
            format!(" INFO {target}: in the body {ids}"),
            format!(" INFO {target}: after the request"),
        ]
    );
    let lines: Vec<serde_json::Value> = logs
        .json
        .lines()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, message) in lines[..2].iter().zip(["in the handler", "in the body"]) {
        assert_eq!(line["fields"]["message"], message);
        assert_eq!(line["trace_id"], TRACE);
        assert_eq!(line["span_id"], context.span_id().to_string());
        assert_eq!(line.get("span"), None, "no span without with_span()");
    }
    assert_eq!(lines[2]["fields"]["message"], "after the request");
    assert_eq!(lines[2].get("trace_id"), None);
}

#[tokio::test]
async fn with_a_span_every_log_line_is_inside_it_too() {
    let (logs, context) = log_a_request(TraceContextLayer::new().with_span()).await;
    let span = context.span_id().to_string();
    let ids = format!("trace_id={TRACE} span_id={span}");
    let fields = format!(
        "trace_id={TRACE} span_id={span} parent_span_id={CALLER_SPAN} \
         http.request.method=GET http.route=\"/users/{{id}}\""
    );
    let target = "vantage_tower::trace::tests";
    assert_eq!(
        logs.text.lines(),
        [
            format!(" INFO http.request{{{fields}}}: {target}: in the handler {ids}"),
            format!(
                " INFO http.request{{{fields} http.response.status_code=200}}: {target}: in the body {ids}"
            ),
            format!(" INFO {target}: after the request"),
        ]
    );

    let lines: Vec<serde_json::Value> = logs
        .json
        .lines()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, message) in lines[..2].iter().zip(["in the handler", "in the body"]) {
        assert_eq!(line["fields"]["message"], message);
        assert_eq!(line["span"]["name"], "http.request");
        assert_eq!(line["span"]["trace_id"], TRACE);
        assert_eq!(line["span"]["span_id"], span.as_str());
        assert_eq!(line["span"]["parent_span_id"], CALLER_SPAN);
        assert_eq!(line["span"]["http.request.method"], "GET");
        assert_eq!(line["span"]["http.route"], "/users/{id}");
        assert_eq!(line["spans"].as_array().map(Vec::len), Some(1));
        assert_eq!(line["trace_id"], TRACE);
    }
    assert_eq!(lines[2]["fields"]["message"], "after the request");
    assert_eq!(lines[2].get("span"), None);
}

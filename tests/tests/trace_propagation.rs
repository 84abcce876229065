//! W3C trace context across two real services: A is called by the test and calls B through
//! `PropagateTraceLayer`; both sit behind `TraceContextLayer`, and A behind `HttpMetricsLayer`
//! with slow-request exemplars.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use vantage_instrument::PrometheusExporter;
use vantage_instrument::trace_context::TraceContext;
use vantage_tower::propagate::PropagateTraceLayer;
use vantage_tower::slow::SlowRequests;
use vantage_tower::{HttpMetricsLayer, TraceContextLayer};

use crate::util::{bounded, eventually, serve};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const TARGET: &str = "e2e::trace_propagation";

type Plain = Client<HttpConnector, Full<Bytes>>;

/// A's client to B.
type Outgoing = BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<hyper::body::Incoming>,
    hyper_util::client::legacy::Error,
>;

/// The `traceparent` of every request A sent, as it left A.
type Sent = Arc<Mutex<Vec<String>>>;

fn plain_client() -> Plain {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The context a handler runs in, as JSON.
fn context_json(context: &TraceContext) -> Value {
    json!({
        "trace_id": context.trace_id().to_string(),
        "span_id": context.span_id().to_string(),
        "parent_id": context.parent_id().map(|id| id.to_string()),
    })
}

fn header(headers: &HeaderMap, name: &str) -> Value {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap_or("(not text)"))
        .collect();
    json!(values)
}

/// B: answers with the context it continued and the trace headers it received.
async fn whoami(Extension(context): Extension<TraceContext>, headers: HeaderMap) -> String {
    tracing::info!("b handles the call");
    json!({
        "context": context_json(&context),
        "traceparent": header(&headers, "traceparent"),
        "tracestate": header(&headers, "tracestate"),
    })
    .to_string()
}

fn service_b() -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .layer(TraceContextLayer::new().with_span())
}

#[derive(Clone)]
struct A {
    b: SocketAddr,
    client: Outgoing,
}

/// A: calls B `calls` times (`?calls=N`, default 1) and answers with its own context and B's
/// answers.
async fn call(
    State(a): State<A>,
    Extension(context): Extension<TraceContext>,
    uri: http::Uri,
) -> String {
    let calls = uri
        .query()
        .and_then(|query| query.strip_prefix("calls="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    tracing::info!(calls, "a calls b");
    let mut answers = Vec::new();
    for _ in 0..calls {
        let request = http::Request::get(format!("http://{}/whoami", a.b))
            .body(Full::default())
            .expect("valid request");
        let response = a.client.clone().oneshot(request).await.expect("b answers");
        let body = response.into_body().collect().await.expect("body");
        answers.push(serde_json::from_slice::<Value>(&body.to_bytes()).expect("json"));
    }
    tracing::info!("a got the answers");
    json!({ "context": context_json(&context), "b": answers }).to_string()
}

/// A, and what its client sent. The client writes the trace context in, then records the
/// outgoing `traceparent`, then sends with hyper-util's client.
fn service_a(b: SocketAddr, slow: &SlowRequests) -> (Router, Sent) {
    let recorder = PrometheusExporter::new().build_recorder();
    let sent = Sent::default();
    let record = Arc::clone(&sent);
    let client = ServiceBuilder::new()
        .layer(PropagateTraceLayer::new())
        .map_request(move |request: http::Request<Full<Bytes>>| {
            let traceparent = request.headers().get("traceparent");
            let traceparent = traceparent.and_then(|value| value.to_str().ok());
            record
                .lock()
                .expect("sent")
                .push(traceparent.unwrap_or("(none)").to_owned());
            request
        })
        .service(plain_client());
    let a = A {
        b,
        client: BoxCloneSyncService::new(client),
    };
    let app = Router::new()
        .route("/call", get(call))
        .with_state(a)
        .layer(
            HttpMetricsLayer::new()
                .recorder(recorder)
                .slow_requests(slow.clone()),
        )
        .layer(TraceContextLayer::new().with_span())
        .route_service("/debug/slow", slow.service());
    (app, sent)
}

/// Sends `GET path` to `addr` with these headers (repeats allowed) and reads a JSON answer.
async fn get_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = http::Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::default()).expect("valid request");
    let response = bounded(plain_client().request(request))
        .await
        .expect("request succeeds");
    assert_eq!(response.status(), 200);
    let body = bounded(response.into_body().collect())
        .await
        .expect("body reads")
        .to_bytes();
    serde_json::from_slice(&body).expect("a JSON answer")
}

fn text(value: &Value) -> &str {
    value.as_str().expect("a string")
}

/// Log output captured from a `tracing-subscriber` fmt layer.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8(bytes)
            .expect("utf-8 logs")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The log lines of this thread, in the text and the JSON format, until dropped.
struct Capture {
    text: Logs,
    json: Logs,
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<(Logs, Logs)>> = const { std::cell::RefCell::new(None) };
}

/// Installs this binary's global subscriber, once: the INFO events of these tests and of
/// vantage-tower, in text and JSON fmt layers that write to the [`Capture`] of the thread the
/// event happens on, if any.
///
/// A global subscriber, not a per-test default: `tracing` caches each call site's interest
/// process-wide, and with a single thread-local subscriber a call site first reached on another
/// thread is cached as never enabled. Every test of this module calls this first.
fn install_subscriber() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(
                Targets::new()
                    .with_target("e2e", tracing::Level::INFO)
                    .with_target("vantage_tower", tracing::Level::INFO),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .without_time()
                    .with_ansi(false)
                    .with_writer(ThreadLogs::Text),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .without_time()
                    .with_writer(ThreadLogs::Json),
            );
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

/// Captures the log lines of this thread until the returned [`Capture`] is dropped.
fn capture_logs() -> Capture {
    install_subscriber();
    let capture = Capture {
        text: Logs::default(),
        json: Logs::default(),
    };
    CAPTURE.with(|slot| *slot.borrow_mut() = Some((capture.text.clone(), capture.json.clone())));
    capture
}

/// Which capture buffer a fmt layer writes to.
#[derive(Clone, Copy)]
enum ThreadLogs {
    Text,
    Json,
}

/// Writes into the current thread's capture buffer, or nowhere.
struct ThreadWriter(Option<Logs>);

impl std::io::Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Some(logs) = &self.0 {
            logs.0.lock().expect("log buffer").extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadLogs {
    type Writer = ThreadWriter;

    fn make_writer(&'a self) -> ThreadWriter {
        ThreadWriter(CAPTURE.with(|capture| {
            capture.borrow().as_ref().map(|(text, json)| match self {
                Self::Text => text.clone(),
                Self::Json => json.clone(),
            })
        }))
    }
}

// One thread runs the test, both servers and the clients, so this thread's capture holds the
// log lines of both services.
#[tokio::test(flavor = "current_thread")]
async fn b_continues_the_trace_of_a_and_both_log_it() {
    let logs = capture_logs();

    let slow = SlowRequests::new();
    let b = serve(service_b()).await;
    let (a, sent) = service_a(b, &slow);
    let a = serve(a).await;
    let answer = get_json(
        a,
        "/call",
        &[
            ("traceparent", &format!("00-{TRACE}-{CALLER_SPAN}-01")),
            ("tracestate", "congo=t61rcWkgMzE"),
        ],
    )
    .await;

    // A continued the caller's trace with a server span of its own.
    let a_context = &answer["context"];
    assert_eq!(text(&a_context["trace_id"]), TRACE);
    assert_eq!(text(&a_context["parent_id"]), CALLER_SPAN);
    let a_span = text(&a_context["span_id"]);
    assert_ne!(a_span, CALLER_SPAN);

    // A's call went out as a new child span of A's server span...
    let sent = sent.lock().expect("sent").clone();
    let [sent_traceparent] = &sent[..] else {
        panic!("expected one call from A, got {sent:?}");
    };
    let outgoing = sent_traceparent
        .strip_prefix(&format!("00-{TRACE}-"))
        .and_then(|rest| rest.strip_suffix("-01"))
        .expect("00-TRACE-SPAN-01");
    assert_eq!(outgoing.len(), 16);
    assert_ne!(outgoing, a_span);
    // ... and B received exactly that: A's trace id, A's outgoing span as the parent, and the
    // tracestate.
    let b_answer = &answer["b"][0];
    assert_eq!(b_answer["traceparent"], json!([sent_traceparent]));
    assert_eq!(b_answer["tracestate"], json!(["congo=t61rcWkgMzE"]));
    let b_context = &b_answer["context"];
    assert_eq!(text(&b_context["trace_id"]), TRACE);
    assert_eq!(text(&b_context["parent_id"]), outgoing);
    let b_span = text(&b_context["span_id"]);
    assert_ne!(b_span, outgoing);

    // Every log line of both services carries the trace id, in text and in JSON.
    let a_fields = format!(
        "trace_id={TRACE} span_id={a_span} parent_span_id={CALLER_SPAN} \
         http.request.method=GET http.route=\"/call\""
    );
    let b_fields = format!(
        "trace_id={TRACE} span_id={b_span} parent_span_id={outgoing} \
         http.request.method=GET http.route=\"/whoami\""
    );
    assert_eq!(
        logs.text.lines(),
        [
            format!(" INFO http.request{{{a_fields}}}: {TARGET}: a calls b calls=1"),
            format!(" INFO http.request{{{b_fields}}}: {TARGET}: b handles the call"),
            format!(" INFO http.request{{{a_fields}}}: {TARGET}: a got the answers"),
        ]
    );
    let json_lines: Vec<Value> = logs
        .json
        .lines()
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON log line"))
        .collect();
    let spans: Vec<(&str, &str, &str, &str, &str)> = json_lines
        .iter()
        .map(|line| {
            (
                text(&line["fields"]["message"]),
                text(&line["span"]["trace_id"]),
                text(&line["span"]["span_id"]),
                text(&line["span"]["parent_span_id"]),
                text(&line["span"]["http.route"]),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            ("a calls b", TRACE, a_span, CALLER_SPAN, "/call"),
            ("b handles the call", TRACE, b_span, outgoing, "/whoami"),
            ("a got the answers", TRACE, a_span, CALLER_SPAN, "/call"),
        ]
    );

    // A's slow-request exemplars lead from its route to this trace.
    eventually("A's request to reach the slow-request store", || {
        !slow.snapshot().is_empty()
    })
    .await;
    let exemplars = get_json(a, "/debug/slow", &[]).await;
    assert_eq!(exemplars["top"], 5);
    assert_eq!(exemplars["window_seconds"], 300.0);
    let routes: Vec<(&str, Vec<&str>)> = exemplars["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|route| {
            let ids = route["slowest"].as_array().expect("slowest");
            (
                text(&route["route"]),
                ids.iter().map(|r| text(&r["trace_id"])).collect(),
            )
        })
        .collect();
    assert_eq!(routes, [("/call", vec![TRACE])]);
}

/// The trace headers B received from A for one request to A with `headers`: per call of A,
/// `(traceparent values, tracestate values)`.
async fn received_by_b(
    a: SocketAddr,
    calls: usize,
    headers: &[(&str, &str)],
) -> (Value, Vec<(Vec<String>, Vec<String>)>) {
    let answer = get_json(a, &format!("/call?calls={calls}"), headers).await;
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .expect("an array")
            .iter()
            .map(|v| text(v).to_owned())
            .collect()
    };
    let received = answer["b"]
        .as_array()
        .expect("b's answers")
        .iter()
        .map(|b| (strings(&b["traceparent"]), strings(&b["tracestate"])))
        .collect();
    (answer["context"].clone(), received)
}

/// `(trace id, parent id, flags)` of the one `traceparent` B received.
fn parsed(traceparent: &[String]) -> (String, String, String) {
    let [one] = traceparent else {
        panic!("expected one traceparent, got {traceparent:?}");
    };
    let fields: Vec<&str> = one.split('-').collect();
    let [version, trace, parent, flags] = fields[..] else {
        panic!("not a version 00 traceparent: {one}");
    };
    assert_eq!(version, "00");
    (trace.to_owned(), parent.to_owned(), flags.to_owned())
}

#[tokio::test]
async fn the_w3c_rules_hold_from_the_caller_through_a_to_b() {
    install_subscriber();
    let b = serve(service_b()).await;
    let a = serve(service_a(b, &SlowRequests::new()).0).await;
    let valid = format!("00-{TRACE}-{CALLER_SPAN}-01");

    // A valid traceparent: continued (`sampled` and `random-trace-id` kept, reserved flags
    // cleared), tracestate passed on.
    let (context, received) = received_by_b(
        a,
        1,
        &[
            ("traceparent", &format!("00-{TRACE}-{CALLER_SPAN}-ff")),
            ("TraceState", "foo=1 , bar=2"),
            ("tracestate", "rojo=00f067aa0ba902b7"),
        ],
    )
    .await;
    let (trace, parent, flags) = parsed(&received[0].0);
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE, "03"));
    assert_ne!(parent, text(&context["span_id"]));
    assert_eq!(
        received[0].1,
        ["foo=1,bar=2,rojo=00f067aa0ba902b7".to_owned()]
    );

    // Invalid or repeated traceparents, or none: a new trace (its random trace id flagged as
    // such), no tracestate.
    for headers in [
        &[][..],
        &[("tracestate", "foo=1")],
        &[(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.",
            ),
            ("tracestate", "foo=1"),
        ],
        &[("traceparent", &valid), ("traceparent", &valid)],
        &[("trace-parent", &valid)],
        &[(
            "traceparent",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
    ] {
        let (context, received) = received_by_b(a, 1, headers).await;
        let (trace, parent, flags) = parsed(&received[0].0);
        assert_ne!(trace, TRACE, "{headers:?}");
        assert_eq!(trace, text(&context["trace_id"]), "{headers:?}");
        assert_eq!(context["parent_id"], Value::Null, "{headers:?}");
        assert_ne!(parent, text(&context["span_id"]), "{headers:?}");
        assert_eq!(flags, "02", "{headers:?}");
        assert_eq!(received[0].1, Vec::<String>::new(), "{headers:?}");
    }

    // A later version is read as version 00 and sent on as version 00.
    let (_, received) = received_by_b(
        a,
        1,
        &[(
            "traceparent",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
        )],
    )
    .await;
    let (trace, _, flags) = parsed(&received[0].0);
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE, "01"));

    // An invalid tracestate is dropped, the traceparent kept.
    let (_, received) = received_by_b(
        a,
        1,
        &[("traceparent", &valid), ("tracestate", "foo=1,FOO=2")],
    )
    .await;
    assert_eq!(parsed(&received[0].0).0, TRACE);
    assert_eq!(received[0].1, Vec::<String>::new());

    // A repeated key keeps its first member, and the rest of the list.
    let (_, received) = received_by_b(
        a,
        1,
        &[("traceparent", &valid), ("tracestate", "foo=1,bar=2,foo=3")],
    )
    .await;
    assert_eq!(received[0].1, ["foo=1,bar=2".to_owned()]);

    // The random-trace-id flag goes on as received, set or not.
    for (sent, expected) in [("02", "02"), ("00", "00")] {
        let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-{sent}");
        let (_, received) = received_by_b(a, 1, &[("traceparent", &traceparent)]).await;
        let (trace, _, flags) = parsed(&received[0].0);
        assert_eq!((trace.as_str(), flags.as_str()), (TRACE, expected));
    }

    // Several calls from one request: one trace, a span of its own for each.
    let (context, received) = received_by_b(a, 3, &[("traceparent", &valid)]).await;
    let calls: Vec<(String, String, String)> = received.iter().map(|(tp, _)| parsed(tp)).collect();
    assert_eq!(calls.len(), 3);
    let mut parents: Vec<&str> = calls.iter().map(|(_, parent, _)| parent.as_str()).collect();
    parents.push(text(&context["span_id"]));
    parents.push(CALLER_SPAN);
    parents.sort_unstable();
    parents.dedup();
    assert_eq!(parents.len(), 5);
    assert!(
        calls
            .iter()
            .all(|(trace, _, flags)| trace == TRACE && flags == "01")
    );
}

//! The test service of the W3C Trace Context test suite, built from `TraceContextLayer` (server
//! side) and `PropagateTraceLayer` (client side). It implements Trace Context Level 2.
//!
//! ```text
//! cargo run --example tracecontext_service -- --listen 127.0.0.1:5000
//! # in a checkout of w3c/trace-context, directory test/ (the harness listens on 127.0.0.1:7777);
//! # SPEC_LEVEL=2 adds the Level 2 tests (the suite's default is 1), STRICT_LEVEL is 2 by default:
//! SPEC_LEVEL=2 python3 test.py http://127.0.0.1:5000/test
//! ```
//!
//! `POST /test` takes a JSON array of `{"url": ..., "arguments": ...}`. For each element, in
//! order, the service POSTs `arguments` (as JSON) to `url`; the call continues the trace of the
//! request being handled as a new child span, with no code here passing the context on. It
//! answers with the JSON array of the statuses the calls got.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use vantage_tower::TraceContextLayer;
use vantage_tower::propagate::{PropagateTrace, PropagateTraceLayer};

/// Serve the W3C Trace Context test service.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
}

/// The outgoing HTTP client: hyper-util's, with the trace context written into every request.
type HttpClient = PropagateTrace<Client<HttpConnector, Full<Bytes>>>;

/// One call the harness asks for.
struct Call {
    url: http::Uri,
    arguments: Bytes,
}

/// Reads the harness's request body: a JSON array of `{"url": ..., "arguments": ...}`.
fn calls(body: &[u8]) -> Result<Vec<Call>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| format!("body is not JSON: {error}"))?;
    let Some(actions) = value.as_array() else {
        return Err("body is not a JSON array".to_owned());
    };
    actions
        .iter()
        .map(|action| {
            let url = action
                .get("url")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("no \"url\" string in {action}"))?;
            let url = url
                .parse()
                .map_err(|error| format!("bad url {url:?}: {error}"))?;
            let arguments = action
                .get("arguments")
                .cloned()
                .unwrap_or_else(|| serde_json::Value::Array(Vec::new()));
            Ok(Call {
                url,
                arguments: Bytes::from(arguments.to_string()),
            })
        })
        .collect()
}

async fn test(State(client): State<HttpClient>, body: Bytes) -> impl IntoResponse {
    let calls = match calls(&body) {
        Ok(calls) => calls,
        Err(message) => {
            tracing::warn!(%message, "refused a test request");
            return (StatusCode::BAD_REQUEST, message);
        }
    };
    let mut statuses = Vec::with_capacity(calls.len());
    for call in calls {
        let request = http::Request::post(&call.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(call.arguments));
        let request = match request {
            Ok(request) => request,
            Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()),
        };
        let status = match client.clone().oneshot(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the answer to the end, so the connection can be reused.
                if let Err(error) = response.into_body().collect().await {
                    tracing::warn!(url = %call.url, %error, "reading the callback's answer");
                }
                tracing::info!(url = %call.url, status, "called back");
                serde_json::Value::from(status)
            }
            Err(error) => {
                tracing::warn!(url = %call.url, %error, "callback failed");
                serde_json::Value::Null
            }
        };
        statuses.push(status);
    }
    (
        StatusCode::OK,
        serde_json::Value::Array(statuses).to_string(),
    )
}

fn app(client: HttpClient) -> Router {
    Router::new()
        .route("/test", post(test))
        .with_state(client)
        .layer(TraceContextLayer::new())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .fmt_fields(vantage_tower::trace::TraceIdFields::default())
        .map_event_format(vantage_tower::trace::TraceIds::after_fields)
        .init();
    let client = ServiceBuilder::new()
        .layer(PropagateTraceLayer::new())
        .service(Client::builder(TokioExecutor::new()).build_http());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        "W3C trace context test service on http://{}/test",
        listener.local_addr()?
    );
    axum::serve(listener, app(client))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

//! `HttpMetricsLayer` in front of a plain hyper 1 service (no axum router), with the route
//! given by a function and `/metrics` served by the exporter's tower service.
//!
//! ```text
//! cargo run --example hyper_service -- --listen 127.0.0.1:3001
//! curl http://127.0.0.1:3001/items/42; curl http://127.0.0.1:3001/metrics
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::{ServiceBuilder, ServiceExt};
use vantage_instrument::{MetricsEndpoint, PrometheusExporter};
use vantage_tower::HttpMetricsLayer;

/// Serve a plain hyper service instrumented with `HttpMetricsLayer`.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3001")]
    listen: SocketAddr,
}

/// The route template of a path: hyper has no router, so the layer is told.
fn route(path: &str) -> Option<&'static str> {
    match path.split('/').nth(1)? {
        "" => Some("/"),
        "items" if path.split('/').count() == 3 => Some("/items/{id}"),
        _ => None,
    }
}

async fn handle(
    metrics: MetricsEndpoint,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    if path == "/metrics" {
        let exposition = metrics.service().oneshot(request).await?;
        return Ok(exposition.map(Full::from));
    }
    let (status, body) = match route(path) {
        Some("/") => (StatusCode::OK, "hyper example\n".to_owned()),
        Some(_) => (
            StatusCode::OK,
            format!("item {}\n", &path["/items/".len()..]),
        ),
        None => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    Ok(response)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().init();
    let metrics = PrometheusExporter::new().install();
    let service = ServiceBuilder::new()
        .layer(
            HttpMetricsLayer::new()
                .route_fn(|parts| route(parts.uri.path()))
                .exclude_paths(["/metrics"]),
        )
        .service_fn(move |request| handle(metrics.clone(), request));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        "serving on http://{}, metrics on /metrics",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let connection = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = connection {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

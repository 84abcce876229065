//! The Vantage demo: an instrumented axum service under a mixed load, and what it measured.
//!
//! ```text
//! cargo run --release --example demo            # a few seconds of load, then the table
//! cargo run --release --example demo -- --serve # keep serving afterwards
//! ```
//!
//! Starts the example service on a free loopback port with `HttpMetricsLayer` and the Prometheus
//! exporter, drives fast routes, a slow route, 4xx, 5xx, a panic, streams, random unknown paths
//! and clients that hang up at it, then reads the service's own `/metrics` and prints requests,
//! rate, latency percentiles and errors by reason for every route. A sidecar (`edge-parser
//! serve`, in process) follows the access log a stand-in proxy writes, scrapes the service and
//! reconciles both per route, with a fault the proxy injects (502s it answers itself). Then it
//! shows `edge-parser report` on the sample Traefik access log bundled in the repository.

mod app;
mod edge;
mod load;
mod sidecar;
mod table;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use vantage_instrument::PrometheusExporter;

/// Run an instrumented axum service under a mixed load and print what it measured.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Keep the service running after the load, until Ctrl-C, to scrape it yourself.
    #[arg(long)]
    serve: bool,
    /// How long to drive the load, in seconds.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=512))]
    clients: u16,
    /// Address to serve on (a loopback port chosen by the system by default).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,tower_http::catch_panic=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // The /panic route panics on purpose; keep the demo's output readable.
    std::panic::set_hook(Box::new(|info| tracing::debug!(%info, "handler panicked")));

    let metrics = PrometheusExporter::new().install();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;

    // The edge: the service's traffic as a proxy's access log, followed live by the sidecar.
    let log_dir = std::env::temp_dir().join(format!("vantage-demo-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let log_path = log_dir.join("access.log");
    let access_log = sidecar::AccessLog::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let sidecar = tokio::task::block_in_place(|| sidecar::Sidecar::start(log_path.clone(), addr))?;
    let app = app::app(&metrics).layer(axum::middleware::from_fn(move |request, next| {
        sidecar::log_request(access_log.clone(), request, next)
    }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // The reconciliation starts at the sidecar's first scrape of the service; then a request to
    // each route makes the service export it, which the sidecar adopts at its next scrape (a
    // service exports a route once it has served it: lines before that are `(other)`).
    sidecar.wait_reconciling().await?;
    for path in [
        "/users/1",
        "/orders/1",
        "/slow",
        "/fail",
        "/panic",
        "/stream",
    ] {
        get(addr, path).await?;
    }
    tokio::time::sleep(sidecar::SCRAPE_INTERVAL * 3).await;

    println!(
        "Vantage demo: instrumented service on http://{addr}, {} clients for {} s ...",
        args.clients, args.seconds
    );
    let started = Instant::now();
    let sent = load::run(
        addr,
        usize::from(args.clients),
        Duration::from_secs(args.seconds),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    // Clients that hung up are recorded when the server notices; give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let exposition = get(addr, "/metrics").await?;
    println!(
        "\nSent {} requests ({} hung up early, {} failed on the client side; /health is excluded).\n\
         What the service measured, per route, from its own /metrics:\n",
        sent.requests, sent.hung_up, sent.failed
    );
    print!("{}", table::render(&exposition, elapsed));
    println!("\nScrape it: curl http://{addr}/metrics");

    // The sidecar polls every 100 ms; let it take in the last lines.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let summary: serde_json::Value =
        serde_json::from_str(&get(sidecar.addr, "/api/summary").await?)?;
    println!(
        "\nThe edge view, live: `edge-parser serve` followed the access log of that traffic\n\
         ({}) the way a sidecar next to the proxy does:\n",
        sidecar.log.display()
    );
    print!("{}", sidecar::render_summary(&summary));
    // A scrape of the service after the last request, taken in by the sidecar.
    tokio::time::sleep(sidecar::SCRAPE_INTERVAL * 3).await;
    let reconcile: serde_json::Value =
        serde_json::from_str(&get(sidecar.addr, "/api/reconcile").await?)?;
    println!(
        "\nBoth sides together: the sidecar scraped the service's /metrics and reconciled, per\n\
         route, what the proxy logged with what the service ended (the demo's proxy answers one\n\
         /users/{{id}} request in {} itself with a 502; clients that hang up are seen by both;\n\
         the service does not measure /health and /metrics: an upstream answered those, so they\n\
         are `not measured`, not lost):\n",
        sidecar::PROXY_FAULT_EVERY
    );
    print!("{}", sidecar::render_reconcile(&reconcile));
    println!(
        "(`(other)`: paths of no route, and a route's lines before the service first exported it.)"
    );
    println!(
        "\nThe sidecar's dashboard: open http://{0}/ in a browser (live over /api/stream).\n\
         Its own endpoints: curl http://{0}/metrics (edge_requests_total, \
         edge_reconcile_lost_requests, ...), http://{0}/api/summary, http://{0}/api/reconcile, \
         http://{0}/api/stream",
        sidecar.addr
    );

    println!(
        "\nThe edge view: what the proxy in front saw. `edge-parser report` on the bundled sample\n\
         Traefik access log (run it yourself: cargo run --release -p vantage-edge -- report {}):\n",
        edge::SAMPLE_PATH
    );
    print!("{}", edge::report()?);

    if args.serve {
        println!(
            "\nServing until Ctrl-C: the service on http://{addr}, the sidecar's dashboard on \
             http://{}/.",
            sidecar.addr
        );
        tokio::select! {
            result = server => result??,
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    tokio::task::block_in_place(|| sidecar.stop())?;
    let _ = std::fs::remove_dir_all(&log_dir);
    Ok(())
}

/// `GET path` from a running server, as text.
async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    request(addr, http::Method::GET, path).await
}

/// `METHOD path` (no body) to a running server; the response body as text.
async fn request(addr: SocketAddr, method: http::Method, path: &str) -> anyhow::Result<String> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(method.clone())
        .uri(format!("http://{addr}{path}"))
        .body(Empty::new())?;
    let response = client
        .request(request)
        .await
        .with_context(|| format!("{method} {path}"))?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

//! The example axum service, instrumented, serving until Ctrl-C.
//!
//! ```text
//! cargo run --example axum_service -- --listen 127.0.0.1:3000
//! curl http://127.0.0.1:3000/users/7; curl http://127.0.0.1:3000/metrics
//! ```
//!
//! Routes: `/users/{id}`, `POST /users`, `/orders/{id}`, `/slow`, `/fail`, `/panic`,
//! `/stream`, `/health` (not recorded) and `/metrics`.

#[path = "demo/app.rs"]
mod app;

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use vantage_instrument::PrometheusExporter;

/// Serve the instrumented example axum service.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let metrics = PrometheusExporter::new().install();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        "serving on http://{}, metrics on /metrics",
        listener.local_addr()?
    );
    axum::serve(listener, app::app(&metrics))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

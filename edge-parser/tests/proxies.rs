//! Real proxies writing real access logs: nginx, Caddy and HAProxy, started on loopback ports in
//! front of a real axum backend, receive a known mix of requests (including clients that give
//! up before the answer and requests the proxy answers itself). `edge-parser report` on their
//! logs must count exactly what the client sent, per route and status, and give the latency
//! percentiles that the test computes on its own from the latency field of every logged line.
//!
//! The proxies come from Debian packages (`.ci/run` installs them). Without one, the test says
//! so and passes, except under CI (`CI` set), where a missing proxy is a failure.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{self, Dir, WAIT_LIMIT, free_port, require};

/// A backend request that sleeps this long (ms) or more is one a client gives up on.
const ABORT_MS: u64 = 3000;
/// Requests in flight at once.
const CLIENTS: usize = 8;
/// Aborted requests per proxy.
const ABORTED: usize = 3;

/// The route templates given to `edge-parser` for the paths with ids.
const ID_ROUTES: [&str; 2] = ["/users/{id}", "/slow/{ms}"];
/// The static routes, given in a `--routes` file.
const ROUTES_FILE: &str =
    "# static routes of the test backend\n/ok\n/missing\n/fail\n/unavailable\n/limited\n";

/// One request of the plan and the status the client must get.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    status: u16,
}

/// The mix every proxy receives: fixed statuses from the backend, ids, slow requests spread
/// over 50 to 146 ms, and `/limited`, which the proxy answers itself with 429.
fn plan() -> Vec<Request> {
    let mut plan = Vec::new();
    let mut add = |path: String, status: u16| plan.push(Request { path, status });
    for _ in 0..40 {
        add("/ok".to_owned(), 200);
    }
    for id in 1..=30 {
        add(format!("/users/{id}"), 200);
    }
    for _ in 0..10 {
        add("/missing".to_owned(), 404);
    }
    for _ in 0..6 {
        add("/fail".to_owned(), 500);
        add("/unavailable".to_owned(), 503);
    }
    for n in 0..25 {
        add(format!("/slow/{}", 50 + 4 * n), 200);
    }
    for _ in 0..5 {
        add("/limited".to_owned(), 429);
    }
    plan
}

/// The route of a path, by the test's own rule (the same templates as given to the binary).
fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    if path.starts_with("/users/") {
        "/users/{id}".to_owned()
    } else if path.starts_with("/slow/") {
        "/slow/{ms}".to_owned()
    } else {
        path.to_owned()
    }
}

/// Requests per (route, status) that the log must show: the plan, plus the aborted requests
/// with the status the proxy logs for a client that went away.
fn expected_groups(plan: &[Request], aborted_status: &str) -> BTreeMap<(String, String), u64> {
    let mut groups = BTreeMap::new();
    for request in plan {
        *groups
            .entry((route_of(&request.path), request.status.to_string()))
            .or_default() += 1;
    }
    *groups
        .entry(("/slow/{ms}".to_owned(), aborted_status.to_owned()))
        .or_default() += ABORTED as u64;
    groups
}

/// An axum app on a loopback port, in a runtime of its own: `/ok` and `/users/{id}` (200),
/// `/missing` (404), `/fail` (500), `/unavailable` (503), `/slow/{ms}` (200 after `ms`).
pub(crate) struct Backend {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    /// Requests that reached the backend on a path a client will give up on.
    hanging: Arc<AtomicUsize>,
}

impl Backend {
    pub(crate) fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        let hanging = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/users/{id}",
                get(|UrlPath(id): UrlPath<u32>| async move { format!("user {id}") }),
            )
            .route(
                "/missing",
                get(|| async { (StatusCode::NOT_FOUND, "missing") }),
            )
            .route(
                "/fail",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "failed") }),
            )
            .route(
                "/unavailable",
                get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "unavailable") }),
            )
            .route("/slow/{ms}", get(slow))
            .with_state(Arc::clone(&hanging));
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("binding a loopback port");
        let addr = listener.local_addr().expect("the backend's address");
        runtime.spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the backend serves");
        });
        Self {
            runtime,
            addr,
            hanging,
        }
    }

    /// Its address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The runtime it runs in (two worker threads), for clients of the tests.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Sends every request of `plan` to `proxy`, [`CLIENTS`] at a time, checking each status.
    fn drive(&self, proxy: SocketAddr, plan: &[Request]) {
        let plan: Arc<[Request]> = plan.into();
        let next = Arc::new(AtomicUsize::new(0));
        self.runtime.block_on(async {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    let (plan, next) = (Arc::clone(&plan), Arc::clone(&next));
                    tokio::spawn(async move {
                        while let Some(request) = plan.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let status = get_status(proxy, &request.path).await;
                            assert_eq!(status, request.status, "GET {}", request.path);
                        }
                    })
                })
                .collect();
            for client in clients {
                client.await.expect("a client task panicked");
            }
        });
    }

    /// Sends a request that the backend answers only after [`ABORT_MS`], and closes the
    /// connection as soon as the backend has it: the proxy sees its client go away.
    fn abort(&self, proxy: SocketAddr) {
        let before = self.hanging.load(Ordering::SeqCst);
        self.runtime.block_on(async {
            let mut stream = bounded(TcpStream::connect(proxy))
                .await
                .expect("connecting to the proxy");
            let request = format!(
                "GET /slow/{ABORT_MS} HTTP/1.1\r\nHost: {proxy}\r\nUser-Agent: vantage-edge-tests\r\n\r\n"
            );
            stream
                .write_all(request.as_bytes())
                .await
                .expect("sending the request");
            let deadline = Instant::now() + WAIT_LIMIT;
            while self.hanging.load(Ordering::SeqCst) == before {
                assert!(
                    Instant::now() < deadline,
                    "the request never reached the backend"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            drop(stream);
        });
    }
}

async fn slow(State(hanging): State<Arc<AtomicUsize>>, UrlPath(ms): UrlPath<u64>) -> &'static str {
    if ms >= ABORT_MS {
        hanging.fetch_add(1, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_millis(ms.min(ABORT_MS))).await;
    "slow"
}

/// Awaits `future` within [`WAIT_LIMIT`], failing the test past it.
async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT_LIMIT, future)
        .await
        .expect("finished within the wait limit")
}

/// `GET path` over a fresh connection (`Connection: close`), read until the proxy closes it;
/// the status of the answer.
pub(crate) async fn get_status(addr: SocketAddr, path: &str) -> u16 {
    let mut stream = bounded(TcpStream::connect(addr))
        .await
        .expect("connecting to the proxy");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: vantage-edge-tests\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("sending the request");
    let mut response = Vec::new();
    bounded(stream.read_to_end(&mut response))
        .await
        .expect("reading the response");
    let head = String::from_utf8_lossy(&response[..response.len().min(12)]).into_owned();
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: not an HTTP response: {head:?}"))
}

/// A running proxy, killed when dropped.
pub(crate) struct Proxy {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    /// Where its standard output went.
    stdout: PathBuf,
    /// Where its standard error went.
    stderr: PathBuf,
}

impl Proxy {
    /// Starts `command` with its output in files of `dir` and waits until `addr` accepts
    /// connections.
    pub(crate) fn start(
        name: &'static str,
        mut command: Command,
        dir: &Dir,
        addr: SocketAddr,
    ) -> Self {
        let stdout = dir.join(&format!("{name}.stdout"));
        let stderr = dir.join(&format!("{name}.stderr"));
        let file = |path: &Path| std::fs::File::create(path).expect("creating an output file");
        let child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            .spawn()
            .unwrap_or_else(|error| panic!("starting {name}: {error}"));
        let mut proxy = Self {
            name,
            child,
            addr,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + WAIT_LIMIT;
        while StdStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("{name} exited with {status}: {}", proxy.output());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen on {addr}: {}",
                proxy.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    /// Its output so far, to explain a failure.
    pub(crate) fn output(&self) -> String {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        format!(
            "--- {} stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            read(&self.stdout),
            read(&self.stderr)
        )
    }

    /// Sends it `signal` (`USR1`, `TERM`...).
    pub(crate) fn signal(&self, signal: &str) {
        util::signal(self.child.id(), signal);
    }

    /// Stops it with SIGTERM and waits for its exit, within [`WAIT_LIMIT`].
    pub(crate) fn terminate(mut self) {
        self.signal("TERM");
        util::wait_bounded(&mut self.child, self.name);
    }

    /// Waits until the log at `path` has `lines` lines, then stops the proxy.
    fn stop_after(mut self, path: &Path, lines: usize) {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let written = text.lines().count();
            if written >= lines {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {written} of {lines} log lines after {WAIT_LIMIT:?}:\n{text}\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Every proxy here writes each log line as the request ends, unbuffered: once the lines
        // are there, nothing is left to flush.
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the test reads from one log line by itself.
#[derive(Debug)]
struct Logged {
    route: String,
    status: String,
    /// The latency field in µs (truncated), as `edge-parser` stores it.
    latency: u64,
    /// The upstream latency field in µs, when the line has one.
    upstream: Option<u64>,
    /// The response bytes field.
    bytes: u64,
}

/// `12.345678901` (seconds, decimal) in µs, truncated; `None` for `-`.
fn seconds_to_micros(text: &str) -> Option<u64> {
    if text == "-" {
        return None;
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut micros: u64 = whole.parse::<u64>().ok()? * 1_000_000;
    for (n, digit) in fraction.bytes().take(6).enumerate() {
        micros += u64::from(digit - b'0') * 10u64.pow(5 - n as u32);
    }
    Some(micros)
}

/// The request path inside `"GET /path HTTP/1.1"`.
fn request_path(request: &str) -> &str {
    request.split(' ').nth(1).expect("a request line")
}

/// nginx: `... "$request" $status $body_bytes_sent ... $request_time` (last field), and with
/// `upstream` the line ends in `$request_time $upstream_response_time`.
fn read_nginx(line: &str, upstream: bool) -> Logged {
    let quoted: Vec<&str> = line.split('"').collect();
    let after: Vec<&str> = quoted[2].split_whitespace().collect();
    let fields: Vec<&str> = line.split(' ').collect();
    let (latency, upstream) = if upstream {
        let upstream_time = fields[fields.len() - 1];
        let sum = upstream_time
            .split([',', ':'])
            .map(str::trim)
            .map(seconds_to_micros)
            .sum::<Option<u64>>();
        (fields[fields.len() - 2], sum)
    } else {
        (fields[fields.len() - 1], None)
    };
    Logged {
        route: route_of(request_path(quoted[1])),
        status: after[0].to_owned(),
        latency: seconds_to_micros(latency).expect("a request time"),
        upstream,
        bytes: after[1].parse().expect("$body_bytes_sent"),
    }
}

/// The raw text of a JSON field's value in a Caddy line (`"key":value`, up to `,` or `}`), or
/// of a string value without its quotes.
fn json_field<'a>(line: &'a str, key: &str) -> &'a str {
    let pattern = format!("\"{key}\":");
    let start = line.find(&pattern).expect("the field is logged") + pattern.len();
    let rest = &line[start..];
    if let Some(string) = rest.strip_prefix('"') {
        &string[..string.find('"').expect("a closed string")]
    } else {
        &rest[..rest.find([',', '}']).expect("a value")]
    }
}

/// Caddy JSON: `"uri":"..."`, `"status":N`, `"duration":seconds`, `"size":N`.
fn read_caddy(line: &str) -> Logged {
    Logged {
        route: route_of(json_field(line, "uri")),
        status: json_field(line, "status").to_owned(),
        latency: seconds_to_micros(json_field(line, "duration")).expect("a duration"),
        upstream: None,
        bytes: json_field(line, "size").parse().expect("a size"),
    }
}

/// HAProxy `option httplog`: `client [date] frontend backend/server TR/Tw/Tc/Tr/Ta status
/// bytes_read ... "request"`; latency `Ta`, upstream `Tr` (ms; -1 is none).
fn read_haproxy(line: &str) -> Logged {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let timers: Vec<&str> = fields[4].split('/').collect();
    let millis = |text: &str| text.parse::<u64>().ok().map(|ms| ms * 1000);
    Logged {
        route: route_of(request_path(line.split('"').nth(1).expect("a request"))),
        status: fields[5].to_owned(),
        latency: millis(timers[4]).expect("Ta is logged"),
        upstream: millis(timers[3]),
        bytes: fields[6].parse().expect("bytes_read"),
    }
}

/// The nearest-rank value at `per_mille` of sorted values.
fn nearest_rank(sorted: &[u64], per_mille: u64) -> u64 {
    let rank = (per_mille * sorted.len() as u64).div_ceil(1000).max(1);
    sorted[rank as usize - 1]
}

/// Checks a `latency_seconds`-shaped object against the values read from the log: count, min
/// and max exact, p50/p90/p99 within 0.1 % of nearest rank.
fn assert_latency(reported: &Value, values: &[u64], what: &str) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let micros = |field: &str| {
        let seconds = reported[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: no {field} in {reported}"));
        (seconds * 1e6).round() as u64
    };
    assert_eq!(reported["count"], sorted.len(), "{what}: count");
    assert_eq!(micros("min"), sorted[0], "{what}: min");
    assert_eq!(micros("max"), sorted[sorted.len() - 1], "{what}: max");
    for (field, per_mille) in [("p50", 500), ("p90", 900), ("p99", 990)] {
        let exact = nearest_rank(&sorted, per_mille);
        let got = micros(field);
        assert!(
            got.abs_diff(exact) as f64 <= exact as f64 * 0.001,
            "{what}: {field} is {got} µs, nearest rank of the log's values is {exact} µs"
        );
    }
}

/// What a proxy run must produce.
struct Expect<'a> {
    plan: &'a [Request],
    /// The status the proxy logs for a client that gave up.
    aborted_status: &'a str,
    /// The format detected (or compiled) name.
    format: &'a str,
    /// Whether the format logs an upstream latency.
    upstream: bool,
}

/// Runs `edge-parser report --json --by route,status` on `log` with `extra` arguments and checks
/// the report against the plan and against the log read line by line with `read`.
fn check_report(
    dir: &Dir,
    log: &Path,
    extra: &[&str],
    expect: &Expect<'_>,
    read: fn(&str) -> Logged,
) -> Value {
    dir.create("routes.txt", ROUTES_FILE);
    let mut command = dir.command();
    command.arg("report").arg(log).args([
        "--json",
        "--by",
        "route,status",
        "--routes",
        "routes.txt",
    ]);
    for template in ID_ROUTES {
        command.args(["--route", template]);
    }
    let report = command.args(extra).json();

    let text = std::fs::read_to_string(log).expect("reading the access log");
    let logged: Vec<Logged> = text.lines().map(read).collect();
    let total_requests = (expect.plan.len() + ABORTED) as u64;
    assert_eq!(
        logged.len() as u64,
        total_requests,
        "lines in the log:\n{text}"
    );

    assert_eq!(report["format"], expect.format);
    assert_eq!(
        report["lines"],
        serde_json::json!({"total": total_requests, "parsed": total_requests, "malformed": 0, "filtered": 0}),
        "{}",
        report["malformed_samples"]
    );

    // Counts: exactly what the client sent, per route and status.
    let expected = expected_groups(expect.plan, expect.aborted_status);
    let groups: BTreeMap<(String, String), &Value> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|group| {
            let key = &group["key"];
            let field = |name: &str| key[name].as_str().expect("a key value").to_owned();
            ((field("route"), field("status")), group)
        })
        .collect();
    let counts: BTreeMap<(String, String), u64> = groups
        .iter()
        .map(|(key, group)| (key.clone(), group["requests"].as_u64().expect("requests")))
        .collect();
    assert_eq!(counts, expected);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for ((_, status), count) in &expected {
        *statuses.entry(status.clone()).or_default() += count;
    }
    assert_eq!(report["total"]["status"], serde_json::json!(statuses));
    assert_eq!(report["total"]["requests"], total_requests);
    assert_eq!(report["total"]["latency_missing"], 0);

    // Latencies: against the log's own fields, per group and in total.
    let mut by_group: BTreeMap<(String, String), Vec<&Logged>> = BTreeMap::new();
    for line in &logged {
        by_group
            .entry((line.route.clone(), line.status.clone()))
            .or_default()
            .push(line);
    }
    assert_eq!(
        by_group.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the log's own groups"
    );
    let check = |reported: &Value, lines: &[&Logged], what: &str| {
        let bytes: u64 = lines.iter().map(|l| l.bytes).sum();
        assert_eq!(reported["bytes_sent"], bytes, "{what}: bytes_sent");
        let latencies: Vec<u64> = lines.iter().map(|l| l.latency).collect();
        assert_latency(&reported["latency_seconds"], &latencies, what);
        let upstream: Vec<u64> = lines.iter().filter_map(|l| l.upstream).collect();
        if expect.upstream && !upstream.is_empty() {
            assert_latency(
                &reported["upstream_latency_seconds"],
                &upstream,
                &format!("{what} upstream"),
            );
        } else {
            assert_eq!(reported["upstream_latency_seconds"], Value::Null, "{what}");
        }
    };
    for (key, lines) in &by_group {
        check(groups[key], lines, &format!("{key:?}"));
    }
    check(
        &report["total"],
        &logged.iter().collect::<Vec<_>>(),
        "total",
    );
    report
}

/// The nginx `log_format` with the upstream time, as given to nginx and to `edge-parser`.
const NGINX_UPSTREAM_FORMAT: &str = r#"$remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time $upstream_response_time"#;

/// Starts nginx in the foreground, its files in `dir`, with `http` as the body of its `http`
/// block; killed when the returned proxy is dropped.
pub(crate) fn run_nginx(nginx: &Path, dir: &Dir, addr: SocketAddr, http: &str) -> Proxy {
    let root = dir.path().display().to_string();
    let conf = format!(
        r#"daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{
    worker_connections 256;
}}
http {{
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    {http}
}}
"#
    );
    let conf_path = dir.create("nginx.conf", &conf);
    let mut command = Command::new(nginx);
    command
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"));
    Proxy::start("nginx", command, dir, addr)
}

#[test]
fn nginx_logs_read_back_exactly() {
    let Some(nginx) = require("nginx") else {
        return;
    };
    let dir = Dir::new("nginx");
    let backend = Backend::start();
    let addr = free_port();
    let root = dir.path().display().to_string();
    let http = format!(
        r#"log_format combined_time '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time';
    log_format upstream '{NGINX_UPSTREAM_FORMAT}';
    server {{
        listen {addr};
        access_log {root}/combined.log combined_time;
        access_log {root}/upstream.log upstream;
        location = /limited {{
            return 429;
        }}
        location / {{
            proxy_pass http://{backend};
        }}
    }}"#,
        backend = backend.addr,
    );
    let proxy = run_nginx(&nginx, &dir, addr, &http);

    let plan = plan();
    backend.drive(proxy.addr, &plan);
    for _ in 0..ABORTED {
        backend.abort(proxy.addr);
    }
    let lines = plan.len() + ABORTED;
    let combined = dir.join("combined.log");
    let upstream = dir.join("upstream.log");
    // Both logs are written per request; wait for the second one too before stopping.
    let deadline = Instant::now() + WAIT_LIMIT;
    while std::fs::read_to_string(&upstream)
        .unwrap_or_default()
        .lines()
        .count()
        < lines
    {
        assert!(Instant::now() < deadline, "upstream.log is incomplete");
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.stop_after(&combined, lines);

    // 499: nginx's code for a client that closed the connection before the answer.
    let expect = Expect {
        plan: &plan,
        aborted_status: "499",
        format: "nginx-combined-rt",
        upstream: false,
    };
    check_report(&dir, &combined, &[], &expect, |line| {
        read_nginx(line, false)
    });

    let expect = Expect {
        format: "nginx-custom",
        upstream: true,
        ..expect
    };
    let from_flag = check_report(
        &dir,
        &upstream,
        &["--nginx-log-format", NGINX_UPSTREAM_FORMAT],
        &expect,
        |line| read_nginx(line, true),
    );
    // `return 429` never reaches an upstream: those lines have no upstream time.
    assert_eq!(
        from_flag["total"]["upstream_latency_seconds"]["count"],
        plan.len() + ABORTED - 5
    );
    // The same log_format read from the configuration nginx itself ran with.
    let from_conf = check_report(
        &dir,
        &upstream,
        &[
            "--nginx-conf",
            "nginx.conf",
            "--nginx-log-format-name",
            "upstream",
        ],
        &expect,
        |line| read_nginx(line, true),
    );
    assert_eq!(from_conf, from_flag);
}

#[test]
fn caddy_logs_read_back_exactly() {
    let Some(caddy) = require("caddy") else {
        return;
    };
    let dir = Dir::new("caddy");
    let backend = Backend::start();
    let addr = free_port();
    let log = dir.join("access.log");
    let caddyfile = format!(
        "{{
\tadmin off
\tauto_https off
}}

http://{addr} {{
\tlog {{
\t\toutput file {log} {{
\t\t\troll_disabled
\t\t}}
\t\tformat json
\t}}
\trespond /limited 429
\treverse_proxy {backend}
}}
",
        log = log.display(),
        backend = backend.addr,
    );
    dir.create("Caddyfile", caddyfile);
    let mut command = Command::new(caddy);
    command
        .args(["run", "--adapter", "caddyfile", "--config", "Caddyfile"])
        // Caddy keeps state under these; the test's directory, not the user's.
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path());
    let proxy = Proxy::start("caddy", command, &dir, addr);

    let plan = plan();
    backend.drive(proxy.addr, &plan);
    for _ in 0..ABORTED {
        backend.abort(proxy.addr);
    }
    proxy.stop_after(&log, plan.len() + ABORTED);

    // Caddy logs status 0 when the client left before any response was written.
    let expect = Expect {
        plan: &plan,
        aborted_status: "0",
        format: "caddy-json",
        upstream: false,
    };
    let report = check_report(&dir, &log, &[], &expect, read_caddy);
    assert_eq!(report["total"]["status_class"]["other"], ABORTED);
}

#[test]
fn haproxy_logs_read_back_exactly() {
    let Some(haproxy) = require("haproxy") else {
        return;
    };
    let dir = Dir::new("haproxy");
    let backend = Backend::start();
    let addr = free_port();
    let config = format!(
        "global
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option abortonclose
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend edge
    bind {addr}
    http-request deny deny_status 429 if {{ path /limited }}
    default_backend app

backend app
    server app1 {backend}
",
        backend = backend.addr,
    );
    dir.create("haproxy.cfg", config);
    let mut command = Command::new(haproxy);
    command.args(["-db", "-f", "haproxy.cfg"]);
    let proxy = Proxy::start("haproxy", command, &dir, addr);
    let log = proxy.stdout.clone();

    let plan = plan();
    backend.drive(proxy.addr, &plan);
    for _ in 0..ABORTED {
        backend.abort(proxy.addr);
    }
    proxy.stop_after(&log, plan.len() + ABORTED);

    // With `option abortonclose`, a client that leaves while HAProxy waits for the server is
    // logged with status 400 and termination state `CH--` (client abort, waiting for headers).
    let text = std::fs::read_to_string(&log).expect("reading the log");
    let aborted: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(" CH-- "))
        .collect();
    assert_eq!(aborted.len(), ABORTED, "{text}");
    assert!(
        aborted
            .iter()
            .all(|line| line.contains("/-1/") && line.contains(" 400 ")),
        "{text}"
    );
    let expect = Expect {
        plan: &plan,
        aborted_status: "400",
        format: "haproxy",
        upstream: true,
    };
    let report = check_report(&dir, &log, &[], &expect, read_haproxy);
    // One backend, named as the router.
    assert_eq!(report["group_by"], serde_json::json!(["route", "status"]));
    let by_router = dir
        .command()
        .arg("report")
        .arg(&log)
        .args(["--json", "--by", "router"])
        .json();
    let routers: Vec<(&str, u64)> = by_router["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|group| {
            let router = group["key"]["router"].as_str().expect("a router");
            (router, group["requests"].as_u64().expect("requests"))
        })
        .collect();
    // The backend that served a request is its router; what the frontend denied itself has
    // no backend and is logged under the frontend's name.
    let served = (plan.len() - 5 + ABORTED) as u64;
    assert_eq!(routers, [("app", served), ("edge", 5)]);
}

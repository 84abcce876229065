//! Helpers for the tests of `edge-parser serve`: a running server (killed when dropped) whose
//! port is read from its log, a small HTTP/1.1 client over a raw loopback connection, a parser
//! of the Prometheus text exposition, and `promtool check metrics`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::{Dir, WAIT_LIMIT, signal};

/// What the server prints once it listens: `serving on http://ADDR: /metrics ...`.
const SERVING_ON: &str = "serving on http://";
/// How much of the server's standard error is kept to explain a failure.
const KEPT_LOG_BYTES: usize = 64 << 10;
/// Time between two looks while waiting for a condition.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// A running `edge-parser serve`, listening on a loopback port it chose; killed when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Starts `edge-parser serve ARGS --listen 127.0.0.1:0` in `dir` and waits for the
    /// `serving on` line to learn the port.
    pub(crate) fn start(dir: &Dir, args: &[&str]) -> Self {
        Self::start_via(dir, &[], args)
    }

    /// [`start`](Self::start) following one `log` of `format`, with `more` arguments.
    pub(crate) fn following(dir: &Dir, log: &std::path::Path, format: &str, more: &[&str]) -> Self {
        let log = log.display().to_string();
        let mut args = vec!["--log", &log, "--format", format];
        args.extend_from_slice(more);
        Self::start(dir, &args)
    }

    /// [`start`](Self::start) under `wrapper` (see [`Dir::command_via`]).
    pub(crate) fn start_via(dir: &Dir, wrapper: &[&str], args: &[&str]) -> Self {
        Self::spawn(dir, wrapper, args, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// [`start`](Self::start) listening on `listen`: a server restarted on the same address
    /// stays one scrape target for Prometheus.
    pub(crate) fn start_at(dir: &Dir, args: &[&str], listen: SocketAddr) -> Self {
        Self::spawn(dir, &[], args, listen)
    }

    fn spawn(dir: &Dir, wrapper: &[&str], args: &[&str], listen: SocketAddr) -> Self {
        let mut child = dir
            .command_via(wrapper)
            .arg("serve")
            .args(args)
            .args(["--listen", &listen.to_string()])
            .spawn(Stdio::null());
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        // The server logs as it goes: the pipe is drained until it closes, or it would block.
        let reader = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut found = Some(found);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = serving_address(&line)
                        && let Some(found) = found.take()
                    {
                        let _ = found.send(addr);
                    }
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push_str(&line);
                    log.push('\n');
                    if log.len() > KEPT_LOG_BYTES {
                        let cut = log.len() - KEPT_LOG_BYTES / 2;
                        let cut = (cut..log.len())
                            .find(|&at| log.is_char_boundary(at))
                            .unwrap_or(log.len());
                        log.replace_range(..cut, "[...]\n");
                    }
                }
            })
        };
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            reader: Some(reader),
            exited: None,
        };
        match address.recv_timeout(WAIT_LIMIT) {
            Ok(addr) => server.addr = addr,
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "edge-parser serve did not say where it listens (exit: {status:?}):\n{}",
                    server.stderr()
                );
            }
        }
        server
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its standard error so far (the start of a long log is cut).
    pub(crate) fn stderr(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `GET path`; fails the test if there is no answer.
    pub(crate) fn get(&self, path: &str) -> Response {
        get(self.addr, path).unwrap_or_else(|error| {
            panic!("GET {path}: {error}\n--- server log ---\n{}", self.stderr())
        })
    }

    /// `GET /metrics`, parsed.
    pub(crate) fn metrics(&self) -> Exposition {
        let response = self.get("/metrics");
        assert_eq!(response.status, 200, "GET /metrics: {}", response.text());
        Exposition::parse(response.text())
    }

    /// Waits until `/ready` answers 200.
    pub(crate) fn wait_ready(&self) {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let response = self.get("/ready");
            if response.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready after {WAIT_LIMIT:?}: {} {}\n--- server log ---\n{}",
                response.status,
                response.text(),
                self.stderr()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `/metrics` (the counters of the last checkpoint) counts `parsed` parsed
    /// lines; returns the exposition then.
    pub(crate) fn wait_parsed(&self, parsed: u64) -> Exposition {
        poll_until(WAIT_LIMIT, || {
            let metrics = self.metrics();
            match metrics.count("edge_lines_total", &[("result", "parsed")]) {
                seen if seen == parsed => Ok(metrics),
                seen => Err(format!("{seen} parsed lines, waiting for {parsed}")),
            }
        })
        .unwrap_or_else(|error| panic!("{error}\n--- server log ---\n{}", self.stderr()))
    }

    /// Waits until `/api/reconcile` has started and shows `route` with `edge` and `service`
    /// requests since the start (an absent row counts as none); returns the reconciliation.
    pub(crate) fn wait_reconciled(
        &self,
        route: &str,
        edge: u64,
        service: u64,
    ) -> serde_json::Value {
        poll_until(WAIT_LIMIT, || {
            let reconcile = self.get("/api/reconcile").json();
            let row = route_row(&reconcile["routes"], route);
            let count = |side: &str| row[side].as_u64().unwrap_or(0);
            if reconcile["started"] == true
                && count("edge_requests") == edge
                && count("service_requests") == service
            {
                Ok(reconcile)
            } else {
                Err(format!(
                    "waiting for {route}: {edge} at the edge, {service} at the service: {reconcile}"
                ))
            }
        })
        .unwrap_or_else(|error| panic!("{error}\n--- server log ---\n{}", self.stderr()))
    }

    /// Waits until the server has taken in `parsed` parsed lines, as `/api/summary` (live,
    /// unlike the counters of `/metrics`) says; returns the summary then.
    pub(crate) fn wait_taken_in(&self, parsed: u64) -> serde_json::Value {
        poll_until(WAIT_LIMIT, || {
            let summary = self.get("/api/summary").json();
            match summary["lines"]["parsed"].as_u64() {
                Some(seen) if seen == parsed => Ok(summary),
                _ => Err(format!("waiting for {parsed} parsed lines: {summary}")),
            }
        })
        .unwrap_or_else(|error| panic!("{error}\n--- server log ---\n{}", self.stderr()))
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code (-1 for a signal).
    pub(crate) fn terminate(mut self) -> i32 {
        signal(self.child.id(), "TERM");
        let status = self.wait_exit();
        status.code().unwrap_or(-1)
    }

    /// Kills it with SIGKILL (`kill -9`): no final checkpoint.
    pub(crate) fn kill(mut self) {
        self.stop();
    }

    /// Waits for the process to exit within [`WAIT_LIMIT`], failing the test past it.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for edge-parser") {
                self.exited = Some(status);
                self.join_reader();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "edge-parser serve did not exit within {WAIT_LIMIT:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(POLL);
        }
    }

    fn stop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
        self.join_reader();
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The address in a `serving on http://ADDR: ...` log line.
fn serving_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(SERVING_ON)? + SERVING_ON.len()..];
    rest[..rest.find(": ")?].parse().ok()
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The header fields, names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; fails the test otherwise.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{error}: {}", self.text()))
    }

    /// The value of a header field.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// `GET path` over a new connection (closed after the answer), within [`WAIT_LIMIT`].
pub(crate) fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    request(addr, "GET", path, &[])
}

/// `METHOD path` with extra header fields, over a new connection (closed after the answer),
/// within [`WAIT_LIMIT`].
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT_LIMIT)?;
    stream.set_read_timeout(Some(WAIT_LIMIT))?;
    stream.set_write_timeout(Some(WAIT_LIMIT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in fields {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let Head {
        status,
        headers,
        body_at,
    } = parse_head(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "not an HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })?;
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(&raw[body_at..]).0
    } else {
        raw[body_at..].to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The head of an HTTP response.
#[derive(Debug)]
struct Head {
    status: u16,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    /// Where the body starts.
    body_at: usize,
}

/// The head of `raw`, once it is complete.
fn parse_head(raw: &[u8]) -> Option<Head> {
    let end = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()?
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(Head {
        status,
        headers,
        body_at: end + 4,
    })
}

/// The data of the complete chunks at the start of a chunked body, and whether the last
/// chunk was seen.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    loop {
        let Some(line_end) = raw.windows(2).position(|window| window == b"\r\n") else {
            return (data, false);
        };
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (data, false);
        };
        if size == 0 {
            return (data, true);
        }
        let start = line_end + 2;
        if raw.len() < start + size + 2 {
            return (data, false);
        }
        data.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// Reads server-sent events from `GET path` until `count` have arrived; fails the test past
/// [`WAIT_LIMIT`]. Returns `(event, data)` pairs.
pub(crate) fn read_events(addr: SocketAddr, path: &str, count: usize) -> Vec<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT_LIMIT).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("setting a read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("sending the request");
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut raw = Vec::new();
    let mut buffer = [0; 8192];
    loop {
        if let Some(head) = parse_head(&raw) {
            assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&raw));
            let content_type = head
                .headers
                .iter()
                .find(|(name, _)| name == "content-type")
                .map(|(_, value)| value.as_str());
            assert_eq!(content_type, Some("text/event-stream"));
            let (body, ended) = dechunk(&raw[head.body_at..]);
            let events = parse_events(&String::from_utf8_lossy(&body));
            if events.len() >= count {
                return events;
            }
            assert!(!ended, "the stream ended after {} events", events.len());
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {count} events after {WAIT_LIMIT:?}: {:?}",
            String::from_utf8_lossy(&raw)
        );
        match stream.read(&mut buffer) {
            Ok(0) => panic!(
                "the stream closed early: {:?}",
                String::from_utf8_lossy(&raw)
            ),
            Ok(read) => raw.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(error) => panic!("reading the stream: {error}"),
        }
    }
}

/// The complete events (ended by an empty line) of an event stream.
fn parse_events(text: &str) -> Vec<(String, String)> {
    let mut events = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find("\n\n") {
        let (mut event, mut data) = (String::new(), Vec::new());
        for line in rest[..end].lines() {
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim_start().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        events.push((event, data.join("\n")));
        rest = &rest[end + 2..];
    }
    events
}

/// One sample of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// The metric name (with `_bucket`, `_sum` or `_count` for histograms).
    pub(crate) name: String,
    /// The labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// The value.
    pub(crate) value: f64,
}

/// A Prometheus text exposition, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Exposition {
    /// The text as served.
    pub(crate) text: String,
    /// Every sample, in order.
    pub(crate) samples: Vec<Sample>,
}

impl Exposition {
    /// Parses `text`; fails the test on a line that is not a comment or a sample.
    pub(crate) fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}\n{text}"))
            })
            .collect();
        Self { text, samples }
    }

    /// The samples named `name`.
    pub(crate) fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |sample| sample.name == name)
    }

    /// The value of the sample named `name` whose labels include `labels`, if there is one.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.named(name)
            .find(|sample| {
                labels.iter().all(|(label, value)| {
                    sample.labels.get(*label).map(String::as_str) == Some(value)
                })
            })
            .map(|sample| sample.value)
    }

    /// The value of `name` with `labels` as a whole number; 0 when there is no such sample.
    pub(crate) fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.value(name, labels).map_or(0, whole)
    }

    /// The samples of `name` summed by the values of `labels` (a missing label is `""`).
    pub(crate) fn sum_by(&self, name: &str, labels: &[&str]) -> BTreeMap<Vec<String>, u64> {
        let mut sums = BTreeMap::new();
        for sample in self.named(name) {
            let key = labels
                .iter()
                .map(|label| sample.labels.get(*label).cloned().unwrap_or_default())
                .collect();
            *sums.entry(key).or_default() += whole(sample.value);
        }
        sums
    }

    /// The samples of `name` summed by the values of two labels.
    pub(crate) fn sum_by_pair(
        &self,
        name: &str,
        [first, second]: [&str; 2],
    ) -> BTreeMap<(String, String), u64> {
        self.sum_by(name, &[first, second])
            .into_iter()
            .map(|(mut key, value)| {
                let second = key.pop().unwrap_or_default();
                ((key.pop().unwrap_or_default(), second), value)
            })
            .collect()
    }

    /// The samples of `name` summed by the value of one label.
    pub(crate) fn sum_by_label(&self, name: &str, label: &str) -> BTreeMap<String, u64> {
        self.sum_by(name, &[label])
            .into_iter()
            .map(|(mut key, value)| (key.remove(0), value))
            .collect()
    }
}

/// The row of `route` among reconciliation `rows` (`/api/reconcile`'s or a window's);
/// `Null` when there is none.
pub(crate) fn route_row(rows: &serde_json::Value, route: &str) -> serde_json::Value {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|row| row["route"] == route))
        .cloned()
        .unwrap_or_default()
}

/// A counter value as a whole number; fails the test otherwise.
fn whole(value: f64) -> u64 {
    assert!(
        value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(53),
        "{value} is not a count"
    );
    value as u64
}

/// `name{label="value",...} number` or `name number`.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inside) = rest.strip_prefix('{') {
        let mut chars = inside.char_indices();
        let mut label = String::new();
        loop {
            let (at, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &inside[at + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                escaped => value.push(escaped),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut label), value);
                }
                c => label.push(c),
            }
        }
    }
    let value = rest.trim().split(' ').next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        value => value.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Serves `app` on a free loopback port on `runtime` (until it stops); returns the address.
pub(crate) fn serve_axum(runtime: &tokio::runtime::Runtime, app: axum::Router) -> SocketAddr {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    })
}

/// Runs `promtool check metrics` on an exposition and fails the test on a complaint. Without
/// promtool the check is skipped with a message, except under CI (`CI` set).
pub(crate) fn promtool_check(exposition: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool cannot run under CI ({error}): .ci/run installs the prometheus package"
            );
            eprintln!("skipping promtool check metrics: promtool cannot run ({error})");
            return;
        }
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // promtool reads all of its input before answering: a thread feeds it.
    let text = exposition.to_owned();
    let feeder = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output().expect("waiting for promtool");
    feeder
        .join()
        .expect("the feeder does not panic")
        .expect("writing to promtool");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Unix time of the first line the tests number: 2025-03-09 12:00:00 UTC.
pub(crate) const FIRST_LINE_TIME: i64 = 1_741_521_600;

/// A Traefik `common` access-log line (with its newline) for request number `n`, path
/// `/r/<n>`, logged at `FIRST_LINE_TIME + n`: every line differs from every other.
pub(crate) fn traefik_line(
    n: u64,
    router: &str,
    method: &str,
    status: u16,
    duration_ms: u32,
) -> String {
    let at = FIRST_LINE_TIME + n as i64;
    traefik_line_at(n, at, router, method, status, duration_ms)
}

/// [`traefik_line`] logged at `unix_time` (a line of now lands in the live windows).
pub(crate) fn traefik_line_at(
    n: u64,
    unix_time: i64,
    router: &str,
    method: &str,
    status: u16,
    duration_ms: u32,
) -> String {
    format!(
        "10.0.{}.{} - - [{}] \"{method} /r/{n} HTTP/1.1\" {status} {} \"-\" \"vantage-tests/1.0\" {n} \"{router}\" \"http://10.1.0.{}:8080\" {duration_ms}ms\n",
        n / 250 % 250,
        n % 250 + 1,
        clf_time(unix_time),
        n * 7 % 50_000,
        n % 8 + 1,
    )
}

/// An nginx `combined` line followed by `$request_time` (format `nginx-combined-rt`), logged
/// at `unix_time`.
pub(crate) fn nginx_line(n: u64, unix_time: i64, path: &str, status: u16) -> String {
    format!(
        "127.0.0.1 - - [{}] \"GET {path} HTTP/1.1\" {status} {} \"-\" \"vantage-tests/1.0\" {}.{:03}\n",
        clf_time(unix_time),
        n * 13 % 9_000,
        n % 3,
        n % 1000,
    )
}

/// The current Unix time, in seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// `unix_time` as a Common Log Format time in UTC: `09/Mar/2025:12:00:00 +0000`.
pub(crate) fn clf_time(unix_time: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, seconds) = (unix_time.div_euclid(86_400), unix_time.rem_euclid(86_400));
    let (year, month, day) = civil_date(days);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[month as usize - 1],
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
fn civil_date(days: i64) -> (i64, i64, i64) {
    // Shifted to 0000-03-01, so that a leap day ends its year, in 400-year eras of 146 097
    // days.
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The routers of [`traefik_lines`], in turn.
const ROUTERS: [&str; 3] = ["api@docker", "web@docker", "auth@file"];

/// Appends `text` to the file at `path` (created if missing).
pub(crate) fn append(path: &std::path::Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .expect("appending to the log");
}

/// `count` Traefik lines numbered from `first`, routers and statuses (200, 404, 503) in turn.
pub(crate) fn traefik_lines(first: u64, count: u64) -> String {
    (first..first + count)
        .map(|n| {
            let router = ROUTERS[n as usize % ROUTERS.len()];
            let status = [200, 404, 503][n as usize % 3];
            traefik_line(n, router, "GET", status, (n % 40) as u32)
        })
        .collect()
}

/// Scrapes `/metrics` every 10 ms as Prometheus would, from whichever server it is pointed
/// at, and records every counter sample that went down: what Prometheus takes for a reset,
/// after which `increase()` counts again what it had counted.
#[derive(Debug)]
pub(crate) struct Scraper {
    target: Arc<Mutex<Option<SocketAddr>>>,
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<(u32, Vec<String>)>>,
}

impl Scraper {
    /// A scraper of nothing yet.
    pub(crate) fn start() -> Self {
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (target, done) = (Arc::clone(&target), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut last: BTreeMap<String, f64> = BTreeMap::new();
                let (mut scrapes, mut decreases) = (0u32, Vec::new());
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    let addr = *target.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(addr) = addr
                        && let Ok(response) = get(addr, "/metrics")
                        && response.status == 200
                    {
                        scrapes += 1;
                        for sample in Exposition::parse(response.text()).samples {
                            if !is_edge_counter(&sample.name) {
                                continue;
                            }
                            let series = format!("{}{:?}", sample.name, sample.labels);
                            if let Some(&before) = last.get(&series)
                                && sample.value < before
                            {
                                decreases.push(format!("{series}: {before} -> {}", sample.value));
                            }
                            last.insert(series, sample.value);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                (scrapes, decreases)
            })
        };
        Self {
            target,
            done,
            thread: Some(thread),
        }
    }

    /// Scrapes `addr` from now on (`None`: nothing, while a server is down).
    pub(crate) fn point_at(&self, addr: Option<SocketAddr>) {
        *self.target.lock().unwrap_or_else(PoisonError::into_inner) = addr;
    }

    /// Stops; the number of successful scrapes and every decrease seen.
    pub(crate) fn finish(mut self) -> (u32, Vec<String>) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        self.thread
            .take()
            .map(|thread| thread.join().expect("the scraper does not panic"))
            .unwrap_or_default()
    }
}

/// Whether a sample is of a series that must never go down across restarts: requests,
/// duration histograms (buckets, sums, counts), lines and bytes read.
fn is_edge_counter(name: &str) -> bool {
    name.starts_with("edge_requests_total")
        || name.starts_with("edge_request_duration_seconds")
        || name.starts_with("edge_upstream_duration_seconds")
        || name == "edge_lines_total"
        || name == "edge_bytes_read_total"
}

/// A real Prometheus (`prometheus`, Debian package `prometheus`) scraping one target's
/// `/metrics` every second, its storage and log in a test directory, its API on a free loopback
/// port; killed when dropped.
#[derive(Debug)]
pub(crate) struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second and waits until it is ready. `None`,
    /// after saying why, when `prometheus` is not installed, except under CI (`CI` set), where
    /// that fails the test.
    pub(crate) fn start(dir: &Dir, target: SocketAddr) -> Option<Self> {
        Self::start_with_rules(dir, &[(target, "edge")], &[], "1s", &[])
    }

    /// Starts Prometheus scraping every target and evaluating the rules of `rule_files` every
    /// `interval` (`250ms`, `1s`), with `features` enabled (`native-histograms`); see
    /// [`start`](Self::start). Each target is labelled with its
    /// role (`vantage_role`: `edge` for a sidecar, `service`), as the shipped scrape
    /// configurations do, and its job is named after it.
    pub(crate) fn start_with_rules(
        dir: &Dir,
        targets: &[(SocketAddr, &str)],
        rule_files: &[&std::path::Path],
        interval: &str,
        features: &[&str],
    ) -> Option<Self> {
        let binary = crate::util::require("prometheus")?;
        let jobs: String = targets
            .iter()
            .map(|(target, role)| {
                format!(
                    "  - job_name: {role}-{port}\n    static_configs:\n      - targets: ['{target}']\n        labels: {{vantage_role: {role}}}\n",
                    port = target.port()
                )
            })
            .collect();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|path| format!("'{}'", path.display()))
            .collect();
        let config = dir.create(
            "prometheus.yml",
            format!(
                "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}\nrule_files: [{}]\nscrape_configs:\n{jobs}",
                rules.join(", "),
            ),
        );
        let addr = crate::util::free_port();
        let log = dir.join("prometheus.log");
        let stderr = std::fs::File::create(&log).expect("creating prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .args(
                features
                    .iter()
                    .map(|feature| format!("--enable-feature={feature}")),
            )
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting prometheus");
        let prometheus = Self { child, addr, log };
        let ready = poll_until(WAIT_LIMIT, || match get(addr, "/-/ready") {
            Ok(response) if response.status == 200 => Ok(()),
            Ok(response) => Err(format!("/-/ready: {} {}", response.status, response.text())),
            Err(error) => Err(format!("/-/ready: {error}")),
        });
        if let Err(error) = ready {
            panic!(
                "prometheus is not ready after {WAIT_LIMIT:?}: {error}\n--- prometheus log ---\n{}",
                prometheus.log()
            );
        }
        Some(prometheus)
    }

    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON of an API `path` (with its query), after checking it succeeded.
    pub(crate) fn api(&self, path: &str) -> serde_json::Value {
        let response =
            get(self.addr, path).unwrap_or_else(|error| panic!("prometheus {path}: {error}"));
        let body = response.json();
        assert_eq!(
            (response.status, body["status"].as_str()),
            (200, Some("success")),
            "prometheus {path}: {body}"
        );
        body
    }

    /// The instant vector `promql` evaluates to now: each series' labels (without `job`,
    /// `instance` and `vantage_role`, which the scrape adds) and value. Fails the test on an error.
    pub(crate) fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let response = get(self.addr, &path)
            .unwrap_or_else(|error| panic!("prometheus query {promql:?}: {error}"));
        let body = response.json();
        assert_eq!(
            (response.status, body["status"].as_str()),
            (200, Some("success")),
            "prometheus query {promql:?}: {body}"
        );
        let results = body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        results
            .iter()
            .map(|series| {
                let labels = series["metric"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(name, _)| {
                        !matches!(name.as_str(), "job" | "instance" | "vantage_role")
                    })
                    .map(|(name, value)| (name.clone(), value.as_str().unwrap_or("").to_owned()))
                    .collect();
                let value = series["value"][1]
                    .as_str()
                    .and_then(|value| value.parse().ok())
                    .unwrap_or_else(|| panic!("prometheus query {promql:?}: {series}"));
                (labels, value)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` percent-encoded for a URL query: every byte but the unreserved ones.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Calls `check` every [`POLL`] until it returns `Ok`, for at most `limit`; returns the last
/// error otherwise.
pub(crate) fn poll_until<T>(
    limit: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

#[test]
fn the_exposition_parser_reads_labels_escapes_and_values() {
    let exposition = Exposition::parse(
        "# HELP a A.\n# TYPE a counter\na{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\nb 2.5\nc_bucket{le=\"+Inf\"} 7\n"
            .to_owned(),
    );
    assert_eq!(exposition.samples.len(), 3);
    assert_eq!(exposition.count("a", &[("y", "q\"\\\n")]), 3);
    assert_eq!(exposition.value("b", &[]), Some(2.5));
    assert_eq!(exposition.count("c_bucket", &[("le", "+Inf")]), 7);
    assert_eq!(
        exposition.sum_by_label("a", "x"),
        BTreeMap::from([("1".to_owned(), 3)])
    );
    assert_eq!(
        exposition.sum_by_pair("a", ["x", "z"]),
        BTreeMap::from([(("1".to_owned(), String::new()), 3)])
    );
    assert_eq!(
        serving_address(" INFO serving on http://127.0.0.1:4321: /metrics /health"),
        Some(SocketAddr::from(([127, 0, 0, 1], 4321)))
    );
    assert_eq!(
        dechunk(b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"),
        (b"helloabc".to_vec(), true)
    );
    assert_eq!(percent_encode("resets(a_b[1s])"), "resets%28a_b%5B1s%5D%29");
    assert_eq!(clf_time(FIRST_LINE_TIME), "09/Mar/2025:12:00:00 +0000");
    assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
    assert_eq!(clf_time(951_782_399), "28/Feb/2000:23:59:59 +0000");
    assert_eq!(clf_time(951_782_400), "29/Feb/2000:00:00:00 +0000");
    assert_eq!(clf_time(1_709_251_199), "29/Feb/2024:23:59:59 +0000");
    assert_eq!(clf_time(4_102_444_800), "01/Jan/2100:00:00:00 +0000");
    assert_eq!(
        parse_events("event: summary\ndata: {}\n\nevent: x\n"),
        [("summary".to_owned(), "{}".to_owned())]
    );
}

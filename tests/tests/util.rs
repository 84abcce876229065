use std::future::Future;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use vantage_instrument::recorder::MetricsHandle;

/// Every wait in these tests is bounded by this.
pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// Serves `app` on a free loopback port until the test's runtime ends.
pub(crate) async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    });
    addr
}

/// A plain HTTP/1 client.
#[derive(Clone)]
pub(crate) struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl HttpClient {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            inner: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    /// Sends a request and reads the whole response; returns the status and body.
    pub(crate) async fn send(&self, method: &str, path: &str) -> (u16, Bytes) {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .body(Full::default())
            .expect("valid request");
        let response = bounded(self.inner.request(request))
            .await
            .expect("request succeeds");
        let status = response.status().as_u16();
        let body = bounded(response.into_body().collect())
            .await
            .expect("body reads")
            .to_bytes();
        (status, body)
    }

    pub(crate) async fn get(&self, path: &str) -> u16 {
        self.send("GET", path).await.0
    }
}

/// Awaits `future`, failing the test if it takes longer than [`WAIT_LIMIT`].
pub(crate) async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT_LIMIT, future)
        .await
        .expect("finished within the wait limit")
}

/// Polls `check` until it returns true, failing the test after [`WAIT_LIMIT`].
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads series back from a Prometheus exposition.
pub(crate) struct Exposition {
    text: String,
}

impl Exposition {
    pub(crate) fn of(handle: &MetricsHandle) -> Self {
        Self {
            text: handle.render(),
        }
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The value of a series written as rendered: `name{label="value",...}`.
    pub(crate) fn value(&self, series: &str) -> Option<f64> {
        self.text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok())?
            })
    }

    /// Requests recorded with these labels.
    pub(crate) fn requests(&self, method: &str, route: &str, status: &str, error: &str) -> u64 {
        self.value(&format!(
            "http_server_request_duration_seconds_count{{http_request_method=\"{method}\",\
             http_route=\"{route}\",http_response_status_code=\"{status}\",error_type=\"{error}\"}}"
        ))
        .map_or(0, |count| count as u64)
    }

    /// Summed duration of the requests recorded with these labels.
    pub(crate) fn duration_sum(&self, method: &str, route: &str, status: &str, error: &str) -> f64 {
        self.value(&format!(
            "http_server_request_duration_seconds_sum{{http_request_method=\"{method}\",\
             http_route=\"{route}\",http_response_status_code=\"{status}\",error_type=\"{error}\"}}"
        ))
        .unwrap_or(f64::NAN)
    }

    /// Every request recorded, whatever its labels.
    pub(crate) fn total_requests(&self) -> u64 {
        self.text
            .lines()
            .filter(|line| line.starts_with("http_server_request_duration_seconds_count{"))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// The number of distinct duration series.
    pub(crate) fn duration_series(&self) -> usize {
        self.text
            .lines()
            .filter(|line| line.starts_with("http_server_request_duration_seconds_count{"))
            .count()
    }

    pub(crate) fn active(&self, method: &str) -> f64 {
        self.value(&format!(
            "http_server_active_requests{{http_request_method=\"{method}\"}}"
        ))
        .unwrap_or(f64::NAN)
    }
}

/// Runs `promtool check metrics` on an exposition; returns its combined output on failure.
///
/// A missing promtool fails the test under CI (`CI` set) and skips the check otherwise.
pub(crate) fn promtool_check(exposition: &str) -> Result<(), String> {
    use std::io::Write;

    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not runnable ({error}); skipped outside CI");
            return Ok(());
        }
        Err(error) => return Err(format!("promtool not runnable under CI: {error}")),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool runs");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

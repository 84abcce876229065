//! Shared test setup: a private Prometheus recorder per test, read back through its exposition.

use vantage_instrument::PrometheusExporter;
use vantage_instrument::recorder::{MetricsHandle, VantageRecorder};

/// A recorder for one test and the handle that renders what it recorded.
pub(crate) fn recorder() -> (VantageRecorder, Scrape) {
    let recorder = PrometheusExporter::new().build_recorder();
    let scrape = Scrape {
        handle: recorder.handle(),
    };
    (recorder, scrape)
}

/// Reads series back from a recorder's exposition.
pub(crate) struct Scrape {
    handle: MetricsHandle,
}

impl Scrape {
    pub(crate) fn text(&self) -> String {
        self.handle.render()
    }

    /// The value of one series, written as it is rendered: `name{label="value",...}`.
    pub(crate) fn value(&self, series: &str) -> Option<f64> {
        let text = self.text();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok())?
            })
    }

    /// How many requests were recorded with these labels.
    pub(crate) fn requests(&self, method: &str, route: &str, status: &str, error: &str) -> u64 {
        self.value(&duration_series("count", method, route, status, error))
            .map_or(0, |count| count as u64)
    }

    /// The summed duration, in seconds, of the requests recorded with these labels.
    pub(crate) fn duration_sum(&self, method: &str, route: &str, status: &str, error: &str) -> f64 {
        self.value(&duration_series("sum", method, route, status, error))
            .unwrap_or(f64::NAN)
    }

    /// The in-flight gauge of a method.
    pub(crate) fn active(&self, method: &str) -> f64 {
        self.value(&format!(
            "http_server_active_requests{{http_request_method=\"{method}\"}}"
        ))
        .unwrap_or(f64::NAN)
    }

    /// The number of distinct duration series (label sets).
    pub(crate) fn duration_series_count(&self) -> usize {
        self.text()
            .lines()
            .filter(|line| line.starts_with("http_server_request_duration_seconds_count{"))
            .count()
    }
}

fn duration_series(suffix: &str, method: &str, route: &str, status: &str, error: &str) -> String {
    format!(
        "http_server_request_duration_seconds_{suffix}{{http_request_method=\"{method}\",\
         http_route=\"{route}\",http_response_status_code=\"{status}\",error_type=\"{error}\"}}"
    )
}

/// Log output captured from a `tracing-subscriber` fmt layer.
#[derive(Clone, Default)]
pub(crate) struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    /// The lines written so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8(bytes)
            .expect("utf-8 logs")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The log lines of this thread, until dropped: in the text format (ids through the
/// recommended `TraceIdFields` pair), in the JSON format, and in the text format again with
/// the ids added by the buffering `TraceIds::text`.
pub(crate) struct Capture {
    pub(crate) text: Logs,
    pub(crate) json: Logs,
    pub(crate) buffered: Logs,
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<(Logs, Logs, Logs)>> = const { std::cell::RefCell::new(None) };
}

/// Installs the test binary's global subscriber, once: text, JSON and buffered text fmt layers
/// (with the request's ids added by `TraceIdFields`, `TraceIds::json` and `TraceIds::text`)
/// that write to the [`Capture`] of the thread the event happens on, if any.
///
/// A global subscriber, not a per-test default: `tracing` caches each call site's interest
/// process-wide, and with a single thread-local subscriber a call site first reached on another
/// thread is cached as never enabled. Every test that runs code with `tracing` call sites of
/// interest calls this first.
pub(crate) fn install_subscriber() {
    use tracing_subscriber::layer::SubscriberExt;

    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .without_time()
                    .with_ansi(false)
                    .with_writer(ThreadLogs::Text)
                    .fmt_fields(crate::trace::TraceIdFields::default())
                    .map_event_format(crate::trace::TraceIds::after_fields),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .without_time()
                    .with_writer(ThreadLogs::Json)
                    .map_event_format(crate::trace::TraceIds::json),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .without_time()
                    .with_ansi(false)
                    .with_writer(ThreadLogs::Buffered)
                    .map_event_format(crate::trace::TraceIds::text),
            );
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

/// Captures the log lines of this thread until the returned [`Capture`] is dropped.
pub(crate) fn capture_logs() -> Capture {
    install_subscriber();
    let capture = Capture {
        text: Logs::default(),
        json: Logs::default(),
        buffered: Logs::default(),
    };
    CAPTURE.with(|slot| {
        *slot.borrow_mut() = Some((
            capture.text.clone(),
            capture.json.clone(),
            capture.buffered.clone(),
        ));
    });
    capture
}

/// Which capture buffer a fmt layer writes to.
#[derive(Clone, Copy)]
enum ThreadLogs {
    Text,
    Json,
    Buffered,
}

/// Writes into the current thread's capture buffer, or nowhere.
pub(crate) struct ThreadWriter(pub(crate) Option<Logs>);

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
            capture
                .borrow()
                .as_ref()
                .map(|(text, json, buffered)| match self {
                    Self::Text => text.clone(),
                    Self::Json => json.clone(),
                    Self::Buffered => buffered.clone(),
                })
        }))
    }
}

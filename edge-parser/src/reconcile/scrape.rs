//! Scraping the services' `/metrics` (feature `serve`): each URL every interval, every address
//! its host resolves to as an instance of its own, with a timeout, a size limit and a backoff
//! after failures; what each instance said last and how its scrapes went.
//!
//! Beside `/metrics`, each instance's slowest requests can be read from the same address
//! ([`Settings::slow_path`], such as `/debug/slow` where `vantage_tower::slow::SlowRequests`
//! serves them) for the trace join; a service without that page is only named, never failing.
//! Only when asked: a request to a page a service does not have is a request it counts.
//!
//! A service that cannot be scraped is never read as a service with no requests: its instance
//! keeps its last good scrape (with its time) and its failures are counted and named
//! ([`InstanceHealth`]), so whatever reads the scrapes can say `partial`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::service::ServiceScrape;
use super::trace_join::{MAX_DOCUMENT_BYTES, ServiceSlow};

/// How often each service is scraped by default.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(5);

/// How long one scrape may take, from the connect to the last byte.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest `/metrics` page read (Vantage's page for 1 000 routes is a few MiB).
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// The longest wait between attempts at an instance that keeps failing (the wait doubles from
/// the scrape interval).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The most instances (addresses of all URLs together) scraped.
pub const MAX_INSTANCES: usize = 64;

/// How the services are scraped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Time between two rounds.
    pub interval: Duration,
    /// The path of each instance's slowest requests (`None`, the default: not read).
    pub slow_path: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_SCRAPE_INTERVAL,
            slow_path: None,
        }
    }
}

/// Why a scrape failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeError {
    /// The URL is not `http://host[:port]/path`.
    #[error("not an http:// URL: {0}")]
    Url(String),
    /// The host name could not be resolved, or resolved to nothing.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// No connection.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The request or the response failed midway.
    #[error("HTTP: {0}")]
    Http(String),
    /// Not answered within [`SCRAPE_TIMEOUT`].
    #[error("no answer within {} s", SCRAPE_TIMEOUT.as_secs())]
    Timeout,
    /// Answered with another status than 200.
    #[error("answered {0}")]
    Status(u16),
    /// The page is larger than its limit ([`MAX_PAGE_BYTES`] for `/metrics`).
    #[error("page larger than the limit")]
    TooLarge,
    /// The page is not UTF-8 text.
    #[error("page is not UTF-8 text")]
    NotText,
}

/// A URL to scrape, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: Uri,
    host: String,
    port: u16,
}

impl Target {
    /// Checks `url`: `http://host[:port][/path]` (no TLS: the services are in the same pod or
    /// network as the sidecar).
    ///
    /// # Errors
    ///
    /// Another scheme, no host, or not a URL.
    pub fn parse(url: &str) -> Result<Self, ScrapeError> {
        let invalid = || ScrapeError::Url(url.to_owned());
        let parsed: Uri = url.parse().map_err(|_| invalid())?;
        if parsed.scheme_str() != Some("http") {
            return Err(invalid());
        }
        let host = parsed.host().ok_or_else(invalid)?.to_owned();
        let port = parsed.port_u16().unwrap_or(80);
        Ok(Self {
            url: parsed,
            host,
            port,
        })
    }

    /// The URL as given.
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// Every address the host resolves to, sorted: each one is an instance.
    async fn resolve(&self) -> Result<Vec<SocketAddr>, ScrapeError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let resolved = tokio::net::lookup_host((host, self.port))
            .await
            .map_err(|error| ScrapeError::Resolve {
                host: self.host.clone(),
                reason: error.to_string(),
            })?;
        let mut addresses: Vec<SocketAddr> = resolved.collect();
        addresses.sort();
        addresses.dedup();
        if addresses.is_empty() {
            return Err(ScrapeError::Resolve {
                host: self.host.clone(),
                reason: "no address".to_owned(),
            });
        }
        Ok(addresses)
    }
}

/// Scrapes `target` at `address` once: GET its path with its `Host`, within [`SCRAPE_TIMEOUT`].
///
/// # Errors
///
/// See [`ScrapeError`].
pub async fn scrape(target: &Target, address: SocketAddr) -> Result<ServiceScrape, ScrapeError> {
    let path = target
        .url
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let page = tokio::time::timeout(SCRAPE_TIMEOUT, fetch(target, address, path, MAX_PAGE_BYTES))
        .await
        .map_err(|_| ScrapeError::Timeout)??;
    String::from_utf8(page)
        .map(|text| ServiceScrape::read(&text))
        .map_err(|_| ScrapeError::NotText)
}

/// Reads the slowest requests of `target`'s instance at `address` from `path`, within
/// [`SCRAPE_TIMEOUT`].
///
/// # Errors
///
/// Why not, in words: the fetch failed (see [`ScrapeError`]; a service without the page
/// answers 404), or the page is not the document.
pub async fn slowest(
    target: &Target,
    address: SocketAddr,
    path: &str,
) -> Result<ServiceSlow, String> {
    let page = tokio::time::timeout(
        SCRAPE_TIMEOUT,
        fetch(target, address, path, MAX_DOCUMENT_BYTES),
    )
    .await
    .map_err(|_| ScrapeError::Timeout.to_string())?
    .map_err(|error| error.to_string())?;
    ServiceSlow::read(&page).map_err(|error| format!("{path}: {error}"))
}

/// GETs `path` from `address` with `target`'s `Host`: the body, up to `limit` bytes.
async fn fetch(
    target: &Target,
    address: SocketAddr,
    path: &str,
    limit: usize,
) -> Result<Vec<u8>, ScrapeError> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|error| ScrapeError::Connect(error.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| ScrapeError::Http(error.to_string()))?;
    let connection = tokio::spawn(connection);
    let authority = target
        .url
        .authority()
        .map_or_else(|| target.host.clone(), ToString::to_string);
    let request = Request::get(path)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "text/plain")
        .header(header::USER_AGENT, "edge-parser")
        .body(Empty::<Bytes>::new())
        .map_err(|error| ScrapeError::Http(error.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| ScrapeError::Http(error.to_string()))?;
    if response.status() != StatusCode::OK {
        connection.abort();
        return Err(ScrapeError::Status(response.status().as_u16()));
    }
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                ScrapeError::TooLarge
            } else {
                ScrapeError::Http(error.to_string())
            }
        })?
        .to_bytes();
    connection.abort();
    Ok(body.to_vec())
}

/// How an instance's scrapes went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceHealth {
    /// Scrapes that succeeded.
    pub successes: u64,
    /// Scrapes that failed.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last failure's reason, until a success.
    pub last_error: Option<String>,
    /// When the last success ended (seconds since the epoch).
    pub last_success_unix: Option<u64>,
}

/// One instance: what it said last and how its scrapes went.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    /// The last good scrape, kept while later ones fail.
    pub last: Option<Arc<ServiceScrape>>,
    /// The scrapes' record.
    pub health: InstanceHealth,
    /// Its slowest requests as last read with a successful scrape, or why they could not be.
    pub slow: Option<Result<Arc<ServiceSlow>, String>>,
    next_attempt: Option<Instant>,
}

/// Every instance of every URL, keyed by `(URL, address)`; URLs that cannot be resolved appear
/// with no address (`None`).
pub type Scrapes = BTreeMap<(String, Option<SocketAddr>), Instance>;

impl Instance {
    fn succeeded(&mut self, scrape: ServiceScrape) {
        self.last = Some(Arc::new(scrape));
        self.health.successes += 1;
        self.health.consecutive_failures = 0;
        self.health.last_error = None;
        self.health.last_success_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|since| since.as_secs());
        self.next_attempt = None;
    }

    fn failed(&mut self, error: &ScrapeError, interval: Duration, now: Instant) {
        self.health.failures += 1;
        self.health.consecutive_failures = self.health.consecutive_failures.saturating_add(1);
        self.health.last_error = Some(error.to_string());
        // The first failure is retried at the next round; then the wait doubles, up to the cap.
        let doublings = self.health.consecutive_failures.saturating_sub(1).min(16);
        let wait = interval.saturating_mul(1 << doublings).min(MAX_BACKOFF);
        self.next_attempt = (doublings > 0).then(|| now + wait);
    }

    fn due(&self, now: Instant) -> bool {
        self.next_attempt.is_none_or(|at| now >= at)
    }
}

/// Scrapes `targets` every `interval` until `stop` is dropped or set, publishing every round's
/// state on `published`.
pub async fn run(
    targets: Vec<Target>,
    settings: Settings,
    published: watch::Sender<Arc<Scrapes>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut scrapes = Scrapes::new();
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
                continue;
            }
        }
        scrape_round(&targets, &settings, &mut scrapes).await;
        published.send_replace(Arc::new(scrapes.clone()));
    }
}

/// One round: resolves every target and scrapes every due instance, concurrently (and reads
/// the slowest requests of each one scraped).
pub async fn scrape_round(targets: &[Target], settings: &Settings, scrapes: &mut Scrapes) {
    let interval = settings.interval;
    let now = Instant::now();
    let mut due = Vec::new();
    for target in targets {
        let url = target.url();
        match target.resolve().await {
            Ok(addresses) => {
                // A name that no longer resolves to an address drops that instance.
                scrapes.retain(|(known, address), _| {
                    *known != url || address.is_some_and(|a| addresses.contains(&a))
                });
                for address in addresses {
                    let key = (url.clone(), Some(address));
                    if !scrapes.contains_key(&key) && scrapes.len() >= MAX_INSTANCES {
                        continue;
                    }
                    if scrapes.entry(key).or_default().due(now) {
                        due.push((target.clone(), address));
                    }
                }
            }
            Err(error) => {
                scrapes
                    .entry((url, None))
                    .or_default()
                    .failed(&error, interval, now);
            }
        }
    }
    let mut running = tokio::task::JoinSet::new();
    for (target, address) in due {
        let slow_path = settings.slow_path.clone();
        running.spawn(async move {
            let result = scrape(&target, address).await;
            let slow = match (&result, slow_path) {
                (Ok(_), Some(path)) => Some(slowest(&target, address, &path).await.map(Arc::new)),
                _ => None,
            };
            ((target.url(), Some(address)), result, slow)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = running.join_next().await {
        if let Ok(done) = done {
            results.push(done);
        }
    }
    for (key, result, slow) in results {
        let instance = scrapes.entry(key).or_default();
        match result {
            Ok(scrape) => {
                instance.succeeded(scrape);
                instance.slow = slow;
            }
            Err(error) => instance.failed(&error, interval, now),
        }
    }
}

/// Appends the scrape families to an exposition: every instance's successes and failures
/// (`edge_service_scrapes_total`) and whether its last scrape succeeded (`edge_service_up`).
pub fn render(scrapes: &Scrapes, out: &mut String) {
    use crate::export::prometheus::{family, sample};
    use vantage_instrument::names::{EDGE_SERVICE_SCRAPES_TOTAL, EDGE_SERVICE_UP};
    if scrapes.is_empty() {
        return;
    }
    let instances: Vec<(&str, String, &Instance)> = scrapes
        .iter()
        .map(|((url, address), instance)| {
            let address = address.map_or_else(|| "(unresolved)".to_owned(), |a| a.to_string());
            (url.as_str(), address, instance)
        })
        .collect();
    family(
        out,
        EDGE_SERVICE_SCRAPES_TOTAL,
        "counter",
        "Scrapes of the services' /metrics since this process started, by URL, address and result.",
    );
    for (url, address, instance) in &instances {
        for (result, count) in [
            ("success", instance.health.successes),
            ("failure", instance.health.failures),
        ] {
            let labels = [
                ("url", *url),
                ("instance", address.as_str()),
                ("result", result),
            ];
            sample(out, EDGE_SERVICE_SCRAPES_TOTAL, &labels, count as f64);
        }
    }
    family(
        out,
        EDGE_SERVICE_UP,
        "gauge",
        "1 when the last scrape of a service instance succeeded, 0 when it failed.",
    );
    for (url, address, instance) in &instances {
        let up = instance.health.successes > 0 && instance.health.consecutive_failures == 0;
        let labels = [("url", *url), ("instance", address.as_str())];
        sample(out, EDGE_SERVICE_UP, &labels, f64::from(u8::from(up)));
    }
}

/// The route templates of every instance's last good scrape, together.
pub fn templates(scrapes: &Scrapes) -> std::collections::BTreeSet<String> {
    scrapes
        .values()
        .filter_map(|instance| instance.last.as_deref())
        .flat_map(|scrape| scrape.templates().map(str::to_owned))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .take(super::service::MAX_ROUTES)
        .collect()
}

#[cfg(test)]
mod tests;

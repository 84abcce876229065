//! Deterministic synthetic access logs, with the ground truth of every line.
//!
//! A [`Generator`] draws requests from a seeded model (weighted routes with id-like path
//! segments, a status mix, per-route latency distributions, Poisson arrivals, upstream retries
//! and internal redirects, IPv4/IPv6 clients, user agents with quotes and backslashes) and
//! writes each one as a line of the chosen [`Format`]. Each [`SynthLine`] carries its
//! [`Truth`]: the [`Request`] with every generated field, or the kind of malformed or filtered
//! line it is. [`Request::expected`] is the [`Record`] a correct parser returns for that line in
//! a given format (the format's resolution and vocabulary applied), so tests can assert exact
//! counts and percentiles. The same seed and configuration always give the same bytes.
//!
//! Per-format conventions of the model: lines are written in arrival order, stamped with the
//! request start (Traefik, Envoy, HAProxy) or end (nginx, ingress-nginx, Caddy), all in UTC. A
//! request the client abandoned (status 499) is logged as `0` by Envoy and `-1` by HAProxy.
//! Names derived from a router `users-api@kubernetescrd`: service `users-api-svc@kubernetescrd`,
//! host `users-api.example.com`, ingress-nginx upstream `default-users-api-80`, HAProxy backend
//! `be_users_api`. A request no router matched (a scanner probe) has no router: Traefik's `-`,
//! ingress-nginx's `upstream-default-backend`, HAProxy's `be_default`.
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::{Format, Parsed};
//! use vantage_edge::synth::{Generator, SynthConfig, Truth};
//!
//! let config = SynthConfig::new().seed(7).malformed_rate(0.01);
//! for line in Generator::new(Format::TraefikCommon, config).take(1000) {
//!     let parsed = Format::TraefikCommon.parse(&line.text);
//!     match &line.truth {
//!         Truth::Request(request) => {
//!             let expected = request.expected(&Format::TraefikCommon);
//!             assert_eq!(parsed, Ok(Parsed::Record(expected)));
//!         }
//!         Truth::Malformed(_) => assert!(parsed.is_err()),
//!         Truth::Filtered => assert!(matches!(parsed, Ok(Parsed::Filtered(_)))),
//!     }
//! }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use fastrand::Rng;

use crate::format::{Format, LogFormat, Record, RecordField, Status, Timestamp, civil_from_days};

const NANOS_PER_SEC: i64 = 1_000_000_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
/// Header bytes added to the body size for nginx's `$bytes_sent`.
const HEADER_BYTES: u64 = 180;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A latency distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Latency {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between `min` and `max`.
    Uniform {
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
    /// Log-normal: `median × e^(sigma × N(0, 1))`.
    LogNormal {
        /// The median.
        median: Duration,
        /// Spread of the underlying normal (0.5 is narrow, 1.2 has a long tail).
        sigma: f64,
    },
}

impl Latency {
    fn sample_ns(self, rng: &mut Rng) -> f64 {
        match self {
            Self::Fixed(d) => d.as_nanos() as f64,
            Self::Uniform { min, max } => {
                let (min, max) = (min.as_nanos() as f64, max.as_nanos() as f64);
                min + (max - min).max(0.0) * rng.f64()
            }
            Self::LogNormal { median, sigma } => {
                median.as_nanos() as f64 * (sigma * standard_normal(rng)).exp()
            }
        }
    }
}

/// A standard normal variate (Box–Muller).
fn standard_normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One route: the router that serves it, a path template and its share of the traffic.
///
/// Templates may hold id-like placeholders: `{id}` (a decimal id), `{uuid}`, `{hex}` (ten hex
/// digits), `{slug}` (a word, sometimes percent-encoded) and `{n}` (a small number).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    router: String,
    template: String,
    weight: u32,
    latency: Latency,
    service: bool,
}

impl Route {
    /// A route of `router` (`name@provider`, as Traefik names routers) for `template`, with
    /// weight 1 and a log-normal latency of median 20 ms.
    #[must_use]
    pub fn new(router: &str, template: &str) -> Self {
        Self {
            router: router.to_owned(),
            template: template.to_owned(),
            weight: 1,
            latency: Latency::LogNormal {
                median: Duration::from_millis(20),
                sigma: 0.7,
            },
            service: true,
        }
    }

    /// Sets the relative share of traffic.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the latency distribution of successful requests.
    #[must_use]
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Makes the proxy answer this route itself (a redirect router): no service, no upstream,
    /// status 301 or 308.
    #[must_use]
    pub fn without_service(mut self) -> Self {
        self.service = false;
        self
    }

    /// The router name.
    #[must_use]
    pub fn router(&self) -> &str {
        &self.router
    }

    /// The path template.
    #[must_use]
    pub fn template(&self) -> &str {
        &self.template
    }

    /// A realistic set of 20 routes over 10 routers (APIs, static assets, media, a slow
    /// report service, a health check, a redirect router).
    #[must_use]
    pub fn default_set() -> Vec<Self> {
        let lognormal = |ms: f64, sigma: f64| Latency::LogNormal {
            median: Duration::from_secs_f64(ms / 1000.0),
            sigma,
        };
        let k8s = |name: &str| format!("{name}@kubernetescrd");
        let web = lognormal(18.0, 0.7);
        let users = lognormal(12.0, 0.8);
        let orders = lognormal(45.0, 0.9);
        let catalog = lognormal(25.0, 0.6);
        let media = lognormal(6.0, 1.1);
        vec![
            Self::new(&k8s("web-frontend"), "/")
                .weight(300)
                .latency(web),
            Self::new(&k8s("web-frontend"), "/static/js/app.{hex}.js")
                .weight(250)
                .latency(web),
            Self::new(&k8s("web-frontend"), "/products/{slug}")
                .weight(120)
                .latency(web),
            Self::new(&k8s("users-api"), "/users/{id}")
                .weight(400)
                .latency(users),
            Self::new(&k8s("users-api"), "/users/{id}/profile")
                .weight(150)
                .latency(users),
            Self::new(&k8s("users-api"), "/users/me")
                .weight(250)
                .latency(users),
            Self::new(&k8s("orders-api"), "/orders/{id}")
                .weight(200)
                .latency(orders),
            Self::new(&k8s("orders-api"), "/orders")
                .weight(100)
                .latency(orders),
            Self::new(&k8s("orders-api"), "/orders/{uuid}/status")
                .weight(50)
                .latency(orders),
            Self::new(&k8s("catalog-api"), "/catalog/items/{id}")
                .weight(250)
                .latency(catalog),
            Self::new(&k8s("catalog-api"), "/catalog/search")
                .weight(150)
                .latency(catalog),
            Self::new("auth@file", "/auth/token")
                .weight(120)
                .latency(lognormal(35.0, 0.5)),
            Self::new("auth@file", "/auth/login")
                .weight(80)
                .latency(lognormal(35.0, 0.5)),
            Self::new(&k8s("payments-api"), "/payments/{uuid}")
                .weight(60)
                .latency(lognormal(150.0, 0.8)),
            Self::new("media@docker", "/media/img/{hex}.jpg")
                .weight(180)
                .latency(media),
            Self::new("media@docker", "/media/video/{id}/segment-{n}.ts")
                .weight(60)
                .latency(media),
            Self::new(&k8s("reports"), "/reports/{id}")
                .weight(15)
                .latency(lognormal(900.0, 1.0)),
            Self::new("health@internal", "/healthz")
                .weight(100)
                .latency(lognormal(0.6, 0.4)),
            Self::new("health@internal", "/healthz/ready")
                .weight(60)
                .latency(lognormal(0.6, 0.4)),
            Self::new("redirect-to-https@file", "/legacy/{slug}")
                .weight(20)
                .latency(lognormal(0.06, 0.4))
                .without_service(),
        ]
    }
}

/// Relative weights of the statuses of requests that reach a service.
///
/// Some statuses shape the request: 502 is a fast upstream failure (sometimes retried), 503 has
/// no healthy upstream, 504 is an upstream timeout (30 s), 499 a client that gave up. Requests
/// to a [`without_service`](Route::without_service) route are 301/308 and scanner probes
/// 404/403 whatever the mix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMix(Vec<(i16, u32)>);

impl StatusMix {
    /// A mix from `(status, weight)` pairs; an empty or all-zero mix means every status is 200.
    #[must_use]
    pub fn new(weights: Vec<(i16, u32)>) -> Self {
        Self(weights)
    }

    fn pick(&self, rng: &mut Rng) -> i16 {
        let total: u64 = self.0.iter().map(|&(_, w)| u64::from(w)).sum();
        if total == 0 {
            return 200;
        }
        let mut ticket = rng.u64(0..total);
        for &(status, weight) in &self.0 {
            if ticket < u64::from(weight) {
                return status;
            }
            ticket -= u64::from(weight);
        }
        200
    }
}

impl Default for StatusMix {
    /// About 94 % 2xx, 3 % 3xx, 6 % 4xx (0.3 % 499), 0.9 % 5xx.
    fn default() -> Self {
        Self(vec![
            (200, 8600),
            (201, 250),
            (204, 150),
            (206, 40),
            (301, 60),
            (302, 60),
            (304, 170),
            (400, 50),
            (401, 90),
            (403, 40),
            (404, 120),
            (422, 20),
            (429, 30),
            (499, 30),
            (500, 40),
            (502, 25),
            (503, 15),
            (504, 10),
        ])
    }
}

/// What to generate. Consuming setters; [`Default`] is seed 1, 2000 requests/s from
/// 2025-03-09T12:00:00Z, [`Route::default_set`], [`StatusMix::default`], no malformed or
/// filtered lines.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    seed: u64,
    start_unix_secs: i64,
    rps: f64,
    routes: Vec<Route>,
    status_mix: StatusMix,
    malformed_rate: f64,
    filtered_rate: f64,
    odd_rate: f64,
    query_rate: f64,
    scanner_rate: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            start_unix_secs: 1_741_521_600,
            rps: 2000.0,
            routes: Route::default_set(),
            status_mix: StatusMix::default(),
            malformed_rate: 0.0,
            filtered_rate: 0.0,
            odd_rate: 0.002,
            query_rate: 0.15,
            scanner_rate: 0.004,
        }
    }
}

impl SynthConfig {
    /// The default configuration.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the seed: the same seed gives the same lines.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the arrival time of the first request.
    #[must_use]
    pub fn start_unix_secs(mut self, secs: i64) -> Self {
        self.start_unix_secs = secs;
        self
    }

    /// Sets the mean request rate (Poisson arrivals); values below 0.001 are raised to it.
    #[must_use]
    pub fn rps(mut self, rps: f64) -> Self {
        self.rps = rps.max(0.001);
        self
    }

    /// Sets the routes; an empty list means [`Route::default_set`].
    #[must_use]
    pub fn routes(mut self, routes: Vec<Route>) -> Self {
        self.routes = if routes.is_empty() {
            Route::default_set()
        } else {
            routes
        };
        self
    }

    /// Sets the status mix.
    #[must_use]
    pub fn status_mix(mut self, mix: StatusMix) -> Self {
        self.status_mix = mix;
        self
    }

    /// Sets the fraction of lines that are malformed (truncated, binary junk, foreign log
    /// lines, two lines glued together), clamped to 0–1.
    #[must_use]
    pub fn malformed_rate(mut self, rate: f64) -> Self {
        self.malformed_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the fraction of lines that are filtered lines of the format (Caddy entries of other
    /// loggers, non-HTTP syslog messages and TCP logs for HAProxy), clamped to 0–1. Formats
    /// without filtered lines ignore it.
    #[must_use]
    pub fn filtered_rate(mut self, rate: f64) -> Self {
        self.filtered_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the fraction of requests with unusual but valid content (quotes, backslashes and
    /// non-ASCII in targets and user agents, router names with spaces, `->` and quotes,
    /// `X-Forwarded-For` lists, header captures, Traefik v2 `ServiceURL` objects), clamped to
    /// 0–1. Default 0.002.
    #[must_use]
    pub fn odd_rate(mut self, rate: f64) -> Self {
        self.odd_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the fraction of targets with a query string, clamped to 0–1. Default 0.15.
    #[must_use]
    pub fn query_rate(mut self, rate: f64) -> Self {
        self.query_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Sets the fraction of requests that are scanner probes (`/.env`, `/wp-login.php`),
    /// half of which no router matches, clamped to 0–1. Default 0.004.
    #[must_use]
    pub fn scanner_rate(mut self, rate: f64) -> Self {
        self.scanner_rate = rate.clamp(0.0, 1.0);
        self
    }
}

/// HTTP version of a request; each format spells it its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTP/1.1.
    Http11,
    /// HTTP/2.
    Http2,
    /// HTTP/3.
    Http3,
}

impl HttpVersion {
    /// `HTTP/1.1`, `HTTP/2.0`, `HTTP/3.0` (Go, nginx, HAProxy, Caddy).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http11 => "HTTP/1.1",
            Self::Http2 => "HTTP/2.0",
            Self::Http3 => "HTTP/3.0",
        }
    }

    /// `HTTP/1.1`, `HTTP/2`, `HTTP/3` (Envoy).
    #[must_use]
    pub const fn as_envoy_str(self) -> &'static str {
        match self {
            Self::Http11 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
            Self::Http3 => "HTTP/3",
        }
    }
}

/// One upstream attempt of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The server, `ip:port`.
    pub addr: String,
    /// Index of the server among the router's servers.
    pub server: usize,
    /// Time spent on this attempt.
    pub duration_ns: u64,
    /// The status the server answered; `None` when it did not (timeout, client gone).
    pub status: Option<i16>,
    /// Response bytes from the server.
    pub bytes: u64,
    /// This attempt follows an internal redirect (a new group in nginx's lists).
    pub after_redirect: bool,
}

/// A generated request: the ground truth behind a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// When the request arrived.
    pub start: Timestamp,
    /// Total duration.
    pub duration_ns: u64,
    /// The method.
    pub method: &'static str,
    /// The target as sent: path with ids filled in, and query.
    pub target: String,
    /// The route template the target was made from (`/users/{id}`); empty for a scanner
    /// probe.
    pub route: String,
    /// The HTTP version.
    pub version: HttpVersion,
    /// The status sent to the client.
    pub status: i16,
    /// Response body bytes.
    pub bytes_sent: u64,
    /// The router (`users-api@kubernetescrd`); `None` when no router matched.
    pub router: Option<String>,
    /// The service (`users-api-svc@kubernetescrd`); `None` when the proxy answered itself.
    pub service: Option<String>,
    /// The requested host.
    pub host: String,
    /// Upstream attempts in order; empty when no upstream was contacted.
    pub attempts: Vec<Attempt>,
    /// The client as the proxy logs it: an address, or an `X-Forwarded-For` list.
    pub client: String,
    /// The client's port.
    pub client_port: u16,
    /// The basic-auth user.
    pub user: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The `Referer` header.
    pub referer: Option<&'static str>,
    /// Traefik's per-process request counter.
    pub request_count: u64,
    /// Request id (`X-Request-ID`, `$req_id`).
    pub request_id: u128,
    /// Request body bytes.
    pub bytes_received: u64,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// Whether the line uses unusual but valid spellings (v2 `ServiceURL` object, header
    /// captures).
    pub odd: bool,
}

/// What a generated line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Truth {
    /// A request line.
    Request(Box<Request>),
    /// A malformed line.
    Malformed(MalformedKind),
    /// A line the format's parser filters out.
    Filtered,
}

/// How a malformed line was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MalformedKind {
    /// A request line cut short (15–65 % of it kept).
    Truncated,
    /// Random printable and high bytes.
    Binary,
    /// A line from another log stream (the proxy's own log, an error log).
    Foreign,
    /// The start of one line (30–70 %) glued to a whole other line.
    Interleaved,
}

impl MalformedKind {
    /// `truncated`, `binary`, `foreign`, `interleaved`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::Binary => "binary",
            Self::Foreign => "foreign",
            Self::Interleaved => "interleaved",
        }
    }
}

impl fmt::Display for MalformedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One generated line (without its `\n`) and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthLine {
    /// The line's bytes.
    pub text: Vec<u8>,
    /// What the line is.
    pub truth: Truth,
}

/// A whole generated log: newline-terminated lines and the truth of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthLog {
    /// The log, every line ending in `\n`.
    pub text: Vec<u8>,
    /// The truth of each line, in order.
    pub lines: Vec<Truth>,
}

/// Generates `lines` lines of `format` into one buffer.
#[must_use]
pub fn generate(format: &Format, config: &SynthConfig, lines: usize) -> SynthLog {
    let mut log = SynthLog {
        text: Vec::new(),
        lines: Vec::with_capacity(lines),
    };
    for line in Generator::new(format.clone(), config.clone()).take(lines) {
        log.text.extend_from_slice(&line.text);
        log.text.push(b'\n');
        log.lines.push(line.truth);
    }
    log
}

/// An endless, deterministic stream of [`SynthLine`]s of one format.
#[derive(Debug)]
pub struct Generator {
    format: Format,
    config: SynthConfig,
    rng: Rng,
    now_ns: i64,
    request_count: u64,
    clients: Vec<String>,
    route_total: u64,
}

const METHODS: [(&str, u32); 7] = [
    ("GET", 760),
    ("POST", 120),
    ("PUT", 40),
    ("DELETE", 25),
    ("PATCH", 20),
    ("HEAD", 20),
    ("OPTIONS", 15),
];

const USER_AGENTS: [(&str, u32); 13] = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        30,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        12,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        8,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        14,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
        10,
    ),
    ("okhttp/4.12.0", 5),
    ("Go-http-client/1.1", 4),
    ("python-requests/2.31.0", 3),
    ("curl/8.5.0", 2),
    ("kube-probe/1.29", 3),
    ("Prometheus/2.51.0", 2),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        2,
    ),
    ("", 1),
];

/// User agents of odd requests: quotes, backslashes, non-ASCII.
const ODD_USER_AGENTS: [&str; 3] = [
    r#"Mozilla/5.0 "quoted" (evil; x\y) probe"#,
    "Dalvik/2.1.0 (Linux; U; Android 9; Redmi Note 8 Build/PKQ1) caf\u{e9}",
    r"tab\there and a trailing backslash\ inside",
];

const REFERERS: [(&str, u32); 4] = [
    ("", 60),
    ("https://www.example.com/", 20),
    ("https://www.google.com/", 12),
    ("https://www.example.com/products/blue-widget", 8),
];

const SLUGS: [&str; 8] = [
    "blue-widget",
    "red-gadget",
    "summer-sale",
    "gift-card",
    "green%20tea",
    "caf%C3%A9-latte",
    "garden-tools",
    "usb-c-cable",
];

const SCANNER_PATHS: [&str; 6] = [
    "/.env",
    "/wp-login.php",
    "/.git/config",
    "/phpmyadmin/index.php",
    "/cgi-bin/luci/;stok=/locale",
    "/%2e%2e/%2e%2e/etc/passwd",
];

/// Odd router names (Traefik allows spaces, v3.6 joins layers with ` -> `).
const ODD_ROUTERS: [&str; 3] = [
    "testRouter with space@file",
    "api@file -> users-api@kubernetescrd",
    "quote\"d@file",
];

fn weighted<T: Copy>(rng: &mut Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|&(_, w)| w).sum();
    let mut ticket = rng.u32(0..total.max(1));
    for &(item, weight) in items {
        if ticket < weight {
            return item;
        }
        ticket -= weight;
    }
    items[0].0
}

impl Generator {
    /// A generator of `format` lines.
    #[must_use]
    pub fn new(format: Format, config: SynthConfig) -> Self {
        let mut rng = Rng::with_seed(config.seed);
        let clients = (0..512)
            .map(|_| {
                if rng.f64() < 0.1 {
                    format!(
                        "2001:db8:{:x}:{:x}::{:x}",
                        rng.u16(1..),
                        rng.u16(..),
                        rng.u16(1..)
                    )
                } else {
                    format!(
                        "{}.{}.{}.{}",
                        [81, 93, 185, 203, 198, 100, 46, 89][rng.usize(..8)],
                        rng.u8(..),
                        rng.u8(..),
                        rng.u8(1..255)
                    )
                }
            })
            .collect();
        let route_total = config.routes.iter().map(|r| u64::from(r.weight)).sum();
        Self {
            now_ns: config.start_unix_secs.saturating_mul(NANOS_PER_SEC),
            format,
            config,
            rng,
            request_count: 0,
            clients,
            route_total,
        }
    }

    /// The format lines are written in.
    #[must_use]
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Draws the next request (without writing it).
    pub fn next_request(&mut self) -> Request {
        let route = self.pick_route();
        let rng = &mut self.rng;
        let gap = -(1.0 - rng.f64()).ln() / self.config.rps;
        self.now_ns = self.now_ns.saturating_add((gap * 1e9) as i64);
        self.request_count += 1;
        let odd = rng.f64() < self.config.odd_rate;
        let scanner = rng.f64() < self.config.scanner_rate;
        let (target, template) = if scanner {
            (
                SCANNER_PATHS[rng.usize(..SCANNER_PATHS.len())].to_owned(),
                String::new(),
            )
        } else {
            (fill_template(rng, &route.template), route.template.clone())
        };
        let mut target = target;
        if !scanner && rng.f64() < self.config.query_rate {
            target.push_str(&format!(
                "?page={}&limit={}",
                rng.u32(1..50),
                [10, 20, 50, 100][rng.usize(..4)]
            ));
        }
        if odd && rng.bool() {
            target.push_str(["?q=\"x\"&b=\\y", "?q=caf\u{e9}", "?x={a|b}#1"][rng.usize(..3)]);
        }
        let asset = template.contains('.') || scanner;
        let method = if asset || !route.service {
            "GET"
        } else {
            weighted(rng, &METHODS)
        };
        let no_router = scanner && rng.bool();
        let mut router = (!no_router).then(|| route.router.clone());
        if odd && router.is_some() && rng.bool() {
            router = Some(ODD_ROUTERS[rng.usize(..ODD_ROUTERS.len())].to_owned());
        }
        let base = router.as_deref().map(base_name).unwrap_or("default");
        let host = format!("{}.example.com", sanitize(base, '-'));
        let has_service = route.service && !no_router;
        let service = (has_service && router.is_some()).then(|| {
            let router = router.as_deref().unwrap_or_default();
            match router.split_once('@') {
                Some((name, provider)) => format!("{name}-svc@{provider}"),
                None => format!("{router}-svc"),
            }
        });
        let status = if scanner {
            if rng.f64() < 0.9 { 404 } else { 403 }
        } else if !route.service {
            if rng.f64() < 0.7 { 301 } else { 308 }
        } else {
            self.config.status_mix.pick(rng)
        };
        let duration_ns = latency_ns(rng, route.latency, status, has_service);
        let bytes_sent = if matches!(status, 204 | 304) || method == "HEAD" {
            0
        } else if status >= 300 {
            [0, 19, 162, 548][rng.usize(..4)]
        } else {
            Latency::LogNormal {
                median: Duration::from_nanos(1500),
                sigma: 1.2,
            }
            .sample_ns(rng) as u64
        };
        let servers = 1 + base.len() % 3;
        let attempts = if has_service {
            make_attempts(rng, status, duration_ns, bytes_sent, servers, base)
        } else {
            Vec::new()
        };
        let client = self.clients
            [(rng.f64().powi(2) * self.clients.len() as f64) as usize % self.clients.len()]
        .clone();
        let client = if odd && rng.bool() {
            format!("{client}, 10.0.{}.{}", rng.u8(..), rng.u8(1..255))
        } else {
            client
        };
        let user_agent = if odd && rng.bool() {
            Some(ODD_USER_AGENTS[rng.usize(..ODD_USER_AGENTS.len())].to_owned())
        } else {
            Some(weighted(rng, &USER_AGENTS))
                .filter(|ua| !ua.is_empty())
                .map(str::to_owned)
        };
        let referer = Some(weighted(rng, &REFERERS)).filter(|r| !r.is_empty());
        let version = match rng.u8(..10) {
            0..=4 => HttpVersion::Http2,
            5 => HttpVersion::Http3,
            _ => HttpVersion::Http11,
        };
        Request {
            start: Timestamp::from_unix_nanos(self.now_ns),
            duration_ns,
            method,
            target,
            route: template,
            version,
            status,
            bytes_sent,
            router,
            service,
            host,
            attempts,
            client,
            client_port: rng.u16(1024..),
            user: (rng.f64() < 0.002).then(|| "alice".to_owned()),
            user_agent,
            referer,
            request_count: self.request_count,
            request_id: rng.u128(..),
            bytes_received: if matches!(method, "POST" | "PUT" | "PATCH") {
                rng.u64(20..4000)
            } else {
                0
            },
            tls: rng.f64() < 0.8,
            odd,
        }
    }

    fn pick_route(&mut self) -> Route {
        let mut ticket = self.rng.u64(0..self.route_total.max(1));
        for route in &self.config.routes {
            if ticket < u64::from(route.weight) {
                return route.clone();
            }
            ticket -= u64::from(route.weight);
        }
        self.config
            .routes
            .first()
            .cloned()
            .unwrap_or_else(|| Route::new("default@file", "/"))
    }

    fn malformed(&mut self) -> SynthLine {
        let roll = self.rng.f64();
        let (kind, text) = if roll < 0.45 {
            let request = self.next_request();
            let line = write_request(&self.format, &request);
            let keep = cut_point(&mut self.rng, &self.format, &line, 0.15, 0.65);
            (MalformedKind::Truncated, line[..keep].to_vec())
        } else if roll < 0.65 {
            let n = self.rng.usize(8..120);
            let junk = (0..n)
                .map(|_| {
                    if self.rng.bool() {
                        self.rng.u8(0x21..0x7f)
                    } else {
                        self.rng.u8(0x80..)
                    }
                })
                .collect();
            (MalformedKind::Binary, junk)
        } else if roll < 0.85 {
            let lines = foreign_lines(&self.format);
            let line = lines[self.rng.usize(..lines.len())];
            (MalformedKind::Foreign, line.as_bytes().to_vec())
        } else {
            let first = self.next_request();
            let second = self.next_request();
            let first = write_request(&self.format, &first);
            let mut text =
                first[..cut_point(&mut self.rng, &self.format, &first, 0.3, 0.7)].to_vec();
            text.extend_from_slice(&write_request(&self.format, &second));
            (MalformedKind::Interleaved, text)
        };
        SynthLine {
            text,
            truth: Truth::Malformed(kind),
        }
    }

    fn filtered(&mut self) -> Option<SynthLine> {
        let request = self.next_request();
        let end = end_secs(&request);
        let mut out = Vec::new();
        match self.format {
            Format::CaddyJson | Format::CaddyJsonNanos | Format::CaddyJsonMillis => {
                let (level, logger, msg) = [
                    (
                        "info",
                        "tls.cache.maintenance",
                        "attempting certificate renewal",
                    ),
                    ("warn", "tls", "stapling OCSP"),
                    (
                        "error",
                        "http.log.error.log0",
                        "dial tcp 10.0.0.9:8080: connect: connection refused",
                    ),
                    ("info", "admin", "admin endpoint started"),
                ][self.rng.usize(..4)];
                put(&mut out, format_args!("{{\"level\":\"{level}\",\"ts\":"));
                decimal(&mut out, end_ns(&request), 9);
                put(
                    &mut out,
                    format_args!(",\"logger\":\"{logger}\",\"msg\":\"{msg}\"}}"),
                );
            }
            Format::HaproxySyslog => {
                syslog_prefix(
                    &mut out,
                    end,
                    if self.rng.bool() {
                        "haproxy[1712]"
                    } else {
                        "systemd[1]"
                    },
                );
                if self.rng.bool() {
                    put(
                        &mut out,
                        format_args!(
                            "Server be_orders_api/srv2 is DOWN, reason: Layer4 timeout, check duration: 2001ms."
                        ),
                    );
                } else {
                    tcp_log(&mut out, &request);
                }
            }
            Format::Haproxy => tcp_log(&mut out, &request),
            _ => return None,
        }
        Some(SynthLine {
            text: out,
            truth: Truth::Filtered,
        })
    }
}

impl Iterator for Generator {
    type Item = SynthLine;

    fn next(&mut self) -> Option<SynthLine> {
        let roll = self.rng.f64();
        if roll < self.config.malformed_rate {
            return Some(self.malformed());
        }
        if roll < self.config.malformed_rate + self.config.filtered_rate {
            if let Some(line) = self.filtered() {
                return Some(line);
            }
        }
        let request = self.next_request();
        Some(SynthLine {
            text: write_request(&self.format, &request),
            truth: Truth::Request(Box::new(request)),
        })
    }
}

/// Where to cut a request line for a malformed line: a fraction of its length, moved past
/// the ` [` that opens an HAProxy syslog message's timestamp, as a syslog line cut before it
/// cannot be told from another program's message (it would be filtered, not malformed).
fn cut_point(rng: &mut Rng, format: &Format, line: &[u8], min: f64, max: f64) -> usize {
    let len = line.len() as f64;
    let cut = (len * (min + (max - min) * rng.f64())) as usize;
    let floor = match format {
        Format::HaproxySyslog => line
            .windows(2)
            .position(|w| w == b" [")
            .map_or(0, |p| p + 2),
        _ => 1,
    };
    cut.max(floor).min(line.len().saturating_sub(1))
}

fn foreign_lines(format: &Format) -> &'static [&'static str] {
    match format {
        Format::TraefikJson => &[
            r#"{"level":"error","msg":"Error while peeking first byte: read tcp 10.42.0.5:443->10.0.0.7:51234: i/o timeout","time":"2025-03-09T12:00:00Z"}"#,
            r#"{"level":"info","msg":"Configuration loaded from flags.","time":"2025-03-09T12:00:00Z"}"#,
        ],
        Format::CaddyJson | Format::CaddyJsonNanos | Format::CaddyJsonMillis => &[
            "2025/03/09 12:00:00.000\tINFO\tusing config from file\t{\"file\": \"/etc/caddy/Caddyfile\"}",
            "panic: runtime error: invalid memory address or nil pointer dereference",
        ],
        Format::Haproxy | Format::HaproxySyslog => &[
            "[WARNING] 067/120000 (8) : Server be_orders/orders2 is DOWN, reason: Layer4 timeout, check duration: 2001ms.",
            "[NOTICE]   (1) : New worker (8) forked",
        ],
        Format::Envoy => &[
            "[2025-03-09 12:00:00.000][1][warning][config] [source/common/config/grpc_stream.h:191] StreamAggregatedResources gRPC config stream closed",
        ],
        _ => &[
            r#"time="2025-03-09T12:00:00Z" level=error msg="Error while peeking first byte: read tcp 10.42.0.5:443->10.0.0.7:51234: i/o timeout""#,
            "2025/03/09 12:00:00 [error] 31#31: *4211 upstream timed out (110: Connection timed out) while reading response header from upstream",
            "-- Logs begin at Sun 2025-03-09 11:00:00 UTC. --",
        ],
    }
}

/// The part of a router name before `@`.
fn base_name(router: &str) -> &str {
    router.split('@').next().unwrap_or(router)
}

/// Lower-case alphanumerics, other characters replaced by `replacement`.
fn sanitize(name: &str, replacement: char) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                replacement
            }
        })
        .collect()
}

fn fill_template(rng: &mut Rng, template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 24);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        match &rest[open + 1..close] {
            "id" => {
                // Pareto-like ids: many small, a long tail.
                let id = (100.0 / (1.0 - rng.f64()).powf(1.0 / 1.1)) as u64;
                out.push_str(&id.to_string());
            }
            "uuid" => out.push_str(&format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                rng.u32(..),
                rng.u16(..),
                rng.u16(..0x1000),
                0x8000 | rng.u16(..0x4000),
                rng.u64(..1 << 48)
            )),
            "hex" => out.push_str(&format!("{:010x}", rng.u64(..1 << 40))),
            "slug" => out.push_str(SLUGS[rng.usize(..SLUGS.len())]),
            "n" => out.push_str(&rng.u32(1..400).to_string()),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn latency_ns(rng: &mut Rng, latency: Latency, status: i16, has_service: bool) -> u64 {
    let lognormal = |rng: &mut Rng, ms: f64, sigma: f64| {
        Latency::LogNormal {
            median: Duration::from_secs_f64(ms / 1000.0),
            sigma,
        }
        .sample_ns(rng)
    };
    let ns = match status {
        504 => 30e9 + rng.f64() * 20e6,
        502 => lognormal(rng, 3.0, 0.8),
        503 => lognormal(rng, 0.4, 0.5),
        499 => lognormal(rng, 4000.0, 0.9),
        _ => {
            let mut ns = latency.sample_ns(rng);
            if matches!(status, 304 | 401 | 404 | 429) && has_service {
                ns *= 0.3;
            }
            if rng.f64() < 0.006 {
                // Heavy tail: GC pauses, lock waits, cold caches.
                ns *= 3.0 / (1.0 - rng.f64()).powf(1.0 / 1.4);
            }
            ns.min(59e9)
        }
    };
    (ns as u64).max(20_000)
}

fn make_attempts(
    rng: &mut Rng,
    status: i16,
    duration_ns: u64,
    bytes: u64,
    servers: usize,
    base: &str,
) -> Vec<Attempt> {
    if status == 503 {
        return Vec::new();
    }
    let seed = base.bytes().fold(7usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    let addr = |server: usize| {
        format!(
            "10.42.{}.{}:{}",
            (seed + server * 7) % 250 + 1,
            (seed / 7 + server * 29) % 250 + 2,
            if server % 2 == 0 { 8080 } else { 3000 }
        )
    };
    // Time in the proxy itself, never more than half the request.
    let overhead = (Latency::LogNormal {
        median: Duration::from_micros(90),
        sigma: 0.5,
    }
    .sample_ns(rng) as u64)
        .min(duration_ns / 2);
    let upstream = (duration_ns - overhead).max(1000);
    let first_server = rng.usize(..servers);
    let responded = match status {
        499 | 504 => None,
        other => Some(other),
    };
    let retried = (status == 502 && rng.bool()) || rng.f64() < 0.004;
    let redirected = !retried && rng.f64() < 0.002;
    if (retried && servers > 1) || redirected {
        let first_ns = (rng.u64(0..3) * NANOS_PER_MILLI + rng.u64(1000..900_000))
            .min(upstream / 2)
            .max(1000);
        let second = if redirected {
            first_server
        } else {
            (first_server + 1) % servers
        };
        vec![
            Attempt {
                addr: addr(first_server),
                server: first_server,
                duration_ns: first_ns,
                status: Some(if redirected { 500 } else { 502 }),
                bytes: 0,
                after_redirect: false,
            },
            Attempt {
                addr: addr(second),
                server: second,
                duration_ns: (upstream - first_ns).max(1000),
                status: responded,
                bytes,
                after_redirect: redirected,
            },
        ]
    } else {
        vec![Attempt {
            addr: addr(first_server),
            server: first_server,
            duration_ns: upstream,
            status: responded,
            bytes: if responded.is_some() { bytes } else { 0 },
            after_redirect: false,
        }]
    }
}

// ---------------------------------------------------------------------------------------
// Writing lines.

/// Writes formatted text into a byte buffer.
fn put(out: &mut Vec<u8>, args: fmt::Arguments<'_>) {
    // Writing into a Vec cannot fail.
    let _ = std::io::Write::write_fmt(out, args);
}

/// `value / 10^scale` in decimal, with trailing fraction zeros (and a bare `.`) removed.
fn decimal(out: &mut Vec<u8>, value: u64, scale: u32) {
    let divisor = 10u64.pow(scale);
    let (whole, frac) = (value / divisor, value % divisor);
    put(out, format_args!("{whole}"));
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = scale as usize);
        put(out, format_args!(".{}", digits.trim_end_matches('0')));
    }
}

fn end_ns(request: &Request) -> u64 {
    u64::try_from(request.start.unix_nanos()).unwrap_or(0) + request.duration_ns
}

fn end_secs(request: &Request) -> i64 {
    i64::try_from(end_ns(request) / 1_000_000_000).unwrap_or(0)
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
}

fn civil(secs: i64) -> Civil {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let day_secs = secs.rem_euclid(86_400);
    Civil {
        year,
        month,
        day,
        hour: day_secs / 3600,
        minute: day_secs / 60 % 60,
        second: day_secs % 60,
    }
}

/// `09/Mar/2025:12:00:00` (CLF without the zone).
fn clf_date(out: &mut Vec<u8>, secs: i64) {
    let c = civil(secs);
    put(
        out,
        format_args!(
            "{:02}/{}/{:04}:{:02}:{:02}:{:02}",
            c.day,
            MONTHS[(c.month as usize + 11) % 12],
            c.year,
            c.hour,
            c.minute,
            c.second
        ),
    );
}

/// `2025-03-09T12:00:00`.
fn iso_date(out: &mut Vec<u8>, secs: i64) {
    let c = civil(secs);
    put(
        out,
        format_args!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        ),
    );
}

/// `Mar  9 12:00:00 lb1 <tag>: `.
fn syslog_prefix(out: &mut Vec<u8>, secs: i64, tag: &str) {
    let c = civil(secs);
    put(
        out,
        format_args!(
            "{} {:>2} {:02}:{:02}:{:02} lb1 {tag}: ",
            MONTHS[(c.month as usize + 11) % 12],
            c.day,
            c.hour,
            c.minute,
            c.second
        ),
    );
}

/// A Traefik quoted field: `"` escaped as `\"`, absent as `"-"`.
fn traefik_quoted(out: &mut Vec<u8>, value: Option<&str>) {
    out.push(b'"');
    match value.filter(|v| !v.is_empty()) {
        None => out.push(b'-'),
        Some(value) => {
            for b in value.bytes() {
                if b == b'"' {
                    out.push(b'\\');
                }
                out.push(b);
            }
        }
    }
    out.push(b'"');
}

/// A JSON string; `html` escapes `<`, `>` and `&` as Go's encoder does by default.
fn json_string(out: &mut Vec<u8>, value: &str, html: bool) {
    out.push(b'"');
    for b in value.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'<' | b'>' | b'&' if html => put(out, format_args!("\\u{b:04x}")),
            0..0x20 => put(out, format_args!("\\u{b:04x}")),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn client_host(request: &Request) -> &str {
    request.client.split(", ").next().unwrap_or(&request.client)
}

fn haproxy_backend(request: &Request) -> String {
    format!(
        "be_{}",
        sanitize(request.router.as_deref().map_or("default", base_name), '_')
    )
}

fn ingress_upstream(request: &Request) -> String {
    request.router.as_deref().map_or_else(
        || "upstream-default-backend".to_owned(),
        |router| format!("default-{}-80", sanitize(base_name(router), '-')),
    )
}

/// The last attempt, if the server answered it.
fn answered(request: &Request) -> Option<&Attempt> {
    request.attempts.last().filter(|a| a.status.is_some())
}

fn ms(ns: u64) -> u64 {
    ns / NANOS_PER_MILLI
}

/// Writes `request` as a line of `format` (without the `\n`).
#[must_use]
pub fn write_request(format: &Format, request: &Request) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    match format {
        Format::TraefikCommon => traefik_common(&mut out, request),
        Format::TraefikJson => traefik_json(&mut out, request),
        Format::Envoy => envoy(&mut out, request),
        Format::Haproxy => haproxy(&mut out, request),
        Format::HaproxySyslog => {
            syslog_prefix(&mut out, end_secs(request), "haproxy[1712]");
            haproxy(&mut out, request);
        }
        Format::CaddyJson => caddy(&mut out, request, 9),
        Format::CaddyJsonNanos => caddy(&mut out, request, 0),
        Format::CaddyJsonMillis => caddy(&mut out, request, 6),
        other => {
            if let Some(log_format) = other.log_format() {
                nginx(&mut out, log_format, request);
            }
        }
    }
    out
}

fn traefik_common(out: &mut Vec<u8>, r: &Request) {
    put(
        out,
        format_args!("{} - {} [", r.client, r.user.as_deref().unwrap_or("-")),
    );
    clf_date(out, r.start.unix_secs());
    put(
        out,
        format_args!(
            " +0000] \"{} {} {}\" {} {} ",
            r.method,
            r.target,
            r.version.as_str(),
            r.status,
            r.bytes_sent
        ),
    );
    traefik_quoted(out, r.referer);
    out.push(b' ');
    traefik_quoted(out, r.user_agent.as_deref());
    put(out, format_args!(" {} ", r.request_count));
    traefik_quoted(out, r.router.as_deref());
    out.push(b' ');
    let url = r.attempts.last().map(|a| format!("http://{}", a.addr));
    traefik_quoted(out, url.as_deref());
    put(out, format_args!(" {}ms", ms(r.duration_ns)));
}

fn traefik_json(out: &mut Vec<u8>, r: &Request) {
    let host = client_host(r);
    let origin_ns: u64 = r.attempts.iter().map(|a| a.duration_ns).sum();
    let origin_status = r.attempts.last().and_then(|a| a.status).unwrap_or(0);
    let origin_bytes = r.attempts.last().map_or(0, |a| a.bytes);
    let client_addr = if host.contains(':') {
        format!("[{host}]:{}", r.client_port)
    } else {
        format!("{host}:{}", r.client_port)
    };
    out.extend_from_slice(b"{\"ClientAddr\":");
    json_string(out, &client_addr, true);
    out.extend_from_slice(b",\"ClientHost\":");
    json_string(out, &r.client, true);
    put(
        out,
        format_args!(
            ",\"ClientPort\":\"{}\",\"ClientUsername\":\"{}\",\"DownstreamContentSize\":{},\"DownstreamStatus\":{},\"Duration\":{},\"OriginContentSize\":{origin_bytes},\"OriginDuration\":{origin_ns},\"OriginStatus\":{origin_status},\"Overhead\":{},\"RequestAddr\":",
            r.client_port,
            r.user.as_deref().unwrap_or("-"),
            r.bytes_sent,
            r.status,
            r.duration_ns,
            r.duration_ns.saturating_sub(origin_ns)
        ),
    );
    json_string(out, &r.host, true);
    put(
        out,
        format_args!(
            ",\"RequestContentSize\":{},\"RequestCount\":{},\"RequestHost\":",
            r.bytes_received, r.request_count
        ),
    );
    json_string(out, &r.host, true);
    put(
        out,
        format_args!(",\"RequestMethod\":\"{}\",\"RequestPath\":", r.method),
    );
    json_string(out, &r.target, true);
    put(
        out,
        format_args!(
            ",\"RequestPort\":\"-\",\"RequestProtocol\":\"{}\",\"RequestScheme\":\"{}\",\"RetryAttempts\":{}",
            r.version.as_str(),
            if r.tls { "https" } else { "http" },
            r.attempts.len().saturating_sub(1)
        ),
    );
    if let Some(router) = &r.router {
        out.extend_from_slice(b",\"RouterName\":");
        json_string(out, router, true);
    }
    if let (Some(service), Some(attempt)) = (&r.service, r.attempts.last()) {
        put(
            out,
            format_args!(",\"ServiceAddr\":\"{}\",\"ServiceName\":", attempt.addr),
        );
        json_string(out, service, true);
        if r.odd {
            put(
                out,
                format_args!(
                    ",\"ServiceURL\":{{\"Scheme\":\"http\",\"Opaque\":\"\",\"User\":null,\"Host\":\"{}\",\"Path\":\"\",\"RawPath\":\"\",\"ForceQuery\":false,\"RawQuery\":\"\",\"Fragment\":\"\",\"RawFragment\":\"\"}}",
                    attempt.addr
                ),
            );
        } else {
            put(
                out,
                format_args!(",\"ServiceURL\":\"http://{}\"", attempt.addr),
            );
        }
    }
    let start = r.start.unix_secs();
    for key in ["StartLocal", "StartUTC"] {
        put(out, format_args!(",\"{key}\":\""));
        iso_date(out, start);
        if r.start.subsec_nanos() != 0 {
            let frac = format!("{:09}", r.start.subsec_nanos());
            put(out, format_args!(".{}", frac.trim_end_matches('0')));
        }
        out.extend_from_slice(b"Z\"");
    }
    if r.tls {
        out.extend_from_slice(b",\"TLSCipher\":\"TLS_AES_128_GCM_SHA256\",\"TLSVersion\":\"1.3\"");
    }
    if r.odd {
        out.extend_from_slice(b",\"downstream_Content-Type\":\"text/plain; charset=utf-8\"");
    }
    put(
        out,
        format_args!(
            ",\"entryPointName\":\"{}\",\"level\":\"info\",\"msg\":\"\",\"time\":\"",
            if r.tls { "websecure" } else { "web" }
        ),
    );
    iso_date(out, end_secs(r));
    out.extend_from_slice(b"Z\"}");
}

/// nginx's `$uri`: the path without the query, percent-decoded.
fn decoded_path(target: &str) -> Vec<u8> {
    let path = target.split('?').next().unwrap_or(target).as_bytes();
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if path[i] == b'%' {
            if let (Some(h), Some(l)) = (
                path.get(i + 1).and_then(|&b| hex(b)),
                path.get(i + 2).and_then(|&b| hex(b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

/// An nginx upstream list: `, ` within a group, ` : ` after an internal redirect.
fn upstream_list(
    out: &mut Vec<u8>,
    attempts: &[Attempt],
    mut element: impl FnMut(&mut Vec<u8>, &Attempt),
) {
    for (i, attempt) in attempts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(if attempt.after_redirect {
                b" : "
            } else {
                b", "
            });
        }
        element(out, attempt);
    }
}

fn seconds_ms(out: &mut Vec<u8>, ns: u64) {
    let ms = ms(ns);
    put(out, format_args!("{}.{:03}", ms / 1000, ms % 1000));
}

fn nginx(out: &mut Vec<u8>, format: &LogFormat, r: &Request) {
    let end = end_ns(r);
    let end_secs = end_secs(r);
    format.render(out, |name, value| match name {
        "remote_addr" => value.extend_from_slice(client_host(r).as_bytes()),
        "remote_port" => put(value, format_args!("{}", r.client_port)),
        "remote_user" => value.extend_from_slice(r.user.as_deref().unwrap_or("").as_bytes()),
        "time_local" => {
            clf_date(value, end_secs);
            value.extend_from_slice(b" +0000");
        }
        "time_iso8601" => {
            iso_date(value, end_secs);
            value.extend_from_slice(b"+00:00");
        }
        "msec" => put(
            value,
            format_args!(
                "{}.{:03}",
                end / 1_000_000_000,
                end / NANOS_PER_MILLI % 1000
            ),
        ),
        "request" => put(
            value,
            format_args!("{} {} {}", r.method, r.target, r.version.as_str()),
        ),
        "request_method" => value.extend_from_slice(r.method.as_bytes()),
        "request_uri" => value.extend_from_slice(r.target.as_bytes()),
        "uri" | "document_uri" => value.extend_from_slice(&decoded_path(&r.target)),
        "args" | "query_string" => {
            value.extend_from_slice(r.target.split_once('?').map_or("", |(_, q)| q).as_bytes())
        }
        "server_protocol" => value.extend_from_slice(r.version.as_str().as_bytes()),
        "scheme" => value.extend_from_slice(if r.tls { b"https" } else { b"http" }),
        "status" => put(value, format_args!("{}", r.status)),
        "body_bytes_sent" => put(value, format_args!("{}", r.bytes_sent)),
        "bytes_sent" => put(value, format_args!("{}", r.bytes_sent + HEADER_BYTES)),
        "request_length" => put(value, format_args!("{}", 150 + r.target.len())),
        "request_time" => seconds_ms(value, r.duration_ns),
        "upstream_addr" => upstream_list(value, &r.attempts, |out, a| {
            out.extend_from_slice(a.addr.as_bytes())
        }),
        "upstream_response_length" => upstream_list(value, &r.attempts, |out, a| {
            put(out, format_args!("{}", a.bytes))
        }),
        "upstream_response_time" => {
            upstream_list(value, &r.attempts, |out, a| seconds_ms(out, a.duration_ns))
        }
        "upstream_connect_time" | "upstream_header_time" => {
            upstream_list(value, &r.attempts, |out, _| out.extend_from_slice(b"0.000"));
        }
        "upstream_status" => upstream_list(value, &r.attempts, |out, a| match a.status {
            Some(status) => put(out, format_args!("{status}")),
            None => out.push(b'-'),
        }),
        "host" | "http_host" | "server_name" => value.extend_from_slice(r.host.as_bytes()),
        "http_referer" => value.extend_from_slice(r.referer.unwrap_or("").as_bytes()),
        "http_user_agent" => {
            value.extend_from_slice(r.user_agent.as_deref().unwrap_or("").as_bytes())
        }
        "http_x_forwarded_for" => value.extend_from_slice(r.client.as_bytes()),
        "proxy_upstream_name" => value.extend_from_slice(ingress_upstream(r).as_bytes()),
        "req_id" | "request_id" => put(value, format_args!("{:032x}", r.request_id)),
        "connection" => put(value, format_args!("{}", r.request_count)),
        "pid" => value.extend_from_slice(b"1"),
        _ => {}
    });
}

fn envoy(out: &mut Vec<u8>, r: &Request) {
    out.push(b'[');
    iso_date(out, r.start.unix_secs());
    let code = if r.status == 499 { 0 } else { r.status };
    let flags = match r.status {
        499 => "DC",
        503 => "UH",
        504 => "UT",
        502 if r.attempts.len() > 1 => "URX",
        404 if r.router.is_none() => "NR",
        _ => "-",
    };
    let upstream_ms = answered(r).map_or_else(|| "-".to_owned(), |a| ms(a.duration_ns).to_string());
    let id = r.request_id;
    put(
        out,
        format_args!(
            ".{:03}Z] \"{} {} {}\" {code} {flags} {} {} {} {upstream_ms} \"{}\" \"{}\" \"{:08x}-{:04x}-{:04x}-{:04x}-{:012x}\" \"{}\" \"{}\"",
            r.start.subsec_nanos() / 1_000_000,
            r.method,
            r.target,
            r.version.as_envoy_str(),
            r.bytes_received,
            r.bytes_sent,
            ms(r.duration_ns),
            r.client,
            r.user_agent.as_deref().unwrap_or("-"),
            id >> 96,
            (id >> 80) & 0xffff,
            (id >> 64) & 0xffff,
            (id >> 48) & 0xffff,
            id & 0xffff_ffff_ffff,
            r.host,
            r.attempts.last().map_or("-", |a| a.addr.as_str()),
        ),
    );
}

/// HAProxy's request-line encoding: `"`, `#`, `{`, `|`, `}`, controls and non-ASCII as `#XX`.
fn haproxy_encoded(out: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        if matches!(b, b'"' | b'#' | b'{' | b'|' | b'}') || !(0x20..0x7f).contains(&b) {
            put(out, format_args!("#{b:02X}"));
        } else {
            out.push(b);
        }
    }
}

fn haproxy(out: &mut Vec<u8>, r: &Request) {
    let host = client_host(r);
    let ta = ms(r.duration_ns);
    let tr_request = ta.min(r.request_count % 3);
    let (server, tc, tr) = match r.attempts.last() {
        None => ("<NOSRV>".to_owned(), -1, -1),
        Some(last) => (
            format!("srv{}", last.server + 1),
            i64::from(r.request_count % 5 == 0),
            answered(r).map_or(-1, |a| i64::try_from(ms(a.duration_ns)).unwrap_or(i64::MAX)),
        ),
    };
    let (status, termination) = match r.status {
        499 => (-1, "CH--"),
        503 if r.attempts.is_empty() => (503, "SC--"),
        504 => (504, "sH--"),
        502 => (502, "SH--"),
        other => (other, "----"),
    };
    let ac = 200 + r.request_count % 300;
    put(out, format_args!("{host}:{} [", r.client_port));
    clf_date(out, r.start.unix_secs());
    put(
        out,
        format_args!(
            ".{:03}] {} {}/{server} {tr_request}/0/{tc}/{tr}/{ta} {status} {} - - {termination} {ac}/{}/{}/{}/0 0/0 ",
            r.start.subsec_nanos() / 1_000_000,
            if r.tls { "fe_https~" } else { "fe_http" },
            haproxy_backend(r),
            r.bytes_sent,
            ac - 5,
            3 + r.request_count % 20,
            1 + r.request_count % 10,
        ),
    );
    if r.odd {
        put(out, format_args!("{{{}}} {{}} ", r.host));
    }
    put(out, format_args!("\"{} ", r.method));
    haproxy_encoded(out, &r.target);
    put(out, format_args!(" {}\"", r.version.as_str()));
}

fn tcp_log(out: &mut Vec<u8>, r: &Request) {
    put(out, format_args!("{}:{} [", client_host(r), r.client_port));
    clf_date(out, r.start.unix_secs());
    put(
        out,
        format_args!(
            ".{:03}] fe_db be_db/db1 0/0/{} {} -- 1/1/0/0/0 0/0",
            r.start.subsec_nanos() / 1_000_000,
            ms(r.duration_ns),
            r.bytes_sent
        ),
    );
}

fn caddy(out: &mut Vec<u8>, r: &Request, duration_scale: u32) {
    let host = client_host(r);
    put(
        out,
        format_args!(
            "{{\"level\":\"{}\",\"ts\":",
            if r.status >= 500 { "error" } else { "info" }
        ),
    );
    decimal(out, end_ns(r), 9);
    put(
        out,
        format_args!(
            ",\"logger\":\"http.log.access.log0\",\"msg\":\"handled request\",\"request\":{{\"remote_ip\":\"{host}\",\"remote_port\":\"{}\",\"client_ip\":\"{host}\",\"proto\":\"{}\",\"method\":\"{}\",\"host\":",
            r.client_port,
            r.version.as_str(),
            r.method
        ),
    );
    json_string(out, &r.host, false);
    out.extend_from_slice(b",\"uri\":");
    json_string(out, &r.target, false);
    out.extend_from_slice(b",\"headers\":{");
    let mut first = true;
    for (name, value) in [
        ("User-Agent", r.user_agent.as_deref()),
        ("Referer", r.referer),
    ] {
        if let Some(value) = value {
            if !first {
                out.push(b',');
            }
            first = false;
            put(out, format_args!("\"{name}\":["));
            json_string(out, value, false);
            out.push(b']');
        }
    }
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(b"\"Accept-Encoding\":[\"gzip, deflate, br\"]}");
    if r.tls {
        put(
            out,
            format_args!(
                ",\"tls\":{{\"resumed\":false,\"version\":772,\"cipher_suite\":4865,\"proto\":\"{}\",\"server_name\":",
                match r.version {
                    HttpVersion::Http11 => "http/1.1",
                    HttpVersion::Http2 => "h2",
                    HttpVersion::Http3 => "h3",
                }
            ),
        );
        json_string(out, &r.host, false);
        out.push(b'}');
    }
    put(
        out,
        format_args!(
            "}},\"bytes_read\":{},\"user_id\":\"\",\"duration\":",
            r.bytes_received
        ),
    );
    decimal(out, r.duration_ns, duration_scale);
    put(
        out,
        format_args!(
            ",\"size\":{},\"status\":{},\"resp_headers\":{{\"Server\":[\"Caddy\"],\"Content-Type\":[\"application/json\"]}}}}",
            r.bytes_sent, r.status
        ),
    );
}

// ---------------------------------------------------------------------------------------
// Ground truth as each format logs it.

fn text(value: &str) -> Option<Cow<'_, [u8]>> {
    Some(Cow::Borrowed(value.as_bytes()))
}

fn millis_ns(ns: u64) -> u64 {
    ms(ns) * NANOS_PER_MILLI
}

impl Request {
    /// The record a correct parser of `format` returns for this request's line: the fields
    /// the format logs, at its resolution (whole seconds or milliseconds for timestamps and
    /// durations where it truncates) and in its vocabulary (see the [module docs](self)).
    #[must_use]
    pub fn expected(&self, format: &Format) -> Record<'_> {
        let base = Record {
            method: text(self.method),
            target: text(&self.target),
            protocol: text(self.version.as_str()),
            status: Some(Status::new(self.status)),
            bytes_sent: Some(self.bytes_sent),
            ..Record::default()
        };
        let start = self.start;
        let end = Timestamp::from_unix_nanos(i64::try_from(end_ns(self)).unwrap_or(i64::MAX));
        let millis = |t: Timestamp| {
            Timestamp::from_unix_nanos(t.unix_nanos() - i64::from(t.subsec_nanos() % 1_000_000))
        };
        match format {
            Format::TraefikCommon => Record {
                timestamp: Some(Timestamp::from_unix_secs(start.unix_secs())),
                duration_ns: Some(millis_ns(self.duration_ns)),
                router: self.router.as_deref().and_then(text),
                ..base
            },
            Format::TraefikJson => Record {
                timestamp: Some(start),
                duration_ns: Some(self.duration_ns),
                upstream_duration_ns: (!self.attempts.is_empty())
                    .then(|| self.attempts.iter().map(|a| a.duration_ns).sum()),
                upstream_status: self.attempts.last().and_then(|a| a.status).map(Status::new),
                router: self.router.as_deref().and_then(text),
                service: self
                    .service
                    .as_deref()
                    .filter(|_| !self.attempts.is_empty())
                    .and_then(text),
                host: text(&self.host),
                ..base
            },
            Format::Envoy => Record {
                timestamp: Some(millis(start)),
                protocol: text(self.version.as_envoy_str()),
                status: Some(Status::new(if self.status == 499 {
                    0
                } else {
                    self.status
                })),
                duration_ns: Some(millis_ns(self.duration_ns)),
                upstream_duration_ns: answered(self).map(|a| millis_ns(a.duration_ns)),
                host: text(&self.host),
                ..base
            },
            Format::Haproxy | Format::HaproxySyslog => Record {
                timestamp: Some(millis(start)),
                status: Some(Status::new(if self.status == 499 {
                    -1
                } else {
                    self.status
                })),
                duration_ns: Some(millis_ns(self.duration_ns)),
                upstream_duration_ns: answered(self).map(|a| millis_ns(a.duration_ns)),
                router: Some(Cow::Owned(haproxy_backend(self).into_bytes())),
                ..base
            },
            Format::CaddyJson | Format::CaddyJsonNanos | Format::CaddyJsonMillis => Record {
                timestamp: Some(end),
                duration_ns: Some(self.duration_ns),
                host: text(&self.host),
                ..base
            },
            other => match other.log_format() {
                Some(log_format) => self.expected_nginx(log_format, base, end),
                None => base,
            },
        }
    }

    fn expected_nginx<'a>(
        &'a self,
        format: &LogFormat,
        base: Record<'a>,
        end: Timestamp,
    ) -> Record<'a> {
        let by = |field| format.filled_by(field);
        let upstream_ns: u64 = self.attempts.iter().map(|a| millis_ns(a.duration_ns)).sum();
        Record {
            timestamp: by(RecordField::Timestamp).map(|var| match var {
                "msec" => Timestamp::from_unix_nanos(
                    end.unix_nanos() - i64::from(end.subsec_nanos() % 1_000_000),
                ),
                _ => Timestamp::from_unix_secs(end.unix_secs()),
            }),
            method: by(RecordField::Method).and(base.method),
            target: by(RecordField::Target).and_then(|var| match var {
                "uri" | "document_uri" => Some(Cow::Owned(decoded_path(&self.target))),
                _ => base.target,
            }),
            protocol: by(RecordField::Protocol).and(base.protocol),
            status: by(RecordField::Status).and(base.status),
            bytes_sent: by(RecordField::BytesSent).map(|var| match var {
                "bytes_sent" => self.bytes_sent + HEADER_BYTES,
                _ => self.bytes_sent,
            }),
            duration_ns: by(RecordField::Duration).map(|_| millis_ns(self.duration_ns)),
            upstream_duration_ns: by(RecordField::UpstreamDuration)
                .filter(|_| !self.attempts.is_empty())
                .map(|_| upstream_ns),
            upstream_status: by(RecordField::UpstreamStatus)
                .and_then(|_| self.attempts.iter().rev().find_map(|a| a.status))
                .map(Status::new),
            router: by(RecordField::Router)
                .map(|_| Cow::Owned(ingress_upstream(self).into_bytes())),
            service: None,
            host: by(RecordField::Host).and_then(|_| text(&self.host)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_lines_other_seed_other_lines() {
        let config = SynthConfig::new().seed(42).malformed_rate(0.05);
        let a = generate(&Format::TraefikCommon, &config, 200);
        let b = generate(&Format::TraefikCommon, &config, 200);
        let c = generate(&Format::TraefikCommon, &config.seed(43), 200);
        assert_eq!(a, b);
        assert_ne!(a.text, c.text);
        assert_eq!(a.lines.len(), 200);
        assert_eq!(a.text.iter().filter(|&&b| b == b'\n').count(), 200);
    }

    #[test]
    fn templates_fill_id_like_segments() {
        let mut rng = Rng::with_seed(3);
        let path = fill_template(
            &mut rng,
            "/orders/{uuid}/items/{id}/{hex}.{n}/{slug}/{unknown}",
        );
        let parts: Vec<&str> = path.split('/').collect();
        assert_eq!(parts[1], "orders");
        assert_eq!(parts[2].len(), 36);
        assert_eq!(parts[2].as_bytes()[14], b'4');
        assert!(parts[4].parse::<u64>().unwrap() >= 100);
        assert!(
            parts[5]
                .split('.')
                .next()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
        assert!(SLUGS.contains(&parts[6]));
        assert_eq!(parts[7], "{unknown}");
    }

    #[test]
    fn decimals_trim_trailing_zeros() {
        let mut out = Vec::new();
        decimal(&mut out, 3_550_188, 9);
        out.push(b' ');
        decimal(&mut out, 1_500_000_000, 9);
        out.push(b' ');
        decimal(&mut out, 2_000_000_000, 9);
        out.push(b' ');
        decimal(&mut out, 42, 0);
        assert_eq!(out, b"0.003550188 1.5 2 42");
    }

    #[test]
    fn status_mix_respects_weights() {
        let mut rng = Rng::with_seed(1);
        let mix = StatusMix::new(vec![(200, 3), (500, 1), (404, 0)]);
        let picks: Vec<i16> = (0..4000).map(|_| mix.pick(&mut rng)).collect();
        let errors = picks.iter().filter(|&&s| s == 500).count();
        assert!((800..1200).contains(&errors), "{errors}");
        assert!(!picks.contains(&404));
        assert_eq!(StatusMix::new(Vec::new()).pick(&mut rng), 200);
    }

    #[test]
    fn latency_distributions() {
        let mut rng = Rng::with_seed(9);
        let fixed = Latency::Fixed(Duration::from_millis(5));
        assert_eq!(fixed.sample_ns(&mut rng), 5e6);
        let uniform = Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        assert!((0..100).all(|_| (1e6..=2e6).contains(&uniform.sample_ns(&mut rng))));
        let mut samples: Vec<f64> = (0..2001)
            .map(|_| {
                Latency::LogNormal {
                    median: Duration::from_millis(10),
                    sigma: 0.5,
                }
                .sample_ns(&mut rng)
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        assert!((9e6..11e6).contains(&samples[1000]), "{}", samples[1000]);
    }

    #[test]
    fn sample_lines_look_like_the_real_thing() {
        let config = SynthConfig::new().seed(5);
        let mut generator = Generator::new(Format::TraefikCommon, config);
        let line = generator.next().unwrap();
        let text = String::from_utf8(line.text).unwrap();
        assert!(
            text.contains(" - - [09/Mar/2025:12:00:00 +0000] \""),
            "{text}"
        );
        assert!(text.ends_with("ms"), "{text}");
    }
}

//! The traffic model: routes, latency distributions, the status mix, the configuration, and
//! the weighted tables requests are drawn from.

use std::time::Duration;

use fastrand::Rng;

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
    pub(super) fn sample_ns(self, rng: &mut Rng) -> f64 {
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
    pub(super) router: String,
    pub(super) template: String,
    pub(super) weight: u32,
    pub(super) latency: Latency,
    pub(super) service: bool,
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

    pub(super) fn pick(&self, rng: &mut Rng) -> i16 {
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
    pub(super) seed: u64,
    pub(super) start_unix_secs: i64,
    pub(super) rps: f64,
    pub(super) routes: Vec<Route>,
    pub(super) status_mix: StatusMix,
    pub(super) malformed_rate: f64,
    pub(super) filtered_rate: f64,
    pub(super) odd_rate: f64,
    pub(super) query_rate: f64,
    pub(super) scanner_rate: f64,
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

/// Request methods of requests to a service (assets and redirects are `GET`).
pub(super) const METHODS: [(&str, u32); 7] = [
    ("GET", 760),
    ("POST", 120),
    ("PUT", 40),
    ("DELETE", 25),
    ("PATCH", 20),
    ("HEAD", 20),
    ("OPTIONS", 15),
];

/// User agents: browsers, HTTP libraries, probes, a crawler, and none.
pub(super) const USER_AGENTS: [(&str, u32); 13] = [
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
pub(super) const ODD_USER_AGENTS: [&str; 3] = [
    r#"Mozilla/5.0 "quoted" (evil; x\y) probe"#,
    "Dalvik/2.1.0 (Linux; U; Android 9; Redmi Note 8 Build/PKQ1) caf\u{e9}",
    r"tab\there and a trailing backslash\ inside",
];

/// Referers; the empty one is no `Referer` header.
pub(super) const REFERERS: [(&str, u32); 4] = [
    ("", 60),
    ("https://www.example.com/", 20),
    ("https://www.google.com/", 12),
    ("https://www.example.com/products/blue-widget", 8),
];

/// Words for `{slug}` placeholders, some percent-encoded.
pub(super) const SLUGS: [&str; 8] = [
    "blue-widget",
    "red-gadget",
    "summer-sale",
    "gift-card",
    "green%20tea",
    "caf%C3%A9-latte",
    "garden-tools",
    "usb-c-cable",
];

/// Targets of scanner probes.
pub(super) const SCANNER_PATHS: [&str; 6] = [
    "/.env",
    "/wp-login.php",
    "/.git/config",
    "/phpmyadmin/index.php",
    "/cgi-bin/luci/;stok=/locale",
    "/%2e%2e/%2e%2e/etc/passwd",
];

/// Odd router names (Traefik allows spaces, v3.6 joins layers with ` -> `).
pub(super) const ODD_ROUTERS: [&str; 3] = [
    "testRouter with space@file",
    "api@file -> users-api@kubernetescrd",
    "quote\"d@file",
];

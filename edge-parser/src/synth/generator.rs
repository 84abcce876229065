//! The [`Generator`]: draws requests from the model, in arrival order, and turns them into
//! request, malformed and filtered lines.

use std::time::Duration;

use fastrand::Rng;

use super::NANOS_PER_MILLI;
use super::model::{
    Latency, METHODS, ODD_ROUTERS, ODD_USER_AGENTS, REFERERS, Route, SCANNER_PATHS, SLUGS,
    SynthConfig, USER_AGENTS,
};
use super::names::{base_name, sanitize};
use super::request::{Attempt, HttpVersion, MalformedKind, Request, SynthLine, Truth};
use super::write::{decimal, end_ns, end_secs, put, syslog_prefix, tcp_log, write_request};
use crate::format::{Format, Timestamp};

const NANOS_PER_SEC: i64 = 1_000_000_000;

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

pub(super) fn fill_template(rng: &mut Rng, template: &str) -> String {
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

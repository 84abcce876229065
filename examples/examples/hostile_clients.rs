//! Hostile and greedy clients for load tests of `edge-parser serve`, all at once on one
//! loopback address: idle connections that never send a request, live-stream readers, and a
//! scraper that measures how fast and how fresh `/metrics` is.
//!
//! ```text
//! cargo run --release --example hostile_clients -- --addr 127.0.0.1:9898 --idle 2000 \
//!     --streams 200 --seconds 60 --lines-started-file /tmp/started --rate 100000
//! ```
//!
//! - `--idle N` connections are opened and kept open without a byte sent; when the server
//!   closes one (its header timeout, or an eviction at its connection cap) it is opened again.
//! - `--streams M` clients read `/api/stream` continuously and count its events and bytes
//!   (a stream that ends is opened again).
//! - Every `--scrape-ms` (100) a fresh connection fetches `/metrics`: the time from connecting
//!   to the last byte is its latency, and `edge_lag_seconds` is noted. With `--rate` and
//!   `--lines-started-file` (the file `loadgen --started-file` writes: when its line 0 was
//!   due, ns since the epoch), the scrape also measures freshness: `/metrics` counting `n`
//!   lines (`edge_lines_total`) means that the newest line it counts was due at
//!   `start + (n - 1) / rate`, and freshness is how long before the scrape that was.
//!
//! It stops after `--seconds` and prints one `key value` line per figure, which
//! `benches/serve_load.sh` reads: `scrapes`, `scrape_failures`, `scrape_ms_p50`,
//! `scrape_ms_p99`, `scrape_ms_max`, `fresh_s_p50`, `fresh_s_p99`, `fresh_s_max`,
//! `lag_s_max`, `idle_open`, `idle_reopened`, `streams_open`, `stream_events`,
//! `stream_events_min`, `stream_mib`, `stream_failures`. Only loopback addresses are accepted.
//! The process raises its own soft limit of file descriptors to the hard one (as `serve` does
//! for itself), since 2 000 connections need more than the common 1 024.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Idle connections, live-stream readers and a timed scraper against `edge-parser serve`.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The server's address (loopback only).
    #[arg(long)]
    addr: SocketAddr,
    /// Idle connections kept open.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=20_000))]
    idle: u64,
    /// `/api/stream` readers.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=1_000))]
    streams: u64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Time between two scrapes of `/metrics`, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    scrape_ms: u64,
    /// The writer's lines per second, for freshness.
    #[arg(long)]
    rate: Option<u64>,
    /// The file where the writer put when its first line was due (ns since the epoch).
    #[arg(long)]
    lines_started_file: Option<PathBuf>,
}

/// Longest wait for one scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before opening a connection again.
const REOPEN_PAUSE: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Counters {
    idle_open: AtomicU64,
    idle_reopened: AtomicU64,
    streams_open: AtomicU64,
    stream_bytes: AtomicU64,
    stream_failures: AtomicU64,
}

/// What the scraper saw.
#[derive(Debug, Default)]
struct Scrapes {
    latencies_ms: Vec<f64>,
    freshness_s: Vec<f64>,
    lag_max: f64,
    failures: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        bail!(
            "--addr {}: only loopback addresses are load-tested",
            args.addr
        );
    }
    raise_fd_limit();
    // One thread: the clients must not take the cores the server is measured on.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let counters = Arc::new(Counters::default());
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.idle {
        tasks.spawn(idle(args.addr, Arc::clone(&counters)));
        // Opened gradually, so that the listen backlog does not overflow.
        tokio::task::yield_now().await;
    }
    let events: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.streams).map(|_| AtomicU64::new(0)).collect());
    for client in 0..args.streams as usize {
        tasks.spawn(stream(
            args.addr,
            Arc::clone(&counters),
            Arc::clone(&events),
            client,
        ));
    }
    let scrapes = Arc::new(Mutex::new(Scrapes::default()));
    let scraper = tokio::spawn(scrape_loop(
        args.addr,
        Duration::from_millis(args.scrape_ms),
        deadline,
        args.rate.zip(args.lines_started_file.clone()),
        Arc::clone(&scrapes),
    ));
    tokio::time::sleep_until(deadline.into()).await;
    let _ = scraper.await;
    let idle_open = counters.idle_open.load(Ordering::Relaxed);
    let streams_open = counters.streams_open.load(Ordering::Relaxed);
    tasks.abort_all();

    let scrapes = scrapes.lock().await;
    let mut latencies = scrapes.latencies_ms.clone();
    let mut freshness = scrapes.freshness_s.clone();
    let stream_events: Vec<u64> = events.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    let mut figures: Vec<(String, String)> = vec![
        ("scrapes".into(), latencies.len().to_string()),
        ("scrape_failures".into(), scrapes.failures.to_string()),
    ];
    for (name, values, decimals) in [
        ("scrape_ms", &mut latencies, 1),
        ("fresh_s", &mut freshness, 3),
    ] {
        for (suffix, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
            let value = quantile(values, q);
            figures.push((format!("{name}_{suffix}"), format!("{value:.decimals$}")));
        }
    }
    let counts = [
        ("idle_open", idle_open),
        (
            "idle_reopened",
            counters.idle_reopened.load(Ordering::Relaxed),
        ),
        ("streams_open", streams_open),
        ("stream_events", stream_events.iter().sum()),
        (
            "stream_events_min",
            stream_events.iter().min().copied().unwrap_or(0),
        ),
        (
            "stream_failures",
            counters.stream_failures.load(Ordering::Relaxed),
        ),
    ];
    figures.extend(counts.map(|(key, count)| (key.to_owned(), count.to_string())));
    figures.push(("lag_s_max".into(), format!("{:.3}", scrapes.lag_max)));
    let mib = counters.stream_bytes.load(Ordering::Relaxed) as f64 / f64::from(1 << 20);
    figures.push(("stream_mib".into(), format!("{mib:.1}")));
    for (key, value) in figures {
        println!("{key} {value}");
    }
    Ok(())
}

/// One idle connection, opened again whenever the server closes it.
async fn idle(addr: SocketAddr, counters: Arc<Counters>) {
    let mut first = true;
    loop {
        if let Ok(mut connection) = TcpStream::connect(addr).await {
            if !first {
                counters.idle_reopened.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            counters.idle_open.fetch_add(1, Ordering::Relaxed);
            // Nothing is sent; the read ends when the server closes the connection.
            let mut byte = [0u8; 1];
            let _ = connection.read(&mut byte).await;
            counters.idle_open.fetch_sub(1, Ordering::Relaxed);
        }
        tokio::time::sleep(REOPEN_PAUSE).await;
    }
}

/// One `/api/stream` reader, counting events and bytes; opened again if the stream ends.
async fn stream(
    addr: SocketAddr,
    counters: Arc<Counters>,
    events: Arc<Vec<AtomicU64>>,
    client: usize,
) {
    const EVENT: &[u8] = b"event: summary\n";
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        if let Ok(mut connection) = TcpStream::connect(addr).await {
            let request = format!("GET /api/stream HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            if connection.write_all(request.as_bytes()).await.is_ok() {
                counters.streams_open.fetch_add(1, Ordering::Relaxed);
                // The last bytes read (fewer than a marker), for a marker split across reads.
                let mut tail: Vec<u8> = Vec::new();
                while let Ok(read) = connection.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    let data = &buffer[..read];
                    counters
                        .stream_bytes
                        .fetch_add(read as u64, Ordering::Relaxed);
                    // Markers within this read, then those that begin in the tail: the tail
                    // and the head joined are too short to hold one of either whole.
                    let mut found = memmem::find_iter(data, EVENT).count();
                    let head = &data[..read.min(EVENT.len() - 1)];
                    tail.extend_from_slice(head);
                    found += memmem::find_iter(&tail, EVENT).count();
                    events[client].fetch_add(found as u64, Ordering::Relaxed);
                    if read >= EVENT.len() - 1 {
                        tail.clear();
                        tail.extend_from_slice(&data[read - (EVENT.len() - 1)..]);
                    } else {
                        tail.drain(..tail.len().saturating_sub(EVENT.len() - 1));
                    }
                }
                counters.streams_open.fetch_sub(1, Ordering::Relaxed);
            }
        }
        counters.stream_failures.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(REOPEN_PAUSE).await;
    }
}

/// Scrapes `/metrics` every `every` until `deadline`.
async fn scrape_loop(
    addr: SocketAddr,
    every: Duration,
    deadline: Instant,
    freshness: Option<(u64, PathBuf)>,
    scrapes: Arc<Mutex<Scrapes>>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut started_ns: Option<i64> = None;
    while Instant::now() < deadline {
        ticks.tick().await;
        if started_ns.is_none()
            && let Some((_, path)) = &freshness
        {
            started_ns = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| text.trim().parse().ok());
        }
        let began = Instant::now();
        let page = tokio::time::timeout(SCRAPE_TIMEOUT, fetch(addr, "/metrics")).await;
        let latency_ms = began.elapsed().as_secs_f64() * 1e3;
        let at_ns = unix_nanos();
        let mut scrapes = scrapes.lock().await;
        let Ok(Some(page)) = page else {
            scrapes.failures += 1;
            continue;
        };
        scrapes.latencies_ms.push(latency_ms);
        let (lines, lag) = read_page(&page);
        if let Some(lag) = lag {
            scrapes.lag_max = scrapes.lag_max.max(lag);
        }
        if let (Some((rate, _)), Some(started), Some(lines)) = (&freshness, started_ns, lines)
            && lines > 0
        {
            let newest_due = started as f64 + (lines - 1) as f64 * 1e9 / *rate as f64;
            scrapes.freshness_s.push((at_ns as f64 - newest_due) / 1e9);
        }
    }
}

/// The body of `GET path` on a fresh connection, when the answer is `200`.
async fn fetch(addr: SocketAddr, path: &str) -> Option<String> {
    let mut connection = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    connection.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    connection.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8(answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The sum of `edge_lines_total` and `edge_lag_seconds` of an exposition. A streamed
/// (chunked) answer has chunk sizes between lines: they match neither name.
fn read_page(page: &str) -> (Option<u64>, Option<f64>) {
    let mut lines = None;
    let mut lag = None;
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("edge_lines_total{") {
            let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            *lines.get_or_insert(0) += value.unwrap_or(0.0) as u64;
        } else if let Some(value) = line.strip_prefix("edge_lag_seconds ") {
            lag = value.parse().ok();
        }
    }
    (lines, lag)
}

/// The value at quantile `q` of `values` (nearest rank), 0 when empty.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: 2 000 connections need more than the
/// usual soft limit of 1 024.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            eprintln!("hostile_clients: cannot raise the descriptor limit: {error}");
        }
    }
}

fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64)
}

//! A steady access-log writer for load tests of `edge-parser serve`: appends synthetic lines
//! stamped with the current time at a fixed rate, over a fixed set of distinct paths.
//!
//! ```text
//! cargo run --release --example loadgen -- --log /tmp/access.log --rate 100000 --seconds 60
//! ```
//!
//! Every `--tick-ms` the writer appends, in one `write`, the lines that fell due since the last
//! tick: line `k` is due at `start + k / rate` and is stamped with that time (so the log's
//! timestamps follow the wall clock, and `edge_lag_seconds` measures how far the follower is
//! behind). A writer that fell behind catches up at the next tick. Requests (method, status,
//! latency, client, user agent) come from the [`vantage_edge::synth`] generator; their targets
//! are drawn uniformly from `--id-paths` paths with numeric ids (`/items/17`, which route
//! normalisation folds into four routes) and `--word-paths` paths of letters (`/pages/bqc`,
//! one route each, so that the group cap of `serve` comes into play). Each path is served by
//! one route of the model and takes that route's requests in turn, so its latencies spread
//! like one route's.
//!
//! Once a second it prints `<second> <lines written in all> <lines written that second>` on
//! stdout, and `done <lines written in all> <seconds taken>` at the end:
//! `benches/serve_load.sh` reads them. `--started-file` records when line 0 was due, from
//! which `hostile_clients` tells how fresh `/metrics` is.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use vantage_edge::format::{Format, Parsed, Timestamp};
use vantage_edge::synth::{Generator, Request, SynthConfig, write_request};

/// Append synthetic access-log lines stamped with the current time, at a steady rate.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The log file to append to (created if missing).
    #[arg(long)]
    log: PathBuf,
    /// The log format (any preset of `edge-parser generate`).
    #[arg(long, default_value = "envoy")]
    format: String,
    /// Lines per second.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// How long to write, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Distinct paths with a numeric id segment.
    #[arg(long, default_value_t = 8_000)]
    id_paths: usize,
    /// Distinct paths made of letters only (one route each).
    #[arg(long, default_value_t = 2_000)]
    word_paths: usize,
    /// Time between two writes, in milliseconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    tick_ms: u64,
    /// Seed of the request generator and of the path choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A file to write, before the first line, when line 0 is due (ns since the epoch; line
    /// `k` is due `k / rate` seconds later): how `hostile_clients` measures freshness.
    #[arg(long)]
    started_file: Option<PathBuf>,
}

/// Requests drawn once and reused in turn.
const POOL: usize = 4096;
/// The prefixes of the paths with ids: each folds into one route (`/items/{id}`, ...).
const ID_PREFIXES: [(&str, &str); 4] = [
    ("/items/", ""),
    ("/users/", "/profile"),
    ("/orders/", "/status"),
    ("/api/v1/carts/", ""),
];

/// One request of the pool and how far its logged timestamp is from its start.
struct Template {
    request: Request,
    /// Logged timestamp minus start, ns: 0 for formats that log the start, the duration for
    /// those that log the end (nginx, Caddy).
    stamp_offset_ns: i64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let format: Format = args.format.parse().context("--format")?;
    if args.rate == 0 {
        bail!("--rate must be positive");
    }
    let paths = paths(args.id_paths, args.word_paths);
    if paths.is_empty() {
        bail!("--id-paths and --word-paths are both 0");
    }
    let mut pool = pool(&format, args.seed)?;
    let mut routes = routes(&pool);
    let mut choose = fastrand::Rng::with_seed(args.seed);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log)
        .with_context(|| format!("opening {}", args.log.display()))?;

    let tick = Duration::from_millis(args.tick_ms);
    let total = args.rate * args.seconds;
    let ns_per_line = 1e9 / args.rate as f64;
    let started = Instant::now();
    let start_ns = unix_nanos();
    if let Some(path) = &args.started_file {
        std::fs::write(path, format!("{start_ns}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut written: u64 = 0;
    let mut reported_second = 0;
    let mut written_at_report = 0;
    let mut buffer = Vec::with_capacity(8 << 20);
    let mut stdout = std::io::stdout().lock();
    while written < total {
        let elapsed = started.elapsed();
        let due = ((elapsed.as_secs_f64() * args.rate as f64) as u64).min(total);
        buffer.clear();
        for line in written..due {
            let path = choose.usize(..paths.len());
            let route_count = routes.len();
            let route = &mut routes[path % route_count];
            let template = &mut pool[route.members[route.next % route.members.len()]];
            route.next += 1;
            let stamp = start_ns + (line as f64 * ns_per_line) as i64;
            template.request.start = Timestamp::from_unix_nanos(stamp - template.stamp_offset_ns);
            template.request.target.clear();
            template.request.target.push_str(&paths[path]);
            buffer.extend_from_slice(&write_request(&format, &template.request));
            buffer.push(b'\n');
        }
        log.write_all(&buffer).context("writing the log")?;
        written = due;
        let second = elapsed.as_secs();
        if second > reported_second {
            writeln!(stdout, "{second} {written} {}", written - written_at_report)?;
            stdout.flush()?;
            reported_second = second;
            written_at_report = written;
        }
        if written < total {
            let next = tick.mul_f64((elapsed.as_secs_f64() / tick.as_secs_f64()).floor() + 1.0);
            std::thread::sleep(next.saturating_sub(started.elapsed()));
        }
    }
    writeln!(
        stdout,
        "done {written} {:.3}",
        started.elapsed().as_secs_f64()
    )?;
    stdout.flush()?;
    Ok(())
}

/// The requests of one route of the model, taken in turn.
struct RouteRequests {
    /// Indices in the pool.
    members: Vec<usize>,
    next: usize,
}

/// The pool's requests by route of the model (in order of first appearance). Path `n` is
/// served by route `n % routes`: a path's latencies spread like one route's, as a real path's
/// do, not like the whole model's mix of fast and slow routes.
fn routes(pool: &[Template]) -> Vec<RouteRequests> {
    let mut routes: Vec<(&str, RouteRequests)> = Vec::new();
    for (index, template) in pool.iter().enumerate() {
        let route = template.request.route.as_str();
        match routes.iter_mut().find(|(name, _)| *name == route) {
            Some((_, requests)) => requests.members.push(index),
            None => routes.push((
                route,
                RouteRequests {
                    members: vec![index],
                    next: 0,
                },
            )),
        }
    }
    routes.into_iter().map(|(_, requests)| requests).collect()
}

/// `id_paths` paths with numeric ids over [`ID_PREFIXES`], then `word_paths` paths of letters.
fn paths(id_paths: usize, word_paths: usize) -> Vec<String> {
    let ids = (0..id_paths).map(|n| {
        let (prefix, suffix) = ID_PREFIXES[n % ID_PREFIXES.len()];
        format!("{prefix}{}{suffix}", n / ID_PREFIXES.len() + 1)
    });
    let words = (0..word_paths).map(|n| format!("/pages/{}", letters(n)));
    ids.chain(words).collect()
}

/// `n` written in base 26 with the letters `a` to `z` (at least three of them).
fn letters(mut n: usize) -> String {
    let mut word = Vec::new();
    while word.len() < 3 || n > 0 {
        word.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    word.reverse();
    String::from_utf8(word).unwrap_or_default()
}

/// [`POOL`] requests of the synthetic model (no query strings, odd values or scanner probes:
/// the targets are replaced), each with the offset of its logged timestamp.
fn pool(format: &Format, seed: u64) -> anyhow::Result<Vec<Template>> {
    let config = SynthConfig::new()
        .seed(seed)
        .query_rate(0.0)
        .odd_rate(0.0)
        .scanner_rate(0.0);
    let mut generator = Generator::new(format.clone(), config);
    // A start 1 ns before a whole second: a line stamped with its end (start + duration, at
    // least 1 ns later) shows the next second whatever the format's resolution, a line
    // stamped with its start does not.
    let next_second = 1_741_521_601 * 1_000_000_000;
    let probe_start = next_second - 1;
    (0..POOL)
        .map(|_| {
            let mut request = generator.next_request();
            request.start = Timestamp::from_unix_nanos(probe_start);
            let line = write_request(format, &request);
            let logged = match format.parse(&line) {
                Ok(Parsed::Record(record)) => record.timestamp,
                _ => None,
            };
            let Some(logged) = logged else {
                bail!(
                    "{}: a generated line has no timestamp, so the lag cannot be measured",
                    format.name()
                );
            };
            let stamp_offset_ns = if logged.unix_nanos() >= next_second {
                i64::try_from(request.duration_ns).unwrap_or(0)
            } else {
                0
            };
            Ok(Template {
                request,
                stamp_offset_ns,
            })
        })
        .collect()
}

fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as i64)
}

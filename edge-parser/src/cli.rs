//! The command line: clap definitions and the glue from flags to library calls.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use vantage_edge::aggregate::{Aggregate, DEFAULT_MAX_GROUPS, Dimension};
use vantage_edge::export::{ReportMeta, ReportOptions, SortKey, html, json, table, terminal_safe};
use vantage_edge::format::{Format, LogFormat};
use vantage_edge::reconcile::scrape::{self, Target};
use vantage_edge::report::{Progress, Report, ReportConfig, ReportError};
use vantage_edge::route::RouteRules;
use vantage_edge::serve::{
    AuthTokens, CheckpointTarget, DEFAULT_MAX_CONNECTIONS, ServeConfig, ServeError,
};
use vantage_edge::state::read_snapshot;
use vantage_edge::synth::{Generator, SynthConfig};
use vantage_edge::tail::TailConfig;
use vantage_edge::watch::{
    DEFAULT_DROP_RATIO, DEFAULT_MIN_BASELINE_RPS, DEFAULT_SPIKE_RATIO, WatchConfig,
};

const EXIT_CODES: &str = "\
Exit codes:
  0  the report was produced
  1  the input had no parseable line
  2  usage error, or an input could not be read (the message names it)";

/// Measure traffic at the edge: read ingress access logs (Traefik, nginx, ingress-nginx, Envoy,
/// HAProxy, Caddy) and report request rate, status mix and latency per router or route.
#[derive(Debug, Parser)]
#[command(name = "edge-parser", version, about, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More detail on stderr (-v: decisions such as the detected format, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read access logs once and print a report per group.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Follow access logs live (like `tail -F`, across rotations and restarts) and serve
    /// Prometheus metrics, health, summaries and a live stream over HTTP.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Write a synthetic access log to stdout, to try the other commands or benchmark them.
    Generate(GenerateArgs),
}

const SERVE_HELP: &str = "\
Endpoints:
  /metrics       edge_requests_total{router,service,method,code}, edge_request_duration_seconds,
                 edge_upstream_duration_seconds, and edge-parser's own health (edge_lines_total,
                 edge_lag_seconds, edge_file_rotations_total, edge_checkpoint_*, edge_anomaly)
  /health        200 while the process is alive
  /ready         200 once the checkpoint is restored and every log path is followed or reported
  /api/summary   JSON per router over 1m, 5m and 1h windows, with stale and partial marks
  /api/stream    server-sent events: one summary per second
  /api/reconcile with --service-metrics: per route, the edge's requests against the services'
                 since their common start, the lost ones by reason (proxy_answered,
                 client_cancelled, unexplained), those on routes no service measures
                 (unmeasured), partial marks
  /api/snapshot  the aggregate state as a file (read it back with `report --snapshot FILE`);
                 needs a bearer token of --auth-token-file, or a loopback --listen address

Examples:
  edge-parser serve --log '/var/log/traefik/*.log' --checkpoint /var/lib/edge/checkpoint.json
  edge-parser serve --log /var/log/nginx/access.log --format nginx-combined-rt --listen 127.0.0.1:9898
  edge-parser serve --log /var/log/traefik/access.log --service-metrics http://users:8080/metrics --strip-prefix /api

With --format auto (the default) and no line yet, serve waits for the first lines (or takes
the checkpoint's format); /ready says so meanwhile.

With --checkpoint, /metrics shows the counters as of the last checkpoint written: they never
exceed what a restart continues from, so Prometheus never sees them go back.

SIGTERM or SIGINT: reading stops, the final checkpoint is written, exit 0.

Exit codes:
  0  stopped by SIGTERM or SIGINT
  1  stopped, but the final checkpoint could not be written (the message says why)
  2  usage error, a checkpoint that cannot be resumed, or an address that cannot be bound";

#[derive(Debug, Args)]
struct ServeArgs {
    /// A log file or a quoted glob pattern to follow; repeatable. New matching files are picked
    /// up while running.
    #[arg(short, long = "log", value_name = "PATTERN", required = true)]
    logs: Vec<String>,
    #[command(flatten)]
    parsing: ParsingArgs,
    /// HTTP listen address.
    #[arg(long, default_value = "0.0.0.0:9898", value_name = "ADDR")]
    listen: std::net::SocketAddr,
    /// Checkpoint file: file positions and counters, written atomically every
    /// --checkpoint-interval and at shutdown, resumed at startup. Without it, counters start
    /// from zero at every start.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Time between two checkpoint writes (e.g. `500ms`, `1s`, `1m`): also how far /metrics
    /// may lag behind the lines read.
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    checkpoint_interval: Duration,
    /// Start from zero even if the checkpoint exists (it is replaced at the next write).
    #[arg(long)]
    reset_checkpoint: bool,
    /// Read the files present at the first start whole, instead of from their end.
    #[arg(long)]
    from_start: bool,
    /// A router with no line for this long is marked stale in /api/summary.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    stale_after: Duration,
    /// How often the logs are looked at.
    #[arg(long, default_value = "250ms", value_parser = parse_duration, value_name = "DURATION")]
    poll_interval: Duration,
    /// Watch tower: a minute below this share of its router's baseline is a drop.
    #[arg(long, default_value_t = DEFAULT_DROP_RATIO, value_name = "RATIO")]
    drop_ratio: f64,
    /// Watch tower: a minute above this multiple of its router's baseline is a spike.
    #[arg(long, default_value_t = DEFAULT_SPIKE_RATIO, value_name = "RATIO")]
    spike_ratio: f64,
    /// Watch tower: routers whose baseline is under this many requests per second are not
    /// judged for drops.
    #[arg(long, default_value_t = DEFAULT_MIN_BASELINE_RPS, value_name = "RPS")]
    min_baseline_rps: f64,
    /// A file of bearer tokens (one per line, `ID:TOKEN` or `TOKEN`, at least 16 bytes) that
    /// open /api/snapshot; each such request is logged as an audit line. Read again when it
    /// changes; while it is missing or malformed the snapshot is closed. Without it, the
    /// snapshot is served on a loopback --listen address only.
    #[arg(long, value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// HTTP connections open at once (kept below the file-descriptor limit); at the cap the
    /// oldest idle one is closed.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS as u32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Time for a request head to arrive on an idle connection before it is closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    header_timeout: Duration,
    /// A service's /metrics (`http://host:port/metrics`; repeatable; every address the host
    /// resolves to is an instance): its `http_route` values become route templates, and
    /// records are grouped by route too. Scrape failures are counted in
    /// edge_service_scrapes_total{result="failure"}.
    #[arg(long = "service-metrics", value_name = "URL", value_parser = parse_target)]
    service_metrics: Vec<Target>,
    /// How often each --service-metrics URL is scraped (a failing one backs off up to 60s).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    service_scrape_interval: Duration,
    /// Where each --service-metrics instance serves its slowest requests with their trace ids
    /// (`/debug/slow` where vantage_tower's SlowRequests is mounted), read at the same address
    /// after each scrape and joined with the edge's slowest by trace id in /api/slow. Not read
    /// unless given: a service counts every request for a page it does not have.
    #[arg(long, value_name = "PATH", value_parser = parse_slow_path)]
    service_slow_path: Option<String>,
}

/// How lines are read and grouped: shared by `report` and `serve`.
#[derive(Debug, Args)]
struct ParsingArgs {
    /// The log format, or `auto` to detect it from the first lines.
    /// Known: traefik-common, traefik-json, nginx-combined, nginx-combined-rt, ingress-nginx,
    /// envoy, haproxy, haproxy-syslog, caddy-json, caddy-json-ns, caddy-json-ms.
    #[arg(short, long, default_value = "auto")]
    format: String,
    /// An nginx `log_format` string to compile into a parser (variables such as
    /// $request_time, $upstream_response_time, $status, $host).
    #[arg(long, value_name = "LOG_FORMAT", conflicts_with = "nginx_conf")]
    nginx_log_format: Option<String>,
    /// Read the `log_format` from an nginx configuration file.
    #[arg(long, value_name = "FILE")]
    nginx_conf: Option<PathBuf>,
    /// Which `log_format` of --nginx-conf to use.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "main",
        requires = "nginx_conf"
    )]
    nginx_log_format_name: String,
    /// A route template (axum syntax: `{id}` one segment, `{*rest}` the rest); repeatable.
    /// Paths no template matches are `(other)`. Without templates, numeric, UUID and hex-hash
    /// segments become `{id}`.
    #[arg(short, long = "route", value_name = "TEMPLATE")]
    routes: Vec<String>,
    /// A file of route templates, one per line (`#` comments).
    #[arg(long = "routes", value_name = "FILE")]
    routes_file: Option<PathBuf>,
    /// A path prefix the proxy strips before passing requests on (`/api`): cut from logged
    /// paths before they are matched, so that they meet the service's own routes.
    #[arg(long, value_name = "PREFIX")]
    strip_prefix: Option<String>,
    /// At most this many groups; groups first seen later are folded into `(overflow)`.
    #[arg(long, default_value_t = DEFAULT_MAX_GROUPS, value_name = "N")]
    max_groups: usize,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// The log format to write (any preset of `report --format`).
    #[arg(short, long, default_value = "traefik-common")]
    format: String,
    /// How many lines.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    lines: usize,
    /// Seed of the generator: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Requests per second of the log's timestamps.
    #[arg(long, default_value_t = 200.0)]
    rps: f64,
    /// Share of malformed lines, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    malformed_rate: f64,
    /// Unix time of the first line.
    #[arg(long, default_value_t = 1_741_521_600)]
    start: i64,
}

const REPORT_HELP: &str = "\
Examples:
  edge-parser report /var/log/traefik/access.log
  edge-parser report 'access.log*' --by router,method --top 10
  zcat access.log.1.gz | edge-parser report - --format nginx-combined-rt --json
  edge-parser report access.log --route '/api/users/{id}' --route '/static/{*file}'
  edge-parser report access.log --html report.html   # one page, opens with no network
  edge-parser report access.log --nginx-conf /etc/nginx/nginx.conf --nginx-log-format-name timed

Every line is counted as parsed, malformed (the first few are shown with their line numbers)
or filtered. Percentiles are nearest-rank within 0.1 %; the maximum is exact.

Exit codes:
  0  the report was produced
  1  the input had no parseable line
  2  usage error, or an input could not be read (the message names it)";

#[derive(Debug, Args)]
struct ReportArgs {
    /// Log files, glob patterns (quoted) or `-` for standard input; `.gz` files are
    /// decompressed. Several files are read as one stream, in the order of their first
    /// timestamp. Standard input when none is given.
    files: Vec<String>,
    #[command(flatten)]
    parsing: ParsingArgs,
    /// Report on a snapshot saved from `serve` (`/api/snapshot`) instead of reading logs.
    #[arg(long, value_name = "FILE", conflicts_with = "files")]
    snapshot: Option<PathBuf>,
    /// Group by these dimensions, comma-separated: router, route, service, host, method,
    /// status. Default: router for formats that log one (Traefik, ingress-nginx, HAProxy),
    /// route otherwise.
    #[arg(short, long, value_delimiter = ',', value_name = "DIMENSIONS")]
    by: Vec<Dimension>,
    /// Show only the first N groups.
    #[arg(short, long, value_name = "N")]
    top: Option<usize>,
    /// Order groups by: requests, p99, errors (5xx share), key.
    #[arg(short, long, default_value = "requests", value_name = "KEY")]
    sort: SortKey,
    /// Print one JSON document (documented in README.md) instead of the table.
    #[arg(long)]
    json: bool,
    /// Write the report as one self-contained HTML page to FILE (`-`: standard output)
    /// instead: the dashboard's views, with the data embedded (it opens with no network).
    #[arg(long, value_name = "FILE", conflicts_with = "json")]
    html: Option<PathBuf>,
    /// Parser threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Never show progress (shown on stderr when it is a terminal).
    #[arg(short, long)]
    quiet: bool,
}

impl Cli {
    /// Runs the command; the exit code follows [`EXIT_CODES`].
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        // A daemon logs its lifecycle; one-shot commands only their warnings.
        let quiet_level = if matches!(self.command, Command::Serve(_)) {
            1
        } else {
            0
        };
        init_logging(self.verbose.saturating_add(quiet_level));
        match self.command {
            Command::Report(args) => report(&args),
            Command::Serve(args) => serve(&args),
            Command::Generate(args) => generate(&args),
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.snapshot {
        return report_snapshot(args, path);
    }
    let mut config = ReportConfig::new(args.files.iter().cloned());
    config.format = explicit_format(&args.parsing)?;
    config.group_by.clone_from(&args.by);
    config.routes = route_rules(&args.parsing)?;
    config.max_groups = args.parsing.max_groups;
    config.threads = args.threads.map(usize::from);
    let report = Report::new(config).map_err(|error| match error {
        ReportError::Detect(error) => anyhow::Error::new(error).context("--format auto"),
        error => error.into(),
    })?;
    let meta = ReportMeta {
        format: report.format().name().to_owned(),
        inputs: report.inputs().to_vec(),
    };
    let progress = Progress::default();
    let display = (!args.quiet && std::io::stderr().is_terminal())
        .then(|| ProgressDisplay::start(&progress, report.total_bytes()));
    let aggregate = report.run(&progress);
    if let Some(display) = display {
        display.finish();
    }
    print_report(args, &aggregate?, &meta)
}

/// Prints the table or the JSON document; exit 1 when no line was a request.
fn print_report(
    args: &ReportArgs,
    aggregate: &Aggregate,
    meta: &ReportMeta,
) -> anyhow::Result<ExitCode> {
    let options = ReportOptions {
        sort: args.sort,
        top: args.top,
    };
    let output = if let Some(path) = &args.html {
        let page = html::report_page(&json::to_json(aggregate, meta, options));
        if path.as_os_str() == "-" {
            page
        } else {
            std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
            String::new()
        }
    } else if args.json {
        json::to_json_text(aggregate, meta, options)?
    } else {
        table::to_table(aggregate, meta, options)
    };
    write_stdout(output.as_bytes())?;
    let lines = aggregate.lines();
    if lines.parsed == 0 {
        tracing::warn!(
            "no line could be parsed as {} ({} lines read)",
            terminal_safe(&meta.format),
            lines.total
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `report --snapshot`: the aggregate `serve` saved, shown as a report.
fn report_snapshot(args: &ReportArgs, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let snapshot = read_snapshot(path)?;
    let mut aggregate = snapshot.state.aggregate;
    aggregate.finish(args.parsing.max_groups.max(1));
    let meta = ReportMeta {
        format: snapshot.config,
        inputs: vec![path.display().to_string()],
    };
    print_report(args, &aggregate, &meta)
}

fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut tail = TailConfig::new(args.logs.iter().cloned());
    tail.from_start = args.from_start;
    tail.poll_interval = args.poll_interval;
    let mut config = ServeConfig::new(tail, args.listen);
    config.format = explicit_format(&args.parsing)?;
    config.routes = route_rules(&args.parsing)?;
    config.max_groups = args.parsing.max_groups;
    config.checkpoint = args.checkpoint.clone().map(|path| CheckpointTarget {
        path,
        interval: args.checkpoint_interval,
    });
    config.reset_checkpoint = args.reset_checkpoint;
    config.stale_after = args.stale_after;
    config.watch = WatchConfig {
        drop_ratio: args.drop_ratio,
        spike_ratio: args.spike_ratio,
        min_baseline_rps: args.min_baseline_rps,
        ..WatchConfig::default()
    };
    config.auth = args.auth_token_file.as_deref().map(|path| {
        let (tokens, error) = AuthTokens::from_file_or_closed(path);
        if let Some(error) = error {
            tracing::error!(%error, "--auth-token-file: the guarded endpoints stay closed until it is fixed");
        }
        tokens
    });
    config.limits.max_connections = args.max_connections as usize;
    config.limits.header_timeout = args.header_timeout;
    config.services = args.service_metrics.clone();
    config.service_scrape = scrape::Settings {
        interval: args.service_scrape_interval,
        slow_path: args.service_slow_path.clone(),
    };
    match vantage_edge::serve::run(&config) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error @ ServeError::FinalCheckpoint(_)) => {
            eprintln!("edge-parser: error: {error:#}");
            Ok(ExitCode::from(1))
        }
        Err(error) => Err(error.into()),
    }
}

/// `--service-slow-path`: a path.
fn parse_slow_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_owned())
    } else {
        Err("a path starting with `/`, such as /debug/slow".to_owned())
    }
}

fn parse_target(url: &str) -> Result<Target, String> {
    Target::parse(url).map_err(|error| error.to_string())
}

/// Parses `250ms`, `5s`, `2m`, `1h` or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 250ms, 5s, 2m or 1h"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("{text:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let format: Format = args.format.parse().context("--format")?;
    if !(0.0..=1.0).contains(&args.malformed_rate) {
        bail!(
            "--malformed-rate must be between 0 and 1, not {}",
            args.malformed_rate
        );
    }
    if !(args.rps.is_finite() && args.rps > 0.0) {
        bail!("--rps must be a positive number, not {}", args.rps);
    }
    let config = SynthConfig::new()
        .seed(args.seed)
        .rps(args.rps)
        .start_unix_secs(args.start)
        .malformed_rate(args.malformed_rate);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    for line in Generator::new(format, config).take(args.lines) {
        let written = out
            .write_all(&line.text)
            .and_then(|()| out.write_all(b"\n"));
        match written {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS);
            }
            result => result.context("writing the log")?,
        }
    }
    match out.flush() {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        result => result.context("writing the log")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The format the flags name, or `None` for `--format auto`.
fn explicit_format(args: &ParsingArgs) -> anyhow::Result<Option<Format>> {
    let custom = if let Some(source) = &args.nginx_log_format {
        Some(LogFormat::compile(source).context("--nginx-log-format")?)
    } else if let Some(path) = &args.nginx_conf {
        let conf = std::fs::read_to_string(path)
            .with_context(|| format!("reading --nginx-conf {}", path.display()))?;
        let name = &args.nginx_log_format_name;
        Some(
            LogFormat::from_nginx_conf(&conf, name)
                .with_context(|| format!("--nginx-conf {}: log_format {name:?}", path.display()))?,
        )
    } else {
        None
    };
    if let Some(custom) = custom {
        if args.format != "auto" {
            bail!(
                "--format {} conflicts with a custom nginx log_format",
                args.format
            );
        }
        return Ok(Some(Format::Nginx(custom)));
    }
    if args.format == "auto" {
        return Ok(None);
    }
    Ok(Some(args.format.parse().context("--format")?))
}

fn route_rules(args: &ParsingArgs) -> anyhow::Result<RouteRules> {
    let mut templates = args.routes.clone();
    if let Some(path) = &args.routes_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --routes {}", path.display()))?;
        let from_file = RouteRules::from_file_text(&text)
            .with_context(|| format!("--routes {}", path.display()))?;
        templates.extend(from_file.templates().map(str::to_owned));
    }
    let rules = RouteRules::new(&templates).context("--route")?;
    Ok(match &args.strip_prefix {
        Some(prefix) => rules.with_strip_prefix(prefix),
        None => rules,
    })
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result.context("writing the report")?),
    }
}

/// Bytes and lines per second, and the time left, on stderr while the pipeline runs.
struct ProgressDisplay {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl ProgressDisplay {
    fn start(progress: &Progress, total_bytes: u64) -> Self {
        let bar = if total_bytes > 0 {
            indicatif::ProgressBar::new(total_bytes)
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        let template = if total_bytes > 0 {
            "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg} ETA {eta}"
        } else {
            "{spinner} {bytes} {bytes_per_sec} {msg}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        let (stop, stopped) = std::sync::mpsc::channel();
        let (bytes, lines) = (progress.raw_bytes.clone(), progress.lines.clone());
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while stopped.recv_timeout(Duration::from_millis(200)).is_err() {
                bar.set_position(bytes.load(Ordering::Relaxed));
                let lines = lines.load(Ordering::Relaxed);
                let rate = lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!("{lines} lines, {:.0} k lines/s", rate / 1e3));
            }
            bar.finish_and_clear();
        });
        Self { stop, thread }
    }

    fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

//! The command line: clap definitions and the glue from flags to library calls.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use vantage_edge::aggregate::{AggregateConfig, DEFAULT_MAX_GROUPS, Dimension, default_dimension};
use vantage_edge::format::{Format, LogFormat, detect};
use vantage_edge::input::{self, Input, InputSpec, Source};
use vantage_edge::pipeline::{Pipeline, Progress, order_by_time};
use vantage_edge::report::{self, ReportMeta, ReportOptions, SortKey};
use vantage_edge::route::RouteRules;
use vantage_edge::synth::{Generator, SynthConfig};

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
    /// Write a synthetic access log to stdout, to try the other commands or benchmark them.
    Generate(GenerateArgs),
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
    /// The log format, or `auto` to detect it from the first lines (-v says which was chosen).
    /// Known: traefik-common, traefik-json, nginx-combined, nginx-combined-rt, ingress-nginx,
    /// envoy, haproxy, haproxy-syslog, caddy-json, caddy-json-ns, caddy-json-ms.
    #[arg(short, long, default_value = "auto")]
    format: String,
    /// An nginx `log_format` string to compile into a parser (variables such as $request_time,
    /// $upstream_response_time, $status, $host), e.g. '$remote_addr [$time_local] "$request"
    /// $status $request_time'.
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
    /// Parser threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// At most this many groups; groups first seen later are folded into `(overflow)`.
    #[arg(long, default_value_t = DEFAULT_MAX_GROUPS, value_name = "N")]
    max_groups: usize,
    /// Never show progress (shown on stderr when it is a terminal).
    #[arg(short, long)]
    quiet: bool,
}

impl Cli {
    /// Runs the command; the exit code follows [`EXIT_CODES`].
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        init_logging(self.verbose);
        match self.command {
            Command::Report(args) => report(args),
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

/// How much of the first input format detection looks at.
const DETECT_BYTES: usize = 64 << 10;

fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let specs = input::expand(&args.files)?;
    let mut sources: Vec<Source> = Vec::with_capacity(specs.len());
    let mut head = None;
    for spec in specs {
        if spec == InputSpec::Stdin {
            let mut stdin = Input::open(&spec, Default::default())?;
            if head.is_none() && sources.is_empty() {
                head = Some(stdin.peek(DETECT_BYTES)?);
            }
            sources.push(Source::Open(stdin));
        } else {
            sources.push(Source::Spec(spec));
        }
    }
    let format = choose_format(&args, &sources, head.as_deref())?;
    let sources = order_sources(sources, &format)?;

    let mut config = AggregateConfig::new(format.clone());
    config.group_by = if args.by.is_empty() {
        vec![default_dimension(&format)]
    } else {
        args.by.clone()
    };
    config.routes = route_rules(&args)?;
    config.max_groups = args.max_groups.max(1);

    let names: Vec<String> = sources.iter().map(source_name).collect();
    let total_bytes: u64 = sources.iter().map(source_size).sum();
    let pipeline = Pipeline {
        threads: args
            .threads
            .map_or(Pipeline::default().threads, usize::from),
        ..Pipeline::default()
    };
    let progress = Progress::default();
    let display = (!args.quiet && std::io::stderr().is_terminal())
        .then(|| ProgressDisplay::start(&progress, total_bytes));
    let aggregate = pipeline.run(sources, &config, &progress);
    if let Some(display) = display {
        display.finish();
    }
    let aggregate = aggregate?;

    let meta = ReportMeta {
        format: format.name().to_owned(),
        inputs: names,
    };
    let options = ReportOptions {
        sort: args.sort,
        top: args.top,
    };
    let output = if args.json {
        let mut text = serde_json::to_string_pretty(&report::to_json(&aggregate, &meta, options))?;
        text.push('\n');
        text
    } else {
        report::to_table(&aggregate, &meta, options)
    };
    write_stdout(output.as_bytes())?;
    if aggregate.lines.parsed == 0 {
        tracing::warn!(
            "no line could be parsed as {} ({} lines read)",
            format.name(),
            aggregate.lines.total
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
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

fn choose_format(
    args: &ReportArgs,
    sources: &[Source],
    stdin_head: Option<&[u8]>,
) -> anyhow::Result<Format> {
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
        return Ok(Format::Nginx(custom));
    }
    if args.format != "auto" {
        return args.format.parse().context("--format");
    }
    let head = match (stdin_head, sources.first()) {
        (Some(head), _) => head.to_vec(),
        (None, Some(Source::Spec(InputSpec::Path(path)))) => Input::head(path, DETECT_BYTES)?,
        _ => bail!("no input to detect the format from"),
    };
    let detection = detect(&head).context("--format auto")?;
    tracing::info!("{detection} (from {})", source_name(&sources[0]));
    Ok(detection.format)
}

fn order_sources(sources: Vec<Source>, format: &Format) -> anyhow::Result<Vec<Source>> {
    if sources.len() < 2 || sources.iter().any(|s| matches!(s, Source::Open(_))) {
        return Ok(sources);
    }
    let specs = sources
        .into_iter()
        .map(|source| match source {
            Source::Spec(spec) => spec,
            Source::Open(_) => InputSpec::Stdin,
        })
        .collect();
    Ok(order_by_time(specs, format)?
        .into_iter()
        .map(Source::Spec)
        .collect())
}

fn route_rules(args: &ReportArgs) -> anyhow::Result<RouteRules> {
    let mut templates = args.routes.clone();
    if let Some(path) = &args.routes_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --routes {}", path.display()))?;
        let from_file = RouteRules::from_file_text(&text)
            .with_context(|| format!("--routes {}", path.display()))?;
        templates.extend(from_file.templates().map(str::to_owned));
    }
    Ok(RouteRules::new(&templates).context("--route")?)
}

fn source_name(source: &Source) -> String {
    match source {
        Source::Spec(spec) => spec.name(),
        Source::Open(input) => input.name.clone(),
    }
}

fn source_size(source: &Source) -> u64 {
    match source {
        Source::Spec(InputSpec::Path(path)) => std::fs::metadata(path).map_or(0, |m| m.len()),
        _ => 0,
    }
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

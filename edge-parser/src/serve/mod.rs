//! `edge-parser serve`: follow access logs live and serve what they say.
//!
//! ```text
//! log files ──edge-tail thread──▶ bounded channel ──▶ ingest thread (parse, aggregate,
//!   (poll, rotations)                                   windows, watch, checkpoint)
//!                                                              ▲ queries │ replies
//!                                     HTTP (hyper, one port) ──┘         ▼
//! ```
//!
//! The tailer ([`crate::tail`]) reads complete lines and blocks when the channel is full, so
//! reading slows down when parsing falls behind and memory does not grow with a backlog. One
//! ingest thread owns all the state: it parses every line in order (millions of
//! lines per second on one core, far above what a proxy writes), answers the HTTP side's
//! queries between batches, and writes the checkpoint (file positions with the state they
//! produced) every few seconds and at shutdown. SIGTERM or SIGINT stops the reading, the last
//! batches are taken in, the final checkpoint is written and the process exits 0.
//!
//! Inside (crate-private): `http` (the endpoints, answered by the ingest loop through
//! queries), `ingest` (the state and the checkpoint), `window` (sliding windows per group for
//! `/api/summary` and the live stream). What they show is rendered by [`crate::export`], what
//! they persist is [`crate::state`], the anomaly signals come from [`crate::watch`].

mod auth;
pub(crate) mod clock;
mod conn;
pub(crate) mod history;
pub(crate) mod http;
mod ingest;
mod page;
mod persist;
pub(crate) mod requests;
pub(crate) mod window;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, bounded, select};

use self::http::Asked;
use crate::aggregate::{AggregateConfig, DEFAULT_MAX_GROUPS, Dimension};
use crate::format::{DetectError, Format};
use crate::read::{DEFAULT_MAX_LINE_BYTES, InputError, InputSpec, Sample, Source};
use crate::reconcile::scrape::{self, Scrapes, Target};
use crate::route::RouteRules;
use crate::state;
use crate::tail::{CheckpointError, TailConfig, TailError, Tailer};
use crate::watch::{Watch, WatchConfig, WatchConfigError};
pub use auth::{AuthTokens, AuthTokensError, MIN_TOKEN_BYTES};
pub use conn::{DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Limits};
pub use ingest::CheckpointTarget;
use ingest::{Ingest, IngestConfig, Restored, restore};

/// Messages in flight between the tailer and the ingest loop (each up to a batch of lines).
const TAIL_CHANNEL: usize = 16;
/// The largest batch of lines `serve` takes from the tailer (its buffer holds one read more,
/// 64 KiB): the channel holds 1.5 MiB at most (20 MiB with 64 of the tailer's default
/// batches), still far more than the ingest loop takes in between two looks at it.
const BATCH_BYTES: usize = 32 << 10;
/// Queries waiting for the ingest loop.
const QUERY_CHANNEL: usize = 256;
/// How often the ingest loop does its periodic work (and how finely the checkpoint interval
/// is kept).
const TICK: Duration = Duration::from_millis(100);
/// Default time between two checkpoints: with the time to write one, how stale `/metrics` may
/// be (it shows the counters of the last checkpoint written).
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// Everything `serve` runs with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// What to follow.
    pub tail: TailConfig,
    /// The log format; `None` detects it from the first lines of the followed files, waiting
    /// for them (or takes the checkpoint's).
    pub format: Option<Format>,
    /// How request targets become routes.
    pub routes: RouteRules,
    /// Cap on the number of groups.
    pub max_groups: usize,
    /// The grouping; `None` for `serve`'s (see [`state::serve_config`]).
    pub group_by: Option<Vec<Dimension>>,
    /// Where the checkpoint goes, if anywhere.
    pub checkpoint: Option<CheckpointTarget>,
    /// Start over even if a checkpoint exists (it is replaced at the first write).
    pub reset_checkpoint: bool,
    /// A group with no line for this long is marked stale in `/api/summary`.
    pub stale_after: Duration,
    /// The watch tower's thresholds.
    pub watch: WatchConfig,
    /// The HTTP listen address.
    pub listen: SocketAddr,
    /// Tokens that open the guarded endpoints (the snapshot); without them those are served
    /// on a loopback listen address only.
    pub auth: Option<AuthTokens>,
    /// Connection cap and timeouts of the HTTP side.
    pub limits: Limits,
    /// The services' `/metrics` to scrape (their `http_route` values become route templates,
    /// and records are grouped by route too); none by default.
    pub services: Vec<Target>,
    /// How often each service is scraped, and where its slowest requests are read.
    pub service_scrape: scrape::Settings,
}

impl ServeConfig {
    /// The defaults for following `tail` and serving on `listen`: detected format, automatic
    /// routes, no checkpoint.
    pub fn new(tail: TailConfig, listen: SocketAddr) -> Self {
        Self {
            tail,
            format: None,
            routes: RouteRules::auto(),
            max_groups: DEFAULT_MAX_GROUPS,
            group_by: None,
            checkpoint: None,
            reset_checkpoint: false,
            stale_after: Duration::from_secs(60),
            watch: WatchConfig::default(),
            listen,
            auth: None,
            limits: Limits::default(),
            services: Vec::new(),
            service_scrape: scrape::Settings::default(),
        }
    }

    /// How lines of `format` are parsed and grouped.
    pub fn aggregate_config(&self, format: Format) -> AggregateConfig {
        let mut config = state::serve_config(
            format,
            self.routes.clone(),
            self.max_groups,
            self.group_by.clone(),
        );
        // Read beside the services, records are grouped by their routes too.
        if self.group_by.is_none()
            && !self.services.is_empty()
            && !config.group_by.contains(&Dimension::Route)
        {
            config.group_by.push(Dimension::Route);
        }
        config
    }
}

/// Why `serve` could not start or went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The checkpoint cannot be resumed.
    #[error("{0} (start over with --reset-checkpoint)")]
    Checkpoint(#[from] CheckpointError),
    /// The last checkpoint, at shutdown, could not be written: a restart reads the lines
    /// since the one before again, and counts them once (nothing is lost or doubled).
    #[error("the final checkpoint was not written: {0}")]
    FinalCheckpoint(CheckpointError),
    /// The tail configuration is not usable.
    #[error(transparent)]
    Tail(#[from] TailError),
    /// The watch thresholds are not usable.
    #[error(transparent)]
    Watch(#[from] WatchConfigError),
    /// The listen address cannot be bound or served.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// A thread or the runtime could not be started.
    #[error("cannot start: {0}")]
    Start(std::io::Error),
}

/// Runs until SIGTERM or SIGINT; see the [module docs](self).
///
/// # Errors
///
/// A checkpoint that cannot be resumed, an unusable configuration, a listen address that
/// cannot be bound, or a final checkpoint that could not be written.
pub fn run(config: &ServeConfig) -> Result<(), ServeError> {
    run_until(config, |_| {}, shutdown_signal())
}

/// Runs until `shutdown` resolves, calling `listening` with the bound address once the HTTP
/// side accepts connections (useful with port 0): `serve` embedded in another program.
///
/// # Errors
///
/// As [`run`].
pub fn run_until(
    config: &ServeConfig,
    listening: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let watch = Watch::new(config.watch.clone())?;
    // Refused at once rather than after the format is known.
    Tailer::new(config.tail.clone())?;
    // A known format: the checkpoint is restored (or refused) before anything is served.
    let known = match known_format(config) {
        Some(format) => Some(restore_for(config, format)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Start)?;
    let listener = runtime
        .block_on(http::bind(config.listen))
        .map_err(|error| ServeError::Listen {
            addr: config.listen,
            error,
        })?;
    let local = listener.local_addr().map_err(ServeError::Start)?;
    listening(local);
    tracing::info!(
        "serving on http://{local}: /metrics /health /ready /api/summary /api/stream /api/reconcile /api/slow /api/snapshot"
    );

    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let (scrapes_published, scrapes) = tokio::sync::watch::channel(Arc::new(Scrapes::new()));
    if !config.services.is_empty() {
        runtime.spawn(scrape::run(
            config.services.clone(),
            config.service_scrape.clone(),
            scrapes_published,
            http_stopped.clone(),
        ));
    }
    let (queries, asked) = bounded(QUERY_CHANNEL);
    let summaries = Arc::new(tokio::sync::watch::Sender::new(Bytes::new()));
    let (limits, max_files) = conn::share_fds(config.limits, config.tail.max_files);
    let exposition = Arc::new(http::PublishedExposition::default());
    let side = http::HttpSide {
        queries,
        exposition: Arc::clone(&exposition),
        summaries: Arc::clone(&summaries),
        guard: auth::Guard::new(config.auth.clone(), local),
        connections: Arc::new(conn::Connections::new(limits)),
        scrapes: scrapes.clone(),
    };
    let stop_reading = Arc::new(AtomicBool::new(false));
    let (ingest_done, ingest_ended) = tokio::sync::oneshot::channel::<()>();

    std::thread::scope(|scope| -> Result<(), ServeError> {
        let stop = Arc::clone(&stop_reading);
        let ingest_thread = std::thread::Builder::new()
            .name("edge-ingest".to_owned())
            .spawn_scoped(scope, move || {
                let published = Published {
                    summaries,
                    exposition,
                    scrapes,
                };
                let result = ingest_loop(config, max_files, known, watch, &asked, published, &stop);
                let _ = ingest_done.send(());
                result
            })
            .map_err(ServeError::Start)?;

        runtime.block_on(async {
            tokio::select! {
                () = http::serve(listener, side, http_stopped) => {},
                () = shutdown => {},
                // The ingest loop ended on its own: it could not start.
                _ = ingest_ended => {},
            }
        });
        tracing::info!(
            "stopping: reading stops, the last lines are taken in, the checkpoint is written"
        );
        let _ = stop_http.send(true);
        stop_reading.store(true, Ordering::Release);
        ingest_thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Where the ingest loop publishes what the HTTP side serves without asking it.
struct Published {
    summaries: Arc<tokio::sync::watch::Sender<Bytes>>,
    exposition: Arc<http::PublishedExposition>,
    /// The services' scrapes, as the scraper task publishes them.
    scrapes: tokio::sync::watch::Receiver<Arc<Scrapes>>,
}

/// The format given, or the one of the checkpoint `serve` is to resume.
fn known_format(config: &ServeConfig) -> Option<Format> {
    if config.format.is_some() {
        return config.format.clone();
    }
    if config.reset_checkpoint {
        return None;
    }
    let format = checkpoint_format(&config.checkpoint.as_ref()?.path)?;
    tracing::info!(
        format = format.name(),
        "--format auto: the checkpoint's format"
    );
    Some(format)
}

/// How lines of `format` are grouped, and the state the checkpoint holds for that.
fn restore_for(
    config: &ServeConfig,
    format: Format,
) -> Result<(AggregateConfig, Restored), ServeError> {
    let aggregate = config.aggregate_config(format);
    let restored = if config.reset_checkpoint {
        Restored::default()
    } else {
        restore(
            config.checkpoint.as_ref(),
            &aggregate,
            &config.tail.patterns,
        )?
    };
    if restored.restored {
        tracing::info!(
            files = restored.files.len(),
            lines = restored.state.aggregate.lines.total,
            "continuing from the checkpoint"
        );
    }
    Ok((aggregate, restored))
}

/// The ingest thread: settles the format (waiting for lines if it is to be detected) and the
/// restored state, starts the tailer and takes in its messages until `stop`.
fn ingest_loop(
    config: &ServeConfig,
    max_files: usize,
    known: Option<(AggregateConfig, Restored)>,
    watch: Watch,
    asked: &Receiver<Asked>,
    published: Published,
    stop: &Arc<AtomicBool>,
) -> Result<(), ServeError> {
    let mut tail = config.tail.clone();
    tail.max_files = max_files;
    tail.batch_bytes = tail.batch_bytes.min(BATCH_BYTES);
    let (aggregate, restored) = match known {
        Some(known) => known,
        None => match wait_for_format(config, asked, stop) {
            Some((format, waited)) => {
                // The files had no line when serve started: what they hold now came since,
                // and is read whole.
                tail.from_start |= waited;
                restore_for(config, format)?
            }
            None => return Ok(()),
        },
    };
    let tailer = if restored.restored {
        Tailer::resume(tail, restored.files.clone())?
    } else {
        Tailer::new(tail)?
    };
    let tail_status = tailer.status_handle();
    let (lines, tail_messages) = bounded(TAIL_CHANNEL);
    let tail_thread = tailer
        .spawn(lines, Arc::clone(stop))
        .map_err(ServeError::Start)?;
    let ingest_config = IngestConfig {
        aggregate: &aggregate,
        patterns: &config.tail.patterns,
        checkpoint: config.checkpoint.clone(),
        stale_after: config.stale_after,
        max_line_bytes: config.tail.max_line_bytes,
        summaries: published.summaries,
        exposition: published.exposition,
        scrapes: (!config.services.is_empty()).then_some(published.scrapes),
    };
    let mut ingest = Ingest::new(ingest_config, restored, watch, tail_status);
    // Without a checkpoint, a channel that never delivers.
    let written = ingest
        .checkpoint_outcomes()
        .unwrap_or_else(crossbeam_channel::never);
    let mut last_tick = Instant::now();
    loop {
        select! {
            recv(tail_messages) -> message => match message {
                Ok(message) => ingest.handle(&message),
                // The tailer stopped: everything it sent is in.
                Err(_) => break,
            },
            recv(asked) -> query => {
                if let Ok(query) = query {
                    ingest.answer(query);
                }
            },
            recv(written) -> outcome => {
                if let Ok(outcome) = outcome {
                    ingest.checkpoint_written(outcome);
                }
            },
            default(TICK) => {},
        }
        if last_tick.elapsed() >= TICK {
            ingest.tick();
            last_tick = Instant::now();
        }
    }
    let _ = tail_thread.join();
    ingest
        .write_checkpoint()
        .map_err(ServeError::FinalCheckpoint)
}

/// Waits until the format can be detected from the followed files, answering queries
/// meanwhile: the format and whether it had to wait; `None` when stopped first.
fn wait_for_format(
    config: &ServeConfig,
    asked: &Receiver<Asked>,
    stop: &AtomicBool,
) -> Option<(Format, bool)> {
    let patterns = config.tail.patterns.join(", ");
    let no_line = format!("--format auto: waiting for a first line in {patterns}");
    let mut waiting = String::new();
    let mut last_look: Option<Instant> = None;
    while !stop.load(Ordering::Acquire) {
        if last_look.is_none_or(|at| at.elapsed() >= config.tail.poll_interval) {
            let waited = last_look.is_some();
            last_look = Some(Instant::now());
            let reason = match detect_format(&config.tail.patterns) {
                Ok(format) => {
                    if waited {
                        tracing::info!(format = format.name(), "--format auto: detected");
                    }
                    return Some((format, waited));
                }
                Err(DetectLogsError::NoLines { .. }) => no_line.clone(),
                Err(error) => format!("--format auto: {error}; waiting for more lines"),
            };
            if reason != waiting {
                tracing::warn!("{reason}");
                waiting = reason;
            }
        }
        if let Ok(query) = asked.recv_timeout(config.tail.poll_interval.min(TICK)) {
            ingest::answer_waiting(query, &waiting);
        }
    }
    None
}

/// The format a checkpoint was made for, when it names a preset.
fn checkpoint_format(path: &Path) -> Option<Format> {
    let snapshot = state::read_snapshot(path).ok()?;
    let name = snapshot
        .config
        .split_whitespace()
        .find_map(|part| part.strip_prefix("format="))?;
    name.parse().ok()
}

/// Why the format of the logs to follow could not be detected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectLogsError {
    /// No file the patterns name has a line yet.
    #[error("no line to detect the format from in {patterns}")]
    NoLines {
        /// The patterns, comma-separated.
        patterns: String,
    },
    /// The first lines found fit no format, or several.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// A file to detect the format from cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
}

/// Detects the format from the first non-blank lines of the files that `patterns` (paths or
/// globs) name, in order, past empty files and over-long lines (see
/// [`report`](crate::report)'s detection, the same).
///
/// # Errors
///
/// No file has a line yet, a file cannot be read, or the lines fit no format (or several).
pub fn detect_format(patterns: &[String]) -> Result<Format, DetectLogsError> {
    let mut sources = Vec::new();
    for pattern in patterns {
        let paths: Vec<std::path::PathBuf> = match glob::glob(pattern) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(_) => vec![std::path::PathBuf::from(pattern)],
        };
        // Files not there yet are followed once they appear; only regular files are sampled.
        sources.extend(
            paths
                .into_iter()
                .filter(|path| path.is_file())
                .map(|path| Source::Spec(InputSpec::Path(path))),
        );
    }
    let sample = Sample::take(&mut sources, DEFAULT_MAX_LINE_BYTES)?;
    if sample.is_empty() {
        return Err(DetectLogsError::NoLines {
            patterns: patterns.join(", "),
        });
    }
    let detection = sample.detect()?;
    tracing::info!(
        "{detection} (from {})",
        crate::export::terminal_safe(&sample.inputs())
    );
    Ok(detection.format)
}

/// Resolves at SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot watch for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {},
            () = terminate => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

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

pub(crate) mod http;
mod ingest;
pub(crate) mod window;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select};

use crate::aggregate::AggregateConfig;
use crate::format::{DetectError, Format, detect};
use crate::read::Input;
use crate::tail::{CheckpointError, TailConfig, TailError, Tailer};
use crate::watch::{Watch, WatchConfig, WatchConfigError};
pub use ingest::CheckpointTarget;
use ingest::{Ingest, IngestConfig, Restored, restore};

/// Messages in flight between the tailer and the ingest loop (each up to a batch of lines).
const TAIL_CHANNEL: usize = 64;
/// Queries waiting for the ingest loop.
const QUERY_CHANNEL: usize = 256;
/// How often the ingest loop does its periodic work.
const TICK: Duration = Duration::from_millis(500);

/// Everything `serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// What to follow.
    pub tail: TailConfig,
    /// How lines are parsed and grouped: [`state::serve_config`](crate::state::serve_config)
    /// gives `serve`'s grouping.
    pub aggregate: AggregateConfig,
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
}

/// Why `serve` could not start or went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The checkpoint cannot be resumed.
    #[error("{0} (start over with --reset-checkpoint)")]
    Checkpoint(#[from] CheckpointError),
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
/// A checkpoint that cannot be resumed, an unusable configuration, or a listen address that
/// cannot be bound.
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
    let restored = if config.reset_checkpoint {
        Restored::default()
    } else {
        restore(config.checkpoint.as_ref(), &config.aggregate)?
    };
    if restored.restored {
        tracing::info!(
            files = restored.files.len(),
            lines = restored.state.aggregate.lines.total,
            "continuing from the checkpoint"
        );
    }
    let tailer = if restored.restored {
        Tailer::resume(config.tail.clone(), restored.files.clone())?
    } else {
        Tailer::new(config.tail.clone())?
    };
    let tail_status = tailer.status_handle();

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
        "serving on http://{local}: /metrics /health /ready /api/summary /api/stream /api/snapshot"
    );

    let (lines, tail_messages) = bounded(TAIL_CHANNEL);
    let (queries, asked) = bounded(QUERY_CHANNEL);
    let stop_reading = Arc::new(AtomicBool::new(false));
    let tail_thread = tailer
        .spawn(lines, Arc::clone(&stop_reading))
        .map_err(ServeError::Start)?;
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);

    std::thread::scope(|scope| -> Result<(), ServeError> {
        let ingest_thread = std::thread::Builder::new()
            .name("edge-ingest".to_owned())
            .spawn_scoped(scope, move || {
                let ingest_config = IngestConfig {
                    aggregate: &config.aggregate,
                    checkpoint: config.checkpoint.clone(),
                    stale_after: config.stale_after,
                    max_line_bytes: config.tail.max_line_bytes,
                };
                let mut ingest = Ingest::new(ingest_config, restored, watch, tail_status);
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
                        default(TICK) => {},
                    }
                    if last_tick.elapsed() >= TICK {
                        ingest.tick();
                        last_tick = Instant::now();
                    }
                }
                ingest.write_checkpoint();
            })
            .map_err(ServeError::Start)?;

        let served = runtime.block_on(async {
            let server = http::serve(listener, queries, http_stopped);
            tokio::select! {
                result = server => result,
                () = shutdown => Ok(()),
            }
        });
        tracing::info!(
            "stopping: reading stops, the last lines are taken in, the checkpoint is written"
        );
        let _ = stop_http.send(true);
        stop_reading.store(true, Ordering::Release);
        let _ = tail_thread.join();
        let _ = ingest_thread.join();
        served.map_err(|error| ServeError::Listen { addr: local, error })
    })
}

/// How much of the first log format detection looks at.
const DETECT_BYTES: usize = 64 << 10;

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
}

/// Detects the format from the first bytes of the first file with content that `patterns`
/// (paths or globs) name.
///
/// # Errors
///
/// No file has a line yet, or its lines fit no format (or several).
pub fn detect_format(patterns: &[String]) -> Result<Format, DetectLogsError> {
    for pattern in patterns {
        let paths: Vec<std::path::PathBuf> = match glob::glob(pattern) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(_) => vec![std::path::PathBuf::from(pattern)],
        };
        for path in paths {
            if let Ok(head) = Input::head(&path, DETECT_BYTES) {
                if !head.is_empty() {
                    let detection = detect(&head)?;
                    tracing::info!("{detection} (from {})", path.display());
                    return Ok(detection.format);
                }
            }
        }
    }
    Err(DetectLogsError::NoLines {
        patterns: patterns.join(", "),
    })
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

//! Connections of the HTTP side, bounded so that no client can stop `serve` from outside.
//!
//! - **Accept errors never end the process.** Out of file descriptors (`EMFILE`, `ENFILE`) or
//!   memory, a connection reset before it was accepted: the error is counted and logged (once
//!   per kind until it clears), accepting backs off from [`ACCEPT_BACKOFF_MIN`] doubling to
//!   [`ACCEPT_BACKOFF_MAX`], then goes on.
//! - **A cap on open connections** ([`Limits::max_connections`], below the file-descriptor
//!   limit). At the cap, a new connection evicts the oldest *idle* one (connected, no request
//!   being answered, no stream open): idle keep-alive sockets and half-sent requests cannot
//!   lock a scraper out. When every connection is busy the new one is closed at once.
//! - **Timeouts**: a first byte must arrive within [`Limits::header_timeout`] of the
//!   connection being accepted (until then a connection is its socket alone, no buffer), and a
//!   request head within the same time of the connection becoming idle (hyper's header-read
//!   timer, which also runs between keep-alive requests), so a silent or trickling client is
//!   closed.
//!
//! What happened is visible on `/metrics` ([`ConnStats::render`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use vantage_instrument::names;

use super::http::Body;

/// First pause after a failed accept.
pub(crate) const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause after failed accepts in a row.
pub(crate) const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Connections open at once when the file-descriptor limit allows it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Time for a request head to arrive once a connection is idle.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// File descriptors kept for everything but connections and followed files: the listener,
/// the checkpoint and its directory, the runtime's own, standard streams.
const FD_RESERVE: usize = 64;

/// How many connections, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Connections open at once (lowered to fit below the file-descriptor limit).
    pub max_connections: usize,
    /// Time for a first byte to arrive once a connection is accepted, and for a request head
    /// once a connection is idle.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }
}

/// Shares the process's file descriptors between followed files and connections: the soft
/// limit is first raised to the hard one (as servers commonly do); then files get at most a
/// quarter of it and connections what is left but a margin, so that neither a glob matching
/// thousands of files nor thousands of clients can take the descriptors the other needs.
/// Returns the limits and the cap on files to use.
pub(crate) fn share_fds(limits: Limits, max_files: usize) -> (Limits, usize) {
    match raise_fd_limit() {
        Some(limit) => share(limits, max_files, limit),
        None => (limits, max_files),
    }
}

fn share(mut limits: Limits, max_files: usize, limit: u64) -> (Limits, usize) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let files = max_files.min(limit / 4).max(1);
    let connections = limit
        .saturating_sub(files)
        .saturating_sub(FD_RESERVE)
        .max(1);
    if files < max_files || connections < limits.max_connections {
        tracing::info!(
            limit,
            max_files = files,
            max_connections = connections.min(limits.max_connections),
            "the file-descriptor limit caps the files followed and the connections"
        );
    }
    limits.max_connections = limits.max_connections.min(connections);
    (limits, files)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; the soft limit in force after.
fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current
}

/// Counters of the connection layer, shown on `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    open: AtomicUsize,
    accepted: AtomicU64,
    accept_errors: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
}

impl ConnStats {
    /// Appends the connection families to an exposition.
    pub(crate) fn render(&self, out: &mut String) {
        let families: [(&str, &str, &str, u64); 5] = [
            (
                names::EDGE_HTTP_CONNECTIONS_OPEN,
                "gauge",
                "HTTP connections open now.",
                self.open.load(Ordering::Relaxed) as u64,
            ),
            (
                names::EDGE_HTTP_CONNECTIONS_ACCEPTED_TOTAL,
                "counter",
                "HTTP connections accepted since this process started.",
                self.accepted.load(Ordering::Relaxed),
            ),
            (
                names::EDGE_HTTP_ACCEPT_ERRORS_TOTAL,
                "counter",
                "Failed accepts (out of file descriptors, memory...) since this process started.",
                self.accept_errors.load(Ordering::Relaxed),
            ),
            (
                names::EDGE_HTTP_CONNECTIONS_EVICTED_TOTAL,
                "counter",
                "Idle HTTP connections closed to make room under the connection cap.",
                self.evicted.load(Ordering::Relaxed),
            ),
            (
                names::EDGE_HTTP_CONNECTIONS_REFUSED_TOTAL,
                "counter",
                "HTTP connections closed at once: the cap was reached and none was idle.",
                self.refused.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        }
    }
}

/// Marks its connection busy while alive: a request being answered, a stream open.
#[derive(Debug)]
pub(crate) struct Busy(Arc<AtomicUsize>);

impl Busy {
    pub(crate) fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct Slot {
    busy: Arc<AtomicUsize>,
    close: Option<oneshot::Sender<()>>,
}

/// The open connections, oldest first (ids only grow).
#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    open: BTreeMap<u64, Slot>,
}

/// Admission of connections under the cap.
#[derive(Debug)]
pub(crate) struct Connections {
    limits: Limits,
    registry: Mutex<Registry>,
    pub(crate) stats: ConnStats,
}

/// A connection admitted: its id, its busy counter, the signal that evicts it.
struct Admitted {
    id: u64,
    busy: Arc<AtomicUsize>,
    evicted: oneshot::Receiver<()>,
}

impl Connections {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            registry: Mutex::new(Registry::default()),
            stats: ConnStats::default(),
        }
    }

    /// Makes room for one more connection, evicting the oldest idle one at the cap; `None`
    /// when every connection is busy.
    fn admit(&self) -> Option<Admitted> {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if registry.open.len() >= self.limits.max_connections {
            let idle = registry
                .open
                .iter()
                .find(|(_, slot)| slot.busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id);
            let Some(idle) = idle else {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            if let Some(mut slot) = registry.open.remove(&idle) {
                if let Some(close) = slot.close.take() {
                    let _ = close.send(());
                }
                self.stats.evicted.fetch_add(1, Ordering::Relaxed);
                self.stats.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let id = registry.next_id;
        registry.next_id += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let (close, evicted) = oneshot::channel();
        registry.open.insert(
            id,
            Slot {
                busy: Arc::clone(&busy),
                close: Some(close),
            },
        );
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Admitted { id, busy, evicted })
    }

    fn release(&self, id: u64) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if registry.open.remove(&id).is_some() {
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Release<'a>(&'a Connections, u64);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// Accepts connections on `listener` until `shutdown` turns true, serving each with `handle`
/// (given the request, the peer and the connection's busy counter).
pub(crate) async fn accept_loop<H, F>(
    listener: TcpListener,
    connections: Arc<Connections>,
    handle: H,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, SocketAddr, Arc<AtomicUsize>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut last_error: Option<io::ErrorKind> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                last_error = None;
                accepted
            }
            Err(error) => {
                connections
                    .stats
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                if last_error != Some(error.kind()) {
                    tracing::warn!(%error, "cannot accept a connection; retrying");
                    last_error = Some(error.kind());
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {},
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let evicted_before = connections.stats.evicted.load(Ordering::Relaxed);
        let Some(admitted) = connections.admit() else {
            drop(stream);
            continue;
        };
        if connections.stats.evicted.load(Ordering::Relaxed) != evicted_before {
            // The evicted connection closes its socket when its task next runs: let it run
            // before accepting more, so that open descriptors stay within the cap.
            tokio::task::yield_now().await;
        }
        tokio::spawn(serve_connection(
            stream,
            peer,
            admitted,
            Arc::clone(&connections),
            handle.clone(),
            shutdown.clone(),
        ));
    }
}

async fn serve_connection<H, F>(
    stream: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    connections: Arc<Connections>,
    handle: H,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, SocketAddr, Arc<AtomicUsize>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let Admitted {
        id,
        busy,
        mut evicted,
    } = admitted;
    let _release = Release(&connections, id);
    // Until its first byte a connection is only its socket: hyper would give it a read buffer
    // (8 KiB) at once, 16 MiB for 2 000 idle connections. The header timeout runs from here.
    let mut byte = [0u8; 1];
    let first_byte = tokio::select! {
        // A peek, not a wait for readiness, which may be spurious.
        peeked = tokio::time::timeout(connections.limits.header_timeout, stream.peek(&mut byte)) => {
            matches!(peeked, Ok(Ok(1)))
        }
        _ = &mut evicted => {
            tracing::debug!(%peer, "idle connection evicted at the cap");
            false
        }
        _ = shutdown.changed() => false,
    };
    if !first_byte {
        return;
    }
    // Boxed: the task of a connection that never sends a byte stays a few hundred bytes, not
    // the size of hyper's connection state.
    Box::pin(serve_http(
        stream,
        peer,
        busy,
        evicted,
        handle,
        shutdown,
        &connections,
    ))
    .await;
}

/// Serves HTTP on a connection that sent its first byte.
async fn serve_http<H, F>(
    stream: TcpStream,
    peer: SocketAddr,
    busy: Arc<AtomicUsize>,
    evicted: oneshot::Receiver<()>,
    handle: H,
    mut shutdown: watch::Receiver<bool>,
    connections: &Connections,
) where
    H: Fn(Request<Incoming>, SocketAddr, Arc<AtomicUsize>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let service = hyper::service::service_fn(|request| {
        let busy_now = Busy::new(&busy);
        let answer = handle(request, peer, Arc::clone(&busy));
        async move {
            let response = answer.await;
            drop(busy_now);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(connections.limits.header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        }
        _ = evicted => tracing::debug!(%peer, "idle connection evicted at the cap"),
        _ = shutdown.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_idle_connection_is_evicted() {
        let connections = Connections::new(Limits {
            max_connections: 2,
            ..Limits::default()
        });
        let mut first = connections.admit().expect("room");
        let second = connections.admit().expect("room");
        let busy = Busy::new(&second.busy);
        let third = connections.admit().expect("the first is idle");
        assert_eq!(first.evicted.try_recv(), Ok(()));
        assert_eq!(connections.stats.evicted.load(Ordering::Relaxed), 1);
        assert_eq!(connections.stats.open.load(Ordering::Relaxed), 2);

        let _third_busy = Busy::new(&third.busy);
        assert!(connections.admit().is_none(), "every connection is busy");
        assert_eq!(connections.stats.refused.load(Ordering::Relaxed), 1);

        drop(busy);
        let mut second = second;
        assert!(connections.admit().is_some(), "the second became idle");
        assert_eq!(second.evicted.try_recv(), Ok(()));
        connections.release(third.id);
        assert_eq!(connections.stats.open.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn descriptors_are_shared_between_files_and_connections() {
        let limits = Limits::default();
        let (small, files) = share(limits, 256, 256);
        assert_eq!((small.max_connections, files), (128, 64));
        let (large, files) = share(limits, 256, 1 << 20);
        assert_eq!(
            (large.max_connections, files),
            (DEFAULT_MAX_CONNECTIONS, 256)
        );
        let (tiny, files) = share(limits, 256, 8);
        assert_eq!((tiny.max_connections, files), (1, 2));
    }
}

//! The HTTP side of `serve` (hyper 1, one listen address).
//!
//! | path | answer |
//! |---|---|
//! | `GET /metrics` | the Prometheus exposition ([`prometheus`](crate::export::prometheus)) |
//! | `GET /health` | `200 ok` while the process is alive |
//! | `GET /ready` | `200` once the checkpoint is restored and every configured path is opened or reported; `503` with a JSON reason otherwise |
//! | `GET /api/summary` | JSON per group over 1 m, 5 m and 1 h windows |
//! | `GET /api/stream` | server-sent events: one summary per second |
//! | `GET /api/snapshot` | the aggregate state (the checkpoint's content) as a file; `edge-parser report --snapshot FILE` reads it back |
//!
//! The state lives with the ingest loop, not here: each request sends a [`Query`] and awaits
//! its [`Reply`], so answers are always current and no lock is shared with the hot path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use futures_util::stream;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::auth::Guard;
use super::conn::{Busy, Connections, accept_loop};

/// At most this many `/api/stream` clients at once; more are answered `503`.
pub(crate) const MAX_STREAMS: usize = 256;
/// How long a query may wait for the ingest loop before the request fails with `503`.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// The methods served.
const ALLOW: &str = "GET, HEAD";
/// The paths served, named in a `404`.
const PATHS: &str = "not found: /metrics /health /ready /api/summary /api/stream /api/snapshot\n";

/// What an HTTP request asks of the ingest loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query {
    /// The Prometheus exposition.
    Metrics,
    /// Readiness, as JSON.
    Ready,
    /// The windows summary, as JSON.
    Summary,
    /// The aggregate state, as a JSON file.
    Snapshot,
}

/// The ingest loop's answer to a [`Query`].
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The status to answer with.
    pub(crate) status: StatusCode,
    /// The content type.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: Bytes,
}

/// A query with the way back.
#[derive(Debug)]
pub(crate) struct Asked {
    /// The query.
    pub(crate) query: Query,
    /// Where the reply goes.
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// The body of every response.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// What the HTTP side is given by `serve`.
#[derive(Debug)]
pub(crate) struct HttpSide {
    /// Where queries for the ingest loop go.
    pub(crate) queries: Sender<Asked>,
    /// The latest summary, published by the ingest loop once per tick for every stream.
    pub(crate) summaries: Arc<watch::Sender<Bytes>>,
    /// Who may read the guarded endpoints.
    pub(crate) guard: Guard,
    /// The connection cap and its counters.
    pub(crate) connections: Arc<Connections>,
}

#[derive(Debug)]
struct Server {
    side: HttpSide,
    streams: AtomicUsize,
}

/// Serves on `listener` until `shutdown` turns true; see the [module docs](self).
pub(crate) async fn serve(listener: TcpListener, side: HttpSide, shutdown: watch::Receiver<bool>) {
    let connections = Arc::clone(&side.connections);
    let server = Arc::new(Server {
        side,
        streams: AtomicUsize::new(0),
    });
    let handle = move |request, peer, busy| Arc::clone(&server).handle(request, peer, busy);
    accept_loop(listener, connections, handle, shutdown).await;
}

/// Binds the listen address.
///
/// # Errors
///
/// The address cannot be bound (in use, not local, no permission).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

impl Server {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
        busy: Arc<AtomicUsize>,
    ) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            return response;
        }
        match request.uri().path() {
            "/health" => text(StatusCode::OK, "ok\n"),
            "/metrics" => {
                let reply = ask(&self.side.queries, Query::Metrics)
                    .await
                    .map(|mut reply| {
                        let mut stats = String::new();
                        self.side.connections.stats.render(&mut stats);
                        let mut body = Vec::with_capacity(reply.body.len() + stats.len());
                        body.extend_from_slice(&reply.body);
                        body.extend_from_slice(stats.as_bytes());
                        reply.body = Bytes::from(body);
                        reply
                    });
                respond(reply)
            }
            "/ready" => self.ask(Query::Ready).await,
            "/api/summary" => self.ask(Query::Summary).await,
            "/api/snapshot" => {
                if let Err(refusal) = self.side.guard.check(request.headers(), peer, "snapshot") {
                    let mut response = text(refusal.status, refusal.message);
                    if refusal.status == StatusCode::UNAUTHORIZED {
                        response
                            .headers_mut()
                            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    }
                    return response;
                }
                let mut response = self.ask(Query::Snapshot).await;
                if response.status() == StatusCode::OK {
                    response.headers_mut().insert(
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_static("attachment; filename=\"edge-snapshot.json\""),
                    );
                }
                response
            }
            "/api/stream" => self.stream(&busy),
            _ => text(StatusCode::NOT_FOUND, PATHS),
        }
    }

    async fn ask(&self, query: Query) -> Response<Body> {
        respond(ask(&self.side.queries, query).await)
    }

    /// The latest summary as server-sent events, one per tick, until the client goes away:
    /// every stream reads the one summary the ingest loop publishes.
    fn stream(self: Arc<Self>, busy: &Arc<AtomicUsize>) -> Response<Body> {
        if self.streams.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
            self.streams.fetch_sub(1, Ordering::AcqRel);
            return text(StatusCode::SERVICE_UNAVAILABLE, "too many streams\n");
        }
        let mut summaries = self.side.summaries.subscribe();
        // The latest summary goes out at once, if there is one yet.
        summaries.mark_changed();
        let slot = StreamSlot {
            server: Arc::clone(&self),
            _busy: Busy::new(busy),
        };
        let events = stream::unfold((slot, summaries), |(slot, mut summaries)| async move {
            loop {
                summaries.changed().await.ok()?;
                let summary = summaries.borrow_and_update().clone();
                if summary.is_empty() {
                    continue;
                }
                let mut event = Vec::with_capacity(summary.len() + 24);
                event.extend_from_slice(b"event: summary\ndata: ");
                event.extend_from_slice(summary.strip_suffix(b"\n").unwrap_or(&summary));
                event.extend_from_slice(b"\n\n");
                return Some((Ok(Frame::data(Bytes::from(event))), (slot, summaries)));
            }
        });
        let mut response = Response::new(BodyExt::boxed(StreamBody::new(events)));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// Frees a stream slot when the stream ends, and keeps its connection busy until then (a
/// stream is never evicted as idle).
#[derive(Debug)]
struct StreamSlot {
    server: Arc<Server>,
    _busy: Busy,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.server.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn ask(queries: &Sender<Asked>, query: Query) -> Option<Reply> {
    let (reply, answer) = oneshot::channel();
    queries.try_send(Asked { query, reply }).ok()?;
    tokio::time::timeout(QUERY_TIMEOUT, answer).await.ok()?.ok()
}

/// The ingest loop's reply as a response; `503` when it did not answer in time.
fn respond(reply: Option<Reply>) -> Response<Body> {
    let Some(reply) = reply else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the ingest loop is not answering\n",
        );
    };
    let mut response = Response::new(full(reply.body));
    *response.status_mut() = reply.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    response
}

fn full(body: Bytes) -> Body {
    BodyExt::boxed(Full::new(body))
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

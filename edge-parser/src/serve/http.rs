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
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// At most this many `/api/stream` clients at once; more are answered `503`.
pub(crate) const MAX_STREAMS: usize = 32;
/// How long a query may wait for the ingest loop before the request fails with `503`.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

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

type Body = BoxBody<Bytes, Infallible>;

#[derive(Debug)]
struct Server {
    queries: Sender<Asked>,
    streams: AtomicUsize,
}

/// Serves on `listener` until `shutdown` turns true; queries go to `queries`.
///
/// # Errors
///
/// Accepting connections failed.
pub(crate) async fn serve(
    listener: TcpListener,
    queries: Sender<Asked>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let server = Arc::new(Server {
        queries,
        streams: AtomicUsize::new(0),
    });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = shutdown.changed() => return Ok(()),
        };
        let server = Arc::clone(&server);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let server = Arc::clone(&server);
                async move { Ok::<_, Infallible>(server.handle(request).await) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                }
                _ = shutdown.changed() => {}
            }
        });
    }
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
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served\n");
        }
        match request.uri().path() {
            "/health" => text(StatusCode::OK, "ok\n"),
            "/metrics" => self.ask(Query::Metrics).await,
            "/ready" => self.ask(Query::Ready).await,
            "/api/summary" => self.ask(Query::Summary).await,
            "/api/snapshot" => {
                let mut response = self.ask(Query::Snapshot).await;
                if response.status() == StatusCode::OK {
                    response.headers_mut().insert(
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_static("attachment; filename=\"edge-snapshot.json\""),
                    );
                }
                response
            }
            "/api/stream" => self.stream(),
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: /metrics /health /ready /api/summary /api/stream /api/snapshot\n",
            ),
        }
    }

    async fn ask(&self, query: Query) -> Response<Body> {
        match ask(&self.queries, query).await {
            Some(reply) => {
                let mut response = Response::new(full(reply.body));
                *response.status_mut() = reply.status;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(reply.content_type),
                );
                response
            }
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the ingest loop is not answering\n",
            ),
        }
    }

    /// One summary per second as server-sent events, until the client goes away.
    fn stream(self: Arc<Self>) -> Response<Body> {
        if self.streams.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
            self.streams.fetch_sub(1, Ordering::AcqRel);
            return text(StatusCode::SERVICE_UNAVAILABLE, "too many streams\n");
        }
        let guard = StreamSlot(Arc::clone(&self));
        let events = stream::unfold((guard, true), |(guard, first)| async move {
            if !first {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let reply = ask(&guard.0.queries, Query::Summary).await?;
            let mut event = Vec::with_capacity(reply.body.len() + 16);
            event.extend_from_slice(b"event: summary\ndata: ");
            event.extend_from_slice(&reply.body);
            event.extend_from_slice(b"\n\n");
            Some((Ok(Frame::data(Bytes::from(event))), (guard, false)))
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

/// Frees a stream slot when the stream ends.
#[derive(Debug)]
struct StreamSlot(Arc<Server>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn ask(queries: &Sender<Asked>, query: Query) -> Option<Reply> {
    let (reply, answer) = oneshot::channel();
    queries.try_send(Asked { query, reply }).ok()?;
    tokio::time::timeout(QUERY_TIMEOUT, answer).await.ok()?.ok()
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

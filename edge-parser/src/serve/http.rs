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
//! | `GET /` | the dashboard page, and its `/dashboard.css` and `/dashboard.js` ([`page`](super::page)) |
//!
//! The state lives with the ingest loop, not here: each request sends a [`Query`] and awaits
//! its [`Reply`], so answers are always current and no lock is shared with the hot path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use futures_util::{StreamExt, stream};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::auth::Guard;
use super::conn::{Busy, Connections, accept_loop};
use crate::reconcile::scrape::{self, Scrapes};
use vantage_instrument::exposition::{Extras, Format, openmetrics, protobuf};

/// At most this many `/api/stream` clients at once; more are answered `503`.
pub(crate) const MAX_STREAMS: usize = 256;
/// Streams send each summary within this long of its publication (one summary a second).
const STREAM_SPREAD: Duration = Duration::from_millis(500);
/// Connections waiting to be accepted.
const LISTEN_BACKLOG: u32 = 4096;
/// How long a query may wait for the ingest loop before the request fails with `503`.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// The methods served.
const ALLOW: &str = "GET, HEAD";
/// The paths served, named in a `404`.
const PATHS: &str = "not found: /metrics /health /ready /api/summary /api/stream /api/reconcile /api/slow /api/group /api/snapshot\n";

/// What an HTTP request asks of the ingest loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query {
    /// The Prometheus exposition.
    Metrics,
    /// Readiness, as JSON.
    Ready,
    /// The windows summary, as JSON; `by`: a coarser grouping of the windows (`router`,
    /// `router,service`: the names as given).
    Summary {
        /// The `by` parameter.
        by: Option<String>,
    },
    /// The aggregate state, as a JSON file.
    Snapshot,
    /// The edge against the services per route, as JSON.
    Reconcile,
    /// The slowest requests per route, joined with the services' by trace id, as JSON.
    Slow,
    /// The last hour of one group (its key's values, in the grouping's order), as JSON.
    Group(Vec<String>),
}

/// The ingest loop's answer to a [`Query`].
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The status to answer with.
    pub(crate) status: StatusCode,
    /// The content type.
    pub(crate) content_type: &'static str,
    /// The start of the body, shared rather than copied (`/metrics`: the durable counters,
    /// a few MiB at a thousand groups); usually empty.
    pub(crate) head: Bytes,
    /// The body (after `head`).
    pub(crate) body: Bytes,
    /// `/metrics`: the native histograms and exemplars of the counters in `head`, once a
    /// scrape asked for OpenMetrics or protobuf (they are made with the counters from then on).
    pub(crate) extras: Option<Arc<Extras>>,
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
    /// The exposition the ingest loop publishes, for scrapes that do not wait for it.
    pub(crate) exposition: Arc<PublishedExposition>,
    /// The services' scrapes (`--service-metrics`), whose health `/metrics` shows.
    pub(crate) scrapes: watch::Receiver<Arc<Scrapes>>,
}

/// The latest `/metrics` exposition: the counters of the last checkpoint written and the
/// gauges of the last tick, as the ingest loop publishes them.
#[derive(Debug, Default)]
pub(crate) struct PublishedExposition {
    parts: std::sync::Mutex<Option<Published>>,
    /// Whether a scrape asked for OpenMetrics or protobuf: native histograms and exemplars
    /// are made from then on.
    extras_wanted: std::sync::atomic::AtomicBool,
    /// Counts publications, so that an encoding of the counters is reused until the next.
    generation: std::sync::atomic::AtomicU64,
    /// The counters of a publication in OpenMetrics and protobuf, encoded by the first scrape
    /// that asked (re-reading a few MiB of text is most of such a scrape): by generation.
    encoded_heads: std::sync::Mutex<Vec<(u64, Format, Bytes)>>,
}

/// Whether two publications carry the same extras.
fn same_extras(a: Option<&Arc<Extras>>, b: Option<&Arc<Extras>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The durable counters, with their extras once wanted, and the gauges.
type Published = (Bytes, Option<Arc<Extras>>, Bytes);

impl PublishedExposition {
    /// Publishes new counters (with their extras, if made) and gauges.
    pub(crate) fn publish(&self, counters: Bytes, extras: Option<Arc<Extras>>, gauges: Bytes) {
        let mut parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        let head_changed = parts.as_ref().is_none_or(|(head, old, _)| {
            head.as_ptr() != counters.as_ptr()
                || head.len() != counters.len()
                || !same_extras(old.as_ref(), extras.as_ref())
        });
        if head_changed {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        *parts = Some((counters, extras, gauges));
    }

    /// `head` (the counters of publication `generation`, or of none) in `format`, encoded once
    /// per publication.
    fn encoded_head(
        &self,
        generation: Option<u64>,
        format: Format,
        head: &str,
        extras: &Extras,
    ) -> Bytes {
        let encode = || match format {
            Format::Protobuf => Bytes::from(protobuf::encode(head, extras)),
            Format::OpenMetrics | Format::Text => {
                let mut out = String::with_capacity(head.len() + head.len() / 8);
                openmetrics::encode_families(head, extras, &mut out);
                Bytes::from(out)
            }
        };
        let Some(generation) = generation else {
            return encode();
        };
        let mut cache = self.encoded_heads.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|(of, ..)| *of == generation);
        if let Some((.., bytes)) = cache.iter().find(|(_, of, _)| *of == format) {
            return bytes.clone();
        }
        let bytes = encode();
        cache.push((generation, format, bytes.clone()));
        bytes
    }

    /// Whether the extras (native histograms, exemplars) are to be made.
    pub(crate) fn extras_wanted(&self) -> bool {
        self.extras_wanted.load(Ordering::Relaxed)
    }

    /// The exposition as a reply, if one was published, with its generation.
    fn get(&self) -> Option<(Reply, u64)> {
        let parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        let (counters, extras, gauges) = parts.as_ref()?;
        let generation = self.generation.load(Ordering::Relaxed);
        let reply = Reply {
            status: StatusCode::OK,
            content_type: vantage_instrument::names::PROMETHEUS_TEXT_CONTENT_TYPE,
            head: counters.clone(),
            body: gauges.clone(),
            extras: extras.clone(),
        };
        Some((reply, generation))
    }
}

#[derive(Debug)]
struct Server {
    side: HttpSide,
    streams: AtomicUsize,
    /// Streams opened, for their moment of the second.
    spread: AtomicU32,
}

/// Serves on `listener` until `shutdown` turns true; see the [module docs](self).
pub(crate) async fn serve(listener: TcpListener, side: HttpSide, shutdown: watch::Receiver<bool>) {
    let connections = Arc::clone(&side.connections);
    let server = Arc::new(Server {
        side,
        streams: AtomicUsize::new(0),
        spread: AtomicU32::new(0),
    });
    let handle = move |request, peer, busy| Arc::clone(&server).handle(request, peer, busy);
    accept_loop(listener, connections, handle, shutdown).await;
}

/// The values of the query parameter `name` of `request`, decoded.
fn query_values<'a, B>(
    request: &'a Request<B>,
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .filter(move |(parameter, _)| parameter == name)
        .map(|(_, value)| value.into_owned())
}

/// Binds the listen address.
///
/// # Errors
///
/// The address cannot be bound (in use, not local, no permission).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // Thousands of clients that reconnect at once (idle connections closed together by the
    // header timeout) wait in the backlog rather than have their connections dropped and
    // retried a second later (the kernel caps it at `net.core.somaxconn`).
    socket.listen(LISTEN_BACKLOG)
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
        if let Some(response) = super::page::answer(request.uri().path(), request.headers()) {
            return response;
        }
        match request.uri().path() {
            "/health" => text(StatusCode::OK, "ok\n"),
            "/metrics" => {
                // Published by the ingest loop (the durable counters at each checkpoint, the
                // gauges at each tick): a scrape never waits for it. Before anything is
                // published (no checkpoint, or the format not known yet), it is asked.
                let published = self.side.exposition.get();
                let generation = published.as_ref().map(|(_, generation)| *generation);
                let reply = match published {
                    Some((reply, _)) => Some(reply),
                    None => ask(&self.side.queries, Query::Metrics).await,
                };
                let accept = request.headers().get(header::ACCEPT);
                let format = Format::negotiate(accept.and_then(|a| a.to_str().ok()), true);
                if format != Format::Text {
                    let wanted = &self.side.exposition.extras_wanted;
                    wanted.store(true, Ordering::Relaxed);
                }
                let reply = reply.map(|mut reply| {
                    let mut body = String::from_utf8_lossy(&reply.body).into_owned();
                    self.side.connections.stats.render(&mut body);
                    scrape::render(&self.side.scrapes.borrow(), &mut body);
                    let extras = reply.extras.take();
                    match (format, extras) {
                        // Text: also what the others get before the first extras are made.
                        (Format::Text, _) | (_, None) => reply.body = Bytes::from(body),
                        // The counters with their native histograms and exemplars, as one
                        // document. Each part holds whole families: encoded apart, the
                        // messages follow on.
                        (Format::Protobuf | Format::OpenMetrics, Some(extras)) => {
                            let head = std::str::from_utf8(&reply.head).unwrap_or("");
                            let exposition = &self.side.exposition;
                            reply.head = exposition.encoded_head(generation, format, head, &extras);
                            reply.body = Bytes::from(match format {
                                Format::Protobuf => protobuf::encode(&body, &extras),
                                _ => {
                                    let mut out = String::with_capacity(body.len() + 16);
                                    openmetrics::encode(&body, &extras, &mut out);
                                    out.into_bytes()
                                }
                            });
                            reply.content_type = format.content_type();
                        }
                    }
                    reply
                });
                respond(reply)
            }
            "/ready" => self.ask(Query::Ready).await,
            "/api/summary" => {
                let by = query_values(&request, "by").next();
                self.ask(Query::Summary { by }).await
            }
            "/api/reconcile" => self.ask(Query::Reconcile).await,
            "/api/slow" => self.ask(Query::Slow).await,
            "/api/group" => {
                // `?key=VALUE&key=VALUE`: the group's values in the grouping's order.
                let values = query_values(&request, "key")
                    .take(crate::aggregate::Dimension::ALL.len() + 1)
                    .collect();
                self.ask(Query::Group(values)).await
            }
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
        // The latest summary goes out first, if there is one yet.
        summaries.mark_changed();
        // Each stream sends a new summary at its own moment of the half-second after it is
        // published (64 moments), so that a thousand groups' summary (near 1 MiB) to hundreds
        // of streams is not one burst of writes that holds up every other request of this
        // thread.
        let offset = STREAM_SPREAD
            .mul_f64(f64::from(self.spread.fetch_add(1, Ordering::Relaxed) % 64) / 64.0);
        let slot = StreamSlot {
            server: Arc::clone(&self),
            _busy: Busy::new(busy),
        };
        // Each event is the shared summary between a prefix and a suffix: three frames, so
        // that a summary (near 1 MiB at a thousand groups) is never copied per stream.
        let events = stream::unfold((slot, summaries), move |(slot, mut summaries)| async move {
            loop {
                summaries.changed().await.ok()?;
                tokio::time::sleep(offset).await;
                let summary = summaries.borrow_and_update().clone();
                if summary.is_empty() {
                    continue;
                }
                let event = [
                    Bytes::from_static(b"event: summary\ndata: "),
                    summary,
                    Bytes::from_static(b"\n"),
                ];
                return Some((event, (slot, summaries)));
            }
        })
        .flat_map(|event| stream::iter(event.map(|part| Ok(Frame::data(part)))));
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
    let mut response = if reply.head.is_empty() {
        Response::new(full(reply.body))
    } else {
        let length = reply.head.len() + reply.body.len();
        let frames = [reply.head, reply.body].map(|part| Ok(Frame::data(part)));
        let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream::iter(frames))));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        response
    };
    *response.status_mut() = reply.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    response
}

pub(crate) fn full(body: Bytes) -> Body {
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

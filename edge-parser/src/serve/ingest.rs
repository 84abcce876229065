//! The ingest loop: the one owner of `serve`'s state.
//!
//! It takes the tailer's messages in order, parses their lines into the cumulative
//! [`Aggregate`](crate::aggregate::Aggregate) (via an [`Aggregator`]), the sliding [`Windows`]
//! and the [`Watch`], keeps the file [`Positions`] in step with them, answers the HTTP side's
//! [queries](super::http::Query), and writes the checkpoint: positions and state together, so
//! that after a restart every counter continues exactly where the checkpoint left it.
//!
//! With a checkpoint, `/metrics` shows the counters *as of the last checkpoint written*
//! (rendered right after each successful write): what Prometheus has seen never exceeds what
//! is durable, so after a kill -9 the counters go on from at least what was served and never
//! look like a reset. The gauges (lag, files open, anomalies...) are of the present moment.
//! Without a checkpoint, nothing is durable and everything is live.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::clock::{LogClock, Verdict};
use super::history::History;
use super::http::{Asked, Query, Reply};
use super::persist;
use super::requests::Requests;
use super::window::Windows;
use crate::aggregate::{
    AggregateConfig, Aggregator, Dimension, GroupKey, LinePosition, encoded_value,
};
use crate::export::exemplars::Exemplars;
use crate::export::prometheus::{AnomalyState, Exposition, first_of, router_index};
use crate::export::summary::{By, SummaryView, ready};
use crate::format::StatusClass;
use crate::read::{Line, for_each_line};
use crate::reconcile::scrape::{self, Scrapes};
use crate::reconcile::service::MAX_ROUTES;
use crate::reconcile::since_start::{Reconciler, Reconciliation, RouteCounts};
use crate::reconcile::slowest::{EdgeRequest, EdgeSlowest};
use crate::reconcile::trace_join;
use crate::state::{self, EdgeState, Health};
use crate::tail::{
    Checkpoint, CheckpointError, FilePosition, Flush, Positions, StatusHandle, TailEvent,
    TailMessage, write_document_atomic,
};
use crate::watch::Watch;
use vantage_instrument::exposition::Extras;
use vantage_instrument::names;

/// Lines further than this from the clock are not fed to the watch tower.
const WATCH_HORIZON_SECONDS: i64 = 120;
/// How often the live stream gets a new summary.
const STREAM_INTERVAL: Duration = Duration::from_secs(1);

/// Where and how often the checkpoint is written.
#[derive(Debug, Clone)]
pub struct CheckpointTarget {
    /// The file.
    pub path: PathBuf,
    /// Time between two writes.
    pub interval: Duration,
}

/// The restored state and positions, or a fresh start.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// The state from the checkpoint.
    pub(crate) state: EdgeState,
    /// The file positions from the checkpoint.
    pub(crate) files: Vec<FilePosition>,
    /// Whether a checkpoint was restored.
    pub(crate) restored: bool,
}

/// Reads the checkpoint at `target`, if any, made for `config` and the logs `patterns`.
pub(crate) fn restore(
    target: Option<&CheckpointTarget>,
    config: &AggregateConfig,
    patterns: &[String],
) -> Result<Restored, CheckpointError> {
    let Some(target) = target else {
        return Ok(Restored::default());
    };
    Ok(match state::restore(&target.path, config, patterns)? {
        Some((state, files)) => Restored {
            state,
            files,
            restored: true,
        },
        None => Restored::default(),
    })
}

/// What the ingest loop needs beside the state.
#[derive(Debug)]
pub(crate) struct IngestConfig<'c> {
    pub(crate) aggregate: &'c AggregateConfig,
    /// The log patterns: with `aggregate`, the checkpoint's configuration fingerprint.
    pub(crate) patterns: &'c [String],
    pub(crate) checkpoint: Option<CheckpointTarget>,
    pub(crate) stale_after: Duration,
    /// The tailer's line limit, named when an over-long line is counted.
    pub(crate) max_line_bytes: usize,
    /// Where the summary for `/api/stream` is published, once per [`STREAM_INTERVAL`].
    pub(crate) summaries: Arc<tokio::sync::watch::Sender<Bytes>>,
    /// Where `/metrics` is published for scrapes (with a checkpoint): at each tick and each
    /// checkpoint written.
    pub(crate) exposition: Arc<super::http::PublishedExposition>,
    /// The services' scrapes, whose `http_route` values become route templates.
    pub(crate) scrapes: Option<tokio::sync::watch::Receiver<Arc<Scrapes>>>,
}

/// The ingest loop's state; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Ingest<'c> {
    config: IngestConfig<'c>,
    fingerprint: String,
    aggregator: Aggregator<'c>,
    health: Health,
    sequence: u64,
    windows: Windows,
    /// The last hour of all traffic, for the page's chart.
    history: History,
    /// A sampled tail of requests and the slowest, for the page.
    requests: Requests,
    watch: Watch,
    /// Which value of a group key the watch follows: the `router` label's.
    watch_index: Option<usize>,
    /// The slowest requests with a trace id, per route (or router when not grouped by route).
    slowest: EdgeSlowest,
    /// The latest traced request per group and duration bucket, for `/metrics`.
    exemplars: Exemplars,
    /// Which value of a group key names their route.
    slowest_index: Option<usize>,
    positions: Positions,
    restored: bool,
    tail_status: StatusHandle,
    last_checkpoint: Instant,
    /// When each group last had a line, on this process's clock: for `stale` marks.
    last_seen: HashMap<GroupKey, Instant, foldhash::fast::RandomState>,
    files_open: usize,
    started: Instant,
    /// Lines read by this process, and how many were not records: for `partial` marks.
    recent_lines: (u64, u64),
    /// Which log timestamps to trust.
    clock: LogClock,
    /// With a checkpoint: the counters of the exposition as of the last checkpoint written,
    /// shared with the `/metrics` replies that send it (never copied; rendered again into the
    /// same buffer when no reply holds it).
    durable_counters: Option<Bytes>,
    /// Their native histograms, made with them once a scrape asked for the protobuf
    /// exposition.
    durable_extras: Option<Arc<Extras>>,
    /// A rotation reported, counted once the `Opened` of its new file follows: a checkpoint
    /// written between the two still holds the old position, from which a restart reports the
    /// rotation again.
    rotation: Option<&'static str>,
    last_summary: Option<Instant>,
    /// The thread that writes checkpoints (with a checkpoint target), and what the write in
    /// flight will make durable.
    writer: Option<persist::Writer>,
    pending: Option<Pending>,
    /// Buffers of a rendering and a document done with, reused: a few MiB each at the group
    /// cap, made twice a second, and the allocator would keep their fragments.
    spare_text: Option<String>,
    spare_document: Vec<u8>,
    /// The route templates of the services' scrapes last adopted.
    service_templates: std::collections::BTreeSet<String>,
    /// The edge against the services since their common start (`/api/reconcile`).
    reconciler: Reconciler,
    /// Its report, made once per tick for `/metrics`, the summary, the stream and
    /// `/api/reconcile` (with `--service-metrics`).
    reconciliation: Option<Reconciliation>,
}

/// What a checkpoint being written holds for `/metrics` once it is on disk.
#[derive(Debug)]
struct Pending {
    counters: Bytes,
    extras: Option<Arc<Extras>>,
    writes: u64,
    at: i64,
    /// How long serialising and rendering took, on the ingest thread.
    prepared_in: Duration,
}

impl<'c> Ingest<'c> {
    /// An ingest loop going on from `restored`.
    pub(crate) fn new(
        config: IngestConfig<'c>,
        restored: Restored,
        watch: Watch,
        tail_status: StatusHandle,
    ) -> Self {
        let Restored {
            state,
            files,
            restored,
        } = restored;
        let clock = LogClock::resume(state.aggregate.last_timestamp(), unix_now());
        let mut ingest = Self {
            fingerprint: state::fingerprint(config.aggregate, config.patterns),
            aggregator: Aggregator::resume(config.aggregate, state.aggregate).with_exact_cap(),
            watch_index: router_index(&config.aggregate.group_by),
            slowest: EdgeSlowest::default(),
            exemplars: Exemplars::default(),
            // A request's route for its slowest requests: the route's value, else the router's.
            slowest_index: first_of(
                &config.aggregate.group_by,
                &[Dimension::Route, Dimension::Router],
            ),
            config,
            health: state.health,
            sequence: state.sequence,
            windows: Windows::new(),
            history: History::new(unix_now() as i64),
            requests: Requests::default(),
            watch,
            positions: Positions::new(files),
            restored,
            tail_status,
            last_checkpoint: Instant::now(),
            last_seen: HashMap::default(),
            files_open: 0,
            started: Instant::now(),
            recent_lines: (0, 0),
            clock,
            durable_counters: None,
            durable_extras: None,
            rotation: None,
            last_summary: None,
            writer: None,
            pending: None,
            spare_text: None,
            spare_document: Vec::new(),
            service_templates: std::collections::BTreeSet::new(),
            reconciler: Reconciler::default(),
            reconciliation: None,
        };
        // What was restored is durable: it is what the counters start from.
        ingest.render_durable_counters();
        ingest.publish_exposition();
        ingest
    }

    /// Takes one message of the tailer into the state.
    pub(crate) fn handle(&mut self, message: &TailMessage) {
        match message {
            TailMessage::Lines(batch) => {
                self.health.bytes_read += batch.end_offset.saturating_sub(batch.start_offset);
                let now = unix_now();
                let first = self.sequence + 1;
                let lines = for_each_line(&batch.bytes, &batch.too_long, first, |number, line| {
                    self.add_line(number, line, now);
                });
                self.sequence += lines;
            }
            TailMessage::Event(event) => self.event(event),
        }
        self.positions.observe(message);
    }

    /// Takes in line number `number` (counted since the first start).
    fn add_line(&mut self, number: u64, line: Line<'_>, now: f64) {
        let position = LinePosition::new(0, number);
        self.recent_lines.0 += 1;
        let line = match line {
            Line::Whole(line) => line,
            Line::TooLong(prefix) => {
                let limit = self.config.max_line_bytes;
                self.aggregator.add_too_long(position, prefix, limit);
                self.recent_lines.1 += 1;
                return;
            }
        };
        let (windows, watch, last_seen) = (&mut self.windows, &mut self.watch, &mut self.last_seen);
        let clock = &mut self.clock;
        let history = &mut self.history;
        let requests = &mut self.requests;
        let watch_index = self.watch_index;
        let (slowest, slowest_index) = (&mut self.slowest, self.slowest_index);
        let exemplars = &mut self.exemplars;
        let mut parsed = false;
        self.aggregator
            .add_line_with(position, line, |record, key| {
                parsed = true;
                let logged = record.timestamp.map(|timestamp| timestamp.unix_nanos());
                // A line whose time cannot be trusted is placed at its arrival.
                let at = match clock.judge(number, logged, now) {
                    Verdict::Trusted(at) => at,
                    Verdict::Ahead | Verdict::Behind | Verdict::Untimed => now as i64,
                };
                let class = record
                    .status
                    .map_or(StatusClass::Other, |status| status.class());
                let latency_us = record.duration_ns.map(|ns| ns / 1000);
                windows.record(key, at, class, latency_us);
                history.record(at, class, latency_us);
                requests.record(key, at, now as i64, record);
                // A backlog read late (a first start with --from-start, a long stop) says
                // nothing about the current minute: only recent lines feed the baselines.
                let recent = (now as i64).abs_diff(at) <= WATCH_HORIZON_SECONDS.unsigned_abs();
                let router = watch_index.and_then(|index| encoded_value(key, index));
                if let Some(router) = router.filter(|_| recent) {
                    watch.record(router, at, class == StatusClass::ServerError);
                }
                if let (Some(trace_id), Some(duration_ns)) = (record.trace_id, record.duration_ns) {
                    // Timestamped as logged where the log's time is trusted.
                    let timestamp = logged
                        .filter(|logged| logged / 1_000_000_000 == at)
                        .map_or(at as f64, |logged| logged as f64 / 1e9);
                    exemplars.record(key, duration_ns / 1000, trace_id, timestamp);
                    let route = slowest_index.and_then(|index| encoded_value(key, index));
                    let request = EdgeRequest {
                        trace_id,
                        at,
                        status: record.status.map(|status| status.code()),
                        duration_ns,
                        upstream_ns: record.upstream_duration_ns,
                    };
                    slowest.offer(route.unwrap_or("(all)"), request);
                }
                match last_seen.get_mut(key) {
                    Some(seen) => *seen = Instant::now(),
                    None => {
                        last_seen.insert(GroupKey::from_encoded(key), Instant::now());
                    }
                }
            });
        if !parsed {
            self.recent_lines.1 += 1;
        }
    }

    fn event(&mut self, event: &TailEvent) {
        match event {
            TailEvent::Opened { path, offset, .. } => {
                if let Some(kind) = self.rotation.take() {
                    *self.health.rotations.entry(kind.to_owned()).or_default() += 1;
                }
                self.files_open += 1;
                tracing::info!(path = %path.display(), offset, "following");
            }
            TailEvent::Closed { path, .. } => {
                self.files_open = self.files_open.saturating_sub(1);
                tracing::debug!(path = %path.display(), "finished a rotated file");
            }
            TailEvent::Rotated { path, kind } => {
                self.rotation = Some(kind.as_str());
                tracing::info!(path = %path.display(), %kind, "rotation");
            }
            TailEvent::Missing { path, offset, .. } => {
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    "a checkpointed file is gone: lines it received after the checkpoint are lost"
                );
            }
            TailEvent::Error { path, reason } => {
                tracing::warn!(path = %path.display(), %reason, "cannot follow");
            }
        }
    }

    /// Periodic work: anomaly verdicts, window expiry, the checkpoint when due, the summary
    /// of the live stream.
    pub(crate) fn tick(&mut self) {
        self.take_in_scrapes();
        if self.config.scrapes.is_some() {
            let edge = RouteCounts::by_route(self.aggregator.aggregate());
            self.reconciliation = Some(self.reconciler.report(&edge, None));
        }
        let now = unix_now() as i64;
        self.watch.tick(now);
        self.windows.expire(now);
        let due = self
            .config
            .checkpoint
            .as_ref()
            .is_some_and(|target| self.last_checkpoint.elapsed() >= target.interval);
        if due {
            self.start_checkpoint();
        }
        self.publish_exposition();
        self.publish_summary();
    }

    /// Takes in the services' latest scrape round, when there is a new one: their route
    /// templates are adopted, for as long as this process runs (the lines that come next are
    /// grouped by them; the groups made before keep their routes), and their counts reconciled
    /// with the edge's.
    fn take_in_scrapes(&mut self) {
        let Some(scrapes) = self.config.scrapes.as_mut() else {
            return;
        };
        if !scrapes.has_changed().unwrap_or(false) {
            return;
        }
        let scrapes = Arc::clone(&scrapes.borrow_and_update());
        let names: Vec<String> = scrapes
            .keys()
            .map(|(url, address)| match address {
                Some(address) => format!("{url} {address}"),
                None => format!("{url} (unresolved)"),
            })
            .collect();
        let round = names.iter().zip(scrapes.values()).map(|(name, instance)| {
            let up = instance.health.consecutive_failures == 0;
            (name.as_str(), instance.last.as_deref().filter(|_| up))
        });
        let aggregator = &self.aggregator;
        self.reconciler.observe_round(round, unix_now(), || {
            RouteCounts::by_route(aggregator.aggregate())
        });
        // Templates stay once learned: a restarted service exports a route again only once it
        // served it, and its lines meanwhile must not fall into `(other)`.
        let mut templates = self.service_templates.clone();
        for template in scrape::templates(&scrapes) {
            if templates.len() >= MAX_ROUTES {
                break;
            }
            templates.insert(template);
        }
        if templates == self.service_templates {
            return;
        }
        let (rules, refused) = self.config.aggregate.routes.with_learned(&templates);
        for error in refused {
            tracing::warn!(%error, "a service's route template is not used");
        }
        tracing::info!(
            templates = rules.learned().count(),
            "route templates learned from the services"
        );
        self.aggregator.set_routes(rules);
        self.service_templates = templates;
    }

    /// One summary for every stream client, when there are some.
    fn publish_summary(&mut self) {
        let due = self
            .last_summary
            .is_none_or(|last| last.elapsed() >= STREAM_INTERVAL);
        if due && self.config.summaries.receiver_count() > 0 {
            self.last_summary = Some(Instant::now());
            let mut body = self.with_summary(None, |view| view.to_json());
            body.push(b'\n');
            self.config.summaries.send_replace(Bytes::from(body));
        }
    }

    /// Hands the checkpoint of the state as it is now to the writer thread, unless a write is
    /// still under way (it is tried again at the next tick).
    fn start_checkpoint(&mut self) {
        let Some(path) = self.config.checkpoint.as_ref().map(|t| t.path.clone()) else {
            return;
        };
        if self.writer.is_none() {
            match persist::Writer::spawn(path.clone()) {
                Ok(writer) => self.writer = Some(writer),
                Err(error) => {
                    tracing::error!(%error, "cannot start the checkpoint writer; writing in place");
                    let _ = self.write_checkpoint();
                    return;
                }
            }
        }
        if self.writer.as_ref().is_some_and(persist::Writer::busy) {
            return;
        }
        self.last_checkpoint = Instant::now();
        let Some((document, pending)) = self.prepare_checkpoint(&path) else {
            return;
        };
        self.pending = Some(pending);
        if let Some(writer) = self.writer.as_mut() {
            writer.submit(document);
        }
    }

    /// Where the writer thread's outcomes arrive, once it runs (for the loop's `select!`).
    pub(crate) fn checkpoint_outcomes(
        &mut self,
    ) -> Option<crossbeam_channel::Receiver<persist::Written>> {
        if self.writer.is_none()
            && let Some(target) = &self.config.checkpoint
        {
            self.writer = persist::Writer::spawn(target.path.clone()).ok();
        }
        self.writer.as_ref().map(persist::Writer::outcomes)
    }

    /// Takes in the outcome of the write under way.
    pub(crate) fn checkpoint_written(&mut self, written: persist::Written) {
        if let Some(writer) = self.writer.as_mut() {
            writer.received();
        }
        let _ = self.apply_checkpoint(written);
    }

    /// Serialises the checkpoint of the state as it is now, counting the write it is for, and
    /// renders the counters `/metrics` shows once it is on disk. `None` (counted as a failed
    /// write) when the state cannot be serialised.
    fn prepare_checkpoint(&mut self, path: &std::path::Path) -> Option<(Vec<u8>, Pending)> {
        // The written state counts this write; the live one only once it is on disk, so that
        // the count and the time of the last success move only on success.
        let confirmed = (
            self.health.checkpoint_writes,
            self.health.checkpoint_last_success,
        );
        let at = unix_now() as i64;
        let started = Instant::now();
        self.health.checkpoint_writes += 1;
        self.health.checkpoint_last_success = Some(at);
        let buffer = std::mem::take(&mut self.spare_document);
        let document = self.checkpoint_now().to_json_in(buffer);
        let counters = self.render_counters();
        let extras = self.extras();
        let writes = self.health.checkpoint_writes;
        (
            self.health.checkpoint_writes,
            self.health.checkpoint_last_success,
        ) = confirmed;
        match document {
            Ok(document) => Some((
                document,
                Pending {
                    counters,
                    extras,
                    writes,
                    at,
                    prepared_in: started.elapsed(),
                },
            )),
            Err(source) => {
                let error = CheckpointError::Serialize {
                    path: path.to_owned(),
                    source,
                };
                self.health.checkpoint_errors += 1;
                tracing::error!(%error, "checkpoint not written");
                None
            }
        }
    }

    /// Makes the pending checkpoint's counters what `/metrics` shows when it was written;
    /// counts and logs the failure otherwise.
    fn apply_checkpoint(&mut self, written: persist::Written) -> Result<(), CheckpointError> {
        self.spare_document = written.buffer;
        let pending = self.pending.take();
        match written.result {
            Ok(()) => {
                let prepared_in = pending.as_ref().map_or(Duration::ZERO, |p| p.prepared_in);
                if let Some(pending) = pending {
                    let done_with = self.durable_counters.replace(pending.counters);
                    self.durable_extras = pending.extras;
                    self.health.checkpoint_writes = pending.writes;
                    self.health.checkpoint_last_success = Some(pending.at);
                    // Published first: until then the published exposition holds the old
                    // rendering too, and it could not be reused.
                    self.publish_exposition();
                    self.recycle(done_with);
                }
                // How long it took bounds how stale /metrics may be; the render (with the
                // serialisation) is what the ingest loop spends on it
                // (`RUST_LOG=vantage_edge::serve=debug`).
                tracing::debug!(
                    write_ms = written.took.as_secs_f64() * 1e3,
                    to_disk = written.flush == Flush::ToDisk,
                    render_ms = prepared_in.as_secs_f64() * 1e3,
                    "checkpoint written"
                );
                Ok(())
            }
            Err(error) => {
                self.recycle(pending.map(|pending| pending.counters));
                self.health.checkpoint_errors += 1;
                tracing::error!(%error, "checkpoint not written");
                Err(error)
            }
        }
    }

    /// Publishes the durable counters and the gauges as they are now for scrapes (with a
    /// checkpoint; without one `/metrics` asks the loop, which renders everything live).
    fn publish_exposition(&self) {
        let Some(counters) = &self.durable_counters else {
            return;
        };
        let anomalies = self.anomalies();
        let mut gauges = String::with_capacity(4 << 10);
        self.exposition(&anomalies).render_gauges(&mut gauges);
        self.render_reconciliation(&mut gauges);
        self.config.exposition.publish(
            counters.clone(),
            self.durable_extras.clone(),
            Bytes::from(gauges),
        );
    }

    /// Keeps a rendering no reply holds any more, to render the next one into.
    fn recycle(&mut self, text: Option<Bytes>) {
        if let Some(Ok(unique)) = text.map(Bytes::try_into_mut) {
            self.spare_text = String::from_utf8(Vec::from(unique)).ok();
        }
    }

    /// Writes the checkpoint now, in this thread, after the write under way if any (at
    /// shutdown, and in tests); then `/metrics` shows what it holds.
    ///
    /// # Errors
    ///
    /// The checkpoint could not be written (counted in `edge_checkpoint_errors_total`,
    /// logged); `/metrics` keeps showing the counters of the last one written.
    pub(crate) fn write_checkpoint(&mut self) -> Result<(), CheckpointError> {
        let Some(path) = self.config.checkpoint.as_ref().map(|t| t.path.clone()) else {
            return Ok(());
        };
        if let Some(written) = self.writer.as_mut().and_then(persist::Writer::wait) {
            let _ = self.apply_checkpoint(written);
        }
        self.last_checkpoint = Instant::now();
        let Some((document, pending)) = self.prepare_checkpoint(&path) else {
            return Err(CheckpointError::Corrupt {
                path,
                reason: "the state could not be serialised".to_owned(),
            });
        };
        self.pending = Some(pending);
        let started = Instant::now();
        let result = write_document_atomic(&path, &document, Flush::ToDisk);
        self.apply_checkpoint(persist::Written {
            result,
            took: started.elapsed(),
            flush: Flush::ToDisk,
            buffer: document,
        })
    }

    /// With a checkpoint, makes the counters of the state as it is now what `/metrics` shows
    /// (the restored state, at the start); without one they are rendered at each scrape.
    fn render_durable_counters(&mut self) {
        if self.config.checkpoint.is_some() {
            self.durable_counters = Some(self.render_counters());
            self.durable_extras = self.extras();
        }
    }

    /// The native histograms and exemplars of the state as it is now, once a scrape asked
    /// for them.
    fn extras(&self) -> Option<Arc<Extras>> {
        self.config
            .exposition
            .extras_wanted()
            .then(|| Arc::new(self.exposition(&[]).extras(&self.exemplars)))
    }

    /// The counters of the exposition, rendered from the state as it is now.
    fn render_counters(&mut self) -> Bytes {
        let mut text = self.spare_text.take().unwrap_or_else(|| {
            // A little room beyond the last length, so that a page that grows a little does
            // not double its buffer.
            let last = self.durable_counters.as_ref().map_or(0, Bytes::len);
            String::with_capacity(last + last / 16)
        });
        text.clear();
        self.exposition(&[]).render_counters(&mut text);
        Bytes::from(text)
    }

    /// Answers one query of the HTTP side.
    pub(crate) fn answer(&self, asked: Asked) {
        let reply = match asked.query {
            Query::Metrics => self.metrics(),
            Query::Ready => {
                let (ready, body) = ready(&self.tail_status.get(), self.restored);
                let code = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                json_reply(code, &body)
            }
            Query::Summary { by } => {
                let by = by
                    .map(|names| By::parse(self.aggregator.aggregate().group_by(), &names))
                    .transpose();
                match by {
                    Ok(by) => json_text_reply(
                        StatusCode::OK,
                        self.with_summary(by, |view| view.to_json()),
                    ),
                    Err(error) => json_reply(StatusCode::BAD_REQUEST, &json!({"error": error})),
                }
            }
            Query::Snapshot => self.snapshot(),
            Query::Reconcile => self.reconcile(),
            Query::Slow => self.slow(),
            Query::Group(values) => self.group(&values),
        };
        // The requester may have gone away.
        let _ = asked.reply.send(reply);
    }

    /// The watch's signals for the routers that have a group of their own: a router the group
    /// cap folded into `(overflow)` would otherwise bring its own label value back to the page
    /// (the watch follows up to `max_routers`, more than the cap).
    fn anomalies(&self) -> Vec<AnomalyState> {
        let Some(index) = self.watch_index else {
            return Vec::new();
        };
        let aggregate = self.aggregator.aggregate();
        let routers: std::collections::HashSet<&str> = aggregate
            .groups()
            .filter_map(|group| group.key().values().nth(index))
            .collect();
        self.watch
            .anomalies()
            .filter(|anomaly| routers.contains(anomaly.router))
            .map(|anomaly| AnomalyState {
                router: anomaly.router.to_owned(),
                kind: anomaly.kind.as_str(),
                active: anomaly.active,
            })
            .collect()
    }

    fn exposition<'a>(&'a self, anomalies: &'a [AnomalyState]) -> Exposition<'a> {
        let skew = self.clock.counts();
        Exposition {
            aggregate: self.aggregator.aggregate(),
            health: &self.health,
            files_open: self.files_open,
            restored: self.restored,
            anomalies,
            now: unix_now(),
            last_line: self.clock.last_line(),
            clock_skew: [skew.ahead, skew.behind],
            route_label: self.config.scrapes.is_some(),
        }
    }

    /// The reconciliation's families, with `--service-metrics`.
    fn render_reconciliation(&self, out: &mut String) {
        if let Some(reconciliation) = &self.reconciliation {
            reconciliation.render(out);
        }
    }

    /// `/api/reconcile`: the edge against the services, per route, since their common start.
    fn reconcile(&self) -> Reply {
        if self.config.scrapes.is_none() {
            return json_reply(
                StatusCode::NOT_FOUND,
                &json!({"error": "no --service-metrics: nothing to reconcile with"}),
            );
        }
        let report = self.reconciliation.as_ref().map_or_else(
            || {
                self.reconciler
                    .report(&std::collections::BTreeMap::new(), None)
            },
            Clone::clone,
        );
        json_text_reply(
            StatusCode::OK,
            serde_json::to_vec(&report).unwrap_or_default(),
        )
    }

    /// `/api/slow`: the edge's slowest requests per route, joined with every service
    /// instance's by trace id.
    fn slow(&self) -> Reply {
        let scrapes = self
            .config
            .scrapes
            .as_ref()
            .map(|scrapes| Arc::clone(&scrapes.borrow()));
        let services: Vec<_> = scrapes
            .iter()
            .flat_map(|scrapes| scrapes.iter())
            .filter_map(|((_, address), instance)| {
                Some((address.as_ref()?.to_string(), instance.slow.clone()?))
            })
            .collect();
        let report = trace_join::join(&self.slowest.snapshot(unix_now() as i64), &services);
        json_text_reply(
            StatusCode::OK,
            serde_json::to_vec(&report).unwrap_or_default(),
        )
    }

    /// `/api/group`: the last hour of one group in steps of 5 minutes, for the page's chart of
    /// one row.
    fn group(&self, values: &[String]) -> Reply {
        let group_by = self.aggregator.aggregate().group_by();
        if values.len() != group_by.len() {
            let names: Vec<&str> = group_by.iter().map(|d| d.name()).collect();
            return json_reply(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!(
                    "a group is {} key values ({}), in that order: ?key=VALUE&key=VALUE",
                    group_by.len(),
                    names.join(", ")
                )}),
            );
        }
        let key = GroupKey::new(values);
        let now = unix_now() as i64;
        let watched_from = now - self.started.elapsed().as_secs() as i64;
        match self.windows.hour(&key, now, watched_from) {
            Some(hour) => json_text_reply(
                StatusCode::OK,
                serde_json::to_vec(&hour).unwrap_or_default(),
            ),
            None => json_reply(
                StatusCode::NOT_FOUND,
                &json!({"error": format!("no request of group {key} in the last hour")}),
            ),
        }
    }

    fn metrics(&self) -> Reply {
        let anomalies = self.anomalies();
        let exposition = self.exposition(&anomalies);
        let mut text = String::with_capacity(16 << 10);
        if self.durable_counters.is_none() {
            exposition.render_counters(&mut text);
        }
        exposition.render_gauges(&mut text);
        self.render_reconciliation(&mut text);
        // Without a checkpoint the counters are those of now, and so are their extras.
        let extras = match &self.durable_counters {
            Some(_) => self.durable_extras.clone(),
            None => self.extras(),
        };
        Reply {
            status: StatusCode::OK,
            content_type: names::PROMETHEUS_TEXT_CONTENT_TYPE,
            head: self.durable_counters.clone().unwrap_or_default(),
            body: Bytes::from(text),
            extras,
        }
    }

    /// The checkpoint as of now, borrowing the state (the histograms are not copied).
    fn checkpoint_now(&self) -> Checkpoint<state::Persisted<'_>> {
        state::checkpoint(
            self.fingerprint.clone(),
            self.positions.files(),
            self.aggregator.aggregate(),
            &self.health,
            self.sequence,
        )
    }

    fn snapshot(&self) -> Reply {
        match self.checkpoint_now().to_json() {
            Ok(body) => Reply {
                status: StatusCode::OK,
                content_type: "application/json",
                head: Bytes::new(),
                body: Bytes::from(body),
                extras: None,
            },
            Err(error) => json_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": error.to_string()}),
            ),
        }
    }

    /// The `/api/summary` document.
    #[cfg(test)]
    pub(crate) fn summary(&self) -> Value {
        self.with_summary(None, |view| view.into_json())
    }

    /// Calls `render` with the view of the `/api/summary` document.
    fn with_summary<R>(
        &self,
        by: Option<By>,
        render: impl FnOnce(SummaryView<'_, foldhash::fast::RandomState>) -> R,
    ) -> R {
        let now = unix_now();
        let anomalies = self.anomalies();
        let view = SummaryView {
            now,
            format: self.config.aggregate.format.name(),
            aggregate: self.aggregator.aggregate(),
            windows: self.windows.summarise(now as i64),
            last_seen: &self.last_seen,
            stale_after: self.config.stale_after,
            uptime: self.started.elapsed(),
            restored: self.restored,
            recent_lines: self.recent_lines,
            files_open: self.files_open,
            anomalies: &anomalies,
            last_line: self.clock.last_line(),
            clock_skew: self.clock.counts(),
            skew_samples: self.clock.samples().cloned().collect(),
            reconcile: self.reconciliation.as_ref(),
            health: &self.health,
            history: self.history.summarise(now as i64),
            watch: &self.watch,
            requests: &self.requests,
            by,
        };
        render(view)
    }
}

/// Answers a query before the format is known (`--format auto` with no line yet): nothing is
/// counted yet, and `/ready` says what is awaited.
pub(crate) fn answer_waiting(asked: Asked, waiting: &str) {
    let reply = match asked.query {
        Query::Metrics => {
            let mut text = String::new();
            Exposition {
                aggregate: &crate::aggregate::Aggregate::default(),
                health: &Health::default(),
                files_open: 0,
                restored: false,
                anomalies: &[],
                now: unix_now(),
                last_line: None,
                clock_skew: [0, 0],
                route_label: false,
            }
            .render(&mut text);
            Reply {
                status: StatusCode::OK,
                content_type: names::PROMETHEUS_TEXT_CONTENT_TYPE,
                head: Bytes::new(),
                body: Bytes::from(text),
                extras: None,
            }
        }
        Query::Ready => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"ready": false, "reasons": [waiting], "checkpoint_restored": false, "failing": []}),
        ),
        Query::Summary { .. } => json_reply(
            StatusCode::OK,
            &json!({"now": unix_now(), "format": null, "waiting": waiting, "windows": []}),
        ),
        Query::Snapshot | Query::Reconcile | Query::Slow | Query::Group(_) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": format!("no state yet: {waiting}")}),
        ),
    };
    let _ = asked.reply.send(reply);
}

fn json_reply(status: StatusCode, value: &Value) -> Reply {
    json_text_reply(status, serde_json::to_vec(value).unwrap_or_default())
}

fn json_text_reply(status: StatusCode, mut body: Vec<u8>) -> Reply {
    body.push(b'\n');
    Reply {
        status,
        content_type: "application/json",
        head: Bytes::new(),
        body: Bytes::from(body),
        extras: None,
    }
}

/// Seconds since the epoch, on the wall clock.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests;

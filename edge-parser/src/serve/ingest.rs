//! The ingest loop: the one owner of `serve`'s state.
//!
//! It takes the tailer's messages in order, parses their lines into the cumulative
//! [`Aggregate`] (via an [`Aggregator`]), the sliding [`Windows`] and the [`Watch`], keeps the
//! file [`Positions`] in step with them, answers the HTTP side's [queries](super::http::Query),
//! and writes the checkpoint: positions and state together, so that after a restart every
//! counter continues exactly where the checkpoint left it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::exposition::{AnomalyState, Exposition, Health};
use super::http::{Asked, Query, Reply};
use super::watch::{AnomalyKind, Watch};
use super::window::{Percentiles, Windows};
use crate::aggregate::{
    Aggregate, AggregateConfig, Aggregator, GroupKey, GroupStats, LinePosition, STATUS_CLASS_NAMES,
    class_index, decode_key, key_values,
};
use crate::format::StatusClass;
use crate::input::for_each_line;
use crate::tail::{
    Checkpoint, CheckpointError, FilePosition, Positions, StatusHandle, TailEvent, TailMessage,
};
use vantage_instrument::names::OVERFLOW_ROUTE;

/// What the checkpoint holds beside the file positions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServeState {
    /// The cumulative aggregate, grouped by router (or route) and service.
    pub aggregate: Aggregate,
    /// edge-parser's own counters.
    pub health: Health,
    /// Lines taken in since the first start: the order of first appearance of groups.
    pub sequence: u64,
}

/// [`ServeState`] as it is written, borrowed from the live state: the same JSON.
#[derive(Debug, Serialize)]
pub struct ServeStateRef<'a, 'c> {
    /// The cumulative aggregate.
    pub aggregate: &'a Aggregator<'c>,
    /// edge-parser's own counters.
    pub health: &'a Health,
    /// Lines taken in since the first start.
    pub sequence: u64,
}

/// Where and how often the checkpoint is written.
#[derive(Debug, Clone)]
pub struct CheckpointTarget {
    /// The file.
    pub path: PathBuf,
    /// The configuration fingerprint a checkpoint must match to be resumed.
    pub config: String,
    /// Time between two writes.
    pub interval: Duration,
}

/// The ingest loop's state; see the [module docs](self).
#[derive(Debug)]
pub struct Ingest<'c> {
    config: &'c AggregateConfig,
    aggregator: Aggregator<'c>,
    health: Health,
    sequence: u64,
    windows: Windows,
    watch: Watch,
    positions: Positions,
    restored: bool,
    tail_status: StatusHandle,
    checkpoint: Option<CheckpointTarget>,
    last_checkpoint: Instant,
    /// When each group (encoded key) last had a line, on this process's clock: for `stale`
    /// marks.
    last_seen: HashMap<Box<[u8]>, Instant>,
    files_open: usize,
    stale_after: Duration,
    started: Instant,
    /// Lines that were not records, since this process started: for `partial` marks.
    recent_lines: (u64, u64),
}

/// The restored state and positions, or a fresh start.
#[derive(Debug, Default)]
pub struct Restored {
    /// The state from the checkpoint.
    pub state: ServeState,
    /// The file positions from the checkpoint.
    pub files: Vec<FilePosition>,
    /// Whether a checkpoint was restored.
    pub restored: bool,
}

/// Reads the checkpoint at `target`, if any.
///
/// # Errors
///
/// A checkpoint exists but is corrupt, foreign or made for another configuration.
pub fn restore(target: Option<&CheckpointTarget>) -> Result<Restored, CheckpointError> {
    let Some(target) = target else {
        return Ok(Restored::default());
    };
    Ok(
        match Checkpoint::<ServeState>::read(&target.path, &target.config)? {
            Some(checkpoint) => Restored {
                state: checkpoint.state,
                files: checkpoint.files,
                restored: true,
            },
            None => Restored::default(),
        },
    )
}

impl<'c> Ingest<'c> {
    /// An ingest loop going on from `restored`.
    pub fn new(
        config: &'c AggregateConfig,
        restored: Restored,
        watch: Watch,
        tail_status: StatusHandle,
        checkpoint: Option<CheckpointTarget>,
        stale_after: Duration,
    ) -> Self {
        let Restored {
            state,
            files,
            restored,
        } = restored;
        Self {
            config,
            aggregator: Aggregator::resume(config, state.aggregate).with_exact_cap(),
            health: state.health,
            sequence: state.sequence,
            windows: Windows::new(),
            watch,
            positions: Positions::new(files),
            restored,
            tail_status,
            checkpoint,
            last_checkpoint: Instant::now(),
            last_seen: HashMap::new(),
            files_open: 0,
            stale_after,
            started: Instant::now(),
            recent_lines: (0, 0),
        }
    }

    /// Takes one message of the tailer into the state.
    pub fn handle(&mut self, message: &TailMessage) {
        match message {
            TailMessage::Lines(batch) => {
                self.health.bytes_read += batch.end_offset.saturating_sub(batch.start_offset);
                let now = unix_now();
                for too_long in &batch.too_long {
                    self.sequence += 1;
                    self.aggregator.add_too_long(
                        LinePosition::new(0, self.sequence),
                        &too_long.prefix,
                        self.config_max_line(),
                    );
                    self.recent_lines.1 += 1;
                }
                for_each_line(&batch.bytes, 0, |_, line| self.add_line(line, now));
            }
            TailMessage::Event(event) => self.event(event),
        }
        self.positions.observe(message);
    }

    fn config_max_line(&self) -> usize {
        crate::tail::DEFAULT_MAX_LINE_BYTES
    }

    fn add_line(&mut self, line: &[u8], now: f64) {
        self.sequence += 1;
        let (windows, watch, last_seen) = (&mut self.windows, &mut self.watch, &mut self.last_seen);
        let mut parsed = false;
        self.aggregator
            .add_line_with(LinePosition::new(0, self.sequence), line, |record, key| {
                parsed = true;
                let at = record
                    .timestamp
                    .map_or(now as i64, |timestamp| timestamp.unix_secs());
                let class = record
                    .status
                    .map_or(StatusClass::Other, |status| status.class());
                windows.record(
                    key,
                    at,
                    class_index(class),
                    record.duration_ns.map(|ns| ns / 1000),
                );
                // A backlog read late (a first start with --from-start, a long stop) says
                // nothing about the current minute: only recent lines feed the baselines.
                let recent = (now as i64 - at).abs() <= WATCH_HORIZON_SECONDS;
                let router = key_values(key)
                    .next()
                    .and_then(|router| std::str::from_utf8(router).ok());
                if let Some(router) = router.filter(|_| recent) {
                    watch.record(router, at, class == StatusClass::ServerError);
                }
                match last_seen.get_mut(key) {
                    Some(seen) => *seen = Instant::now(),
                    None => {
                        last_seen.insert(key.into(), Instant::now());
                    }
                }
            });
        self.recent_lines.0 += 1;
        if !parsed {
            self.recent_lines.1 += 1;
        }
    }

    fn event(&mut self, event: &TailEvent) {
        match event {
            TailEvent::Opened { path, offset, .. } => {
                self.files_open += 1;
                tracing::info!(path = %path.display(), offset, "following");
            }
            TailEvent::Closed { path, .. } => {
                self.files_open = self.files_open.saturating_sub(1);
                tracing::debug!(path = %path.display(), "finished a rotated file");
            }
            TailEvent::Rotated { path, kind } => {
                *self
                    .health
                    .rotations
                    .entry(kind.as_str().to_owned())
                    .or_default() += 1;
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

    /// Periodic work: anomaly verdicts, window expiry, the checkpoint when due.
    pub fn tick(&mut self) {
        let now = unix_now() as i64;
        self.watch.tick(now);
        self.windows.expire(now);
        let due = self
            .checkpoint
            .as_ref()
            .is_some_and(|target| self.last_checkpoint.elapsed() >= target.interval);
        if due {
            self.write_checkpoint();
        }
    }

    /// Writes the checkpoint now (also at shutdown).
    pub fn write_checkpoint(&mut self) {
        let Some(target) = self.checkpoint.clone() else {
            return;
        };
        self.last_checkpoint = Instant::now();
        // Counted before writing, so that the written state includes this write.
        self.health.checkpoint_writes += 1;
        self.health.checkpoint_last_success = Some(unix_now() as i64);
        let checkpoint = self.checkpoint_now(target.config.clone());
        if let Err(error) = checkpoint.write_atomic(&target.path) {
            self.health.checkpoint_writes -= 1;
            self.health.checkpoint_errors += 1;
            tracing::error!(%error, "checkpoint not written");
        }
    }

    /// The checkpoint as of now, borrowing the state (the histograms are not copied).
    fn checkpoint_now(&self, config: String) -> Checkpoint<ServeStateRef<'_, 'c>> {
        Checkpoint {
            config,
            files: self.positions.files(),
            state: ServeStateRef {
                aggregate: &self.aggregator,
                health: &self.health,
                sequence: self.sequence,
            },
        }
    }

    /// Answers one query of the HTTP side.
    pub fn answer(&self, asked: Asked) {
        let reply = match asked.query {
            Query::Metrics => self.metrics(),
            Query::Ready => self.ready(),
            Query::Summary => json_reply(StatusCode::OK, &self.summary()),
            Query::Snapshot => self.snapshot(),
        };
        // The requester may have gone away.
        let _ = asked.reply.send(reply);
    }

    /// The groups as they are exported (the cap is exact as lines come), borrowed.
    fn groups(&self) -> Vec<(GroupKey, &GroupStats)> {
        self.aggregator.groups().collect()
    }

    /// The watch's signals for the routers that have a group of their own: a router the group
    /// cap folded into `(overflow)` would otherwise bring its own label value back to the page
    /// (the watch follows up to `max_routers`, more than the cap).
    fn anomalies(&self, groups: &[(GroupKey, &GroupStats)]) -> Vec<AnomalyState> {
        let routers: HashSet<&str> = groups
            .iter()
            .filter_map(|(key, _)| key.0.first())
            .map(String::as_str)
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

    fn metrics(&self) -> Reply {
        let groups = self.groups();
        let anomalies = self.anomalies(&groups);
        let mut text = String::with_capacity(16 << 10);
        Exposition {
            groups: &groups,
            lines: self.aggregator.lines(),
            last_timestamp: self.aggregator.last_timestamp(),
            health: &self.health,
            files_open: self.files_open,
            restored: self.restored,
            anomalies: &anomalies,
            now: unix_now(),
        }
        .render(&mut text);
        Reply {
            status: StatusCode::OK,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: Bytes::from(text),
        }
    }

    fn ready(&self) -> Reply {
        let status = self.tail_status.get();
        let mut reasons = Vec::new();
        if status.polls == 0 {
            reasons.push("the log files have not been looked at yet".to_owned());
        }
        for pattern in &status.patterns {
            if pattern.followed.is_empty() && pattern.failing.is_empty() {
                reasons.push(format!("{} matches no file yet", pattern.pattern));
            }
        }
        let failing: Vec<Value> = status
            .patterns
            .iter()
            .flat_map(|pattern| &pattern.failing)
            .map(|(path, reason)| json!({"path": path.display().to_string(), "reason": reason}))
            .collect();
        let body = json!({
            "ready": reasons.is_empty(),
            "reasons": reasons,
            "checkpoint_restored": self.restored,
            "failing": failing,
        });
        let code = if reasons.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json_reply(code, &body)
    }

    fn snapshot(&self) -> Reply {
        let config = self
            .checkpoint
            .as_ref()
            .map_or_else(String::new, |target| target.config.clone());
        match self.checkpoint_now(config).to_json() {
            Ok(body) => Reply {
                status: StatusCode::OK,
                content_type: "application/json",
                body: Bytes::from(body),
            },
            Err(error) => json_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": error.to_string()}),
            ),
        }
    }

    /// The `/api/summary` document.
    pub fn summary(&self) -> Value {
        let now = unix_now();
        let lines = self.aggregator.lines();
        let last = self.aggregator.last_timestamp();
        let lag = last.map(|last| (now - last as f64 / 1e9).max(0.0));
        let (recent, recent_bad) = self.recent_lines;
        let malformed_share = if recent == 0 {
            0.0
        } else {
            recent_bad as f64 / recent as f64
        };
        let uptime = self.started.elapsed().as_secs_f64();
        let group_by: Vec<&str> = self.config.group_by.iter().map(|d| d.name()).collect();
        // The same groups as /metrics: past the cap, windows fold into `(overflow)` too.
        let groups = self.groups();
        let kept: HashSet<&GroupKey> = groups.iter().map(|(key, _)| key).collect();
        let last_seen: HashMap<GroupKey, Instant> = self
            .last_seen
            .iter()
            .map(|(key, seen)| (decode_key(key), *seen))
            .collect();
        let overflow = GroupKey(vec![OVERFLOW_ROUTE.to_owned(); self.config.group_by.len()]);
        let windows: Vec<Value> = self
            .windows
            .summarise(now as i64)
            .into_iter()
            .map(|mut window| {
                window.fold_into(&overflow, |key| kept.contains(key));
                // Before a window's length has passed since the start, only that much of it
                // was watched: rates are over what was watched.
                let seconds = if self.restored {
                    window.seconds as f64
                } else {
                    (window.seconds as f64).min(uptime.max(1.0))
                };
                let mut partial = Vec::new();
                if uptime < window.seconds as f64 && !self.restored {
                    partial.push("started less than a window ago");
                }
                if lag.is_some_and(|lag| lag > seconds / 10.0 && lag > 10.0) {
                    partial.push("the log lags behind the clock");
                }
                if malformed_share > MALFORMED_PARTIAL_SHARE {
                    partial.push("many lines could not be parsed");
                }
                let mut groups: Vec<_> = window.groups.iter().collect();
                groups.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
                let groups: Vec<Value> = groups
                    .into_iter()
                    .map(|(key, stats)| {
                        let since = last_seen.get(key).map(Instant::elapsed);
                        let stale = since.is_none_or(|since| since > self.stale_after);
                        let key_json: serde_json::Map<String, Value> = group_by
                            .iter()
                            .zip(&key.0)
                            .map(|(dimension, value)| ((*dimension).to_owned(), json!(value)))
                            .collect();
                        json!({
                            "key": key_json,
                            "requests": stats.requests,
                            "rps": stats.requests as f64 / seconds,
                            "status_class": classes(&stats.status_classes),
                            "latency_seconds": Percentiles::of(&stats.latency),
                            "stale": stale,
                            "partial": !partial.is_empty(),
                            "seconds_since_last_line": since.map(|s| s.as_secs_f64()),
                        })
                    })
                    .collect();
                json!({
                    "window": window.spec.name,
                    "seconds": window.seconds,
                    "covered_seconds": seconds,
                    "partial": partial,
                    "groups": groups,
                })
            })
            .collect();
        let anomalies: Vec<Value> = self
            .anomalies(&groups)
            .into_iter()
            .filter(|anomaly| anomaly.active)
            .map(|anomaly| json!({"router": anomaly.router, "kind": anomaly.kind}))
            .collect();
        json!({
            "now": now,
            "format": self.config.format.name(),
            "group_by": group_by,
            "lines": lines,
            "lag_seconds": lag,
            "stale": self.last_seen.values().all(|seen| seen.elapsed() > self.stale_after),
            "files_open": self.files_open,
            "windows": windows,
            "anomalies": anomalies,
        })
    }

    /// Whether any watch kind is on for `router` (tests and logs).
    pub fn anomaly(&self, router: &str, kind: AnomalyKind) -> bool {
        self.watch
            .anomalies()
            .any(|anomaly| anomaly.router == router && anomaly.kind == kind && anomaly.active)
    }
}

/// Lines further than this from the clock are not fed to the watch tower.
const WATCH_HORIZON_SECONDS: i64 = 120;

/// A window is marked partial when more than this share of its process's lines were not
/// requests.
const MALFORMED_PARTIAL_SHARE: f64 = 0.01;

fn classes(counts: &[u64; 6]) -> Value {
    STATUS_CLASS_NAMES
        .iter()
        .zip(counts)
        .map(|(name, count)| ((*name).to_owned(), json!(count)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn json_reply(status: StatusCode, value: &Value) -> Reply {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    Reply {
        status,
        content_type: "application/json",
        body: Bytes::from(body),
    }
}

/// Seconds since the epoch, on the wall clock.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::aggregate::Dimension;
    use crate::format::Format;
    use crate::serve::watch::WatchConfig;
    use crate::tail::{Batch, FileIdentity, Fingerprint};

    fn config() -> AggregateConfig {
        let mut config = AggregateConfig::new(Format::TraefikCommon);
        config.group_by = vec![Dimension::Router, Dimension::Service];
        config.count_codes = true;
        config
    }

    fn ingest<'c>(
        config: &'c AggregateConfig,
        restored: Restored,
        checkpoint: &Path,
    ) -> Ingest<'c> {
        Ingest::new(
            config,
            restored,
            Watch::new(WatchConfig::default()).expect("default watch"),
            StatusHandle::default(),
            Some(CheckpointTarget {
                path: checkpoint.to_owned(),
                config: "test".to_owned(),
                interval: Duration::from_secs(3600),
            }),
            Duration::from_secs(60),
        )
    }

    fn line(router: &str, status: u16) -> String {
        format!(
            "1.1.1.1 - - [09/Mar/2025:12:00:00 +0000] \"GET /a HTTP/1.1\" {status} 5 \"-\" \"-\" 1 \"{router}\" \"http://x\" 3ms\n"
        )
    }

    /// A batch of `lines` appended to a file at `start`.
    fn batch(lines: &[String], start: u64) -> TailMessage {
        let bytes: Vec<u8> = lines.concat().into_bytes();
        TailMessage::Lines(Batch {
            path: Arc::from(Path::new("/var/log/access.log")),
            identity: FileIdentity {
                dev: 1,
                ino: 2,
                fingerprint: Fingerprint { len: 3, hash: 4 },
            },
            start_offset: start,
            end_offset: start + bytes.len() as u64,
            bytes,
            too_long: Vec::new(),
        })
    }

    fn metrics(ingest: &Ingest<'_>) -> String {
        String::from_utf8(ingest.metrics().body.to_vec()).expect("utf-8")
    }

    #[test]
    fn counters_continue_from_the_checkpoint() {
        let dir = std::env::temp_dir().join(format!("vantage-ingest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("checkpoint.json");
        let config = config();
        let first_lines = [line("a@x", 200), line("a@x", 503), line("b@x", 200)];
        let mut first = ingest(&config, Restored::default(), &path);
        first.handle(&batch(&first_lines, 0));
        first.write_checkpoint();
        let end = first_lines.concat().len() as u64;

        let restored = restore(first.checkpoint.as_ref()).expect("readable checkpoint");
        assert!(restored.restored);
        assert_eq!(restored.files[0].offset, end);
        let mut second = ingest(&config, restored, &path);
        second.handle(&batch(&[line("a@x", 200)], end));
        let text = metrics(&second);
        for expected in [
            "edge_requests_total{router=\"a@x\",service=\"-\",method=\"GET\",code=\"200\"} 2\n",
            "edge_requests_total{router=\"a@x\",service=\"-\",method=\"GET\",code=\"503\"} 1\n",
            "edge_requests_total{router=\"b@x\",service=\"-\",method=\"GET\",code=\"200\"} 1\n",
            "edge_lines_total{result=\"parsed\"} 4\n",
            "edge_checkpoint_writes_total 1\n",
            "edge_checkpoint_restored 1\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn malformed_and_over_long_lines_are_counted_and_bytes_read() {
        let dir = std::env::temp_dir().join(format!("vantage-ingest-bad-{}", std::process::id()));
        let config = config();
        let mut ingest = ingest(&config, Restored::default(), &dir.join("cp.json"));
        let mut message = batch(&[line("a@x", 200), "garbage\n".to_owned()], 0);
        if let TailMessage::Lines(batch) = &mut message {
            batch.too_long.push(crate::tail::TooLong {
                offset: 7,
                prefix: b"x".repeat(10),
            });
        }
        ingest.handle(&message);
        let text = metrics(&ingest);
        assert!(
            text.contains("edge_lines_total{result=\"parsed\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("edge_lines_total{result=\"malformed\"} 2\n"),
            "{text}"
        );
        let bytes = line("a@x", 200).len() + "garbage\n".len();
        assert!(
            text.contains(&format!("edge_bytes_read_total {bytes}\n")),
            "{text}"
        );
        let summary = ingest.summary();
        assert_eq!(summary["lines"]["total"], 3);
        assert_eq!(summary["windows"][0]["window"], "1m");
    }
}

//! A model-based test of the real `edge-parser serve` process, watched by a real Prometheus.
//!
//! A seeded random sequence of steps acts on a real log directory and on the server: appends
//! of complete lines (a few, or a backlog of thousands), over-long lines, a line written in two
//! parts, rename, copytruncate and delete-and-recreate rotations, and `kill -9` or SIGTERM
//! followed by a restart on the same checkpoint and the same port, with the log going on (and
//! maybe rotated) while the server is down. A step is one to four such actions done back to
//! back, without waiting for the server in between: a kill lands mid-read (right after a
//! backlog is appended), right after an append, right after a rotation, with lines unread.
//! After each step, once `/metrics` has caught up, every counter it shows must equal what a
//! plain model of the written lines says:
//!
//! - `edge_requests_total` per router, service, method and code;
//! - `edge_request_duration_seconds`: every `_bucket` (per `le`, the bounds of
//!   `DEFAULT_DURATION_BUCKETS`), `_sum` (seconds, exact: the log has whole milliseconds) and
//!   `_count`, per router; see [`at_or_below`] for the counting rule at a bound;
//! - `edge_lines_total` by result (an over-long line is `malformed`);
//! - `edge_bytes_read_total`: the bytes of the complete lines, newlines included, over-long
//!   ones too; an unfinished last line counts once its newline is written;
//! - `edge_file_rotations_total` by kind;
//!
//! and no other series of those families. The log is a Traefik `common` access log with a
//! handful of routers, statuses and durations (many at or next to a bucket bound); every
//! request path is unique (`/r/<line number>`), so a line read twice or lost changes the
//! counts. The pattern is the literal `access.log`, which does not match the rotated
//! `access.log.1`.
//!
//! Meanwhile a real Prometheus scrapes the server every second through the whole run (one
//! fixed address: the server restarts on the same `--listen` port), and the test's
//! [`Scraper`] every 10 ms. At the end, after a scrape of the final state, Prometheus must hold
//! no counter reset (`resets()` of every series of those families is 0) and
//! `max_over_time()` of every series must equal the model's final count: what Prometheus
//! stored never went back across the kills and never counted a line twice. Without
//! `prometheus` the test says so and goes on with the scraper's check, except under CI (`CI`
//! set), where it fails.
//!
//! # What the test waits for, and why
//!
//! Only these waits happen between the actions of a step; each avoids a loss or a rotation
//! label that follows from how `serve` documents following files (`tail` module docs: how
//! rotations are seen, "Exactly once across restarts", "Limitations"), so that the model can
//! stay exact:
//!
//! - **Before a copytruncate**, until the lines of `access.log` are read (`lines.total` of the
//!   live `/api/summary`): lines not read at the truncation are lost by design. If a `kill -9`
//!   follows in the step, until they are in a checkpoint (`edge_lines_total` of `/metrics`,
//!   which shows the last checkpoint): the restart cannot read them again from the truncated
//!   file. The test never writes between the copy and the truncation (those lines are lost by
//!   design), nor copytruncates a half-written line (which is cut in two by design).
//! - **Before deleting a followed file** (a recreate, or a rotation that replaces the
//!   `access.log.1` a rename left) when the server is stopped later in the step, until that
//!   file's lines are read (SIGTERM: the final checkpoint holds what was read) or in a
//!   checkpoint (`kill -9`): a file deleted since cannot be read again after the restart.
//!   The same wait comes before the stop when the deletion happens while the server is down.
//! - **Before any rotation that follows a rename or recreate in the step**, until a checkpoint
//!   counts the earlier rotations: the server names a rotation by what it finds when it looks
//!   (a file renamed away and then deleted before it looked was, as far as it can tell,
//!   deleted: `recreate`), and a file created and rotated away before it looked is never seen.
//! - **Before a stop, a rename or a recreate after a copytruncate** in the step, until a
//!   checkpoint counts the copytruncate, when the server is stopped later and the truncated
//!   file has grown back to its old size, gets written while the server is down, or leaves its
//!   path: a restart tells a truncation from a new file only by a shorter size, and does not
//!   follow a checkpointed file whose contents changed under another name.
//! - **Before a stop with a rotation while the server is down**, until a checkpoint counts the
//!   step's earlier rotations: the restart must know the current `access.log`, or a file it
//!   never saw is rotated away unseen.
//! - **Before a `kill -9` after a rename or recreate in the step, or with a rotation while the
//!   server is down**, until a first checkpoint exists: a restart without one is a first
//!   start, which reads `access.log` (here `--from-start`) but knows nothing of
//!   `access.log.1` or of the rotation.
//!
//! For a rotation while the server is down, the waits it needs come before the stop.
//!
//! Nothing else is waited for: a kill right after appends, a backlog, a rename or a recreate
//! happens at once, and the restart must read again what the last checkpoint did not hold.
//! A step with a line half written gives the server a few polls to look at it first.
//!
//! Deleted files are kept open by the test (up to [`HELD_FILES`]), so that no new file gets
//! the inode of one a checkpoint may still name: that would be `inode_reuse`, not the rotation
//! done. A copytruncate of a file with no complete line is not a rotation anyone can see: the
//! model counts `copytruncate` only when `access.log` held a line.
//!
//! The short run is part of `cargo test`. The long run is `#[ignore]`d:
//! `VANTAGE_SEED=123 VANTAGE_STEPS=3000 cargo test -p vantage-edge --test integration --
//! --ignored serve_model` (seed from the clock without `VANTAGE_SEED`). Both print the seed,
//! the failing step and the step history on failure.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vantage_instrument::names::DEFAULT_DURATION_BUCKETS;

use crate::serve_util::{Exposition, Prometheus, Scraper, Server, poll_until, traefik_line};
use crate::util::{Dir, WAIT_LIMIT};

/// How long `/metrics` may take to agree with the model after a step.
const CONVERGE_LIMIT: Duration = Duration::from_secs(10);
/// The tailer's poll interval given to the server.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Steps of the run in `cargo test`.
const SHORT_STEPS: usize = 120;
/// Seed of the run in `cargo test`.
const SHORT_SEED: u64 = 0x5eed_0002;
/// Steps of the long run without `VANTAGE_STEPS`.
const LONG_STEPS: usize = 1500;
/// Bytes of an over-long line, past the server's line limit (64 KiB).
const LONG_LINE_BYTES: usize = 70_000;
/// Deleted files kept open so that their inodes are not reused; past this many the oldest
/// is closed (hundreds of checkpoints later, none names it).
const HELD_FILES: usize = 128;

/// The counter families compared, series by series.
const COUNTERS: [&str; 7] = [
    "edge_requests_total",
    "edge_request_duration_seconds_bucket",
    "edge_request_duration_seconds_sum",
    "edge_request_duration_seconds_count",
    "edge_lines_total",
    "edge_bytes_read_total",
    "edge_file_rotations_total",
];

const ROUTERS: [&str; 5] = [
    "api@docker",
    "web@docker",
    "auth@file",
    "static@kubernetescrd",
    "admin@docker",
];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "DELETE"];
const STATUSES: [u16; 8] = [200, 200, 200, 201, 304, 404, 500, 503];

#[test]
fn serve_counters_match_the_model_and_prometheus_through_rotations_and_kills() {
    Run::new(SHORT_SEED).steps(SHORT_STEPS);
}

#[test]
#[ignore = "long: run with --ignored, VANTAGE_SEED and VANTAGE_STEPS"]
fn serve_counters_match_the_model_and_prometheus_through_rotations_and_kills_long() {
    let seed = std::env::var("VANTAGE_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64)
        },
        |seed| seed.parse().expect("VANTAGE_SEED is a number"),
    );
    let steps = std::env::var("VANTAGE_STEPS").map_or(LONG_STEPS, |steps| {
        steps.parse().expect("VANTAGE_STEPS is a number")
    });
    Run::new(seed).steps(steps);
}

/// Every counter series, `name{label="value",...}` (labels sorted) to its value.
type Series = BTreeMap<String, f64>;

/// The name of a series as [`Series`] keys it.
fn series_name<'a>(name: &str, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let labels: BTreeMap<&str, &str> = labels.into_iter().collect();
    if labels.is_empty() {
        return name.to_owned();
    }
    let labels: Vec<String> = labels
        .iter()
        .map(|(label, value)| format!("{label}={value:?}"))
        .collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// The counter series of `/metrics` in the compared families.
fn served(metrics: &Exposition) -> Series {
    metrics
        .samples
        .iter()
        .filter(|sample| COUNTERS.contains(&sample.name.as_str()))
        .map(|sample| {
            let labels = sample
                .labels
                .iter()
                .map(|(label, value)| (label.as_str(), value.as_str()));
            (series_name(&sample.name, labels), sample.value)
        })
        .collect()
}

/// The series where `expected` and `observed` differ, one per line.
fn differences(expected: &Series, observed: &Series) -> String {
    let mut names: Vec<&String> = expected.keys().chain(observed.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| expected.get(*name) != observed.get(*name))
        .map(|name| {
            format!(
                "  {name}: model {:?}, served {:?}\n",
                expected.get(name),
                observed.get(name)
            )
        })
        .collect()
}

/// The duration histogram of one router, as the model counts it.
#[derive(Debug, Clone, Default)]
struct Durations {
    /// Per bound of [`DEFAULT_DURATION_BUCKETS`], the durations counted at or below it.
    buckets: Vec<u64>,
    count: u64,
    sum_micros: u64,
}

impl Durations {
    fn add(&mut self, micros: u64) {
        self.buckets.resize(DEFAULT_DURATION_BUCKETS.len(), 0);
        for (bucket, bound) in self.buckets.iter_mut().zip(DEFAULT_DURATION_BUCKETS) {
            *bucket += u64::from(at_or_below(micros, bound_micros(*bound)));
        }
        self.count += 1;
        self.sum_micros += micros;
    }
}

/// A bucket bound in microseconds.
fn bound_micros(bound: f64) -> u64 {
    (bound * 1e6).round() as u64
}

/// Whether a duration of `micros` counts in the bucket `le = bound`, as `serve` documents it
/// (`export::prometheus` module docs): at or below the bound, or in the same counter of the
/// HdrHistogram layout as the bound (3 significant digits: a value under 2048 µs has a counter
/// of its own; above, values share one when they agree in their 11 leading bits). Up to the
/// 2.5 s bound that is exact for whole milliseconds; above it, 5001 ms counts at or below 5 s,
/// 7501 to 7503 ms below 7.5 s, 10 001 and 10 002 ms below 10 s.
fn at_or_below(micros: u64, bound: u64) -> bool {
    let bits = |value: u64| u64::BITS - value.leading_zeros();
    let same_counter = if micros < 2048 || bound < 2048 {
        micros == bound
    } else {
        bits(micros) == bits(bound) && micros >> (bits(micros) - 11) == bound >> (bits(bound) - 11)
    };
    micros <= bound || same_counter
}

/// What `/metrics` must show, from the lines written.
#[derive(Debug, Clone, Default)]
struct Model {
    /// `edge_requests_total` by router, method and code (the service is `-`).
    requests: BTreeMap<(String, String, u16), u64>,
    /// The duration histograms by router.
    durations: BTreeMap<String, Durations>,
    parsed: u64,
    malformed: u64,
    bytes: u64,
    /// `edge_file_rotations_total` by kind.
    rotations: BTreeMap<&'static str, u64>,
}

impl Model {
    /// Lines counted, parsed or not: the lines written, in order.
    fn lines(&self) -> u64 {
        self.parsed + self.malformed
    }

    fn add(&mut self, line: &Line) {
        self.bytes += line.bytes.len() as u64;
        match &line.request {
            Some(request) => {
                self.parsed += 1;
                let key = (
                    request.router.to_owned(),
                    request.method.to_owned(),
                    request.status,
                );
                *self.requests.entry(key).or_default() += 1;
                self.durations
                    .entry(request.router.to_owned())
                    .or_default()
                    .add(u64::from(request.duration_ms) * 1000);
            }
            None => self.malformed += 1,
        }
    }

    fn rotation(&mut self, kind: &'static str) {
        *self.rotations.entry(kind).or_default() += 1;
    }

    /// Every series of the compared families.
    fn series(&self) -> Series {
        let mut series = Series::new();
        for ((router, method, code), count) in &self.requests {
            let code = code.to_string();
            let labels = [
                ("router", router.as_str()),
                ("service", "-"),
                ("method", method),
                ("code", &code),
            ];
            series.insert(series_name("edge_requests_total", labels), *count as f64);
        }
        for (router, durations) in &self.durations {
            let labels = [("router", router.as_str()), ("service", "-")];
            let buckets = DEFAULT_DURATION_BUCKETS
                .iter()
                .map(f64::to_string)
                .zip(durations.buckets.iter().copied())
                .chain([("+Inf".to_owned(), durations.count)]);
            for (le, count) in buckets {
                let with_le = labels.into_iter().chain([("le", le.as_str())]);
                let name = series_name("edge_request_duration_seconds_bucket", with_le);
                series.insert(name, count as f64);
            }
            // As the server computes it, from whole microseconds.
            let sum = durations.sum_micros as f64 / 1e6;
            series.insert(
                series_name("edge_request_duration_seconds_sum", labels),
                sum,
            );
            let count = durations.count as f64;
            series.insert(
                series_name("edge_request_duration_seconds_count", labels),
                count,
            );
        }
        for (result, count) in [
            ("parsed", self.parsed),
            ("malformed", self.malformed),
            ("filtered", 0),
        ] {
            let name = series_name("edge_lines_total", [("result", result)]);
            series.insert(name, count as f64);
        }
        series.insert("edge_bytes_read_total".to_owned(), self.bytes as f64);
        for (kind, count) in &self.rotations {
            let name = series_name("edge_file_rotations_total", [("kind", *kind)]);
            series.insert(name, *count as f64);
        }
        series
    }
}

/// A request line's labels and duration.
#[derive(Debug, Clone)]
struct Request {
    router: &'static str,
    method: &'static str,
    status: u16,
    duration_ms: u32,
}

/// One line of the log: its bytes (newline included) and what it counts as (`None`:
/// malformed).
#[derive(Debug, Clone)]
struct Line {
    bytes: Vec<u8>,
    request: Option<Request>,
}

/// How a step stops the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `kill -9`: the restart continues from the last checkpoint.
    Kill,
    /// SIGTERM: the final checkpoint holds everything read.
    Terminate,
}

/// How far the server must have taken lines in before a stop or a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Read: in the live state (`/api/summary`).
    Read,
    /// In a checkpoint (`/metrics`).
    Durable,
}

impl Stop {
    /// What a stop needs of the lines of a file that will not be there at the restart.
    fn needs(self) -> Taken {
        match self {
            Self::Kill => Taken::Durable,
            Self::Terminate => Taken::Read,
        }
    }
}

/// One action of a step.
#[derive(Debug, Clone)]
enum Action {
    Append(usize),
    AppendLong,
    StartPartial,
    FinishPartial,
    Rename,
    CopyTruncate,
    Recreate,
    /// Stops the server, does `meanwhile` to the log, restarts it.
    Stop(Stop, Vec<Self>),
}

impl Action {
    fn is_rotation(&self) -> bool {
        matches!(self, Self::Rename | Self::CopyTruncate | Self::Recreate)
    }
}

/// The second half of a line written in two parts.
#[derive(Debug)]
struct Pending {
    rest: Vec<u8>,
    line: Line,
}

/// One run: the directory, the server, the model, the watchers, the history.
struct Run {
    seed: u64,
    rng: fastrand::Rng,
    dir: Dir,
    log: PathBuf,
    rotated: PathBuf,
    listen: SocketAddr,
    server: Option<Server>,
    args: Vec<String>,
    model: Model,
    pending: Option<Pending>,
    lines_written: u64,
    /// Whether `access.log` holds a complete line.
    log_has_lines: bool,
    /// When `access.log.1` is a file the server followed (renamed there): the lines counted
    /// when it was renamed, all of its lines.
    rotated_end: Option<u64>,
    /// Since the last step the server caught up with: a rotation, a rename or recreate, and
    /// the size of `access.log` at a copytruncate.
    rotated_since_sync: bool,
    renamed_since_sync: bool,
    truncated_at: Option<u64>,
    /// Whether a checkpoint was written.
    checkpointed: bool,
    held: VecDeque<File>,
    history: Vec<String>,
    /// Waits done, by reason: for the report.
    waits: BTreeMap<&'static str, u32>,
    restarts: u32,
    scraper: Option<Scraper>,
    prometheus: Option<Prometheus>,
    started: Instant,
}

impl Run {
    fn new(seed: u64) -> Self {
        eprintln!("serve model: seed {seed}");
        let dir = Dir::new("serve-model");
        let log = dir.join("access.log");
        let rotated = dir.join("access.log.1");
        File::create(&log).expect("creating access.log");
        let args: Vec<String> = [
            "--log",
            &log.display().to_string(),
            "--format",
            "traefik-common",
            "--checkpoint",
            &dir.join("checkpoint.json").display().to_string(),
            "--checkpoint-interval",
            "200ms",
            "--poll-interval",
            &format!("{}ms", POLL_INTERVAL.as_millis()),
            // A restart before the first checkpoint reads the file again from its start.
            "--from-start",
        ]
        .map(str::to_owned)
        .to_vec();
        let listen = crate::util::free_port();
        let prometheus = Prometheus::start(&dir, listen);
        let scraper = Scraper::start();
        scraper.point_at(Some(listen));
        let mut run = Self {
            seed,
            rng: fastrand::Rng::with_seed(seed),
            dir,
            log,
            rotated,
            listen,
            server: None,
            args,
            model: Model::default(),
            pending: None,
            lines_written: 0,
            log_has_lines: false,
            rotated_end: None,
            rotated_since_sync: false,
            renamed_since_sync: false,
            truncated_at: None,
            checkpointed: false,
            held: VecDeque::new(),
            history: Vec::new(),
            waits: BTreeMap::new(),
            restarts: 0,
            scraper: Some(scraper),
            prometheus,
            started: Instant::now(),
        };
        run.start_server();
        run
    }

    fn steps(mut self, steps: usize) {
        for _ in 0..steps {
            let actions = self.plan();
            let mut ahead = actions.iter().find_map(|action| match action {
                Action::Stop(stop, _) => Some(*stop),
                _ => None,
            });
            let mut done = Vec::new();
            self.history.push(String::new());
            for action in actions {
                // Named before it is done, so that a failure inside it shows it.
                *self.history.last_mut().expect("just pushed") =
                    [done.join("; "), format!("then {action:?}")].join("; ");
                let stops = matches!(action, Action::Stop(..));
                done.push(self.apply(action, ahead));
                if stops {
                    ahead = None;
                }
                *self.history.last_mut().expect("just pushed") = done.join("; ");
            }
            self.converge();
        }
        self.check_prometheus();
        let server = self.server.take().expect("a server runs");
        let code = server.terminate();
        assert_eq!(code, 0, "seed {}: exit code after SIGTERM", self.seed);
        let (scrapes, decreases) = self.scraper.take().map(Scraper::finish).unwrap_or_default();
        assert!(
            decreases.is_empty(),
            "seed {}: counters went back between two scrapes:\n{}",
            self.seed,
            decreases.join("\n")
        );
        eprintln!(
            "serve model: seed {}, {steps} steps, {} lines ({} bytes), {} restarts, rotations {:?}, \
             waits {:?}, {scrapes} scrapes by the test, {:.1} s",
            self.seed,
            self.model.lines(),
            self.model.bytes,
            self.restarts,
            self.model.rotations,
            self.waits,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// One to four actions, at most one of them a stop.
    fn plan(&mut self) -> Vec<Action> {
        let count = match self.rng.u32(0..10) {
            0..4 => 1,
            4..7 => 2,
            7..9 => 3,
            _ => 4,
        };
        let mut pending = self.pending.is_some();
        let mut may_stop = true;
        let mut actions = Vec::new();
        for _ in 0..count {
            let action = self.choose(pending, may_stop);
            match &action {
                Action::StartPartial => pending = true,
                Action::FinishPartial => pending = false,
                Action::Stop(_, meanwhile) => {
                    may_stop = false;
                    pending &= !meanwhile
                        .iter()
                        .any(|action| matches!(action, Action::FinishPartial));
                }
                _ => {}
            }
            actions.push(action);
        }
        actions
    }

    fn choose(&mut self, pending: bool, may_stop: bool) -> Action {
        let roll = self.rng.u32(0..100);
        if pending {
            return match roll {
                0..20 if may_stop => self.stop(pending),
                _ => Action::FinishPartial,
            };
        }
        match roll {
            0..30 => Action::Append(self.rng.usize(1..=4)),
            // A backlog of several batches: a kill after it lands mid-read.
            30..34 => Action::Append(self.rng.usize(500..=3000)),
            34..37 => Action::AppendLong,
            37..47 => Action::StartPartial,
            47..56 => Action::Rename,
            56..63 => Action::CopyTruncate,
            63..70 => Action::Recreate,
            70..88 if may_stop => self.stop(pending),
            _ => Action::Append(self.rng.usize(1..=4)),
        }
    }

    /// A stop, and what happens to the log while the server is down.
    fn stop(&mut self, pending: bool) -> Action {
        let stop = if self.rng.u32(0..10) < 6 {
            Stop::Kill
        } else {
            Stop::Terminate
        };
        let mut meanwhile = Vec::new();
        if pending {
            if self.rng.bool() {
                meanwhile.push(Action::FinishPartial);
            }
        } else {
            let rotation = match self.rng.u32(0..12) {
                0 => Some(Action::Rename),
                1 => Some(Action::Recreate),
                2 => Some(Action::CopyTruncate),
                _ => None,
            };
            // A truncated file that grows while the server is down could not be told from
            // a new one: nothing is written after a copytruncate.
            let truncated = matches!(rotation, Some(Action::CopyTruncate));
            meanwhile.extend(rotation);
            let lines = self.rng.usize(0..=3);
            if lines > 0 && !truncated {
                meanwhile.push(Action::Append(lines));
            }
        }
        Action::Stop(stop, meanwhile)
    }

    /// Does `action` to the files (and the server) and to the model, `ahead` being how the
    /// server is stopped later in the step; returns what it did.
    fn apply(&mut self, action: Action, ahead: Option<Stop>) -> String {
        let mut waited = Vec::new();
        let description = match action {
            Action::Append(lines) => self.append(lines),
            Action::AppendLong => {
                let line = self.long_line();
                let bytes = line.bytes.len();
                self.write(&line.bytes);
                self.model.add(&line);
                self.log_has_lines = true;
                format!("append a line of {bytes} bytes")
            }
            Action::StartPartial => {
                let line = if self.rng.u32(0..8) == 0 {
                    self.long_line()
                } else {
                    self.line()
                };
                let cut = self.rng.usize(1..line.bytes.len() - 1);
                self.write(&line.bytes[..cut]);
                let description =
                    format!("write {cut} of the {} bytes of a line", line.bytes.len());
                self.pending = Some(Pending {
                    rest: line.bytes[cut..].to_vec(),
                    line,
                });
                // Gives the tailer a few polls to look at the unfinished line (and wrongly
                // count it).
                std::thread::sleep(POLL_INTERVAL * 3);
                description
            }
            Action::FinishPartial => self.finish_partial(),
            Action::Rename | Action::CopyTruncate | Action::Recreate => {
                self.before_rotation(&action, ahead, &mut waited);
                self.rotate(&action)
            }
            Action::Stop(stop, meanwhile) => self.stop_and_restart(stop, &meanwhile, &mut waited),
        };
        if waited.is_empty() {
            description
        } else {
            format!("{description} (after waiting {})", waited.join(", "))
        }
    }

    /// The waits a rotation done while the server runs needs; see the module docs.
    fn before_rotation(&mut self, action: &Action, ahead: Option<Stop>, waited: &mut Vec<String>) {
        let renames = matches!(action, Action::Rename | Action::Recreate);
        if self.renamed_since_sync || (renames && self.truncated_at.is_some() && ahead.is_some()) {
            waited.push(self.wait_rotations_durable());
        }
        if let Some(stop) = ahead {
            // The followed file at access.log.1 goes away.
            if let (Some(end), Action::Rename | Action::CopyTruncate) = (self.rotated_end, action) {
                waited.extend(self.wait_taken(end, stop.needs(), "the lines of access.log.1"));
            }
            if matches!(action, Action::Recreate) {
                let lines = self.model.lines();
                waited.extend(self.wait_taken(lines, stop.needs(), "the lines of access.log"));
            }
        }
        if matches!(action, Action::CopyTruncate) && self.log_has_lines {
            let taken = if ahead == Some(Stop::Kill) {
                Taken::Durable
            } else {
                Taken::Read
            };
            let lines = self.model.lines();
            waited.extend(self.wait_taken(lines, taken, "the lines of access.log"));
        }
    }

    /// Does a rotation to the files and the model.
    fn rotate(&mut self, action: &Action) -> String {
        match action {
            Action::Rename => {
                self.remove_rotated();
                fs::rename(&self.log, &self.rotated).expect("renaming access.log");
                File::create(&self.log).expect("creating access.log");
                self.model.rotation("rename");
                self.rotated_end = Some(self.model.lines());
                self.renamed_since_sync = true;
                self.rotated_since_sync = true;
                self.log_has_lines = false;
                "rename rotation: access.log -> access.log.1, new access.log".to_owned()
            }
            Action::CopyTruncate => {
                self.remove_rotated();
                fs::copy(&self.log, &self.rotated).expect("copying access.log");
                let size = fs::metadata(&self.log).map_or(0, |m| m.len());
                OpenOptions::new()
                    .write(true)
                    .open(&self.log)
                    .and_then(|file| file.set_len(0))
                    .expect("truncating access.log");
                let seen = self.log_has_lines;
                if seen {
                    self.model.rotation("copytruncate");
                    self.truncated_at = Some(size);
                    self.rotated_since_sync = true;
                }
                self.rotated_end = None;
                self.log_has_lines = false;
                format!("copytruncate of {size} bytes (a rotation to see: {seen})")
            }
            Action::Recreate => {
                // Kept open, so that no new file gets its inode.
                self.hold(File::open(&self.log).expect("opening access.log"));
                fs::remove_file(&self.log).expect("deleting access.log");
                File::create(&self.log).expect("creating access.log");
                self.model.rotation("recreate");
                self.renamed_since_sync = true;
                self.rotated_since_sync = true;
                self.log_has_lines = false;
                "delete access.log and create a new one".to_owned()
            }
            _ => unreachable!("not a rotation: {action:?}"),
        }
    }

    /// Stops the server (after the waits it needs), does `meanwhile` to the log, restarts it.
    fn stop_and_restart(
        &mut self,
        stop: Stop,
        meanwhile: &[Action],
        waited: &mut Vec<String>,
    ) -> String {
        let rotation = meanwhile
            .iter()
            .find(|action| action.is_rotation())
            .cloned();
        let rotated_in_step = self.renamed_since_sync;
        if stop == Stop::Kill && !self.checkpointed && (rotated_in_step || rotation.is_some()) {
            waited.push(self.wait_first_checkpoint());
        }
        if let Some(rotation) = &rotation {
            if self.rotated_since_sync {
                waited.push(self.wait_rotations_durable());
            }
            if let (Some(end), Action::Rename | Action::CopyTruncate) = (self.rotated_end, rotation)
            {
                waited.extend(self.wait_taken(end, stop.needs(), "the lines of access.log.1"));
            }
            if matches!(rotation, Action::Recreate | Action::CopyTruncate) {
                let lines = self.model.lines();
                waited.extend(self.wait_taken(lines, stop.needs(), "the lines of access.log"));
            }
        }
        if let Some(size) = self.truncated_at {
            let now = fs::metadata(&self.log).map_or(0, |m| m.len());
            if now >= size || !meanwhile.is_empty() {
                waited.push(self.wait_rotations_durable());
            }
        }
        let server = self.server.take().expect("a server runs");
        let what = match stop {
            Stop::Kill => {
                server.kill();
                "kill -9"
            }
            Stop::Terminate => {
                let code = server.terminate();
                assert_eq!(code, 0, "seed {}: exit code after SIGTERM", self.seed);
                self.checkpointed = true;
                "SIGTERM"
            }
        };
        let done: Vec<String> = meanwhile
            .iter()
            .map(|action| match action {
                Action::Append(lines) => self.append(*lines),
                Action::FinishPartial => self.finish_partial(),
                rotation => self.rotate(rotation),
            })
            .collect();
        self.start_server();
        self.restarts += 1;
        format!("{what}, while stopped [{}], restart", done.join("; "))
    }

    /// Waits until the server has taken in the first `lines` lines written, as `taken` says
    /// (the lines are taken in the order written); `None` when it already had.
    fn wait_taken(&mut self, lines: u64, taken: Taken, what: &str) -> Option<String> {
        let counted = |run: &Self| match taken {
            Taken::Read => run.server().get("/api/summary").json()["lines"]["total"]
                .as_u64()
                .unwrap_or(0),
            Taken::Durable => {
                let metrics = run.server().metrics();
                metrics.count("edge_lines_total", &[("result", "parsed")])
                    + metrics.count("edge_lines_total", &[("result", "malformed")])
            }
        };
        if counted(self) >= lines {
            return None;
        }
        let reason = match taken {
            Taken::Read => "lines read",
            Taken::Durable => "lines in a checkpoint",
        };
        *self.waits.entry(reason).or_default() += 1;
        let outcome = poll_until(WAIT_LIMIT, || {
            let counted = counted(self);
            if counted >= lines {
                Ok(())
            } else {
                Err(format!("{counted} of {lines} {reason}"))
            }
        });
        if let Err(error) = outcome {
            panic!("seed {}: waiting for {what}: {error}", self.seed);
        }
        Some(format!("for {what} to be {reason}"))
    }

    /// Waits until a checkpoint counts every rotation done.
    fn wait_rotations_durable(&mut self) -> String {
        *self.waits.entry("rotations in a checkpoint").or_default() += 1;
        let expected: BTreeMap<String, u64> = self
            .model
            .rotations
            .iter()
            .map(|(kind, count)| ((*kind).to_owned(), *count))
            .collect();
        let outcome = poll_until(WAIT_LIMIT, || {
            let metrics = self.server().metrics();
            let served = metrics.sum_by_label("edge_file_rotations_total", "kind");
            if served == expected {
                Ok(())
            } else {
                Err(format!("served {served:?}, model {expected:?}"))
            }
        });
        if let Err(error) = outcome {
            panic!(
                "seed {}: waiting for a checkpoint of the rotations: {error}",
                self.seed
            );
        }
        self.synced();
        "for the rotations to be in a checkpoint".to_owned()
    }

    fn wait_first_checkpoint(&mut self) -> String {
        *self.waits.entry("a first checkpoint").or_default() += 1;
        let outcome = poll_until(WAIT_LIMIT, || {
            let writes = self
                .server()
                .metrics()
                .count("edge_checkpoint_writes_total", &[]);
            if writes > 0 {
                Ok(())
            } else {
                Err("no checkpoint written".to_owned())
            }
        });
        if let Err(error) = outcome {
            panic!("seed {}: {error}", self.seed);
        }
        self.checkpointed = true;
        "for a first checkpoint".to_owned()
    }

    /// A checkpoint holds every rotation done.
    fn synced(&mut self) {
        self.rotated_since_sync = false;
        self.renamed_since_sync = false;
        self.truncated_at = None;
    }

    fn append(&mut self, lines: usize) -> String {
        let mut bytes = Vec::new();
        let mut malformed = 0;
        for _ in 0..lines {
            let line = self.line();
            malformed += usize::from(line.request.is_none());
            self.model.add(&line);
            bytes.extend_from_slice(&line.bytes);
        }
        self.write(&bytes);
        self.log_has_lines |= lines > 0;
        format!("append {lines} lines ({malformed} malformed)")
    }

    fn finish_partial(&mut self) -> String {
        let pending = self.pending.take().expect("a line is unfinished");
        self.write(&pending.rest);
        self.model.add(&pending.line);
        self.log_has_lines = true;
        "finish the line".to_owned()
    }

    /// A new line: a request (most of the time) or a malformed line.
    fn line(&mut self) -> Line {
        self.lines_written += 1;
        let n = self.lines_written;
        if self.rng.u32(0..16) == 0 {
            return Line {
                bytes: format!("malformed line {n}: no request here\n").into_bytes(),
                request: None,
            };
        }
        let request = Request {
            router: ROUTERS[self.rng.usize(..ROUTERS.len())],
            method: METHODS[self.rng.usize(..METHODS.len())],
            status: STATUSES[self.rng.usize(..STATUSES.len())],
            duration_ms: self.duration_ms(),
        };
        let bytes = traefik_line(
            n,
            request.router,
            request.method,
            request.status,
            request.duration_ms,
        );
        Line {
            bytes: bytes.into_bytes(),
            request: Some(request),
        }
    }

    /// A request line longer than the server's line limit: malformed.
    fn long_line(&mut self) -> Line {
        self.lines_written += 1;
        let n = self.lines_written;
        let text = traefik_line(n, ROUTERS[0], "GET", 200, self.duration_ms());
        let query = "q".repeat(LONG_LINE_BYTES + self.rng.usize(..4096));
        let bytes = text
            .replacen(&format!("/r/{n} "), &format!("/r/{n}?{query} "), 1)
            .into_bytes();
        assert!(bytes.len() > LONG_LINE_BYTES);
        Line {
            bytes,
            request: None,
        }
    }

    /// A duration in milliseconds: mostly under 1.5 s, often at or next to a bucket bound,
    /// sometimes past the last bound.
    fn duration_ms(&mut self) -> u32 {
        let bound = |run: &mut Self| {
            let bound = DEFAULT_DURATION_BUCKETS[run.rng.usize(..DEFAULT_DURATION_BUCKETS.len())];
            bound_micros(bound) as u32 / 1000
        };
        match self.rng.u32(0..10) {
            0 => bound(self),
            1 => bound(self) + self.rng.u32(1..=4),
            2 => bound(self).saturating_sub(1),
            3 => self.rng.u32(0..20_000),
            _ => self.rng.u32(0..1_500),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
            .expect("opening access.log");
        file.write_all(bytes).expect("appending to access.log");
    }

    /// Removes `access.log.1`, kept open.
    fn remove_rotated(&mut self) {
        match File::open(&self.rotated) {
            Ok(file) => {
                self.hold(file);
                fs::remove_file(&self.rotated).expect("removing access.log.1");
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("opening access.log.1: {error}"),
        }
    }

    fn hold(&mut self, file: File) {
        if self.held.len() == HELD_FILES {
            self.held.pop_front();
        }
        self.held.push_back(file);
    }

    fn start_server(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let server = Server::start_at(&self.dir, &args, self.listen);
        server.wait_ready();
        self.server = Some(server);
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("a server runs")
    }

    /// Waits until every counter of `/metrics` equals the model.
    fn converge(&mut self) {
        let expected = self.model.series();
        let mut last = Series::new();
        let outcome = poll_until(CONVERGE_LIMIT, || {
            let observed = served(&self.server().metrics());
            if observed == expected {
                Ok(())
            } else {
                last = observed;
                Err(String::new())
            }
        });
        if outcome.is_err() {
            panic!(
                "seed {}, step {}: /metrics does not agree with the model after {CONVERGE_LIMIT:?}:\n{}",
                self.seed,
                self.history.len(),
                differences(&expected, &last),
            );
        }
        // The model has a line or a rotation once a step is done: that is in a checkpoint.
        self.checkpointed |= self.model.lines() > 0 || !self.model.rotations.is_empty();
        self.synced();
    }

    /// After a scrape of the final state: Prometheus holds no reset and, for every series, the
    /// model's final count as its largest value.
    fn check_prometheus(&self) {
        let Some(prometheus) = &self.prometheus else {
            return;
        };
        // The whole run, and a margin.
        let range = format!("{}s", self.started.elapsed().as_secs() + 60);
        let expected = self.model.series();
        let stored = |function: &str| -> Series {
            COUNTERS
                .iter()
                .flat_map(|family| {
                    prometheus
                        .query(&format!("{function}({family}[{range}])"))
                        .into_iter()
                        .map(|(labels, value)| {
                            let labels = labels.iter().map(|(l, v)| (l.as_str(), v.as_str()));
                            (series_name(family, labels), value)
                        })
                })
                .collect()
        };
        let mut last = Series::new();
        let outcome = poll_until(WAIT_LIMIT, || {
            last = stored("max_over_time");
            if last == expected {
                Ok(())
            } else {
                Err(String::new())
            }
        });
        if outcome.is_err() {
            panic!(
                "seed {}: Prometheus's largest values are not the model's final counts:\n{}\n--- prometheus log ---\n{}",
                self.seed,
                differences(&expected, &last),
                prometheus.log()
            );
        }
        let resets: Vec<String> = stored("resets")
            .into_iter()
            .filter(|(_, resets)| *resets != 0.0)
            .map(|(series, resets)| format!("  {series}: {resets} resets"))
            .collect();
        assert!(
            resets.is_empty(),
            "seed {}: Prometheus saw counters go back:\n{}",
            self.seed,
            resets.join("\n")
        );
        let scrapes = prometheus.query(&format!("count_over_time(up[{range}])"));
        let up = prometheus.query(&format!("sum_over_time(up[{range}])"));
        let samples = prometheus.query(&format!("count_over_time(edge_bytes_read_total[{range}])"));
        let value =
            |result: &[(BTreeMap<String, String>, f64)]| result.first().map_or(0.0, |r| r.1);
        assert!(
            value(&samples) >= 2.0,
            "seed {}: Prometheus stored {} samples of edge_bytes_read_total",
            self.seed,
            value(&samples)
        );
        eprintln!(
            "serve model: Prometheus scraped {} times ({} answered), no reset, final counts as the model",
            value(&scrapes),
            value(&up)
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.server.as_ref().map(Server::stderr).unwrap_or_default();
            let steps = self.history.len();
            eprintln!(
                "serve model FAILED: seed {seed}, step {steps}; rerun with VANTAGE_SEED={seed} \
                 VANTAGE_STEPS={steps} cargo test -p vantage-edge --test integration -- \
                 --ignored serve_model. The steps:",
                seed = self.seed,
            );
            for (n, step) in self.history.iter().enumerate() {
                eprintln!("  {:4}: {step}", n + 1);
            }
            eprintln!("--- server log ---\n{log}");
        }
    }
}

#[test]
fn the_bucket_rule_follows_the_histogram_layout() {
    let ms = |ms: u64| ms * 1000;
    for bound in [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500] {
        assert!(at_or_below(ms(bound), ms(bound)));
        assert!(!at_or_below(ms(bound + 1), ms(bound)), "{bound} ms");
    }
    assert!(at_or_below(ms(5001), ms(5000)));
    assert!(!at_or_below(ms(5002), ms(5000)));
    assert!(at_or_below(ms(7503), ms(7500)));
    assert!(!at_or_below(ms(7504), ms(7500)));
    assert!(at_or_below(ms(10_002), ms(10_000)));
    assert!(!at_or_below(ms(10_003), ms(10_000)));
    assert!(at_or_below(0, ms(5)));
    assert!(!at_or_below(ms(20_000), ms(10_000)));
}

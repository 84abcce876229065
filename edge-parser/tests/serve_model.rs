//! A model-based test of the real `edge-parser serve` process: a seeded random sequence of
//! steps on a real log directory (appends of complete lines, a partial line and its
//! completion, rename and copytruncate rotations, delete and recreate, `kill -9` and SIGTERM
//! with a restart on the same checkpoint), and after every step `/metrics` must equal what a
//! plain model of the written lines says: every request counted once per router, method and
//! code, every line counted as parsed or malformed, every rotation counted by kind.
//!
//! The log is a Traefik `common` access log with a handful of routers and statuses; every
//! request path is unique (`/r/<line number>`), so a line read twice or lost changes the
//! counts. The pattern is the literal `access.log`, which does not match the rotated
//! `access.log.1`.
//!
//! What the steps respect, because `serve` documents it as a limitation (`tail` module docs),
//! not a bug:
//!
//! - copytruncate loses the lines written between the copy and the truncation, and the lines
//!   the server had not read yet: it is only done once `/metrics` shows every line written.
//! - After `kill -9`, the counters go back to the last checkpoint and the lines after it are
//!   read again from the files. Lines of a file deleted or truncated since that checkpoint
//!   cannot be read again, a restart with no checkpoint yet reads `access.log` from its start
//!   but never `access.log.1`, and a checkpoint taken between a rotation's `Rotated` and
//!   `Opened` events would count that rotation again at the restart. So a `kill -9` that
//!   follows a rotation step first waits for a checkpoint written after the rotation was seen
//!   (checkpoint writes going up); after appends only it kills at once, and the restart must
//!   read them again.
//! - A copytruncate of a file with no complete line is not a rotation anyone can see: the
//!   model counts `copytruncate` only when `access.log` held a line.
//!
//! With those, every rotation count is deterministic and compared exactly: `rename` for
//! rename rotations, `copytruncate`, and `recreate` for delete and recreate (the test keeps the
//! deleted file open until the new one exists, so the new file cannot get the old inode,
//! which would be `inode_reuse`).
//!
//! The short run is part of `cargo test`. The long run is `#[ignore]`d:
//! `VANTAGE_SEED=123 VANTAGE_STEPS=3000 cargo test -p vantage-edge --test integration --
//! --ignored serve_model` (seed from the clock without `VANTAGE_SEED`). Both print the seed,
//! the failing step and the step history on failure.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::serve_util::{Exposition, Server, poll_until, traefik_line};
use crate::util::{Dir, WAIT_LIMIT};

/// How long `/metrics` may take to agree with the model after a step.
const CONVERGE_LIMIT: Duration = Duration::from_secs(10);
/// The tailer's poll interval given to the server.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Steps of the run in `cargo test`.
const SHORT_STEPS: usize = 250;
/// Seed of the run in `cargo test`.
const SHORT_SEED: u64 = 0x5eed_0001;
/// Steps of the long run without `VANTAGE_STEPS`.
const LONG_STEPS: usize = 1500;

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
fn serve_counts_match_the_model_through_rotations_and_restarts() {
    Run::new(SHORT_SEED).steps(SHORT_STEPS);
}

#[test]
#[ignore = "long: run with --ignored, VANTAGE_SEED and VANTAGE_STEPS"]
fn serve_counts_match_the_model_through_rotations_and_restarts_long() {
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

/// The labels of one `edge_requests_total` series: router, service, method, code.
type Key = Vec<String>;

/// What `/metrics` must show; the model's side and the server's side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    /// `edge_requests_total` by router, service, method and code.
    requests: BTreeMap<Key, u64>,
    /// `edge_lines_total{result="parsed"}`.
    parsed: u64,
    /// `edge_lines_total{result="malformed"}`.
    malformed: u64,
    /// `edge_file_rotations_total` by kind.
    rotations: BTreeMap<String, u64>,
}

impl Counts {
    fn of(metrics: &Exposition) -> Self {
        Self {
            requests: metrics.sum_by(
                "edge_requests_total",
                &["router", "service", "method", "code"],
            ),
            parsed: metrics.count("edge_lines_total", &[("result", "parsed")]),
            malformed: metrics.count("edge_lines_total", &[("result", "malformed")]),
            rotations: metrics.sum_by_label("edge_file_rotations_total", "kind"),
        }
    }

    /// Requests per router: what a dashboard sums.
    fn per_router(&self) -> BTreeMap<&str, u64> {
        let mut routers = BTreeMap::new();
        for (key, count) in &self.requests {
            *routers.entry(key[0].as_str()).or_default() += count;
        }
        routers
    }

    fn add_line(&mut self, key: Option<&Key>) {
        match key {
            Some(key) => {
                *self.requests.entry(key.clone()).or_default() += 1;
                self.parsed += 1;
            }
            None => self.malformed += 1,
        }
    }

    fn rotation(&mut self, kind: &str) {
        *self.rotations.entry(kind.to_owned()).or_default() += 1;
    }
}

/// The second half of a line written in two parts, and what it counts as.
#[derive(Debug)]
struct Pending {
    rest: Vec<u8>,
    key: Option<Key>,
}

/// What one step does.
#[derive(Debug, Clone, Copy)]
enum Step {
    Append(usize),
    StartPartial,
    FinishPartial,
    Rename,
    CopyTruncate,
    Recreate,
    Kill,
    Terminate,
}

/// One run: the directory, the server, the model, the history.
struct Run {
    seed: u64,
    rng: fastrand::Rng,
    dir: Dir,
    log: PathBuf,
    rotated: PathBuf,
    server: Option<Server>,
    args: Vec<String>,
    model: Counts,
    /// Whether `access.log` holds a complete line.
    log_has_lines: bool,
    pending: Option<Pending>,
    lines_written: u64,
    history: Vec<String>,
    /// Checkpoint writes seen when a rotation step was last confirmed, until a checkpoint
    /// written after it is seen.
    unsynced: Option<u64>,
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
        let mut run = Self {
            seed,
            rng: fastrand::Rng::with_seed(seed),
            dir,
            log,
            rotated,
            server: None,
            args,
            model: Counts::default(),
            log_has_lines: false,
            pending: None,
            lines_written: 0,
            history: Vec::new(),
            unsynced: None,
            started: Instant::now(),
        };
        run.start_server();
        run
    }

    fn steps(mut self, steps: usize) {
        for _ in 0..steps {
            let step = self.choose();
            // Named before it is done, so that a failure inside the step shows it.
            self.history.push(format!("{step:?}"));
            let description = self.apply(step);
            *self.history.last_mut().expect("just pushed") = description;
            let writes = self.converge();
            let rotation = matches!(step, Step::Rename | Step::CopyTruncate | Step::Recreate);
            if rotation {
                self.unsynced = Some(writes);
            } else if self.unsynced.is_some_and(|mark| writes > mark) {
                self.unsynced = None;
            }
        }
        let server = self.server.take().expect("a server runs");
        let code = server.terminate();
        assert_eq!(code, 0, "seed {}: exit code after SIGTERM", self.seed);
        let totals = self.model.per_router();
        eprintln!(
            "serve model: seed {}, {steps} steps, {} lines, {:?} rotations, requests per router {totals:?}, {:.1} s",
            self.seed,
            self.lines_written,
            self.model.rotations,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn choose(&mut self) -> Step {
        let roll = self.rng.u32(0..100);
        if self.pending.is_some() {
            return match roll {
                0..70 => Step::FinishPartial,
                70..85 => Step::Kill,
                _ => Step::Terminate,
            };
        }
        match roll {
            0..30 => Step::Append(self.rng.usize(1..=4)),
            30..35 => Step::Append(self.rng.usize(20..=60)),
            35..47 => Step::StartPartial,
            47..57 => Step::Rename,
            57..65 => Step::CopyTruncate,
            65..73 => Step::Recreate,
            73..87 => Step::Kill,
            _ => Step::Terminate,
        }
    }

    /// Does `step` to the files (and the server) and to the model; returns what it did.
    fn apply(&mut self, step: Step) -> String {
        match step {
            Step::Append(lines) => self.append(lines),
            Step::StartPartial => {
                let (line, key) = self.line();
                let cut = self.rng.usize(1..line.len() - 1);
                self.write(&line[..cut]);
                self.pending = Some(Pending {
                    rest: line[cut..].to_vec(),
                    key,
                });
                // Give the tailer a few polls to look at the unfinished line (and wrongly count
                // it) before `/metrics` is compared.
                std::thread::sleep(POLL_INTERVAL * 3);
                format!("write {cut} of the {} bytes of a line", line.len())
            }
            Step::FinishPartial => {
                self.finish_partial();
                "finish the line".to_owned()
            }
            Step::Rename => {
                remove_if_present(&self.rotated);
                fs::rename(&self.log, &self.rotated).expect("renaming access.log");
                File::create(&self.log).expect("creating access.log");
                self.model.rotation("rename");
                self.log_has_lines = false;
                "rename rotation: access.log -> access.log.1, new access.log".to_owned()
            }
            Step::CopyTruncate => {
                remove_if_present(&self.rotated);
                fs::copy(&self.log, &self.rotated).expect("copying access.log");
                OpenOptions::new()
                    .write(true)
                    .open(&self.log)
                    .and_then(|file| file.set_len(0))
                    .expect("truncating access.log");
                let seen = self.log_has_lines;
                if seen {
                    self.model.rotation("copytruncate");
                }
                self.log_has_lines = false;
                format!("copytruncate (a rotation to see: {seen})")
            }
            Step::Recreate => {
                // Held open until the new file exists, so that the new file cannot be given the
                // old one's inode.
                let old = File::open(&self.log).expect("opening access.log");
                fs::remove_file(&self.log).expect("deleting access.log");
                File::create(&self.log).expect("creating access.log");
                drop(old);
                self.model.rotation("recreate");
                self.log_has_lines = false;
                "delete access.log and create a new one".to_owned()
            }
            Step::Kill => {
                let synced = self.sync_checkpoint();
                self.server.take().expect("a server runs").kill();
                let meanwhile = self.while_stopped();
                self.start_server();
                format!("kill -9 ({synced}), {meanwhile}, restart")
            }
            Step::Terminate => {
                let server = self.server.take().expect("a server runs");
                let code = server.terminate();
                assert_eq!(code, 0, "seed {}: exit code after SIGTERM", self.seed);
                self.unsynced = None;
                let meanwhile = self.while_stopped();
                self.start_server();
                format!("SIGTERM, {meanwhile}, restart")
            }
        }
    }

    /// While the server is stopped, the log goes on: the partial line may be finished, or a
    /// few lines appended.
    fn while_stopped(&mut self) -> String {
        if self.pending.is_some() {
            if self.rng.bool() {
                self.finish_partial();
                return "the line is finished while stopped".to_owned();
            }
            return "the line stays unfinished".to_owned();
        }
        let lines = self.rng.usize(0..=3);
        self.append(lines)
    }

    fn append(&mut self, lines: usize) -> String {
        let mut bytes = Vec::new();
        let mut malformed = 0;
        for _ in 0..lines {
            let (line, key) = self.line();
            malformed += usize::from(key.is_none());
            self.model.add_line(key.as_ref());
            bytes.extend_from_slice(&line);
        }
        self.write(&bytes);
        self.log_has_lines |= lines > 0;
        format!("append {lines} lines ({malformed} malformed)")
    }

    fn finish_partial(&mut self) {
        let pending = self.pending.take().expect("a line is unfinished");
        self.write(&pending.rest);
        self.model.add_line(pending.key.as_ref());
        self.log_has_lines = true;
    }

    /// A new line with its newline, and its key (`None` for a malformed one).
    fn line(&mut self) -> (Vec<u8>, Option<Key>) {
        self.lines_written += 1;
        let n = self.lines_written;
        if self.rng.u32(0..16) == 0 {
            return (
                format!("malformed line {n}: no request here\n").into_bytes(),
                None,
            );
        }
        let router = ROUTERS[self.rng.usize(..ROUTERS.len())];
        let method = METHODS[self.rng.usize(..METHODS.len())];
        let status = STATUSES[self.rng.usize(..STATUSES.len())];
        let line = traefik_line(n, router, method, status, self.rng.u32(0..2_000));
        let key = [router, "-", method, &status.to_string()].map(str::to_owned);
        (line.into_bytes(), Some(key.to_vec()))
    }

    fn write(&self, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
            .expect("opening access.log");
        file.write_all(bytes).expect("appending to access.log");
    }

    fn start_server(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let server = Server::start(&self.dir, &args);
        server.wait_ready();
        self.server = Some(server);
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("a server runs")
    }

    /// Waits until `/metrics` equals the model; returns the checkpoint writes then.
    fn converge(&self) -> u64 {
        let expected = &self.model;
        let mut last = None;
        let outcome = poll_until(CONVERGE_LIMIT, || {
            let metrics = self.server().metrics();
            let observed = Counts::of(&metrics);
            if observed == *expected {
                Ok(metrics.count("edge_checkpoint_writes_total", &[]))
            } else {
                last = Some(observed);
                Err(String::new())
            }
        });
        match outcome {
            Ok(writes) => writes,
            Err(_) => {
                let observed = last.unwrap_or_default();
                panic!(
                    "seed {}, step {}: /metrics does not agree with the model after {CONVERGE_LIMIT:?}\n\
                     per router: model {:?}, served {:?}\n\
                     model:  {expected:?}\nserved: {observed:?}",
                    self.seed,
                    self.history.len(),
                    expected.per_router(),
                    observed.per_router(),
                );
            }
        }
    }

    /// Before a `kill -9` that follows a rotation: waits for a checkpoint written after the
    /// rotation was seen. Returns what it did.
    fn sync_checkpoint(&mut self) -> &'static str {
        let Some(mark) = self.unsynced.take() else {
            return "at once";
        };
        let written = poll_until(WAIT_LIMIT, || {
            let writes = self
                .server()
                .metrics()
                .count("edge_checkpoint_writes_total", &[]);
            if writes > mark {
                Ok(())
            } else {
                Err(format!(
                    "{writes} checkpoint writes, waiting for more than {mark}"
                ))
            }
        });
        if let Err(error) = written {
            panic!("seed {}: no checkpoint written: {error}", self.seed);
        }
        "after a checkpoint newer than the last rotation"
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

fn remove_if_present(path: &std::path::Path) {
    match fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            panic!("removing {}: {error}", path.display())
        }
        _ => {}
    }
}

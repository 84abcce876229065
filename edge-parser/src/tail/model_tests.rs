//! A model-based property test: random sequences of writes, rotations, restarts and crashes
//! on a real directory, checking after every poll that the consumer's state holds exactly the
//! complete lines written (none lost, none twice, in order) and the rotations performed.
//!
//! The consumer follows the documented protocol: it applies every message to its state and to
//! a [`Positions`], writes checkpoints with both, and on a restart or a crash resumes a new
//! tailer from the last checkpoint together with the state saved in it.
//!
//! The writer finishes its current line before a rotation (a half-written line copied by
//! copytruncate is cut in two by any tailer), and the interpreter polls before the rotations
//! that would destroy lines no tailer has seen: a copytruncate (the lines after the last poll
//! exist only in the copy), a rotation of a file created since the last poll (it never had a
//! name the pattern matches while a tailer looked), and a deletion while no tailer holds the
//! file open (after a restart). A crash resumes from a periodic checkpoint only when no file
//! was created or rotated since it, for the same reason.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::test_helpers::TempDir;
use super::*;

const LIVE: &str = "access.log";
const ROTATED: &str = "access.log.1";
const MAX_LINE: usize = 60;
const CONFIG: &str = "model *.log";

#[derive(Debug, Clone)]
enum Action {
    /// Complete lines.
    Append { lines: u8, width: u8 },
    /// A complete line longer than the limit.
    AppendTooLong,
    /// The start of a line, without its newline (possibly over the limit once finished).
    StartLine { width: u8 },
    /// The end of the started line.
    FinishLine,
    /// Rename to `access.log.1`, maybe creating the new file at once.
    Rename { create: bool },
    /// Copy to `access.log.1`, truncate in place.
    CopyTruncate,
    /// Delete, maybe creating the new file at once.
    Recreate { create: bool },
    /// Graceful: checkpoint, stop, resume from it.
    Restart,
    /// A periodic checkpoint.
    Checkpoint,
    /// Stop without a checkpoint, resume from the last periodic one.
    Crash,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (1u8..4, 0u8..40).prop_map(|(lines, width)| Action::Append { lines, width }),
        1 => Just(Action::AppendTooLong),
        2 => (0u8..100).prop_map(|width| Action::StartLine { width }),
        2 => Just(Action::FinishLine),
        3 => any::<bool>().prop_map(|create| Action::Rename { create }),
        2 => Just(Action::CopyTruncate),
        2 => any::<bool>().prop_map(|create| Action::Recreate { create }),
        2 => Just(Action::Restart),
        2 => Just(Action::Checkpoint),
        2 => Just(Action::Crash),
    ]
}

/// What the consumer aggregates, checkpointed with the positions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    lines: Vec<String>,
    too_long: u64,
    rotations: Vec<String>,
}

/// A rotation not yet reported: its new file does not exist yet, or no poll saw it.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The event expected when the new file appears (`None` once it cannot be seen).
    kind: Option<RotationKind>,
    old_ino: u64,
    /// Whether the new file exists (its event is then the last expected one).
    created: bool,
}

/// What is known about the last periodic checkpoint.
#[derive(Debug, Clone, Copy)]
struct Saved {
    /// A crash may resume from it: every file it lacks appeared after it and still exists.
    usable: bool,
    /// A rotation was pending, and the checkpoint still holds the old file (so the rotation
    /// is reported after resuming from it).
    pending_kept: Option<bool>,
    /// The rotations the consumer had seen.
    observed_rotations: usize,
}

struct Model {
    dir: TempDir,
    config: TailConfig,
    tailer: Tailer,
    state: State,
    positions: Positions,
    // The world as the writer made it.
    sequence: u64,
    written: Vec<String>,
    too_long_written: u64,
    partial: Option<String>,
    live_exists: bool,
    pending: Option<Pending>,
    expected_rotations: Vec<String>,
    // What the tailers have seen.
    live_seen: bool,
    restarted_since_poll: bool,
    unsafe_since_poll: bool,
    polled_since_rotation: bool,
    saved: Option<Saved>,
}

impl Model {
    fn new(batch_bytes: usize, from_start: bool, existing: u8) -> Self {
        let dir = TempDir::new("model");
        let mut config = TailConfig::new([dir.glob("*.log")]);
        config.rescan_interval = Duration::ZERO;
        config.rotate_wait = Duration::ZERO;
        config.max_line_bytes = MAX_LINE;
        config.batch_bytes = batch_bytes;
        config.from_start = from_start;
        let mut written = Vec::new();
        let mut existing_text = String::new();
        for n in 0..existing {
            let line = format!("existing {n}");
            existing_text.push_str(&line);
            existing_text.push('\n');
            if from_start {
                written.push(line);
            }
        }
        dir.write(LIVE, existing_text);
        let tailer = Tailer::new(config.clone()).expect("valid configuration");
        let mut model = Self {
            dir,
            config,
            tailer,
            state: State::default(),
            positions: Positions::new(Vec::new()),
            sequence: 0,
            written,
            too_long_written: 0,
            partial: None,
            live_exists: true,
            pending: None,
            expected_rotations: Vec::new(),
            live_seen: false,
            restarted_since_poll: false,
            unsafe_since_poll: false,
            polled_since_rotation: true,
            saved: None,
        };
        model.poll();
        model
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }

    fn apply(&mut self, action: &Action) {
        match *action {
            Action::Append { lines, width } => {
                self.finish_line();
                let mut text = String::new();
                for _ in 0..lines {
                    let line = self.next_line(width);
                    text.push_str(&line);
                    text.push('\n');
                    self.written.push(line);
                }
                self.append(&text);
            }
            Action::AppendTooLong => {
                self.finish_line();
                // Unique like every line: a file truncated and refilled with the very same
                // bytes before a poll cannot be told from an untouched one.
                let line = self.next_line(MAX_LINE as u8 + 40);
                self.append(&format!("{line}\n"));
                self.too_long_written += 1;
            }
            Action::StartLine { width } => {
                if self.partial.is_none() {
                    let line = self.next_line(width);
                    self.append(&line);
                    self.partial = Some(line);
                }
            }
            Action::FinishLine => self.finish_line(),
            Action::Rename { create } => {
                if !self.live_exists {
                    return;
                }
                self.finish_line();
                if !self.live_seen {
                    self.poll();
                }
                let old_ino = self.live_ino();
                self.dir.rename(LIVE, ROTATED);
                self.rotated(RotationKind::Rename, old_ino, create);
            }
            Action::Recreate { create } => {
                if !self.live_exists {
                    return;
                }
                self.finish_line();
                if !self.live_seen || self.restarted_since_poll {
                    self.poll();
                }
                let old_ino = self.live_ino();
                self.dir.remove(LIVE);
                self.unsafe_since_poll = true;
                self.rotated(RotationKind::Recreate, old_ino, create);
            }
            Action::CopyTruncate => {
                if !self.live_exists {
                    return;
                }
                self.finish_line();
                self.poll();
                let size = std::fs::metadata(self.dir.join(LIVE)).expect("stat").len();
                self.dir.copy_truncate(LIVE, ROTATED);
                self.unsafe_since_poll = true;
                self.invalidate_saved();
                if size > 0 {
                    self.expected_rotations
                        .push(RotationKind::CopyTruncate.as_str().to_owned());
                }
            }
            Action::Restart => {
                if self.unsafe_since_poll {
                    self.poll();
                }
                let checkpoint = self.checkpoint();
                checkpoint
                    .write_atomic(&self.checkpoint_path())
                    .expect("writes");
                if self.polled_since_rotation {
                    // The old file was closed before the checkpoint: nobody remembers it.
                    self.forget_pending();
                }
                self.resume();
            }
            Action::Checkpoint => {
                self.checkpoint()
                    .write_atomic(&self.checkpoint_path())
                    .expect("writes");
                self.saved = Some(Saved {
                    usable: !self.unsafe_since_poll && (self.live_seen || !self.live_exists),
                    pending_kept: self.pending.map(|_| !self.polled_since_rotation),
                    observed_rotations: self.state.rotations.len(),
                });
            }
            Action::Crash => match self.saved {
                Some(saved) if saved.usable => {
                    match saved.pending_kept {
                        Some(false) => self.forget_pending(),
                        // The old file is followed again, as before the polls since.
                        Some(true) => self.polled_since_rotation = false,
                        None => {}
                    }
                    debug_assert!(self.expected_rotations.len() >= saved.observed_rotations);
                    self.resume();
                }
                _ => self.apply(&Action::Restart),
            },
        }
    }

    fn next_line(&mut self, width: u8) -> String {
        self.sequence += 1;
        format!("{:05} {}", self.sequence, "x".repeat(usize::from(width)))
    }

    fn finish_line(&mut self) {
        if let Some(mut line) = self.partial.take() {
            self.append(" end\n");
            line.push_str(" end");
            if line.len() > MAX_LINE {
                self.too_long_written += 1;
            } else {
                self.written.push(line);
            }
        }
    }

    fn append(&mut self, text: &str) {
        if !self.live_exists {
            self.create_live();
        }
        self.dir.append(LIVE, text);
    }

    fn create_live(&mut self) {
        self.dir.write(LIVE, "");
        self.live_exists = true;
        self.live_seen = false;
        self.invalidate_saved();
        let live_ino = self.live_ino();
        if let Some(pending) = &mut self.pending {
            pending.created = true;
            if let Some(kind) = pending.kind {
                let kind = if live_ino == pending.old_ino {
                    RotationKind::InodeReuse
                } else {
                    kind
                };
                self.expected_rotations.push(kind.as_str().to_owned());
            }
        }
    }

    /// The pending rotation will not be reported: its old file is not in the checkpoint
    /// resumed from.
    fn forget_pending(&mut self) {
        if let Some(pending) = self.pending.take() {
            if pending.created && pending.kind.is_some() {
                self.expected_rotations.pop();
            }
            if !pending.created {
                self.pending = Some(Pending {
                    kind: None,
                    ..pending
                });
            }
        }
    }

    fn rotated(&mut self, kind: RotationKind, old_ino: u64, create: bool) {
        self.live_exists = false;
        self.polled_since_rotation = false;
        self.invalidate_saved();
        self.pending = Some(Pending {
            kind: Some(kind),
            old_ino,
            created: false,
        });
        if create {
            self.create_live();
        }
    }

    fn invalidate_saved(&mut self) {
        if let Some(saved) = &mut self.saved {
            saved.usable = false;
        }
    }

    fn live_ino(&self) -> u64 {
        std::fs::metadata(self.dir.join(LIVE)).expect("stat").ino()
    }

    fn checkpoint(&self) -> Checkpoint<State> {
        Checkpoint {
            config: CONFIG.to_owned(),
            files: self.positions.files(),
            state: self.state.clone(),
        }
    }

    /// Drops the tailer and resumes from the checkpoint file, state included.
    fn resume(&mut self) {
        let checkpoint = Checkpoint::<State>::read(&self.checkpoint_path(), CONFIG)
            .expect("reads")
            .expect("exists");
        self.state = checkpoint.state;
        self.positions = Positions::new(checkpoint.files.clone());
        self.tailer = Tailer::resume(self.config.clone(), checkpoint.files).expect("valid");
        self.restarted_since_poll = true;
    }

    /// Polls until nothing is left to read, applies what came, and checks the state.
    fn poll(&mut self) {
        let mut messages = Vec::new();
        while self.tailer.poll(|message| messages.push(message)) {}
        for message in &messages {
            match message {
                TailMessage::Lines(batch) => {
                    for line in batch.bytes.split_inclusive(|&b| b == b'\n') {
                        let line = line.strip_suffix(b"\n").expect("whole lines");
                        self.state
                            .lines
                            .push(String::from_utf8_lossy(line).into_owned());
                    }
                    self.state.too_long += batch.too_long.len() as u64;
                }
                TailMessage::Event(TailEvent::Rotated { kind, .. }) => {
                    self.state.rotations.push(kind.as_str().to_owned());
                }
                TailMessage::Event(
                    event @ (TailEvent::Missing { .. } | TailEvent::Error { .. }),
                ) => panic!("unexpected {event:?}"),
                TailMessage::Event(_) => {}
            }
            self.positions.observe(message);
        }
        self.live_seen = self.live_exists;
        if self.pending.is_some_and(|pending| pending.created) {
            self.pending = None;
        }
        self.restarted_since_poll = false;
        self.unsafe_since_poll = false;
        self.polled_since_rotation = true;
        self.check();
    }

    fn check(&self) {
        assert_eq!(self.state.lines, self.written, "complete lines, in order");
        assert_eq!(
            self.state.too_long, self.too_long_written,
            "over-long lines"
        );
        assert_eq!(self.state.rotations, self.expected_rotations, "rotations");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_complete_line_is_delivered_exactly_once(
        actions in proptest::collection::vec((action(), any::<bool>()), 1..50),
        batch_bytes in 1usize..200,
        from_start in any::<bool>(),
        existing in 0u8..4,
    ) {
        run(&actions, batch_bytes, from_start, existing);
    }
}

fn run(actions: &[(Action, bool)], batch_bytes: usize, from_start: bool, existing: u8) {
    let mut model = Model::new(batch_bytes, from_start, existing);
    for (action, poll_after) in actions {
        model.apply(action);
        if *poll_after {
            model.poll();
        }
    }
    model.finish_line();
    model.poll();
}

/// Found by the property test: a crash back to a checkpoint that still held the renamed
/// file, then a restart before any poll, must still report the rename once.
#[test]
fn regression_a_rename_pending_across_a_crash_and_a_restart_is_reported_once() {
    run(
        &[
            (Action::Rename { create: false }, false),
            (Action::Checkpoint, true),
            (Action::Crash, false),
            (Action::Restart, false),
            (Action::Append { lines: 1, width: 0 }, false),
        ],
        1,
        false,
        0,
    );
}

#[test]
fn a_crash_resumes_from_the_last_checkpoint_without_counting_twice() {
    let mut model = Model::new(64, false, 2);
    for action in [
        Action::Append { lines: 2, width: 3 },
        Action::Checkpoint,
        Action::Append { lines: 3, width: 5 },
        Action::StartLine { width: 4 },
    ] {
        model.apply(&action);
        model.poll();
    }
    let before = model.state.lines.len();
    model.apply(&Action::Crash);
    assert_eq!(model.state.lines.len(), 2, "rewound to the checkpoint");
    model.apply(&Action::FinishLine);
    model.poll();
    assert_eq!(model.state.lines.len(), before + 1);
}

//! The `tail -F` state machine: which files to follow, where each one is, how far it was read.
//! See the [module docs](super) for the behaviour and the protocol.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, Metadata};
use std::io;
use std::mem;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};

use crate::read::{AtEnd, LineBuffer, LineReader};

use super::checkpoint::FilePosition;
use super::discover::{Patterns, regular_files_in};
use super::fingerprint::{FileIdentity, FileKey, Fingerprint, at_line_start, key_of, read_head};

/// Default time between two polls of the files.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Default time between two expansions of the glob patterns.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Default time a file that was rotated away is still followed after its last growth, for
/// writers that reopen their log some time after the rename.
pub const DEFAULT_ROTATE_WAIT: Duration = Duration::from_secs(10);
/// Default size from which a batch of lines is sent.
pub const DEFAULT_BATCH_BYTES: usize = 256 << 10;
/// Default cap on the length of a line (the shared line reader's, [`crate::read`]).
pub const DEFAULT_MAX_LINE_BYTES: usize = crate::read::DEFAULT_MAX_LINE_BYTES;

/// Largest single read when looking for the end of a file's last line.
const READ_CHUNK: usize = 64 << 10;
/// How many batches one file may send per poll before the others get their turn.
const MAX_BATCHES_PER_FILE: usize = 16;
/// How many paths whose file went away are remembered, to name the rotation when a new file
/// appears there.
const MAX_DEPARTED: usize = 1024;
/// How long a blocked send waits before looking at the shutdown flag again.
const SEND_RETRY: Duration = Duration::from_millis(100);

/// What to follow and how: see the [module docs](super).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TailConfig {
    /// Paths and glob patterns (`/var/log/traefik/*.log`). Globs are expanded again every
    /// `rescan_interval`; a literal path may not exist yet.
    pub patterns: Vec<String>,
    /// Read the files present at the first start (with no checkpoint) from their start instead
    /// of their end.
    pub from_start: bool,
    /// Time between two polls in [`Tailer::spawn`].
    pub poll_interval: Duration,
    /// Time between two expansions of the glob patterns; zero expands them at every poll.
    pub rescan_interval: Duration,
    /// How long a file renamed away is still followed after it last grew (a deleted file is
    /// closed as soon as it has been read to its end).
    pub rotate_wait: Duration,
    /// Lines longer than this (without their newline) are not delivered but reported in
    /// [`Batch::too_long`].
    pub max_line_bytes: usize,
    /// A batch is sent once it holds this many bytes (or at the end of the file).
    pub batch_bytes: usize,
}

impl TailConfig {
    /// The defaults for `patterns`.
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            patterns: patterns.into_iter().map(Into::into).collect(),
            from_start: false,
            poll_interval: DEFAULT_POLL_INTERVAL,
            rescan_interval: DEFAULT_RESCAN_INTERVAL,
            rotate_wait: DEFAULT_ROTATE_WAIT,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            batch_bytes: DEFAULT_BATCH_BYTES,
        }
    }
}

/// A configuration the tailer cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TailError {
    /// No pattern was given.
    #[error("no log file pattern given")]
    NoPatterns,
    /// A pattern is malformed.
    #[error("bad pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A size setting is zero.
    #[error("{setting} must be at least 1")]
    Zero {
        /// The setting's name.
        setting: &'static str,
    },
}

/// What a [`Tailer`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailMessage {
    /// Complete lines of one file.
    Lines(Batch),
    /// Something happened to a file.
    Event(TailEvent),
}

/// Complete lines read from one file, and the position just past them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Where the file was last seen.
    pub path: Arc<Path>,
    /// Which file: the key of the consumer's position.
    pub identity: FileIdentity,
    /// The offset of the batch's first byte: the end of the previous batch of this file.
    pub start_offset: u64,
    /// The offset just past the batch's last line, where reading resumes after a restart.
    pub end_offset: u64,
    /// Whole lines, each ending in `\n` (split them with [`crate::input::for_each_line`]);
    /// possibly empty when the batch only skips over-long lines.
    pub bytes: Vec<u8>,
    /// Over-long lines met between `start_offset` and `end_offset`, not in `bytes`.
    pub too_long: Vec<TooLong>,
}

pub use crate::read::TooLong;

/// How a followed file was replaced: the `kind` label of `edge_file_rotations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RotationKind {
    /// The file was renamed and a new one took its path.
    Rename,
    /// The file was truncated in place (it shrank below the offset read, or its first bytes
    /// changed): read again from its start.
    CopyTruncate,
    /// The file was deleted and a new one created at its path.
    Recreate,
    /// A file at the path has the device and inode of the one followed before, but other
    /// contents: the old one was deleted and its inode given to the new one.
    InodeReuse,
}

impl RotationKind {
    /// The label value: `rename`, `copytruncate`, `recreate` or `inode_reuse`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rename => "rename",
            Self::CopyTruncate => "copytruncate",
            Self::Recreate => "recreate",
            Self::InodeReuse => "inode_reuse",
        }
    }
}

impl std::fmt::Display for RotationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to a followed path or file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailEvent {
    /// A file is followed from `offset` on: a position to record (see
    /// [`Positions`](super::Positions)).
    Opened {
        /// Where it is.
        path: Arc<Path>,
        /// Which file.
        identity: FileIdentity,
        /// Where reading starts.
        offset: u64,
    },
    /// The file at `path` was replaced; the new one is read from its start.
    Rotated {
        /// The path.
        path: Arc<Path>,
        /// How.
        kind: RotationKind,
    },
    /// A file that was deleted or rotated away has been read to its end and is no longer
    /// followed: its position can be forgotten.
    Closed {
        /// Where it was last seen.
        path: Arc<Path>,
        /// Which file.
        identity: FileIdentity,
        /// Its end.
        offset: u64,
    },
    /// A file of the checkpoint no longer exists: the lines after `offset` that it may have
    /// received before it went away are lost.
    Missing {
        /// Where it was.
        path: Arc<Path>,
        /// Which file.
        identity: FileIdentity,
        /// How far it had been read.
        offset: u64,
    },
    /// A path cannot be listed, opened or read. Reported once until the reason changes;
    /// following goes on and the path is tried again at every poll.
    Error {
        /// The path.
        path: Arc<Path>,
        /// Why.
        reason: String,
    },
}

/// Which patterns have files followed and which paths fail, for a readiness endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailStatus {
    /// How many polls have completed.
    pub polls: u64,
    /// One entry per configured pattern, in order.
    pub patterns: Vec<PatternStatus>,
}

impl TailStatus {
    /// Whether a poll has completed and every pattern has at least one file followed.
    pub fn is_ready(&self) -> bool {
        self.polls > 0 && self.patterns.iter().all(|p| !p.followed.is_empty())
    }
}

/// The state of one configured pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternStatus {
    /// The pattern as configured.
    pub pattern: String,
    /// The files it names that are followed.
    pub followed: Vec<PathBuf>,
    /// The paths it names that cannot be followed, with the reason.
    pub failing: Vec<(PathBuf, String)>,
}

/// Reads the [`TailStatus`] of a tailer, also after [`Tailer::spawn`] moved it to its thread.
#[derive(Debug, Clone, Default)]
pub struct StatusHandle {
    polls: Arc<AtomicU64>,
    patterns: Arc<Mutex<Vec<PatternStatus>>>,
}

impl StatusHandle {
    /// The status after the last completed poll.
    pub fn get(&self) -> TailStatus {
        let patterns = self
            .patterns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        TailStatus {
            polls: self.polls.load(Ordering::Acquire),
            patterns,
        }
    }
}

/// Where reading starts in a file seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartAt {
    Beginning,
    /// After its last complete line.
    End,
}

/// A file being followed, through an open handle.
#[derive(Debug)]
struct Tracked {
    path: Arc<Path>,
    file: File,
    identity: FileIdentity,
    /// Its lines, read with the shared line reader: the offset just past the last complete
    /// line delivered (or skipped), always the start of a line, and the unfinished one.
    lines: LineReader,
    /// Whether `path` still names this file; false once it was rotated away or deleted.
    on_path: bool,
    /// When it was found rotated away.
    departed_at: Option<Instant>,
    /// Size and modification time at the last look, to leave idle files alone.
    seen: Option<(u64, i64, i64)>,
    last_growth: Instant,
    /// Whether the last read reached the end of the file.
    caught_up: bool,
    /// Whether its last link was gone at the last look.
    deleted: bool,
    /// Whether the last read failed.
    failed: bool,
    /// A file rotated away from this one's path, to be read to its end before this one.
    after: Option<FileKey>,
}

/// A path whose file went away, to name the rotation when a new one appears there.
#[derive(Debug, Clone, Copy)]
struct Departed {
    key: FileKey,
    /// Whether the old file was deleted, once known (it may still be followed).
    deleted: Option<bool>,
    sequence: u64,
}

/// Buffers reused from poll to poll.
#[derive(Debug, Default)]
struct Buffers {
    chunk: Vec<u8>,
    head: Vec<u8>,
    batch: Vec<u8>,
    spares: Option<Receiver<Vec<u8>>>,
}

impl Buffers {
    fn take_batch(&mut self) -> Vec<u8> {
        let mut batch = mem::take(&mut self.batch);
        if batch.capacity() == 0
            && let Some(spare) = self.spares.as_ref().and_then(|s| s.try_recv().ok())
        {
            batch = spare;
        }
        batch.clear();
        batch
    }
}

/// Where messages go during a poll; stops taking them once the receiver is gone.
struct Out<'a> {
    sink: &'a mut dyn FnMut(TailMessage) -> bool,
    stopped: bool,
}

impl Out<'_> {
    fn send(&mut self, message: TailMessage) {
        if !self.stopped && !(self.sink)(message) {
            self.stopped = true;
        }
    }

    fn event(&mut self, event: TailEvent) {
        self.send(TailMessage::Event(event));
    }
}

/// Follows the files named by a [`TailConfig`]: see the [module docs](super).
#[derive(Debug)]
pub struct Tailer {
    config: TailConfig,
    patterns: Patterns,
    /// The checkpoint's positions until the first poll; `None` for a first start.
    restored: Option<Vec<FilePosition>>,
    resumed: bool,
    started: bool,
    last_rescan: Option<Instant>,
    /// The paths the patterns named at the last rescan.
    scan: Vec<Arc<Path>>,
    /// Followed files, oldest first: the order in which they are read.
    files: Vec<Tracked>,
    index: HashMap<FileKey, usize>,
    /// Checkpointed files that exist but could not be opened yet, retried at every poll.
    waiting: Vec<(Arc<Path>, bool, FilePosition)>,
    departed: HashMap<Arc<Path>, Departed>,
    departures: u64,
    /// Files of the first scan that could not be opened: opened later as if at startup.
    initial_failed: HashSet<FileKey>,
    errors: HashMap<Arc<Path>, String>,
    pattern_errors: Vec<(Arc<Path>, String)>,
    status: StatusHandle,
    status_dirty: bool,
    buffers: Buffers,
}

impl Tailer {
    /// A tailer for a first start, with no checkpoint: files present at the first poll are
    /// read from their end (from their start with [`TailConfig::from_start`]), files that
    /// appear later from their start. Nothing is read before the first [`poll`](Self::poll).
    ///
    /// # Errors
    ///
    /// No pattern, a malformed pattern, or a zero size setting.
    pub fn new(config: TailConfig) -> Result<Self, TailError> {
        Self::build(config, None)
    }

    /// A tailer resuming from a checkpoint's positions: each file found again (at its path,
    /// under another name a pattern matches, or renamed in its directory) continues at its
    /// offset; every other file is read from its start, as it appeared after the checkpoint
    /// was written. An empty list is a checkpoint of no file, not a first start.
    ///
    /// # Errors
    ///
    /// No pattern, a malformed pattern, or a zero size setting.
    pub fn resume(config: TailConfig, positions: Vec<FilePosition>) -> Result<Self, TailError> {
        Self::build(config, Some(positions))
    }

    fn build(config: TailConfig, restored: Option<Vec<FilePosition>>) -> Result<Self, TailError> {
        let patterns = Patterns::new(&config.patterns)?;
        if config.max_line_bytes == 0 {
            return Err(TailError::Zero {
                setting: "max_line_bytes",
            });
        }
        if config.batch_bytes == 0 {
            return Err(TailError::Zero {
                setting: "batch_bytes",
            });
        }
        let tailer = Self {
            resumed: restored.is_some(),
            restored,
            config,
            patterns,
            started: false,
            last_rescan: None,
            scan: Vec::new(),
            files: Vec::new(),
            index: HashMap::new(),
            waiting: Vec::new(),
            departed: HashMap::new(),
            departures: 0,
            initial_failed: HashSet::new(),
            errors: HashMap::new(),
            pattern_errors: Vec::new(),
            status: StatusHandle::default(),
            status_dirty: true,
            buffers: Buffers::default(),
        };
        Ok(tailer)
    }

    /// Takes the buffers of batches from `spares` when it has some, instead of allocating:
    /// the consumer sends [`Batch::bytes`] back once done with them.
    #[must_use]
    pub fn recycle_buffers(mut self, spares: Receiver<Vec<u8>>) -> Self {
        self.buffers.spares = Some(spares);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TailConfig {
        &self.config
    }

    /// The status after the last completed poll.
    pub fn status(&self) -> TailStatus {
        self.status.get()
    }

    /// A handle on the status that stays valid after [`spawn`](Self::spawn).
    pub fn status_handle(&self) -> StatusHandle {
        self.status.clone()
    }

    /// One cycle, synchronously: expands the patterns when a rescan is due, looks at every
    /// path for rotations, reads every file's new complete lines and hands out batches and
    /// events in order. Returns whether some file still has data to read now (a large
    /// backlog is read a few batches per file per poll), in which case poll again at once.
    pub fn poll(&mut self, mut sink: impl FnMut(TailMessage)) -> bool {
        let mut accept = |message: TailMessage| {
            sink(message);
            true
        };
        self.poll_with(&mut accept)
    }

    /// Runs [`poll`](Self::poll) in a thread named `edge-tail` every
    /// [`poll_interval`](TailConfig::poll_interval) (at once while a backlog remains), sending
    /// the messages into `sender`. A full channel blocks the thread: reading slows down,
    /// memory does not grow. The thread ends when `shutdown` is set (also while blocked on a
    /// full channel, within 100 ms) or, at its next message, once the receiver is dropped.
    /// Messages not sent by then are dropped, which a consumer following the checkpoint
    /// protocol does not notice: they are read again after a restart.
    ///
    /// # Errors
    ///
    /// The thread cannot be spawned.
    pub fn spawn(
        mut self,
        sender: Sender<TailMessage>,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<JoinHandle<()>> {
        thread::Builder::new()
            .name("edge-tail".to_owned())
            .spawn(move || {
                let receiver_gone = Cell::new(false);
                let mut deliver = |message: TailMessage| {
                    let delivery = send_until_shutdown(&sender, message, &shutdown);
                    receiver_gone.set(delivery == Delivery::ReceiverGone);
                    delivery == Delivery::Sent
                };
                while !shutdown.load(Ordering::Acquire) {
                    let more = self.poll_with(&mut deliver);
                    if receiver_gone.get() {
                        break;
                    }
                    if !more && !shutdown.load(Ordering::Acquire) {
                        thread::sleep(self.config.poll_interval);
                    }
                }
            })
    }

    fn poll_with(&mut self, sink: &mut dyn FnMut(TailMessage) -> bool) -> bool {
        let mut out = Out {
            sink,
            stopped: false,
        };
        let now = Instant::now();
        let initial = !self.started;
        self.started = true;
        let mut rescanned = false;
        if initial
            || self
                .last_rescan
                .is_none_or(|last| now.duration_since(last) >= self.config.rescan_interval)
        {
            self.rescan(now, &mut out);
            rescanned = true;
        }
        let mut fresh = self.check_paths(now, rescanned, &mut out);
        if initial && let Some(positions) = self.restored.take() {
            self.restore(positions, &mut fresh, now, &mut out);
        }
        self.retry_waiting(&mut fresh, now, &mut out);
        let mut more = false;
        let existing = self.files.len();
        for index in 0..existing {
            more |= self.service(index, now, &mut out);
            if out.stopped {
                return false;
            }
        }
        for (path, metadata) in fresh {
            let start = self.start_for(key_of(&metadata), initial);
            if let Some(index) = self.open_new(&path, &metadata, start, initial, now, &mut out) {
                more |= self.service(index, now, &mut out);
            }
            if out.stopped {
                return false;
            }
        }
        self.close_finished(now, &mut out);
        self.publish_status();
        more
    }

    /// Expands the patterns again.
    fn rescan(&mut self, now: Instant, out: &mut Out<'_>) {
        self.last_rescan = Some(now);
        let expansion = self.patterns.expand();
        for (path, reason) in &expansion.errors {
            self.report_error(path, reason.clone(), out);
        }
        if self.pattern_errors != expansion.errors {
            for (path, _) in mem::replace(&mut self.pattern_errors, expansion.errors) {
                if !self.pattern_errors.iter().any(|(still, _)| *still == path) {
                    self.clear_error(&path);
                }
            }
            self.status_dirty = true;
        }
        self.scan = expansion.paths;
    }

    /// Looks at every path for the file it names now. Followed files found elsewhere are
    /// moved there, followed files no longer at their path are marked rotated away, and the
    /// untracked files found are returned.
    fn check_paths(
        &mut self,
        now: Instant,
        mut rescanned: bool,
        out: &mut Out<'_>,
    ) -> Vec<(Arc<Path>, Metadata)> {
        loop {
            let mut paths: Vec<Arc<Path>> = self.scan.clone();
            let listed: HashSet<Arc<Path>> = paths.iter().cloned().collect();
            paths.extend(
                self.files
                    .iter()
                    .filter(|file| file.on_path && !listed.contains(&file.path))
                    .map(|file| Arc::clone(&file.path)),
            );
            let looks: Vec<(Arc<Path>, io::Result<Metadata>)> = paths
                .into_iter()
                .map(|path| {
                    let metadata = fs::metadata(&path);
                    (path, metadata)
                })
                .collect();
            // Departures first, so that a file renamed to another watched name is found
            // there below whatever the order of the paths.
            let mut departures = false;
            for (path, metadata) in &looks {
                let now_key = match metadata {
                    Ok(metadata) if metadata.is_file() => Some(key_of(metadata)),
                    Ok(_) => None,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => None,
                    // Cannot tell: keep following through the handle.
                    Err(_) => continue,
                };
                let leaving = self.files.iter().position(|file| {
                    file.on_path && file.path == *path && Some(file.identity.key()) != now_key
                });
                if let Some(index) = leaving {
                    self.depart(index, now);
                    departures = true;
                }
            }
            if departures && !rescanned {
                // The file may have moved to a name that did not exist at the last rescan.
                self.rescan(now, out);
                rescanned = true;
                continue;
            }
            let waiting: HashSet<FileKey> = self
                .waiting
                .iter()
                .map(|(_, _, position)| position.identity.key())
                .collect();
            let mut fresh = Vec::new();
            let mut fresh_keys = HashSet::new();
            for (path, metadata) in looks {
                match metadata {
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        self.clear_error(&path);
                    }
                    Err(error) => self.report_error(&path, error.to_string(), out),
                    Ok(metadata) if !metadata.is_file() => {
                        self.report_error(&path, "not a regular file".to_owned(), out);
                    }
                    Ok(metadata) => {
                        let key = key_of(&metadata);
                        if let Some(&index) = self.index.get(&key) {
                            let file = &mut self.files[index];
                            if !file.on_path {
                                file.path = Arc::clone(&path);
                                file.on_path = true;
                                file.departed_at = None;
                                self.status_dirty = true;
                            }
                            self.clear_error(&path);
                        } else if !waiting.contains(&key) && fresh_keys.insert(key) {
                            fresh.push((path, metadata));
                        }
                    }
                }
            }
            return fresh;
        }
    }

    /// Marks a followed file as no longer at its path.
    fn depart(&mut self, index: usize, now: Instant) {
        let file = &mut self.files[index];
        file.on_path = false;
        file.departed_at = Some(now);
        let path = Arc::clone(&file.path);
        let key = file.identity.key();
        self.remember_departure(path, key, None);
        self.status_dirty = true;
    }

    fn remember_departure(&mut self, path: Arc<Path>, key: FileKey, deleted: Option<bool>) {
        self.departures += 1;
        self.departed.insert(
            path,
            Departed {
                key,
                deleted,
                sequence: self.departures,
            },
        );
        if self.departed.len() > MAX_DEPARTED {
            let oldest = self
                .departed
                .iter()
                .min_by_key(|(_, departed)| departed.sequence)
                .map(|(path, _)| Arc::clone(path));
            if let Some(oldest) = oldest {
                self.departed.remove(&oldest);
            }
        }
    }

    /// Where a file seen for the first time is read from.
    fn start_for(&mut self, key: FileKey, initial: bool) -> StartAt {
        let at_startup = initial || self.initial_failed.contains(&key);
        if at_startup && !self.resumed && !self.config.from_start {
            StartAt::End
        } else {
            StartAt::Beginning
        }
    }

    /// Opens a file seen for the first time and starts following it.
    fn open_new(
        &mut self,
        path: &Arc<Path>,
        metadata: &Metadata,
        start: StartAt,
        initial: bool,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Option<usize> {
        let opened = File::open(path).and_then(|file| {
            let metadata = file.metadata()?;
            read_head(&file, &mut self.buffers.head)?;
            let offset = match start {
                StartAt::Beginning => 0,
                StartAt::End => end_of_last_line(&file, metadata.len(), &mut self.buffers.chunk)?,
            };
            Ok((file, metadata, offset))
        });
        let (file, metadata, offset) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                if initial {
                    self.initial_failed.insert(key_of(metadata));
                }
                self.report_error(path, format!("cannot open: {error}"), out);
                return None;
            }
        };
        let key = key_of(&metadata);
        if self.index.contains_key(&key) {
            // Replaced by a followed file between the look and the open.
            return None;
        }
        self.initial_failed.remove(&key);
        self.clear_error(path);
        let after = self.announce_rotation(path, key, out);
        let identity = FileIdentity {
            dev: key.0,
            ino: key.1,
            fingerprint: Fingerprint::of(&self.buffers.head),
        };
        out.event(TailEvent::Opened {
            path: Arc::clone(path),
            identity,
            offset,
        });
        Some(self.track(Tracked {
            path: Arc::clone(path),
            file,
            identity,
            lines: LineReader::new(self.config.max_line_bytes, offset),
            on_path: true,
            departed_at: None,
            seen: None,
            last_growth: now,
            caught_up: false,
            deleted: false,
            failed: false,
            after,
        }))
    }

    /// Reports the rotation that put a new file at `path`, if a followed file left it;
    /// returns that file when it is still followed, to be read to its end first.
    fn announce_rotation(
        &mut self,
        path: &Arc<Path>,
        key: FileKey,
        out: &mut Out<'_>,
    ) -> Option<FileKey> {
        let departed = self.departed.remove(path)?;
        let still_followed = self.index.get(&departed.key).copied();
        let kind = if departed.key == key {
            RotationKind::InodeReuse
        } else {
            let deleted = match still_followed {
                Some(index) => {
                    let file = &self.files[index];
                    file.file
                        .metadata()
                        .map_or(file.deleted, |m| m.nlink() == 0)
                }
                None => departed.deleted.unwrap_or(true),
            };
            if deleted {
                RotationKind::Recreate
            } else {
                RotationKind::Rename
            }
        };
        out.event(TailEvent::Rotated {
            path: Arc::clone(path),
            kind,
        });
        still_followed.map(|_| departed.key)
    }

    fn track(&mut self, tracked: Tracked) -> usize {
        let index = self.files.len();
        self.index.insert(tracked.identity.key(), index);
        self.files.push(tracked);
        self.status_dirty = true;
        index
    }

    /// Picks up the checkpoint's positions at the first poll.
    fn restore(
        &mut self,
        positions: Vec<FilePosition>,
        fresh: &mut Vec<(Arc<Path>, Metadata)>,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let mut directories: HashMap<PathBuf, Vec<(PathBuf, Metadata)>> = HashMap::new();
        for position in positions {
            let key = position.identity.key();
            if self.index.contains_key(&key) {
                continue;
            }
            let found = if let Some(at) = fresh.iter().position(|(_, m)| key_of(m) == key) {
                let (path, _) = fresh.remove(at);
                Some((path, true))
            } else {
                let directory = position
                    .path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                directories
                    .entry(directory)
                    .or_insert_with_key(|directory| {
                        let listed = if directory.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            directory.as_path()
                        };
                        regular_files_in(listed)
                    })
                    .iter()
                    .find(|(_, metadata)| key_of(metadata) == key)
                    .map(|(path, _)| (Arc::from(path.as_path()), false))
            };
            let Some((path, matching)) = found else {
                self.missing(&position, out);
                continue;
            };
            if let Err(error) = self.resume_file(&path, matching, &position, now, out) {
                self.report_error(&path, format!("cannot open: {error}"), out);
                self.waiting.push((path, matching, position));
            }
        }
        // A path whose checkpointed file is followed again has no rotation to report.
        for file in &self.files {
            if file.on_path {
                self.departed.remove(&file.path);
            }
        }
    }

    fn retry_waiting(
        &mut self,
        fresh: &mut Vec<(Arc<Path>, Metadata)>,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        for (path, matching, position) in mem::take(&mut self.waiting) {
            match fs::metadata(&path) {
                Ok(metadata) if key_of(&metadata) == position.identity.key() => {
                    if let Err(error) = self.resume_file(&path, matching, &position, now, out) {
                        self.report_error(&path, format!("cannot open: {error}"), out);
                        self.waiting.push((path, matching, position));
                    }
                }
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    self.report_error(&path, error.to_string(), out);
                    self.waiting.push((path, matching, position));
                }
                // Gone (or replaced) while it could not be read.
                _ => {
                    self.clear_error(&path);
                    self.missing(&position, out);
                    if let Ok(metadata) = fs::metadata(&path)
                        && metadata.is_file()
                        && self.patterns.any_matches(&path)
                        && !fresh.iter().any(|(_, m)| key_of(m) == key_of(&metadata))
                        && !self.index.contains_key(&key_of(&metadata))
                    {
                        fresh.push((path, metadata));
                    }
                }
            }
        }
    }

    fn missing(&mut self, position: &FilePosition, out: &mut Out<'_>) {
        let path: Arc<Path> = Arc::from(position.path.as_path());
        out.event(TailEvent::Missing {
            path: Arc::clone(&path),
            identity: position.identity,
            offset: position.offset,
        });
        self.remember_departure(path, position.identity.key(), Some(true));
    }

    /// Follows a checkpointed file found again at `path`, from its offset if its contents are
    /// still those the offset was taken in.
    fn resume_file(
        &mut self,
        path: &Arc<Path>,
        matching: bool,
        position: &FilePosition,
        now: Instant,
        out: &mut Out<'_>,
    ) -> io::Result<()> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        let key = key_of(&metadata);
        if key != position.identity.key() {
            // Replaced between the look and the open.
            self.missing(position, out);
            return Ok(());
        }
        read_head(&file, &mut self.buffers.head)?;
        let head = &self.buffers.head;
        let fingerprint = Fingerprint::of(head);
        let changed = if metadata.len() < position.offset {
            Some(RotationKind::CopyTruncate)
        } else if !position.identity.fingerprint.matches(head) {
            Some(RotationKind::InodeReuse)
        } else if !at_line_start(&file, position.offset)? {
            Some(RotationKind::CopyTruncate)
        } else {
            None
        };
        let offset = match changed {
            // Not a watched name and not the checkpointed contents: not ours.
            Some(_) if !matching => {
                self.missing(position, out);
                return Ok(());
            }
            Some(kind) => {
                out.event(TailEvent::Rotated {
                    path: Arc::clone(path),
                    kind,
                });
                0
            }
            None => position.offset,
        };
        self.clear_error(path);
        if **path != *position.path {
            // Renamed while we were stopped: a new file at the old path is its successor.
            self.remember_departure(Arc::from(position.path.as_path()), key, Some(false));
        }
        let identity = FileIdentity {
            dev: key.0,
            ino: key.1,
            fingerprint,
        };
        out.event(TailEvent::Opened {
            path: Arc::clone(path),
            identity,
            offset,
        });
        self.track(Tracked {
            path: Arc::clone(path),
            file,
            identity,
            lines: LineReader::new(self.config.max_line_bytes, offset),
            on_path: matching,
            departed_at: (!matching).then_some(now),
            seen: None,
            last_growth: now,
            caught_up: false,
            deleted: false,
            failed: false,
            after: None,
        });
        Ok(())
    }

    /// Checks one followed file for truncation and reads its new lines. Returns whether data
    /// is left to read now.
    fn service(&mut self, index: usize, now: Instant, out: &mut Out<'_>) -> bool {
        if let Some(before) = self.files[index].after {
            if let Some(&previous) = self.index.get(&before)
                && !self.files[previous].caught_up
            {
                return true;
            }
            self.files[index].after = None;
        }
        let file = &mut self.files[index];
        let metadata = match file.file.metadata() {
            Ok(metadata) => metadata,
            Err(error) => {
                let path = Arc::clone(&file.path);
                file.failed = true;
                self.report_error(&path, format!("cannot read: {error}"), out);
                return false;
            }
        };
        file.deleted = metadata.nlink() == 0;
        let stamp = (metadata.len(), metadata.mtime(), metadata.mtime_nsec());
        if file.caught_up && file.seen == Some(stamp) {
            return false;
        }
        if file.seen.is_none_or(|seen| seen != stamp) {
            file.last_growth = now;
        }
        file.seen = Some(stamp);
        match self.check_contents(index, metadata.len(), out) {
            Ok(()) => {}
            Err(error) => {
                let file = &mut self.files[index];
                file.failed = true;
                let path = Arc::clone(&file.path);
                self.report_error(&path, format!("cannot read: {error}"), out);
                return false;
            }
        }
        for _ in 0..MAX_BATCHES_PER_FILE {
            let file = &mut self.files[index];
            match read_batch(file, &mut self.buffers, &self.config) {
                Ok((batch, end)) => {
                    if let Some(batch) = batch {
                        out.send(TailMessage::Lines(batch));
                    }
                    if end {
                        file.caught_up = true;
                        file.failed = false;
                        let path = Arc::clone(&file.path);
                        self.clear_error(&path);
                        return false;
                    }
                    if out.stopped {
                        return false;
                    }
                }
                Err(error) => {
                    file.failed = true;
                    let path = Arc::clone(&file.path);
                    self.report_error(&path, format!("cannot read: {error}"), out);
                    return false;
                }
            }
        }
        self.files[index].caught_up = false;
        true
    }

    /// Detects a truncation (copytruncate, or any rewrite in place) and grows the fingerprint
    /// while the file is shorter than what it covers.
    fn check_contents(&mut self, index: usize, size: u64, out: &mut Out<'_>) -> io::Result<()> {
        let file = &mut self.files[index];
        let read_to = file.lines.read_offset();
        let head = &mut self.buffers.head;
        read_head(&file.file, head)?;
        let rewritten = size < read_to
            || !file.identity.fingerprint.matches(head)
            || !at_line_start(&file.file, file.lines.offset())?;
        if rewritten {
            file.lines = LineReader::new(file.lines.max_line(), 0);
            file.identity.fingerprint = Fingerprint::of(head);
            file.caught_up = false;
            let (path, identity) = (Arc::clone(&file.path), file.identity);
            out.event(TailEvent::Rotated {
                path: Arc::clone(&path),
                kind: RotationKind::CopyTruncate,
            });
            out.event(TailEvent::Opened {
                path,
                identity,
                offset: 0,
            });
        } else if !file.identity.fingerprint.is_complete()
            && head.len() > file.identity.fingerprint.len as usize
        {
            file.identity.fingerprint = Fingerprint::of(head);
        }
        Ok(())
    }

    /// Stops following the files rotated away or deleted once read to their end.
    fn close_finished(&mut self, now: Instant, out: &mut Out<'_>) {
        let rotate_wait = self.config.rotate_wait;
        let finished = |file: &Tracked| {
            let idle_since = file
                .departed_at
                .map_or(file.last_growth, |at| at.max(file.last_growth));
            // A file rotated away that cannot be read any more is given up: its successor waits
            // for it otherwise.
            !file.on_path
                && (file.caught_up || file.failed)
                && (file.deleted || file.failed || now.duration_since(idle_since) >= rotate_wait)
        };
        if !self.files.iter().any(finished) {
            return;
        }
        let mut kept = Vec::with_capacity(self.files.len());
        for file in mem::take(&mut self.files) {
            if !finished(&file) {
                kept.push(file);
                continue;
            }
            if let Some(departed) = self.departed.get_mut(&file.path)
                && departed.key == file.identity.key()
            {
                departed.deleted = Some(file.deleted);
            }
            if file.failed {
                self.errors.remove(&file.path);
            }
            out.event(TailEvent::Closed {
                path: file.path,
                identity: file.identity,
                offset: file.lines.offset(),
            });
        }
        self.files = kept;
        self.index = self
            .files
            .iter()
            .enumerate()
            .map(|(index, file)| (file.identity.key(), index))
            .collect();
        self.status_dirty = true;
    }

    fn report_error(&mut self, path: &Arc<Path>, reason: String, out: &mut Out<'_>) {
        if self.errors.get(path) == Some(&reason) {
            return;
        }
        self.errors.insert(Arc::clone(path), reason.clone());
        self.status_dirty = true;
        out.event(TailEvent::Error {
            path: Arc::clone(path),
            reason,
        });
    }

    fn clear_error(&mut self, path: &Path) {
        if self.errors.remove(path).is_some() {
            self.status_dirty = true;
        }
    }

    fn publish_status(&mut self) {
        if self.status_dirty {
            self.status_dirty = false;
            let patterns = self
                .patterns
                .names()
                .enumerate()
                .map(|(index, pattern)| {
                    let mut followed: Vec<PathBuf> = self
                        .files
                        .iter()
                        .filter(|f| f.on_path && self.patterns.matches(index, &f.path))
                        .map(|f| f.path.to_path_buf())
                        .collect();
                    followed.sort();
                    let mut failing: Vec<(PathBuf, String)> = self
                        .errors
                        .iter()
                        .filter(|(path, _)| {
                            self.patterns.matches(index, path)
                                || self.pattern_errors.iter().any(|(listed, _)| {
                                    listed == *path
                                        && pattern.starts_with(&*listed.to_string_lossy())
                                })
                        })
                        .map(|(path, reason)| (path.to_path_buf(), reason.clone()))
                        .collect();
                    failing.sort();
                    PatternStatus {
                        pattern: pattern.to_owned(),
                        followed,
                        failing,
                    }
                })
                .collect();
            *self
                .status
                .patterns
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = patterns;
        }
        self.status.polls.fetch_add(1, Ordering::Release);
    }
}

/// What became of a message handed to the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Sent,
    ShutDown,
    ReceiverGone,
}

/// Sends one message, waiting while the channel is full unless `shutdown` is set.
fn send_until_shutdown(
    sender: &Sender<TailMessage>,
    mut message: TailMessage,
    shutdown: &AtomicBool,
) -> Delivery {
    loop {
        match sender.send_timeout(message, SEND_RETRY) {
            Ok(()) => return Delivery::Sent,
            Err(SendTimeoutError::Timeout(back)) => {
                if shutdown.load(Ordering::Acquire) {
                    return Delivery::ShutDown;
                }
                message = back;
            }
            Err(SendTimeoutError::Disconnected(_)) => return Delivery::ReceiverGone,
        }
    }
}

/// The offset just past the last newline among the first `size` bytes of a file (0 when
/// there is none): where its unfinished last line, if any, starts.
fn end_of_last_line(file: &File, size: u64, buffer: &mut Vec<u8>) -> io::Result<u64> {
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(READ_CHUNK as u64);
        buffer.resize((end - start) as usize, 0);
        file.read_exact_at(buffer, start)?;
        if let Some(at) = memchr::memrchr(b'\n', buffer) {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads complete lines from the file's offset until the batch is full or the end of the
/// file. Returns the batch (if the offset moved) and whether the end was reached.
fn read_batch(
    file: &mut Tracked,
    buffers: &mut Buffers,
    config: &TailConfig,
) -> io::Result<(Option<Batch>, bool)> {
    let start_offset = file.lines.offset();
    let mut bytes = LineBuffer::from_vec(buffers.take_batch());
    let mut too_long = Vec::new();
    let mut at = FileAt {
        file: &file.file,
        offset: file.lines.read_offset(),
    };
    let filled = file.lines.fill(
        &mut at,
        &mut bytes,
        config.batch_bytes,
        AtEnd::Wait,
        &mut too_long,
    );
    let bytes = bytes.into_vec();
    let end = match filled {
        Ok(end) => end,
        Err(error) => {
            buffers.batch = bytes;
            return Err(error);
        }
    };
    if file.lines.offset() == start_offset {
        buffers.batch = bytes;
        return Ok((None, end));
    }
    let batch = Batch {
        path: Arc::clone(&file.path),
        identity: file.identity,
        start_offset,
        end_offset: file.lines.offset(),
        bytes,
        too_long,
    };
    Ok((Some(batch), end))
}

/// A file read from an offset with positioned reads: the handle's own position is never used.
struct FileAt<'a> {
    file: &'a File,
    offset: u64,
}

impl io::Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buf, self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}

//! The `tail -F` state machine: which files to follow, where each one is, how far it was read.
//! See the [module docs](super) for the behaviour and the protocol. Its other rooms: `paths`
//! (what each watched path names now), `restore` (resuming from a checkpoint), `reader` (the
//! lines of one file), `status` (errors and readiness), `thread` (the `edge-tail` thread).

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io;
use std::mem;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;

use super::checkpoint::FilePosition;
use super::discover::Patterns;
use super::fingerprint::{FileIdentity, FileKey, Fingerprint, at_line_start, key_of, read_head};
use super::reader::{Buffers, end_of_last_line, read_batch};
use super::status::StatusHandle;
use super::status::TailStatus;
use super::types::{RotationKind, TailConfig, TailError, TailEvent, TailMessage};
use crate::read::LineReader;

/// How many batches one file may send per poll before the others get their turn.
const MAX_BATCHES_PER_FILE: usize = 16;
/// How many paths whose file went away are remembered, to name the rotation when a new file
/// appears there.
pub(super) const MAX_DEPARTED: usize = 1024;

/// Where reading starts in a file seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StartAt {
    Beginning,
    /// After its last complete line.
    End,
}

/// A file being followed, through an open handle.
#[derive(Debug)]
pub(super) struct Tracked {
    pub(super) path: Arc<Path>,
    pub(super) file: File,
    pub(super) identity: FileIdentity,
    /// Its lines, read with the shared line reader: the offset just past the last complete
    /// line delivered (or skipped), always the start of a line, and the unfinished one.
    pub(super) lines: LineReader,
    /// Whether `path` still names this file; false once it was rotated away or deleted.
    pub(super) on_path: bool,
    /// When it was found rotated away.
    pub(super) departed_at: Option<Instant>,
    /// Size and modification time at the last look, to leave idle files alone.
    pub(super) seen: Option<(u64, i64, i64)>,
    pub(super) last_growth: Instant,
    /// Whether the last read reached the end of the file.
    pub(super) caught_up: bool,
    /// Whether its last link was gone at the last look.
    pub(super) deleted: bool,
    /// Whether the last read failed.
    pub(super) failed: bool,
    /// A file rotated away from this one's path, to be read to its end before this one.
    pub(super) after: Option<FileKey>,
}

/// A path whose file went away, to name the rotation when a new one appears there.
#[derive(Debug, Clone, Copy)]
pub(super) struct Departed {
    pub(super) key: FileKey,
    /// Whether the old file was deleted, once known (it may still be followed).
    pub(super) deleted: Option<bool>,
    pub(super) sequence: u64,
}

/// A file no longer followed, remembered so that it is not read again if it comes back (a
/// path moved away and back, a symlink flipped away and back).
#[derive(Debug, Clone, Copy)]
pub(super) struct Closed {
    pub(super) fingerprint: Fingerprint,
    /// How far it was read.
    pub(super) offset: u64,
    pub(super) sequence: u64,
}

/// Where messages go during a poll; stops taking them once the receiver is gone.
pub(super) struct Out<'a> {
    pub(super) sink: &'a mut dyn FnMut(TailMessage) -> bool,
    pub(super) stopped: bool,
}

impl Out<'_> {
    pub(super) fn send(&mut self, message: TailMessage) {
        if !self.stopped && !(self.sink)(message) {
            self.stopped = true;
        }
    }

    pub(super) fn event(&mut self, event: TailEvent) {
        self.send(TailMessage::Event(event));
    }
}

/// Follows the files named by a [`TailConfig`]: see the [module docs](super).
#[derive(Debug)]
pub struct Tailer {
    pub(super) config: TailConfig,
    pub(super) patterns: Patterns,
    /// The checkpoint's positions until the first poll; `None` for a first start.
    pub(super) restored: Option<Vec<FilePosition>>,
    pub(super) resumed: bool,
    pub(super) started: bool,
    pub(super) last_rescan: Option<Instant>,
    /// The paths the patterns named at the last rescan.
    pub(super) scan: Vec<Arc<Path>>,
    /// Followed files, oldest first: the order in which they are read.
    pub(super) files: Vec<Tracked>,
    pub(super) index: HashMap<FileKey, usize>,
    /// Checkpointed files that exist but could not be opened yet, retried at every poll.
    pub(super) waiting: Vec<(Arc<Path>, bool, FilePosition)>,
    pub(super) departed: HashMap<Arc<Path>, Departed>,
    pub(super) departures: u64,
    /// Files closed after a rotation, up to [`MAX_DEPARTED`], by device and inode.
    pub(super) closed: HashMap<FileKey, Closed>,
    /// Files of the first scan that could not be opened, with their size then: opened later
    /// as if at startup, after the last line they had then (the lines written since are new).
    pub(super) initial_failed: HashMap<FileKey, u64>,
    pub(super) errors: HashMap<Arc<Path>, String>,
    pub(super) pattern_errors: Vec<(Arc<Path>, String)>,
    pub(super) status: StatusHandle,
    pub(super) status_dirty: bool,
    pub(super) buffers: Buffers,
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

    pub(super) fn build(
        config: TailConfig,
        restored: Option<Vec<FilePosition>>,
    ) -> Result<Self, TailError> {
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
        if config.max_files == 0 {
            return Err(TailError::Zero {
                setting: "max_files",
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
            closed: HashMap::new(),
            initial_failed: HashMap::new(),
            errors: HashMap::new(),
            pattern_errors: Vec::new(),
            status: StatusHandle::default(),
            status_dirty: true,
            buffers: Buffers::default(),
        };
        Ok(tailer)
    }

    /// Takes the buffers of batches from `spares` when it has some, instead of allocating:
    /// the consumer sends [`Batch::bytes`](super::Batch::bytes) back once done with them.
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

    pub(super) fn poll_with(&mut self, sink: &mut dyn FnMut(TailMessage) -> bool) -> bool {
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
            if self.files.len() >= self.config.max_files {
                let reason = format!(
                    "not followed: {} files are followed already (the cap)",
                    self.config.max_files
                );
                self.report_error(&path, reason, &mut out);
                continue;
            }
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

    /// Where a file seen for the first time is read from.
    pub(super) fn start_for(&mut self, key: FileKey, initial: bool) -> StartAt {
        let at_startup = initial || self.initial_failed.contains_key(&key);
        if at_startup && !self.resumed && !self.config.from_start {
            StartAt::End
        } else {
            StartAt::Beginning
        }
    }

    /// Opens a file seen for the first time and starts following it.
    pub(super) fn open_new(
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
            let returning = self.returning(&file, &metadata)?;
            let size = match self.initial_failed.get(&key_of(&metadata)) {
                Some(&at_startup) => at_startup.min(metadata.len()),
                None => metadata.len(),
            };
            let offset = match (returning, start) {
                (Some(offset), _) => offset,
                (None, StartAt::Beginning) => 0,
                (None, StartAt::End) => end_of_last_line(&file, size, &mut self.buffers.chunk)?,
            };
            Ok((file, metadata, offset, returning.is_some()))
        });
        let (file, metadata, offset, returning) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                if initial {
                    self.initial_failed.insert(key_of(metadata), metadata.len());
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
        let after = if returning {
            // The same file came back: no rotation happened at this path.
            self.closed.remove(&key);
            if self.departed.get(path).is_some_and(|d| d.key == key) {
                self.departed.remove(path);
            }
            None
        } else {
            self.announce_rotation(path, key, out)
        };
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

    /// How far a file opened now was read before, if it is one closed earlier that came back
    /// unchanged: the same device, inode and first bytes, at least as long, a line starting at
    /// the offset.
    fn returning(&self, file: &File, metadata: &Metadata) -> io::Result<Option<u64>> {
        let Some(closed) = self.closed.get(&key_of(metadata)) else {
            return Ok(None);
        };
        let same = closed.fingerprint.matches(&self.buffers.head)
            && metadata.len() >= closed.offset
            && at_line_start(file, closed.offset)?;
        Ok(same.then_some(closed.offset))
    }

    /// Reports the rotation that put a new file at `path`, if a followed file left it;
    /// returns that file when it is still followed, to be read to its end first.
    pub(super) fn announce_rotation(
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

    pub(super) fn track(&mut self, tracked: Tracked) -> usize {
        let index = self.files.len();
        self.index.insert(tracked.identity.key(), index);
        self.files.push(tracked);
        self.status_dirty = true;
        index
    }

    /// Checks one followed file for truncation and reads its new lines. Returns whether data
    /// is left to read now.
    pub(super) fn service(&mut self, index: usize, now: Instant, out: &mut Out<'_>) -> bool {
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
    pub(super) fn check_contents(
        &mut self,
        index: usize,
        size: u64,
        out: &mut Out<'_>,
    ) -> io::Result<()> {
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
    pub(super) fn close_finished(&mut self, now: Instant, out: &mut Out<'_>) {
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
            self.remember_closed(&file);
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

    fn remember_closed(&mut self, file: &Tracked) {
        // A deleted file cannot come back (its inode may, for a new file); one read to offset
        // 0 has nothing to skip.
        if file.deleted || file.lines.offset() == 0 {
            return;
        }
        self.departures += 1;
        self.closed.insert(
            file.identity.key(),
            Closed {
                fingerprint: file.identity.fingerprint,
                offset: file.lines.offset(),
                sequence: self.departures,
            },
        );
        if self.closed.len() > MAX_DEPARTED {
            let oldest = self
                .closed
                .iter()
                .min_by_key(|(_, closed)| closed.sequence)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.closed.remove(&oldest);
            }
        }
    }
}

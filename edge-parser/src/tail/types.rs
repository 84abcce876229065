//! What a [`Tailer`](super::Tailer) is configured with and what it delivers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::fingerprint::FileIdentity;
pub use crate::read::TooLong;

/// Default time between two polls of the files.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Default time between two expansions of the glob patterns.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Default time a file that was rotated away is still followed after its last growth, for
/// writers that reopen their log some time after the rename.
pub const DEFAULT_ROTATE_WAIT: Duration = Duration::from_secs(10);
/// Default size from which a batch of lines is sent.
pub const DEFAULT_BATCH_BYTES: usize = 256 << 10;
/// Default cap on the files followed at once (each holds a file descriptor).
pub const DEFAULT_MAX_FILES: usize = 256;
/// Default cap on the length of a line (the shared line reader's, [`crate::read`]).
pub const DEFAULT_MAX_LINE_BYTES: usize = crate::read::DEFAULT_MAX_LINE_BYTES;

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
    /// Time between two polls in [`Tailer::spawn`](super::Tailer::spawn).
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
    /// Files followed at once, rotated-away ones included: a pattern matching more is
    /// followed up to the cap, the others reported as [`TailEvent::Error`] until room is made.
    pub max_files: usize,
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
            max_files: DEFAULT_MAX_FILES,
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

/// What a [`Tailer`](super::Tailer) delivers.
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
    /// Whole lines, each ending in `\n` (split them with [`crate::read::lines`]);
    /// possibly empty when the batch only skips over-long lines.
    pub bytes: Vec<u8>,
    /// Over-long lines met between `start_offset` and `end_offset`, not in `bytes`.
    pub too_long: Vec<TooLong>,
}

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
    /// Every kind.
    pub(crate) const ALL: [Self; 4] = [
        Self::Rename,
        Self::CopyTruncate,
        Self::Recreate,
        Self::InodeReuse,
    ];

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

//! Following log files forever, like `tail -F`, with checkpoints for exactly-once counting
//! across restarts.
//!
//! A [`Tailer`] follows the files named by paths and glob patterns
//! (`/var/log/traefik/*.log`), through log rotation, and hands out [`Batch`]es of complete
//! lines and [`TailEvent`]s. [`Tailer::poll`] does one cycle synchronously (tests drive it
//! directly); [`Tailer::spawn`] runs it every [`poll_interval`](TailConfig::poll_interval) in a
//! thread named `edge-tail`, sending into a bounded channel. A [`Checkpoint`] stores the
//! [`FilePosition`]s that [`Positions`] keeps together with the consumer's state, atomically.
//!
//! # Example
//!
//! ```
//! use vantage_edge::tail::{Positions, TailConfig, TailMessage, Tailer};
//!
//! # let dir = std::env::temp_dir().join(format!("vantage-tail-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("access.log"), "old line\n")?;
//! let mut config = TailConfig::new([format!("{}/*.log", dir.display())]);
//! config.from_start = true;
//! let mut tailer = Tailer::new(config)?;
//! let mut positions = Positions::new(Vec::new());
//! let mut lines = Vec::new();
//! tailer.poll(|message| {
//!     if let TailMessage::Lines(batch) = &message {
//!         lines.extend_from_slice(&batch.bytes);
//!     }
//!     positions.observe(&message);
//! });
//! assert_eq!(lines, b"old line\n");
//! assert_eq!(positions.files()[0].offset, 9);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How files are followed
//!
//! Each poll (every 250 ms by default) looks at every watched path with `stat` and at every
//! open file with `fstat`, and reads what was appended with positioned reads. Polling is the
//! whole mechanism: it works on overlay and `emptyDir` volumes where inotify does not, and
//! bounds the delay of a line to about one poll interval. Glob patterns are expanded again
//! every [`rescan_interval`](TailConfig::rescan_interval) (1 s), at once when a followed file
//! leaves its path.
//!
//! A file is identified by its device and inode plus a [`Fingerprint`] of its first bytes (up
//! to 256, with the count remembered so that a growing file keeps matching), see
//! [`FileIdentity`]. Offsets handed out always sit at the start of a line.
//!
//! Only complete lines are delivered: an unfinished last line waits for its newline (it is
//! read again at the next poll, not buffered). A line longer than
//! [`max_line_bytes`](TailConfig::max_line_bytes) is skipped as it is read, never buffered
//! whole, and reported with its offset and first bytes in [`Batch::too_long`] once its newline
//! arrives, in the batch that moves past it. Memory is a few reused buffers plus the batches in
//! flight, and a full channel stops the reading.
//!
//! Files present at the first start (no checkpoint) are read from their end, after their last
//! complete line, or whole with [`from_start`](TailConfig::from_start). Files that appear later,
//! a new file after a rotation or a new name matching a glob, are read from their start.
//!
//! # Rotations
//!
//! | kind ([`RotationKind`]) | seen as | done |
//! |---|---|---|
//! | `rename` | the path names another file; the old one still has a name | the old file is read to its end through the open handle *before* the new one is read from its start, and followed [`rotate_wait`](TailConfig::rotate_wait) (10 s) after its last growth, for writers that reopen late; then closed |
//! | `recreate` | the path names another file; the old one was deleted | the old file is read to its end through the handle, then closed; the new one is read from its start |
//! | `copytruncate` | the followed file shrank below the offset read, its first bytes changed, or the byte before the offset is no longer a newline | read again from offset 0 |
//! | `inode_reuse` | a new file at the path has the old one's device and inode (the old one was deleted and closed first), or a checkpointed inode now holds other first bytes | read from its start |
//!
//! Each is reported once as [`TailEvent::Rotated`], followed by [`TailEvent::Opened`] for the
//! new file (or the truncated one, at offset 0). A file that was closed after leaving its path
//! and comes back unchanged (the same device, inode and first bytes, at least as long, a line
//! starting where reading stopped: a path moved away and back, a symlink flipped away and back)
//! is no rotation: it is followed again from where it was left, nothing read twice. Up to 1 024
//! such files are remembered, within one run. A file renamed to another name the patterns
//! match is simply followed there. Files that cannot be listed, opened or read are reported as
//! [`TailEvent::Error`] with the path and the reason, once until the reason changes, and tried
//! again at every poll; the other files are followed meanwhile. [`Tailer::status`] tells which
//! patterns have files followed and which paths fail.
//!
//! # Exactly once across restarts
//!
//! Every batch carries its file's identity and the offset just past its last line; the
//! consumer checkpoints positions *together with the state those lines produced*:
//!
//! 1. At startup, read the checkpoint: [`Checkpoint::read`] with the configuration
//!    fingerprint (patterns, format…). `Ok(None)`: first start, [`Tailer::new`]. `Ok(Some)`:
//!    restore the state from `checkpoint.state` and [`Tailer::resume`] with
//!    `checkpoint.files`. An error: refuse to start and name it; the operator may reset the
//!    checkpoint.
//! 2. Keep a [`Positions`] made from the same restored files (`Positions::new(files)`, empty for
//!    a first start).
//! 3. For each message, in the order received: apply a batch's lines (and its `too_long`
//!    lines) to the state, then pass the message to [`Positions::observe`]; pass events too
//!    (`Opened` records a position before any line, `Closed` and `Missing` forget one). Count
//!    a `Rotated` with the `Opened` that follows it: a checkpoint between the two still holds
//!    the old position, from which a restart reports the rotation again.
//! 4. Every few seconds and at shutdown, at a point where every observed message is in the
//!    state and no unobserved one is, write `Checkpoint { config, files: positions.files(),
//!    state }` with [`Checkpoint::write_atomic`]. With parallel workers, that point is after
//!    every batch handed out so far has been merged.
//! 5. To stop, set the shutdown flag, join the `edge-tail` thread, drain or drop the receiver,
//!    then write the last checkpoint. Messages the consumer never observed are simply read
//!    again next time.
//!
//! On resume, a checkpointed file found at its path, at another matching path, or under
//! another name in its directory (`access.log.1`, renamed while stopped) continues at its
//! offset, then the new file at its old path is read from its start. Any other file is read
//! from its start: every followed file is in the checkpoint (from its `Opened` event on), so
//! a file absent from it appeared after it was written. A checkpointed file that no longer
//! exists is reported as [`TailEvent::Missing`]: the lines it received after the checkpoint
//! are lost.
//!
//! # Limitations
//!
//! - **copytruncate loses lines by design**: lines written between the copy and the truncation
//!   are only in the copy, and a line half written at that moment is cut in two; prefer rename
//!   rotation. Patterns must not match the copies (`access.log`, not `access.log*`), or they
//!   are read again as new files. A truncation followed by rewriting at least as many bytes,
//!   with the same first 256 bytes and a newline just before the old offset, before the next
//!   poll is not detected.
//! - Patterns should not match compressed rotated files (`*.gz`): they would be read as lines.
//! - A file deleted while edge-parser is stopped loses its unread lines (reported as
//!   `Missing`), and so does one that is created and rotated away between two polls under a
//!   name the patterns do not match. A file rotated away is read until [`rotate_wait`]
//!   after its last growth (deleted ones until their end): a writer that appends to it later
//!   loses those lines.
//! - After a restart, a rotation whose old file had already been closed before the checkpoint
//!   is not reported when the new file appears (its lines are read all the same).
//! - When a file cannot be identified again after a restart (the same inode with different
//!   first bytes), `inode_reuse` and `copytruncate` cannot be told apart: a shorter file is
//!   reported as `copytruncate`, one with other first bytes as `inode_reuse`.
//! - Unix only (device and inode numbers).
//!
//! [`rotate_wait`]: TailConfig::rotate_wait

// The checkpoint envelope and the consumer's positions.
mod checkpoint;
// Glob patterns expanded into paths.
mod discover;
// File identity: device, inode and a fingerprint of the first bytes.
mod fingerprint;
// The state machine: which files are followed, how far each was read.
mod follow;
// What each watched path names now: rescans, files that left their path.
mod paths;
// The lines of one file, through the shared line reader.
mod reader;
// Resuming from a checkpoint's positions.
mod restore;
// Errors reported once, and the status readiness is judged on.
mod status;
// The `edge-tail` thread and its bounded channel.
mod thread;
// What a tailer is configured with and what it delivers.
mod types;

pub use checkpoint::{
    CHECKPOINT_MAGIC, CHECKPOINT_VERSION, Checkpoint, CheckpointError, FilePosition,
    MAX_CHECKPOINT_BYTES, Positions,
};
#[cfg(feature = "serve")]
pub(crate) use checkpoint::{Flush, sync_to_disk, write_document_atomic};
#[cfg(test)]
pub(crate) use checkpoint::{reseal, seal};
pub use fingerprint::{FINGERPRINT_BYTES, FileIdentity, Fingerprint};
pub use follow::Tailer;
pub use status::{PatternStatus, StatusHandle, TailStatus};
pub use types::{
    Batch, DEFAULT_BATCH_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_LINE_BYTES, DEFAULT_POLL_INTERVAL,
    DEFAULT_RESCAN_INTERVAL, DEFAULT_ROTATE_WAIT, RotationKind, TailConfig, TailError, TailEvent,
    TailMessage, TooLong,
};

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod restart_tests;
#[cfg(test)]
mod test_helpers;
#[cfg(test)]
mod tests;

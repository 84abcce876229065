//! Resuming from a checkpoint: each checkpointed file found again continues at its offset.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::checkpoint::FilePosition;
use super::discover::regular_files_in;
use super::fingerprint::{FileIdentity, Fingerprint, at_line_start, key_of, read_head};
use super::follow::{Out, Tailer, Tracked};
use super::types::{RotationKind, TailEvent};
use crate::read::LineReader;

impl Tailer {
    /// Picks up the checkpoint's positions at the first poll.
    pub(super) fn restore(
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

    pub(super) fn retry_waiting(
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

    pub(super) fn missing(&mut self, position: &FilePosition, out: &mut Out<'_>) {
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
    pub(super) fn resume_file(
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
}

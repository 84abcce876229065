//! What each watched path names now: rescans of the patterns, files that left their path.

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::io;
use std::mem;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::fingerprint::{FileKey, key_of};
use super::follow::{Departed, MAX_DEPARTED, Out, Tailer};

impl Tailer {
    /// Expands the patterns again.
    pub(super) fn rescan(&mut self, now: Instant, out: &mut Out<'_>) {
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
    pub(super) fn check_paths(
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
    pub(super) fn depart(&mut self, index: usize, now: Instant) {
        let file = &mut self.files[index];
        file.on_path = false;
        file.departed_at = Some(now);
        let path = Arc::clone(&file.path);
        let key = file.identity.key();
        self.remember_departure(path, key, None);
        self.status_dirty = true;
    }

    pub(super) fn remember_departure(
        &mut self,
        path: Arc<Path>,
        key: FileKey,
        deleted: Option<bool>,
    ) {
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
}

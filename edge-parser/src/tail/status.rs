//! Which patterns have files followed and which paths fail: the status a readiness endpoint
//! shows, and the errors reported once until their reason changes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::follow::{Out, Tailer};
use super::types::TailEvent;

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
    pub(super) polls: Arc<AtomicU64>,
    pub(super) patterns: Arc<Mutex<Vec<PatternStatus>>>,
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

impl Tailer {
    pub(super) fn report_error(&mut self, path: &Arc<Path>, reason: String, out: &mut Out<'_>) {
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

    pub(super) fn clear_error(&mut self, path: &Path) {
        if self.errors.remove(path).is_some() {
            self.status_dirty = true;
        }
    }

    pub(super) fn publish_status(&mut self) {
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

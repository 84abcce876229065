//! Shared by the tail tests: a temporary directory per test and helpers to write log files and
//! collect what a [`Tailer`] delivers.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Batch, RotationKind, TailEvent, TailMessage, Tailer};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A directory of its own for one test, removed when dropped.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty directory whose name contains `name`, unique to this process and call.
    pub(crate) fn new(name: &str) -> Self {
        let unique = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join("vantage-edge-tail-tests")
            .join(format!("{name}-{}-{unique}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).expect("removing a stale test directory");
        }
        fs::create_dir_all(&path).expect("creating the test directory");
        Self { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A glob matching `*.log` in the directory.
    pub(crate) fn glob(&self, glob: &str) -> String {
        format!("{}/{glob}", self.path.display())
    }

    /// Replaces the contents of `name`.
    pub(crate) fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, contents).expect("writing a test file");
        path
    }

    /// Appends to `name`, creating it if needed.
    pub(crate) fn append(&self, name: &str, contents: impl AsRef<[u8]>) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.join(name))
            .expect("opening a test file for appending");
        file.write_all(contents.as_ref())
            .expect("appending to a test file");
    }

    pub(crate) fn rename(&self, from: &str, to: &str) {
        fs::rename(self.join(from), self.join(to)).expect("renaming a test file");
    }

    pub(crate) fn remove(&self, name: &str) {
        fs::remove_file(self.join(name)).expect("removing a test file");
    }

    /// Copies `name` to `copy` and truncates `name` in place, as logrotate's `copytruncate`.
    pub(crate) fn copy_truncate(&self, name: &str, copy: &str) {
        fs::copy(self.join(name), self.join(copy)).expect("copying a test file");
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.join(name))
            .expect("truncating a test file");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Everything one or more polls delivered.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    pub(crate) messages: Vec<TailMessage>,
}

impl Delivered {
    /// Polls until the tailer reports nothing left to read right now.
    pub(crate) fn poll(tailer: &mut Tailer) -> Self {
        let mut delivered = Self::default();
        while tailer.poll(|message| delivered.messages.push(message)) {}
        delivered
    }

    pub(crate) fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.messages.iter().filter_map(|message| match message {
            TailMessage::Lines(batch) => Some(batch),
            TailMessage::Event(_) => None,
        })
    }

    pub(crate) fn events(&self) -> impl Iterator<Item = &TailEvent> {
        self.messages.iter().filter_map(|message| match message {
            TailMessage::Event(event) => Some(event),
            TailMessage::Lines(_) => None,
        })
    }

    /// Every delivered line, without its newline, in delivery order.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for batch in self.batches() {
            assert!(
                batch.bytes.is_empty() || batch.bytes.ends_with(b"\n"),
                "a batch holds whole lines"
            );
            for line in batch.bytes.split_inclusive(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                lines.push(String::from_utf8_lossy(line).into_owned());
            }
        }
        lines
    }

    /// The kinds of the rotations reported, in order.
    pub(crate) fn rotations(&self) -> Vec<RotationKind> {
        self.events()
            .filter_map(|event| match event {
                TailEvent::Rotated { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    /// The file names of the errors reported, with their reasons.
    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        self.events()
            .filter_map(|event| match event {
                TailEvent::Error { path, reason } => Some((file_name(path), reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// The file names and offsets of the files opened, in order.
    pub(crate) fn opened(&self) -> Vec<(String, u64)> {
        self.events()
            .filter_map(|event| match event {
                TailEvent::Opened { path, offset, .. } => Some((file_name(path), *offset)),
                _ => None,
            })
            .collect()
    }
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

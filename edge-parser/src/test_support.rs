//! Helpers shared by the crate's unit tests.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

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
            .join("vantage-edge-tests")
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

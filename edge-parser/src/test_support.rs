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

/// The user (and group) a test runs as when it must not be root: `nobody`.
const UNPRIVILEGED_ID: u32 = 65_534;
/// Set in the environment of a test run again as [`UNPRIVILEGED_ID`].
const UNPRIVILEGED_MARK: &str = "VANTAGE_TEST_UNPRIVILEGED";

/// Whether `path`, a file its test made and took every permission from, can be opened
/// anyway: the test runs as root (or with `CAP_DAC_OVERRIDE`), where permissions do not apply.
/// Run again with [`rerun_unprivileged`] (a test run that way that still has privileges fails).
pub(crate) fn permissions_ignored(path: &Path) -> bool {
    let ignored = fs::File::open(path).is_ok();
    assert!(
        !(ignored && std::env::var_os(UNPRIVILEGED_MARK).is_some()),
        "run as uid {UNPRIVILEGED_ID}, permissions still do not apply"
    );
    ignored
}

/// Runs the test `name` (its full path, `tail::tests::…`) again in this test binary as user
/// and group 65534 with no supplementary group, through util-linux `setpriv`, and fails if it
/// fails. Without `setpriv` it fails under CI (`CI` set) and is skipped with a note elsewhere.
pub(crate) fn rerun_unprivileged(name: &str) {
    let Some(setpriv) = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.exists())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} needs setpriv (util-linux) to run unprivileged as root: CI must have it"
        );
        eprintln!("note: {name} skipped: root, and no setpriv to run it unprivileged");
        return;
    };
    // A home the unprivileged run can write its temporary directories in, and this binary
    // where it can run it.
    let home = TempDir::new("unprivileged");
    std::os::unix::fs::chown(home.path(), Some(UNPRIVILEGED_ID), Some(UNPRIVILEGED_ID))
        .expect("giving the test directory to the unprivileged user");
    let binary = std::env::current_exe().expect("the test binary");
    let binary = if reachable_by_anyone(&binary) {
        binary
    } else {
        let copy = home.join("tests");
        fs::copy(&binary, &copy).expect("copying the test binary where anyone can run it");
        copy
    };
    let output = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&binary)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("TMPDIR", home.path())
        .env(UNPRIVILEGED_MARK, "1")
        .output()
        .expect("running setpriv");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} as uid {UNPRIVILEGED_ID}: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Whether every directory above `path` can be searched, and `path` run, by anyone.
fn reachable_by_anyone(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| fs::metadata(path).map_or(0, |m| m.permissions().mode());
    mode(path) & 0o001 != 0
        && path
            .ancestors()
            .skip(1)
            .filter(|dir| !dir.as_os_str().is_empty())
            .all(|dir| mode(dir) & 0o001 != 0)
}

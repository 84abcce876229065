//! Helpers shared by the integration tests: a temporary directory per test and a runner for the
//! real `edge-parser` binary.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Every wait in these tests is bounded by this.
pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(15);

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_edge-parser");

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A directory of its own for one test, removed when dropped.
#[derive(Debug)]
pub(crate) struct Dir {
    path: PathBuf,
}

impl Dir {
    /// A new empty directory whose name contains `name`, unique to this process and call.
    pub(crate) fn new(name: &str) -> Self {
        let unique = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join("vantage-edge-tests")
            .join(format!("{name}-{}-{unique}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).expect("removing a stale test directory");
        }
        std::fs::create_dir_all(&path).expect("creating the test directory");
        Self { path }
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside the directory.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub(crate) fn create(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).expect("writing a test file");
        path
    }

    /// Writes `contents` gzip-compressed to `name` inside the directory and returns its path.
    pub(crate) fn create_gz(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        self.create(name, gzip(contents.as_ref()))
    }

    /// A command running `edge-parser` in this directory.
    pub(crate) fn command(&self) -> TestCommand {
        TestCommand::new(&self.path, &[])
    }

    /// A command running `edge-parser` in this directory under `wrapper` (a program and its
    /// arguments, such as `prlimit --nofile=256` or `setpriv --reuid=65534`).
    pub(crate) fn command_via(&self, wrapper: &[&str]) -> TestCommand {
        TestCommand::new(&self.path, wrapper)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The program `name` from `PATH` or the sbin directories (where Debian installs nginx and
/// HAProxy, often not on a user's `PATH`). `None`, after saying why, when it is missing
/// outside CI; a failure under CI.
pub(crate) fn require(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed: CI must install it (see .ci/run)"
        );
        eprintln!("skipping: {name} is not installed (on PATH or in /usr/sbin)");
    }
    found
}

/// A loopback port that was free a moment ago, for a server that binds it later (Traefik,
/// nginx, a backend that goes down and comes back).
///
/// Not from the kernel's ephemeral range, where `bind(0)` would pick it: outgoing connections
/// take their source ports there, and the tests make thousands, so one could take the port
/// before the server binds it (seen in CI: Traefik's "address already in use"). Below that
/// range, each call of the process takes the next port, starting from an offset of the process
/// id so that runs after one another do not reuse the same ports.
pub(crate) fn free_port() -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOWEST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let ports = ephemeral.saturating_sub(LOWEST);
    if ports < 1_000 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        return listener.local_addr().expect("a local address");
    }
    let start = std::process::id() % ports;
    for _ in 0..ports {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % ports;
        let port = u16::try_from(LOWEST + offset).expect("below the ephemeral range");
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return listener.local_addr().expect("a local address");
        }
    }
    panic!("no free loopback port between {LOWEST} and {ephemeral}");
}

/// `data` compressed as one gzip member.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("compressing in memory");
    encoder.finish().expect("compressing in memory")
}

/// A run of the `edge-parser` binary being built: arguments, standard input, directory.
#[derive(Debug)]
pub(crate) struct TestCommand {
    command: Command,
    stdin: Vec<u8>,
}

impl TestCommand {
    fn new(dir: &Path, wrapper: &[&str]) -> Self {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        command
            .current_dir(dir)
            // The tests check the binary's own defaults, whatever the caller's environment says.
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        Self {
            command,
            stdin: Vec::new(),
        }
    }

    /// Adds arguments.
    pub(crate) fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Adds one argument.
    pub(crate) fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.command.arg(arg);
        self
    }

    /// What the binary reads on standard input (nothing by default).
    pub(crate) fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = bytes.into();
        self
    }

    /// Runs the binary to its end, feeding standard input, within [`WAIT_LIMIT`].
    pub(crate) fn run(&mut self) -> Outcome {
        let mut child = self.spawn(Stdio::piped());
        let stdin = std::mem::take(&mut self.stdin);
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A thread feeds standard input so that a large input cannot deadlock against output.
        let feeder = std::thread::spawn(move || {
            // The binary may stop reading early (for example on a usage error).
            let _ = pipe.write_all(&stdin);
        });
        let output = wait_with_output(child);
        feeder.join().expect("the stdin feeder does not panic");
        output
    }

    /// Runs the binary to its end with standard output going to the file at `path` (for
    /// outputs that are large or not UTF-8), within [`WAIT_LIMIT`].
    pub(crate) fn run_to_file(&mut self, path: &Path) -> Outcome {
        let file = std::fs::File::create(path).expect("creating the output file");
        let child = self
            .command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting edge-parser");
        wait_with_output(child)
    }

    /// Runs the binary, expecting exit code 0, and returns its standard output.
    pub(crate) fn stdout(&mut self) -> String {
        let outcome = self.run();
        assert_eq!(outcome.code, 0, "{outcome}");
        outcome.stdout
    }

    /// Runs the binary, expecting exit code 0 and one JSON document on standard output.
    pub(crate) fn json(&mut self) -> serde_json::Value {
        let stdout = self.stdout();
        serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
    }

    /// Starts the binary with piped standard output and error and the given standard input.
    pub(crate) fn spawn(&mut self, stdin: Stdio) -> Child {
        self.command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting edge-parser")
    }
}

/// Waits for `child` within [`WAIT_LIMIT`] (killing it past that) and collects its output.
pub(crate) fn wait_with_output(mut child: Child) -> Outcome {
    let stdout = child.stdout.take().map(read_in_thread);
    let stderr = child.stderr.take().map(read_in_thread);
    let status = wait_bounded(&mut child, "edge-parser");
    let collect = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        let bytes = reader.map_or_else(Vec::new, |r| r.join().expect("reader thread"));
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

/// Waits for `child` (the program `name`) to exit, killing it and failing the test after
/// [`WAIT_LIMIT`].
pub(crate) fn wait_bounded(child: &mut Child, name: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child process") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {WAIT_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `signal` (a name such as `TERM` or `USR1`) to the process `pid` with `kill`; fails
/// the test if it cannot be sent.
pub(crate) fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill -{signal} {pid} failed");
}

fn read_in_thread(
    mut reader: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).expect("reading a pipe");
        bytes
    })
}

/// How a run ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The exit code (-1 when killed by a signal).
    pub(crate) code: i32,
    /// Standard output (lossily decoded; empty when it went to a file).
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

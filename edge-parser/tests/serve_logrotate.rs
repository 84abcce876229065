//! A Traefik-like setup without Traefik: a real nginx on a loopback port writes its access log
//! (`combined` plus `$request_time`: `nginx-combined-rt`), a real `logrotate` rotates it
//! between bursts of requests, and `edge-parser serve` follows it. At the end, `/metrics`
//! counts exactly what the client sent, per route and status, and `promtool` accepts the
//! exposition.
//!
//! Two rotation styles, as deployed:
//!
//! - `copytruncate`: logrotate copies the log and truncates it in place; nginx keeps writing to
//!   the same file. Lines written between the copy and the truncation, or not read by then, are
//!   lost by design (see the `tail` module docs), so the test sends nothing while logrotate
//!   runs and waits for `serve` to have read everything before rotating.
//! - `create` with a `postrotate` that sends nginx `USR1` (reopen the logs): logrotate renames
//!   the log and creates an empty one; nginx writes to the renamed file until it reopens, and
//!   `serve` reads that file to its end through its open handle.
//!
//! nginx and logrotate come from Debian packages (`.ci/run` installs them). Without one, the
//! test says so and passes, except under CI (`CI` set), where a missing tool is a failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proxies::{Proxy, run_nginx};
use crate::serve_util::{Server, get, poll_until, promtool_check};
use crate::util::{Dir, free_port, require};

/// How long `/metrics` may take to show what was sent.
const CONVERGE_LIMIT: Duration = Duration::from_secs(10);
/// Requests per burst.
const BURST: u64 = 45;
/// Bursts, with a rotation between two bursts.
const BURSTS: u64 = 3;

/// The nginx `log_format`: `combined` followed by `$request_time`.
const COMBINED_RT: &str = r#"'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time'"#;

/// One request: its path and the status nginx answers it with.
fn request(n: u64) -> (String, &'static str, u16) {
    // The query makes every logged line unique; routes are normalised without it.
    match n % 5 {
        0 => (format!("/ok?n={n}"), "/ok", 200),
        1 => (format!("/users/{}?n={n}", 1000 + n), "/users/{id}", 200),
        2 => (format!("/missing?n={n}"), "/missing", 404),
        3 => (format!("/fail?n={n}"), "/fail", 500),
        _ => (format!("/limited?n={n}"), "/limited", 429),
    }
}

/// nginx answering every route itself (`return`), logging to `access.log` in `dir`.
fn start_nginx(nginx: &Path, dir: &Dir) -> (Proxy, SocketAddr) {
    let addr = free_port();
    let root = dir.path().display().to_string();
    let http = format!(
        r#"log_format combined_rt {COMBINED_RT};
    server {{
        listen {addr};
        access_log {root}/access.log combined_rt;
        location = /ok {{ return 200 "ok\n"; }}
        location /users/ {{ return 200 "user\n"; }}
        location = /missing {{ return 404; }}
        location = /fail {{ return 500; }}
        location = /limited {{ return 429; }}
    }}"#
    );
    (run_nginx(nginx, dir, addr, &http), addr)
}

/// Runs `logrotate -f -s STATE CONFIG`; fails the test unless it succeeds.
fn logrotate(logrotate: &Path, dir: &Dir, config: &Path) {
    let output = Command::new(logrotate)
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(config)
        .current_dir(dir.path())
        .output()
        .expect("running logrotate");
    assert!(
        output.status.success(),
        "logrotate failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes the logrotate configuration for `log` with the given directives.
fn logrotate_config(dir: &Dir, log: &Path, directives: &str) -> PathBuf {
    let config = dir.create(
        "logrotate.conf",
        format!(
            "{} {{\n    rotate 5\n    nocompress\n    missingok\n{directives}}}\n",
            log.display()
        ),
    );
    // Run as root, logrotate refuses a configuration others may write, and a log whose
    // directory they may write; the umask does not decide it.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))
        .expect("setting the configuration's mode");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("setting the directory's mode");
    config
}

/// Sends bursts of requests to nginx and rotates its log with logrotate (configured with
/// `directives`) between two bursts; after each burst `/metrics` must count exactly what was
/// sent, and `kind` rotations as many as logrotate did.
fn follow_rotations(directives: &str, kind: &str) {
    let (Some(nginx), Some(logrotate_bin)) = (require("nginx"), require("logrotate")) else {
        return;
    };
    let dir = Dir::new(&format!("serve-logrotate-{kind}"));
    let log = dir.join("access.log");
    let config = logrotate_config(
        &dir,
        &log,
        &directives.replace("DIR", &dir.path().display().to_string()),
    );
    let (proxy, addr) = start_nginx(&nginx, &dir);
    let log_arg = log.display().to_string();
    let checkpoint = dir.join("checkpoint.json").display().to_string();
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "nginx-combined-rt",
            "--checkpoint",
            &checkpoint,
            "--poll-interval",
            "50ms",
            "--from-start",
        ],
    );
    server.wait_ready();

    let mut sent: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut n = 0;
    for burst in 0..BURSTS {
        if burst > 0 {
            // Nothing is in flight and every line sent so far is in /metrics (checked at the
            // end of the previous burst): a copytruncate loses nothing.
            logrotate(&logrotate_bin, &dir, &config);
            // The next burst waits until the rotation is seen, so that a truncated file
            // rewritten past its old size before a poll cannot go unnoticed.
            let rotated = poll_until(CONVERGE_LIMIT, || {
                let seen = server
                    .metrics()
                    .count("edge_file_rotations_total", &[("kind", kind)]);
                if seen == burst {
                    Ok(())
                } else {
                    Err(format!("{seen} {kind} rotations seen, {burst} done"))
                }
            });
            if let Err(error) = rotated {
                panic!("{error}\n--- server log ---\n{}", server.stderr());
            }
        }
        for _ in 0..BURST {
            let (path, route, status) = request(n);
            n += 1;
            let response = get(addr, &path)
                .unwrap_or_else(|error| panic!("GET {path}: {error}\n{}", proxy.output()));
            assert_eq!(response.status, status, "GET {path}");
            *sent
                .entry((route.to_owned(), status.to_string()))
                .or_default() += 1;
        }
        let counted = poll_until(CONVERGE_LIMIT, || {
            let metrics = server.metrics();
            let counts = metrics.sum_by_pair("edge_requests_total", ["router", "code"]);
            if counts == sent {
                Ok(metrics)
            } else {
                Err(format!("served {counts:?}"))
            }
        });
        let metrics = counted.unwrap_or_else(|error| {
            panic!(
                "after burst {burst}: sent {sent:?}, {error}\n--- server log ---\n{}",
                server.stderr()
            )
        });
        assert_eq!(
            metrics.count("edge_lines_total", &[("result", "parsed")]),
            n,
            "every line is a request"
        );
        assert_eq!(
            metrics.count("edge_lines_total", &[("result", "malformed")]),
            0
        );
        let rotations: BTreeMap<String, u64> = (burst > 0)
            .then(|| (kind.to_owned(), burst))
            .into_iter()
            .collect();
        assert_eq!(
            metrics.sum_by_label("edge_file_rotations_total", "kind"),
            rotations,
            "no other rotation is seen"
        );
        assert_eq!(
            metrics.sum_by_label("edge_requests_total", "method"),
            BTreeMap::from([("GET".to_owned(), n)])
        );
        if burst == BURSTS - 1 {
            promtool_check(&metrics.text);
        }
    }
    assert_eq!(server.terminate(), 0);
    drop(proxy);

    // logrotate did rotate: every line sent is in the log or one of its two rotated files.
    // (How they are spread depends on when nginx reopened its log, with `create`.)
    let mut logged = 0;
    for name in ["access.log", "access.log.1", "access.log.2"] {
        let text = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|error| panic!("reading {name}: {error}"));
        logged += text.lines().count() as u64;
    }
    assert_eq!(logged, n);
    assert!(!dir.join("access.log.3").exists());
}

#[test]
fn serve_counts_nginx_logs_across_logrotate_copytruncate() {
    follow_rotations("    copytruncate\n", "copytruncate");
}

#[test]
fn serve_counts_nginx_logs_across_logrotate_create_and_reopen() {
    follow_rotations(
        "    create 0644\n    postrotate\n        kill -USR1 $(cat DIR/nginx.pid)\n    endscript\n",
        "rename",
    );
}

//! `serve` where a sidecar lives: started before its proxy wrote anything, with few file
//! descriptors, a clock that jumps, a checkpoint directory it cannot write, hostile clients,
//! and kill -9 while Prometheus scrapes. One test per way it used to fail, through the real
//! binary over loopback, each asserting the exact outcome.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve_util::{
    Scraper, Server, append, clf_time, get, poll_until, request, traefik_lines, unix_now,
};
use crate::util::{Dir, WAIT_LIMIT};

/// A Traefik line logged at `unix_time`.
fn line_at(n: u64, unix_time: i64) -> String {
    format!(
        "10.0.0.1 - - [{}] \"GET /r/{n} HTTP/1.1\" 200 5 \"-\" \"vantage-tests/1.0\" {n} \"api@docker\" \"http://10.1.0.1:8080\" 3ms\n",
        clf_time(unix_time)
    )
}

/// Whether this process runs as root (whom file permissions do not stop).
fn is_root() -> bool {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .expect("running id -u");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// The wrapper that runs the binary as an unprivileged user when the tests run as root (as
/// under CI), so that permissions mean something; `None` (after a note) where it cannot, which
/// fails under CI.
fn unprivileged() -> Option<Vec<&'static str>> {
    if !is_root() {
        return Some(Vec::new());
    }
    let setpriv = Command::new("setpriv").arg("--version").output();
    if setpriv.is_ok_and(|output| output.status.success()) {
        return Some(vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "setpriv (util-linux) is needed to run as an unprivileged user under CI"
    );
    eprintln!("note: running as root without setpriv: the permission test is skipped");
    None
}

#[test]
fn auto_format_waits_for_the_first_lines_of_an_empty_missing_or_unmatched_log() {
    for case in ["empty", "missing", "unmatched glob"] {
        let dir = Dir::new("serve-auto-wait");
        let log = dir.join("access.log");
        if case == "empty" {
            dir.create("access.log", "");
        }
        let pattern = if case == "unmatched glob" {
            format!("{}/*.log", dir.path().display())
        } else {
            log.display().to_string()
        };
        let server = Server::start(&dir, &["--log", &pattern, "--poll-interval", "50ms"]);
        let ready = server.get("/ready");
        assert_eq!(ready.status, 503, "{case}: {}", ready.text());
        assert_eq!(
            ready.json()["reasons"],
            serde_json::json!([format!(
                "--format auto: waiting for a first line in {pattern}"
            )]),
            "{case}"
        );
        assert_eq!(server.get("/health").status, 200, "{case}");
        assert_eq!(server.get("/metrics").status, 200, "{case}");

        // The proxy writes its first lines: detected, and every one of them counted.
        append(&log, &traefik_lines(1, 6));
        let summary = server.wait_taken_in(6);
        assert_eq!(summary["format"], "traefik-common", "{case}");
        server.wait_ready();
        assert!(
            server.stderr().contains("--format auto: detected"),
            "{case}: {}",
            server.stderr()
        );
        assert_eq!(server.terminate(), 0, "{case}");
    }
}

#[test]
fn idle_connections_past_the_descriptor_limit_cannot_stop_serve() {
    let dir = Dir::new("serve-idle-flood");
    let log = dir.create("access.log", traefik_lines(1, 3));
    let log_arg = log.display().to_string();
    // 256 descriptors: a quarter for files, 128 for connections, the rest kept.
    let server = Server::start_via(
        &dir,
        &["prlimit", "--nofile=256:256"],
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--from-start",
        ],
    );
    let idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect_timeout(&server.addr(), WAIT_LIMIT).expect("connecting"))
        .collect();
    // Every idle connection is accepted before this one: the oldest idle ones make room.
    let metrics = server.metrics();
    assert_eq!(metrics.count("edge_http_connections_open", &[]), 128);
    assert_eq!(
        metrics.count("edge_http_connections_accepted_total", &[]),
        401
    );
    assert_eq!(
        metrics.count("edge_http_connections_evicted_total", &[]),
        273
    );
    assert_eq!(metrics.count("edge_http_connections_refused_total", &[]), 0);
    assert_eq!(metrics.count("edge_http_accept_errors_total", &[]), 0);
    for _ in 0..20 {
        assert_eq!(server.get("/health").status, 200);
    }
    drop(idle);
    assert_eq!(server.terminate(), 0);
}

#[test]
fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let dir = Dir::new("serve-half-request");
    let log = dir.create("access.log", "");
    let log_arg = log.display().to_string();
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--header-timeout",
            "500ms",
        ],
    );
    let mut stream = TcpStream::connect_timeout(&server.addr(), WAIT_LIMIT).expect("connecting");
    stream.write_all(b"GET /metr").expect("sending half a line");
    stream
        .set_read_timeout(Some(WAIT_LIMIT))
        .expect("a read timeout");
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    assert!(
        read.is_ok(),
        "still open after {:?}: {read:?}",
        started.elapsed()
    );
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(server.get("/health").status, 200);
    assert_eq!(server.terminate(), 0);
}

#[test]
fn a_glob_matching_more_files_than_descriptors_is_followed_up_to_its_share() {
    let dir = Dir::new("serve-many-files");
    for n in 0..300 {
        dir.create(&format!("{n:03}.log"), traefik_lines(n, 1));
    }
    let pattern = format!("{}/*.log", dir.path().display());
    let server = Server::start_via(
        &dir,
        &["prlimit", "--nofile=256:256"],
        &[
            "--log",
            &pattern,
            "--format",
            "traefik-common",
            "--from-start",
        ],
    );
    // A quarter of the descriptors go to files: 64 followed, the others reported.
    server.wait_taken_in(64);
    let metrics = server.wait_parsed(64);
    assert_eq!(metrics.count("edge_files_open", &[]), 64);
    // The status is published at the end of the tailer's first poll, after its batches.
    let ready = poll_until(WAIT_LIMIT, || {
        let ready = server.get("/ready").json();
        if ready["failing"]
            .as_array()
            .is_some_and(|failing| !failing.is_empty())
        {
            Ok(ready)
        } else {
            Err(format!("no failing path yet: {ready}"))
        }
    })
    .unwrap_or_else(|error| panic!("{error}"));
    let failing = ready["failing"].as_array().expect("failing");
    assert_eq!(failing.len(), 236, "{ready}");
    assert_eq!(
        failing[0]["reason"],
        "not followed: 64 files are followed already (the cap)"
    );
    assert_eq!(server.get("/health").status, 200);
    assert_eq!(server.terminate(), 0);
}

#[test]
fn a_line_from_the_future_neither_empties_the_windows_nor_pins_the_lag() {
    let dir = Dir::new("serve-future-line");
    let log = dir.join("access.log");
    let now = unix_now();
    let mut text = line_at(1, now + 3600);
    for n in 2..=5 {
        text.push_str(&line_at(n, now - 2));
    }
    append(&log, &text);
    let (log_arg, checkpoint) = (
        log.display().to_string(),
        dir.join("cp.json").display().to_string(),
    );
    let args = [
        "--log",
        &log_arg,
        "--format",
        "traefik-common",
        "--from-start",
        "--checkpoint",
        &checkpoint,
        "--checkpoint-interval",
        "100ms",
    ];
    let server = Server::start(&dir, &args);
    let summary = server.wait_taken_in(5);
    let minute = &summary["windows"][0];
    assert_eq!(minute["window"], "1m");
    assert_eq!(minute["groups"][0]["requests"], 5, "{summary}");
    assert_eq!(minute["groups"][0]["stale"], false);
    assert_eq!(summary["clock_skew"]["ahead"], 1);
    assert_eq!(summary["clock_skew"]["samples"][0]["line"], 1);
    assert_eq!(
        summary["last_line_timestamp"],
        serde_json::json!((now - 2) as f64)
    );
    let metrics = server.wait_parsed(5);
    assert_eq!(
        metrics.value("edge_last_line_timestamp_seconds", &[]),
        Some((now - 2) as f64)
    );
    assert!(
        metrics
            .value("edge_lag_seconds", &[])
            .is_some_and(|lag| (2.0..60.0).contains(&lag)),
        "{:?}",
        metrics.value("edge_lag_seconds", &[])
    );
    assert_eq!(
        metrics.count("edge_clock_skew_lines_total", &[("direction", "ahead")]),
        1
    );
    assert_eq!(server.terminate(), 0);

    // After a restart the future timestamp in the checkpoint pins nothing either.
    let server = Server::start(&dir, &args);
    let metrics = server.wait_parsed(5);
    assert_eq!(metrics.value("edge_last_line_timestamp_seconds", &[]), None);
    append(&log, &line_at(6, now - 1));
    let metrics = server.wait_parsed(6);
    assert_eq!(
        metrics.value("edge_last_line_timestamp_seconds", &[]),
        Some((now - 1) as f64)
    );
    assert_eq!(server.terminate(), 0);
}

#[test]
fn a_checkpoint_that_cannot_be_written_is_counted_never_shown_as_success_and_fails_the_exit() {
    let Some(wrapper) = unprivileged() else {
        return;
    };
    let dir = Dir::new("serve-read-only");
    let log = dir.create("access.log", traefik_lines(1, 3));
    let read_only = dir.join("read-only");
    std::fs::create_dir(&read_only).expect("creating the directory");
    let mut permissions = std::fs::metadata(&read_only).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&read_only, permissions).expect("chmod");
    let (log_arg, checkpoint) = (
        log.display().to_string(),
        read_only.join("cp.json").display().to_string(),
    );
    let server = Server::start_via(
        &dir,
        &wrapper,
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--from-start",
            "--checkpoint",
            &checkpoint,
            "--checkpoint-interval",
            "100ms",
        ],
    );
    server.wait_taken_in(3);
    let metrics = poll_until(WAIT_LIMIT, || {
        let metrics = server.metrics();
        if metrics.count("edge_checkpoint_errors_total", &[]) >= 3 {
            Ok(metrics)
        } else {
            Err("waiting for failed checkpoints".to_owned())
        }
    })
    .unwrap_or_else(|error| panic!("{error}\n{}", server.stderr()));
    assert_eq!(metrics.count("edge_checkpoint_writes_total", &[]), 0);
    assert_eq!(
        metrics.value("edge_checkpoint_last_success_timestamp_seconds", &[]),
        None
    );
    // Nothing is durable: nothing is shown that a restart could not continue from.
    assert_eq!(
        metrics.count("edge_lines_total", &[("result", "parsed")]),
        0
    );
    let log_text = server.stderr();
    assert!(log_text.contains("checkpoint not written"), "{log_text}");
    let stderr_before = server.stderr();
    let code = server.terminate();
    assert_eq!(code, 1, "{stderr_before}");
}

#[test]
fn the_snapshot_needs_a_listed_token_and_every_request_for_it_is_audited() {
    let dir = Dir::new("serve-token");
    let log = dir.create("access.log", traefik_lines(1, 2));
    let tokens = dir.create(
        "tokens",
        "# who may download data\nops:0123456789abcdef0123\n",
    );
    let (log_arg, tokens_arg) = (log.display().to_string(), tokens.display().to_string());
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--from-start",
            "--auth-token-file",
            &tokens_arg,
        ],
    );
    server.wait_taken_in(2);
    let addr = server.addr();
    let anonymous = request(addr, "GET", "/api/snapshot", &[]).expect("answer");
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let wrong = request(
        addr,
        "GET",
        "/api/snapshot",
        &[("Authorization", "Bearer 0123456789abcdef0124")],
    )
    .expect("answer");
    assert_eq!(wrong.status, 401);
    let allowed = request(
        addr,
        "GET",
        "/api/snapshot",
        &[("Authorization", "Bearer 0123456789abcdef0123")],
    )
    .expect("answer");
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.json()["state"]["aggregate"]["lines"]["parsed"], 2);
    // Scrapers and probes need no token.
    for open in ["/metrics", "/health", "/api/summary"] {
        assert_eq!(get(addr, open).expect("answer").status, 200, "{open}");
    }
    let log_text = server.stderr();
    let audit: Vec<&str> = log_text.lines().filter(|l| l.contains(" audit ")).collect();
    assert_eq!(audit.len(), 3, "{log_text}");
    for (line, (token, status)) in audit.iter().zip([("-", 401), ("-", 401), ("ops", 200)]) {
        assert!(
            line.contains(&format!("token=\"{token}\""))
                || line.contains(&format!("token={token}")),
            "{line}"
        );
        assert!(line.contains(&format!("status={status}")), "{line}");
        assert!(
            line.contains("what=\"snapshot\"") || line.contains("what=snapshot"),
            "{line}"
        );
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
    }
    assert!(
        !log_text.contains("0123456789abcdef0123"),
        "a token reached the log"
    );
    assert_eq!(server.terminate(), 0);
}

#[test]
fn other_methods_are_refused_with_the_allowed_ones() {
    let dir = Dir::new("serve-405");
    let log = dir.create("access.log", "");
    let log_arg = log.display().to_string();
    let server = Server::start(&dir, &["--log", &log_arg, "--format", "traefik-common"]);
    for method in ["POST", "PUT", "DELETE"] {
        let refused = request(
            server.addr(),
            method,
            "/metrics",
            &[("Content-Length", "0")],
        )
        .expect("answer");
        assert_eq!(refused.status, 405, "{method}");
        assert_eq!(refused.header("allow"), Some("GET, HEAD"), "{method}");
    }
    assert_eq!(server.terminate(), 0);
}

#[test]
fn a_log_moved_away_and_back_is_counted_once() {
    let dir = Dir::new("serve-away-and-back");
    let log = dir.create("access.log", traefik_lines(1, 4));
    let log_arg = log.display().to_string();
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--from-start",
            "--poll-interval",
            "50ms",
        ],
    );
    server.wait_taken_in(4);
    let away = dir.join("access.away");
    std::fs::rename(&log, &away).expect("moving the log away");
    // Followed through its handle for the rotate wait (10 s) after its last growth, then
    // closed; it comes back later.
    poll_until(Duration::from_secs(30), || {
        match server.metrics().count("edge_files_open", &[]) {
            0 => Ok(()),
            open => Err(format!("{open} files still open")),
        }
    })
    .unwrap_or_else(|error| panic!("{error}\n{}", server.stderr()));
    std::fs::rename(&away, &log).expect("moving the log back");
    append(&log, &traefik_lines(5, 2));
    let summary = server.wait_taken_in(6);
    assert_eq!(summary["lines"]["total"], 6);
    let metrics = server.wait_parsed(6);
    assert_eq!(
        metrics.count("edge_file_rotations_total", &[("kind", "inode_reuse")]),
        0
    );
    assert_eq!(server.terminate(), 0);
}

#[test]
fn counters_never_go_back_across_kill_9_while_scraped() {
    let dir = Dir::new("serve-kill-scrape");
    let log = dir.join("access.log");
    append(&log, "");
    let (log_arg, checkpoint) = (
        log.display().to_string(),
        dir.join("cp.json").display().to_string(),
    );
    let args = [
        "--log",
        &log_arg,
        "--format",
        "traefik-common",
        "--from-start",
        "--checkpoint",
        &checkpoint,
        "--checkpoint-interval",
        "150ms",
        "--poll-interval",
        "20ms",
    ];
    let scraper = Scraper::start();
    let mut server = Server::start(&dir, &args);
    scraper.point_at(Some(server.addr()));
    let mut written = 0u64;
    // A seeded walk: appends of various sizes, kill -9 at moments that do not wait for
    // anything (mid-read, right after an append, between checkpoints).
    let mut seed = 0x9e37_79b9_u64;
    for round in 0..24 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let count = 1 + (seed >> 33) % 200;
        append(&log, &traefik_lines(written + 1, count));
        written += count;
        std::thread::sleep(Duration::from_millis((seed >> 40) % 120));
        if round % 6 == 5 {
            scraper.point_at(None);
            server.kill();
            server = Server::start(&dir, &args);
            scraper.point_at(Some(server.addr()));
        }
    }
    let metrics = server.wait_parsed(written);
    let (scrapes, decreases) = scraper.finish();
    assert!(scrapes >= 10, "only {scrapes} scrapes");
    assert_eq!(decreases, Vec::<String>::new(), "a counter went back");
    let bytes = std::fs::metadata(&log).expect("stat").len();
    assert_eq!(metrics.count("edge_bytes_read_total", &[]), bytes);
    assert_eq!(
        metrics
            .sum_by_label("edge_request_duration_seconds_count", "router")
            .values()
            .sum::<u64>(),
        written
    );
    assert_eq!(server.terminate(), 0);
}

//! `edge-parser serve` as an operator meets it: shutdown and the checkpoint, refusals at
//! startup, the endpoints, the live stream, the snapshot read back by `report`, the group cap
//! under a flood of random paths, and an exposition `promtool` accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::serve_util::{
    Server, append, nginx_line, poll_until, promtool_check, read_events, traefik_lines, unix_now,
};
use crate::util::{Dir, WAIT_LIMIT};

/// The checkpoint file as JSON.
fn read_checkpoint(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("reading the checkpoint");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

/// The common arguments of a Traefik server on `log` with `checkpoint`.
fn traefik_args<'a>(log: &'a str, checkpoint: &'a str) -> Vec<&'a str> {
    vec![
        "--log",
        log,
        "--format",
        "traefik-common",
        "--checkpoint",
        checkpoint,
        "--poll-interval",
        "50ms",
    ]
}

#[test]
fn sigterm_exits_zero_and_writes_the_final_checkpoint() {
    let dir = Dir::new("serve-sigterm");
    let log = dir.join("access.log");
    let checkpoint = dir.join("checkpoint.json");
    let mut text = traefik_lines(1, 7);
    text.push_str("not an access log line\n");
    append(&log, &text);
    let (log_arg, checkpoint_arg) = (log.display().to_string(), checkpoint.display().to_string());
    let mut args = traefik_args(&log_arg, &checkpoint_arg);
    // No periodic checkpoint during the test: the file can only come from the shutdown.
    args.extend(["--checkpoint-interval", "1h", "--from-start"]);
    let server = Server::start(&dir, &args);
    server.wait_taken_in(7);
    assert!(!checkpoint.exists(), "no checkpoint before the shutdown");
    let code = server.terminate();
    assert_eq!(code, 0);

    let saved = read_checkpoint(&checkpoint);
    assert_eq!(saved["magic"], "vantage-edge-checkpoint");
    assert_eq!(
        saved["config"],
        format!("format=traefik-common by=router,service logs=[{log_arg:?}]")
    );
    assert_eq!(saved["version"], 2);
    assert!(
        saved["checksum"]
            .as_str()
            .is_some_and(|sum| sum.starts_with("crc32:")),
        "{saved}"
    );
    assert_eq!(
        saved["state"]["aggregate"]["lines"],
        json!({"total": 8, "parsed": 7, "malformed": 1, "filtered": 0})
    );
    assert_eq!(saved["state"]["health"]["checkpoint_writes"], 1);
    let files = saved["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{saved}");
    assert_eq!(files[0]["path"], log_arg.as_str());
    assert_eq!(files[0]["offset"], text.len());

    // The next start continues from it: the same counts, nothing read twice (checkpoints
    // now come often: /metrics shows the counters of the last one).
    append(&log, &traefik_lines(8, 2));
    let mut args = traefik_args(&log_arg, &checkpoint_arg);
    args.extend(["--checkpoint-interval", "100ms", "--from-start"]);
    let server = Server::start(&dir, &args);
    let metrics = server.wait_parsed(9);
    assert_eq!(
        metrics.count("edge_lines_total", &[("result", "malformed")]),
        1
    );
    assert_eq!(metrics.count("edge_checkpoint_restored", &[]), 1);
    assert_eq!(
        metrics.sum_by_label("edge_requests_total", "router"),
        BTreeMap::from([
            ("api@docker".to_owned(), 3),
            ("auth@file".to_owned(), 3),
            ("web@docker".to_owned(), 3),
        ])
    );
    assert_eq!(server.terminate(), 0);
}

#[test]
fn a_corrupt_checkpoint_is_refused_until_reset() {
    let dir = Dir::new("serve-corrupt");
    let log = dir.join("access.log");
    append(&log, &traefik_lines(1, 3));
    let checkpoint = dir.create("checkpoint.json", "{\"magic\": \"vantage-edge-checkp");
    let (log_arg, checkpoint_arg) = (log.display().to_string(), checkpoint.display().to_string());
    let args = traefik_args(&log_arg, &checkpoint_arg);

    let refused = dir
        .command()
        .arg("serve")
        .args(&args)
        .args(["--listen", "127.0.0.1:0"])
        .run();
    assert_eq!(refused.code, 2, "{refused}");
    assert!(refused.stderr.contains(&checkpoint_arg), "{refused}");
    assert!(refused.stderr.contains("--reset-checkpoint"), "{refused}");
    assert!(!refused.stderr.contains("serving on"), "{refused}");

    // --reset-checkpoint starts over: a first start, so the lines already there are skipped
    // (no --from-start) and only new ones count; the corrupt file is replaced.
    let mut reset = args.clone();
    reset.extend(["--reset-checkpoint", "--checkpoint-interval", "100ms"]);
    let server = Server::start(&dir, &reset);
    server.wait_ready();
    let metrics = server.metrics();
    assert_eq!(metrics.count("edge_checkpoint_restored", &[]), 0);
    assert_eq!(
        metrics.count("edge_lines_total", &[("result", "parsed")]),
        0
    );
    append(&log, &traefik_lines(4, 2));
    server.wait_parsed(2);
    assert_eq!(server.terminate(), 0);
    let saved = read_checkpoint(&checkpoint);
    assert_eq!(
        saved["state"]["aggregate"]["lines"],
        json!({"total": 2, "parsed": 2, "malformed": 0, "filtered": 0})
    );

    // A valid checkpoint is not resumed either with --reset-checkpoint.
    let server = Server::start(&dir, &reset);
    server.wait_ready();
    append(&log, &traefik_lines(6, 1));
    let metrics = server.wait_parsed(1);
    assert_eq!(metrics.count("edge_checkpoint_restored", &[]), 0);
    assert_eq!(server.terminate(), 0);
    let saved = read_checkpoint(&checkpoint);
    assert_eq!(saved["state"]["aggregate"]["lines"]["total"], 1);
}

#[test]
fn a_checkpoint_made_with_another_format_is_refused() {
    let dir = Dir::new("serve-other-format");
    let log = dir.join("access.log");
    append(&log, &traefik_lines(1, 2));
    let (log_arg, checkpoint_arg) = (
        log.display().to_string(),
        dir.join("checkpoint.json").display().to_string(),
    );
    let args = traefik_args(&log_arg, &checkpoint_arg);
    let server = Server::start(&dir, &args);
    server.wait_ready();
    assert_eq!(server.terminate(), 0);

    let refused = dir
        .command()
        .args(["serve", "--log", &log_arg, "--format", "traefik-json"])
        .args(["--checkpoint", &checkpoint_arg, "--listen", "127.0.0.1:0"])
        .run();
    assert_eq!(refused.code, 2, "{refused}");
    for expected in [
        checkpoint_arg.as_str(),
        "made for another configuration",
        "format=traefik-common",
        "format=traefik-json",
        "--reset-checkpoint",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "{expected:?} not in {refused}"
        );
    }
}

#[test]
fn a_checkpoint_made_for_other_logs_is_refused_naming_both() {
    let dir = Dir::new("serve-other-logs");
    let (old_log, new_log) = (dir.join("old.log"), dir.join("new.log"));
    append(&old_log, &traefik_lines(1, 2));
    append(&new_log, &traefik_lines(1, 2));
    let (old_arg, new_arg, checkpoint_arg) = (
        old_log.display().to_string(),
        new_log.display().to_string(),
        dir.join("checkpoint.json").display().to_string(),
    );
    let server = Server::start(&dir, &traefik_args(&old_arg, &checkpoint_arg));
    server.wait_ready();
    assert_eq!(server.terminate(), 0);

    let refused = dir
        .command()
        .arg("serve")
        .args(traefik_args(&new_arg, &checkpoint_arg))
        .args(["--listen", "127.0.0.1:0"])
        .run();
    assert_eq!(refused.code, 2, "{refused}");
    for expected in [
        format!("checkpoint {checkpoint_arg} was made for another configuration"),
        format!("logs=[{old_arg:?}]").replace('"', "\\\""),
        format!("logs=[{new_arg:?}]").replace('"', "\\\""),
        "(start over with --reset-checkpoint)".to_owned(),
    ] {
        assert!(
            refused.stderr.contains(&expected),
            "{expected:?} not in {refused}"
        );
    }
    assert!(!refused.stderr.contains("serving on"), "{refused}");
    // The old logs and one more are other logs too.
    let refused = dir
        .command()
        .arg("serve")
        .args(traefik_args(&old_arg, &checkpoint_arg))
        .args(["--log", &new_arg, "--listen", "127.0.0.1:0"])
        .run();
    assert_eq!(refused.code, 2, "{refused}");
}

#[test]
fn ready_waits_for_the_log_and_unknown_paths_are_404() {
    let dir = Dir::new("serve-ready");
    let log = dir.join("access.log");
    let log_arg = log.display().to_string();
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--poll-interval",
            "50ms",
        ],
    );
    let health = server.get("/health");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let missing = server.get("/no/such/endpoint");
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().starts_with("not found: /metrics"),
        "{}",
        missing.text()
    );

    // Not ready while the pattern matches no file, with the reason.
    let waiting = poll_until(WAIT_LIMIT, || {
        let ready = server.get("/ready");
        let body = ready.json();
        if ready.status == 503
            && body["reasons"] == json!([format!("{log_arg} matches no file yet")])
        {
            Ok(body)
        } else {
            Err(format!("{} {body}", ready.status))
        }
    })
    .unwrap_or_else(|error| panic!("/ready: {error}"));
    assert_eq!(waiting["ready"], false);
    assert_eq!(waiting["checkpoint_restored"], false);

    append(&log, "");
    let ready = poll_until(WAIT_LIMIT, || {
        let ready = server.get("/ready");
        if ready.status == 200 {
            Ok(ready.json())
        } else {
            Err(format!("{} {}", ready.status, ready.text()))
        }
    })
    .unwrap_or_else(|error| panic!("/ready never 200: {error}"));
    assert_eq!(
        ready,
        json!({"ready": true, "reasons": [], "checkpoint_restored": false, "failing": []})
    );

    // A file created after the start is read from its start.
    append(&log, &traefik_lines(1, 4));
    server.wait_parsed(4);
    let summary = server.get("/api/summary");
    assert_eq!(summary.status, 200);
    assert_eq!(summary.header("content-type"), Some("application/json"));
    let summary = summary.json();
    assert_eq!(summary["format"], "traefik-common");
    assert_eq!(summary["group_by"], json!(["router", "service"]));
    assert_eq!(summary["lines"]["parsed"], 4);
}

#[test]
fn the_stream_sends_summaries_as_server_sent_events() {
    let dir = Dir::new("serve-stream");
    let log = dir.create("access.log", traefik_lines(1, 5));
    let log_arg = log.display().to_string();
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "traefik-common",
            "--from-start",
        ],
    );
    server.wait_parsed(5);
    let events = read_events(server.addr(), "/api/stream", 2);
    assert!(events.len() >= 2, "{events:?}");
    for (event, data) in &events {
        assert_eq!(event, "summary");
        let summary: Value =
            serde_json::from_str(data).unwrap_or_else(|error| panic!("{error}: {data}"));
        assert_eq!(summary["format"], "traefik-common");
        assert_eq!(summary["lines"]["parsed"], 5);
        let windows: Vec<&str> = summary["windows"]
            .as_array()
            .expect("windows")
            .iter()
            .map(|window| window["window"].as_str().expect("a window name"))
            .collect();
        assert_eq!(windows.len(), 3, "{summary}");
    }
}

#[test]
fn the_snapshot_reads_back_with_report() {
    let dir = Dir::new("serve-snapshot");
    let mut text = traefik_lines(1, 30);
    text.push_str("garbage\n");
    let log = dir.create("access.log", &text);
    let (log_arg, checkpoint_arg) = (
        log.display().to_string(),
        dir.join("checkpoint.json").display().to_string(),
    );
    let mut args = traefik_args(&log_arg, &checkpoint_arg);
    args.push("--from-start");
    let server = Server::start(&dir, &args);
    let metrics = server.wait_parsed(30);
    let snapshot = server.get("/api/snapshot");
    assert_eq!(snapshot.status, 200);
    assert_eq!(
        snapshot.header("content-disposition"),
        Some("attachment; filename=\"edge-snapshot.json\"")
    );
    let path = dir.create("edge-snapshot.json", &snapshot.body);

    let report = dir
        .command()
        .args(["report", "--snapshot"])
        .arg(&path)
        .arg("--json")
        .json();
    assert_eq!(
        report["lines"],
        json!({"total": 31, "parsed": 30, "malformed": 1, "filtered": 0})
    );
    assert_eq!(
        report["format"],
        format!("format=traefik-common by=router,service logs=[{log_arg:?}]")
    );
    let groups: BTreeMap<String, u64> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|group| {
            let router = group["key"]["router"].as_str().expect("a router");
            (
                router.to_owned(),
                group["requests"].as_u64().expect("requests"),
            )
        })
        .collect();
    let expected = BTreeMap::from([
        ("api@docker".to_owned(), 10),
        ("auth@file".to_owned(), 10),
        ("web@docker".to_owned(), 10),
    ]);
    assert_eq!(groups, expected);
    assert_eq!(
        metrics.sum_by_label("edge_requests_total", "router"),
        expected
    );
    // Lines 1..=30 cycle through 200, 404 and 503.
    assert_eq!(
        report["total"]["status"],
        json!({"200": 10, "404": 10, "503": 10})
    );
    assert_eq!(server.terminate(), 0);
}

#[test]
fn a_flood_of_random_paths_stays_within_the_group_cap() {
    const LINES: u64 = 10_000;
    const MAX_GROUPS: usize = 50;
    let dir = Dir::new("serve-flood");
    let mut rng = fastrand::Rng::with_seed(0xf100d);
    let mut text = String::new();
    let mut first_seen: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    let now = unix_now();
    for n in 0..LINES {
        // Letters only: no segment looks like an identifier, so each path is its own route.
        let segment: String = (0..10).map(|_| rng.lowercase()).collect();
        let path = format!("/flood/{segment}");
        if seen.insert(path.clone()) {
            first_seen.push(path.clone());
        }
        let query = if n % 2 == 0 { "?page=2" } else { "" };
        // Logged now, so that the watch tower follows these routers too.
        text.push_str(&nginx_line(n, now, &format!("{path}{query}"), 200));
    }
    assert!(first_seen.len() > MAX_GROUPS);
    let log = dir.create("access.log", &text);
    let log_arg = log.display().to_string();
    let server = Server::start(
        &dir,
        &[
            "--log",
            &log_arg,
            "--format",
            "nginx-combined-rt",
            "--from-start",
            "--max-groups",
            &MAX_GROUPS.to_string(),
        ],
    );
    let metrics = server.wait_parsed(LINES);

    // The groups first seen earliest keep their route; the rest is one `(overflow)` group.
    let mut expected: BTreeMap<String, u64> = first_seen[..MAX_GROUPS]
        .iter()
        .map(|path| (path.clone(), 1))
        .collect();
    expected.insert("(overflow)".to_owned(), LINES - MAX_GROUPS as u64);
    assert_eq!(
        metrics.sum_by_label("edge_requests_total", "router"),
        expected
    );
    // Every series with a router label, whatever the family, stays within the cap.
    let routers: BTreeSet<&str> = metrics
        .samples
        .iter()
        .filter_map(|sample| sample.labels.get("router").map(String::as_str))
        .collect();
    assert_eq!(routers.len(), MAX_GROUPS + 1);
    assert!(routers.contains("(overflow)"));
    // The watch tower follows more routers than the cap (the lines are recent): it shows only
    // those with a group of their own, one signal per kind.
    let watched: BTreeSet<&str> = metrics
        .named("edge_anomaly")
        .filter_map(|sample| sample.labels.get("router").map(String::as_str))
        .collect();
    assert_eq!(watched, routers);
    assert_eq!(metrics.named("edge_anomaly").count(), 3 * (MAX_GROUPS + 1));
    assert_eq!(
        metrics.named("edge_request_duration_seconds_count").count(),
        MAX_GROUPS + 1
    );
    assert_eq!(
        metrics.count(
            "edge_request_duration_seconds_count",
            &[("router", "(overflow)"), ("service", "(overflow)")]
        ),
        LINES - MAX_GROUPS as u64
    );
    promtool_check(&metrics.text);
    assert_eq!(server.terminate(), 0);
}

#[test]
fn the_exposition_passes_promtool() {
    let dir = Dir::new("serve-promtool");
    let mut text = traefik_lines(1, 20);
    text.push_str("junk\n");
    let log = dir.create("access.log", &text);
    let (log_arg, checkpoint_arg) = (
        log.display().to_string(),
        dir.join("checkpoint.json").display().to_string(),
    );
    let mut args = traefik_args(&log_arg, &checkpoint_arg);
    args.extend(["--from-start", "--checkpoint-interval", "100ms"]);
    let server = Server::start(&dir, &args);
    server.wait_parsed(20);
    // A rotation and a checkpoint, so that those families have samples too.
    std::fs::rename(&log, dir.join("access.log.1")).expect("rotating");
    append(&log, &traefik_lines(21, 3));
    let metrics = poll_until(WAIT_LIMIT, || {
        let metrics = server.metrics();
        let rotated = metrics.count("edge_file_rotations_total", &[("kind", "rename")]);
        let parsed = metrics.count("edge_lines_total", &[("result", "parsed")]);
        let writes = metrics.count("edge_checkpoint_writes_total", &[]);
        if rotated == 1 && parsed == 23 && writes > 0 {
            Ok(metrics)
        } else {
            Err(format!(
                "rename {rotated}, parsed {parsed}, writes {writes}"
            ))
        }
    })
    .unwrap_or_else(|error| panic!("{error}"));
    for family in [
        "edge_requests_total",
        "edge_request_duration_seconds_bucket",
        "edge_lines_total",
        "edge_bytes_read_total",
        "edge_last_line_timestamp_seconds",
        "edge_lag_seconds",
        "edge_file_rotations_total",
        "edge_files_open",
        "edge_checkpoint_writes_total",
        "edge_checkpoint_errors_total",
        "edge_checkpoint_last_success_timestamp_seconds",
        "edge_checkpoint_restored",
    ] {
        assert!(
            metrics.named(family).next().is_some(),
            "no {family} in\n{}",
            metrics.text
        );
    }
    assert_eq!(
        metrics.count("edge_bytes_read_total", &[]),
        (text.len() + traefik_lines(21, 3).len()) as u64
    );
    promtool_check(&metrics.text);
    assert_eq!(server.terminate(), 0);
}

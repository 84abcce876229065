//! The `edge-parser` binary end to end: exit codes and their messages, inputs (files, globs,
//! standard input, gzip, several files in time order), the JSON document and the table, group
//! selection and order, format detection, broken pipes and thread-count independence.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::{Value, json};

use crate::util::{Dir, gzip, wait_with_output};

/// Unix time of 2025-03-09T12:00:00Z, the first second of the hand-written logs.
const START: i64 = 1_741_521_600;

/// The exit-code block that `--help` must end with.
const EXIT_CODES: &str = "\
Exit codes:
  0  the report was produced
  1  the input had no parseable line
  2  usage error, or an input could not be read (the message names it)
";

/// A Traefik `common` line at `12:00:SS` of the test day.
fn traefik(
    second: u32,
    method: &str,
    path: &str,
    status: u16,
    bytes: u32,
    router: &str,
    ms: u32,
) -> String {
    format!(
        "10.0.0.1 - - [09/Mar/2025:12:00:{second:02} +0000] \"{method} {path} HTTP/1.1\" {status} {bytes} \"-\" \"-\" 1 \"{router}\" \"http://10.0.0.7:80\" {ms}ms\n"
    )
}

/// Six requests and one malformed line (line 6) whose report is computed by hand in
/// [`the_json_document_of_a_hand_written_log_is_exact`].
fn hand_log() -> String {
    [
        traefik(0, "GET", "/users/1", 200, 100, "users@docker", 4),
        traefik(0, "GET", "/users/2", 200, 100, "users@docker", 8),
        traefik(1, "POST", "/orders", 201, 50, "orders@docker", 12),
        traefik(3, "GET", "/users/3", 404, 0, "users@docker", 2),
        traefik(3, "GET", "/orders/9", 503, 20, "orders@docker", 16),
        "not a log line\n".to_owned(),
        traefik(4, "GET", "/users/4", 200, 100, "users@docker", 1),
    ]
    .concat()
}

/// The report of [`hand_log`] read from `input`, grouped by router (the default for Traefik).
fn hand_log_report(input: &str) -> Value {
    let latency = |count: u64, min: f64, p50: f64, p90: f64, max: f64, mean: f64| {
        json!({"count": count, "min": min, "p50": p50, "p90": p90, "p99": max, "p999": max,
               "max": max, "mean": mean})
    };
    let classes = |ok: u64, client: u64, server: u64| json!({"1xx": 0, "2xx": ok, "3xx": 0, "4xx": client, "5xx": server, "other": 0});
    json!({
        "format": "traefik-common",
        "group_by": ["router"],
        "inputs": [input],
        "lines": {"total": 7, "parsed": 6, "malformed": 1, "filtered": 0},
        "malformed_samples": [{
            "input": input,
            "line_number": 6,
            "text": "not a log line",
            // Filled in by `assert_hand_log_report`: the wording is the parser's.
            "error": null,
        }],
        // 12:00:00 to 12:00:04.
        "time": {"first": "2025-03-09T12:00:00Z", "last": "2025-03-09T12:00:04Z", "seconds": 4.0},
        "total": {
            "requests": 6,
            "rps": 6.0 / 4.0,
            "status_class": classes(4, 1, 1),
            "status": {"200": 3, "201": 1, "404": 1, "503": 1},
            // 1, 2, 4, 8, 12, 16 ms: p50 is the 3rd value, p90 the 6th (ceil(5.4)).
            "latency_seconds": latency(6, 0.001, 0.004, 0.016, 0.016, 43_000.0 / 6.0 / 1e6),
            "latency_missing": 0,
            "upstream_latency_seconds": null,
            "bytes_sent": 370,
        },
        "groups": [
            {
                "key": {"router": "users@docker"},
                "requests": 4,
                "rps": 1.0,
                "status_class": classes(3, 1, 0),
                // 1, 2, 4, 8 ms: p50 is the 2nd value, p90 the 4th (ceil(3.6)).
                "latency_seconds": latency(4, 0.001, 0.002, 0.008, 0.008, 15_000.0 / 4.0 / 1e6),
                "latency_missing": 0,
                "upstream_latency_seconds": null,
                "bytes_sent": 300,
            },
            {
                "key": {"router": "orders@docker"},
                "requests": 2,
                "rps": 0.5,
                "status_class": classes(1, 0, 1),
                "latency_seconds": latency(2, 0.012, 0.012, 0.016, 0.016, 28_000.0 / 2.0 / 1e6),
                "latency_missing": 0,
                "upstream_latency_seconds": null,
                "bytes_sent": 70,
            },
        ],
        "timeline": {"start_epoch_second": START, "step_seconds": 1, "requests": [2, 1, 0, 2, 1]},
    })
}

/// Checks a report of [`hand_log`] read from `input`: everything exact but the parser's
/// wording of why line 6 is malformed, which belongs to the format's parser.
fn assert_hand_log_report(report: &Value, input: &str) {
    let mut expected = hand_log_report(input);
    let error = report["malformed_samples"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains(" at byte "), "{report}");
    expected["malformed_samples"][0]["error"] = json!(error);
    assert_eq!(*report, expected);
}

/// The group keys of a report, in the order shown, each as its values in `group_by` order.
fn keys(report: &Value) -> Vec<Vec<String>> {
    let group_by: Vec<&str> = report["group_by"]
        .as_array()
        .expect("group_by is a list")
        .iter()
        .map(|d| d.as_str().expect("dimension names are strings"))
        .collect();
    report["groups"]
        .as_array()
        .expect("groups is a list")
        .iter()
        .map(|group| {
            group_by
                .iter()
                .map(|d| {
                    group["key"][d]
                        .as_str()
                        .expect("key values are strings")
                        .to_owned()
                })
                .collect()
        })
        .collect()
}

fn key_list(keys: &[&[&str]]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|key| key.iter().map(|v| (*v).to_owned()).collect())
        .collect()
}

#[test]
fn help_ends_with_the_exit_codes() {
    let dir = Dir::new("help");
    let top = dir.command().arg("--help").stdout();
    assert!(top.ends_with(EXIT_CODES), "{top}");
    let report = dir.command().args(["report", "--help"]).stdout();
    assert!(report.ends_with(EXIT_CODES), "{report}");
    assert!(report.contains("Percentiles are nearest-rank within 0.1 %; the maximum is exact."));
}

#[test]
fn a_missing_file_is_exit_2_naming_the_path() {
    let dir = Dir::new("missing-file");
    dir.create("access.log", hand_log());
    let outcome = dir
        .command()
        .args(["report", "access.log", "missing.log"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(outcome.stdout, "");
    // The reason is printed once (regression: it used to be repeated as the error's cause).
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: cannot open missing.log: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_corrupt_gzip_file_is_exit_2_naming_the_path() {
    let dir = Dir::new("corrupt-gzip");
    let mut data = gzip(hand_log().as_bytes());
    // Keep the gzip header, spoil the deflate stream.
    for byte in &mut data[10..20] {
        *byte = 0xff;
    }
    dir.create("access.log.gz", data);
    let outcome = dir
        .command()
        .args(["report", "access.log.gz", "--format", "traefik-common"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(outcome.stdout, "");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: cannot read access.log.gz: corrupt deflate stream\n"
    );
}

#[test]
fn an_unknown_format_is_exit_2_naming_the_known_formats() {
    let dir = Dir::new("unknown-format");
    dir.create("access.log", hand_log());
    let outcome = dir
        .command()
        .args(["report", "access.log", "--format", "apache"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(outcome.stdout, "");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: --format: unknown log format \"apache\" (known: traefik-common, \
         traefik-json, nginx-combined, nginx-combined-rt, ingress-nginx, envoy, haproxy, \
         haproxy-syslog, caddy-json, caddy-json-ns, caddy-json-ms)\n"
    );
}

#[test]
fn a_glob_matching_nothing_is_exit_2_naming_the_pattern() {
    let dir = Dir::new("empty-glob");
    dir.create("access.log", hand_log());
    let outcome = dir
        .command()
        .args(["report", "access.log", "rotated-*.gz"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(outcome.stdout, "");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: no file matches \"rotated-*.gz\"\n"
    );
}

#[test]
fn a_bad_route_template_is_exit_2_naming_it() {
    let dir = Dir::new("bad-route");
    dir.create("access.log", hand_log());
    let outcome = dir
        .command()
        .args(["report", "access.log", "--route", "users/{id}"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: --route: route template \"users/{id}\" must start with '/'\n"
    );
    let outcome = dir
        .command()
        .args([
            "report",
            "access.log",
            "--route",
            "/u/{id}",
            "--route",
            "/u/{name}",
        ])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert!(
        outcome
            .stderr
            .starts_with("edge-parser: error: --route: route template \"/u/{name}\": "),
        "{outcome}"
    );
    dir.create("routes.txt", "# ours\n/users/{id}\nusers\n");
    let outcome = dir
        .command()
        .args(["report", "access.log", "--routes", "routes.txt"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: --routes routes.txt: route template \"users\" must start with '/'\n"
    );
    let outcome = dir
        .command()
        .args(["report", "access.log", "--routes", "nope.txt"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: reading --routes nope.txt: No such file or directory (os error 2)\n"
    );
}

#[test]
fn nginx_conf_without_the_named_log_format_is_exit_2() {
    let dir = Dir::new("nginx-conf");
    dir.create(
        "nginx.conf",
        "http {\n    log_format timed '$remote_addr [$time_local] \"$request\" $status $request_time';\n}\n",
    );
    dir.create(
        "access.log",
        "10.0.0.1 [09/Mar/2025:12:00:00 +0000] \"GET /a HTTP/1.1\" 200 0.004\n\
         10.0.0.1 [09/Mar/2025:12:00:02 +0000] \"GET /b HTTP/1.1\" 502 0.010\n",
    );
    let outcome = dir
        .command()
        .args(["report", "access.log", "--nginx-conf", "nginx.conf"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(outcome.stdout, "");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: --nginx-conf nginx.conf: log_format \"main\": no log_format named \
         \"main\" in the nginx configuration\n"
    );
    let outcome = dir
        .command()
        .args(["report", "access.log", "--nginx-conf", "absent.conf"])
        .args(["--nginx-log-format-name", "timed"])
        .run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: reading --nginx-conf absent.conf: No such file or directory (os error 2)\n"
    );

    let report = dir
        .command()
        .args(["report", "access.log", "--json", "--by", "route,status"])
        .args([
            "--nginx-conf",
            "nginx.conf",
            "--nginx-log-format-name",
            "timed",
        ])
        .json();
    assert_eq!(report["format"], "nginx-custom");
    assert_eq!(
        report["lines"],
        json!({"total": 2, "parsed": 2, "malformed": 0, "filtered": 0})
    );
    assert_eq!(keys(&report), key_list(&[&["/a", "200"], &["/b", "502"]]));
    assert_eq!(report["total"]["latency_seconds"]["max"], 0.01);
    assert_eq!(report["total"]["latency_seconds"]["min"], 0.004);
}

#[test]
fn usage_errors_are_exit_2_naming_the_flag() {
    let dir = Dir::new("usage");
    dir.create("access.log", hand_log());
    for (args, message) in [
        (
            &["--by", "path"][..],
            "error: invalid value 'path' for '--by <DIMENSIONS>': unknown group dimension \"path\" \
             (known: router, route, service, host, method, status)\n",
        ),
        (
            &["--sort", "speed"][..],
            "error: invalid value 'speed' for '--sort <KEY>': unknown sort key \"speed\" (known: \
             requests, p99, errors, key)\n",
        ),
        (
            &["-j", "0"][..],
            "error: invalid value '0' for '--threads <N>': 0 is not in 1..=256\n",
        ),
        (
            &[
                "--format",
                "nginx-combined",
                "--nginx-log-format",
                "$status",
            ][..],
            "edge-parser: error: --format nginx-combined conflicts with a custom nginx log_format\n",
        ),
    ] {
        let outcome = dir
            .command()
            .args(["report", "access.log"])
            .args(args)
            .run();
        assert_eq!(outcome.code, 2, "{args:?}: {outcome}");
        assert!(outcome.stderr.starts_with(message), "{args:?}: {outcome}");
        assert_eq!(outcome.stdout, "", "{args:?}");
    }
}

#[test]
fn no_parseable_line_is_exit_1_with_the_report_still_printed() {
    let dir = Dir::new("nothing-parsed");
    dir.create("access.log", "garbage\nmore garbage\n");
    let outcome = dir
        .command()
        .args([
            "report",
            "access.log",
            "--format",
            "traefik-common",
            "--json",
        ])
        .run();
    assert_eq!(outcome.code, 1, "{outcome}");
    let report: Value = serde_json::from_str(&outcome.stdout).expect("one JSON document");
    assert_eq!(
        report["lines"],
        json!({"total": 2, "parsed": 0, "malformed": 2, "filtered": 0})
    );
    assert_eq!(report["groups"], json!([]));
    assert_eq!(
        report["time"],
        json!({"first": null, "last": null, "seconds": 1.0})
    );
    assert!(
        outcome
            .stderr
            .contains("no line could be parsed as traefik-common (2 lines read)\n"),
        "{outcome}"
    );
}

#[test]
fn diagnostics_written_to_a_pipe_have_no_colour_codes() {
    let dir = Dir::new("no-colour");
    dir.create("access.log", "garbage\n");
    let outcome = dir
        .command()
        .args(["report", "access.log", "--format", "traefik-common", "-q"])
        .run();
    assert_eq!(outcome.code, 1, "{outcome}");
    // No ANSI colours when stderr is not a terminal (a file, CI output).
    assert_eq!(
        outcome.stderr,
        " WARN no line could be parsed as traefik-common (1 lines read)\n"
    );
}

#[test]
fn the_json_document_of_a_hand_written_log_is_exact() {
    let dir = Dir::new("json-exact");
    dir.create("access.log", hand_log());
    let outcome = dir.command().args(["report", "access.log", "--json"]).run();
    assert_eq!(outcome.code, 0, "{outcome}");
    assert_eq!(outcome.stderr, "", "nothing on stderr without -v");
    let report: Value = serde_json::from_str(&outcome.stdout).expect("one JSON document");
    assert_hand_log_report(&report, "access.log");
}

#[test]
fn the_table_shows_the_top_groups_and_how_many_are_hidden() {
    let dir = Dir::new("table");
    dir.create("access.log", hand_log());
    let table = dir
        .command()
        .args(["report", "access.log", "--top", "1"])
        .stdout();
    let json = dir
        .command()
        .args(["report", "access.log", "--json"])
        .json();
    let error = json["malformed_samples"][0]["error"]
        .as_str()
        .expect("an error");
    let expected = format!(
        "\
traefik-common: 1 input, 7 lines: 6 parsed, 1 malformed, 0 filtered; 2025-03-09T12:00:00Z to 2025-03-09T12:00:04Z (4 s)

router        requests      rps    2xx    3xx    4xx    5xx      p50      p90      p99    p99.9      max
users@docker         4      1.0  75.0%   0.0%  25.0%   0.0%   2.00ms   8.00ms   8.00ms   8.00ms   8.00ms
(1 more groups; --top to show more)
total                6      1.5  66.7%   0.0%  16.7%  16.7%   4.00ms   16.0ms   16.0ms   16.0ms   16.0ms

malformed lines (1 in all; the first 1):
  access.log:6: not a log line ({error})
"
    );
    assert_eq!(table, expected);
}

#[test]
fn stdin_is_read_when_given_as_dash_or_when_no_file_is_named() {
    let dir = Dir::new("stdin");
    let dash = dir
        .command()
        .args(["report", "-", "--json"])
        .stdin(hand_log())
        .json();
    assert_hand_log_report(&dash, "-");
    let implicit = dir
        .command()
        .args(["report", "--json"])
        .stdin(hand_log())
        .json();
    assert_hand_log_report(&implicit, "-");
    let compressed = dir
        .command()
        .args(["report", "-", "--json"])
        .stdin(gzip(hand_log().as_bytes()))
        .json();
    assert_hand_log_report(&compressed, "-");
}

#[test]
fn gzip_files_are_read_transparently() {
    let dir = Dir::new("gzip");
    dir.create_gz("access.log.gz", hand_log());
    let report = dir
        .command()
        .args(["report", "access.log.gz", "--json"])
        .json();
    assert_hand_log_report(&report, "access.log.gz");
    // Compression is recognised by content, not by name.
    dir.create_gz("access.log.1", hand_log());
    let report = dir
        .command()
        .args(["report", "access.log.1", "--json"])
        .json();
    assert_hand_log_report(&report, "access.log.1");
}

#[test]
fn files_given_out_of_order_are_read_in_time_order() {
    let dir = Dir::new("time-order");
    dir.create(
        "a.log",
        traefik(20, "GET", "/late", 200, 1, "late@docker", 3),
    );
    dir.create(
        "b.log",
        [
            traefik(0, "GET", "/early", 200, 1, "early@docker", 1),
            traefik(1, "GET", "/early", 200, 1, "early@docker", 2),
        ]
        .concat(),
    );
    dir.create_gz(
        "c.log.gz",
        [
            traefik(10, "GET", "/middle", 500, 1, "middle@docker", 5),
            "torn line\n".to_owned(),
            traefik(11, "GET", "/middle", 200, 1, "middle@docker", 4),
        ]
        .concat(),
    );
    let mut timeline = vec![0; 21];
    for second in [0, 1, 10, 11, 20] {
        timeline[second] = 1;
    }
    let check = |report: &Value| {
        assert_eq!(report["inputs"], json!(["b.log", "c.log.gz", "a.log"]));
        assert_eq!(
            report["time"],
            json!({"first": "2025-03-09T12:00:00Z", "last": "2025-03-09T12:00:20Z", "seconds": 20.0})
        );
        assert_eq!(
            report["timeline"],
            json!({"start_epoch_second": START, "step_seconds": 1, "requests": timeline})
        );
        assert_eq!(
            report["lines"],
            json!({"total": 6, "parsed": 5, "malformed": 1, "filtered": 0})
        );
        assert_eq!(report["malformed_samples"][0]["input"], "c.log.gz");
        assert_eq!(report["malformed_samples"][0]["line_number"], 2);
        assert_eq!(report["total"]["latency_seconds"]["max"], 0.005);
    };
    let report = dir
        .command()
        .args(["report", "a.log", "c.log.gz", "b.log", "--json"])
        .json();
    check(&report);
    // A glob expands in name order; the files are still read in time order.
    let report = dir.command().args(["report", "*.log*", "--json"]).json();
    check(&report);
}

#[test]
fn top_sort_and_by_choose_and_order_the_groups() {
    let dir = Dir::new("groups");
    dir.create("access.log", hand_log());
    let keys_of = |args: &[&str]| {
        let report = dir
            .command()
            .args(["report", "access.log", "--json"])
            .args(args)
            .json();
        // Whatever is shown, the totals are of every request.
        assert_eq!(report["total"]["requests"], 6, "{args:?}");
        keys(&report)
    };
    // Per status: 200 has 3 requests (p99 8 ms), 201 one (12 ms), 404 one (2 ms), 503 one (16 ms).
    assert_eq!(
        keys_of(&["--by", "status"]),
        key_list(&[&["200"], &["201"], &["404"], &["503"]])
    );
    assert_eq!(
        keys_of(&["--by", "status", "--sort", "p99"]),
        key_list(&[&["503"], &["201"], &["200"], &["404"]])
    );
    assert_eq!(
        keys_of(&["--by", "status", "--sort", "errors"]),
        key_list(&[&["503"], &["200"], &["201"], &["404"]])
    );
    assert_eq!(
        keys_of(&["--by", "status", "--sort", "p99", "--top", "2"]),
        key_list(&[&["503"], &["201"]])
    );
    assert_eq!(
        keys_of(&["--by", "route,status", "--sort", "key"]),
        key_list(&[
            &["/orders", "201"],
            &["/orders/{id}", "503"],
            &["/users/{id}", "200"],
            &["/users/{id}", "404"],
        ])
    );
    assert_eq!(
        keys_of(&["--by", "route,status", "--sort", "key", "--top", "3"]),
        key_list(&[
            &["/orders", "201"],
            &["/orders/{id}", "503"],
            &["/users/{id}", "200"]
        ])
    );
    assert_eq!(
        keys_of(&["--by", "method", "--by", "router"]),
        key_list(&[
            &["GET", "users@docker"],
            &["GET", "orders@docker"],
            &["POST", "orders@docker"],
        ])
    );
    // Traefik's common format logs no host: the dimension is absent everywhere.
    assert_eq!(keys_of(&["--by", "host"]), key_list(&[&["-"]]));
    // With templates, paths that match none are `(other)`.
    assert_eq!(
        keys_of(&["--by", "route", "--route", "/users/{id}", "--sort", "key"]),
        key_list(&[&["(other)"], &["/users/{id}"]])
    );
    // Past the cap, groups first seen later are folded: /orders/{id} (line 5) goes.
    assert_eq!(
        keys_of(&["--by", "route", "--max-groups", "2"]),
        key_list(&[&["/users/{id}"], &["(overflow)"], &["/orders"]])
    );
    let report = dir
        .command()
        .args(["report", "access.log", "--json", "--by", "route,method"])
        .args([
            "--route",
            "/users/{id}",
            "--route",
            "/orders/{id}",
            "--top",
            "1",
        ])
        .json();
    assert_eq!(keys(&report), key_list(&[&["/users/{id}", "GET"]]));
    assert_eq!(report["groups"][0]["requests"], 4);
    assert_eq!(report["groups"][0]["latency_seconds"]["p50"], 0.002);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = Dir::new("broken-pipe");
    // 3000 routers: a table far larger than a pipe's buffer.
    let log: String = (0..3000)
        .map(|n| traefik(n % 60, "GET", "/x", 200, 1, &format!("r{n}@docker"), n % 50))
        .collect();
    dir.create("access.log", log);

    // `| head -1`: the reader takes one line and goes away.
    let mut child = dir
        .command()
        .args(["report", "access.log", "--max-groups", "5000"])
        .spawn(Stdio::null());
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("reads");
    assert_eq!(
        first,
        "traefik-common: 1 input, 3000 lines: 3000 parsed, 0 malformed, 0 filtered; \
         2025-03-09T12:00:00Z to 2025-03-09T12:00:59Z (59 s)\n"
    );
    let outcome = wait_with_output(child);
    assert_eq!(outcome.code, 0, "{outcome}");
    assert_eq!(outcome.stderr, "");

    // The reader is gone before anything is written.
    let mut child = dir
        .command()
        .args(["report", "access.log", "--json"])
        .spawn(Stdio::null());
    drop(child.stdout.take());
    let outcome = wait_with_output(child);
    assert_eq!(outcome.code, 0, "{outcome}");
    assert_eq!(outcome.stderr, "");

    // `generate` stops at the first refused write instead of writing every line.
    let mut child = dir
        .command()
        .args(["generate", "-n", "100000000"])
        .spawn(Stdio::null());
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("reads");
    assert!(first.ends_with("ms\n"), "{first}");
    let outcome = wait_with_output(child);
    assert_eq!(outcome.code, 0, "{outcome}");
    assert_eq!(outcome.stderr, "");
}

#[test]
fn auto_detection_says_which_format_it_chose_with_v() {
    let dir = Dir::new("detect");
    dir.create("access.log", hand_log());
    let outcome = dir
        .command()
        .args(["report", "access.log", "-v", "--json"])
        .run();
    assert_eq!(outcome.code, 0, "{outcome}");
    assert!(
        outcome.stderr.contains(
            "detected traefik-common: 6 of 7 sample lines parsed, 0 filtered (from access.log)\n"
        ),
        "{outcome}"
    );
    dir.create(
        "nginx.log",
        "10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl/8\" 0.012\n\
         10.0.0.1 - - [09/Mar/2025:12:00:01 +0000] \"GET /a HTTP/1.1\" 404 5 \"-\" \"curl/8\" 0.001\n",
    );
    let outcome = dir
        .command()
        .args(["report", "-v", "--json"])
        .stdin(std::fs::read(dir.join("nginx.log")).expect("reads"))
        .run();
    assert_eq!(outcome.code, 0, "{outcome}");
    assert!(
        outcome.stderr.contains(
            "detected nginx-combined-rt: 2 of 2 sample lines parsed, 0 filtered (from -)\n"
        ),
        "{outcome}"
    );
    let report: Value = serde_json::from_str(&outcome.stdout).expect("one JSON document");
    assert_eq!(report["format"], "nginx-combined-rt");
    assert_eq!(report["total"]["latency_seconds"]["max"], 0.012);
}

#[test]
fn auto_detection_refuses_an_ambiguous_sample_naming_the_candidates() {
    let dir = Dir::new("ambiguous");
    // One Traefik line and one nginx `combined` line: each format reads half of the sample.
    dir.create(
        "mixed.log",
        traefik(0, "GET", "/a", 200, 10, "a@docker", 10)
            + "10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] \"GET /a HTTP/1.1\" 200 10 \"-\" \"-\"\n",
    );
    let outcome = dir.command().args(["report", "mixed.log"]).run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(outcome.stdout, "");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: --format auto: cannot tell the log format from 2 sample lines: \
         traefik-common and nginx-combined read them equally well (lines parsed per candidate: \
         traefik-common 1, traefik-json 0, nginx-combined 1, nginx-combined-rt 0, ingress-nginx 0, \
         envoy 0, haproxy 0, haproxy-syslog 0, caddy-json 0); choose the format explicitly\n"
    );
    // Naming the format settles it.
    let report = dir
        .command()
        .args([
            "report",
            "mixed.log",
            "--format",
            "nginx-combined",
            "--json",
        ])
        .json();
    assert_eq!(
        report["lines"],
        json!({"total": 2, "parsed": 1, "malformed": 1, "filtered": 0})
    );
}

#[test]
fn auto_detection_refuses_an_unknown_sample_naming_the_candidates() {
    let dir = Dir::new("unknown-sample");
    dir.create("notes.txt", "hello\nworld\n");
    let outcome = dir.command().args(["report", "notes.txt"]).run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_eq!(
        outcome.stderr,
        "edge-parser: error: --format auto: cannot detect the log format: no candidate reads at \
         least half of the 2 sample lines (lines parsed per candidate: traefik-common 0, \
         traefik-json 0, nginx-combined 0, nginx-combined-rt 0, ingress-nginx 0, envoy 0, \
         haproxy 0, haproxy-syslog 0, caddy-json 0); choose the format explicitly\n"
    );
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let dir = Dir::new("threads");
    let generated = dir.join("generated.log");
    let outcome = dir
        .command()
        .args(["generate", "--format", "traefik-common", "-n", "200000"])
        .args(["--seed", "42", "--malformed-rate", "0.001"])
        .run_to_file(&generated);
    assert_eq!(outcome.code, 0, "{outcome}");
    let log = std::fs::read(&generated).expect("reads the generated log");
    assert_eq!(log.iter().filter(|&&b| b == b'\n').count(), 200_000);
    let report = |threads: &str, by: &str| {
        dir.command()
            .args([
                "report",
                "generated.log",
                "--json",
                "-q",
                "-j",
                threads,
                "--by",
                by,
            ])
            .stdout()
    };
    // Fewer keys than the cap: every group whole.
    let few = report("1", "router,status");
    assert!(
        few == report("2", "router,status"),
        "-j1 and -j2 differ: {}",
        first_difference(&few, &report("2", "router,status"))
    );
    let one = report("1", "route,status,method");
    let two = report("2", "route,status,method");
    let parsed: Value = serde_json::from_str(&one).expect("one JSON document");
    let lines = &parsed["lines"];
    assert_eq!(lines["total"], 200_000);
    assert_eq!(lines["filtered"], 0);
    assert_eq!(
        lines["parsed"].as_u64().unwrap() + lines["malformed"].as_u64().unwrap(),
        200_000
    );
    assert!(lines["malformed"].as_u64().unwrap() > 0, "{lines}");
    assert_eq!(
        parsed["malformed_samples"].as_array().map(Vec::len),
        Some(5)
    );
    // The log has far more than the default 1000 route/status/method keys: the cap folds the
    // groups first seen late into `(overflow)`, the part that depends most on how lines were
    // shared between threads.
    assert_eq!(parsed["groups"].as_array().map(Vec::len), Some(1001));
    // More groups than the cap (this log has some 32 000 keys for a cap of 1000): chunks are
    // merged in reading order, so the same groups are kept and folded whatever the threads.
    assert!(
        one == two,
        "-j1 and -j2 differ: {}",
        first_difference(&one, &two)
    );
}

/// The first line where `a` and `b` differ, with a little context, for a readable failure.
fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(4);
    format!(
        "line {}:\n--- -j1 ---\n{}\n--- -j2 ---\n{}",
        at + 1,
        a[from..(at + 3).min(a.len())].join("\n"),
        b[from..(at + 3).min(b.len())].join("\n")
    )
}

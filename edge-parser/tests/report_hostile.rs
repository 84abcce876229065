//! `report` against hostile input, through the real binary: timestamps decades apart, empty and
//! over-long first inputs, numbers at the edge of `u64`, inputs that can be read only once, and
//! terminal control sequences inside log lines.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Dir, Outcome, WAIT_LIMIT, wait_with_output};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_edge-parser");
/// The largest `u64`, as logs may write it.
const U64_MAX: &str = "18446744073709551615";

/// A Traefik `common` line stamped `time` (CLF), for `path` on `router`.
fn traefik(time: &str, path: &str, bytes: &str, router: &str, ms: &str) -> String {
    format!(
        "10.0.0.1 - - [{time} +0000] \"GET {path} HTTP/1.1\" 200 {bytes} \"-\" \"-\" 1 \"{router}\" \"http://10.0.0.7:80\" {ms}ms\n"
    )
}

/// Writes `lines` generated Traefik `common` lines (seed 1, from 2025-03-09T12:00:00Z at 200
/// per second) to `name` in `dir`; returns them.
fn generated(dir: &Dir, name: &str, lines: usize) -> Vec<String> {
    let path = dir.join(name);
    let outcome = dir
        .command()
        .args(["generate", "-n", &lines.to_string()])
        .run_to_file(&path);
    assert_eq!(outcome.code, 0, "{outcome}");
    let text = std::fs::read_to_string(&path).expect("reads the generated log");
    text.lines().map(|line| format!("{line}\n")).collect()
}

/// The report of `args` as JSON, for each thread count, checked to be the same text.
fn json_for_any_threads(dir: &Dir, args: &[&str]) -> Value {
    let run = |threads: &str| {
        dir.command()
            .args(["report", "--json", "-q", "-j", threads])
            .args(args)
            .stdout()
    };
    let one = run("1");
    for threads in ["2", "3"] {
        assert!(one == run(threads), "-j1 and -j{threads} differ");
    }
    serde_json::from_str(&one).unwrap_or_else(|error| panic!("{error}: {one}"))
}

#[test]
fn a_1970_line_among_2025_lines_makes_the_timeline_steps_coarser_not_longer() {
    let dir = Dir::new("hostile-1970");
    let mut lines = generated(&dir, "g.log", 20_000);
    lines[0] = lines[0].replace("09/Mar/2025", "01/Jan/1970");
    dir.create("t70.log", lines.concat());
    let report = json_for_any_threads(&dir, &["t70.log"]);
    assert_eq!(
        report["time"],
        json!({"first": "1970-01-01T12:00:00Z", "last": "2025-03-09T12:01:40Z",
               "seconds": 1_741_478_500.0})
    );
    // Steps of 6 hours from 1970-01-01T12:00:00Z (a multiple of 6 h) to the step holding
    // 2025-03-09T12:01:40Z: 80 625 points, the first and the last not empty.
    let timeline = &report["timeline"];
    assert_eq!(timeline["start_epoch_second"], 43_200);
    assert_eq!(timeline["step_seconds"], 21_600);
    let mut expected = vec![0; 80_625];
    expected[0] = 1;
    expected[80_624] = 19_999;
    assert_eq!(timeline["requests"], json!(expected));
    // The table's time span and rate stay those of the timestamps.
    let table = dir.command().args(["report", "-q", "t70.log"]).stdout();
    assert!(
        table.starts_with(
            "traefik-common: 1 input, 20000 lines: 20000 parsed, 0 malformed, 0 filtered; \
             1970-01-01T12:00:00Z to 2025-03-09T12:01:40Z (1741478500 s)\n"
        ),
        "{table}"
    );
    let total: Vec<&str> = table
        .lines()
        .find(|line| line.starts_with("total "))
        .map(|line| line.split_whitespace().take(3).collect())
        .unwrap_or_default();
    assert_eq!(total, ["total", "20000", "0.0"], "{table}");
}

#[test]
fn far_timestamps_in_different_chunks_give_one_timeline_whatever_the_threads() {
    let dir = Dir::new("hostile-chunks");
    // 20 000 lines are several chunks: the far lines coarsen the steps of different workers'
    // timelines at different times.
    let mut lines = generated(&dir, "g.log", 20_000);
    lines[0] = lines[0].replace("09/Mar/2025:12:00:00", "01/Jan/1970:12:00:00");
    lines[10_000] = traefik("01/Jan/2100:00:00:00", "/late", "5", "late", "1");
    lines[19_999] = lines[19_999].replace("09/Mar/2025", "10/Mar/2025");
    dir.create("far.log", lines.concat());
    let report = json_for_any_threads(&dir, &["far.log"]);
    // One-day steps from the epoch: 1970-01-01 is step 0, 2025-03-09 step 20 156, 2100-01-01
    // (4 102 444 800 s) step 47 482.
    let timeline = &report["timeline"];
    assert_eq!(
        (&timeline["start_epoch_second"], &timeline["step_seconds"]),
        (&json!(0), &json!(86_400))
    );
    let mut expected = vec![0; 47_483];
    expected[0] = 1;
    expected[20_156] = 19_997;
    expected[20_157] = 1;
    expected[47_482] = 1;
    assert_eq!(timeline["requests"], json!(expected));
}

#[test]
fn detection_passes_over_an_empty_first_file() {
    let dir = Dir::new("hostile-empty-first");
    dir.create("access.log", "");
    generated(&dir, "access.log.1", 100);
    let report = dir
        .command()
        .args(["report", "access.log*", "--json", "-q"])
        .json();
    assert_eq!(report["format"], "traefik-common");
    // Files are read in the order of their first timestamp; one without comes last.
    assert_eq!(report["inputs"], json!(["access.log.1", "access.log"]));
    assert_eq!(
        report["lines"],
        json!({"total": 100, "parsed": 100, "malformed": 0, "filtered": 0})
    );
}

/// A log whose first line is over the 64 KiB line limit, then 10 000 valid lines.
fn over_long_first_line(dir: &Dir) -> String {
    let lines = generated(dir, "g.log", 10_000);
    format!("{}\n{}", "x".repeat(70_000), lines.concat())
}

/// What the report of [`over_long_first_line`] read as `input` says of its lines.
fn assert_over_long_first_line_counted(report: &Value, input: &str) {
    assert_eq!(report["format"], "traefik-common");
    assert_eq!(
        report["lines"],
        json!({"total": 10_001, "parsed": 10_000, "malformed": 1, "filtered": 0})
    );
    let sample = &report["malformed_samples"][0];
    assert_eq!(
        (&sample["input"], &sample["line_number"], &sample["error"]),
        (
            &json!(input),
            &json!(1),
            &json!("line longer than 65536 bytes")
        )
    );
    assert_eq!(sample["text"], "x".repeat(256));
}

#[test]
fn detection_passes_over_a_first_line_longer_than_the_limit_in_a_file_or_a_pipe() {
    let dir = Dir::new("hostile-long-first");
    let log = over_long_first_line(&dir);
    dir.create("long.log", &log);
    let report = dir
        .command()
        .args(["report", "long.log", "--json", "-q"])
        .json();
    assert_over_long_first_line_counted(&report, "long.log");
    let piped = dir
        .command()
        .args(["report", "-", "--json", "-q"])
        .stdin(log)
        .json();
    assert_over_long_first_line_counted(&piped, "-");
}

#[test]
fn serve_detection_passes_over_empty_files_and_over_long_lines_too() {
    let dir = Dir::new("hostile-serve-detect");
    dir.create("a.log", "");
    dir.create("b.log", over_long_first_line(&dir));
    let pattern = format!("{}/*.log", dir.path().display());
    let format = vantage_edge::serve::detect_format(&[pattern]).expect("detects");
    assert_eq!(format, vantage_edge::format::Format::TraefikCommon);
    let empty = format!("{}/a.log", dir.path().display());
    let error = vantage_edge::serve::detect_format(std::slice::from_ref(&empty)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("no line to detect the format from in {empty}")
    );
}

#[test]
fn bytes_sent_saturate_at_the_largest_u64() {
    let dir = Dir::new("hostile-bytes");
    let time = "09/Mar/2025:12:00:00";
    let log = [
        traefik(time, "/a", U64_MAX, "a", "1"),
        traefik(time, "/a", "1", "a", "1"),
        traefik(time, "/b", U64_MAX, "b", "1"),
    ]
    .concat();
    dir.create("bytes.log", log);
    let report = json_for_any_threads(&dir, &["bytes.log", "--sort", "key"]);
    assert_eq!(report["groups"][0]["bytes_sent"], json!(u64::MAX));
    assert_eq!(report["groups"][1]["bytes_sent"], json!(u64::MAX));
    assert_eq!(report["total"]["bytes_sent"], json!(u64::MAX));
    assert_eq!(report["lines"]["parsed"], 3);
}

#[test]
fn the_longest_durations_are_kept_their_sum_saturates_and_longer_ones_are_malformed() {
    let dir = Dir::new("hostile-durations");
    // The most milliseconds whose nanoseconds fit a u64, 1 100 times: their sum in µs
    // (2.0e19) is past u64::MAX.
    let longest = "18446744073709";
    let time = "09/Mar/2025:12:00:00";
    let mut log = traefik(time, "/a", "1", "a", longest).repeat(1_100);
    log.push_str(&traefik(time, "/a", "1", "a", "18446744073710"));
    dir.create("slow.log", log);
    let report = json_for_any_threads(&dir, &["slow.log"]);
    let latency = &report["total"]["latency_seconds"];
    assert_eq!(latency["count"], 1_100);
    assert_eq!(latency["max"], 18_446_744_073.709);
    assert_eq!(latency["p50"], 18_446_744_073.709);
    assert_eq!(latency["mean"], u64::MAX as f64 / 1_100.0 / 1e6);
    assert_eq!(report["lines"]["malformed"], 1);
    let sample = &report["malformed_samples"][0];
    assert_eq!(sample["line_number"], 1_101);
    assert_eq!(sample["error"], "invalid duration at byte 101");
}

#[test]
fn an_upstream_time_list_whose_sum_overflows_is_malformed_not_wrapped() {
    let dir = Dir::new("hostile-upstream");
    let line = |upstream: &str| {
        format!(
            "10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] \"GET /x HTTP/1.1\" 200 5 \"-\" \"-\" 300 0.5 [shop-web-80] [] 10.0.0.2:80, 10.0.0.3:80 0, 5 {upstream} 502, 200 00000000000000000000000000000001\n"
        )
    };
    // The largest sum that fits (u64::MAX ns), then one nanosecond more. (Decimals keep 19
    // significant digits: write the first element with 19.)
    let log = [
        line("18446744073.70955161, -"),
        line("18446744073.70955161, 0.000000005"),
        line("18446744073.70955161, 0.000000006"),
    ]
    .concat();
    dir.create("ingress.log", log);
    let report = json_for_any_threads(&dir, &["ingress.log", "--format", "ingress-nginx"]);
    assert_eq!(report["lines"]["parsed"], 2);
    assert_eq!(report["lines"]["malformed"], 1);
    assert_eq!(report["malformed_samples"][0]["line_number"], 3);
    let upstream = &report["total"]["upstream_latency_seconds"];
    assert_eq!(upstream["count"], 2);
    assert_eq!(upstream["max"], 18_446_744_073_709_551u64 as f64 / 1e6);
}

/// A line of some format, built from one value.
type LineOf = fn(&str) -> String;

/// An HAProxy `httplog` line whose total time is `total` ms, `u64::MAX` bytes sent.
fn haproxy(total: &str) -> String {
    format!(
        "10.0.0.1:1 [09/Mar/2025:12:00:00.001] fe be/s1 0/0/0/1/{total} 200 {U64_MAX} - - ---- 1/1/0/0/0 0/0 \"GET /a HTTP/1.1\"\n"
    )
}

/// An Envoy line whose duration is `total` ms, `u64::MAX` bytes sent.
fn envoy(total: &str) -> String {
    format!(
        "[2025-03-09T12:00:00.000Z] \"GET /a HTTP/1.1\" 200 - 0 {U64_MAX} {total} 1 \"-\" \"-\" \"-\" \"a.example\" \"-\"\n"
    )
}

#[test]
fn haproxy_and_envoy_timers_past_u64_nanoseconds_are_malformed_not_wrapped() {
    let dir = Dir::new("hostile-timers");
    for (format, line) in [("haproxy", haproxy as LineOf), ("envoy", envoy)] {
        // The most milliseconds whose nanoseconds fit a u64, then one more.
        let name = format!("{format}.log");
        dir.create(
            &name,
            [line("18446744073709"), line("18446744073710")].concat(),
        );
        let report = json_for_any_threads(&dir, &[&name, "--format", format]);
        assert_eq!(
            (&report["lines"]["parsed"], &report["lines"]["malformed"]),
            (&json!(1), &json!(1)),
            "{format}"
        );
        let total = &report["total"];
        assert_eq!(
            (&total["latency_seconds"]["max"], &total["bytes_sent"]),
            (&json!(18_446_744_073.709), &json!(u64::MAX)),
            "{format}"
        );
    }
}

#[test]
fn timestamps_from_1678_to_2262_are_read_and_beyond_are_malformed() {
    let dir = Dir::new("hostile-time");
    let log = [
        traefik("01/Jan/1678:00:00:00", "/a", "1", "a", "1"),
        traefik("31/Dec/2261:23:59:59", "/a", "1", "a", "1"),
        traefik("01/Jan/0001:00:00:00", "/a", "1", "a", "1"),
        traefik("31/Dec/9999:23:59:59", "/a", "1", "a", "1"),
    ]
    .concat();
    dir.create("time.log", log);
    let report = json_for_any_threads(&dir, &["time.log"]);
    assert_eq!(
        report["time"],
        json!({"first": "1678-01-01T00:00:00Z", "last": "2261-12-31T23:59:59Z",
               "seconds": 18_429_206_399.0})
    );
    assert_eq!(report["lines"]["malformed"], 2);
    // Four-day steps: the finest that covers 584 years in 86 400 points or fewer.
    let timeline = &report["timeline"];
    assert_eq!(timeline["step_seconds"], 345_600);
    let requests = timeline["requests"].as_array().expect("a list");
    assert_eq!(requests.len(), 53_326);
    assert_eq!((&requests[0], &requests[53_325]), (&json!(1), &json!(1)));
    let table = dir.command().args(["report", "time.log"]).stdout();
    assert!(
        table.starts_with(
            "traefik-common: 1 input, 4 lines: 2 parsed, 2 malformed, 0 filtered; \
             1678-01-01T00:00:00Z to 2261-12-31T23:59:59Z (18429206399 s)\n"
        ),
        "{table}"
    );
    // Caddy's numeric `ts`: up to the last nanosecond an i64 holds.
    let caddy = |ts: &str| {
        format!("{{\"ts\":{ts},\"logger\":\"http.log.access\",\"duration\":0.5,\"status\":200}}\n")
    };
    dir.create(
        "caddy.log",
        [caddy("9223372036.854775807"), caddy("1e30")].concat(),
    );
    let report = json_for_any_threads(&dir, &["caddy.log", "--format", "caddy-json"]);
    assert_eq!(report["time"]["last"], "2262-04-11T23:47:16.854775807Z");
    assert_eq!(report["lines"]["malformed"], 1);
}

/// The report in `outcome` counted `lines` lines, every one parsed.
fn assert_every_line_parsed_once(outcome: &Outcome, lines: usize) {
    assert_eq!(outcome.code, 0, "{outcome}");
    let report: Value = serde_json::from_str(&outcome.stdout).expect("one JSON document");
    assert_eq!(
        report["lines"],
        json!({"total": lines, "parsed": lines, "malformed": 0, "filtered": 0}),
        "{outcome}"
    );
    assert_eq!(report["total"]["requests"], lines);
}

/// How `bash -c script BIN args…` ended, or `None` (with a note) when there is no bash and
/// `CI` is not set.
fn bash(script: &str, args: &[&Path]) -> Option<Outcome> {
    let spawned = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    match spawned {
        Ok(child) => Some(wait_with_output(child)),
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("note: skipped, cannot run bash: {error}");
            None
        }
        Err(error) => panic!("bash is needed (CI is set): {error}"),
    }
}

#[test]
fn a_process_substitution_is_read_once() {
    let dir = Dir::new("hostile-devfd");
    let lines = generated(&dir, "access.log", 30_000).len();
    let script = r#""$0" report -q --json <(cat "$1")"#;
    if let Some(outcome) = bash(script, &[&dir.join("access.log")]) {
        assert_every_line_parsed_once(&outcome, lines);
        let report: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
        let input = report["inputs"][0].as_str().unwrap_or_default();
        assert!(input.starts_with("/dev/fd/"), "{input}");
    }
}

#[test]
fn dev_stdin_is_read_once() {
    let dir = Dir::new("hostile-devstdin");
    let log = generated(&dir, "access.log", 30_000);
    let outcome = dir
        .command()
        .args(["report", "-q", "--json", "/dev/stdin"])
        .stdin(log.concat())
        .run();
    assert_every_line_parsed_once(&outcome, log.len());
}

#[test]
fn a_named_fifo_is_read_once() {
    let dir = Dir::new("hostile-fifo");
    let log = generated(&dir, "access.log", 30_000);
    let fifo = dir.join("access.fifo");
    match Command::new("mkfifo").arg(&fifo).status() {
        Ok(status) => assert!(status.success(), "mkfifo failed: {status}"),
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("note: skipped, cannot run mkfifo: {error}");
            return;
        }
        Err(error) => panic!("mkfifo is needed (CI is set): {error}"),
    }
    let text = log.concat();
    let path = fifo.clone();
    // Opening a FIFO to write blocks until a reader opens it: the binary.
    let writer = std::thread::spawn(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut fifo| fifo.write_all(text.as_bytes()))
    });
    let outcome = dir
        .command()
        .args(["report", "-q", "--json", "access.fifo"])
        .run();
    // Should the binary not have opened the FIFO, a reader here lets the writer finish.
    if !writer.is_finished() {
        std::thread::spawn(move || std::fs::read(fifo));
    }
    let deadline = Instant::now() + WAIT_LIMIT;
    while !writer.is_finished() {
        assert!(Instant::now() < deadline, "the FIFO writer is stuck");
        std::thread::sleep(Duration::from_millis(5));
    }
    let written = writer.join().expect("the writer does not panic");
    assert_every_line_parsed_once(&outcome, log.len());
    written.expect("every byte went through the FIFO");
}

/// What a terminal acts on: ESC, BEL, CSI (C1, as UTF-8), DEL.
const CONTROLS: [char; 4] = ['\u{1b}', '\u{7}', '\u{9b}', '\u{7f}'];

fn assert_no_control(text: &str, what: &str) {
    assert!(
        !text.contains(CONTROLS),
        "a control character in {what}: {text:?}"
    );
}

#[test]
fn control_sequences_in_log_lines_never_reach_the_terminal_raw() {
    let dir = Dir::new("hostile-escapes");
    let time = "09/Mar/2025:12:00:00";
    let log = [
        traefik(time, "/a", "1", "evil\u{1b}]0;pwned\u{7}", "1"),
        traefik(time, "/b\u{1b}[31m", "1", "red\u{9b}31m\u{7f}", "2"),
        "bad \u{1b}[2J line\n".to_owned(),
    ]
    .concat();
    let name = "access\u{1b}]0;x\u{7}.log";
    dir.create(name, log);
    let table = dir.command().args(["report", "-q", name]).stdout();
    assert_no_control(&table, "the table");
    assert!(table.contains("\nevil\\u{1b}]0;pwned\\u{7}  "), "{table}");
    assert!(table.contains("\nred\\u{9b}31m\\u{7f}  "), "{table}");
    assert!(
        table.ends_with(
            "  access\\u{1b}]0;x\\u{7}.log:3: bad \\u{1b}[2J line \
             (expected '<client> - <user> [<timestamp>]' at byte 0)\n"
        ),
        "{table}"
    );
    let by_route = dir
        .command()
        .args(["report", "-q", "--by", "route", name])
        .stdout();
    assert_no_control(&by_route, "the table by route");
    assert!(by_route.contains("\n/b\\u{1b}[31m  "), "{by_route}");
    // JSON escapes every control character, and the values are the logged ones.
    let outcome = dir.command().args(["report", "-v", "--json", name]).run();
    assert_eq!(outcome.code, 0, "{outcome}");
    assert_no_control(&outcome.stdout, "the JSON document");
    assert_no_control(&outcome.stderr, "the diagnostics");
    let report: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
    let mut routers: Vec<&str> = report["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|group| group["key"]["router"].as_str())
        .collect();
    routers.sort_unstable();
    assert_eq!(routers, ["evil\u{1b}]0;pwned\u{7}", "red\u{9b}31m\u{7f}"]);
    assert_eq!(report["malformed_samples"][0]["text"], "bad \u{1b}[2J line");
    // Errors name the input as given, escaped.
    let missing = format!("{name}.gone");
    let outcome = dir.command().args(["report", &missing]).run();
    assert_eq!(outcome.code, 2, "{outcome}");
    assert_no_control(&outcome.stderr, "the error");
    assert!(
        outcome
            .stderr
            .starts_with("edge-parser: error: cannot open access\\u{1b}]0;x\\u{7}.log.gone: "),
        "{outcome}"
    );
}

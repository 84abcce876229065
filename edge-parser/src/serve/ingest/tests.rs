use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::aggregate::Dimension;
use crate::format::Format;
use crate::tail::{Batch, FileIdentity, Fingerprint};
use crate::test_support::TempDir;
use crate::watch::WatchConfig;

fn config() -> AggregateConfig {
    let mut config = AggregateConfig::new(Format::TraefikCommon);
    config.group_by = vec![Dimension::Router, Dimension::Service];
    config.count_codes = true;
    config
}

fn ingest<'c>(config: &'c AggregateConfig, restored: Restored, checkpoint: &Path) -> Ingest<'c> {
    Ingest::new(
        IngestConfig {
            aggregate: config,
            patterns: &[],
            checkpoint: Some(CheckpointTarget {
                path: checkpoint.to_owned(),
                interval: Duration::from_secs(3600),
            }),
            stale_after: Duration::from_secs(60),
            max_line_bytes: 4096,
            summaries: Arc::new(tokio::sync::watch::Sender::new(Bytes::new())),
            exposition: Arc::default(),
            scrapes: None,
        },
        restored,
        Watch::new(WatchConfig::default()).expect("default watch"),
        StatusHandle::default(),
    )
}

fn line(router: &str, status: u16) -> String {
    format!(
        "1.1.1.1 - - [09/Mar/2025:12:00:00 +0000] \"GET /a HTTP/1.1\" {status} 5 \"-\" \"-\" 1 \"{router}\" \"http://x\" 3ms\n"
    )
}

/// A batch of `lines` appended to a file at `start`.
fn batch(lines: &[String], start: u64) -> TailMessage {
    let bytes: Vec<u8> = lines.concat().into_bytes();
    TailMessage::Lines(Batch {
        path: Arc::from(Path::new("/var/log/access.log")),
        identity: FileIdentity {
            dev: 1,
            ino: 2,
            fingerprint: Fingerprint { len: 3, hash: 4 },
        },
        start_offset: start,
        end_offset: start + bytes.len() as u64,
        bytes,
        too_long: Vec::new(),
    })
}

fn metrics(ingest: &Ingest<'_>) -> String {
    let reply = ingest.metrics();
    String::from_utf8([reply.head, reply.body].concat()).expect("utf-8")
}

#[test]
fn counters_continue_from_the_checkpoint() {
    let dir = TempDir::new("ingest");
    let path = dir.join("checkpoint.json");
    let config = config();
    let first_lines = [line("a@x", 200), line("a@x", 503), line("b@x", 200)];
    let mut first = ingest(&config, Restored::default(), &path);
    first.handle(&batch(&first_lines, 0));
    first.write_checkpoint().expect("checkpoint written");
    let end = first_lines.concat().len() as u64;

    let restored =
        restore(first.config.checkpoint.as_ref(), &config, &[]).expect("readable checkpoint");
    assert!(restored.restored);
    assert_eq!(restored.files[0].offset, end);
    let mut second = ingest(&config, restored, &path);
    second.handle(&batch(&[line("a@x", 200)], end));
    // Until the next checkpoint, /metrics shows the restored counters: what is durable.
    let text = metrics(&second);
    for expected in [
        "edge_requests_total{router=\"a@x\",service=\"-\",method=\"GET\",code=\"200\"} 1\n",
        "edge_lines_total{result=\"parsed\"} 3\n",
        "edge_checkpoint_writes_total 1\n",
        "edge_checkpoint_restored 1\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    second.write_checkpoint().expect("checkpoint written");
    let text = metrics(&second);
    for expected in [
        "edge_requests_total{router=\"a@x\",service=\"-\",method=\"GET\",code=\"200\"} 2\n",
        "edge_requests_total{router=\"a@x\",service=\"-\",method=\"GET\",code=\"503\"} 1\n",
        "edge_requests_total{router=\"b@x\",service=\"-\",method=\"GET\",code=\"200\"} 1\n",
        "edge_lines_total{result=\"parsed\"} 4\n",
        "edge_checkpoint_writes_total 2\n",
        "edge_checkpoint_restored 1\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn malformed_and_over_long_lines_are_counted_and_bytes_read() {
    let dir = TempDir::new("ingest-bad");
    let config = config();
    let mut ingest = ingest(&config, Restored::default(), &dir.join("cp.json"));
    let mut message = batch(&[line("a@x", 200), "garbage\n".to_owned()], 0);
    if let TailMessage::Lines(batch) = &mut message {
        batch.too_long.push(crate::read::TooLong {
            offset: 7,
            prefix: b"x".repeat(10),
        });
    }
    ingest.handle(&message);
    ingest.write_checkpoint().expect("checkpoint written");
    let text = metrics(&ingest);
    assert!(
        text.contains("edge_lines_total{result=\"parsed\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("edge_lines_total{result=\"malformed\"} 2\n"),
        "{text}"
    );
    let bytes = line("a@x", 200).len() + "garbage\n".len();
    assert!(
        text.contains(&format!("edge_bytes_read_total {bytes}\n")),
        "{text}"
    );
    let summary = ingest.summary();
    assert_eq!(summary["lines"]["total"], 3);
    assert_eq!(summary["windows"][0]["window"], "1m");
}

#[test]
fn an_over_long_line_names_the_configured_limit() {
    let dir = TempDir::new("ingest-limit");
    let config = config();
    let mut ingest = ingest(&config, Restored::default(), &dir.join("cp.json"));
    let mut message = batch(&[], 0);
    if let TailMessage::Lines(batch) = &mut message {
        batch.too_long.push(crate::read::TooLong {
            offset: 0,
            prefix: b"x".repeat(10),
        });
    }
    ingest.handle(&message);
    let sample = &ingest.aggregator.aggregate().malformed_samples()[0];
    assert_eq!(sample.error, "line longer than 4096 bytes");
}

#[test]
fn another_grouping_is_labelled_and_watched_by_dimension() {
    let dir = TempDir::new("ingest-grouping");
    let mut config = config();
    // Service first: the router label comes from the route, the watch follows the route too.
    config.group_by = vec![Dimension::Service, Dimension::Route];
    let mut ingest = ingest(&config, Restored::default(), &dir.join("cp.json"));
    ingest.handle(&batch(&[line("a@x", 200), line("b@x", 503)], 0));
    ingest.write_checkpoint().expect("checkpoint written");
    let text = metrics(&ingest);
    for expected in [
        "edge_requests_total{router=\"/a\",service=\"-\",method=\"GET\",code=\"200\"} 1\n",
        "edge_requests_total{router=\"/a\",service=\"-\",method=\"GET\",code=\"503\"} 1\n",
        "edge_request_duration_seconds_count{router=\"/a\",service=\"-\"} 2\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert_eq!(ingest.watch_index, Some(1));
    let summary = ingest.summary();
    assert_eq!(summary["group_by"], serde_json::json!(["service", "route"]));
}

#[test]
fn metrics_never_show_more_than_the_last_checkpoint_holds() {
    let dir = TempDir::new("ingest-durable");
    let path = dir.join("checkpoint.json");
    let config = config();
    let mut ingest = ingest(&config, Restored::default(), &path);
    let before = metrics(&ingest);
    assert!(
        before.contains("edge_lines_total{result=\"parsed\"} 0\n"),
        "{before}"
    );
    ingest.handle(&batch(&[line("a@x", 200)], 0));
    let unwritten = metrics(&ingest);
    assert!(
        unwritten.contains("edge_lines_total{result=\"parsed\"} 0\n"),
        "{unwritten}"
    );
    assert!(!unwritten.contains("edge_requests_total{"), "{unwritten}");
    // The gauges are of the present moment all the same.
    assert!(
        unwritten.contains("edge_last_line_timestamp_seconds 1741521600\n"),
        "{unwritten}"
    );

    ingest.write_checkpoint().expect("checkpoint written");
    let written = metrics(&ingest);
    assert!(
        written.contains("edge_lines_total{result=\"parsed\"} 1\n"),
        "{written}"
    );
    assert!(
        written.contains(
            "edge_requests_total{router=\"a@x\",service=\"-\",method=\"GET\",code=\"200\"} 1\n"
        ),
        "{written}"
    );
    // What the checkpoint file holds is what was shown.
    let restored = restore(ingest.config.checkpoint.as_ref(), &config, &[]).expect("readable");
    assert_eq!(restored.state.aggregate.lines().parsed, 1);
}

#[test]
fn a_failed_checkpoint_keeps_the_last_success_time_and_the_shown_counters() {
    let dir = TempDir::new("ingest-failing");
    let config = config();
    // The checkpoint's directory does not exist: every write fails.
    let mut ingest = ingest(&config, Restored::default(), &dir.join("missing/cp.json"));
    ingest.handle(&batch(&[line("a@x", 200)], 0));
    assert!(ingest.write_checkpoint().is_err());
    assert!(ingest.write_checkpoint().is_err());
    let text = metrics(&ingest);
    for expected in [
        "edge_checkpoint_writes_total 0\n",
        "edge_checkpoint_errors_total 2\n",
        "edge_lines_total{result=\"parsed\"} 0\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("edge_checkpoint_last_success_timestamp_seconds"),
        "{text}"
    );
}

#[test]
fn a_line_from_the_future_does_not_empty_the_windows_or_pin_the_lag() {
    let dir = TempDir::new("ingest-future");
    let config = config();
    let mut ingest = ingest(&config, Restored::default(), &dir.join("cp.json"));
    let now = unix_now() as i64;
    let stamped = |secs: i64| {
        let day = crate::format::Timestamp::from_unix_nanos(secs * 1_000_000_000).to_string();
        // 2025-03-09T12:00:00.000000000Z -> 09/Mar/2025:12:00:00
        let (date, time) = day.split_once('T').expect("rfc 3339");
        let mut parts = date.split('-');
        let (y, m, d) = (
            parts.next().expect("y"),
            parts.next().expect("m"),
            parts.next().expect("d"),
        );
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ][m.parse::<usize>().expect("month") - 1];
        format!(
            "1.1.1.1 - - [{d}/{month}/{y}:{} +0000] \"GET /a HTTP/1.1\" 200 5 \"-\" \"-\" 1 \"a@x\" \"http://x\" 3ms\n",
            &time[..8]
        )
    };
    let lines = [stamped(now + 3600), stamped(now - 1), stamped(now - 1)];
    ingest.handle(&batch(&lines, 0));
    let summary = ingest.summary();
    assert_eq!(
        summary["windows"][0]["groups"][0]["requests"], 3,
        "{summary}"
    );
    assert_eq!(summary["clock_skew"]["ahead"], 1);
    assert_eq!(
        summary["last_line_timestamp"],
        serde_json::json!((now - 1) as f64)
    );
    let text = metrics(&ingest);
    assert!(
        text.contains(&format!("edge_last_line_timestamp_seconds {}\n", now - 1)),
        "{text}"
    );
    assert!(
        text.contains("edge_clock_skew_lines_total{direction=\"ahead\"} 1\n"),
        "{text}"
    );
}

#[test]
fn a_checkpoint_between_a_rotation_and_its_new_file_does_not_count_the_rotation_twice() {
    let dir = TempDir::new("ingest-rotation");
    dir.write("access.log", line("a@x", 200));
    let mut tail = crate::tail::TailConfig::new([dir.join("access.log").display().to_string()]);
    tail.from_start = true;
    let path = dir.join("checkpoint.json");
    let config = config();
    let mut first = ingest(&config, Restored::default(), &path);
    let mut tailer = crate::tail::Tailer::new(tail.clone()).expect("valid configuration");
    tailer.poll(|message| first.handle(&message));
    dir.rename("access.log", "access.log.1");
    dir.write("access.log", line("b@x", 200));
    let mut messages = Vec::new();
    tailer.poll(|message| messages.push(message));
    let rotated = messages
        .iter()
        .position(|message| matches!(message, TailMessage::Event(TailEvent::Rotated { .. })))
        .expect("the rename is seen");
    assert!(matches!(
        messages[rotated + 1],
        TailMessage::Event(TailEvent::Opened { .. })
    ));
    // A tick writes the checkpoint right after the rotation is taken in, before the new
    // file's position; then the process is killed.
    for message in &messages[..=rotated] {
        first.handle(message);
    }
    first.write_checkpoint().expect("checkpoint written");
    let target = first.config.checkpoint.clone();
    drop(first);

    let restored = restore(target.as_ref(), &config, &[]).expect("readable checkpoint");
    let files = restored.files.clone();
    let mut second = ingest(&config, restored, &path);
    let mut tailer = crate::tail::Tailer::resume(tail, files).expect("valid configuration");
    tailer.poll(|message| second.handle(&message));
    second.write_checkpoint().expect("checkpoint written");
    let text = metrics(&second);
    for expected in [
        "edge_file_rotations_total{kind=\"rename\"} 1\n",
        "edge_lines_total{result=\"parsed\"} 2\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn a_checkpoint_written_by_the_writer_thread_shows_once_it_is_on_disk() {
    let dir = TempDir::new("ingest-writer");
    let path = dir.join("checkpoint.json");
    let config = config();
    let mut ingest = ingest(&config, Restored::default(), &path);
    let outcomes = ingest
        .checkpoint_outcomes()
        .expect("a writer with a checkpoint");
    ingest.handle(&batch(&[line("a@x", 200)], 0));
    ingest.start_checkpoint();
    // Handed over, not yet taken in: /metrics still shows the last checkpoint's counters.
    let before = metrics(&ingest);
    assert!(
        before.contains("edge_lines_total{result=\"parsed\"} 0\n"),
        "{before}"
    );
    assert!(
        before.contains("edge_checkpoint_writes_total 0\n"),
        "{before}"
    );
    // A checkpoint that falls due while one is written waits for it.
    ingest.start_checkpoint();
    let written = outcomes
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer answers");
    assert!(written.result.is_ok());
    ingest.checkpoint_written(written);
    let after = metrics(&ingest);
    for expected in [
        "edge_lines_total{result=\"parsed\"} 1\n",
        "edge_checkpoint_writes_total 1\n",
    ] {
        assert!(after.contains(expected), "missing {expected:?} in\n{after}");
    }
    assert!(outcomes.try_recv().is_err(), "one write only");
    let restored = restore(ingest.config.checkpoint.as_ref(), &config, &[]).expect("readable");
    assert_eq!(restored.state.aggregate.lines().parsed, 1);
    assert_eq!(restored.state.health.checkpoint_writes, 1);
}

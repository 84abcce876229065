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
            checkpoint: Some(CheckpointTarget {
                path: checkpoint.to_owned(),
                interval: Duration::from_secs(3600),
            }),
            stale_after: Duration::from_secs(60),
            max_line_bytes: 4096,
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
    String::from_utf8(ingest.metrics().body.to_vec()).expect("utf-8")
}

#[test]
fn counters_continue_from_the_checkpoint() {
    let dir = TempDir::new("ingest");
    let path = dir.join("checkpoint.json");
    let config = config();
    let first_lines = [line("a@x", 200), line("a@x", 503), line("b@x", 200)];
    let mut first = ingest(&config, Restored::default(), &path);
    first.handle(&batch(&first_lines, 0));
    first.write_checkpoint();
    let end = first_lines.concat().len() as u64;

    let restored = restore(first.config.checkpoint.as_ref(), &config).expect("readable checkpoint");
    assert!(restored.restored);
    assert_eq!(restored.files[0].offset, end);
    let mut second = ingest(&config, restored, &path);
    second.handle(&batch(&[line("a@x", 200)], end));
    let text = metrics(&second);
    for expected in [
        "edge_requests_total{router=\"a@x\",service=\"-\",method=\"GET\",code=\"200\"} 2\n",
        "edge_requests_total{router=\"a@x\",service=\"-\",method=\"GET\",code=\"503\"} 1\n",
        "edge_requests_total{router=\"b@x\",service=\"-\",method=\"GET\",code=\"200\"} 1\n",
        "edge_lines_total{result=\"parsed\"} 4\n",
        "edge_checkpoint_writes_total 1\n",
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

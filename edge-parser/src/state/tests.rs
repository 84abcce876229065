use super::*;
use crate::aggregate::{Aggregator, CodeCount, GroupKey, GroupStats, LinePosition, StatusClasses};
use crate::histogram::LatencyHistogram;
use crate::tail::{FileIdentity, Fingerprint, seal};
use crate::test_support::TempDir;

mod hostile;

/// `aggregate` written as a checkpoint's state and read back.
pub(crate) fn round_trip(aggregate: &Aggregate) -> Aggregate {
    let health = Health::default();
    let sequence = aggregate.lines().total;
    let json =
        serde_json::to_string(&v1::State::of(aggregate, &health, sequence)).expect("serialises");
    v1::parse(&json, Limits::SHOWN).expect("valid").aggregate
}

/// The configuration of [`FIRST_RELEASE`]: `serve` on Traefik common logs.
fn first_release_config() -> AggregateConfig {
    serve_config(Format::TraefikCommon, RouteRules::auto(), 1000, None)
}

/// The state of a checkpoint as the first release wrote it (its shape is version 1).
const STATE: &str = r#"{"aggregate":{"group_by":["router","service"],
 "lines":{"total":3,"parsed":2,"malformed":1,"filtered":0},
 "malformed_samples":[{"position":{"input":0,"line":2},"text":"junk","error":"no"}],
 "first_timestamp":1741521600000000000,"last_timestamp":1741521601000000000,
 "statuses":{"200":1,"503":1},"timeline":{},
 "groups":[{"key":["a@docker","-"],"stats":{"first_seen":{"input":0,"line":1},"requests":2,
  "status_classes":[0,1,0,0,1,0],
  "latency":{"count":2,"sum":7000,"min":3000,"max":4000,"counters":[[2524,1],[3024,1]]},
  "latency_missing":0,
  "upstream_latency":{"count":0,"sum":0,"min":0,"max":0,"counters":[]},
  "bytes_sent":10,
  "codes":[{"method":"GET","code":200,"count":1},{"method":"GET","code":503,"count":1}]}}]},
 "health":{"bytes_read":300,"rotations":{"rename":1},"checkpoint_writes":4,
  "checkpoint_errors":0,"checkpoint_last_success":1741521605},
 "sequence":3}"#;

/// A checkpoint as the first release wrote it: version 1, no checksum, no log patterns.
fn first_release() -> String {
    format!(
        r#"{{"magic":"vantage-edge-checkpoint","version":1,
"config":"format=traefik-common by=router,service","files":[],
"state":{STATE}}}"#
    )
}

/// A checkpoint of this version for [`first_release_config`] and no log patterns, whose state
/// is `state` as it is, with a checksum that matches it.
fn sealed(state: &str) -> Vec<u8> {
    let config = fingerprint(&first_release_config(), &[]);
    seal(&format!("{config:?}"), "[]", state)
}

/// `error` with the file's path as `FILE` and serde's position (` at line 1 column 80`) cut
/// off.
fn reason(error: &CheckpointError, path: &Path) -> String {
    let error = error
        .to_string()
        .replace(&path.display().to_string(), "FILE");
    let position = error.rfind(" at line ").filter(|&at| {
        let rest = &error[at + " at line ".len()..];
        rest.split_once(" column ").is_some_and(|(line, column)| {
            [line, column]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    match position {
        Some(at) => error[..at].to_owned(),
        None => error,
    }
}

#[test]
fn a_checkpoint_of_the_first_release_is_shown_but_not_resumed() {
    let dir = TempDir::new("state-v1");
    let path = dir.write("checkpoint.json", first_release());
    let config = first_release_config();
    assert_eq!(
        reason(
            &restore(&path, &config, &[]).expect_err("not resumed"),
            &path
        ),
        "checkpoint FILE has format version 1, from before checksums: it can be shown but not resumed from (this build writes version 2)"
    );
    let snapshot = read_snapshot(&path).expect("shown");
    assert_eq!(snapshot.config, "format=traefik-common by=router,service");
    let state = snapshot.state;
    assert_eq!((state.sequence, state.health.bytes_read), (3, 300));
    assert_eq!(state.health.rotations["rename"], 1);
    let aggregate = &state.aggregate;
    assert_eq!(aggregate.lines().total, 3);
    assert_eq!(aggregate.malformed_samples()[0].text, "junk");
    assert_eq!(
        aggregate.statuses().iter().collect::<Vec<_>>(),
        [(200, 1), (503, 1)]
    );
    let mut latency = LatencyHistogram::new();
    latency.record(3000);
    latency.record(4000);
    let stats = aggregate
        .group(&GroupKey::new(["a@docker", "-"]))
        .expect("the group");
    assert_eq!(
        stats,
        &GroupStats {
            first_seen: LinePosition::new(0, 1),
            requests: 2,
            status_classes: StatusClasses::from_counts([0, 1, 0, 0, 1, 0]),
            latency,
            latency_missing: 0,
            upstream_latency: LatencyHistogram::new(),
            bytes_sent: 10,
            codes: vec![
                CodeCount {
                    method: "GET",
                    code: 200,
                    count: 1
                },
                CodeCount {
                    method: "GET",
                    code: 503,
                    count: 1
                },
            ],
            upstream: crate::aggregate::UpstreamCounts::default(),
        }
    );
    // Written again, its state is the same document, in a checkpoint that is resumed.
    let patterns = ["/var/log/traefik/access.log".to_owned()];
    let written = checkpoint(
        fingerprint(&config, &patterns),
        Vec::new(),
        aggregate,
        &state.health,
        state.sequence,
    );
    written.write_atomic(&path).expect("writes");
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("reads")).expect("json");
    let first: serde_json::Value = serde_json::from_str(STATE).expect("json");
    assert_eq!(again["state"], first);
    assert_eq!(again["version"], 2);
    let (resumed, files) = restore(&path, &config, &patterns)
        .expect("resumed")
        .expect("present");
    assert!(files.is_empty());
    assert_eq!(resumed, state);
}

#[test]
fn an_aggregate_round_trips_through_the_persisted_state() {
    let mut config = AggregateConfig::new(Format::TraefikCommon);
    config.count_codes = true;
    let mut aggregator = Aggregator::new(&config);
    for (n, line) in [
        r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /users/42 HTTP/1.1" 200 512 "-" "-" 1 "users@docker" "http://10.0.0.7:80" 12ms"#,
        "garbage",
        r#"10.0.0.1 - - [09/Mar/2025:12:00:02 +0000] "BREW /orders HTTP/1.1" 201 0 "-" "-" 3 "orders@docker" "http://10.0.0.8:80" 5ms"#,
    ]
    .iter()
    .enumerate()
    {
        aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
    }
    let aggregate = aggregator.into_aggregate();
    assert_eq!(round_trip(&aggregate), aggregate);
}

#[test]
fn upstream_counts_round_trip_through_the_persisted_state() {
    let mut config = AggregateConfig::new(Format::TraefikJson);
    config.count_codes = true;
    let mut aggregator = Aggregator::new(&config);
    for (n, line) in [
        // A rate limit's answer (no upstream), then a request retried twice.
        r#"{"DownstreamStatus":429,"Duration":52000,"OriginDuration":0,"OriginStatus":0,"RouterName":"api@file"}"#,
        r#"{"DownstreamStatus":200,"Duration":9000,"OriginDuration":8000,"OriginStatus":200,"RetryAttempts":2,"RouterName":"api@file"}"#,
    ]
    .iter()
    .enumerate()
    {
        aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
    }
    let aggregate = aggregator.into_aggregate();
    let total = aggregate.total();
    assert_eq!(
        total.upstream,
        crate::aggregate::UpstreamCounts {
            unforwarded: 1,
            retries: 2
        }
    );
    assert_eq!(round_trip(&aggregate), aggregate);
}

/// Why `serve` refuses a checkpoint whose state is [`STATE`] with `from` replaced by `to`
/// (sealed with a checksum that matches, so that the state itself is judged).
fn refused(from: &str, to: &str) -> String {
    let dir = TempDir::new("state-corrupt");
    let state = STATE.replacen(from, to, 1);
    assert_ne!(state, STATE, "the test edits the state: {from}");
    let path = dir.write("checkpoint.json", sealed(&state));
    let error = restore(&path, &first_release_config(), &[]).expect_err(to);
    reason(&error, &path)
}

#[test]
fn the_unedited_state_is_resumed() {
    let dir = TempDir::new("state-sealed");
    let path = dir.write("checkpoint.json", sealed(STATE));
    let (state, _) = restore(&path, &first_release_config(), &[])
        .expect("valid")
        .expect("present");
    assert_eq!(state.aggregate.lines().parsed, 2);
}

#[test]
fn each_rule_of_the_state_is_refused_naming_it() {
    let corrupt = |reason: &str| format!("checkpoint FILE is corrupt: {reason}");
    let group = r#"group ["a@docker", "-"]"#;
    for (from, to, expected) in [
        // Lines and sequence.
        (
            r#""total":3"#,
            r#""total":4"#,
            "its 4 lines are not its 2 parsed, 1 malformed and 0 filtered".to_owned(),
        ),
        (
            r#""sequence":3"#,
            r#""sequence":4"#,
            "its sequence 4 is not its 3 lines".to_owned(),
        ),
        (
            r#""group_by":["router","service"]"#,
            r#""group_by":["router","router"]"#,
            "its grouping names router twice".to_owned(),
        ),
        (
            r#""group_by":["router","service"]"#,
            r#""group_by":["router","service","host","route","method","status","router"]"#,
            "its state: more than 6 dimensions in group_by".to_owned(),
        ),
        // Samples.
        (
            r#""line":2},"text""#,
            r#""line":9},"text""#,
            "a malformed sample is at line 9, outside its 3 lines".to_owned(),
        ),
        (
            r#""malformed_samples":[{"position":{"input":0,"line":2},"text":"junk","error":"no"}]"#,
            r#""malformed_samples":[{"position":{"input":0,"line":2},"text":"junk","error":"no"},{"position":{"input":0,"line":3},"text":"junk","error":"no"}]"#,
            "it has 2 malformed samples, more than its 1 malformed lines or the 5 kept".to_owned(),
        ),
        // Timestamps.
        (
            r#""first_timestamp":1741521600000000000"#,
            r#""first_timestamp":1741521602000000000"#,
            "its first timestamp 1741521602000000000 is after its last 1741521601000000000"
                .to_owned(),
        ),
        (
            r#""first_timestamp":1741521600000000000"#,
            r#""first_timestamp":null"#,
            "it has one of its first and last timestamps, not both".to_owned(),
        ),
        // Statuses.
        (
            r#""statuses":{"200":1,"503":1}"#,
            r#""statuses":{"200":1,"503":2}"#,
            "its statuses count 3 requests, its parsed lines are 2".to_owned(),
        ),
        (
            r#""statuses":{"200":1,"503":1}"#,
            r#""statuses":{"200":2,"503":0}"#,
            "its statuses: a count of zero".to_owned(),
        ),
        (
            r#""statuses":{"200":1,"503":1}"#,
            r#""statuses":{"200":1,"200":1}"#,
            "its state: 200 appears twice in the statuses".to_owned(),
        ),
        (
            r#""statuses":{"200":1,"503":1}"#,
            r#""statuses":{"200":2}"#,
            "its statuses by class [0, 2, 0, 0, 0, 0] are not its groups' [0, 1, 0, 0, 1, 0]"
                .to_owned(),
        ),
        (
            r#""statuses":{"200":1,"503":1}"#,
            r#""statuses":{"200":1,"502":1}"#,
            "its statuses {200: 1, 502: 1} are not its groups' counts by code {200: 1, 503: 1}"
                .to_owned(),
        ),
        // Groups.
        (
            r#""key":["a@docker","-"]"#,
            r#""key":["a@docker"]"#,
            r#"group ["a@docker"]: it has 1 values, the grouping [Router, Service] has 2"#
                .to_owned(),
        ),
        (
            r#""requests":2"#,
            r#""requests":3"#,
            format!("{group}: 3 requests but 2 by status class"),
        ),
        (
            r#""first_seen":{"input":0,"line":1}"#,
            r#""first_seen":{"input":0,"line":4}"#,
            format!("{group}: it was first seen at line 4, outside its 3 lines"),
        ),
        (
            r#""latency_missing":0"#,
            r#""latency_missing":1"#,
            format!("{group}: 2 requests but 3 with or without a latency"),
        ),
        (
            r#""upstream_latency":{"count":0,"sum":0,"min":0,"max":0,"counters":[]}"#,
            r#""upstream_latency":{"count":3,"sum":9,"min":3,"max":3,"counters":[[3,3]]}"#,
            format!("{group}: 2 requests but 3 upstream latencies"),
        ),
        (
            r#""bytes_sent":10,"#,
            r#""bytes_sent":10,"upstream":{"unforwarded":3,"retries":0},"#,
            format!("{group}: 2 requests but 3 answered without an upstream"),
        ),
        (
            r#""latency":{"count":2,"sum":7000,"min":3000,"max":4000,"counters":[[2524,1],[3024,1]]}"#,
            r#""latency":{"count":2,"sum":7000,"min":3000,"max":4000,"counters":[[2524,1],[91169,1]]}"#,
            "groups[0]: histogram counter index 91169 is past the last one, 56319".to_owned(),
        ),
        // Counts by method and code.
        (
            r#"{"method":"GET","code":503,"count":1}"#,
            r#"{"method":"BREW","code":503,"count":1}"#,
            format!("{group}: unknown method \"BREW\""),
        ),
        (
            r#"{"method":"GET","code":503,"count":1}"#,
            r#"{"method":"GET","code":503,"count":4}"#,
            format!("{group}: 2 requests but 5 by method and code"),
        ),
        (
            r#"{"method":"GET","code":503,"count":1}"#,
            r#"{"method":"GET","code":200,"count":1}"#,
            format!("{group}: GET 200 appears twice"),
        ),
        (
            r#"{"method":"GET","code":503,"count":1}"#,
            r#"{"method":"GET","code":503,"count":0}"#,
            format!("{group}: GET 503 has a count of zero"),
        ),
        (
            r#"{"method":"GET","code":503,"count":1}"#,
            r#"{"method":"GET","code":404,"count":1}"#,
            format!(
                "{group}: its counts by code make [0, 1, 0, 1, 0, 0] by status class, not [0, 1, 0, 0, 1, 0]"
            ),
        ),
        (
            r#""bytes_sent":10,
  "codes":[{"method":"GET","code":200,"count":1},{"method":"GET","code":503,"count":1}]"#,
            r#""bytes_sent":10"#,
            format!("{group}: it has no counts by method and code"),
        ),
        // Health and unknown fields.
        (
            r#""rotations":{"rename":1}"#,
            r#""rotations":{"sideways":1}"#,
            "its state: unknown rotation kind \"sideways\"".to_owned(),
        ),
        (
            r#""sequence":3"#,
            r#""sequence":3,"extra":true"#,
            "its state: unknown field `extra`, expected one of `aggregate`, `health`, `sequence`"
                .to_owned(),
        ),
    ] {
        assert_eq!(refused(from, to), corrupt(&expected), "{to}");
    }
}

/// The one group of [`STATE`], as written.
fn the_group() -> &'static str {
    let start = STATE.find(r#"{"key""#).expect("a group");
    let end = STATE
        .find("]},\n \"health\"")
        .expect("the end of the groups");
    &STATE[start..end]
}

#[test]
fn a_group_with_no_request_or_twice_the_same_key_is_refused() {
    let group = the_group();
    assert_eq!(
        refused(group, &format!("{group},{group}")),
        r#"checkpoint FILE is corrupt: group ["a@docker", "-"]: it appears twice"#
    );
    let empty = r#"{"key":["b@docker","-"],"stats":{"first_seen":{"input":0,"line":1},"requests":0,
  "status_classes":[0,0,0,0,0,0],
  "latency":{"count":0,"sum":0,"min":0,"max":0,"counters":[]},"latency_missing":0,
  "upstream_latency":{"count":0,"sum":0,"min":0,"max":0,"counters":[]},"bytes_sent":0}}"#;
    assert_eq!(
        refused(group, &format!("{group},{empty}")),
        r#"checkpoint FILE is corrupt: group ["b@docker", "-"]: it has no request"#
    );
    let long = "x".repeat(70_000);
    assert_eq!(
        refused(
            r#""key":["a@docker","-"]"#,
            &format!(r#""key":["a@docker","{long}"]"#)
        ),
        "checkpoint FILE is corrupt: groups[0]: a key value of 70000 bytes, more than 65535"
    );
}

#[test]
fn more_groups_than_the_cap_and_the_overflow_group_are_refused_before_they_are_read() {
    let dir = TempDir::new("state-groups");
    let group = the_group();
    // Three groups, the second not even a group: their number is refused first.
    let state = STATE.replacen(group, &format!("{group},\"not a group\",{group}"), 1);
    let path = dir.write("checkpoint.json", sealed(&state));
    let one_group = serve_config(Format::TraefikCommon, RouteRules::auto(), 1, None);
    assert_eq!(
        reason(
            &restore(&path, &one_group, &[]).expect_err("refused"),
            &path
        ),
        "checkpoint FILE is corrupt: its groups: more than 2 groups"
    );
    // Under a higher cap the groups are read, and the second is not one.
    assert_eq!(
        reason(
            &restore(&path, &first_release_config(), &[]).expect_err("refused"),
            &path
        ),
        "checkpoint FILE is corrupt: groups[1]: invalid type: string \"not a group\", expected struct GroupV1"
    );
}

#[test]
fn a_checkpoint_of_another_grouping_or_other_logs_is_refused_naming_both() {
    let dir = TempDir::new("state-grouping");
    let config = first_release_config();
    let logs = ["/var/log/traefik/*.log".to_owned()];
    let path = dir.write(
        "checkpoint.json",
        seal(&format!("{:?}", fingerprint(&config, &logs)), "[]", STATE),
    );
    let by_route = serve_config(
        Format::TraefikCommon,
        RouteRules::auto(),
        1000,
        Some(vec![Dimension::Route]),
    );
    assert_eq!(
        reason(
            &restore(&path, &by_route, &logs).expect_err("refused"),
            &path
        ),
        r#"checkpoint FILE was made for another configuration: it has "format=traefik-common by=router,service logs=[\"/var/log/traefik/*.log\"]", this run has "format=traefik-common by=route logs=[\"/var/log/traefik/*.log\"]""#
    );
    let other_logs = ["/var/log/nginx/access.log".to_owned()];
    assert_eq!(
        reason(
            &restore(&path, &config, &other_logs).expect_err("refused"),
            &path
        ),
        r#"checkpoint FILE was made for another configuration: it has "format=traefik-common by=router,service logs=[\"/var/log/traefik/*.log\"]", this run has "format=traefik-common by=router,service logs=[\"/var/log/nginx/access.log\"]""#
    );
    // The same set of logs in another order, or named twice, is the same configuration.
    let twice = [logs[0].clone(), logs[0].clone()];
    assert!(
        restore(&path, &config, &twice)
            .expect("same logs")
            .is_some()
    );
}

#[test]
fn the_serve_grouping_and_its_fingerprint() {
    let config = serve_config(
        Format::Envoy,
        RouteRules::new(["/u/{id}"]).expect("valid"),
        0,
        None,
    );
    assert_eq!(config.group_by, [Dimension::Route, Dimension::Service]);
    assert!(config.count_codes && !config.timeline);
    assert_eq!(config.max_groups, 1);
    assert_eq!(
        fingerprint(&config, &["b/*.log".to_owned(), "a.log".to_owned()]),
        r#"format=envoy by=route,service routes=/u/{id} logs=["a.log", "b/*.log"]"#
    );
    assert_eq!(
        fingerprint(
            &config,
            &["a.log".to_owned(), "b/*.log".to_owned(), "a.log".to_owned()]
        ),
        fingerprint(&config, &["b/*.log".to_owned(), "a.log".to_owned()]),
    );
}

#[test]
fn positions_are_restored_with_the_state() {
    let dir = TempDir::new("state-files");
    let config = first_release_config();
    let files = vec![FilePosition {
        path: "/var/log/traefik/access.log".into(),
        identity: FileIdentity {
            dev: 1,
            ino: 2,
            fingerprint: Fingerprint::of(b"first line\n"),
        },
        offset: 11,
    }];
    let path = dir.join("checkpoint.json");
    let state = read_snapshot(&dir.write("v1.json", first_release()))
        .expect("shown")
        .state;
    checkpoint(
        fingerprint(&config, &[]),
        files.clone(),
        &state.aggregate,
        &state.health,
        state.sequence,
    )
    .write_atomic(&path)
    .expect("writes");
    let (_, restored) = restore(&path, &config, &[])
        .expect("valid")
        .expect("present");
    assert_eq!(restored, files);
}

use super::*;
use crate::aggregate::{Aggregator, CodeCount, GroupKey, GroupStats, LinePosition, StatusClasses};
use crate::histogram::LatencyHistogram;
use crate::test_support::TempDir;

/// `aggregate` written as a checkpoint's state and read back.
pub(crate) fn round_trip(aggregate: &Aggregate) -> Aggregate {
    let health = Health::default();
    let json = serde_json::to_string(&v1::State::of(aggregate, &health, 7)).expect("serialises");
    let state: v1::State<'static> = serde_json::from_str(&json).expect("deserialises");
    state
        .into_state(Path::new("test.json"))
        .expect("valid")
        .aggregate
}

/// A checkpoint as the first release wrote it (its state shape is version 1).
const FIRST_RELEASE: &str = r#"{"magic":"vantage-edge-checkpoint","version":1,
"config":"format=traefik-common by=router,service","files":[],
"state":{"aggregate":{"group_by":["router","service"],
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
 "sequence":3}}"#;

#[test]
fn a_checkpoint_of_the_first_release_is_read() {
    let dir = TempDir::new("state-v1");
    let path = dir.write("checkpoint.json", FIRST_RELEASE);
    let config = serve_config(Format::TraefikCommon, RouteRules::auto(), 1000, None);
    let (state, files) = restore(&path, &config).expect("readable").expect("present");
    assert!(files.is_empty());
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
        }
    );
    // Written again, it is the same document.
    let written = checkpoint(
        fingerprint(&config),
        Vec::new(),
        aggregate,
        &state.health,
        state.sequence,
    )
    .to_json()
    .expect("serialises");
    let again: serde_json::Value = serde_json::from_slice(&written).expect("json");
    let first: serde_json::Value = serde_json::from_str(FIRST_RELEASE).expect("json");
    assert_eq!(again, first);
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

/// The reason a checkpoint whose state is `state` is refused.
fn refused(state: &str) -> String {
    let dir = TempDir::new("state-corrupt");
    let document = FIRST_RELEASE.replacen(
        r#""codes":[{"method":"GET","code":200,"count":1},{"method":"GET","code":503,"count":1}]"#,
        state,
        1,
    );
    assert_ne!(document, FIRST_RELEASE, "the test edits the state");
    let path = dir.write("checkpoint.json", document);
    let error = read_snapshot(&path).expect_err("refused");
    error
        .to_string()
        .replace(&path.display().to_string(), "FILE")
}

#[test]
fn a_state_that_does_not_add_up_is_refused_naming_why() {
    assert_eq!(
        refused(
            r#""codes":[{"method":"GET","code":200,"count":1},{"method":"BREW","code":503,"count":1}]"#
        ),
        "checkpoint FILE is corrupt: group [\"a@docker\", \"-\"]: unknown method \"BREW\""
    );
    assert_eq!(
        refused(r#""codes":[{"method":"GET","code":200,"count":5}]"#),
        "checkpoint FILE is corrupt: group [\"a@docker\", \"-\"]: 2 requests but 5 by method and code"
    );
    let dir = TempDir::new("state-key");
    let path = dir.write(
        "checkpoint.json",
        FIRST_RELEASE.replace(r#""key":["a@docker","-"]"#, r#""key":["a@docker"]"#),
    );
    assert_eq!(
        read_snapshot(&path)
            .expect_err("refused")
            .to_string()
            .replace(&path.display().to_string(), "FILE"),
        "checkpoint FILE is corrupt: group [\"a@docker\"] has 1 values, the grouping [Router, Service] has 2"
    );
    let path = dir.write(
        "checkpoint.json",
        FIRST_RELEASE.replace(
            r#""status_classes":[0,1,0,0,1,0]"#,
            r#""status_classes":[0,1,0,0,0,0]"#,
        ),
    );
    assert!(
        read_snapshot(&path)
            .expect_err("refused")
            .to_string()
            .ends_with("2 requests but 1 by status class"),
    );
}

#[test]
fn a_checkpoint_of_another_grouping_is_refused() {
    let dir = TempDir::new("state-grouping");
    let path = dir.write("checkpoint.json", FIRST_RELEASE);
    let config = serve_config(
        Format::TraefikCommon,
        RouteRules::auto(),
        1000,
        Some(vec![Dimension::Route]),
    );
    let error = restore(&path, &config).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("was made for another configuration: it has \"format=traefik-common by=router,service\", this run has \"format=traefik-common by=route\""),
        "{error}"
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
        fingerprint(&config),
        "format=envoy by=route,service routes=/u/{id}"
    );
}

use std::collections::BTreeMap;

use super::*;
use crate::format::Format;

const LINES: &[&str] = &[
    r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /users/42 HTTP/1.1" 200 512 "-" "-" 1 "users@docker" "http://10.0.0.7:80" 12ms"#,
    r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /users/43 HTTP/1.1" 503 10 "-" "-" 2 "users@docker" "http://10.0.0.7:80" 30ms"#,
    "garbage",
    r#"10.0.0.1 - - [09/Mar/2025:12:00:02 +0000] "POST /orders HTTP/1.1" 201 0 "-" "-" 3 "orders@docker" "http://10.0.0.8:80" 5ms"#,
];

fn aggregate(config: &AggregateConfig, lines: &[&str]) -> Aggregate {
    let mut aggregator = Aggregator::new(config);
    for (n, line) in lines.iter().enumerate() {
        aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
    }
    let mut aggregate = aggregator.into_aggregate();
    aggregate.finish(config.max_groups);
    aggregate
}

fn key(values: &[&str]) -> GroupKey {
    GroupKey::new(values)
}

#[test]
fn every_line_is_accounted_and_grouped_by_router() {
    let config = AggregateConfig::new(Format::TraefikCommon);
    let aggregate = aggregate(&config, LINES);
    assert_eq!(
        aggregate.lines,
        LineCounts {
            total: 4,
            parsed: 3,
            malformed: 1,
            filtered: 0
        }
    );
    assert_eq!(
        aggregate.malformed_samples[0].position,
        LinePosition::new(0, 3)
    );
    assert_eq!(aggregate.malformed_samples[0].text, "garbage");
    let users = &aggregate.groups[&key(&["users@docker"])];
    assert_eq!(users.requests, 2);
    assert_eq!(users.status_classes.counts(), [0, 1, 0, 0, 1, 0]);
    assert_eq!(users.latency.max(), 30_000);
    assert_eq!(users.latency.min(), 12_000);
    assert_eq!(aggregate.groups[&key(&["orders@docker"])].requests, 1);
    assert_eq!(
        aggregate.statuses.iter().collect::<BTreeMap<_, _>>(),
        BTreeMap::from([(200, 1), (201, 1), (503, 1)])
    );
    assert_eq!(
        aggregate.timeline.iter().collect::<BTreeMap<_, _>>(),
        BTreeMap::from([(1_741_521_600, 2), (1_741_521_602, 1)])
    );
    assert_eq!(aggregate.seconds(), 2.0);
    assert_eq!(aggregate.total().requests, 3);
}

#[test]
fn groups_combine_dimensions() {
    let mut config = AggregateConfig::new(Format::TraefikCommon);
    config.group_by = vec![Dimension::Route, Dimension::Method, Dimension::Status];
    let aggregate = aggregate(&config, LINES);
    let mut keys: Vec<_> = aggregate.groups.keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            key(&["/orders", "POST", "201"]),
            key(&["/users/{id}", "GET", "200"]),
            key(&["/users/{id}", "GET", "503"]),
        ]
    );
}

#[test]
fn the_cap_keeps_the_groups_seen_first_and_folds_the_rest() {
    let mut config = AggregateConfig::new(Format::TraefikCommon);
    config.max_groups = 1;
    let aggregate = aggregate(&config, LINES);
    assert_eq!(aggregate.groups.len(), 2);
    assert_eq!(aggregate.groups[&key(&["users@docker"])].requests, 2);
    assert_eq!(aggregate.groups[&key(&["(overflow)"])].requests, 1);
}

#[test]
fn merged_halves_equal_the_whole() {
    let config = AggregateConfig::new(Format::TraefikCommon);
    let whole = aggregate(&config, LINES);
    let mut first = Aggregator::new(&config);
    let mut second = Aggregator::new(&config);
    for (n, line) in LINES.iter().enumerate() {
        let half = if n % 2 == 0 { &mut first } else { &mut second };
        half.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
    }
    let mut merged = first.into_aggregate();
    merged.merge(&second.into_aggregate(), config.malformed_samples);
    merged.finish(config.max_groups);
    assert_eq!(merged, whole);
}

#[test]
fn a_resumed_aggregator_goes_on_from_its_snapshot() {
    let mut config = AggregateConfig::new(Format::TraefikCommon);
    config.count_codes = true;
    let whole = aggregate(&config, LINES);
    let mut first = Aggregator::new(&config);
    for (n, line) in LINES[..2].iter().enumerate() {
        first.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
    }
    let checkpoint = crate::state::tests::round_trip(first.aggregate());
    let mut resumed = Aggregator::resume(&config, checkpoint);
    for (n, line) in LINES.iter().enumerate().skip(2) {
        resumed.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
    }
    let mut got = resumed.into_aggregate();
    got.finish(config.max_groups);
    assert_eq!(got, whole);
    assert_eq!(
        got.groups[&key(&["users@docker"])].codes,
        [
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
        ]
    );
}

#[test]
fn keys_that_are_not_utf8_are_one_group_of_their_text() {
    let config = AggregateConfig::new(Format::TraefikCommon);
    let line = |router: &[u8]| {
        let mut line =
            br#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "-" 1 ""#
                .to_vec();
        line.extend_from_slice(router);
        line.extend_from_slice(br#"" "http://10.0.0.7:80" 1ms"#);
        line
    };
    let mut aggregator = Aggregator::new(&config);
    for (n, router) in [&b"bad\xff"[..], b"bad\xff", "bad\u{fffd}".as_bytes()]
        .iter()
        .enumerate()
    {
        aggregator.add_line(LinePosition::new(0, n as u64 + 1), &line(router));
    }
    let aggregate = aggregator.finish();
    assert_eq!(aggregate.group_count(), 1);
    assert_eq!(aggregate.groups[&key(&["bad\u{fffd}"])].requests, 3);
}

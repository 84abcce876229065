use std::collections::BTreeMap;

use super::*;
use crate::aggregate::{AggregateConfig, Aggregator, LinePosition};
use crate::format::Format;

const LINES: [&str; 4] = [
    r#"1.1.1.1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/1.1" 200 10 "-" "-" 1 "a\"q@docker" "http://x" 4ms"#,
    r#"1.1.1.1 - - [09/Mar/2025:12:00:01 +0000] "GET /a HTTP/1.1" 503 10 "-" "-" 2 "a\"q@docker" "http://x" 30ms"#,
    r#"1.1.1.1 - - [09/Mar/2025:12:00:02 +0000] "BREW /a HTTP/1.1" 200 10 "-" "-" 3 "a\"q@docker" "http://x" 5ms"#,
    "junk",
];

fn aggregate(group_by: Vec<Dimension>) -> Aggregate {
    let mut config = AggregateConfig::new(Format::TraefikCommon);
    config.group_by = group_by;
    config.count_codes = true;
    let mut aggregator = Aggregator::new(&config);
    for (n, line) in LINES.iter().enumerate() {
        aggregator.add_line(LinePosition::new(0, n as u64 + 1), line.as_bytes());
    }
    aggregator.into_aggregate()
}

fn render(aggregate: &Aggregate, anomalies: &[AnomalyState]) -> String {
    let health = Health {
        bytes_read: 4096,
        rotations: BTreeMap::from([("rename".to_owned(), 2)]),
        checkpoint_writes: 3,
        checkpoint_errors: 0,
        checkpoint_last_success: Some(1_741_521_605),
    };
    let mut text = String::new();
    Exposition {
        aggregate,
        health: &health,
        files_open: 1,
        restored: true,
        anomalies,
        now: 1_741_521_612.5,
        last_line: aggregate.last_timestamp(),
        clock_skew: [0, 0],
        route_label: false,
    }
    .render(&mut text);
    text
}

#[test]
fn the_exposition_follows_the_contract() {
    let aggregate = aggregate(vec![Dimension::Router, Dimension::Service]);
    let anomalies = [AnomalyState {
        router: "a\"q@docker".to_owned(),
        kind: "drop",
        active: true,
    }];
    let text = render(&aggregate, &anomalies);
    for expected in [
        "edge_requests_total{router=\"a\\\"q@docker\",service=\"-\",method=\"GET\",code=\"200\"} 1\n",
        "edge_requests_total{router=\"a\\\"q@docker\",service=\"-\",method=\"GET\",code=\"503\"} 1\n",
        "edge_requests_total{router=\"a\\\"q@docker\",service=\"-\",method=\"_OTHER\",code=\"200\"} 1\n",
        "edge_request_duration_seconds_bucket{router=\"a\\\"q@docker\",service=\"-\",le=\"0.005\"} 2\n",
        "edge_request_duration_seconds_bucket{router=\"a\\\"q@docker\",service=\"-\",le=\"0.025\"} 2\n",
        "edge_request_duration_seconds_bucket{router=\"a\\\"q@docker\",service=\"-\",le=\"0.05\"} 3\n",
        "edge_request_duration_seconds_bucket{router=\"a\\\"q@docker\",service=\"-\",le=\"+Inf\"} 3\n",
        "edge_request_duration_seconds_sum{router=\"a\\\"q@docker\",service=\"-\"} 0.039\n",
        "edge_request_duration_seconds_count{router=\"a\\\"q@docker\",service=\"-\"} 3\n",
        "edge_lines_total{result=\"parsed\"} 3\n",
        "edge_lines_total{result=\"malformed\"} 1\n",
        "edge_bytes_read_total 4096\n",
        "edge_last_line_timestamp_seconds 1741521602\n",
        "edge_lag_seconds 10.5\n",
        "edge_file_rotations_total{kind=\"rename\"} 2\n",
        "edge_checkpoint_writes_total 3\n",
        "edge_checkpoint_restored 1\n",
        "edge_anomaly{router=\"a\\\"q@docker\",kind=\"drop\"} 1\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("edge_upstream_duration_seconds"));
    assert!(text.contains("# TYPE edge_request_duration_seconds histogram\n"));
}

#[test]
fn labels_follow_the_dimensions_of_any_grouping() {
    // Service first, then route and status: the labels are named by dimension, not position.
    let by_status = aggregate(vec![
        Dimension::Service,
        Dimension::Route,
        Dimension::Status,
    ]);
    let text = render(&by_status, &[]);
    for expected in [
        "edge_requests_total{router=\"/a\",service=\"-\",code=\"200\",method=\"GET\"} 1\n",
        "edge_requests_total{router=\"/a\",service=\"-\",code=\"200\",method=\"_OTHER\"} 1\n",
        "edge_requests_total{router=\"/a\",service=\"-\",code=\"503\",method=\"GET\"} 1\n",
        "edge_request_duration_seconds_count{router=\"/a\",service=\"-\",code=\"200\"} 2\n",
        "edge_request_duration_seconds_count{router=\"/a\",service=\"-\",code=\"503\"} 1\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("code=\"200\",method=\"GET\",code="),
        "{text}"
    );
    // Beside the services the route is also `http_route`, the label both sides join on.
    let mut beside = String::new();
    Exposition {
        aggregate: &by_status,
        health: &Health::default(),
        files_open: 0,
        restored: false,
        anomalies: &[],
        now: 0.0,
        last_line: None,
        clock_skew: [0, 0],
        route_label: true,
    }
    .render(&mut beside);
    assert!(
        beside.contains(
            "edge_requests_total{router=\"/a\",service=\"-\",http_route=\"/a\",code=\"200\",method=\"GET\"} 1\n"
        ),
        "{beside}"
    );

    let by_method = aggregate(vec![Dimension::Route, Dimension::Router, Dimension::Method]);
    let text = render(&by_method, &[]);
    for expected in [
        "edge_requests_total{router=\"a\\\"q@docker\",service=\"-\",http_route=\"/a\",method=\"GET\",code=\"200\"} 1\n",
        "edge_requests_total{router=\"a\\\"q@docker\",service=\"-\",http_route=\"/a\",method=\"BREW\",code=\"200\"} 1\n",
        "edge_request_duration_seconds_count{router=\"a\\\"q@docker\",service=\"-\",http_route=\"/a\",method=\"GET\"} 2\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert_eq!(
        router_index(&[Dimension::Route, Dimension::Router]),
        Some(1)
    );
    assert_eq!(
        router_index(&[Dimension::Service, Dimension::Route]),
        Some(1)
    );
    assert_eq!(router_index(&[Dimension::Host]), None);
}

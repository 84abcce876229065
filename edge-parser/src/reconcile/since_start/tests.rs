use std::collections::BTreeMap;

use super::*;
use crate::reconcile::split::QUANTILES;

const USERS: &str = "/users/{id}";

/// A scrape of one service instance: `(route, status, count)` samples.
fn scrape(samples: &[(&str, u16, u64)]) -> ServiceScrape {
    let text: String = samples
        .iter()
        .map(|(route, status, count)| {
            format!(
                "http_server_request_duration_seconds_count{{http_route=\"{route}\",http_response_status_code=\"{status}\"}} {count}\n"
            )
        })
        .collect();
    ServiceScrape::read(&text)
}

fn edge(rows: &[(&str, u64, u64, u64)]) -> BTreeMap<String, RouteCounts> {
    rows.iter()
        .map(|&(route, requests, proxy_errors, cancelled)| {
            (
                route.to_owned(),
                RouteCounts {
                    requests,
                    proxy_errors,
                    cancelled,
                    ..RouteCounts::default()
                },
            )
        })
        .collect()
}

fn row(report: &Reconciliation, route: &str) -> RouteReconciliation {
    report
        .routes
        .iter()
        .find(|row| row.route == route)
        .unwrap_or_else(|| panic!("no row for {route} in {report:?}"))
        .clone()
}

#[test]
fn nothing_is_reported_before_every_instance_was_scraped_once() {
    let mut reconciler = Reconciler::default();
    let a = scrape(&[(USERS, 200, 5)]);
    reconciler.observe_round([("a", Some(&a)), ("b", None)], 0.0, || {
        panic!("no start while an instance fails")
    });
    let report = reconciler.report(&edge(&[(USERS, 9, 0, 0)]), None);
    assert!(!report.started);
    assert!(report.routes.is_empty());
    assert_eq!(
        report.partial_reasons,
        ["waiting for a first successful scrape of every service instance"]
    );
}

#[test]
fn lost_requests_are_put_down_to_the_proxy_the_client_and_the_rest() {
    let mut reconciler = Reconciler::default();
    let (a0, b0) = (scrape(&[(USERS, 200, 100)]), scrape(&[(USERS, 200, 50)]));
    reconciler.observe_round([("a", Some(&a0)), ("b", Some(&b0))], 0.0, || {
        edge(&[(USERS, 1_000, 10, 1)])
    });
    // Since: the edge logged 40 (4 of them 502 by the proxy, 3 cancelled, and one 503 that the
    // service answered itself), the services ended 30: 20 + 10, one of them a 503.
    let a1 = scrape(&[(USERS, 200, 119), (USERS, 503, 1)]);
    let b1 = scrape(&[(USERS, 200, 60), ("/orders", 200, 7)]);
    reconciler.observe_round([("a", Some(&a1)), ("b", Some(&b1))], 0.0, || {
        edge(&[(USERS, 1_040, 15, 4)])
    });
    let report = reconciler.report(&edge(&[(USERS, 1_040, 15, 4)]), None);
    assert!(report.started);
    assert_eq!(report.partial_reasons, Vec::<String>::new());
    assert_eq!(
        row(&report, USERS),
        RouteReconciliation {
            route: USERS.to_owned(),
            edge_requests: 40,
            service_requests: 30,
            lost: 10,
            reasons: LostReasons {
                proxy_answered: 4,
                client_cancelled: 3,
                unexplained: 3,
            },
            unmeasured: 0,
            extra_at_service: 0,
            retries: 0,
            latency: None,
            partial: false,
        }
    );
    // A route only the service saw since: more at the service than at the edge.
    let orders = row(&report, "/orders");
    assert_eq!((orders.edge_requests, orders.service_requests), (0, 7));
    assert_eq!((orders.lost, orders.extra_at_service), (0, 7));
}

/// A route no instance has ever exported (a health check, the metrics page): what an upstream
/// answered there reached an app, so it is `unmeasured`, not lost; what the proxy answered or the
/// client gave up on is still lost, by reason. The unmatched value is measured, series or not.
#[test]
fn a_route_no_service_measures_has_its_answered_requests_unmeasured_not_lost() {
    let mut reconciler = Reconciler::default();
    let at_start = edge(&[
        (USERS, 0, 0, 0),
        ("/health", 100, 0, 0),
        ("(other)", 0, 0, 0),
    ]);
    reconciler.observe_round([("a", Some(&scrape(&[(USERS, 200, 5)])))], 0.0, || {
        at_start.clone()
    });
    // Since: /health 20 more at the edge, 2 of them 502 by the proxy and 1 cancelled; 4 paths of
    // no route at the edge, none at the service; the users route as counted on both sides.
    let now = edge(&[
        (USERS, 7, 0, 0),
        ("/health", 120, 2, 1),
        ("(other)", 4, 0, 0),
    ]);
    let a = scrape(&[(USERS, 200, 12)]);
    reconciler.observe_round([("a", Some(&a))], 1.0, || now.clone());
    let report = reconciler.report(&now, None);
    let health = row(&report, "/health");
    assert_eq!(
        (
            health.edge_requests,
            health.service_requests,
            health.lost,
            health.unmeasured
        ),
        (20, 0, 3, 17)
    );
    assert_eq!(
        health.reasons,
        LostReasons {
            proxy_answered: 2,
            client_cancelled: 1,
            unexplained: 0
        }
    );
    let other = row(&report, "(other)");
    assert_eq!(
        (other.lost, other.reasons.unexplained, other.unmeasured),
        (4, 4, 0)
    );
    let users = row(&report, USERS);
    assert_eq!((users.lost, users.unmeasured), (0, 0));
    // The windows read the same way.
    let minute = &report.windows[0];
    let health = minute
        .routes
        .iter()
        .find(|r| r.route == "/health")
        .expect("row");
    assert_eq!((health.lost, health.unmeasured), (3, 17));
    // And on /metrics.
    let mut text = String::new();
    report.render(&mut text);
    assert!(
        text.contains("edge_reconcile_unmeasured_requests{http_route=\"/health\"} 17\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "edge_reconcile_lost_requests{http_route=\"/health\",reason=\"unexplained\"} 0\n"
        ),
        "{text}"
    );
}

/// Once an instance has exported a route, the route stays measured: after a restart its page
/// lacks the route until it serves it again, and what the edge logged meanwhile is lost.
#[test]
fn a_route_stays_measured_after_a_restart_drops_it_from_the_page() {
    let mut reconciler = Reconciler::default();
    reconciler.observe_round([("a", Some(&scrape(&[(USERS, 200, 5)])))], 0.0, || {
        edge(&[(USERS, 0, 0, 0)])
    });
    let now = edge(&[(USERS, 6, 0, 0)]);
    reconciler.observe_round([("a", Some(&scrape(&[])))], 1.0, || now.clone());
    let users = row(&reconciler.report(&now, None), USERS);
    assert_eq!(
        (users.lost, users.reasons.unexplained, users.unmeasured),
        (6, 6, 0)
    );
}

#[test]
fn what_the_log_says_of_upstream_attempts_explains_losses_and_extra_requests() {
    let counts = |requests, proxy_errors, unforwarded, retries| {
        BTreeMap::from([(
            USERS.to_owned(),
            RouteCounts {
                requests,
                proxy_errors,
                unforwarded,
                retries,
                ..RouteCounts::default()
            },
        )])
    };
    let mut reconciler = Reconciler::default();
    reconciler.observe_round([("a", Some(&scrape(&[(USERS, 200, 0)])))], 0.0, || {
        counts(0, 0, 0, 0)
    });
    // The edge: 50 requests, 6 answered by a rate limit without an upstream (429), 2 502s of
    // the proxy's; the service ended 42.
    let now = counts(50, 2, 6, 0);
    reconciler.observe_round([("a", Some(&scrape(&[(USERS, 200, 42)])))], 1.0, || {
        now.clone()
    });
    let report = reconciler.report(&now, None);
    let users = row(&report, USERS);
    assert_eq!(users.lost, 8);
    assert_eq!(
        users.reasons,
        LostReasons {
            proxy_answered: 8,
            client_cancelled: 0,
            unexplained: 0
        }
    );
    // Then 10 more at the edge with 3 retries logged, 13 more at the service: the retries
    // reached it, so the net loss shrinks by 3, and the row names them.
    let later = counts(60, 2, 6, 3);
    reconciler.observe_round([("a", Some(&scrape(&[(USERS, 200, 55)])))], 2.0, || {
        later.clone()
    });
    let users = row(&reconciler.report(&later, None), USERS);
    assert_eq!((users.edge_requests, users.service_requests), (60, 55));
    assert_eq!((users.lost, users.retries), (5, 3));
}

#[test]
fn a_restarted_service_carries_what_it_counted_and_a_failing_one_makes_the_report_partial() {
    let mut reconciler = Reconciler::default();
    reconciler.observe_round([("a", Some(&scrape(&[(USERS, 200, 100)])))], 0.0, || {
        edge(&[(USERS, 0, 0, 0)])
    });
    reconciler.observe_round(
        [("a", Some(&scrape(&[(USERS, 200, 130)])))],
        0.0,
        BTreeMap::new,
    );
    // Restarted: its page has not the route until it serves it again, then its counter
    // begins again.
    reconciler.observe_round(
        [("a", Some(&scrape(&[("/orders", 200, 1)])))],
        0.0,
        BTreeMap::new,
    );
    let report = reconciler.report(&edge(&[(USERS, 30, 0, 0)]), None);
    assert_eq!(row(&report, USERS).service_requests, 30);
    reconciler.observe_round(
        [("a", Some(&scrape(&[(USERS, 200, 12)])))],
        0.0,
        BTreeMap::new,
    );
    let report = reconciler.report(&edge(&[(USERS, 42, 0, 0)]), None);
    assert_eq!(row(&report, USERS).service_requests, 42);
    assert_eq!(row(&report, USERS).lost, 0);

    reconciler.observe_round([("a", None)], 0.0, BTreeMap::new);
    let report = reconciler.report(
        &edge(&[(USERS, 50, 0, 0)]),
        Some("the edge is 9 s behind its log".to_owned()),
    );
    assert_eq!(
        report.partial_reasons,
        [
            "a: its last scrape failed",
            "the edge is 9 s behind its log"
        ]
    );
    let users = row(&report, USERS);
    assert!(users.partial);
    assert_eq!(
        (users.edge_requests, users.service_requests),
        (50, 42),
        "the last good scrape stays"
    );
}

#[test]
fn an_instance_that_joins_after_the_start_is_named() {
    let mut reconciler = Reconciler::default();
    reconciler.observe_round(
        [("a", Some(&scrape(&[(USERS, 200, 1)])))],
        0.0,
        BTreeMap::new,
    );
    let late = scrape(&[(USERS, 200, 500)]);
    reconciler.observe_round(
        [("a", Some(&scrape(&[(USERS, 200, 3)]))), ("b", Some(&late))],
        0.0,
        BTreeMap::new,
    );
    let report = reconciler.report(&BTreeMap::new(), None);
    assert_eq!(report.partial_reasons, ["b: first scraped after the start"]);
    assert_eq!(
        row(&report, USERS).service_requests,
        2,
        "b counts from when it was first seen"
    );
}

#[test]
fn the_edge_counts_come_from_the_route_dimension_and_the_codes() {
    use crate::aggregate::{AggregateConfig, Aggregator};
    use crate::format::Format;
    let mut config = AggregateConfig::new(Format::NginxCombined);
    config.group_by = vec![Dimension::Route];
    config.count_codes = true;
    let mut aggregator = Aggregator::new(&config);
    for (path, status) in [
        ("/a", 200),
        ("/a", 502),
        ("/a", 499),
        ("/b", 504),
        ("/b", 200),
    ] {
        let line = format!(
            "127.0.0.1 - - [09/Mar/2025:12:00:00 +0000] \"GET {path} HTTP/1.1\" {status} 5 \"-\" \"t\""
        );
        aggregator.add_line(Default::default(), line.as_bytes());
    }
    let counts: BTreeMap<String, (u64, u64, u64)> = RouteCounts::by_route(aggregator.aggregate())
        .into_iter()
        .map(|(route, c)| (route, (c.requests, c.proxy_errors, c.cancelled)))
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([("/a".to_owned(), (3, 1, 1)), ("/b".to_owned(), (2, 1, 0))])
    );
}

/// A service scrape of `USERS`: `n` requests in the default bucket ending at `bound`, for each
/// `(bound, n)`, cumulative as a `/metrics` page is.
fn scrape_in_buckets(groups: &[(f64, u64)]) -> ServiceScrape {
    use vantage_instrument::names::DEFAULT_DURATION_BUCKETS;
    let line = |le: &str, count: u64| {
        format!(
            "http_server_request_duration_seconds_bucket{{http_route=\"{USERS}\",le=\"{le}\"}} {count}\n"
        )
    };
    let at_or_below = |b: f64| -> u64 {
        groups
            .iter()
            .filter(|(bound, _)| *bound <= b)
            .map(|(_, n)| n)
            .sum()
    };
    let total: u64 = groups.iter().map(|(_, n)| n).sum();
    let mut text: String = DEFAULT_DURATION_BUCKETS
        .iter()
        .map(|b| line(&b.to_string(), at_or_below(*b)))
        .collect();
    text += &line("+Inf", total);
    text +=
        &format!("http_server_request_duration_seconds_count{{http_route=\"{USERS}\"}} {total}\n");
    ServiceScrape::read(&text)
}

/// Edge counts of `USERS`: per `(total bound, upstream bound, n)`, `n` requests whose
/// durations are in the default bucket ending at the first, their upstream times in the one
/// ending at the second.
fn edge_in_buckets(groups: &[(f64, f64, u64)]) -> BTreeMap<String, RouteCounts> {
    use vantage_instrument::names::DEFAULT_DURATION_BUCKETS;
    let buckets = |pick: fn(&(f64, f64, u64)) -> f64| {
        let mut counts: Vec<u64> = DEFAULT_DURATION_BUCKETS
            .iter()
            .map(|b| groups.iter().filter(|g| pick(g) <= *b).map(|g| g.2).sum())
            .collect();
        counts.push(groups.iter().map(|g| g.2).sum());
        crate::reconcile::split::Buckets(counts)
    };
    BTreeMap::from([(
        USERS.to_owned(),
        RouteCounts {
            requests: groups.iter().map(|g| g.2).sum(),
            latency: buckets(|g| g.0),
            upstream: buckets(|g| g.1),
            ..RouteCounts::default()
        },
    )])
}

#[test]
fn the_latency_split_is_read_from_both_sides_since_the_start() {
    let mut reconciler = Reconciler::default();
    // Before the start: 5 slow requests on both sides, which must not weigh in.
    let slow = (10.0, 10.0, 5);
    reconciler.observe_round([("a", Some(&scrape_in_buckets(&[(10.0, 5)])))], 0.0, || {
        edge_in_buckets(&[slow])
    });
    let after = scrape_in_buckets(&[(10.0, 5), (0.1, 10)]);
    reconciler.observe_round([("a", Some(&after))], 0.0, BTreeMap::new);
    let report = reconciler.report(&edge_in_buckets(&[slow, (0.5, 0.25, 10)]), None);
    let users = row(&report, USERS);
    assert_eq!((users.edge_requests, users.service_requests), (10, 10));
    // Only the requests since the start, on each side (how the parts follow: `split` tests).
    let split = users.latency.expect("a split");
    let sides: Vec<(f64, f64, f64)> = split
        .at
        .iter()
        .map(|at| (at.edge_seconds, at.upstream_seconds, at.service_seconds))
        .collect();
    let within = |lower: f64, upper: f64, q: f64| lower + (upper - lower) * q;
    let expected: Vec<(f64, f64, f64)> = QUANTILES
        .iter()
        .map(|&q| {
            (
                within(0.25, 0.5, q),
                within(0.1, 0.25, q),
                within(0.075, 0.1, q),
            )
        })
        .collect();
    assert_eq!(sides, expected);
    assert_eq!(split.clamped, 0);
}

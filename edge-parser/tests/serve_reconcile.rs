//! `edge-parser serve --service-metrics` beside a real axum service instrumented with
//! `HttpMetricsLayer`, over loopback: the edge groups its records by the service's own route
//! templates, behind a prefix the proxy strips, reconciles each route with it by reason
//! (`/api/reconcile`), and survives the service going away.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use vantage_instrument::PrometheusExporter;
use vantage_tower::HttpMetricsLayer;

use crate::serve_util::{
    Exposition, Server, append, get as http_get, nginx_line, poll_until, promtool_check,
    read_events, route_row, unix_now,
};
use crate::util::{Dir, WAIT_LIMIT};

/// The service: two routes and its `/metrics`, on a loopback port; stops with `runtime`.
fn service(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    let recorder = PrometheusExporter::new().build_recorder();
    let handle = recorder.handle();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/orders", get(|| async { "orders" }))
        .layer(HttpMetricsLayer::new().recorder(recorder))
        .route("/metrics", get(move || std::future::ready(handle.render())));
    crate::serve_util::serve_axum(runtime, app)
}

fn scrapes(metrics: &Exposition, result: &str) -> u64 {
    metrics.count("edge_service_scrapes_total", &[("result", result)])
}

fn by_route(metrics: &Exposition) -> BTreeMap<String, u64> {
    metrics.sum_by_label("edge_requests_total", "http_route")
}

#[test]
fn serve_groups_by_the_service_routes_reconciles_each_and_survives_the_service_going_away() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let address = service(&runtime);
    // A service exports a route once it served it.
    for path in ["/users/1", "/orders"] {
        assert_eq!(http_get(address, path).expect("service").status, 200);
    }

    let dir = Dir::new("serve-reconcile");
    let log = dir.create("access.log", "");
    let url = format!("http://{address}/metrics");
    let server = Server::start(
        &dir,
        &[
            "--log",
            log.to_str().expect("path"),
            "--format",
            "nginx-combined-rt",
            "--service-metrics",
            &url,
            "--service-scrape-interval",
            "100ms",
            "--strip-prefix",
            "/api",
        ],
    );
    // The ingest loop took a round in: the reconciliation started, the templates adopted.
    server.wait_reconciled("/users/{id}", 0, 0);
    assert!(scrapes(&server.metrics(), "success") >= 1);

    // After the start (the first round): three more requests of one route, two of another.
    for path in ["/users/2", "/users/3", "/users/4", "/orders", "/orders"] {
        assert_eq!(http_get(address, path).expect("service").status, 200);
    }
    // Meanwhile the proxy logged those, plus two the service never saw: a 502 the proxy
    // answered itself and a 499 of a client that hung up; and two paths of no service route.
    let now = unix_now();
    let logged = [
        ("/api/users/2", 200),
        ("/api/users/3?tab=1", 200),
        ("/api/users/4", 200),
        ("/api/users/5", 502),
        ("/api/users/6", 499),
        ("/api/orders", 200),
        ("/api/orders", 200),
        ("/api/orders/9", 404),
        ("/apiary", 404),
        ("/api/users/4", 200),
    ];
    let lines: String = logged
        .iter()
        .enumerate()
        .map(|(n, (path, status))| nginx_line(n as u64, now, path, *status))
        .collect();
    append(&log, &lines);
    let metrics = server.wait_parsed(10);
    let expected = BTreeMap::from([
        ("(other)".to_owned(), 2),
        ("/orders".to_owned(), 2),
        ("/users/{id}".to_owned(), 6),
    ]);
    assert_eq!(by_route(&metrics), expected);

    // The reconciliation, once a scrape saw the service's new requests.
    let reconcile = poll_until(WAIT_LIMIT, || {
        let reconcile = server.get("/api/reconcile").json();
        let users = route_row(&reconcile["routes"], "/users/{id}");
        // The last minute, as far as it goes back: the marks of the scrape rounds.
        let minute = route_row(&reconcile["windows"][0]["routes"], "/users/{id}");
        match users {
            users
                if users["service_requests"] == 3
                    && users["edge_requests"] == 6
                    && minute["service_requests"] == 3
                    && minute["edge_requests"] == 6 =>
            {
                Ok(reconcile)
            }
            _ => Err(format!("{reconcile}")),
        }
    })
    .unwrap_or_else(|error| panic!("{error}\n{}", server.stderr()));
    assert_eq!(reconcile["started"], true);
    let windows: Vec<(u64, bool)> = reconcile["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| {
            let seconds = w["seconds"].as_u64().expect("seconds");
            // The test runs for seconds: no window is covered whole.
            (
                seconds,
                w["covered_seconds"].as_f64().expect("covered") < seconds as f64,
            )
        })
        .collect();
    assert_eq!(windows, [(60, true), (300, true), (3_600, true)]);
    assert_eq!(reconcile["windows"][0]["routes"][0]["partial"], true);
    assert_eq!(reconcile["partial_reasons"], serde_json::json!([]));
    let rows: BTreeMap<String, serde_json::Value> = reconcile["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|row| {
            (
                row["route"].as_str().expect("route").to_owned(),
                row.clone(),
            )
        })
        .collect();
    let users = &rows["/users/{id}"];
    // nginx's `combined` + `$request_time` logs no upstream time: no split, not zeros.
    assert_eq!(users["latency"], serde_json::Value::Null);
    assert_eq!(users["lost"], 3);
    assert_eq!(
        users["reasons"],
        serde_json::json!({"proxy_answered": 1, "client_cancelled": 1, "unexplained": 1})
    );
    assert_eq!(
        (
            &rows["/orders"]["edge_requests"],
            &rows["/orders"]["service_requests"]
        ),
        (&serde_json::json!(2), &serde_json::json!(2))
    );
    assert_eq!(rows["/orders"]["lost"], 0);
    assert_eq!(rows["(other)"]["lost"], 2);
    // The same in the summary and in the live stream.
    // (The windows' coverage grows with every round: the rows are compared.)
    assert_eq!(
        server.get("/api/summary").json()["reconcile"]["routes"],
        reconcile["routes"]
    );
    let events = read_events(server.addr(), "/api/stream", 1);
    let streamed: serde_json::Value = serde_json::from_str(&events[0].1).expect("JSON event");
    assert_eq!(streamed["reconcile"]["routes"], reconcile["routes"]);
    // The same on /metrics, a valid exposition.
    let metrics = server.metrics();
    let users = ("http_route", "/users/{id}");
    let value = |name: &str, label: (&str, &str)| metrics.count(name, &[users, label]);
    assert_eq!(value("edge_reconcile_requests", ("side", "edge")), 6);
    assert_eq!(value("edge_reconcile_requests", ("side", "service")), 3);
    assert_eq!(
        value("edge_reconcile_lost_requests", ("reason", "proxy_answered")),
        1
    );
    assert_eq!(
        value(
            "edge_reconcile_lost_requests",
            ("reason", "client_cancelled")
        ),
        1
    );
    assert_eq!(
        value("edge_reconcile_lost_requests", ("reason", "unexplained")),
        1
    );
    assert_eq!(metrics.value("edge_reconcile_partial", &[]), Some(0.0));
    promtool_check(&metrics.text);

    let instance = address.to_string();
    assert_eq!(
        metrics.value("edge_service_up", &[("url", &url), ("instance", &instance)]),
        Some(1.0)
    );
    assert_eq!(scrapes(&metrics, "failure"), 0);

    // The service goes away: its failures are counted, its routes stay in use.
    drop(runtime);
    poll_until(WAIT_LIMIT, || {
        let metrics = server.metrics();
        match metrics.value("edge_service_up", &[("url", &url)]) {
            Some(up) if up == 0.0 && scrapes(&metrics, "failure") >= 1 => Ok(()),
            up => Err(format!("up {up:?}")),
        }
    })
    .unwrap_or_else(|error| panic!("{error}\n{}", server.stderr()));
    append(&log, &nginx_line(10, now, "/api/users/5", 200));
    let metrics = server.wait_parsed(11);
    assert_eq!(by_route(&metrics).get("/users/{id}"), Some(&7));
    // The ingest loop takes the failed round in at its next tick.
    let failed = format!("{url} {address}: its last scrape failed");
    poll_until(WAIT_LIMIT, || {
        let reconcile = server.get("/api/reconcile").json();
        if reconcile["partial_reasons"] == serde_json::json!([failed]) {
            Ok(())
        } else {
            Err(format!("{reconcile}"))
        }
    })
    .unwrap_or_else(|error| panic!("{error}\n{}", server.stderr()));
    assert_eq!(
        server.metrics().value("edge_reconcile_partial", &[]),
        Some(1.0)
    );
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

#[test]
fn a_service_metrics_url_that_is_not_http_is_refused_by_name() {
    let dir = Dir::new("serve-reconcile-url");
    let log = dir.create("access.log", "");
    let outcome = dir
        .command()
        .args([
            "serve",
            "--log",
            log.to_str().expect("path"),
            "--service-metrics",
            "https://svc:9000/metrics",
        ])
        .run();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert!(
        outcome
            .stderr
            .contains("not an http:// URL: https://svc:9000/metrics"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn without_service_metrics_there_is_nothing_to_reconcile_and_says_so() {
    let dir = Dir::new("serve-reconcile-none");
    let log = dir.create("access.log", "");
    let server = Server::following(&dir, &log, "nginx-combined-rt", &[]);
    let response = server.get("/api/reconcile");
    assert_eq!(response.status, 404);
    assert_eq!(
        response.json(),
        serde_json::json!({"error": "no --service-metrics: nothing to reconcile with"})
    );
    assert_eq!(server.get("/api/summary").json().get("reconcile"), None);
    let metrics = server.metrics();
    assert_eq!(metrics.named("edge_reconcile_requests").count(), 0);
    assert_eq!(metrics.named("edge_service_up").count(), 0);
}

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;

use super::*;

const PAGE: &str = "\
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_count{http_route=\"/users/{id}\",http_response_status_code=\"200\"} 7
http_server_request_duration_seconds_count{http_route=\"/orders\",http_response_status_code=\"500\"} 2
";

/// A server on a loopback port the system picks, answering `/metrics` with `app`.
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn target(address: SocketAddr) -> Target {
    Target::parse(&format!("http://{address}/metrics")).expect("target")
}

#[tokio::test]
async fn a_page_is_read_per_route() {
    let address = serve(Router::new().route("/metrics", get(|| async { PAGE }))).await;
    let scrape = scrape(&target(address), address).await.expect("scrape");
    assert_eq!(
        scrape.templates().collect::<Vec<_>>(),
        ["/orders", "/users/{id}"]
    );
    assert_eq!(scrape.route("/users/{id}").map(|r| r.requests), Some(7));
}

#[tokio::test]
async fn every_failure_is_named() {
    let big = "x".repeat(MAX_PAGE_BYTES + 1);
    let app = Router::new()
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/big", get(move || std::future::ready(big.clone())))
        .route("/binary", get(|| async { vec![0xff_u8, 0xfe, 0x00] }));
    let address = serve(app).await;
    let at = |path: &str| Target::parse(&format!("http://{address}{path}")).expect("target");
    assert_eq!(
        scrape(&at("/fail"), address).await.unwrap_err(),
        ScrapeError::Status(500)
    );
    assert_eq!(
        scrape(&at("/nowhere"), address).await.unwrap_err(),
        ScrapeError::Status(404)
    );
    assert_eq!(
        scrape(&at("/big"), address).await.unwrap_err(),
        ScrapeError::TooLarge
    );
    assert_eq!(
        scrape(&at("/binary"), address).await.unwrap_err(),
        ScrapeError::NotText
    );

    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address")
    };
    assert!(matches!(
        scrape(&target(closed), closed).await.unwrap_err(),
        ScrapeError::Connect(_)
    ));

    // Accepts the connection and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_address = silent.local_addr().expect("address");
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    assert_eq!(
        scrape(&target(silent_address), silent_address)
            .await
            .unwrap_err(),
        ScrapeError::Timeout
    );
    assert!(started.elapsed() < SCRAPE_TIMEOUT * 3);
    held.abort();
}

#[test]
fn only_plain_http_urls_with_a_host_are_targets() {
    for url in [
        "https://svc/metrics",
        "svc:9000/metrics",
        "http:///metrics",
        "not a url",
    ] {
        assert!(
            matches!(Target::parse(url), Err(ScrapeError::Url(_))),
            "{url}"
        );
    }
    let target = Target::parse("http://svc.default:9000/metrics?x=1").expect("target");
    assert_eq!((target.host.as_str(), target.port), ("svc.default", 9000));
    assert_eq!(Target::parse("http://svc/m").map(|t| t.port), Ok(80));
}

#[test]
fn failures_back_off_doubling_up_to_the_cap_and_a_success_resets() {
    let interval = Duration::from_secs(5);
    let now = Instant::now();
    let error = ScrapeError::Timeout;
    let mut instance = Instance::default();
    instance.failed(&error, interval, now);
    assert!(
        instance.due(now),
        "the first failure is retried at the next round"
    );
    let mut waits = Vec::new();
    for _ in 0..6 {
        instance.failed(&error, interval, now);
        let at = instance.next_attempt.expect("a wait");
        waits.push(at - now);
        assert!(!instance.due(at - Duration::from_millis(1)));
        assert!(instance.due(at));
    }
    let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [10, 20, 40, 60, 60, 60]);
    assert_eq!(instance.health.failures, 7);
    assert_eq!(instance.health.consecutive_failures, 7);
    assert_eq!(
        instance.health.last_error.as_deref(),
        Some("no answer within 2 s")
    );
    instance.succeeded(ServiceScrape::read(PAGE));
    assert!(instance.due(now));
    assert_eq!(instance.health.consecutive_failures, 0);
    assert_eq!(instance.health.last_error, None);
    assert_eq!(instance.health.successes, 1);
}

#[tokio::test]
async fn a_round_keeps_the_last_good_scrape_of_an_instance_that_fails_and_counts_it() {
    let (flip, flipped) = tokio::sync::watch::channel(false);
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let failing = *flipped.borrow();
            async move {
                if failing {
                    Err(StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    Ok(PAGE)
                }
            }
        }),
    );
    let address = serve(app).await;
    let targets = [
        target(address),
        Target::parse("http://unresolvable.invalid/metrics").unwrap(),
    ];
    let settings = Settings {
        interval: Duration::from_millis(10),
        slow_path: None,
    };
    let mut scrapes = Scrapes::new();
    scrape_round(&targets, &settings, &mut scrapes).await;
    flip.send_replace(true);
    scrape_round(&targets, &settings, &mut scrapes).await;
    let instance = &scrapes[&(targets[0].url(), Some(address))];
    assert_eq!(instance.health.successes, 1);
    assert_eq!(instance.health.failures, 1);
    assert_eq!(instance.health.last_error.as_deref(), Some("answered 503"));
    let last = instance.last.as_ref().expect("the last good scrape");
    assert_eq!(last.route("/users/{id}").map(|r| r.requests), Some(7));
    let unresolved = &scrapes[&(targets[1].url(), None)];
    assert_eq!(unresolved.health.failures, 2);
    assert!(
        unresolved
            .health
            .last_error
            .as_deref()
            .is_some_and(|error| error.starts_with("cannot resolve unresolvable.invalid")),
        "{:?}",
        unresolved.health.last_error
    );
}

/// The slowest requests come from the page a real `SlowRequests` serves, on the instance's
/// address; a service without the page is named, and its scrape still succeeds.
#[tokio::test]
async fn the_slowest_requests_are_read_beside_the_metrics() {
    use vantage_tower::slow::SlowRequests;
    use vantage_tower::{HttpMetricsLayer, TraceContextLayer};
    let slow = SlowRequests::new();
    let recorder = vantage_instrument::PrometheusExporter::new().build_recorder();
    let handle = recorder.handle();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .layer(
            HttpMetricsLayer::new()
                .recorder(recorder)
                .slow_requests(slow.clone()),
        )
        .layer(TraceContextLayer::new())
        .route_service("/debug/slow", slow.service())
        .route("/metrics", get(move || std::future::ready(handle.render())));
    let with = serve(app).await;
    let without = serve(Router::new().route("/metrics", get(|| async { PAGE }))).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = http::Request::get("/users/7")
        .header(header::HOST, with.to_string())
        .header("traceparent", traceparent)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let stream = TcpStream::connect(with).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    drop(response);

    let targets = [target(with), target(without)];
    let mut scrapes = Scrapes::new();
    let settings = Settings {
        slow_path: Some("/debug/slow".to_owned()),
        ..Settings::default()
    };
    scrape_round(&targets, &settings, &mut scrapes).await;
    let read = scrapes[&(targets[0].url(), Some(with))]
        .slow
        .clone()
        .expect("read")
        .expect("a document");
    assert_eq!(read.top, 5);
    assert_eq!(read.routes.len(), 1);
    assert_eq!(read.routes[0].route, "/users/{id}");
    assert_eq!(
        read.routes[0].slowest[0].trace_id.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let missing = &scrapes[&(targets[1].url(), Some(without))];
    assert_eq!(missing.health.successes, 1);
    assert_eq!(missing.slow, Some(Err("answered 404".to_owned())));
}

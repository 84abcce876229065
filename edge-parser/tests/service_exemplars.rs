//! The service side in a real Prometheus: a real axum service with the recommended stack
//! (`HttpMetricsLayer::new().trace_context()`) scraped by two Prometheus 2.42 servers, one with
//! native histograms and exemplar storage (the protobuf exposition), one with exemplar storage
//! only (OpenMetrics). Both return, from `/api/v1/query_exemplars`, the trace ids this test
//! sent in `traceparent` for its slow requests, each in the bucket of its duration; and the
//! native histograms give Prometheus the quantile the classic buckets cannot.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use vantage_instrument::{MetricsEndpoint, PrometheusExporter};
use vantage_tower::HttpMetricsLayer;

use crate::serve_util::{Prometheus, get as http_get, poll_until, promtool_check, request};
use crate::util::{Dir, WAIT_LIMIT};

/// Slow requests, each alone in its classic bucket: sleep (ms) and the bucket's `le`.
const SLOW: [(u64, &str); 5] = [
    (60, "0.075"),
    (90, "0.1"),
    (600, "0.75"),
    (900, "1"),
    (1500, "2.5"),
];
/// Steady requests for the quantile: as many at 100 ms as at 300 ms.
const STEADY: usize = 40;

/// The service on a loopback port: `/slow/{ms}` and `/steady/{ms}` sleep that long.
fn service(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    let recorder = PrometheusExporter::new().build_recorder();
    let metrics = MetricsEndpoint::from_handle(recorder.handle());
    let sleep = |Path(ms): Path<u64>| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        "slept"
    };
    let app = Router::new()
        .route("/slow/{ms}", get(sleep))
        .route("/steady/{ms}", get(sleep))
        .layer(HttpMetricsLayer::new().trace_context().recorder(recorder))
        .route_service("/metrics", metrics.service());
    crate::serve_util::serve_axum(runtime, app)
}

fn trace_id(n: usize) -> String {
    format!("{:032x}", 0x5eed_0000 + n)
}

/// `GET path` on `address` with a `traceparent` of trace `trace`, each on its own thread.
fn traced_gets(address: SocketAddr, requests: Vec<(String, String)>) {
    let threads: Vec<_> = requests
        .into_iter()
        .map(|(path, trace)| {
            std::thread::spawn(move || {
                let parent = format!("00-{trace}-00f067aa0ba902b7-01");
                let response = request(address, "GET", &path, &[("traceparent", &parent)])
                    .expect("the service answers");
                assert_eq!(response.status, 200, "{path}");
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a request thread");
    }
}

/// The exemplars of the slow route Prometheus stores: trace id to (`le`, value).
fn exemplars(prometheus: &Prometheus, name: &str) -> BTreeMap<String, (String, f64)> {
    let query = format!("{name}{{http_route=\"/slow/{{ms}}\"}}");
    let now = crate::serve_util::unix_now();
    let body = prometheus.api(&format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        crate::serve_util::percent_encode(&query),
        now - 600,
        now + 60
    ));
    let mut found = BTreeMap::new();
    for series in body["data"].as_array().into_iter().flatten() {
        let le = series["seriesLabels"]["le"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        for exemplar in series["exemplars"].as_array().into_iter().flatten() {
            let trace = exemplar["labels"]["trace_id"].as_str().unwrap_or("");
            let value = exemplar["value"].as_str().and_then(|v| v.parse().ok());
            found.insert(trace.to_owned(), (le.clone(), value.unwrap_or(f64::NAN)));
        }
    }
    found
}

/// A request that slept `ms` took that long, and less than 50 ms more.
fn assert_slept(ms: u64, seconds: f64) {
    let slept = ms as f64 / 1000.0;
    assert!(
        (slept..slept + 0.05).contains(&seconds),
        "the {ms} ms request's exemplar value {seconds}"
    );
}

#[test]
fn prometheus_stores_the_slow_requests_trace_ids_as_exemplars_and_native_quantiles() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let address = service(&runtime);
    // Every series exists before Prometheus's first scrape: `rate()` never sees a new
    // series' first increment.
    traced_gets(
        address,
        vec![
            ("/steady/100".to_owned(), trace_id(900)),
            ("/slow/1".to_owned(), trace_id(901)),
        ],
    );
    promtool_check(&http_get(address, "/metrics").expect("metrics").text());

    let dir = Dir::new("service-exemplars");
    let native_dir = Dir::new("service-exemplars-native");
    let target = [(address, "service")];
    let Some(native) = Prometheus::start_with_rules(
        &native_dir,
        &target,
        &[],
        "1s",
        &["native-histograms", "exemplar-storage"],
    ) else {
        return;
    };
    let Some(openmetrics) =
        Prometheus::start_with_rules(&dir, &target, &[], "1s", &["exemplar-storage"])
    else {
        return;
    };
    for prometheus in [&native, &openmetrics] {
        let scraped = poll_until(WAIT_LIMIT, || {
            match prometheus.query("up").first().map(|(_, up)| *up) {
                Some(1.0) => Ok(()),
                other => Err(format!("up = {other:?}\n{}", prometheus.log())),
            }
        });
        scraped.unwrap_or_else(|error| panic!("no successful scrape: {error}"));
    }

    let mut requests: Vec<(String, String)> = SLOW
        .iter()
        .enumerate()
        .map(|(n, (ms, _))| (format!("/slow/{ms}"), trace_id(n)))
        .collect();
    for n in 0..STEADY {
        requests.push(("/steady/100".to_owned(), trace_id(100 + n)));
        requests.push(("/steady/300".to_owned(), trace_id(200 + n)));
    }
    traced_gets(address, requests);

    // OpenMetrics: every bucket's exemplar, on the classic `_bucket` series.
    let found = poll_until(WAIT_LIMIT, || {
        let found = exemplars(&openmetrics, "http_server_request_duration_seconds_bucket");
        let all = (0..SLOW.len()).all(|n| found.contains_key(&trace_id(n)));
        if all {
            Ok(found)
        } else {
            Err(format!("{found:?}"))
        }
    })
    .unwrap_or_else(|error| panic!("OpenMetrics: the slow requests' exemplars: {error}"));
    for (n, (ms, le)) in SLOW.iter().enumerate() {
        let (bucket, value) = &found[&trace_id(n)];
        assert_eq!(bucket, le, "OpenMetrics: the bucket of the {ms} ms request");
        assert_slept(*ms, *value);
    }
    // Protobuf with native histograms: Prometheus 2.42 stores one exemplar per scrape (the
    // newest), on the native series: one slow request at a time, each found before the next.
    for (n, (ms, _)) in SLOW.iter().enumerate() {
        let trace = trace_id(10 + n);
        traced_gets(address, vec![(format!("/slow/{ms}"), trace.clone())]);
        let found = poll_until(WAIT_LIMIT, || {
            let found = exemplars(&native, "http_server_request_duration_seconds");
            match found.get(&trace) {
                Some(&(_, value)) => Ok(value),
                None => Err(format!("{found:?}")),
            }
        })
        .unwrap_or_else(|error| panic!("protobuf: the {ms} ms request's exemplar: {error}"));
        assert_slept(*ms, found);
    }

    // The quartile: the native buckets (1.09 % wide) hold it within a few percent of the
    // requests' durations, 100 ms plus what a loaded machine adds to a sleep (7 ms seen with
    // both cores busy); the classic bucket (0.1, 0.25] would interpolate to 0.175.
    let quartile = |prometheus: &Prometheus, source: &str, by: &str| {
        let promql = format!(
            "histogram_quantile(0.25, sum by ({by}) (rate({source}{{http_route=\"/steady/{{ms}}\"}}[1m])))"
        );
        poll_until(WAIT_LIMIT, || match prometheus.query(&promql).first() {
            Some((_, q)) if q.is_finite() => Ok(*q),
            other => Err(format!("{promql}: {other:?}")),
        })
        .unwrap_or_else(|error| panic!("{error}"))
    };
    let native_quartile = quartile(&native, "http_server_request_duration_seconds", "");
    assert!(
        (0.1..0.13).contains(&native_quartile),
        "native p25 {native_quartile}"
    );
    let classic_quartile = quartile(
        &openmetrics,
        "http_server_request_duration_seconds_bucket",
        "le",
    );
    assert!(
        (0.15..0.25).contains(&classic_quartile),
        "classic p25 {classic_quartile}"
    );
    drop(runtime);
    eprintln!("p25 of 100 ms: native {native_quartile}, classic {classic_quartile}");
}

use super::*;

const A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const B: &str = "0af7651916cd43dd8448eb211c80319c";

fn id(hex: &str) -> TraceId {
    crate::format::trace_id_of_hex(hex.as_bytes()).unwrap()
}

fn edge(hex: &str, ms: u64, upstream_ms: Option<u64>) -> EdgeRequest {
    EdgeRequest {
        trace_id: id(hex),
        at: 1_000,
        status: Some(200),
        duration_ns: ms * 1_000_000,
        upstream_ns: upstream_ms.map(|ms| ms * 1_000_000),
    }
}

/// A document as `SlowRequests` writes it, `top` per full list.
fn document(top: usize, routes: &[(&str, &[(&str, f64)])]) -> ServiceSlow {
    let routes: Vec<String> = routes
        .iter()
        .map(|(route, requests)| {
            let requests: Vec<String> = requests
                .iter()
                .map(|(id, seconds)| {
                    format!(r#"{{"trace_id":"{id}","seconds":{seconds},"age_seconds":1.5}}"#)
                })
                .collect();
            format!(
                r#"{{"route":"{route}","slowest":[{}]}}"#,
                requests.join(",")
            )
        })
        .collect();
    let text = format!(
        r#"{{"window_seconds":300.0,"top":{top},"routes":[{}]}}"#,
        routes.join(",")
    );
    ServiceSlow::read(text.as_bytes()).unwrap()
}

#[test]
fn a_request_listed_by_a_service_is_split_into_its_parts() {
    let service = document(5, &[("/slow", &[(A, 0.012), (B, 0.010)])]);
    let report = join(
        &[("/slow".to_owned(), vec![edge(A, 320, Some(315))])],
        &[("127.0.0.1:9".to_owned(), Ok(Arc::new(service)))],
    );
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        serde_json::json!({
            "window_seconds": 300, "top": 5,
            "routes": [{"route": "/slow", "slowest": [{
                "trace_id": A, "at": 1000, "status": 200,
                "edge_seconds": 0.32, "upstream_seconds": 0.315,
                "service_seconds": 0.012, "service_instance": "127.0.0.1:9",
                "service_seconds_at_most": null,
                "proxy_seconds": 0.005, "in_front_of_handler_seconds": 0.303,
                "in_front_of_handler_at_least_seconds": null,
            }]}],
            "services": [{"instance": "127.0.0.1:9", "error": null}],
        })
    );
}

#[test]
fn a_request_missing_from_full_lists_is_bounded_and_from_a_short_list_unknown() {
    // Two instances: their full lists' fastest are 40 ms and 25 ms, so a request neither
    // listed took at most 40 ms at the service.
    let full_a = document(
        2,
        &[(
            "/r",
            &[(B, 0.050), ("00000000000000000000000000000001", 0.040)],
        )],
    );
    let full_b = document(
        2,
        &[(
            "/r",
            &[
                ("00000000000000000000000000000002", 0.030),
                ("00000000000000000000000000000003", 0.025),
            ],
        )],
    );
    let services = [
        ("a".to_owned(), Ok(Arc::new(full_a))),
        ("b".to_owned(), Ok(Arc::new(full_b))),
        ("c".to_owned(), Err("answered 404".to_owned())),
    ];
    let report = join(
        &[("/r".to_owned(), vec![edge(A, 2_000, Some(1_990))])],
        &services,
    );
    let request = &report.routes[0].slowest[0];
    assert_eq!(
        (request.service_seconds, request.service_seconds_at_most),
        (None, Some(0.040))
    );
    assert_eq!(request.in_front_of_handler_seconds, None);
    assert_eq!(request.in_front_of_handler_at_least_seconds, Some(1.95));
    assert_eq!(
        report.services[2],
        SlowSource {
            instance: "c".to_owned(),
            error: Some("answered 404".to_owned())
        }
    );
    // A list that is not full holds every request of its window: no bound from it.
    let short = document(5, &[("/r", &[(B, 0.050)])]);
    let report = join(
        &[("/r".to_owned(), vec![edge(A, 2_000, Some(1_990))])],
        &[("a".to_owned(), Ok(Arc::new(short)))],
    );
    let request = &report.routes[0].slowest[0];
    assert_eq!(
        (
            request.service_seconds_at_most,
            request.in_front_of_handler_at_least_seconds
        ),
        (None, None)
    );
}

#[test]
fn shares_never_go_below_zero_and_need_the_upstream_time() {
    // The service measured more than the proxy's upstream time (two clocks).
    let service = document(5, &[("/r", &[(A, 0.105)])]);
    let services = [("a".to_owned(), Ok(Arc::new(service)))];
    let report = join(
        &[("/r".to_owned(), vec![edge(A, 100, Some(101))])],
        &services,
    );
    let request = &report.routes[0].slowest[0];
    assert_eq!(
        (request.proxy_seconds, request.in_front_of_handler_seconds),
        (Some(0.0), Some(0.0))
    );
    // A log without upstream time (Traefik common): the service's duration, no shares.
    let report = join(&[("/r".to_owned(), vec![edge(A, 100, None)])], &services);
    let request = &report.routes[0].slowest[0];
    assert_eq!(request.service_seconds, Some(0.105));
    assert_eq!(
        (request.proxy_seconds, request.in_front_of_handler_seconds),
        (None, None)
    );
}

#[test]
fn a_document_that_is_not_one_is_refused_naming_why() {
    let refused = |text: &str| ServiceSlow::read(text.as_bytes()).unwrap_err();
    assert!(refused("").contains("EOF"), "{}", refused(""));
    assert!(refused(r#"{"top":5}"#).contains("missing field `routes`"));
    let bad_id = r#"{"top":5,"routes":[{"route":"/","slowest":[{"trace_id":"xyz","seconds":1}]}]}"#;
    assert!(
        refused(bad_id).contains(r#"not a trace id: "xyz""#),
        "{}",
        refused(bad_id)
    );
    let negative = format!(
        r#"{{"top":5,"routes":[{{"route":"/","slowest":[{{"trace_id":"{A}","seconds":-1}}]}}]}}"#
    );
    assert_eq!(refused(&negative), "a duration of -1 s");
    let many: Vec<String> = (0..=MAX_ROUTES)
        .map(|n| format!(r#"{{"route":"/{n}","slowest":[]}}"#))
        .collect();
    let many = format!(r#"{{"top":5,"routes":[{}]}}"#, many.join(","));
    assert!(
        refused(&many).contains("more than 1000 routes"),
        "{}",
        refused(&many)
    );
    let huge = format!(
        r#"{{"top":5,"routes":[],"pad":"{}"}}"#,
        "x".repeat(MAX_DOCUMENT_BYTES)
    );
    assert_eq!(refused(&huge), "larger than 1024 KiB");
}

proptest::proptest! {
    #[test]
    fn any_bytes_are_read_or_refused_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let _ = ServiceSlow::read(&bytes);
    }

    #[test]
    fn a_mutated_document_is_read_or_refused_without_panic(
        at in 0_usize..200,
        byte in proptest::num::u8::ANY,
    ) {
        let mut text = format!(
            r#"{{"window_seconds":300.0,"top":5,"routes":[{{"route":"/a","slowest":[{{"trace_id":"{A}","seconds":0.5,"age_seconds":2}}]}}]}}"#
        )
        .into_bytes();
        let at = at % text.len();
        text[at] = byte;
        if let Ok(slow) = ServiceSlow::read(&text) {
            let report = join(&[("/a".to_owned(), vec![edge(A, 600, Some(590))])], &[("a".to_owned(), Ok(Arc::new(slow)))]);
            proptest::prop_assert_eq!(report.routes.len(), 1);
        }
    }
}

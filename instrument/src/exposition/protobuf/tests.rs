use std::collections::BTreeMap;

use super::*;
use crate::exposition::native;
use crate::exposition::{Exemplar, SeriesExtras};
use crate::trace_context::TraceId;

const TEXT: &str = "\
# HELP edge_requests_total Requests seen in the proxy's access log.
# TYPE edge_requests_total counter
edge_requests_total{router=\"a\",method=\"GET\",code=\"200\"} 3
# HELP edge_request_duration_seconds Request duration as the proxy logged it.
# TYPE edge_request_duration_seconds histogram
edge_request_duration_seconds_bucket{router=\"a\",le=\"0.005\"} 1
edge_request_duration_seconds_bucket{router=\"a\",le=\"+Inf\"} 3
edge_request_duration_seconds_sum{router=\"a\"} 0.6
edge_request_duration_seconds_count{router=\"a\"} 3
edge_request_duration_seconds_bucket{router=\"b\",le=\"0.005\"} 0
edge_request_duration_seconds_bucket{router=\"b\",le=\"+Inf\"} 1
edge_request_duration_seconds_sum{router=\"b\"} 1
edge_request_duration_seconds_count{router=\"b\"} 1
# TYPE edge_lag_seconds gauge
edge_lag_seconds 0.25
";

fn decode(mut bytes: &[u8]) -> Vec<MetricFamily> {
    let mut families = Vec::new();
    while !bytes.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut bytes).expect("a family"));
    }
    families
}

fn pair(name: &str, value: &str) -> LabelPair {
    LabelPair {
        name: Some(name.to_owned()),
        value: Some(value.to_owned()),
    }
}

#[test]
fn each_family_is_read_back_with_its_kind_and_each_histogram_with_its_native_buckets() {
    let buckets = BTreeMap::from([(native::index(0.001), 1), (native::index(0.299), 2)]);
    let native = NativeHistogram::from_buckets(buckets, 0, 0.6, 0.0);
    let trace_id = TraceId::from_bytes([7; 16]).expect("not zero");
    let exemplar = Exemplar {
        trace_id,
        value: 0.299,
        timestamp: 1_700_000_000.25,
    };
    let extras = Extras::from([(
        (
            "edge_request_duration_seconds".to_owned(),
            vec![("router".to_owned(), "a".to_owned())],
        ),
        SeriesExtras {
            native: Some(native.clone()),
            exemplars: vec![(f64::INFINITY, exemplar)],
        },
    )]);
    let families = decode(&encode(TEXT, &extras));
    let names: Vec<(&str, i32)> = families
        .iter()
        .map(|f| (f.name.as_deref().unwrap_or(""), f.kind.unwrap_or(-1)))
        .collect();
    assert_eq!(
        names,
        [
            ("edge_requests_total", 0),
            ("edge_request_duration_seconds", 4),
            ("edge_lag_seconds", 1)
        ]
    );
    assert_eq!(
        families[0].help.as_deref(),
        Some("Requests seen in the proxy's access log.")
    );
    let counter = &families[0].metric[0];
    assert_eq!(
        counter.label,
        [
            pair("router", "a"),
            pair("method", "GET"),
            pair("code", "200")
        ]
    );
    assert_eq!(counter.counter.as_ref().and_then(|c| c.value), Some(3.0));
    assert_eq!(
        families[2].metric[0].gauge.as_ref().and_then(|g| g.value),
        Some(0.25)
    );
    // Two series of one histogram: classic buckets without +Inf, sum and count; the first
    // with the native buckets of its labels, the second (no native given) without.
    let series = &families[1].metric;
    assert_eq!(series.len(), 2);
    let a = series[0].histogram.as_ref().expect("a histogram");
    assert_eq!(series[0].label, [pair("router", "a")]);
    assert_eq!((a.sample_count, a.sample_sum), (Some(3), Some(0.6)));
    // `+Inf` is written only to carry its exemplar.
    assert_eq!(
        a.bucket,
        [
            Bucket {
                cumulative_count: Some(1),
                upper_bound: Some(0.005),
                exemplar: None,
            },
            Bucket {
                cumulative_count: Some(3),
                upper_bound: Some(f64::INFINITY),
                exemplar: Some(ExemplarMessage {
                    label: vec![pair("trace_id", &trace_id.to_string())],
                    value: Some(0.299),
                    timestamp: Some(Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 250_000_000,
                    }),
                }),
            }
        ]
    );
    assert_eq!(a.schema, Some(6));
    assert_eq!(a.zero_count, Some(0));
    let spans: Vec<(i32, u32)> = a
        .positive_span
        .iter()
        .map(|s| (s.offset.unwrap_or(0), s.length.unwrap_or(0)))
        .collect();
    assert_eq!(spans, native.spans);
    assert_eq!(a.positive_delta, native.deltas);
    let b = series[1].histogram.as_ref().expect("a histogram");
    assert_eq!(
        (b.schema, b.positive_span.len(), b.bucket.len()),
        (None, 0, 1)
    );
    assert_eq!(b.sample_count, Some(1));
}

proptest::proptest! {
    #[test]
    fn any_text_encodes_without_panic(text in ".{0,400}") {
        let _ = encode(&text, &Extras::new());
    }
}

use metrics::with_local_recorder;

use super::*;
use crate::PrometheusExporter;
use crate::exposition::with_exemplar_trace;
use crate::trace_context::TraceId;

#[test]
fn histograms_render_as_text_with_their_help_and_escaped_labels() {
    let recorder = PrometheusExporter::new()
        .duration_buckets(&[0.1, 1.0])
        .expect("valid")
        .build_recorder();
    with_local_recorder(&recorder, || {
        metrics::describe_histogram!("work.duration", Unit::Seconds, "Work\ntime.");
        metrics::histogram!("work.duration", "route" => "/a\"b").record(0.5);
        metrics::histogram!("work.duration", "route" => "/a\"b").record(2.0);
        metrics::histogram!("work.duration").record(0.05);
        metrics::counter!("jobs_total").increment(2);
    });
    let text = recorder.handle().render();
    assert!(text.contains("jobs_total 2\n"), "{text}");
    let histogram = text
        .split_once("# HELP work_duration")
        .map(|(_, rest)| rest)
        .expect("the histogram family");
    assert_eq!(
        histogram,
        " Work\\ntime.
# TYPE work_duration histogram
work_duration_bucket{le=\"0.1\"} 1
work_duration_bucket{le=\"1\"} 1
work_duration_bucket{le=\"+Inf\"} 1
work_duration_sum 0.05
work_duration_count 1
work_duration_bucket{route=\"/a\\\"b\",le=\"0.1\"} 0
work_duration_bucket{route=\"/a\\\"b\",le=\"1\"} 1
work_duration_bucket{route=\"/a\\\"b\",le=\"+Inf\"} 2
work_duration_sum{route=\"/a\\\"b\"} 2.5
work_duration_count{route=\"/a\\\"b\"} 2

"
    );
}

#[test]
fn openmetrics_carries_the_exemplar_of_each_bucket_and_protobuf_the_native_buckets() {
    let recorder = PrometheusExporter::new()
        .duration_buckets(&[0.1, 1.0])
        .expect("valid")
        .build_recorder();
    let trace_id = TraceId::from_u128(0xfeed).expect("not zero");
    with_local_recorder(&recorder, || {
        let histogram = metrics::histogram!("d", "route" => "/a");
        histogram.record(0.05);
        with_exemplar_trace(Some(trace_id), || histogram.record(0.5));
        metrics::counter!("jobs_total").increment(1);
    });
    let handle = recorder.handle();
    let open = String::from_utf8(handle.render_as(Format::OpenMetrics)).expect("utf-8");
    assert!(
        open.contains("# TYPE jobs counter\njobs_total 1\n"),
        "{open}"
    );
    let bucket = open
        .lines()
        .find(|line| line.starts_with("d_bucket{route=\"/a\",le=\"1\"}"))
        .expect("the bucket");
    let (sample, exemplar) = bucket.split_once(" # ").expect("an exemplar");
    assert_eq!(sample, "d_bucket{route=\"/a\",le=\"1\"} 2");
    let (labels, rest) = exemplar.split_once("} ").expect("labels");
    assert_eq!(labels, format!("{{trace_id=\"{trace_id}\""));
    assert!(rest.starts_with("0.5 "), "{rest}");
    assert!(open.ends_with("# EOF\n"));
    assert!(!open.contains("\n\n"));

    let extras = handle.extras(true);
    let native = extras[&("d".to_owned(), vec![("route".to_owned(), "/a".to_owned())])]
        .native
        .clone()
        .expect("native buckets");
    assert_eq!(
        native.buckets(),
        [
            (crate::exposition::native::index(0.05), 1),
            (crate::exposition::native::index(0.5), 1)
        ]
    );
    assert_eq!((native.count, native.sum), (2, 0.55));
    let protobuf = handle.render_as(Format::Protobuf);
    assert_eq!(
        protobuf,
        crate::exposition::protobuf::encode(&handle.render(), &handle.extras(true))
    );
}

#[test]
fn infinite_samples_are_counted_and_written_as_prometheus_values() {
    let recorder = PrometheusExporter::new()
        .duration_buckets(&[1.0])
        .expect("valid")
        .build_recorder();
    let trace_id = TraceId::from_u128(9);
    with_local_recorder(&recorder, || {
        with_exemplar_trace(trace_id, || metrics::histogram!("d").record(f64::INFINITY));
    });
    let handle = recorder.handle();
    let text = handle.render();
    assert!(
        text.contains("d_bucket{le=\"+Inf\"} 1\nd_sum +Inf\nd_count 1\n"),
        "{text}"
    );
    let open = String::from_utf8(handle.render_as(Format::OpenMetrics)).expect("utf-8");
    assert!(!open.contains(" # {"), "{open}");
}

#[test]
fn gauges_render_with_their_help_and_labels() {
    let recorder = PrometheusExporter::new().build_recorder();
    with_local_recorder(&recorder, || {
        metrics::describe_gauge!("jobs.in_flight", "Jobs running.");
        let gauge = metrics::gauge!("jobs.in_flight", "queue" => "a");
        gauge.increment(3.0);
        gauge.decrement(1.0);
        metrics::gauge!("jobs.in_flight").set(0.5);
    });
    let text = recorder.handle().render();
    let family = text
        .split_once("# HELP jobs_in_flight")
        .map(|(_, rest)| rest)
        .expect("the gauge family");
    assert!(
        family.starts_with(
            " Jobs running.\n# TYPE jobs_in_flight gauge\njobs_in_flight 0.5\njobs_in_flight{queue=\"a\"} 2\n\n"
        ),
        "{text}"
    );
}

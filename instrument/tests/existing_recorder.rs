//! The application installed its own recorder first: `install` keeps it, records go to it, and
//! the endpoint says why it has nothing to serve. (One global recorder per process: this is the
//! only test of this binary that installs one.)

use http::{Request, StatusCode};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::ServiceExt;
use vantage_instrument::PrometheusExporter;

#[tokio::test]
async fn installing_over_an_existing_recorder_keeps_it_without_panicking() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the first recorder installs");

    let endpoint = PrometheusExporter::new().install();
    assert!(endpoint.handle().is_none());
    assert_eq!(endpoint.render(), None);
    let response = endpoint
        .service()
        .oneshot(Request::new(()))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    metrics::counter!("app_jobs_total").increment(2);
    let recorded: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "app_jobs_total")
        .map(|(.., value)| value)
        .collect();
    assert_eq!(recorded, [DebugValue::Counter(2)]);
}

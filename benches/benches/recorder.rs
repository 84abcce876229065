//! What a request costs the recorder, on one thread and on two threads recording the same series
//! at once: the in-flight gauge up, one duration sample, the gauge down (what `HttpMetricsLayer`
//! records per request), through `metrics` handles.
//!
//! Vantage's recorder (`PrometheusExporter`: each series' counts in one shard per thread)
//! beside metrics-exporter-prometheus's (one shared copy). Interleaved rounds, median; for two
//! threads, the slower thread's time per request.
//!
//! ```text
//! cargo bench -p vantage-benches --bench recorder -- [--rounds N] [--batch N]
//! ```

use std::time::Instant;

use metrics::{Gauge, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::PrometheusBuilder;
use vantage_instrument::PrometheusExporter;

mod support;
use support::{median, option, slowest_thread};

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

struct Variant {
    name: &'static str,
    gauge: Gauge,
    histogram: Histogram,
}

impl Variant {
    fn new(name: &'static str, recorder: &dyn Recorder) -> Self {
        let labels = vec![Label::new("http_request_method", "GET")];
        let gauge = recorder.register_gauge(
            &Key::from_parts("http_server_active_requests", labels.clone()),
            &METADATA,
        );
        let histogram = recorder.register_histogram(
            &Key::from_parts("http_server_request_duration_seconds", labels),
            &METADATA,
        );
        Self {
            name,
            gauge,
            histogram,
        }
    }

    /// `count` requests on each of `threads` threads; the slower thread's ns per request.
    fn run(&self, count: u64, threads: usize) -> f64 {
        slowest_thread(
            threads,
            || (),
            |()| {
                let start = Instant::now();
                for n in 0..count {
                    self.gauge.increment(1.0);
                    // Durations spread over the buckets, as a route's are.
                    self.histogram.record(0.0003 * (n % 997) as f64);
                    self.gauge.decrement(1.0);
                }
                start.elapsed().as_nanos() as f64 / count as f64
            },
        )
    }
}

fn main() {
    let rounds: usize = option("--rounds").map_or(51, |v| v.parse().expect("--rounds N"));
    let batch: u64 = option("--batch").map_or(200_000, |v| v.parse().expect("--batch N"));
    let vantage = PrometheusExporter::new().build_recorder();
    let peer = PrometheusBuilder::new().build_recorder();
    let variants = [
        Variant::new("vantage", &vantage),
        Variant::new("metrics-exporter-prometheus", &peer),
    ];
    println!("{rounds} rounds of {batch} requests per variant and thread count");
    let cases: Vec<(usize, usize)> = (0..variants.len())
        .flat_map(|variant| [(variant, 1), (variant, 2)])
        .collect();
    let mut samples = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        for step in 0..cases.len() {
            let index = (round + step) % cases.len();
            let (variant, threads) = cases[index];
            samples[index].push(variants[variant].run(batch, threads));
        }
    }
    println!("| recorder | 1 thread | 2 threads, one series |");
    println!("|---|---|---|");
    for (variant, pair) in variants.iter().zip(samples.chunks_mut(2)) {
        let (one, two) = pair.split_at_mut(1);
        println!(
            "| {} | {:.1} ns | {:.1} ns |",
            variant.name,
            median(&mut one[0]),
            median(&mut two[0])
        );
    }
}

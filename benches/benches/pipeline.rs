//! The whole `edge-parser report` pipeline (read, cut into chunks, parse, aggregate, merge) on
//! generated logs held in memory: lines per second on 1 and 2 parser threads, per format,
//! beside the baseline of only cutting the same bytes into lines.

use std::io::Cursor;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vantage_edge::format::Format;
use vantage_edge::read::lines;
use vantage_edge::report::{Report, ReportConfig};
use vantage_edge::synth::{SynthConfig, generate};

const LINES: usize = 200_000;

/// A report of `log`, held in memory, as `format` on `threads` parser threads.
fn report(log: &Arc<[u8]>, format: &Format, threads: usize) -> Report {
    let mut config = ReportConfig::new(Vec::<String>::new());
    config.format = Some(format.clone());
    config.threads = Some(threads);
    Report::from_reader(config, "bench", Box::new(Cursor::new(Arc::clone(log)))).expect("in memory")
}

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    for format in [
        Format::TraefikCommon,
        Format::TraefikJson,
        Format::CaddyJson,
    ] {
        let log: Arc<[u8]> = generate(&format, &SynthConfig::new().seed(3), LINES)
            .text
            .into();
        group.throughput(Throughput::Elements(LINES as u64));
        group.bench_with_input(
            BenchmarkId::new("memchr_lines_baseline", format.name()),
            &log,
            |b, log| {
                b.iter(|| lines(log).filter(|line| !line.is_empty()).count());
            },
        );
        for threads in [1, 2] {
            group.bench_with_input(
                BenchmarkId::new(format!("{threads}_thread"), format.name()),
                &log,
                |b, log| {
                    b.iter(|| {
                        report(log, &format, threads)
                            .run(&Default::default())
                            .expect("in memory")
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);

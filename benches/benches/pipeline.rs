//! The whole `edge-parser report` pipeline (read, cut into chunks, parse, aggregate, merge) on
//! generated logs held in memory: lines per second on 1 and 2 parser threads, per format,
//! beside the baseline of only cutting the same bytes into lines.

use std::io::Cursor;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vantage_edge::aggregate::AggregateConfig;
use vantage_edge::format::Format;
use vantage_edge::input::{Input, Source, for_each_line};
use vantage_edge::pipeline::{Pipeline, Progress};
use vantage_edge::synth::{SynthConfig, generate};

const LINES: usize = 200_000;

fn source(log: &Arc<[u8]>) -> Source {
    let reader = Cursor::new(Arc::clone(log));
    let input = Input::from_reader("bench".to_owned(), None, Box::new(reader), Arc::default())
        .expect("in memory");
    Source::Open(input)
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
                b.iter(|| {
                    let mut lines = 0u64;
                    for_each_line(log, 1, |_, line| lines += u64::from(!line.is_empty()));
                    lines
                });
            },
        );
        let config = AggregateConfig::new(format.clone());
        for threads in [1, 2] {
            let run = Pipeline {
                threads,
                ..Pipeline::default()
            };
            group.bench_with_input(
                BenchmarkId::new(format!("{threads}_thread"), format.name()),
                &log,
                |b, log| {
                    b.iter(|| {
                        run.run(vec![source(log)], &config, &Progress::default())
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

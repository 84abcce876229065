//! Access-log parsing throughput, one group per format, over lines from
//! `vantage_edge::synth` (0.1 % malformed, the default share of odd lines).
//!
//! Each format has two groups with the same two benches, so both units come from one run:
//! `<format>` reports bytes/s and `<format>/lines` reports lines/s. `memchr_baseline` only
//! splits the buffer into lines (the floor any parser sits on); `parse` splits and parses every
//! line, reading a few fields of each record so the work cannot be optimised away.
//!
//! ```text
//! cargo bench -p vantage-benches --bench parse -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vantage_edge::format::{Format, LogFormat, Parsed};
use vantage_edge::read::lines;
use vantage_edge::synth::{SynthConfig, generate};

/// Lines per iteration: enough to leave the caches' warm-up out of the figure.
const LINES: usize = 20_000;

/// A typical custom `log_format` ("main" + timings), through the `log_format` compiler.
const CUSTOM: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" rt=$request_time uct="$upstream_connect_time" urt="$upstream_response_time" ust=$upstream_status host=$host"#;

fn formats() -> Vec<Format> {
    let mut formats = Format::PRESETS.to_vec();
    match LogFormat::compile(CUSTOM) {
        Ok(custom) => formats.push(Format::Nginx(custom)),
        Err(err) => panic!("the bench's log_format does not compile: {err}"),
    }
    formats
}

fn split_only(log: &[u8]) -> usize {
    lines(log).map(|line| black_box(line).len()).sum()
}

fn parse_all(format: &Format, log: &[u8]) -> u64 {
    let mut acc = 0u64;
    for line in lines(log) {
        match format.parse(line) {
            Ok(Parsed::Record(record)) => {
                acc = acc
                    .wrapping_add(record.duration_ns.unwrap_or(0))
                    .wrapping_add(record.status.map_or(0, |s| s.code().unsigned_abs().into()))
                    .wrapping_add(record.target.map_or(0, |t| t.len() as u64));
            }
            Ok(Parsed::Filtered(_)) => acc = acc.wrapping_add(1),
            Err(err) => acc = acc.wrapping_add(err.offset as u64),
        }
    }
    acc
}

fn bench(c: &mut Criterion) {
    let config = SynthConfig::new().seed(1).malformed_rate(0.001);
    for format in formats() {
        let log = generate(&format, &config, LINES).text;
        let name = match &format {
            Format::Nginx(_) => "nginx-custom",
            other => other.name(),
        };
        for (group_name, throughput) in [
            (name.to_owned(), Throughput::Bytes(log.len() as u64)),
            (format!("{name}/lines"), Throughput::Elements(LINES as u64)),
        ] {
            let mut group = c.benchmark_group(group_name);
            group.throughput(throughput);
            group.bench_function("memchr_baseline", |b| {
                b.iter(|| split_only(black_box(&log)));
            });
            group.bench_function("parse", |b| b.iter(|| parse_all(&format, black_box(&log))));
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

use super::*;
use crate::aggregate::GroupKey;
use crate::format::Format;
use crate::read::InputSpec;
use crate::test_support::TempDir;

fn sources(inputs: &[InputSpec]) -> Vec<Source> {
    inputs.iter().cloned().map(Source::Spec).collect()
}

fn write_log(dir: &TempDir, name: &str, lines: &[String]) -> InputSpec {
    InputSpec::Path(dir.write(name, lines.join("\n") + "\n"))
}

fn traefik_line(second: u32, router: &str, status: u16, ms: u32) -> String {
    format!(
        "10.0.0.1 - - [09/Mar/2025:12:00:{second:02} +0000] \"GET /x/{second} HTTP/1.1\" {status} 5 \"-\" \"-\" 1 \"{router}\" \"http://10.0.0.7:80\" {ms}ms"
    )
}

#[test]
fn any_thread_count_and_chunk_size_gives_the_same_aggregate() {
    let dir = TempDir::new("pipeline");
    let mut lines = Vec::new();
    for n in 0..600u32 {
        let router = ["a@docker", "b@docker", "c@docker"][n as usize % 3];
        let router = if n % 7 == 0 {
            format!("r{}@file", n % 40)
        } else {
            router.to_owned()
        };
        lines.push(traefik_line(
            n % 60,
            &router,
            [200, 404, 503][n as usize % 3],
            n % 97,
        ));
        if n % 50 == 0 {
            lines.push(format!("garbage line {n}"));
        }
    }
    let inputs = [
        write_log(&dir, "one.log", &lines[..300]),
        write_log(&dir, "two.log", &lines[300..]),
    ];
    // A cap of 2 groups: each aggregator keeps at most 8, far fewer than the log's 43.
    let mut config = AggregateConfig::new(Format::TraefikCommon);
    config.max_groups = 2;
    let reference = Pipeline {
        threads: 1,
        chunk_bytes: 1 << 20,
        max_line_bytes: 4096,
    }
    .run(sources(&inputs), &config, &Progress::default())
    .expect("reads");
    assert_eq!(reference.lines.total, 612);
    assert_eq!(reference.lines.malformed, 12);
    assert_eq!(reference.lines.parsed, 600);
    // Kept: the first two routers seen (lines 1 and 3), everything else folded.
    let requests = |router: &str| reference.groups[&GroupKey::new([router])].requests;
    assert_eq!(reference.groups.len(), 3);
    assert_eq!(
        (
            requests("r0@file"),
            requests("b@docker"),
            requests("(overflow)")
        ),
        (3, 171, 426)
    );
    for (threads, chunk_bytes) in [(1, 100), (2, 1000), (3, 257), (4, 1 << 16)] {
        let progress = Progress::default();
        let got = Pipeline {
            threads,
            chunk_bytes,
            max_line_bytes: 4096,
        }
        .run(sources(&inputs), &config, &progress)
        .expect("reads");
        assert_eq!(
            got, reference,
            "{threads} threads, {chunk_bytes} byte chunks"
        );
        assert_eq!(progress.lines.load(Ordering::Relaxed), 612);
    }
}

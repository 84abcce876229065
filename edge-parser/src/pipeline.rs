//! The batch pipeline: a reader cuts the inputs into chunks of whole lines, a bounded channel
//! hands them to parser workers that aggregate privately, and the aggregates merge once.
//!
//! ```text
//! inputs ──reader──▶ bounded channel of chunks ──▶ N workers (parse + aggregate)
//!            ▲                                          │            │
//!            └──────────── emptied buffers ◀────────────┘            ▼
//!                                                  merge in chunk order (the group cap)
//! ```
//!
//! The channel is bounded, so a slow parser slows the reader down instead of letting chunks pile
//! up: memory is a few chunks per worker whatever the input size. Buffers travel back to the
//! reader to be refilled. Each worker turns a chunk into a [`ChunkAggregate`]; a merge thread
//! absorbs them in reading order, so that the group cap falls exactly where a single thread
//! would put it: results do not depend on the number of threads or the chunk size.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::aggregate::{Aggregate, AggregateConfig, Aggregator, ChunkAggregate, LinePosition};
use crate::format::{Format, Parsed};
use crate::input::{
    ChunkInfo, DEFAULT_CHUNK_BYTES, DEFAULT_MAX_LINE_BYTES, Input, InputError, InputSpec,
    LineChunker, Source, for_each_line,
};

/// Counters the pipeline advances as it reads, for progress displays.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Bytes read from the inputs (compressed size for gzip inputs).
    pub raw_bytes: Arc<AtomicU64>,
    /// Lines read.
    pub lines: Arc<AtomicU64>,
}

/// How to run the pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Parser threads; 1 parses on the calling thread.
    pub threads: usize,
    /// Bytes per chunk.
    pub chunk_bytes: usize,
    /// Lines longer than this are counted as malformed and skipped.
    pub max_line_bytes: usize,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// A chunk of whole lines on its way to a worker.
struct Chunk {
    /// Its place in reading order.
    sequence: u64,
    input: u32,
    info: ChunkInfo,
    bytes: Vec<u8>,
}

impl Pipeline {
    /// Reads every input in order and returns the finished aggregate.
    ///
    /// # Errors
    ///
    /// An input that cannot be opened or read, named in the error.
    pub fn run(
        &self,
        inputs: Vec<Source>,
        config: &AggregateConfig,
        progress: &Progress,
    ) -> Result<Aggregate, InputError> {
        let mut aggregate = if self.threads <= 1 {
            self.run_inline(inputs, config, progress)?
        } else {
            self.run_parallel(inputs, config, progress)?
        };
        aggregate.finish(config.max_groups);
        Ok(aggregate)
    }

    fn run_inline(
        &self,
        inputs: Vec<Source>,
        config: &AggregateConfig,
        progress: &Progress,
    ) -> Result<Aggregate, InputError> {
        let mut aggregator = Aggregator::new(config);
        let mut buffer = Vec::with_capacity(self.chunk_bytes);
        self.read(
            inputs,
            progress,
            |input, info, bytes| {
                process(&mut aggregator, input, &info, bytes, self.max_line_bytes);
                Ok(())
            },
            &mut buffer,
        )?;
        Ok(aggregator.into_aggregate())
    }

    fn run_parallel(
        &self,
        inputs: Vec<Source>,
        config: &AggregateConfig,
        progress: &Progress,
    ) -> Result<Aggregate, InputError> {
        let (chunks, work): (Sender<Chunk>, Receiver<Chunk>) = bounded(self.threads * 2);
        let (recycle, spares): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = bounded(self.threads * 3);
        let (done, results): (Sender<(u64, ChunkAggregate)>, Receiver<_>) =
            bounded(self.threads * 2);
        std::thread::scope(|scope| {
            for n in 0..self.threads {
                let work = work.clone();
                let recycle = recycle.clone();
                let done = done.clone();
                std::thread::Builder::new()
                    .name(format!("edge-parser-{n}"))
                    .spawn_scoped(scope, move || {
                        let mut aggregator = Aggregator::for_chunks(config);
                        for chunk in work {
                            process(
                                &mut aggregator,
                                chunk.input,
                                &chunk.info,
                                &chunk.bytes,
                                self.max_line_bytes,
                            );
                            // The merger outlives the workers; the reader may have enough spares.
                            let _ = done.send((chunk.sequence, aggregator.take_chunk()));
                            let _ = recycle.try_send(chunk.bytes);
                        }
                    })
                    .expect("spawning a parser thread");
            }
            drop((work, done));
            // Chunks are absorbed in reading order, so the group cap falls exactly where one
            // thread reading every line in order would put it.
            let merger = std::thread::Builder::new()
                .name("edge-parser-merge".to_owned())
                .spawn_scoped(scope, move || {
                    let mut merged = Aggregator::new(config);
                    let mut pending = BTreeMap::new();
                    let mut next = 0;
                    for (sequence, chunk) in results {
                        pending.insert(sequence, chunk);
                        while let Some(chunk) = pending.remove(&next) {
                            merged.absorb(chunk);
                            next += 1;
                        }
                    }
                    merged.into_aggregate()
                })
                .expect("spawning the merge thread");
            let mut buffer = Vec::new();
            let mut sequence = 0;
            let read = self.read(
                inputs,
                progress,
                |input, info, bytes| {
                    let next = spares
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(self.chunk_bytes));
                    let full = std::mem::replace(bytes, next);
                    // Workers only stop when the channel closes, so sending cannot fail.
                    let _ = chunks.send(Chunk {
                        sequence,
                        input,
                        info,
                        bytes: full,
                    });
                    sequence += 1;
                    Ok(())
                },
                &mut buffer,
            );
            drop(chunks);
            let merged = merger.join().expect("the merge thread panicked");
            read.map(|()| merged)
        })
    }

    /// Cuts every input into chunks and hands each to `each`, which may take the buffer.
    fn read(
        &self,
        inputs: Vec<Source>,
        progress: &Progress,
        mut each: impl FnMut(u32, ChunkInfo, &mut Vec<u8>) -> Result<(), InputError>,
        buffer: &mut Vec<u8>,
    ) -> Result<(), InputError> {
        for (index, source) in inputs.into_iter().enumerate() {
            let input = source.open(Arc::clone(&progress.raw_bytes))?;
            let mut chunker = LineChunker::new(input, self.chunk_bytes, self.max_line_bytes);
            let mut lines_before = 1;
            while let Some(info) = chunker.next_chunk(buffer)? {
                let next = chunker.next_line();
                progress
                    .lines
                    .fetch_add(next - lines_before, Ordering::Relaxed);
                lines_before = next;
                each(index as u32, info, buffer)?;
            }
        }
        Ok(())
    }
}

fn process(
    aggregator: &mut Aggregator<'_>,
    input: u32,
    info: &ChunkInfo,
    bytes: &[u8],
    max_line_bytes: usize,
) {
    for too_long in &info.too_long {
        aggregator.add_too_long(
            LinePosition::new(input, too_long.line),
            &too_long.prefix,
            max_line_bytes,
        );
    }
    for_each_line(bytes, info.first_line, |line_number, line| {
        aggregator.add_line(LinePosition::new(input, line_number), line);
    });
}

/// Puts file inputs in the order of the first timestamp each holds, so that rotated files given
/// in any order (`access.log.2.gz access.log access.log.1`) are read as one stream in time
/// order. Standard input and files without a readable timestamp keep their place at the end.
///
/// # Errors
///
/// A file that cannot be opened or read.
pub fn order_by_time(
    inputs: Vec<InputSpec>,
    format: &Format,
) -> Result<Vec<InputSpec>, InputError> {
    const HEAD_BYTES: usize = 256 << 10;
    let mut keyed = Vec::with_capacity(inputs.len());
    for spec in inputs {
        let first = match &spec {
            InputSpec::Path(path) if !path.as_os_str().is_empty() => {
                let head = Input::head(path, HEAD_BYTES)?;
                first_timestamp(&head, format)
            }
            _ => None,
        };
        keyed.push((first.unwrap_or(i64::MAX), spec));
    }
    keyed.sort_by_key(|(first, _)| *first);
    Ok(keyed.into_iter().map(|(_, spec)| spec).collect())
}

fn first_timestamp(head: &[u8], format: &Format) -> Option<i64> {
    head.split(|&b| b == b'\n')
        .find_map(|line| match format.parse(line) {
            Ok(Parsed::Record(record)) => record.timestamp.map(|t| t.unix_nanos()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::GroupKey;

    fn sources(inputs: &[InputSpec]) -> Vec<Source> {
        inputs.iter().cloned().map(Source::Spec).collect()
    }

    fn write_log(dir: &std::path::Path, name: &str, lines: &[String]) -> InputSpec {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write log");
        InputSpec::Path(path)
    }

    fn traefik_line(second: u32, router: &str, status: u16, ms: u32) -> String {
        format!(
            "10.0.0.1 - - [09/Mar/2025:12:00:{second:02} +0000] \"GET /x/{second} HTTP/1.1\" {status} 5 \"-\" \"-\" 1 \"{router}\" \"http://10.0.0.7:80\" {ms}ms"
        )
    }

    #[test]
    fn any_thread_count_and_chunk_size_gives_the_same_aggregate() {
        let dir = std::env::temp_dir().join(format!("vantage-pipeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
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
        let requests = |router: &str| reference.groups[&GroupKey(vec![router.to_owned()])].requests;
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
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn files_are_read_in_the_order_of_their_first_timestamp() {
        let dir = std::env::temp_dir().join(format!("vantage-order-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let late = write_log(&dir, "access.log", &[traefik_line(30, "a", 200, 1)]);
        let early = write_log(&dir, "access.log.1", &[traefik_line(10, "a", 200, 1)]);
        let empty = write_log(&dir, "empty.log", &[]);
        let ordered = order_by_time(
            vec![empty.clone(), late.clone(), early.clone()],
            &Format::TraefikCommon,
        )
        .expect("reads");
        assert_eq!(ordered, [early, late, empty]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_missing_file_is_an_error_that_names_it() {
        let config = AggregateConfig::new(Format::TraefikCommon);
        let error = Pipeline::default()
            .run(
                vec![Source::Spec(InputSpec::Path(
                    "/nonexistent/access.log".into(),
                ))],
                &config,
                &Progress::default(),
            )
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot open /nonexistent/access.log: ")
        );
    }
}

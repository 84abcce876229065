//! The batch pipeline of `report`: a reader cuts the inputs into chunks of whole lines, a
//! bounded channel hands them to parser workers that aggregate privately, and a merger absorbs
//! the chunk aggregates in reading order.
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
//! reader to be refilled. Each worker turns a chunk into a chunk aggregate; the merger absorbs
//! them in reading order, so that the group cap falls exactly where a single thread would put
//! it: results do not depend on the number of threads or the chunk size. (`serve` reads with
//! the same [line reader](crate::read) but parses on one thread: a proxy writes far fewer lines
//! per second than one core parses.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::aggregate::chunks::ChunkAggregate;
use crate::aggregate::{Aggregate, AggregateConfig, Aggregator, LinePosition};
use crate::read::{
    Chunker, DEFAULT_MAX_LINE_BYTES, InputError, Line, LineBuffer, Source, TooLong, for_each_line,
};

/// Default size of a chunk handed to a worker.
pub(crate) const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

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
pub(crate) struct Pipeline {
    /// Parser threads; 1 parses on the calling thread.
    pub(crate) threads: usize,
    /// Bytes per chunk.
    pub(crate) chunk_bytes: usize,
    /// Lines longer than this are counted as malformed and skipped.
    pub(crate) max_line_bytes: usize,
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
    bytes: LineBuffer,
    too_long: Vec<TooLong>,
}

/// A worker's aggregate of one chunk on its way to the merger.
struct Done {
    sequence: u64,
    input: u32,
    lines: u64,
    aggregate: ChunkAggregate,
}

impl Pipeline {
    /// Reads every input in order and returns the finished aggregate.
    pub(crate) fn run(
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
        let mut buffer = LineBuffer::for_fills(self.chunk_bytes);
        let mut next_line = (u32::MAX, 1);
        self.read(inputs, progress, &mut buffer, |input, bytes, too_long| {
            if next_line.0 != input {
                next_line = (input, 1);
            }
            let lines = self.process(&mut aggregator, input, next_line.1, bytes, too_long);
            next_line.1 += lines;
            progress.lines.fetch_add(lines, Ordering::Relaxed);
        })?;
        Ok(aggregator.into_aggregate())
    }

    fn run_parallel(
        &self,
        inputs: Vec<Source>,
        config: &AggregateConfig,
        progress: &Progress,
    ) -> Result<Aggregate, InputError> {
        let (chunks, work): (Sender<Chunk>, Receiver<Chunk>) = bounded(self.threads * 2);
        let (recycle, spares): (Sender<LineBuffer>, Receiver<LineBuffer>) =
            bounded(self.threads * 3);
        let (done, results): (Sender<Done>, Receiver<Done>) = bounded(self.threads * 2);
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
                            // Numbered from 1: the merger knows the lines before the chunk.
                            let lines = self.process(
                                &mut aggregator,
                                chunk.input,
                                1,
                                &chunk.bytes,
                                &chunk.too_long,
                            );
                            progress.lines.fetch_add(lines, Ordering::Relaxed);
                            // The merger outlives the workers; the reader may have enough spares.
                            let _ = done.send(Done {
                                sequence: chunk.sequence,
                                input: chunk.input,
                                lines,
                                aggregate: aggregator.take_chunk(),
                            });
                            let _ = recycle.try_send(chunk.bytes);
                        }
                    })
                    .expect("spawning a parser thread");
            }
            drop((work, done));
            let merger = std::thread::Builder::new()
                .name("edge-parser-merge".to_owned())
                .spawn_scoped(scope, move || merge_in_order(config, results))
                .expect("spawning the merge thread");
            let mut buffer = LineBuffer::default();
            let mut sequence = 0;
            let read = self.read(inputs, progress, &mut buffer, |input, bytes, too_long| {
                let next = spares
                    .try_recv()
                    .unwrap_or_else(|_| LineBuffer::for_fills(self.chunk_bytes));
                // Workers only stop when the channel closes, so sending cannot fail.
                let _ = chunks.send(Chunk {
                    sequence,
                    input,
                    bytes: std::mem::replace(bytes, next),
                    too_long: std::mem::take(too_long),
                });
                sequence += 1;
            });
            drop(chunks);
            let merged = merger.join().expect("the merge thread panicked");
            read.map(|()| merged)
        })
    }

    /// Cuts every input into chunks and hands each to `each`, which may take the buffers.
    fn read(
        &self,
        inputs: Vec<Source>,
        progress: &Progress,
        buffer: &mut LineBuffer,
        mut each: impl FnMut(u32, &mut LineBuffer, &mut Vec<TooLong>),
    ) -> Result<(), InputError> {
        let mut too_long = Vec::new();
        for (index, source) in inputs.into_iter().enumerate() {
            let input = source.open(Arc::clone(&progress.raw_bytes))?;
            let mut chunker = Chunker::new(input, self.chunk_bytes, self.max_line_bytes);
            while chunker.next_chunk(buffer, &mut too_long)? {
                each(index as u32, buffer, &mut too_long);
            }
        }
        Ok(())
    }

    /// Aggregates one chunk whose first line is `first_line` of input `input`; returns how many
    /// lines it had.
    fn process(
        &self,
        aggregator: &mut Aggregator<'_>,
        input: u32,
        first_line: u64,
        bytes: &LineBuffer,
        too_long: &[TooLong],
    ) -> u64 {
        for_each_line(bytes.as_slice(), too_long, first_line, |number, line| {
            let position = LinePosition::new(input, number);
            match line {
                Line::Whole(line) => aggregator.add_line(position, line),
                Line::TooLong(prefix) => {
                    aggregator.add_too_long(position, prefix, self.max_line_bytes);
                }
            }
        })
    }
}

/// Absorbs the workers' chunk aggregates in reading order, so the group cap falls exactly where
/// one thread reading every line in order would put it.
fn merge_in_order(config: &AggregateConfig, results: Receiver<Done>) -> Aggregate {
    let mut merged = Aggregator::new(config);
    let mut pending = BTreeMap::new();
    let mut next = 0;
    let mut lines_before = (u32::MAX, 0);
    for done in results {
        pending.insert(done.sequence, done);
        while let Some(done) = pending.remove(&next) {
            if lines_before.0 != done.input {
                lines_before = (done.input, 0);
            }
            merged.absorb(done.aggregate, done.input, lines_before.1);
            lines_before.1 += done.lines;
            next += 1;
        }
    }
    merged.into_aggregate()
}

#[cfg(test)]
mod tests;

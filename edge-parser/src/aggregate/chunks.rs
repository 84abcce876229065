//! The parallel pipeline's protocol: workers aggregate one chunk of lines at a time, a merger
//! absorbs the chunk aggregates in reading order, so the group cap falls exactly where one
//! aggregator reading every line in order would put it.
//!
//! Workers number a chunk's lines from 1: they cannot know how many lines came before it. The
//! merger, which sees the chunks in order, moves each chunk's positions by the lines before it.

use super::{Aggregate, AggregateConfig, Aggregator, GroupKey};

/// What an [`Aggregator`] made of one chunk of lines, to be [absorbed](Aggregator::absorb) in
/// chunk order by another.
#[derive(Debug, Default)]
pub(crate) struct ChunkAggregate {
    aggregate: Aggregate,
}

impl<'c> Aggregator<'c> {
    /// An aggregator of one chunk at a time: it creates every group its chunk holds (a chunk is
    /// bounded, so is its memory); the cap is applied when the chunks are absorbed.
    pub(crate) fn for_chunks(config: &'c AggregateConfig) -> Self {
        let mut aggregator = Self::new(config);
        aggregator.group_limit = usize::MAX;
        aggregator
    }

    /// Takes what the lines added since the last call amount to, leaving the aggregator empty.
    pub(crate) fn take_chunk(&mut self) -> ChunkAggregate {
        let empty = Aggregate::new(self.config.group_by.clone());
        ChunkAggregate {
            aggregate: std::mem::replace(&mut self.aggregate, empty),
        }
    }

    /// Adds a chunk's aggregate whose lines of input `input` come after `lines_before` others
    /// of that input. Chunks absorbed in line order give exactly what this aggregator would
    /// have made of their lines itself: new groups are admitted in the order of their first
    /// line, up to the same limit.
    pub(crate) fn absorb(&mut self, chunk: ChunkAggregate, input: u32, lines_before: u64) {
        let mut chunk = chunk.aggregate;
        let shift = |position: &mut super::LinePosition| {
            if position.input == input {
                position.line += lines_before;
            }
        };
        chunk
            .malformed_samples
            .iter_mut()
            .for_each(|sample| shift(&mut sample.position));
        self.aggregate
            .merge_counts(&chunk, self.config.malformed_samples);
        let mut groups: Vec<_> = chunk.groups.into_iter().collect();
        groups
            .iter_mut()
            .for_each(|(_, stats)| shift(&mut stats.first_seen));
        groups.sort_by_key(|(_, stats)| stats.first_seen);
        for (key, stats) in groups {
            if let Some(mine) = self.aggregate.groups.get_mut(&key) {
                mine.merge(&stats);
            } else if self.aggregate.groups.len() < self.group_limit {
                self.aggregate.groups.insert(key, stats);
            } else {
                self.aggregate
                    .groups
                    .entry(GroupKey::overflow(self.config.group_by.len()))
                    .or_default()
                    .merge(&stats);
            }
        }
    }
}

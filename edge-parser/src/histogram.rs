//! Latency histograms with HdrHistogram's bucket layout, stored sparsely so that a histogram
//! costs memory only for the values it holds.
//!
//! [`LatencyHistogram`] has HdrHistogram's 3 significant digits in microseconds: a value `v`
//! below 2048 µs has its own counter; above, it shares a counter with the values that agree
//! with it in their 11 leading bits, so every value is known to within 1/1024 (< 0.1 %) of
//! itself. The windows of `serve` use the same layout with 2 significant digits (8 leading
//! bits, < 1 %), packed (`WindowHistogram`, crate-private).
//!
//! Counters start as a sorted list: the counter indices (`u16`: every index fits) beside their
//! counts (`u32`), 6 bytes per distinct counter. The list turns into pages of 128 counters
//! (`u64`), allocated on first use, once pages would take at most twice the memory of the list
//! (values close together, as microsecond latencies are: a lookup in pages is one step), once
//! it holds 1 024 counters (so that a lookup stays a short binary search) or once a count
//! outgrows `u32`. Values far apart, as latencies logged in whole milliseconds are above a few
//! hundred milliseconds (one counter in eight, then one in sixteen...), stay in the list: a
//! page each would cost 1 KiB for a handful of counters. A route with a few hundred
//! distinct latencies costs a few KiB; a dense HdrHistogram over 1 µs to 1 h costs 188 KiB.
//! The exact minimum, maximum and sum are kept beside the counters.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Distinct counters a sorted list holds at most before the histogram switches to pages.
pub(crate) const SPARSE_MAX: usize = 1024;
/// Below this many distinct counters the list is kept whatever pages would cost.
const SPARSE_MIN: usize = 256;
/// Counters per page once a histogram is dense.
pub(crate) const PAGE_LEN: usize = 128;

/// A histogram of 3 significant digits (HdrHistogram's), in microseconds.
pub type LatencyHistogram = Histogram<11>;

/// A histogram whose counters cover `1/2^(BITS-1)` of an octave; see the [module docs](self).
///
/// Merging adds counters, so histograms filled on several threads and merged equal the one
/// filled on one thread, exactly.
#[derive(Clone, Default)]
pub struct Histogram<const BITS: u32> {
    counters: Counters,
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
}

#[derive(Clone, Debug)]
enum Counters {
    /// Indices in increasing order and their counts, no zero counts.
    Sparse { indices: Vec<u16>, counts: Vec<u32> },
    /// Pages of counters by `index / PAGE_LEN`.
    Dense(Vec<Option<Box<[u64]>>>),
}

impl Default for Counters {
    fn default() -> Self {
        Self::Sparse {
            indices: Vec::new(),
            counts: Vec::new(),
        }
    }
}

impl<const BITS: u32> Histogram<BITS> {
    const SUB_BUCKETS: u64 = 1 << BITS;
    const HALF: u64 = Self::SUB_BUCKETS / 2;
    /// The sorted list stores indices as `u16`: the largest, `u64::MAX`'s, must fit.
    const INDICES_FIT: () = assert!(BITS <= 11);

    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of the counter that holds the largest value: the last there is (56 319 for a
    /// [`LatencyHistogram`]). Counters are at most this many plus one.
    pub(crate) const MAX_INDEX: u32 = Self::index_of(u64::MAX);

    /// The index of the counter that holds `value`.
    pub(crate) const fn index_of(value: u64) -> u32 {
        if value < Self::SUB_BUCKETS {
            return value as u32;
        }
        let shift = 63 - value.leading_zeros() as u64 - (BITS - 1) as u64;
        (shift * Self::HALF + (value >> shift)) as u32
    }

    /// The lowest and highest value that share the counter at `index`.
    pub(crate) fn range_of(index: u32) -> (u64, u64) {
        let index = u64::from(index);
        if index < Self::SUB_BUCKETS {
            return (index, index);
        }
        let shift = index / Self::HALF - 1;
        let sub = index - shift * Self::HALF;
        let low = sub << shift;
        // The top counter ends at u64::MAX: `low + (1 << shift)` would overflow.
        (low, low + ((1 << shift) - 1))
    }

    /// Records one value, in microseconds.
    #[inline]
    pub fn record(&mut self, micros: u64) {
        self.record_n(micros, 1);
    }

    /// Records `n` occurrences of a value, in microseconds.
    pub fn record_n(&mut self, micros: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.add_to_counter(Self::index_of(micros), n);
        if self.count == 0 || micros < self.min {
            self.min = micros;
        }
        self.max = self.max.max(micros);
        self.count = self.count.saturating_add(n);
        self.sum = self.sum.saturating_add(micros.saturating_mul(n));
    }

    fn add_to_counter(&mut self, index: u32, n: u64) {
        let () = Self::INDICES_FIT;
        match &mut self.counters {
            Counters::Sparse { indices, counts } => {
                // Every index of a histogram of at most 11 bits fits (`INDICES_FIT`).
                let short = index as u16;
                let found = indices.binary_search(&short);
                let narrow = |count: u64| u32::try_from(count).ok();
                match found {
                    Ok(at) => {
                        if let Some(sum) = u64::from(counts[at]).checked_add(n).and_then(narrow) {
                            counts[at] = sum;
                            return;
                        }
                    }
                    Err(at) if !pages_are_smaller(indices) => {
                        if let Some(n) = narrow(n) {
                            indices.insert(at, short);
                            counts.insert(at, n);
                            return;
                        }
                    }
                    Err(_) => {}
                }
                self.densify();
                self.add_to_counter(index, n);
            }
            Counters::Dense(pages) => {
                let index = index as usize;
                let (page, slot) = (index / PAGE_LEN, index % PAGE_LEN);
                if page >= pages.len() {
                    pages.resize_with(page + 1, || None);
                }
                let counters = pages[page].get_or_insert_with(|| vec![0; PAGE_LEN].into());
                counters[slot] = counters[slot].saturating_add(n);
            }
        }
    }

    #[cold]
    fn densify(&mut self) {
        let Counters::Sparse { indices, counts } = std::mem::take(&mut self.counters) else {
            return;
        };
        self.counters = Counters::Dense(Vec::new());
        for (index, count) in indices.into_iter().zip(counts) {
            self.add_to_counter(u32::from(index), u64::from(count));
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (index, count) in other.counters() {
            self.add_to_counter(index, count);
        }
        if other.count > 0 {
            if self.count == 0 || other.min < self.min {
                self.min = other.min;
            }
            self.max = self.max.max(other.max);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// The number of recorded values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest recorded value, exact (0 when empty).
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The largest recorded value, exact (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The sum of the recorded values, µs (saturating).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The mean of the recorded values (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0 to 1) by the nearest-rank definition: the smallest
    /// recorded value `v` such that at least `q` of all values are `<= v`, to within the
    /// histogram's precision (reported as the low end of its counter's range, clamped to what
    /// was recorded: exact for values logged in whole milliseconds up to 16 ms in a
    /// [`LatencyHistogram`]). Quantile 1 is the exact maximum, quantile 0 the exact minimum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if rank >= self.count {
            return self.max;
        }
        let mut seen: u64 = 0;
        for (index, count) in self.counters() {
            seen = seen.saturating_add(count);
            if seen >= rank {
                let (low, _) = Self::range_of(index);
                return low.clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// How many recorded values are `<= bound` µs, counting a counter whose range straddles
    /// the bound as below it (an error of at most the histogram's precision at the bound).
    pub fn count_at_or_below(&self, bound: u64) -> u64 {
        self.counters()
            .take_while(|&(index, _)| Self::range_of(index).0 <= bound)
            .map(|(_, count)| count)
            .fold(0, u64::saturating_add)
    }

    /// [`count_at_or_below`](Self::count_at_or_below) for each of `bounds` (increasing), in one
    /// pass over the counters.
    pub fn counts_at_or_below(
        &self,
        bounds: impl IntoIterator<Item = u64>,
    ) -> impl Iterator<Item = u64> {
        let mut counters = self.counters().peekable();
        let mut below = 0;
        bounds.into_iter().map(move |bound| {
            while let Some((_, count)) =
                counters.next_if(|&(index, _)| Self::range_of(index).0 <= bound)
            {
                below += count;
            }
            below
        })
    }

    /// The non-zero counters in value order: `(the lowest value it counts, count)`.
    pub(crate) fn lower_ends(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counters()
            .map(|(index, count)| (Self::range_of(index).0, count))
    }

    /// The non-zero counters in value order: `(index, count)`.
    fn counters(&self) -> CounterIter<'_> {
        match &self.counters {
            Counters::Sparse { indices, counts } => {
                CounterIter::Sparse(indices.iter().zip(counts.iter()))
            }
            Counters::Dense(pages) => CounterIter::Dense {
                pages,
                page: 0,
                slot: 0,
            },
        }
    }

    /// Memory held by the counters, in bytes.
    pub fn heap_bytes(&self) -> usize {
        match &self.counters {
            Counters::Sparse { indices, counts } => indices.capacity() * 2 + counts.capacity() * 4,
            Counters::Dense(pages) => {
                pages.capacity() * std::mem::size_of::<Option<Box<[u64]>>>()
                    + pages.iter().flatten().count() * PAGE_LEN * 8
            }
        }
    }
}

/// Whether a sorted list of `indices`, about to take one more, should turn into pages: past
/// [`SPARSE_MAX`], or past [`SPARSE_MIN`] when the pages it touches would take at most twice
/// the memory of the list (6 bytes a counter against 1 KiB a page of 128: two thirds full).
fn pages_are_smaller(indices: &[u16]) -> bool {
    if indices.len() < SPARSE_MIN {
        return false;
    }
    if indices.len() >= SPARSE_MAX {
        return true;
    }
    let mut pages = 0;
    let mut last = None;
    for &index in indices {
        let page = usize::from(index) / PAGE_LEN;
        if last != Some(page) {
            pages += 1;
            last = Some(page);
        }
    }
    pages * PAGE_LEN * 8 <= 2 * (indices.len() + 1) * 6
}

/// The non-zero counters of a histogram, in index order.
enum CounterIter<'a> {
    Sparse(std::iter::Zip<std::slice::Iter<'a, u16>, std::slice::Iter<'a, u32>>),
    Dense {
        pages: &'a [Option<Box<[u64]>>],
        page: usize,
        slot: usize,
    },
}

impl Iterator for CounterIter<'_> {
    type Item = (u32, u64);

    fn next(&mut self) -> Option<(u32, u64)> {
        match self {
            Self::Sparse(pairs) => pairs
                .next()
                .map(|(&index, &count)| (u32::from(index), u64::from(count))),
            Self::Dense { pages, page, slot } => loop {
                let counters = pages.get(*page)?;
                match counters.as_ref().and_then(|counters| counters.get(*slot)) {
                    Some(&count) => {
                        let index = *page * PAGE_LEN + *slot;
                        *slot += 1;
                        if count > 0 {
                            return Some((index as u32, count));
                        }
                    }
                    None => {
                        *page += 1;
                        *slot = 0;
                    }
                }
            },
        }
    }
}

impl<const BITS: u32> PartialEq for Histogram<BITS> {
    fn eq(&self, other: &Self) -> bool {
        (self.count, self.sum, self.min, self.max) == (other.count, other.sum, other.min, other.max)
            && self.counters().eq(other.counters())
    }
}

impl<const BITS: u32> Eq for Histogram<BITS> {}

impl<const BITS: u32> fmt::Debug for Histogram<BITS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .field("counters", &self.counters().count())
            .finish_non_exhaustive()
    }
}

/// The layout of [`WindowHistogram`]: 2 significant digits.
#[cfg(any(test, feature = "serve"))]
type WindowLayout = Histogram<8>;
/// One more than the largest counter index of [`WindowLayout`] (the index of `u64::MAX`).
#[cfg(any(test, feature = "serve"))]
const WINDOW_INDICES: usize = WindowLayout::MAX_INDEX as usize + 1;
/// Values a [`WindowHistogram`] takes in before it packs them.
#[cfg(any(test, feature = "serve"))]
const PENDING_MAX: usize = 64;

/// A histogram of 2 significant digits in microseconds (HdrHistogram's layout with 8 leading
/// bits: a value is known to within 1/128, < 1 %, of the low end of its counter), packed for
/// the many slots of `serve`'s sliding windows.
///
/// A window slot is written for a few seconds or minutes and then only read until it expires,
/// so its counters are kept packed rather than ready for random updates: one byte string of
/// `(gap to the previous index, count)` pairs as LEB128 varints, in index order, usually two
/// bytes per distinct counter (against 16 for a sorted list of `(u32, u64)` pairs). New values
/// are appended as raw `u16` indices behind the packed part (recording is a push) and sorted
/// into it every [`PENDING_MAX`] values, and when the slot closes ([`shrink`](Self::shrink)).
/// Reading merges slots into a [`WindowMerge`], a dense array reused for every group.
#[cfg(any(test, feature = "serve"))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WindowHistogram {
    /// `packed_len` bytes of packed counters, then the pending indices (little-endian `u16`).
    bytes: Vec<u8>,
    packed_len: usize,
}

#[cfg(any(test, feature = "serve"))]
impl WindowHistogram {
    /// Records one value, in microseconds.
    pub(crate) fn record(&mut self, micros: u64) {
        // Every index of the 8-bit layout is below `WINDOW_INDICES`, which fits a u16.
        let index = WindowLayout::index_of(micros) as u16;
        if self.bytes.capacity() == self.bytes.len() {
            self.bytes.reserve(PENDING_MAX * 2);
        }
        self.bytes.extend_from_slice(&index.to_le_bytes());
        if self.bytes.len() - self.packed_len >= PENDING_MAX * 2 {
            self.pack();
        }
    }

    /// Sorts the pending values into the packed counters.
    fn pack(&mut self) {
        if self.bytes.len() == self.packed_len {
            return;
        }
        let mut pending: Vec<u16> = self.bytes[self.packed_len..]
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        pending.sort_unstable();
        let mut merged = Vec::with_capacity(self.packed_len + pending.len() * 2 + 8);
        let mut writer = PackedWriter::default();
        let mut packed = PackedReader::new(&self.bytes[..self.packed_len]).peekable();
        let mut pending = pending.into_iter().peekable();
        loop {
            let next_packed = packed.peek().map(|&(index, _)| index);
            let next_pending = pending.peek().map(|&index| u32::from(index));
            let (index, count) = match (next_packed, next_pending) {
                (None, None) => break,
                (Some(a), Some(b)) if b < a => (b, 0),
                (Some(_), _) => packed.next().unwrap_or_default(),
                (None, Some(b)) => (b, 0),
            };
            let mut count = count;
            while pending.next_if(|&next| u32::from(next) == index).is_some() {
                count += 1;
            }
            writer.push(&mut merged, index, count);
        }
        self.packed_len = merged.len();
        self.bytes = merged;
    }

    /// Packs everything and gives back the spare room: for a slot that is closed.
    pub(crate) fn shrink(&mut self) {
        self.pack();
        self.bytes.shrink_to_fit();
    }

    /// Adds every value into `merge`.
    pub(crate) fn add_into(&self, merge: &mut WindowMerge) {
        for (index, count) in PackedReader::new(&self.bytes[..self.packed_len]) {
            merge.add(index as usize, count);
        }
        for pair in self.bytes[self.packed_len..].chunks_exact(2) {
            merge.add(usize::from(u16::from_le_bytes([pair[0], pair[1]])), 1);
        }
    }

    /// Memory held, in bytes.
    #[cfg(all(test, feature = "serve"))]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Appends packed counters; see [`WindowHistogram`].
#[cfg(any(test, feature = "serve"))]
#[derive(Default)]
struct PackedWriter {
    /// One past the previous index written.
    next: u32,
}

#[cfg(any(test, feature = "serve"))]
impl PackedWriter {
    fn push(&mut self, out: &mut Vec<u8>, index: u32, count: u64) {
        push_varint(out, u64::from(index - self.next));
        push_varint(out, count);
        self.next = index + 1;
    }
}

/// Reads packed counters back: `(index, count)` in index order.
#[cfg(any(test, feature = "serve"))]
struct PackedReader<'a> {
    bytes: &'a [u8],
    next: u32,
}

#[cfg(any(test, feature = "serve"))]
impl<'a> PackedReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, next: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (at, &byte) in self.bytes.iter().enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * at);
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[at + 1..];
                return Some(value);
            }
        }
        None
    }
}

#[cfg(any(test, feature = "serve"))]
impl Iterator for PackedReader<'_> {
    type Item = (u32, u64);

    fn next(&mut self) -> Option<(u32, u64)> {
        let gap = self.varint()?;
        let count = self.varint()?;
        // Gaps were written from indices below `WINDOW_INDICES`.
        let index = self.next + gap as u32;
        self.next = index + 1;
        Some((index, count))
    }
}

#[cfg(any(test, feature = "serve"))]
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// [`WindowHistogram`]s added together, as dense counters: made once and reused for every
/// group of a summary ([`clear`](Self::clear) only resets what was touched).
#[cfg(any(test, feature = "serve"))]
#[derive(Debug)]
pub(crate) struct WindowMerge {
    counts: Vec<u64>,
    low: usize,
    high: usize,
    total: u64,
}

#[cfg(any(test, feature = "serve"))]
impl Default for WindowMerge {
    fn default() -> Self {
        Self {
            counts: vec![0; WINDOW_INDICES],
            low: WINDOW_INDICES,
            high: 0,
            total: 0,
        }
    }
}

#[cfg(any(test, feature = "serve"))]
impl WindowMerge {
    fn add(&mut self, index: usize, count: u64) {
        let Some(counter) = self.counts.get_mut(index) else {
            return;
        };
        *counter += count;
        self.total += count;
        self.low = self.low.min(index);
        self.high = self.high.max(index);
    }

    /// The number of values added.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0 to 1) by the nearest-rank definition, as the low end of
    /// its counter (within 1 % below the exact value); 0 when empty.
    #[cfg(test)]
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        self.quantiles([q])[0]
    }

    /// [`quantile`](Self::quantile) of each of `qs` (increasing), in one pass.
    pub(crate) fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [u64; N] {
        let mut values = [0; N];
        if self.total == 0 {
            return values;
        }
        let mut index = self.low;
        let mut seen = self.counts[index];
        for (value, q) in values.iter_mut().zip(qs) {
            let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
            while seen < rank && index < self.high {
                index += 1;
                seen += self.counts[index];
            }
            *value = WindowLayout::range_of(index as u32).0;
        }
        values
    }

    /// Empties it for the next group.
    pub(crate) fn clear(&mut self) {
        if self.total > 0 {
            self.counts[self.low..=self.high].fill(0);
        }
        self.low = WINDOW_INDICES;
        self.high = 0;
        self.total = 0;
    }
}

/// On disk (checkpoints, snapshots): `{"count", "sum", "min", "max", "counters": [[index,
/// count], ...]}`, only the non-zero counters.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored<C> {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    counters: C,
}

struct CountersOf<'a, const BITS: u32>(&'a Histogram<BITS>);

impl<const BITS: u32> Serialize for CountersOf<'_, BITS> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for pair in self.0.counters() {
            seq.serialize_element(&pair)?;
        }
        seq.end()
    }
}

impl<const BITS: u32> Serialize for Histogram<BITS> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Stored {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            counters: CountersOf(self),
        }
        .serialize(serializer)
    }
}

/// Reads the counters straight into a histogram, refusing what no histogram holds before it
/// is allocated: an index past [`Histogram::MAX_INDEX`] (it would size the pages), indices
/// out of order or repeated (they bound the number of counters), zero counts.
struct CountersVisitor<const BITS: u32>;

/// The counters read, and what checking them against the stored totals needs.
struct Counted<const BITS: u32> {
    histogram: Histogram<BITS>,
    /// The first and the last index.
    span: Option<(u32, u32)>,
    /// The counts added up.
    total: u64,
    /// The least and the greatest sum the counters allow (saturating, as the sum is).
    sum_range: (u64, u64),
}

impl<'de, const BITS: u32> Visitor<'de> for CountersVisitor<BITS> {
    type Value = Counted<BITS>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of [index, count] pairs in increasing index order")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut counted = Counted {
            histogram: Histogram::<BITS>::new(),
            span: None,
            total: 0,
            sum_range: (0, 0),
        };
        while let Some((index, count)) = seq.next_element::<(u32, u64)>()? {
            if index > Histogram::<BITS>::MAX_INDEX {
                return Err(de::Error::custom(format!(
                    "histogram counter index {index} is past the last one, {}",
                    Histogram::<BITS>::MAX_INDEX
                )));
            }
            if let Some((_, last)) = counted.span.filter(|&(_, last)| index <= last) {
                return Err(de::Error::custom(format!(
                    "histogram counters out of order: index {index} after {last}"
                )));
            }
            if count == 0 {
                return Err(de::Error::custom(format!(
                    "histogram counter {index} has a zero count"
                )));
            }
            counted.total = counted
                .total
                .checked_add(count)
                .ok_or_else(|| de::Error::custom("histogram counters add up to more than 2^64"))?;
            let (low, high) = Histogram::<BITS>::range_of(index);
            counted.sum_range.0 = counted
                .sum_range
                .0
                .saturating_add(low.saturating_mul(count));
            counted.sum_range.1 = counted
                .sum_range
                .1
                .saturating_add(high.saturating_mul(count));
            counted.span = Some((counted.span.map_or(index, |(first, _)| first), index));
            counted.histogram.add_to_counter(index, count);
        }
        Ok(counted)
    }
}

impl<'de, const BITS: u32> Deserialize<'de> for Counted<BITS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(CountersVisitor::<BITS>)
    }
}

/// What the stored totals must be, given the counters: see [`Histogram::deserialize`].
fn check_totals<const BITS: u32>(stored: &Stored<Counted<BITS>>) -> Result<(), String> {
    let counted = &stored.counters;
    if counted.total != stored.count {
        return Err(format!(
            "histogram counters add up to {}, its count is {}",
            counted.total, stored.count
        ));
    }
    let Some((first, last)) = counted.span else {
        return if (stored.sum, stored.min, stored.max) == (0, 0, 0) {
            Ok(())
        } else {
            Err(format!(
                "empty histogram with sum {}, min {}, max {}",
                stored.sum, stored.min, stored.max
            ))
        };
    };
    for (name, value, which, index) in [
        ("minimum", stored.min, "first", first),
        ("maximum", stored.max, "last", last),
    ] {
        let (low, high) = Histogram::<BITS>::range_of(index);
        if !(low..=high).contains(&value) {
            return Err(format!(
                "histogram {name} {value} is outside its {which} counter, {index} ({low} to {high})"
            ));
        }
    }
    let (least, most) = counted.sum_range;
    if !(least..=most).contains(&stored.sum) {
        return Err(format!(
            "histogram sum {} is not what its counters allow ({least} to {most})",
            stored.sum
        ));
    }
    Ok(())
}

/// Reads the stored form, refusing a histogram whose parts disagree: counters that do not add
/// up to the count, a minimum or maximum outside the first or last counter, a sum the
/// counters cannot make.
impl<'de, const BITS: u32> Deserialize<'de> for Histogram<BITS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Stored::<Counted<BITS>>::deserialize(deserializer)?;
        check_totals(&stored).map_err(de::Error::custom)?;
        let mut histogram = stored.counters.histogram;
        histogram.count = stored.count;
        histogram.sum = stored.sum;
        histogram.min = stored.min;
        histogram.max = stored.max;
        Ok(histogram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type H = LatencyHistogram;

    #[test]
    fn small_values_are_exact_and_large_ones_within_a_thousandth() {
        for value in [
            0,
            1,
            2047,
            2048,
            2049,
            5000,
            1_000_000,
            3_600_000_000,
            u64::MAX / 4,
        ] {
            let (low, high) = H::range_of(H::index_of(value));
            assert!(low <= value && value <= high, "{value} in {low}..={high}");
            assert!(
                (high - low) as f64 <= value as f64 / 1024.0,
                "{value}: {low}..={high}"
            );
        }
        assert_eq!(H::range_of(H::index_of(2047)), (2047, 2047));
        assert_eq!(H::range_of(H::index_of(2049)), (2048, 2049));
        assert_eq!(H::range_of(H::index_of(4097)), (4096, 4099));
        assert_eq!(
            Histogram::<8>::range_of(Histogram::<8>::index_of(300)),
            (300, 301)
        );
    }

    #[test]
    fn quantiles_follow_nearest_rank() {
        let mut histogram = H::new();
        for value in 1..=100 {
            histogram.record(value);
        }
        assert_eq!(histogram.count(), 100);
        assert_eq!(histogram.quantile(0.5), 50);
        assert_eq!(histogram.quantile(0.9), 90);
        assert_eq!(histogram.quantile(0.99), 99);
        assert_eq!(histogram.quantile(0.999), 100);
        assert_eq!(histogram.quantile(1.0), 100);
        assert_eq!(histogram.quantile(0.0), 1);
        assert_eq!(histogram.min(), 1);
        assert_eq!(histogram.max(), 100);
        assert_eq!(histogram.mean(), 50.5);
    }

    #[test]
    fn an_empty_histogram_answers_zero() {
        let histogram = H::new();
        assert_eq!(histogram.quantile(0.99), 0);
        assert_eq!(histogram.mean(), 0.0);
        assert_eq!(histogram.heap_bytes(), 0);
    }

    #[test]
    fn buckets_count_values_at_or_below_a_bound() {
        let mut histogram = H::new();
        for value in [1_000, 4_999, 5_000, 5_001, 9_000, 20_000] {
            histogram.record(value);
        }
        assert_eq!(histogram.count_at_or_below(5_000), 4);
        assert_eq!(histogram.count_at_or_below(10_000), 5);
        assert_eq!(histogram.count_at_or_below(u64::MAX), 6);
        let bounds = [0, 999, 1_000, 5_000, 10_000, u64::MAX];
        assert_eq!(
            histogram.counts_at_or_below(bounds).collect::<Vec<_>>(),
            bounds.map(|bound| histogram.count_at_or_below(bound))
        );
        assert_eq!(
            histogram.counts_at_or_below(bounds).collect::<Vec<_>>(),
            [0, 0, 1, 4, 5, 6]
        );
    }

    #[test]
    fn memory_grows_with_the_distinct_values_not_the_count() {
        let mut few = H::new();
        for n in 0..1_000_000u64 {
            few.record(10_000 + n % 100);
        }
        assert_eq!(few.count(), 1_000_000);
        assert!(few.heap_bytes() <= 2048, "{}", few.heap_bytes());
        // Spread over four octaves: dense pages, still a few KiB.
        let mut spread = H::new();
        for n in 0..100_000u64 {
            spread.record(1_000 + n * 7 % 16_000);
        }
        assert!(spread.heap_bytes() <= 64 << 10, "{}", spread.heap_bytes());
        assert_eq!(spread.count(), 100_000);
    }

    #[test]
    fn the_stored_form_lists_only_non_zero_counters() {
        let mut histogram = H::new();
        histogram.record_n(3, 2);
        histogram.record(5_000);
        let json = serde_json::to_string(&histogram).expect("serialises");
        assert_eq!(
            json,
            r#"{"count":3,"sum":5006,"min":3,"max":5000,"counters":[[3,2],[3298,1]]}"#
        );
        let back: H = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, histogram);
    }

    /// Why the stored histogram `json` is refused (serde_json's position cut off).
    fn refused(json: &str) -> String {
        let error = serde_json::from_str::<H>(json).expect_err(json).to_string();
        match error.find(" at line ") {
            Some(at) => error[..at].to_owned(),
            None => error,
        }
    }

    #[test]
    fn a_stored_histogram_whose_parts_disagree_is_refused_naming_why() {
        let stored = |count: u64, sum: u64, min: u64, max: u64, counters: &str| {
            format!(
                r#"{{"count":{count},"sum":{sum},"min":{min},"max":{max},"counters":[{counters}]}}"#
            )
        };
        for (json, reason) in [
            (
                stored(4, 5006, 3, 5000, "[3,2],[3298,1]"),
                "histogram counters add up to 3, its count is 4",
            ),
            (
                stored(3, 5006, 3, 5000, "[3298,1],[3,2]"),
                "histogram counters out of order: index 3 after 3298",
            ),
            (
                stored(4, 5006, 3, 5000, "[3,2],[3,1],[3298,1]"),
                "histogram counters out of order: index 3 after 3",
            ),
            (
                stored(1, 1, 1, 1, "[91169,1]"),
                "histogram counter index 91169 is past the last one, 56319",
            ),
            (
                stored(1, 1, 1, 1, "[4294967295,1]"),
                "histogram counter index 4294967295 is past the last one, 56319",
            ),
            (
                stored(1, 3, 3, 3, "[3,0],[4,1]"),
                "histogram counter 3 has a zero count",
            ),
            (
                stored(1, 3, 3, 3, "[-3,1]"),
                "invalid value: integer `-3`, expected u32",
            ),
            (
                stored(0, 0, 0, 0, "[3,18446744073709551615],[4,1]"),
                "histogram counters add up to more than 2^64",
            ),
            (
                stored(3, 5006, 4, 5000, "[3,2],[3298,1]"),
                "histogram minimum 4 is outside its first counter, 3 (3 to 3)",
            ),
            (
                stored(3, 5006, 3, 6000, "[3,2],[3298,1]"),
                "histogram maximum 6000 is outside its last counter, 3298 (5000 to 5003)",
            ),
            (
                stored(3, 9, 3, 5000, "[3,2],[3298,1]"),
                "histogram sum 9 is not what its counters allow (5006 to 5009)",
            ),
            (
                stored(0, 7, 0, 0, ""),
                "empty histogram with sum 7, min 0, max 0",
            ),
            (
                r#"{"count":0,"sum":0,"min":0,"max":0,"counters":[],"extra":1}"#.to_owned(),
                "unknown field `extra`, expected one of `count`, `sum`, `min`, `max`, `counters`",
            ),
        ] {
            assert_eq!(refused(&json), reason, "{json}");
        }
    }

    #[test]
    fn the_last_index_holds_the_largest_value_and_its_range_fits() {
        assert_eq!(H::MAX_INDEX, H::index_of(u64::MAX));
        assert_eq!(H::MAX_INDEX, 56_319);
        assert_eq!(WindowLayout::MAX_INDEX, 7_423);
        assert_eq!(H::range_of(H::MAX_INDEX), (2047 << 53, u64::MAX));
        let mut histogram = H::new();
        histogram.record(u64::MAX);
        histogram.record(0);
        let json = serde_json::to_string(&histogram).expect("serialises");
        let back: H = serde_json::from_str(&json).expect("the extremes are valid");
        assert_eq!((back.quantile(0.5), back.quantile(1.0)), (0, u64::MAX));
    }

    #[test]
    fn more_counters_than_the_sparse_list_holds_read_back_as_pages() {
        // 1 100 distinct counters: a real histogram past SPARSE_MAX, not a corrupt one.
        let mut histogram = H::new();
        for value in 0..1100 {
            histogram.record(value * 3);
        }
        assert!(matches!(histogram.counters, Counters::Dense(_)));
        let json = serde_json::to_string(&histogram).expect("serialises");
        let back: H = serde_json::from_str(&json).expect("valid");
        assert_eq!(back, histogram);
        assert!(matches!(back.counters, Counters::Dense(_)));
    }

    #[test]
    fn counts_and_sums_saturate_instead_of_wrapping() {
        let mut histogram = H::new();
        histogram.record_n(u64::MAX, u64::MAX);
        histogram.record(u64::MAX);
        histogram.record_n(7, u64::MAX);
        histogram.merge(&histogram.clone());
        assert_eq!(
            (histogram.count(), histogram.sum(), histogram.max()),
            (u64::MAX, u64::MAX, u64::MAX)
        );
        assert_eq!(histogram.quantile(0.5), 7);
        assert_eq!(histogram.count_at_or_below(u64::MAX), u64::MAX);
    }

    #[test]
    fn whole_milliseconds_stay_in_a_list_and_dense_microseconds_turn_into_pages() {
        // 400 latencies of whole milliseconds up to 1.2 s: one counter in up to 512 above
        // 512 ms, a page each would take 1 KiB for a handful of counters.
        let mut millis = H::new();
        for n in 1..=400u64 {
            millis.record(n * n * 1000 / 133);
        }
        let Counters::Sparse { indices, .. } = &millis.counters else {
            panic!("pages for {millis:?}");
        };
        assert_eq!(indices.len(), 400);
        assert_eq!(millis.counters().count(), 400);
        // 512 neighbouring microsecond values, each its own counter: at 256 of them the two
        // pages they take (2 KiB) are less than twice the list (1.5 KiB).
        let mut micros = H::new();
        for value in 1_024..1_536 {
            micros.record(value);
        }
        let Counters::Dense(pages) = &micros.counters else {
            panic!("a list for {micros:?}");
        };
        assert_eq!(pages.iter().flatten().count(), 4);
        assert_eq!(micros.counters().count(), 512);
        assert_eq!(micros.quantile(0.5), 1_279);
        // A count past `u32` turns the list into pages too.
        let mut many = H::new();
        many.record_n(7, u64::from(u32::MAX));
        assert!(matches!(many.counters, Counters::Sparse { .. }));
        many.record(7);
        assert!(matches!(many.counters, Counters::Dense(_)));
        assert_eq!(many.count(), u64::from(u32::MAX) + 1);
        assert_eq!(
            many.counters().collect::<Vec<_>>(),
            [(7, u64::from(u32::MAX) + 1)]
        );
    }

    #[test]
    fn window_histograms_pack_counters_as_gaps_and_counts() {
        let mut histogram = WindowHistogram::default();
        for value in [70_000, 5, 300, 5] {
            histogram.record(value);
        }
        // Pending: the raw indices 1288, 5, 278, 5 (little-endian).
        assert_eq!(histogram.bytes, [8, 5, 5, 0, 22, 1, 5, 0]);
        histogram.shrink();
        // (5, 2), (278, 1), (1288, 1) as varint gaps from one past the previous index and counts.
        assert_eq!(histogram.bytes, [5, 2, 0x90, 2, 1, 0xf1, 7, 1]);
        assert_eq!(histogram.packed_len, 8);
        let mut merge = WindowMerge::default();
        histogram.add_into(&mut merge);
        histogram.record(301);
        histogram.add_into(&mut merge);
        assert_eq!(merge.count(), 9);
        assert_eq!(
            [0.0, 0.5, 0.6, 1.0].map(|q| merge.quantile(q)),
            [5, 300, 300, 69_632]
        );
        merge.clear();
        assert_eq!((merge.count(), merge.quantile(0.5)), (0, 0));
    }

    proptest! {
        #[test]
        fn window_quantiles_are_the_low_end_of_the_exact_nearest_ranks_counter(
            values in proptest::collection::vec(0u64..50_000_000, 1..600),
            split in 0usize..600,
            q in 0.0f64..=1.0,
        ) {
            // Recorded into two slots, packed at various points, merged.
            let (mut first, mut second) = (WindowHistogram::default(), WindowHistogram::default());
            for (n, &value) in values.iter().enumerate() {
                if n < split { first.record(value) } else { second.record(value) }
            }
            first.shrink();
            let mut merge = WindowMerge::default();
            first.add_into(&mut merge);
            second.add_into(&mut merge);
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
            let exact = sorted[rank - 1];
            let low = WindowLayout::range_of(WindowLayout::index_of(exact)).0;
            prop_assert_eq!(merge.quantile(q), low);
            prop_assert!(exact - low <= exact / 128);
            prop_assert_eq!(merge.count(), values.len() as u64);
        }

        #[test]
        fn quantiles_are_within_a_thousandth_of_the_exact_nearest_rank(
            mut values in proptest::collection::vec(0u64..50_000_000, 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut histogram = H::new();
            for &value in &values {
                histogram.record(value);
            }
            values.sort_unstable();
            let rank = ((q * values.len() as f64).ceil() as usize).max(1);
            let exact = values[rank - 1];
            let estimate = histogram.quantile(q);
            prop_assert!(
                (estimate as f64 - exact as f64).abs() <= exact as f64 / 1000.0,
                "q {} exact {} estimate {}", q, exact, estimate
            );
        }

        #[test]
        fn merging_equals_recording_into_one_in_any_storage(
            left in proptest::collection::vec(0u64..10_000_000, 0..600),
            right in proptest::collection::vec(0u64..10_000_000, 0..600),
        ) {
            let mut one = H::new();
            let (mut a, mut b) = (H::new(), H::new());
            for &value in &left {
                one.record(value);
                a.record(value);
            }
            for &value in &right {
                one.record(value);
                b.record(value);
            }
            a.merge(&b);
            prop_assert_eq!(&a, &one);
            for q in [0.5, 0.9, 0.99, 0.999] {
                prop_assert_eq!(a.quantile(q), one.quantile(q));
            }
            let back: H = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
            prop_assert_eq!(back, a);
        }
    }
}

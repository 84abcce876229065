//! One histogram series, recorded with atomics and read by scrapes: classic buckets, native
//! buckets and an exemplar per classic bucket, all from the same observations.
//!
//! A sample costs a bucket search, three relaxed atomic adds in its thread's shard (its
//! classic bucket, its native bucket, the sum) and, inside [`with_exemplar_trace`](crate::exposition::with_exemplar_trace),
//! two loads to see whether it beats its bucket's exemplar. No lock, and no allocation but the
//! first sample of each doubling of values (native buckets are stored in blocks of one
//! doubling, 512 bytes, allocated when a shard first reaches it: a shard holds the blocks of the
//! range it sees, at most 96), or none at all with every block allocated up front (`eager`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::exposition::native::{NativeHistogram, SCHEMA};
use crate::exposition::{Exemplar, SeriesExtras, current_exemplar_trace};
use crate::shard::{self, CachePadded};
use crate::trace_context::TraceId;

/// Native buckets per doubling of values.
const PER_DOUBLING: i32 = 1 << SCHEMA;
/// The largest value of the zero bucket: 2^-32 (a quarter of a nanosecond in seconds).
pub(crate) const ZERO_THRESHOLD: f64 = 1.0 / 4_294_967_296.0;
/// The first native bucket above the zero bucket.
const FIRST_INDEX: i32 = -32 * PER_DOUBLING + 1;
/// Doublings held: up to 2^64, where the last bucket also takes anything larger.
const DOUBLINGS: usize = 96;
const LAST_INDEX: i32 = FIRST_INDEX + DOUBLINGS as i32 * PER_DOUBLING - 1;

/// The native buckets of one doubling, on lines of their own.
type Block = CachePadded<[AtomicU64; PER_DOUBLING as usize]>;

/// Mantissa slices looked up per sample: 256, each narrower (0.39 %) than a native bucket
/// (1.09 %), so a slice holds at most one bucket boundary.
const SLICES: usize = 256;

/// Within a doubling: the upper bounds of the native buckets, 2^(k/64) for k = 0..=64, and
/// for each slice of mantissas `[1 + j/256, 1 + (j+1)/256)` the bucket of its lowest.
struct WithinDoubling {
    bounds: [f64; PER_DOUBLING as usize + 1],
    slice_bucket: [u8; SLICES],
}

static WITHIN_DOUBLING: LazyLock<WithinDoubling> = LazyLock::new(|| {
    let bounds: [f64; PER_DOUBLING as usize + 1] =
        std::array::from_fn(|k| (k as f64 / f64::from(PER_DOUBLING)).exp2());
    let slice_bucket = std::array::from_fn(|j| {
        let lowest = 1.0 + j as f64 / SLICES as f64;
        bounds.partition_point(|&bound| bound < lowest) as u8
    });
    WithinDoubling {
        bounds,
        slice_bucket,
    }
});

/// The native bucket of a value above the zero bucket: `ceil(log2(value) * 64)`, from the
/// float's exponent, a table of its mantissa's top 8 bits and one comparison (no logarithm and
/// no search per sample).
fn native_index(value: f64) -> i32 {
    let bits = value.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mantissa = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    let table = &*WITHIN_DOUBLING;
    let slice = ((bits >> 44) & 0xff) as usize;
    let mut within = table.slice_bucket[slice];
    // The slice's one boundary, if any, is the upper bound of the bucket of its lowest.
    if table.bounds[usize::from(within)] < mantissa {
        within += 1;
    }
    exponent * PER_DOUBLING + i32::from(within)
}

/// Up to this many bounds, a value's classic bucket is found by counting the bounds below it:
/// the comparisons are independent of each other (and vectorised), where each step of a binary
/// search waits for the load and comparison of the step before, on the path from the clock to
/// the first atomic add. The default duration buckets are 14.
const COUNTED_UP_TO: usize = 32;

/// The classic bucket of a value (not `NaN`): the number of bounds below it, the bounds sorted.
#[inline]
fn classic_bucket(bounds: &[f64], value: f64) -> usize {
    if bounds.len() <= COUNTED_UP_TO {
        bounds.iter().map(|&bound| usize::from(bound < value)).sum()
    } else {
        bounds.partition_point(|&bound| bound < value)
    }
}

/// One series: its counts in one [shard](crate::shard) per thread, so that threads recording at
/// once do not contend for its lines; its exemplars shared (a sample only reads them unless it
/// beats one).
pub(crate) struct SeriesHistogram {
    bounds: Arc<[f64]>,
    shards: Box<[Shard]>,
    exemplars: Box<[ExemplarSlot]>,
}

/// Counts per line of a shard (a line of [`CachePadded`], 128 bytes).
const PER_LINE: usize = 16;
/// The words before the classic buckets in a shard.
const SUM: usize = 0;
const ZERO: usize = 1;
const CLASSIC: usize = 2;

/// One shard of a series: the sum, the zero bucket and the classic buckets (not cumulative, the
/// last one above every bound) on lines of their own, then its native buckets.
struct Shard {
    counts: Box<[CachePadded<[AtomicU64; PER_LINE]>]>,
    native: Box<[OnceLock<Box<Block>>]>,
}

impl Shard {
    fn new(classic_buckets: usize, eager: bool) -> Self {
        let lines = (CLASSIC + classic_buckets).div_ceil(PER_LINE);
        let shard = Self {
            counts: (0..lines).map(|_| CachePadded::new(zeros())).collect(),
            native: (0..DOUBLINGS).map(|_| OnceLock::new()).collect(),
        };
        if eager {
            for block in &shard.native {
                block.get_or_init(new_block);
            }
        }
        shard
    }

    #[inline]
    fn word(&self, index: usize) -> &AtomicU64 {
        &self.counts[index / PER_LINE][index % PER_LINE]
    }

    fn load(&self, index: usize) -> u64 {
        self.word(index).load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for SeriesHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesHistogram")
            .field("bounds", &self.bounds)
            .field("count", &self.classic().2)
            .finish_non_exhaustive()
    }
}

impl SeriesHistogram {
    pub(crate) fn new(bounds: Arc<[f64]>, eager: bool) -> Self {
        let buckets = bounds.len() + 1;
        Self {
            shards: (0..shard::count())
                .map(|_| Shard::new(buckets, eager))
                .collect(),
            exemplars: (0..buckets).map(|_| ExemplarSlot::default()).collect(),
            bounds,
        }
    }

    /// Records one observation (`NaN` is ignored; a negative one is in the zero bucket).
    #[inline]
    pub(crate) fn record(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let shard = &self.shards[shard::current()];
        let bucket = classic_bucket(&self.bounds, value);
        shard.word(CLASSIC + bucket).fetch_add(1, Ordering::Relaxed);
        add_f64(shard.word(SUM), value);
        if value <= ZERO_THRESHOLD {
            shard.word(ZERO).fetch_add(1, Ordering::Relaxed);
        } else {
            let slot = (native_index(value).min(LAST_INDEX) - FIRST_INDEX) as usize;
            let block = shard.native[slot / PER_DOUBLING as usize].get_or_init(new_block);
            block[slot % PER_DOUBLING as usize].fetch_add(1, Ordering::Relaxed);
        }
        if let (Some(trace_id), Some(slot)) = (current_exemplar_trace(), self.exemplars.get(bucket))
        {
            // An infinite sample is counted, and no exemplar: it says nothing of a trace.
            if value.is_finite() {
                slot.offer(trace_id, value);
            }
        }
    }

    /// A word summed over the shards.
    fn total(&self, index: usize) -> u64 {
        self.shards.iter().map(|shard| shard.load(index)).sum()
    }

    /// The classic view: `(upper bound, cumulative count)` per bound, then the sum and the
    /// count (the `+Inf` bucket).
    pub(crate) fn classic(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let buckets = (0..self.bounds.len())
            .map(|bucket| {
                cumulative += self.total(CLASSIC + bucket);
                (self.bounds[bucket], cumulative)
            })
            .collect();
        let overflow = self.total(CLASSIC + self.bounds.len());
        (buckets, self.sum(), cumulative + overflow)
    }

    fn sum(&self) -> f64 {
        self.shards
            .iter()
            .map(|shard| f64::from_bits(shard.load(SUM)))
            .sum()
    }

    /// The exemplars, and the native buckets when `natives`, for OpenMetrics and protobuf. Each exemplar read
    /// is marked shown: the next sample of its bucket replaces it, slower or not.
    pub(crate) fn extras(&self, natives: bool) -> SeriesExtras {
        let native = natives.then(|| self.native());
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        let exemplars = bounds
            .zip(self.exemplars.iter())
            .filter_map(|(le, slot)| slot.take().map(|exemplar| (le, exemplar)))
            .collect();
        SeriesExtras { native, exemplars }
    }

    fn native(&self) -> NativeHistogram {
        let mut buckets = Vec::new();
        for block_index in 0..DOUBLINGS {
            let blocks: Vec<&Block> = self
                .shards
                .iter()
                .filter_map(|shard| shard.native[block_index].get().map(|block| &**block))
                .collect();
            if blocks.is_empty() {
                continue;
            }
            for offset in 0..PER_DOUBLING as usize {
                let count: u64 = blocks
                    .iter()
                    .map(|block| block[offset].load(Ordering::Relaxed))
                    .sum();
                if count > 0 {
                    let slot = (block_index * PER_DOUBLING as usize + offset) as i32;
                    buckets.push((FIRST_INDEX + slot, count));
                }
            }
        }
        NativeHistogram::from_sorted(buckets, self.total(ZERO), self.sum(), ZERO_THRESHOLD)
    }
}

impl metrics::HistogramFn for SeriesHistogram {
    #[inline]
    fn record(&self, value: f64) {
        Self::record(self, value);
    }
}

fn new_block() -> Box<Block> {
    Box::new(CachePadded::new(zeros()))
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

pub(crate) fn add_f64(sum: &AtomicU64, value: f64) {
    let mut current = sum.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + value).to_bits();
        match sum.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// A bucket's exemplar: the slowest traced sample since a scrape last read it.
///
/// A sequence lock written without waiting: a writer that finds it held by another gives up
/// (the other sample is as good an exemplar); a reader retries a torn read. Samples that do
/// not beat the current exemplar only read it, so a hot bucket's line is not written per
/// request.
#[derive(Debug, Default)]
struct ExemplarSlot {
    /// Even when stable, odd while written; 0 before the first exemplar.
    sequence: AtomicU64,
    trace_high: AtomicU64,
    trace_low: AtomicU64,
    value: AtomicU64,
    timestamp: AtomicU64,
    shown: AtomicBool,
}

impl ExemplarSlot {
    #[inline]
    fn offer(&self, trace_id: TraceId, value: f64) {
        let sequence = self.sequence.load(Ordering::Relaxed);
        let kept = sequence != 0
            && !self.shown.load(Ordering::Relaxed)
            && f64::from_bits(self.value.load(Ordering::Relaxed)) >= value;
        if kept || sequence & 1 == 1 {
            return;
        }
        self.write(sequence, trace_id, value);
    }

    #[cold]
    fn write(&self, sequence: u64, trace_id: TraceId, value: f64) {
        let taken = self.sequence.compare_exchange(
            sequence,
            sequence + 1,
            Ordering::Acquire,
            Ordering::Relaxed,
        );
        if taken.is_err() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        let id = trace_id.to_u128();
        self.trace_high.store((id >> 64) as u64, Ordering::Relaxed);
        self.trace_low.store(id as u64, Ordering::Relaxed);
        self.value.store(value.to_bits(), Ordering::Relaxed);
        self.timestamp.store(now.to_bits(), Ordering::Relaxed);
        self.shown.store(false, Ordering::Relaxed);
        self.sequence.store(sequence + 2, Ordering::Release);
    }

    /// The exemplar, marked shown.
    fn take(&self) -> Option<Exemplar> {
        for _ in 0..16 {
            let before = self.sequence.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let high = self.trace_high.load(Ordering::Relaxed);
            let low = self.trace_low.load(Ordering::Relaxed);
            let value = self.value.load(Ordering::Relaxed);
            let timestamp = self.timestamp.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.sequence.load(Ordering::Relaxed) == before {
                self.shown.store(true, Ordering::Relaxed);
                return Some(Exemplar {
                    trace_id: TraceId::from_u128((u128::from(high) << 64) | u128::from(low))?,
                    value: f64::from_bits(value),
                    timestamp: f64::from_bits(timestamp),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{native, with_exemplar_trace};

    fn series() -> SeriesHistogram {
        SeriesHistogram::new(Arc::from([0.1, 1.0]), false)
    }

    #[test]
    fn the_classic_bucket_is_the_number_of_bounds_below_whatever_their_count() {
        let mut rng = fastrand::Rng::with_seed(5);
        for len in [0, 1, 2, 14, COUNTED_UP_TO, COUNTED_UP_TO + 1, 100] {
            let bounds: Vec<f64> = (0..len).map(|k| k as f64 * 0.5 - 2.0).collect();
            let mut values = vec![f64::NEG_INFINITY, f64::INFINITY, -0.0, 1e300];
            for bound in &bounds {
                values.extend([*bound, bound.next_up(), bound.next_down()]);
            }
            values.extend((0..1_000).map(|_| rng.f64() * 60.0 - 10.0));
            for value in values {
                let below = bounds.iter().filter(|&&bound| bound < value).count();
                assert_eq!(
                    classic_bucket(&bounds, value),
                    below,
                    "{len} bounds, {value}"
                );
            }
        }
        assert_eq!(classic_bucket(&[0.1, 1.0], 0.1), 0);
        assert_eq!(classic_bucket(&[0.1, 1.0], 0.5), 1);
        assert_eq!(classic_bucket(&[0.1, 1.0], 2.0), 2);
    }

    #[test]
    fn the_native_index_is_the_logarithms_without_one() {
        for value in [
            1e-9, 3e-7, 0.001, 0.0015, 0.25, 0.251, 0.5, 1.0, 1.5, 2.0, 3.0, 7.99, 1e6, 1e12,
        ] {
            assert_eq!(native_index(value), native::index(value), "{value}");
        }
        // Every bucket boundary (as the table has it) is the upper bound of its bucket, in
        // any doubling; just above it is the next bucket. Then random values.
        for k in 1..=64 {
            for exponent in [-20, 0, 7] {
                let bound = (f64::from(k) / 64.0).exp2() * f64::from(exponent).exp2();
                let index = exponent * 64 + k;
                assert_eq!(native_index(bound), index, "{bound}");
                assert_eq!(native_index(bound.next_up()), index + 1, "{bound}");
                assert_eq!(native_index(bound.next_down()), index, "{bound}");
            }
        }
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..100_000 {
            let value = (rng.f64() * 60.0 - 30.0).exp2();
            assert_eq!(native_index(value), native::index(value), "{value}");
        }
    }

    #[test]
    fn one_sample_is_counted_once_in_each_view() {
        let series = series();
        for value in [0.0, 0.05, 0.1, 0.5, 2.0, 2.0, f64::NAN] {
            series.record(value);
        }
        let (buckets, sum, count) = series.classic();
        assert_eq!(buckets, [(0.1, 3), (1.0, 4)]);
        assert_eq!((sum, count), (4.65, 6));
        let native = series.extras(true).native.expect("native buckets");
        assert_eq!((native.count, native.zero_count), (6, 1));
        assert_eq!(
            native.buckets(),
            [
                (native::index(0.05), 1),
                (native::index(0.1), 1),
                (native::index(0.5), 1),
                (native::index(2.0), 2)
            ]
        );
    }

    #[test]
    fn an_eager_series_allocates_nothing_per_sample() {
        let series = SeriesHistogram::new(Arc::from([0.1, 1.0]), true);
        let trace_id = TraceId::from_u128(1);
        let info = allocation_counter::measure(|| {
            for value in [1e-12, 1e-6, 0.3, 1.0, 1e9, 1e300] {
                with_exemplar_trace(trace_id, || series.record(value));
            }
        });
        assert_eq!(info.count_total, 0);
        assert_eq!(series.classic().2, 6);
    }

    #[test]
    fn values_past_the_range_are_counted_in_the_last_bucket() {
        let series = series();
        series.record(1e300);
        let native = series.extras(true).native.expect("native buckets");
        assert_eq!(native.buckets(), [(LAST_INDEX, 1)]);
    }

    #[test]
    fn a_bucket_keeps_its_slowest_traced_sample_until_a_scrape_shows_it() {
        let series = series();
        let trace = |id| TraceId::from_u128(id);
        series.record(0.5); // no trace: no exemplar
        assert_eq!(series.extras(true).exemplars, []);
        with_exemplar_trace(trace(1), || series.record(0.3));
        with_exemplar_trace(trace(2), || series.record(0.7));
        with_exemplar_trace(trace(3), || series.record(0.4)); // not slower: kept 2
        with_exemplar_trace(trace(4), || series.record(0.05));
        let shown: Vec<(f64, u128, f64)> = series
            .extras(true)
            .exemplars
            .iter()
            .map(|(le, e)| (*le, e.trace_id.to_u128(), e.value))
            .collect();
        assert_eq!(shown, [(0.1, 4, 0.05), (1.0, 2, 0.7)]);
        // Shown: kept for the next scrape, and the next sample replaces it, faster or not.
        with_exemplar_trace(trace(5), || series.record(0.2));
        let shown: Vec<(f64, u128)> = series
            .extras(true)
            .exemplars
            .iter()
            .map(|(le, e)| (*le, e.trace_id.to_u128()))
            .collect();
        assert_eq!(shown, [(0.1, 4), (1.0, 5)]);
    }

    #[test]
    fn more_threads_than_shards_count_every_sample() {
        // Threads share shards past `shard::count()`: every update must still land.
        let series = series();
        let threads = crate::shard::on_more_threads_than_shards(|| {
            for _ in 0..100_000 {
                series.record(0.5);
            }
        });
        let (buckets, sum, count) = series.classic();
        let total = threads as u64 * 100_000;
        assert_eq!(buckets, [(0.1, 0), (1.0, total)]);
        assert_eq!((sum, count), (0.5 * total as f64, total));
        let native = series.extras(true).native.expect("native buckets");
        assert_eq!(native.buckets(), [(native::index(0.5), total)]);
    }

    #[test]
    fn two_threads_count_every_sample() {
        let series = series();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for i in 0..10_000 {
                        with_exemplar_trace(TraceId::from_u128(i + 1), || {
                            series.record(f64::from(i as u32 % 3));
                        });
                    }
                });
            }
        });
        let (_, sum, count) = series.classic();
        assert_eq!((sum, count), (2.0 * (3_333.0 + 2.0 * 3_333.0), 20_000));
        let extras = series.extras(true);
        assert_eq!(extras.native.map(|n| n.count), Some(20_000));
        assert_eq!(extras.exemplars.len(), 3);
    }
}

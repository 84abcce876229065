//! Latency histograms with HdrHistogram's bucket layout, stored sparsely so that a histogram
//! costs memory only for the values it holds.
//!
//! [`LatencyHistogram`] has HdrHistogram's 3 significant digits in microseconds: a value `v`
//! below 2048 µs has its own counter; above, it shares a counter with the values that agree
//! with it in their 11 leading bits, so every value is known to within 1/1024 (< 0.1 %) of
//! itself. [`WindowHistogram`] has 2 significant digits (8 leading bits, < 1 %), for the many
//! short-lived histograms of sliding windows.
//!
//! Counters start in a sorted list of `(index, count)` pairs, 16 bytes per distinct counter;
//! past 256 of them the histogram switches to pages of 128 counters
//! allocated on first use. A route with a few hundred distinct latencies costs a few KiB; a
//! dense HdrHistogram over 1 µs to 1 h costs 188 KiB. The exact minimum, maximum and sum are
//! kept beside the counters.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Distinct counters kept as sorted pairs before a histogram switches to pages.
pub(crate) const SPARSE_MAX: usize = 256;
/// Counters per page once a histogram is dense.
pub(crate) const PAGE_LEN: usize = 128;

/// A histogram of 3 significant digits (HdrHistogram's), in microseconds.
pub type LatencyHistogram = Histogram<11>;
/// A histogram of 2 significant digits, in microseconds, for sliding windows.
pub type WindowHistogram = Histogram<8>;

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
    /// `(index, count)`, sorted by index, no zero counts.
    Sparse(Vec<(u32, u64)>),
    /// Pages of counters by `index / PAGE_LEN`.
    Dense(Vec<Option<Box<[u64]>>>),
}

impl Default for Counters {
    fn default() -> Self {
        Self::Sparse(Vec::new())
    }
}

impl<const BITS: u32> Histogram<BITS> {
    const SUB_BUCKETS: u64 = 1 << BITS;
    const HALF: u64 = Self::SUB_BUCKETS / 2;

    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of the counter that holds `value`.
    fn index_of(value: u64) -> u32 {
        if value < Self::SUB_BUCKETS {
            return value as u32;
        }
        let shift = 63 - u64::from(value.leading_zeros()) - u64::from(BITS - 1);
        (shift * Self::HALF + (value >> shift)) as u32
    }

    /// The lowest and highest value that share the counter at `index`.
    fn range_of(index: u32) -> (u64, u64) {
        let index = u64::from(index);
        if index < Self::SUB_BUCKETS {
            return (index, index);
        }
        let shift = index / Self::HALF - 1;
        let sub = index - shift * Self::HALF;
        let low = sub << shift;
        (low, low + (1 << shift) - 1)
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
        self.count += n;
        self.sum = self.sum.saturating_add(micros.saturating_mul(n));
    }

    fn add_to_counter(&mut self, index: u32, n: u64) {
        match &mut self.counters {
            Counters::Sparse(pairs) => match pairs.binary_search_by_key(&index, |pair| pair.0) {
                Ok(at) => pairs[at].1 += n,
                Err(at) if pairs.len() < SPARSE_MAX => pairs.insert(at, (index, n)),
                Err(_) => {
                    self.densify();
                    self.add_to_counter(index, n);
                }
            },
            Counters::Dense(pages) => {
                let index = index as usize;
                let (page, slot) = (index / PAGE_LEN, index % PAGE_LEN);
                if page >= pages.len() {
                    pages.resize_with(page + 1, || None);
                }
                pages[page].get_or_insert_with(|| vec![0; PAGE_LEN].into())[slot] += n;
            }
        }
    }

    #[cold]
    fn densify(&mut self) {
        let Counters::Sparse(pairs) = std::mem::take(&mut self.counters) else {
            return;
        };
        self.counters = Counters::Dense(Vec::new());
        for (index, count) in pairs {
            self.add_to_counter(index, count);
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
        self.count += other.count;
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
        let mut seen = 0;
        for (index, count) in self.counters() {
            seen += count;
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
            .sum()
    }

    /// The non-zero counters in value order: `(index, count)`.
    fn counters(&self) -> CounterIter<'_> {
        match &self.counters {
            Counters::Sparse(pairs) => CounterIter::Sparse(pairs.iter()),
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
            Counters::Sparse(pairs) => pairs.capacity() * std::mem::size_of::<(u32, u64)>(),
            Counters::Dense(pages) => {
                pages.capacity() * std::mem::size_of::<Option<Box<[u64]>>>()
                    + pages.iter().flatten().count() * PAGE_LEN * 8
            }
        }
    }
}

/// The non-zero counters of a histogram, in index order.
enum CounterIter<'a> {
    Sparse(std::slice::Iter<'a, (u32, u64)>),
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
            Self::Sparse(pairs) => pairs.next().copied(),
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

/// On disk (checkpoints, snapshots): `{"count", "sum", "min", "max", "counters": [[index,
/// count], ...]}`, only the non-zero counters.
#[derive(Serialize, Deserialize)]
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

/// Reads the counters straight into a histogram, refusing indices out of order.
struct CountersVisitor<const BITS: u32>;

impl<'de, const BITS: u32> Visitor<'de> for CountersVisitor<BITS> {
    type Value = Histogram<BITS>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of [index, count] pairs in increasing index order")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut histogram = Histogram::<BITS>::new();
        let mut previous = None;
        while let Some((index, count)) = seq.next_element::<(u32, u64)>()? {
            if previous.is_some_and(|previous| index <= previous) {
                return Err(de::Error::custom("histogram counters out of order"));
            }
            previous = Some(index);
            if count > 0 {
                histogram.add_to_counter(index, count);
            }
        }
        Ok(histogram)
    }
}

/// The counters part of the stored form.
struct Counted<const BITS: u32>(Histogram<BITS>);

impl<'de, const BITS: u32> Deserialize<'de> for Counted<BITS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_seq(CountersVisitor::<BITS>)
            .map(Counted)
    }
}

impl<'de, const BITS: u32> Deserialize<'de> for Histogram<BITS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Stored::<Counted<BITS>>::deserialize(deserializer)?;
        let mut histogram = stored.counters.0;
        let total: u64 = histogram.counters().map(|(_, count)| count).sum();
        if total != stored.count || (stored.count > 0 && stored.min > stored.max) {
            return Err(de::Error::custom(
                "histogram counters do not add up to its count",
            ));
        }
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
            WindowHistogram::range_of(WindowHistogram::index_of(300)),
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
        for corrupt in [
            r#"{"count":4,"sum":5006,"min":3,"max":5000,"counters":[[3,2],[3298,1]]}"#,
            r#"{"count":3,"sum":5006,"min":3,"max":5000,"counters":[[3298,1],[3,2]]}"#,
        ] {
            assert!(serde_json::from_str::<H>(corrupt).is_err(), "{corrupt}");
        }
    }

    proptest! {
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

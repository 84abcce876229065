//! [`LatencyHistogram`]: HdrHistogram's bucket layout (3 significant digits, microseconds) in
//! sparse pages, so that a histogram costs memory only where its values fall.
//!
//! A value `v` (µs) below 2048 has its own counter; above, it shares a counter with the values
//! that agree with it in their 11 leading bits, so every recorded value is known to within 1/1024
//! (< 0.1 %) of itself, exactly as HdrHistogram with 3 significant digits. Counters live in pages
//! of [`PAGE_LEN`] allocated on first use: a route whose latencies span 1 ms to 1 s touches a few
//! dozen pages (tens of KiB), where a dense HdrHistogram over the same range takes 90 KiB or more.
//! The exact minimum, maximum and sum are kept beside the counters.

use serde::{Deserialize, Serialize};

/// Values below this have a counter each; above, counters cover `1/HALF` of an octave.
const SUB_BUCKETS: u64 = 2048;
const HALF: u64 = SUB_BUCKETS / 2;
/// Counters per page.
pub const PAGE_LEN: usize = 128;

/// The index of the counter that holds `value`.
fn index_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let shift = 63 - u64::from(value.leading_zeros()) - 10;
    (shift * HALF + (value >> shift)) as usize
}

/// The lowest and highest value that share the counter at `index`.
fn range_of(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return (index, index);
    }
    let shift = index / HALF - 1;
    let sub = index - shift * HALF;
    let low = sub << shift;
    (low, low + (1 << shift) - 1)
}

/// A latency histogram in microseconds with HdrHistogram's precision and sparse storage.
///
/// Merging adds counters, so histograms aggregated on several threads and merged equal the one
/// aggregated on one thread, exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    pages: Vec<Option<Box<[u64]>>>,
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
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
        *self.counter(index_of(micros)) += n;
        if self.count == 0 || micros < self.min {
            self.min = micros;
        }
        self.max = self.max.max(micros);
        self.count += n;
        self.sum = self.sum.saturating_add(micros.saturating_mul(n));
    }

    fn counter(&mut self, index: usize) -> &mut u64 {
        let (page, slot) = (index / PAGE_LEN, index % PAGE_LEN);
        if page >= self.pages.len() {
            self.pages.resize_with(page + 1, || None);
        }
        &mut self.pages[page].get_or_insert_with(|| vec![0; PAGE_LEN].into())[slot]
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (index, count) in other.counters() {
            *self.counter(index) += count;
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

    /// The value at quantile `q` (0 to 1) by the nearest-rank definition: the smallest recorded
    /// value `v` such that at least `q` of all values are `<= v`, to within 0.1 %. Quantile 1 is
    /// the exact maximum, quantile 0 the exact minimum.
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
                // The counter's values are known to within 0.1 %: report the low end of its
                // range (exact for values logged in whole milliseconds up to 16 ms), clamped to
                // what was actually recorded.
                let (low, _) = range_of(index);
                return low.clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// How many recorded values are `<= bound` µs, counting a counter whose range straddles
    /// the bound as below it (an error of at most 0.1 % of the bound).
    pub fn count_at_or_below(&self, bound: u64) -> u64 {
        self.counters()
            .take_while(|&(index, _)| range_of(index).0 <= bound)
            .map(|(_, count)| count)
            .sum()
    }

    /// The non-zero counters in value order: `(index, count)`.
    fn counters(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.pages
            .iter()
            .enumerate()
            .filter_map(|(page, counters)| Some((page, counters.as_ref()?)))
            .flat_map(|(page, counters)| {
                counters
                    .iter()
                    .enumerate()
                    .filter(|(_, count)| **count > 0)
                    .map(move |(slot, count)| (page * PAGE_LEN + slot, *count))
            })
    }

    /// Memory held by the counters, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.pages.capacity() * std::mem::size_of::<Option<Box<[u64]>>>()
            + self.pages.iter().flatten().count() * PAGE_LEN * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            let (low, high) = range_of(index_of(value));
            assert!(low <= value && value <= high, "{value} in {low}..={high}");
            assert!(
                (high - low) as f64 <= value as f64 / 1024.0,
                "{value}: {low}..={high}"
            );
        }
        assert_eq!(range_of(index_of(2047)), (2047, 2047));
        assert_eq!(range_of(index_of(2049)), (2048, 2049));
        assert_eq!(range_of(index_of(4097)), (4096, 4099));
    }

    #[test]
    fn quantiles_follow_nearest_rank() {
        let mut histogram = LatencyHistogram::new();
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
        let histogram = LatencyHistogram::new();
        assert_eq!(histogram.quantile(0.99), 0);
        assert_eq!(histogram.mean(), 0.0);
        assert_eq!(histogram.heap_bytes(), 0);
    }

    #[test]
    fn buckets_count_values_at_or_below_a_bound() {
        let mut histogram = LatencyHistogram::new();
        for value in [1_000, 4_999, 5_000, 5_001, 9_000, 20_000] {
            histogram.record(value);
        }
        assert_eq!(histogram.count_at_or_below(5_000), 4);
        assert_eq!(histogram.count_at_or_below(10_000), 5);
        assert_eq!(histogram.count_at_or_below(u64::MAX), 6);
    }

    #[test]
    fn memory_grows_with_the_spread_not_the_count() {
        let mut histogram = LatencyHistogram::new();
        for n in 0..1_000_000u64 {
            histogram.record(10_000 + n % 100);
        }
        assert_eq!(histogram.count(), 1_000_000);
        assert!(histogram.heap_bytes() < 4096, "{}", histogram.heap_bytes());
    }

    proptest! {
        #[test]
        fn quantiles_are_within_a_thousandth_of_the_exact_nearest_rank(
            mut values in proptest::collection::vec(0u64..50_000_000, 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut histogram = LatencyHistogram::new();
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
        fn merging_equals_recording_into_one(
            left in proptest::collection::vec(0u64..10_000_000, 0..200),
            right in proptest::collection::vec(0u64..10_000_000, 0..200),
        ) {
            let mut one = LatencyHistogram::new();
            let (mut a, mut b) = (LatencyHistogram::new(), LatencyHistogram::new());
            for &value in &left {
                one.record(value);
                a.record(value);
            }
            for &value in &right {
                one.record(value);
                b.record(value);
            }
            a.merge(&b);
            prop_assert_eq!(a.count(), one.count());
            prop_assert_eq!(a.min(), one.min());
            prop_assert_eq!(a.max(), one.max());
            for q in [0.5, 0.9, 0.99, 0.999] {
                prop_assert_eq!(a.quantile(q), one.quantile(q));
            }
        }
    }
}

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

    /// The index of the counter that holds the largest value: the last there is (56 319 for a
    /// [`LatencyHistogram`]). Counters are at most this many plus one.
    pub(crate) const MAX_INDEX: u32 = Self::index_of(u64::MAX);

    /// The index of the counter that holds `value`.
    const fn index_of(value: u64) -> u32 {
        if value < Self::SUB_BUCKETS {
            return value as u32;
        }
        let shift = 63 - value.leading_zeros() as u64 - (BITS - 1) as u64;
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
        match &mut self.counters {
            Counters::Sparse(pairs) => match pairs.binary_search_by_key(&index, |pair| pair.0) {
                Ok(at) => pairs[at].1 = pairs[at].1.saturating_add(n),
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
                let counters = pages[page].get_or_insert_with(|| vec![0; PAGE_LEN].into());
                counters[slot] = counters[slot].saturating_add(n);
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
        assert_eq!(WindowHistogram::MAX_INDEX, 7_423);
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
        // 1 000 distinct counters: a real histogram past SPARSE_MAX, not a corrupt one.
        let mut histogram = H::new();
        for value in 0..1000 {
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

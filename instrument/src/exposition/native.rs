//! Prometheus native histograms: sparse exponential buckets that Prometheus merges across
//! instances without the classic buckets' interpolation error.
//!
//! A bucket `i` of schema `s` holds `(2^((i-1)/2^s), 2^(i/2^s)]`. At the [`SCHEMA`] of 6 a
//! bucket is 1.09 % wide, so a quantile interpolated inside one is within about half of that.
//! Observations at or below the zero threshold are the zero bucket. Bounded as Prometheus
//! clients do: past [`MAX_BUCKETS`] populated buckets, the schema is lowered (each bucket
//! merged with its neighbour) until the histogram fits.
//!
//! ```
//! use std::collections::BTreeMap;
//! use vantage_instrument::exposition::native::{self, NativeHistogram};
//!
//! // 1 ms twice and 2 ms once: one doubling apart, 64 buckets at schema 6.
//! let mut buckets = BTreeMap::new();
//! for seconds in [0.001, 0.001, 0.002] {
//!     *buckets.entry(native::index(seconds)).or_default() += 1;
//! }
//! let native = NativeHistogram::from_buckets(buckets, 0, 0.004, 0.0);
//! assert_eq!((native.schema, native.count), (6, 3));
//! assert_eq!(native.spans, [(-637, 1), (63, 1)]);
//! assert_eq!(native.deltas, [2, -1]);
//! ```

use std::collections::BTreeMap;

/// The resolution: buckets 2^(1/64) wide.
pub const SCHEMA: i32 = 6;
/// The most populated buckets of one histogram.
pub const MAX_BUCKETS: usize = 1000;

/// One native histogram, as the protobuf exposition carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeHistogram {
    /// The resolution ([`SCHEMA`], or lower for a histogram that needed fewer buckets).
    pub schema: i32,
    /// Observations, the zero bucket's included.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The largest value counted in the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Runs of consecutive populated buckets: `(offset, length)`, the first offset the first
    /// bucket's index, the others the gap since the previous run.
    pub spans: Vec<(i32, u32)>,
    /// Each populated bucket's count as the difference from the previous bucket's.
    pub deltas: Vec<i64>,
}

/// The bucket of schema [`SCHEMA`] holding a positive `value`: `ceil(log2(value) * 2^6)`.
#[must_use]
pub fn index(value: f64) -> i32 {
    (value.log2() * f64::from(1 << SCHEMA)).ceil() as i32
}

impl NativeHistogram {
    /// The histogram of `buckets` (index of schema [`SCHEMA`] to count), with `zero_count`
    /// observations at or below `zero_threshold`, lowered in resolution until at most
    /// [`MAX_BUCKETS`] are populated. Empty buckets are left out.
    #[must_use]
    pub fn from_buckets(
        buckets: BTreeMap<i32, u64>,
        zero_count: u64,
        sum: f64,
        zero_threshold: f64,
    ) -> Self {
        Self::from_sorted(
            buckets.into_iter().collect(),
            zero_count,
            sum,
            zero_threshold,
        )
    }

    /// [`from_buckets`](Self::from_buckets) from `(index, count)` pairs in increasing index
    /// order (a repeated index is added up).
    #[must_use]
    pub fn from_sorted(
        buckets: Vec<(i32, u64)>,
        zero_count: u64,
        sum: f64,
        zero_threshold: f64,
    ) -> Self {
        let mut buckets = merged(buckets, |index| index);
        let count = zero_count + buckets.iter().map(|(_, count)| count).sum::<u64>();
        let mut schema = SCHEMA;
        while buckets.len() > MAX_BUCKETS && schema > -4 {
            // Each bucket within the one of half the resolution that holds it.
            buckets = merged(buckets, |index| index.div_euclid(2) + index.rem_euclid(2));
            schema -= 1;
        }
        let (spans, deltas) = spans_and_deltas(&buckets);
        Self {
            schema,
            count,
            sum,
            zero_threshold,
            zero_count,
            spans,
            deltas,
        }
    }

    /// The populated buckets back from spans and deltas: `(index, count)`.
    #[must_use]
    pub fn buckets(&self) -> Vec<(i32, u64)> {
        let mut out = Vec::with_capacity(self.deltas.len());
        let (mut index, mut count) = (0_i32, 0_i64);
        let mut deltas = self.deltas.iter();
        for (n, &(offset, length)) in self.spans.iter().enumerate() {
            index = if n == 0 { offset } else { index + offset + 1 };
            for i in 0..length {
                if i > 0 {
                    index += 1;
                }
                count += deltas.next().copied().unwrap_or(0);
                out.push((index, u64::try_from(count).unwrap_or(0)));
            }
        }
        out
    }
}

/// `buckets` (in increasing index order) re-indexed by a non-decreasing `index`, counts of one
/// index added up, empty ones left out.
fn merged(buckets: Vec<(i32, u64)>, index: impl Fn(i32) -> i32) -> Vec<(i32, u64)> {
    let mut out: Vec<(i32, u64)> = Vec::with_capacity(buckets.len());
    for (at, count) in buckets {
        let at = index(at);
        match out.last_mut() {
            Some((last, total)) if *last == at => *total += count,
            _ if count == 0 => {}
            _ => out.push((at, count)),
        }
    }
    out
}

/// The sparse form of `buckets`: spans of consecutive indices and count deltas.
fn spans_and_deltas(buckets: &[(i32, u64)]) -> (Vec<(i32, u32)>, Vec<i64>) {
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let (mut previous_index, mut previous_count) = (None::<i32>, 0_i64);
    for &(index, count) in buckets {
        match previous_index {
            Some(previous) if index == previous + 1 => {
                if let Some(span) = spans.last_mut() {
                    span.1 += 1;
                }
            }
            Some(previous) => spans.push((index - previous - 1, 1)),
            None => spans.push((index, 1)),
        }
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        deltas.push(count.saturating_sub(previous_count));
        previous_count = count;
        previous_index = Some(index);
    }
    (spans, deltas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two_are_the_upper_bounds_of_their_buckets() {
        assert_eq!(index(1.0), 0);
        assert_eq!(index(0.25), -128);
        assert_eq!(index(0.251), -127);
        assert_eq!(index(0.5), -64);
        assert_eq!(index(2.0), 64);
        assert_eq!(index(2.0_f64.powf(1.0 / 64.0) * 1.000_001), 2);
    }

    #[test]
    fn spans_and_deltas_read_back_to_the_buckets() {
        let buckets = BTreeMap::from([(-128, 5), (-127, 1), (-64, 3), (0, 0)]);
        let native = NativeHistogram::from_buckets(buckets, 2, 3.0, 0.0);
        assert_eq!((native.count, native.zero_count), (11, 2));
        assert_eq!(native.spans, [(-128, 2), (62, 1)]);
        assert_eq!(native.buckets(), [(-128, 5), (-127, 1), (-64, 3)]);
    }

    #[test]
    fn too_many_buckets_lower_the_resolution_until_they_fit() {
        let buckets: BTreeMap<i32, u64> = (0..1536).map(|i| (i - 1280, 1)).collect();
        let native = NativeHistogram::from_buckets(buckets, 0, 0.0, 0.0);
        let populated: u32 = native.spans.iter().map(|(_, length)| length).sum();
        assert_eq!((native.schema, populated), (5, 769));
        let total: u64 = native.buckets().iter().map(|(_, count)| count).sum();
        assert_eq!(total, 1536);
    }

    #[test]
    fn an_empty_histogram_has_no_bucket() {
        let native = NativeHistogram::from_buckets(BTreeMap::new(), 0, 0.0, 0.0);
        assert_eq!(
            (native.count, native.spans.len(), native.deltas.len()),
            (0, 0, 0)
        );
    }
}

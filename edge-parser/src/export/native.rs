//! Prometheus native histograms from the edge's latency histograms: sparse exponential buckets
//! that Prometheus merges across sidecars without the classic buckets' interpolation error.
//!
//! A native bucket `i` of schema `s` holds `(2^((i-1)/2^s), 2^(i/2^s)]` seconds. At the
//! [`SCHEMA`] of 6 a bucket is 1.09 % wide, so a quantile interpolated inside one is within
//! about half of that. Each of the edge histogram's counters (0.05 % wide) goes to the native
//! bucket of its lower end, the same end the classic `le` buckets count it by; requests of 0
//! µs (formats that log whole milliseconds: "under 1 ms") are the zero bucket. Bounded as
//! Prometheus clients do: past [`MAX_BUCKETS`] populated buckets, the schema is lowered (each
//! bucket merged with its neighbour) until the histogram fits.
//!
//! ```
//! use vantage_edge::export::native::NativeHistogram;
//! use vantage_edge::histogram::LatencyHistogram;
//!
//! let mut latency = LatencyHistogram::new();
//! for micros in [1_000, 1_000, 2_000] {
//!     latency.record(micros);
//! }
//! let native = NativeHistogram::of(&latency);
//! assert_eq!((native.schema, native.count, native.zero_count), (6, 3, 0));
//! // 1 ms and 2 ms: one doubling apart, 64 buckets at schema 6.
//! assert_eq!(native.spans, [(-637, 1), (63, 1)]);
//! assert_eq!(native.deltas, [2, -1]);
//! ```

use std::collections::BTreeMap;

use crate::histogram::LatencyHistogram;

/// The resolution: buckets 2^(1/64) wide.
pub const SCHEMA: i32 = 6;
/// The most populated buckets of one histogram.
pub const MAX_BUCKETS: usize = 1000;
/// What the zero bucket holds: requests logged as taking no time at all.
pub const ZERO_THRESHOLD: f64 = 0.0;

/// One native histogram, as the protobuf exposition carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeHistogram {
    /// The resolution (6, or lower for a histogram that needed fewer buckets).
    pub schema: i32,
    /// Observations.
    pub count: u64,
    /// Their sum, seconds.
    pub sum: f64,
    /// Observations of 0.
    pub zero_count: u64,
    /// Runs of consecutive populated buckets: `(offset, length)`, the first offset the first
    /// bucket's index, the others the gap since the previous run.
    pub spans: Vec<(i32, u32)>,
    /// Each populated bucket's count as the difference from the previous bucket's.
    pub deltas: Vec<i64>,
}

impl NativeHistogram {
    /// The native histogram of `latency` (µs).
    #[must_use]
    pub fn of(latency: &LatencyHistogram) -> Self {
        let mut zero_count = 0;
        let mut buckets: BTreeMap<i32, u64> = BTreeMap::new();
        let scale = f64::from(1 << SCHEMA);
        for (low, count) in latency.lower_ends() {
            if low == 0 {
                zero_count += count;
                continue;
            }
            let seconds = low as f64 / 1e6;
            // (b^(i-1), b^i] with b = 2^(2^-s): i = ceil(log2(x) * 2^s).
            let index = (seconds.log2() * scale).ceil() as i32;
            *buckets.entry(index).or_default() += count;
        }
        let mut schema = SCHEMA;
        while buckets.len() > MAX_BUCKETS && schema > -4 {
            // Each bucket within the one of half the resolution that holds it.
            let mut coarser: BTreeMap<i32, u64> = BTreeMap::new();
            for (index, count) in buckets {
                *coarser
                    .entry(index.div_euclid(2) + index.rem_euclid(2))
                    .or_default() += count;
            }
            buckets = coarser;
            schema -= 1;
        }
        let (spans, deltas) = spans_and_deltas(&buckets);
        Self {
            schema,
            count: latency.count(),
            sum: latency.sum() as f64 / 1e6,
            zero_count,
            spans,
            deltas,
        }
    }
}

/// The sparse form of `buckets`: spans of consecutive indices and count deltas.
fn spans_and_deltas(buckets: &BTreeMap<i32, u64>) -> (Vec<(i32, u32)>, Vec<i64>) {
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let (mut previous_index, mut previous_count) = (None::<i32>, 0_i64);
    for (&index, &count) in buckets {
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

    /// The counts back from spans and deltas: `(index, count)`.
    fn buckets(native: &NativeHistogram) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        let (mut index, mut count) = (0, 0);
        let mut deltas = native.deltas.iter();
        for (n, (offset, length)) in native.spans.iter().enumerate() {
            index = if n == 0 { *offset } else { index + offset + 1 };
            for i in 0..*length {
                if i > 0 {
                    index += 1;
                }
                count += deltas.next().expect("a delta per bucket");
                out.push((index, count));
            }
        }
        out
    }

    #[test]
    fn every_observation_is_in_the_bucket_of_its_value() {
        let mut latency = LatencyHistogram::new();
        latency.record_n(0, 2);
        latency.record_n(250_000, 5); // 0.25 s = 2^-2: the upper bound of bucket -128
        latency.record_n(251_000, 1); // just above: bucket -127
        latency.record_n(500_000, 3); // 2^-1: bucket -64
        let native = NativeHistogram::of(&latency);
        assert_eq!(native.zero_count, 2);
        assert_eq!(native.count, 11);
        assert_eq!(native.sum, 3_001_000.0 / 1e6);
        assert_eq!(buckets(&native), [(-128, 5), (-127, 1), (-64, 3)]);
        assert_eq!(native.spans, [(-128, 2), (62, 1)]);
    }

    #[test]
    fn too_many_buckets_lower_the_resolution_until_they_fit() {
        let mut latency = LatencyHistogram::new();
        // From 1 µs to 16 s: 24 doublings, 1 536 buckets at schema 6.
        let mut micros = 1_u64;
        while micros < 16_000_000 {
            latency.record(micros);
            micros = micros + micros / 100 + 1;
        }
        let native = NativeHistogram::of(&latency);
        let populated: u32 = native.spans.iter().map(|(_, length)| length).sum();
        assert!(populated as usize <= MAX_BUCKETS, "{populated}");
        assert_eq!(native.schema, 5);
        let total: i64 = buckets(&native).iter().map(|(_, count)| count).sum();
        assert_eq!(total as u64 + native.zero_count, latency.count());
    }

    #[test]
    fn an_empty_histogram_has_no_bucket() {
        let native = NativeHistogram::of(&LatencyHistogram::new());
        assert_eq!(
            (native.count, native.spans.len(), native.deltas.len()),
            (0, 0, 0)
        );
    }
}

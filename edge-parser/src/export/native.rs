//! Prometheus native histograms ([`NativeHistogram`]) from the edge's latency histograms.
//!
//! Each of the edge histogram's counters (0.05 % wide) goes to the native bucket of its lower
//! end, the same end the classic `le` buckets count it by; requests of 0 µs (formats that log
//! whole milliseconds: "under 1 ms") are the zero bucket.
//!
//! ```
//! use vantage_edge::export::native::native_of;
//! use vantage_edge::histogram::LatencyHistogram;
//!
//! let mut latency = LatencyHistogram::new();
//! for micros in [1_000, 1_000, 2_000] {
//!     latency.record(micros);
//! }
//! let native = native_of(&latency);
//! assert_eq!((native.schema, native.count, native.zero_count), (6, 3, 0));
//! // 1 ms and 2 ms: one doubling apart, 64 buckets at schema 6.
//! assert_eq!(native.spans, [(-637, 1), (63, 1)]);
//! assert_eq!(native.deltas, [2, -1]);
//! ```

pub use vantage_instrument::exposition::native::{MAX_BUCKETS, NativeHistogram, SCHEMA};

use crate::histogram::LatencyHistogram;

/// What the zero bucket holds: requests logged as taking no time at all.
pub const ZERO_THRESHOLD: f64 = 0.0;

/// The native histogram of `latency` (µs).
#[must_use]
pub fn native_of(latency: &LatencyHistogram) -> NativeHistogram {
    let mut zero_count = 0;
    // In increasing order, as the lower ends come.
    let mut buckets: Vec<(i32, u64)> = Vec::new();
    for (low, count) in latency.lower_ends() {
        if low == 0 {
            zero_count += count;
        } else {
            let index = vantage_instrument::exposition::native::index(low as f64 / 1e6);
            buckets.push((index, count));
        }
    }
    NativeHistogram::from_sorted(
        buckets,
        zero_count,
        latency.sum() as f64 / 1e6,
        ZERO_THRESHOLD,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_observation_is_in_the_bucket_of_its_value() {
        let mut latency = LatencyHistogram::new();
        latency.record_n(0, 2);
        latency.record_n(250_000, 5); // 0.25 s = 2^-2: the upper bound of bucket -128
        latency.record_n(251_000, 1); // just above: bucket -127
        latency.record_n(500_000, 3); // 2^-1: bucket -64
        let native = native_of(&latency);
        assert_eq!(native.zero_count, 2);
        assert_eq!(native.count, 11);
        assert_eq!(native.sum, 3_001_000.0 / 1e6);
        assert_eq!(native.buckets(), [(-128, 5), (-127, 1), (-64, 3)]);
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
        let native = native_of(&latency);
        let populated: u32 = native.spans.iter().map(|(_, length)| length).sum();
        assert!(populated as usize <= MAX_BUCKETS, "{populated}");
        assert_eq!(native.schema, 5);
        let total: u64 = native.buckets().iter().map(|(_, count)| count).sum();
        assert_eq!(total + native.zero_count, latency.count());
    }
}

//! A gauge in atomics: whole-number changes (the in-flight count's ±1) are one `fetch_add` on
//! an integer of the thread's [shard](crate::shard), any other change a compare-and-swap on a
//! float; the value is their sum. (metrics-exporter-prometheus's gauges are a compare-and-swap and a generation
//! count per change: two contended read-modify-writes per request, twice, for the in-flight
//! gauge.)

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::shard::{self, CachePadded};

/// Whole numbers below this are added as integers (exact in an `f64`).
const EXACT: f64 = 9_007_199_254_740_992.0;

#[derive(Debug)]
pub(crate) struct GaugeCell {
    integers: Box<[CachePadded<AtomicI64>]>,
    float: AtomicU64,
}

impl Default for GaugeCell {
    fn default() -> Self {
        Self {
            integers: (0..shard::count())
                .map(|_| CachePadded::new(AtomicI64::new(0)))
                .collect(),
            float: AtomicU64::new(0),
        }
    }
}

impl GaugeCell {
    #[inline]
    fn add(&self, value: f64) {
        // ±1 (an in-flight count) first, by two comparisons; any other whole number through a
        // round trip to an integer (not `fract`, a libm call).
        let whole = if value == 1.0 {
            1
        } else if value == -1.0 {
            -1
        } else {
            let whole = value as i64;
            if whole as f64 != value || value.abs() >= EXACT {
                super::histogram::add_f64(&self.float, value);
                return;
            }
            whole
        };
        self.integers[shard::current()].fetch_add(whole, Ordering::Relaxed);
    }

    /// The current value.
    pub(crate) fn value(&self) -> f64 {
        // Wrapping, as each shard's own additions do.
        let integer = self
            .integers
            .iter()
            .map(|shard| shard.load(Ordering::Relaxed))
            .fold(0, i64::wrapping_add);
        integer as f64 + f64::from_bits(self.float.load(Ordering::Relaxed))
    }
}

impl metrics::GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.add(value);
    }

    fn decrement(&self, value: f64) {
        self.add(-value);
    }

    /// Sets the value: a change made at the same moment on another thread may be lost, as
    /// with any gauge that is both set and changed.
    fn set(&self, value: f64) {
        for shard in &self.integers {
            shard.store(0, Ordering::Relaxed);
        }
        self.float.store(value.to_bits(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use metrics::GaugeFn;

    use super::*;

    #[test]
    fn whole_and_fractional_changes_add_up_and_set_replaces_them() {
        let gauge = GaugeCell::default();
        gauge.increment(1.0);
        gauge.increment(2.5);
        gauge.decrement(1.0);
        assert_eq!(gauge.value(), 2.5);
        gauge.set(-4.0);
        gauge.increment(1.0);
        assert_eq!(gauge.value(), -3.0);
        gauge.increment(f64::INFINITY);
        assert_eq!(gauge.value(), f64::INFINITY);
        // Past an integer's range, and whole numbers an f64 no longer tells apart: as floats.
        let gauge = GaugeCell::default();
        gauge.increment(1e300);
        gauge.decrement(1e300);
        gauge.increment(-0.0);
        gauge.increment(2f64.powi(60));
        gauge.decrement(2f64.powi(60));
        assert_eq!(gauge.value(), 0.0);
        gauge.decrement(f64::NAN);
        assert!(gauge.value().is_nan());
    }

    #[test]
    fn more_threads_than_shards_count_every_change() {
        let gauge = GaugeCell::default();
        let threads = crate::shard::on_more_threads_than_shards(|| {
            for _ in 0..100_000 {
                gauge.increment(1.0);
                gauge.increment(1.0);
                gauge.decrement(1.0);
            }
        });
        assert_eq!(gauge.value(), threads as f64 * 100_000.0);
    }

    #[test]
    fn two_threads_count_every_change() {
        let gauge = GaugeCell::default();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        gauge.increment(1.0);
                        gauge.decrement(1.0);
                        gauge.increment(1.0);
                    }
                });
            }
        });
        assert_eq!(gauge.value(), 20_000.0);
    }
}

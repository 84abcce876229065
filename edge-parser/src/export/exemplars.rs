//! Exemplars of the edge's request duration histogram: per group and classic bucket, the
//! latest request whose log line carries a trace id (Traefik JSON `TraceId`, a logged
//! `traceparent`). They go out with `/metrics` in OpenMetrics and protobuf, where a dashboard
//! jumps from "this bucket" to "this trace".
//!
//! Held in memory only (an exemplar is a pointer into recent traces, not a count): after a
//! restart a bucket has none until its next traced request. Bounded by the groups the
//! aggregate holds (its cap folds the rest into one overflow group) times the buckets.

use std::collections::HashMap;

use vantage_instrument::exposition::Exemplar;
use vantage_instrument::names::DEFAULT_DURATION_BUCKETS;
use vantage_instrument::trace_context::TraceId;

use crate::aggregate::GroupKey;

/// The latest traced request per group and classic duration bucket.
#[derive(Debug)]
pub struct Exemplars {
    groups: HashMap<GroupKey, Box<[Option<Exemplar>]>, foldhash::fast::RandomState>,
    /// The bucket bounds in µs, as the `le` samples count (made once, not per line).
    bounds_micros: Box<[u64]>,
}

impl Default for Exemplars {
    fn default() -> Self {
        Self {
            groups: HashMap::default(),
            bounds_micros: DEFAULT_DURATION_BUCKETS
                .iter()
                .map(|bound| (bound * 1e6).round() as u64)
                .collect(),
        }
    }
}

impl Exemplars {
    /// Notes a request of the group whose encoded key is `key`: `micros` long, logged at
    /// `timestamp` (seconds since the epoch).
    pub fn record(&mut self, key: &[u8], micros: u64, trace_id: TraceId, timestamp: f64) {
        // The bucket the `le` samples count it in: the first bound at or above it.
        let bucket = self.bounds_micros.partition_point(|&bound| bound < micros);
        let exemplar = Exemplar {
            trace_id,
            value: micros as f64 / 1e6,
            timestamp,
        };
        let slots = match self.groups.get_mut(key) {
            Some(slots) => slots,
            None => self
                .groups
                .entry(GroupKey::from_encoded(key))
                .or_insert_with(|| vec![None; DEFAULT_DURATION_BUCKETS.len() + 1].into()),
        };
        if let Some(slot) = slots.get_mut(bucket) {
            *slot = Some(exemplar);
        }
    }

    /// The exemplars of a group by the `le` of their bucket (`+Inf` last).
    #[must_use]
    pub fn of(&self, key: &GroupKey) -> Vec<(f64, Exemplar)> {
        let Some(slots) = self.groups.get(key) else {
            return Vec::new();
        };
        let bounds = DEFAULT_DURATION_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY));
        bounds
            .zip(slots.iter())
            .filter_map(|(le, slot)| slot.map(|exemplar| (le, exemplar)))
            .collect()
    }

    /// Groups with at least one exemplar.
    #[must_use]
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no request had a trace id yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(id: u128) -> TraceId {
        TraceId::from_u128(id).expect("not zero")
    }

    #[test]
    fn each_bucket_keeps_its_latest_request_and_bounds_count_inclusively() {
        let key = GroupKey::new(["a"]);
        let mut exemplars = Exemplars::default();
        exemplars.record(
            std::borrow::Borrow::<[u8]>::borrow(&key),
            5_000,
            trace(1),
            10.0,
        ); // le 0.005, inclusive
        exemplars.record(
            std::borrow::Borrow::<[u8]>::borrow(&key),
            5_001,
            trace(2),
            11.0,
        ); // le 0.01
        exemplars.record(
            std::borrow::Borrow::<[u8]>::borrow(&key),
            4_000,
            trace(3),
            12.0,
        ); // le 0.005, replaces 1
        exemplars.record(
            std::borrow::Borrow::<[u8]>::borrow(&key),
            60_000_000,
            trace(4),
            13.0,
        ); // +Inf
        let got: Vec<(f64, u128, f64)> = exemplars
            .of(&key)
            .iter()
            .map(|(le, e)| (*le, e.trace_id.to_u128(), e.value))
            .collect();
        assert_eq!(
            got,
            [
                (0.005, 3, 0.004),
                (0.01, 2, 0.005001),
                (f64::INFINITY, 4, 60.0)
            ]
        );
        assert!(exemplars.of(&GroupKey::new(["b"])).is_empty());
        assert_eq!(exemplars.len(), 1);
    }
}

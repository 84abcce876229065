//! Where a route's time goes: the proxy, in front of the handler, the handler.
//!
//! Both sides are read as cumulative counts at the same bucket bounds (the OpenTelemetry
//! duration buckets the service side exports; the edge's histograms are evaluated at them), so
//! their percentiles are interpolated alike, as Prometheus' `histogram_quantile` does. Per
//! percentile: `proxy` = the edge's total − its upstream time, `in_front_of_handler` = upstream
//! − the service's duration, `handler` = the service's duration. A share two clocks make
//! negative is clamped at 0 and counted in [`LatencySplit::clamped`]. Without upstream time in
//! the log (Traefik `common`, nginx `combined`) there is no split: `None`, never zeros.

use serde::Serialize;
use vantage_instrument::names::DEFAULT_DURATION_BUCKETS;

/// The percentiles split.
pub const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Cumulative counts at [`DEFAULT_DURATION_BUCKETS`], then the total (`+Inf`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Buckets(pub Vec<u64>);

impl Buckets {
    /// The bucket bounds in microseconds (the edge's histograms count microseconds).
    pub fn bounds_micros() -> impl Iterator<Item = u64> {
        DEFAULT_DURATION_BUCKETS
            .iter()
            .map(|bound| (bound * 1e6).round() as u64)
    }

    /// From a service's cumulative `(le, count)` pairs: `None` unless every default bound is
    /// among them (a service with other buckets cannot be split against the edge).
    pub fn from_service(buckets: &[(f64, u64)]) -> Option<Self> {
        let mut counts: Vec<u64> = DEFAULT_DURATION_BUCKETS
            .iter()
            .map(|bound| {
                buckets
                    .iter()
                    .find(|(le, _)| (le - bound).abs() <= bound * 1e-9)
                    .map(|(_, count)| *count)
            })
            .collect::<Option<_>>()?;
        counts.push(buckets.last().filter(|(le, _)| le.is_infinite())?.1);
        Some(Self(counts))
    }

    /// The total.
    pub fn total(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }

    /// `self − start`, bucket by bucket (saturating).
    pub fn since(&self, start: &Self) -> Self {
        Self(
            self.0
                .iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(start.0.get(i).copied().unwrap_or(0)))
                .collect(),
        )
    }

    /// `self + more`, bucket by bucket (saturating).
    pub fn plus(&self, more: &Self) -> Self {
        let len = self.0.len().max(more.0.len());
        Self(
            (0..len)
                .map(|i| {
                    let at = |b: &Self| b.0.get(i).copied().unwrap_or(0);
                    at(self).saturating_add(at(more))
                })
                .collect(),
        )
    }

    /// The `q` quantile in seconds, interpolated in its bucket as `histogram_quantile` does
    /// (the lowest bucket from 0; past the last bound, the last bound); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0_u64;
        let mut lower = 0.0;
        for (i, &count) in self.0.iter().enumerate() {
            let Some(&upper) = DEFAULT_DURATION_BUCKETS.get(i) else {
                return Some(lower);
            };
            if count as f64 >= rank {
                let in_bucket = count.saturating_sub(below);
                if in_bucket == 0 {
                    return Some(upper);
                }
                return Some(lower + (upper - lower) * ((rank - below as f64) / in_bucket as f64));
            }
            below = count;
            lower = upper;
        }
        Some(lower)
    }
}

/// One percentile, split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitAt {
    /// The percentile (0.5, 0.9, 0.99).
    pub quantile: f64,
    /// The edge's total duration at it, seconds.
    pub edge_seconds: f64,
    /// The upstream time the log gives, seconds.
    pub upstream_seconds: f64,
    /// The service's own duration, seconds.
    pub service_seconds: f64,
    /// In the proxy itself.
    pub proxy_seconds: f64,
    /// Between the proxy and the handler: the network and any queue.
    pub in_front_of_handler_seconds: f64,
    /// In the handler.
    pub handler_seconds: f64,
}

/// A route's latency split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySplit {
    /// One entry per [`QUANTILES`].
    pub at: Vec<SplitAt>,
    /// Shares that came out negative and were clamped at 0.
    pub clamped: u64,
}

impl LatencySplit {
    /// The split from the three sides' buckets; `None` when any is empty (no upstream time in
    /// the log, no request on one side).
    pub fn of(edge: &Buckets, upstream: &Buckets, service: &Buckets) -> Option<Self> {
        let mut clamped = 0;
        let mut share = |value: f64| {
            if value < 0.0 {
                clamped += 1;
                0.0
            } else {
                value
            }
        };
        let at = QUANTILES
            .iter()
            .map(|&q| {
                let (edge, upstream, service) = (
                    edge.quantile(q)?,
                    upstream.quantile(q)?,
                    service.quantile(q)?,
                );
                Some(SplitAt {
                    quantile: q,
                    edge_seconds: edge,
                    upstream_seconds: upstream,
                    service_seconds: service,
                    proxy_seconds: share(edge - upstream),
                    in_front_of_handler_seconds: share(upstream - service),
                    handler_seconds: service,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { at, clamped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buckets with `n` requests all in the bucket ending at `bound` (a default bound).
    fn all_in(bound: f64, n: u64) -> Buckets {
        let mut counts: Vec<u64> = DEFAULT_DURATION_BUCKETS
            .iter()
            .map(|b| if *b >= bound { n } else { 0 })
            .collect();
        counts.push(n);
        Buckets(counts)
    }

    #[test]
    fn quantiles_interpolate_as_histogram_quantile() {
        // 0.025 < d ≤ 0.05: the bucket from 0.025 to 0.05.
        let buckets = all_in(0.05, 10);
        assert_eq!(buckets.quantile(0.5), Some(0.025 + (0.05 - 0.025) * 0.5));
        assert_eq!(buckets.quantile(1.0), Some(0.05));
        assert_eq!(Buckets::default().quantile(0.5), None);
        // Past the last bound: the last bound.
        let mut over = all_in(10.0, 0);
        *over.0.last_mut().unwrap() = 4;
        assert_eq!(over.quantile(0.99), Some(10.0));
    }

    #[test]
    fn the_split_adds_up_and_negative_shares_are_clamped_and_counted() {
        let split =
            LatencySplit::of(&all_in(0.5, 10), &all_in(0.25, 10), &all_in(0.1, 10)).unwrap();
        let median = &split.at[0];
        assert_eq!(median.quantile, 0.5);
        assert_eq!(median.edge_seconds, 0.25 + (0.5 - 0.25) * 0.5);
        assert_eq!(median.upstream_seconds, 0.1 + (0.25 - 0.1) * 0.5);
        assert_eq!(median.service_seconds, 0.075 + (0.1 - 0.075) * 0.5);
        assert_eq!(
            median.proxy_seconds,
            median.edge_seconds - median.upstream_seconds
        );
        assert_eq!(
            median.in_front_of_handler_seconds,
            median.upstream_seconds - median.service_seconds
        );
        assert_eq!(split.clamped, 0);
        // The service slower than the upstream time the proxy logged (two clocks).
        let odd = LatencySplit::of(&all_in(0.5, 10), &all_in(0.1, 10), &all_in(0.25, 10)).unwrap();
        assert_eq!(odd.at[0].in_front_of_handler_seconds, 0.0);
        assert_eq!(odd.clamped, 3);
        // No upstream time: no split.
        assert_eq!(
            LatencySplit::of(&all_in(0.5, 10), &Buckets::default(), &all_in(0.1, 10)),
            None
        );
    }

    #[test]
    fn a_service_with_other_buckets_cannot_be_split() {
        let ours: Vec<(f64, u64)> = DEFAULT_DURATION_BUCKETS
            .iter()
            .map(|b| (*b, 1))
            .chain([(f64::INFINITY, 2)])
            .collect();
        assert_eq!(Buckets::from_service(&ours).map(|b| b.total()), Some(2));
        assert_eq!(Buckets::from_service(&[(0.3, 1), (f64::INFINITY, 1)]), None);
        assert_eq!(
            Buckets::from_service(&ours[..ours.len() - 1]),
            None,
            "no +Inf"
        );
    }
}

//! A few requests themselves beside the aggregates, for the page: a sampled tail of the
//! latest, and the slowest of the last five minutes (a [`SlowestWindow`]).
//!
//! Bounded, and cheap for the lines that are not kept: a request enters the tail only while
//! fewer than [`SAMPLES_PER_SECOND`] did this second (of this process's clock, so a backlog
//! read at once is sampled as thinly as live traffic), and the slowest only when it is slower
//! than the last of its minute's list; the others cost a comparison each.
//!
//! A request is kept as its group key, method, status, time, durations and trace id (where the
//! log has one: the way to the same request on the services), never its target:
//! a raw path or query may carry identifiers or tokens, and `/api/summary` is open (the group
//! key's values are bounded and already public in `/metrics`).

use std::collections::VecDeque;

use vantage_instrument::trace_context::TraceId;

use crate::aggregate::GroupKey;
use crate::format::Record;
use crate::slowest::{Slow, SlowestWindow};

/// Requests in the tail.
pub(crate) const TAIL: usize = 50;
/// Requests that may enter the tail per second.
pub(crate) const SAMPLES_PER_SECOND: u32 = 5;
/// Requests in the slowest list (and kept per minute).
pub(crate) const SLOWEST: usize = 10;
/// A method longer than this is cut (methods are a client's bytes).
const MAX_METHOD_BYTES: usize = 16;

/// One request, as kept.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Kept {
    /// When it was logged (or arrived, when its time is not trusted), unix seconds.
    pub(crate) at: i64,
    /// Its group.
    pub(crate) key: GroupKey,
    pub(crate) method: Option<Box<str>>,
    pub(crate) status: Option<i16>,
    pub(crate) duration_us: Option<u64>,
    pub(crate) upstream_us: Option<u64>,
    pub(crate) trace_id: Option<TraceId>,
}

impl Slow for Kept {
    fn at(&self) -> i64 {
        self.at
    }

    fn duration(&self) -> u64 {
        self.duration_us.unwrap_or(0)
    }
}

/// The tail and the slowest; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Requests {
    tail: VecDeque<Kept>,
    /// The second of the tail's sampling, and how many entered during it.
    sampling: (i64, u32),
    slowest: SlowestWindow<Kept>,
}

impl Default for Requests {
    fn default() -> Self {
        Self {
            tail: VecDeque::new(),
            sampling: (0, 0),
            slowest: SlowestWindow::new(SLOWEST),
        }
    }
}

impl Requests {
    /// Looks at a request of group `key` (encoded), logged at `at` and read at `now` (unix
    /// seconds).
    pub(crate) fn record(&mut self, key: &[u8], at: i64, now: i64, record: &Record<'_>) {
        let duration = record.duration_ns.map(|ns| ns / 1000);
        let sampled = if self.sampling.0 == now {
            self.sampling.1 < SAMPLES_PER_SECOND
        } else {
            self.sampling = (now, 0);
            true
        };
        let slow_enough = duration.is_some_and(|us| self.slowest.would_keep(at, us));
        if !sampled && !slow_enough {
            return;
        }
        let kept = Kept {
            at,
            key: GroupKey::from_encoded(key),
            method: record.method.as_deref().map(|method| {
                let cut = &method[..method.len().min(MAX_METHOD_BYTES)];
                String::from_utf8_lossy(cut).into()
            }),
            status: record.status.map(|status| status.code()),
            duration_us: duration,
            upstream_us: record.upstream_duration_ns.map(|ns| ns / 1000),
            trace_id: record.trace_id,
        };
        if slow_enough {
            self.slowest.offer(kept.clone());
        }
        if sampled {
            self.sampling.1 += 1;
            if self.tail.len() == TAIL {
                self.tail.pop_front();
            }
            self.tail.push_back(kept);
        }
    }

    /// The tail, the latest last.
    pub(crate) fn tail(&self) -> impl Iterator<Item = &Kept> {
        self.tail.iter()
    }

    /// The slowest requests of the five minutes up to `now`, the slowest first.
    pub(crate) fn slowest(&self, now: i64) -> impl Iterator<Item = &Kept> {
        self.slowest.slowest(now, SLOWEST)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::format::Status;

    const T0: i64 = 1_741_521_600;

    fn request(ms: u64, status: i16) -> Record<'static> {
        Record {
            method: Some(Cow::Borrowed(b"GET")),
            target: Some(Cow::Borrowed(b"/users/alice?token=secret")),
            status: Some(Status::new(status)),
            duration_ns: Some(ms * 1_000_000),
            ..Record::default()
        }
    }

    fn durations(kept: &[&Kept]) -> Vec<u64> {
        kept.iter()
            .filter_map(|k| k.duration_us)
            .map(|us| us / 1000)
            .collect()
    }

    #[test]
    fn the_tail_takes_a_few_requests_a_second_and_keeps_the_latest() {
        let mut requests = Requests::default();
        for second in 0..20 {
            for ms in 0..100 {
                requests.record(b"k", T0 + second, T0 + second, &request(ms, 200));
            }
        }
        let tail: Vec<&Kept> = requests.tail().collect();
        assert_eq!(tail.len(), TAIL);
        // The first SAMPLES_PER_SECOND of each of the last ten seconds.
        assert_eq!(tail[0].at, T0 + 10);
        assert_eq!(durations(&tail[..5]), [0, 1, 2, 3, 4]);
        assert_eq!(tail[TAIL - 1].at, T0 + 19);
        assert_eq!(tail[0].method.as_deref(), Some("GET"));
        assert_eq!(tail[0].status, Some(200));
    }

    #[test]
    fn the_slowest_are_those_of_the_last_five_minutes() {
        let mut requests = Requests::default();
        // An old minute with the slowest of all, then five minutes of ordinary traffic.
        requests.record(b"k", T0, T0, &request(9_000, 504));
        for minute in 1..=5 {
            for ms in 1..=30 {
                let at = T0 + minute * 60 + ms as i64;
                requests.record(b"k", at, at, &request(ms * minute as u64, 200));
            }
        }
        let now = T0 + 5 * 60 + 59;
        let slowest: Vec<&Kept> = requests.slowest(now).collect();
        assert_eq!(
            durations(&slowest),
            [150, 145, 140, 135, 130, 125, 120, 120, 116, 115]
        );
    }

    #[test]
    fn a_request_is_kept_with_its_trace_id() {
        let mut requests = Requests::default();
        let trace_id = TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        let traced = Record {
            trace_id,
            ..request(700, 200)
        };
        requests.record(b"k", T0, T0, &traced);
        requests.record(b"k", T0, T0, &request(5, 200));
        let slowest: Vec<Option<TraceId>> = requests.slowest(T0).map(|k| k.trace_id).collect();
        assert_eq!(slowest, [trace_id, None]);
    }

    #[test]
    fn a_request_is_kept_without_its_target() {
        let mut requests = Requests::default();
        requests.record(b"k", T0, T0, &request(5, 200));
        let kept = format!("{:?}", requests.tail().next());
        assert!(
            !kept.contains("alice") && !kept.contains("secret"),
            "{kept}"
        );
    }
}

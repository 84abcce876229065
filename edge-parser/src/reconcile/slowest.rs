//! The edge's slowest recent requests per route, with their trace ids: the proxy's half of the
//! trace join (the services' half is their `/debug/slow`, see [`trace_join`](super::trace_join)).
//!
//! Only requests whose log line carries a trace id are offered. Each route keeps the
//! [`TOP`] slowest of each of [`BUCKETS`] time slices of [`BUCKET_SECONDS`] (by the log's own
//! time), so that the slowest of the last [`WINDOW_SECONDS`] are always at hand and an old
//! outlier ages out with its slice. A request slower than nothing in its slice's full list is
//! turned away after one comparison; nothing is allocated past a route's first request.
//! Bounded: at most [`MAX_ROUTES`] routes (the group cap bounds them before that).
//!
//! ```
//! use vantage_edge::reconcile::slowest::{EdgeRequest, EdgeSlowest};
//! use vantage_instrument::trace_context::TraceId;
//!
//! let mut slowest = EdgeSlowest::default();
//! for (n, ms) in [(1_u128, 40_u64), (2, 1_960), (3, 12)] {
//!     let request = EdgeRequest {
//!         trace_id: TraceId::from_u128(n).unwrap(),
//!         at: 1_000,
//!         status: Some(200),
//!         duration_ns: ms * 1_000_000,
//!         upstream_ns: Some(ms * 1_000_000 - 500_000),
//!     };
//!     slowest.offer("/users/{id}", request);
//! }
//! let routes = slowest.snapshot(1_030);
//! assert_eq!(routes[0].0, "/users/{id}");
//! let ms: Vec<u64> = routes[0].1.iter().map(|r| r.duration_ns / 1_000_000).collect();
//! assert_eq!(ms, [1_960, 40, 12]);
//! ```

use std::collections::HashMap;

use vantage_instrument::trace_context::TraceId;

/// Requests kept per route and time slice (and shown per route).
pub const TOP: usize = 5;
/// The length of a time slice, seconds.
pub const BUCKET_SECONDS: i64 = 60;
/// Time slices per route.
pub const BUCKETS: usize = 5;
/// How far back the slowest requests reach, seconds (the services' `SlowRequests` default).
pub const WINDOW_SECONDS: i64 = BUCKET_SECONDS * BUCKETS as i64;
/// The most routes kept.
pub const MAX_ROUTES: usize = super::service::MAX_ROUTES;

/// One request as the edge logged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeRequest {
    /// Its trace id.
    pub trace_id: TraceId,
    /// When it happened (the log's time, seconds since the epoch).
    pub at: i64,
    /// The status sent to the client.
    pub status: Option<i16>,
    /// Its duration at the proxy, ns.
    pub duration_ns: u64,
    /// The upstream time the log gives, ns.
    pub upstream_ns: Option<u64>,
}

/// One time slice's slowest, slowest first.
#[derive(Debug, Clone, Default)]
struct Slice {
    /// Which slice (`at / BUCKET_SECONDS`); the requests of another are stale.
    index: i64,
    slowest: Vec<EdgeRequest>,
}

impl Slice {
    fn offer(&mut self, request: EdgeRequest) {
        if self.slowest.len() == TOP
            && self
                .slowest
                .last()
                .is_some_and(|fastest| fastest.duration_ns >= request.duration_ns)
        {
            return;
        }
        let place = self
            .slowest
            .partition_point(|kept| kept.duration_ns >= request.duration_ns);
        if self.slowest.len() == TOP {
            self.slowest.pop();
        }
        self.slowest.insert(place, request);
    }
}

/// The slowest requests of every route; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct EdgeSlowest {
    routes: HashMap<Box<str>, [Slice; BUCKETS], foldhash::fast::RandomState>,
    /// The newest log time seen: a request older than the window is not kept.
    newest: i64,
    /// Routes turned away at [`MAX_ROUTES`].
    pub routes_refused: u64,
}

impl EdgeSlowest {
    /// Offers one request of `route`.
    pub fn offer(&mut self, route: &str, request: EdgeRequest) {
        self.newest = self.newest.max(request.at);
        if request.at <= self.newest - WINDOW_SECONDS {
            return;
        }
        if !self.routes.contains_key(route) {
            if self.routes.len() >= MAX_ROUTES {
                self.routes_refused += 1;
                return;
            }
            self.routes.insert(route.into(), Default::default());
        }
        let Some(slices) = self.routes.get_mut(route) else {
            return;
        };
        let index = request.at.div_euclid(BUCKET_SECONDS);
        let slice = &mut slices[index.rem_euclid(BUCKETS as i64) as usize];
        if slice.index != index {
            if slice.index > index {
                // A slice's place now holds a newer one: this request is past the window.
                return;
            }
            slice.index = index;
            slice.slowest.clear();
        }
        slice.offer(request);
    }

    /// Per route (sorted), its [`TOP`] slowest requests of the window ending at `now` (seconds
    /// since the epoch), slowest first; routes with none are left out.
    pub fn snapshot(&self, now: i64) -> Vec<(String, Vec<EdgeRequest>)> {
        let oldest = now
            .saturating_sub(WINDOW_SECONDS)
            .div_euclid(BUCKET_SECONDS);
        let mut routes: Vec<(String, Vec<EdgeRequest>)> = self
            .routes
            .iter()
            .filter_map(|(route, slices)| {
                let mut requests: Vec<EdgeRequest> = slices
                    .iter()
                    .filter(|slice| slice.index > oldest)
                    .flat_map(|slice| slice.slowest.iter().copied())
                    .collect();
                requests.sort_by_key(|request| std::cmp::Reverse(request.duration_ns));
                requests.truncate(TOP);
                (!requests.is_empty()).then(|| (route.to_string(), requests))
            })
            .collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: u128, at: i64, ms: u64) -> EdgeRequest {
        EdgeRequest {
            trace_id: TraceId::from_u128(id).unwrap(),
            at,
            status: Some(200),
            duration_ns: ms * 1_000_000,
            upstream_ns: None,
        }
    }

    fn ids(slowest: &EdgeSlowest, now: i64) -> Vec<(String, Vec<u128>)> {
        slowest
            .snapshot(now)
            .into_iter()
            .map(|(route, requests)| {
                let ids = requests.iter().map(|r| r.trace_id.to_u128()).collect();
                (route, ids)
            })
            .collect()
    }

    #[test]
    fn each_route_keeps_its_slowest_of_the_window() {
        let mut slowest = EdgeSlowest::default();
        // Slice 1 000 s: ten requests, 10 ms to 100 ms; the five slowest are kept.
        for n in 1..=10 {
            slowest.offer("/a", request(n, 60_000, n as u64 * 10));
        }
        slowest.offer("/b", request(100, 60_010, 5));
        assert_eq!(
            ids(&slowest, 60_030),
            [
                ("/a".to_owned(), vec![10, 9, 8, 7, 6]),
                ("/b".to_owned(), vec![100])
            ]
        );
        // Two minutes on, a fast request in a new slice is shown after the older slow ones.
        slowest.offer("/a", request(11, 60_120, 1));
        assert_eq!(ids(&slowest, 60_130)[0].1, [10, 9, 8, 7, 6]);
        // Past the window, the old slice is gone: only the new request is left.
        assert_eq!(ids(&slowest, 60_000 + WINDOW_SECONDS + 60)[0].1, [11]);
    }

    #[test]
    fn a_slice_place_reused_forgets_its_old_requests() {
        let mut slowest = EdgeSlowest::default();
        slowest.offer("/a", request(1, 0, 500));
        // The same place, five slices later.
        slowest.offer("/a", request(2, WINDOW_SECONDS, 1));
        assert_eq!(ids(&slowest, WINDOW_SECONDS)[0].1, [2]);
        // A late line for the old slice is past the window: not kept, nothing else lost.
        slowest.offer("/a", request(3, 10, 900));
        assert_eq!(ids(&slowest, WINDOW_SECONDS)[0].1, [2]);
    }

    #[test]
    fn equal_durations_keep_the_first_and_routes_are_bounded() {
        let mut slowest = EdgeSlowest::default();
        for n in 1..=7 {
            slowest.offer("/a", request(n, 0, 10));
        }
        assert_eq!(ids(&slowest, 0)[0].1, [1, 2, 3, 4, 5]);
        for n in 0..MAX_ROUTES as u128 + 3 {
            slowest.offer(&format!("/r{n}"), request(n + 1, 0, 1));
        }
        // "/a" and MAX_ROUTES - 1 others.
        assert_eq!(slowest.snapshot(0).len(), MAX_ROUTES);
        assert_eq!(slowest.routes_refused, 4);
    }
}

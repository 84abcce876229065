//! The edge's slowest recent requests per route, with their trace ids: the proxy's half of the
//! trace join (the services' half is their `/debug/slow`, see [`trace_join`](super::trace_join)).
//!
//! Only requests whose log line carries a trace id are offered. Each route keeps the [`TOP`]
//! slowest of each minute of the last five ([`SlowestWindow`]); at most [`MAX_ROUTES`] routes
//! (the group cap bounds them before that).
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

pub use crate::slowest::WINDOW_SECONDS;
use crate::slowest::{Slow, SlowestWindow};

/// Requests kept per route and minute (and shown per route).
pub const TOP: usize = 5;
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

impl Slow for EdgeRequest {
    fn at(&self) -> i64 {
        self.at
    }

    fn duration(&self) -> u64 {
        self.duration_ns
    }
}

/// The slowest requests of every route; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct EdgeSlowest {
    routes: HashMap<Box<str>, SlowestWindow<EdgeRequest>, foldhash::fast::RandomState>,
    /// Routes turned away at [`MAX_ROUTES`].
    pub routes_refused: u64,
}

impl EdgeSlowest {
    /// Offers one request of `route`.
    pub fn offer(&mut self, route: &str, request: EdgeRequest) {
        if let Some(window) = self.routes.get_mut(route) {
            window.offer(request);
        } else if self.routes.len() >= MAX_ROUTES {
            self.routes_refused += 1;
        } else {
            let mut window = SlowestWindow::new(TOP);
            window.offer(request);
            self.routes.insert(route.into(), window);
        }
    }

    /// Per route (sorted), its [`TOP`] slowest requests of the window ending at `now` (seconds
    /// since the epoch), slowest first; routes with none are left out.
    pub fn snapshot(&self, now: i64) -> Vec<(String, Vec<EdgeRequest>)> {
        let mut routes: Vec<(String, Vec<EdgeRequest>)> = self
            .routes
            .iter()
            .filter_map(|(route, window)| {
                let requests: Vec<EdgeRequest> = window.slowest(now, TOP).copied().collect();
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
        // Minute 1 000: ten requests, 10 ms to 100 ms; the five slowest are kept.
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
        // Two minutes on, a fast request is shown after the older slow ones.
        slowest.offer("/a", request(11, 60_120, 1));
        assert_eq!(ids(&slowest, 60_130)[0].1, [10, 9, 8, 7, 6]);
        // Past the window, the old minute is gone: only the new request is left.
        assert_eq!(ids(&slowest, 60_000 + WINDOW_SECONDS + 60)[0].1, [11]);
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

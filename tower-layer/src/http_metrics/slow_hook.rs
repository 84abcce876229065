//! Offers each finished request to the [`SlowRequests`] store of
//! [`HttpMetricsLayer::slow_requests`](super::HttpMetricsLayer::slow_requests).

use std::fmt;
use std::sync::Arc;

use foldhash::fast::RandomState;
use vantage_instrument::trace_context::TraceId;

use super::labels::{Registry, RouteId};
use crate::slow::{RouteSlowest, SlowRequests};

/// The store, and its entry for each route id of the layer, looked up once per route.
pub(crate) struct SlowHook {
    store: SlowRequests,
    routes: papaya::HashMap<RouteId, Arc<RouteSlowest>, RandomState>,
}

impl SlowHook {
    pub(crate) fn new(store: SlowRequests) -> Self {
        Self {
            store,
            routes: papaya::HashMap::builder()
                .hasher(RandomState::default())
                .build(),
        }
    }

    /// Offers one finished request of `route`.
    pub(crate) fn offer(
        &self,
        registry: &Registry,
        route: RouteId,
        seconds: f64,
        trace_id: TraceId,
    ) {
        let routes = self.routes.pin();
        let entry = match routes.get(&route) {
            Some(entry) => entry,
            None => {
                routes.get_or_insert_with(route, || self.store.route(&registry.route_name(route)))
            }
        };
        self.store.offer_to(entry, seconds, trace_id);
    }
}

impl fmt::Debug for SlowHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlowHook")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

//! One request across both sides: the edge's slowest requests ([`slowest`](super::slowest))
//! joined by trace id with the services' own slowest (their `/debug/slow`, as
//! `vantage_tower::slow::SlowRequests` serves it), so that a slow request reads as its parts:
//! the proxy, the wait in front of the handler, the handler.
//!
//! A service keeps its slowest requests by its handler's duration, the edge by the proxy's: a
//! request that waited 2 s in front of a 10 ms handler is among the edge's slowest and
//! usually not among the service's. It is then not found, but not unknown either: a service's
//! full list (its `top` requests) holds every offered request of its window at least as slow
//! as the fastest of them, so a request missing from every full list took at most the largest
//! of their fastest (`service_seconds_at_most`), and waited at least the upstream time minus
//! that in front of the handler.
//!
//! ```
//! use std::sync::Arc;
//! use vantage_edge::reconcile::slowest::EdgeRequest;
//! use vantage_edge::reconcile::trace_join::{ServiceSlow, join};
//! use vantage_instrument::trace_context::TraceId;
//!
//! let service = ServiceSlow::read(br#"{"window_seconds":300.0,"top":5,"routes":[
//!     {"route":"/users/{id}","slowest":[
//!       {"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","seconds":0.04,"age_seconds":3.0}]}]}"#).unwrap();
//! let edge = vec![("/users/{id}".to_owned(), vec![EdgeRequest {
//!     trace_id: TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736).unwrap(),
//!     at: 1_000,
//!     status: Some(200),
//!     duration_ns: 2_000_000_000,
//!     upstream_ns: Some(1_990_000_000),
//! }])];
//! let report = join(&edge, &[("10.0.0.7:8080".to_owned(), Ok(Arc::new(service)))]);
//! let request = &report.routes[0].slowest[0];
//! assert_eq!(request.service_seconds, Some(0.04));
//! assert_eq!(request.in_front_of_handler_seconds, Some(1.95));
//! assert_eq!(request.service_instance.as_deref(), Some("10.0.0.7:8080"));
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vantage_instrument::trace_context::TraceId;

use super::slowest::{EdgeRequest, TOP, WINDOW_SECONDS};
use crate::bounded;

/// The most routes read from a service's document.
pub const MAX_ROUTES: usize = super::service::MAX_ROUTES;
/// The most requests read per route.
pub const MAX_PER_ROUTE: usize = 100;
/// The largest document read.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// A service's `/debug/slow` document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServiceSlow {
    /// How many requests a full list of a route holds.
    pub top: usize,
    /// Per route, its slowest requests, slowest first.
    #[serde(deserialize_with = "routes")]
    pub routes: Vec<ServiceRoute>,
}

/// One route of a service's document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServiceRoute {
    /// The route template (`http_route`).
    pub route: String,
    /// Its slowest requests.
    #[serde(deserialize_with = "requests")]
    pub slowest: Vec<ServiceRequest>,
}

/// One of a service's slowest requests.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ServiceRequest {
    /// Its trace id.
    #[serde(deserialize_with = "trace_id")]
    pub trace_id: TraceId,
    /// Its duration at the service, seconds.
    pub seconds: f64,
}

fn routes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ServiceRoute>, D::Error> {
    bounded::seq(deserializer, MAX_ROUTES, "routes")
}

fn requests<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ServiceRequest>, D::Error> {
    bounded::seq(deserializer, MAX_PER_ROUTE, "requests of a route")
}

fn trace_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TraceId, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    crate::format::trace_id_of_hex(text.as_bytes())
        .ok_or_else(|| serde::de::Error::custom(format!("not a trace id: {text:?}")))
}

impl ServiceSlow {
    /// Reads a `/debug/slow` document.
    ///
    /// # Errors
    ///
    /// Not the document: not JSON, a field missing or of another type, a trace id that is not
    /// 32 hex digits, a negative or non-finite duration, more than the limits.
    pub fn read(document: &[u8]) -> Result<Self, String> {
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("larger than {} KiB", MAX_DOCUMENT_BYTES >> 10));
        }
        let slow: Self = serde_json::from_slice(document).map_err(|error| error.to_string())?;
        let bad = slow
            .routes
            .iter()
            .flat_map(|route| &route.slowest)
            .find(|request| !(request.seconds.is_finite() && request.seconds >= 0.0));
        if let Some(request) = bad {
            return Err(format!("a duration of {} s", request.seconds));
        }
        Ok(slow)
    }
}

/// One slow request seen from both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinedRequest {
    /// Its trace id (32 hex digits): search the logs of every side for it.
    #[serde(serialize_with = "hex")]
    pub trace_id: TraceId,
    /// When the edge logged it (seconds since the epoch).
    pub at: i64,
    /// The status the client got.
    pub status: Option<i16>,
    /// Its duration at the proxy.
    pub edge_seconds: f64,
    /// The upstream time the proxy logged, if its log has it.
    pub upstream_seconds: Option<f64>,
    /// Its duration at the service, if a service listed it.
    pub service_seconds: Option<f64>,
    /// Which instance listed it.
    pub service_instance: Option<String>,
    /// When no service listed it while every list it could be in was full: it was at most this
    /// slow at the service (see the [module docs](self)).
    pub service_seconds_at_most: Option<f64>,
    /// The proxy's own share: edge − upstream (never below zero).
    pub proxy_seconds: Option<f64>,
    /// Network and queueing in front of the handler: upstream − service (never below zero).
    pub in_front_of_handler_seconds: Option<f64>,
    /// Without the service's duration: at least upstream − `service_seconds_at_most`.
    pub in_front_of_handler_at_least_seconds: Option<f64>,
}

fn hex<S: Serializer>(trace_id: &TraceId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(trace_id)
}

/// One route's slowest requests, joined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinedRoute {
    /// The route template.
    pub route: String,
    /// Slowest first.
    pub slowest: Vec<JoinedRequest>,
}

/// How one service instance's document was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowSource {
    /// The instance (address).
    pub instance: String,
    /// `null` when read, else why not (a service without `/debug/slow` answers 404).
    pub error: Option<String>,
}

/// `/api/slow`: the edge's slowest requests per route, joined with the services'.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowReport {
    /// How far back the edge's slowest reach, seconds.
    pub window_seconds: i64,
    /// Requests per route.
    pub top: usize,
    /// Per route, sorted.
    pub routes: Vec<JoinedRoute>,
    /// Every service instance's document.
    pub services: Vec<SlowSource>,
}

/// Joins the edge's slowest (per route) with every instance's document (or why it is missing).
pub fn join(
    edge: &[(String, Vec<EdgeRequest>)],
    services: &[(String, Result<Arc<ServiceSlow>, String>)],
) -> SlowReport {
    let documents: Vec<(&str, &ServiceSlow)> = services
        .iter()
        .filter_map(|(instance, slow)| {
            let slow = slow.as_deref().ok()?;
            Some((instance.as_str(), slow))
        })
        .collect();
    let mut found: HashMap<TraceId, (&str, f64)> = HashMap::new();
    for (instance, slow) in &documents {
        for request in slow.routes.iter().flat_map(|route| &route.slowest) {
            found.insert(request.trace_id, (instance, request.seconds));
        }
    }
    let routes = edge
        .iter()
        .map(|(route, requests)| {
            // One bound per route: every request of it could be in the same lists.
            let at_most = at_most(&documents, route);
            JoinedRoute {
                route: route.clone(),
                slowest: requests
                    .iter()
                    .map(|request| joined(request, found.get(&request.trace_id).copied(), at_most))
                    .collect(),
            }
        })
        .collect();
    SlowReport {
        window_seconds: WINDOW_SECONDS,
        top: TOP,
        routes,
        services: services
            .iter()
            .map(|(instance, slow)| SlowSource {
                instance: instance.clone(),
                error: slow.as_ref().err().cloned(),
            })
            .collect(),
    }
}

/// The most a request of `route` that no instance listed can have taken at the service: the
/// largest fastest-listed of the instances whose list is full; `None` if no list is.
fn at_most(documents: &[(&str, &ServiceSlow)], route: &str) -> Option<f64> {
    documents
        .iter()
        .filter_map(|(_, slow)| {
            let listed = slow.routes.iter().find(|r| r.route == route)?;
            let full = slow.top > 0 && listed.slowest.len() >= slow.top;
            full.then(|| {
                listed
                    .slowest
                    .iter()
                    .map(|r| r.seconds)
                    .fold(f64::INFINITY, f64::min)
            })
        })
        .reduce(f64::max)
}

fn joined(
    request: &EdgeRequest,
    found: Option<(&str, f64)>,
    at_most: Option<f64>,
) -> JoinedRequest {
    let seconds = |ns: u64| ns as f64 / 1e9;
    let edge = seconds(request.duration_ns);
    let upstream = request.upstream_ns.map(seconds);
    let service = found.map(|(_, seconds)| seconds);
    let at_most = at_most.filter(|_| found.is_none());
    let share = |later: f64, earlier: f64| round_ns(later - earlier).max(0.0);
    JoinedRequest {
        trace_id: request.trace_id,
        at: request.at,
        status: request.status,
        edge_seconds: edge,
        upstream_seconds: upstream,
        service_seconds: service,
        service_instance: found.map(|(instance, _)| instance.to_owned()),
        service_seconds_at_most: at_most,
        proxy_seconds: upstream.map(|upstream| share(edge, upstream)),
        in_front_of_handler_seconds: upstream
            .zip(service)
            .map(|(upstream, service)| share(upstream, service)),
        in_front_of_handler_at_least_seconds: upstream
            .zip(at_most)
            .map(|(upstream, at_most)| share(upstream, at_most)),
    }
}

/// `seconds` to the nanosecond: a difference of two decimal figures without binary noise.
fn round_ns(seconds: f64) -> f64 {
    (seconds * 1e9).round() / 1e9
}

#[cfg(test)]
mod tests;

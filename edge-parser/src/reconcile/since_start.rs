//! Reconciliation since a common start: per route, the requests the edge logged and the
//! requests the services ended since the first round in which every service instance was
//! scraped, and the difference by reason.
//!
//! Both sides are counters, so each is read as a difference from its value at the start: the
//! edge's groups summed by route, each service instance's `_count` samples (a counter that goes
//! down is a restarted service: what it had counted is carried over). Requests that reached the
//! proxy but no service (`lost`) are put down, in this order, to the proxy answering itself
//! (what its log says it answered without trying an upstream, and the edge's 502/503/504
//! beyond the services' own), to clients that hung up before the
//! upstream answered (the edge's 499 beyond the services' own), and the rest `unexplained`. On a
//! route no service instance has ever exported (a health check, the metrics page, a path the
//! layer excludes) that rest is `unmeasured` instead: an upstream answered those requests, so
//! they reached an app, just not a measured handler. The services counting more than the edge
//! (retries) is `extra_at_service`. A row is `partial` (and
//! says why) when a service instance is failing now or joined after the start (or when the
//! caller says the edge is far behind its log): never a zero that only means "no data".
//!
//! ```
//! use std::collections::BTreeMap;
//! use vantage_edge::reconcile::service::ServiceScrape;
//! use vantage_edge::reconcile::since_start::{RouteCounts, Reconciler};
//!
//! let scrape = |n: u64| ServiceScrape::read(&format!(
//!     "http_server_request_duration_seconds_count{{http_route=\"/users/{{id}}\",http_response_status_code=\"200\"}} {n}\n"
//! ));
//! let edge = |requests: u64, proxy_errors: u64| BTreeMap::from([(
//!     "/users/{id}".to_owned(),
//!     RouteCounts { requests, proxy_errors, ..RouteCounts::default() },
//! )]);
//! let mut reconciler = Reconciler::default();
//! reconciler.observe_round([("svc-a", Some(&scrape(100)))], 1_000.0, || edge(40, 0));
//! reconciler.observe_round([("svc-a", Some(&scrape(110)))], 1_005.0, || edge(53, 3));
//! let report = reconciler.report(&edge(53, 3), None);
//! let row = &report.routes[0];
//! assert_eq!((row.edge_requests, row.service_requests, row.lost), (13, 10, 3));
//! assert_eq!(row.reasons.proxy_answered, 3);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::service::ServiceScrape;
use super::split::{Buckets, LatencySplit};
use super::windows::{History, WindowReconciliation};
use crate::aggregate::{Aggregate, Dimension};
use vantage_instrument::names::UNMATCHED_ROUTE;

/// What one side counted for one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteCounts {
    /// Requests: logged by the proxy, or ended by a service.
    pub requests: u64,
    /// Of them, answered 502, 503 or 504.
    pub proxy_errors: u64,
    /// Of them, answered 499 (the client hung up first).
    pub cancelled: u64,
    /// Of them, answered by the proxy without trying an upstream, as its log says (other
    /// than 499 and 502–504; see [`UpstreamCounts`](crate::aggregate::UpstreamCounts)).
    pub unforwarded: u64,
    /// Upstream attempts beyond each request's first, as the proxy's log says.
    pub retries: u64,
    /// Their durations, at the default bucket bounds.
    #[serde(skip)]
    pub latency: Buckets,
    /// Their upstream times (the edge, where the log has them).
    #[serde(skip)]
    pub upstream: Buckets,
}

impl RouteCounts {
    /// The edge's counts per route (the `route` dimension) of `aggregate`; empty when it is
    /// not grouped by route.
    pub fn by_route(aggregate: &Aggregate) -> BTreeMap<String, Self> {
        let mut routes: BTreeMap<String, Self> = BTreeMap::new();
        for group in aggregate.groups() {
            let Some(route) = group.value(Dimension::Route) else {
                continue;
            };
            let stats = group.stats();
            let counts = routes.entry(route.to_owned()).or_default();
            counts.requests = counts.requests.saturating_add(stats.requests);
            counts.unforwarded = counts
                .unforwarded
                .saturating_add(stats.upstream.unforwarded);
            counts.retries = counts.retries.saturating_add(stats.upstream.retries);
            let at_bounds = |histogram: &crate::histogram::LatencyHistogram| {
                let mut counts: Vec<u64> = histogram
                    .counts_at_or_below(Buckets::bounds_micros())
                    .collect();
                counts.push(histogram.count());
                Buckets(counts)
            };
            counts.latency = counts.latency.plus(&at_bounds(&stats.latency));
            counts.upstream = counts.upstream.plus(&at_bounds(&stats.upstream_latency));
            for code in &stats.codes {
                match code.code {
                    502..=504 => {
                        counts.proxy_errors = counts.proxy_errors.saturating_add(code.count)
                    }
                    499 => counts.cancelled = counts.cancelled.saturating_add(code.count),
                    _ => {}
                }
            }
        }
        routes
    }

    fn since(&self, start: &Self) -> Self {
        Self {
            requests: self.requests.saturating_sub(start.requests),
            proxy_errors: self.proxy_errors.saturating_sub(start.proxy_errors),
            cancelled: self.cancelled.saturating_sub(start.cancelled),
            unforwarded: self.unforwarded.saturating_sub(start.unforwarded),
            retries: self.retries.saturating_sub(start.retries),
            latency: self.latency.since(&start.latency),
            upstream: self.upstream.since(&start.upstream),
        }
    }

    fn plus(&self, more: &Self) -> Self {
        Self {
            requests: self.requests.saturating_add(more.requests),
            proxy_errors: self.proxy_errors.saturating_add(more.proxy_errors),
            cancelled: self.cancelled.saturating_add(more.cancelled),
            unforwarded: self.unforwarded.saturating_add(more.unforwarded),
            retries: self.retries.saturating_add(more.retries),
            latency: self.latency.plus(&more.latency),
            upstream: self.upstream.plus(&more.upstream),
        }
    }
}

/// The same counts from a service's scrape.
fn service_counts(scrape: &ServiceScrape) -> BTreeMap<String, RouteCounts> {
    scrape
        .routes()
        .map(|(route, side)| {
            let status = |codes: &[u16]| {
                codes
                    .iter()
                    .filter_map(|code| side.statuses.get(code))
                    .fold(0_u64, |sum, n| sum.saturating_add(*n))
            };
            let counts = RouteCounts {
                requests: side.requests,
                proxy_errors: status(&[502, 503, 504]),
                cancelled: status(&[499]),
                latency: Buckets::from_service(&side.buckets).unwrap_or_default(),
                ..RouteCounts::default()
            };
            (route.to_owned(), counts)
        })
        .collect()
}

/// One service instance's counters: at the start, last seen, and carried over restarts.
#[derive(Debug, Clone, Default)]
struct InstanceCounts {
    start: BTreeMap<String, RouteCounts>,
    last: BTreeMap<String, RouteCounts>,
    carried: BTreeMap<String, RouteCounts>,
    /// Whether its last scrape succeeded.
    up: bool,
    /// Whether it was first scraped after the start.
    joined_late: bool,
}

impl InstanceCounts {
    fn observe(&mut self, mut counts: BTreeMap<String, RouteCounts>) {
        for (route, last) in &self.last {
            let now = counts.get(route).cloned().unwrap_or_default();
            if now.requests < last.requests {
                // Restarted (a route it has not served since is gone from its page): what it
                // counted since the start is carried, its new counters start from zero.
                let start = self.start.get(route).cloned().unwrap_or_default();
                let carried = self.carried.entry(route.clone()).or_default();
                *carried = carried.plus(&last.since(&start));
                self.start.insert(route.clone(), RouteCounts::default());
                counts.entry(route.clone()).or_insert(now);
            }
        }
        self.last = counts;
    }

    /// Whether it has exported `route` since it was first scraped.
    fn knows(&self, route: &str) -> bool {
        [&self.start, &self.last, &self.carried]
            .iter()
            .any(|counts| counts.contains_key(route))
    }

    fn since_start(&self, route: &str) -> RouteCounts {
        let last = self.last.get(route).cloned().unwrap_or_default();
        let start = self.start.get(route).cloned().unwrap_or_default();
        let carried = self.carried.get(route).cloned().unwrap_or_default();
        last.since(&start).plus(&carried)
    }
}

/// Reconciles the edge with the services since their common start; see the
/// [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct Reconciler {
    /// The edge's counts at the start; `None` until every instance was scraped once.
    edge_start: Option<BTreeMap<String, RouteCounts>>,
    instances: BTreeMap<String, InstanceCounts>,
    /// The since-start counts at past rounds, for the windows.
    history: History,
}

/// Why the lost requests were lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LostReasons {
    /// Answered by the proxy itself: without trying an upstream, as its log says (a
    /// middleware's 401/403/429, a redirect), or 502/503/504 beyond the services' own.
    pub proxy_answered: u64,
    /// The client hung up before the upstream answered (499 beyond the services' own).
    pub client_cancelled: u64,
    /// Neither.
    pub unexplained: u64,
}

/// One route's reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteReconciliation {
    /// The route template.
    pub route: String,
    /// Requests the edge logged since the start.
    pub edge_requests: u64,
    /// Requests the services ended since the start.
    pub service_requests: u64,
    /// Requests that reached the proxy but no service.
    pub lost: u64,
    /// Why.
    pub reasons: LostReasons,
    /// Requests an upstream answered on a route no service instance measures (it has never
    /// exported the route): they reached an app, and are not in `lost`.
    pub unmeasured: u64,
    /// Requests the services counted beyond the edge's (retries behind the proxy).
    pub extra_at_service: u64,
    /// Upstream attempts beyond each request's first that the proxy logged (retries). Those
    /// that reached a service are counted there too, so `lost` (a net difference) may hide up
    /// to this many more, and `extra_at_service` is explained up to this many.
    pub retries: u64,
    /// Where the time goes, at p50, p90 and p99; `None` without upstream time in the log or
    /// without requests on a side.
    pub latency: Option<LatencySplit>,
    /// Whether the figures miss something (see [`Reconciliation::partial_reasons`]).
    pub partial: bool,
}

/// The reconciliation of every route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    /// Whether the start was taken (every service instance scraped once).
    pub started: bool,
    /// One row per route either side saw since the start.
    pub routes: Vec<RouteReconciliation>,
    /// The same over the last minute, 5 minutes and hour, as far as the history reaches.
    pub windows: Vec<WindowReconciliation>,
    /// Why the figures are partial, if they are (each row is then `partial`).
    pub partial_reasons: Vec<String>,
}

impl Reconciler {
    /// Takes in one scrape round, at `at` (seconds since the epoch): every instance by name
    /// with its scrape (`None` when it failed this time). The first round in which every
    /// instance succeeded is the start. `edge` is asked for the edge's counts by route from the
    /// start on: at the start, and at every round after it (for the windows).
    pub fn observe_round<'a, I>(
        &mut self,
        round: I,
        at: f64,
        edge: impl FnOnce() -> BTreeMap<String, RouteCounts>,
    ) where
        I: IntoIterator<Item = (&'a str, Option<&'a ServiceScrape>)>,
    {
        let round: Vec<_> = round.into_iter().collect();
        let started = self.edge_start.is_some();
        let all_up = !round.is_empty() && round.iter().all(|(_, scrape)| scrape.is_some());
        let seen: BTreeSet<&str> = round.iter().map(|(name, _)| *name).collect();
        self.instances
            .retain(|name, _| seen.contains(name.as_str()));
        for (name, scrape) in round {
            let instance =
                self.instances
                    .entry(name.to_owned())
                    .or_insert_with(|| InstanceCounts {
                        joined_late: started,
                        ..InstanceCounts::default()
                    });
            instance.up = scrape.is_some();
            if let Some(scrape) = scrape {
                let counts = service_counts(scrape);
                if instance.last.is_empty() && instance.start.is_empty() {
                    instance.start = counts.clone();
                }
                instance.observe(counts);
            }
        }
        if !started && all_up {
            self.edge_start = Some(edge());
            // The start is now for every instance.
            for instance in self.instances.values_mut() {
                instance.start = instance.last.clone();
                instance.carried.clear();
            }
            self.history.record(at, &BTreeMap::new());
        } else if let Some(edge_start) = &self.edge_start {
            let pairs = self.pairs(edge_start, &edge());
            self.history.record(at, &pairs);
        }
    }

    /// The reconciliation given the edge's counts now; `edge_behind` names how far the edge is
    /// behind its log when that is too far for the two sides to line up.
    pub fn report(
        &self,
        edge_now: &BTreeMap<String, RouteCounts>,
        edge_behind: Option<String>,
    ) -> Reconciliation {
        let Some(edge_start) = &self.edge_start else {
            return Reconciliation {
                started: false,
                routes: Vec::new(),
                windows: Vec::new(),
                partial_reasons: vec![
                    "waiting for a first successful scrape of every service instance".to_owned(),
                ],
            };
        };
        let mut partial_reasons = Vec::new();
        for (name, instance) in &self.instances {
            if !instance.up {
                partial_reasons.push(format!("{name}: its last scrape failed"));
            }
            if instance.joined_late {
                partial_reasons.push(format!("{name}: first scraped after the start"));
            }
        }
        partial_reasons.extend(edge_behind);
        let partial = !partial_reasons.is_empty();
        let routes = self
            .pairs(edge_start, edge_now)
            .iter()
            .map(|(route, (edge, service))| {
                row(route, edge, service, partial, self.measured(route))
            })
            .collect();
        Reconciliation {
            started: true,
            routes,
            windows: self
                .history
                .windows(&partial_reasons, |route| self.measured(route)),
            partial_reasons,
        }
    }

    /// Whether some service instance measures `route`: one has exported it since it was first
    /// scraped, or it is the unmatched value (a service counts requests that match none of its
    /// routes there, whether it had any yet or not).
    fn measured(&self, route: &str) -> bool {
        route == UNMATCHED_ROUTE || self.instances.values().any(|i| i.knows(route))
    }

    /// Per route, the edge's and the services' counts since the start.
    fn pairs(
        &self,
        edge_start: &BTreeMap<String, RouteCounts>,
        edge_now: &BTreeMap<String, RouteCounts>,
    ) -> BTreeMap<String, (RouteCounts, RouteCounts)> {
        let routes: BTreeSet<&String> = edge_now
            .keys()
            .chain(self.instances.values().flat_map(|i| i.last.keys()))
            .collect();
        routes
            .into_iter()
            .map(|route| {
                let edge = edge_now
                    .get(route)
                    .cloned()
                    .unwrap_or_default()
                    .since(&edge_start.get(route).cloned().unwrap_or_default());
                let service = self
                    .instances
                    .values()
                    .map(|i| i.since_start(route))
                    .fold(RouteCounts::default(), |sum, n| sum.plus(&n));
                (route.clone(), (edge, service))
            })
            .collect()
    }
}

/// One route's row from both sides' counts over the same span.
pub(crate) fn row(
    route: &str,
    edge: &RouteCounts,
    service: &RouteCounts,
    partial: bool,
    measured: bool,
) -> RouteReconciliation {
    let missing = edge.requests.saturating_sub(service.requests);
    let proxy_answered = edge
        .proxy_errors
        .saturating_sub(service.proxy_errors)
        .saturating_add(edge.unforwarded)
        .min(missing);
    let client_cancelled = edge
        .cancelled
        .saturating_sub(service.cancelled)
        .min(missing - proxy_answered);
    let rest = missing - proxy_answered - client_cancelled;
    // On a route no service measures, what an upstream answered reached an app, uncounted.
    let (unexplained, unmeasured) = if measured { (rest, 0) } else { (0, rest) };
    RouteReconciliation {
        route: route.to_owned(),
        edge_requests: edge.requests,
        service_requests: service.requests,
        lost: missing - unmeasured,
        reasons: LostReasons {
            proxy_answered,
            client_cancelled,
            unexplained,
        },
        unmeasured,
        extra_at_service: service.requests.saturating_sub(edge.requests),
        retries: edge.retries,
        latency: LatencySplit::of(&edge.latency, &edge.upstream, &service.latency),
        partial,
    }
}

impl Reconciliation {
    /// Appends it to an exposition (once started): per route the requests on each side
    /// (`edge_reconcile_requests`), the lost ones by reason (`edge_reconcile_lost_requests`),
    /// and whether it is partial (`edge_reconcile_partial`).
    pub fn render(&self, out: &mut String) {
        use crate::export::prometheus::{family, sample};
        use vantage_instrument::names::{
            EDGE_RECONCILE_LOST_REQUESTS, EDGE_RECONCILE_PARTIAL, EDGE_RECONCILE_REQUESTS,
            EDGE_RECONCILE_UNMEASURED_REQUESTS, HTTP_ROUTE,
        };
        if !self.started {
            return;
        }
        family(
            out,
            EDGE_RECONCILE_REQUESTS,
            "gauge",
            "Requests per route since the edge and the services' common start, by side.",
        );
        for row in &self.routes {
            for (side, value) in [
                ("edge", row.edge_requests),
                ("service", row.service_requests),
            ] {
                let labels = [(HTTP_ROUTE, row.route.as_str()), ("side", side)];
                sample(out, EDGE_RECONCILE_REQUESTS, &labels, value as f64);
            }
        }
        family(
            out,
            EDGE_RECONCILE_LOST_REQUESTS,
            "gauge",
            "Requests per route that reached the proxy but no service since the common start, by reason.",
        );
        for row in &self.routes {
            let reasons = [
                ("proxy_answered", row.reasons.proxy_answered),
                ("client_cancelled", row.reasons.client_cancelled),
                ("unexplained", row.reasons.unexplained),
            ];
            for (reason, value) in reasons {
                let labels = [(HTTP_ROUTE, row.route.as_str()), ("reason", reason)];
                sample(out, EDGE_RECONCILE_LOST_REQUESTS, &labels, value as f64);
            }
        }
        family(
            out,
            EDGE_RECONCILE_UNMEASURED_REQUESTS,
            "gauge",
            "Requests per route an upstream answered since the common start on a route no service measures.",
        );
        for row in &self.routes {
            let labels = [(HTTP_ROUTE, row.route.as_str())];
            sample(
                out,
                EDGE_RECONCILE_UNMEASURED_REQUESTS,
                &labels,
                row.unmeasured as f64,
            );
        }
        family(
            out,
            EDGE_RECONCILE_PARTIAL,
            "gauge",
            "1 when the reconciliation misses something (a failing or late service instance).",
        );
        sample(
            out,
            EDGE_RECONCILE_PARTIAL,
            &[],
            f64::from(u8::from(!self.partial_reasons.is_empty())),
        );
    }
}

#[cfg(test)]
mod tests;

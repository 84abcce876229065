//! What one scrape of a service says per route: the route templates it uses (the vocabulary the
//! edge adopts) and, per `http_route`, its requests and its duration histogram.
//!
//! Read from the OpenTelemetry HTTP server metric `http_server_request_duration_seconds` as any
//! exporter following the conventions names it (Vantage's [`HttpMetricsLayer`], or another
//! one): its `_count` samples summed over every other label are the route's requests, its
//! `_bucket` samples summed by `le` its cumulative histogram. `(other)` and `(overflow)` are
//! kept as routes (their requests count) but are not templates. The routes are bounded by
//! [`MAX_ROUTES`]; the ones past it are counted in [`ServiceScrape::dropped_routes`].
//!
//! ```
//! use vantage_edge::reconcile::service::ServiceScrape;
//!
//! let text = "\
//! http_server_request_duration_seconds_bucket{http_route=\"/users/{id}\",http_response_status_code=\"200\",le=\"0.1\"} 3
//! http_server_request_duration_seconds_bucket{http_route=\"/users/{id}\",http_response_status_code=\"200\",le=\"+Inf\"} 4
//! http_server_request_duration_seconds_count{http_route=\"/users/{id}\",http_response_status_code=\"200\"} 4
//! http_server_request_duration_seconds_count{http_route=\"/users/{id}\",http_response_status_code=\"500\"} 1
//! ";
//! let scrape = ServiceScrape::read(text);
//! assert_eq!(scrape.templates().collect::<Vec<_>>(), ["/users/{id}"]);
//! assert_eq!(scrape.route("/users/{id}").unwrap().requests, 5);
//! ```
//!
//! [`HttpMetricsLayer`]: https://docs.rs/vantage-tower

use std::collections::BTreeMap;

use vantage_instrument::names::{
    HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, HTTP_SERVER_REQUEST_DURATION, OVERFLOW_ROUTE,
    UNMATCHED_ROUTE,
};

use super::exposition::{ExpositionError, samples};

/// The most routes read from one scrape.
pub const MAX_ROUTES: usize = 1_000;

/// The longest route template kept; longer values are not routes a proxy log can match.
pub const MAX_ROUTE_BYTES: usize = 512;

/// One route as the service counts it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceRoute {
    /// Requests ended (every status, method and error type).
    pub requests: u64,
    /// Of them, by `http_response_status_code` (requests without a status, such as a handler's
    /// error with no response, are in `requests` only).
    pub statuses: BTreeMap<u16, u64>,
    /// Their total duration, in seconds.
    pub duration_sum: f64,
    /// The cumulative duration histogram: `(upper bound in seconds, requests at or below)`, by
    /// bound, `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
}

/// What one scrape of a service says; see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceScrape {
    routes: BTreeMap<String, ServiceRoute>,
    /// Lines that were not samples (each one named in [`errors`](Self::errors), up to 10).
    pub malformed_lines: usize,
    /// Samples of routes past [`MAX_ROUTES`], or of route values that cannot be routes.
    pub dropped_routes: usize,
    errors: Vec<ExpositionError>,
}

impl ServiceScrape {
    /// Reads a scrape's text.
    pub fn read(text: &str) -> Self {
        let count = format!("{HTTP_SERVER_REQUEST_DURATION}_count");
        let sum = format!("{HTTP_SERVER_REQUEST_DURATION}_sum");
        let bucket = format!("{HTTP_SERVER_REQUEST_DURATION}_bucket");
        let mut scrape = Self::default();
        let mut buckets: BTreeMap<String, BTreeMap<BoundKey, u64>> = BTreeMap::new();
        for sample in samples(text) {
            let sample = match sample {
                Ok(sample) => sample,
                Err(error) => {
                    scrape.malformed_lines += 1;
                    if scrape.errors.len() < 10 {
                        scrape.errors.push(error);
                    }
                    continue;
                }
            };
            let is_count = sample.name == count;
            let is_sum = sample.name == sum;
            let is_bucket = sample.name == bucket;
            if !(is_count || is_sum || is_bucket) {
                continue;
            }
            let Some(route) = sample.label(HTTP_ROUTE) else {
                continue;
            };
            let Some(entry) = scrape.entry(&route) else {
                scrape.dropped_routes += 1;
                continue;
            };
            if is_count {
                let count = whole(sample.value);
                entry.requests = entry.requests.saturating_add(count);
                let status = sample
                    .label(HTTP_RESPONSE_STATUS_CODE)
                    .and_then(|code| code.parse::<u16>().ok());
                if let Some(status) = status {
                    let total = entry.statuses.entry(status).or_default();
                    *total = total.saturating_add(count);
                }
            } else if is_sum {
                if sample.value.is_finite() && sample.value >= 0.0 {
                    entry.duration_sum += sample.value;
                }
            } else if let Some(bound) = sample.label("le").and_then(|le| parse_bound(&le)) {
                let counts = buckets.entry(route.into_owned()).or_default();
                let total = counts.entry(BoundKey(bound)).or_default();
                *total = total.saturating_add(whole(sample.value));
            }
        }
        for (route, counts) in buckets {
            if let Some(entry) = scrape.routes.get_mut(&route) {
                entry.buckets = counts.into_iter().map(|(bound, n)| (bound.0, n)).collect();
            }
        }
        scrape
    }

    /// The route templates the service uses: its `http_route` values but `(other)` and
    /// `(overflow)`, sorted.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.routes
            .keys()
            .map(String::as_str)
            .filter(|route| *route != UNMATCHED_ROUTE && *route != OVERFLOW_ROUTE)
    }

    /// Every route read, `(other)` and `(overflow)` included.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &ServiceRoute)> {
        self.routes
            .iter()
            .map(|(route, side)| (route.as_str(), side))
    }

    /// One route, if the scrape had it.
    pub fn route(&self, route: &str) -> Option<&ServiceRoute> {
        self.routes.get(route)
    }

    /// The first malformed lines, with their line numbers.
    pub fn errors(&self) -> &[ExpositionError] {
        &self.errors
    }

    /// The entry of `route`; `None` when it cannot be a route or the cap is reached.
    fn entry(&mut self, route: &str) -> Option<&mut ServiceRoute> {
        let special = route == UNMATCHED_ROUTE || route == OVERFLOW_ROUTE;
        if !special && (!route.starts_with('/') || route.len() > MAX_ROUTE_BYTES) {
            return None;
        }
        if !self.routes.contains_key(route) && self.routes.len() >= MAX_ROUTES {
            return None;
        }
        Some(self.routes.entry(route.to_owned()).or_default())
    }
}

/// A count as a whole number: negative, fractional or non-finite values (which no counter
/// holds) are taken as 0 and 2^64 saturates.
fn whole(value: f64) -> u64 {
    if value.is_finite() && value >= 0.0 {
        value as u64
    } else {
        0
    }
}

fn parse_bound(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        le => le.parse().ok().filter(|bound: &f64| !bound.is_nan()),
    }
}

/// A bucket bound ordered as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BoundKey(f64);

impl Eq for BoundKey {}

impl PartialOrd for BoundKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BoundKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "http_server_request_duration_seconds";

    fn line(suffix: &str, route: &str, extra: &str, value: &str) -> String {
        format!(
            "{D}_{suffix}{{http_request_method=\"GET\",http_route=\"{route}\"{extra}}} {value}\n"
        )
    }

    #[test]
    fn requests_and_buckets_are_summed_over_every_other_label() {
        let mut text = String::from("# TYPE x histogram\nother_metric{http_route=\"/x\"} 5\n");
        for (status, count, fast) in [("200", "10", "7"), ("404", "3", "3"), ("500", "2", "0")] {
            let code = format!(",http_response_status_code=\"{status}\"");
            text += &line("bucket", "/users/{id}", &format!("{code},le=\"0.1\""), fast);
            text += &line(
                "bucket",
                "/users/{id}",
                &format!("{code},le=\"+Inf\""),
                count,
            );
            text += &line("count", "/users/{id}", &code, count);
            text += &line("sum", "/users/{id}", &code, "0.5");
        }
        text += &line("count", "(other)", "", "4");
        let scrape = ServiceScrape::read(&text);
        assert_eq!(scrape.malformed_lines, 0);
        assert_eq!(scrape.templates().collect::<Vec<_>>(), ["/users/{id}"]);
        let users = scrape.route("/users/{id}").unwrap();
        assert_eq!(users.requests, 15);
        assert_eq!(
            users.statuses,
            BTreeMap::from([(200, 10), (404, 3), (500, 2)])
        );
        assert_eq!(users.duration_sum, 1.5);
        assert_eq!(users.buckets, [(0.1, 10), (f64::INFINITY, 15)]);
        assert_eq!(scrape.route("(other)").unwrap().requests, 4);
        assert_eq!(
            scrape.route("/x"),
            None,
            "another metric's labels are not routes"
        );
    }

    #[test]
    fn values_that_cannot_be_routes_and_routes_past_the_cap_are_dropped_and_counted() {
        let mut text = line("count", "users", "", "1");
        text += &line(
            "count",
            &format!("/{}", "a".repeat(MAX_ROUTE_BYTES)),
            "",
            "1",
        );
        for i in 0..=MAX_ROUTES {
            text += &line("count", &format!("/r{i}"), "", "1");
        }
        text += "broken{ 1\n";
        let scrape = ServiceScrape::read(&text);
        assert_eq!(scrape.routes().count(), MAX_ROUTES);
        assert_eq!(scrape.dropped_routes, 3);
        assert_eq!(scrape.malformed_lines, 1);
        assert_eq!(scrape.errors()[0].line, MAX_ROUTES + 4);
    }

    #[test]
    fn hostile_counts_saturate_or_count_nothing() {
        let mut text = line("count", "/a", "", "1e300");
        text += &line("count", "/a", ",x=\"1\"", "5");
        text += &line("count", "/b", "", "-3");
        text += &line("count", "/c", "", "NaN");
        text += &line("sum", "/c", "", "-Inf");
        let scrape = ServiceScrape::read(&text);
        assert_eq!(scrape.route("/a").unwrap().requests, u64::MAX);
        assert_eq!(scrape.route("/b").unwrap().requests, 0);
        assert_eq!(scrape.route("/c").unwrap().requests, 0);
        assert_eq!(scrape.route("/c").unwrap().duration_sum, 0.0);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_read_without_panic(text in "(http_server_request_duration_seconds_(count|sum|bucket)\\{(http_route|le)=\"[^\"]{0,8}\"\\} [-+0-9.eInfa]{0,6}\n){0,20}") {
            let scrape = ServiceScrape::read(&text);
            proptest::prop_assert!(scrape.routes().count() <= MAX_ROUTES);
        }
    }
}

//! [`SlowRequests`]: the slowest requests per route, in rotating time buckets.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use foldhash::fast::RandomState;
use quanta::{Clock, Instant};
use vantage_instrument::ConfigError;
use vantage_instrument::names::OVERFLOW_ROUTE;
use vantage_instrument::trace_context::TraceId;

use super::snapshot::{SlowRequest, SlowRoute};
use crate::http_metrics::DEFAULT_MAX_ROUTES;

/// How many of the slowest requests are kept per route, by default.
pub const DEFAULT_TOP: usize = 5;
/// How far back the slowest requests are kept, by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// How many buckets the window rotates through, by default: one a minute.
pub const DEFAULT_BUCKETS: usize = 5;

/// The trace ids of the slowest recent requests of each route: exemplars that take an operator
/// from a latency spike to the logs of the requests that made it.
///
/// Per route it keeps the [`top`](Self::top) slowest requests of each of
/// [`buckets`](Self::buckets) time buckets that together span the [`window`](Self::window); the
/// oldest bucket is reused when time moves past it, so what is reported is the slowest requests
/// of the last `window` (give or take one bucket). Routes are capped at
/// [`max_routes`](Self::max_routes); later routes share the `(overflow)` entry. Memory is
/// bounded: `(max_routes + 1) × buckets × top` entries of 32 bytes, allocated when a route is
/// first seen.
///
/// Cheap to clone: clones share the same store. Give one clone to
/// [`HttpMetricsLayer::slow_requests`](crate::HttpMetricsLayer::slow_requests) and mount
/// [`service`](Self::service) to read it. See the [module docs](super) for an example.
#[derive(Clone)]
pub struct SlowRequests {
    store: Arc<Store>,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    top: usize,
    window: Duration,
    buckets: usize,
    max_routes: usize,
}

struct Store {
    config: Config,
    bucket_nanos: u64,
    clock: Clock,
    origin: Instant,
    routes: papaya::HashMap<Box<str>, Arc<RouteSlowest>, RandomState>,
    /// Routes registered so far; its lock is also the route insertion lock.
    registered: Mutex<usize>,
    overflow: Arc<RouteSlowest>,
}

/// One request kept as one of the slowest.
#[derive(Debug, Clone, Copy)]
struct Entry {
    seconds: f64,
    trace_id: TraceId,
    /// When it was offered, in nanoseconds since the store's origin.
    at: u64,
}

/// The slowest requests of one time bucket, slowest first.
#[derive(Debug)]
struct Bucket {
    epoch: u64,
    slowest: Vec<Entry>,
}

#[cfg(test)]
thread_local! {
    /// How many offers of this thread took a route's lock.
    static OFFER_LOCKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The buckets of one route, and the gate that turns most requests away without the lock.
#[derive(Debug)]
pub(crate) struct RouteSlowest {
    /// The current bucket's epoch (low 32 bits) in the high half, and in the low half the bits
    /// of the `f32` duration a request must exceed to enter the bucket (0 until it is full).
    gate: AtomicU64,
    buckets: Mutex<Vec<Bucket>>,
}

impl RouteSlowest {
    /// Every bucket is allocated here, once per route, so that entering the top list later
    /// never allocates.
    fn new(config: &Config) -> Self {
        let buckets = (0..config.buckets)
            .map(|_| Bucket {
                epoch: u64::MAX,
                slowest: Vec::with_capacity(config.top),
            })
            .collect();
        Self {
            gate: AtomicU64::new(gate(u64::MAX, 0.0)),
            buckets: Mutex::new(buckets),
        }
    }

    fn offer(&self, config: &Config, epoch: u64, entry: Entry) {
        let gate_now = self.gate.load(Ordering::Relaxed);
        // Rounding to f32 is monotonic, so a strictly smaller rounded duration is a strictly
        // smaller duration: the common case, decided without the lock.
        if gate_now >> 32 == epoch & 0xffff_ffff
            && (entry.seconds as f32) < f32::from_bits(gate_now as u32)
        {
            return;
        }
        #[cfg(test)]
        OFFER_LOCKS.with(|locks| locks.set(locks.get() + 1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = buckets.get_mut((epoch % config.buckets as u64) as usize) else {
            return;
        };
        if bucket.epoch != epoch {
            bucket.epoch = epoch;
            bucket.slowest.clear();
        }
        let slowest = &mut bucket.slowest;
        let position = slowest
            .iter()
            .position(|kept| entry.seconds > kept.seconds)
            .unwrap_or(slowest.len());
        if position < config.top {
            if slowest.len() == config.top {
                slowest.pop();
            }
            slowest.insert(position, entry);
        }
        let threshold = match slowest.last() {
            Some(last) if slowest.len() == config.top => last.seconds as f32,
            _ => 0.0,
        };
        self.gate.store(gate(epoch, threshold), Ordering::Relaxed);
    }

    /// The slowest requests of the buckets still inside the window at `epoch`, slowest first.
    fn slowest(&self, config: &Config, epoch: u64) -> Vec<Entry> {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut entries: Vec<Entry> = buckets
            .iter()
            .filter(|bucket| bucket.epoch <= epoch && epoch - bucket.epoch < config.buckets as u64)
            .flat_map(|bucket| bucket.slowest.iter().copied())
            .collect();
        entries.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(a.at.cmp(&b.at)));
        entries.truncate(config.top);
        entries
    }
}

fn gate(epoch: u64, threshold: f32) -> u64 {
    ((epoch & 0xffff_ffff) << 32) | u64::from(threshold.to_bits())
}

impl SlowRequests {
    /// A store with the defaults: the [`DEFAULT_TOP`] slowest requests per route over
    /// [`DEFAULT_WINDOW`] in [`DEFAULT_BUCKETS`] buckets, at most
    /// [`DEFAULT_MAX_ROUTES`](crate::http_metrics::DEFAULT_MAX_ROUTES) routes.
    #[must_use]
    pub fn new() -> Self {
        let config = Config {
            top: DEFAULT_TOP,
            window: DEFAULT_WINDOW,
            buckets: DEFAULT_BUCKETS,
            max_routes: DEFAULT_MAX_ROUTES,
        };
        Self::with_clock(config, Clock::new())
    }

    fn with_clock(config: Config, clock: Clock) -> Self {
        let bucket_nanos = (config.window.as_nanos() / config.buckets as u128).max(1);
        let origin = clock.now();
        let store = Store {
            config,
            bucket_nanos: u64::try_from(bucket_nanos).unwrap_or(u64::MAX),
            clock,
            origin,
            routes: papaya::HashMap::builder()
                .hasher(RandomState::default())
                .build(),
            registered: Mutex::new(0),
            overflow: Arc::new(RouteSlowest::new(&config)),
        };
        Self {
            store: Arc::new(store),
        }
    }

    fn reconfigure(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.store.config;
        change(&mut config);
        Self::with_clock(config, self.store.clock.clone())
    }

    /// Keeps the `top` slowest requests per route (default [`DEFAULT_TOP`]). Like the other
    /// setters, it starts an empty store: configure before handing out clones.
    ///
    /// # Errors
    ///
    /// Refuses zero.
    pub fn top(self, top: usize) -> Result<Self, ConfigError> {
        if top == 0 {
            return Err(ConfigError::ZeroLimit { what: "top" });
        }
        Ok(self.reconfigure(|config| config.top = top))
    }

    /// Reports the slowest requests of this last stretch of time (default [`DEFAULT_WINDOW`]).
    ///
    /// # Errors
    ///
    /// Refuses a zero duration.
    pub fn window(self, window: Duration) -> Result<Self, ConfigError> {
        if window.is_zero() {
            return Err(ConfigError::ZeroLimit { what: "window" });
        }
        Ok(self.reconfigure(|config| config.window = window))
    }

    /// Splits the window into this many buckets (default [`DEFAULT_BUCKETS`]); more buckets
    /// make the window slide in smaller steps and cost `top` entries each per route.
    ///
    /// # Errors
    ///
    /// Refuses zero.
    pub fn buckets(self, buckets: usize) -> Result<Self, ConfigError> {
        if buckets == 0 {
            return Err(ConfigError::ZeroLimit { what: "buckets" });
        }
        Ok(self.reconfigure(|config| config.buckets = buckets))
    }

    /// Caps the number of distinct routes (default
    /// [`DEFAULT_MAX_ROUTES`](crate::http_metrics::DEFAULT_MAX_ROUTES)); later routes share
    /// the `(overflow)` entry.
    ///
    /// # Errors
    ///
    /// Refuses zero.
    pub fn max_routes(self, max_routes: usize) -> Result<Self, ConfigError> {
        if max_routes == 0 {
            return Err(ConfigError::ZeroLimit { what: "max_routes" });
        }
        Ok(self.reconfigure(|config| config.max_routes = max_routes))
    }

    /// Offers a finished request: kept if it is among the slowest of its route in the current
    /// bucket. [`HttpMetricsLayer`](crate::HttpMetricsLayer) calls this for you; call it for
    /// work it does not see.
    ///
    /// A request that is not kept costs a clock read, a map lookup and an atomic load; one that
    /// is kept takes the route's lock, and allocates only the first time its route is seen.
    /// Negative and NaN durations are ignored.
    pub fn offer(&self, route: &str, seconds: f64, trace_id: TraceId) {
        self.offer_to(&self.route(route), seconds, trace_id);
    }

    /// The entry of a route, registering it while under the cap.
    pub(crate) fn route(&self, name: &str) -> Arc<RouteSlowest> {
        let store = &*self.store;
        if let Some(route) = store.routes.pin().get(name) {
            return Arc::clone(route);
        }
        if name == OVERFLOW_ROUTE {
            return Arc::clone(&store.overflow);
        }
        self.register(name)
    }

    #[cold]
    fn register(&self, name: &str) -> Arc<RouteSlowest> {
        let store = &*self.store;
        let mut registered = store
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let routes = store.routes.pin();
        if let Some(route) = routes.get(name) {
            return Arc::clone(route);
        }
        if *registered >= store.config.max_routes {
            return Arc::clone(&store.overflow);
        }
        *registered += 1;
        let route = Arc::new(RouteSlowest::new(&store.config));
        routes.insert(name.into(), Arc::clone(&route));
        route
    }

    /// [`offer`](Self::offer) to a route entry already looked up.
    pub(crate) fn offer_to(&self, route: &RouteSlowest, seconds: f64, trace_id: TraceId) {
        if seconds.is_nan() || seconds < 0.0 {
            return;
        }
        let at = self.nanos();
        let entry = Entry {
            seconds,
            trace_id,
            at,
        };
        route.offer(&self.store.config, at / self.store.bucket_nanos, entry);
    }

    fn nanos(&self) -> u64 {
        let elapsed = self.store.clock.now().duration_since(self.store.origin);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The slowest requests of the window, per route: routes in name order (the `(overflow)`
    /// entry last), requests slowest first; routes without any are left out.
    #[must_use]
    pub fn snapshot(&self) -> Vec<SlowRoute> {
        let store = &*self.store;
        let now = self.nanos();
        let epoch = now / store.bucket_nanos;
        let report = |name: &str, route: &RouteSlowest| {
            let slowest = route.slowest(&store.config, epoch);
            (!slowest.is_empty()).then(|| SlowRoute {
                route: name.to_owned(),
                slowest: slowest
                    .iter()
                    .map(|entry| SlowRequest {
                        trace_id: entry.trace_id,
                        seconds: entry.seconds,
                        age: Duration::from_nanos(now.saturating_sub(entry.at)),
                    })
                    .collect(),
            })
        };
        let routes = store.routes.pin();
        let mut named: Vec<(&str, &Arc<RouteSlowest>)> = routes
            .iter()
            .map(|(name, route)| (&**name, route))
            .collect();
        named.sort_unstable_by_key(|(name, _)| *name);
        named
            .into_iter()
            .filter_map(|(name, route)| report(name, route))
            .chain(report(OVERFLOW_ROUTE, &store.overflow))
            .collect()
    }

    /// The [`snapshot`](Self::snapshot) as JSON:
    /// `{"window_seconds":300.0,"top":5,"routes":[{"route":"/users/{id}","slowest":
    /// [{"trace_id":"4bf9…","seconds":2.5,"age_seconds":12.0}]}]}`.
    #[must_use]
    pub fn to_json(&self) -> String {
        super::snapshot::to_json(
            self.store.config.window,
            self.store.config.top,
            &self.snapshot(),
        )
    }

    /// The number of distinct routes seen so far (the `(overflow)` entry excluded).
    #[must_use]
    pub fn route_count(&self) -> usize {
        *self
            .store
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for SlowRequests {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SlowRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlowRequests")
            .field("top", &self.store.config.top)
            .field("window", &self.store.config.window)
            .field("buckets", &self.store.config.buckets)
            .field("max_routes", &self.store.config.max_routes)
            .field("routes", &self.route_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use quanta::Mock;

    use super::*;

    /// A store on a mock clock: top 3, a 60 s window in 3 buckets of 20 s, 2 routes.
    fn store() -> (SlowRequests, Arc<Mock>) {
        let (clock, mock) = Clock::mock();
        let config = Config {
            top: 3,
            window: Duration::from_secs(60),
            buckets: 3,
            max_routes: 2,
        };
        (SlowRequests::with_clock(config, clock), mock)
    }

    fn id(n: u128) -> TraceId {
        TraceId::from_u128(n).unwrap()
    }

    /// `(route, [(trace id as a number, seconds, age in seconds)])` of a snapshot.
    type Contents = Vec<(String, Vec<(u128, f64, u64)>)>;

    fn contents(slow: &SlowRequests) -> Contents {
        slow.snapshot()
            .into_iter()
            .map(|route| {
                let slowest = route
                    .slowest
                    .iter()
                    .map(|r| (r.trace_id.to_u128(), r.seconds, r.age.as_secs()))
                    .collect();
                (route.route, slowest)
            })
            .collect()
    }

    #[test]
    fn the_slowest_of_each_route_are_kept_slowest_first() {
        let (slow, mock) = store();
        for (n, seconds) in [(1, 0.5), (2, 2.0), (3, 0.1), (4, 1.0), (5, 3.0), (6, 0.7)] {
            slow.offer("/a", seconds, id(n));
        }
        slow.offer("/b", 0.25, id(7));
        mock.increment(Duration::from_secs(2));
        assert_eq!(
            contents(&slow),
            [
                ("/a".to_owned(), vec![(5, 3.0, 2), (2, 2.0, 2), (4, 1.0, 2)]),
                ("/b".to_owned(), vec![(7, 0.25, 2)]),
            ]
        );
    }

    #[test]
    fn ties_keep_the_earlier_request() {
        let (slow, _mock) = store();
        for n in 1..=5 {
            slow.offer("/a", 1.0, id(n));
        }
        assert_eq!(
            contents(&slow),
            [("/a".to_owned(), vec![(1, 1.0, 0), (2, 1.0, 0), (3, 1.0, 0)])]
        );
    }

    #[test]
    fn routes_past_the_cap_share_the_overflow_entry() {
        let (slow, _mock) = store();
        slow.offer("/c", 1.0, id(1));
        slow.offer("/a", 2.0, id(2));
        slow.offer("/x", 3.0, id(3));
        slow.offer("/y", 4.0, id(4));
        slow.offer("/c", 5.0, id(5));
        slow.offer("(overflow)", 0.5, id(6));
        assert_eq!(slow.route_count(), 2);
        assert_eq!(
            contents(&slow),
            [
                ("/a".to_owned(), vec![(2, 2.0, 0)]),
                ("/c".to_owned(), vec![(5, 5.0, 0), (1, 1.0, 0)]),
                (
                    "(overflow)".to_owned(),
                    vec![(4, 4.0, 0), (3, 3.0, 0), (6, 0.5, 0)]
                ),
            ]
        );
    }

    #[test]
    fn the_window_rotates_bucket_by_bucket() {
        let (slow, mock) = store();
        // Bucket 0 (0–20 s): two slow requests.
        slow.offer("/a", 9.0, id(1));
        slow.offer("/a", 8.0, id(2));
        // Bucket 1 (20–40 s) and bucket 2 (40–60 s): faster ones.
        mock.increment(Duration::from_secs(20));
        slow.offer("/a", 1.0, id(3));
        mock.increment(Duration::from_secs(20));
        slow.offer("/a", 2.0, id(4));
        // The top 3 of the whole window, from three buckets.
        assert_eq!(
            contents(&slow),
            [(
                "/a".to_owned(),
                vec![(1, 9.0, 40), (2, 8.0, 40), (4, 2.0, 0)]
            )]
        );
        // Bucket 3 (60–80 s) reuses bucket 0's place: its slow requests leave the window.
        mock.increment(Duration::from_secs(20));
        assert_eq!(
            contents(&slow),
            [("/a".to_owned(), vec![(4, 2.0, 20), (3, 1.0, 40)])]
        );
        slow.offer("/a", 0.5, id(5));
        assert_eq!(
            contents(&slow),
            [(
                "/a".to_owned(),
                vec![(4, 2.0, 20), (3, 1.0, 40), (5, 0.5, 0)]
            )]
        );
        // Long after: nothing is left.
        mock.increment(Duration::from_secs(600));
        assert_eq!(contents(&slow), []);
    }

    #[test]
    fn a_full_bucket_admits_only_slower_requests_and_reopens_on_rotation() {
        let (slow, mock) = store();
        for (n, seconds) in [(1, 1.0), (2, 2.0), (3, 3.0)] {
            slow.offer("/a", seconds, id(n));
        }
        // Full: the gate turns these away without the lock.
        let locks = OFFER_LOCKS.with(std::cell::Cell::get);
        slow.offer("/a", 0.5, id(4));
        slow.offer("/a", 0.999, id(5));
        assert_eq!(OFFER_LOCKS.with(std::cell::Cell::get), locks);
        slow.offer("/a", 1.0, id(5));
        assert_eq!(
            OFFER_LOCKS.with(std::cell::Cell::get),
            locks + 1,
            "at the gate: the lock decides"
        );
        // Slower than the slowest third: admitted, the fastest leaves.
        slow.offer("/a", 1.5, id(6));
        assert_eq!(
            contents(&slow),
            [("/a".to_owned(), vec![(3, 3.0, 0), (2, 2.0, 0), (6, 1.5, 0)])]
        );
        // A new bucket admits any request, whatever the old bucket's threshold.
        mock.increment(Duration::from_secs(20));
        slow.offer("/a", 0.001, id(7));
        assert_eq!(
            contents(&slow),
            [(
                "/a".to_owned(),
                vec![(3, 3.0, 20), (2, 2.0, 20), (6, 1.5, 20)]
            )]
        );
        mock.increment(Duration::from_secs(40));
        assert_eq!(contents(&slow), [("/a".to_owned(), vec![(7, 0.001, 40)])]);
    }

    #[test]
    fn memory_stays_bounded_under_many_routes_and_requests() {
        let (slow, _mock) = store();
        for n in 0..10_000u128 {
            slow.offer(&format!("/random/{n}"), (n % 97) as f64, id(n + 1));
        }
        let snapshot = slow.snapshot();
        assert_eq!(slow.route_count(), 2);
        assert_eq!(snapshot.len(), 3);
        assert_eq!(
            snapshot
                .iter()
                .map(|route| route.slowest.len())
                .collect::<Vec<_>>(),
            [1, 1, 3]
        );
        let overflow = &snapshot[2];
        assert_eq!(overflow.route, "(overflow)");
        assert_eq!(
            overflow
                .slowest
                .iter()
                .map(|r| (r.trace_id.to_u128(), r.seconds))
                .collect::<Vec<_>>(),
            [(97, 96.0), (194, 96.0), (291, 96.0)]
        );
        let buckets = slow.store.overflow.buckets.lock().unwrap();
        assert_eq!(
            buckets
                .iter()
                .map(|bucket| (bucket.slowest.len(), bucket.slowest.capacity()))
                .collect::<Vec<_>>(),
            [(3, 3), (0, 3), (0, 3)]
        );
    }

    #[test]
    fn negative_and_nan_durations_are_ignored() {
        let (slow, _mock) = store();
        slow.offer("/a", -1.0, id(1));
        slow.offer("/a", f64::NAN, id(2));
        assert_eq!(contents(&slow), []);
        assert_eq!(slow.route_count(), 1);
    }

    #[test]
    fn zero_limits_are_refused() {
        assert_eq!(
            SlowRequests::new().top(0).err(),
            Some(ConfigError::ZeroLimit { what: "top" })
        );
        assert_eq!(
            SlowRequests::new().window(Duration::ZERO).err(),
            Some(ConfigError::ZeroLimit { what: "window" })
        );
        assert_eq!(
            SlowRequests::new().buckets(0).err(),
            Some(ConfigError::ZeroLimit { what: "buckets" })
        );
        assert_eq!(
            SlowRequests::new().max_routes(0).err(),
            Some(ConfigError::ZeroLimit { what: "max_routes" })
        );
    }

    #[test]
    fn setters_keep_the_other_settings() {
        let slow = SlowRequests::new()
            .top(2)
            .and_then(|slow| slow.window(Duration::from_secs(30)))
            .and_then(|slow| slow.buckets(3))
            .and_then(|slow| slow.max_routes(7))
            .unwrap();
        assert_eq!(
            format!("{slow:?}"),
            "SlowRequests { top: 2, window: 30s, buckets: 3, max_routes: 7, routes: 0 }"
        );
        assert_eq!(slow.store.bucket_nanos, 10_000_000_000);
    }
}

//! [`HttpMetricsLayer`]: configuration, and the state its services share.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use http::Request;
use http::request::Parts;
use metrics::{Recorder, SharedString};
use tower_layer::Layer;
use vantage_instrument::ConfigError;
use vantage_instrument::names::UNMATCHED_ROUTE;
use vantage_instrument::shard::{self, CachePadded};

use super::body::{BodySizes, NoBodySizes, RecordBodySizes};
use super::context::{ContextMode, NoTraceContext, WithTraceContext};
use super::guard::Stopwatch;
use super::labels::{Registry, RouteId, SharedRecorder};
use super::routes::MAX_ROUTES;
use super::service::HttpMetrics;
use super::slow_hook::SlowHook;
use crate::macros::matched_path;
use crate::slow::SlowRequests;

/// Default cap on distinct `http_route` values; past it, new routes are recorded as
/// [`OVERFLOW_ROUTE`](vantage_instrument::names::OVERFLOW_ROUTE).
pub const DEFAULT_MAX_ROUTES: usize = 512;

type RouteFn = dyn for<'a> Fn(&'a Parts) -> Option<&'a str> + Send + Sync;
type ExcludeFn = dyn Fn(&Parts) -> bool + Send + Sync;

/// Records OpenTelemetry HTTP server metrics for every request of the service it wraps.
///
/// Cheap to clone: clones, and every service they make, share one route registry and one cache
/// of metric handles, so the route cap holds across all of them. See the
/// [module docs](super) for what is recorded and an example.
///
/// The type parameters say whether body sizes are recorded (see
/// [`body_sizes`](Self::body_sizes)) and whether each request's trace is continued (see
/// [`trace_context`](Self::trace_context)).
pub struct HttpMetricsLayer<M = NoBodySizes, C = NoTraceContext> {
    config: Config,
    shards: Arc<Shards>,
    _mode: PhantomData<fn() -> (M, C)>,
}

#[derive(Clone)]
struct Config {
    max_routes: usize,
    unmatched_route: SharedString,
    excluded_paths: Arc<[Box<str>]>,
    exclude_if: Option<Arc<ExcludeFn>>,
    route_fn: Option<Arc<RouteFn>>,
    recorder: Option<SharedRecorder>,
    response_sizes: bool,
    slow: Option<SlowRequests>,
}

/// What a layer's services share: the configuration and the handle registry.
pub(crate) struct Shared {
    excluded_paths: Arc<[Box<str>]>,
    exclude_if: Option<Arc<ExcludeFn>>,
    route_fn: Option<Arc<RouteFn>>,
    pub(crate) registry: Registry,
    pub(crate) slow: Option<SlowHook>,
    pub(crate) stopwatch: Stopwatch,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("excluded_paths", &self.excluded_paths)
            .field("exclude_if", &self.exclude_if.is_some())
            .field("route_fn", &self.route_fn.is_some())
            .field("registry", &self.registry)
            .field("slow", &self.slow)
            .finish()
    }
}

/// A layer's [`Shared`], and one more reference to it per [shard](vantage_instrument::shard):
/// a request holds its thread's, whose count is on a line of its own, so threads starting and
/// ending requests at once do not contend for one reference count.
#[derive(Debug)]
pub(crate) struct Shards {
    shared: Arc<Shared>,
    references: Box<[SharedRef]>,
}

/// A reference to a layer's [`Shared`] with its own count.
pub(crate) type SharedRef = Arc<CachePadded<Arc<Shared>>>;

impl Shards {
    fn new(shared: Shared) -> Self {
        let shared = Arc::new(shared);
        Self {
            references: (0..shard::count())
                .map(|_| Arc::new(CachePadded::new(Arc::clone(&shared))))
                .collect(),
            shared,
        }
    }

    /// The reference of the calling thread's shard.
    #[inline]
    fn reference(&self) -> SharedRef {
        Arc::clone(&self.references[shard::current()])
    }
}

/// How a service holds its layer's [`Shared`].
///
/// Routers clone the service for every request (axum clones a route's service before each
/// call), so a clone must not touch a count that every thread touches: a service the layer
/// made holds every shard's reference, and its clones only the reference of the thread that
/// cloned them (in axum, the thread that then calls the clone; a clone called on other threads,
/// such as a connection's service, has their requests count on its shard, still not one count
/// shared by all).
#[derive(Debug)]
pub(crate) enum SharedRefs {
    /// Every shard's reference: a service made by the layer.
    All(Arc<Shards>),
    /// One shard's reference: a clone.
    One(SharedRef),
}

impl SharedRefs {
    pub(crate) fn shared(&self) -> &Shared {
        match self {
            Self::All(shards) => &shards.shared,
            Self::One(reference) => reference,
        }
    }

    /// The reference a request holds: its thread's, or for a clone its own.
    #[inline]
    pub(crate) fn reference(&self) -> SharedRef {
        match self {
            Self::All(shards) => shards.reference(),
            Self::One(reference) => Arc::clone(reference),
        }
    }
}

impl Clone for SharedRefs {
    /// The reference of the calling thread's shard (see the type's docs).
    fn clone(&self) -> Self {
        Self::One(self.reference())
    }
}

impl Shared {
    /// Whether the route of a request comes from a user function, which needs it in parts.
    #[inline]
    pub(crate) fn reads_parts(&self) -> bool {
        self.exclude_if.is_some() || self.route_fn.is_some()
    }

    /// The route of a request, or `None` when the request is excluded from the metrics, when
    /// no user function needs the request in parts (see [`Shared::reads_parts`]).
    #[inline]
    pub(crate) fn route<B>(&self, request: &Request<B>) -> Option<RouteId> {
        self.route_with(
            || request.uri().path(),
            || Ok(matched_path(request.extensions())),
        )
    }

    /// The route of a request, split into its parts for the user's functions and put back
    /// together (a move of a few hundred bytes each way, hence not for every request).
    #[inline(never)]
    pub(crate) fn route_of_parts<B>(&self, request: Request<B>) -> (Option<RouteId>, Request<B>) {
        let (parts, body) = request.into_parts();
        let route = self.route_with(
            || parts.uri.path(),
            || {
                if self
                    .exclude_if
                    .as_ref()
                    .is_some_and(|exclude| exclude(&parts))
                {
                    return Err(Excluded);
                }
                Ok(match &self.route_fn {
                    Some(route_fn) => route_fn(&parts),
                    None => matched_path(&parts.extensions),
                })
            },
        );
        (route, Request::from_parts(parts, body))
    }

    fn route_with<'a, 'p>(
        &self,
        path: impl FnOnce() -> &'p str,
        name: impl FnOnce() -> Result<Option<&'a str>, Excluded>,
    ) -> Option<RouteId> {
        // The path is read only when some are excluded.
        if !self.excluded_paths.is_empty() {
            let path = path();
            if self
                .excluded_paths
                .iter()
                .any(|excluded| **excluded == *path)
            {
                return None;
            }
        }
        let name = name().ok()?;
        Some(self.registry.route(name))
    }
}

/// A request the user's predicate excluded.
struct Excluded;

impl HttpMetricsLayer {
    /// A layer with the defaults: route from axum's `MatchedPath` (with the `axum` feature),
    /// [`DEFAULT_MAX_ROUTES`] routes, unmatched requests as `(other)`, no body sizes, recording
    /// into the globally installed `metrics` recorder.
    pub fn new() -> Self {
        let config = Config {
            max_routes: DEFAULT_MAX_ROUTES,
            unmatched_route: SharedString::const_str(UNMATCHED_ROUTE),
            excluded_paths: Arc::from(Vec::new()),
            exclude_if: None,
            route_fn: None,
            recorder: None,
            response_sizes: false,
            slow: None,
        };
        Self::from_config(config)
    }
}

impl<C> HttpMetricsLayer<NoBodySizes, C> {
    /// Also records `http_server_request_body_size_bytes` and
    /// `http_server_response_body_size_bytes`, counted from the body frames that actually
    /// flowed. The request body handed to the inner service is then wrapped in a
    /// [`RequestBody`](super::RequestBody).
    pub fn body_sizes(mut self) -> HttpMetricsLayer<RecordBodySizes, C> {
        self.config.response_sizes = true;
        HttpMetricsLayer::from_config(self.config)
    }
}

impl<M> HttpMetricsLayer<M, NoTraceContext> {
    /// Also continues the caller's W3C trace (or starts one) for every recorded request, as
    /// [`TraceContextLayer`](crate::TraceContextLayer) does, in the same wrappers: the context
    /// is [current](crate::trace::current) while the inner service runs and while the response
    /// body is polled to its end, so log lines carry its ids through
    /// [`TraceIds`](crate::trace::TraceIds), outgoing calls continue it
    /// ([`PropagateTraceLayer`](crate::PropagateTraceLayer)), and the slow-request store gets
    /// its trace id. The recommended stack in one layer, at the cost of one: no second body
    /// wrapper, and no request extension (a handler reads the context with
    /// [`trace::current`](crate::trace::current)). Excluded requests are not traced.
    pub fn trace_context(self) -> HttpMetricsLayer<M, WithTraceContext> {
        HttpMetricsLayer::from_config(self.config)
    }
}

impl Default for HttpMetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, C> HttpMetricsLayer<M, C> {
    fn from_config(config: Config) -> Self {
        let registry = Registry::new(
            config.recorder.clone(),
            config.max_routes,
            config.unmatched_route.clone(),
            config.response_sizes,
        );
        let shared = Shared {
            excluded_paths: Arc::clone(&config.excluded_paths),
            exclude_if: config.exclude_if.clone(),
            route_fn: config.route_fn.clone(),
            registry,
            slow: config.slow.clone().map(SlowHook::new),
            stopwatch: Stopwatch::new(),
        };
        Self {
            config,
            shards: Arc::new(Shards::new(shared)),
            _mode: PhantomData,
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        Self::from_config(self.config)
    }

    /// Caps the number of distinct `http_route` values (default [`DEFAULT_MAX_ROUTES`]).
    ///
    /// # Errors
    ///
    /// Refuses zero, and more than 65 533 (a route table of that size takes 1 MiB).
    pub fn max_routes(self, max_routes: usize) -> Result<Self, ConfigError> {
        if max_routes == 0 {
            return Err(ConfigError::ZeroLimit { what: "max_routes" });
        }
        if max_routes > MAX_ROUTES {
            return Err(ConfigError::LimitTooLarge {
                what: "max_routes",
                limit: max_routes,
                max: MAX_ROUTES,
            });
        }
        Ok(self.with(|config| config.max_routes = max_routes))
    }

    /// The `http_route` value of requests that matched no route (default `(other)`).
    pub fn unmatched_route(self, value: impl Into<SharedString>) -> Self {
        let value = value.into();
        self.with(|config| config.unmatched_route = value)
    }

    /// Does not record requests to these exact paths (for example `/metrics`, `/health`).
    pub fn exclude_paths<I, P>(self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Box<str>>,
    {
        self.with(|config| {
            let mut excluded = config.excluded_paths.to_vec();
            excluded.extend(paths.into_iter().map(Into::into));
            config.excluded_paths = excluded.into();
        })
    }

    /// Does not record requests for which `exclude` returns true (for example probes
    /// recognised by their `User-Agent`).
    pub fn exclude_if<F>(self, exclude: F) -> Self
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.with(|config| config.exclude_if = Some(Arc::new(exclude)))
    }

    /// Takes the route of each request from `route_fn` instead of axum's `MatchedPath`: for
    /// hyper services and other routers. `None` means the request matched no route. Return
    /// templates (`/users/{id}`), not raw paths: the route cap bounds the damage, not the
    /// usefulness.
    pub fn route_fn<F>(self, route_fn: F) -> Self
    where
        F: for<'a> Fn(&'a Parts) -> Option<&'a str> + Send + Sync + 'static,
    {
        self.with(|config| config.route_fn = Some(Arc::new(route_fn)))
    }

    /// Records into `recorder` instead of the globally installed one (one registry per layer,
    /// or tests running side by side).
    pub fn recorder<R>(self, recorder: R) -> Self
    where
        R: Recorder + Send + Sync + 'static,
    {
        self.with(|config| config.recorder = Some(Arc::new(recorder)))
    }

    /// Also offers every recorded request to `slow`, with its route, its duration and its
    /// trace id, so that the slowest recent requests of each route can be looked up by trace
    /// id: see [`slow`](crate::slow). The trace is this layer's own with
    /// [`trace_context`](Self::trace_context), otherwise the
    /// [`TraceContext`](vantage_instrument::trace_context::TraceContext) extension or
    /// [current](crate::trace::current) context of a
    /// [`TraceContextLayer`](crate::TraceContextLayer) outside this layer; requests without
    /// one are not offered.
    pub fn slow_requests(self, slow: SlowRequests) -> Self {
        self.with(|config| config.slow = Some(slow))
    }

    /// The number of distinct routes seen so far (the unmatched and overflow values excluded).
    pub fn route_count(&self) -> usize {
        self.shards.shared.registry.route_count()
    }
}

impl<M, C> Clone for HttpMetricsLayer<M, C> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            shards: Arc::clone(&self.shards),
            _mode: PhantomData,
        }
    }
}

impl<M, C: ContextMode> fmt::Debug for HttpMetricsLayer<M, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpMetricsLayer")
            .field("max_routes", &self.config.max_routes)
            .field("unmatched_route", &self.config.unmatched_route)
            .field("body_sizes", &self.config.response_sizes)
            .field("context", &std::any::type_name::<C>())
            .field("shared", &self.shards.shared)
            .finish()
    }
}

impl<S, M: BodySizes, C: ContextMode> Layer<S> for HttpMetricsLayer<M, C> {
    type Service = HttpMetrics<S, M, C>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics::new(inner, SharedRefs::All(Arc::clone(&self.shards)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A router clones the service before each request: the clone adds to the count of its
    /// thread's shard only, never to the count every thread shares; so do its own clones.
    #[test]
    fn a_clone_counts_on_the_shard_of_the_thread_that_cloned_it() {
        let layer = HttpMetricsLayer::new();
        let made = SharedRefs::All(Arc::clone(&layer.shards));
        let shared_count = Arc::strong_count(&layer.shards);
        let counts = || -> Vec<usize> {
            let references = &layer.shards.references;
            references.iter().map(Arc::strong_count).collect()
        };
        let before = counts();
        let plus_two_at = |shard: usize| -> Vec<usize> {
            let mut expected = before.clone();
            expected[shard] += 2;
            expected
        };
        let clone = made.clone();
        let clone_of_clone = clone.clone();
        assert_eq!(counts(), plus_two_at(shard::current()));
        assert_eq!(Arc::strong_count(&layer.shards), shared_count);
        drop((clone, clone_of_clone));
        assert_eq!(counts(), before);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let clone = made.clone();
                let _request = clone.reference();
                assert_eq!(counts(), plus_two_at(shard::current()));
            });
        });
        assert_eq!(counts(), before);
        assert_eq!(Arc::strong_count(&layer.shards), shared_count);
    }

    #[test]
    fn zero_routes_and_more_than_the_table_holds_are_refused() {
        assert_eq!(
            HttpMetricsLayer::new().max_routes(0).err(),
            Some(ConfigError::ZeroLimit { what: "max_routes" })
        );
        let error = HttpMetricsLayer::new().max_routes(100_000).err();
        assert_eq!(
            error.as_ref().map(ToString::to_string).as_deref(),
            Some("max_routes must be at most 65533, not 100000")
        );
        assert!(HttpMetricsLayer::new().max_routes(65_533).is_ok());
    }
}

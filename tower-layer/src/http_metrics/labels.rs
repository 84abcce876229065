//! Label values and the cache of metric handles.
//!
//! Every label combination is resolved into a metric handle once, on its first request, and held
//! in the [route table](super::routes) (or, past its slots, a lock-free map); after that a request
//! costs no hashing, allocation, lock or string building. Route names are capped: past the cap
//! every new route is recorded under [`OVERFLOW_ROUTE`](names::OVERFLOW_ROUTE), so a client
//! sending random paths cannot grow the number of series or the memory.

use std::sync::{Arc, Once, OnceLock};

use foldhash::fast::RandomState;
use http::Method;
use metrics::{Gauge, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit};
use vantage_instrument::names::{self, STANDARD_METHODS};

use super::routes::RouteTable;

/// A recorder shared by a layer and all its services.
pub(crate) type SharedRecorder = Arc<dyn Recorder + Send + Sync>;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// One label per method of [`STANDARD_METHODS`], and one for [`names::OTHER_METHOD`].
pub(crate) const METHOD_COUNT: usize = STANDARD_METHODS.len() + 1;
/// The index of `HEAD` in [`STANDARD_METHODS`].
const HEAD: u8 = 1;
// `is_head` decides whether a response has a body: fail the build if the list is reordered.
const _: () = assert!(matches!(
    STANDARD_METHODS[HEAD as usize].as_bytes(),
    b"HEAD"
));

/// The methods of [`STANDARD_METHODS`], in its order (checked by a test).
static METHODS: [Method; STANDARD_METHODS.len()] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// Index of a request method: its index in [`STANDARD_METHODS`], or the last index for
/// [`names::OTHER_METHOD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MethodLabel(u8);

impl MethodLabel {
    pub(crate) fn of(method: &Method) -> Self {
        // Standard methods compare by their variant: no string comparison (a call to `bcmp`
        // each) for the usual `GET`.
        let index = METHODS
            .iter()
            .position(|known| known == method)
            .unwrap_or(METHODS.len());
        Self(index as u8)
    }

    /// Its index, below [`METHOD_COUNT`].
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }

    pub(crate) fn is_head(self) -> bool {
        self.0 == HEAD
    }

    fn as_str(self) -> &'static str {
        STANDARD_METHODS
            .get(usize::from(self.0))
            .copied()
            .unwrap_or(names::OTHER_METHOD)
    }
}

/// Dense id of a route label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RouteId(pub(crate) u32);

impl RouteId {
    pub(crate) const UNMATCHED: Self = Self(0);
    pub(crate) const OVERFLOW: Self = Self(1);
}

/// Why a request failed, as recorded in the `error_type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ErrorType {
    /// No error.
    None,
    /// A 5xx response: the label is the status code.
    Status,
    /// A named error kind from [`names::error_type`], or an error's type name.
    Named(&'static str),
}

impl ErrorType {
    fn label(self, status: u16) -> SharedString {
        match self {
            Self::None => SharedString::const_str(""),
            Self::Status => SharedString::from(status.to_string()),
            Self::Named(name) => SharedString::const_str(name),
        }
    }
}

/// One request's outcome: the labels of its duration sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Outcome {
    pub(crate) route: RouteId,
    pub(crate) method: MethodLabel,
    /// The response status code, or 0 when no response was produced.
    pub(crate) status: u16,
    pub(crate) error: ErrorType,
}

/// The handles one outcome records into.
#[derive(Debug)]
pub(crate) struct OutcomeHandles {
    pub(crate) duration: Histogram,
    pub(crate) response_size: Option<Histogram>,
}

/// An outcome slot of a route and method: the outcome it holds and its handles.
#[derive(Debug)]
pub(crate) struct SlottedOutcome {
    status: u16,
    error: ErrorType,
    handles: OutcomeHandles,
}

/// Route names, metric handles and their caps, shared by a layer and all its services.
pub(crate) struct Registry {
    recorder: Option<SharedRecorder>,
    response_sizes: bool,
    max_routes: usize,
    described: Once,
    active: [OnceLock<Gauge>; METHOD_COUNT],
    routes: RouteTable<SlottedOutcome>,
    /// The outcomes of a route and method past its slots.
    outcomes: papaya::HashMap<Outcome, OutcomeHandles, RandomState>,
    request_sizes: papaya::HashMap<(RouteId, MethodLabel), Histogram, RandomState>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("explicit_recorder", &self.recorder.is_some())
            .field("routes", &self.routes.len())
            .field("max_routes", &self.max_routes)
            .field("outcomes", &self.outcomes.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    pub(crate) fn new(
        recorder: Option<SharedRecorder>,
        max_routes: usize,
        unmatched_route: SharedString,
        response_sizes: bool,
    ) -> Self {
        Self {
            recorder,
            response_sizes,
            max_routes,
            described: Once::new(),
            active: Default::default(),
            routes: RouteTable::new(max_routes, unmatched_route),
            outcomes: papaya::HashMap::builder()
                .hasher(RandomState::default())
                .build(),
            request_sizes: papaya::HashMap::builder()
                .hasher(RandomState::default())
                .build(),
        }
    }

    /// The id of a route name, registering it while under the cap.
    #[inline]
    pub(crate) fn route(&self, name: Option<&str>) -> RouteId {
        self.routes.id(name)
    }

    /// The number of distinct routes registered (the two constant values excluded).
    pub(crate) fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// The in-flight gauge of a method.
    pub(crate) fn active(&self, method: MethodLabel) -> &Gauge {
        self.active[usize::from(method.0)].get_or_init(|| {
            self.describe();
            let labels = vec![Label::from_static_parts(
                names::HTTP_REQUEST_METHOD,
                method.as_str(),
            )];
            let key = Key::from_parts(names::HTTP_SERVER_ACTIVE_REQUESTS, labels);
            self.with_recorder(|recorder| recorder.register_gauge(&key, &METADATA))
        })
    }

    /// Records one finished request.
    pub(crate) fn record(&self, outcome: Outcome, seconds: f64, response_bytes: u64) {
        let record = |handles: &OutcomeHandles| {
            handles.duration.record(seconds);
            if let Some(size) = &handles.response_size {
                size.record(response_bytes as f64);
            }
        };
        match self.slotted(outcome) {
            Some(handles) => record(handles),
            None => self.record_unslotted(outcome, record),
        }
    }

    /// The handles of an outcome from its route and method's slots: the first slot holding it,
    /// or the first free one, filled with it; `None` when every slot holds another outcome.
    #[inline]
    fn slotted(&self, outcome: Outcome) -> Option<&OutcomeHandles> {
        let slots = self.routes.slots(outcome.route, outcome.method)?;
        slots.iter().find_map(|slot| {
            let slotted = slot.get_or_init(|| SlottedOutcome {
                status: outcome.status,
                error: outcome.error,
                handles: self.outcome_handles(outcome),
            });
            (slotted.status == outcome.status && slotted.error == outcome.error)
                .then_some(&slotted.handles)
        })
    }

    #[cold]
    fn record_unslotted(&self, outcome: Outcome, record: impl FnOnce(&OutcomeHandles)) {
        let outcomes = self.outcomes.pin();
        let handles = match outcomes.get(&outcome) {
            Some(handles) => handles,
            None => outcomes.get_or_insert_with(outcome, || self.outcome_handles(outcome)),
        };
        record(handles);
    }

    /// The request body size histogram of a route and method.
    pub(crate) fn request_size(&self, route: RouteId, method: MethodLabel) -> Histogram {
        let sizes = self.request_sizes.pin();
        match sizes.get(&(route, method)) {
            Some(histogram) => histogram.clone(),
            None => sizes
                .get_or_insert_with((route, method), || {
                    let labels = vec![
                        Label::from_static_parts(names::HTTP_REQUEST_METHOD, method.as_str()),
                        Label::new(names::HTTP_ROUTE, self.route_name(route)),
                    ];
                    self.histogram(names::HTTP_SERVER_REQUEST_BODY_SIZE, labels)
                })
                .clone(),
        }
    }

    #[cold]
    fn outcome_handles(&self, outcome: Outcome) -> OutcomeHandles {
        let status = match outcome.status {
            0 => SharedString::const_str(""),
            code => SharedString::from(code.to_string()),
        };
        let labels = vec![
            Label::from_static_parts(names::HTTP_REQUEST_METHOD, outcome.method.as_str()),
            Label::new(names::HTTP_ROUTE, self.route_name(outcome.route)),
            Label::new(names::HTTP_RESPONSE_STATUS_CODE, status),
            Label::new(names::ERROR_TYPE, outcome.error.label(outcome.status)),
        ];
        let response_size = self
            .response_sizes
            .then(|| self.histogram(names::HTTP_SERVER_RESPONSE_BODY_SIZE, labels[..3].to_vec()));
        OutcomeHandles {
            duration: self.histogram(names::HTTP_SERVER_REQUEST_DURATION, labels),
            response_size,
        }
    }

    pub(crate) fn route_name(&self, route: RouteId) -> SharedString {
        self.routes.name(route)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.describe();
        let key = Key::from_parts(name, labels);
        self.with_recorder(|recorder| recorder.register_histogram(&key, &METADATA))
    }

    fn describe(&self) {
        self.described.call_once(|| {
            self.with_recorder(|recorder| {
                recorder.describe_histogram(
                    names::HTTP_SERVER_REQUEST_DURATION.into(),
                    Some(Unit::Seconds),
                    "Duration of HTTP server requests, to the end of the response body.".into(),
                );
                recorder.describe_gauge(
                    names::HTTP_SERVER_ACTIVE_REQUESTS.into(),
                    None,
                    "Number of active HTTP server requests.".into(),
                );
                recorder.describe_histogram(
                    names::HTTP_SERVER_REQUEST_BODY_SIZE.into(),
                    Some(Unit::Bytes),
                    "Size of HTTP server request bodies.".into(),
                );
                recorder.describe_histogram(
                    names::HTTP_SERVER_RESPONSE_BODY_SIZE.into(),
                    Some(Unit::Bytes),
                    "Size of HTTP server response bodies.".into(),
                );
            });
        });
    }

    fn with_recorder<T>(&self, register: impl FnOnce(&dyn Recorder) -> T) -> T {
        match &self.recorder {
            Some(recorder) => register(recorder.as_ref()),
            None => metrics::with_recorder(register),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_of_each_standard_method_is_its_name() {
        for (index, name) in STANDARD_METHODS.into_iter().enumerate() {
            let method = Method::from_bytes(name.as_bytes()).expect("valid token");
            let label = MethodLabel::of(&method);
            assert_eq!(usize::from(label.0), index);
            assert_eq!(label.as_str(), name);
            assert_eq!(label.is_head(), name == "HEAD");
        }
        for other in ["PURGE", "get", "PROPFIND"] {
            let method = Method::from_bytes(other.as_bytes()).expect("valid token");
            let label = MethodLabel::of(&method);
            assert_eq!(usize::from(label.0), STANDARD_METHODS.len());
            assert_eq!(label.as_str(), names::OTHER_METHOD);
            assert!(!label.is_head());
        }
    }
}

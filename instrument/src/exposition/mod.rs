//! The Prometheus expositions: one text rendering of the metrics, three encodings.
//!
//! A recorder renders its metrics once, as the Prometheus text format (0.0.4). What a scrape
//! asks for in its `Accept` header ([`Format::negotiate`]) decides how that text goes out:
//!
//! - [`Format::Text`]: as it is (classic `le` buckets; what `curl` and older scrapers read);
//! - [`Format::OpenMetrics`] ([`openmetrics`]): the same samples in OpenMetrics 1.0, each
//!   histogram bucket with its [`Exemplar`] (a trace id, its value and timestamp) where one
//!   is known;
//! - [`Format::Protobuf`] ([`protobuf`], feature `protobuf`): delimited `MetricFamily`
//!   messages, each histogram with its native buckets ([`native`]) beside the classic ones,
//!   which is what a Prometheus with native histograms enabled asks for first.
//!
//! What the text cannot carry (native buckets, exemplars) comes beside it as [`Extras`], keyed
//! by the series. Re-encoding one text means the three can never disagree on a count.
//! [`text`] reads a text exposition back (what a service's `/metrics` answers, untrusted).

use std::cell::Cell;
use std::collections::HashMap;

use crate::trace_context::TraceId;

pub mod native;
pub mod openmetrics;
#[cfg(feature = "protobuf")]
#[cfg_attr(docsrs, doc(cfg(feature = "protobuf")))]
pub mod protobuf;
mod series;
pub mod text;

pub use native::NativeHistogram;

/// The content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = crate::names::PROMETHEUS_TEXT_CONTENT_TYPE;
/// The content type of OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the delimited protobuf exposition.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// An exposition format a scrape can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text, with exemplars.
    OpenMetrics,
    /// Delimited `io.prometheus.client.MetricFamily` messages, with native histograms.
    Protobuf,
}

impl Format {
    /// The format an `Accept` header prefers among those offered here (`protobuf` only when
    /// `protobuf_available`): the highest `q` wins, the first listed on a tie, text when
    /// nothing matches. Prometheus sends, with native histograms on,
    /// `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,...`.
    ///
    /// ```
    /// use vantage_instrument::exposition::Format;
    ///
    /// let prometheus = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::negotiate(Some(prometheus), true), Format::OpenMetrics);
    /// assert_eq!(Format::negotiate(Some("*/*"), true), Format::Text);
    /// assert_eq!(Format::negotiate(None, true), Format::Text);
    /// ```
    #[must_use]
    pub fn negotiate(accept: Option<&str>, protobuf_available: bool) -> Self {
        let Some(accept) = accept else {
            return Self::Text;
        };
        let mut best = (Self::Text, 0.0_f32);
        for offer in accept.split(',').take(32) {
            let mut parts = offer.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut quality, mut delimited_families) = (1.0_f32, (false, false));
            for parameter in parts {
                let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => quality = value.trim().parse().unwrap_or(0.0),
                    "proto" => {
                        delimited_families.0 = value.trim() == "io.prometheus.client.MetricFamily";
                    }
                    "encoding" => delimited_families.1 = value.trim() == "delimited",
                    _ => {}
                }
            }
            let format = match media.as_str() {
                "application/openmetrics-text" => Self::OpenMetrics,
                "application/vnd.google.protobuf"
                    if protobuf_available && delimited_families == (true, true) =>
                {
                    Self::Protobuf
                }
                _ => continue,
            };
            if quality > best.1 {
                best = (format, quality);
            }
        }
        best.0
    }

    /// The content type of a response in this format.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => TEXT_CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Self::Protobuf => PROTOBUF_CONTENT_TYPE,
        }
    }
}

/// A sampled observation tied to a trace: the jump from "p99 is high" to "this request".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// The trace the observation belongs to (the exemplar's `trace_id` label).
    pub trace_id: TraceId,
    /// The observed value.
    pub value: f64,
    /// When, in seconds since the Unix epoch.
    pub timestamp: f64,
}

/// What a histogram series carries beyond its text samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesExtras {
    /// Its native buckets, for the protobuf exposition.
    pub native: Option<NativeHistogram>,
    /// Exemplars by the upper bound (`le`) of the classic bucket that holds them, `+Inf`
    /// included.
    pub exemplars: Vec<(f64, Exemplar)>,
}

impl SeriesExtras {
    /// The exemplar of the classic bucket whose upper bound is `le`.
    #[must_use]
    pub fn exemplar(&self, le: f64) -> Option<&Exemplar> {
        self.exemplars
            .iter()
            .find(|(bound, _)| *bound == le)
            .map(|(_, exemplar)| exemplar)
    }
}

thread_local! {
    static EXEMPLAR_TRACE: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Runs `f` with `trace_id` as the trace of the observations it records: Vantage's recorder
/// ([`PrometheusExporter`](crate::PrometheusExporter)) offers each histogram sample recorded
/// inside `f` on this thread as an exemplar of its bucket. Other recorders ignore it. This is
/// how the HTTP metrics layer ties its duration samples to the request's trace, through the
/// `metrics` facade, which has no exemplar argument.
///
/// ```
/// use vantage_instrument::exposition::{current_exemplar_trace, with_exemplar_trace};
/// use vantage_instrument::trace_context::TraceId;
///
/// let trace_id = TraceId::from_u128(7).unwrap();
/// assert_eq!(with_exemplar_trace(Some(trace_id), current_exemplar_trace), Some(trace_id));
/// assert_eq!(current_exemplar_trace(), None);
/// ```
#[inline]
pub fn with_exemplar_trace<R>(trace_id: Option<TraceId>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<TraceId>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = EXEMPLAR_TRACE.try_with(|cell| cell.set(self.0));
        }
    }
    let Some(trace_id) = trace_id else {
        return f();
    };
    let previous = EXEMPLAR_TRACE
        .try_with(|cell| cell.replace(Some(trace_id)))
        .unwrap_or(None);
    let _restore = Restore(previous);
    f()
}

/// The trace of the samples being recorded on this thread (see [`with_exemplar_trace`]).
#[inline]
#[must_use]
pub fn current_exemplar_trace() -> Option<TraceId> {
    EXEMPLAR_TRACE.try_with(Cell::get).unwrap_or(None)
}

/// The key of a series in [`Extras`]: its family name and its labels but `le`, sorted.
pub type SeriesKey = (String, Vec<(String, String)>);

/// The extras of an exposition's histogram series.
pub type Extras = HashMap<SeriesKey, SeriesExtras>;

/// A sample value as the expositions write it: `+Inf`, `-Inf` and `NaN` by name (Rust's
/// `inf` is not a Prometheus value), others as Rust's shortest round-trip decimal.
#[derive(Debug, Clone, Copy)]
pub struct Value(pub f64);

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            value if value.is_nan() => f.write_str("NaN"),
            f64::INFINITY => f.write_str("+Inf"),
            f64::NEG_INFINITY => f.write_str("-Inf"),
            value => write!(f, "{value}"),
        }
    }
}

/// Text lines without a copy; `str::lines` was a tenth of a 1 000-group re-encoding.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    memchr::memchr_iter(b'\n', text.as_bytes())
        .chain(std::iter::once(text.len()))
        .scan(0, |start, end| {
            let line = text.get(*start..end).unwrap_or("");
            *start = end + 1;
            Some(line)
        })
        .filter(|line| !line.is_empty())
}

/// The labels of a sample but `le`, as [`SeriesKey`] holds them.
pub(crate) fn sorted_labels<'a>(
    labels: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = labels
        .filter(|(name, _)| *name != "le")
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    pairs.sort();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_quality_offer_wins_and_protobuf_only_when_available() {
        let native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(native), true), Format::Protobuf);
        assert_eq!(Format::negotiate(Some(native), false), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4"), true),
            Format::Text
        );
        // A protobuf that is not delimited MetricFamily messages is not ours.
        assert_eq!(
            Format::negotiate(
                Some(
                    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"
                ),
                true
            ),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0"), true),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some(""), true), Format::Text);
    }

    proptest::proptest! {
        #[test]
        fn any_accept_header_negotiates_without_panic(accept in ".{0,200}") {
            let _ = Format::negotiate(Some(&accept), true);
        }
    }
}

//! [`Record`], the one type every format produces, and its value types.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use vantage_instrument::trace_context::TraceId;

/// One request, as an access-log line describes it.
///
/// Every format parser produces this type; everything downstream of parsing (routes,
/// aggregation, output) sees only it. A field is `None` when the format does not log it, when
/// the line holds the format's "absent" placeholder (`-`, `"-"`, an empty value) or, for
/// latencies, when the logged value is negative (HAProxy's `-1` for a phase never reached).
///
/// Text fields borrow from the line. They are the logged bytes with the format's escaping undone
/// (JSON escapes, nginx `\xHH`, Traefik `\"`, HAProxy `#XX`), so they are [`Cow::Owned`] only when
/// the line held an escape sequence. They are bytes, not `str`: access logs are not guaranteed to
/// be UTF-8.
///
/// See the [module docs](super) for what each format fills in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the request happened, as the format stamps it: the request start for Traefik, Envoy
    /// and HAProxy, the log write (request end) for nginx, ingress-nginx and Caddy.
    pub timestamp: Option<Timestamp>,
    /// The request method as sent by the client (`GET`).
    pub method: Option<Cow<'a, [u8]>>,
    /// The request target: path and query as logged (`/users/42?page=2`), percent-encoding kept.
    pub target: Option<Cow<'a, [u8]>>,
    /// The protocol (`HTTP/1.1`, `HTTP/2.0`, `HTTP/2`).
    pub protocol: Option<Cow<'a, [u8]>>,
    /// The status sent to the client. May lie outside 100–599 (Caddy and Envoy `0`, HAProxy
    /// `-1`); [`Status::class`] maps those to [`StatusClass::Other`].
    pub status: Option<Status>,
    /// Response body bytes sent to the client.
    pub bytes_sent: Option<u64>,
    /// Total request duration in nanoseconds, at the resolution the format logs (whole
    /// milliseconds for Traefik common, Envoy and HAProxy, so `0` there means "under 1 ms").
    pub duration_ns: Option<u64>,
    /// Time spent upstream (in the service) in nanoseconds, where the format logs it separately:
    /// Traefik JSON `OriginDuration`, nginx `$upstream_response_time` (the sum over retries and
    /// redirects), Envoy `x-envoy-upstream-service-time`, HAProxy `Tr`.
    pub upstream_duration_ns: Option<u64>,
    /// Status the upstream answered with: Traefik JSON `OriginStatus`, nginx `$upstream_status`
    /// (the last numeric element of the list).
    pub upstream_status: Option<Status>,
    /// How many times the proxy sent the request upstream, where its log says: `0` when it
    /// answered itself (Traefik JSON `OriginStatus` and `OriginDuration` both 0: a middleware's
    /// answer, a redirect; nginx `$upstream_status` `-`), else one per attempt (Traefik JSON
    /// 1 + `RetryAttempts`; nginx one per element of `$upstream_status`, retries and internal
    /// redirects alike).
    pub upstream_attempts: Option<u16>,
    /// The proxy's routing unit: Traefik `RouterName`, ingress-nginx `$proxy_upstream_name`,
    /// HAProxy backend.
    pub router: Option<Cow<'a, [u8]>>,
    /// The service the proxy sent the request to, where the format names it (Traefik JSON
    /// `ServiceName`).
    pub service: Option<Cow<'a, [u8]>>,
    /// The requested host (nginx `$host`, Envoy `:authority`, Traefik JSON `RequestHost`, Caddy
    /// `request.host`).
    pub host: Option<Cow<'a, [u8]>>,
    /// The request's trace id, where the log carries it: Traefik JSON `TraceId` (its own
    /// tracing) or `request_Traceparent` (the header kept with
    /// `accessLog.fields.headers.names.traceparent=keep`), nginx `$http_traceparent`. A value
    /// that is not a valid id is `None`: it is the client's header, not the proxy's line.
    pub trace_id: Option<TraceId>,
}

impl Record<'_> {
    /// [`duration_ns`](Self::duration_ns) as a [`Duration`].
    #[must_use]
    pub fn duration(&self) -> Option<Duration> {
        self.duration_ns.map(Duration::from_nanos)
    }

    /// [`upstream_duration_ns`](Self::upstream_duration_ns) as a [`Duration`].
    #[must_use]
    pub fn upstream_duration(&self) -> Option<Duration> {
        self.upstream_duration_ns.map(Duration::from_nanos)
    }

    /// Copies the borrowed text so the record can outlive the line (to keep a sample).
    #[must_use]
    pub fn into_owned(self) -> Record<'static> {
        fn own(field: Option<Cow<'_, [u8]>>) -> Option<Cow<'static, [u8]>> {
            field.map(|text| Cow::Owned(text.into_owned()))
        }
        Record {
            timestamp: self.timestamp,
            method: own(self.method),
            target: own(self.target),
            protocol: own(self.protocol),
            status: self.status,
            bytes_sent: self.bytes_sent,
            duration_ns: self.duration_ns,
            upstream_duration_ns: self.upstream_duration_ns,
            upstream_status: self.upstream_status,
            upstream_attempts: self.upstream_attempts,
            router: own(self.router),
            service: own(self.service),
            host: own(self.host),
            trace_id: self.trace_id,
        }
    }
}

/// Names one field of [`Record`], to ask a format whether it logs it (see
/// [`LogFormat::filled_by`](super::LogFormat::filled_by)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordField {
    /// [`Record::timestamp`].
    Timestamp,
    /// [`Record::method`].
    Method,
    /// [`Record::target`].
    Target,
    /// [`Record::protocol`].
    Protocol,
    /// [`Record::status`].
    Status,
    /// [`Record::bytes_sent`].
    BytesSent,
    /// [`Record::duration_ns`].
    Duration,
    /// [`Record::upstream_duration_ns`].
    UpstreamDuration,
    /// [`Record::upstream_status`].
    UpstreamStatus,
    /// [`Record::router`].
    Router,
    /// [`Record::service`].
    Service,
    /// [`Record::host`].
    Host,
    /// [`Record::trace_id`].
    TraceId,
}

/// A point in time: nanoseconds since the Unix epoch, UTC.
///
/// Timestamps logged with a zone offset are converted to UTC; timestamps logged without one
/// (HAProxy's `[%tr]`) are taken as UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `nanos` nanoseconds after the Unix epoch.
    #[must_use]
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// The timestamp `secs` seconds after the Unix epoch (saturating at the `i64` nanosecond
    /// range, years 1677 to 2262).
    #[must_use]
    pub const fn from_unix_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the Unix epoch.
    #[must_use]
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    #[must_use]
    pub const fn unix_secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// The nanoseconds past [`unix_secs`](Self::unix_secs), in `0..1_000_000_000`.
    #[must_use]
    pub const fn subsec_nanos(self) -> u32 {
        // rem_euclid of a positive divisor is in 0..1e9, which fits in u32.
        self.0.rem_euclid(1_000_000_000) as u32
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with nanoseconds: `2025-03-09T12:00:00.123456789Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.unix_secs();
        let (year, month, day) = super::time::civil_from_days(secs.div_euclid(86_400));
        let day_secs = secs.rem_euclid(86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
            day_secs / 3600,
            day_secs / 60 % 60,
            day_secs % 60,
            self.subsec_nanos()
        )
    }
}

/// An HTTP status code as logged, including values outside 100–599.
///
/// Proxies log pseudo-codes when no response was sent: Caddy and Envoy `0`, HAProxy `-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(i16);

impl Status {
    /// A status with the given code.
    #[must_use]
    pub const fn new(code: i16) -> Self {
        Self(code)
    }

    /// The code as logged.
    #[must_use]
    pub const fn code(self) -> i16 {
        self.0
    }

    /// The status class; codes outside 100–599 are [`StatusClass::Other`].
    #[must_use]
    pub const fn class(self) -> StatusClass {
        match self.0 {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The class of a [`Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum StatusClass {
    /// 1xx.
    Informational,
    /// 2xx.
    Success,
    /// 3xx.
    Redirection,
    /// 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// Anything outside 100–599 (`0`, `-1`, `999`).
    Other,
}

impl StatusClass {
    /// The label value: `1xx` … `5xx`, or `other`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "1xx",
            Self::Success => "2xx",
            Self::Redirection => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for StatusClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_outside_http_range_is_class_other() {
        assert_eq!(Status::new(0).class(), StatusClass::Other);
        assert_eq!(Status::new(-1).class(), StatusClass::Other);
        assert_eq!(Status::new(600).class(), StatusClass::Other);
        assert_eq!(Status::new(99).class(), StatusClass::Other);
        assert_eq!(Status::new(100).class(), StatusClass::Informational);
        assert_eq!(Status::new(499).class().as_str(), "4xx");
        assert_eq!(Status::new(599).class().as_str(), "5xx");
    }

    #[test]
    fn timestamp_splits_negative_times_downwards() {
        let t = Timestamp::from_unix_nanos(-1);
        assert_eq!(t.unix_secs(), -1);
        assert_eq!(t.subsec_nanos(), 999_999_999);
        assert_eq!(Timestamp::from_unix_secs(i64::MAX).unix_nanos(), i64::MAX);
    }

    #[test]
    fn timestamp_displays_as_rfc3339_utc() {
        let t = Timestamp::from_unix_nanos(1_741_521_600_123_456_789);
        assert_eq!(t.to_string(), "2025-03-09T12:00:00.123456789Z");
    }

    #[test]
    fn into_owned_keeps_every_field() {
        let line = b"GET".to_vec();
        let record = Record {
            method: Some(Cow::Borrowed(&line[..])),
            status: Some(Status::new(200)),
            duration_ns: Some(5),
            ..Record::default()
        };
        let owned = record.clone().into_owned();
        drop(line);
        assert_eq!(owned.method.as_deref(), Some(&b"GET"[..]));
        assert_eq!(owned.status, Some(Status::new(200)));
        assert_eq!(owned.duration(), Some(Duration::from_nanos(5)));
    }
}

/// The trace id of a `traceparent` header value (any version this crate can read), or `None`
/// when it is not one.
pub(crate) fn trace_id_of_traceparent(value: &[u8]) -> Option<TraceId> {
    vantage_instrument::trace_context::TraceParent::from_bytes(value)
        .ok()
        .map(|parent| parent.trace_id)
}

/// The trace id written as 32 hex digits (either case), or `None` when it is not one.
pub(crate) fn trace_id_of_hex(value: &[u8]) -> Option<TraceId> {
    if value.len() != 32 || !value.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    // 32 hex digits: valid UTF-8 and within u128.
    let text = std::str::from_utf8(value).ok()?;
    TraceId::from_u128(u128::from_str_radix(text, 16).ok()?)
}

#[cfg(test)]
mod trace_id_tests {
    use super::*;

    #[test]
    fn a_trace_id_is_read_from_a_traceparent_or_from_hex_and_nothing_else() {
        let id = TraceId::from_u128(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);
        assert_eq!(
            trace_id_of_traceparent(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            id
        );
        assert_eq!(trace_id_of_hex(b"0af7651916cd43dd8448eb211c80319c"), id);
        assert_eq!(trace_id_of_hex(b"0AF7651916CD43DD8448EB211C80319C"), id);
        for bad in [
            &b"-"[..],
            b"",
            b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            b"zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(trace_id_of_traceparent(bad), None, "{bad:?}");
        }
        for bad in [
            &b"00000000000000000000000000000000"[..],
            b"+af7651916cd43dd8448eb211c80319c",
            b"0af7651916cd43dd8448eb211c80319",
            b"0af7651916cd43dd8448eb211c80319c0",
        ] {
            assert_eq!(trace_id_of_hex(bad), None, "{bad:?}");
        }
    }
}

//! Access-log formats: one parser per proxy, all producing [`Record`].
//!
//! [`Format`] names a log format and parses its lines; [`detect`] picks the format of a log from
//! its first lines. Every line lands in exactly one bucket:
//!
//! - **parsed**: `Ok(Parsed::Record(record))`, a request;
//! - **filtered**: `Ok(Parsed::Filtered(reason))`, a well-formed line that the format's own
//!   framing marks as another kind of entry sharing the stream, not a request ([`FilterReason`]);
//! - **malformed**: `Err(ParseError { kind, offset })`.
//!
//! What is filtered is decided per format, following formats.md: only Caddy (all its loggers
//! write to one stream; entries of other loggers are filtered) and HAProxy (TCP-mode log lines,
//! and in the syslog form any message that is not an HTTP log) have legitimate non-request
//! lines. Everything else that is not a record is malformed, including foreign lines mixed into
//! a stream (Traefik's own log lines, nginx error-log lines: formats.md §7.9 counts them as
//! garbage) and blank lines.
//!
//! # Units
//!
//! - Durations are nanoseconds (`u64`) at the resolution the format logs: whole milliseconds
//!   (Traefik common, Envoy, HAProxy), milliseconds via seconds with 3 decimals (nginx), or
//!   nanoseconds (Traefik JSON, Caddy). A missing, `-` or negative latency is `None`.
//! - Timestamps are [`Timestamp`]s: nanoseconds since the Unix epoch, UTC, parsed once by
//!   hand-written parsers.
//! - Statuses are [`Status`]es, `i16`, kept as logged even outside 100–599.
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::{Format, Parsed, Status};
//!
//! let line = br#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /users/42 HTTP/2.0" 200 512 "-" "-" 17 "users@kubernetescrd" "http://10.42.0.7:8080" 12ms"#;
//! match Format::TraefikCommon.parse(line) {
//!     Ok(Parsed::Record(record)) => {
//!         assert_eq!(record.status, Some(Status::new(200)));
//!         assert_eq!(record.duration_ns, Some(12_000_000));
//!         assert_eq!(record.router.as_deref(), Some(&b"users@kubernetescrd"[..]));
//!     }
//!     Ok(Parsed::Filtered(reason)) => println!("not a request: {reason}"),
//!     Err(err) => println!("malformed: {err}"),
//! }
//! ```

mod caddy;
mod detect;
mod envoy;
mod error;
pub mod haproxy;
pub mod ingress_nginx;
mod json;
mod lex;
pub mod nginx;
mod record;
mod syslog;
#[cfg(test)]
mod test_helpers;
mod time;
mod traefik;

use std::fmt;
use std::str::FromStr;

pub(crate) use detect::detect_presets;
pub use detect::{
    DEFAULT_DETECT_LINES, DetectError, Detection, Score, Scores, detect, detect_lines,
};
pub use error::{ErrorKind, ParseError};
pub use nginx::{Escape, LogFormat, LogFormatError};
pub(crate) use record::trace_id_of_hex;
pub use record::{Record, RecordField, Status, StatusClass, Timestamp};

use caddy::DurationUnit;
pub(crate) use time::civil_from_days;

/// An access-log format: which parser reads the lines.
///
/// Every variant but [`Nginx`](Self::Nginx) is a preset, listed in [`Format::PRESETS`] with a
/// [`name`](Self::name) that [`FromStr`] accepts. See the [module docs](self) for the buckets
/// and units.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Traefik `common` (default): CLF + request count, router, server URL, `<N>ms`.
    TraefikCommon,
    /// Traefik `json`: durations in ns, router and service names.
    TraefikJson,
    /// nginx `combined` (also Traefik `genericCLF`): no latency.
    NginxCombined,
    /// nginx `combined` followed by ` $request_time`.
    NginxCombinedRequestTime,
    /// Any nginx `log_format`, compiled.
    Nginx(LogFormat),
    /// ingress-nginx default `upstreaminfo`, with upstream lists.
    IngressNginx,
    /// Envoy default text format.
    Envoy,
    /// HAProxy `option httplog`, raw (`log stdout format raw`).
    Haproxy,
    /// HAProxy `option httplog` behind a syslog header (RFC 3164 or 5424).
    HaproxySyslog,
    /// Caddy JSON, `duration` in seconds (the default `duration_format`).
    CaddyJson,
    /// Caddy JSON with `duration_format ns`.
    CaddyJsonNanos,
    /// Caddy JSON with `duration_format ms`.
    CaddyJsonMillis,
}

/// Why a line was filtered: well-formed, and not a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FilterReason {
    /// A Caddy entry from another logger than `http.log.access*`.
    NotAccessLog,
    /// A syslog message that is not an HAProxy HTTP log, or an HAProxy TCP-mode log line.
    NotHttpLog,
}

impl FilterReason {
    /// A short stable name (`not_access_log`, `not_http_log`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::NotAccessLog => "not_access_log",
            Self::NotHttpLog => "not_http_log",
        }
    }
}

impl fmt::Display for FilterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAccessLog => "entry of another logger than the access log",
            Self::NotHttpLog => "log message that is not an HTTP request log",
        })
    }
}

/// A line that is not malformed: a request record, or a line filtered out.
// Records are returned by value on the hot path: boxing the large variant would allocate per
// line.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A request.
    Record(Record<'a>),
    /// Not a request, legitimately (see [`FilterReason`]).
    Filtered(FilterReason),
}

/// A format name that [`Format::from_str`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {name:?} (known: {known})")]
#[non_exhaustive]
pub struct UnknownFormatError {
    /// The name given.
    pub name: String,
    /// The known names, comma-separated.
    pub known: String,
}

impl Format {
    /// Every preset, in the order detection tries them.
    pub const PRESETS: &'static [Self] = &[
        Self::TraefikCommon,
        Self::TraefikJson,
        Self::NginxCombined,
        Self::NginxCombinedRequestTime,
        Self::IngressNginx,
        Self::Envoy,
        Self::Haproxy,
        Self::HaproxySyslog,
        Self::CaddyJson,
        Self::CaddyJsonNanos,
        Self::CaddyJsonMillis,
    ];

    /// The format's name: `traefik-common`, `nginx-combined-rt`, … (`nginx-custom` for a
    /// compiled `log_format`).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::TraefikCommon => "traefik-common",
            Self::TraefikJson => "traefik-json",
            Self::NginxCombined => "nginx-combined",
            Self::NginxCombinedRequestTime => "nginx-combined-rt",
            Self::Nginx(_) => "nginx-custom",
            Self::IngressNginx => "ingress-nginx",
            Self::Envoy => "envoy",
            Self::Haproxy => "haproxy",
            Self::HaproxySyslog => "haproxy-syslog",
            Self::CaddyJson => "caddy-json",
            Self::CaddyJsonNanos => "caddy-json-ns",
            Self::CaddyJsonMillis => "caddy-json-ms",
        }
    }

    /// One line describing the format, for help texts.
    #[must_use]
    pub const fn description(&self) -> &'static str {
        match self {
            Self::TraefikCommon => "Traefik `common` access log (CLF + router, server URL, <N>ms)",
            Self::TraefikJson => "Traefik `json` access log (durations in ns)",
            Self::NginxCombined => "nginx `combined` (no latency field)",
            Self::NginxCombinedRequestTime => "nginx `combined` + ` $request_time`",
            Self::Nginx(_) => "nginx custom `log_format`",
            Self::IngressNginx => "ingress-nginx default `upstreaminfo`",
            Self::Envoy => "Envoy default text access log",
            Self::Haproxy => "HAProxy `option httplog`, raw",
            Self::HaproxySyslog => "HAProxy `option httplog` behind a syslog header",
            Self::CaddyJson => "Caddy JSON access log, duration in seconds (default)",
            Self::CaddyJsonNanos => "Caddy JSON access log, `duration_format ns`",
            Self::CaddyJsonMillis => "Caddy JSON access log, `duration_format ms`",
        }
    }

    /// Parses one line (a trailing `\n` or `\r\n` is ignored).
    ///
    /// # Errors
    ///
    /// [`ParseError`] when the line is malformed: see [`ErrorKind`].
    #[inline]
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_none_or(u8::is_ascii_whitespace)
            && line.iter().all(u8::is_ascii_whitespace)
        {
            return Err(ParseError::new(ErrorKind::Empty, 0));
        }
        let record = match self {
            Self::TraefikCommon => traefik::parse_common(line),
            Self::TraefikJson => traefik::parse_json(line),
            Self::NginxCombined => nginx::COMBINED_FORMAT.parse(line),
            Self::NginxCombinedRequestTime => nginx::COMBINED_REQUEST_TIME_FORMAT.parse(line),
            Self::Nginx(format) => format.parse(line),
            Self::IngressNginx => ingress_nginx::UPSTREAMINFO_FORMAT.parse(line),
            Self::Envoy => envoy::parse(line),
            Self::Haproxy => return haproxy::parse_raw(line),
            Self::HaproxySyslog => return haproxy::parse_syslog(line),
            Self::CaddyJson => return caddy::parse(line, DurationUnit::Seconds),
            Self::CaddyJsonNanos => return caddy::parse(line, DurationUnit::Nanos),
            Self::CaddyJsonMillis => return caddy::parse(line, DurationUnit::Millis),
        };
        record.map(Parsed::Record)
    }

    /// The compiled `log_format` behind an nginx-family format (`None` for other formats).
    #[must_use]
    pub fn log_format(&self) -> Option<&LogFormat> {
        match self {
            Self::NginxCombined => Some(&nginx::COMBINED_FORMAT),
            Self::NginxCombinedRequestTime => Some(&nginx::COMBINED_REQUEST_TIME_FORMAT),
            Self::IngressNginx => Some(&ingress_nginx::UPSTREAMINFO_FORMAT),
            Self::Nginx(format) => Some(format),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nginx(format) => write!(f, "nginx log_format {format}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Format {
    type Err = UnknownFormatError;

    /// A preset by [`name`](Self::name), or one of the aliases `traefik`, `traefik-clf`,
    /// `nginx`, `caddy`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let alias = match name {
            "traefik" | "traefik-clf" => Some(Self::TraefikCommon),
            "nginx" => Some(Self::NginxCombined),
            "caddy" => Some(Self::CaddyJson),
            _ => None,
        };
        alias
            .or_else(|| Self::PRESETS.iter().find(|f| f.name() == name).cloned())
            .ok_or_else(|| UnknownFormatError {
                name: name.to_owned(),
                known: Self::PRESETS
                    .iter()
                    .map(Self::name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for format in Format::PRESETS {
            assert_eq!(format.name().parse::<Format>().as_ref(), Ok(format));
            assert!(!format.description().is_empty());
        }
        assert_eq!("traefik-clf".parse::<Format>(), Ok(Format::TraefikCommon));
        let err = "apache".parse::<Format>().unwrap_err();
        assert!(err.to_string().starts_with(
            "unknown log format \"apache\" (known: traefik-common, traefik-json, nginx-combined,"
        ));
    }

    #[test]
    fn blank_lines_are_malformed_and_line_endings_are_ignored() {
        for format in Format::PRESETS {
            for blank in [&b""[..], b"\n", b"\r\n", b"  \t"] {
                assert_eq!(
                    format.parse(blank),
                    Err(ParseError::new(ErrorKind::Empty, 0)),
                    "{format}"
                );
            }
        }
        let line = b"{\"DownstreamStatus\":200}\r\n";
        assert!(matches!(
            Format::TraefikJson.parse(line),
            Ok(Parsed::Record(_))
        ));
    }

    #[test]
    fn display_shows_custom_log_formats() {
        let format = Format::Nginx(LogFormat::compile("$status").unwrap());
        assert_eq!(
            format.to_string(),
            "nginx log_format escape=default '$status'"
        );
        assert_eq!(format.log_format().map(LogFormat::source), Some("$status"));
        assert_eq!(Format::Envoy.log_format(), None);
    }
}

//! Caddy's JSON access log (zap JSON encoder).
//!
//! ```text
//! {"level":"info","ts":1726651920.3685553,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"…","proto":"HTTP/2.0","method":"GET","host":"foo.tld","uri":"/path?q=1","headers":{…}},"bytes_read":0,"user_id":"","duration":0.003550188,"size":0,"status":200,"resp_headers":{…}}
//! ```
//!
//! Read: `ts` (log-write time; a float of Unix seconds by default, any of Caddy's
//! `time_format`s: `unix_milli_float`, `unix_nano` and the like are told apart by magnitude,
//! `iso8601`, `rfc3339`, `rfc3339_nano`, `wall*` and `common_log` strings are parsed),
//! `request.method`, `request.uri`, `request.proto`, `request.host`, `duration`, `size` and
//! `status` (`0` when Caddy wrote no response; kept). `duration` is in the unit of the format
//! variant (Caddy's `duration_format`: seconds by default, `ns`, `ms`); a Go duration string
//! (`"50ms"`, `duration_format string`) is understood in every variant.
//!
//! Caddy writes all its logs to one stream, so a well-formed entry of another logger (`tls`,
//! `admin`, `http.handlers.reverse_proxy`, or no `logger` and no `status`, as its startup
//! messages) is [filtered](crate::format::FilterReason::NotAccessLog). An access-log entry
//! without `status` is malformed.

use std::borrow::Cow;

use super::json::Json;
use super::lex::Decimal;
use super::time::{parse_clf, parse_iso8601};
use super::{ErrorKind, FilterReason, ParseError, Parsed, Record, Timestamp};

/// The unit of Caddy's `duration` field (`duration_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DurationUnit {
    Seconds,
    Millis,
    Nanos,
}

impl DurationUnit {
    /// Power of ten from this unit to nanoseconds.
    const fn scale(self) -> i32 {
        match self {
            Self::Seconds => 9,
            Self::Millis => 6,
            Self::Nanos => 0,
        }
    }
}

const ACCESS_LOGGER: &[u8] = b"http.log.access";

/// Parses one Caddy JSON line.
pub(crate) fn parse(line: &[u8], unit: DurationUnit) -> Result<Parsed<'_>, ParseError> {
    let mut record = Record::default();
    let mut logger: Option<Cow<'_, [u8]>> = None;
    let mut status_seen = false;
    let mut json = Json::new(line);
    json.object(|json, key| {
        let at = json.pos();
        match key {
            b"ts" => record.timestamp = timestamp(json, at)?,
            b"logger" => logger = json.string()?,
            b"status" => {
                record.status = json.status()?;
                status_seen = record.status.is_some();
            }
            b"size" => record.bytes_sent = json.unsigned()?,
            b"duration" => record.duration_ns = duration(json, unit, at)?,
            b"request" if json.at_string() => json.skip()?,
            b"request" => json.object(|json, key| {
                match key {
                    b"method" => record.method = json.string()?,
                    b"uri" => record.target = json.string()?,
                    b"proto" => record.protocol = json.string()?,
                    b"host" => record.host = json.string()?,
                    _ => json.skip()?,
                }
                Ok(())
            })?,
            _ => json.skip()?,
        }
        Ok(())
    })?;
    json.finish()?;
    let is_access = match logger.as_deref() {
        Some(name) => {
            name.starts_with(ACCESS_LOGGER)
                && matches!(name.get(ACCESS_LOGGER.len()), None | Some(b'.'))
        }
        None => status_seen,
    };
    if !is_access {
        return Ok(Parsed::Filtered(FilterReason::NotAccessLog));
    }
    if !status_seen {
        return Err(ParseError::new(
            ErrorKind::MissingField { field: "status" },
            0,
        ));
    }
    Ok(Parsed::Record(record))
}

fn timestamp(json: &mut Json<'_>, at: usize) -> Result<Option<Timestamp>, ParseError> {
    let invalid = ParseError::new(ErrorKind::Timestamp, at);
    if json.at_string() {
        return match json.string()? {
            None => Ok(None),
            Some(text) => parse_iso8601(&text)
                .or_else(|| parse_clf(&text))
                .map(Some)
                .ok_or(invalid),
        };
    }
    json.number_as(ErrorKind::Timestamp, |text| {
        let value = Decimal::parse(text).filter(|d| !d.negative)?;
        // Seconds up to year 5138, then milliseconds, microseconds, nanoseconds.
        let whole = value.scaled_magnitude(0)?;
        let scale = match whole {
            0..100_000_000_000 => 9,
            100_000_000_000..100_000_000_000_000 => 6,
            100_000_000_000_000..100_000_000_000_000_000 => 3,
            _ => 0,
        };
        let nanos = i64::try_from(value.scaled_magnitude(scale)?).ok()?;
        Some(Timestamp::from_unix_nanos(nanos))
    })
}

fn duration(json: &mut Json<'_>, unit: DurationUnit, at: usize) -> Result<Option<u64>, ParseError> {
    if json.at_string() {
        return match json.string()? {
            None => Ok(None),
            Some(text) => go_duration(&text).ok_or(ParseError::new(ErrorKind::Duration, at)),
        };
    }
    json.duration(unit.scale())
}

/// A Go `time.Duration` string (`1h2m3.5s`, `350µs`, `-1.5s`) as nanoseconds; negative is
/// `Some(None)`.
fn go_duration(text: &[u8]) -> Option<Option<u64>> {
    let (negative, mut rest) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if rest == b"0" {
        return Some(Some(0));
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let unit_len = rest[number_len..]
            .iter()
            .take_while(|b| !b.is_ascii_digit() && **b != b'.')
            .count();
        let number = Decimal::parse(&rest[..number_len])?;
        let (scale, factor) = match &rest[number_len..number_len + unit_len] {
            b"ns" => (0, 1),
            // `µs` (micro sign) and `μs` (Greek mu), as Go accepts both.
            b"us" | [0xC2, 0xB5, b's'] | [0xCE, 0xBC, b's'] => (3, 1),
            b"ms" => (6, 1),
            b"s" => (9, 1),
            b"m" => (9, 60),
            b"h" => (9, 3600),
            _ => return None,
        };
        let part = number.scaled_magnitude(scale)?.checked_mul(factor)?;
        total = total.checked_add(part)?;
        rest = &rest[number_len + unit_len..];
    }
    Some((!negative || total == 0).then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Status;
    use crate::format::test_helpers::{record, text};

    #[test]
    fn exporter_test_line() {
        let line = br#"{"level":"info","ts":1726651920.3685553,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"x.x.x.x","remote_port":"50440","client_ip":"x.x.x.x","proto":"HTTP/2.0","method":"GET","host":"foo.tld","uri":"/prometheus/decode.go","headers":{"User-Agent":["facebookexternalhit/1.1"],"Accept":["*/*"]},"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"git.xsfx.dev"}},"bytes_read":0,"user_id":"","duration":0.003550188,"size":0,"status":200,"resp_headers":{"Server":["Caddy"],"Alt-Svc":["h3=\":443\"; ma=2592000"],"Content-Length":[""]}}"#;
        let r = record(parse(line, DurationUnit::Seconds));
        assert_eq!(
            r.timestamp,
            Some(Timestamp::from_unix_nanos(1_726_651_920_368_555_300))
        );
        assert_eq!(text(&r.method), Some("GET"));
        assert_eq!(text(&r.target), Some("/prometheus/decode.go"));
        assert_eq!(text(&r.protocol), Some("HTTP/2.0"));
        assert_eq!(text(&r.host), Some("foo.tld"));
        assert_eq!(r.duration_ns, Some(3_550_188));
        assert_eq!(r.bytes_sent, Some(0));
        assert_eq!(r.status, Some(Status::new(200)));
    }

    #[test]
    fn duration_units_and_go_strings() {
        let line = br#"{"logger":"http.log.access","duration":3550188,"status":0}"#;
        let r = record(parse(line, DurationUnit::Nanos));
        assert_eq!(
            (r.duration_ns, r.status),
            (Some(3_550_188), Some(Status::new(0)))
        );
        let line = br#"{"logger":"http.log.access","duration":3.5,"status":200}"#;
        assert_eq!(
            record(parse(line, DurationUnit::Millis)).duration_ns,
            Some(3_500_000)
        );
        let line = br#"{"logger":"http.log.access","duration":"1m2.5s","status":200}"#;
        assert_eq!(
            record(parse(line, DurationUnit::Seconds)).duration_ns,
            Some(62_500_000_000)
        );
        assert_eq!(go_duration("350µs".as_bytes()), Some(Some(350_000)));
        assert_eq!(go_duration(b"50ms"), Some(Some(50_000_000)));
        assert_eq!(go_duration(b"1h0m0s"), Some(Some(3_600_000_000_000)));
        assert_eq!(go_duration(b"-1.5s"), Some(None));
        assert_eq!(go_duration(b"0"), Some(Some(0)));
        assert_eq!(go_duration(b"5"), None);
        assert_eq!(go_duration(b"5d"), None);
        assert_eq!(go_duration(b""), None);
    }

    #[test]
    fn time_formats() {
        let at = |ts: &str| {
            let line = format!(r#"{{"ts":{ts},"logger":"http.log.access.a","status":200}}"#);
            record(parse(line.as_bytes(), DurationUnit::Seconds))
                .timestamp
                .map(Timestamp::unix_nanos)
        };
        let expected = Some(1_741_521_600_500_000_000);
        assert_eq!(at("1741521600.5"), expected);
        assert_eq!(at("1741521600500.0"), expected);
        assert_eq!(at("1741521600500000000"), expected);
        assert_eq!(at(r#""2025-03-09T12:00:00.500Z""#), expected);
        assert_eq!(at(r#""2025-03-09T13:00:00.500+0100""#), expected);
        assert_eq!(
            at(r#""09/Mar/2025:12:00:00 +0000""#),
            Some(1_741_521_600_000_000_000)
        );
    }

    #[test]
    fn other_loggers_are_filtered_and_access_without_status_is_malformed() {
        for line in [
            &br#"{"level":"warn","ts":1741521600.1,"logger":"tls","msg":"stapling OCSP"}"#[..],
            br#"{"level":"info","ts":1741521600.1,"msg":"using config from file","file":"/etc/caddy/Caddyfile"}"#,
            br#"{"level":"error","ts":1741521600.1,"logger":"http.log.error.log0","msg":"dial tcp","status":502}"#,
            br#"{"level":"info","logger":"http.log.accessx","status":200}"#,
        ] {
            assert_eq!(parse(line, DurationUnit::Seconds), Ok(Parsed::Filtered(FilterReason::NotAccessLog)));
        }
        let line = br#"{"logger":"http.log.access.log0","msg":"handled request"}"#;
        assert_eq!(
            parse(line, DurationUnit::Seconds),
            Err(ParseError::new(
                ErrorKind::MissingField { field: "status" },
                0
            ))
        );
        let line = br#"{"logger":"tls","msg":"x""#;
        assert_eq!(
            parse(line, DurationUnit::Seconds).unwrap_err().kind,
            ErrorKind::Truncated
        );
    }
}

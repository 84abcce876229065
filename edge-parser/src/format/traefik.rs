//! Traefik access logs: `common` (Traefik's CLF) and `json`.
//!
//! # `common`
//!
//! ```text
//! <client> - <user> [<start>] "<method> <path> <protocol>" <status> <bytes> "<referer>" "<user-agent>" <count> "<router>" "<server URL>" <N>ms
//! ```
//!
//! The client may be a raw `X-Forwarded-For` list (`203.0.113.7, 10.0.0.2`), so the line is
//! anchored on `[`, not on spaces. Quoted fields escape `"` as `\"` but do not escape
//! backslashes, so a closing quote is ambiguous; an *opening* quote is not: it is the only kind
//! of `"` preceded by a space. The parser therefore reads the fixed-shape fields from the right
//! (`<N>ms`, server URL, router, count), finds the user-agent and referer by their opening
//! quotes, and reads the left part up to the bytes field. The user agent and referer are
//! checked but not extracted. The server URL names a server, not a service, so
//! [`Record::service`] stays empty; a bare `-` URL (older Traefik) is accepted. The duration is
//! whole milliseconds, truncated by Traefik: `0ms` is any request under 1 ms, and a dropped
//! `Duration` field also prints `0ms`.
//!
//! # `json`
//!
//! One logrus JSON object per line, every key optional (`fields.defaultMode: drop` is common).
//! Read: `StartUTC` (else `StartLocal`), `RequestMethod`, `RequestPath`, `RequestProtocol`,
//! `RequestHost`, `DownstreamStatus`, `DownstreamContentSize`, `Duration` (ns),
//! `OriginDuration` (ns), `OriginStatus`, `RetryAttempts`, `RouterName`, `ServiceName`, and the
//! trace id from `TraceId` (Traefik's tracing on) or else `request_Traceparent` (the client's
//! header, kept with `accessLog.fields.headers.names.traceparent=keep`). A request Traefik
//! answered itself logs `OriginStatus: 0` and `OriginDuration: 0`: both are then missing, and an
//! `OriginStatus` of `0` alone means no upstream status. Any other key, header fields and v2's
//! object-valued `ServiceURL` included, is skipped. An object with none of these keys (Traefik's
//! own log lines when both logs share stdout) is [`ErrorKind::Foreign`].

use std::borrow::Cow;

use memchr::{memchr_iter, memrchr};

use super::json::Json;
use super::lex::{
    Cursor, contains, dash_or, non_dash, parse_status, parse_u64, split_request_strict,
    unescape_quote,
};
use super::record::{trace_id_of_hex, trace_id_of_traceparent};
use super::time::{parse_clf, parse_iso8601};
use super::{ErrorKind, ParseError, Record, Status, Timestamp};

const NANOS_PER_MILLI: u64 = 1_000_000;

/// Parses one Traefik `common` line.
pub(crate) fn parse_common(line: &[u8]) -> Result<Record<'_>, ParseError> {
    let left = parse_left(line)?;
    let right = parse_right(line, left.referer_open)?;
    check_header_fields(line, left.referer_open, right.user_agent_close)?;
    let request = left.request;
    Ok(Record {
        timestamp: left.timestamp,
        method: request.method.map(Cow::Borrowed),
        target: request.target.map(Cow::Borrowed),
        protocol: request.protocol.map(Cow::Borrowed),
        status: left.status,
        bytes_sent: left.bytes,
        duration_ns: Some(right.duration_ns),
        upstream_duration_ns: None,
        upstream_status: None,
        upstream_attempts: None,
        router: right.router.map(unescape_quote),
        service: None,
        host: None,
        trace_id: None,
    })
}

struct Left<'a> {
    timestamp: Option<Timestamp>,
    request: super::lex::RequestLine<'a>,
    status: Option<Status>,
    bytes: Option<u64>,
    /// Offset of the referer's opening quote.
    referer_open: usize,
}

/// `<client> - <user> [<ts>] "<request>" <status> <bytes> ` up to the referer's quote.
///
/// The first `[` preceded by a space opens the timestamp. (A raw `X-Forwarded-For` client
/// value holding a `[` would hide it; accepting a later `[` instead would accept lines glued
/// together by interleaved writes, which matter more.)
fn parse_left(line: &[u8]) -> Result<Left<'_>, ParseError> {
    let Some(open) = memchr_iter(b'[', line).find(|&open| open > 0 && line[open - 1] == b' ')
    else {
        // `<client> - <user> ` cut before the timestamp, or not a CLF line at all.
        return Err(if contains(line, b" - ") {
            ParseError::new(ErrorKind::Truncated, line.len())
        } else {
            ParseError::new(
                ErrorKind::Syntax {
                    expected: "'<client> - <user> [<timestamp>]'",
                },
                0,
            )
        });
    };
    parse_from_timestamp(line, open)
}

fn parse_from_timestamp(line: &[u8], open: usize) -> Result<Left<'_>, ParseError> {
    if !contains(&line[..open], b" - ") {
        return Err(ParseError::new(
            ErrorKind::Syntax {
                expected: "'<client> - <user>'",
            },
            0,
        ));
    }
    let mut cur = Cursor::at(line, open + 1);
    let timestamp = if cur.rest().starts_with(b"-]") {
        cur.advance(1);
        None
    } else {
        let start = cur.pos();
        let text = cur.until(b']')?;
        Some(parse_clf(text).ok_or(ParseError::new(ErrorKind::Timestamp, start))?)
    };
    cur.tag(b"] \"", "'] \"'")?;
    let request_start = cur.pos();
    // The request's closing quote is the first `"` followed by ` <status> <bytes> "`; a raw
    // `"` in a query string makes an earlier quote a false candidate.
    let mut first_error = None;
    for close in memchr_iter(b'"', cur.rest()) {
        let close = request_start + close;
        match status_and_bytes(line, close) {
            Ok((status, bytes, referer_open)) => {
                let text = &line[request_start..close];
                let request = split_request_strict(text)
                    .ok_or(ParseError::new(ErrorKind::Request, request_start))?;
                return Ok(Left {
                    timestamp,
                    request,
                    status,
                    bytes,
                    referer_open,
                });
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(first_error.unwrap_or(ParseError::new(ErrorKind::Truncated, line.len())))
}

/// ` <status> <bytes> "` after the request's closing quote at `close`.
fn status_and_bytes(
    line: &[u8],
    close: usize,
) -> Result<(Option<Status>, Option<u64>, usize), ParseError> {
    let mut cur = Cursor::at(line, close + 1);
    cur.byte(b' ', "' ' after the request")?;
    let start = cur.pos();
    let status =
        dash_or(cur.token(), parse_status).ok_or(ParseError::new(ErrorKind::Status, start))?;
    cur.byte(b' ', "' ' after the status")?;
    let start = cur.pos();
    let bytes = dash_or(cur.token(), parse_u64).ok_or(ParseError::new(ErrorKind::Number, start))?;
    cur.byte(b' ', "' ' after the size")?;
    let referer_open = cur.pos();
    cur.byte(b'"', "'\"' before the referer")?;
    Ok((status, bytes, referer_open))
}

struct Right<'a> {
    duration_ns: u64,
    router: Option<&'a [u8]>,
    /// Offset of the user agent's closing quote.
    user_agent_close: usize,
}

/// The last `"` before `end` that is preceded by a space: an opening quote.
fn prev_open_quote(line: &[u8], mut end: usize) -> Option<usize> {
    while let Some(q) = memrchr(b'"', &line[..end]) {
        if q > 0 && line[q - 1] == b' ' {
            return Some(q);
        }
        end = q;
    }
    None
}

/// `<count> "<router>" "<url>" <N>ms`, read from the end of the line.
fn parse_right(line: &[u8], min: usize) -> Result<Right<'_>, ParseError> {
    let syntax = |expected, at| ParseError::new(ErrorKind::Syntax { expected }, at);
    let len = line.len();
    // Anything else at the end is almost always a line cut short.
    let Some(ms) = line.strip_suffix(b"ms") else {
        return Err(ParseError::new(ErrorKind::Truncated, len));
    };
    let space = memrchr(b' ', ms)
        .filter(|&s| s > min)
        .ok_or(syntax("' <N>ms'", 0))?;
    let millis =
        parse_u64(&ms[space + 1..]).ok_or(ParseError::new(ErrorKind::Duration, space + 1))?;
    let duration_ns = millis
        .checked_mul(NANOS_PER_MILLI)
        .ok_or(ParseError::new(ErrorKind::Duration, space + 1))?;
    // Server URL: quoted, or a bare `-`.
    let url_open = if line[..space].ends_with(b" -") {
        space - 1
    } else if line[space - 1] == b'"' {
        prev_open_quote(line, space - 1)
            .filter(|&q| q > min)
            .ok_or(syntax("quoted server URL", space))?
    } else {
        return Err(syntax("server URL", space));
    };
    // Router: `"<router>" ` before the URL.
    if url_open < 3 || &line[url_open - 2..url_open] != b"\" " {
        return Err(syntax("quoted router name", url_open));
    }
    let router_close = url_open - 2;
    let router_open = prev_open_quote(line, router_close)
        .filter(|&q| q > min)
        .ok_or(syntax("quoted router name", router_close))?;
    // Request count: ` <count> ` between the user agent and the router.
    let count_end = router_open - 1;
    let count_space = memrchr(b' ', &line[..count_end])
        .filter(|&s| s > min)
        .ok_or(syntax("request count", count_end))?;
    let count = &line[count_space + 1..count_end];
    if dash_or(count, parse_u64).is_none() {
        return Err(ParseError::new(ErrorKind::Number, count_space + 1));
    }
    let user_agent_close = count_space - 1;
    if line[user_agent_close] != b'"' {
        return Err(syntax("quoted user agent", user_agent_close));
    }
    Ok(Right {
        duration_ns,
        router: non_dash(&line[router_open + 1..router_close]),
        user_agent_close,
    })
}

/// `"<referer>" "<user-agent>"` between `referer_open` and `user_agent_close`: exactly two
/// opening quotes, the first at `referer_open`.
fn check_header_fields(
    line: &[u8],
    referer_open: usize,
    user_agent_close: usize,
) -> Result<(), ParseError> {
    let bad = ParseError::new(
        ErrorKind::Syntax {
            expected: "'\"<referer>\" \"<user-agent>\"'",
        },
        referer_open,
    );
    let ua_open = prev_open_quote(line, user_agent_close)
        .filter(|&q| q > referer_open + 2)
        .ok_or(bad)?;
    if &line[ua_open - 2..ua_open] != b"\" "
        || prev_open_quote(line, ua_open - 2) != Some(referer_open)
    {
        return Err(bad);
    }
    Ok(())
}

/// Parses one Traefik `json` line.
pub(crate) fn parse_json(line: &[u8]) -> Result<Record<'_>, ParseError> {
    let mut record = Record::default();
    let mut start_local = None;
    let mut origin_duration = None;
    let mut origin_status = None;
    let mut traceparent = None;
    let mut retries = None;
    let mut known = false;
    let mut json = Json::new(line);
    json.object(|json, key| {
        let at = json.pos();
        match json_key(key) {
            Key::DownstreamStatus => record.status = json.status()?,
            Key::DownstreamContentSize => record.bytes_sent = json.unsigned()?,
            Key::Duration => record.duration_ns = json.duration(0)?,
            Key::OriginDuration => origin_duration = json.duration(0)?,
            Key::OriginStatus => origin_status = json.status()?,
            Key::RequestMethod => record.method = json.string()?,
            Key::RequestPath => record.target = json.string()?,
            Key::RequestProtocol => record.protocol = json.string()?,
            Key::RequestHost => record.host = json.string()?,
            Key::RouterName => record.router = json.string()?,
            Key::ServiceName => record.service = json.string()?,
            Key::StartUtc => record.timestamp = timestamp(json.string()?, at)?,
            // Parsed only if `StartUTC` is missing (it usually follows).
            Key::StartLocal => start_local = json.string()?.map(|text| (text, at)),
            Key::RetryAttempts => retries = json.unsigned()?,
            Key::TraceId => {
                record.trace_id = json.string()?.and_then(|id| trace_id_of_hex(&id));
            }
            Key::Traceparent => {
                traceparent = json
                    .string()?
                    .and_then(|value| trace_id_of_traceparent(&value));
            }
            Key::Other => return json.skip(),
        }
        known = true;
        Ok(())
    })?;
    json.finish()?;
    if !known {
        return Err(ParseError::new(ErrorKind::Foreign, 0));
    }
    // Traefik's own trace continues the client's, so the two agree when both are logged.
    record.trace_id = record.trace_id.or(traceparent);
    if record.timestamp.is_none() {
        if let Some((text, at)) = start_local {
            record.timestamp = timestamp(Some(text), at)?;
        }
    }
    // Traefik answered itself (no router, redirect, auth failure): 0 and 0 mean "no upstream".
    let answered_itself = origin_status == Some(Status::new(0)) && origin_duration == Some(0);
    if !answered_itself {
        record.upstream_duration_ns = origin_duration;
    }
    record.upstream_status = origin_status.filter(|s| s.code() != 0);
    record.upstream_attempts = origin_status.map(|_| {
        if answered_itself {
            0
        } else {
            let retries = u16::try_from(retries.unwrap_or(0)).unwrap_or(u16::MAX);
            retries.saturating_add(1)
        }
    });
    Ok(record)
}

/// The Traefik JSON keys a record is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    DownstreamStatus,
    DownstreamContentSize,
    Duration,
    OriginDuration,
    OriginStatus,
    RequestMethod,
    RequestPath,
    RequestProtocol,
    RequestHost,
    RouterName,
    ServiceName,
    StartUtc,
    StartLocal,
    RetryAttempts,
    TraceId,
    Traceparent,
    Other,
}

/// Dispatch on the length first: most keys of a line are not wanted and differ in length.
#[inline]
fn json_key(key: &[u8]) -> Key {
    match (key.len(), key) {
        (7, b"TraceId") => Key::TraceId,
        (8, b"Duration") => Key::Duration,
        (8, b"StartUTC") => Key::StartUtc,
        (10, b"RouterName") => Key::RouterName,
        (10, b"StartLocal") => Key::StartLocal,
        (11, b"RequestPath") => Key::RequestPath,
        (11, b"RequestHost") => Key::RequestHost,
        (11, b"ServiceName") => Key::ServiceName,
        (12, b"OriginStatus") => Key::OriginStatus,
        (13, b"RequestMethod") => Key::RequestMethod,
        (13, b"RetryAttempts") => Key::RetryAttempts,
        (14, b"OriginDuration") => Key::OriginDuration,
        (15, b"RequestProtocol") => Key::RequestProtocol,
        (16, b"DownstreamStatus") => Key::DownstreamStatus,
        (19, b"request_Traceparent") => Key::Traceparent,
        (21, b"DownstreamContentSize") => Key::DownstreamContentSize,
        _ => Key::Other,
    }
}

fn timestamp(text: Option<Cow<'_, [u8]>>, at: usize) -> Result<Option<Timestamp>, ParseError> {
    match text {
        None => Ok(None),
        Some(text) => parse_iso8601(&text)
            .map(Some)
            .ok_or(ParseError::new(ErrorKind::Timestamp, at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_helpers::text;
    use vantage_instrument::trace_context::TraceId;

    #[test]
    fn json_trace_id_from_traefiks_tracing_or_from_the_kept_traceparent_header() {
        // Traefik 3.7 with `accessLog.fields.headers.names.traceparent: keep`.
        let kept = br#"{"DownstreamStatus":502,"Duration":308599,"OriginDuration":212809,"OriginStatus":502,"RequestMethod":"GET","RequestPath":"/a/1","RetryAttempts":0,"RouterName":"app@file","request_Traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","time":"2026-12-06T22:10:55Z"}"#;
        let id = TraceId::from_u128(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);
        assert_eq!(parse_json(kept).unwrap().trace_id, id);
        // Its own trace id comes first (it continues the client's trace, so they agree).
        let both = br#"{"DownstreamStatus":200,"TraceId":"4bf92f3577b34da6a3ce929d0e0e4736","request_Traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#;
        assert_eq!(
            parse_json(both).unwrap().trace_id,
            TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
        );
        // A client's broken header is no trace id, and the line is still a request.
        let broken = br#"{"DownstreamStatus":200,"request_Traceparent":"00-xyz"}"#;
        let record = parse_json(broken).unwrap();
        assert_eq!(
            (record.trace_id, record.status),
            (None, Some(Status::new(200)))
        );
    }

    #[test]
    fn common_line_from_the_formatter_tests() {
        let line = br#"10.0.0.1 - - [10/Nov/2009:23:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "foo \" bar" 1 "test@file" "http://127.0.0.1:8080" 1ms"#;
        let r = parse_common(line).unwrap();
        assert_eq!(r.timestamp, Some(Timestamp::from_unix_secs(1_257_894_000)));
        assert_eq!(text(&r.method), Some("GET"));
        assert_eq!(text(&r.target), Some("/"));
        assert_eq!(text(&r.protocol), Some("HTTP/1.1"));
        assert_eq!(r.status, Some(Status::new(200)));
        assert_eq!(r.bytes_sent, Some(0));
        assert_eq!(r.duration_ns, Some(1_000_000));
        assert_eq!(text(&r.router), Some("test@file"));
        assert_eq!(r.service, None);
    }

    #[test]
    fn common_line_with_absent_fields() {
        let line = br#"10.0.0.1 - Client [10/Nov/2009:23:00:00 +0000] "GET /foo http" - - "-" "-" 0 "-" "-" 123000ms"#;
        let r = parse_common(line).unwrap();
        assert_eq!(r.status, None);
        assert_eq!(r.bytes_sent, None);
        assert_eq!(r.router, None);
        assert_eq!(r.duration_ns, Some(123_000_000_000));
        let line = br#"10.0.0.1 - - [-] "- - -" - - "-" "-" - "-" "-" 0ms"#;
        let r = parse_common(line).unwrap();
        assert_eq!(r.timestamp, None);
        assert_eq!((r.method, r.target, r.protocol), (None, None, None));
    }

    #[test]
    fn common_line_with_forwarded_for_list_router_spaces_and_bare_dash_url() {
        let line = br#"203.0.113.7, 10.0.0.2 - - [09/Mar/2018:10:51:32 +0000] "GET / HTTP/1.1" 401 17 "-" "Go-http-client/1.1" 1 "testRouter with space" - 0ms"#;
        let r = parse_common(line).unwrap();
        assert_eq!(text(&r.router), Some("testRouter with space"));
        assert_eq!(r.status, Some(Status::new(401)));
        let line = br#"2001:db8::1 - - [09/Mar/2025:12:00:00 +0000] "GET /a HTTP/2.0" 200 5 "-" "-" 7 "parent@file -> child\"q\"@file" "http://10.0.0.5:80" 2ms"#;
        let r = parse_common(line).unwrap();
        assert_eq!(text(&r.router), Some("parent@file -> child\"q\"@file"));
    }

    #[test]
    fn common_user_agent_ending_in_backslash_is_accepted() {
        let line = br#"10.0.0.1 - - [10/Nov/2009:23:00:00 +0000] "GET / HTTP/1.1" 200 0 "a\" "x\" 1 "r@file" "-" 3ms"#;
        let r = parse_common(line).unwrap();
        assert_eq!(text(&r.router), Some("r@file"));
        assert_eq!(r.duration_ns, Some(3_000_000));
    }

    #[test]
    fn common_interleaved_and_truncated_lines_are_malformed() {
        let a = r#"10.0.0.1 - - [10/Nov/2009:23:00:00 +0000] "GET /a HTTP/1.1" 200 0 "-" "-" 1 "r@file" "http://10.0.0.5:80" 3ms"#;
        for cut in 1..a.len() - 1 {
            let truncated = &a.as_bytes()[..cut];
            assert!(parse_common(truncated).is_err(), "{}", &a[..cut]);
            let glued = format!("{}{a}", &a[..cut]);
            if cut > 13 {
                assert!(parse_common(glued.as_bytes()).is_err(), "{glued}");
            }
        }
    }

    #[test]
    fn common_errors_name_the_problem() {
        let err = parse_common(br#"10.0.0.1 - - [10/Nov/2009:23:00:00 +0000] "GET / HTTP/1.1" 2x0 0 "-" "-" 1 "r" "u" 1ms"#).unwrap_err();
        assert_eq!(err, ParseError::new(ErrorKind::Status, 59));
        let err = parse_common(br#"10.0.0.1 - - [10/Nov/2009:25:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "-" 1 "r" "u" 1ms"#).unwrap_err();
        assert_eq!(err, ParseError::new(ErrorKind::Timestamp, 14));
        let err = parse_common(br#"10.0.0.1 - - [10/Nov/2009:23:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "-" 1 "r" "u" 1s"#).unwrap_err();
        assert_eq!(err, ParseError::new(ErrorKind::Truncated, 85));
        let err = parse_common(b"no timestamp here").unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::Syntax {
                expected: "'<client> - <user> [<timestamp>]'"
            }
        );
        let err = parse_common(b"10.0.0.1 - - ").unwrap_err();
        assert_eq!(err, ParseError::new(ErrorKind::Truncated, 13));
    }

    #[test]
    fn json_v3_line() {
        let line = br#"{"ClientAddr":"1.2.3.4:63251","ClientHost":"1.2.3.4","ClientPort":"63251","ClientUsername":"-","DownstreamContentSize":185,"DownstreamStatus":200,"Duration":8764859,"OriginContentSize":185,"OriginDuration":8147549,"OriginStatus":200,"Overhead":617310,"RequestAddr":"ns.example.com","RequestHost":"ns.example.com","RequestMethod":"GET","RequestPath":"/a?b=1\u0026c=2","RequestPort":"-","RequestProtocol":"HTTP/2.0","RouterName":"https-ns@docker","ServiceAddr":"172.21.0.3:8564","ServiceName":"ns-ns@docker","ServiceURL":"http://172.21.0.3:8564","StartLocal":"2024-12-29T12:42:41.965891254+01:00","StartUTC":"2024-12-29T11:42:41.965891254Z","TLSVersion":"1.2","entryPointName":"https","level":"info","msg":"","time":"2024-12-29T12:42:41+01:00"}"#;
        let r = parse_json(line).unwrap();
        assert_eq!(
            r.timestamp,
            Some(Timestamp::from_unix_nanos(1_735_472_561_965_891_254))
        );
        assert_eq!(r.status, Some(Status::new(200)));
        assert_eq!(r.bytes_sent, Some(185));
        assert_eq!(r.duration_ns, Some(8_764_859));
        assert_eq!(r.upstream_duration_ns, Some(8_147_549));
        assert_eq!(r.upstream_status, Some(Status::new(200)));
        assert_eq!(text(&r.target), Some("/a?b=1&c=2"));
        assert!(matches!(r.target, Some(Cow::Owned(_))));
        assert!(matches!(r.router, Some(Cow::Borrowed(_))));
        assert_eq!(text(&r.router), Some("https-ns@docker"));
        assert_eq!(text(&r.service), Some("ns-ns@docker"));
        assert_eq!(text(&r.host), Some("ns.example.com"));
        assert_eq!(r.upstream_attempts, Some(1));
    }

    #[test]
    fn json_upstream_attempts_count_retries_and_none_when_traefik_answered_itself() {
        let attempts = |line: &[u8]| parse_json(line).unwrap().upstream_attempts;
        let retried = br#"{"DownstreamStatus":200,"Duration":9000,"OriginDuration":8000,"OriginStatus":200,"RetryAttempts":2}"#;
        assert_eq!(attempts(retried), Some(3));
        // A middleware's answer (rate limit, auth, redirect): Traefik tried no upstream.
        let itself = br#"{"DownstreamStatus":429,"Duration":52000,"OriginDuration":0,"OriginStatus":0,"RetryAttempts":0}"#;
        assert_eq!(attempts(itself), Some(0));
        // The client left while the upstream was working: one attempt.
        let cancelled =
            br#"{"DownstreamStatus":499,"Duration":52000,"OriginDuration":41000,"OriginStatus":0}"#;
        assert_eq!(attempts(cancelled), Some(1));
        // `fields.defaultMode: drop` without OriginStatus: the log does not say.
        assert_eq!(
            attempts(br#"{"DownstreamStatus":200,"Duration":9000}"#),
            None
        );
        let huge = br#"{"DownstreamStatus":200,"OriginDuration":1,"OriginStatus":200,"RetryAttempts":99999999999}"#;
        assert_eq!(attempts(huge), Some(u16::MAX));
    }

    #[test]
    fn json_v2_service_url_object_and_local_start_are_handled() {
        let line = br#"{"Duration":433331475,"RouterName":"images@consulcatalog","ServiceURL":{"Scheme":"http","Opaque":"","User":null,"Host":"1.1.1.1:20594","ForceQuery":false},"StartLocal":"2021-11-30T23:00:00.201712623+01:00","downstream_Content-Type":"text/plain; charset=utf-8"}"#;
        let r = parse_json(line).unwrap();
        assert_eq!(r.duration_ns, Some(433_331_475));
        assert_eq!(
            r.timestamp,
            Some(Timestamp::from_unix_nanos(1_638_309_600_201_712_623))
        );
        assert_eq!(r.status, None);
    }

    #[test]
    fn json_traefik_answered_itself_has_no_upstream() {
        let line = br#"{"DownstreamStatus":404,"Duration":52000,"OriginDuration":0,"OriginStatus":0,"Overhead":52000}"#;
        let r = parse_json(line).unwrap();
        assert_eq!((r.upstream_duration_ns, r.upstream_status), (None, None));
        // Client gave up: upstream was reached but sent no status.
        let line =
            br#"{"DownstreamStatus":499,"Duration":52000,"OriginDuration":41000,"OriginStatus":0}"#;
        let r = parse_json(line).unwrap();
        assert_eq!(
            (r.upstream_duration_ns, r.upstream_status),
            (Some(41_000), None)
        );
    }

    #[test]
    fn json_foreign_and_broken_lines_are_malformed() {
        let err = parse_json(br#"{"level":"error","msg":"Error while peeking first byte","time":"2025-03-09T12:00:00Z"}"#).unwrap_err();
        assert_eq!(err, ParseError::new(ErrorKind::Foreign, 0));
        let err = parse_json(br#"{"DownstreamStatus":200,"Duration":5"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Truncated);
        let err = parse_json(br#"{"DownstreamStatus":"200"}"#).unwrap_err();
        assert_eq!(err, ParseError::new(ErrorKind::Status, 20));
        let err = parse_json(br#"{"StartUTC":"yesterday"}"#).unwrap_err();
        assert_eq!(err, ParseError::new(ErrorKind::Timestamp, 12));
    }
}

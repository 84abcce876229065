//! HAProxy `option httplog`, raw (`log stdout format raw`) or behind a syslog header.
//!
//! ```text
//! %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq [{%hr} [{%hs}]] "%r"
//! ```
//!
//! - `[%tr]` is local time with milliseconds and no zone; it is taken as UTC.
//! - Timers are milliseconds; `-1` means the phase was never reached, so the latency is
//!   missing when `Ta` is `-1`; `Ta` may carry a `+` (`option logasap`). The duration is `Ta`
//!   (HAProxy ≤ 1.8's `Tt` in the same position), the upstream duration `Tr`.
//! - The status may be `-1`; it is kept. The backend (`%b`) is the [`Record::router`].
//! - `"<BADREQ>"` (an invalid request) leaves method and target empty; `#XX` escapes in the
//!   request line are undone. HAProxy writes `"`, `#`, `{`, `|` and `}` in the request line
//!   and header captures as `#XX`, so a raw `"` (or `{` in a capture) there is malformed: two
//!   lines glued together by interleaved writes. HAProxy truncates lines at its `log ... len` limit (1024 bytes
//!   by default), which can cut the request's closing quote: a line of at least
//!   [`TRUNCATED_LINE_LEN`] bytes without it is accepted with the request as far as it goes;
//!   a shorter one is a cut write and malformed.
//! - Header captures (`{...}`) are skipped when present.
//!
//! Filtered lines: an `option tcplog` line (three timers `Tw/Tc/Tt`, then its own fields) in
//! either form, and in the syslog form any message that does not start like an HTTP log
//! (`<addr>:<port> [`): another program's message or HAProxy's own notices
//! (`Server be/s1 is DOWN`), whatever the tag says (HAProxy's `log-tag` can change it). A
//! message that is only the start of an address (`10.0.1.2:33`) or is empty is a cut line:
//! malformed.

use std::borrow::Cow;

use memchr::memchr;

use super::lex::{Cursor, parse_status, parse_u64, split_request_lenient, unescape_haproxy};
use super::syslog::parse_header;
use super::time::parse_clf_millis;
use super::{ErrorKind, FilterReason, ParseError, Parsed, Record};

/// A line at least this long whose request lacks its closing quote was truncated by HAProxy
/// (default `len` 1024, less a syslog header) rather than cut in the middle of a write.
pub const TRUNCATED_LINE_LEN: usize = 1000;

const NANOS_PER_MILLI: u64 = 1_000_000;

/// Parses a line of `log stdout format raw` output.
pub(crate) fn parse_raw(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    parse_body(line, 0)
}

/// Parses a line with a syslog header.
pub(crate) fn parse_syslog(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let header = parse_header(line)?;
    let message = &line[header.message..];
    if looks_like_http_log(message) {
        return parse_body(line, header.message);
    }
    // A message that is nothing but the start of `<addr>:<port> [` is a cut HTTP log.
    let address_like = message
        .iter()
        .take_while(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':'))
        .count();
    if address_like == message.len() || (address_like > 0 && &message[address_like..] == b" ") {
        return Err(ParseError::new(ErrorKind::Truncated, line.len()));
    }
    Ok(Parsed::Filtered(FilterReason::NotHttpLog))
}

/// `<addr>:<port> [`: the start of an HTTP (or TCP) log message.
fn looks_like_http_log(message: &[u8]) -> bool {
    let Some(space) = memchr(b' ', message) else {
        return false;
    };
    let address = &message[..space];
    memchr::memrchr(b':', address).is_some_and(|colon| {
        colon > 0
            && colon + 1 < address.len()
            && address[colon + 1..].iter().all(u8::is_ascii_digit)
    }) && message.get(space + 1) == Some(&b'[')
}

/// A timer: milliseconds, `-1` (never reached) as missing, an optional `+` (logasap).
fn timer(text: &[u8]) -> Option<Option<u64>> {
    let text = text.strip_prefix(b"+").unwrap_or(text);
    match text {
        [b'-', digits @ ..] => parse_u64(digits).map(|_| None),
        digits => parse_u64(digits)?.checked_mul(NANOS_PER_MILLI).map(Some),
    }
}

/// Whether `text` is `n` `/`-separated counters, each digits with an optional `+`.
fn counters(text: &[u8], n: usize) -> bool {
    let mut parts = 0;
    for part in text.split(|&b| b == b'/') {
        parts += 1;
        let digits = part.strip_prefix(b"+").unwrap_or(part);
        if parse_u64(digits).is_none() {
            return false;
        }
    }
    parts == n
}

/// The rest of an `option tcplog` line after its `Tw/Tc/Tt` timers:
/// ` %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`, to the end of the line.
fn is_tcp_log_tail(rest: &[u8]) -> bool {
    let mut fields = rest.split(|&b| b == b' ');
    let shape = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    );
    matches!(shape, (Some(b""), Some(bytes), Some(state), Some(conns), Some(queues), None)
        if parse_u64(bytes.strip_prefix(b"+").unwrap_or(bytes)).is_some()
            && state.len() == 2
            && counters(conns, 5)
            && counters(queues, 2))
}

fn parse_body(line: &[u8], start: usize) -> Result<Parsed<'_>, ParseError> {
    let mut cur = Cursor::at(line, start);
    let client = cur.token();
    if memchr(b':', client).is_none() {
        return Err(cur.error(ErrorKind::Syntax {
            expected: "'<client>:<port>'",
        }));
    }
    cur.tag(b" [", "' ['")?;
    let at = cur.pos();
    let timestamp =
        parse_clf_millis(cur.until(b']')?).ok_or(ParseError::new(ErrorKind::Timestamp, at))?;
    cur.tag(b"] ", "'] '")?;
    let _frontend = cur.token();
    cur.byte(b' ', "' ' after the frontend")?;
    let at = cur.pos();
    let backend_server = cur.token();
    let slash = memchr(b'/', backend_server).ok_or(ParseError::new(
        ErrorKind::Syntax {
            expected: "'<backend>/<server>'",
        },
        at,
    ))?;
    let backend = &backend_server[..slash];
    cur.byte(b' ', "' ' after the server")?;
    let at = cur.pos();
    let timers_text = cur.token();
    let mut timers = [None; 5];
    let mut count = 0;
    for part in timers_text.split(|&b| b == b'/') {
        let value = timer(part).ok_or(ParseError::new(ErrorKind::Duration, at))?;
        if count < timers.len() {
            timers[count] = value;
        }
        count += 1;
    }
    match count {
        5 => {}
        3 if is_tcp_log_tail(cur.rest()) => return Ok(Parsed::Filtered(FilterReason::NotHttpLog)),
        _ => {
            return Err(ParseError::new(
                ErrorKind::Syntax {
                    expected: "timers TR/Tw/Tc/Tr/Ta",
                },
                at,
            ));
        }
    }
    cur.byte(b' ', "' ' after the timers")?;
    let at = cur.pos();
    let status = parse_status(cur.token()).ok_or(ParseError::new(ErrorKind::Status, at))?;
    cur.byte(b' ', "' ' after the status")?;
    let at = cur.pos();
    let bytes = cur.token();
    let bytes = parse_u64(bytes.strip_prefix(b"+").unwrap_or(bytes))
        .ok_or(ParseError::new(ErrorKind::Number, at))?;
    cur.byte(b' ', "' ' after the size")?;
    let _request_cookie = cur.token();
    cur.byte(b' ', "' ' after the request cookie")?;
    let _response_cookie = cur.token();
    cur.byte(b' ', "' ' after the response cookie")?;
    let at = cur.pos();
    if cur.token().len() != 4 {
        return Err(ParseError::new(
            ErrorKind::Syntax {
                expected: "4-character termination state",
            },
            at,
        ));
    }
    cur.byte(b' ', "' ' after the termination state")?;
    let at = cur.pos();
    if !counters(cur.token(), 5) {
        return Err(ParseError::new(
            ErrorKind::Syntax {
                expected: "connection counters ac/fc/bc/sc/rc",
            },
            at,
        ));
    }
    cur.byte(b' ', "' ' after the connection counters")?;
    let at = cur.pos();
    if !counters(cur.token(), 2) {
        return Err(ParseError::new(
            ErrorKind::Syntax {
                expected: "queue positions sq/bq",
            },
            at,
        ));
    }
    cur.byte(b' ', "' ' after the queue positions")?;
    // Up to two header captures. HAProxy encodes `"#{|}` in them (and in the request line)
    // as `#XX`, so a raw `{` or `"` inside is two lines glued together.
    for _ in 0..2 {
        if cur.peek() != Some(b'{') {
            break;
        }
        cur.advance(1);
        let at = cur.pos();
        let capture = cur.until(b'}')?;
        if let Some(n) = memchr::memchr2(b'{', b'"', capture) {
            return Err(ParseError::new(
                ErrorKind::Syntax {
                    expected: "'}' closing the header capture",
                },
                at + n,
            ));
        }
        cur.tag(b"} ", "'} ' after a header capture")?;
    }
    cur.byte(b'"', "'\"' before the request")?;
    let request_start = cur.pos();
    let request_text = match cur.rest() {
        [text @ .., b'"'] => text,
        text if line.len() >= TRUNCATED_LINE_LEN => text,
        _ => return Err(ParseError::new(ErrorKind::Truncated, line.len())),
    };
    if let Some(n) = memchr(b'"', request_text) {
        return Err(ParseError::new(ErrorKind::Request, request_start + n));
    }
    let request = if request_text == b"<BADREQ>" {
        None
    } else {
        split_request_lenient(request_text)
    }
    .unwrap_or_default();
    let [_, _, _, upstream, total] = timers;
    Ok(Parsed::Record(Record {
        timestamp: Some(timestamp),
        method: request.method.map(Cow::Borrowed),
        target: request.target.map(unescape_haproxy),
        protocol: request.protocol.map(Cow::Borrowed),
        status: Some(status),
        bytes_sent: Some(bytes),
        duration_ns: total,
        upstream_duration_ns: upstream,
        upstream_status: None,
        upstream_attempts: None,
        router: Some(Cow::Borrowed(backend)),
        service: None,
        host: None,
        trace_id: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_helpers::{record, text};
    use crate::format::{Status, Timestamp};

    #[test]
    fn manual_example_with_captures_and_minimal_syslog_prefix() {
        let line = br#"haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#;
        let r = record(parse_syslog(line));
        assert_eq!(
            r.timestamp,
            Some(Timestamp::from_unix_nanos(1_233_922_454_655_000_000))
        );
        assert_eq!(text(&r.router), Some("static"));
        assert_eq!(r.duration_ns, Some(109_000_000));
        assert_eq!(r.upstream_duration_ns, Some(69_000_000));
        assert_eq!(r.status, Some(Status::new(200)));
        assert_eq!(r.bytes_sent, Some(2750));
        assert_eq!(text(&r.method), Some("GET"));
        assert_eq!(text(&r.target), Some("/index.html"));
        assert_eq!(text(&r.protocol), Some("HTTP/1.1"));
    }

    #[test]
    fn raw_tls_frontend_line() {
        let line = br#"78.40.125.71:36602 [29/Oct/2015:23:59:29.957] http-in~ httpd/backend1 2488/0/0/1313/3801 200 423 - - ---- 1/1/0/1/0 0/0 "GET /test.php HTTP/1.1""#;
        let r = record(parse_raw(line));
        assert_eq!(text(&r.router), Some("httpd"));
        assert_eq!(r.duration_ns, Some(3_801_000_000));
    }

    #[test]
    fn aborted_phases_badreq_and_negative_status() {
        let line = br#"Mar  9 12:00:00 lb1 haproxy[1712]: 2001:db8::1:51234 [09/Mar/2025:12:00:00.001] fe_http be_api/<NOSRV> 0/-1/-1/-1/+3 -1 +0 - - CH-- 1/1/0/0/0 0/0 "<BADREQ>""#;
        let r = record(parse_syslog(line));
        assert_eq!(r.status, Some(Status::new(-1)));
        assert_eq!(r.duration_ns, Some(3_000_000));
        assert_eq!(r.upstream_duration_ns, None);
        assert_eq!((r.method, r.target), (None, None));
        let line = br#"10.0.0.1:1 [09/Mar/2025:12:00:00.001] fe be/s1 0/0/0/-1/-1 504 0 - - sH-- 1/1/0/0/+1 0/0 "GET /a#20b HTTP/1.1""#;
        let r = record(parse_raw(line));
        assert_eq!(r.duration_ns, None);
        assert_eq!(text(&r.target), Some("/a b"));
    }

    #[test]
    fn tcp_logs_and_other_messages_are_filtered() {
        let tcp = br#"Mar  9 12:00:00 lb1 haproxy[1712]: 10.0.0.1:5000 [09/Mar/2025:12:00:00.001] fe_db be_db/db1 0/0/5007 212 -- 1/1/0/0/0 0/0"#;
        assert_eq!(
            parse_syslog(tcp),
            Ok(Parsed::Filtered(FilterReason::NotHttpLog))
        );
        let raw_tcp = &tcp[35..];
        assert_eq!(
            parse_raw(raw_tcp),
            Ok(Parsed::Filtered(FilterReason::NotHttpLog))
        );
        for line in [
            &b"Mar  9 12:00:00 lb1 haproxy[1712]: Server be_orders/orders2 is DOWN, reason: Layer4 timeout."[..],
            b"Mar  9 12:00:00 lb1 systemd[1]: Started haproxy.service.",
            b"Mar  9 12:00:00 lb1 kernel: [12.5] eth0: link up",
        ] {
            assert_eq!(parse_syslog(line), Ok(Parsed::Filtered(FilterReason::NotHttpLog)));
        }
    }

    #[test]
    fn syslog_messages_cut_in_the_address_are_truncated() {
        for line in [
            &b"Mar  9 12:00:00 lb1 haproxy[1712]: 10.0.1.2:33"[..],
            b"Mar  9 12:00:00 lb1 haproxy[1712]: 10.0.1.2:33317 ",
            b"Mar  9 12:00:00 lb1 haproxy[1712]: ",
        ] {
            assert_eq!(
                parse_syslog(line),
                Err(ParseError::new(ErrorKind::Truncated, line.len()))
            );
        }
        let line = b"Mar  9 12:00:00 lb1 haproxy[1712]: deadbeef is not an address";
        assert_eq!(
            parse_syslog(line),
            Ok(Parsed::Filtered(FilterReason::NotHttpLog))
        );
    }

    #[test]
    fn foreign_and_broken_lines_are_malformed() {
        let err = parse_syslog(b"[WARNING] 067/120000 (8) : Server be_orders/orders2 is DOWN")
            .unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::Syntax {
                expected: "a syslog header"
            }
        );
        let err =
            parse_raw(b"[WARNING] 067/120000 (8) : Server be_orders/orders2 is DOWN").unwrap_err();
        assert_eq!(
            err,
            ParseError::new(
                ErrorKind::Syntax {
                    expected: "'<client>:<port>'"
                },
                9
            )
        );
        let line = br#"10.0.0.1:1 [09/Mar/2025:12:00:00.001] fe be/s1 0/0/0/1/2 200 5 - - ---- 1/1/0/0/0 0/0 "GET /a HTTP/1.1"#;
        assert_eq!(
            parse_raw(line),
            Err(ParseError::new(ErrorKind::Truncated, line.len()))
        );
        let line = br#"10.0.0.1:1 [09/Mar/2025:12:00:00.001] fe be/s1 0/0/0/1/2 200 5 - - ---- 1/1/0/0/0 0/0 "GET /a"b HTTP/1.1""#;
        assert_eq!(
            parse_raw(line),
            Err(ParseError::new(ErrorKind::Request, 93))
        );
        let line = br#"10.0.0.1:1 [09/Mar/2025:12:00:00.001] fe be/s1 0/0/0/1/2 200 5 - - ---- 1/1/0/0/0 0/0 {a{b} "GET /a HTTP/1.1""#;
        assert_eq!(
            parse_raw(line),
            Err(ParseError::new(
                ErrorKind::Syntax {
                    expected: "'}' closing the header capture"
                },
                88
            ))
        );
        let line = br#"10.0.0.1:1 [09/Mar/2025:12:00:00.001] fe be/s1 0/0/0/2 200 5 - - ---- 1/1/0/0/0 0/0 "GET /a HTTP/1.1""#;
        assert_eq!(
            parse_raw(line).unwrap_err(),
            ParseError::new(
                ErrorKind::Syntax {
                    expected: "timers TR/Tw/Tc/Tr/Ta"
                },
                47
            )
        );
    }

    #[test]
    fn long_lines_truncated_by_haproxy_are_kept() {
        let path = "a".repeat(TRUNCATED_LINE_LEN);
        let line = format!(
            r#"10.0.0.1:1 [09/Mar/2025:12:00:00.001] fe be/s1 0/0/0/1/2 200 5 - - ---- 1/1/0/0/0 0/0 "GET /{path}"#
        );
        let r = record(parse_raw(line.as_bytes()));
        assert_eq!(r.target.as_deref().map(<[u8]>::len), Some(path.len() + 1));
        assert_eq!(r.protocol, None);
    }
}

//! Envoy's default access-log text format.
//!
//! ```text
//! [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
//! ```
//!
//! The start time is ISO 8601 UTC with milliseconds; durations are whole milliseconds;
//! `%RESPONSE_CODE%` is `0` when no response was sent (downstream disconnect) and is kept as
//! such. Envoy escapes nothing, so the quoted fields are found by structure: the authority and
//! upstream host (which hold no quotes) from the end of the line, then the forwarded-for and
//! request-id fields around the user agent, which may contain quotes but not the `" "` that
//! separates fields (that is two lines glued by interleaved writes). The authority becomes
//! [`Record::host`]; the default format has no route or cluster name.

use std::borrow::Cow;

use memchr::{memchr, memrchr};

use super::lex::{
    Cursor, contains, dash_or, non_dash, parse_status, parse_u64, split_request_strict,
};
use super::time::parse_iso8601;
use super::{ErrorKind, ParseError, Record};

const NANOS_PER_MILLI: u64 = 1_000_000;

fn millis(text: &[u8]) -> Option<Option<u64>> {
    dash_or(text, |t| parse_u64(t)?.checked_mul(NANOS_PER_MILLI))
}

/// A space-terminated field and its offset; a field not followed by a space fails with `kind`.
fn field<'a>(cur: &mut Cursor<'a>, kind: ErrorKind) -> Result<(&'a [u8], usize), ParseError> {
    let at = cur.pos();
    let token = cur.token();
    cur.byte(b' ', "' '").map_err(|err| {
        if err.kind == ErrorKind::Truncated {
            err
        } else {
            ParseError::new(kind, at)
        }
    })?;
    Ok((token, at))
}

/// Parses one line of Envoy's default format.
pub(crate) fn parse(line: &[u8]) -> Result<Record<'_>, ParseError> {
    let mut cur = Cursor::new(line);
    cur.byte(b'[', "'[' before the start time")?;
    let start = cur.pos();
    let time = cur.until(b']')?;
    let timestamp =
        dash_or(time, parse_iso8601).ok_or(ParseError::new(ErrorKind::Timestamp, start))?;
    cur.tag(b"] \"", "'] \"'")?;
    let request_start = cur.pos();
    // The request's closing quote is followed by ` <code> `.
    let close = find_request_close(line, request_start)?;
    let request = split_request_strict(&line[request_start..close])
        .ok_or(ParseError::new(ErrorKind::Request, request_start))?;
    let mut cur = Cursor::at(line, close + 2);
    let (code, at) = field(&mut cur, ErrorKind::Status)?;
    let status = parse_status(code).ok_or(ParseError::new(ErrorKind::Status, at))?;
    let (_flags, _) = field(
        &mut cur,
        ErrorKind::Syntax {
            expected: "response flags",
        },
    )?;
    let (received, at) = field(&mut cur, ErrorKind::Number)?;
    dash_or(received, parse_u64).ok_or(ParseError::new(ErrorKind::Number, at))?;
    let (sent, at) = field(&mut cur, ErrorKind::Number)?;
    let bytes_sent = dash_or(sent, parse_u64).ok_or(ParseError::new(ErrorKind::Number, at))?;
    let (duration, at) = field(&mut cur, ErrorKind::Duration)?;
    let duration_ns = millis(duration).ok_or(ParseError::new(ErrorKind::Duration, at))?;
    let (upstream, at) = field(&mut cur, ErrorKind::Duration)?;
    let upstream_duration_ns = millis(upstream).ok_or(ParseError::new(ErrorKind::Duration, at))?;
    let host = quoted_fields(line, cur.pos())?;
    Ok(Record {
        timestamp,
        method: request.method.map(Cow::Borrowed),
        target: request.target.map(Cow::Borrowed),
        protocol: request.protocol.map(Cow::Borrowed),
        status: Some(status),
        bytes_sent,
        duration_ns,
        upstream_duration_ns,
        upstream_status: None,
        upstream_attempts: None,
        router: None,
        service: None,
        host: host.map(Cow::Borrowed),
        trace_id: None,
    })
}

fn find_request_close(line: &[u8], from: usize) -> Result<usize, ParseError> {
    let mut at = from;
    while let Some(n) = memchr(b'"', &line[at..]) {
        let close = at + n;
        let after = &line[close + 1..];
        if let [b' ', rest @ ..] = after {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 && rest.get(digits) == Some(&b' ') {
                return Ok(close);
            }
        }
        at = close + 1;
    }
    Err(ParseError::new(ErrorKind::Truncated, line.len()))
}

/// `"<xff>" "<user-agent>" "<request-id>" "<authority>" "<upstream-host>"` from `start` to the
/// end of the line; returns the authority.
fn quoted_fields(line: &[u8], start: usize) -> Result<Option<&[u8]>, ParseError> {
    let syntax = |expected, at| ParseError::new(ErrorKind::Syntax { expected }, at);
    let rest = &line[start..];
    if rest.len() < 19 || !rest.starts_with(b"\"") {
        return Err(if rest.is_empty() || b"\"".starts_with(rest) {
            ParseError::new(ErrorKind::Truncated, line.len())
        } else {
            syntax("five quoted fields", start)
        });
    }
    // A line that does not end in a quote was cut short.
    if line.last() != Some(&b'"') {
        return Err(ParseError::new(ErrorKind::Truncated, line.len()));
    }
    let bad = syntax("five quoted fields", start);
    // Upstream host, then authority: neither holds a quote.
    let host_open = memrchr(b'"', &line[start..line.len() - 1])
        .map(|n| start + n)
        .ok_or(bad)?;
    let authority_close = host_open.checked_sub(2).filter(|&c| c > start).ok_or(bad)?;
    if &line[authority_close..host_open] != b"\" " {
        return Err(bad);
    }
    let authority_open = memrchr(b'"', &line[start..authority_close])
        .map(|n| start + n)
        .ok_or(bad)?;
    // Request id (no quotes) before the authority.
    let id_close = authority_open
        .checked_sub(2)
        .filter(|&c| c > start)
        .ok_or(bad)?;
    if &line[id_close..authority_open] != b"\" " {
        return Err(bad);
    }
    let id_open = memrchr(b'"', &line[start..id_close])
        .map(|n| start + n)
        .ok_or(bad)?;
    // Forwarded-for (no quotes) at the start; the user agent is whatever lies between.
    let xff_close = memchr(b'"', &line[start + 1..])
        .map(|n| start + 1 + n)
        .ok_or(bad)?;
    let ua_open = xff_close + 2;
    let ua_close = id_open.checked_sub(2).ok_or(bad)?;
    if ua_open > ua_close
        || &line[xff_close..ua_open + 1] != b"\" \""
        || &line[ua_close..id_open] != b"\" "
        // The user agent may hold quotes, but not a field separator: that is two lines
        // glued together by interleaved writes.
        || contains(&line[ua_open + 1..ua_close], b"\" \"")
    {
        return Err(bad);
    }
    Ok(non_dash(&line[authority_open + 1..authority_close]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_helpers::text;
    use crate::format::{Status, Timestamp};

    #[test]
    fn docs_example() {
        let line = br#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#;
        let r = parse(line).unwrap();
        assert_eq!(
            r.timestamp,
            Some(Timestamp::from_unix_nanos(1_460_751_420_310_000_000))
        );
        assert_eq!(text(&r.method), Some("POST"));
        assert_eq!(text(&r.target), Some("/api/v1/locations"));
        assert_eq!(text(&r.protocol), Some("HTTP/2"));
        assert_eq!(r.status, Some(Status::new(204)));
        assert_eq!(r.bytes_sent, Some(0));
        assert_eq!(r.duration_ns, Some(226_000_000));
        assert_eq!(r.upstream_duration_ns, Some(100_000_000));
        assert_eq!(text(&r.host), Some("locations"));
    }

    #[test]
    fn downstream_disconnect_and_quotes_in_the_user_agent() {
        let line = br#"[2025-03-09T12:00:00.000Z] "GET /x HTTP/1.1" 0 DC 0 0 4012 - "-" "say "hi" " "id" "a.example" "-""#;
        let r = parse(line).unwrap();
        assert_eq!(r.status, Some(Status::new(0)));
        assert_eq!(
            r.status.map(Status::class),
            Some(crate::format::StatusClass::Other)
        );
        assert_eq!(r.upstream_duration_ns, None);
        assert_eq!(text(&r.host), Some("a.example"));
    }

    #[test]
    fn truncated_and_interleaved_lines_are_malformed() {
        let a = r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0" "locations" "tcp://10.0.2.1:80""#;
        for cut in 1..a.len() {
            assert!(parse(&a.as_bytes()[..cut]).is_err(), "{}", &a[..cut]);
            let glued = format!("{}{a}", &a[..cut]);
            assert!(parse(glued.as_bytes()).is_err(), "{glued}");
        }
    }

    #[test]
    fn errors_point_at_the_field() {
        let line =
            br#"[2016-04-15T20:17:00.310Z] "GET / HTTP/2" 204 - 154 0 2x6 100 "-" "-" "-" "-" "-""#;
        assert_eq!(
            parse(line).unwrap_err(),
            ParseError::new(ErrorKind::Duration, 54)
        );
        let line = br#"[2016-13-15T20:17:00.310Z] "GET / HTTP/2" 204"#;
        assert_eq!(
            parse(line).unwrap_err(),
            ParseError::new(ErrorKind::Timestamp, 1)
        );
    }
}

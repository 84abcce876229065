//! Parsing a line with a compiled format: where each value ends, then what it fills in the
//! record.

use std::borrow::Cow;

use memchr::{memchr, memchr2};

use super::compile::{Compiled, Extent, Field, Role};
use super::upstream::{attempts, last_status, list_extent, sum_seconds};
use super::{Escape, LogFormat};
use crate::format::lex::{
    Decimal, parse_duration, parse_status, parse_u64, split_request_lenient, unescape_json,
    unescape_nginx,
};
use crate::format::record::trace_id_of_traceparent;
use crate::format::time::{parse_clf, parse_iso8601};
use crate::format::{ErrorKind, ParseError, Record, Timestamp};

impl LogFormat {
    /// Parses one line written in this format.
    ///
    /// # Errors
    ///
    /// [`ParseError`] when the line does not follow the format.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<Record<'a>, ParseError> {
        let inner = &*self.inner;
        let mut record = Record::default();
        let mut pos = expect_literal(line, 0, &inner.leading)?;
        let last = inner.fields.len() - 1;
        for (index, field) in inner.fields.iter().enumerate() {
            let end = self.value_end(line, pos, field, index == last)?;
            inner.assign(&mut record, field.role, &line[pos..end], pos)?;
            pos = expect_literal(line, end, &field.then)?;
        }
        if pos < line.len() {
            return Err(ParseError::new(ErrorKind::TrailingData, pos));
        }
        // A lone `-` status with an upstream time is one attempt that got no response.
        if record.upstream_attempts == Some(0) && record.upstream_duration_ns.is_some() {
            record.upstream_attempts = Some(1);
        }
        Ok(record)
    }

    fn value_end(
        &self,
        line: &[u8],
        start: usize,
        field: &Field,
        is_last: bool,
    ) -> Result<usize, ParseError> {
        let rest = &line[start..];
        let end = match field.extent {
            // A fixed-width value may still be unset (`-`).
            Extent::Fixed(_)
                if rest.first() == Some(&b'-') && has_prefix(&rest[1..], &field.then) =>
            {
                start + 1
            }
            Extent::Fixed(n) if rest.len() < n => {
                return Err(ParseError::new(ErrorKind::Truncated, line.len()));
            }
            Extent::Fixed(n) => start + n,
            Extent::Number if !is_last || !field.then.is_empty() => {
                start
                    + rest
                        .iter()
                        .take_while(|b| matches!(b, b'0'..=b'9' | b'.' | b'-'))
                        .count()
            }
            Extent::List if field.then.first().is_none_or(|&b| b == b' ') => {
                start + list_extent(rest)
            }
            _ if field.then.is_empty() => line.len(),
            _ => self.literal_end(line, start, &field.then)?,
        };
        if field.extent == Extent::Word
            && let Some(space) = line[start..end].iter().position(|&b| b == b' ')
        {
            return Err(ParseError::new(
                ErrorKind::Syntax {
                    expected: "a value without spaces",
                },
                start + space,
            ));
        }
        Ok(end)
    }

    /// End of a value that runs up to `literal`.
    ///
    /// With `escape=default` and `escape=json` a value holds no unescaped `"` (nginx escapes
    /// it), so the first unescaped quote must be where the value ends; this is what rejects two
    /// lines glued together by interleaved writes. A quote after a backslash is escaped: JSON's
    /// `\"`, and in default mode (where nginx itself writes `\x22` and `\x5C`, never a raw
    /// backslash) Traefik's `genericCLF` `\"`, so its lines parse as `combined`.
    fn literal_end(&self, line: &[u8], start: usize, literal: &[u8]) -> Result<usize, ParseError> {
        let rest = &line[start..];
        let quotes_are_escaped = self.inner.escape != Escape::None;
        let first = literal[0];
        let mut from = 0;
        loop {
            let found = if quotes_are_escaped {
                find_either(&rest[from..], first, b'"')
            } else {
                find_either(&rest[from..], first, first)
            };
            let Some(at) = found.map(|n| from + n) else {
                return Err(ParseError::new(ErrorKind::Truncated, line.len()));
            };
            let tail = &rest[at..];
            let escaped_quote =
                rest[at] == b'"' && quotes_are_escaped && escaped_by_backslash(&rest[..at]);
            if has_prefix(tail, literal) && !escaped_quote {
                return Ok(start + at);
            }
            if rest[at] == b'"' && quotes_are_escaped && !escaped_quote {
                if literal.starts_with(tail) {
                    return Err(ParseError::new(ErrorKind::Truncated, line.len()));
                }
                return Err(ParseError::new(
                    ErrorKind::Syntax {
                        expected: "the log_format's literal text",
                    },
                    start + at,
                ));
            }
            from = at + 1;
        }
    }
}

/// Whether the byte after `before` is escaped: an odd number of backslashes ends `before`.
fn escaped_by_backslash(before: &[u8]) -> bool {
    before.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Whether `rest` starts with `literal`, compared inline: literals are a few bytes, where a
/// `memcmp` call costs more than the comparison.
#[inline(always)]
fn has_prefix(rest: &[u8], literal: &[u8]) -> bool {
    rest.len() >= literal.len() && rest.iter().zip(literal).all(|(a, b)| a == b)
}

/// Offset of the first `a` or `b` in `haystack`: the first bytes inline (values are mostly
/// short, where `memchr`'s setup costs more than the scan), then `memchr2`.
#[inline(always)]
fn find_either(haystack: &[u8], a: u8, b: u8) -> Option<usize> {
    const INLINE: usize = 16;
    let head = &haystack[..haystack.len().min(INLINE)];
    if let Some(n) = head.iter().position(|&x| x == a || x == b) {
        return Some(n);
    }
    let rest = &haystack[head.len()..];
    if a == b {
        memchr(a, rest)
    } else {
        memchr2(a, b, rest)
    }
    .map(|n| head.len() + n)
}

/// Consumes `literal` at `pos`.
#[inline]
fn expect_literal(line: &[u8], pos: usize, literal: &[u8]) -> Result<usize, ParseError> {
    let rest = &line[pos..];
    if has_prefix(rest, literal) {
        return Ok(pos + literal.len());
    }
    let common = rest.iter().zip(literal).take_while(|(a, b)| a == b).count();
    let at = pos + common;
    Err(if at >= line.len() {
        ParseError::new(ErrorKind::Truncated, at)
    } else {
        ParseError::new(
            ErrorKind::Syntax {
                expected: "the log_format's literal text",
            },
            at,
        )
    })
}

impl Compiled {
    fn text<'a>(&self, value: &'a [u8], at: usize) -> Result<Cow<'a, [u8]>, ParseError> {
        match self.escape {
            Escape::Default => Ok(unescape_nginx(value)),
            Escape::Json => {
                unescape_json(value).map_err(|i| ParseError::new(ErrorKind::Escape, at + i))
            }
            Escape::None => Ok(Cow::Borrowed(value)),
        }
    }

    #[inline]
    fn assign<'a>(
        &self,
        record: &mut Record<'a>,
        role: Role,
        value: &'a [u8],
        at: usize,
    ) -> Result<(), ParseError> {
        if role == Role::Ignore || value.is_empty() || value == b"-" {
            if role == Role::UpstreamStatus {
                // No upstream was tried (unless an upstream time says one was: see `parse`).
                record.upstream_attempts = Some(0);
            }
            return Ok(());
        }
        let fail = |kind| ParseError::new(kind, at);
        match role {
            Role::Ignore => {}
            Role::TimeLocal => {
                record.timestamp = Some(parse_clf(value).ok_or(fail(ErrorKind::Timestamp))?)
            }
            Role::TimeIso8601 => {
                record.timestamp = Some(parse_iso8601(value).ok_or(fail(ErrorKind::Timestamp))?);
            }
            Role::Msec => {
                let nanos = Decimal::parse(value)
                    .filter(|d| !d.negative)
                    .and_then(|d| d.scaled_magnitude(9))
                    .and_then(|n| i64::try_from(n).ok())
                    .ok_or(fail(ErrorKind::Timestamp))?;
                record.timestamp = Some(Timestamp::from_unix_nanos(nanos));
            }
            Role::Request => {
                // Split before unescaping: nginx never escapes the separating spaces.
                if let Some(request) = split_request_lenient(value) {
                    let [method, target, protocol] = self.request_fills;
                    let offset =
                        |part: &[u8]| at + (part.as_ptr() as usize - value.as_ptr() as usize);
                    if method {
                        record.method = request
                            .method
                            .map(|m| self.text(m, offset(m)))
                            .transpose()?;
                    }
                    if target {
                        record.target = request
                            .target
                            .map(|t| self.text(t, offset(t)))
                            .transpose()?;
                    }
                    if protocol {
                        record.protocol = request
                            .protocol
                            .map(|p| self.text(p, offset(p)))
                            .transpose()?;
                    }
                }
            }
            // nginx accepts only methods of `A-Z`, `_` and `-`: anything else is not one.
            Role::Method
                if !value
                    .iter()
                    .all(|&b| b.is_ascii_uppercase() || b == b'_' || b == b'-') =>
            {
                return Err(fail(ErrorKind::Request));
            }
            Role::Method => record.method = Some(Cow::Borrowed(value)),
            Role::Target => record.target = Some(self.text(value, at)?),
            Role::Protocol => record.protocol = Some(self.text(value, at)?),
            Role::Host => record.host = Some(self.text(value, at)?),
            Role::Router => record.router = Some(self.text(value, at)?),
            // The client's header: a value that is no traceparent is no trace id, not a
            // malformed line.
            Role::Traceparent => record.trace_id = trace_id_of_traceparent(value),
            Role::Status => {
                record.status = Some(parse_status(value).ok_or(fail(ErrorKind::Status))?)
            }
            Role::Bytes => {
                record.bytes_sent = Some(parse_u64(value).ok_or(fail(ErrorKind::Number))?)
            }
            Role::RequestTime => {
                record.duration_ns = parse_duration(value, 9).ok_or(fail(ErrorKind::Duration))?;
            }
            Role::UpstreamTime => {
                record.upstream_duration_ns =
                    sum_seconds(value).ok_or(fail(ErrorKind::Duration))?;
            }
            Role::UpstreamStatus => {
                record.upstream_status = last_status(value).ok_or(fail(ErrorKind::Status))?;
                record.upstream_attempts = attempts(value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Status;
    use crate::format::nginx::{COMBINED, COMBINED_REQUEST_TIME};
    use crate::format::test_helpers::text;

    #[test]
    fn combined_with_request_time_and_default_escapes() {
        let format = LogFormat::compile(COMBINED_REQUEST_TIME).unwrap();
        let line = br#"185.129.4.109 - - [09/Mar/2025:12:00:00 +0000] "GET /metrics?a=\x22b\x22 HTTP/2.0" 200 150 "-" "Mozilla/5.0 \x22quoted\x22 (evil; x\x5Cy) probe" 0.003"#;
        let r = format.parse(line).unwrap();
        assert_eq!(r.timestamp, Some(Timestamp::from_unix_secs(1_741_521_600)));
        assert_eq!(text(&r.method), Some("GET"));
        assert_eq!(text(&r.target), Some("/metrics?a=\"b\""));
        assert_eq!(text(&r.protocol), Some("HTTP/2.0"));
        assert_eq!(r.status, Some(Status::new(200)));
        assert_eq!(r.bytes_sent, Some(150));
        assert_eq!(r.duration_ns, Some(3_000_000));
        assert_eq!(r.host, None);
    }

    #[test]
    fn combined_rejects_a_trailing_request_time_and_vice_versa() {
        let combined = LogFormat::compile(COMBINED).unwrap();
        let rt = LogFormat::compile(COMBINED_REQUEST_TIME).unwrap();
        let line =
            br#"1.2.3.4 - - [09/Mar/2025:12:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8.5.0""#;
        assert!(combined.parse(line).is_ok());
        assert_eq!(
            rt.parse(line).unwrap_err(),
            ParseError::new(ErrorKind::Truncated, line.len())
        );
        let with_time = [&line[..], b" 0.001"].concat();
        assert_eq!(
            combined.parse(&with_time).unwrap_err(),
            ParseError::new(ErrorKind::TrailingData, line.len())
        );
    }

    #[test]
    fn an_address_glued_to_another_line_is_not_one_value() {
        let format = LogFormat::compile("$remote_addr [$time_local] $host $status").unwrap();
        let glued = b"2001:db8::afd6 93.100.249.120 [09/Mar/2025:12:00:00 +0000] a.example 404";
        assert_eq!(
            format.parse(glued).unwrap_err(),
            ParseError::new(
                ErrorKind::Syntax {
                    expected: "a value without spaces"
                },
                14
            )
        );
        let whole = b"2001:db8::afd6 [09/Mar/2025:12:00:00 +0000] a.example 404";
        assert_eq!(
            format.parse(whole).map(|r| r.status),
            Ok(Some(Status::new(404)))
        );
    }

    #[test]
    fn the_traceparent_header_gives_the_trace_id() {
        let format = LogFormat::compile(
            r#"$remote_addr [$time_local] "$request" $status $request_time $upstream_response_time "$http_traceparent""#,
        )
        .unwrap();
        let line = br#"127.0.0.1 [09/Mar/2025:12:00:00 +0000] "GET /users/7 HTTP/1.1" 200 0.310 0.305 "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01""#;
        assert_eq!(
            format.parse(line).unwrap().trace_id,
            vantage_instrument::trace_context::TraceId::from_u128(
                0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c
            )
        );
        // No header (`-`), or one that is not a traceparent: no id, the line still a request.
        for value in ["-", "00-nothex-01", "x y"] {
            let line = format!(
                r#"127.0.0.1 [09/Mar/2025:12:00:00 +0000] "GET / HTTP/1.1" 200 0.001 0.001 "{value}""#
            );
            let record = format.parse(line.as_bytes()).unwrap();
            assert_eq!(record.trace_id, None, "{value}");
            assert_eq!(record.status, Some(Status::new(200)));
        }
        assert_eq!(
            format.filled_by(crate::format::RecordField::TraceId),
            Some("http_traceparent")
        );
    }

    #[test]
    fn raw_request_lines_keep_the_record() {
        let format = LogFormat::compile(COMBINED).unwrap();
        let line = br#"1.2.3.4 - - [09/Mar/2025:12:00:00 +0000] "\x16\x03\x01\x00\xA5\x01" 400 157 "-" "-""#;
        let r = format.parse(line).unwrap();
        assert_eq!((r.method, r.target), (None, None));
        assert_eq!(r.status, Some(Status::new(400)));
        let line = br#"1.2.3.4 - - [09/Mar/2025:12:00:00 +0000] "-" 400 0 "-" "-""#;
        assert_eq!(format.parse(line).unwrap().target, None);
        let line = br#"1.2.3.4 - - [09/Mar/2025:12:00:00 +0000] "GET /" 200 0 "-" "-""#;
        let r = format.parse(line).unwrap();
        assert_eq!((text(&r.target), r.protocol), (Some("/"), None));
    }

    #[test]
    fn json_escaped_format_with_empty_values() {
        let source = r#"{"time":"$time_iso8601","host":"$host","req":"$request","status":$status,"rt":$request_time,"urt":"$upstream_response_time","ua":"$http_user_agent"}"#;
        let format = LogFormat::compile_with_escape(source, Escape::Json).unwrap();
        let line = br#"{"time":"2025-03-09T12:00:00+00:00","host":"a.example","req":"GET /q?x=\"1\" HTTP/1.1","status":504,"rt":30.001,"urt":"","ua":"say \"hi\", \\o/"}"#;
        let r = format.parse(line).unwrap();
        assert_eq!(text(&r.target), Some("/q?x=\"1\""));
        assert_eq!(r.status, Some(Status::new(504)));
        assert_eq!(r.duration_ns, Some(30_001_000_000));
        assert_eq!(r.upstream_duration_ns, None);
        assert_eq!(text(&r.host), Some("a.example"));
    }

    #[test]
    fn errors_point_at_the_value() {
        let format = LogFormat::compile(COMBINED_REQUEST_TIME).unwrap();
        let line =
            br#"1.2.3.4 - - [09/Mar/2025:12:00:00 +0000] "GET / HTTP/1.1" 2OO 1 "-" "-" 0.001"#;
        assert_eq!(
            format.parse(line).unwrap_err(),
            ParseError::new(
                ErrorKind::Syntax {
                    expected: "the log_format's literal text"
                },
                59
            )
        );
        let line =
            br#"1.2.3.4 - - [09/Mar/2025:12:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.0.1"#;
        assert_eq!(
            format.parse(line).unwrap_err(),
            ParseError::new(ErrorKind::Duration, 72)
        );
        let line = br#"1.2.3.4 - - [09/Mar/2025:12:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-" -"#;
        assert_eq!(format.parse(line).unwrap().duration_ns, None);
    }
}

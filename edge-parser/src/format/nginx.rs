//! nginx access logs: any `log_format`, compiled once into a parser.
//!
//! A `log_format` string is a sequence of literal text and variables (`$status`,
//! `${request_time}`). [`LogFormat::compile`] turns it into a list of fields, each with the
//! literal that follows it; parsing a line walks that list once, finding where each value ends
//! either from the variable's own shape (the 26 bytes of `$time_local`, the digits of
//! `$status`, the `, `/` : `-separated lists of `$upstream_*`) or by searching for the literal
//! that follows it. Two variables with nothing between them are refused at compile time unless
//! the first one has a fixed width (`$time_local`, `$time_iso8601`).
//!
//! Variables that fill [`Record`] fields (when a format has several for one field, the one
//! listed first here wins):
//!
//! | field | variables |
//! |---|---|
//! | `timestamp` | `$time_local`, `$time_iso8601`, `$msec` |
//! | `method`, `target`, `protocol` | `$request` (split leniently: it is whatever the client sent), `$request_method`, `$request_uri`, `$uri`, `$document_uri`, `$server_protocol` |
//! | `status` | `$status` |
//! | `bytes_sent` | `$body_bytes_sent`, `$bytes_sent` |
//! | `duration_ns` | `$request_time` (seconds, ms resolution) |
//! | `upstream_duration_ns` | `$upstream_response_time`: the **sum** of the numeric elements of the list |
//! | `upstream_status` | `$upstream_status`: the **last numeric** element of the list |
//! | `host` | `$host`, `$http_host`, `$server_name` |
//! | `router` | `$proxy_upstream_name` (ingress-nginx) |
//!
//! Any other variable is matched and skipped. A value of `-` (nginx's "not set") or an empty
//! value (what `escape=json` writes) leaves the field empty. Text values are unescaped per the
//! format's [`Escape`] mode: `\xHH` for `default`, JSON escapes for `json`.
//!
//! A `$request` that is not a request line (a TLS handshake sent to a plain-HTTP port logs as
//! `"\x16\x03\x01..."`) still yields a record, with its status, and no method or target.
//!
//! # Example
//!
//! ```
//! use vantage_edge::format::{Format, LogFormat, Parsed};
//!
//! let format = LogFormat::compile(
//!     r#"$remote_addr [$time_iso8601] "$request" $status $request_time "$host""#,
//! )?;
//! let line = br#"10.0.0.1 [2025-03-09T12:00:00+00:00] "GET /users/7 HTTP/1.1" 200 0.012 "api.example.com""#;
//! let Ok(Parsed::Record(record)) = Format::Nginx(format).parse(line) else {
//!     panic!("not a record");
//! };
//! assert_eq!(record.duration_ns, Some(12_000_000));
//! assert_eq!(record.host.as_deref(), Some(&b"api.example.com"[..]));
//! # Ok::<(), vantage_edge::format::LogFormatError>(())
//! ```

mod conf;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

use memchr::{memchr, memchr2};
use nom::IResult;
use nom::Parser as _;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till1, take_while1};
use nom::character::complete::char;
use nom::sequence::{delimited, preceded};

use super::ingress_nginx::{last_status, list_extent, sum_seconds};
use super::lex::{
    Decimal, parse_duration, parse_status, parse_u64, split_request_lenient, unescape_json,
    unescape_nginx,
};
use super::time::{parse_clf, parse_iso8601};
use super::{ErrorKind, ParseError, Record, Timestamp};

/// nginx's predefined `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// `combined` followed by ` $request_time`, the usual way to get latency into it.
pub const COMBINED_REQUEST_TIME: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time"#;

pub(crate) static COMBINED_FORMAT: LazyLock<LogFormat> = LazyLock::new(|| preset(COMBINED));
pub(crate) static COMBINED_REQUEST_TIME_FORMAT: LazyLock<LogFormat> =
    LazyLock::new(|| preset(COMBINED_REQUEST_TIME));

/// Compiles a format string this crate ships; they are tested to compile.
pub(crate) fn preset(source: &str) -> LogFormat {
    match LogFormat::compile(source) {
        Ok(format) => format,
        Err(err) => unreachable!("preset log_format does not compile: {err}"),
    }
}

/// How a `log_format` escapes variable values (`log_format name escape=... ...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Escape {
    /// `escape=default`: `"`, `\`, bytes below 0x20 and from 0x7F as `\xHH`; unset as `-`.
    #[default]
    Default,
    /// `escape=json`: JSON string escapes; unset as an empty value.
    Json,
    /// `escape=none`: values written as they are; unset as `-`.
    None,
}

impl Escape {
    /// The `escape=` parameter value for this mode.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Json => "json",
            Self::None => "none",
        }
    }
}

/// A `log_format` that could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogFormatError {
    /// The format has no variable at all, so a line carries no data.
    #[error("log_format has no variables")]
    NoVariables,
    /// A `$` not followed by a variable name, or an unclosed `${`.
    #[error("invalid variable name at byte {offset} of the log_format")]
    InvalidVariable {
        /// Byte offset of the `$` in the format string.
        offset: usize,
    },
    /// Two variables with no text between them, where the first does not have a fixed width
    /// (only `$time_local` and `$time_iso8601` have one).
    #[error(
        "${first} is followed directly by ${second}, so where ${first} ends cannot be found; put text between them"
    )]
    AdjacentVariables {
        /// The first variable.
        first: String,
        /// The variable right after it.
        second: String,
    },
    /// An `escape=` parameter other than `default`, `json` or `none`.
    #[error("unknown log_format escape mode {value:?} (expected default, json or none)")]
    UnknownEscape {
        /// The value given.
        value: String,
    },
    /// No `log_format` of that name in the configuration text.
    #[error("no log_format named {name:?} in the nginx configuration")]
    NotFound {
        /// The name looked for.
        name: String,
    },
    /// The configuration text does not tokenize (an unclosed quote).
    #[error("nginx configuration: {message} at line {line}")]
    Config {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: &'static str,
    },
}

/// A compiled nginx `log_format`: a parser for the lines it writes.
///
/// Cheap to clone (the compiled form is shared). See the [module docs](self) for the variables
/// it understands.
#[derive(Clone)]
pub struct LogFormat {
    inner: Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    source: String,
    escape: Escape,
    leading: Vec<u8>,
    fields: Vec<Field>,
    /// Which request-line parts `$request` fills (not taken by a dedicated variable).
    request_fills: [bool; 3],
}

#[derive(Debug)]
struct Field {
    name: String,
    role: Role,
    extent: Extent,
    /// The literal after the value (empty for the last field or before a self-ending one).
    then: Vec<u8>,
}

/// What a variable's value feeds in the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Ignore,
    TimeLocal,
    TimeIso8601,
    Msec,
    Request,
    Method,
    Target,
    Protocol,
    Status,
    Bytes,
    RequestTime,
    UpstreamTime,
    UpstreamStatus,
    Host,
    Router,
}

impl Role {
    /// The record field a role fills: the three timestamp variables share one.
    const fn slot(self) -> Self {
        match self {
            Self::TimeIso8601 | Self::Msec => Self::TimeLocal,
            other => other,
        }
    }
}

/// A [`Record`] field a `log_format` variable can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filled {
    Timestamp,
    Method,
    Target,
    Protocol,
    Status,
    Bytes,
    Duration,
    UpstreamDuration,
    UpstreamStatus,
    Host,
    Router,
}

/// How the end of a variable's value is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extent {
    /// Up to the literal that follows.
    Literal,
    /// Exactly this many bytes.
    Fixed(usize),
    /// Number characters (`0-9 . -`).
    Number,
    /// A `, ` / ` : `-separated list of space-free elements.
    List,
}

/// The role (with its priority among variables of the same role) and the extent of a variable.
fn classify(name: &str) -> (Role, u8, Extent) {
    match name {
        "time_local" => (Role::TimeLocal, 3, Extent::Fixed(26)),
        "time_iso8601" => (Role::TimeIso8601, 2, Extent::Fixed(25)),
        "msec" => (Role::Msec, 1, Extent::Number),
        "request" => (Role::Request, 1, Extent::Literal),
        "request_method" => (Role::Method, 1, Extent::Literal),
        "request_uri" => (Role::Target, 3, Extent::Literal),
        "uri" => (Role::Target, 2, Extent::Literal),
        "document_uri" => (Role::Target, 1, Extent::Literal),
        "server_protocol" => (Role::Protocol, 1, Extent::Literal),
        "status" => (Role::Status, 1, Extent::Number),
        "body_bytes_sent" => (Role::Bytes, 2, Extent::Number),
        "bytes_sent" => (Role::Bytes, 1, Extent::Number),
        "request_time" => (Role::RequestTime, 1, Extent::Number),
        "upstream_response_time" => (Role::UpstreamTime, 1, Extent::List),
        "upstream_status" => (Role::UpstreamStatus, 1, Extent::List),
        "upstream_addr"
        | "upstream_response_length"
        | "upstream_connect_time"
        | "upstream_header_time"
        | "upstream_bytes_received"
        | "upstream_bytes_sent" => (Role::Ignore, 0, Extent::List),
        "host" => (Role::Host, 3, Extent::Literal),
        "http_host" => (Role::Host, 2, Extent::Literal),
        "server_name" => (Role::Host, 1, Extent::Literal),
        "proxy_upstream_name" => (Role::Router, 1, Extent::Literal),
        _ => (Role::Ignore, 0, Extent::Literal),
    }
}

/// One piece of a format string.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    Variable(&'a str),
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn piece(input: &str) -> IResult<&str, Piece<'_>> {
    alt((
        delimited(tag("${"), take_while1(is_name_char), char('}')).map(Piece::Variable),
        preceded(char('$'), take_while1(is_name_char)).map(Piece::Variable),
        take_till1(|c| c == '$').map(Piece::Literal),
    ))
    .parse(input)
}

fn pieces(source: &str) -> Result<Vec<Piece<'_>>, LogFormatError> {
    let mut rest = source;
    let mut out = Vec::new();
    while !rest.is_empty() {
        match piece(rest) {
            Ok((next, piece)) => {
                out.push(piece);
                rest = next;
            }
            Err(_) => {
                return Err(LogFormatError::InvalidVariable {
                    offset: source.len() - rest.len(),
                });
            }
        }
    }
    Ok(out)
}

impl LogFormat {
    /// Compiles a `log_format` string with the default escaping (`\xHH`).
    ///
    /// # Errors
    ///
    /// [`LogFormatError`] when the string has no variable, an invalid `$`, or two variables
    /// that cannot be told apart.
    pub fn compile(source: &str) -> Result<Self, LogFormatError> {
        Self::compile_with_escape(source, Escape::Default)
    }

    /// Compiles a `log_format` string written with the given `escape=` mode.
    ///
    /// # Errors
    ///
    /// As [`compile`](Self::compile).
    pub fn compile_with_escape(source: &str, escape: Escape) -> Result<Self, LogFormatError> {
        let pieces = pieces(source)?;
        let mut leading = Vec::new();
        let mut fields: Vec<Field> = Vec::new();
        for piece in &pieces {
            match *piece {
                Piece::Literal(text) => match fields.last_mut() {
                    Some(field) => field.then.extend_from_slice(text.as_bytes()),
                    None => leading.extend_from_slice(text.as_bytes()),
                },
                Piece::Variable(name) => {
                    if let Some(previous) = fields.last() {
                        // Only a fixed width tells where a value ends without text after it:
                        // `$status$request_length` could be split anywhere.
                        if previous.then.is_empty() && !matches!(previous.extent, Extent::Fixed(_))
                        {
                            return Err(LogFormatError::AdjacentVariables {
                                first: previous.name.clone(),
                                second: name.to_owned(),
                            });
                        }
                    }
                    let (role, _, extent) = classify(name);
                    fields.push(Field {
                        name: name.to_owned(),
                        role,
                        extent,
                        then: Vec::new(),
                    });
                }
            }
        }
        if fields.is_empty() {
            return Err(LogFormatError::NoVariables);
        }
        // One variable per record field: the highest priority, then the first listed.
        let mut best: Vec<(Role, u8, usize)> = Vec::new();
        for (index, field) in fields.iter().enumerate() {
            let (role, priority, _) = classify(&field.name);
            if role == Role::Ignore {
                continue;
            }
            let slot = role.slot();
            match best.iter_mut().find(|(s, _, _)| *s == slot) {
                Some(entry) if entry.1 < priority => *entry = (slot, priority, index),
                Some(_) => {}
                None => best.push((slot, priority, index)),
            }
        }
        for (index, field) in fields.iter_mut().enumerate() {
            if !best.iter().any(|&(_, _, chosen)| chosen == index) {
                field.role = Role::Ignore;
            }
        }
        let has = |role| fields.iter().any(|f| f.role == role);
        let request_fills = [!has(Role::Method), !has(Role::Target), !has(Role::Protocol)];
        Ok(Self {
            inner: Arc::new(Compiled {
                source: source.to_owned(),
                escape,
                leading,
                fields,
                request_fills,
            }),
        })
    }

    /// Reads the `log_format` called `name` from the text of an nginx configuration (its
    /// `escape=` parameter included). `combined` is nginx's predefined format unless the text
    /// redefines it.
    ///
    /// # Errors
    ///
    /// [`LogFormatError::NotFound`] when there is no such `log_format`,
    /// [`LogFormatError::Config`] when the text does not tokenize, and the errors of
    /// [`compile`](Self::compile).
    pub fn from_nginx_conf(conf: &str, name: &str) -> Result<Self, LogFormatError> {
        match conf::find_log_format(conf, name)? {
            Some((escape, source)) => Self::compile_with_escape(&source, escape),
            None if name == "combined" => Self::compile(COMBINED),
            None => Err(LogFormatError::NotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// The format string as given.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The escape mode.
    #[must_use]
    pub fn escape(&self) -> Escape {
        self.inner.escape
    }

    /// The variable names, in order, without `$`.
    pub fn variables(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.fields.iter().map(|f| f.name.as_str())
    }

    /// Writes one line in this format. For each variable, `value` writes the variable's
    /// unescaped value into the buffer it is given (writing nothing means "not set"); `render`
    /// escapes it per the format's [`Escape`] mode, and writes an unset value as nginx does.
    /// Used by the [synthetic generator](crate::synth) and tests.
    pub fn render(&self, out: &mut Vec<u8>, mut value: impl FnMut(&str, &mut Vec<u8>)) {
        let inner = &*self.inner;
        let mut scratch = Vec::new();
        out.extend_from_slice(&inner.leading);
        for field in &inner.fields {
            scratch.clear();
            value(&field.name, &mut scratch);
            if !scratch.is_empty() {
                escape_into(out, &scratch, inner.escape);
            } else if inner.escape != Escape::Json {
                out.push(b'-');
            }
            out.extend_from_slice(&field.then);
        }
    }

    /// The variable that fills `field` of the record, if any.
    pub(crate) fn filled_by(&self, field: Filled) -> Option<&str> {
        let inner = &*self.inner;
        let [method, target, protocol] = inner.request_fills;
        inner.fields.iter().find_map(|f| {
            let fills = match (f.role, field) {
                (Role::TimeLocal | Role::TimeIso8601 | Role::Msec, Filled::Timestamp)
                | (Role::Method, Filled::Method)
                | (Role::Target, Filled::Target)
                | (Role::Protocol, Filled::Protocol)
                | (Role::Status, Filled::Status)
                | (Role::Bytes, Filled::Bytes)
                | (Role::RequestTime, Filled::Duration)
                | (Role::UpstreamTime, Filled::UpstreamDuration)
                | (Role::UpstreamStatus, Filled::UpstreamStatus)
                | (Role::Host, Filled::Host)
                | (Role::Router, Filled::Router) => true,
                (Role::Request, Filled::Method) => method,
                (Role::Request, Filled::Target) => target,
                (Role::Request, Filled::Protocol) => protocol,
                _ => false,
            };
            fills.then_some(f.name.as_str())
        })
    }

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

fn escape_into(out: &mut Vec<u8>, value: &[u8], escape: Escape) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    match escape {
        Escape::None => out.extend_from_slice(value),
        Escape::Default => {
            for &b in value {
                if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                    out.extend_from_slice(&[
                        b'\\',
                        b'x',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]);
                } else {
                    out.push(b);
                }
            }
        }
        Escape::Json => {
            for &b in value {
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0..0x20 => out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]),
                    _ => out.push(b),
                }
            }
        }
    }
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
            }
        }
        Ok(())
    }
}

impl fmt::Debug for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogFormat")
            .field("source", &self.inner.source)
            .field("escape", &self.inner.escape)
            .finish()
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "escape={} '{}'",
            self.inner.escape.as_str(),
            self.inner.source
        )
    }
}

impl PartialEq for LogFormat {
    fn eq(&self, other: &Self) -> bool {
        self.inner.escape == other.inner.escape && self.inner.source == other.inner.source
    }
}

impl Eq for LogFormat {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Status;
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
    fn priorities_pick_one_variable_per_field() {
        let format = LogFormat::compile(
            "$server_name $host [$msec] [$time_local] \"$request\" $request_uri $bytes_sent $body_bytes_sent",
        )
        .unwrap();
        let line = br#"srv h.example [1741521601.500] [09/Mar/2025:12:00:00 +0000] "GET /a?x HTTP/1.1" /b 900 800"#;
        let r = format.parse(line).unwrap();
        assert_eq!(text(&r.host), Some("h.example"));
        assert_eq!(r.timestamp, Some(Timestamp::from_unix_secs(1_741_521_600)));
        assert_eq!(text(&r.target), Some("/b"));
        assert_eq!(text(&r.method), Some("GET"));
        assert_eq!(r.bytes_sent, Some(800));
    }

    #[test]
    fn only_fixed_width_variables_may_be_followed_directly_by_another() {
        let format = LogFormat::compile("[$time_local]$uri").unwrap();
        let r = format.parse(b"[09/Mar/2025:12:00:00 +0000]/x").unwrap();
        assert_eq!(text(&r.target), Some("/x"));
        let r = format.parse(b"[-]/x").unwrap();
        assert_eq!(r.timestamp, None);
        assert_eq!(
            LogFormat::compile("$status$request_length").unwrap_err(),
            LogFormatError::AdjacentVariables {
                first: "status".to_owned(),
                second: "request_length".to_owned()
            }
        );
    }

    #[test]
    fn compile_errors_explain_themselves() {
        assert_eq!(
            LogFormat::compile("plain text").unwrap_err(),
            LogFormatError::NoVariables
        );
        assert_eq!(
            LogFormat::compile("a $ b $status").unwrap_err(),
            LogFormatError::InvalidVariable { offset: 2 }
        );
        assert_eq!(
            LogFormat::compile("${status").unwrap_err(),
            LogFormatError::InvalidVariable { offset: 0 }
        );
        let err = LogFormat::compile("$remote_addr$remote_user").unwrap_err();
        assert_eq!(
            err.to_string(),
            "$remote_addr is followed directly by $remote_user, so where $remote_addr ends cannot be found; put text between them"
        );
    }

    #[test]
    fn render_then_parse_gives_the_values_back() {
        let format = LogFormat::compile(COMBINED_REQUEST_TIME).unwrap();
        let mut line = Vec::new();
        format.render(&mut line, |name, out| {
            let value: &[u8] = match name {
                "remote_addr" => b"10.0.0.1",
                "time_local" => b"09/Mar/2025:12:00:00 +0000",
                "request" => b"GET /\"\\ HTTP/1.1",
                "status" => b"200",
                "body_bytes_sent" => b"5",
                "http_user_agent" => "caf\u{e9}".as_bytes(),
                "request_time" => b"1.250",
                _ => b"",
            };
            out.extend_from_slice(value);
        });
        assert_eq!(
            String::from_utf8_lossy(&line),
            r#"10.0.0.1 - - [09/Mar/2025:12:00:00 +0000] "GET /\x22\x5C HTTP/1.1" 200 5 "-" "caf\xC3\xA9" 1.250"#
        );
        let r = format.parse(&line).unwrap();
        assert_eq!(text(&r.target), Some("/\"\\"));
        assert_eq!(r.duration_ns, Some(1_250_000_000));
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

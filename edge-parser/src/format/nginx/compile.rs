//! Compiling a `log_format` string: its pieces, the role and extent of each variable, and the
//! one variable that fills each record field.

use std::sync::Arc;

use nom::IResult;
use nom::Parser as _;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till1, take_while1};
use nom::character::complete::char;
use nom::sequence::{delimited, preceded};

use super::{Escape, LogFormat, LogFormatError};
use crate::format::RecordField;

#[derive(Debug)]
pub(super) struct Compiled {
    pub(super) source: String,
    pub(super) escape: Escape,
    pub(super) leading: Vec<u8>,
    pub(super) fields: Vec<Field>,
    /// Which request-line parts `$request` fills (not taken by a dedicated variable).
    pub(super) request_fills: [bool; 3],
}

#[derive(Debug)]
pub(super) struct Field {
    pub(super) name: String,
    pub(super) role: Role,
    pub(super) extent: Extent,
    /// The literal after the value (empty for the last field or before a self-ending one).
    pub(super) then: Vec<u8>,
}

/// What a variable's value feeds in the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Role {
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
    Traceparent,
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

/// How the end of a variable's value is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Extent {
    /// Up to the literal that follows.
    Literal,
    /// Up to the literal that follows, and without a space: a variable nginx writes as one
    /// word (an address, a port, a host name, a method). Two lines glued together by an
    /// interleaved write are refused here rather than read as one value.
    Word,
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
        "request_method" => (Role::Method, 1, Extent::Word),
        "request_uri" => (Role::Target, 3, Extent::Literal),
        "uri" => (Role::Target, 2, Extent::Literal),
        "document_uri" => (Role::Target, 1, Extent::Literal),
        "server_protocol" => (Role::Protocol, 1, Extent::Word),
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
        "host" => (Role::Host, 3, Extent::Word),
        "http_host" => (Role::Host, 2, Extent::Literal),
        "server_name" => (Role::Host, 1, Extent::Word),
        "proxy_upstream_name" => (Role::Router, 1, Extent::Word),
        "http_traceparent" => (Role::Traceparent, 1, Extent::Literal),
        "remote_addr"
        | "remote_port"
        | "server_addr"
        | "server_port"
        | "binary_remote_addr"
        | "realip_remote_addr"
        | "request_id"
        // ingress-nginx's request id (32 hex digits), the last field of `upstreaminfo`: a word,
        // so a line glued to the next one by interleaved writes is not taken as its tail.
        | "req_id"
        | "connection"
        | "connection_requests"
        | "pid"
        | "scheme"
        | "https"
        | "ssl_protocol"
        | "ssl_cipher" => (Role::Ignore, 0, Extent::Word),
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

    /// The variable (without `$`) that fills `field` in the records this format parses, or
    /// `None` when the format does not log that field. Where several variables could fill it,
    /// this is the one that does (the priorities of the [module docs](super)); `$request` fills
    /// the method, target and protocol that no dedicated variable takes.
    ///
    /// # Example
    ///
    /// ```
    /// use vantage_edge::format::{LogFormat, RecordField};
    ///
    /// let format = LogFormat::compile(r#"[$msec] "$request" $status $request_uri"#)?;
    /// assert_eq!(format.filled_by(RecordField::Timestamp), Some("msec"));
    /// assert_eq!(format.filled_by(RecordField::Method), Some("request"));
    /// assert_eq!(format.filled_by(RecordField::Target), Some("request_uri"));
    /// assert_eq!(format.filled_by(RecordField::Duration), None);
    /// # Ok::<(), vantage_edge::format::LogFormatError>(())
    /// ```
    #[must_use]
    pub fn filled_by(&self, field: RecordField) -> Option<&str> {
        let inner = &*self.inner;
        let [method, target, protocol] = inner.request_fills;
        inner.fields.iter().find_map(|f| {
            let fills = match (f.role, field) {
                (Role::TimeLocal | Role::TimeIso8601 | Role::Msec, RecordField::Timestamp)
                | (Role::Method, RecordField::Method)
                | (Role::Target, RecordField::Target)
                | (Role::Protocol, RecordField::Protocol)
                | (Role::Status, RecordField::Status)
                | (Role::Bytes, RecordField::BytesSent)
                | (Role::RequestTime, RecordField::Duration)
                | (Role::UpstreamTime, RecordField::UpstreamDuration)
                | (Role::UpstreamStatus, RecordField::UpstreamStatus)
                | (Role::Host, RecordField::Host)
                | (Role::Router, RecordField::Router)
                | (Role::Traceparent, RecordField::TraceId) => true,
                (Role::Request, RecordField::Method) => method,
                (Role::Request, RecordField::Target) => target,
                (Role::Request, RecordField::Protocol) => protocol,
                _ => false,
            };
            fills.then_some(f.name.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Timestamp;
    use crate::format::test_helpers::text;

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
}

//! [`ParseError`]: why a line is malformed, and where.

use std::fmt;

/// A malformed line: what is wrong and the byte offset in the line where parsing stopped.
///
/// The offset counts from the first byte of the line as passed to
/// [`Format::parse`](super::Format::parse), syslog header included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at byte {offset}")]
#[non_exhaustive]
pub struct ParseError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Byte offset in the line.
    pub offset: usize,
}

impl ParseError {
    pub(crate) const fn new(kind: ErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

/// The kind of a [`ParseError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The line is empty or only whitespace.
    Empty,
    /// The line ends before the record is complete (a cut write, a partial read).
    Truncated,
    /// A byte the layout does not allow here; `expected` names what the layout wants.
    Syntax {
        /// What the layout expects at the offset, e.g. `"'['"` or `"status"`.
        expected: &'static str,
    },
    /// A timestamp that does not match the format's layout or is not a real date.
    Timestamp,
    /// A status code that is not an integer in the `i16` range.
    Status,
    /// A size or count that is not a non-negative integer.
    Number,
    /// A duration that is not a number in the format's unit.
    Duration,
    /// The request line is not `METHOD target [protocol]`.
    Request,
    /// The line is not well-formed JSON.
    Json,
    /// An escape sequence that the format does not define (e.g. `\q` in JSON).
    Escape,
    /// A field the format requires is absent.
    MissingField {
        /// The field's name in the format's own vocabulary, e.g. `"status"`.
        field: &'static str,
    },
    /// The line is well-formed in itself but is not an access-log line of this format (e.g. a
    /// JSON object without any access-log key in a Traefik JSON log).
    Foreign,
    /// The record is complete but more bytes follow.
    TrailingData,
}

impl ErrorKind {
    /// A short stable name for counting errors by kind (`truncated`, `syntax`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Truncated => "truncated",
            Self::Syntax { .. } => "syntax",
            Self::Timestamp => "timestamp",
            Self::Status => "status",
            Self::Number => "number",
            Self::Duration => "duration",
            Self::Request => "request",
            Self::Json => "json",
            Self::Escape => "escape",
            Self::MissingField { .. } => "missing_field",
            Self::Foreign => "foreign",
            Self::TrailingData => "trailing_data",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty line"),
            Self::Truncated => f.write_str("line ends before the record is complete"),
            Self::Syntax { expected } => write!(f, "expected {expected}"),
            Self::Timestamp => f.write_str("invalid timestamp"),
            Self::Status => f.write_str("invalid status code"),
            Self::Number => f.write_str("invalid number"),
            Self::Duration => f.write_str("invalid duration"),
            Self::Request => f.write_str("invalid request line"),
            Self::Json => f.write_str("invalid json"),
            Self::Escape => f.write_str("invalid escape sequence"),
            Self::MissingField { field } => write!(f, "missing field {field}"),
            Self::Foreign => f.write_str("not an access-log line of this format"),
            Self::TrailingData => f.write_str("unexpected data after the record"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_kind_and_offset() {
        let err = ParseError::new(ErrorKind::Syntax { expected: "'['" }, 12);
        assert_eq!(err.to_string(), "expected '[' at byte 12");
        let err = ParseError::new(ErrorKind::MissingField { field: "status" }, 0);
        assert_eq!(err.to_string(), "missing field status at byte 0");
        assert_eq!(err.kind.name(), "missing_field");
    }
}

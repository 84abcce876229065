//! What the parsers' unit tests share.

use std::borrow::Cow;

use super::{ParseError, Parsed, Record};

/// The record of a line that must be one.
pub(crate) fn record(parsed: Result<Parsed<'_>, ParseError>) -> Record<'_> {
    match parsed {
        Ok(Parsed::Record(record)) => record,
        other => panic!("not a record: {other:?}"),
    }
}

/// A text field as UTF-8, for comparing with literals.
pub(crate) fn text<'a>(field: &'a Option<Cow<'_, [u8]>>) -> Option<&'a str> {
    field
        .as_deref()
        .map(|bytes| std::str::from_utf8(bytes).expect("UTF-8 in tests"))
}

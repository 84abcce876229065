//! Splitting a buffer of complete lines.

use std::iter::FusedIterator;

use memchr::memchr;

/// The lines of `buf`, split on `\n` with `memchr` (the `\n` is not included; a `\r` before it
/// is left for [`Format::parse`](super::Format::parse), which ignores it). A last line without
/// `\n` is yielded too, so pass a buffer that ends on a line boundary.
///
/// ```
/// let lines: Vec<&[u8]> = vantage_edge::format::lines(b"a\r\n\nb").collect();
/// assert_eq!(lines, [&b"a\r"[..], b"", b"b"]);
/// ```
#[must_use]
pub fn lines(buf: &[u8]) -> Lines<'_> {
    Lines { rest: buf }
}

/// Iterator over the lines of a buffer; see [`lines`].
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr(b'\n', self.rest) {
            Some(end) => (&self.rest[..end], &self.rest[end + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        Some(line)
    }
}

impl FusedIterator for Lines<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_newlines_and_keeps_a_last_partial_line() {
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"a\n").collect::<Vec<_>>(), [b"a"]);
        assert_eq!(lines(b"\n").collect::<Vec<_>>(), [b""]);
        assert_eq!(
            lines(b"a\n\nbc").collect::<Vec<_>>(),
            [&b"a"[..], b"", b"bc"]
        );
    }
}

//! Lexing helpers shared by the formats: a byte cursor for the hand-written fast paths,
//! integers and decimals parsed straight from bytes, request lines and unescaping.

use std::borrow::Cow;

use memchr::memchr;

use super::{ErrorKind, ParseError, Status};

/// Offset of the first `byte` in `haystack`: the first bytes inline (tokens are mostly short,
/// where `memchr`'s setup costs more than the scan), then `memchr`.
#[inline(always)]
pub(crate) fn find_byte(haystack: &[u8], byte: u8) -> Option<usize> {
    const INLINE: usize = 16;
    let head = &haystack[..haystack.len().min(INLINE)];
    if let Some(n) = head.iter().position(|&b| b == byte) {
        return Some(n);
    }
    memchr(byte, &haystack[head.len()..]).map(|n| head.len() + n)
}

/// A position in one line, for the hand-written parsers.
///
/// Every method that fails returns a [`ParseError`] at the cursor's offset: [`ErrorKind::Truncated`]
/// when the line ends where more was expected, [`ErrorKind::Syntax`] otherwise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) const fn new(line: &'a [u8]) -> Self {
        Self { line, pos: 0 }
    }

    /// A cursor at `pos` (clamped to the end of the line).
    pub(crate) fn at(line: &'a [u8], pos: usize) -> Self {
        Self {
            line,
            pos: pos.min(line.len()),
        }
    }

    pub(crate) const fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.line.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }

    pub(crate) fn is_at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.line.len());
    }

    pub(crate) const fn error(&self, kind: ErrorKind) -> ParseError {
        ParseError::new(kind, self.pos)
    }

    /// `Truncated` at the end of the line, `Syntax { expected }` elsewhere.
    pub(crate) fn expected(&self, expected: &'static str) -> ParseError {
        if self.is_at_end() {
            self.error(ErrorKind::Truncated)
        } else {
            self.error(ErrorKind::Syntax { expected })
        }
    }

    /// Consumes `byte` or fails.
    #[inline]
    pub(crate) fn byte(&mut self, byte: u8, expected: &'static str) -> Result<(), ParseError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.expected(expected))
        }
    }

    /// Consumes `tag` or fails; a line that ends inside the tag is truncated.
    #[inline]
    pub(crate) fn tag(&mut self, tag: &[u8], expected: &'static str) -> Result<(), ParseError> {
        let rest = self.rest();
        // Compared inline: tags are a few bytes, where a `memcmp` call costs more.
        if rest.len() >= tag.len() && rest.iter().zip(tag).all(|(a, b)| a == b) {
            self.pos += tag.len();
            return Ok(());
        }
        let common = rest.iter().zip(tag).take_while(|(a, b)| a == b).count();
        let at = Cursor::at(self.line, self.pos + common);
        Err(at.expected(expected))
    }

    /// The bytes up to (not including) the next `byte`, which is left unconsumed.
    #[inline]
    pub(crate) fn until(&mut self, byte: u8) -> Result<&'a [u8], ParseError> {
        let rest = self.rest();
        match find_byte(rest, byte) {
            Some(n) => {
                self.pos += n;
                Ok(&rest[..n])
            }
            None => {
                self.pos = self.line.len();
                Err(self.error(ErrorKind::Truncated))
            }
        }
    }

    /// The bytes up to the next space or the end of the line.
    #[inline]
    pub(crate) fn token(&mut self) -> &'a [u8] {
        let rest = self.rest();
        let n = find_byte(rest, b' ').unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }
}

/// A non-negative decimal integer (digits only, no sign, no overflow).
#[inline]
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d >= 10 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(value)
}

/// A status code: an optional `-` and 1 to 5 digits in the `i16` range.
#[inline]
pub(crate) fn parse_status(text: &[u8]) -> Option<Status> {
    let (negative, digits) = match text {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    if digits.len() > 5 {
        return None;
    }
    let value = i16::try_from(parse_u64(digits)?).ok()?;
    Some(Status::new(if negative { -value } else { value }))
}

/// `-` (the universal "absent" placeholder) or a value parsed by `parse`.
#[inline]
pub(crate) fn dash_or<T>(text: &[u8], parse: impl FnOnce(&[u8]) -> Option<T>) -> Option<Option<T>> {
    if text == b"-" {
        Some(None)
    } else {
        parse(text).map(Some)
    }
}

/// A decimal number `[-]int[.frac][(e|E)[+|-]exp]` as `mantissa × 10^exponent`.
///
/// At most 19 significant digits are kept; further digits are truncated, which is far below
/// the resolution of any logged duration or timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    pub(crate) negative: bool,
    mantissa: u64,
    exponent: i32,
}

const MAX_MANTISSA_DIGITS: u32 = 19;

impl Decimal {
    /// Parses the whole of `text`; JSON number syntax, leading zeros allowed.
    pub(crate) fn parse(text: &[u8]) -> Option<Self> {
        let (negative, mut rest) = match text {
            [b'-', rest @ ..] => (true, rest),
            rest => (false, rest),
        };
        let mut mantissa: u64 = 0;
        let mut digits = 0;
        let mut exponent: i32 = 0;
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if int_len == 0 {
            return None;
        }
        for &b in &rest[..int_len] {
            if digits < MAX_MANTISSA_DIGITS {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                if mantissa != 0 {
                    digits += 1;
                }
            } else {
                exponent = exponent.saturating_add(1);
            }
        }
        rest = &rest[int_len..];
        if let [b'.', frac @ ..] = rest {
            let frac_len = frac.iter().take_while(|b| b.is_ascii_digit()).count();
            if frac_len == 0 {
                return None;
            }
            for &b in &frac[..frac_len] {
                if digits < MAX_MANTISSA_DIGITS {
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    if mantissa != 0 {
                        digits += 1;
                    }
                    exponent = exponent.saturating_sub(1);
                }
            }
            rest = &frac[frac_len..];
        }
        if let [b'e' | b'E', exp @ ..] = rest {
            let (exp_negative, exp_digits) = match exp {
                [b'-', d @ ..] => (true, d),
                [b'+', d @ ..] => (false, d),
                d => (false, d),
            };
            if exp_digits.is_empty() || !exp_digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            // Clamp: anything beyond ±10^4 is zero or overflows in every use.
            let value = parse_u64(exp_digits.get(..6).unwrap_or(exp_digits))
                .map_or(10_000, |v| v.min(10_000));
            let value = i32::try_from(value).unwrap_or(10_000);
            exponent = exponent.saturating_add(if exp_negative { -value } else { value });
            rest = &[];
        }
        rest.is_empty().then_some(Self {
            negative,
            mantissa,
            exponent,
        })
    }

    /// `|self| × 10^scale` as an integer rounded half up; `None` when it overflows `u64`.
    pub(crate) fn scaled_magnitude(self, scale: i32) -> Option<u64> {
        let exponent = self.exponent.saturating_add(scale);
        if self.mantissa == 0 {
            return Some(0);
        }
        if exponent >= 0 {
            let factor = 10u64.checked_pow(u32::try_from(exponent).ok()?)?;
            self.mantissa.checked_mul(factor)
        } else {
            let Some(divisor) = 10u64.checked_pow(exponent.unsigned_abs()) else {
                // 10^20 or more: more than twice any u64 mantissa, rounds to zero.
                return Some(0);
            };
            let quotient = self.mantissa / divisor;
            let remainder = self.mantissa % divisor;
            Some(if remainder >= divisor - remainder {
                quotient + 1
            } else {
                quotient
            })
        }
    }

    /// A duration in units of `10^-scale` seconds, e.g. `scale = 9` for seconds to nanoseconds.
    ///
    /// Negative values are `Some(None)` (logged, but meaning "no value"); overflow is `None`.
    pub(crate) fn duration(self, scale: i32) -> Option<Option<u64>> {
        if self.negative && self.mantissa != 0 {
            return Some(None);
        }
        self.scaled_magnitude(scale).map(Some)
    }
}

/// A decimal duration in `text` scaled to nanoseconds (`scale` = 9 for seconds, 6 for
/// milliseconds, 0 for nanoseconds); `-` and negative values are `Some(None)`.
#[inline]
pub(crate) fn parse_duration(text: &[u8], scale: i32) -> Option<Option<u64>> {
    if text == b"-" {
        return Some(None);
    }
    Decimal::parse(text)?.duration(scale)
}

/// Whether `b` may appear in an HTTP method (an RFC 9110 token character).
#[inline]
pub(crate) const fn is_token_byte(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// The parts of a request line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub(crate) method: Option<&'a [u8]>,
    pub(crate) target: Option<&'a [u8]>,
    pub(crate) protocol: Option<&'a [u8]>,
}

/// Splits `METHOD SP target [SP protocol]` leniently, as a raw logged request line (nginx
/// `$request`, HAProxy `%r`) may be anything the client sent.
///
/// `-` or an empty line is an absent request. The method must be a token; the protocol is
/// the part after the last space when it starts with `HTTP/`, so a target with spaces is kept
/// whole. Returns `None` when the text is not a request line at all (binary junk, a lone
/// word): the caller keeps the record and leaves the request fields empty.
pub(crate) fn split_request_lenient(text: &[u8]) -> Option<RequestLine<'_>> {
    if text.is_empty() || text == b"-" {
        return Some(RequestLine::default());
    }
    let space = memchr(b' ', text)?;
    let (method, rest) = (&text[..space], &text[space + 1..]);
    if method.is_empty() || !method.iter().all(|&b| is_token_byte(b)) || rest.is_empty() {
        return None;
    }
    let (target, protocol) = match memchr::memrchr(b' ', rest) {
        Some(last) if rest[last + 1..].starts_with(b"HTTP/") => {
            (&rest[..last], Some(&rest[last + 1..]))
        }
        _ => (rest, None),
    };
    if target.is_empty() {
        return None;
    }
    Some(RequestLine {
        method: Some(method),
        target: Some(target),
        protocol,
    })
}

/// Splits `METHOD SP target SP protocol` strictly: exactly three space-free parts, each of
/// which may be `-` (absent), as Traefik and Envoy write them.
pub(crate) fn split_request_strict(text: &[u8]) -> Option<RequestLine<'_>> {
    let first = memchr(b' ', text)?;
    let second = first + 1 + memchr(b' ', &text[first + 1..])?;
    let (method, target, protocol) = (
        &text[..first],
        &text[first + 1..second],
        &text[second + 1..],
    );
    if method.is_empty()
        || target.is_empty()
        || protocol.is_empty()
        || memchr(b' ', protocol).is_some()
        || !method.iter().all(|&b| is_token_byte(b))
    {
        return None;
    }
    Some(RequestLine {
        method: non_dash(method),
        target: non_dash(target),
        protocol: non_dash(protocol),
    })
}

/// Hex digit value.
#[inline]
const fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Undoes a two-hex-digit escape introduced by `marker` (`\x` for nginx, `#` for HAProxy).
/// Sequences that are not `marker` + two hex digits are kept as they are.
fn unescape_hex_pairs<'a>(raw: &'a [u8], marker: &[u8]) -> Cow<'a, [u8]> {
    let Some(first) = memchr(marker[0], raw) else {
        return Cow::Borrowed(raw);
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        let rest = &raw[i..];
        if rest.starts_with(marker) {
            let m = marker.len();
            if let (Some(&h), Some(&l)) = (rest.get(m), rest.get(m + 1)) {
                if let (Some(h), Some(l)) = (hex(h), hex(l)) {
                    out.push(h << 4 | l);
                    i += m + 2;
                    continue;
                }
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// nginx `escape=default`: `\xHH` back to the byte.
pub(crate) fn unescape_nginx(raw: &[u8]) -> Cow<'_, [u8]> {
    unescape_hex_pairs(raw, b"\\x")
}

/// HAProxy: `#XX` back to the byte.
pub(crate) fn unescape_haproxy(raw: &[u8]) -> Cow<'_, [u8]> {
    unescape_hex_pairs(raw, b"#")
}

/// Whether `needle` occurs in the short `haystack` of a field: found from its first byte,
/// without the set-up a `memmem` searcher costs on every call.
#[inline]
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    memchr::memchr_iter(first, haystack).any(|at| haystack[at + 1..].starts_with(rest))
}

/// Traefik quoted fields: `\"` back to `"` (Traefik does not escape backslashes).
pub(crate) fn unescape_quote(raw: &[u8]) -> Cow<'_, [u8]> {
    if !contains(raw, b"\\\"") {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && raw.get(i + 1) == Some(&b'"') {
            out.push(b'"');
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// JSON string content (between the quotes) with its escapes undone.
///
/// # Errors
///
/// The offset in `raw` of an escape JSON does not define, or of a lone surrogate.
pub(crate) fn unescape_json(raw: &[u8]) -> Result<Cow<'_, [u8]>, usize> {
    let Some(first) = memchr(b'\\', raw) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let escape = raw.get(i + 1).copied().ok_or(i)?;
        let simple = match escape {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            _ => return Err(i),
        };
        if let Some(byte) = simple {
            out.push(byte);
            i += 2;
            continue;
        }
        let unit = hex4(raw.get(i + 2..i + 6)).ok_or(i)?;
        i += 6;
        let code = if (0xD800..0xDC00).contains(&unit) {
            let low = match raw.get(i..i + 2) {
                Some(b"\\u") => hex4(raw.get(i + 2..i + 6)).ok_or(i)?,
                _ => return Err(i),
            };
            if !(0xDC00..0xE000).contains(&low) {
                return Err(i);
            }
            i += 6;
            0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
        } else {
            unit
        };
        let ch = char::from_u32(code).ok_or(i)?;
        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
    }
    Ok(Cow::Owned(out))
}

fn hex4(digits: Option<&[u8]>) -> Option<u32> {
    let &[a, b, c, d] = digits? else {
        return None;
    };
    Some(
        u32::from(hex(a)?) << 12
            | u32::from(hex(b)?) << 8
            | u32::from(hex(c)?) << 4
            | u32::from(hex(d)?),
    )
}

/// `None` for the absent placeholder `-` and for an empty value.
#[inline]
pub(crate) fn non_dash(text: &[u8]) -> Option<&[u8]> {
    (!text.is_empty() && text != b"-").then_some(text)
}

#[cfg(test)]
mod tests;

//! The `traceparent` header value: `version-trace_id-parent_id-trace_flags`.

use std::fmt;
use std::str::FromStr;

use http::HeaderValue;

use super::ids::{SpanId, TraceId, decode_hex, decode_u64, encode_hex, is_lower_hex};

/// Length of a version `00` `traceparent`, and the least length of any later version.
const LEN: usize = 55;
/// Byte offsets of the dashes after the version, the trace-id and the parent-id.
const DASHES: [usize; 3] = [2, 35, 52];

/// The 8-bit `trace-flags` field of a `traceparent`.
///
/// Trace Context Level 2 defines two flags: [`SAMPLED`](Self::SAMPLED) (bit 0) and
/// [`RANDOM`](Self::RANDOM) (bit 1); the other six bits are reserved. A parsed version `00`
/// header keeps all eight bits, so that passing it on unchanged is exact;
/// [`TraceContext::child`](super::TraceContext::child) keeps the two known flags as received and
/// clears the reserved ones, as the specification asks of a vendor that writes its own
/// `traceparent`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Debug)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// The `sampled` flag: the caller may have recorded trace data.
    pub const SAMPLED: Self = Self(0x01);

    /// The `random-trace-id` flag (Level 2): at least the right-most 7 bytes of the trace id
    /// were drawn uniformly at random, so downstream systems may sample or shard on them.
    pub const RANDOM: Self = Self(0x02);

    /// Flags with exactly these bits.
    #[must_use]
    pub const fn new(bits: u8) -> Self {
        Self(bits)
    }

    /// All eight bits.
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the `sampled` flag is set.
    #[must_use]
    pub const fn sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }

    /// Whether the `random-trace-id` flag is set.
    #[must_use]
    pub const fn random(self) -> bool {
        self.0 & Self::RANDOM.0 != 0
    }

    /// These flags with the `sampled` flag set or cleared.
    #[must_use]
    pub const fn with_sampled(self, sampled: bool) -> Self {
        if sampled {
            Self(self.0 | Self::SAMPLED.0)
        } else {
            Self(self.0 & !Self::SAMPLED.0)
        }
    }

    /// Only the flags Level 2 defines (`sampled`, `random-trace-id`); reserved bits cleared.
    #[must_use]
    pub const fn known(self) -> Self {
        Self(self.0 & (Self::SAMPLED.0 | Self::RANDOM.0))
    }
}

/// A parsed `traceparent` header value: the trace, the caller's span and the trace flags.
///
/// [`from_bytes`](Self::from_bytes) (or [`str::parse`]) reads version `00` and, by the
/// forward-compatibility rules, any later version except the forbidden `ff`. `Display` and
/// [`to_header_value`](Self::to_header_value) always write version `00`, the highest this crate
/// knows, so a later version is downgraded as the specification asks. Parsing does not allocate.
///
/// ```
/// use vantage_instrument::trace_context::TraceParent;
///
/// let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let parent: TraceParent = value.parse()?;
/// assert_eq!(parent.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(parent.parent_id.to_string(), "00f067aa0ba902b7");
/// assert!(parent.flags.sampled());
/// assert_eq!(parent.to_string(), value);
/// # Ok::<(), vantage_instrument::trace_context::TraceParentError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TraceParent {
    /// The trace.
    pub trace_id: TraceId,
    /// The caller's span: the parent of the span that receives this header.
    pub parent_id: SpanId,
    /// The trace flags.
    pub flags: TraceFlags,
}

impl TraceParent {
    /// Parses a `traceparent` header value (without surrounding whitespace).
    ///
    /// Version `00` must be exactly 55 characters. A later version must be at least 55, its
    /// first four fields laid out as in version `00`, and followed by the end or a `-`; the rest
    /// is not looked at, and of its flags only those this crate knows (`sampled` and
    /// `random-trace-id`) are kept. Hex must be lowercase, and neither id may be all zeroes.
    ///
    /// # Errors
    ///
    /// Returns the [`TraceParentError`] that names the first rule the value breaks; the caller
    /// should then ignore the header and start a new trace.
    pub fn from_bytes(value: &[u8]) -> Result<Self, TraceParentError> {
        match Self::valid_version_00(value) {
            Some(parsed) => Ok(parsed),
            None => Self::from_bytes_checked(value),
        }
    }

    /// The common case in one pass: a valid version `00` value, its fields decoded and checked
    /// together; `None` for anything else, which [`from_bytes_checked`](Self::from_bytes_checked)
    /// then parses (a later version) or names the first rule it breaks.
    #[inline]
    fn valid_version_00(value: &[u8]) -> Option<Self> {
        if value.len() != LEN {
            return None;
        }
        let (trace_high, high_valid) = decode_u64(&value[3..19]);
        let (trace_low, low_valid) = decode_u64(&value[19..35]);
        let (parent_id, parent_valid) = decode_u64(&value[36..52]);
        let flags = decode_hex::<1>(&value[53..55]);
        let layout = value[..3] == *b"00-" && value[35] == b'-' && value[52] == b'-';
        let (true, Some([flags])) = (high_valid & low_valid & parent_valid & layout, flags) else {
            return None;
        };
        Some(Self {
            trace_id: TraceId::from_u128(u128::from(trace_high) << 64 | u128::from(trace_low))?,
            parent_id: SpanId::from_u64(parent_id)?,
            flags: TraceFlags::new(flags),
        })
    }

    /// [`from_bytes`](Self::from_bytes) field by field, each rule checked in turn.
    fn from_bytes_checked(value: &[u8]) -> Result<Self, TraceParentError> {
        let version = match value {
            [high, low, b'-', ..] => match decode_hex::<1>(&[*high, *low]) {
                Some([version]) => version,
                None => return Err(TraceParentError::Version),
            },
            _ => return Err(TraceParentError::Version),
        };
        if version == 0xff {
            return Err(TraceParentError::ForbiddenVersion);
        }
        let Some(fixed) = value.first_chunk::<LEN>() else {
            return Err(TraceParentError::Length { len: value.len() });
        };
        if version == 0 && value.len() > LEN {
            return Err(TraceParentError::Length { len: value.len() });
        }
        if DASHES.map(|offset| fixed[offset]) != [b'-'; 3] {
            let offset = DASHES.into_iter().find(|&offset| fixed[offset] != b'-');
            return Err(TraceParentError::Separator {
                offset: offset.unwrap_or_default(),
            });
        }
        let trace_id = decode_hex::<16>(&fixed[3..35]);
        let parent_id = decode_hex::<8>(&fixed[36..52]);
        let flags = decode_hex::<1>(&fixed[53..55]);
        let (Some(trace_id), Some(parent_id), Some([flags])) = (trace_id, parent_id, flags) else {
            let offset = (3..LEN)
                .find(|offset| !DASHES.contains(offset) && !is_lower_hex(fixed[*offset]))
                .unwrap_or(LEN);
            return Err(TraceParentError::NotLowercaseHex { offset });
        };
        if value.len() > LEN && value[LEN] != b'-' {
            return Err(TraceParentError::Separator { offset: LEN });
        }
        let trace_id = TraceId::from_bytes(trace_id).ok_or(TraceParentError::ZeroTraceId)?;
        let parent_id = SpanId::from_bytes(parent_id).ok_or(TraceParentError::ZeroParentId)?;
        let flags = TraceFlags::new(flags);
        Ok(Self {
            trace_id,
            parent_id,
            // A later version's other flags may mean something this version does not know.
            flags: if version == 0 { flags } else { flags.known() },
        })
    }

    /// The version `00` header value.
    #[must_use]
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.to_ascii())
            .expect("digits and dashes are valid header value bytes")
    }

    fn to_ascii(self) -> [u8; LEN] {
        let mut out = [b'-'; LEN];
        out[..2].copy_from_slice(b"00");
        out[3..35].copy_from_slice(&self.trace_id.to_hex());
        out[36..52].copy_from_slice(&self.parent_id.to_hex());
        encode_hex(&[self.flags.bits()], &mut out[53..]);
        out
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ascii = self.to_ascii();
        f.write_str(std::str::from_utf8(&ascii).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(value.as_bytes())
    }
}

/// Why a `traceparent` value is invalid. Offsets count bytes from the start of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceParentError {
    /// The value does not start with two lowercase hex digits and a `-`.
    #[error("traceparent does not start with a version of two lowercase hex digits and '-'")]
    Version,
    /// The version is `ff`, which the specification forbids.
    #[error("traceparent version ff is forbidden")]
    ForbiddenVersion,
    /// Version `00` is not exactly 55 characters, or a later version is shorter than that.
    #[error("traceparent has {len} characters: version 00 has 55, later versions at least 55")]
    Length {
        /// The length of the value.
        len: usize,
    },
    /// A field is not followed by a `-` where the layout puts one.
    #[error("traceparent has no '-' at byte {offset}")]
    Separator {
        /// Where the `-` should be.
        offset: usize,
    },
    /// An id or the flags hold a character that is not a lowercase hex digit.
    #[error("traceparent has a byte that is not a lowercase hex digit at byte {offset}")]
    NotLowercaseHex {
        /// The first such byte.
        offset: usize,
    },
    /// The trace-id is all zeroes.
    #[error("traceparent trace-id is all zeroes")]
    ZeroTraceId,
    /// The parent-id is all zeroes.
    #[error("traceparent parent-id is all zeroes")]
    ZeroParentId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn parent(trace_id: u128, parent_id: u64, flags: u8) -> TraceParent {
        TraceParent {
            trace_id: TraceId::from_u128(trace_id).unwrap(),
            parent_id: SpanId::from_u64(parent_id).unwrap(),
            flags: TraceFlags::new(flags),
        }
    }

    #[test]
    fn spec_examples_parse_and_format_back() {
        let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let expected = parent(
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            0x00f0_67aa_0ba9_02b7,
            0x01,
        );
        assert_eq!(sampled.parse(), Ok(expected));
        assert_eq!(expected.to_string(), sampled);
        assert_eq!(expected.to_header_value(), sampled);
        assert!(expected.flags.sampled());

        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let expected = TraceParent {
            flags: TraceFlags::default(),
            ..expected
        };
        assert_eq!(unsampled.parse(), Ok(expected));
        assert_eq!(expected.to_string(), unsampled);
        assert!(!expected.flags.sampled());
    }

    #[test]
    fn valid_values_give_exact_fields() {
        let t = 0x1234_5678_9012_3456_7890_1234_5678_9012;
        let p = 0x1234_5678_9012_3456;
        let cases: &[(&str, TraceParent)] = &[
            // Version 00 keeps every flag bit, reserved ones included.
            (
                "00-12345678901234567890123456789012-1234567890123456-01",
                parent(t, p, 0x01),
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-ff",
                parent(t, p, 0xff),
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-02",
                parent(t, p, 0x02),
            ),
            (
                "00-00000000000000000000000000000001-0000000000000001-00",
                parent(1, 1, 0x00),
            ),
            (
                "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-09",
                parent(u128::MAX, u64::MAX, 0x09),
            ),
            // A later version: the first four fields, then the end or '-' and anything.
            (
                "cc-12345678901234567890123456789012-1234567890123456-01",
                parent(t, p, 0x01),
            ),
            (
                "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
                parent(t, p, 0x01),
            ),
            (
                "01-12345678901234567890123456789012-1234567890123456-01-extra",
                parent(t, p, 0x01),
            ),
            (
                "fe-12345678901234567890123456789012-1234567890123456-00-",
                parent(t, p, 0x00),
            ),
            // Of a later version's flags only `sampled` and `random-trace-id` are kept.
            (
                "01-12345678901234567890123456789012-1234567890123456-ff",
                parent(t, p, 0x03),
            ),
            (
                "01-12345678901234567890123456789012-1234567890123456-fe-x",
                parent(t, p, 0x02),
            ),
            (
                "01-12345678901234567890123456789012-1234567890123456-fc-x",
                parent(t, p, 0x00),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(TraceParent::from_str(value), Ok(*expected), "{value}");
        }
    }

    #[test]
    fn later_versions_are_written_as_version_00() {
        let later: TraceParent = "cc-12345678901234567890123456789012-1234567890123456-07-x"
            .parse()
            .unwrap();
        assert_eq!(
            later.to_string(),
            "00-12345678901234567890123456789012-1234567890123456-03"
        );
    }

    #[test]
    fn invalid_values_give_the_exact_error() {
        use TraceParentError::*;
        let cases: &[(&str, TraceParentError)] = &[
            ("", Version),
            ("0", Version),
            ("00", Version),
            // Version: illegal characters, uppercase, too long, too short, forbidden.
            (
                ".0-12345678901234567890123456789012-1234567890123456-01",
                Version,
            ),
            (
                "0.-12345678901234567890123456789012-1234567890123456-01",
                Version,
            ),
            (
                "0A-12345678901234567890123456789012-1234567890123456-01",
                Version,
            ),
            (
                "000-12345678901234567890123456789012-1234567890123456-01",
                Version,
            ),
            (
                "0000-12345678901234567890123456789012-1234567890123456-01",
                Version,
            ),
            (
                "0-12345678901234567890123456789012-1234567890123456-01",
                Version,
            ),
            (
                "ff-12345678901234567890123456789012-1234567890123456-01",
                ForbiddenVersion,
            ),
            (
                "ff-12345678901234567890123456789012-1234567890123456-01-x",
                ForbiddenVersion,
            ),
            // Version 00 is exactly 55 characters.
            (
                "00-12345678901234567890123456789012-1234567890123456-01.",
                Length { len: 56 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
                Length { len: 84 },
            ),
            (
                "00-123456789012345678901234567890123-1234567890123456-01",
                Length { len: 56 },
            ),
            (
                "00-1234567890123456789012345678901-1234567890123456-01",
                Length { len: 54 },
            ),
            (
                "00-12345678901234567890123456789012-12345678901234567-01",
                Length { len: 56 },
            ),
            (
                "00-12345678901234567890123456789012-123456789012345-01",
                Length { len: 54 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-001",
                Length { len: 56 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-1",
                Length { len: 54 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-01 ",
                Length { len: 56 },
            ),
            // A later version needs 55 characters and then the end or '-'.
            (
                "cc-12345678901234567890123456789012-1234567890123456-1",
                Length { len: 54 },
            ),
            (
                "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
                Separator { offset: 55 },
            ),
            (
                "cc-123456789012345678901234567890123-1234567890123456-01",
                Separator { offset: 35 },
            ),
            (
                "cc-12345678901234567890123456789012-12345678901234567-01",
                Separator { offset: 52 },
            ),
            // Separators.
            (
                "00-12345678901234567890123456789012_1234567890123456-01",
                Separator { offset: 35 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456_01",
                Separator { offset: 52 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456---",
                NotLowercaseHex { offset: 53 },
            ),
            // Illegal characters and uppercase hex in each field.
            (
                "00-.2345678901234567890123456789012-1234567890123456-01",
                NotLowercaseHex { offset: 3 },
            ),
            (
                "00-1234567890123456789012345678901.-1234567890123456-01",
                NotLowercaseHex { offset: 34 },
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                NotLowercaseHex { offset: 4 },
            ),
            (
                "00-12345678901234567890123456789012-.234567890123456-01",
                NotLowercaseHex { offset: 36 },
            ),
            (
                "00-12345678901234567890123456789012-123456789012345.-01",
                NotLowercaseHex { offset: 51 },
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
                NotLowercaseHex { offset: 38 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-.0",
                NotLowercaseHex { offset: 53 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-0.",
                NotLowercaseHex { offset: 54 },
            ),
            (
                "00-12345678901234567890123456789012-1234567890123456-0A",
                NotLowercaseHex { offset: 54 },
            ),
            (
                "cc-1234567890123456789012345678901g-1234567890123456-01-x",
                NotLowercaseHex { offset: 34 },
            ),
            // All-zero ids.
            (
                "00-00000000000000000000000000000000-1234567890123456-01",
                ZeroTraceId,
            ),
            (
                "00-12345678901234567890123456789012-0000000000000000-01",
                ZeroParentId,
            ),
            (
                "cc-00000000000000000000000000000000-1234567890123456-01-x",
                ZeroTraceId,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(TraceParent::from_str(value), Err(*expected), "{value:?}");
        }
    }

    #[test]
    fn errors_read_as_lowercase_sentences() {
        assert_eq!(
            TraceParentError::Length { len: 54 }.to_string(),
            "traceparent has 54 characters: version 00 has 55, later versions at least 55"
        );
        assert_eq!(
            TraceParentError::NotLowercaseHex { offset: 3 }.to_string(),
            "traceparent has a byte that is not a lowercase hex digit at byte 3"
        );
    }

    #[test]
    fn flags_read_sampled_and_random_and_keep_only_the_known_bits() {
        let flags = TraceFlags::new(0x0a);
        assert!(!flags.sampled());
        assert!(flags.random());
        assert_eq!(flags.with_sampled(true).bits(), 0x0b);
        assert_eq!(flags.with_sampled(true).with_sampled(false).bits(), 0x0a);
        assert!(!TraceFlags::new(0x05).random());
        assert!(TraceFlags::new(0x05).sampled());
        assert_eq!(TraceFlags::new(0xff).known().bits(), 0x03);
        assert_eq!(TraceFlags::new(0xfe).known(), TraceFlags::RANDOM);
        assert_eq!(TraceFlags::new(0xfd).known(), TraceFlags::SAMPLED);
        assert_eq!(TraceFlags::new(0xfc).known(), TraceFlags::default());
    }

    #[test]
    fn invalid_bytes_never_panic() {
        assert_eq!(
            TraceParent::from_bytes(&[0xff; 60]),
            Err(TraceParentError::Version)
        );
        let mut value = format!("00-{TRACE}-{SPAN}-01").into_bytes();
        value[10] = 0xc3;
        assert_eq!(
            TraceParent::from_bytes(&value),
            Err(TraceParentError::NotLowercaseHex { offset: 10 })
        );
    }

    fn lower_hex(len: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[0-9a-f]{{{len}}}")).unwrap()
    }

    proptest! {
        /// The one-pass path gives exactly what the field-by-field path gives, whatever byte
        /// of a valid value is changed into whatever byte, and takes only valid version `00`.
        #[test]
        fn the_one_pass_path_agrees_with_the_checked_one(
            trace in "[0-9a-f]{32}",
            span in "[0-9a-f]{16}",
            flags in "[0-9a-f]{2}",
            at in 0..LEN,
            byte in any::<u8>(),
        ) {
            let mut value = format!("00-{trace}-{span}-{flags}").into_bytes();
            for value in [value.clone(), { value[at] = byte; value }] {
                let checked = TraceParent::from_bytes_checked(&value);
                prop_assert_eq!(TraceParent::from_bytes(&value), checked);
                if let Some(parsed) = TraceParent::valid_version_00(&value) {
                    prop_assert_eq!(Ok(parsed), checked);
                    prop_assert_eq!(&value[..2], b"00");
                }
            }
        }

        #[test]
        fn arbitrary_text_never_panics_and_valid_version_00_formats_back(value in ".{0,80}") {
            if let Ok(parent) = TraceParent::from_str(&value) {
                if value.starts_with("00") {
                    prop_assert_eq!(parent.to_string(), value);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(value in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = TraceParent::from_bytes(&value);
        }

        #[test]
        fn near_valid_text_never_panics(
            version in "[0-9a-fA-F.]{1,3}",
            trace in "[0-9a-fA-F.]{31,33}",
            span in "[0-9a-fA-F.]{15,17}",
            flags in "[0-9a-fA-F.]{1,3}",
            rest in "(-.{0,8})?",
        ) {
            let value = format!("{version}-{trace}-{span}-{flags}{rest}");
            if let Ok(parent) = TraceParent::from_str(&value) {
                prop_assert_eq!(parent.trace_id.to_string(), trace);
                prop_assert_eq!(parent.parent_id.to_string(), span);
            }
        }

        #[test]
        fn generated_version_00_values_format_back(
            trace in lower_hex(32),
            span in lower_hex(16),
            flags in lower_hex(2),
        ) {
            let value = format!("00-{trace}-{span}-{flags}");
            let zero = trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0');
            match TraceParent::from_str(&value) {
                Ok(parent) => prop_assert_eq!(parent.to_string(), value),
                Err(error) => {
                    prop_assert!(zero);
                    prop_assert!(matches!(
                        error,
                        TraceParentError::ZeroTraceId | TraceParentError::ZeroParentId
                    ));
                }
            }
        }
    }
}

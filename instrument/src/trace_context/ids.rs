//! Trace and span ids, their lowercase-hex form, and where new ones come from.
//!
//! New ids come from [`fastrand`]'s thread-local wyrand generator, seeded once per thread from
//! the standard library's per-process random keys and the thread id. It is fast (a few
//! nanoseconds, no lock, no system call per id) and not cryptographic: Trace Context asks ids to
//! be unique and random enough to not collide, and to carry no user-identifiable information,
//! which this does; an id is not a secret.
//!
//! All 128 bits of a new trace id are drawn uniformly, so its right-most 7 bytes are uniform
//! over `[0, 2^56)`, as Level 2 asks of a trace id that carries the `random-trace-id` flag
//! (the one all-zero draw, 1 in 2^128, is drawn again). That is why
//! [`TraceContext::new_root`](super::TraceContext::new_root) sets the flag.

use std::fmt;
use std::num::{NonZeroU64, NonZeroU128};

/// The id of a whole trace: 16 bytes, never all zero, written as 32 lowercase hex digits.
///
/// `Display` writes the hex form without allocating, so `tracing` fields can take it as
/// `trace_id = %ctx.trace_id()`. See the [module docs](super) for an example.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(NonZeroU128);

impl TraceId {
    /// A new random trace id from the thread-local generator: every bit uniform, so it may
    /// carry the `random-trace-id` flag.
    #[must_use]
    pub fn random() -> Self {
        loop {
            // Zero comes up once in 2^128 draws; it is not a valid id, so draw again.
            if let Some(id) = NonZeroU128::new(fastrand::u128(..)) {
                return Self(id);
            }
        }
    }

    /// The id whose big-endian number is `id`, or `None` for zero (an invalid id).
    #[must_use]
    pub const fn from_u128(id: u128) -> Option<Self> {
        match NonZeroU128::new(id) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The id as a big-endian number.
    #[must_use]
    pub const fn to_u128(self) -> u128 {
        self.0.get()
    }

    /// The id made of these 16 bytes, or `None` when they are all zero (an invalid id).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        Self::from_u128(u128::from_be_bytes(bytes))
    }

    /// The id's 16 bytes, in the order its hex form writes them.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.get().to_be_bytes()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0; 32];
        encode_hex(&self.to_bytes(), &mut hex);
        f.pad(ascii(&hex)?)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// The id of one span (one operation) within a trace: 8 bytes, never all zero, written as 16
/// lowercase hex digits.
///
/// In a `traceparent` header it is the `parent-id`: the span of the caller. See the
/// [module docs](super) for an example.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(NonZeroU64);

impl SpanId {
    /// A new random span id from the thread-local generator.
    #[must_use]
    pub fn random() -> Self {
        loop {
            // Zero comes up once in 2^64 draws; it is not a valid id, so draw again.
            if let Some(id) = NonZeroU64::new(fastrand::u64(..)) {
                return Self(id);
            }
        }
    }

    /// The id whose big-endian number is `id`, or `None` for zero (an invalid id).
    #[must_use]
    pub const fn from_u64(id: u64) -> Option<Self> {
        match NonZeroU64::new(id) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The id as a big-endian number.
    #[must_use]
    pub const fn to_u64(self) -> u64 {
        self.0.get()
    }

    /// The id made of these 8 bytes, or `None` when they are all zero (an invalid id).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        Self::from_u64(u64::from_be_bytes(bytes))
    }

    /// The id's 8 bytes, in the order its hex form writes them.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.get().to_be_bytes()
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0; 16];
        encode_hex(&self.to_bytes(), &mut hex);
        f.pad(ascii(&hex)?)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Marks a byte that is not a lowercase hex digit in [`HEX_VALUES`]; valid digits only use the
/// low four bits, so OR-ing all looked-up values and testing this bit once checks a whole field.
const NOT_HEX: u8 = 0x10;

/// The value of every lowercase hex digit, [`NOT_HEX`] for every other byte.
static HEX_VALUES: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        table[HEX_DIGITS[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// Writes `bytes` as lowercase hex into `out`, two digits per byte (`out` is twice as long).
pub(super) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
        pair[1] = HEX_DIGITS[usize::from(byte & 0x0f)];
    }
}

/// Decodes `2 * N` lowercase hex digits into `N` bytes; `None` if any byte is not one
/// (uppercase included: Trace Context only allows lowercase).
#[inline]
pub(super) fn decode_hex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    let mut out = [0; N];
    let mut seen = 0;
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let high = HEX_VALUES[usize::from(pair[0])];
        let low = HEX_VALUES[usize::from(pair[1])];
        seen |= high | low;
        *byte = (high << 4) | low;
    }
    (seen & NOT_HEX == 0 && hex.len() == 2 * N).then_some(out)
}

/// Whether `byte` is a lowercase hex digit.
pub(super) fn is_lower_hex(byte: u8) -> bool {
    HEX_VALUES[usize::from(byte)] != NOT_HEX
}

/// The text of a buffer this module filled with ASCII.
fn ascii(buf: &[u8]) -> Result<&str, fmt::Error> {
    std::str::from_utf8(buf).map_err(|_| fmt::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_displays_as_32_lowercase_hex_digits() {
        let id = TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736).unwrap();
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            format!("{id:?}"),
            "TraceId(4bf92f3577b34da6a3ce929d0e0e4736)"
        );
        let small = TraceId::from_u128(1).unwrap();
        assert_eq!(small.to_string(), "00000000000000000000000000000001");
        assert_eq!(
            format!("[{small:>34}]"),
            "[  00000000000000000000000000000001]"
        );
    }

    #[test]
    fn span_id_displays_as_16_lowercase_hex_digits() {
        let id = SpanId::from_u64(0x00f0_67aa_0ba9_02b7).unwrap();
        assert_eq!(id.to_string(), "00f067aa0ba902b7");
        assert_eq!(format!("{id:?}"), "SpanId(00f067aa0ba902b7)");
        assert_eq!(
            SpanId::from_u64(u64::MAX).unwrap().to_string(),
            "ffffffffffffffff"
        );
    }

    #[test]
    fn all_zero_ids_do_not_exist() {
        assert_eq!(TraceId::from_u128(0), None);
        assert_eq!(TraceId::from_bytes([0; 16]), None);
        assert_eq!(SpanId::from_u64(0), None);
        assert_eq!(SpanId::from_bytes([0; 8]), None);
    }

    #[test]
    fn bytes_and_numbers_are_big_endian() {
        let mut bytes = [0; 16];
        bytes[15] = 0x2a;
        assert_eq!(TraceId::from_bytes(bytes).map(TraceId::to_u128), Some(0x2a));
        assert_eq!(TraceId::from_u128(0x2a).map(TraceId::to_bytes), Some(bytes));
        assert_eq!(
            SpanId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]).map(SpanId::to_u64),
            Some(0x0102_0304_0506_0708)
        );
        assert_eq!(
            SpanId::from_u64(0x0102_0304_0506_0708).map(SpanId::to_bytes),
            Some([1, 2, 3, 4, 5, 6, 7, 8])
        );
    }

    #[test]
    fn random_ids_differ() {
        let traces: std::collections::HashSet<TraceId> =
            (0..1000).map(|_| TraceId::random()).collect();
        let spans: std::collections::HashSet<SpanId> =
            (0..1000).map(|_| SpanId::random()).collect();
        assert_eq!(traces.len(), 1000);
        assert_eq!(spans.len(), 1000);
    }

    #[test]
    fn hex_decoding_accepts_only_lowercase_digits() {
        assert_eq!(decode_hex::<2>(b"09af"), Some([0x09, 0xaf]));
        assert_eq!(decode_hex::<2>(b"09AF"), None);
        assert_eq!(decode_hex::<2>(b"09ag"), None);
        assert_eq!(decode_hex::<2>(b"09a"), None);
        assert_eq!(decode_hex::<1>(b"-1"), None);
        assert!(is_lower_hex(b'f'));
        assert!(!is_lower_hex(b'F'));
        let mut out = [0; 4];
        encode_hex(&[0xab, 0x01], &mut out);
        assert_eq!(&out, b"ab01");
    }
}

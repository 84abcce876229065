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

    /// The 32 lowercase hex digits as ASCII bytes, without the formatting machinery of
    /// `Display`: for writers that assemble a log line.
    #[must_use]
    #[inline]
    pub fn to_hex(self) -> [u8; 32] {
        let id = self.to_u128();
        let mut hex = [0; 32];
        hex[..16].copy_from_slice(&encode_word((id >> 64) as u64));
        hex[16..].copy_from_slice(&encode_word(id as u64));
        hex
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(ascii(&self.to_hex())?)
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

    /// The 16 lowercase hex digits as ASCII bytes; see [`TraceId::to_hex`].
    #[must_use]
    #[inline]
    pub fn to_hex(self) -> [u8; 16] {
        encode_word(self.to_u64())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(ascii(&self.to_hex())?)
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
///
/// Eight bytes at a time ([`encode_word`]): ids are written into every log line of a traced
/// request, so this is on the hot path.
#[inline]
pub(super) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    let mut words = bytes.chunks_exact(8);
    let mut digits = out.chunks_exact_mut(16);
    for (word, digits) in (&mut words).zip(&mut digits) {
        let word = u64::from_be_bytes(word.try_into().unwrap_or_default());
        digits.copy_from_slice(&encode_word(word));
    }
    let rest = out.len() - 2 * words.remainder().len();
    for (pair, byte) in out[rest..].chunks_exact_mut(2).zip(words.remainder()) {
        pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
        pair[1] = HEX_DIGITS[usize::from(byte & 0x0f)];
    }
}

/// The 16 lowercase hex digits of `word`, most significant first, with no table and no branch.
#[inline]
fn encode_word(word: u64) -> [u8; 16] {
    const LOW_HALVES: u128 = 0x0000_0000_FFFF_FFFF_0000_0000_FFFF_FFFF;
    const LOW_QUARTERS: u128 = 0x0000_FFFF_0000_FFFF_0000_FFFF_0000_FFFF;
    const LOW_BYTES: u128 = 0x00FF_00FF_00FF_00FF_00FF_00FF_00FF_00FF;
    const LOW_NIBBLES: u128 = 0x0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0F0F;
    const EACH: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    // Spread the 16 nibbles into the 16 bytes of a u128, keeping their order.
    let mut x = u128::from(word);
    x = (x | (x << 32)) & LOW_HALVES;
    x = (x | (x << 16)) & LOW_QUARTERS;
    x = (x | (x << 8)) & LOW_BYTES;
    x = (x | (x << 4)) & LOW_NIBBLES;
    // Each byte is now a digit value d (0..=15): '0' + d, plus 39 more ('a' - '0' - 10) where
    // d > 9, which is where d + 6 reaches 16. No byte carries into the next.
    let letters = ((x + 6 * EACH) >> 4) & EACH;
    (x + u128::from(b'0') * EACH + 39 * letters).to_be_bytes()
}

/// Decodes `2 * N` lowercase hex digits into `N` bytes; `None` if any byte is not one
/// (uppercase included: Trace Context only allows lowercase).
///
/// Eight digits at a time in one `u64` ([`decode_word`]), the validity of all of them checked
/// once at the end; what is left over (the one-byte version and flags) through [`HEX_VALUES`].
#[inline]
pub(super) fn decode_hex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    let mut valid = true;
    let mut words = hex.chunks_exact(8);
    let mut bytes = out.chunks_exact_mut(4);
    for (word, bytes) in (&mut words).zip(&mut bytes) {
        let digits = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let (decoded, word_valid) = decode_word(digits);
        bytes.copy_from_slice(&decoded);
        valid &= word_valid;
    }
    let mut seen = 0;
    for (byte, pair) in bytes
        .into_remainder()
        .iter_mut()
        .zip(words.remainder().chunks_exact(2))
    {
        let high = HEX_VALUES[usize::from(pair[0])];
        let low = HEX_VALUES[usize::from(pair[1])];
        seen |= high | low;
        *byte = (high << 4) | low;
    }
    (valid & (seen & NOT_HEX == 0)).then_some(out)
}

/// The number that the 16 lowercase hex digits at the start of `hex` write (most significant
/// first), and whether all 16 are such digits (the number means nothing when not): two
/// [`decode_word`]s, for parsers of a fixed layout that check every field at once.
#[inline]
pub(super) fn decode_u64(hex: &[u8]) -> (u64, bool) {
    let word = |at: usize| {
        let digits = hex
            .get(at..at + 8)
            .and_then(|digits| digits.try_into().ok());
        decode_word(u64::from_le_bytes(digits.unwrap_or([0; 8])))
    };
    let ((high, high_valid), (low, low_valid)) = (word(0), word(8));
    let number = u64::from(u32::from_be_bytes(high)) << 32 | u64::from(u32::from_be_bytes(low));
    (number, high_valid & low_valid)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `x` (each below `0x80`) that lie in `lo..=hi`, as their high bits. Adding
/// `0x80 - lo` to such a byte sets its high bit exactly when it is at least `lo`, and adding
/// `0x7f - hi` exactly when it is above `hi`; neither sum carries into the next byte.
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let at_least_lo = x.wrapping_add(ONES * (0x80 - lo as u64));
    let above_hi = x.wrapping_add(ONES * (0x7f - hi as u64));
    at_least_lo & !above_hi & HIGHS
}

/// Eight lowercase hex digits (the first one in the lowest byte) as four bytes, and whether
/// all eight are such digits (the bytes mean nothing when not).
#[inline]
fn decode_word(digits: u64) -> ([u8; 4], bool) {
    let valid = (digits & HIGHS == 0)
        & (in_range(digits, b'0', b'9') | in_range(digits, b'a', b'f') == HIGHS);
    // '0'..'9' are 0x30..0x39 and 'a'..'f' 0x61..0x66: the low nibble, plus 9 for letters
    // (bit 6 set).
    let values = (digits & (ONES * 0x0f)) + ((digits >> 6) & ONES) * 9;
    // Pairs of digits into bytes, then the bytes side by side.
    let mask = 0x000f_000f_000f_000f;
    let pairs = ((values & mask) << 4) | ((values >> 8) & mask);
    let pairs = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    let bytes = (pairs | (pairs >> 16)) as u32;
    (bytes.to_le_bytes(), valid)
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

    /// The plain table decoder the word decoder must agree with.
    fn decode_by_table<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
        let mut out = [0; N];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let (high, low) = (
                HEX_VALUES[usize::from(pair[0])],
                HEX_VALUES[usize::from(pair[1])],
            );
            if (high | low) & NOT_HEX != 0 {
                return None;
            }
            *byte = (high << 4) | low;
        }
        (hex.len() == 2 * N).then_some(out)
    }

    #[test]
    fn the_word_decoder_agrees_with_the_table_on_every_byte_in_every_position() {
        let base = *b"0123456789abcdef0123456789abcdef";
        assert_eq!(
            decode_hex::<16>(&base),
            Some([
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                0xcd, 0xef
            ])
        );
        for position in 0..32 {
            for byte in 0..=255u8 {
                let mut hex = base;
                hex[position] = byte;
                assert_eq!(
                    decode_hex::<16>(&hex),
                    decode_by_table::<16>(&hex),
                    "byte {byte:#04x} at {position}"
                );
            }
        }
        assert_eq!(decode_hex::<8>(b"00f067aa0ba902b"), None);
        assert_eq!(decode_hex::<1>(b"0f"), Some([0x0f]));
        assert_eq!(decode_hex::<1>(b"0F"), None);
    }

    proptest::proptest! {
        #[test]
        fn the_word_encoder_writes_what_format_does(bytes in proptest::array::uniform17(0u8..)) {
            let mut out = [0; 34];
            encode_hex(&bytes, &mut out);
            let expected: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            proptest::prop_assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
        }
    }

    #[test]
    fn the_word_encoder_at_every_digit_boundary() {
        for word in [
            0,
            u64::MAX,
            0x0123_4567_89ab_cdef,
            0x9a9a_9a9a_9a9a_9a9a,
            0xa9a9_a9a9_a9a9_a9a9,
        ] {
            assert_eq!(encode_word(word), *format!("{word:016x}").as_bytes());
        }
    }

    #[test]
    fn to_hex_is_the_display_form() {
        let trace = TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736).unwrap();
        let span = SpanId::from_u64(0x00f0_67aa_0ba9_02b7).unwrap();
        assert_eq!(&trace.to_hex(), b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(&span.to_hex(), b"00f067aa0ba902b7");
    }

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

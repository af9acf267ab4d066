//! Primitive data representations (§1.5): complete readers that run inside one packet's
//! exact remaining-length slice, and the matching writers.

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError, ValidationError};
use crate::version::PacketId;

/// The largest value a Variable Byte Integer can hold (§1.5.5).
pub const VAR_INT_MAX: u32 = 268_435_455;

/// Longest string or binary field (§1.5.4, §1.5.6).
pub const FIELD_MAX: usize = u16::MAX as usize;

// Complete readers: each takes one field off the front of the input and returns
// `(value, rest)`, or the error — `Truncated` when the field does not fit, which inside
// one packet's exact remaining-length slice is a Malformed Packet (§4.13). No parser
// combinator layer: every packet is decoded with these, in straight-line code.

#[inline(always)]
pub(crate) fn split_u8(input: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    match input.split_first() {
        Some((&byte, rest)) => Ok((byte, rest)),
        None => Err(DecodeError::Truncated),
    }
}

#[inline(always)]
pub(crate) fn split_u16(input: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    match input.split_first_chunk::<2>() {
        Some((bytes, rest)) => Ok((u16::from_be_bytes(*bytes), rest)),
        None => Err(DecodeError::Truncated),
    }
}

#[inline(always)]
pub(crate) fn split_u32(input: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match input.split_first_chunk::<4>() {
        Some((bytes, rest)) => Ok((u32::from_be_bytes(*bytes), rest)),
        None => Err(DecodeError::Truncated),
    }
}

/// A Variable Byte Integer inside a packet body (§1.5.5).
#[inline]
pub(crate) fn split_var_int(input: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    // The one-byte form (values below 128) is by far the most frequent.
    if let Some((&byte, rest)) = input.split_first()
        && byte < 0x80
    {
        return Ok((u32::from(byte), rest));
    }
    match decode_var_int(input) {
        VarIntStatus::Complete { value, len } => Ok((value, input.get(len..).unwrap_or_default())),
        VarIntStatus::Incomplete => Err(DecodeError::Truncated),
        VarIntStatus::Invalid => Err(DecodeError::InvalidVarInt),
    }
}

/// Binary Data: a two-byte length and that many bytes (§1.5.6).
#[inline(always)]
pub(crate) fn split_binary(input: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let (len, rest) = split_u16(input)?;
    rest.split_at_checked(usize::from(len)).ok_or(DecodeError::Truncated)
}

/// A packet identifier that must be non-zero (\[MQTT-3.1.1: 2.3.1-1\], \[MQTT-5.0: 2.2.1-3\]).
#[inline(always)]
pub(crate) fn split_packet_id(input: &[u8]) -> Result<(PacketId, &[u8]), DecodeError> {
    let (id, rest) = split_u16(input)?;
    match PacketId::new(id) {
        Some(id) => Ok((id, rest)),
        None => Err(DecodeError::ZeroPacketId),
    }
}

pub(crate) enum VarIntStatus {
    Complete { value: u32, len: usize },
    Incomplete,
    Invalid,
}

/// Decode a Variable Byte Integer, checking both rules of §1.5.5: at most four bytes,
/// and "The encoded value MUST use the minimum number of bytes necessary to represent
/// the value" \[MQTT-5.0: 1.5.5-1\] (a multi-byte encoding whose last byte is 0 is not minimal).
#[inline]
pub(crate) fn decode_var_int(input: &[u8]) -> VarIntStatus {
    let mut value: u32 = 0;
    for (index, &byte) in input.iter().take(4).enumerate() {
        // index < 4, so the shift is at most 21 and the value stays below 2^28.
        value |= u32::from(byte & 0x7F).checked_shl(7u32.saturating_mul(index as u32)).unwrap_or(0);
        if byte & 0x80 == 0 {
            if index > 0 && byte == 0 {
                return VarIntStatus::Invalid;
            }
            return VarIntStatus::Complete { value, len: index.saturating_add(1) };
        }
    }
    if input.len() >= 4 { VarIntStatus::Invalid } else { VarIntStatus::Incomplete }
}

/// Read a Variable Byte Integer (§1.5.5) from the start of `input`: `Ok(Some((value,
/// bytes used)))`, `Ok(None)` when `input` ends inside it, or
/// [`DecodeError::InvalidVarInt`] for more than four bytes or a non-minimal encoding
/// \[MQTT-5.0: 1.5.5-1\]. Write one with [`crate::raw::put_var_int`].
pub fn read_var_int(input: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    match decode_var_int(input) {
        VarIntStatus::Complete { value, len } => Ok(Some((value, len))),
        VarIntStatus::Incomplete => Ok(None),
        VarIntStatus::Invalid => Err(DecodeError::InvalidVarInt),
    }
}

/// Bytes needed to encode `value` as a Variable Byte Integer.
pub const fn var_int_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Append a minimally encoded Variable Byte Integer (§1.5.5).
#[inline]
pub(crate) fn put_var_int(buf: &mut impl BufMut, value: u32) {
    if let Ok(byte) = u8::try_from(value)
        && byte < 0x80
    {
        return buf.put_u8(byte);
    }
    let (bytes, len) = var_int_bytes(value);
    buf.put_slice(bytes.get(..len).unwrap_or_default());
}

/// Write a fixed header (first byte and Remaining Length) and the first two bytes of the
/// variable header in one `put_slice`: one capacity check instead of four to seven.
#[inline(always)]
pub(crate) fn put_fixed_header(buf: &mut impl BufMut, first_byte: u8, remaining: u32, next: [u8; 2]) {
    let ([v0, v1, v2, v3], len) = var_int_bytes(remaining);
    let [n0, n1] = next;
    // Fixed-size writes compile to plain stores; a variable-length `put_slice` would be a
    // `memcpy` call.
    match len {
        1 => buf.put_u32(u32::from_be_bytes([first_byte, v0, n0, n1])),
        2 => buf.put_slice(&[first_byte, v0, v1, n0, n1]),
        3 => buf.put_slice(&[first_byte, v0, v1, v2, n0, n1]),
        _ => buf.put_slice(&[first_byte, v0, v1, v2, v3, n0, n1]),
    }
}

/// A field's two-byte length prefix (callers check the length first, [`check_field`]).
#[inline]
pub(crate) fn field_prefix(bytes: &[u8]) -> [u8; 2] {
    u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes()
}

/// A Variable Byte Integer as bytes and how many of them are used: one `put_slice`
/// instead of one `put_u8` (and its capacity check) per byte.
#[inline]
pub(crate) fn var_int_bytes(value: u32) -> ([u8; 4], usize) {
    let byte = |shift: u32| ((value >> shift) & 0x7F) as u8;
    if value < 1 << 7 {
        ([byte(0), 0, 0, 0], 1)
    } else if value < 1 << 14 {
        ([byte(0) | 0x80, byte(7), 0, 0], 2)
    } else if value < 1 << 21 {
        ([byte(0) | 0x80, byte(7) | 0x80, byte(14), 0], 3)
    } else {
        ([byte(0) | 0x80, byte(7) | 0x80, byte(14) | 0x80, byte(21)], 4)
    }
}

/// Check UTF-8: well-formed, no surrogates \[MQTT-3.1.1: 1.5.3-1\] \[MQTT-5.0: 1.5.4-1\] (Rust's `str` guarantees
/// both). `simdutf8` validates 64 bytes at a time (and falls back to `core` for shorter
/// input), behind a safe API.
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
}

/// Whether `bytes` contains U+0000. Word at a time: for the short strings of MQTT this
/// is several times cheaper than `memchr` (`<[u8]>::contains`) or a byte loop.
#[inline]
pub(crate) fn has_nul(bytes: &[u8]) -> bool {
    scan_words(bytes, has_zero_byte) != 0
}

/// Bytes equal to `byte` in every lane of a word.
pub(crate) const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// Non-zero if some byte of `word` is zero (exact: the classic "has zero byte" test).
#[inline(always)]
pub(crate) const fn has_zero_byte(word: u64) -> u64 {
    word.wrapping_sub(splat(0x01)) & !word & splat(0x80)
}

/// Up to 8 bytes as a little-endian word (byte `k` in lane `k`), padded with `a`.
#[inline(always)]
pub(crate) fn le_word(chunk: &[u8]) -> u64 {
    match <[u8; 8]>::try_from(chunk) {
        Ok(word) => u64::from_le_bytes(word),
        Err(_) => chunk.iter().rev().fold(splat(b'a'), |word, &byte| (word << 8) | u64::from(byte)),
    }
}

/// OR of `test` over `bytes` read as 8-byte words: whole words, then the last 8 bytes
/// (overlapping the previous word: a lane test looks at a byte twice, harmlessly), or, for
/// fewer than 8 bytes, one word padded with `a`, which no test here looks for.
#[inline(always)]
pub(crate) fn scan_words(bytes: &[u8], test: impl Fn(u64) -> u64) -> u64 {
    let Some(last) = bytes.last_chunk::<8>() else {
        return if bytes.is_empty() { 0 } else { test(le_word(bytes)) };
    };
    let mut found = test(u64::from_le_bytes(*last));
    let mut rest = bytes;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        if tail.is_empty() {
            break;
        }
        found |= test(u64::from_le_bytes(*word));
        rest = tail;
    }
    found
}

/// A run of fields checked once and iterated lazily afterwards (a property block, a
/// topic filter list), with a small word of metadata for its owner.
///
/// When the bytes are valid UTF-8 as a whole — the common case: ASCII strings, small
/// numbers and lengths — they are kept as a `&str`, and every string inside is taken as
/// a sub-slice (`str::get` checks that both ends are character boundaries, which is
/// exactly the condition for the sub-slice to be valid UTF-8 on its own). Nothing is
/// validated twice. Otherwise each string is validated when it is read.
#[derive(Clone, Copy)]
pub(crate) enum Block<'a> {
    Text(&'a str, u16),
    Bytes(&'a [u8], u16),
}

impl<'a> Block<'a> {
    /// Check the bytes as a whole once (one SIMD pass for blocks of 64 bytes or more).
    #[inline]
    pub(crate) fn new(raw: &'a [u8], meta: u16) -> Self {
        match utf8(raw) {
            Ok(text) => Self::Text(text, meta),
            Err(_) => Self::Bytes(raw, meta),
        }
    }

    pub(crate) const fn bytes(&self) -> &'a [u8] {
        match *self {
            Self::Text(text, _) => text.as_bytes(),
            Self::Bytes(bytes, _) => bytes,
        }
    }

    pub(crate) const fn meta(&self) -> u16 {
        match *self {
            Self::Text(_, meta) | Self::Bytes(_, meta) => meta,
        }
    }

    pub(crate) const fn with_meta(self, meta: u16) -> Self {
        match self {
            Self::Text(text, _) => Self::Text(text, meta),
            Self::Bytes(bytes, _) => Self::Bytes(bytes, meta),
        }
    }

    /// A reader from the start.
    pub(crate) const fn reader(self) -> BlockReader<'a> {
        BlockReader { block: self, rest: self.bytes() }
    }
}

/// Reads the fields of a [`Block`] in order.
#[derive(Clone)]
pub(crate) struct BlockReader<'a> {
    block: Block<'a>,
    rest: &'a [u8],
}

impl<'a> BlockReader<'a> {
    pub(crate) const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Give up on the rest (after an error while iterating an unchecked block).
    pub(crate) fn stop(&mut self) {
        self.rest = &[];
    }

    #[inline(always)]
    fn take<T>(&mut self, read: Result<(T, &'a [u8]), DecodeError>) -> Result<T, DecodeError> {
        let (value, rest) = read?;
        self.rest = rest;
        Ok(value)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.take(split_u8(self.rest))
    }

    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.take(split_u16(self.rest))
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take(split_u32(self.rest))
    }

    #[inline]
    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        self.take(split_var_int(self.rest))
    }

    #[inline]
    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        self.take(self.rest.split_at_checked(len).ok_or(DecodeError::Truncated))
    }

    #[inline]
    pub(crate) fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        self.take(split_binary(self.rest))
    }

    /// A UTF-8 Encoded String (§1.5.4): well-formed UTF-8 without surrogates
    /// \[MQTT-3.1.1: 1.5.3-1\] \[MQTT-5.0: 1.5.4-1\] (Rust's `str` guarantees both) and no
    /// U+0000 \[MQTT-3.1.1: 1.5.3-2\] \[MQTT-5.0: 1.5.4-2\]. U+FEFF is kept as is
    /// \[MQTT-3.1.1: 1.5.3-3\] \[MQTT-5.0: 1.5.4-3\].
    #[inline]
    pub(crate) fn string(&mut self) -> Result<&'a str, DecodeError> {
        let text = self.utf8_field()?;
        if has_nul(text.as_bytes()) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(text)
    }

    /// A string field, UTF-8 checked (U+0000 is the caller's to check).
    #[inline]
    pub(crate) fn utf8_field(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.binary()?;
        match self.block {
            Block::Text(text, _) => {
                // The field ends where the rest starts.
                let end = text.len().saturating_sub(self.rest.len());
                text.get(end.saturating_sub(bytes.len())..end).ok_or(DecodeError::InvalidUtf8)
            }
            Block::Bytes(..) => utf8(bytes),
        }
    }
}

/// The body must end exactly where the last field does.
pub(crate) fn expect_end(input: &[u8]) -> Result<(), DecodeError> {
    if input.is_empty() { Ok(()) } else { Err(DecodeError::TrailingBytes) }
}

/// Encoded length of a string or binary field.
pub(crate) const fn field_len(bytes: &[u8]) -> usize {
    bytes.len().saturating_add(2)
}

/// Add lengths. Every length here is bounded by a slice's size, so the sum cannot
/// really overflow; saturating keeps that true by construction.
pub(crate) fn sum<const N: usize>(parts: [usize; N]) -> usize {
    parts.into_iter().fold(0, usize::saturating_add)
}

pub(crate) fn check_field(bytes: &[u8]) -> Result<(), EncodeError> {
    Ok(check_len(bytes.len())?)
}

/// A string or binary field holds at most 65,535 bytes (§1.5.4, §1.5.6).
pub(crate) fn check_len(len: usize) -> Result<(), ValidationError> {
    if len > FIELD_MAX { Err(ValidationError::TooLong { len }) } else { Ok(()) }
}

/// Write a length-prefixed field; callers check the length first ([`check_field`]).
#[inline]
pub(crate) fn put_field(buf: &mut impl BufMut, bytes: &[u8]) {
    buf.put_u16(u16::from_be_bytes(field_prefix(bytes)));
    buf.put_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(bytes: &[u8]) -> Result<&str, DecodeError> {
        Block::new(bytes, 0).reader().string()
    }

    #[test]
    fn decodes_var_int_boundaries() {
        for (bytes, value) in [
            (&[0x00][..], 0),
            (&[0x7F], 127),
            (&[0x80, 0x01], 128),
            (&[0xFF, 0x7F], 16_383),
            (&[0x80, 0x80, 0x01], 16_384),
            (&[0xFF, 0xFF, 0x7F], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
            (&[0xFF, 0xFF, 0xFF, 0x7F], VAR_INT_MAX),
        ] {
            let (v, rest) = split_var_int(bytes).expect("valid");
            assert_eq!((rest.len(), v), (0, value));
            assert_eq!(var_int_len(value), bytes.len());
            let mut out = Vec::new();
            put_var_int(&mut out, value);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn rejects_non_minimal_var_int() {
        assert_eq!(split_var_int(&[0x80, 0x00]).map(|(v, _)| v), Err(DecodeError::InvalidVarInt));
        assert_eq!(split_var_int(&[0xFF, 0x80, 0x00]).map(|(v, _)| v), Err(DecodeError::InvalidVarInt));
    }

    #[test]
    fn rejects_five_byte_var_int() {
        assert_eq!(split_var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).map(|(v, _)| v), Err(DecodeError::InvalidVarInt));
    }

    #[test]
    fn rejects_surrogate_and_null_in_strings() {
        // U+D800 encoded as if it were a scalar value.
        assert_eq!(string(&[0, 3, 0xED, 0xA0, 0x80]), Err(DecodeError::InvalidUtf8));
        assert_eq!(string(&[0, 3, b'a', 0, b'b']), Err(DecodeError::NullCharacter));
        // Overlong encoding of '/'.
        assert_eq!(string(&[0, 2, 0xC0, 0xAF]), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn keeps_byte_order_mark() {
        let s = string(&[0, 4, 0xEF, 0xBB, 0xBF, b'x']).expect("valid");
        assert_eq!(s, "\u{FEFF}x");
    }
}

//! Primitive data representations (§1.5): complete `nom` parsers that run inside one
//! packet's exact remaining-length slice, and the matching writers.

use bytes::BufMut;
use nom::Parser;
use nom::error::{ErrorKind, ParseError};

use crate::error::{DecodeError, EncodeError};
use crate::version::PacketId;

/// The result type of every body parser.
pub(crate) type PResult<'a, T> = nom::IResult<&'a [u8], T, DecodeError>;

/// Inside a packet body every parser is complete, so nom only fails for lack of bytes.
impl<'a> ParseError<&'a [u8]> for DecodeError {
    fn from_error_kind(_input: &'a [u8], _kind: ErrorKind) -> Self {
        DecodeError::Truncated
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Turn a rule violation into a parser failure (not a backtrackable error: there is no
/// alternative interpretation of a malformed MQTT packet).
pub(crate) fn fail<T>(error: DecodeError) -> Result<T, nom::Err<DecodeError>> {
    Err(nom::Err::Failure(error))
}

/// Unwrap a body parser's result into a plain decode error.
pub(crate) fn finish<T>(result: Result<T, nom::Err<DecodeError>>) -> Result<T, DecodeError> {
    result.map_err(|e| match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        nom::Err::Incomplete(_) => DecodeError::Truncated,
    })
}

/// The largest value a Variable Byte Integer can hold (§1.5.5).
pub const VAR_INT_MAX: u32 = 268_435_455;

/// Longest string or binary field (§1.5.4, §1.5.6).
pub const FIELD_MAX: usize = u16::MAX as usize;

pub(crate) fn u8(input: &[u8]) -> PResult<'_, u8> {
    nom::number::complete::be_u8(input)
}

pub(crate) fn u16(input: &[u8]) -> PResult<'_, u16> {
    nom::number::complete::be_u16(input)
}

pub(crate) fn u32(input: &[u8]) -> PResult<'_, u32> {
    nom::number::complete::be_u32(input)
}

pub(crate) fn take(count: usize) -> impl FnMut(&[u8]) -> PResult<'_, &[u8]> {
    move |input| nom::bytes::complete::take(count).parse(input)
}

/// A Variable Byte Integer inside a packet body (§1.5.5).
pub(crate) fn var_int(input: &[u8]) -> PResult<'_, u32> {
    match decode_var_int(input) {
        VarIntStatus::Complete { value, len } => Ok((input.get(len..).unwrap_or_default(), value)),
        VarIntStatus::Incomplete => fail(DecodeError::Truncated),
        VarIntStatus::Invalid => fail(DecodeError::InvalidVarInt),
    }
}

pub(crate) enum VarIntStatus {
    Complete { value: u32, len: usize },
    Incomplete,
    Invalid,
}

/// Decode a Variable Byte Integer, checking both rules of §1.5.5: at most four bytes,
/// and "The encoded value MUST use the minimum number of bytes necessary to represent
/// the value" \[MQTT-1.5.5-1\] (a multi-byte encoding whose last byte is 0 is not minimal).
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

/// Bytes needed to encode `value` as a Variable Byte Integer.
pub const fn var_int_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

pub(crate) fn put_var_int(buf: &mut impl BufMut, mut value: u32) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            buf.put_u8(byte);
            return;
        }
        buf.put_u8(byte | 0x80);
    }
}

/// Check the rules every UTF-8 Encoded String obeys: well-formed UTF-8 without
/// surrogates \[MQTT-1.5.4-1\] (Rust's `str` guarantees both) and no U+0000
/// \[MQTT-1.5.4-2\]. U+FEFF is kept as is \[MQTT-1.5.4-3\].
pub(crate) fn check_str(bytes: &[u8]) -> Result<&str, DecodeError> {
    let text = core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
    if has_nul(bytes) {
        return Err(DecodeError::NullCharacter);
    }
    Ok(text)
}

/// Whether `bytes` contains U+0000. A branch-free OR-fold: for the short strings of MQTT
/// it is several times cheaper than `memchr` (`<[u8]>::contains`).
#[inline]
pub(crate) fn has_nul(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |acc, &b| acc | (b == 0))
}

/// A UTF-8 Encoded String (§1.5.4).
pub(crate) fn string(input: &[u8]) -> PResult<'_, &str> {
    let (input, bytes) = binary(input)?;
    match check_str(bytes) {
        Ok(text) => Ok((input, text)),
        Err(e) => fail(e),
    }
}

/// A UTF-8 Encoded String from bytes that were validated before (iterators over checked
/// blocks): only the `&str` conversion is repeated, which safe Rust requires.
pub(crate) fn checked_string(input: &[u8]) -> PResult<'_, &str> {
    let (input, bytes) = binary(input)?;
    match core::str::from_utf8(bytes) {
        Ok(text) => Ok((input, text)),
        Err(_) => fail(DecodeError::InvalidUtf8),
    }
}

/// Binary Data: a two-byte length and that many bytes (§1.5.6).
pub(crate) fn binary(input: &[u8]) -> PResult<'_, &[u8]> {
    let (input, len) = u16(input)?;
    take(usize::from(len))(input)
}

/// A packet identifier that must be non-zero (\[MQTT-2.3.1-1\], \[MQTT-2.2.1-3\]).
pub(crate) fn packet_id(input: &[u8]) -> PResult<'_, PacketId> {
    let (input, id) = u16(input)?;
    match PacketId::new(id) {
        Some(id) => Ok((input, id)),
        None => fail(DecodeError::ZeroPacketId),
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
    if bytes.len() > FIELD_MAX { Err(EncodeError::FieldTooLong) } else { Ok(()) }
}

/// Write a length-prefixed field; callers check the length first ([`check_field`]).
pub(crate) fn put_field(buf: &mut impl BufMut, bytes: &[u8]) {
    buf.put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    buf.put_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let (rest, v) = var_int(bytes).expect("valid");
            assert_eq!((rest.len(), v), (0, value));
            assert_eq!(var_int_len(value), bytes.len());
            let mut out = Vec::new();
            put_var_int(&mut out, value);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn rejects_non_minimal_var_int() {
        assert_eq!(finish(var_int(&[0x80, 0x00])), Err(DecodeError::InvalidVarInt));
        assert_eq!(finish(var_int(&[0xFF, 0x80, 0x00])), Err(DecodeError::InvalidVarInt));
    }

    #[test]
    fn rejects_five_byte_var_int() {
        assert_eq!(finish(var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F])), Err(DecodeError::InvalidVarInt));
    }

    #[test]
    fn rejects_surrogate_and_null_in_strings() {
        // U+D800 encoded as if it were a scalar value.
        assert_eq!(finish(string(&[0, 3, 0xED, 0xA0, 0x80])), Err(DecodeError::InvalidUtf8));
        assert_eq!(finish(string(&[0, 3, b'a', 0, b'b'])), Err(DecodeError::NullCharacter));
        // Overlong encoding of '/'.
        assert_eq!(finish(string(&[0, 2, 0xC0, 0xAF])), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn keeps_byte_order_mark() {
        let (_, s) = string(&[0, 4, 0xEF, 0xBB, 0xBF, b'x']).expect("valid");
        assert_eq!(s, "\u{FEFF}x");
    }
}

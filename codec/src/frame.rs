//! Framing (§2.1, §2.2.3): the fixed header is read incrementally, so a partial header
//! or body is "incomplete" rather than an error, and the maximum packet
//! size is checked from the header alone, before the body is buffered.

use crate::error::{FrameError, StreamError};
use crate::packet::{Packet, PacketType};
use crate::version::ProtocolVersion;
use crate::wire::{self, VarIntStatus};

/// The largest packet the protocol can express: 1 + 4 header bytes + 268,435,455.
pub const PROTOCOL_MAX_PACKET_SIZE: usize = 1 + 4 + wire::VAR_INT_MAX as usize;

/// The default maximum packet size: 1 MiB. Explicit and configurable
/// ([`DecoderConfig::max_packet_size`]); larger packets are refused from their header.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1024 * 1024;

/// The most a decoder reserves ahead of data actually received.
pub const MAX_RESERVE: usize = 8 * 1024;

/// The outcome of a parse on possibly incomplete input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// Done.
    Complete(T),
    /// More bytes are needed; `frame_len` is the whole frame's size once the header is
    /// complete.
    Incomplete {
        /// Size of the whole frame, when known.
        frame_len: Option<usize>,
    },
}

impl<T> Status<T> {
    /// The value, if complete.
    pub fn complete(self) -> Option<T> {
        match self {
            Self::Complete(v) => Some(v),
            Self::Incomplete { .. } => None,
        }
    }
}

/// A parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Packet type and flags.
    pub first_byte: u8,
    /// The Remaining Length.
    pub remaining_len: usize,
    /// Bytes taken by the fixed header (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// The whole frame's size.
    pub const fn frame_len(&self) -> usize {
        self.header_len.saturating_add(self.remaining_len)
    }
}

/// Read a fixed header. The first byte is checked as soon as it arrives (packet type and
/// reserved flags, \[MQTT-3.1.1: 2.2.2-2\], \[MQTT-5.0: 2.1.3-1\]), the Remaining Length for its encoding
/// \[MQTT-5.0: 1.5.5-1\], and the frame's size against `max_packet_size`.
pub fn parse_fixed_header(
    input: &[u8],
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Status<FixedHeader>, StreamError> {
    Ok(match fixed_header(input, version, max_packet_size)? {
        Status::Complete((_, header)) => Status::Complete(header),
        Status::Incomplete { frame_len } => Status::Incomplete { frame_len },
    })
}

/// [`parse_fixed_header`], also returning the checked packet type.
#[inline]
fn fixed_header(
    input: &[u8],
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Status<(PacketType, FixedHeader)>, StreamError> {
    let [first_byte, rest @ ..] = input else {
        return Ok(Status::Incomplete { frame_len: None });
    };
    let first_byte = *first_byte;
    let packet_type = PacketType::check_first_byte(first_byte, version)?;
    let (remaining_len, len_len) = match wire::decode_var_int(rest) {
        VarIntStatus::Complete { value, len } => (value as usize, len),
        VarIntStatus::Incomplete => return Ok(Status::Incomplete { frame_len: None }),
        VarIntStatus::Invalid => return Err(FrameError::InvalidRemainingLength.into()),
    };
    let header = FixedHeader { first_byte, remaining_len, header_len: len_len.saturating_add(1) };
    if header.frame_len() > max_packet_size {
        return Err(FrameError::PacketTooLarge { size: header.frame_len(), limit: max_packet_size }.into());
    }
    Ok(Status::Complete((packet_type, header)))
}

/// Decode one packet from the start of `input`, returning it and the bytes it used.
/// The body is parsed with complete parsers inside its exact remaining-length slice.
#[inline]
pub fn decode_packet(
    input: &[u8],
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Status<(Packet<'_>, usize)>, StreamError> {
    let (packet_type, header) = match fixed_header(input, version, max_packet_size)? {
        Status::Complete(header) => header,
        Status::Incomplete { frame_len } => return Ok(Status::Incomplete { frame_len }),
    };
    let Some(body) = input.get(header.header_len..header.frame_len()) else {
        return Ok(Status::Incomplete { frame_len: Some(header.frame_len()) });
    };
    let flags = header.first_byte & 0x0F;
    // PUBLISH, the most frequent packet, is built straight into the result: going through
    // `Result<Packet>` would move the whole (CONNECT-sized) `Packet` once more.
    let complete = |packet| Ok(Status::Complete((packet, header.frame_len())));
    match (packet_type, version) {
        (PacketType::Publish, Some(version)) => {
            return match crate::packet::Publish::decode(flags, body, version) {
                Ok(publish) => complete(Packet::Publish(publish)),
                Err(e) => Err(e.into()),
            };
        }
        (PacketType::PubAck, Some(version)) => {
            return match crate::packet::PublishResponse::decode(packet_type, body, version) {
                Ok(ack) => complete(Packet::PubAck(ack)),
                Err(e) => Err(e.into()),
            };
        }
        (PacketType::Connect, _) => {
            return match crate::packet::Connect::decode_with_flags(flags, body) {
                Ok(connect) => complete(Packet::Connect(connect)),
                Err(e) => Err(e.into()),
            };
        }
        _ => {}
    }
    let packet = Packet::decode_checked(packet_type, flags, body, version)?;
    Ok(Status::Complete((packet, header.frame_len())))
}

/// Settings of a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest accepted packet, fixed header included (default
    /// [`DEFAULT_MAX_PACKET_SIZE`]; at most [`PROTOCOL_MAX_PACKET_SIZE`] matters).
    pub max_packet_size: usize,
    /// The protocol version, if known; otherwise learnt from CONNECT.
    pub version: Option<ProtocolVersion>,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self { max_packet_size: DEFAULT_MAX_PACKET_SIZE, version: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn header_prefixes_are_incomplete() {
        assert_eq!(parse_fixed_header(&[], None, 100), Ok(Status::Incomplete { frame_len: None }));
        assert_eq!(
            parse_fixed_header(&[0x30, 0x80], Some(ProtocolVersion::V5), 1000),
            Ok(Status::Incomplete { frame_len: None })
        );
    }

    #[test]
    fn rejects_bad_first_byte_at_once() {
        assert_eq!(
            parse_fixed_header(&[0x00], None, 100),
            Err(StreamError::Packet(DecodeError::ReservedPacketType(0)))
        );
        assert_eq!(
            parse_fixed_header(&[0x80], Some(ProtocolVersion::V3_1_1), 100),
            Err(StreamError::Packet(DecodeError::InvalidFlags { packet_type: PacketType::Subscribe, flags: 0 }))
        );
        assert_eq!(
            parse_fixed_header(&[0x41], Some(ProtocolVersion::V3_1_1), 100),
            Err(StreamError::Packet(DecodeError::InvalidFlags { packet_type: PacketType::PubAck, flags: 1 }))
        );
        assert_eq!(
            parse_fixed_header(&[0xF0], Some(ProtocolVersion::V3_1_1), 100),
            Err(StreamError::Packet(DecodeError::ReservedPacketType(15)))
        );
    }

    #[test]
    fn rejects_oversized_packet_from_header() {
        // 256 MiB claimed in 5 bytes.
        let header = [0x30, 0xFF, 0xFF, 0xFF, 0x7F];
        assert_eq!(
            parse_fixed_header(&header, Some(ProtocolVersion::V5), DEFAULT_MAX_PACKET_SIZE),
            Err(StreamError::Frame(FrameError::PacketTooLarge { size: 268_435_460, limit: DEFAULT_MAX_PACKET_SIZE }))
        );
    }

    #[test]
    fn rejects_five_byte_remaining_length() {
        let header = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        assert_eq!(
            parse_fixed_header(&header, Some(ProtocolVersion::V5), PROTOCOL_MAX_PACKET_SIZE),
            Err(StreamError::Frame(FrameError::InvalidRemainingLength))
        );
    }
}

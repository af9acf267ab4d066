//! `tokio-util` codec (feature `tokio-codec`): frames a byte stream into
//! [`OwnedPacket`]s and encodes [`Packet`]s.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{EncodeError, StreamError};
use crate::frame::{self, DecoderConfig, MAX_RESERVE, Status};
use crate::owned::OwnedPacket;
use crate::packet::{Packet, PacketType};
use crate::version::ProtocolVersion;

/// Errors of [`MqttCodec`]: the stream's, the encoder's, or I/O.
#[derive(Debug)]
#[non_exhaustive]
pub enum CodecError {
    /// The peer sent something invalid: close the connection.
    Stream(StreamError),
    /// The caller asked to encode an invalid packet.
    Encode(EncodeError),
    /// The transport failed.
    Io(std::io::Error),
}

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Stream(e) => e.fmt(f),
            Self::Encode(e) => e.fmt(f),
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CodecError {}

impl From<std::io::Error> for CodecError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// A `tokio_util::codec` codec for MQTT. Decoded packets are [`OwnedPacket`]s sharing
/// the read buffer's memory; the version is learnt from CONNECT unless configured.
#[derive(Debug, Default)]
pub struct MqttCodec {
    config: DecoderConfig,
    dead: bool,
}

impl MqttCodec {
    /// A codec with these settings.
    pub const fn new(config: DecoderConfig) -> Self {
        Self { config, dead: false }
    }

    /// The protocol version, once known.
    pub const fn version(&self) -> Option<ProtocolVersion> {
        self.config.version
    }
}

impl Decoder for MqttCodec {
    type Item = OwnedPacket;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<OwnedPacket>, CodecError> {
        if self.dead {
            return Err(CodecError::Stream(StreamError::Dead));
        }
        let result = frame::parse_fixed_header(src, self.config.version, self.config.max_packet_size);
        let header = match result {
            Ok(Status::Complete(header)) => header,
            Ok(Status::Incomplete { .. }) => return Ok(None),
            Err(e) => {
                self.dead = true;
                return Err(CodecError::Stream(e));
            }
        };
        if src.len() < header.frame_len() {
            src.reserve(header.frame_len().saturating_sub(src.len()).min(MAX_RESERVE));
            return Ok(None);
        }
        let is_connect = header.first_byte >> 4 == PacketType::Connect as u8;
        let Some(version) = self.config.version.or(is_connect.then_some(ProtocolVersion::V5)) else {
            self.dead = true;
            let packet_type = PacketType::from_first_byte(header.first_byte, None).unwrap_or(PacketType::Connect);
            return Err(CodecError::Stream(crate::DecodeError::UnexpectedPacket(packet_type).into()));
        };
        let frame = src.split_to(header.frame_len()).freeze();
        match OwnedPacket::from_frame(frame, version) {
            Ok(packet) => {
                self.config.version.get_or_insert(packet.version());
                Ok(Some(packet))
            }
            Err(e) => {
                self.dead = true;
                Err(CodecError::Stream(e))
            }
        }
    }
}

impl Encoder<&Packet<'_>> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: &Packet<'_>, dst: &mut BytesMut) -> Result<(), CodecError> {
        let version = match packet {
            Packet::Connect(connect) => connect.version,
            _ => self.config.version.unwrap_or(ProtocolVersion::V5),
        };
        dst.reserve(packet.encoded_len(version));
        packet.encode(version, dst).map_err(CodecError::Encode)
    }
}

impl Encoder<&OwnedPacket> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: &OwnedPacket, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(packet.frame());
        Ok(())
    }
}

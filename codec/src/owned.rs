//! An owned packet for storage: the validated frame in a shared [`Bytes`], from which the
//! borrowed [`Packet`] view is re-read on demand (no field is ever copied).

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::{self, PROTOCOL_MAX_PACKET_SIZE, Status};
use crate::packet::Packet;
use crate::version::ProtocolVersion;

/// A complete, validated packet that owns (a shared reference to) its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPacket {
    frame: Bytes,
    header_len: usize,
    version: ProtocolVersion,
}

impl OwnedPacket {
    /// Validate one complete frame (fixed header included) under `version` and keep it.
    /// A CONNECT frame carries its own version, which is then the one recorded.
    pub fn from_frame(frame: Bytes, version: ProtocolVersion) -> Result<Self, crate::StreamError> {
        let (header_len, version) = match frame::parse_fixed_header(&frame, Some(version), PROTOCOL_MAX_PACKET_SIZE)? {
            Status::Complete(header) if header.frame_len() == frame.len() => {
                let body = frame.get(header.header_len..).unwrap_or_default();
                let packet = Packet::decode(header.first_byte, body, Some(version))?;
                let version = match &packet {
                    Packet::Connect(connect) => connect.version,
                    _ => version,
                };
                (header.header_len, version)
            }
            Status::Complete(header) if header.frame_len() < frame.len() => {
                return Err(DecodeError::TrailingBytes.into());
            }
            _ => return Err(DecodeError::Truncated.into()),
        };
        Ok(Self { frame, header_len, version })
    }

    /// Encode `packet` into a new owned frame.
    pub fn from_packet(packet: &Packet<'_>, version: ProtocolVersion) -> Result<Self, EncodeError> {
        let mut buf = BytesMut::with_capacity(packet.encoded_len(version));
        packet.encode(version, &mut buf)?;
        let version = match packet {
            Packet::Connect(connect) => connect.version,
            _ => version,
        };
        let header_len = buf.len().saturating_sub(packet.remaining_len(version));
        Ok(Self { frame: buf.freeze(), header_len, version })
    }

    /// The borrowed view. The frame was validated when this value was made, so this only
    /// fails if that invariant were broken.
    pub fn packet(&self) -> Result<Packet<'_>, DecodeError> {
        let first_byte = self.frame.first().copied().ok_or(DecodeError::Truncated)?;
        let body = self.frame.get(self.header_len..).ok_or(DecodeError::Truncated)?;
        Packet::decode(first_byte, body, Some(self.version))
    }

    /// The whole frame, ready to send.
    pub const fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The protocol version the frame was validated under.
    pub const fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// A PUBLISH payload as a shared `Bytes` (no copy); empty for other packets.
    pub fn payload(&self) -> Bytes {
        match self.packet() {
            Ok(Packet::Publish(publish)) => self.frame.slice_ref(publish.payload),
            _ => Bytes::new(),
        }
    }
}

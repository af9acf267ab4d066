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

    /// Keep a frame that [`crate::stream::Framing`] has just validated under `version`.
    #[cfg(feature = "tokio-codec")]
    pub(crate) fn from_validated(frame: Bytes, version: ProtocolVersion) -> Self {
        let header_len = match frame.get(1..).map(crate::wire::decode_var_int) {
            Some(crate::wire::VarIntStatus::Complete { len, .. }) => len.saturating_add(1),
            _ => frame.len(),
        };
        Self { frame, header_len, version }
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

    /// The borrowed view, re-read from the frame (nothing is copied).
    pub fn packet(&self) -> Packet<'_> {
        let first_byte = self.frame.first().copied().unwrap_or_default();
        let body = self.frame.get(self.header_len..).unwrap_or_default();
        match Packet::decode(first_byte, body, Some(self.version)) {
            Ok(packet) => packet,
            // The frame was validated when this value was made, and `Bytes` is immutable.
            Err(error) => unreachable!("an OwnedPacket holds a validated frame, yet: {error}"),
        }
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
            Packet::Publish(publish) => self.frame.slice_ref(publish.payload),
            _ => Bytes::new(),
        }
    }
}

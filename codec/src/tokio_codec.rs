//! `tokio-util` codec (feature `tokio-codec`): frames a byte stream into
//! [`OwnedPacket`]s and encodes [`Packet`]s, with the framing of [`crate::StreamDecoder`].

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{EncodeError, StreamError};
use crate::frame::{DecoderConfig, Status};
use crate::owned::OwnedPacket;
use crate::packet::Packet;
use crate::stream::Framing;
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

/// A `tokio_util::codec` codec for MQTT, built on the same framing as [`StreamDecoder`]
/// (maximum packet size from the header, no resynchronisation after an error, version
/// learnt from CONNECT). Decoded packets are [`OwnedPacket`]s sharing the read buffer's
/// memory. Encoding needs the connection's version: it is the configured one, or learnt
/// from the CONNECT received (a server) or sent (a client); before that, encoding anything
/// but a CONNECT fails with [`EncodeError::UnknownVersion`].
///
/// ```
/// use bytes::BytesMut;
/// use mqttkit_codec::{Connect, MqttCodec, MqttStr, Packet, ProtocolVersion};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// // A client: the CONNECT it sends sets the version its codec decodes with.
/// let mut client = MqttCodec::default();
/// let connect = Connect::new(ProtocolVersion::V3_1_1, MqttStr::new("c1")?, true, 60);
/// let mut wire = BytesMut::new();
/// client.encode(&Packet::Connect(connect), &mut wire)?;
/// assert_eq!(client.version(), Some(ProtocolVersion::V3_1_1));
///
/// // A server: learns the version from the CONNECT it receives, byte by byte here.
/// let mut server = MqttCodec::default();
/// let mut received = BytesMut::new();
/// let mut packets = Vec::new();
/// for byte in wire.iter() {
///     received.extend_from_slice(&[*byte]);
///     packets.extend(server.decode(&mut received)?);
/// }
/// assert!(matches!(packets[0].packet(), Packet::Connect(c) if c.client_id == "c1"));
/// assert_eq!(server.version(), Some(ProtocolVersion::V3_1_1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`StreamDecoder`]: crate::StreamDecoder
#[derive(Debug, Default)]
pub struct MqttCodec {
    framing: Framing,
}

impl MqttCodec {
    /// A codec with these settings.
    pub const fn new(config: DecoderConfig) -> Self {
        Self { framing: Framing::new(config) }
    }

    /// The protocol version, once known.
    pub const fn version(&self) -> Option<ProtocolVersion> {
        self.framing.config.version
    }
}

impl Decoder for MqttCodec {
    type Item = OwnedPacket;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<OwnedPacket>, CodecError> {
        let (used, version) = match self.framing.next(src).map_err(CodecError::Stream)? {
            Status::Complete((Packet::Connect(connect), used)) => (used, connect.version),
            Status::Complete((_, used)) => (used, self.framing.config.version.unwrap_or(ProtocolVersion::V5)),
            Status::Incomplete { .. } => {
                src.reserve(self.framing.reserve_hint(src));
                return Ok(None);
            }
        };
        Ok(Some(OwnedPacket::from_validated(src.split_to(used).freeze(), version)))
    }
}

impl Encoder<&Packet<'_>> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: &Packet<'_>, dst: &mut BytesMut) -> Result<(), CodecError> {
        let version = match packet {
            Packet::Connect(connect) => *self.framing.config.version.get_or_insert(connect.version),
            _ => self.framing.config.version.ok_or(CodecError::Encode(EncodeError::UnknownVersion))?,
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

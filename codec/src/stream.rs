//! A streaming decoder over a byte buffer: feed it bytes as they arrive and take packets
//! out as they complete, borrowed from its buffer.

use bytes::{Buf, BytesMut};

use crate::error::StreamError;
use crate::frame::{self, DecoderConfig, MAX_RESERVE, Status};
use crate::packet::Packet;
use crate::version::ProtocolVersion;

/// The state of a byte stream's framing, shared by [`StreamDecoder`] (which owns its
/// buffer) and the tokio codec (which works on tokio's): limits, the version once known,
/// and whether an error has ended the stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct Framing {
    pub(crate) config: DecoderConfig,
    dead: bool,
}

impl Framing {
    pub(crate) const fn new(config: DecoderConfig) -> Self {
        Self { config, dead: false }
    }

    pub(crate) const fn is_dead(&self) -> bool {
        self.dead
    }

    /// The next packet at the start of `buf` and its frame length. The version is learnt
    /// from a CONNECT; any error ends the stream for good.
    #[inline]
    pub(crate) fn next<'b>(&mut self, buf: &'b [u8]) -> Result<Status<(Packet<'b>, usize)>, StreamError> {
        if self.dead {
            return Err(StreamError::Dead);
        }
        match frame::decode_packet(buf, self.config.version, self.config.max_packet_size) {
            Ok(Status::Complete((packet, used))) => {
                if let (None, Packet::Connect(connect)) = (self.config.version, &packet) {
                    self.config.version = Some(connect.version);
                }
                Ok(Status::Complete((packet, used)))
            }
            Ok(incomplete) => Ok(incomplete),
            Err(e) => {
                self.dead = true;
                Err(e)
            }
        }
    }

    /// How much to reserve ahead of `buf`: the rest of the current frame, at least one
    /// byte (enough to read a header and refuse it), never more than
    /// `min(max_packet_size, 8 KiB)`.
    pub(crate) fn reserve_hint(&self, buf: &[u8]) -> usize {
        let wanted = match frame::parse_fixed_header(buf, self.config.version, self.config.max_packet_size) {
            Ok(Status::Complete(header)) => header.frame_len().saturating_sub(buf.len()),
            _ => 0,
        };
        wanted.clamp(1, MAX_RESERVE.min(self.config.max_packet_size).max(1))
    }
}

/// Decodes a byte stream into packets.
///
/// * A partial packet is not an error: [`Self::next_packet`] returns `Ok(None)`.
/// * The maximum packet size is checked from the fixed header, before the body arrives;
///   [`Self::read_buffer`] never reserves more than `min(limit, 8 KiB)` ahead of data.
/// * After any error the stream is dead: every later call returns [`StreamError::Dead`]
///   and no later frame is ever decoded.
/// * The protocol version is learnt from CONNECT unless given in the config.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: BytesMut,
    /// Bytes of the packet handed out by the last `next_packet`, released on the next call.
    pending: usize,
    framing: Framing,
}

impl StreamDecoder {
    /// A decoder with these settings.
    pub fn new(config: DecoderConfig) -> Self {
        Self { buf: BytesMut::new(), pending: 0, framing: Framing::new(config) }
    }

    /// A decoder for a connection whose version is already known (e.g. a client after
    /// sending CONNECT).
    pub fn with_version(version: ProtocolVersion) -> Self {
        Self::new(DecoderConfig { version: Some(version), ..DecoderConfig::default() })
    }

    /// The protocol version, once known.
    pub const fn version(&self) -> Option<ProtocolVersion> {
        self.framing.config.version
    }

    /// Set the protocol version (e.g. after a CONNECT was accepted).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.framing.config.version = Some(version);
    }

    /// The maximum packet size in force.
    pub const fn max_packet_size(&self) -> usize {
        self.framing.config.max_packet_size
    }

    /// Whether an error has ended the stream.
    pub const fn is_dead(&self) -> bool {
        self.framing.is_dead()
    }

    /// Bytes buffered and not yet handed out as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.pending)
    }

    /// Append received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.release();
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer to read into (e.g. with `AsyncReadExt::read_buf`), with spare capacity
    /// reserved for the rest of the current frame but never more than
    /// `min(max_packet_size, 8 KiB)`.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        self.release();
        let reserve = self.framing.reserve_hint(&self.buf);
        self.buf.reserve(reserve);
        &mut self.buf
    }

    fn release(&mut self) {
        let pending = core::mem::take(&mut self.pending).min(self.buf.len());
        self.buf.advance(pending);
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed.
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, StreamError> {
        self.release();
        match self.framing.next(&self.buf)? {
            Status::Complete((packet, used)) => {
                self.pending = used;
                Ok(Some(packet))
            }
            Status::Incomplete { .. } => Ok(None),
        }
    }
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

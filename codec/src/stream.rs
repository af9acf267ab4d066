//! A streaming decoder over a byte buffer: feed it bytes as they arrive and take packets
//! out as they complete, borrowed from its buffer.

use bytes::{Buf, BytesMut};

use crate::error::StreamError;
use crate::frame::{self, DecoderConfig, MAX_RESERVE, Status};
use crate::packet::Packet;
use crate::version::ProtocolVersion;

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
    config: DecoderConfig,
    dead: bool,
}

impl StreamDecoder {
    /// A decoder with these settings.
    pub fn new(config: DecoderConfig) -> Self {
        Self { buf: BytesMut::new(), pending: 0, config, dead: false }
    }

    /// A decoder for a connection whose version is already known (e.g. a client after
    /// sending CONNECT).
    pub fn with_version(version: ProtocolVersion) -> Self {
        Self::new(DecoderConfig { version: Some(version), ..DecoderConfig::default() })
    }

    /// The protocol version, once known.
    pub const fn version(&self) -> Option<ProtocolVersion> {
        self.config.version
    }

    /// Set the protocol version (e.g. after a CONNECT was accepted).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.config.version = Some(version);
    }

    /// The maximum packet size in force.
    pub const fn max_packet_size(&self) -> usize {
        self.config.max_packet_size
    }

    /// Whether an error has ended the stream.
    pub const fn is_dead(&self) -> bool {
        self.dead
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
        let wanted = match frame::parse_fixed_header(&self.buf, self.config.version, self.config.max_packet_size) {
            Ok(Status::Complete(header)) => header.frame_len().saturating_sub(self.buf.len()),
            _ => 0,
        };
        // At least one byte even with a zero limit: enough to read a header and refuse it.
        let reserve = wanted.clamp(1, MAX_RESERVE.min(self.config.max_packet_size).max(1));
        self.buf.reserve(reserve);
        &mut self.buf
    }

    fn release(&mut self) {
        let pending = core::mem::take(&mut self.pending).min(self.buf.len());
        self.buf.advance(pending);
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, StreamError> {
        self.release();
        if self.dead {
            return Err(StreamError::Dead);
        }
        match frame::decode_packet(&self.buf, self.config.version, self.config.max_packet_size) {
            Ok(Status::Complete((packet, used))) => {
                self.pending = used;
                if let (None, Packet::Connect(connect)) = (self.config.version, &packet) {
                    self.config.version = Some(connect.version);
                }
                Ok(Some(packet))
            }
            Ok(Status::Incomplete { .. }) => Ok(None),
            Err(e) => {
                self.dead = true;
                Err(e)
            }
        }
    }
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

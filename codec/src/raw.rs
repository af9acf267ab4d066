//! Deliberately malformed packets, byte by byte: the explicitly named path the
//! conformance runner uses to send what the normal encoder refuses (bad flags,
//! non-minimal lengths, invalid UTF-8, reserved values, wrong remaining lengths, …).

use bytes::BufMut;

use crate::wire;

/// Append a minimally encoded Variable Byte Integer; values above 268,435,455 are written
/// as that maximum.
pub fn put_var_int(buf: &mut impl BufMut, value: u32) {
    wire::put_var_int(buf, value.min(wire::VAR_INT_MAX));
}

/// Append a length-prefixed field; at most the first 65,535 bytes of `bytes` are written.
pub fn put_field(buf: &mut impl BufMut, bytes: &[u8]) {
    wire::put_field(buf, bytes.get(..bytes.len().min(wire::FIELD_MAX)).unwrap_or_default());
}

/// A packet assembled from raw parts. Nothing is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawPacket {
    first_byte: u8,
    body: Vec<u8>,
    remaining_length: Option<Vec<u8>>,
}

impl RawPacket {
    /// Start a packet with this first byte (type in the high nibble, flags in the low).
    pub fn new(first_byte: u8) -> Self {
        Self { first_byte, ..Self::default() }
    }

    /// Append one byte.
    pub fn u8(mut self, value: u8) -> Self {
        self.body.push(value);
        self
    }

    /// Append a big-endian two-byte integer.
    pub fn u16(mut self, value: u16) -> Self {
        self.body.put_u16(value);
        self
    }

    /// Append a big-endian four-byte integer.
    pub fn u32(mut self, value: u32) -> Self {
        self.body.put_u32(value);
        self
    }

    /// Append a minimally encoded Variable Byte Integer.
    pub fn var_int(mut self, value: u32) -> Self {
        wire::put_var_int(&mut self.body, value);
        self
    }

    /// Append a length-prefixed field holding any bytes (e.g. invalid UTF-8).
    pub fn field(mut self, bytes: &[u8]) -> Self {
        self.body.put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
        self.body.extend_from_slice(bytes);
        self
    }

    /// Append raw bytes.
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.body.extend_from_slice(bytes);
        self
    }

    /// Send these bytes as the Remaining Length instead of the body's real length
    /// (e.g. non-minimal, five bytes, or a lie).
    pub fn remaining_length_bytes(mut self, bytes: &[u8]) -> Self {
        self.remaining_length = Some(bytes.to_vec());
        self
    }

    /// The packet's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len().saturating_add(5));
        out.push(self.first_byte);
        match &self.remaining_length {
            Some(bytes) => out.extend_from_slice(bytes),
            None => wire::put_var_int(&mut out, u32::try_from(self.body.len()).unwrap_or(u32::MAX)),
        }
        out.extend_from_slice(&self.body);
        out
    }
}

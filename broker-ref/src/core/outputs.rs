//! Outputs: encoding packets for a connection and queuing them, with what the I/O layer
//! has to do, for [`Core::poll_output`].

use bytes::{Bytes, BytesMut};
use mqttkit_codec::{Packet, ProtocolVersion};

use super::{ConnId, Core, Output};

impl Core {
    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Encode and queue a packet for an accepted connection (its version), dropping it if
    /// it exceeds the client's Maximum Packet Size [MQTT-3.1.2-24].
    pub(super) fn send_packet(&mut self, id: ConnId, packet: &Packet<'_>) -> bool {
        let Some(conn) = self.conns.get(&id) else { return false };
        let (version, max) = (conn.version, conn.max_packet_out);
        if packet.encoded_len(version) > max {
            return false;
        }
        match encode(packet, version) {
            Some(bytes) => {
                self.send_bytes(id, bytes);
                true
            }
            None => false,
        }
    }

    /// Encode and queue a packet in `version`, for answers sent before CONNECT is accepted.
    pub(super) fn send_raw(&mut self, id: ConnId, packet: &Packet<'_>, version: ProtocolVersion) {
        if let Some(bytes) = encode(packet, version) {
            self.send_bytes(id, bytes);
        }
    }

    /// Queue encoded packets.
    pub(super) fn send_bytes(&mut self, id: ConnId, bytes: Bytes) {
        self.stats.bytes_sent = self.stats.bytes_sent.saturating_add(bytes.len() as u64);
        self.outputs.push_back(Output::Send(id, bytes));
    }
}

/// Encode one packet in `version`.
pub(super) fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(packet.encoded_len(version));
    packet.encode(version, &mut buf).ok()?;
    Some(buf.freeze())
}

//! Connections: opening and closing, framing incoming bytes into packets, dispatching each
//! packet by connection state, and the answer to malformed input.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use mqttkit_codec::{
    ConnAck, Connect, DecodeError, Disconnect, Packet, PacketType, ProtocolVersion, ReasonCode, Status, StreamError,
    decode_packet,
};

use super::outputs::Outbound;
use super::will::WillMessage;
use super::{CloseReason, ConnId, Core};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnState {
    AwaitConnect,
    Active,
}

/// One network connection as the core sees it.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) peer: SocketAddr,
    /// The start of a frame whose end has not arrived yet (empty, and unallocated, between
    /// frames).
    pub(super) partial: BytesMut,
    /// The version frames are decoded in: unknown until a CONNECT was decoded.
    pub(super) framing: Option<ProtocolVersion>,
    /// Bytes waiting to be written (none allocated while there are none).
    pub(super) out: Option<Box<Outbound>>,
    /// Whether [`super::Output::Transmit`] was emitted for the bytes waiting.
    pub(super) announced: bool,
    /// Since when the bytes waiting have not been written (the last progress of a socket
    /// that did not take everything): the write timeout counts from here.
    pub(super) stalled_since: Option<Instant>,
    pub(super) state: ConnState,
    pub(super) version: ProtocolVersion,
    pub(super) client_id: Option<Arc<str>>,
    /// Keep Alive in force: the client's, or the Server Keep Alive we sent (5.0).
    pub(super) keep_alive: u16,
    /// When the last packet arrived (before CONNECT: when the connection opened).
    pub(super) last_rx: Instant,
    /// The deadline registered in `Core::conn_timers` (connect timeout or keep alive).
    pub(super) deadline: Option<Instant>,
    /// Client's Maximum Packet Size.
    pub(super) max_packet_out: usize,
    /// Client's Receive Maximum (our send window).
    pub(super) send_window: usize,
    /// Inbound topic aliases.
    pub(super) aliases: BTreeMap<u16, Arc<str>>,
    /// Boxed: most connections have none.
    pub(super) will: Option<Box<WillMessage>>,
    /// Session Expiry Interval of the CONNECT (a DISCONNECT may not raise it from 0).
    pub(super) connect_expiry: u32,
    /// Opened beyond `max_connections`: its CONNECT is refused.
    pub(super) over_quota: bool,
    /// The listener's transport (`mqtt`, `mqtts`, `ws`, `wss`), for logs and the API.
    pub(super) transport: &'static str,
    /// The user name the client's TLS certificate gives (it replaces the CONNECT's).
    pub(super) certificate_user: Option<Arc<str>>,
    /// The user name in force once CONNECT was accepted.
    pub(super) user: Option<Arc<str>>,
    /// When the connection opened; once CONNECT was accepted, when that happened.
    pub(super) since: Instant,
    /// Traffic counters, for the management API.
    pub(super) traffic: Traffic,
    /// Bytes ever queued for this connection, and ever written.
    pub(super) queued_total: u64,
    pub(super) written_total: u64,
    /// With persistence: bytes (counted as `queued_total`) that may be written; those
    /// after wait for the store (see `durable`).
    pub(super) release_upto: u64,
}

/// Bytes and PUBLISH packets in and out of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes queued for sending.
    pub bytes_out: u64,
    /// PUBLISH packets received.
    pub messages_in: u64,
    /// PUBLISH packets sent.
    pub messages_out: u64,
}

impl Core {
    /// A network connection was accepted.
    pub fn connection_opened(&mut self, id: ConnId, peer: SocketAddr, now: Instant) {
        self.connection_opened_from(id, peer, "mqtt", None, now);
    }

    /// A network connection was accepted on a listener of `transport`; with a TLS client
    /// certificate that names the user, `certificate_user` (it replaces the CONNECT's user
    /// name, and no password is checked).
    pub fn connection_opened_from(
        &mut self,
        id: ConnId,
        peer: SocketAddr,
        transport: &'static str,
        certificate_user: Option<Arc<str>>,
        now: Instant,
    ) {
        // An id reused while still open: the old connection is gone (as if it had closed).
        if self.conns.contains_key(&id) {
            self.drop_conn(id, true, now);
        }
        let over_quota = self.conns.len() >= self.config.max_connections;
        let conn = Conn {
            peer,
            partial: BytesMut::new(),
            framing: None,
            out: None,
            announced: false,
            stalled_since: None,
            state: ConnState::AwaitConnect,
            version: ProtocolVersion::V3_1_1,
            client_id: None,
            keep_alive: 0,
            last_rx: now,
            deadline: None,
            max_packet_out: usize::MAX,
            send_window: usize::from(self.config.max_inflight.max(1)),
            aliases: BTreeMap::new(),
            will: None,
            connect_expiry: 0,
            over_quota,
            transport,
            certificate_user,
            user: None,
            since: now,
            traffic: Traffic::default(),
            queued_total: 0,
            written_total: 0,
            release_upto: 0,
        };
        self.conns.insert(id, Box::new(conn));
        self.reschedule_conn(id);
    }

    /// The network connection closed (EOF or error) without the core asking for it.
    pub fn connection_closed(&mut self, id: ConnId, now: Instant) {
        if self.conns.contains_key(&id) {
            self.log_close(id, "connection closed by the client or lost (no DISCONNECT)");
            self.drop_conn(id, true, now);
        }
    }

    /// The I/O layer could not keep up with this connection's output: close it.
    pub fn disconnect_slow_consumer(&mut self, id: ConnId, now: Instant) {
        if self.conns.contains_key(&id) {
            self.close(id, CloseReason::SlowConsumer, true, now);
        }
    }

    /// Bytes received on a connection. Complete frames are decoded straight from `bytes`;
    /// only the start of an incomplete frame is kept (copied) until the rest arrives.
    pub fn handle_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        self.stats.bytes_received = self.stats.bytes_received.saturating_add(bytes.len() as u64);
        conn.traffic.bytes_in = conn.traffic.bytes_in.saturating_add(bytes.len() as u64);
        if conn.partial.is_empty() {
            let Some(used) = self.handle_frames(id, bytes, now) else { return };
            if let Some(conn) = self.conns.get_mut(&id)
                && let Some(rest) = bytes.get(used..)
                && !rest.is_empty()
            {
                conn.partial.extend_from_slice(rest);
            }
            return;
        }
        let mut buf = std::mem::take(&mut conn.partial);
        buf.extend_from_slice(bytes);
        let Some(used) = self.handle_frames(id, &buf, now) else { return };
        buf.advance(used);
        if let Some(conn) = self.conns.get_mut(&id) {
            // Keep no more memory than the incomplete frame needs.
            conn.partial = if buf.is_empty() {
                BytesMut::new()
            } else if buf.capacity() > 4 * buf.len().max(1024) {
                BytesMut::from(&buf[..])
            } else {
                buf
            };
        }
    }

    /// Decode and handle the complete frames at the start of `input`; the bytes used, or
    /// `None` if the connection was closed.
    fn handle_frames(&mut self, id: ConnId, input: &[u8], now: Instant) -> Option<usize> {
        let max_packet_size = self.config.max_packet_size_usize();
        let mut used = 0;
        loop {
            let conn = self.conns.get_mut(&id)?;
            let rest = input.get(used..).unwrap_or_default();
            match decode_packet(rest, conn.framing, max_packet_size) {
                Ok(Status::Complete((packet, len))) => {
                    if let (None, Packet::Connect(connect)) = (conn.framing, &packet) {
                        conn.framing = Some(connect.version);
                    }
                    used += len;
                    self.handle_packet(id, &packet, now);
                }
                Ok(Status::Incomplete { .. }) => return Some(used),
                Err(e) => {
                    // Before CONNECT was accepted the failed frame is a CONNECT: its
                    // protocol version decides how the refusal is sent.
                    let version = connect_version(rest);
                    self.stream_error(id, e, version, now);
                    return None;
                }
            }
        }
    }

    /// A decoded packet received on a connection.
    pub fn handle_packet(&mut self, id: ConnId, packet: &Packet<'_>, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        // Keep alive restarts (the registered deadline is moved when it falls due).
        conn.last_rx = now;
        let state = conn.state;
        if let (Some(client), true) = (conn.client_id.clone(), changes_session(packet)) {
            // Noted before the answer is queued: it waits for the store (`durable`).
            self.touch(&client);
        }
        match (state, packet) {
            (ConnState::AwaitConnect, Packet::Connect(connect)) => self.handle_connect(id, connect, now),
            (ConnState::AwaitConnect, _) => {
                // "the first packet sent from the Client to the Server MUST be a CONNECT
                // packet" [MQTT-3.1.0-1].
                self.close(id, CloseReason::ProtocolError(ReasonCode::PROTOCOL_ERROR), false, now);
            }
            (ConnState::Active, Packet::Connect(_)) => {
                // "The Server MUST process a second CONNECT packet sent from a Client as a
                // Protocol Error and close the Network Connection" [MQTT-3.1.0-2].
                self.protocol_error(id, ReasonCode::PROTOCOL_ERROR, now);
            }
            (ConnState::Active, Packet::Publish(publish)) => self.handle_publish(id, publish, now),
            (ConnState::Active, Packet::PubAck(ack)) => self.handle_puback(id, ack, now),
            (ConnState::Active, Packet::PubRec(rec)) => self.handle_pubrec(id, rec, now),
            (ConnState::Active, Packet::PubRel(rel)) => self.handle_pubrel(id, rel),
            (ConnState::Active, Packet::PubComp(comp)) => self.handle_pubcomp(id, comp, now),
            (ConnState::Active, Packet::Subscribe(sub)) => self.handle_subscribe(id, sub, now),
            (ConnState::Active, Packet::Unsubscribe(unsub)) => self.handle_unsubscribe(id, unsub),
            (ConnState::Active, Packet::PingReq) => {
                // "The Server MUST send a PINGRESP packet in response to a PINGREQ packet"
                // [MQTT-3.12.4-1].
                self.send_packet(id, &Packet::PingResp);
            }
            (ConnState::Active, Packet::Disconnect(disconnect)) => self.handle_disconnect(id, disconnect, now),
            (ConnState::Active, Packet::Auth(_)) => {
                // No authentication method was negotiated, so AUTH is a Protocol Error
                // [MQTT-4.12.0-7] (client side) / §4.12.
                self.protocol_error(id, ReasonCode::PROTOCOL_ERROR, now);
            }
            (ConnState::Active, Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp) => {
                // Server-to-client packets from a client: Protocol Error (§4.13).
                self.protocol_error(id, ReasonCode::PROTOCOL_ERROR, now);
            }
        }
    }

    /// A decoding error. `peeked` is the protocol version of the failed frame if it is a
    /// CONNECT whose protocol name and level could be read.
    fn stream_error(&mut self, id: ConnId, error: StreamError, peeked: Option<ProtocolVersion>, now: Instant) {
        let Some(conn) = self.conns.get(&id) else { return };
        if conn.state == ConnState::AwaitConnect {
            // "If the protocol name is incorrect the Server MAY disconnect the Client, or it
            // MAY continue processing the CONNECT packet" [MQTT-3.1.2-1]; an unsupported
            // level: 3.1.1 "MUST respond with the CONNACK return code 0x01 (unacceptable
            // protocol level) and then disconnect the Client" [MQTT-3.1.2-2]; 5.0 "MAY
            // send a CONNACK packet with Reason Code 0x84" [MQTT-3.1.2-2]. The client's
            // level is one we do not speak, so the 3.1.1 form is the one every client can
            // read (mosquitto answers the same way); it satisfies 3.1.1's MUST and 5.0's MAY.
            if let StreamError::Packet(DecodeError::UnsupportedProtocolLevel(_)) = error {
                let code = ReasonCode::V3_UNACCEPTABLE_PROTOCOL_VERSION;
                self.send_raw(id, &Packet::ConnAck(ConnAck::new(false, code)), ProtocolVersion::V3_1_1);
                self.close(id, CloseReason::ConnectRefused(code), false, now);
                return;
            }
            // A malformed or invalid 5.0 CONNECT: "If the Server does not accept the
            // CONNECT ... it MAY send a CONNACK packet with the corresponding Reason Code"
            // (§3.1.4, §4.13.1) — 0x81 Malformed Packet, 0x82 Protocol Error, 0x95 Packet
            // too large, ... — and then MUST close the connection [MQTT-3.1.4-1]; a code
            // not allowed in CONNACK becomes 0x81 / 0x82.
            if peeked == Some(ProtocolVersion::V5) {
                let code = connack_code_for(error.reason_code());
                self.send_raw(id, &Packet::ConnAck(ConnAck::new(false, code)), ProtocolVersion::V5);
                self.close(id, CloseReason::ConnectRefused(code), false, now);
                return;
            }
            // 3.1 / 3.1.1: "The Server MUST validate that the CONNECT Packet conforms to
            // section 3.1 and close the Network Connection without sending a CONNACK if it
            // does not conform" [MQTT-3.1.4-1]; the first packet must be CONNECT
            // [MQTT-3.1.0-1].
            self.close(id, CloseReason::ProtocolError(error.reason_code()), false, now);
            return;
        }
        // "When a Server detects a Malformed Packet or Protocol Error, and a Reason Code is
        // given in the specification, it MUST close the Network Connection" [MQTT-4.13.1-1],
        // after a DISCONNECT with that reason code in 5.0.
        self.protocol_error(id, error.reason_code(), now);
    }

    /// Send DISCONNECT (5.0) with `code`, then close; the will is published.
    pub(super) fn protocol_error(&mut self, id: ConnId, code: ReasonCode, now: Instant) {
        self.server_disconnect(id, code);
        self.close(id, CloseReason::ProtocolError(code), true, now);
    }

    /// A DISCONNECT from the server, only in 5.0 and only after a successful CONNACK
    /// [MQTT-3.14.0-1].
    pub(super) fn server_disconnect(&mut self, id: ConnId, code: ReasonCode) {
        let Some(conn) = self.conns.get(&id) else { return };
        if conn.version.is_v5() && conn.state == ConnState::Active {
            self.send_packet(id, &Packet::Disconnect(Disconnect::new(code)));
        }
    }
}

/// Whether a packet from a connected client changes its session's durable state (QoS 1
/// PUBLISH changes only the receivers', noted when delivered).
fn changes_session(packet: &Packet<'_>) -> bool {
    match packet {
        Packet::Publish(publish) => publish.qos.qos() == mqttkit_codec::QoS::ExactlyOnce,
        Packet::PubAck(_)
        | Packet::PubRec(_)
        | Packet::PubRel(_)
        | Packet::PubComp(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::Disconnect(_) => true,
        _ => false,
    }
}

/// The protocol version of a (possibly malformed or incomplete) CONNECT frame at the start
/// of `buf`, if its protocol name and level are readable.
fn connect_version(buf: &[u8]) -> Option<ProtocolVersion> {
    let (&first, rest) = buf.split_first()?;
    if first >> 4 != 1 {
        return None;
    }
    let mut remaining: usize = 0;
    for (i, &b) in rest.iter().take(4).enumerate() {
        remaining |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            let body = rest.get(i + 1..)?;
            return Connect::peek_version(body.get(..remaining.min(body.len()))?);
        }
    }
    None
}

/// A decoding error's reason code as a CONNACK reason code (5.0).
fn connack_code_for(code: ReasonCode) -> ReasonCode {
    if code.is_valid_for(PacketType::ConnAck, ProtocolVersion::V5) && code.is_error() {
        code
    } else {
        ReasonCode::PROTOCOL_ERROR
    }
}

//! The sans-IO broker: a deterministic state machine with no sockets and no clock.
//!
//! Inputs: [`Core::connection_opened`], [`Core::handle_bytes`] (or
//! [`Core::handle_packet`]), [`Core::connection_closed`], [`Core::handle_timeout`].
//! Outputs: [`Core::poll_output`] (encoded packets per connection, connections to close)
//! and [`Core::poll_timeout`] (the next deadline). Every call takes `now`.

mod inflight;
mod message;
mod retained;
mod session;
mod subscriptions;
mod sys;
mod will;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqttkit_codec::{
    ConnAck, Connect, DecodeError, DecoderConfig, Disconnect, Packet, PacketId, PacketType, Properties, PropertiesBuf,
    Property, PropertyContext, ProtocolVersion, Publish, PublishResponse, QoS, ReasonCode, ReasonCodes, RetainHandling,
    StreamDecoder, StreamError, SubAck, Subscribe, UnsubAck, Unsubscribe, filter_matches,
};

pub use self::message::{Delivery, Message};
pub use self::subscriptions::SubOptions;
pub use self::sys::{ClientInfo, Stats, VERSION};

use self::inflight::OutState;
use self::retained::RetainedStore;
use self::session::{NEVER_EXPIRES, Session};
use self::subscriptions::Subscriptions;
use self::will::{PendingWills, WillMessage};
use crate::config::Config;

/// Identifies one network connection (chosen by the caller, unique while open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Why the core closes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// CONNECT was refused with this CONNACK code.
    ConnectRefused(ReasonCode),
    /// Malformed packet or protocol error (the 5.0 reason code).
    ProtocolError(ReasonCode),
    /// No packet within 1.5 × Keep Alive.
    KeepAliveTimeout,
    /// No CONNECT within the connect timeout.
    ConnectTimeout,
    /// Another connection took the session over.
    SessionTakenOver,
    /// The outbound queue overflowed (reported by the I/O layer).
    SlowConsumer,
    /// The broker is shutting down.
    ServerShutdown,
}

/// Something for the I/O layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes (one or more complete packets) to the connection.
    Send(ConnId, Bytes),
    /// Flush what was sent so far, then close the connection. The core has forgotten it.
    Close(ConnId, CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    AwaitConnect,
    Active,
}

#[derive(Debug)]
struct Conn {
    peer: SocketAddr,
    decoder: StreamDecoder,
    opened_at: Instant,
    state: ConnState,
    version: ProtocolVersion,
    client_id: Option<Arc<str>>,
    /// Keep Alive in force: the client's, or the Server Keep Alive we sent (5.0).
    keep_alive: u16,
    last_rx: Instant,
    /// The deadline registered in `Core::conn_timers` (connect timeout or keep alive).
    deadline: Option<Instant>,
    /// Client's Maximum Packet Size.
    max_packet_out: usize,
    /// Client's Receive Maximum (our send window).
    send_window: usize,
    /// Inbound topic aliases.
    aliases: BTreeMap<u16, Arc<str>>,
    will: Option<WillMessage>,
    connect_expiry: u32,
    over_quota: bool,
}

/// The broker state machine.
#[derive(Debug)]
pub struct Core {
    config: Arc<Config>,
    conns: BTreeMap<ConnId, Conn>,
    /// Connect-timeout and keep-alive deadlines, one entry per connection that has one
    /// (mirrors `Conn::deadline`).
    conn_timers: BTreeSet<(Instant, ConnId)>,
    sessions: BTreeMap<Arc<str>, Session>,
    /// Expiry deadlines of disconnected sessions (mirrors `Session::expires_at`).
    session_timers: BTreeSet<(Instant, Arc<str>)>,
    subs: Subscriptions,
    retained: RetainedStore,
    wills: PendingWills,
    outputs: VecDeque<Output>,
    stats: Stats,
    started: Instant,
    next_sys: Option<Instant>,
    next_assigned_id: u64,
}

const SHARE_PREFIX: &str = "$share/";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn add(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

/// `$share/{group}/{filter}` → (group, filter) in 5.0.
fn split_shared(filter: &str, version: ProtocolVersion) -> (Option<&str>, &str) {
    if version.is_v5()
        && let Some(rest) = filter.strip_prefix(SHARE_PREFIX)
        && let Some((group, inner)) = rest.split_once('/')
    {
        return (Some(group), inner);
    }
    (None, filter)
}

/// A session's subscription as recorded: `shared` says whether it was made as a 5.0
/// shared subscription.
fn recorded_filter(filter: &str, shared: bool) -> (Option<&str>, &str) {
    if shared { split_shared(filter, ProtocolVersion::V5) } else { (None, filter) }
}

impl Core {
    /// A broker with this configuration, started at `now`.
    pub fn new(config: Config, now: Instant) -> Self {
        let next_sys = (config.sys_interval_secs > 0).then_some(now);
        Self {
            config: Arc::new(config),
            conns: BTreeMap::new(),
            conn_timers: BTreeSet::new(),
            sessions: BTreeMap::new(),
            session_timers: BTreeSet::new(),
            subs: Subscriptions::default(),
            retained: RetainedStore::default(),
            wills: PendingWills::default(),
            outputs: VecDeque::new(),
            stats: Stats::default(),
            started: now,
            next_sys,
            next_assigned_id: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Number of sessions (connected or not).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest instant at which [`Self::handle_timeout`] has something to do.
    /// O(1): every kind of deadline is kept in an ordered index.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conn_timers.first().map(|(at, _)| *at);
        let sessions = self.session_timers.first().map(|(at, _)| *at);
        [conns, sessions, self.wills.next_deadline(), self.next_sys].into_iter().flatten().min()
    }

    /// Recompute a connection's deadline and update the index if it moved.
    fn reschedule_conn(&mut self, id: ConnId) {
        let connect_timeout = self.config.connect_timeout();
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let deadline = match conn.state {
            ConnState::AwaitConnect => Some(add(conn.opened_at, connect_timeout)),
            ConnState::Active => keep_alive_deadline(conn),
        };
        if deadline == conn.deadline {
            return;
        }
        if let Some(old) = conn.deadline {
            self.conn_timers.remove(&(old, id));
        }
        if let Some(at) = deadline {
            self.conn_timers.insert((at, id));
        }
        conn.deadline = deadline;
    }

    /// Set when a (disconnected) session expires, keeping the index in step.
    fn set_session_expiry(&mut self, client: &Arc<str>, at: Option<Instant>) {
        let Some(session) = self.sessions.get_mut(client) else { return };
        if session.expires_at == at {
            return;
        }
        if let Some(old) = session.expires_at {
            self.session_timers.remove(&(old, client.clone()));
        }
        if let Some(at) = at {
            self.session_timers.insert((at, client.clone()));
        }
        session.expires_at = at;
    }

    /// A network connection was accepted.
    pub fn connection_opened(&mut self, id: ConnId, peer: SocketAddr, now: Instant) {
        // An id reused while still open: the old connection is gone (as if it had closed).
        if self.conns.contains_key(&id) {
            self.drop_conn(id, true, now);
        }
        let over_quota = self.conns.len() >= self.config.max_connections;
        let decoder =
            StreamDecoder::new(DecoderConfig { max_packet_size: self.config.max_packet_size_usize(), version: None });
        let conn = Conn {
            peer,
            decoder,
            opened_at: now,
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
        };
        self.conns.insert(id, conn);
        self.reschedule_conn(id);
    }

    /// The network connection closed (EOF or error) without the core asking for it.
    pub fn connection_closed(&mut self, id: ConnId, now: Instant) {
        if self.conns.contains_key(&id) {
            self.drop_conn(id, true, now);
        }
    }

    /// The I/O layer could not keep up with this connection's output: close it.
    pub fn disconnect_slow_consumer(&mut self, id: ConnId, now: Instant) {
        if self.conns.contains_key(&id) {
            self.close(id, CloseReason::SlowConsumer, true, now);
        }
    }

    /// Bytes received on a connection.
    pub fn handle_bytes(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        self.stats.bytes_received = self.stats.bytes_received.saturating_add(bytes.len() as u64);
        let mut decoder = std::mem::take(&mut conn.decoder);
        decoder.feed(bytes);
        loop {
            match decoder.next_packet() {
                Ok(Some(packet)) => {
                    self.handle_packet(id, &packet, now);
                    if !self.conns.contains_key(&id) {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // Before CONNECT was accepted the buffer starts with the failed frame:
                    // its protocol version decides how the refusal is sent.
                    let version = connect_version(decoder.read_buffer());
                    self.stream_error(id, e, version, now);
                    return;
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.decoder = decoder;
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
    fn protocol_error(&mut self, id: ConnId, code: ReasonCode, now: Instant) {
        self.server_disconnect(id, code);
        self.close(id, CloseReason::ProtocolError(code), true, now);
    }

    /// A DISCONNECT from the server, only in 5.0 and only after a successful CONNACK
    /// [MQTT-3.14.0-1].
    fn server_disconnect(&mut self, id: ConnId, code: ReasonCode) {
        let Some(conn) = self.conns.get(&id) else { return };
        if conn.version.is_v5() && conn.state == ConnState::Active {
            self.send_packet(id, &Packet::Disconnect(Disconnect::new(code)));
        }
    }

    /// A decoded packet received on a connection.
    pub fn handle_packet(&mut self, id: ConnId, packet: &Packet<'_>, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.last_rx = now;
        let state = conn.state;
        if state == ConnState::Active {
            self.reschedule_conn(id);
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

    // ---------------------------------------------------------------- CONNECT

    fn refuse(&mut self, id: ConnId, version: ProtocolVersion, code: ReasonCode, now: Instant) {
        let code = if version.is_v5() { code } else { code.to_v3_connack() };
        // "If a Server sends a CONNACK packet containing a non-zero Reason Code it MUST
        // set Session Present to 0" [MQTT-3.2.2-6] and "MUST then close the Network
        // Connection" [MQTT-3.2.2-7]. A CONNACK larger than the client's Maximum Packet
        // Size is not sent [MQTT-3.1.2-24].
        let connack = Packet::ConnAck(ConnAck::new(false, code));
        if self.conns.get(&id).is_some_and(|c| connack.encoded_len(version) <= c.max_packet_out) {
            self.send_raw(id, &connack, version);
        }
        self.close(id, CloseReason::ConnectRefused(code), false, now);
    }

    fn handle_connect(&mut self, id: ConnId, connect: &Connect<'_>, now: Instant) {
        let version = connect.version;
        let config = self.config.clone();
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.version = version;
        // The client's Maximum Packet Size applies to the CONNACK too, even a refusal
        // [MQTT-3.1.2-24].
        if version.is_v5()
            && let Some(max) = connect.properties.maximum_packet_size()
        {
            conn.max_packet_out = usize::try_from(max).unwrap_or(usize::MAX);
        }
        let over_quota = conn.over_quota;
        if over_quota {
            self.refuse(id, version, ReasonCode::QUOTA_EXCEEDED, now);
            return;
        }
        let props = connect.properties;
        // "If the Server does not support the Authentication Method supplied by the
        // Client, it MAY send a CONNACK with a Reason Code of 0x8C (Bad authentication
        // method)" [MQTT-4.12.0-1].
        if props.authentication_method().is_some() {
            self.refuse(id, version, ReasonCode::BAD_AUTHENTICATION_METHOD, now);
            return;
        }
        // [MQTT-3.1.4-2]: authentication and authorization checks.
        if config.auth_enabled() {
            let ok = match (connect.username, connect.password) {
                (Some(user), Some(pass)) => config.users.get(user.as_str()).is_some_and(|p| p.as_bytes() == pass),
                (Some(_), None) => false,
                (None, _) => config.allow_anonymous,
            };
            if !ok {
                let code = if connect.username.is_none() {
                    ReasonCode::NOT_AUTHORIZED
                } else {
                    ReasonCode::BAD_USER_NAME_OR_PASSWORD
                };
                self.refuse(id, version, code, now);
                return;
            }
        }
        if let Some(will) = &connect.will {
            // "If a Server receives a CONNECT packet containing a Will QoS that exceeds its
            // capabilities, it MUST reject the connection" [MQTT-3.2.2-12].
            if will.qos.as_u8() > config.maximum_qos {
                self.refuse(id, version, ReasonCode::QOS_NOT_SUPPORTED, now);
                return;
            }
            // "If a Server receives a CONNECT packet containing a Will Message with the
            // Will Retain 1, and it does not support retained messages, the Server MUST
            // reject the connection request" [MQTT-3.2.2-13].
            if will.retain && !config.retain_available {
                self.refuse(id, version, ReasonCode::RETAIN_NOT_SUPPORTED, now);
                return;
            }
            if !self.topic_within_limits(&will.topic) {
                self.refuse(id, version, ReasonCode::TOPIC_NAME_INVALID, now);
                return;
            }
            // [MQTT-3.1.4-2]: authorization checks apply to the will topic too.
            if self.publish_denied(&will.topic) {
                self.refuse(id, version, ReasonCode::NOT_AUTHORIZED, now);
                return;
            }
        }
        let mut assigned = None;
        let client_id: Arc<str> = if connect.client_id.is_empty() {
            match version {
                // 3.1 requires 1 to 23 characters.
                ProtocolVersion::V3_1 => {
                    self.refuse(id, version, ReasonCode::V3_IDENTIFIER_REJECTED, now);
                    return;
                }
                // "If the Client supplies a zero-byte ClientId with CleanSession set to 0,
                // the Server MUST respond to the CONNECT Packet with a CONNACK return code
                // 0x02 (Identifier rejected) and then close the Network Connection"
                // [MQTT-3.1.3-8].
                ProtocolVersion::V3_1_1 if !connect.clean_start => {
                    self.refuse(id, version, ReasonCode::V3_IDENTIFIER_REJECTED, now);
                    return;
                }
                // "the Server MUST treat this as a special case and assign a unique ClientID
                // to that Client" [MQTT-3.1.3-6] and return it [MQTT-3.1.3-7].
                _ => {
                    let generated = self.generate_client_id();
                    assigned = Some(generated.clone());
                    generated
                }
            }
        } else {
            Arc::from(connect.client_id.as_str())
        };

        // Session Expiry Interval: 5.0 property (default 0); 3.1.1 clean session → 0,
        // otherwise the session never expires.
        let expiry = if version.is_v5() {
            props.session_expiry_interval().unwrap_or(0).min(config.max_session_expiry_secs)
        } else if connect.clean_start {
            0
        } else {
            NEVER_EXPIRES
        };

        // Take over an existing connection of the same client.
        let old_conn = self.sessions.get(&client_id).and_then(|s| s.conn);
        if let Some(old) = old_conn {
            // "If the ClientID represents a Client already connected to the Server, the
            // Server sends a DISCONNECT packet to the existing Client with Reason Code of
            // 0x8E (Session taken over) ... and MUST close the Network Connection of the
            // existing Client" [MQTT-3.1.4-3]; 3.1.1 [MQTT-3.1.4-2].
            self.server_disconnect(old, ReasonCode::SESSION_TAKEN_OVER);
            if let Some(old_conn) = self.conns.get_mut(&old) {
                old_conn.client_id = None;
                let will = old_conn.will.take();
                if let Some(will) = will {
                    // The old connection's will is sent unless the new connection uses
                    // Clean Start 0 and the will is delayed (§3.1.2.5); a delayed will is
                    // pending below and cancelled by this new connection [MQTT-3.1.3-9].
                    if connect.clean_start || will.delay == 0 {
                        self.publish_will(client_id.clone(), will, now);
                    }
                }
            }
            if let Some(session) = self.sessions.get_mut(&client_id) {
                session.conn = None;
            }
            self.close(old, CloseReason::SessionTakenOver, false, now);
        }
        // "If a new Network Connection to this Session is made before the Will Delay
        // Interval has passed, the Server MUST NOT send the Will Message" [MQTT-3.1.3-9];
        // with Clean Start 1 the old session ends, which publishes the will.
        if let Some(pending) = self.wills.take(&client_id)
            && connect.clean_start
        {
            self.publish_will(client_id.clone(), pending, now);
        }

        // "If a CONNECT packet is received with Clean Start is set to 1, the Client and
        // Server MUST discard any existing Session and start a new Session"
        // [MQTT-3.1.2-4]; otherwise resume it [MQTT-3.1.2-5] or create one [MQTT-3.1.2-6].
        if connect.clean_start {
            self.remove_session(&client_id);
        }
        let session_present = self.sessions.contains_key(&client_id);
        let session =
            self.sessions.entry(client_id.clone()).or_insert_with(|| Session::new(client_id.clone(), version));
        session.conn = Some(id);
        session.version = version;
        session.expiry_interval = expiry;
        self.set_session_expiry(&client_id, None);

        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.state = ConnState::Active;
        conn.client_id = Some(client_id.clone());
        // "If the Server sends a Server Keep Alive on the CONNACK packet, the Client MUST
        // use this value instead of the Keep Alive value the Client sent on CONNECT"
        // [MQTT-3.2.2-21]; the server enforces the value it sent. 3.1.1 has no way to tell
        // the client, so its own value is used.
        let server_keep_alive = if version.is_v5() { config.server_keep_alive } else { None };
        conn.keep_alive = server_keep_alive.unwrap_or(connect.keep_alive);
        conn.connect_expiry = expiry;
        // [MQTT-3.1.2-7]: the will is stored with the connection.
        conn.will = connect.will.as_ref().map(WillMessage::from_connect);
        if version.is_v5()
            && let Some(rm) = props.receive_maximum()
        {
            conn.send_window = usize::from(rm.max(1));
        }

        let mut buf = PropertiesBuf::new();
        if version.is_v5() {
            let _ = self.connack_properties(&mut buf, connect, assigned.as_deref(), expiry);
        }
        let properties = buf.properties(PropertyContext::ConnAck).unwrap_or(Properties::EMPTY);
        // "If the Server accepts a connection with Clean Start set to 1, the Server MUST
        // set Session Present to 0" [MQTT-3.2.2-2]; with a stored session, 1 [MQTT-3.2.2-3].
        let mut connack = ConnAck { session_present, code: ReasonCode::SUCCESS, properties };
        // "The Server MUST NOT send this property if it would increase the size of the
        // CONNACK packet beyond the Maximum Packet Size specified by the Client"
        // [MQTT-3.2.2-19], [MQTT-3.2.2-20]: fall back to a CONNACK without properties.
        if let Some(conn) = self.conns.get_mut(&id)
            && Packet::ConnAck(connack.clone()).encoded_len(version) > conn.max_packet_out
        {
            connack.properties = Properties::EMPTY;
            // "If the Server does not send the Server Keep Alive, the Server MUST use the
            // Keep Alive value set by the Client on CONNECT" [MQTT-3.2.2-22].
            conn.keep_alive = connect.keep_alive;
        }
        self.reschedule_conn(id);
        // "The Server MUST acknowledge the CONNECT packet with a CONNACK packet containing
        // a 0x00 (Success) Reason Code" [MQTT-3.1.4-5].
        self.send_packet(id, &Packet::ConnAck(connack));
        self.resume_session(&client_id, now);
    }

    fn connack_properties(
        &self,
        buf: &mut PropertiesBuf,
        connect: &Connect<'_>,
        assigned: Option<&str>,
        expiry: u32,
    ) -> Result<(), mqttkit_codec::EncodeError> {
        let config = &self.config;
        let requested = connect.properties.session_expiry_interval().unwrap_or(0);
        if requested != expiry {
            buf.push(Property::SessionExpiryInterval(expiry))?;
        }
        buf.push(Property::ReceiveMaximum(config.receive_maximum.max(1)))?;
        if let Some(keep_alive) = config.server_keep_alive {
            // [MQTT-3.2.2-21]: the client uses this instead of its own Keep Alive.
            buf.push(Property::ServerKeepAlive(keep_alive))?;
        }
        if config.maximum_qos < 2 {
            // "If a Server does not support QoS 1 or QoS 2 PUBLISH packets it MUST send a
            // Maximum QoS in the CONNACK packet" [MQTT-3.2.2-9].
            buf.push(Property::MaximumQoS(config.maximum_qos))?;
        }
        buf.push(Property::RetainAvailable(u8::from(config.retain_available)))?;
        buf.push(Property::MaximumPacketSize(config.max_packet_size.max(16)))?;
        if let Some(id) = assigned {
            // [MQTT-3.2.2-16]: Assigned Client Identifier for a zero-length ClientID.
            buf.push(Property::AssignedClientIdentifier(id))?;
        }
        buf.push(Property::TopicAliasMaximum(config.topic_alias_maximum))?;
        buf.push(Property::WildcardSubscriptionAvailable(1))?;
        buf.push(Property::SubscriptionIdentifierAvailable(1))?;
        buf.push(Property::SharedSubscriptionAvailable(1))?;
        // "A value of 0 indicates that the Server MUST NOT return Response Information"
        // [MQTT-3.1.2-28].
        if connect.properties.request_response_information() == Some(1) && !config.response_information.is_empty() {
            let client = assigned.unwrap_or(connect.client_id.as_str());
            let info = format!("{}{}", config.response_information, client);
            buf.push(Property::ResponseInformation(&info))?;
        }
        Ok(())
    }

    fn generate_client_id(&mut self) -> Arc<str> {
        loop {
            self.next_assigned_id = self.next_assigned_id.wrapping_add(1);
            let id: Arc<str> = Arc::from(format!("mqttkit-{}", self.next_assigned_id));
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// After CONNACK: re-send unacknowledged messages with DUP, then drain the queue.
    fn resume_session(&mut self, client: &Arc<str>, now: Instant) {
        // "When a Client reconnects with Clean Start set to 0 and a session is present,
        // both the Client and Server MUST resend any unacknowledged PUBLISH packets (where
        // QoS > 0) and PUBREL packets using their original Packet Identifiers"
        // [MQTT-4.4.0-1], in the original order [MQTT-4.6.0-1]. `pump` sends them first,
        // within the new connection's Receive Maximum [MQTT-3.3.4-9].
        if let Some(session) = self.sessions.get_mut(client) {
            session.inflight.mark_all_for_resend();
        }
        self.pump(client, now);
    }

    /// Re-send one unacknowledged message on the current connection. `false` if there was
    /// none waiting.
    fn resend_one(&mut self, client: &Arc<str>, id: ConnId, now: Instant) -> bool {
        let Some(session) = self.sessions.get_mut(client) else { return false };
        let version = session.version;
        let Some(entry) = session.inflight.take_resend() else { return false };
        let max = self.conns.get(&id).map_or(0, |c| c.max_packet_out);
        let bytes = match entry.state {
            // "The DUP flag MUST be set to 1 by the Client or Server when it attempts to
            // re-deliver a PUBLISH packet" [MQTT-3.3.1-1].
            OutState::Qos1Sent | OutState::Qos2Sent => {
                message::encode_publish(version, &entry.delivery, Some(entry.id), true, now)
            }
            OutState::Released => encode(&Packet::PubRel(PublishResponse::new(entry.id)), version),
        };
        match bytes {
            Some(bytes) if bytes.len() <= max => self.send_bytes(id, bytes),
            _ => {
                // Too large for this connection's Maximum Packet Size: discarded "as if it
                // had completed sending that Application Message" [MQTT-3.1.2-25].
                session.inflight.remove(entry.id);
                self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
            }
        }
        true
    }

    // ---------------------------------------------------------------- PUBLISH in

    fn topic_within_limits(&self, topic: &str) -> bool {
        topic.len() <= self.config.max_topic_length && topic.split('/').count() <= self.config.max_topic_levels
    }

    fn publish_denied(&self, topic: &str) -> bool {
        topic.starts_with("$SYS") || self.config.acl.deny_publish.iter().any(|f| filter_matches(f, topic))
    }

    fn handle_publish(&mut self, id: ConnId, publish: &Publish<'_>, now: Instant) {
        let config = self.config.clone();
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let version = conn.version;
        let Some(client) = conn.client_id.clone() else { return };
        let qos = publish.qos.qos();
        self.stats.messages_received = self.stats.messages_received.saturating_add(1);

        // Topic aliases (5.0 §3.3.2.3.4).
        let topic: Arc<str> = match publish.properties.topic_alias() {
            Some(alias) if version.is_v5() => {
                // "A Client MUST NOT send a PUBLISH packet with a Topic Alias greater than
                // the Topic Alias Maximum value returned by the Server" [MQTT-3.3.2-9];
                // the value 0 is not allowed [MQTT-3.3.2-8].
                if alias == 0 || alias > config.topic_alias_maximum {
                    self.protocol_error(id, ReasonCode::TOPIC_ALIAS_INVALID, now);
                    return;
                }
                if publish.topic.is_empty() {
                    match conn.aliases.get(&alias) {
                        Some(t) => t.clone(),
                        None => {
                            // An unknown alias with an empty topic is a Protocol Error.
                            self.protocol_error(id, ReasonCode::PROTOCOL_ERROR, now);
                            return;
                        }
                    }
                } else {
                    let t: Arc<str> = Arc::from(publish.topic.as_str());
                    conn.aliases.insert(alias, t.clone());
                    t
                }
            }
            _ => Arc::from(publish.topic.as_str()),
        };

        // "If a Client receives a Maximum QoS from a Server, it MUST NOT send PUBLISH
        // packets at a QoS level exceeding the Maximum QoS level specified"
        // [MQTT-3.2.2-11]: the server disconnects with 0x9B.
        if qos.as_u8() > config.maximum_qos {
            self.protocol_error(id, ReasonCode::QOS_NOT_SUPPORTED, now);
            return;
        }
        // "A Client receiving Retain Available set to 0 from the Server MUST NOT send a
        // PUBLISH packet with the RETAIN flag set to 1" [MQTT-3.2.2-14]: 0x9A.
        if publish.retain && !config.retain_available {
            self.protocol_error(id, ReasonCode::RETAIN_NOT_SUPPORTED, now);
            return;
        }
        // "A PUBLISH packet sent from a Client to a Server MUST NOT contain a Subscription
        // Identifier" [MQTT-3.3.4-6].
        if publish.properties.subscription_identifiers().next().is_some() {
            self.protocol_error(id, ReasonCode::PROTOCOL_ERROR, now);
            return;
        }
        let packet_id = publish.qos.packet_id();
        if let (QoS::ExactlyOnce, Some(pid)) = (qos, packet_id) {
            let Some(session) = self.sessions.get_mut(&client) else { return };
            if session.incoming_qos2.contains(&pid.get()) {
                // "until it has received the corresponding PUBREL packet, the receiver MUST
                // acknowledge any subsequent PUBLISH packet with the same Packet Identifier
                // by sending a PUBREC" without delivering it again [MQTT-4.3.3-10].
                self.send_ack(id, PacketType::PubRec, pid, ReasonCode::SUCCESS);
                return;
            }
            // Our Receive Maximum: the client "MUST NOT send more than Receive Maximum QoS 1
            // and QoS 2 PUBLISH packets for which it has not received PUBACK, PUBCOMP, or
            // PUBREC with a Reason Code of 128 or greater" [MQTT-3.3.4-7]; DISCONNECT 0x93.
            if session.incoming_qos2.len() >= usize::from(config.receive_maximum.max(1)) {
                self.protocol_error(id, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED, now);
                return;
            }
        }

        let reject = if !self.topic_within_limits(&topic) {
            Some(ReasonCode::TOPIC_NAME_INVALID)
        } else if self.publish_denied(&topic) {
            Some(ReasonCode::NOT_AUTHORIZED)
        } else {
            None
        };
        let code = match reject {
            Some(code) => code,
            None => {
                let expires_at = if version.is_v5() {
                    publish.properties.message_expiry_interval().map(|s| add(now, secs(u64::from(s))))
                } else {
                    None
                };
                let msg = Arc::new(Message {
                    topic,
                    payload: Bytes::copy_from_slice(publish.payload),
                    qos,
                    retain: publish.retain,
                    props: if version.is_v5() {
                        Message::forwarded_properties(&publish.properties)
                    } else {
                        Bytes::new()
                    },
                    expires_at,
                    publisher: Some(client.clone()),
                });
                let matched = self.route(msg, now);
                if matched == 0 && version.is_v5() { ReasonCode::NO_MATCHING_SUBSCRIBERS } else { ReasonCode::SUCCESS }
            }
        };
        // 3.1.1: "It MUST either make a positive acknowledgement, according to the normal
        // QoS rules, or close the Network Connection" [MQTT-3.3.5-2].
        let code = if version.is_v5() { code } else { ReasonCode::SUCCESS };
        match (qos, packet_id) {
            // "the receiver MUST respond with a PUBACK packet containing the Packet
            // Identifier from the incoming PUBLISH packet" [MQTT-4.3.2-4].
            (QoS::AtLeastOnce, Some(pid)) => self.send_ack(id, PacketType::PubAck, pid, code),
            // "the receiver MUST respond with a PUBREC containing the Packet Identifier
            // from the incoming PUBLISH packet" [MQTT-4.3.3-8].
            (QoS::ExactlyOnce, Some(pid)) => {
                if !code.is_error()
                    && let Some(session) = self.sessions.get_mut(&client)
                {
                    session.incoming_qos2.insert(pid.get());
                }
                self.send_ack(id, PacketType::PubRec, pid, code);
            }
            _ => {}
        }
    }

    fn send_ack(&mut self, id: ConnId, packet_type: PacketType, pid: PacketId, code: ReasonCode) {
        let mut ack = PublishResponse::new(pid);
        ack.reason_code = code;
        let packet = match packet_type {
            PacketType::PubAck => Packet::PubAck(ack),
            PacketType::PubRec => Packet::PubRec(ack),
            PacketType::PubRel => Packet::PubRel(ack),
            _ => Packet::PubComp(ack),
        };
        self.send_packet(id, &packet);
    }

    fn handle_pubrel(&mut self, id: ConnId, rel: &PublishResponse<'_>) {
        let Some(client) = self.conns.get(&id).and_then(|c| c.client_id.clone()) else { return };
        let found = self.sessions.get_mut(&client).is_some_and(|s| s.incoming_qos2.remove(&rel.packet_id.get()));
        // "MUST respond to a PUBREL packet by sending a PUBCOMP packet containing the same
        // Packet Identifier as the PUBREL" [MQTT-4.3.3-11].
        let code = if found { ReasonCode::SUCCESS } else { ReasonCode::PACKET_IDENTIFIER_NOT_FOUND };
        let code = if self.conns.get(&id).is_some_and(|c| c.version.is_v5()) { code } else { ReasonCode::SUCCESS };
        self.send_ack(id, PacketType::PubComp, rel.packet_id, code);
    }

    // ---------------------------------------------------------------- acks from client

    fn session_of(&mut self, id: ConnId) -> Option<Arc<str>> {
        self.conns.get(&id).and_then(|c| c.client_id.clone())
    }

    fn handle_puback(&mut self, id: ConnId, ack: &PublishResponse<'_>, now: Instant) {
        let Some(client) = self.session_of(id) else { return };
        if let Some(session) = self.sessions.get_mut(&client)
            && session.inflight.state(ack.packet_id) == Some(OutState::Qos1Sent)
        {
            // [MQTT-4.3.2-3]: acknowledged; the packet identifier is free again.
            session.inflight.remove(ack.packet_id);
        }
        self.pump(&client, now);
    }

    fn handle_pubrec(&mut self, id: ConnId, rec: &PublishResponse<'_>, now: Instant) {
        let Some(client) = self.session_of(id) else { return };
        let Some(session) = self.sessions.get_mut(&client) else { return };
        match session.inflight.state(rec.packet_id) {
            Some(OutState::Qos2Sent) if rec.reason_code.is_error() => {
                // "If PUBACK or PUBREC is received containing a Reason Code of 0x80 or
                // greater the corresponding PUBLISH packet is treated as acknowledged"
                // [MQTT-4.4.0-2].
                session.inflight.remove(rec.packet_id);
                self.pump(&client, now);
            }
            Some(OutState::Qos2Sent | OutState::Released) => {
                // "the sender MUST send a PUBREL packet when it receives a PUBREC packet"
                // [MQTT-4.3.3-4] and not re-send the PUBLISH afterwards [MQTT-4.3.3-6].
                session.inflight.set_state(rec.packet_id, OutState::Released);
                self.send_ack(id, PacketType::PubRel, rec.packet_id, ReasonCode::SUCCESS);
            }
            _ => {
                let v5 = session.version.is_v5();
                let code = if v5 { ReasonCode::PACKET_IDENTIFIER_NOT_FOUND } else { ReasonCode::SUCCESS };
                self.send_ack(id, PacketType::PubRel, rec.packet_id, code);
            }
        }
    }

    fn handle_pubcomp(&mut self, id: ConnId, comp: &PublishResponse<'_>, now: Instant) {
        let Some(client) = self.session_of(id) else { return };
        if let Some(session) = self.sessions.get_mut(&client)
            && session.inflight.state(comp.packet_id) == Some(OutState::Released)
        {
            // [MQTT-4.3.3-5]: PUBREL acknowledged, flow complete.
            session.inflight.remove(comp.packet_id);
        }
        self.pump(&client, now);
    }

    // ---------------------------------------------------------------- routing

    fn subscribe_denied(&self, topic_or_filter: &str) -> bool {
        self.config.acl.deny_subscribe.iter().any(|f| filter_matches(f, topic_or_filter))
    }

    /// Deliver a message to every matching subscription; store it if retained.
    /// Returns the number of sessions it was given to.
    pub fn route(&mut self, msg: Arc<Message>, now: Instant) -> usize {
        if msg.retain && self.config.retain_available {
            self.retained.update(&msg);
        }
        if self.subscribe_denied(&msg.topic) {
            return 0;
        }
        // One copy per session: the maximum QoS of all matching subscriptions
        // [MQTT-3.3.4-2] / [MQTT-3.3.5-1] and all their subscription identifiers
        // [MQTT-3.3.4-3], [MQTT-3.3.4-4].
        let mut per_client: BTreeMap<Arc<str>, Delivery> = BTreeMap::new();
        for (client, opts) in self.subs.matches(&msg.topic) {
            // "If the value is 1, Application Messages MUST NOT be forwarded to a
            // connection with a ClientID equal to the ClientID of the publishing
            // connection" [MQTT-3.8.3-3].
            if opts.no_local && msg.publisher.as_deref() == Some(&*client) {
                continue;
            }
            let entry = per_client.entry(client).or_insert_with(|| Delivery {
                msg: msg.clone(),
                qos: QoS::AtMostOnce,
                retain: false,
                sub_ids: Vec::new(),
            });
            entry.qos = entry.qos.max(opts.qos.min(msg.qos));
            // [MQTT-3.3.1-12] / [MQTT-3.3.1-13]: Retain As Published; 3.1.1: "It MUST set
            // the RETAIN flag to 0 when a PUBLISH Packet is sent to a Client because it
            // matches an established subscription" [MQTT-3.3.1-9].
            entry.retain |= opts.retain_as_published && msg.retain;
            if let Some(sid) = opts.sub_id {
                entry.sub_ids.push(sid);
            }
        }
        let sessions = &self.sessions;
        let shared = self.subs.pick_shared(&msg.topic, |c| sessions.get(c).is_some_and(|s| s.conn.is_some()));
        let mut count = per_client.len();
        for (client, delivery) in per_client {
            self.deliver(&client, delivery, now);
        }
        for (client, opts) in shared {
            count = count.saturating_add(1);
            let delivery = Delivery {
                msg: msg.clone(),
                qos: opts.qos.min(msg.qos),
                retain: opts.retain_as_published && msg.retain,
                sub_ids: opts.sub_id.into_iter().collect(),
            };
            self.deliver(&client, delivery, now);
        }
        count
    }

    /// Add a delivery to a session: send at once if possible, otherwise queue it.
    fn deliver(&mut self, client: &Arc<str>, delivery: Delivery, now: Instant) {
        let limit = self.config.max_queued_messages;
        let Some(session) = self.sessions.get_mut(client) else { return };
        match session.conn {
            Some(id) if delivery.qos == QoS::AtMostOnce => {
                let version = session.version;
                self.send_publish(id, version, &delivery, None, now);
            }
            Some(_) => {
                // "When a Server takes ownership of an incoming Application Message it MUST
                // add it to the Session State for those Clients that have matching
                // Subscriptions" [MQTT-4.5.0-1]; order is kept [MQTT-4.6.0-5].
                if !session.enqueue(delivery, limit) {
                    self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
                }
                self.pump(client, now);
            }
            // Offline: QoS 1 and 2 messages are queued, QoS 0 ones dropped.
            None => {
                let queued = delivery.qos != QoS::AtMostOnce && session.enqueue(delivery, limit);
                if !queued {
                    self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
                }
            }
        }
    }

    /// Send queued messages while the client's Receive Maximum allows.
    fn pump(&mut self, client: &Arc<str>, now: Instant) {
        loop {
            let Some(session) = self.sessions.get_mut(client) else { return };
            let Some(id) = session.conn else { return };
            let Some(window) = self.conns.get(&id).map(|c| c.send_window) else { return };
            let version = session.version;
            // "The Server MUST NOT send more than Receive Maximum QoS 1 and QoS 2 PUBLISH
            // packets for which it has not received PUBACK, PUBCOMP, or PUBREC with a
            // Reason Code of 128 or greater" [MQTT-3.3.4-9].
            if session.inflight.on_wire() >= window {
                return;
            }
            // Messages of an earlier connection are re-sent before anything new.
            if self.resend_one(client, id, now) {
                continue;
            }
            let Some(session) = self.sessions.get_mut(client) else { return };
            if session.inflight.len() >= window {
                return;
            }
            let Some(delivery) = session.queue.pop_front() else { return };
            // "If the Message Expiry Interval has passed and the Server has not managed to
            // start onward delivery to a matching subscriber, then it MUST delete the copy
            // of the message for that subscriber" [MQTT-3.3.2-5].
            if delivery.msg.is_expired(now) {
                self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
                continue;
            }
            if delivery.qos == QoS::AtMostOnce {
                self.send_publish(id, version, &delivery, None, now);
                continue;
            }
            let Some(pid) = session.inflight.allocate_id() else {
                session.queue.push_front(delivery);
                return;
            };
            let state = if delivery.qos == QoS::ExactlyOnce { OutState::Qos2Sent } else { OutState::Qos1Sent };
            if self.send_publish(id, version, &delivery, Some(pid), now)
                && let Some(session) = self.sessions.get_mut(client)
            {
                session.inflight.push(pid, state, delivery);
            }
        }
    }

    /// Encode and send a PUBLISH; `false` if it was dropped (too large for the client).
    fn send_publish(
        &mut self,
        id: ConnId,
        version: ProtocolVersion,
        delivery: &Delivery,
        pid: Option<PacketId>,
        now: Instant,
    ) -> bool {
        let Some(bytes) = message::encode_publish(version, delivery, pid, false, now) else { return false };
        let Some(conn) = self.conns.get(&id) else { return false };
        // "The Server MUST NOT send packets exceeding Maximum Packet Size to the Client"
        // [MQTT-3.1.2-24]; "Where a Packet is too large to send, the Server MUST discard it
        // without sending it and then behave as if it had completed sending that
        // Application Message" [MQTT-3.1.2-25].
        if bytes.len() > conn.max_packet_out {
            self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
            return false;
        }
        self.stats.messages_sent = self.stats.messages_sent.saturating_add(1);
        self.send_bytes(id, bytes);
        true
    }

    // ---------------------------------------------------------------- SUBSCRIBE

    fn handle_subscribe(&mut self, id: ConnId, sub: &Subscribe<'_>, now: Instant) {
        let Some(conn) = self.conns.get(&id) else { return };
        let version = conn.version;
        let Some(client) = conn.client_id.clone() else { return };
        let sub_id = if version.is_v5() { sub.properties.subscription_identifiers().next() } else { None };
        let mut codes = Vec::new();
        let mut retained_to_send: Vec<Delivery> = Vec::new();
        // "If a Server receives a SUBSCRIBE packet that contains multiple Topic Filters it
        // MUST handle that packet as if it had received a sequence of multiple SUBSCRIBE
        // packets, except that it combines their responses into a single SUBACK"
        // [MQTT-3.8.4-5].
        for (filter, options) in sub.filters.iter() {
            let filter_str = filter.as_str();
            let (share, inner) = split_shared(filter_str, version);
            let fail = |v5: ReasonCode| if version.is_v5() { v5 } else { ReasonCode::V3_SUBSCRIBE_FAILURE };
            if !self.topic_within_limits(inner) {
                codes.push(fail(ReasonCode::TOPIC_FILTER_INVALID).0);
                continue;
            }
            if self.subscribe_denied(inner) {
                codes.push(fail(ReasonCode::NOT_AUTHORIZED).0);
                continue;
            }
            // "The Server might grant a lower Maximum QoS than the subscriber requested"
            // (§3.9.3); messages are then sent at min(published, granted) [MQTT-3.8.4-8].
            let granted = QoS::from_u8(options.qos.as_u8().min(self.config.maximum_qos)).unwrap_or(QoS::AtMostOnce);
            let opts = SubOptions {
                qos: granted,
                no_local: options.no_local,
                retain_as_published: options.retain_as_published,
                retain_handling: options.retain_handling,
                sub_id,
            };
            // "If a Server receives a SUBSCRIBE packet containing a Topic Filter that is
            // identical to a Non-shared Subscription's Topic Filter for the current
            // Session then it MUST replace that existing Subscription" [MQTT-3.8.4-3].
            // The same filter text subscribed earlier under another protocol version
            // (`$share/...` is shared only in 5.0): the old subscription goes.
            if let Some(&(_, was_shared)) = self.sessions.get(&client).and_then(|s| s.subscriptions.get(filter_str))
                && was_shared != share.is_some()
            {
                let (old_share, old_inner) = recorded_filter(filter_str, was_shared);
                self.subs.remove(old_inner, old_share, &client);
            }
            let existed = self.subs.insert(inner, share, &client, opts);
            if let Some(session) = self.sessions.get_mut(&client) {
                session.subscriptions.insert(filter_str.to_owned(), (opts, share.is_some()));
            }
            // "This Reason Code MUST either show the maximum QoS that was granted for that
            // Subscription or indicate that the subscription failed" [MQTT-3.8.4-7].
            codes.push(granted.as_u8());
            // Retained messages are not sent for shared subscriptions (§4.8.2).
            let send_retained = share.is_none()
                && match opts.retain_handling {
                    // [MQTT-3.3.1-9]: Retain Handling 0 sends them; [MQTT-3.3.1-10]: 1 only
                    // for a new subscription; [MQTT-3.3.1-11]: 2 never.
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                for msg in self.retained.matching(inner, now) {
                    if opts.no_local && msg.publisher.as_deref() == Some(&*client) {
                        continue;
                    }
                    // 3.1.1: "the Server MUST set the RETAIN flag to 1 if a message is sent as
                    // a result of a new subscription being made by a Client" [MQTT-3.3.1-8].
                    retained_to_send.push(Delivery {
                        qos: granted.min(msg.qos),
                        msg,
                        retain: true,
                        sub_ids: sub_id.into_iter().collect(),
                    });
                }
            }
        }
        let Ok(reason_codes) = ReasonCodes::parse(&codes, PacketType::SubAck, version) else { return };
        // "The SUBACK packet MUST have the same Packet Identifier as the SUBSCRIBE packet"
        // [MQTT-3.8.4-2], one Reason Code per filter in order [MQTT-3.9.3-1].
        let suback = SubAck { packet_id: sub.packet_id, properties: Properties::EMPTY, reason_codes };
        self.send_packet(id, &Packet::SubAck(suback));
        for delivery in retained_to_send {
            self.deliver(&client, delivery, now);
        }
    }

    fn handle_unsubscribe(&mut self, id: ConnId, unsub: &Unsubscribe<'_>) {
        let Some(conn) = self.conns.get(&id) else { return };
        let version = conn.version;
        let Some(client) = conn.client_id.clone() else { return };
        let mut codes = Vec::new();
        // [MQTT-3.10.4-6]: each filter as if in its own UNSUBSCRIBE; filters are compared
        // character by character [MQTT-3.10.4-1].
        for filter in unsub.filters.iter() {
            // A subscription is removed the way it was made, even if the session has
            // since been resumed with another protocol version.
            let recorded = self.sessions.get_mut(&client).and_then(|s| s.subscriptions.remove(filter.as_str()));
            let (share, inner) = match recorded {
                Some((_, shared)) => recorded_filter(filter.as_str(), shared),
                None => split_shared(filter.as_str(), version),
            };
            let removed = self.subs.remove(inner, share, &client);
            codes.push(if removed { ReasonCode::SUCCESS.0 } else { ReasonCode::NO_SUBSCRIPTION_EXISTED.0 });
        }
        let reason_codes = if version.is_v5() {
            match ReasonCodes::parse(&codes, PacketType::UnsubAck, version) {
                Ok(codes) => codes,
                Err(_) => return,
            }
        } else {
            ReasonCodes::from_raw_unchecked(&[])
        };
        // "The Server MUST respond to an UNSUBSCRIBE request by sending an UNSUBACK"
        // [MQTT-3.10.4-4] with the same Packet Identifier, even if nothing was deleted
        // [MQTT-3.10.4-5].
        let unsuback = UnsubAck { packet_id: unsub.packet_id, properties: Properties::EMPTY, reason_codes };
        self.send_packet(id, &Packet::UnsubAck(unsuback));
    }

    // ---------------------------------------------------------------- DISCONNECT

    fn handle_disconnect(&mut self, id: ConnId, disconnect: &Disconnect<'_>, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.version.is_v5() {
            if let Some(expiry) = disconnect.properties.session_expiry_interval() {
                // "If the Session Expiry Interval in the CONNECT packet was zero, then it is
                // a Protocol Error to set a non-zero Session Expiry Interval in the
                // DISCONNECT packet sent by the Client" (§3.14.2.2.2).
                if conn.connect_expiry == 0 && expiry != 0 {
                    self.protocol_error(id, ReasonCode::PROTOCOL_ERROR, now);
                    return;
                }
                let expiry = expiry.min(self.config.max_session_expiry_secs);
                if let Some(session) = conn.client_id.as_ref().and_then(|c| self.sessions.get_mut(c)) {
                    session.expiry_interval = expiry;
                }
            }
            // "On receipt of DISCONNECT with a Reason Code of 0x00 (Success) the Server MUST
            // discard any Will Message associated with the current Connection without
            // publishing it" [MQTT-3.14.4-3]; 0x04 asks for the will to be published.
            let publish_will = disconnect.reason_code == ReasonCode::DISCONNECT_WITH_WILL_MESSAGE;
            if !publish_will {
                conn.will = None;
            }
            self.close(id, CloseReason::ClientDisconnect, publish_will, now);
        } else {
            // 3.1.1: "On receipt of DISCONNECT the Server MUST discard any Will Message
            // associated with the current connection without publishing it" [MQTT-3.14.4-3].
            conn.will = None;
            self.close(id, CloseReason::ClientDisconnect, false, now);
        }
    }

    // ---------------------------------------------------------------- closing

    /// Emit Close and forget the connection.
    fn close(&mut self, id: ConnId, reason: CloseReason, publish_will: bool, now: Instant) {
        if self.conns.contains_key(&id) {
            self.outputs.push_back(Output::Close(id, reason));
            self.drop_conn(id, publish_will, now);
        }
    }

    /// Forget a connection: detach its session (start expiry) and handle its will.
    fn drop_conn(&mut self, id: ConnId, publish_will: bool, now: Instant) {
        let Some(conn) = self.conns.remove(&id) else { return };
        if let Some(at) = conn.deadline {
            self.conn_timers.remove(&(at, id));
        }
        let Some(client) = conn.client_id else { return };
        let Some(session) = self.sessions.get_mut(&client) else { return };
        if session.conn != Some(id) {
            return;
        }
        session.conn = None;
        let expiry = session.expiry_interval;
        // "The Client and Server MUST store the Session State after the Network
        // Connection is closed if the Session Expiry Interval is greater than 0"
        // [MQTT-3.1.2-23]; with 0 the session ends with the connection.
        let expires_at = match expiry {
            NEVER_EXPIRES => None,
            // An interval too large for the clock means "never".
            e => now.checked_add(secs(u64::from(e))),
        };
        self.set_session_expiry(&client, expires_at);
        if let (true, Some(will)) = (publish_will, conn.will) {
            // "The Will Message MUST be published after the Network Connection is
            // subsequently closed and either the Will Delay Interval has elapsed or the
            // Session ends, whichever happens first" [MQTT-3.1.2-8].
            if will.delay == 0 || expiry == 0 {
                self.publish_will(client.clone(), will, now);
            } else {
                let delay = secs(u64::from(will.delay.min(expiry)));
                self.wills.schedule(client.clone(), add(now, delay), will);
            }
        }
        if expiry == 0 {
            self.end_session(&client, now);
        }
    }

    fn publish_will(&mut self, client: Arc<str>, will: WillMessage, now: Instant) {
        let msg = Arc::new(will.into_message(client, now));
        self.route(msg, now);
    }

    /// A session ends: its pending will is published, its state discarded.
    fn end_session(&mut self, client: &Arc<str>, now: Instant) {
        if let Some(will) = self.wills.take(client) {
            self.publish_will(client.clone(), will, now);
        }
        self.remove_session(client);
    }

    fn remove_session(&mut self, client: &Arc<str>) {
        let Some(session) = self.sessions.remove(client) else { return };
        if let Some(at) = session.expires_at {
            self.session_timers.remove(&(at, client.clone()));
        }
        // Found by the `broker_core` fuzzer: recomputing shared-ness from the session's
        // *current* version left a stale `$share/...` subscription behind when the session
        // had been resumed under another version.
        for (filter, (_, shared)) in &session.subscriptions {
            let (share, inner) = recorded_filter(filter, *shared);
            self.subs.remove(inner, share, client);
        }
    }

    // ---------------------------------------------------------------- timers

    /// Run everything due at `now`: connect and keep-alive timeouts, delayed wills,
    /// session expiry, `$SYS` publication.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each index is consumed from its earliest entry: O(log n) per expired deadline,
        // nothing for the ones still pending. Handling a deadline never schedules another
        // one at or before `now`, so the loops end.
        while let Some(&(at, id)) = self.conn_timers.first()
            && at <= now
        {
            self.conn_timers.remove(&(at, id));
            let Some(conn) = self.conns.get_mut(&id) else { continue };
            conn.deadline = None;
            if conn.state == ConnState::Active {
                // "If the Keep Alive value is non-zero and the Server does not receive an
                // MQTT Control Packet from the Client within one and a half times the Keep
                // Alive time period, it MUST close the Network Connection" [MQTT-3.1.2-22]
                // (3.1.1 [MQTT-3.1.2-24]); the will is published.
                self.server_disconnect(id, ReasonCode::KEEP_ALIVE_TIMEOUT);
                self.close(id, CloseReason::KeepAliveTimeout, true, now);
            } else {
                self.close(id, CloseReason::ConnectTimeout, false, now);
            }
        }
        for (client, will) in self.wills.take_due(now) {
            // "The Server MUST NOT send the Will Message" once reconnected [MQTT-3.1.3-9]:
            // reconnection removed it from the pending list.
            self.publish_will(client, will, now);
        }
        while let Some((at, client)) = self.session_timers.first().cloned()
            && at <= now
        {
            self.session_timers.remove(&(at, client.clone()));
            let Some(session) = self.sessions.get_mut(&client) else { continue };
            session.expires_at = None;
            if session.conn.is_none() {
                // "The Server MUST discard the Session State when the Network Connection is
                // closed and the Session Expiry Interval has passed" [MQTT-4.1.0-2].
                self.end_session(&client, now);
            }
        }
        if let Some(at) = self.next_sys
            && at <= now
        {
            self.publish_sys(now);
            self.next_sys = Some(add(now, secs(self.config.sys_interval_secs.max(1))));
        }
    }

    fn publish_sys(&mut self, now: Instant) {
        let clients = self
            .sessions
            .values()
            .map(|s| ClientInfo {
                client_id: s.client_id.to_string(),
                connected: s.conn.is_some(),
                peer: s.conn.and_then(|c| self.conns.get(&c)).map(|c| c.peer.to_string()),
                protocol: s.version.to_string(),
                keep_alive: s.conn.and_then(|c| self.conns.get(&c)).map(|c| c.keep_alive),
                subscriptions: s.subscriptions.keys().cloned().collect(),
                queued: s.queue.len(),
            })
            .collect();
        let snapshot = sys::Snapshot {
            stats: self.stats.clone(),
            started: self.started,
            clients_connected: self.sessions.values().filter(|s| s.conn.is_some()).count(),
            clients_total: self.sessions.len(),
            subscriptions: self.subs.len(),
            retained: self.retained.len(),
            clients,
        };
        for (topic, payload) in sys::topics(&snapshot, now) {
            let msg = Arc::new(Message::new(&topic, Bytes::from(payload), QoS::AtMostOnce, true));
            self.route(msg, now);
        }
    }

    /// Shut down: DISCONNECT 0x8B to every 5.0 client, close every connection. Sessions
    /// stay in memory (there is no persistence).
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.server_disconnect(id, ReasonCode::SERVER_SHUTTING_DOWN);
            self.close(id, CloseReason::ServerShutdown, false, now);
        }
    }

    // ---------------------------------------------------------------- output

    /// Encode and queue a packet for an accepted connection (its version), dropping it if
    /// it exceeds the client's Maximum Packet Size [MQTT-3.1.2-24].
    fn send_packet(&mut self, id: ConnId, packet: &Packet<'_>) -> bool {
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

    fn send_raw(&mut self, id: ConnId, packet: &Packet<'_>, version: ProtocolVersion) {
        if let Some(bytes) = encode(packet, version) {
            self.send_bytes(id, bytes);
        }
    }

    fn send_bytes(&mut self, id: ConnId, bytes: Bytes) {
        self.stats.bytes_sent = self.stats.bytes_sent.saturating_add(bytes.len() as u64);
        self.outputs.push_back(Output::Send(id, bytes));
    }
}

fn keep_alive_deadline(conn: &Conn) -> Option<Instant> {
    (conn.keep_alive > 0).then(|| add(conn.last_rx, Duration::from_millis(u64::from(conn.keep_alive) * 1500)))
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

fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(packet.encoded_len(version));
    packet.encode(version, &mut buf).ok()?;
    Some(buf.freeze())
}

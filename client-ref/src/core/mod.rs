//! The sans-IO client: a deterministic state machine with no sockets and no clock.
//!
//! * Inputs: [`Core::connect`], [`Core::transport_opened`] / [`Core::transport_failed`] /
//!   [`Core::transport_closed`], [`Core::handle_bytes`], [`Core::handle_timeout`], and the
//!   application's [`Core::publish`], [`Core::subscribe`], [`Core::unsubscribe`],
//!   [`Core::disconnect`]. Every call takes `now`.
//! * Outputs: [`Core::poll_transmit`] (bytes to write), [`Core::poll_timeout`] (the next
//!   deadline) and [`Core::poll_event`] ([`Event`]s: open or close the transport,
//!   connection events, messages, completed requests).
//!
//! One `Core` is one client (one session); it never allocates per message on the publish
//! path, so a process can drive thousands of them from one thread.

mod incoming;
mod outbound;
mod wire;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqttkit_codec::{PROTOCOL_MAX_PACKET_SIZE, PacketId, PacketType, ProtocolVersion, QoS, ReasonCode};

use self::outbound::{IdMap, Outbound, Queued, Stage};
use self::wire::TopicForm;
use crate::error::{OptionsError, PublishError, RequestError};
use crate::message::{
    CloseReason, Connected, ConnectionEvent, LostReason, Message, Publication, RequestProperties, Subscription, Topic,
};
use crate::options::Options;

/// Something for the I/O layer or the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Open a transport to `servers[server]`, then call [`Core::transport_opened`] (or
    /// [`Core::transport_failed`]).
    OpenTransport {
        /// Index into [`Options::servers`].
        server: usize,
    },
    /// Write what [`Core::poll_transmit`] returned so far, then close the transport.
    CloseTransport,
    /// A connection event for the application.
    Connection(ConnectionEvent),
    /// A message from the server (already acknowledged as its QoS requires).
    Message(Message),
    /// A publication finished: QoS 0 once written, QoS 1 on PUBACK, QoS 2 on PUBCOMP.
    /// `Ok` carries the reason code (always 0x00 before 5.0).
    Published {
        /// The caller's tag.
        tag: u64,
        /// Outcome.
        result: Result<ReasonCode, PublishError>,
    },
    /// SUBACK: one reason code per filter, in order.
    Subscribed {
        /// The caller's tag.
        tag: u64,
        /// Outcome.
        result: Result<Vec<ReasonCode>, RequestError>,
    },
    /// UNSUBACK: one reason code per filter (before 5.0, 0x00 for each).
    Unsubscribed {
        /// The caller's tag.
        tag: u64,
        /// Outcome.
        result: Result<Vec<ReasonCode>, RequestError>,
    },
}

/// The connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created; [`Core::connect`] not called yet.
    Idle,
    /// Waiting for the I/O layer to open a transport.
    Opening,
    /// CONNECT sent; waiting for CONNACK until the deadline.
    AwaitConnAck {
        /// Connect timeout.
        deadline: Instant,
    },
    /// CONNACK accepted the connection.
    Connected,
    /// Waiting before the next attempt.
    Backoff {
        /// When the next attempt starts.
        until: Instant,
    },
    /// Stopped for good.
    Closed,
}

/// The server's limits from CONNACK (defaults before 5.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ServerLimits {
    receive_maximum: u16,
    maximum_packet_size: Option<usize>,
    topic_alias_maximum: u16,
    maximum_qos: QoS,
    retain_available: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
        }
    }
}

/// A SUBSCRIBE or UNSUBSCRIBE, kept until its acknowledgement.
#[derive(Debug, Clone)]
enum RequestKind {
    Subscribe(Vec<Subscription>),
    Unsubscribe(Vec<String>),
}

#[derive(Debug, Clone)]
struct Request {
    /// `None` for the client's own re-subscriptions.
    tag: Option<u64>,
    kind: RequestKind,
    properties: RequestProperties,
}

/// A disconnect in progress (quiescing).
#[derive(Debug, Clone, Copy)]
struct Closing {
    deadline: Instant,
    code: ReasonCode,
    session_expiry: Option<u32>,
}

/// The client state machine. See the [module documentation](self).
#[derive(Debug)]
pub struct Core {
    options: Options,
    version: ProtocolVersion,
    /// The identifier sent in CONNECT (replaced by a 5.0 Assigned Client Identifier, so
    /// that reconnections resume the same session).
    client_id: String,
    keep_alive_sent: u16,
    state: State,
    /// Index of the server in use or tried next.
    server: usize,
    /// Failed attempts since the last accepted connection.
    attempt: u32,
    ever_connected: bool,
    closing: Option<Closing>,

    // Connection-scoped.
    rx: BytesMut,
    rx_limit: usize,
    tx: BytesMut,
    last_tx: Instant,
    last_rx: Instant,
    ping_deadline: Option<Instant>,
    keep_alive: Duration,
    limits: ServerLimits,
    aliases_out: std::collections::HashMap<Topic, u16>,
    aliases_in: IdMap<Topic>,

    // Session.
    outbound: Outbound,
    /// QoS 2 publications received and acknowledged with PUBREC, not yet released.
    incoming_qos2: HashSet<u16>,
    /// Sent SUBSCRIBE / UNSUBSCRIBE, by packet identifier, awaiting their acknowledgement.
    pending: IdMap<Request>,
    /// Requests to send once connected.
    unsent: VecDeque<Request>,
    /// Granted subscriptions (filter → subscription and identifier), for re-subscribing.
    subscriptions: BTreeMap<String, (Subscription, Option<u32>)>,

    events: VecDeque<Event>,
    scratch: Vec<u8>,
}

fn add(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

/// CONNACK codes that another attempt may overcome (server busy or unavailable, quota or
/// rate limits, another server); the rest (credentials, identifier, version,
/// authorisation, bans) would only fail again.
fn refusal_is_transient(code: ReasonCode) -> bool {
    matches!(code.0, 0x03 | 0x80 | 0x83 | 0x88 | 0x89 | 0x97 | 0x9C | 0x9D | 0x9F)
}

impl Core {
    /// A client for `options`, not yet connecting. Fails if the options cannot make a
    /// valid CONNECT (checked by encoding it).
    pub fn new(options: Options, now: Instant) -> Result<Self, OptionsError> {
        let version = options.version;
        let keep_alive_sent = options.keep_alive_secs()?;
        if options.servers.is_empty() {
            return Err(OptionsError::NoServer);
        }
        if !version.is_v5() {
            // "If the Client supplies a zero-byte ClientId, the Client MUST also set
            // CleanSession to 1" [MQTT-3.1.1: 3.1.3-7].
            if options.client_id.is_empty() && !options.clean_start {
                return Err(OptionsError::EmptyClientIdWithSession);
            }
            if options.session_expiry_interval.is_some() {
                return Err(OptionsError::V5Only("a session expiry interval"));
            }
            if options.properties != crate::options::ConnectProperties::default() {
                return Err(OptionsError::V5Only("CONNECT properties"));
            }
            if let Some(will) = &options.will
                && (will.delay_interval.is_some() || !will.properties.is_empty())
            {
                return Err(OptionsError::V5Only("will properties"));
            }
        }
        let mut scratch = Vec::new();
        wire::encode_connect(&options, &options.client_id, keep_alive_sent, &mut scratch, &mut BytesMut::new())?;
        let rx_limit = options
            .properties
            .maximum_packet_size
            .map_or(PROTOCOL_MAX_PACKET_SIZE, |m| usize::try_from(m).unwrap_or(PROTOCOL_MAX_PACKET_SIZE));
        Ok(Self {
            client_id: options.client_id.clone(),
            version,
            keep_alive_sent,
            state: State::Idle,
            server: 0,
            attempt: 0,
            ever_connected: false,
            closing: None,
            rx: BytesMut::new(),
            rx_limit,
            tx: BytesMut::new(),
            last_tx: now,
            last_rx: now,
            ping_deadline: None,
            keep_alive: Duration::from_secs(u64::from(keep_alive_sent)),
            limits: ServerLimits::default(),
            aliases_out: std::collections::HashMap::new(),
            aliases_in: IdMap::default(),
            outbound: Outbound::default(),
            incoming_qos2: HashSet::new(),
            pending: IdMap::default(),
            unsent: VecDeque::new(),
            subscriptions: BTreeMap::new(),
            events: VecDeque::new(),
            scratch,
            options,
        })
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether CONNACK accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The client identifier in use (the assigned one once the server assigned it).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// QoS 1/2 publications holding a packet identifier.
    pub fn in_flight(&self) -> usize {
        self.outbound.inflight.len()
    }

    /// Publications waiting to be sent.
    pub fn queued(&self) -> usize {
        self.outbound.queue.len()
    }

    /// The Keep Alive in force on this connection.
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    // ---------------------------------------------------------------- outputs

    /// Bytes to write to the transport, if any (one or more complete packets).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.tx.is_empty()).then(|| self.tx.split().freeze())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.closing.map(|c| c.deadline);
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n: Instant| n.min(at)));
        match self.state {
            State::AwaitConnAck { deadline } => consider(deadline),
            State::Backoff { until } => consider(until),
            State::Connected => {
                if let Some(at) = self.ping_deadline {
                    consider(at);
                } else if let Some(at) = self.keep_alive_deadline() {
                    consider(at);
                }
            }
            State::Idle | State::Opening | State::Closed => {}
        }
        next
    }

    /// When a PINGREQ is due: the keep-alive interval after the older of the last packet
    /// sent and the last received (paho's rule; the standard only requires the former).
    fn keep_alive_deadline(&self) -> Option<Instant> {
        (!self.keep_alive.is_zero()).then(|| add(self.last_tx.min(self.last_rx), self.keep_alive))
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn emit_connection(&mut self, event: ConnectionEvent) {
        self.emit(Event::Connection(event));
    }

    // ---------------------------------------------------------------- connection life

    /// Start connecting: asks for a transport to the first server.
    pub fn connect(&mut self, _now: Instant) {
        if self.state == State::Idle {
            self.open_transport();
        }
    }

    fn open_transport(&mut self) {
        self.state = State::Opening;
        self.emit(Event::OpenTransport { server: self.server });
    }

    /// The transport asked for by [`Event::OpenTransport`] is open: sends CONNECT.
    pub fn transport_opened(&mut self, now: Instant) {
        if self.state != State::Opening {
            return;
        }
        self.rx.clear();
        self.tx.clear();
        self.ping_deadline = None;
        self.limits = ServerLimits::default();
        self.keep_alive = Duration::from_secs(u64::from(self.keep_alive_sent));
        // "A receiver MUST NOT carry forward any Topic Alias mappings from one Network
        // Connection to another" [MQTT-5.0: 3.3.2-7].
        self.aliases_out.clear();
        self.aliases_in.clear();
        // "After a Network Connection is established by a Client to a Server, the first
        // Packet sent from the Client to the Server MUST be a CONNECT Packet"
        // [MQTT-3.1.1: 3.1.0-1] [MQTT-5.0: 3.1.0-1].
        let encoded =
            wire::encode_connect(&self.options, &self.client_id, self.keep_alive_sent, &mut self.scratch, &mut self.tx);
        if encoded.is_err() {
            // Checked by `new`; only an assigned client identifier could differ.
            self.close_for_good(CloseReason::Failed(LostReason::TransportFailed("invalid CONNECT".into())));
            return;
        }
        self.last_tx = now;
        self.last_rx = now;
        self.state = State::AwaitConnAck { deadline: add(now, self.options.connect_timeout) };
    }

    /// Opening the transport failed.
    pub fn transport_failed(&mut self, now: Instant, error: impl Into<String>) {
        if self.state == State::Opening {
            self.connection_ended(now, LostReason::TransportFailed(error.into()));
        }
    }

    /// The transport was closed by the peer or failed while open.
    pub fn transport_closed(&mut self, now: Instant, error: impl Into<String>) {
        if matches!(self.state, State::AwaitConnAck { .. } | State::Connected) {
            self.connection_ended(now, LostReason::TransportClosed(error.into()));
        }
    }

    /// The connection (or attempt) is over: close the transport, report, then back off and
    /// retry or stop.
    fn connection_ended(&mut self, now: Instant, reason: LostReason) {
        let was_open = matches!(self.state, State::AwaitConnAck { .. } | State::Connected);
        if was_open {
            self.emit(Event::CloseTransport);
        }
        self.ping_deadline = None;
        // Requests sent on this connection are sent again on the next.
        let mut sent: Vec<(u16, Request)> = self.pending.drain().collect();
        sent.sort_by_key(|(id, _)| *id);
        for (_, request) in sent.into_iter().rev() {
            self.unsent.push_front(request);
        }
        self.emit_connection(ConnectionEvent::ConnectionLost { reason: reason.clone() });
        if self.closing.is_some() {
            self.close_for_good(CloseReason::Disconnected);
            return;
        }
        let permanent = matches!(&reason, LostReason::Refused { code, .. } if !refusal_is_transient(*code));
        let retry = if self.ever_connected { self.options.auto_reconnect } else { self.options.connect_retry };
        if permanent || !retry {
            self.close_for_good(CloseReason::Failed(reason));
            return;
        }
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.options.backoff.delay(self.attempt);
        self.server = (self.server + 1) % self.options.servers.len().max(1);
        self.state = State::Backoff { until: add(now, delay) };
        self.emit_connection(ConnectionEvent::Reconnecting { attempt: self.attempt, delay });
    }

    /// Stop for good: every pending request fails with `Closed`.
    fn close_for_good(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.closing = None;
        for id in self.outbound.in_send_order() {
            if let Some(entry) = self.outbound.inflight.remove(&id)
                && let Some(tag) = entry.tag
            {
                self.emit(Event::Published { tag, result: Err(PublishError::Closed) });
            }
        }
        while let Some(q) = self.outbound.queue.pop_front() {
            if let Some(tag) = q.tag {
                self.emit(Event::Published { tag, result: Err(PublishError::Closed) });
            }
        }
        let requests: Vec<Request> = self.pending.drain().map(|(_, r)| r).chain(self.unsent.drain(..)).collect();
        for request in requests {
            self.fail_request(request, RequestError::Closed);
        }
        self.emit_connection(ConnectionEvent::Closed(reason));
    }

    fn fail_request(&mut self, request: Request, error: RequestError) {
        let Some(tag) = request.tag else { return };
        self.emit(match request.kind {
            RequestKind::Subscribe(_) => Event::Subscribed { tag, result: Err(error) },
            RequestKind::Unsubscribe(_) => Event::Unsubscribed { tag, result: Err(error) },
        });
    }

    /// The server broke the protocol: in 5.0 send DISCONNECT with `code` first, then
    /// close \[MQTT-3.1.1: 4.8.0-1\] (5.0 §4.13).
    fn protocol_error(&mut self, now: Instant, error: String, code: ReasonCode) {
        if self.version.is_v5() {
            wire::encode_disconnect(code, None, self.version, &mut self.tx);
        }
        self.connection_ended(now, LostReason::ProtocolError { error, code });
    }

    /// Check deadlines: connect timeout, keep alive, ping timeout, back-off, quiesce.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(closing) = self.closing
            && now >= closing.deadline
        {
            self.finish_disconnect(now);
            return;
        }
        match self.state {
            State::AwaitConnAck { deadline } if now >= deadline => {
                self.connection_ended(now, LostReason::ConnectTimeout);
            }
            State::Backoff { until } if now >= until => self.open_transport(),
            State::Connected => {
                if let Some(deadline) = self.ping_deadline {
                    if now >= deadline {
                        self.connection_ended(now, LostReason::PingTimeout);
                    }
                } else if self.keep_alive_deadline().is_some_and(|at| now >= at) {
                    // "In the absence of sending any other Control Packets, the Client
                    // MUST send a PINGREQ Packet" [MQTT-3.1.1: 3.1.2-23]
                    // [MQTT-5.0: 3.1.2-20].
                    wire::encode_pingreq(self.version, &mut self.tx);
                    self.last_tx = now;
                    let timeout =
                        if self.options.ping_timeout.is_zero() { self.keep_alive } else { self.options.ping_timeout };
                    self.ping_deadline = Some(add(now, timeout));
                }
            }
            _ => {}
        }
    }

    /// Disconnect: stop taking requests, wait up to `quiesce` for in-flight and queued
    /// publications and requests to complete, then send DISCONNECT (5.0: with `code` and,
    /// if given, a new Session Expiry Interval) and close. Ends with
    /// [`ConnectionEvent::Closed`].
    pub fn disconnect(&mut self, now: Instant, quiesce: Duration, code: ReasonCode, session_expiry: Option<u32>) {
        if self.state == State::Closed {
            return;
        }
        self.closing = Some(Closing { deadline: add(now, quiesce), code, session_expiry });
        self.maybe_finish_disconnect(now);
    }

    fn maybe_finish_disconnect(&mut self, now: Instant) {
        let idle = self.outbound.inflight.is_empty()
            && self.outbound.queue.is_empty()
            && self.pending.is_empty()
            && self.unsent.is_empty();
        if self.closing.is_some() && (idle || self.state != State::Connected) {
            self.finish_disconnect(now);
        }
    }

    fn finish_disconnect(&mut self, _now: Instant) {
        let Some(closing) = self.closing.take() else { return };
        match self.state {
            State::Connected => {
                wire::encode_disconnect(closing.code, closing.session_expiry, self.version, &mut self.tx);
                // "After sending a DISCONNECT Packet the Client MUST close the Network
                // Connection" and send nothing more [MQTT-3.1.1: 3.14.4-1]
                // [MQTT-3.1.1: 3.14.4-2] [MQTT-5.0: 3.14.4-1] [MQTT-5.0: 3.14.4-2].
                self.emit(Event::CloseTransport);
            }
            State::AwaitConnAck { .. } => self.emit(Event::CloseTransport),
            _ => {}
        }
        self.close_for_good(CloseReason::Disconnected);
    }

    // ---------------------------------------------------------------- application requests

    fn accepting(&self) -> bool {
        self.state != State::Closed && self.closing.is_none()
    }

    /// Publish. QoS 0 completes once written; QoS 1/2 when the handshake does. Queued
    /// while not connected, or while the server's Receive Maximum publications are in
    /// flight. With `tag` `None` no [`Event::Published`] is emitted.
    pub fn publish(&mut self, publication: Publication, tag: Option<u64>, now: Instant) -> Result<(), PublishError> {
        if !self.accepting() {
            return Err(PublishError::Closed);
        }
        wire::check_publication(&publication, self.version, &mut self.scratch)?;
        if self.state == State::Connected {
            self.check_limits(&publication)?;
        }
        self.outbound.queue.push_back(Queued { tag, publication });
        if self.state == State::Connected {
            self.drain_queue(now);
        }
        Ok(())
    }

    /// The server's Maximum QoS and Retain Available.
    fn check_limits(&self, p: &Publication) -> Result<(), PublishError> {
        // "If a Client receives a Maximum QoS from a Server, it MUST NOT send PUBLISH
        // packets at a QoS level exceeding the Maximum QoS level specified"
        // [MQTT-5.0: 3.2.2-11].
        if p.qos > self.limits.maximum_qos {
            return Err(PublishError::QoSNotSupported { maximum: self.limits.maximum_qos });
        }
        // "A Client receiving Retain Available set to 0 from the Server MUST NOT send a
        // PUBLISH packet with the RETAIN flag set to 1" [MQTT-5.0: 3.2.2-14].
        if p.retain && !self.limits.retain_available {
            return Err(PublishError::RetainNotSupported);
        }
        Ok(())
    }

    /// Send queued publications while the window allows: "The Client MUST NOT send more
    /// than Receive Maximum QoS 1 and QoS 2 PUBLISH packets for which it has not received
    /// PUBACK, PUBCOMP, or PUBREC with a Reason Code of 128 or greater"
    /// \[MQTT-5.0: 3.3.4-7\] \[MQTT-5.0: 4.9.0-2\].
    fn drain_queue(&mut self, now: Instant) {
        let quota = usize::from(self.limits.receive_maximum.min(self.options.max_inflight.max(1)));
        while self.state == State::Connected && self.outbound.front_fits(quota) {
            let Some(Queued { tag, publication }) = self.outbound.queue.pop_front() else { break };
            self.send_new(publication, tag, now);
        }
    }

    /// First transmission of a publication.
    fn send_new(&mut self, publication: Publication, tag: Option<u64>, now: Instant) {
        if let Err(e) = self.check_limits(&publication) {
            if let Some(tag) = tag {
                self.emit(Event::Published { tag, result: Err(e) });
            }
            return;
        }
        let id = match publication.qos {
            QoS::AtMostOnce => None,
            _ => {
                let pending = &self.pending;
                match self.outbound.allocate_id(|id| pending.contains_key(&id)) {
                    Some(id) => Some(id),
                    None => {
                        // Every identifier is in use: wait for an acknowledgement.
                        self.outbound.queue.push_front(Queued { tag, publication });
                        return;
                    }
                }
            }
        };
        let form = self.topic_form(&publication.topic);
        // "the Sender MUST send a PUBLISH packet containing this Packet Identifier with
        // QoS=1|2, DUP=0" [MQTT-3.1.1: 4.3.2-1] [MQTT-3.1.1: 4.3.3-1] [MQTT-5.0: 4.3.2-2]
        // [MQTT-5.0: 4.3.3-2]; QoS 0 with DUP=0 [MQTT-3.1.1: 4.3.1-1] [MQTT-5.0: 4.3.1-1].
        let sent = wire::encode_publish(
            &publication,
            id,
            false,
            form,
            self.version,
            self.limits.maximum_packet_size,
            &mut self.scratch,
            &mut self.tx,
        );
        match (sent, id) {
            (Err(e), _) => {
                if let Some(tag) = tag {
                    self.emit(Event::Published { tag, result: Err(e) });
                }
            }
            (Ok(()), None) => {
                self.last_tx = now;
                self.commit_alias(&publication.topic, form);
                if let Some(tag) = tag {
                    self.emit(Event::Published { tag, result: Ok(ReasonCode::SUCCESS) });
                }
            }
            (Ok(()), Some(id)) => {
                self.last_tx = now;
                self.commit_alias(&publication.topic, form);
                // "MUST treat the PUBLISH Packet as unacknowledged until it has received
                // the corresponding PUBACK / PUBREC" [MQTT-5.0: 4.3.2-3] [MQTT-5.0: 4.3.3-3].
                self.outbound.insert(id, tag, publication);
            }
        }
    }

    /// How to name `topic`: with outgoing aliases on, reuse one or take the next free
    /// one, never above the server's Topic Alias Maximum and never 0
    /// \[MQTT-5.0: 3.2.2-17\] \[MQTT-5.0: 3.2.2-18\] \[MQTT-5.0: 3.3.2-8\] \[MQTT-5.0: 3.3.2-9\].
    fn topic_form(&self, topic: &Topic) -> TopicForm {
        if !self.options.topic_aliases || !self.version.is_v5() || self.limits.topic_alias_maximum == 0 {
            return TopicForm::Name;
        }
        if let Some(&alias) = self.aliases_out.get(topic) {
            return TopicForm::Alias(alias);
        }
        match u16::try_from(self.aliases_out.len() + 1) {
            Ok(next) if next <= self.limits.topic_alias_maximum => TopicForm::NameAndAlias(next),
            _ => TopicForm::Name,
        }
    }

    fn commit_alias(&mut self, topic: &Topic, form: TopicForm) {
        if let TopicForm::NameAndAlias(alias) = form {
            self.aliases_out.insert(topic.clone(), alias);
        }
    }

    /// Re-send a publication still in flight after reconnecting with a session: "MUST
    /// re-send any unacknowledged PUBLISH Packets (where QoS > 0) and PUBREL Packets using
    /// their original Packet Identifiers" \[MQTT-3.1.1: 4.4.0-1\] \[MQTT-5.0: 4.4.0-1\]
    /// \[MQTT-3.1.1: 2.3.1-3\], with DUP=1, never after its PUBREL \[MQTT-5.0: 4.3.3-6\].
    fn resend(&mut self, id: u16, now: Instant) {
        let Some(packet_id) = PacketId::new(id) else { return };
        let Some(entry) = self.outbound.inflight.get(&id) else { return };
        match entry.stage {
            Stage::AwaitAck => {
                let sent = wire::encode_publish(
                    &entry.publication,
                    Some(packet_id),
                    true,
                    TopicForm::Name,
                    self.version,
                    self.limits.maximum_packet_size,
                    &mut self.scratch,
                    &mut self.tx,
                );
                if let Err(e) = sent
                    && let Some(entry) = self.outbound.inflight.remove(&id)
                    && let Some(tag) = entry.tag
                {
                    self.emit(Event::Published { tag, result: Err(e) });
                }
            }
            Stage::AwaitComp => {
                wire::encode_response(PacketType::PubRel, packet_id, ReasonCode::SUCCESS, self.version, &mut self.tx);
            }
        }
        self.last_tx = now;
    }

    /// Subscribe; completes with [`Event::Subscribed`] carrying one reason code per
    /// filter.
    pub fn subscribe(
        &mut self,
        subscriptions: Vec<Subscription>,
        properties: RequestProperties,
        tag: u64,
        now: Instant,
    ) -> Result<(), RequestError> {
        self.request(Request { tag: Some(tag), kind: RequestKind::Subscribe(subscriptions), properties }, now)
    }

    /// Unsubscribe; completes with [`Event::Unsubscribed`].
    pub fn unsubscribe(
        &mut self,
        filters: Vec<String>,
        properties: RequestProperties,
        tag: u64,
        now: Instant,
    ) -> Result<(), RequestError> {
        self.request(Request { tag: Some(tag), kind: RequestKind::Unsubscribe(filters), properties }, now)
    }

    fn request(&mut self, request: Request, now: Instant) -> Result<(), RequestError> {
        if !self.accepting() {
            return Err(RequestError::Closed);
        }
        // Validate now by encoding into a throw-away buffer, so that errors reach the
        // caller directly.
        let mut check = BytesMut::new();
        self.encode_request(&request, PacketId::MIN, None, &mut check)?;
        self.unsent.push_back(request);
        if self.state == State::Connected {
            self.send_requests(now);
        }
        Ok(())
    }

    fn encode_request(
        &mut self,
        request: &Request,
        id: PacketId,
        limit: Option<usize>,
        tx: &mut BytesMut,
    ) -> Result<(), RequestError> {
        match &request.kind {
            RequestKind::Subscribe(subs) => {
                wire::encode_subscribe(id, subs, &request.properties, self.version, limit, &mut self.scratch, tx)
            }
            RequestKind::Unsubscribe(filters) => {
                wire::encode_unsubscribe(id, filters, &request.properties, self.version, limit, &mut self.scratch, tx)
            }
        }
    }

    /// Send the requests waiting for a connection. They are not PUBLISH packets, so the
    /// send quota never holds them back \[MQTT-5.0: 3.3.4-8\] \[MQTT-5.0: 4.9.0-3\].
    fn send_requests(&mut self, now: Instant) {
        while self.state == State::Connected {
            let Some(request) = self.unsent.pop_front() else { break };
            let pending = &self.pending;
            let Some(id) = self.outbound.allocate_id(|id| pending.contains_key(&id)) else {
                self.unsent.push_front(request);
                break;
            };
            let mut tx = std::mem::take(&mut self.tx);
            let sent = self.encode_request(&request, id, self.limits.maximum_packet_size, &mut tx);
            self.tx = tx;
            match sent {
                Ok(()) => {
                    self.last_tx = now;
                    self.pending.insert(id.get(), request);
                }
                Err(e) => self.fail_request(request, e),
            }
        }
    }

    // ---------------------------------------------------------------- received data

    /// Bytes received from the transport.
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        if !matches!(self.state, State::AwaitConnAck { .. } | State::Connected) {
            return;
        }
        wire::reserve(&mut self.rx, bytes.len());
        self.rx.extend_from_slice(bytes);
        self.last_rx = now;
        self.process_rx(now);
    }
}

impl Core {
    /// Record what CONNACK granted and report it.
    fn connected(&mut self, info: Connected, session_present: bool, now: Instant) {
        self.state = State::Connected;
        let reconnection = self.ever_connected;
        self.ever_connected = true;
        self.attempt = 0;
        if session_present {
            for id in self.outbound.in_send_order() {
                self.resend(id, now);
            }
        } else {
            // "If the Client does have Session State and receives Session Present set to
            // 0 it MUST discard its Session State" [MQTT-5.0: 3.2.2-5]; with Clean Session
            // "State data ... MUST NOT be reused in any subsequent Session"
            // [MQTT-3.1.1: 3.1.2-6]. Publications not yet acknowledged are sent again as
            // new application messages; those past PUBREC were delivered.
            for entry in self.outbound.restart_session() {
                if let Some(tag) = entry.tag {
                    self.emit(Event::Published { tag, result: Ok(entry.rec_code) });
                }
            }
            self.incoming_qos2.clear();
            if reconnection && self.options.resubscribe {
                self.queue_resubscriptions();
            }
        }
        self.emit_connection(ConnectionEvent::Connected(info));
        self.send_requests(now);
        self.drain_queue(now);
        self.maybe_finish_disconnect(now);
    }

    /// SUBSCRIBE again to every granted filter (grouped by subscription identifier), ahead
    /// of the application's own requests.
    fn queue_resubscriptions(&mut self) {
        let mut groups: BTreeMap<Option<u32>, Vec<Subscription>> = BTreeMap::new();
        for (sub, id) in self.subscriptions.values() {
            groups.entry(*id).or_default().push(sub.clone());
        }
        for (id, subs) in groups.into_iter().rev() {
            let properties = RequestProperties { subscription_identifier: id, user_properties: Vec::new() };
            self.unsent.push_front(Request { tag: None, kind: RequestKind::Subscribe(subs), properties });
        }
    }
}

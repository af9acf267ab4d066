//! CONNECT (§3.1): refusals, client identifiers, session takeover and resumption, CONNACK.

use std::sync::Arc;
use std::time::Instant;

use mqttkit_codec::{
    ConnAck, Connect, EncodeError, Packet, Properties, PropertiesBuf, Property, PropertyContext, ProtocolVersion,
    ReasonCode,
};

use super::connection::ConnState;
use super::session::{NEVER_EXPIRES, Session};
use super::will::WillMessage;
use super::{CloseReason, ConnId, Core};
use crate::auth::LoginRefusal;

impl Core {
    pub(super) fn handle_connect(&mut self, id: ConnId, connect: &Connect<'_>, now: Instant) {
        let version = connect.version;
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
        // A user name from the client's TLS certificate replaces the CONNECT's.
        let user: Option<Arc<str>> =
            conn.certificate_user.clone().or_else(|| connect.username.map(|u| Arc::from(u.as_str())));
        let checked = if over_quota { Err(ReasonCode::QUOTA_EXCEEDED) } else { self.check_connect(id, connect) };
        let ids = checked.and_then(|()| self.client_id_for(connect));
        let (client_id, assigned) =
            match ids.and_then(|ids| self.check_will(connect, user.as_deref(), &ids.0).map(|()| ids)) {
                Ok(ids) => ids,
                Err(code) => {
                    self.refuse(id, connect, user.as_deref(), code, now);
                    return;
                }
            };
        // Session Expiry Interval: 5.0 property (default 0); 3.1.1 clean session → 0,
        // otherwise the session never expires.
        let expiry = if version.is_v5() {
            connect.properties.session_expiry_interval().unwrap_or(0).min(self.config.max_session_expiry_secs)
        } else if connect.clean_start {
            0
        } else {
            NEVER_EXPIRES
        };
        // The session (and a will) change: what is sent from here waits for the store.
        self.touch_client(&client_id, expiry > 0 || connect.will.is_some());
        self.take_over(&client_id, connect.clean_start, now);
        let session_present = self.attach_session(id, &client_id, connect, expiry);
        if let Some(session) = self.sessions.get_mut(&client_id) {
            session.user.clone_from(&user);
        }
        // From here on the session's own `Arc` is used everywhere (the connection, the
        // subscriptions), so that a session is recognised by pointer when routing.
        let client_id = self.sessions.get_key_value(&client_id).map_or(client_id, |(key, _)| key.clone());
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.user = user;
            conn.since = now;
        }
        self.accept(id, &client_id, connect, assigned.as_deref(), expiry, session_present);
        if let Some(conn) = self.conns.get(&id) {
            let log = crate::log::ClientLog {
                client_id: &client_id,
                user: conn.user.as_deref(),
                peer: conn.peer,
                transport: conn.transport,
                version,
            };
            crate::log::connected(log, conn.keep_alive, connect.clean_start, expiry, session_present);
        }
        self.resume_session(&client_id, now);
    }

    /// The checks a CONNECT must pass before a session is touched: the reason code to
    /// refuse it with otherwise.
    fn check_connect(&self, id: ConnId, connect: &Connect<'_>) -> Result<(), ReasonCode> {
        let config = &self.config;
        // "If the Server does not support the Authentication Method supplied by the
        // Client, it MAY send a CONNACK with a Reason Code of 0x8C (Bad authentication
        // method)" [MQTT-5.0: 4.12.0-1].
        if connect.properties.authentication_method().is_some() {
            return Err(ReasonCode::BAD_AUTHENTICATION_METHOD);
        }
        // "The Server MUST perform the processing of Clean Session/Start" only after
        // authentication: the Server "MAY check that the contents of the CONNECT packet
        // meet any further restrictions and SHOULD perform authentication and
        // authorization checks" [MQTT-3.1.1: 3.1.4-2] [MQTT-5.0: 3.1.4-2]. A user name
        // from a verified client certificate needs no password.
        let certified = self.conns.get(&id).is_some_and(|c| c.certificate_user.is_some());
        if !certified {
            self.auth.check(connect.username.map(|u| u.as_str()), connect.password).map_err(
                |refusal| match refusal {
                    LoginRefusal::AnonymousNotAllowed => ReasonCode::NOT_AUTHORIZED,
                    LoginRefusal::BadCredentials => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                },
            )?;
        }
        if let Some(will) = &connect.will {
            // "If a Server receives a CONNECT packet containing a Will QoS that exceeds its
            // capabilities, it MUST reject the connection" [MQTT-3.2.2-12].
            if will.qos.as_u8() > config.maximum_qos {
                return Err(ReasonCode::QOS_NOT_SUPPORTED);
            }
            // "If a Server receives a CONNECT packet containing a Will Message with the
            // Will Retain 1, and it does not support retained messages, the Server MUST
            // reject the connection request" [MQTT-3.2.2-13].
            if will.retain && !config.retain_available {
                return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
            }
            if !self.topic_within_limits(&will.topic) {
                return Err(ReasonCode::TOPIC_NAME_INVALID);
            }
        }
        Ok(())
    }

    /// Authorisation of the will topic, once the client id is known
    /// [MQTT-3.1.1: 3.1.4-2] [MQTT-5.0: 3.1.4-2].
    fn check_will(&self, connect: &Connect<'_>, user: Option<&str>, client_id: &str) -> Result<(), ReasonCode> {
        match &connect.will {
            Some(will) if self.publish_denied(user, client_id, &will.topic) => Err(ReasonCode::NOT_AUTHORIZED),
            _ => Ok(()),
        }
    }

    /// The session key of a CONNECT, and the identifier assigned to it if the client sent
    /// none.
    fn client_id_for(&mut self, connect: &Connect<'_>) -> Result<(Arc<str>, Option<Arc<str>>), ReasonCode> {
        if !connect.client_id.is_empty() {
            return Ok((Arc::from(connect.client_id.as_str()), None));
        }
        match connect.version {
            // 3.1 requires 1 to 23 characters.
            ProtocolVersion::V3_1 => Err(ReasonCode::V3_IDENTIFIER_REJECTED),
            // "If the Client supplies a zero-byte ClientId with CleanSession set to 0, the
            // Server MUST respond to the CONNECT Packet with a CONNACK return code 0x02
            // (Identifier rejected) and then close the Network Connection" [MQTT-3.1.3-8].
            ProtocolVersion::V3_1_1 if !connect.clean_start => Err(ReasonCode::V3_IDENTIFIER_REJECTED),
            // "the Server MUST treat this as a special case and assign a unique ClientID to
            // that Client" [MQTT-3.1.3-6] and return it [MQTT-3.1.3-7].
            _ => {
                let generated = self.generate_client_id();
                Ok((generated.clone(), Some(generated)))
            }
        }
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

    /// Send a refusing CONNACK (if it fits the client's limit) and close.
    fn refuse(&mut self, id: ConnId, connect: &Connect<'_>, user: Option<&str>, code: ReasonCode, now: Instant) {
        let version = connect.version;
        let code = if version.is_v5() { code } else { code.to_v3_connack() };
        if let Some(conn) = self.conns.get(&id) {
            // The password is never logged.
            let log = crate::log::ClientLog {
                client_id: connect.client_id.as_str(),
                user,
                peer: conn.peer,
                transport: conn.transport,
                version,
            };
            crate::log::refused(log, code);
        }
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

    /// Close another connection of the same client, and settle pending wills.
    fn take_over(&mut self, client_id: &Arc<str>, clean_start: bool, now: Instant) {
        let old_conn = self.sessions.get(client_id).and_then(|s| s.conn);
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
                    if clean_start || will.delay == 0 {
                        self.publish_will(client_id.clone(), *will, now);
                    }
                }
            }
            if let Some(session) = self.sessions.get_mut(client_id) {
                session.conn = None;
            }
            self.close(old, CloseReason::SessionTakenOver, false, now);
        }
        // "If a new Network Connection to this Session is made before the Will Delay
        // Interval has passed, the Server MUST NOT send the Will Message" [MQTT-3.1.3-9];
        // with Clean Start 1 the old session ends, which publishes the will.
        if let Some(pending) = self.wills.take(client_id)
            && clean_start
        {
            self.publish_will(client_id.clone(), pending, now);
        }
    }

    /// Start or resume the session of `client_id` on connection `id`; whether one was
    /// present.
    fn attach_session(&mut self, id: ConnId, client_id: &Arc<str>, connect: &Connect<'_>, expiry: u32) -> bool {
        // "If a CONNECT packet is received with Clean Start is set to 1, the Client and
        // Server MUST discard any existing Session and start a new Session"
        // [MQTT-3.1.2-4]; otherwise resume it [MQTT-3.1.2-5] or create one [MQTT-3.1.2-6].
        if connect.clean_start {
            self.remove_session(client_id);
        }
        let session_present = self.sessions.contains_key(client_id);
        let session = self
            .sessions
            .entry(client_id.clone())
            .or_insert_with(|| Box::new(Session::new(client_id.clone(), connect.version)));
        session.conn = Some(id);
        session.version = connect.version;
        session.expiry_interval = expiry;
        self.set_session_expiry(client_id, None);
        session_present
    }

    /// Make the connection active and send the successful CONNACK.
    fn accept(
        &mut self,
        id: ConnId,
        client_id: &Arc<str>,
        connect: &Connect<'_>,
        assigned: Option<&str>,
        expiry: u32,
        session_present: bool,
    ) {
        let version = connect.version;
        let server_keep_alive = self.server_keep_alive(connect);
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.state = ConnState::Active;
        conn.client_id = Some(client_id.clone());
        // "If the Server sends a Server Keep Alive on the CONNACK packet, the Client MUST
        // use this value instead of the Keep Alive value the Client sent on CONNECT"
        // [MQTT-3.2.2-21]; the server enforces the value it sent. 3.1.1 has no way to tell
        // the client, so its own value is used.
        conn.keep_alive = server_keep_alive.unwrap_or(connect.keep_alive);
        conn.connect_expiry = expiry;
        // [MQTT-3.1.2-7]: the will is stored with the connection.
        conn.will = connect.will.as_ref().map(|will| Box::new(WillMessage::from_connect(will)));
        if version.is_v5() {
            // "If the Receive Maximum value is absent then its value defaults to 65,535"
            // (5.0 §3.1.2.11.3): the client said it takes that many; the outbound queue
            // limit bounds what is buffered (3.1.1 clients get `max_inflight`).
            conn.send_window = usize::from(connect.properties.receive_maximum().unwrap_or(u16::MAX).max(1));
        }

        let mut buf = PropertiesBuf::new();
        if version.is_v5() {
            let _ = self.connack_properties(&mut buf, connect, assigned, expiry, server_keep_alive);
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
    }

    /// The Server Keep Alive to send a 5.0 client: `server_keep_alive` always, or
    /// `max_keepalive` when the client asks for more, or for 0 (none).
    fn server_keep_alive(&self, connect: &Connect<'_>) -> Option<u16> {
        if !connect.version.is_v5() {
            return None;
        }
        match (self.config.server_keep_alive, self.config.max_keepalive) {
            (Some(keep_alive), _) => Some(keep_alive),
            (None, Some(max)) if connect.keep_alive == 0 || connect.keep_alive > max => Some(max),
            _ => None,
        }
    }

    fn connack_properties(
        &self,
        buf: &mut PropertiesBuf,
        connect: &Connect<'_>,
        assigned: Option<&str>,
        expiry: u32,
        server_keep_alive: Option<u16>,
    ) -> Result<(), EncodeError> {
        let config = &self.config;
        let requested = connect.properties.session_expiry_interval().unwrap_or(0);
        if requested != expiry {
            buf.push(Property::SessionExpiryInterval(expiry))?;
        }
        buf.push(Property::ReceiveMaximum(config.receive_maximum.max(1)))?;
        if let Some(keep_alive) = server_keep_alive {
            // [MQTT-5.0: 3.2.2-21]: the client uses this instead of its own Keep Alive.
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

    /// After CONNACK: re-send unacknowledged messages with DUP, then drain the queue.
    fn resume_session(&mut self, client: &Arc<str>, now: Instant) {
        // "When a Client reconnects with Clean Start set to 0 and a session is present,
        // both the Client and Server MUST resend any unacknowledged PUBLISH packets (where
        // QoS > 0) and PUBREL packets using their original Packet Identifiers"
        // [MQTT-4.4.0-1], in the original order [MQTT-4.6.0-1]. `pump` sends them first,
        // within the new connection's Receive Maximum [MQTT-3.3.4-9].
        if let Some(flow) = self.sessions.get_mut(client).and_then(|s| s.flow.as_deref_mut()) {
            flow.inflight.mark_all_for_resend();
        }
        self.pump(client, now);
    }
}

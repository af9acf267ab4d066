//! Delivery: routing a message to the sessions whose subscriptions match, the outgoing
//! in-flight window (Receive Maximum), re-sending after a reconnect, and the
//! acknowledgements subscribers send back (PUBACK, PUBREC, PUBCOMP).

use std::sync::Arc;
use std::time::Instant;

use mqttkit_codec::{Packet, PacketId, PacketType, ProtocolVersion, PublishResponse, QoS, ReasonCode};

use super::inflight::OutState;
use super::message::{self, Delivery, Message, SharedEncodings};
use super::outputs::encode;
use super::subscriptions::Match;
use super::{ConnId, Core};

/// For subscriptions matched by one message, the index of the first subscription of the
/// same session (`None`: every session matched once). Sessions are told apart by pointer:
/// every subscription of a session holds the session's own `Arc` (see `handle_connect`),
/// so this costs integer comparisons, not string ones.
fn same_session(matched: &[Match]) -> Option<Vec<usize>> {
    if matched.len() < 2 {
        return None;
    }
    let key = |i: &usize| matched.get(*i).map_or(0, |(client, _)| Arc::as_ptr(client).cast::<u8>() as usize);
    let mut order: Vec<usize> = (0..matched.len()).collect();
    order.sort_unstable_by_key(|i| (key(i), *i));
    let mut owners: Vec<usize> = (0..matched.len()).collect();
    let mut repeated = false;
    for pair in order.windows(2) {
        if let [a, b] = *pair
            && key(&a) == key(&b)
        {
            // `a` is the first of its run: the lowest index of that session.
            let first = owners.get(a).copied().unwrap_or(a);
            if let Some(slot) = owners.get_mut(b) {
                *slot = first;
            }
            repeated = true;
        }
    }
    repeated.then_some(owners)
}

/// Why a message is delivered: the policy for a full outbound queue differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// A message routed to a matching subscription: QoS 0 is dropped when the
    /// connection's outbound queue is full.
    Routed,
    /// A retained message sent because of a new subscription: always queued (the burst is
    /// bounded by the retained store).
    Retained,
}

impl Core {
    /// Deliver a message to every matching subscription; store it if retained.
    /// Returns the number of sessions it was given to.
    pub fn route(&mut self, msg: Arc<Message>, now: Instant) -> usize {
        if msg.retain && self.config.retain_available {
            self.retained_changed(&msg.topic);
            self.retained.update(&msg);
        }
        if self.subscribe_denied(&msg.topic) {
            return 0;
        }
        // One copy per session: the maximum QoS of all matching subscriptions
        // [MQTT-3.3.4-2] / [MQTT-3.3.5-1] and all their subscription identifiers
        // [MQTT-3.3.4-3], [MQTT-3.3.4-4].
        let (mut matched, mut shared) = (Vec::new(), Vec::new());
        let (sessions, acl) = (&self.sessions, self.config.acl_rules.as_deref());
        // The ACL file may deny topics inside a filter it let the client subscribe to.
        let readable = |c: &str| {
            acl.is_none_or(|acl| {
                let user = sessions.get(c).and_then(|s| s.user.as_deref());
                acl.allows(user, c, &msg.topic, crate::auth::Access::Read)
            })
        };
        let eligible = |c: &str| sessions.get(c).is_some_and(|s| s.conn.is_some()) && readable(c);
        self.subs.matches(&msg.topic, eligible, &mut matched, &mut shared);
        // "If the value is 1, Application Messages MUST NOT be forwarded to a connection
        // with a ClientID equal to the ClientID of the publishing connection"
        // [MQTT-3.8.3-3].
        matched.retain(|(client, opts)| !(opts.no_local && msg.publisher.as_deref() == Some(&**client)));
        if acl.is_some() {
            matched.retain(|(client, _)| readable(client));
            shared.retain(|(client, _)| readable(client));
        }
        let owners = same_session(&matched);
        let mut deliveries: Vec<Option<Delivery>> = Vec::with_capacity(matched.len());
        for (i, (_, opts)) in matched.iter().enumerate() {
            deliveries.push(None);
            let owner = owners.as_ref().and_then(|o| o.get(i).copied()).unwrap_or(i);
            let Some(entry) = deliveries.get_mut(owner) else { continue };
            let entry = entry.get_or_insert_with(|| Delivery {
                msg: msg.clone(),
                qos: QoS::AtMostOnce,
                retain: false,
                sub_ids: Vec::new(),
                seq: 0,
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
        let mut count = 0usize;
        let mut encodings = SharedEncodings::default();
        for ((client, _), delivery) in matched.iter().zip(deliveries) {
            if let Some(delivery) = delivery {
                count = count.saturating_add(1);
                self.deliver(client, delivery, Reason::Routed, &mut encodings, now);
            }
        }
        for (client, opts) in shared {
            count = count.saturating_add(1);
            let delivery = Delivery {
                msg: msg.clone(),
                qos: opts.qos.min(msg.qos),
                retain: opts.retain_as_published && msg.retain,
                sub_ids: opts.sub_id.into_iter().collect(),
                seq: 0,
            };
            self.deliver(&client, delivery, Reason::Routed, &mut encodings, now);
        }
        count
    }

    /// Add a delivery to a session: send at once if possible, otherwise queue it.
    pub(super) fn deliver(
        &mut self,
        client: &Arc<str>,
        delivery: Delivery,
        reason: Reason,
        encodings: &mut SharedEncodings,
        now: Instant,
    ) {
        if delivery.qos != QoS::AtMostOnce {
            self.touch(client);
        }
        let limit = self.config.max_queued_messages;
        let full = self.sessions.get(client).and_then(|s| s.conn).is_some_and(|id| self.outbound_full(id));
        let Some(session) = self.sessions.get_mut(client) else { return };
        match session.conn {
            Some(id) if delivery.qos == QoS::AtMostOnce => {
                let version = session.version;
                // Slow consumer: a full outbound queue drops QoS 0 messages (counted);
                // the connection is only closed if it stops reading altogether.
                if reason == Reason::Routed && full {
                    session.dropped = session.dropped.saturating_add(1);
                    self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
                    return;
                }
                self.send_publish(id, version, &delivery, None, Some(encodings), now);
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

    /// Send queued messages while the client's Receive Maximum and its outbound queue
    /// allow (a full queue resumes from [`Core::transmitted`]).
    pub(super) fn pump(&mut self, client: &Arc<str>, now: Instant) {
        self.touch(client);
        let limit = self.config.max_outbound_bytes;
        loop {
            // One session lookup per message: the session and its connection are borrowed
            // together (different fields).
            let Some(session) = self.sessions.get_mut(client) else { return };
            let Some(id) = session.conn else { return };
            let Some(conn) = self.conns.get(&id) else { return };
            if conn.out.as_ref().is_some_and(|out| out.len() >= limit) {
                return;
            }
            let (window, version) = (conn.send_window, session.version);
            let Some(flow) = session.flow.as_deref_mut() else { return };
            // "The Server MUST NOT send more than Receive Maximum QoS 1 and QoS 2 PUBLISH
            // packets for which it has not received PUBACK, PUBCOMP, or PUBREC with a
            // Reason Code of 128 or greater" [MQTT-3.3.4-9].
            if flow.inflight.on_wire() >= window {
                return;
            }
            // Messages of an earlier connection are re-sent before anything new.
            if flow.inflight.has_resend() {
                self.resend_one(client, id, now);
                continue;
            }
            if flow.inflight.len() >= window {
                return;
            }
            let Some(delivery) = flow.queue.pop_front() else {
                // Nothing waiting: release the queue's memory (and the rest once idle).
                flow.queue = Default::default();
                session.release_idle_flow();
                return;
            };
            // "If the Message Expiry Interval has passed and the Server has not managed to
            // start onward delivery to a matching subscriber, then it MUST delete the copy
            // of the message for that subscriber" [MQTT-3.3.2-5].
            if delivery.msg.is_expired(now) {
                self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
                continue;
            }
            if delivery.qos == QoS::AtMostOnce {
                self.send_publish(id, version, &delivery, None, None, now);
                continue;
            }
            let Some(pid) = flow.inflight.allocate_id() else {
                flow.queue.push_front(delivery);
                return;
            };
            let state = if delivery.qos == QoS::ExactlyOnce { OutState::Qos2Sent } else { OutState::Qos1Sent };
            // Recorded before it is sent (so the session is looked up once); taken back in
            // the rare case it cannot be sent.
            flow.inflight.push(pid, state, delivery.clone());
            if !self.send_publish(id, version, &delivery, Some(pid), None, now)
                && let Some(session) = self.sessions.get_mut(client)
            {
                session.flow_mut().inflight.remove(pid);
            }
        }
    }

    /// Re-send one unacknowledged message on the current connection. `false` if there was
    /// none waiting.
    fn resend_one(&mut self, client: &Arc<str>, id: ConnId, now: Instant) -> bool {
        let Some(session) = self.sessions.get_mut(client) else { return false };
        let version = session.version;
        let Some(entry) = session.flow.as_deref_mut().and_then(|f| f.inflight.take_resend()) else { return false };
        let sent = match entry.state {
            // "The DUP flag MUST be set to 1 by the Client or Server when it attempts to
            // re-deliver a PUBLISH packet" [MQTT-3.3.1-1].
            OutState::Qos1Sent | OutState::Qos2Sent => {
                let mut props = Vec::new();
                match message::publish_packet(version, &entry.delivery, Some(entry.id), true, now, &mut props) {
                    Some(publish) => self.send_sized(id, &Packet::Publish(publish), version, &entry.delivery),
                    None => false,
                }
            }
            OutState::Released => self.send_packet(id, &Packet::PubRel(PublishResponse::new(entry.id))),
        };
        if !sent {
            // Too large for this connection's Maximum Packet Size: discarded "as if it had
            // completed sending that Application Message" [MQTT-3.1.2-25].
            if let Some(session) = self.sessions.get_mut(client) {
                session.flow_mut().inflight.remove(entry.id);
            }
            self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
        }
        true
    }

    /// Encode and queue a PUBLISH; `false` if it was dropped (too large for the client).
    /// QoS 0 packets that are the same for every subscriber are encoded once per routed
    /// message (`encodings`) and shared.
    fn send_publish(
        &mut self,
        id: ConnId,
        version: ProtocolVersion,
        delivery: &Delivery,
        pid: Option<PacketId>,
        encodings: Option<&mut SharedEncodings>,
        now: Instant,
    ) -> bool {
        let max = self.conns.get(&id).map_or(0, |c| c.max_packet_out);
        let sent = match encodings {
            Some(encodings) if message::shareable(delivery) => {
                let bytes = encodings.get_or_encode(&delivery.msg, version, delivery.retain, || {
                    let mut props = Vec::new();
                    let publish = message::publish_packet(version, delivery, None, false, now, &mut props)?;
                    encode(&Packet::Publish(publish), version)
                });
                match bytes {
                    // "The Server MUST NOT send packets exceeding Maximum Packet Size to the
                    // Client" [MQTT-3.1.2-24].
                    Some(bytes) if bytes.len() <= max => {
                        self.send_bytes(id, bytes);
                        true
                    }
                    _ => false,
                }
            }
            _ => {
                let mut props = Vec::new();
                match message::publish_packet(version, delivery, pid, false, now, &mut props) {
                    Some(publish) => self.send_sized(id, &Packet::Publish(publish), version, delivery),
                    None => false,
                }
            }
        };
        if sent {
            self.stats.messages_sent = self.stats.messages_sent.saturating_add(1);
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.traffic.messages_out = conn.traffic.messages_out.saturating_add(1);
            }
        } else {
            // "Where a Packet is too large to send, the Server MUST discard it without
            // sending it and then behave as if it had completed sending that Application
            // Message" [MQTT-3.1.2-25].
            self.stats.messages_dropped = self.stats.messages_dropped.saturating_add(1);
        }
        sent
    }

    /// Queue a PUBLISH of `delivery` (its payload shared, not copied, when large) unless
    /// it exceeds the client's Maximum Packet Size [MQTT-3.1.2-24].
    fn send_sized(&mut self, id: ConnId, packet: &Packet<'_>, version: ProtocolVersion, delivery: &Delivery) -> bool {
        let Some(conn) = self.conns.get(&id) else { return false };
        if packet.encoded_len(version) > conn.max_packet_out {
            return false;
        }
        self.queue_packet(id, packet, version, Some(&delivery.msg.payload))
    }

    pub(super) fn handle_puback(&mut self, id: ConnId, ack: &PublishResponse<'_>, now: Instant) {
        let Some(client) = self.client_of(id) else { return };
        if let Some(flow) = self.sessions.get_mut(&client).and_then(|s| s.flow.as_deref_mut())
            && flow.inflight.state(ack.packet_id) == Some(OutState::Qos1Sent)
        {
            // [MQTT-4.3.2-3]: acknowledged; the packet identifier is free again.
            flow.inflight.remove(ack.packet_id);
        }
        self.pump(&client, now);
    }

    pub(super) fn handle_pubrec(&mut self, id: ConnId, rec: &PublishResponse<'_>, now: Instant) {
        let Some(client) = self.client_of(id) else { return };
        let Some(session) = self.sessions.get_mut(&client) else { return };
        let v5 = session.version.is_v5();
        let flow = session.flow_mut();
        match flow.inflight.state(rec.packet_id) {
            Some(OutState::Qos2Sent) if rec.reason_code.is_error() => {
                // "If PUBACK or PUBREC is received containing a Reason Code of 0x80 or
                // greater the corresponding PUBLISH packet is treated as acknowledged"
                // [MQTT-4.4.0-2].
                flow.inflight.remove(rec.packet_id);
                self.pump(&client, now);
            }
            Some(OutState::Qos2Sent | OutState::Released) => {
                // "the sender MUST send a PUBREL packet when it receives a PUBREC packet"
                // [MQTT-4.3.3-4] and not re-send the PUBLISH afterwards [MQTT-4.3.3-6].
                flow.inflight.set_state(rec.packet_id, OutState::Released);
                self.send_ack(id, PacketType::PubRel, rec.packet_id, ReasonCode::SUCCESS);
            }
            _ => {
                session.release_idle_flow();
                let code = if v5 { ReasonCode::PACKET_IDENTIFIER_NOT_FOUND } else { ReasonCode::SUCCESS };
                self.send_ack(id, PacketType::PubRel, rec.packet_id, code);
            }
        }
    }

    pub(super) fn handle_pubcomp(&mut self, id: ConnId, comp: &PublishResponse<'_>, now: Instant) {
        let Some(client) = self.client_of(id) else { return };
        if let Some(flow) = self.sessions.get_mut(&client).and_then(|s| s.flow.as_deref_mut())
            && flow.inflight.state(comp.packet_id) == Some(OutState::Released)
        {
            // [MQTT-4.3.3-5]: PUBREL acknowledged, flow complete.
            flow.inflight.remove(comp.packet_id);
        }
        self.pump(&client, now);
    }
}

//! What the server sends: framing and decoding (full validation by the codec), then one
//! handler per packet type. A malformed packet or a protocol error closes the connection
//! (5.0: after DISCONNECT with the reason code).

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit_codec::{
    ConnAck, Disconnect, Packet, PacketId, PacketType, Publish, PublishQoS, PublishResponse, QoS, ReasonCode,
    StreamError, SubAck, UnsubAck,
};

use super::outbound::Stage;
use super::{Core, Event, RequestKind, ServerLimits, State, wire};
use crate::error::PublishError;
use crate::message::{Connected, LostReason, Message, Topic};

/// A protocol violation by the server: what was wrong and the reason code to send.
struct Violation {
    error: String,
    code: ReasonCode,
}

fn violation(error: impl Into<String>) -> Violation {
    Violation { error: error.into(), code: ReasonCode::PROTOCOL_ERROR }
}

/// `part` (a slice of `frame` handed out by the decoder) as a shared slice of the frame,
/// without copying; copied should it ever lie outside the frame.
fn sub_bytes(frame: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if !part.is_empty() && end <= frame.len() => frame.slice(start..end),
        _ => Bytes::copy_from_slice(part),
    }
}

fn publish_result(code: ReasonCode) -> Result<ReasonCode, PublishError> {
    if code.is_error() { Err(PublishError::Rejected(code)) } else { Ok(code) }
}

impl Core {
    /// Decode and handle every complete packet received so far.
    pub(super) fn process_rx(&mut self, now: Instant) {
        while matches!(self.state, State::AwaitConnAck { .. } | State::Connected) {
            let (frame, header_len) = match wire::next_frame(&mut self.rx, self.version, self.rx_limit) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    // A bad fixed header or a packet above our Maximum Packet Size (0x95).
                    // "If invalid flags are received, the receiver MUST close the Network
                    // Connection" [MQTT-3.1.1: 2.2.2-2]; likewise U+0000 in a string
                    // [MQTT-3.1.1: 1.5.3-2] and QoS 3 [MQTT-3.1.1: 3.3.1-4]; 5.0 §4.13.1.
                    let error = match e {
                        StreamError::Packet(e) => e.in_version(self.version).to_string(),
                        other => other.to_string(),
                    };
                    self.protocol_error(now, error, e.reason_code());
                    return;
                }
            };
            let handled = match wire::decode(&frame, header_len, self.version) {
                Ok(packet) => self.handle_packet(packet, &frame, now),
                Err(e) => Err(Violation { error: e.in_version(self.version).to_string(), code: e.reason_code() }),
            };
            if let Err(v) = handled {
                self.protocol_error(now, v.error, v.code);
                return;
            }
        }
    }

    fn handle_packet(&mut self, packet: Packet<'_>, frame: &Bytes, now: Instant) -> Result<(), Violation> {
        if let State::AwaitConnAck { .. } = self.state {
            return match packet {
                Packet::ConnAck(ack) => self.handle_connack(ack, now),
                // "The first packet sent from the Server to the Client MUST be a CONNACK
                // Packet" [MQTT-3.1.1: 3.2.0-1] [MQTT-5.0: 3.2.0-1].
                other => Err(violation(format!(
                    "{} before CONNACK [MQTT-3.1.1: 3.2.0-1] [MQTT-5.0: 3.2.0-1]",
                    other.packet_type()
                ))),
            };
        }
        match packet {
            Packet::Publish(p) => self.handle_publish(p, frame, now),
            Packet::PubAck(r) => self.handle_puback(r, now),
            Packet::PubRec(r) => self.handle_pubrec(r, now),
            Packet::PubRel(r) => {
                self.handle_pubrel(r, now);
                Ok(())
            }
            Packet::PubComp(r) => self.handle_pubcomp(r, now),
            Packet::SubAck(s) => self.handle_suback(s, now),
            Packet::UnsubAck(u) => self.handle_unsuback(u, now),
            Packet::PingResp => {
                self.ping_deadline = None;
                Ok(())
            }
            Packet::Disconnect(d) => {
                self.handle_disconnect(d, now);
                Ok(())
            }
            // "The Server MUST NOT send more than one CONNACK in a Network Connection"
            // [MQTT-5.0: 3.2.0-2].
            Packet::ConnAck(_) => Err(violation("a second CONNACK [MQTT-5.0: 3.2.0-2]")),
            // "If the Client does not include an Authentication Method in the CONNECT,
            // the Server MUST NOT send an AUTH packet" [MQTT-5.0: 4.12.0-6].
            Packet::Auth(_) => Err(violation("AUTH without an Authentication Method [MQTT-5.0: 4.12.0-6]")),
            other @ (Packet::Connect(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) | Packet::PingReq) => {
                Err(violation(format!("{} sent by a server", other.packet_type())))
            }
        }
    }

    fn handle_connack(&mut self, ack: ConnAck<'_>, now: Instant) -> Result<(), Violation> {
        let props = ack.properties;
        if ack.code != ReasonCode::SUCCESS {
            let reason_string = props.reason_string().map(str::to_owned);
            self.connection_ended(now, LostReason::Refused { code: ack.code, reason_string });
            return Ok(());
        }
        // "If the Client does not have Session State and receives Session Present set to
        // 1 it MUST close the Network Connection" [MQTT-5.0: 3.2.2-4] (3.1.1 §3.2.2.2 says
        // the same without a statement number). A clean start leaves no session state.
        if ack.session_present && self.options.clean_start {
            return Err(violation("Session Present after a clean start [MQTT-5.0: 3.2.2-4]"));
        }
        self.limits = ServerLimits {
            receive_maximum: props.receive_maximum().unwrap_or(u16::MAX),
            maximum_packet_size: props.maximum_packet_size().and_then(|m| usize::try_from(m).ok()),
            topic_alias_maximum: props.topic_alias_maximum().unwrap_or(0),
            maximum_qos: props.maximum_qos().and_then(QoS::from_u8).unwrap_or(QoS::ExactlyOnce),
            retain_available: props.retain_available() != Some(0),
        };
        // "If the Server sends a Server Keep Alive on the CONNACK packet, the Client MUST
        // use this value instead of the Keep Alive value the Client sent on CONNECT"
        // [MQTT-5.0: 3.2.2-21] [MQTT-5.0: 3.1.2-21].
        if let Some(keep_alive) = props.server_keep_alive() {
            self.keep_alive = Duration::from_secs(u64::from(keep_alive));
        }
        let assigned_client_id = props.assigned_client_identifier().map(str::to_owned);
        if let Some(id) = &assigned_client_id {
            // Reconnections resume the session under the identifier the server chose.
            self.client_id.clone_from(id);
        }
        let info = Connected {
            session_present: ack.session_present,
            assigned_client_id,
            keep_alive: self.keep_alive,
            receive_maximum: self.limits.receive_maximum,
            maximum_packet_size: props.maximum_packet_size(),
            topic_alias_maximum: self.limits.topic_alias_maximum,
            maximum_qos: self.limits.maximum_qos,
            retain_available: self.limits.retain_available,
            response_information: props.response_information().map(str::to_owned),
            reason_string: props.reason_string().map(str::to_owned),
            server: self.server,
        };
        self.connected(info, ack.session_present, now);
        Ok(())
    }

    fn handle_publish(&mut self, p: Publish<'_>, frame: &Bytes, now: Instant) -> Result<(), Violation> {
        let topic = self.resolve_topic(&p, frame)?;
        let id = p.qos.packet_id();
        let message = Message {
            topic,
            payload: sub_bytes(frame, p.payload),
            qos: p.qos.qos(),
            retain: p.retain,
            dup: p.dup,
            packet_id: id.map(PacketId::get),
            properties: sub_bytes(frame, p.properties.as_bytes()),
        };
        match p.qos {
            PublishQoS::AtMostOnce => self.emit(Event::Message(message)),
            PublishQoS::AtLeastOnce(id) => {
                // "the Receiver MUST respond with a PUBACK Packet containing the Packet
                // Identifier from the incoming PUBLISH Packet" [MQTT-3.1.1: 4.3.2-2]
                // [MQTT-5.0: 4.3.2-4], in the order received [MQTT-3.1.1: 4.6.0-2]
                // [MQTT-5.0: 4.6.0-2], whatever the application does with it
                // [MQTT-3.1.1: 4.5.0-2] [MQTT-5.0: 4.5.0-2].
                self.emit(Event::Message(message));
                wire::encode_response(PacketType::PubAck, id, ReasonCode::SUCCESS, self.version, &mut self.tx);
                self.last_tx = now;
            }
            PublishQoS::ExactlyOnce(id) => {
                // Until PUBREL, a PUBLISH with the same identifier is acknowledged again
                // but "MUST NOT cause duplicate messages to be delivered to any onward
                // recipients" [MQTT-3.1.1: 4.3.3-2] [MQTT-5.0: 4.3.3-10].
                if !self.incoming_qos2.contains(&id.get()) {
                    let receive_maximum = self.options.properties.receive_maximum.unwrap_or(u16::MAX);
                    if self.version.is_v5() && self.incoming_qos2.len() >= usize::from(receive_maximum) {
                        return Err(Violation {
                            error: format!(
                                "more than our Receive Maximum ({receive_maximum}) QoS 2 publications unreleased (5.0 §3.3.4)"
                            ),
                            code: ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                        });
                    }
                    self.incoming_qos2.insert(id.get());
                    self.emit(Event::Message(message));
                }
                // "the Receiver MUST respond with a PUBREC containing the Packet
                // Identifier from the incoming PUBLISH Packet" [MQTT-3.1.1: 4.3.3-2]
                // [MQTT-5.0: 4.3.3-8], in order [MQTT-3.1.1: 4.6.0-3] [MQTT-5.0: 4.6.0-3].
                wire::encode_response(PacketType::PubRec, id, ReasonCode::SUCCESS, self.version, &mut self.tx);
                self.last_tx = now;
            }
        }
        Ok(())
    }

    /// The topic of a received PUBLISH, through its Topic Alias if it has one.
    fn resolve_topic(&mut self, p: &Publish<'_>, frame: &Bytes) -> Result<Topic, Violation> {
        let named = || Topic::from_checked(sub_bytes(frame, p.topic.as_bytes()));
        let Some(alias) = p.properties.topic_alias().filter(|_| self.version.is_v5()) else {
            return Ok(named());
        };
        // "A Client MUST accept all Topic Alias values greater than 0 and less than or
        // equal to the Topic Alias Maximum value that it sent" [MQTT-5.0: 3.3.2-10]; the
        // server "MUST NOT send a Topic Alias ... greater than Topic Alias Maximum", none at
        // all when it is absent [MQTT-5.0: 3.1.2-26] [MQTT-5.0: 3.1.2-27].
        let maximum = self.options.properties.topic_alias_maximum.unwrap_or(0);
        if alias > maximum {
            return Err(Violation {
                error: format!("Topic Alias {alias} above our Topic Alias Maximum {maximum} [MQTT-5.0: 3.1.2-26]"),
                code: ReasonCode::TOPIC_ALIAS_INVALID,
            });
        }
        if p.topic.is_empty() {
            return self
                .aliases_in
                .get(&alias)
                .cloned()
                .ok_or_else(|| violation(format!("Topic Alias {alias} used before it was set (5.0 §3.3.2.3.4)")));
        }
        let topic = named();
        self.aliases_in.insert(alias, topic.clone());
        Ok(topic)
    }

    fn complete(&mut self, tag: Option<u64>, result: Result<ReasonCode, PublishError>, now: Instant) {
        if let Some(tag) = tag {
            self.emit(Event::Published { tag, result });
        }
        self.drain_queue(now);
        self.maybe_finish_disconnect(now);
    }

    fn handle_puback(&mut self, r: PublishResponse<'_>, now: Instant) -> Result<(), Violation> {
        let id = r.packet_id.get();
        match self.outbound.inflight.get(&id) {
            Some(entry) if entry.publication.qos == QoS::AtLeastOnce => {
                if let Some(entry) = self.outbound.inflight.remove(&id) {
                    self.complete(entry.tag, publish_result(r.reason_code), now);
                }
                Ok(())
            }
            Some(_) => Err(violation(format!("PUBACK for the QoS 2 publication {id} [MQTT-5.0: 2.2.1-5]"))),
            // An acknowledgement of something already acknowledged: nothing to do.
            None => Ok(()),
        }
    }

    fn handle_pubrec(&mut self, r: PublishResponse<'_>, now: Instant) -> Result<(), Violation> {
        let id = r.packet_id;
        match self.outbound.inflight.get_mut(&id.get()) {
            Some(entry) if entry.publication.qos == QoS::ExactlyOnce => {
                if r.reason_code.is_error() {
                    // No PUBREL after a failed PUBREC; the identifier is free again.
                    if let Some(entry) = self.outbound.inflight.remove(&id.get()) {
                        self.complete(entry.tag, Err(PublishError::Rejected(r.reason_code)), now);
                    }
                    return Ok(());
                }
                entry.stage = Stage::AwaitComp;
                entry.rec_code = r.reason_code;
                // "MUST send a PUBREL packet when it receives a PUBREC packet ... with a
                // Reason Code value less than 0x80" with the same identifier
                // [MQTT-5.0: 4.3.3-4] [MQTT-3.1.1: 4.3.3-1], in the order of the PUBRECs
                // [MQTT-3.1.1: 4.6.0-4] [MQTT-5.0: 4.6.0-4].
                wire::encode_response(PacketType::PubRel, id, ReasonCode::SUCCESS, self.version, &mut self.tx);
                self.last_tx = now;
                Ok(())
            }
            Some(_) => Err(violation(format!("PUBREC for the QoS 1 publication {id} [MQTT-5.0: 2.2.1-5]"))),
            None => {
                if self.version.is_v5() {
                    wire::encode_response(
                        PacketType::PubRel,
                        id,
                        ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                        self.version,
                        &mut self.tx,
                    );
                    self.last_tx = now;
                }
                Ok(())
            }
        }
    }

    fn handle_pubcomp(&mut self, r: PublishResponse<'_>, now: Instant) -> Result<(), Violation> {
        let id = r.packet_id.get();
        match self.outbound.inflight.get(&id) {
            Some(entry) if entry.stage == Stage::AwaitComp => {
                if let Some(entry) = self.outbound.inflight.remove(&id) {
                    // PUBREC already accepted the message: report its code.
                    self.complete(entry.tag, publish_result(entry.rec_code), now);
                }
                Ok(())
            }
            Some(_) => Err(violation(format!("PUBCOMP before PUBREC for publication {id} [MQTT-5.0: 2.2.1-5]"))),
            None => Ok(()),
        }
    }

    fn handle_pubrel(&mut self, r: PublishResponse<'_>, now: Instant) {
        // "the receiver MUST respond to a PUBREL packet by sending a PUBCOMP packet
        // containing the same Packet Identifier as the PUBREL" [MQTT-5.0: 4.3.3-11]
        // [MQTT-3.1.1: 4.3.3-2]; after it, that identifier is a new message again
        // [MQTT-5.0: 4.3.3-12].
        let known = self.incoming_qos2.remove(&r.packet_id.get());
        let code = if known { ReasonCode::SUCCESS } else { ReasonCode::PACKET_IDENTIFIER_NOT_FOUND };
        wire::encode_response(PacketType::PubComp, r.packet_id, code, self.version, &mut self.tx);
        self.last_tx = now;
    }

    fn handle_suback(&mut self, s: SubAck<'_>, now: Instant) -> Result<(), Violation> {
        let Some(request) = self.pending.remove(&s.packet_id.get()) else { return Ok(()) };
        let RequestKind::Subscribe(subs) = &request.kind else {
            return Err(violation("SUBACK answering an UNSUBSCRIBE [MQTT-5.0: 2.2.1-6]"));
        };
        let codes: Vec<ReasonCode> = s.reason_codes.iter().collect();
        // "The SUBACK Packet ... MUST contain a return code for each Topic Filter/QoS pair"
        // [MQTT-3.1.1: 3.8.4-5] [MQTT-5.0: 3.9.3-2], in order [MQTT-5.0: 3.9.3-1].
        if codes.len() != subs.len() {
            return Err(violation(format!(
                "SUBACK with {} codes for {} filters [MQTT-3.1.1: 3.8.4-5] [MQTT-5.0: 3.9.3-2]",
                codes.len(),
                subs.len()
            )));
        }
        for (sub, code) in subs.iter().zip(&codes) {
            if !code.is_error() {
                let id = request.properties.subscription_identifier;
                self.subscriptions.insert(sub.filter.clone(), (sub.clone(), id));
            }
        }
        if let Some(tag) = request.tag {
            self.emit(Event::Subscribed { tag, result: Ok(codes) });
        }
        self.maybe_finish_disconnect(now);
        Ok(())
    }

    fn handle_unsuback(&mut self, u: UnsubAck<'_>, now: Instant) -> Result<(), Violation> {
        let Some(request) = self.pending.remove(&u.packet_id.get()) else { return Ok(()) };
        let RequestKind::Unsubscribe(filters) = &request.kind else {
            return Err(violation("UNSUBACK answering a SUBSCRIBE [MQTT-5.0: 2.2.1-6]"));
        };
        let codes: Vec<ReasonCode> = if self.version.is_v5() {
            u.reason_codes.iter().collect()
        } else {
            vec![ReasonCode::SUCCESS; filters.len()]
        };
        // One reason code per filter [MQTT-5.0: 3.11.3-2], in order [MQTT-5.0: 3.11.3-1].
        if codes.len() != filters.len() {
            return Err(violation(format!(
                "UNSUBACK with {} codes for {} filters [MQTT-5.0: 3.11.3-2]",
                codes.len(),
                filters.len()
            )));
        }
        for (filter, code) in filters.iter().zip(&codes) {
            if !code.is_error() {
                self.subscriptions.remove(filter);
            }
        }
        if let Some(tag) = request.tag {
            self.emit(Event::Unsubscribed { tag, result: Ok(codes) });
        }
        self.maybe_finish_disconnect(now);
        Ok(())
    }

    fn handle_disconnect(&mut self, d: Disconnect<'_>, now: Instant) {
        let reason = LostReason::ServerDisconnect {
            code: d.reason_code,
            reason_string: d.properties.reason_string().map(str::to_owned),
            server_reference: d.properties.server_reference().map(str::to_owned),
        };
        self.connection_ended(now, reason);
    }
}

//! Incoming PUBLISH (§3.3): topic aliases, limits, authorization, taking ownership of the
//! message, and the acknowledgements the server sends for it (PUBACK, PUBREC, PUBCOMP).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mqttkit_codec::{Packet, PacketId, PacketType, Publish, PublishResponse, QoS, ReasonCode, filter_matches};

use super::message::Message;
use super::{ConnId, Core, add, secs};
use crate::auth::Access;

impl Core {
    pub(super) fn topic_within_limits(&self, topic: &str) -> bool {
        topic.len() <= self.config.max_topic_length && topic.split('/').count() <= self.config.max_topic_levels
    }

    /// Whether `client` (with `user`) may not publish to `topic`: `$SYS`, the global deny
    /// list, and the ACL file if there is one.
    pub(super) fn publish_denied(&self, user: Option<&str>, client: &str, topic: &str) -> bool {
        topic.starts_with("$SYS")
            || self.config.acl.deny_publish.iter().any(|f| filter_matches(f, topic))
            || self.config.acl_rules.as_ref().is_some_and(|acl| !acl.allows(user, client, topic, Access::Write))
    }

    pub(super) fn handle_publish(&mut self, id: ConnId, publish: &Publish<'_>, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        conn.traffic.messages_in = conn.traffic.messages_in.saturating_add(1);
        let version = conn.version;
        let user = conn.user.clone();
        let Some(client) = conn.client_id.clone() else { return };
        let qos = publish.qos.qos();
        self.stats.messages_received = self.stats.messages_received.saturating_add(1);
        let topic = match self.resolve_topic(id, publish).and_then(|topic| self.check_publish(publish).map(|()| topic))
        {
            Ok(topic) => topic,
            Err(code) => {
                self.protocol_error(id, code, now);
                return;
            }
        };
        let packet_id = publish.qos.packet_id();
        if let (QoS::ExactlyOnce, Some(pid)) = (qos, packet_id) {
            let Some(session) = self.sessions.get(&client) else { return };
            let pending = session.flow().map_or(0, |f| f.incoming_qos2.len());
            if session.flow().is_some_and(|f| f.incoming_qos2.contains(&pid.get())) {
                // "until it has received the corresponding PUBREL packet, the receiver MUST
                // acknowledge any subsequent PUBLISH packet with the same Packet Identifier
                // by sending a PUBREC" without delivering it again [MQTT-4.3.3-10].
                self.send_ack(id, PacketType::PubRec, pid, ReasonCode::SUCCESS);
                return;
            }
            // Our Receive Maximum: the client "MUST NOT send more than Receive Maximum QoS 1
            // and QoS 2 PUBLISH packets for which it has not received PUBACK, PUBCOMP, or
            // PUBREC with a Reason Code of 128 or greater" [MQTT-3.3.4-7]; DISCONNECT 0x93.
            if pending >= usize::from(self.config.receive_maximum.max(1)) {
                self.protocol_error(id, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED, now);
                return;
            }
        }

        let code = if !self.topic_within_limits(&topic) {
            ReasonCode::TOPIC_NAME_INVALID
        } else if self.publish_denied(user.as_deref(), &client, &topic) {
            ReasonCode::NOT_AUTHORIZED
        } else {
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
                props: if version.is_v5() { Message::forwarded_properties(&publish.properties) } else { Bytes::new() },
                expires_at,
                publisher: Some(client.clone()),
            });
            let matched = self.route(msg, now);
            if matched == 0 && version.is_v5() { ReasonCode::NO_MATCHING_SUBSCRIBERS } else { ReasonCode::SUCCESS }
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
                    session.flow_mut().incoming_qos2.insert(pid.get());
                }
                self.send_ack(id, PacketType::PubRec, pid, code);
            }
            _ => {}
        }
    }

    /// The topic name of a PUBLISH, through the connection's topic aliases (5.0
    /// §3.3.2.3.4); the DISCONNECT reason code if the alias is unusable.
    fn resolve_topic(&mut self, id: ConnId, publish: &Publish<'_>) -> Result<Arc<str>, ReasonCode> {
        let alias_maximum = self.config.topic_alias_maximum;
        let Some(conn) = self.conns.get_mut(&id) else { return Err(ReasonCode::PROTOCOL_ERROR) };
        let Some(alias) = publish.properties.topic_alias().filter(|_| conn.version.is_v5()) else {
            return Ok(Arc::from(publish.topic.as_str()));
        };
        // "A Client MUST NOT send a PUBLISH packet with a Topic Alias greater than the
        // Topic Alias Maximum value returned by the Server" [MQTT-3.3.2-9]; the value 0 is
        // not allowed [MQTT-3.3.2-8].
        if alias == 0 || alias > alias_maximum {
            return Err(ReasonCode::TOPIC_ALIAS_INVALID);
        }
        if publish.topic.is_empty() {
            // An unknown alias with an empty topic is a Protocol Error.
            return conn.aliases.get(&alias).cloned().ok_or(ReasonCode::PROTOCOL_ERROR);
        }
        let topic: Arc<str> = Arc::from(publish.topic.as_str());
        conn.aliases.insert(alias, topic.clone());
        Ok(topic)
    }

    /// What the server announced in CONNACK and the client must respect: the DISCONNECT
    /// reason code if it did not.
    fn check_publish(&self, publish: &Publish<'_>) -> Result<(), ReasonCode> {
        // "If a Client receives a Maximum QoS from a Server, it MUST NOT send PUBLISH
        // packets at a QoS level exceeding the Maximum QoS level specified"
        // [MQTT-3.2.2-11]: the server disconnects with 0x9B.
        if publish.qos.qos().as_u8() > self.config.maximum_qos {
            return Err(ReasonCode::QOS_NOT_SUPPORTED);
        }
        // "A Client receiving Retain Available set to 0 from the Server MUST NOT send a
        // PUBLISH packet with the RETAIN flag set to 1" [MQTT-3.2.2-14]: 0x9A.
        if publish.retain && !self.config.retain_available {
            return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
        }
        // "A PUBLISH packet sent from a Client to a Server MUST NOT contain a Subscription
        // Identifier" [MQTT-3.3.4-6].
        if publish.properties.subscription_identifiers().next().is_some() {
            return Err(ReasonCode::PROTOCOL_ERROR);
        }
        Ok(())
    }

    pub(super) fn handle_pubrel(&mut self, id: ConnId, rel: &PublishResponse<'_>) {
        let Some(client) = self.client_of(id) else { return };
        let found = self.sessions.get_mut(&client).is_some_and(|s| {
            let found = s.flow_mut().incoming_qos2.remove(&rel.packet_id.get());
            s.release_idle_flow();
            found
        });
        // "MUST respond to a PUBREL packet by sending a PUBCOMP packet containing the same
        // Packet Identifier as the PUBREL" [MQTT-4.3.3-11].
        let code = if found { ReasonCode::SUCCESS } else { ReasonCode::PACKET_IDENTIFIER_NOT_FOUND };
        let code = if self.conns.get(&id).is_some_and(|c| c.version.is_v5()) { code } else { ReasonCode::SUCCESS };
        self.send_ack(id, PacketType::PubComp, rel.packet_id, code);
    }

    /// Send PUBACK, PUBREC, PUBREL or PUBCOMP.
    pub(super) fn send_ack(&mut self, id: ConnId, packet_type: PacketType, pid: PacketId, code: ReasonCode) {
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
}

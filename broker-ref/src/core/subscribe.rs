//! SUBSCRIBE (§3.8) and UNSUBSCRIBE (§3.10).

use std::time::Instant;

use mqttkit_codec::{
    Packet, PacketType, Properties, QoS, ReasonCode, ReasonCodes, RetainHandling, SubAck, Subscribe,
    SubscriptionOptions, UnsubAck, Unsubscribe, filter_matches,
};

use super::delivery::Reason;
use super::message::{Delivery, SharedEncodings};
use super::subscriptions::{SubOptions, SubscriptionFilter};
use super::{ConnId, Core};
use crate::auth::Access;

impl Core {
    /// Whether the global deny list refuses subscriptions to this filter (or deliveries on
    /// this topic).
    pub(super) fn subscribe_denied(&self, topic_or_filter: &str) -> bool {
        self.config.acl.deny_subscribe.iter().any(|f| filter_matches(f, topic_or_filter))
    }

    /// Whether the ACL file (if any) refuses `client` reading `topic_or_filter`.
    pub(super) fn read_denied(&self, user: Option<&str>, client: &str, topic_or_filter: &str) -> bool {
        self.config.acl_rules.as_ref().is_some_and(|acl| !acl.allows(user, client, topic_or_filter, Access::Read))
    }

    pub(super) fn handle_subscribe(&mut self, id: ConnId, sub: &Subscribe<'_>, now: Instant) {
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
            let filter = SubscriptionFilter::new(filter, version);
            match self.subscribe_one(&client, filter, options, sub_id, now, &mut retained_to_send) {
                Ok(granted) => codes.push(granted.as_u8()),
                Err(_) if !version.is_v5() => codes.push(ReasonCode::V3_SUBSCRIBE_FAILURE.0),
                Err(code) => codes.push(code.0),
            }
        }
        let Ok(reason_codes) = ReasonCodes::parse(&codes, PacketType::SubAck, version) else { return };
        // "The SUBACK packet MUST have the same Packet Identifier as the SUBSCRIBE packet"
        // [MQTT-3.8.4-2], one Reason Code per filter in order [MQTT-3.9.3-1].
        let suback = SubAck { packet_id: sub.packet_id, properties: Properties::EMPTY, reason_codes };
        self.send_packet(id, &Packet::SubAck(suback));
        let mut encodings = SharedEncodings::default();
        for delivery in retained_to_send {
            self.deliver(&client, delivery, Reason::Retained, &mut encodings, now);
        }
    }

    /// One filter of a SUBSCRIBE: the QoS granted, or the (5.0) reason code of the
    /// failure. Retained messages to send are added to `retained`.
    fn subscribe_one(
        &mut self,
        client: &std::sync::Arc<str>,
        filter: SubscriptionFilter,
        options: SubscriptionOptions,
        sub_id: Option<u32>,
        now: Instant,
        retained: &mut Vec<Delivery>,
    ) -> Result<QoS, ReasonCode> {
        let inner = filter.topic_filter();
        if !self.topic_within_limits(inner) {
            return Err(ReasonCode::TOPIC_FILTER_INVALID);
        }
        let user = self.sessions.get(client).and_then(|s| s.user.clone());
        if self.subscribe_denied(inner) || self.read_denied(user.as_deref(), client, inner) {
            return Err(ReasonCode::NOT_AUTHORIZED);
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
        // identical to a Non-shared Subscription's Topic Filter for the current Session
        // then it MUST replace that existing Subscription" [MQTT-3.8.4-3]. The same filter
        // text subscribed earlier under another protocol version (`$share/...` is shared
        // only in 5.0): the old subscription goes.
        let Some(session) = self.sessions.get_mut(client) else { return Err(ReasonCode::UNSPECIFIED_ERROR) };
        if let Some((old, _)) = session.subscriptions.remove_entry(filter.as_str())
            && old.is_shared() != filter.is_shared()
        {
            self.subs.remove(&old, client);
        }
        session.subscriptions.insert(filter.clone(), opts);
        let existed = self.subs.insert(&filter, client, opts);
        // "This Reason Code MUST either show the maximum QoS that was granted for that
        // Subscription or indicate that the subscription failed" [MQTT-3.8.4-7].
        // Retained messages are not sent for shared subscriptions (§4.8.2).
        let send_retained = !filter.is_shared()
            && match opts.retain_handling {
                // [MQTT-3.3.1-9]: Retain Handling 0 sends them; [MQTT-3.3.1-10]: 1 only for
                // a new subscription; [MQTT-3.3.1-11]: 2 never.
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
        if send_retained {
            for msg in self.retained.matching(filter.topic_filter(), now) {
                if opts.no_local && msg.publisher.as_deref() == Some(&**client) {
                    continue;
                }
                // 3.1.1: "the Server MUST set the RETAIN flag to 1 if a message is sent as a
                // result of a new subscription being made by a Client" [MQTT-3.3.1-8].
                retained.push(Delivery {
                    qos: granted.min(msg.qos),
                    msg,
                    retain: true,
                    sub_ids: sub_id.into_iter().collect(),
                    seq: 0,
                });
            }
        }
        Ok(granted)
    }

    pub(super) fn handle_unsubscribe(&mut self, id: ConnId, unsub: &Unsubscribe<'_>) {
        let Some(conn) = self.conns.get(&id) else { return };
        let version = conn.version;
        let Some(client) = conn.client_id.clone() else { return };
        let mut codes = Vec::new();
        // [MQTT-3.10.4-6]: each filter as if in its own UNSUBSCRIBE; filters are compared
        // character by character [MQTT-3.10.4-1].
        for filter in unsub.filters.iter() {
            // A subscription is removed the way it was made, even if the session has
            // since been resumed with another protocol version.
            let recorded = self.sessions.get_mut(&client).and_then(|s| s.subscriptions.remove_entry(filter.as_str()));
            let filter = recorded.map_or_else(|| SubscriptionFilter::new(filter, version), |(recorded, _)| recorded);
            let removed = self.subs.remove(&filter, &client);
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
}

//! Application messages as stored by the broker, and their encoding per subscriber.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mqttkit_codec::{
    PacketId, Properties, Property, PropertyContext, ProtocolVersion, Publish, PublishQoS, QoS, TopicName,
};

/// An application message, shared by every session it is delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name (aliases already resolved).
    pub topic: Arc<str>,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// RETAIN flag it was published with.
    pub retain: bool,
    /// 5.0 properties forwarded unchanged (Payload Format Indicator, Content Type,
    /// Response Topic, Correlation Data, User Properties), encoded in their original order
    /// (\[MQTT-3.3.2-4\], \[MQTT-3.3.2-15\]..\[MQTT-3.3.2-20\]). Topic Alias, Message Expiry
    /// and Subscription Identifiers are rebuilt per delivery.
    pub props: Bytes,
    /// When the message expires (5.0 Message Expiry Interval).
    pub expires_at: Option<Instant>,
    /// Client id of the publisher (for No Local); `None` for broker-originated messages.
    pub publisher: Option<Arc<str>>,
}

impl Message {
    /// A message without properties.
    pub fn new(topic: &str, payload: Bytes, qos: QoS, retain: bool) -> Self {
        Self { topic: topic.into(), payload, qos, retain, props: Bytes::new(), expires_at: None, publisher: None }
    }

    /// Keep the properties that are forwarded unchanged from an incoming PUBLISH.
    pub fn forwarded_properties(props: &Properties<'_>) -> Bytes {
        let mut out = Vec::new();
        for prop in props.iter() {
            match prop {
                Property::PayloadFormatIndicator(_)
                | Property::ContentType(_)
                | Property::ResponseTopic(_)
                | Property::CorrelationData(_)
                | Property::UserProperty(..) => prop.encode(&mut out),
                _ => {}
            }
        }
        Bytes::from(out)
    }

    /// Whether the message has expired at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// One message on its way to one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message.
    pub msg: Arc<Message>,
    /// QoS of this delivery: min(published, granted) \[MQTT-3.8.4-8\].
    pub qos: QoS,
    /// RETAIN flag of this delivery.
    pub retain: bool,
    /// Subscription identifiers of every matching subscription \[MQTT-3.3.4-3\].
    pub sub_ids: Vec<u32>,
    /// Its number in the session it was queued in (0 until then): the key of its record
    /// in the persistent store.
    pub seq: u64,
}

/// The PUBLISH of `delivery` for `version`, with the remaining expiry time and the
/// subscription identifiers; its properties are written to `props` (empty — and not
/// allocated — when there are none). `None` if the topic or properties are unusable
/// (never expected).
pub fn publish_packet<'a>(
    version: ProtocolVersion,
    delivery: &'a Delivery,
    packet_id: Option<PacketId>,
    dup: bool,
    now: Instant,
    props: &'a mut Vec<u8>,
) -> Option<Publish<'a>> {
    let msg = &delivery.msg;
    let qos = match (delivery.qos, packet_id) {
        (QoS::AtMostOnce, _) | (_, None) => PublishQoS::AtMostOnce,
        (qos, Some(id)) => PublishQoS::new(qos, id),
    };
    if version.is_v5() {
        props.extend_from_slice(&msg.props);
        if let Some(at) = msg.expires_at {
            // "The PUBLISH packet sent to a Client by the Server MUST contain a Message
            // Expiry Interval set to the received value minus the time that the message
            // has been waiting in the Server" [MQTT-3.3.2-6].
            let remaining = at.saturating_duration_since(now).as_secs_f64().ceil();
            let secs = if remaining >= f64::from(u32::MAX) { u32::MAX } else { remaining as u32 };
            Property::MessageExpiryInterval(secs.max(1)).encode(props);
        }
        for id in &delivery.sub_ids {
            Property::SubscriptionIdentifier(*id).encode(props);
        }
    }
    let properties = Properties::parse(props, PropertyContext::Publish).ok()?;
    let topic = TopicName::new(&msg.topic).ok()?;
    let mut publish = Publish::new(topic, qos, &msg.payload);
    // "The DUP flag MUST be set to 0 for all QoS 0 messages" [MQTT-3.3.1-2].
    publish.dup = dup && qos != PublishQoS::AtMostOnce;
    publish.retain = delivery.retain;
    publish.properties = properties;
    Some(publish)
}

/// Whether the PUBLISH of `delivery` is the same bytes for every QoS 0 subscriber of a
/// version (no subscription identifiers, no expiry to count down), so it can be encoded
/// once and shared.
pub fn shareable(delivery: &Delivery) -> bool {
    delivery.qos == QoS::AtMostOnce && delivery.sub_ids.is_empty() && delivery.msg.expires_at.is_none()
}

/// QoS 0 PUBLISH packets of one message encoded once for all its subscribers, by (5.0,
/// RETAIN).
#[derive(Debug, Default)]
pub struct SharedEncodings {
    msg: Option<Arc<Message>>,
    packets: [Option<Bytes>; 4],
}

impl SharedEncodings {
    /// The encoding of `msg` for `version` and `retain`, made with `encode` the first time.
    pub fn get_or_encode(
        &mut self,
        msg: &Arc<Message>,
        version: ProtocolVersion,
        retain: bool,
        encode: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        if !self.msg.as_ref().is_some_and(|m| Arc::ptr_eq(m, msg)) {
            *self = Self { msg: Some(msg.clone()), packets: Default::default() };
        }
        let slot = self.packets.get_mut(usize::from(version.is_v5()) * 2 + usize::from(retain))?;
        if slot.is_none() {
            *slot = encode();
        }
        slot.clone()
    }
}

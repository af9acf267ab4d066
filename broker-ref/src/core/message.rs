//! Application messages as stored by the broker, and their encoding per subscriber.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
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
}

/// Encode a PUBLISH for `version`, with the remaining expiry time and the subscription
/// identifiers. `None` if the topic or properties cannot be encoded (never expected).
pub fn encode_publish(
    version: ProtocolVersion,
    delivery: &Delivery,
    packet_id: Option<PacketId>,
    dup: bool,
    now: Instant,
) -> Option<Bytes> {
    let msg = &delivery.msg;
    let qos = match (delivery.qos, packet_id) {
        (QoS::AtMostOnce, _) | (_, None) => PublishQoS::AtMostOnce,
        (qos, Some(id)) => PublishQoS::new(qos, id),
    };
    let mut raw = Vec::new();
    if version.is_v5() {
        raw.extend_from_slice(&msg.props);
        if let Some(at) = msg.expires_at {
            // "The PUBLISH packet sent to a Client by the Server MUST contain a Message
            // Expiry Interval set to the received value minus the time that the message
            // has been waiting in the Server" [MQTT-3.3.2-6].
            let remaining = at.saturating_duration_since(now).as_secs_f64().ceil();
            let secs = if remaining >= f64::from(u32::MAX) { u32::MAX } else { remaining as u32 };
            Property::MessageExpiryInterval(secs.max(1)).encode(&mut raw);
        }
        for id in &delivery.sub_ids {
            Property::SubscriptionIdentifier(*id).encode(&mut raw);
        }
    }
    let properties = Properties::parse(&raw, PropertyContext::Publish).ok()?;
    let topic = TopicName::new(&msg.topic).ok()?;
    let mut publish = Publish::new(topic, qos, &msg.payload);
    // "The DUP flag MUST be set to 0 for all QoS 0 messages" [MQTT-3.3.1-2].
    publish.dup = dup && qos != PublishQoS::AtMostOnce;
    publish.retain = delivery.retain;
    publish.properties = properties;
    let packet = mqttkit_codec::Packet::Publish(publish);
    let mut buf = BytesMut::with_capacity(packet.encoded_len(version));
    packet.encode(version, &mut buf).ok()?;
    Some(buf.freeze())
}

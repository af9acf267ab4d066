//! The mqttkit adapter's prepared packets (decoded from the samples) are the
//! same values a user builds from fields with the codec's builder API, and
//! the vectored encode of the large PUBLISH samples leaves the payload in
//! place.

use mqttkit_benches::peers::mqttkit as peer;
use mqttkit_benches::samples::{self, SUBSCRIBE_FILTERS};
use mqttkit_codec::{
    Connect, MqttStr, Packet, PacketId, Properties, PropertiesBuf, Property, PropertyContext, ProtocolVersion, Publish,
    PublishQoS, PublishResponse, QoS, RetainHandling, Subscribe, SubscribeFiltersBuf, SubscriptionOptions, TopicFilter,
    TopicName, Will,
};

const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn pkid(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

fn encode(p: &Packet<'_>, v: ProtocolVersion) -> Vec<u8> {
    let mut out = Vec::new();
    p.encode(v, &mut out).unwrap();
    assert_eq!(out.len(), p.encoded_len(v));
    out
}

#[test]
fn built_publish_equals_prepared() {
    let topic = TopicName::new(s(samples::TOPIC)).unwrap();
    let qos = PublishQoS::AtLeastOnce(pkid(samples::PKID));
    for (name, payload) in [
        ("publish_v4_31b", samples::SMALL_PAYLOAD.to_vec()),
        ("publish_v4_1k", samples::payload_pattern(1024)),
        ("publish_v4_64k", samples::payload_pattern(64 * 1024)),
    ] {
        let built = Packet::Publish(Publish::new(topic, qos, &payload));
        let sample = samples::by_name(name);
        assert_eq!(peer::prepare_publish_v4(sample.bytes).unwrap(), built, "{name}");
        assert_eq!(encode(&built, V4), sample.bytes, "{name}");
    }
    for (name, payload) in
        [("publish_v5_32b", samples::SMALL_PAYLOAD.to_vec()), ("publish_v5_1k", samples::payload_pattern(1024))]
    {
        let built = Packet::Publish(Publish::new(topic, qos, &payload));
        let sample = samples::by_name(name);
        assert_eq!(peer::prepare_publish_v5(sample.bytes).unwrap(), built, "{name}");
        assert_eq!(encode(&built, V5), sample.bytes, "{name}");
    }

    let mut props = PropertiesBuf::new();
    props.push(Property::MessageExpiryInterval(samples::MESSAGE_EXPIRY)).unwrap();
    props.push(Property::ContentType(s(samples::CONTENT_TYPE))).unwrap();
    for (k, v) in samples::USER_PROPERTIES {
        props.push(Property::UserProperty(k, v)).unwrap();
    }
    let mut publish = Publish::new(topic, qos, samples::PROPS_PAYLOAD);
    publish.properties = props.properties(PropertyContext::Publish).unwrap();
    let built = Packet::Publish(publish);
    assert_eq!(peer::prepare_publish_v5(&samples::PUBLISH_V5_PROPS).unwrap(), built);
    assert_eq!(encode(&built, V5), samples::PUBLISH_V5_PROPS);
}

#[test]
fn built_connect_equals_prepared() {
    let mut connect_props = PropertiesBuf::new();
    connect_props.push(Property::SessionExpiryInterval(samples::SESSION_EXPIRY)).unwrap();
    connect_props.push(Property::ReceiveMaximum(samples::RECEIVE_MAXIMUM)).unwrap();
    connect_props.push(Property::MaximumPacketSize(samples::MAXIMUM_PACKET_SIZE)).unwrap();
    let mut will_props = PropertiesBuf::new();
    will_props.push(Property::WillDelayInterval(samples::WILL_DELAY)).unwrap();

    for (version, sample) in [(V4, &samples::CONNECT_V4[..]), (V5, &samples::CONNECT_V5[..])] {
        let mut c = Connect::new(version, MqttStr::new(s(samples::CLIENT_ID)).unwrap(), true, samples::KEEP_ALIVE);
        let mut will = Will {
            qos: QoS::AtLeastOnce,
            retain: false,
            // Not `Default::default()`: the derived `Default` of `Properties` has
            // no allowed contexts, so it is `!= Properties::EMPTY` and `encode`
            // refuses it (`PropertiesForOtherPacket`) — reported to the codec.
            properties: Properties::EMPTY,
            topic: TopicName::new(s(samples::WILL_TOPIC)).unwrap(),
            payload: samples::WILL_PAYLOAD,
        };
        if version == V5 {
            c.properties = connect_props.properties(PropertyContext::Connect).unwrap();
            will.properties = will_props.properties(PropertyContext::Will).unwrap();
        }
        c.will = Some(will);
        c.username = Some(MqttStr::new(s(samples::USERNAME)).unwrap());
        c.password = Some(samples::PASSWORD);
        let built = Packet::Connect(c);
        let prepared = if version == V5 { peer::prepare_connect_v5(sample) } else { peer::prepare_connect_v4(sample) };
        assert_eq!(prepared.unwrap(), built, "{version}");
        assert_eq!(encode(&built, version), sample, "{version}");
    }
}

#[test]
fn built_subscribe_and_puback_equal_prepared() {
    for (version, sample) in [(V4, &samples::SUBSCRIBE_V4[..]), (V5, &samples::SUBSCRIBE_V5[..])] {
        let mut filters = SubscribeFiltersBuf::new();
        for (filter, qos, options) in SUBSCRIBE_FILTERS {
            let byte = if version == V5 { options } else { qos };
            let options = SubscriptionOptions {
                qos: QoS::from_u8(byte & 3).unwrap(),
                no_local: byte & 4 != 0,
                retain_as_published: byte & 8 != 0,
                retain_handling: RetainHandling::from_u8(byte >> 4).unwrap(),
            };
            filters.push(TopicFilter::new(filter).unwrap(), options);
        }
        let built = Packet::Subscribe(Subscribe {
            packet_id: pkid(samples::SUB_PKID),
            properties: Properties::EMPTY,
            filters: filters.filters(version).unwrap(),
        });
        let prepared =
            if version == V5 { peer::prepare_subscribe_v5(sample) } else { peer::prepare_subscribe_v4(sample) };
        assert_eq!(prepared.unwrap(), built, "{version}");
        assert_eq!(encode(&built, version), sample, "{version}");
    }
    let built = Packet::PubAck(PublishResponse::new(pkid(samples::PKID)));
    assert_eq!(peer::prepare_puback_v4(&samples::PUBACK_V4).unwrap(), built);
    assert_eq!(peer::prepare_puback_v5(&samples::PUBACK_V5).unwrap(), built);
    assert_eq!(encode(&built, V4), samples::PUBACK_V4);
    assert_eq!(encode(&built, V5), samples::PUBACK_V5);
}

#[test]
fn vectored_encode_borrows_the_payload() {
    for name in
        ["publish_v4_31b", "publish_v4_1k", "publish_v4_64k", "publish_v5_32b", "publish_v5_1k", "publish_v5_props"]
    {
        let sample = samples::by_name(name);
        let mut head = peer::output();
        let (n, payload) = if name.contains("_v5_") {
            let p = peer::prepare_publish_v5(sample.bytes).unwrap();
            peer::encode_vectored_publish_v5(&p, &mut head).unwrap()
        } else {
            let p = peer::prepare_publish_v4(sample.bytes).unwrap();
            peer::encode_vectored_publish_v4(&p, &mut head).unwrap()
        };
        assert_eq!(n, head.len());
        assert_eq!([&head[..], payload].concat(), sample.bytes, "{name}");
        // The payload is the sample's own bytes, not a copy.
        assert!(std::ptr::eq(payload.as_ptr_range().end, sample.bytes.as_ptr_range().end), "{name}");
    }
}

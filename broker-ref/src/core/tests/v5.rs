use super::*;

use std::time::Duration;

use mqttkit_codec::{
    Connect, MqttStr, Properties, Property, PropertyContext, Publish, PublishQoS, PublishResponse, TopicFilter,
    TopicName, Unsubscribe, UnsubscribeFiltersBuf,
};

use crate::config::Config;
use crate::core::ConnId;
use crate::testing::{Event, Harness, pid, props};

#[test]
fn topic_alias_from_client() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "s", true);
    h.subscribe(1, "long/topic", q(QoS::AtMostOnce));
    h.connect(2, V5, "p", true);
    let a = props(&[Property::TopicAlias(3)]);
    let mut p = Publish::new(TopicName::new("long/topic").unwrap(), PublishQoS::AtMostOnce, b"1");
    p.properties = a.properties(PropertyContext::Publish).unwrap();
    h.send(2, &Packet::Publish(p.clone()));
    p.topic = TopicName::new("").unwrap();
    p.payload = b"2";
    h.send(2, &Packet::Publish(p.clone()));
    let got = h.publishes(1);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].0, "long/topic");
    // Alias above the maximum.
    let bad = props(&[Property::TopicAlias(11)]);
    p.properties = bad.properties(PropertyContext::Publish).unwrap();
    p.topic = TopicName::new("x").unwrap();
    h.send(2, &Packet::Publish(p));
    assert_eq!(disconnect_code(&h.take(2)[0]), ReasonCode::TOPIC_ALIAS_INVALID);
}

#[test]
fn message_expiry_forwarded_and_dropped() {
    let mut h = Harness::quiet();
    let p = props(&[Property::SessionExpiryInterval(1000)]);
    let mut c = Connect::new(V5, MqttStr::new("s").unwrap(), true, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    h.connect_with(1, c.clone());
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.core.connection_closed(ConnId(1), h.now);
    h.connect(2, V5, "p", true);
    let e = props(&[
        Property::MessageExpiryInterval(10),
        Property::UserProperty("k", "v"),
        Property::ContentType("text/plain"),
    ]);
    let e2 = props(&[Property::MessageExpiryInterval(100)]);
    for (payload, e) in [(&b"short"[..], &e), (&b"long"[..], &e2)] {
        let mut m = Publish::new(TopicName::new("t").unwrap(), PublishQoS::AtLeastOnce(pid(1)), payload);
        m.properties = e.properties(PropertyContext::Publish).unwrap();
        h.send(2, &Packet::Publish(m));
    }
    h.advance(Duration::from_secs(30));
    c.clean_start = false;
    h.connect_with(3, c);
    let got = h.take(3);
    assert_eq!(got.len(), 1);
    let Packet::Publish(m) = got[0].packet() else { panic!() };
    assert_eq!(m.payload, b"long");
    assert_eq!(m.properties.message_expiry_interval(), Some(70));
    // Forwarded properties, and the user property order kept (only one here).
    let mut h2 = Harness::quiet();
    h2.connect(1, V5, "s", true);
    h2.subscribe(1, "t", q(QoS::AtMostOnce));
    h2.connect(2, V5, "p", true);
    let mut m = Publish::new(TopicName::new("t").unwrap(), PublishQoS::AtMostOnce, b"x");
    m.properties = e.properties(PropertyContext::Publish).unwrap();
    h2.send(2, &Packet::Publish(m));
    let got = h2.take(1);
    let Packet::Publish(m) = got[0].packet() else { panic!() };
    assert_eq!(m.properties.user_properties().collect::<Vec<_>>(), [("k", "v")]);
    assert_eq!(m.properties.content_type(), Some("text/plain"));
}

#[test]
fn client_maximum_packet_size_drops() {
    let mut h = Harness::quiet();
    let p = props(&[Property::MaximumPacketSize(20)]);
    let mut c = Connect::new(V5, MqttStr::new("small").unwrap(), true, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    h.connect_with(1, c);
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.connect(2, V5, "p", true);
    h.publish(2, "t", &[7u8; 50], QoS::AtLeastOnce, false);
    h.publish(2, "t", b"ok", QoS::AtLeastOnce, false);
    let got = h.publishes(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, b"ok");
}

#[test]
fn sys_client_list_only_when_configured() {
    // By default the list (client ids and peer addresses) is not published at all.
    let mut h = Harness::new(Config { sys_interval_secs: 5, ..Config::default() });
    h.advance(Duration::ZERO);
    h.connect(1, V5, "s", true);
    h.subscribe(1, "$SYS/#", q(QoS::AtMostOnce));
    h.advance(Duration::from_secs(5));
    let got = h.publishes(1);
    assert!(got.iter().any(|p| p.0 == "$SYS/broker/clients/connected"), "other $SYS topics still published");
    assert!(got.iter().all(|p| p.0 != "$SYS/broker/clients/list"), "{got:?}");
    assert!(got.iter().all(|p| !String::from_utf8_lossy(&p.1).contains("127.0.0.1")), "{got:?}");
}

#[test]
fn sys_topics_published() {
    let mut h = Harness::new(Config { sys_interval_secs: 5, sys_client_list: true, ..Config::default() });
    h.advance(Duration::ZERO);
    h.connect(1, V5, "s", true);
    h.subscribe(1, "$SYS/broker/clients/list", q(QoS::AtMostOnce));
    let got = h.publishes(1); // retained from the initial publication
    assert_eq!(got.len(), 1);
    h.advance(Duration::from_secs(5));
    let got = h.publishes(1);
    assert_eq!(got.len(), 1);
    let json = String::from_utf8(got[0].1.clone()).unwrap();
    assert!(json.contains("\"client_id\":\"s\""), "{json}");
}

#[test]
fn max_connections() {
    let mut h = Harness::new(Config { sys_interval_secs: 0, max_connections: 1, ..Config::default() });
    h.connect(1, V5, "a", true);
    let ack = h.connect(2, V5, "b", true);
    assert_eq!(connack_code(&ack).1, ReasonCode::QUOTA_EXCEEDED);
}

#[test]
fn v31_connect_accepted() {
    let mut h = Harness::quiet();
    let ack = h.connect(1, ProtocolVersion::V3_1, "old", true);
    assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
}

#[test]
fn topic_limits() {
    let mut h =
        Harness::new(Config { sys_interval_secs: 0, max_topic_levels: 3, max_topic_length: 10, ..Config::default() });
    h.connect(1, V5, "c", true);
    assert_eq!(h.subscribe(1, "a/b/c/d", q(QoS::AtMostOnce)), [0x8F]);
    assert_eq!(h.subscribe(1, "aaaaaaaaaaa", q(QoS::AtMostOnce)), [0x8F]);
    assert_eq!(h.subscribe(1, "a/+/c", q(QoS::AtLeastOnce)), [0x01]);
    h.publish(1, "a/b/c/d", b"x", QoS::AtLeastOnce, false);
    let got = h.take(1);
    let Packet::PubAck(ack) = got[0].packet() else { panic!() };
    assert_eq!(ack.reason_code, ReasonCode::TOPIC_NAME_INVALID);
}

#[test]
fn will_published_on_takeover_with_clean_start() {
    let mut h = Harness::quiet();
    watcher(&mut h, 9);
    let delay = props(&[Property::WillDelayInterval(60)]);
    h.connect_with(1, will_connect("tw", Some(&delay), 0));
    // Clean Start 0 and a delayed will: not sent.
    let mut c = Connect::new(V5, MqttStr::new("tw").unwrap(), false, 0);
    h.connect_with(2, c.clone());
    assert!(h.publishes(9).is_empty());
    h.core.connection_closed(ConnId(2), h.now);
    h.connect_with(3, will_connect("tw", Some(&delay), 0));
    // Clean Start 1: the old connection's will is sent.
    c.clean_start = true;
    h.connect_with(4, c);
    assert_eq!(h.publishes(9).len(), 1);
}

#[test]
fn v3_unsuback_and_pubrel_unknown_id() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "c", true);
    h.send(1, &Packet::PubRel(PublishResponse::new(pid(42))));
    let got = h.take(1);
    let Packet::PubComp(comp) = got[0].packet() else { panic!() };
    assert_eq!(comp.reason_code, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
    h.connect(2, V3, "d", true);
    let mut buf = UnsubscribeFiltersBuf::new();
    buf.push(TopicFilter::new("x").unwrap());
    let un = Unsubscribe { packet_id: pid(3), properties: Properties::EMPTY, filters: buf.filters(V3).unwrap() };
    h.send(2, &Packet::Unsubscribe(un));
    assert_eq!(kinds(&h.take(2)), [PacketType::UnsubAck]);
}

#[test]
fn deterministic_outputs() {
    fn run() -> Vec<(ConnId, Event)> {
        let mut h = Harness::new(Config { sys_interval_secs: 1, ..Config::default() });
        h.advance(Duration::ZERO);
        for (i, c) in ["a", "b", "c"].into_iter().enumerate() {
            h.connect(i as u64 + 1, V5, c, true);
            h.subscribe(i as u64 + 1, "t/#", q(QoS::ExactlyOnce));
        }
        h.connect(9, V5, "", true);
        h.publish(9, "t/1", b"x", QoS::ExactlyOnce, true);
        h.advance(Duration::from_secs(3));
        h.events()
    }
    assert_eq!(run(), run());
}

#[test]
fn response_information_on_request() {
    let mut h = Harness::quiet();
    let p = props(&[Property::RequestResponseInformation(1)]);
    let mut c = Connect::new(V5, MqttStr::new("rr").unwrap(), true, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    let ack = h.connect_with(1, c);
    let Packet::ConnAck(a) = ack.packet() else { panic!() };
    assert_eq!(a.properties.response_information(), Some("response/rr"));
    let ack = h.connect(2, V5, "plain", true);
    let Packet::ConnAck(a) = ack.packet() else { panic!() };
    assert_eq!(a.properties.response_information(), None);
}

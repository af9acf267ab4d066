use super::*;

use mqttkit_codec::{
    Properties, Property, PropertyContext, PublishResponse, RetainHandling, TopicFilter, Unsubscribe,
    UnsubscribeFiltersBuf,
};

use crate::config::Config;
use crate::testing::{Harness, pid, props};

#[test]
fn qos_flows_and_downgrade() {
    let mut h = Harness::quiet();
    h.connect(1, V3, "sub", true);
    h.connect(2, V3, "pub", true);
    assert_eq!(h.subscribe(1, "a/+", q(QoS::AtLeastOnce)), [1]);
    h.publish(2, "a/b", b"x", QoS::ExactlyOnce, false);
    let got = h.take(2);
    let Packet::PubRec(rec) = got[0].packet() else { panic!() };
    assert_eq!(rec.packet_id, pid(100));
    // Delivered at min(2, 1) = 1.
    let got = h.take(1);
    let Packet::Publish(p) = got[0].packet() else { panic!() };
    assert_eq!(p.qos.qos(), QoS::AtLeastOnce);
    let sent_id = p.qos.packet_id().unwrap();
    h.send(1, &Packet::PubAck(PublishResponse::new(sent_id)));
    // Duplicate QoS 2 PUBLISH before PUBREL: PUBREC again, not delivered again.
    h.publish(2, "a/b", b"x", QoS::ExactlyOnce, false);
    assert_eq!(kinds(&h.take(2)), [PacketType::PubRec]);
    assert!(h.take(1).is_empty());
    h.send(2, &Packet::PubRel(PublishResponse::new(pid(100))));
    assert_eq!(kinds(&h.take(2)), [PacketType::PubComp]);
}

#[test]
fn qos2_outbound_flow() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "sub", true);
    h.connect(2, V5, "pub", true);
    h.subscribe(1, "t", q(QoS::ExactlyOnce));
    h.publish(2, "t", b"x", QoS::ExactlyOnce, false);
    let got = h.take(1);
    let Packet::Publish(p) = got[0].packet() else { panic!() };
    let id = p.qos.packet_id().unwrap();
    assert_eq!(p.qos.qos(), QoS::ExactlyOnce);
    h.send(1, &Packet::PubRec(PublishResponse::new(id)));
    assert_eq!(kinds(&h.take(1)), [PacketType::PubRel]);
    h.send(1, &Packet::PubComp(PublishResponse::new(id)));
    assert!(h.take(1).is_empty());
}

#[test]
fn wildcards_and_dollar_topics() {
    let mut h = Harness::quiet();
    h.connect(1, V3, "s", true);
    h.connect(2, V3, "p", true);
    h.subscribe(1, "#", q(QoS::AtMostOnce));
    h.publish(2, "$SYS/x", b"1", QoS::AtMostOnce, false);
    h.publish(2, "$other/x", b"2", QoS::AtMostOnce, false);
    h.publish(2, "a/b/c", b"3", QoS::AtMostOnce, false);
    let got = h.publishes(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "a/b/c");
}

#[test]
fn overlapping_subscriptions_one_copy_with_ids() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "s", true);
    h.connect(2, V5, "p", true);
    let p1 = props(&[Property::SubscriptionIdentifier(7)]);
    h.subscribe_props(1, "a/#", q(QoS::AtMostOnce), p1.properties(PropertyContext::Subscribe).unwrap());
    let p2 = props(&[Property::SubscriptionIdentifier(9)]);
    h.subscribe_props(1, "a/+", q(QoS::AtLeastOnce), p2.properties(PropertyContext::Subscribe).unwrap());
    h.publish(2, "a/b", b"x", QoS::AtLeastOnce, false);
    let got = h.take(1);
    assert_eq!(got.len(), 1);
    let Packet::Publish(p) = got[0].packet() else { panic!() };
    assert_eq!(p.qos.qos(), QoS::AtLeastOnce);
    let mut ids: Vec<u32> = p.properties.subscription_identifiers().collect();
    ids.sort_unstable();
    assert_eq!(ids, [7, 9]);
}

#[test]
fn no_local() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "me", true);
    let mut o = q(QoS::AtMostOnce);
    o.no_local = true;
    h.subscribe(1, "t", o);
    h.publish(1, "t", b"x", QoS::AtMostOnce, false);
    assert!(h.publishes(1).is_empty());
}

#[test]
fn unsubscribe_codes() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "u", true);
    h.subscribe(1, "a", q(QoS::AtMostOnce));
    let mut buf = UnsubscribeFiltersBuf::new();
    buf.push(TopicFilter::new("a").unwrap());
    buf.push(TopicFilter::new("b").unwrap());
    let un = Unsubscribe { packet_id: pid(5), properties: Properties::EMPTY, filters: buf.filters(V5).unwrap() };
    h.send(1, &Packet::Unsubscribe(un));
    let got = h.take(1);
    let Packet::UnsubAck(ack) = got[0].packet() else { panic!() };
    assert_eq!(ack.packet_id, pid(5));
    assert_eq!(ack.reason_codes.as_bytes(), [0x00, 0x11]);
}

#[test]
fn retained_messages() {
    let mut h = Harness::quiet();
    h.connect(1, V3, "p", true);
    h.publish(1, "r/1", b"old", QoS::AtLeastOnce, true);
    h.publish(1, "r/1", b"new", QoS::AtLeastOnce, true);
    h.publish(1, "r/2", b"two", QoS::AtMostOnce, true);
    h.publish(1, "r/2", b"", QoS::AtMostOnce, true); // clears
    h.take(1);
    h.connect(2, V3, "s", true);
    h.subscribe(2, "r/#", q(QoS::AtLeastOnce));
    let got = h.publishes(2);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.as_str(), got[0].1.as_slice(), got[0].3), ("r/1", &b"new"[..], true));
    // Live delivery of a retained publish: RETAIN 0 for an established subscription.
    h.publish(1, "r/3", b"live", QoS::AtMostOnce, true);
    let got = h.publishes(2);
    assert!(!got[0].3);
}

#[test]
fn retain_handling_and_retain_as_published() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "p", true);
    h.publish(1, "r", b"v", QoS::AtMostOnce, true);
    h.connect(2, V5, "s", true);
    let mut o = q(QoS::AtMostOnce);
    o.retain_handling = RetainHandling::DoNotSend;
    h.subscribe(2, "r", o);
    assert!(h.publishes(2).is_empty());
    o.retain_handling = RetainHandling::SendIfNew;
    h.subscribe(2, "r", o); // already exists: nothing
    assert!(h.publishes(2).is_empty());
    h.subscribe(2, "r/#", o); // new
    assert_eq!(h.publishes(2).len(), 1);
    let mut rap = q(QoS::AtMostOnce);
    rap.retain_as_published = true;
    h.subscribe(2, "x", rap);
    h.publish(1, "x", b"1", QoS::AtMostOnce, true);
    assert!(h.publishes(2)[0].3);
}

#[test]
fn shared_subscriptions_round_robin() {
    let mut h = Harness::quiet();
    for (id, c) in [(1, "a"), (2, "b")] {
        h.connect(id, V5, c, true);
        h.subscribe(id, "$share/g/t/#", q(QoS::AtMostOnce));
    }
    h.connect(3, V5, "p", true);
    for _ in 0..4 {
        h.publish(3, "t/x", b"m", QoS::AtMostOnce, false);
    }
    assert_eq!(h.publishes(1).len(), 2);
    assert_eq!(h.publishes(2).len(), 2);
}

#[test]
fn acl_denies() {
    let mut config = Config { sys_interval_secs: 0, ..Config::default() };
    config.acl.deny_publish = vec!["secret/#".into()];
    config.acl.deny_subscribe = vec!["private/#".into()];
    let mut h = Harness::new(config);
    h.connect(1, V5, "c", true);
    assert_eq!(h.subscribe(1, "private/x", q(QoS::AtMostOnce)), [0x87]);
    h.publish(1, "secret/a", b"x", QoS::AtLeastOnce, false);
    let got = h.take(1);
    let Packet::PubAck(ack) = got[0].packet() else { panic!() };
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    h.connect(2, V3, "c3", true);
    assert_eq!(h.subscribe(2, "private/#", q(QoS::AtMostOnce)), [0x80]);
}

/// PUBLISH packets `id` received (taking everything it received).
fn publish_count(h: &mut Harness, id: u64) -> usize {
    h.publishes(id).len()
}

#[test]
fn v5_client_without_receive_maximum_gets_a_window_of_65535() {
    // "If the Receive Maximum value is absent then its value defaults to 65,535"
    // (5.0 §3.1.2.11.3): fan-in to a default 5.0 subscriber is not held back at 20.
    let mut h = Harness::quiet();
    h.connect(1, V5, "sub", true);
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.connect(2, V5, "pub", true);
    for _ in 0..3000 {
        h.publish(2, "t", b"m", QoS::AtLeastOnce, false);
    }
    assert_eq!(publish_count(&mut h, 1), 3000, "all in flight, none waiting for acknowledgements");
    assert_eq!(h.core.stats().messages_dropped, 0);
}

#[test]
fn v3_window_is_max_inflight() {
    let mut h = Harness::new(Config { max_inflight: 3, ..crate::testing::quiet_config() });
    h.connect(1, V3, "sub", true);
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.connect(2, V3, "pub", true);
    for _ in 0..10 {
        h.publish(2, "t", b"m", QoS::AtLeastOnce, false);
    }
    assert_eq!(publish_count(&mut h, 1), 3);
    assert_eq!(Config::default().max_inflight, u16::MAX);
}

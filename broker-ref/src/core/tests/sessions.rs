use super::*;

use std::time::Duration;

use mqttkit_codec::{
    Connect, Disconnect, MqttStr, Property, PropertyContext, Publish, PublishQoS, PublishResponse, TopicName,
};

use crate::config::Config;
use crate::core::{CloseReason, ConnId};
use crate::testing::{Harness, pid, props};

#[test]
fn persistent_session_queues_and_redelivers() {
    let mut h = Harness::quiet();
    h.connect(1, V3, "s", false);
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.connect(2, V3, "p", true);
    h.publish(2, "t", b"1", QoS::AtLeastOnce, false);
    // Received but not acknowledged, then the connection drops.
    assert_eq!(h.publishes(1).len(), 1);
    h.core.connection_closed(ConnId(1), h.now);
    h.publish(2, "t", b"2", QoS::AtLeastOnce, false);
    h.publish(2, "t", b"0", QoS::AtMostOnce, false); // QoS 0 not queued offline
    let ack = h.connect(3, V3, "s", false);
    assert_eq!(connack_code(&ack), (true, ReasonCode::SUCCESS));
    let got = h.publishes(3);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].1.as_slice(), got[0].4), (&b"1"[..], true)); // DUP redelivery
    assert_eq!((got[1].1.as_slice(), got[1].4), (&b"2"[..], false));
    // Clean session discards it.
    let ack = h.connect(4, V3, "s", true);
    assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
}

#[test]
fn session_expiry_v5() {
    let mut h = Harness::quiet();
    let p = props(&[Property::SessionExpiryInterval(30)]);
    let mut c = Connect::new(V5, MqttStr::new("e").unwrap(), true, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    h.connect_with(1, c.clone());
    h.send(1, &Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
    assert_eq!(h.closed(1), Some(&CloseReason::ClientDisconnect));
    h.advance(Duration::from_secs(29));
    assert_eq!(h.core.session_count(), 1);
    c.clean_start = false;
    assert!(connack_code(&h.connect_with(2, c.clone())).0);
    // Change the expiry at DISCONNECT to 5 s.
    let d = props(&[Property::SessionExpiryInterval(5)]);
    let mut disc = Disconnect::new(ReasonCode::SUCCESS);
    disc.properties = d.properties(PropertyContext::Disconnect).unwrap();
    h.send(2, &Packet::Disconnect(disc));
    h.advance(Duration::from_secs(6));
    assert_eq!(h.core.session_count(), 0);
    assert!(!connack_code(&h.connect_with(3, c)).0);
}

#[test]
fn disconnect_expiry_from_zero_is_protocol_error() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "z", true);
    let d = props(&[Property::SessionExpiryInterval(5)]);
    let mut disc = Disconnect::new(ReasonCode::SUCCESS);
    disc.properties = d.properties(PropertyContext::Disconnect).unwrap();
    h.send(1, &Packet::Disconnect(disc));
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn client_receive_maximum_limits_inflight() {
    let mut h = Harness::quiet();
    let p = props(&[Property::ReceiveMaximum(1)]);
    let mut c = Connect::new(V5, MqttStr::new("rm").unwrap(), true, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    h.connect_with(1, c);
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.connect(2, V5, "p", true);
    h.publish(2, "t", b"1", QoS::AtLeastOnce, false);
    h.publish(2, "t", b"2", QoS::AtLeastOnce, false);
    let got = h.take(1);
    assert_eq!(got.len(), 1);
    let Packet::Publish(p) = got[0].packet() else { panic!() };
    h.send(1, &Packet::PubAck(PublishResponse::new(p.qos.packet_id().unwrap())));
    let got = h.publishes(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, b"2");
}

#[test]
fn our_receive_maximum_enforced() {
    let mut h = Harness::new(Config { sys_interval_secs: 0, receive_maximum: 2, ..Config::default() });
    h.connect(1, V5, "flood", true);
    for n in 1..=3u16 {
        let p = Publish::new(TopicName::new("t").unwrap(), PublishQoS::ExactlyOnce(pid(n)), b"x");
        h.send(1, &Packet::Publish(p));
    }
    let got = h.take(1);
    assert_eq!(disconnect_code(got.last().unwrap()), ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
}

#[test]
fn queue_is_bounded() {
    let mut h = Harness::new(Config { sys_interval_secs: 0, max_queued_messages: 2, ..Config::default() });
    h.connect(1, V3, "s", false);
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.core.connection_closed(ConnId(1), h.now);
    h.connect(2, V3, "p", true);
    for n in 0..5u8 {
        h.publish(2, "t", &[n], QoS::AtLeastOnce, false);
    }
    h.connect(3, V3, "s", false);
    let got = h.publishes(3);
    assert_eq!(got.iter().map(|m| m.1[0]).collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn overlapping_subscriptions_across_a_reconnect_give_one_copy() {
    // [MQTT-3.3.4-2] (one message per session whatever the number of matching
    // subscriptions) also when they were made on different connections of the session.
    let mut h = Harness::quiet();
    h.connect(1, V3, "s", false);
    h.subscribe(1, "a/#", q(QoS::AtLeastOnce));
    h.close_abruptly(1);
    h.connect(2, V3, "s", false);
    h.subscribe(2, "a/+", q(QoS::AtMostOnce));
    h.connect(3, V3, "p", true);
    h.publish(3, "a/b", b"x", QoS::AtLeastOnce, false);
    let got = h.publishes(2);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].2, QoS::AtLeastOnce, "the maximum QoS of the matching subscriptions");
}

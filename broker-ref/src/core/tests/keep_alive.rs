use super::*;

use std::time::Duration;

use mqttkit_codec::{Connect, MqttStr, Property, PropertyContext};

use crate::config::Config;
use crate::core::CloseReason;
use crate::testing::{Harness, props};

#[test]
fn connect_timeout() {
    let mut h = Harness::quiet();
    h.open(1);
    h.advance(Duration::from_secs(9));
    assert!(h.nothing_closed());
    h.advance(Duration::from_secs(2));
    assert_eq!(h.closed(1), Some(&CloseReason::ConnectTimeout));
}

#[test]
fn keep_alive_timeout_at_one_and_a_half() {
    let mut h = Harness::quiet();
    let c = Connect::new(V5, MqttStr::new("k").unwrap(), true, 10);
    h.connect_with(1, c);
    h.advance(Duration::from_secs(14));
    h.send(1, &Packet::PingReq);
    h.take(1);
    h.advance(Duration::from_millis(14_900));
    assert!(h.nothing_closed());
    h.advance(Duration::from_millis(200));
    assert_eq!(h.closed(1), Some(&CloseReason::KeepAliveTimeout));
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::KEEP_ALIVE_TIMEOUT);
}

#[test]
fn server_keep_alive_replaces_client_value_v5() {
    // [MQTT-3.2.2-21]: the CONNACK carries Server Keep Alive and the server enforces it.
    let mut h = Harness::new(Config { sys_interval_secs: 0, server_keep_alive: Some(4), ..Config::default() });
    let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("ska").unwrap(), true, 600));
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.server_keep_alive(), Some(4));
    h.advance(Duration::from_millis(5_900));
    assert!(h.nothing_closed());
    h.send(1, &Packet::PingReq);
    h.take(1);
    h.advance(Duration::from_millis(5_999));
    assert!(h.nothing_closed());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(1), Some(&CloseReason::KeepAliveTimeout));
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::KEEP_ALIVE_TIMEOUT);
}

#[test]
fn server_keep_alive_zero_disables_and_v3_keeps_own_value() {
    let mut h = Harness::new(Config { sys_interval_secs: 0, server_keep_alive: Some(0), ..Config::default() });
    let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("z").unwrap(), true, 2));
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.server_keep_alive(), Some(0));
    // 3.1.1 cannot be told another value: its own Keep Alive applies.
    h.connect_with(2, Connect::new(V3, MqttStr::new("v3").unwrap(), true, 2));
    h.advance(Duration::from_millis(2_999));
    assert!(h.nothing_closed());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(2), Some(&CloseReason::KeepAliveTimeout));
    h.advance(Duration::from_secs(3600));
    assert!(h.closed(1).is_none(), "Server Keep Alive 0 disables the check");
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn without_server_keep_alive_the_client_value_is_used() {
    // [MQTT-3.2.2-22]: no Server Keep Alive in CONNACK, the client's value is enforced.
    let mut h = Harness::quiet();
    let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("own").unwrap(), true, 2));
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.server_keep_alive(), None);
    h.advance(Duration::from_millis(2_999));
    assert!(h.nothing_closed());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(1), Some(&CloseReason::KeepAliveTimeout));
}

fn capped(max: u16) -> Harness {
    Harness::new(Config { sys_interval_secs: 0, max_keepalive: Some(max), ..Config::default() })
}

#[test]
fn max_keepalive_leaves_a_smaller_keep_alive_alone() {
    // Cap 60, the client asks 2 s: no Server Keep Alive, the client's 2 s is enforced
    // [MQTT-3.2.2-22] (unlike server_keep_alive, which would impose 60 s).
    let mut h = capped(60);
    let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("small").unwrap(), true, 2));
    let Packet::ConnAck(c) = ack.packet() else { panic!("{ack:?}") };
    assert_eq!(c.properties.server_keep_alive(), None);
    h.advance(Duration::from_millis(2_999));
    assert!(h.nothing_closed());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(1), Some(&CloseReason::KeepAliveTimeout));
}

#[test]
fn max_keepalive_caps_a_larger_or_absent_keep_alive() {
    // Cap 60, the client asks 100 s or 0 (none): Server Keep Alive 60, and the server holds
    // the client to it [MQTT-3.2.2-21] (closed after one and a half times 60 s).
    for asked in [100, 0] {
        let mut h = capped(60);
        let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("big").unwrap(), true, asked));
        let Packet::ConnAck(c) = ack.packet() else { panic!("{ack:?}") };
        assert_eq!(c.properties.server_keep_alive(), Some(60), "client asked {asked}");
        h.advance(Duration::from_millis(89_999));
        assert!(h.nothing_closed(), "client asked {asked}");
        h.advance(Duration::from_millis(1));
        assert_eq!(h.closed(1), Some(&CloseReason::KeepAliveTimeout), "client asked {asked}");
    }
    // Exactly the cap is left alone.
    let mut h = capped(60);
    let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("equal").unwrap(), true, 60));
    let Packet::ConnAck(c) = ack.packet() else { panic!("{ack:?}") };
    assert_eq!(c.properties.server_keep_alive(), None);
}

#[test]
fn max_keepalive_does_not_apply_to_v3_clients() {
    // Documented behaviour: MQTT 3.1.1 has no Server Keep Alive, so a 3.1.1 client asking
    // for more than the cap is accepted and keeps its own value (mosquitto refuses it
    // instead; we do not, so that old clients with long keep alives still connect).
    let mut h = capped(60);
    let ack = h.connect_with(1, Connect::new(V3, MqttStr::new("old").unwrap(), true, 100));
    let Packet::ConnAck(c) = ack.packet() else { panic!("{ack:?}") };
    assert_eq!(c.code, ReasonCode::SUCCESS);
    h.advance(Duration::from_millis(149_999));
    assert!(h.nothing_closed(), "held to its own 100 s, not to the cap");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(1), Some(&CloseReason::KeepAliveTimeout));
}

#[test]
fn server_keep_alive_not_sent_when_connack_properties_do_not_fit() {
    // The client's Maximum Packet Size is too small for CONNACK properties: they are
    // omitted, so the client's own Keep Alive applies [MQTT-3.2.2-22].
    let mut h = Harness::new(Config { sys_interval_secs: 0, server_keep_alive: Some(100), ..Config::default() });
    let p = props(&[Property::MaximumPacketSize(20)]);
    let mut c = Connect::new(V5, MqttStr::new("tiny").unwrap(), true, 2);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    let ack = h.connect_with(1, c);
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.server_keep_alive(), None);
    h.advance(Duration::from_secs(3));
    assert_eq!(h.closed(1), Some(&CloseReason::KeepAliveTimeout));
}

#[test]
fn malformed_input_v5_and_v3() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "m5", true);
    // PUBLISH with QoS 3.
    h.raw(1, &[0x36, 5, 0, 1, b'a', 0, 1]);
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::MALFORMED_PACKET);
    assert_eq!(h.closed(1), Some(&CloseReason::ProtocolError(ReasonCode::MALFORMED_PACKET)));
    h.connect(2, V3, "m3", true);
    h.raw(2, &[0x36, 5, 0, 1, b'a', 0, 1]);
    assert!(h.take(2).is_empty());
    assert!(h.closed(2).is_some());
}

#[test]
fn packet_too_large_v5() {
    let mut h = Harness::new(Config { sys_interval_secs: 0, max_packet_size: 100, ..Config::default() });
    h.connect(1, V5, "big", true);
    h.publish(1, "t", &[0u8; 200], QoS::AtMostOnce, false);
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::PACKET_TOO_LARGE);
}

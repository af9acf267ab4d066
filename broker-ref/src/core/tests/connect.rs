use super::*;

use std::collections::BTreeMap;

use mqttkit_codec::{Connect, MqttStr, Property, PropertyContext};

use crate::config::Config;
use crate::core::CloseReason;
use crate::testing::{Harness, encode, props};

#[test]
fn connect_and_ping() {
    let mut h = Harness::quiet();
    let ack = h.connect(1, V3, "c1", true);
    assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
    h.send(1, &Packet::PingReq);
    assert_eq!(kinds(&h.take(1)), [PacketType::PingResp]);
}

#[test]
fn v5_connack_properties() {
    let mut h = Harness::new(Config { sys_interval_secs: 0, maximum_qos: 1, ..Config::default() });
    let ack = h.connect(1, V5, "c1", true);
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.receive_maximum(), Some(100));
    assert_eq!(c.properties.maximum_packet_size(), Some(1024 * 1024));
    assert_eq!(c.properties.topic_alias_maximum(), Some(10));
    assert_eq!(c.properties.retain_available(), Some(1));
    assert_eq!(c.properties.maximum_qos(), Some(1));
    assert_eq!(c.properties.shared_subscription_available(), Some(1));
}

#[test]
fn first_packet_must_be_connect() {
    let mut h = Harness::quiet();
    h.open(1);
    h.raw(1, &[0xC0, 0x00]); // PINGREQ
    assert!(h.nothing_sent());
    assert!(matches!(h.closed(1), Some(CloseReason::ProtocolError(_))));
}

#[test]
fn second_connect_is_protocol_error() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "c1", true);
    let c = Connect::new(V5, MqttStr::new("c1").unwrap(), true, 0);
    h.send(1, &Packet::Connect(c));
    let got = h.take(1);
    assert_eq!(disconnect_code(&got[0]), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(h.closed(1), Some(&CloseReason::ProtocolError(ReasonCode::PROTOCOL_ERROR)));
}

#[test]
fn unsupported_protocol_level() {
    let mut h = Harness::quiet();
    h.open(1);
    // CONNECT "MQTT" level 6.
    h.raw(1, &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 0]);
    let got = h.take_bytes(1);
    assert_eq!(&got[..], &[0x20, 2, 0, 0x01]);
    h.open(2);
    h.raw(2, &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 2, 0x02, 0, 60, 0, 0]);
    let got = h.take_bytes(2);
    assert_eq!(&got[..], &[0x20, 2, 0, 0x01]);
    assert!(h.closed(1).is_some() && h.closed(2).is_some());
}

/// A valid CONNECT of `version` with client id "x", as bytes to corrupt.
fn connect_bytes(version: ProtocolVersion) -> Vec<u8> {
    encode(&Packet::Connect(Connect::new(version, MqttStr::new("x").unwrap(), true, 30)), version)
}

#[test]
fn malformed_v5_connect_gets_connack_with_reason_code() {
    let mut h = Harness::quiet();
    // Reserved flag set [MQTT-3.1.2-3]: Malformed Packet.
    let mut bad = connect_bytes(V5);
    bad[9] |= 0x01;
    h.open(1);
    h.raw(1, &bad);
    assert_eq!(&h.take_bytes(1)[..], &[0x20, 3, 0, 0x81, 0]);
    assert_eq!(h.closed(1), Some(&CloseReason::ConnectRefused(ReasonCode::MALFORMED_PACKET)));
    // A property twice: Protocol Error.
    let p = props(&[Property::ReceiveMaximum(5)]);
    let mut c = Connect::new(V5, MqttStr::new("x").unwrap(), true, 30);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    let mut bytes = encode(&Packet::Connect(c), V5);
    // Header(2) name(6) level(1) flags(1) keepalive(2) = 12; then properties length 3.
    assert_eq!(bytes[12], 3);
    bytes[12] = 6;
    bytes.splice(13..13, [0x21, 0, 7]);
    bytes[1] += 3;
    h.open(2);
    h.raw(2, &bytes);
    assert_eq!(&h.take_bytes(2)[..], &[0x20, 3, 0, 0x82, 0]);
    assert_eq!(h.closed(2), Some(&CloseReason::ConnectRefused(ReasonCode::PROTOCOL_ERROR)));
    // Truncated body (remaining length ends inside the client id): Malformed Packet.
    let mut short = connect_bytes(V5);
    short[1] -= 1;
    short.pop();
    h.open(3);
    h.raw(3, &short);
    assert_eq!(&h.take_bytes(3)[..], &[0x20, 3, 0, 0x81, 0]);
}

#[test]
fn oversized_v5_connect_gets_connack_packet_too_large() {
    let mut h = Harness::new(Config { sys_interval_secs: 0, max_packet_size: 64, ..Config::default() });
    let long = "y".repeat(100);
    let c = Connect::new(V5, MqttStr::new(&long).unwrap(), true, 30);
    let bytes = encode(&Packet::Connect(c), V5);
    h.open(1);
    // Only the first bytes have arrived: the size is known from the fixed header.
    h.raw(1, &bytes[..20]);
    assert_eq!(&h.take_bytes(1)[..], &[0x20, 3, 0, 0x95, 0]);
    assert_eq!(h.closed(1), Some(&CloseReason::ConnectRefused(ReasonCode::PACKET_TOO_LARGE)));
}

#[test]
fn malformed_v3_connect_is_closed_without_connack() {
    // [MQTT-3.1.4-1] (3.1.1): close without sending a CONNACK.
    let mut h = Harness::quiet();
    // 3.1.1: the reserved flag set [MQTT-3.1.2-3]; 3.1 has no rule on that bit (the codec
    // ignores it, as mosquitto does), so a Will QoS of 3 there.
    for (id, version, flags, bits) in [(1, V3, 9, 0x01), (2, ProtocolVersion::V3_1, 11, 0x1C)] {
        let mut bad = connect_bytes(version);
        bad[flags] |= bits;
        h.open(id);
        h.raw(id, &bad);
        let got = h.take_bytes(id);
        assert!(got.is_empty(), "{version:?} {got:02x?}");
        assert_eq!(h.closed(id), Some(&CloseReason::ProtocolError(ReasonCode::MALFORMED_PACKET)));
    }
    // MQTT 3.1 has no rule on that reserved flag (the codec accepts it, as mosquitto does):
    // the CONNECT is answered.
    let mut v31 = connect_bytes(ProtocolVersion::V3_1);
    v31[11] |= 0x01;
    h.open(3);
    h.raw(3, &v31);
    assert!(!h.take_bytes(3).is_empty(), "3.1 CONNECT with the reserved flag is answered");
    // Too large, 3.1.1: closed without CONNACK.
    let mut h = Harness::new(Config { sys_interval_secs: 0, max_packet_size: 64, ..Config::default() });
    let long = "y".repeat(100);
    let bytes = encode(&Packet::Connect(Connect::new(V3, MqttStr::new(&long).unwrap(), true, 30)), V3);
    h.open(3);
    h.raw(3, &bytes);
    assert!(h.take_bytes(3).is_empty());
    assert_eq!(h.closed(3), Some(&CloseReason::ProtocolError(ReasonCode::PACKET_TOO_LARGE)));
}

#[test]
fn unsupported_v3_levels_get_connack_0x01() {
    // [MQTT-3.1.2-2] (3.1.1): CONNACK 0x01 then close, for every level below 5 we do not
    // speak (and "MQTT" with the 3.1 level).
    let mut h = Harness::quiet();
    for (id, level) in [(1u64, 0u8), (2, 1), (3, 3)] {
        h.open(id);
        h.raw(id, &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 60, 0, 0]);
        assert_eq!(&h.take_bytes(id)[..], &[0x20, 2, 0, 0x01], "level {level}");
        assert!(h.closed(id).is_some());
    }
    // An unknown protocol name: closed without CONNACK.
    h.open(4);
    h.raw(4, &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'X', 4, 0x02, 0, 60, 0, 0]);
    assert!(h.take_bytes(4).is_empty());
    assert!(h.closed(4).is_some());
}

#[test]
fn client_id_rules() {
    let mut h = Harness::quiet();
    let ack = h.connect(1, V3, "", false);
    assert_eq!(connack_code(&ack), (false, ReasonCode::V3_IDENTIFIER_REJECTED));
    assert!(h.closed(1).is_some());
    let ack = h.connect(2, V3, "", true);
    assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
    let ack = h.connect(3, V5, "", false);
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.code, ReasonCode::SUCCESS);
    assert!(c.properties.assigned_client_identifier().is_some_and(|id| !id.is_empty()));
}

#[test]
fn auth_method_refused() {
    let mut h = Harness::quiet();
    let p = props(&[Property::AuthenticationMethod("SCRAM-SHA-1")]);
    let mut c = Connect::new(V5, MqttStr::new("a").unwrap(), true, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    let ack = h.connect_with(1, c);
    assert_eq!(connack_code(&ack), (false, ReasonCode::BAD_AUTHENTICATION_METHOD));
    assert!(h.closed(1).is_some());
}

#[test]
fn password_file_users() {
    let mut users = BTreeMap::new();
    users.insert("alice".to_owned(), crate::testing::hashed("secret"));
    let mut h = Harness::new(Config { sys_interval_secs: 0, users, allow_anonymous: false, ..Config::default() });
    let mut c = Connect::new(V3, MqttStr::new("a").unwrap(), true, 0);
    c.username = Some(MqttStr::new("alice").unwrap());
    c.password = Some(b"wrong");
    assert_eq!(connack_code(&h.connect_with(1, c.clone())).1, ReasonCode::V3_BAD_USER_NAME_OR_PASSWORD);
    c.password = Some(b"secret");
    assert_eq!(connack_code(&h.connect_with(2, c)).1, ReasonCode::SUCCESS);
    assert_eq!(connack_code(&h.connect(3, V5, "anon", true)).1, ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn session_takeover_v5() {
    let mut h = Harness::quiet();
    h.connect(1, V5, "same", true);
    let ack = h.connect(2, V5, "same", false);
    assert_eq!(connack_code(&ack), (true, ReasonCode::SUCCESS));
    let old = h.take(1);
    assert_eq!(disconnect_code(&old[0]), ReasonCode::SESSION_TAKEN_OVER);
    assert_eq!(h.closed(1), Some(&CloseReason::SessionTakenOver));
    assert!(h.closed(2).is_none());
}

//! Core tests, driven in memory on a simulated clock.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit_codec::{
    Connect, Disconnect, MqttStr, OwnedPacket, Packet, PacketId, Properties, PropertiesBuf, Property, PropertyContext,
    ProtocolVersion, Publish, PublishQoS, PublishResponse, QoS, ReasonCode, RetainHandling, Subscribe,
    SubscribeFiltersBuf, SubscriptionOptions, TopicFilter, TopicName, Unsubscribe, UnsubscribeFiltersBuf, Will,
};

use super::{CloseReason, ConnId, Core, Output};
use crate::config::Config;

const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

struct H {
    core: Core,
    now: Instant,
    inbox: BTreeMap<u64, Vec<Bytes>>,
    closed: BTreeMap<u64, CloseReason>,
    versions: BTreeMap<u64, ProtocolVersion>,
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
    let mut v = Vec::new();
    packet.encode(version, &mut v).unwrap();
    v
}

fn props(list: &[Property<'_>]) -> PropertiesBuf {
    let mut buf = PropertiesBuf::new();
    for p in list {
        buf.push(*p).unwrap();
    }
    buf
}

impl H {
    fn new() -> Self {
        Self::with(Config { sys_interval_secs: 0, ..Config::default() })
    }

    fn with(config: Config) -> Self {
        let now = Instant::now();
        Self {
            core: Core::new(config, now),
            now,
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
            versions: BTreeMap::new(),
        }
    }

    fn open(&mut self, id: u64) {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        self.core.connection_opened(ConnId(id), peer, self.now);
    }

    fn raw(&mut self, id: u64, bytes: &[u8]) {
        self.core.handle_bytes(ConnId(id), bytes, self.now);
        self.drain();
    }

    fn send(&mut self, id: u64, packet: &Packet<'_>) {
        let version = self.versions.get(&id).copied().unwrap_or(V3);
        let bytes = encode(packet, version);
        self.raw(id, &bytes);
    }

    fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send(id, bytes) => self.inbox.entry(id.0).or_default().push(bytes),
                Output::Close(id, reason) => {
                    self.closed.insert(id.0, reason);
                }
            }
        }
    }

    /// Advance the clock, running timers as they fall due.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(at) = self.core.poll_timeout() {
            if at > target {
                break;
            }
            self.now = at.max(self.now);
            self.core.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
        self.core.handle_timeout(self.now);
        self.drain();
    }

    fn take(&mut self, id: u64) -> Vec<OwnedPacket> {
        self.drain();
        let version = self.versions.get(&id).copied().unwrap_or(V3);
        self.inbox
            .remove(&id)
            .unwrap_or_default()
            .into_iter()
            .map(|b| OwnedPacket::from_frame(b, version).unwrap())
            .collect()
    }

    fn connect_with(&mut self, id: u64, connect: Connect<'_>) -> OwnedPacket {
        self.open(id);
        self.versions.insert(id, connect.version);
        self.send(id, &Packet::Connect(connect));
        let mut got = self.take(id);
        assert!(!got.is_empty(), "no CONNACK");
        let rest: Vec<Bytes> = got[1..].iter().map(|p| p.frame().clone()).collect();
        if !rest.is_empty() {
            self.inbox.insert(id, rest);
        }
        got.remove(0)
    }

    fn connect(&mut self, id: u64, version: ProtocolVersion, client: &str, clean: bool) -> OwnedPacket {
        let c = Connect::new(version, MqttStr::new(client).unwrap(), clean, 0);
        self.connect_with(id, c)
    }

    fn subscribe(&mut self, id: u64, filter: &str, opts: SubscriptionOptions) -> Vec<u8> {
        self.subscribe_props(id, filter, opts, Properties::EMPTY)
    }

    fn subscribe_props(&mut self, id: u64, filter: &str, opts: SubscriptionOptions, p: Properties<'_>) -> Vec<u8> {
        let version = self.versions[&id];
        let mut buf = SubscribeFiltersBuf::new();
        buf.push(TopicFilter::new(filter).unwrap(), opts);
        let sub = Subscribe { packet_id: pid(1), properties: p, filters: buf.filters(version).unwrap() };
        self.send(id, &Packet::Subscribe(sub));
        let got = self.take(id);
        let Packet::SubAck(ack) = got[0].packet() else { panic!("expected SUBACK, got {got:?}") };
        let codes = ack.reason_codes.as_bytes().to_vec();
        // Anything after the SUBACK (retained messages) goes back in the inbox.
        let rest: Vec<Bytes> = got[1..].iter().map(|p| p.frame().clone()).collect();
        if !rest.is_empty() {
            self.inbox.insert(id, rest);
        }
        codes
    }

    fn publish(&mut self, id: u64, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        let q = match qos {
            QoS::AtMostOnce => PublishQoS::AtMostOnce,
            q => PublishQoS::new(q, pid(100)),
        };
        let mut p = Publish::new(TopicName::new(topic).unwrap(), q, payload);
        p.retain = retain;
        self.send(id, &Packet::Publish(p));
    }

    /// PUBLISH packets received, as (topic, payload, qos, retain, dup).
    fn publishes(&mut self, id: u64) -> Vec<(String, Vec<u8>, QoS, bool, bool)> {
        self.take(id)
            .iter()
            .filter_map(|p| match p.packet() {
                Packet::Publish(p) => Some((p.topic.to_string(), p.payload.to_vec(), p.qos.qos(), p.retain, p.dup)),
                _ => None,
            })
            .collect()
    }
}

fn q(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::qos(qos)
}

fn connack_code(p: &OwnedPacket) -> (bool, ReasonCode) {
    match p.packet() {
        Packet::ConnAck(c) => (c.session_present, c.code),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

fn kinds(packets: &[OwnedPacket]) -> Vec<mqttkit_codec::PacketType> {
    packets.iter().map(|p| p.packet().packet_type()).collect()
}

fn disconnect_code(p: &OwnedPacket) -> ReasonCode {
    match p.packet() {
        Packet::Disconnect(d) => d.reason_code,
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
}

// ------------------------------------------------------------------ CONNECT

#[test]
fn connect_and_ping() {
    let mut h = H::new();
    let ack = h.connect(1, V3, "c1", true);
    assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
    h.send(1, &Packet::PingReq);
    assert_eq!(kinds(&h.take(1)), [mqttkit_codec::PacketType::PingResp]);
}

#[test]
fn v5_connack_properties() {
    let mut h = H::with(Config { sys_interval_secs: 0, maximum_qos: 1, ..Config::default() });
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
    let mut h = H::new();
    h.open(1);
    h.raw(1, &[0xC0, 0x00]); // PINGREQ
    assert!(h.inbox.is_empty());
    assert!(matches!(h.closed[&1], CloseReason::ProtocolError(_)));
}

#[test]
fn second_connect_is_protocol_error() {
    let mut h = H::new();
    h.connect(1, V5, "c1", true);
    let c = Connect::new(V5, MqttStr::new("c1").unwrap(), true, 0);
    h.send(1, &Packet::Connect(c));
    let got = h.take(1);
    assert_eq!(disconnect_code(&got[0]), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(h.closed[&1], CloseReason::ProtocolError(ReasonCode::PROTOCOL_ERROR));
}

#[test]
fn unsupported_protocol_level() {
    let mut h = H::new();
    h.open(1);
    // CONNECT "MQTT" level 6.
    h.raw(1, &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 0]);
    let got = h.inbox.remove(&1).unwrap();
    assert_eq!(&got[0][..], &[0x20, 2, 0, 0x01]);
    h.open(2);
    h.raw(2, &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 2, 0x02, 0, 60, 0, 0]);
    let got = h.inbox.remove(&2).unwrap();
    assert_eq!(&got[0][..], &[0x20, 2, 0, 0x01]);
    assert!(h.closed.contains_key(&1) && h.closed.contains_key(&2));
}

/// A valid CONNECT of `version` with client id "x", as bytes to corrupt.
fn connect_bytes(version: ProtocolVersion) -> Vec<u8> {
    encode(&Packet::Connect(Connect::new(version, MqttStr::new("x").unwrap(), true, 30)), version)
}

#[test]
fn malformed_v5_connect_gets_connack_with_reason_code() {
    let mut h = H::new();
    // Reserved flag set [MQTT-3.1.2-3]: Malformed Packet.
    let mut bad = connect_bytes(V5);
    bad[9] |= 0x01;
    h.open(1);
    h.raw(1, &bad);
    assert_eq!(&h.inbox.remove(&1).unwrap()[0][..], &[0x20, 3, 0, 0x81, 0]);
    assert_eq!(h.closed[&1], CloseReason::ConnectRefused(ReasonCode::MALFORMED_PACKET));
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
    assert_eq!(&h.inbox.remove(&2).unwrap()[0][..], &[0x20, 3, 0, 0x82, 0]);
    assert_eq!(h.closed[&2], CloseReason::ConnectRefused(ReasonCode::PROTOCOL_ERROR));
    // Truncated body (remaining length ends inside the client id): Malformed Packet.
    let mut short = connect_bytes(V5);
    short[1] -= 1;
    short.pop();
    h.open(3);
    h.raw(3, &short);
    assert_eq!(&h.inbox.remove(&3).unwrap()[0][..], &[0x20, 3, 0, 0x81, 0]);
}

#[test]
fn oversized_v5_connect_gets_connack_packet_too_large() {
    let mut h = H::with(Config { sys_interval_secs: 0, max_packet_size: 64, ..Config::default() });
    let long = "y".repeat(100);
    let c = Connect::new(V5, MqttStr::new(&long).unwrap(), true, 30);
    let bytes = encode(&Packet::Connect(c), V5);
    h.open(1);
    // Only the first bytes have arrived: the size is known from the fixed header.
    h.raw(1, &bytes[..20]);
    assert_eq!(&h.inbox.remove(&1).unwrap()[0][..], &[0x20, 3, 0, 0x95, 0]);
    assert_eq!(h.closed[&1], CloseReason::ConnectRefused(ReasonCode::PACKET_TOO_LARGE));
}

#[test]
fn malformed_v3_connect_is_closed_without_connack() {
    // [MQTT-3.1.4-1] (3.1.1): close without sending a CONNACK.
    let mut h = H::new();
    let mut bad = connect_bytes(V3);
    bad[9] |= 0x01;
    h.open(1);
    h.raw(1, &bad);
    assert!(h.inbox.remove(&1).is_none());
    assert_eq!(h.closed[&1], CloseReason::ProtocolError(ReasonCode::MALFORMED_PACKET));
    // MQTT 3.1 has no rule on that reserved flag (the codec accepts it, as mosquitto does):
    // the CONNECT is answered.
    let mut v31 = connect_bytes(ProtocolVersion::V3_1);
    v31[11] |= 0x01;
    h.open(2);
    h.raw(2, &v31);
    assert!(h.inbox.remove(&2).is_some(), "3.1 CONNECT with the reserved flag is answered");
    // Too large, 3.1.1: closed without CONNACK.
    let mut h = H::with(Config { sys_interval_secs: 0, max_packet_size: 64, ..Config::default() });
    let long = "y".repeat(100);
    let bytes = encode(&Packet::Connect(Connect::new(V3, MqttStr::new(&long).unwrap(), true, 30)), V3);
    h.open(3);
    h.raw(3, &bytes);
    assert!(h.inbox.remove(&3).is_none());
    assert_eq!(h.closed[&3], CloseReason::ProtocolError(ReasonCode::PACKET_TOO_LARGE));
}

#[test]
fn unsupported_v3_levels_get_connack_0x01() {
    // [MQTT-3.1.2-2] (3.1.1): CONNACK 0x01 then close, for every level below 5 we do not
    // speak (and "MQTT" with the 3.1 level).
    let mut h = H::new();
    for (id, level) in [(1u64, 0u8), (2, 1), (3, 3)] {
        h.open(id);
        h.raw(id, &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 60, 0, 0]);
        assert_eq!(&h.inbox.remove(&id).unwrap()[0][..], &[0x20, 2, 0, 0x01], "level {level}");
        assert!(h.closed.contains_key(&id));
    }
    // An unknown protocol name: closed without CONNACK.
    h.open(4);
    h.raw(4, &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'X', 4, 0x02, 0, 60, 0, 0]);
    assert!(h.inbox.remove(&4).is_none());
    assert!(h.closed.contains_key(&4));
}

#[test]
fn client_id_rules() {
    let mut h = H::new();
    let ack = h.connect(1, V3, "", false);
    assert_eq!(connack_code(&ack), (false, ReasonCode::V3_IDENTIFIER_REJECTED));
    assert!(h.closed.contains_key(&1));
    let ack = h.connect(2, V3, "", true);
    assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
    let ack = h.connect(3, V5, "", false);
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.code, ReasonCode::SUCCESS);
    assert!(c.properties.assigned_client_identifier().is_some_and(|id| !id.is_empty()));
}

#[test]
fn auth_method_refused() {
    let mut h = H::new();
    let p = props(&[Property::AuthenticationMethod("SCRAM-SHA-1")]);
    let mut c = Connect::new(V5, MqttStr::new("a").unwrap(), true, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    let ack = h.connect_with(1, c);
    assert_eq!(connack_code(&ack), (false, ReasonCode::BAD_AUTHENTICATION_METHOD));
    assert!(h.closed.contains_key(&1));
}

#[test]
fn password_file_users() {
    let mut users = BTreeMap::new();
    users.insert("alice".to_owned(), "secret".to_owned());
    let mut h = H::with(Config { sys_interval_secs: 0, users, allow_anonymous: false, ..Config::default() });
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
    let mut h = H::new();
    h.connect(1, V5, "same", true);
    let ack = h.connect(2, V5, "same", false);
    assert_eq!(connack_code(&ack), (true, ReasonCode::SUCCESS));
    let old = h.take(1);
    assert_eq!(disconnect_code(&old[0]), ReasonCode::SESSION_TAKEN_OVER);
    assert_eq!(h.closed[&1], CloseReason::SessionTakenOver);
    assert!(!h.closed.contains_key(&2));
}

#[test]
fn connect_timeout() {
    let mut h = H::new();
    h.open(1);
    h.advance(Duration::from_secs(9));
    assert!(h.closed.is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(h.closed[&1], CloseReason::ConnectTimeout);
}

#[test]
fn keep_alive_timeout_at_one_and_a_half() {
    let mut h = H::new();
    let c = Connect::new(V5, MqttStr::new("k").unwrap(), true, 10);
    h.connect_with(1, c);
    h.advance(Duration::from_secs(14));
    h.send(1, &Packet::PingReq);
    h.take(1);
    h.advance(Duration::from_millis(14_900));
    assert!(h.closed.is_empty());
    h.advance(Duration::from_millis(200));
    assert_eq!(h.closed[&1], CloseReason::KeepAliveTimeout);
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::KEEP_ALIVE_TIMEOUT);
}

#[test]
fn server_keep_alive_replaces_client_value_v5() {
    // [MQTT-3.2.2-21]: the CONNACK carries Server Keep Alive and the server enforces it.
    let mut h = H::with(Config { sys_interval_secs: 0, server_keep_alive: Some(4), ..Config::default() });
    let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("ska").unwrap(), true, 600));
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.server_keep_alive(), Some(4));
    h.advance(Duration::from_millis(5_900));
    assert!(h.closed.is_empty());
    h.send(1, &Packet::PingReq);
    h.take(1);
    h.advance(Duration::from_millis(5_999));
    assert!(h.closed.is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed[&1], CloseReason::KeepAliveTimeout);
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::KEEP_ALIVE_TIMEOUT);
}

#[test]
fn server_keep_alive_zero_disables_and_v3_keeps_own_value() {
    let mut h = H::with(Config { sys_interval_secs: 0, server_keep_alive: Some(0), ..Config::default() });
    let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("z").unwrap(), true, 2));
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.server_keep_alive(), Some(0));
    // 3.1.1 cannot be told another value: its own Keep Alive applies.
    h.connect_with(2, Connect::new(V3, MqttStr::new("v3").unwrap(), true, 2));
    h.advance(Duration::from_millis(2_999));
    assert!(h.closed.is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed.get(&2), Some(&CloseReason::KeepAliveTimeout));
    h.advance(Duration::from_secs(3600));
    assert!(!h.closed.contains_key(&1), "Server Keep Alive 0 disables the check");
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn without_server_keep_alive_the_client_value_is_used() {
    // [MQTT-3.2.2-22]: no Server Keep Alive in CONNACK, the client's value is enforced.
    let mut h = H::new();
    let ack = h.connect_with(1, Connect::new(V5, MqttStr::new("own").unwrap(), true, 2));
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.server_keep_alive(), None);
    h.advance(Duration::from_millis(2_999));
    assert!(h.closed.is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed[&1], CloseReason::KeepAliveTimeout);
}

#[test]
fn server_keep_alive_not_sent_when_connack_properties_do_not_fit() {
    // The client's Maximum Packet Size is too small for CONNACK properties: they are
    // omitted, so the client's own Keep Alive applies [MQTT-3.2.2-22].
    let mut h = H::with(Config { sys_interval_secs: 0, server_keep_alive: Some(100), ..Config::default() });
    let p = props(&[Property::MaximumPacketSize(20)]);
    let mut c = Connect::new(V5, MqttStr::new("tiny").unwrap(), true, 2);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    let ack = h.connect_with(1, c);
    let Packet::ConnAck(c) = ack.packet() else { panic!() };
    assert_eq!(c.properties.server_keep_alive(), None);
    h.advance(Duration::from_secs(3));
    assert_eq!(h.closed[&1], CloseReason::KeepAliveTimeout);
}

#[test]
fn malformed_input_v5_and_v3() {
    let mut h = H::new();
    h.connect(1, V5, "m5", true);
    // PUBLISH with QoS 3.
    h.raw(1, &[0x36, 5, 0, 1, b'a', 0, 1]);
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::MALFORMED_PACKET);
    assert_eq!(h.closed[&1], CloseReason::ProtocolError(ReasonCode::MALFORMED_PACKET));
    h.connect(2, V3, "m3", true);
    h.raw(2, &[0x36, 5, 0, 1, b'a', 0, 1]);
    assert!(h.take(2).is_empty());
    assert!(h.closed.contains_key(&2));
}

#[test]
fn packet_too_large_v5() {
    let mut h = H::with(Config { sys_interval_secs: 0, max_packet_size: 100, ..Config::default() });
    h.connect(1, V5, "big", true);
    h.publish(1, "t", &[0u8; 200], QoS::AtMostOnce, false);
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::PACKET_TOO_LARGE);
}

// ------------------------------------------------------------------ PUBLISH / SUBSCRIBE

#[test]
fn qos_flows_and_downgrade() {
    let mut h = H::new();
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
    assert_eq!(kinds(&h.take(2)), [mqttkit_codec::PacketType::PubRec]);
    assert!(h.take(1).is_empty());
    h.send(2, &Packet::PubRel(PublishResponse::new(pid(100))));
    assert_eq!(kinds(&h.take(2)), [mqttkit_codec::PacketType::PubComp]);
}

#[test]
fn qos2_outbound_flow() {
    let mut h = H::new();
    h.connect(1, V5, "sub", true);
    h.connect(2, V5, "pub", true);
    h.subscribe(1, "t", q(QoS::ExactlyOnce));
    h.publish(2, "t", b"x", QoS::ExactlyOnce, false);
    let got = h.take(1);
    let Packet::Publish(p) = got[0].packet() else { panic!() };
    let id = p.qos.packet_id().unwrap();
    assert_eq!(p.qos.qos(), QoS::ExactlyOnce);
    h.send(1, &Packet::PubRec(PublishResponse::new(id)));
    assert_eq!(kinds(&h.take(1)), [mqttkit_codec::PacketType::PubRel]);
    h.send(1, &Packet::PubComp(PublishResponse::new(id)));
    assert!(h.take(1).is_empty());
}

#[test]
fn wildcards_and_dollar_topics() {
    let mut h = H::new();
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
    let mut h = H::new();
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
    let mut h = H::new();
    h.connect(1, V5, "me", true);
    let mut o = q(QoS::AtMostOnce);
    o.no_local = true;
    h.subscribe(1, "t", o);
    h.publish(1, "t", b"x", QoS::AtMostOnce, false);
    assert!(h.publishes(1).is_empty());
}

#[test]
fn unsubscribe_codes() {
    let mut h = H::new();
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
    let mut h = H::new();
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
    let mut h = H::new();
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
    let mut h = H::new();
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
    let mut h = H::with(config);
    h.connect(1, V5, "c", true);
    assert_eq!(h.subscribe(1, "private/x", q(QoS::AtMostOnce)), [0x87]);
    h.publish(1, "secret/a", b"x", QoS::AtLeastOnce, false);
    let got = h.take(1);
    let Packet::PubAck(ack) = got[0].packet() else { panic!() };
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    h.connect(2, V3, "c3", true);
    assert_eq!(h.subscribe(2, "private/#", q(QoS::AtMostOnce)), [0x80]);
}

// ------------------------------------------------------------------ sessions

#[test]
fn persistent_session_queues_and_redelivers() {
    let mut h = H::new();
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
    let mut h = H::new();
    let p = props(&[Property::SessionExpiryInterval(30)]);
    let mut c = Connect::new(V5, MqttStr::new("e").unwrap(), true, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    h.connect_with(1, c.clone());
    h.send(1, &Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
    assert_eq!(h.closed[&1], CloseReason::ClientDisconnect);
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
    let mut h = H::new();
    h.connect(1, V5, "z", true);
    let d = props(&[Property::SessionExpiryInterval(5)]);
    let mut disc = Disconnect::new(ReasonCode::SUCCESS);
    disc.properties = d.properties(PropertyContext::Disconnect).unwrap();
    h.send(1, &Packet::Disconnect(disc));
    assert_eq!(disconnect_code(&h.take(1)[0]), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn client_receive_maximum_limits_inflight() {
    let mut h = H::new();
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
    let mut h = H::with(Config { sys_interval_secs: 0, receive_maximum: 2, ..Config::default() });
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
    let mut h = H::with(Config { sys_interval_secs: 0, max_queued_messages: 2, ..Config::default() });
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

// ------------------------------------------------------------------ will

fn will_connect<'a>(client: &'a str, delay: Option<&'a PropertiesBuf>, expiry: u32) -> Connect<'a> {
    let mut c = Connect::new(V5, MqttStr::new(client).unwrap(), true, 10);
    let mut w = Will {
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::EMPTY,
        topic: TopicName::new("will/t").unwrap(),
        payload: b"gone",
    };
    if let Some(p) = delay {
        w.properties = p.properties(PropertyContext::Will).unwrap();
    }
    c.will = Some(w);
    c.properties = Properties::EMPTY;
    let _ = expiry;
    c
}

fn watcher(h: &mut H, id: u64) {
    h.connect(id, V5, &format!("watch{id}"), true);
    h.subscribe(id, "will/#", q(QoS::AtLeastOnce));
}

#[test]
fn will_on_abnormal_close_not_on_disconnect() {
    let mut h = H::new();
    watcher(&mut h, 9);
    h.connect_with(1, will_connect("w1", None, 0));
    h.core.connection_closed(ConnId(1), h.now);
    assert_eq!(h.publishes(9).len(), 1);
    h.connect_with(2, will_connect("w2", None, 0));
    h.send(2, &Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
    assert!(h.publishes(9).is_empty());
    h.connect_with(3, will_connect("w3", None, 0));
    h.send(3, &Packet::Disconnect(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE)));
    assert_eq!(h.publishes(9).len(), 1);
}

#[test]
fn will_on_keep_alive_timeout() {
    let mut h = H::new();
    h.connect_with(1, will_connect("w1", None, 0));
    watcher(&mut h, 9);
    h.advance(Duration::from_secs(16));
    assert_eq!(h.closed[&1], CloseReason::KeepAliveTimeout);
    assert_eq!(h.publishes(9).len(), 1);
}

#[test]
fn will_delay_and_cancel_on_reconnect() {
    let mut h = H::new();
    watcher(&mut h, 9);
    let delay = props(&[Property::WillDelayInterval(5)]);
    let expiry = props(&[Property::SessionExpiryInterval(100)]);
    let mut c = will_connect("wd", Some(&delay), 0);
    c.properties = expiry.properties(PropertyContext::Connect).unwrap();
    h.connect_with(1, c.clone());
    h.core.connection_closed(ConnId(1), h.now);
    h.advance(Duration::from_secs(3));
    assert!(h.publishes(9).is_empty());
    // Reconnect within the delay: never published [MQTT-3.1.3-9].
    let mut again = c.clone();
    again.clean_start = false;
    again.will = None;
    h.connect_with(2, again);
    h.advance(Duration::from_secs(10));
    assert!(h.publishes(9).is_empty());
    // Now a delayed will that fires.
    h.core.connection_closed(ConnId(2), h.now);
    h.connect_with(3, c);
    h.core.connection_closed(ConnId(3), h.now);
    h.advance(Duration::from_secs(4));
    assert!(h.publishes(9).is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(h.publishes(9).len(), 1);
}

#[test]
fn retained_will() {
    let mut h = H::new();
    let mut c = will_connect("wr", None, 0);
    if let Some(w) = &mut c.will {
        w.retain = true;
    }
    h.connect_with(1, c);
    h.core.connection_closed(ConnId(1), h.now);
    assert_eq!(h.core.retained_count(), 1);
}

// ------------------------------------------------------------------ 5.0 extras

#[test]
fn topic_alias_from_client() {
    let mut h = H::new();
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
    let mut h = H::new();
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
    let mut h2 = H::new();
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
    let mut h = H::new();
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
fn sys_topics_published() {
    let mut h = H::with(Config { sys_interval_secs: 5, ..Config::default() });
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
    let mut h = H::with(Config { sys_interval_secs: 0, max_connections: 1, ..Config::default() });
    h.connect(1, V5, "a", true);
    let ack = h.connect(2, V5, "b", true);
    assert_eq!(connack_code(&ack).1, ReasonCode::QUOTA_EXCEEDED);
}

#[test]
fn v31_connect_accepted() {
    let mut h = H::new();
    let ack = h.connect(1, ProtocolVersion::V3_1, "old", true);
    assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
}

#[test]
fn topic_limits() {
    let mut h =
        H::with(Config { sys_interval_secs: 0, max_topic_levels: 3, max_topic_length: 10, ..Config::default() });
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
    let mut h = H::new();
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
    let mut h = H::new();
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
    assert_eq!(kinds(&h.take(2)), [mqttkit_codec::PacketType::UnsubAck]);
}

#[test]
fn deterministic_outputs() {
    fn run() -> Vec<Vec<Bytes>> {
        let mut h = H::with(Config { sys_interval_secs: 1, ..Config::default() });
        h.advance(Duration::ZERO);
        for (i, c) in ["a", "b", "c"].into_iter().enumerate() {
            h.connect(i as u64 + 1, V5, c, true);
            h.subscribe(i as u64 + 1, "t/#", q(QoS::ExactlyOnce));
        }
        h.connect(9, V5, "", true);
        h.publish(9, "t/1", b"x", QoS::ExactlyOnce, true);
        h.advance(Duration::from_secs(3));
        std::mem::take(&mut h.inbox).into_values().collect()
    }
    assert_eq!(run(), run());
}

#[test]
fn response_information_on_request() {
    let mut h = H::new();
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

// ------------------------------------------------------------------ timers at scale

/// The deadline indexes mirror the state they summarise, and `poll_timeout` is the
/// earliest deadline a full scan finds.
fn assert_timer_index(core: &Core) {
    let connect_timeout = core.config.connect_timeout();
    let mut scan: Vec<Instant> = Vec::new();
    for (id, conn) in &core.conns {
        let expected = match conn.state {
            super::ConnState::AwaitConnect => Some(conn.opened_at + connect_timeout),
            super::ConnState::Active => super::keep_alive_deadline(conn),
        };
        assert_eq!(conn.deadline, expected, "{id:?}");
        if let Some(at) = expected {
            assert!(core.conn_timers.contains(&(at, *id)));
            scan.push(at);
        }
    }
    assert_eq!(core.conn_timers.len(), core.conns.values().filter(|c| c.deadline.is_some()).count());
    for (client, session) in &core.sessions {
        if let Some(at) = session.expires_at {
            assert!(session.conn.is_none());
            assert!(core.session_timers.contains(&(at, client.clone())));
            scan.push(at);
        }
    }
    assert_eq!(core.session_timers.len(), core.sessions.values().filter(|s| s.expires_at.is_some()).count());
    let _ = core.wills.len();
    scan.extend(core.wills.next_deadline());
    scan.extend(core.next_sys);
    assert_eq!(core.poll_timeout(), scan.into_iter().min());
}

#[test]
fn five_thousand_connections_timers_fire_exactly() {
    // Correctness (not speed) of the deadline indexes: 5,000 connections with different
    // keep-alives, pings, session expiry and will delays; every close and every will
    // happens at exactly the modelled instant.
    const N: u64 = 5_000;
    let mut h = H::with(Config { sys_interval_secs: 0, max_connections: 10_000, ..Config::default() });
    let t0 = h.now;
    let s = Duration::from_secs;
    h.connect(0, V5, "watcher", true);
    h.subscribe(0, "will/#", q(QoS::AtMostOnce));
    let mut expect_close: BTreeMap<u64, (Instant, CloseReason)> = BTreeMap::new();
    let mut expect_will: BTreeMap<String, Instant> = BTreeMap::new();
    let mut pings: std::collections::BTreeSet<(Instant, u64)> = std::collections::BTreeSet::new();
    for i in 1..=N {
        h.open(i);
        if i % 5 == 0 {
            expect_close.insert(i, (t0 + s(10), CloseReason::ConnectTimeout));
            continue;
        }
        let ka = 1 + (i % 37);
        let expiry = if i % 3 == 0 { 0 } else { (i % 11) + 1 };
        let delay = i % 7;
        let client = format!("c{i}");
        let topic = format!("will/{i}");
        let connect_props = props(&[Property::SessionExpiryInterval(expiry as u32)]);
        let will_props = props(&[Property::WillDelayInterval(delay as u32)]);
        let mut c = Connect::new(V5, MqttStr::new(&client).unwrap(), true, ka as u16);
        c.properties = connect_props.properties(PropertyContext::Connect).unwrap();
        c.will = Some(Will {
            qos: QoS::AtMostOnce,
            retain: false,
            properties: will_props.properties(PropertyContext::Will).unwrap(),
            topic: TopicName::new(&topic).unwrap(),
            payload: b"x",
        });
        let ack = h.connect_with(i, c);
        assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
        let close_at = if i % 2 == 0 {
            pings.insert((t0 + s(ka), i));
            t0 + s(ka) + Duration::from_millis(ka * 1500)
        } else {
            t0 + Duration::from_millis(ka * 1500)
        };
        expect_close.insert(i, (close_at, CloseReason::KeepAliveTimeout));
        let will_delay = if delay > 0 && expiry > 0 { delay.min(expiry) } else { 0 };
        expect_will.insert(topic, close_at + s(will_delay));
    }
    h.inbox.clear();
    assert_timer_index(&h.core);

    let end = t0 + s(200);
    let mut closed_at: BTreeMap<u64, (Instant, CloseReason)> = BTreeMap::new();
    let mut wills_at: BTreeMap<String, Instant> = BTreeMap::new();
    let mut steps = 0u32;
    loop {
        let next_ping = pings.first().map(|p| p.0);
        let Some(next) = [h.core.poll_timeout(), next_ping].into_iter().flatten().min() else { break };
        if next > end {
            break;
        }
        h.now = next;
        while let Some(&(at, id)) = pings.first()
            && at == next
        {
            pings.remove(&(at, id));
            h.send(id, &Packet::PingReq);
            assert_eq!(kinds(&h.take(id)), [mqttkit_codec::PacketType::PingResp]);
        }
        h.core.handle_timeout(next);
        while let Some(out) = h.core.poll_output() {
            match out {
                Output::Close(id, reason) => assert!(closed_at.insert(id.0, (next, reason)).is_none()),
                Output::Send(ConnId(0), bytes) => {
                    let packet = mqttkit_codec::OwnedPacket::from_frame(bytes, V5).unwrap();
                    let Packet::Publish(p) = packet.packet() else { panic!("{packet:?}") };
                    assert!(wills_at.insert(p.topic.to_string(), next).is_none());
                }
                // DISCONNECT 0x8D before a keep-alive close.
                Output::Send(..) => {}
            }
        }
        steps += 1;
        if steps % 50 == 0 {
            assert_timer_index(&h.core);
        }
    }
    assert_eq!(closed_at.len(), expect_close.len());
    assert_eq!(closed_at, expect_close);
    assert_eq!(wills_at, expect_will);
    assert_eq!(h.core.connection_count(), 1);
    assert_eq!(h.core.session_count(), 1, "every other session expired");
    assert_eq!(h.core.poll_timeout(), None);
    assert_timer_index(&h.core);
}

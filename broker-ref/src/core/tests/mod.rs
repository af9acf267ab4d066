//! Core tests, driven in memory on a simulated clock through [`crate::testing::Harness`].
//! One module per concern; what they share is here.

mod connect;
mod keep_alive;
mod persistence;
mod publish;
mod sessions;
mod slow_consumer;
mod timers;
mod v5;
mod wills;

use mqttkit_codec::{
    Connect, MqttStr, OwnedPacket, Packet, PacketType, Properties, PropertiesBuf, PropertyContext, ProtocolVersion,
    QoS, ReasonCode, SubscriptionOptions, TopicName, Will,
};

use crate::testing::Harness;

const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn q(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::qos(qos)
}

fn connack_code(p: &OwnedPacket) -> (bool, ReasonCode) {
    match p.packet() {
        Packet::ConnAck(c) => (c.session_present, c.code),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

fn kinds(packets: &[OwnedPacket]) -> Vec<PacketType> {
    packets.iter().map(|p| p.packet().packet_type()).collect()
}

fn disconnect_code(p: &OwnedPacket) -> ReasonCode {
    match p.packet() {
        Packet::Disconnect(d) => d.reason_code,
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
}

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

fn watcher(h: &mut Harness, id: u64) {
    h.connect(id, V5, &format!("watch{id}"), true);
    h.subscribe(id, "will/#", q(QoS::AtLeastOnce));
}

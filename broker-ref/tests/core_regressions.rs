//! Regression tests for bugs found by the `broker_core` fuzz invariants, driven through
//! the public sans-IO API on a simulated clock.

use mqttkit_broker::Config;
use mqttkit_broker::testing::{Harness, quiet_config};
use mqttkit_codec::{
    Connect, MqttStr, OwnedPacket, Packet, PacketId, PropertiesBuf, Property, PropertyContext, ProtocolVersion,
    PublishResponse, QoS, SubscriptionOptions,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// Open `id` and CONNECT (5.0) as `client` with Clean Start 0, a long session and these
/// extra CONNECT properties; everything received.
fn connect(h: &mut Harness, id: u64, client: &str, extra: &[Property<'_>]) -> Vec<OwnedPacket> {
    let mut props = PropertiesBuf::new();
    props.push(Property::SessionExpiryInterval(600)).unwrap();
    for p in extra {
        props.push(*p).unwrap();
    }
    let mut c = Connect::new(V5, MqttStr::new(client).unwrap(), false, 0);
    c.properties = props.properties(PropertyContext::Connect).unwrap();
    h.open(id);
    h.set_version(id, V5);
    h.send(id, &Packet::Connect(c));
    h.take(id)
}

fn subscribe(h: &mut Harness, id: u64, filter: &str) {
    h.subscribe(id, filter, SubscriptionOptions::qos(QoS::AtLeastOnce));
}

/// A QoS 1 PUBLISH (its PUBACK stays in the harness).
fn publish(h: &mut Harness, id: u64, topic: &str, payload: &[u8]) {
    h.publish(id, topic, payload, QoS::AtLeastOnce, false);
}

/// (packet id, dup, payload length) of every PUBLISH.
fn publishes(packets: &[OwnedPacket]) -> Vec<(u16, bool, usize)> {
    packets
        .iter()
        .filter_map(|p| match p.packet() {
            Packet::Publish(p) => Some((p.qos.packet_id().map_or(0, |id| id.get()), p.dup, p.payload.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn refused_connack_respects_client_maximum_packet_size() {
    // A refusal CONNACK (5 bytes) was sent to a client whose Maximum Packet Size is 4
    // [MQTT-3.1.2-24]: it must be dropped; the connection is still closed.
    let users = [("u".into(), mqttkit_broker::testing::hashed("p"))].into_iter().collect();
    let mut h = Harness::new(Config { users, allow_anonymous: false, ..quiet_config() });
    let got = connect(&mut h, 1, "x", &[Property::MaximumPacketSize(4)]);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(h.core.connection_count(), 0);
}

#[test]
fn resent_publish_respects_new_maximum_packet_size() {
    // An unacknowledged QoS 1 PUBLISH was re-sent on reconnect without checking the new
    // connection's Maximum Packet Size. It is now discarded as if delivered
    // [MQTT-3.1.2-25], and later messages still flow.
    let mut h = Harness::new(quiet_config());
    connect(&mut h, 1, "sub", &[]);
    subscribe(&mut h, 1, "t");
    connect(&mut h, 2, "pub", &[]);
    publish(&mut h, 2, "t", &[b'x'; 40]);
    let got = h.take(1);
    assert_eq!(publishes(&got), [(1, false, 40)]);
    h.close_abruptly(1);
    let got = connect(&mut h, 3, "sub", &[Property::MaximumPacketSize(30)]);
    assert!(publishes(&got).is_empty(), "{got:?}");
    publish(&mut h, 2, "t", b"small");
    let got = h.take(3);
    assert_eq!(publishes(&got), [(2, false, 5)]);
}

#[test]
fn resend_after_reconnect_respects_receive_maximum() {
    // Every unacknowledged PUBLISH was re-sent on reconnect even when the new connection's
    // Receive Maximum was smaller [MQTT-3.3.4-9]. Now the re-sends stay within the window,
    // in order, and continue as acknowledgements arrive.
    let mut h = Harness::new(quiet_config());
    connect(&mut h, 1, "sub", &[Property::ReceiveMaximum(4)]);
    subscribe(&mut h, 1, "t");
    connect(&mut h, 2, "pub", &[]);
    for _ in 0..4 {
        publish(&mut h, 2, "t", b"m");
    }
    let got = h.take(1);
    assert_eq!(publishes(&got).len(), 4);
    h.close_abruptly(1);
    let got = connect(&mut h, 3, "sub", &[Property::ReceiveMaximum(2)]);
    assert_eq!(publishes(&got), [(1, true, 1), (2, true, 1)]);
    h.send(3, &Packet::PubAck(PublishResponse::new(PacketId::new(1).unwrap())));
    let got = h.take(3);
    assert_eq!(publishes(&got), [(3, true, 1)]);
    h.send(3, &Packet::PubAck(PublishResponse::new(PacketId::new(2).unwrap())));
    h.send(3, &Packet::PubAck(PublishResponse::new(PacketId::new(3).unwrap())));
    let got = h.take(3);
    assert_eq!(publishes(&got), [(4, true, 1)]);
    // A new message waits for the window too.
    publish(&mut h, 2, "t", b"new");
    let got = h.take(3);
    assert_eq!(publishes(&got), [(5, false, 3)]);
}

#[test]
fn shared_subscription_removed_after_session_resumed_with_v3() {
    // Found by `cargo fuzz run broker_core`: a 5.0 session subscribed `$share/g/t/#`, was
    // resumed by a 3.1.1 connection, then ended (Clean Start). Its subscriptions were
    // removed by re-parsing the filters with the *current* version (3.1.1: not shared), so
    // the shared membership stayed, and a later, new session with the same client id
    // received messages it never subscribed to.
    let mut h = Harness::new(quiet_config());
    connect(&mut h, 1, "b", &[]);
    subscribe(&mut h, 1, "$share/g/t/#");
    h.close_abruptly(1);
    h.connect_with(2, Connect::new(ProtocolVersion::V3_1_1, MqttStr::new("b").unwrap(), false, 0));
    h.close_abruptly(2);
    // A new session for "b" (Clean Start 1) with no subscription.
    h.connect_with(3, Connect::new(V5, MqttStr::new("b").unwrap(), true, 0));
    assert!(h.take(3).is_empty(), "CONNACK only");
    connect(&mut h, 4, "pub", &[]);
    publish(&mut h, 4, "t/x", b"m");
    let got = h.take(3);
    assert!(publishes(&got).is_empty(), "delivered without a subscription: {got:?}");
}

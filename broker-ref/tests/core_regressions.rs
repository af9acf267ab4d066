//! Regression tests for bugs found by the `broker_core` fuzz invariants, driven through
//! the public sans-IO API on a simulated clock.

use std::net::SocketAddr;
use std::time::Instant;

use mqttkit_broker::Config;
use mqttkit_broker::core::{ConnId, Core, Output};
use mqttkit_codec::{
    Connect, MqttStr, OwnedPacket, Packet, PacketId, PacketType, PropertiesBuf, Property, PropertyContext,
    ProtocolVersion, Publish, PublishQoS, PublishResponse, QoS, Subscribe, SubscribeFiltersBuf, SubscriptionOptions,
    TopicFilter, TopicName,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

struct H {
    core: Core,
    now: Instant,
}

impl H {
    fn new(config: Config) -> Self {
        let now = Instant::now();
        Self { core: Core::new(Config { sys_interval_secs: 0, ..config }, now), now }
    }

    fn send(&mut self, id: u64, packet: &Packet<'_>) {
        self.send_v(id, packet, V5);
    }

    fn send_v(&mut self, id: u64, packet: &Packet<'_>, version: ProtocolVersion) {
        let mut bytes = Vec::new();
        packet.encode(version, &mut bytes).unwrap();
        self.core.handle_bytes(ConnId(id), &bytes, self.now);
    }

    /// Every packet sent to `id` since the last call, and whether it was closed.
    fn take(&mut self, id: u64) -> (Vec<OwnedPacket>, bool) {
        let mut packets = Vec::new();
        let mut closed = false;
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send(to, bytes) if to == ConnId(id) => {
                    let mut rest = bytes;
                    while !rest.is_empty() {
                        let frame = mqttkit_codec::parse_fixed_header(&rest, Some(V5), usize::MAX)
                            .unwrap()
                            .complete()
                            .unwrap()
                            .frame_len();
                        packets.push(OwnedPacket::from_frame(rest.split_to(frame), V5).unwrap());
                    }
                }
                Output::Close(to, _) if to == ConnId(id) => closed = true,
                _ => {}
            }
        }
        (packets, closed)
    }

    /// Open `id` and CONNECT as `client` with Clean Start 0, a long session and these
    /// extra CONNECT properties.
    fn connect(&mut self, id: u64, client: &str, extra: &[Property<'_>]) -> Vec<OwnedPacket> {
        self.core.connection_opened(ConnId(id), SocketAddr::from(([127, 0, 0, 1], 1)), self.now);
        let mut props = PropertiesBuf::new();
        props.push(Property::SessionExpiryInterval(600)).unwrap();
        for p in extra {
            props.push(*p).unwrap();
        }
        let mut c = Connect::new(V5, MqttStr::new(client).unwrap(), false, 0);
        c.properties = props.properties(PropertyContext::Connect).unwrap();
        self.send(id, &Packet::Connect(c));
        self.take(id).0
    }

    fn subscribe(&mut self, id: u64, filter: &str) {
        let mut buf = SubscribeFiltersBuf::new();
        buf.push(TopicFilter::new(filter).unwrap(), SubscriptionOptions::qos(QoS::AtLeastOnce));
        let sub = Subscribe {
            packet_id: PacketId::MIN,
            properties: mqttkit_codec::Properties::EMPTY,
            filters: buf.filters(V5).unwrap(),
        };
        self.send(id, &Packet::Subscribe(sub));
        let (got, _) = self.take(id);
        assert_eq!(got[0].packet().packet_type(), PacketType::SubAck);
    }

    /// A QoS 1 PUBLISH (its PUBACK is discarded).
    fn publish(&mut self, id: u64, topic: &str, payload: &[u8]) {
        let qos = PublishQoS::new(QoS::AtLeastOnce, PacketId::MIN);
        let p = Publish::new(TopicName::new(topic).unwrap(), qos, payload);
        self.send(id, &Packet::Publish(p));
    }
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
    let users = [("u".into(), "p".into())].into_iter().collect();
    let mut h = H::new(Config { users, allow_anonymous: false, ..Config::default() });
    let got = h.connect(1, "x", &[Property::MaximumPacketSize(4)]);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(h.core.connection_count(), 0);
}

#[test]
fn resent_publish_respects_new_maximum_packet_size() {
    // An unacknowledged QoS 1 PUBLISH was re-sent on reconnect without checking the new
    // connection's Maximum Packet Size. It is now discarded as if delivered
    // [MQTT-3.1.2-25], and later messages still flow.
    let mut h = H::new(Config::default());
    h.connect(1, "sub", &[]);
    h.subscribe(1, "t");
    h.connect(2, "pub", &[]);
    h.publish(2, "t", &[b'x'; 40]);
    let (got, _) = h.take(1);
    assert_eq!(publishes(&got), [(1, false, 40)]);
    h.core.connection_closed(ConnId(1), h.now);
    let got = h.connect(3, "sub", &[Property::MaximumPacketSize(30)]);
    assert!(publishes(&got).is_empty(), "{got:?}");
    h.publish(2, "t", b"small");
    let (got, _) = h.take(3);
    assert_eq!(publishes(&got), [(2, false, 5)]);
}

#[test]
fn resend_after_reconnect_respects_receive_maximum() {
    // Every unacknowledged PUBLISH was re-sent on reconnect even when the new connection's
    // Receive Maximum was smaller [MQTT-3.3.4-9]. Now the re-sends stay within the window,
    // in order, and continue as acknowledgements arrive.
    let mut h = H::new(Config::default());
    h.connect(1, "sub", &[Property::ReceiveMaximum(4)]);
    h.subscribe(1, "t");
    h.connect(2, "pub", &[]);
    for _ in 0..4 {
        h.publish(2, "t", b"m");
    }
    let (got, _) = h.take(1);
    assert_eq!(publishes(&got).len(), 4);
    h.core.connection_closed(ConnId(1), h.now);
    let got = h.connect(3, "sub", &[Property::ReceiveMaximum(2)]);
    assert_eq!(publishes(&got), [(1, true, 1), (2, true, 1)]);
    h.send(3, &Packet::PubAck(PublishResponse::new(PacketId::new(1).unwrap())));
    let (got, _) = h.take(3);
    assert_eq!(publishes(&got), [(3, true, 1)]);
    h.send(3, &Packet::PubAck(PublishResponse::new(PacketId::new(2).unwrap())));
    h.send(3, &Packet::PubAck(PublishResponse::new(PacketId::new(3).unwrap())));
    let (got, _) = h.take(3);
    assert_eq!(publishes(&got), [(4, true, 1)]);
    // A new message waits for the window too.
    h.publish(2, "t", b"new");
    let (got, _) = h.take(3);
    assert_eq!(publishes(&got), [(5, false, 3)]);
}

#[test]
fn shared_subscription_removed_after_session_resumed_with_v3() {
    // Found by `cargo fuzz run broker_core`: a 5.0 session subscribed `$share/g/t/#`, was
    // resumed by a 3.1.1 connection, then ended (Clean Start). Its subscriptions were
    // removed by re-parsing the filters with the *current* version (3.1.1: not shared), so
    // the shared membership stayed, and a later, new session with the same client id
    // received messages it never subscribed to.
    let mut h = H::new(Config::default());
    h.connect(1, "b", &[]);
    h.subscribe(1, "$share/g/t/#");
    h.core.connection_closed(ConnId(1), h.now);
    h.core.connection_opened(ConnId(2), SocketAddr::from(([127, 0, 0, 1], 2)), h.now);
    let v3 = Connect::new(ProtocolVersion::V3_1_1, MqttStr::new("b").unwrap(), false, 0);
    h.send_v(2, &Packet::Connect(v3), ProtocolVersion::V3_1_1);
    h.core.connection_closed(ConnId(2), h.now);
    // A new session for "b" (Clean Start 1) with no subscription.
    h.core.connection_opened(ConnId(3), SocketAddr::from(([127, 0, 0, 1], 3)), h.now);
    h.send(3, &Packet::Connect(Connect::new(V5, MqttStr::new("b").unwrap(), true, 0)));
    let (got, _) = h.take(3);
    assert_eq!(got.len(), 1, "CONNACK only");
    h.connect(4, "pub", &[]);
    h.publish(4, "t/x", b"m");
    let (got, _) = h.take(3);
    assert!(publishes(&got).is_empty(), "delivered without a subscription: {got:?}");
}

//! Persistence with real processes: the broker binary is killed with SIGKILL (`kill -9`)
//! after acknowledging retained, queued QoS 1 and QoS 2 messages, and restarted from its
//! store: nothing acknowledged is lost, a QoS 2 message is not delivered twice, and what
//! expired while the broker was down is not delivered.

mod common;

use std::time::Duration;

use common::{BrokerProcess, Client, free_port};
use mqttkit_codec::{
    Connect, MqttStr, OwnedPacket, Packet, PacketId, Properties, PropertiesBuf, Property, PropertyContext,
    ProtocolVersion, Publish, PublishQoS, PublishResponse, QoS, ReasonCode, Subscribe, SubscribeFiltersBuf,
    SubscriptionOptions, TopicFilter, TopicName,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// Connect with Clean Start 0 and a one-hour session.
async fn connect_persistent(addr: std::net::SocketAddr, id: &str) -> (Client, bool) {
    let mut c = Client::open(addr, V5).await;
    let mut props = PropertiesBuf::new();
    props.push(Property::SessionExpiryInterval(3600)).unwrap();
    let mut connect = Connect::new(V5, MqttStr::new(id).unwrap(), false, 30);
    connect.properties = props.properties(PropertyContext::Connect).unwrap();
    c.send(&Packet::Connect(connect)).await;
    let ack = c.recv().await.expect("CONNACK");
    let Packet::ConnAck(ack) = ack.packet() else { panic!("expected CONNACK, got {ack:?}") };
    assert_eq!(ack.code, ReasonCode::SUCCESS);
    (c, ack.session_present)
}

async fn publish(c: &mut Client, topic: &str, payload: &[u8], qos: QoS, id: u16, retain: bool, expiry: Option<u32>) {
    let mut props = PropertiesBuf::new();
    if let Some(expiry) = expiry {
        props.push(Property::MessageExpiryInterval(expiry)).unwrap();
    }
    let mut p = Publish::new(TopicName::new(topic).unwrap(), PublishQoS::new(qos, pid(id)), payload);
    p.retain = retain;
    p.properties = props.properties(PropertyContext::Publish).unwrap_or(Properties::EMPTY);
    c.send(&Packet::Publish(p)).await;
}

async fn expect(c: &mut Client, what: &str, matches: impl Fn(&Packet<'_>) -> bool) -> OwnedPacket {
    let got = c.recv().await.unwrap_or_else(|| panic!("connection closed, expected {what}"));
    assert!(matches(&got.packet()), "expected {what}, got {got:?}");
    got
}

async fn subscribe(c: &mut Client, filter: &str) {
    let mut f = SubscribeFiltersBuf::new();
    f.push(TopicFilter::new(filter).unwrap(), SubscriptionOptions::qos(QoS::ExactlyOnce));
    let sub = Subscribe { packet_id: pid(1), properties: Properties::EMPTY, filters: f.filters(V5).unwrap() };
    c.send(&Packet::Subscribe(sub)).await;
    expect(c, "SUBACK", |p| matches!(p, Packet::SubAck(_))).await;
}

/// The PUBLISH packets that arrive within `quiet` of each other, acknowledged as they come
/// (QoS 2 completed); `(topic, payload, dup)`.
async fn receive_all(c: &mut Client, quiet: Duration) -> Vec<(String, Vec<u8>, bool)> {
    let mut got = Vec::new();
    while let Ok(Some(packet)) = tokio::time::timeout(quiet, c.recv()).await {
        match packet.packet() {
            Packet::Publish(p) => {
                got.push((p.topic.to_string(), p.payload.to_vec(), p.dup));
                match (p.qos.qos(), p.qos.packet_id()) {
                    (QoS::AtLeastOnce, Some(id)) => c.send(&Packet::PubAck(PublishResponse::new(id))).await,
                    (QoS::ExactlyOnce, Some(id)) => c.send(&Packet::PubRec(PublishResponse::new(id))).await,
                    _ => {}
                }
            }
            Packet::PubRel(rel) => c.send(&Packet::PubComp(PublishResponse::new(rel.packet_id))).await,
            other => panic!("unexpected {other:?}"),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb");
    let config = format!("sys_interval_secs = 0\npersistence = {:?}\n", store.display().to_string());
    let port = free_port();
    let broker = BrokerProcess::start(dir.path(), "first", &config, port);
    let addr = broker.addr();

    // A subscriber with a persistent session goes away.
    let (mut sub, present) = connect_persistent(addr, "sub").await;
    assert!(!present);
    subscribe(&mut sub, "q/#").await;
    sub.send(&Packet::Disconnect(mqttkit_codec::Disconnect::new(ReasonCode::SUCCESS))).await;
    assert!(sub.recv().await.is_none());

    // A publisher (persistent session too) sends while it is away; every
    // acknowledgement means the store has the message.
    let (mut publ, _) = connect_persistent(addr, "pub").await;
    publish(&mut publ, "r/1", b"retained", QoS::AtLeastOnce, 1, true, None).await;
    expect(&mut publ, "PUBACK", |p| matches!(p, Packet::PubAck(a) if a.packet_id == pid(1))).await;
    publish(&mut publ, "q/1", b"qos1", QoS::AtLeastOnce, 2, false, None).await;
    expect(&mut publ, "PUBACK", |p| matches!(p, Packet::PubAck(a) if a.packet_id == pid(2))).await;
    publish(&mut publ, "q/2", b"qos2", QoS::ExactlyOnce, 3, false, None).await;
    expect(&mut publ, "PUBREC", |p| matches!(p, Packet::PubRec(a) if a.packet_id == pid(3))).await;
    publ.send(&Packet::PubRel(PublishResponse::new(pid(3)))).await;
    expect(&mut publ, "PUBCOMP", |p| matches!(p, Packet::PubComp(a) if a.packet_id == pid(3))).await;
    publish(&mut publ, "q/expiring", b"gone", QoS::AtLeastOnce, 4, false, Some(1)).await;
    expect(&mut publ, "PUBACK", |p| matches!(p, Packet::PubAck(a) if a.packet_id == pid(4))).await;
    // Received (PUBREC) but not released: the broker must remember it was delivered.
    publish(&mut publ, "q/3", b"qos2-unreleased", QoS::ExactlyOnce, 5, false, None).await;
    expect(&mut publ, "PUBREC", |p| matches!(p, Packet::PubRec(a) if a.packet_id == pid(5))).await;

    broker.kill9();
    drop(publ);
    // Long enough for the expiring message to expire while the broker is down.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let broker = BrokerProcess::start(dir.path(), "second", &config, port);
    let log = broker.wait_log("persistent store opened");
    assert!(log.contains("persistent store opened") && log.contains("sessions=2"), "{log}");

    // The publisher re-sends its unreleased QoS 2 PUBLISH: acknowledged, not routed again.
    let (mut publ, present) = connect_persistent(addr, "pub").await;
    assert!(present, "the publisher's session survived");
    let mut again =
        Publish::new(TopicName::new("q/3").unwrap(), PublishQoS::new(QoS::ExactlyOnce, pid(5)), b"qos2-unreleased");
    again.dup = true;
    publ.send(&Packet::Publish(again)).await;
    expect(&mut publ, "PUBREC", |p| matches!(p, Packet::PubRec(a) if a.packet_id == pid(5))).await;
    publ.send(&Packet::PubRel(PublishResponse::new(pid(5)))).await;
    expect(&mut publ, "PUBCOMP", |p| matches!(p, Packet::PubComp(a) if a.packet_id == pid(5))).await;

    let (mut sub, present) = connect_persistent(addr, "sub").await;
    assert!(present, "the subscriber's session survived");
    let got = receive_all(&mut sub, Duration::from_millis(500)).await;
    let payloads: Vec<&[u8]> = got.iter().map(|(_, p, _)| p.as_slice()).collect();
    assert_eq!(payloads, [&b"qos1"[..], b"qos2", b"qos2-unreleased"], "{got:?}");
    subscribe(&mut sub, "r/#").await;
    let retained = receive_all(&mut sub, Duration::from_millis(300)).await;
    assert_eq!(retained.len(), 1, "{retained:?}");
    assert_eq!(retained[0].1, b"retained");

    // Delivered and acknowledged: gone from the store after another restart.
    broker.kill9();
    let broker = BrokerProcess::start(dir.path(), "third", &config, port);
    let (mut sub, present) = connect_persistent(addr, "sub").await;
    assert!(present);
    let got = receive_all(&mut sub, Duration::from_millis(300)).await;
    assert!(got.is_empty(), "delivered twice: {got:?}");
    drop(broker);
}

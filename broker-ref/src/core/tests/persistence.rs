//! Persistence in the core: the write barrier (nothing is sent that the store does not
//! hold yet), the records, and a restart from them.

use super::*;

use std::time::Duration;

use mqttkit_codec::{Connect, MqttStr, Property, PropertyContext, Publish, PublishQoS, PublishResponse};

use crate::config::Config;
use crate::testing::{Harness, pid, props, quiet_config};

fn durable() -> Harness {
    Harness::new(Config { persistence: Some("in-memory".into()), ..quiet_config() })
}

/// A 5.0 CONNECT with Clean Start 0 and a Session Expiry Interval.
fn connect_persistent(h: &mut Harness, id: u64, client: &str, expiry: u32) -> OwnedPacket {
    let p = props(&[Property::SessionExpiryInterval(expiry)]);
    let mut c = Connect::new(V5, MqttStr::new(client).unwrap(), false, 0);
    c.properties = p.properties(PropertyContext::Connect).unwrap();
    h.connect_with(id, c)
}

fn publish_with_id(h: &mut Harness, id: u64, topic: &str, payload: &[u8], qos: QoS, packet_id: u16) {
    let p = Publish::new(TopicName::new(topic).unwrap(), PublishQoS::new(qos, pid(packet_id)), payload);
    h.send(id, &Packet::Publish(p));
}

#[test]
fn acknowledgements_and_deliveries_wait_for_the_store() {
    let mut h = durable();
    connect_persistent(&mut h, 1, "sub", 3600);
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.connect(2, V5, "pub", true);
    h.hold_writes = true;
    let before = h.store.batches;
    h.publish(2, "t", b"m1", QoS::AtLeastOnce, false);
    // The PUBACK does not go out before the store has the message; the QoS 1 delivery
    // does (a crash could only repeat it).
    assert!(h.take(2).is_empty());
    assert_eq!(h.publishes(1).len(), 1);
    h.write_batches();
    assert_eq!(h.store.batches, before + 1);
    assert!(h.store.clients["sub"].session.is_some(), "session stored");
    let stored: Vec<_> = h.store.entries.iter().filter(|((c, _), _)| c == "sub").collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].1.1.message.payload, b"m1");
    assert!(matches!(h.take(2)[0].packet(), Packet::PubAck(_)));
    // Acknowledged: the store forgets it.
    h.send(1, &Packet::PubAck(PublishResponse::new(pid(1))));
    h.write_batches();
    assert!(h.store.entries.is_empty(), "{:?}", h.store.entries);
}

#[test]
fn a_qos2_delivery_and_its_pubrel_wait_for_the_store() {
    let mut h = durable();
    connect_persistent(&mut h, 1, "sub", 3600);
    h.subscribe(1, "t", q(QoS::ExactlyOnce));
    h.connect(2, V5, "pub", true);
    h.hold_writes = true;
    h.publish(2, "t", b"once", QoS::ExactlyOnce, false);
    // Delivered before the store knew, a crash would deliver it again.
    assert!(h.publishes(1).is_empty());
    h.write_batches();
    assert_eq!(h.publishes(1).len(), 1);
    h.send(1, &Packet::PubRec(PublishResponse::new(pid(1))));
    assert!(h.take(1).is_empty(), "PUBREL before the Released state is stored");
    h.write_batches();
    assert_eq!(kinds(&h.take(1)), [PacketType::PubRel]);
}

#[test]
fn clean_sessions_never_wait() {
    let mut h = durable();
    h.hold_writes = true;
    h.connect(1, V3, "sub", true);
    h.subscribe(1, "t", q(QoS::ExactlyOnce));
    h.connect(2, V3, "pub", true);
    publish_with_id(&mut h, 2, "t", b"x", QoS::ExactlyOnce, 7);
    assert_eq!(kinds(&h.take(2)), [PacketType::PubRec]);
    assert_eq!(h.publishes(1).len(), 1);
    assert!(h.core.take_batch(h.now, h.wall_ms()).is_none(), "nothing durable changed");
}

#[test]
fn queued_messages_retained_and_qos2_state_survive_a_restart() {
    let mut h = durable();
    connect_persistent(&mut h, 1, "sub", 3600);
    h.subscribe(1, "q/#", q(QoS::ExactlyOnce));
    h.close_abruptly(1);
    connect_persistent(&mut h, 2, "pub", 3600);
    h.publish(2, "q/1", b"one", QoS::AtLeastOnce, false);
    h.publish(2, "q/2", b"two", QoS::ExactlyOnce, false);
    h.publish(2, "r", b"kept", QoS::AtLeastOnce, true);
    // A QoS 2 PUBLISH received (PUBREC sent), its PUBREL not yet.
    publish_with_id(&mut h, 2, "q/3", b"three", QoS::ExactlyOnce, 9);
    h.take(2);
    let mut h = h.restart(Duration::from_secs(5));
    assert_eq!(h.core.retained_count(), 1);
    // The publisher re-sends the unreleased QoS 2 message: not delivered twice.
    connect_persistent(&mut h, 3, "pub", 3600);
    let mut again = Publish::new(TopicName::new("q/3").unwrap(), PublishQoS::new(QoS::ExactlyOnce, pid(9)), b"three");
    again.dup = true;
    h.send(3, &Packet::Publish(again));
    assert_eq!(kinds(&h.take(3)), [PacketType::PubRec]);
    h.send(3, &Packet::PubRel(PublishResponse::new(pid(9))));
    assert_eq!(kinds(&h.take(3)), [PacketType::PubComp]);
    let ack = connect_persistent(&mut h, 4, "sub", 3600);
    assert_eq!(connack_code(&ack), (true, ReasonCode::SUCCESS));
    let got: Vec<Vec<u8>> = h.publishes(4).into_iter().map(|p| p.1).collect();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    h.subscribe(4, "r", q(QoS::AtLeastOnce));
    assert_eq!(h.publishes(4)[0].1, b"kept");
}

#[test]
fn expiry_counts_across_the_restart() {
    let mut h = durable();
    connect_persistent(&mut h, 1, "sub", 60);
    h.subscribe(1, "t", q(QoS::AtLeastOnce));
    h.close_abruptly(1);
    h.connect(2, V5, "pub", true);
    // One message that expires in 10 s, one that does not expire.
    let p = props(&[Property::MessageExpiryInterval(10)]);
    let mut short = Publish::new(TopicName::new("t").unwrap(), PublishQoS::new(QoS::AtLeastOnce, pid(1)), b"short");
    short.properties = p.properties(PropertyContext::Publish).unwrap();
    h.send(2, &Packet::Publish(short));
    h.publish(2, "t", b"long", QoS::AtLeastOnce, false);
    // Down for 30 s: the short one expired, the session (60 s) not yet.
    let mut h = h.restart(Duration::from_secs(30));
    assert_eq!(h.core.session_count(), 1);
    let ack = connect_persistent(&mut h, 3, "sub", 60);
    assert!(connack_code(&ack).0);
    let got: Vec<Vec<u8>> = h.publishes(3).into_iter().map(|p| p.1).collect();
    assert_eq!(got, [b"long".to_vec()]);
    h.close_abruptly(3);
    // Down for 61 s: the session expired while the broker was down.
    let h = h.restart(Duration::from_secs(61));
    assert_eq!(h.core.session_count(), 0);
    assert!(h.store.clients.is_empty(), "{:?}", h.store.clients);
}

#[test]
fn a_will_of_an_open_connection_follows_the_restart() {
    let mut h = durable();
    watcher(&mut h, 1);
    // The watcher's session must survive the restart to receive the will.
    let mut c = will_connect("w", None, 0);
    c.clean_start = true;
    h.connect_with(2, c);
    connect_persistent(&mut h, 3, "late", 3600);
    h.subscribe(3, "will/#", q(QoS::AtLeastOnce));
    h.close_abruptly(3);
    assert!(h.store.clients["w"].will.is_some());
    // Killed while "w" is connected: its will is published at the restart.
    let mut h = h.restart(Duration::from_secs(1));
    connect_persistent(&mut h, 4, "late", 3600);
    let got = h.publishes(4);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "will/t");
}

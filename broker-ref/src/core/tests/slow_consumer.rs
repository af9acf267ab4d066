//! The slow-consumer policy: a connection whose socket does not take its bytes.

use super::*;

use std::time::Duration;

use mqttkit_codec::{Packet, Properties, PublishResponse, Subscribe, SubscribeFiltersBuf, TopicFilter};

use crate::config::Config;
use crate::core::{CloseReason, ConnId};
use crate::testing::{Harness, pid, quiet_config};

/// A subscriber (1, "sub", 3.1.1) of `t` at `qos` and a publisher (2).
fn setup(config: Config, qos: QoS) -> Harness {
    let mut h = Harness::new(config);
    h.connect(1, V3, "sub", true);
    h.subscribe(1, "t", q(qos));
    h.connect(2, V3, "pub", true);
    h
}

fn small_outbound() -> Config {
    Config { max_outbound_bytes: 1000, ..quiet_config() }
}

#[test]
fn full_outbound_queue_drops_qos0_counts_it_and_stops_reading() {
    let mut h = setup(small_outbound(), QoS::AtMostOnce);
    h.stall(1);
    for _ in 0..20 {
        h.publish(2, "t", &[7; 200], QoS::AtMostOnce, false);
    }
    // 206-byte packets: the fifth makes the queue full (≥ 1000 bytes); the rest are dropped.
    assert_eq!(h.core.pending_bytes(ConnId(1)), 5 * 206);
    assert_eq!(h.core.stats().messages_dropped, 15);
    assert!(!h.core.wants_input(ConnId(1)), "no reading from a connection whose queue is full");
    assert!(h.core.wants_input(ConnId(2)));
    assert_eq!(h.closed(1), None);
    // Reading again: what was queued arrives, in order, and the connection stays.
    h.resume(1);
    assert_eq!(h.publishes(1).len(), 5);
    assert!(h.core.wants_input(ConnId(1)));
    h.publish(2, "t", b"next", QoS::AtMostOnce, false);
    assert_eq!(h.publishes(1).len(), 1);
    assert_eq!(h.closed(1), None);
}

#[test]
fn full_outbound_queue_keeps_qos1_in_the_session() {
    let mut h = setup(small_outbound(), QoS::AtLeastOnce);
    h.stall(1);
    for _ in 0..20 {
        h.publish(2, "t", &[7; 200], QoS::AtLeastOnce, false);
    }
    assert_eq!(h.core.stats().messages_dropped, 0);
    assert_eq!(h.core.pending_bytes(ConnId(1)), 5 * 208, "sending stops once the queue is full");
    // As the socket takes bytes, the session's queue follows, in order, none lost.
    h.resume(1);
    let got = h.take(1);
    let ids: Vec<u16> = got
        .iter()
        .filter_map(|p| match p.packet() {
            Packet::Publish(p) => p.qos.packet_id().map(|id| id.get()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, (1..=20).collect::<Vec<u16>>());
    for id in ids {
        h.send(1, &Packet::PubAck(PublishResponse::new(pid(id))));
    }
    assert_eq!(h.core.stats().messages_dropped, 0);
}

#[test]
fn retained_messages_at_subscribe_are_not_dropped() {
    let mut h = Harness::new(small_outbound());
    h.connect(2, V3, "pub", true);
    for i in 0..20 {
        h.publish(2, &format!("r/{i}"), &[7; 200], QoS::AtMostOnce, true);
    }
    h.connect(1, V3, "sub", true);
    h.stall(1);
    let mut filters = SubscribeFiltersBuf::new();
    filters.push(TopicFilter::new("r/#").unwrap(), q(QoS::AtMostOnce));
    let sub = Subscribe { packet_id: pid(1), properties: Properties::EMPTY, filters: filters.filters(V3).unwrap() };
    h.send(1, &Packet::Subscribe(sub));
    h.resume(1);
    let got = h.take(1);
    assert_eq!(kinds(&got[..1]), [PacketType::SubAck]);
    // Every retained message, each with its own topic (one encoding per message).
    let mut topics: Vec<String> = got[1..]
        .iter()
        .filter_map(|p| match p.packet() {
            Packet::Publish(p) => Some(p.topic.to_string()),
            _ => None,
        })
        .collect();
    topics.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("r/{i}")).collect();
    expected.sort();
    assert_eq!(topics, expected);
}

#[test]
fn stalled_connection_is_closed_after_the_write_timeout_with_its_will() {
    let mut h = Harness::new(Config { write_timeout_secs: 30, ..small_outbound() });
    h.connect(9, V3, "watcher", true);
    h.subscribe(9, "will/#", q(QoS::AtMostOnce));
    let mut connect = will_connect("sub", None, 0);
    connect.keep_alive = 0;
    h.connect_with(1, connect);
    h.subscribe(1, "t", q(QoS::AtMostOnce));
    h.connect(2, V3, "pub", true);
    h.stall(1);
    h.publish(2, "t", &[7; 2000], QoS::AtMostOnce, false);
    h.advance(Duration::from_secs(29));
    assert_eq!(h.closed(1), None);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.closed(1), Some(&CloseReason::SlowConsumer));
    let will = h.publishes(9);
    assert_eq!(will.len(), 1, "the will of a stalled client is published");
    assert_eq!(will[0].0, "will/t");
}

#[test]
fn any_progress_restarts_the_write_timeout() {
    let mut h = setup(Config { write_timeout_secs: 30, ..small_outbound() }, QoS::AtMostOnce);
    h.stall(1);
    h.publish(2, "t", &[7; 2000], QoS::AtMostOnce, false);
    for _ in 0..10 {
        h.advance(Duration::from_secs(20));
        // A client that reads a little every 20 s is slow, not stuck.
        h.accept(1, 100);
    }
    assert_eq!(h.closed(1), None);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.closed(1), Some(&CloseReason::SlowConsumer));
}

#[test]
fn nothing_waiting_is_not_stalled() {
    // A client that reads nothing but has nothing waiting is not closed (keep alive 0).
    let mut h = setup(small_outbound(), QoS::AtMostOnce);
    h.stall(1);
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.closed(1), None);
}

//! Integration tests over real TCP on 127.0.0.1 with the in-process broker.

mod common;

use common::{Client, start, test_config};
use mqttkit_broker::Config;
use mqttkit_codec::{Packet, ProtocolVersion, PublishResponse, QoS, ReasonCode};

const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn publish_subscribe_qos1() {
    let broker = start(test_config()).await;
    let addr = broker.local_addr();
    let (mut sub, ack) = Client::connect(addr, V3, "sub", true).await;
    assert!(matches!(ack.packet(), Packet::ConnAck(c) if c.code == ReasonCode::SUCCESS));
    sub.subscribe("a/#", QoS::AtLeastOnce).await;
    let (mut publ, _) = Client::connect(addr, V5, "pub", true).await;
    publ.publish("a/b", b"hello", QoS::AtLeastOnce, 7).await;
    let ack = publ.recv().await.unwrap();
    assert!(matches!(ack.packet(), Packet::PubAck(a) if a.packet_id.get() == 7));
    let msg = sub.recv().await.unwrap();
    let Packet::Publish(p) = msg.packet() else { panic!("expected PUBLISH") };
    assert_eq!(p.payload, b"hello");
    assert_eq!(p.qos.qos(), QoS::AtLeastOnce);
    sub.send(&Packet::PubAck(PublishResponse::new(p.qos.packet_id().unwrap()))).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn takeover_and_shutdown_disconnects() {
    let broker = start(test_config()).await;
    let addr = broker.local_addr();
    let (mut old, _) = Client::connect(addr, V5, "dup", true).await;
    let (mut new, ack) = Client::connect(addr, V5, "dup", false).await;
    assert!(matches!(ack.packet(), Packet::ConnAck(c) if c.session_present));
    let d = old.recv().await.unwrap();
    assert!(matches!(d.packet(), Packet::Disconnect(d) if d.reason_code == ReasonCode::SESSION_TAKEN_OVER));
    assert!(old.recv().await.is_none(), "old connection closed");
    broker.shutdown().await;
    let d = new.recv().await.unwrap();
    assert!(matches!(d.packet(), Packet::Disconnect(d) if d.reason_code == ReasonCode::SERVER_SHUTTING_DOWN));
    assert!(new.recv().await.is_none());
}

#[tokio::test]
async fn malformed_packet_gets_disconnect() {
    let broker = start(test_config()).await;
    let (mut c, _) = Client::connect(broker.local_addr(), V5, "bad", true).await;
    use tokio::io::AsyncWriteExt;
    c.stream.write_all(&[0x36, 5, 0, 1, b'a', 0, 1]).await.unwrap();
    let d = c.recv().await.unwrap();
    assert!(matches!(d.packet(), Packet::Disconnect(d) if d.reason_code == ReasonCode::MALFORMED_PACKET));
    assert!(c.recv().await.is_none());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_consumer_does_not_stall_others_and_is_closed() {
    // The fast subscriber never has more than 8 messages (512 KiB) waiting: below the
    // outbound limit (1 MiB), so it loses nothing.
    let broker = start(Config { write_timeout_secs: 1, ..test_config() }).await;
    let addr = broker.local_addr();
    // A subscriber that never reads (with a small socket buffer, so that the broker's
    // queue for it fills soon) and has a will, which tells when it was closed.
    let (mut slow, _) = Client::connect_small_buffer(addr, V3, "slow", "gone/slow").await;
    slow.subscribe("big", QoS::AtMostOnce).await;
    let (mut fast, _) = Client::connect(addr, V3, "fast", true).await;
    fast.subscribe("big", QoS::AtMostOnce).await;
    fast.subscribe("gone/#", QoS::AtMostOnce).await;
    let (mut publ, _) = Client::connect(addr, V3, "pub", true).await;
    let payload = vec![0x5a; 64 * 1024];
    let (progress_tx, mut progress) = tokio::sync::watch::channel((0usize, false));
    let reader = tokio::spawn(async move {
        let (mut n, mut will) = (0, false);
        loop {
            let Some(p) = fast.recv().await else { break };
            match p.packet() {
                Packet::Publish(p) if p.topic.as_str() == "big" => n += 1,
                Packet::Publish(p) if p.topic.as_str() == "gone/slow" => will = true,
                _ => {}
            }
            let _ = progress_tx.send((n, will));
        }
    });
    // Publish in batches paced by the fast subscriber until the stalled one is closed
    // (its will arrives): it is closed once its queue stopped moving for the write
    // timeout, while the fast one kept receiving everything.
    let mut published = 0;
    while !progress.borrow().1 {
        assert!(published < 20_000, "the stalled consumer was never closed");
        for _ in 0..8 {
            publ.publish("big", &payload, QoS::AtMostOnce, 1).await;
        }
        published += 8;
        progress.wait_for(|(n, will)| *n >= published || *will).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Every message reaches the fast subscriber (it would time out otherwise).
    progress.wait_for(|(n, _)| *n >= published).await.unwrap();
    reader.abort();
    // Draining the stalled consumer's socket ends in EOF, after part of the messages.
    let mut seen = 0;
    while let Some(_p) = slow.recv().await {
        seen += 1;
    }
    assert!(seen < published, "stalled consumer received everything ({seen})");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_never_disconnected() {
    // A subscriber that keeps reading, slower than the publisher sends: its QoS 0 messages
    // beyond the outbound limit are dropped, its QoS 1 messages wait in its session, and it
    // stays connected (the write timeout is short, but it always makes progress).
    let config = Config { max_outbound_bytes: 32 * 1024, write_timeout_secs: 1, ..test_config() };
    let broker = start(config).await;
    let addr = broker.local_addr();
    let (mut sub, _) = Client::connect(addr, V3, "sub", true).await;
    sub.subscribe("q0", QoS::AtMostOnce).await;
    sub.subscribe("q1", QoS::AtLeastOnce).await;
    let (mut publ, _) = Client::connect(addr, V3, "pub", true).await;
    let payload = vec![0x33; 8 * 1024];
    for i in 0..200u16 {
        publ.publish("q0", &payload, QoS::AtMostOnce, 1).await;
        publ.publish("q1", &payload, QoS::AtLeastOnce, i + 1).await;
    }
    // The last QoS 1 PUBACK: everything was taken over by the broker.
    loop {
        let ack = publ.recv().await.expect("PUBACK");
        if matches!(ack.packet(), Packet::PubAck(a) if a.packet_id.get() == 200) {
            break;
        }
    }
    // Read slowly: a pause between packets, acknowledging QoS 1 as a client does.
    let (mut q0, mut q1) = (0, 0);
    while q1 < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let packet = sub.recv().await.expect("still connected");
        if let Packet::Publish(p) = packet.packet() {
            match p.qos.packet_id() {
                Some(id) => {
                    q1 += 1;
                    sub.send(&Packet::PubAck(PublishResponse::new(id))).await;
                }
                None => q0 += 1,
            }
        }
    }
    assert!(q0 < 200, "QoS 0 beyond the outbound limit is dropped ({q0} of 200 arrived)");
    // Still connected.
    sub.send(&Packet::PingReq).await;
    loop {
        let p = sub.recv().await.expect("still connected");
        if matches!(p.packet(), Packet::PingResp) {
            break;
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn burst_of_more_chunks_than_one_vectored_write_arrives_whole() {
    // 200 retained messages of 2 KiB go out at once after the SUBACK: more shared chunks
    // than one vectored write takes; every one arrives.
    let broker = start(test_config()).await;
    let addr = broker.local_addr();
    let (mut publ, _) = Client::connect(addr, V3, "pub", true).await;
    let payload = vec![7u8; 2048];
    for i in 0..200u16 {
        let topic = format!("r/{i}");
        let q = mqttkit_codec::PublishQoS::new(QoS::AtLeastOnce, mqttkit_codec::PacketId::new(i + 1).unwrap());
        let mut p = mqttkit_codec::Publish::new(mqttkit_codec::TopicName::new(&topic).unwrap(), q, &payload);
        p.retain = true;
        publ.send(&Packet::Publish(p)).await;
        assert!(matches!(publ.recv().await.unwrap().packet(), Packet::PubAck(_)));
    }
    let (mut sub, _) = Client::connect(addr, V3, "sub", true).await;
    sub.subscribe("r/#", QoS::AtMostOnce).await;
    for _ in 0..200 {
        let p = sub.recv().await.expect("a retained message");
        assert!(matches!(p.packet(), Packet::Publish(p) if p.payload.len() == 2048));
    }
    broker.shutdown().await;
}

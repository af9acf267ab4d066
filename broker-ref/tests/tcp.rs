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
async fn slow_consumer_does_not_stall_others() {
    let broker = start(Config { outbound_queue: 32, ..test_config() }).await;
    let addr = broker.local_addr();
    // A subscriber that never reads.
    let (mut slow, _) = Client::connect(addr, V3, "slow", true).await;
    slow.subscribe("big", QoS::AtMostOnce).await;
    let (mut fast, _) = Client::connect(addr, V3, "fast", true).await;
    fast.subscribe("big", QoS::AtMostOnce).await;
    let (mut publ, _) = Client::connect(addr, V3, "pub", true).await;
    let payload = vec![0x5a; 64 * 1024];
    let total: usize = 400;
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < total {
            match fast.recv().await {
                Some(p) if matches!(p.packet(), Packet::Publish(_)) => {
                    n += 1;
                    let _ = progress_tx.send(n);
                }
                Some(_) => {}
                None => break,
            }
        }
        n
    });
    // Publish in batches paced by the fast subscriber: it never has more than 8 queued,
    // while the slow one accumulates everything.
    for batch in 0..total / 8 {
        for _ in 0..8 {
            publ.publish("big", &payload, QoS::AtMostOnce, 1).await;
        }
        let want = (batch + 1) * 8;
        progress.wait_for(|n| *n >= want).await.unwrap();
    }
    assert_eq!(reader.await.unwrap(), total);
    // The slow consumer was disconnected: draining its socket ends in EOF.
    let mut seen = 0;
    while let Some(_p) = slow.recv().await {
        seen += 1;
    }
    assert!(seen < total, "slow consumer received everything ({seen})");
    broker.shutdown().await;
}

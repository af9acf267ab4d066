//! Faults with real processes and sockets: a server that stops answering PINGREQ, and a
//! mosquitto with persistence killed with `kill -9` and restarted while QoS 1/2
//! publications are in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqttkit_client::{
    Client, ConnectionEvent, LostReason, Options, ProtocolVersion, Publication, QoS, ReasonCode, Subscription,
};
use mqttkit_codec::{ConnAck, Packet, ProtocolVersion as V, StreamDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::{Mosquitto, bounded};

/// A server that accepts one connection, answers CONNACK and the first PINGREQ, then
/// stays silent. Reports the packet types it received, in order, until the client closed.
async fn silent_after_first_ping(listener: TcpListener, version: V) -> Vec<String> {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut decoder = StreamDecoder::default();
    let mut seen = Vec::new();
    let mut pings = 0;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            seen.push("EOF".to_owned());
            return seen;
        }
        decoder.feed(&buf[..n]);
        while let Some(packet) = decoder.next_packet().expect("the client sends valid packets") {
            seen.push(packet.packet_type().name().to_owned());
            let reply = match packet {
                Packet::Connect(_) => Some(Packet::ConnAck(ConnAck::new(false, ReasonCode::SUCCESS))),
                Packet::PingReq if pings == 0 => Some(Packet::PingResp),
                _ => None,
            };
            if matches!(packet, Packet::PingReq) {
                pings += 1;
            }
            if let Some(reply) = reply {
                let mut out = Vec::new();
                reply.encode(version, &mut out).unwrap();
                stream.write_all(&out).await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_pings_is_detected() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("mqtt://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(silent_after_first_ping(listener, version));
        let options = Options::new(url)
            .version(version)
            .client_id("pinger")
            .keep_alive(Duration::from_secs(1))
            .ping_timeout(Duration::from_secs(1))
            .auto_reconnect(false);
        let client = Client::connect(options).await.unwrap();
        let reason = bounded("the connection loss", client.closed()).await;
        assert_eq!(
            reason,
            mqttkit_client::CloseReason::Failed(LostReason::PingTimeout),
            "{version}: connection lost for another reason"
        );
        assert_eq!(reason.to_string(), "ping timeout");
        // Two pings (the first answered), then the client closed the connection.
        let seen = bounded("the server", server).await.unwrap();
        assert_eq!(seen, ["CONNECT", "PINGREQ", "PINGREQ", "EOF"], "{version}");
    }
}

/// Connection events seen by a client's handler.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<ConnectionEvent>>>);

impl Seen {
    fn options(&self, url: &str, version: ProtocolVersion, id: &str) -> Options {
        let seen = self.clone();
        let mut options = Options::new(url)
            .version(version)
            .client_id(id)
            .clean_start(false)
            .keep_alive(Duration::from_secs(5))
            .backoff(Duration::from_millis(50), Duration::from_millis(500))
            .on_event(move |e| seen.0.lock().unwrap().push(e.clone()));
        if version.is_v5() {
            options = options.session_expiry_interval(3600);
        }
        options
    }

    fn reconnected_with_session(&self) -> bool {
        let events = self.0.lock().unwrap();
        let connects: Vec<bool> = events
            .iter()
            .filter_map(|e| match e {
                ConnectionEvent::Connected(c) => Some(c.session_present),
                _ => None,
            })
            .collect();
        connects.len() >= 2 && connects.last() == Some(&true)
    }
}

/// Wait (polling, bounded) until mosquitto has saved a database that holds `needle`.
fn wait_for_save(path: &std::path::Path, needle: &[u8]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read(path).is_ok_and(|db| db.windows(needle.len()).any(|w| w == needle)) {
        assert!(std::time::Instant::now() < deadline, "mosquitto never saved {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

const BATCH: u32 = 50;

async fn publish_batch(client: &Client, first: u32) -> Vec<mqttkit_client::PublishToken> {
    let mut tokens = Vec::new();
    for n in first..first + BATCH {
        for (topic, qos) in [("fault/q1", QoS::AtLeastOnce), ("fault/q2", QoS::ExactlyOnce)] {
            let p = Publication::new(topic, qos, false, n.to_string());
            tokens.push(client.start_publish(p).await.unwrap());
        }
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_qos1_and_qos2_in_flight_loses_nothing() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        // `max_inflight_messages`: mosquitto 2.0.11 drops QoS 1 messages queued behind a
        // full in-flight window (default 20) towards an online subscriber when QoS 2
        // messages are interleaved (mosquitto_sub as the subscriber shows the same).
        let Some(mut mosquitto) = Mosquitto::start(
            "persistence true\npersistence_location {dir}/\nautosave_interval 1\nautosave_on_changes true\n\
             max_inflight_messages 1000",
        ) else {
            return;
        };
        let db = mosquitto.dir.path().join("mosquitto.db");
        let url = mosquitto.url();
        let publisher_seen = Seen::default();
        let publisher = Client::connect(publisher_seen.options(&url, version, "fault-pub")).await.unwrap();
        let subscriber_seen = Seen::default();
        let subscriber = Client::connect(subscriber_seen.options(&url, version, "fault-sub")).await.unwrap();
        let mut messages = subscriber.messages();
        subscriber.subscribe([Subscription::new("fault/#", QoS::ExactlyOnce)]).await.unwrap();

        // The subscription makes mosquitto save its database, both sessions included.
        wait_for_save(&db, b"fault/#");

        // Publications sent while mosquitto is stopped, so none is acknowledged; then
        // kill -9 and restart. The clients reconnect, resume their sessions, and the
        // publisher re-sends every unacknowledged PUBLISH (DUP=1) in order.
        common::signal(&mosquitto.child, rustix::process::Signal::STOP);
        let tokens = publish_batch(&publisher, 0).await;
        mosquitto.kill9_and_restart();
        for token in tokens {
            let result = bounded("the publications after the restart", token).await;
            assert!(result.is_ok(), "{version}: {result:?}");
        }
        assert!(publisher_seen.reconnected_with_session(), "{version}: the publisher's session was not resumed");
        assert!(subscriber_seen.reconnected_with_session(), "{version}: the subscriber's session was not resumed");
        // A last QoS 2 marker: everything before it on the same topic arrives first.
        publisher.publish("fault/q2", QoS::ExactlyOnce, false, "end").await.unwrap();

        let mut counts: BTreeMap<(String, String), u32> = BTreeMap::new();
        let mut qos2_order = Vec::new();
        loop {
            let m = bounded("the subscriber's messages", messages.recv()).await.expect("a message");
            let key = (m.topic().to_owned(), String::from_utf8_lossy(m.payload()).into_owned());
            if key == ("fault/q2".to_owned(), "end".to_owned()) {
                break;
            }
            if m.topic() == "fault/q2" {
                qos2_order.push(key.1.parse::<u32>().unwrap());
            }
            *counts.entry(key).or_default() += 1;
        }
        // Re-sent in the original order [MQTT-5.0: 4.6.0-1].
        assert!(qos2_order.windows(2).all(|w| w[0] < w[1]), "{version}: QoS 2 out of order: {qos2_order:?}");
        for n in 0..BATCH {
            let q1 = counts.get(&("fault/q1".to_owned(), n.to_string())).copied().unwrap_or(0);
            let q2 = counts.get(&("fault/q2".to_owned(), n.to_string())).copied().unwrap_or(0);
            assert!(q1 >= 1, "{version}: QoS 1 message {n} lost; received {counts:?}");
            assert_eq!(q2, 1, "{version}: QoS 2 message {n} delivered {q2} times");
        }
        publisher.disconnect(Duration::ZERO).await;
        subscriber.disconnect(Duration::ZERO).await;
    }
}

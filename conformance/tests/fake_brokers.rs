//! The runner against deliberately broken fake brokers: each must yield honest failures
//! with reasons, never a pass it did not earn, and nothing may hang.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqttkit_codec::{
    ConnAck, Packet, PacketId, Properties, Publish, PublishQoS, PublishResponse, ReasonCode, ReasonCodes,
    StreamDecoder, SubAck, filter_matches,
};
use mqttkit_conformance::OutcomeKind;
use mqttkit_conformance::profile::Profile;
use mqttkit_conformance::scenario::Action;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

async fn serve<F, Fut>(handler: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("mqtt://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handler(stream));
        }
    });
    address
}

/// Scenarios that connect and that an empty profile does not skip up front (those needing
/// e.g. a `refused_topic` are skipped before any connection is made).
fn uses_connect(scenario: &mqttkit_conformance::Scenario) -> bool {
    scenario.requires.iter().all(|r| r != "refused-topic")
        && scenario.steps.iter().any(|s| matches!(s.action, Action::Connect { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_never_answers_fails_every_connecting_scenario_by_timeout() {
    let address = serve(|mut stream| async move {
        let mut buf = [0u8; 1024];
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    let scenarios: Vec<_> = common::built_in().into_iter().filter(uses_connect).collect();
    let mut config = common::config(&address, 0.2, Profile::default());
    config.confirm = 0;
    let results = common::run(scenarios, config, Duration::from_secs(60)).await;
    assert!(!results.is_empty());
    for r in &results {
        assert_eq!(r.outcome.kind, OutcomeKind::Fail, "{}", common::summary(&results));
        let reason = r.outcome.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("nothing arrived"), "{}: {reason}", r.id);
        assert_eq!(r.outcome.actual.as_deref(), Some("nothing (timeout)"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_answers_garbage_fails_with_the_malformed_bytes_in_evidence() {
    let address = serve(|mut stream| async move {
        let mut buf = [0u8; 1024];
        if matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
            let _ = stream.write_all(b"\x00\xffgarbage, not MQTT").await;
        }
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    let scenarios: Vec<_> = common::built_in().into_iter().filter(uses_connect).collect();
    let results =
        common::run(scenarios, common::config(&address, 0.2, Profile::default()), Duration::from_secs(60)).await;
    for r in &results {
        assert_eq!(r.outcome.kind, OutcomeKind::Fail, "{}", common::summary(&results));
        let actual = r.outcome.actual.as_deref().unwrap_or_default();
        assert!(actual.starts_with("MALFORMED"), "{}: {actual}", r.id);
        assert!(r.trace.iter().any(|t| t.hex.starts_with("00 ff")), "trace shows the bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_closes_every_connection_passes_nothing_that_needs_a_session() {
    let address = serve(|stream| async move { drop(stream) }).await;
    let scenarios: Vec<_> = common::built_in().into_iter().filter(uses_connect).collect();
    let results =
        common::run(scenarios, common::config(&address, 0.2, Profile::default()), Duration::from_secs(60)).await;
    for r in &results {
        assert!(matches!(r.outcome.kind, OutcomeKind::Fail | OutcomeKind::Error), "{}", common::summary(&results));
        assert!(r.outcome.reason.as_deref().is_some_and(|s| !s.is_empty()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_an_error_not_a_failure_or_pass() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = format!("mqtt://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let scenarios: Vec<_> = common::built_in().into_iter().take(5).collect();
    let results =
        common::run(scenarios, common::config(&address, 0.2, Profile::default()), Duration::from_secs(30)).await;
    for r in &results {
        assert_eq!(r.outcome.kind, OutcomeKind::Error, "{}", common::summary(&results));
    }
}

/// A tiny broker that routes QoS 0/1 messages but never stores retained ones.
type Subscribers = Arc<Mutex<Vec<(String, mpsc::UnboundedSender<Vec<u8>>)>>>;

async fn forgetful_connection(mut stream: TcpStream, subscribers: Subscribers) {
    let (sender, mut outbox) = mpsc::unbounded_channel::<Vec<u8>>();
    let mut decoder = StreamDecoder::default();
    let mut version = mqttkit_codec::ProtocolVersion::V3_1_1;
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            Some(bytes) = outbox.recv() => {
                if stream.write_all(&bytes).await.is_err() { return; }
            }
            read = stream.read(&mut buf) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                decoder.feed(buf.get(..n).unwrap_or_default());
                loop {
                    let mut replies: Vec<Vec<u8>> = Vec::new();
                    let packet = match decoder.next_packet() {
                        Ok(Some(packet)) => packet,
                        Ok(None) => break,
                        Err(_) => return,
                    };
                    let encode = |p: &Packet<'_>, v| { let mut out = Vec::new(); p.encode_unchecked(v, &mut out); out };
                    match packet {
                        Packet::Connect(connect) => {
                            version = connect.version;
                            replies.push(encode(&Packet::ConnAck(ConnAck::new(false, ReasonCode::SUCCESS)), version));
                        }
                        Packet::Subscribe(subscribe) => {
                            let mut codes = Vec::new();
                            for (filter, options) in subscribe.filters.iter() {
                                subscribers.lock().unwrap().push((filter.as_str().to_owned(), sender.clone()));
                                codes.push(options.qos.as_u8().min(1));
                            }
                            let suback = SubAck::new(subscribe.packet_id, ReasonCodes::from_raw_unchecked(&codes));
                            replies.push(encode(&Packet::SubAck(suback), version));
                        }
                        Packet::Publish(publish) => {
                            if let PublishQoS::AtLeastOnce(id) = publish.qos {
                                replies.push(encode(&Packet::PubAck(PublishResponse::new(id)), version));
                            }
                            let forward = Publish::new(publish.topic, PublishQoS::AtMostOnce, publish.payload);
                            let bytes = encode(&Packet::Publish(forward), version);
                            for (filter, subscriber) in subscribers.lock().unwrap().iter() {
                                if filter_matches(filter, publish.topic.as_str()) {
                                    let _ = subscriber.send(bytes.clone());
                                }
                            }
                        }
                        Packet::PingReq => replies.push(encode(&Packet::PingResp, version)),
                        Packet::Disconnect(_) => return,
                        _ => {}
                    }
                    let _ = (PacketId::new(1), Properties::EMPTY);
                    for reply in replies {
                        if stream.write_all(&reply).await.is_err() { return; }
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_forgets_retained_messages_fails_the_retain_scenarios() {
    let subscribers: Subscribers = Arc::default();
    let address = serve(move |stream| forgetful_connection(stream, Arc::clone(&subscribers))).await;
    let scenarios: Vec<_> = common::built_in()
        .into_iter()
        .filter(|s| {
            matches!(s.id.as_str(), "retain.delivered-on-subscribe" | "retain.replaced-by-newer" | "qos.qos0-delivery")
        })
        .collect();
    assert_eq!(scenarios.len(), 3);
    let results =
        common::run(scenarios, common::config(&address, 0.5, Profile::default()), Duration::from_secs(60)).await;
    for r in &results {
        let expected = if r.id.starts_with("retain.") { OutcomeKind::Fail } else { OutcomeKind::Pass };
        assert_eq!(r.outcome.kind, expected, "{}", common::summary(&results));
        if expected == OutcomeKind::Fail {
            assert!(
                r.outcome.reason.as_deref().unwrap_or_default().contains("nothing arrived"),
                "{}",
                common::summary(&results)
            );
        }
    }
}

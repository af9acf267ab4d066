//! Client throughput: messages per second, client CPU time and allocations per message,
//! for a publisher (QoS 0, 1, 2) and a subscriber (QoS 0, 1), mqttkit-client beside
//! rumqttc 0.25, both against the same mosquitto on 127.0.0.1, in one run.
//!
//! ```sh
//! cargo bench -p mqttkit-client --bench throughput            # 100,000 messages a case
//! MQTTKIT_BENCH_MESSAGES=20000 cargo bench -p mqttkit-client --bench throughput
//! ```
//!
//! Each client runs alone on a current-thread tokio runtime in this process, so this
//! process's CPU time (all threads, from /proc/self/task/*/schedstat) is the client's;
//! mosquitto and the load generator of the subscriber cases (`mqttkit pub`) are other
//! processes. Every case runs three times, the two clients alternating; medians are
//! printed with mqttkit/rumqttc ratios. Both clients get the same in-flight window (100)
//! and a payload of 64 bytes handed over as `Bytes`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit_client::{Client, Options, ProtocolVersion, Publication, QoS};

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

const PAYLOAD: &[u8; 64] = &[b'x'; 64];
const INFLIGHT: u16 = 100;
const RUNS: usize = 3;

/// CPU time of this process (all threads), in nanoseconds.
fn cpu_ns() -> u64 {
    let mut total = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    per_second: f64,
    cpu_us_per_message: f64,
    allocations_per_message: f64,
}

/// Measure `f`, which handles `n` messages on a fresh current-thread runtime.
fn measure(n: u64, f: impl std::future::Future<Output = ()>) -> Sample {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cpu = cpu_ns();
    let allocations = counting_alloc::allocations();
    let start = Instant::now();
    runtime.block_on(f);
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_ns().saturating_sub(cpu) as f64;
    let allocations = (counting_alloc::allocations() - allocations) as f64;
    drop(runtime);
    Sample {
        per_second: n as f64 / elapsed,
        cpu_us_per_message: cpu / 1000.0 / n as f64,
        allocations_per_message: allocations / n as f64,
    }
}

fn median(mut samples: Vec<Sample>) -> Sample {
    let mid = samples.len() / 2;
    let pick = |samples: &mut Vec<Sample>, key: fn(&Sample) -> f64| {
        samples.sort_by(|a, b| key(a).total_cmp(&key(b)));
        key(&samples[mid])
    };
    Sample {
        per_second: pick(&mut samples, |s| s.per_second),
        cpu_us_per_message: pick(&mut samples, |s| s.cpu_us_per_message),
        allocations_per_message: pick(&mut samples, |s| s.allocations_per_message),
    }
}

fn mqttkit_options(port: u16, id: &str) -> Options {
    Options::new(format!("mqtt://127.0.0.1:{port}"))
        .version(ProtocolVersion::V3_1_1)
        .client_id(id)
        .max_inflight(INFLIGHT)
        .message_buffer(4096)
}

fn rumqttc_options(port: u16, id: &str) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(60)).set_inflight(INFLIGHT);
    options
}

fn rumqttc_qos(qos: QoS) -> rumqttc::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

/// Publish `n` messages; QoS 0 ends with a QoS 1 marker whose PUBACK proves the broker
/// read everything before it.
async fn mqttkit_publisher(port: u16, n: u64, qos: QoS) {
    let client = Client::connect(mqttkit_options(port, "bench-mqttkit-pub")).await.unwrap();
    let payload = Bytes::from_static(PAYLOAD);
    let mut tokens = VecDeque::new();
    for _ in 0..n {
        let p = Publication::new("bench/pub", qos, false, payload.clone());
        if qos == QoS::AtMostOnce {
            client.publish_detached(p).await.unwrap();
        } else {
            if tokens.len() >= 4096 {
                let token: mqttkit_client::PublishToken = tokens.pop_front().unwrap();
                token.await.unwrap();
            }
            tokens.push_back(client.start_publish(p).await.unwrap());
        }
    }
    for token in tokens {
        token.await.unwrap();
    }
    client.publish("bench/pub", QoS::AtLeastOnce, false, payload).await.unwrap();
    client.disconnect(Duration::ZERO).await;
}

async fn rumqttc_publisher(port: u16, n: u64, qos: QoS) {
    let (client, mut eventloop) = rumqttc::AsyncClient::new(rumqttc_options(port, "bench-rumqttc-pub"), 4096);
    let producer = tokio::spawn(async move {
        let payload = Bytes::from_static(PAYLOAD);
        for _ in 0..n {
            client.publish_bytes("bench/pub", rumqttc_qos(qos), false, payload.clone()).await.unwrap();
        }
        client.publish_bytes("bench/pub", rumqttc::QoS::AtLeastOnce, false, payload).await.unwrap();
        client
    });
    // Completions: PUBACK (QoS 1, and the marker) or PUBCOMP (QoS 2).
    let expected = match qos {
        QoS::AtMostOnce => 1,
        _ => n + 1,
    };
    let mut done = 0;
    while done < expected {
        let event = eventloop.poll().await.unwrap();
        if let rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_) | rumqttc::Incoming::PubComp(_)) = event {
            done += 1;
        }
    }
    let client = producer.await.unwrap();
    client.disconnect().await.unwrap();
    while eventloop.poll().await.is_ok() {}
}

/// Run the load generator: `mqttkit pub` publishing `n` messages to `bench/sub`.
fn load_generator(port: u16, n: u64, qos: QoS) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mqttkit"))
        .args(["pub", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "bench/sub", "-q"])
        .arg(qos.as_u8().to_string())
        .args(["-m", std::str::from_utf8(PAYLOAD).unwrap(), "--repeat", &n.to_string(), "-M", "100"])
        .stdout(Stdio::null())
        .spawn()
        .expect("the load generator starts")
}

async fn mqttkit_subscriber(port: u16, n: u64, qos: QoS) {
    let client = Client::connect(mqttkit_options(port, "bench-mqttkit-sub")).await.unwrap();
    let mut messages = client.messages();
    client.subscribe([("bench/sub", qos)]).await.unwrap();
    let mut generator = load_generator(port, n, qos);
    let mut received = 0;
    while received < n {
        messages.recv().await.unwrap();
        received += 1;
    }
    client.disconnect(Duration::ZERO).await;
    assert!(generator.wait().unwrap().success());
}

async fn rumqttc_subscriber(port: u16, n: u64, qos: QoS) {
    let mut options = rumqttc_options(port, "bench-rumqttc-sub");
    options.set_request_channel_capacity(64);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
    client.subscribe("bench/sub", rumqttc_qos(qos)).await.unwrap();
    let mut generator = None;
    let mut received = 0;
    while received < n {
        match eventloop.poll().await.unwrap() {
            rumqttc::Event::Incoming(rumqttc::Incoming::SubAck(_)) => generator = Some(load_generator(port, n, qos)),
            rumqttc::Event::Incoming(rumqttc::Incoming::Publish(_)) => received += 1,
            _ => {}
        }
    }
    client.disconnect().await.unwrap();
    while eventloop.poll().await.is_ok() {}
    assert!(generator.unwrap().wait().unwrap().success());
}

fn main() {
    // `cargo test` runs bench targets with `--bench`-less arguments: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: u64 = std::env::var("MQTTKIT_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    // Large queues: a subscriber may fall behind the load generator for a moment, and
    // mosquitto would drop what exceeds its default queue of 1000.
    let config = format!("max_queued_messages 10000000\nmax_inflight_messages {INFLIGHT}");
    let Some(mosquitto) = common::Mosquitto::start(&config) else { return };
    let port = mosquitto.port;
    let version = Command::new("mosquitto").arg("-h").output().map(|o| o.stdout).unwrap_or_default();
    let version = String::from_utf8_lossy(&version).lines().next().unwrap_or("mosquitto").to_owned();
    println!(
        "{n} messages of {} bytes a case, MQTT 3.1.1, in-flight window {INFLIGHT}, broker: {version}",
        PAYLOAD.len()
    );
    println!(
        "{:<16} {:>14} {:>14} {:>9} {:>12} {:>12} {:>9} {:>10} {:>10}",
        "case",
        "mqttkit msg/s",
        "rumqttc msg/s",
        "ratio",
        "mqttkit µs",
        "rumqttc µs",
        "ratio",
        "mqttkit a",
        "rumqttc a"
    );
    let cases: [(&str, QoS, bool); 5] = [
        ("publish QoS 0", QoS::AtMostOnce, true),
        ("publish QoS 1", QoS::AtLeastOnce, true),
        ("publish QoS 2", QoS::ExactlyOnce, true),
        ("subscribe QoS 0", QoS::AtMostOnce, false),
        ("subscribe QoS 1", QoS::AtLeastOnce, false),
    ];
    for (name, qos, publisher) in cases {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..RUNS {
            if publisher {
                ours.push(measure(n, mqttkit_publisher(port, n, qos)));
                theirs.push(measure(n, rumqttc_publisher(port, n, qos)));
            } else {
                ours.push(measure(n, mqttkit_subscriber(port, n, qos)));
                theirs.push(measure(n, rumqttc_subscriber(port, n, qos)));
            }
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "{name:<16} {:>14.0} {:>14.0} {:>8.2}× {:>12.2} {:>12.2} {:>8.2}× {:>10.2} {:>10.2}",
            ours.per_second,
            theirs.per_second,
            ours.per_second / theirs.per_second,
            ours.cpu_us_per_message,
            theirs.cpu_us_per_message,
            theirs.cpu_us_per_message / ours.cpu_us_per_message,
            ours.allocations_per_message,
            theirs.allocations_per_message,
        );
    }
    println!(
        "ratio: msg/s mqttkit ÷ rumqttc (higher is better); µs = client CPU per message, ratio rumqttc ÷ mqttkit \
         (higher is better); a = allocations per message"
    );
}

//! `mqttkit bench` against the reference broker on 127.0.0.1 (in this process), and over
//! WebSocket against mosquitto: the counts add up (every QoS 1/2 message sent is
//! acknowledged and delivered exactly once in p2p, fan-out and shared fan-in), latencies
//! are recorded, errors and lost connections are reported with their reasons, and the
//! JSON report has its fields. No assertion on speed: figures belong to the compare
//! script (`client-ref/bench/compare.sh`), not to tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use mqttkit_client::bench::{self, Expected, Plan, Publishers, Report, Subscribers};
use mqttkit_client::{Options, ProtocolVersion, QoS};
use serde_json::Value;

async fn run(plan: Plan) -> Report {
    common::bounded("the benchmark", bench::run(plan, &mut |_: &str| {}, std::future::pending())).await.unwrap()
}

fn plan(scenario: &str, url: &str, version: ProtocolVersion) -> Plan {
    let mut plan = Plan::new(scenario, Options::new(url).client_id(format!("t-{scenario}")).version(version));
    // Bounds only: the counts end these runs long before.
    plan.duration = Duration::from_secs(20);
    plan.drain = Duration::from_secs(2);
    plan
}

/// Every message counted once on each side, none lost, every one timed.
fn assert_complete(report: &Report, published: u64, deliveries: u64, acknowledged: bool) {
    let summary = report.to_text();
    assert_eq!(report.errors.len() + report.disconnects.len(), 0, "{summary}");
    assert_eq!(report.sent, published, "{summary}");
    if acknowledged {
        assert_eq!(report.acknowledged, published, "{summary}");
    }
    assert_eq!(report.expected, Some(deliveries), "{summary}");
    assert_eq!(report.delivered, deliveries, "{summary}");
    assert_eq!(report.latency.count, deliveries, "every payload carries its send time: {summary}");
    assert_eq!(report.untimed, 0, "{summary}");
    assert_eq!(report.drain, Some(bench::DrainEnd::Complete), "{summary}");
    let l = report.latency;
    assert!(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, "{l:?}");
    assert!(report.delivered_per_second() > 0.0 && report.sent_per_second() > 0.0, "{summary}");
    assert!(!report.cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_delivers_every_qos1_and_qos2_message_exactly_once() {
    let broker = common::reference_broker().await;
    let url = common::url(broker.local_addr());
    for (qos, version) in [(QoS::AtLeastOnce, ProtocolVersion::V3_1_1), (QoS::ExactlyOnce, ProtocolVersion::V5)] {
        let mut plan = plan("p2p", &url, version);
        plan.subscribers = Some(Subscribers::new(4, "p2p/%i", qos));
        let mut publishers = Publishers::new(4, "p2p/%i", qos);
        publishers.messages = Some(250);
        plan.publishers = Some(publishers);
        plan.expected = Expected::PerPublication(1);
        let report = run(plan).await;
        assert_complete(&report, 1000, 1000, true);
        assert_eq!((report.attempted, report.connected, report.setup_failed), (8, 8, 0));
        assert_eq!(report.connect_time.count, 8, "one CONNACK time per connection");
        assert_eq!(report.protocol, if version.is_v5() { "5.0" } else { "3.1.1" });
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_and_shared_fan_in_count_each_delivery() {
    let broker = common::reference_broker().await;
    let url = common::url(broker.local_addr());

    // 1 → 5 on one topic, QoS 1 at 2,000 msg/s: every message reaches every subscriber.
    let mut fan_out = plan("fan-out", &url, ProtocolVersion::V3_1_1);
    fan_out.subscribers = Some(Subscribers::new(5, "fan/out", QoS::AtLeastOnce));
    let mut publisher = Publishers::new(1, "fan/out", QoS::AtLeastOnce);
    publisher.messages = Some(200);
    publisher.rate = 2000.0;
    fan_out.publishers = Some(publisher);
    fan_out.expected = Expected::PerPublication(5);
    assert_complete(&run(fan_out).await, 200, 1000, true);

    // 4 → a shared subscription of 2 (5.0): each message reaches one of them.
    let mut fan_in = plan("fan-in", &url, ProtocolVersion::V5);
    fan_in.subscribers = Some(Subscribers::new(2, "$share/g/in/#", QoS::AtLeastOnce));
    let mut publishers = Publishers::new(4, "in/%i", QoS::AtLeastOnce);
    publishers.messages = Some(100);
    fan_in.publishers = Some(publishers);
    fan_in.expected = Expected::PerPublication(1);
    assert_complete(&run(fan_in).await, 400, 400, true);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_bounds_what_a_publisher_sends() {
    let broker = common::reference_broker().await;
    let mut plan = plan("p2p", &common::url(broker.local_addr()), ProtocolVersion::V3_1_1);
    plan.subscribers = Some(Subscribers::new(1, "rate/%i", QoS::AtMostOnce));
    let mut publishers = Publishers::new(1, "rate/%i", QoS::AtMostOnce);
    publishers.rate = 100.0;
    plan.publishers = Some(publishers);
    plan.duration = Duration::from_millis(500);
    plan.expected = Expected::PerPublication(1);
    let report = run(plan).await;
    // One message at the start, then one every 10 ms for 0.5 s: at most 51, whatever
    // the machine's speed.
    assert!(report.sent > 0 && report.sent <= 51, "{}", report.to_text());
    assert_eq!(report.delivered, report.sent, "{}", report.to_text());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_report_the_brokers_memory() {
    let broker = common::reference_broker().await;
    let mut plan = plan("conn", &common::url(broker.local_addr()), ProtocolVersion::V3_1_1);
    plan.idle = 50;
    plan.connect_rate = 1000.0;
    plan.duration = Duration::from_millis(200);
    plan.settle = Duration::from_millis(100);
    // The broker runs in this process.
    plan.broker_pid = Some(std::process::id());
    let report = run(plan).await;
    let summary = report.to_text();
    assert_eq!((report.attempted, report.connected, report.setup_failed), (50, 50, 0), "{summary}");
    assert!(report.disconnects.is_empty() && report.errors.is_empty(), "{summary}");
    let memory = report.memory.expect("memory readings with a broker pid");
    assert_eq!(memory.connections, 50, "{summary}");
    assert!(memory.baseline_kib > 0 && memory.idle_kib > 0 && memory.after_close_kib > 0, "{summary}");
    assert!(report.broker.is_some_and(|b| b.cpu_seconds >= 0.0 && b.rss_peak_kib > 0), "{summary}");
    broker.shutdown().await;
}

fn mqttkit_bench(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mqttkit")).arg("bench").args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn field<'a>(json: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(json, |v, key| v.get(key).unwrap_or_else(|| panic!("no `{path}` in {json:#}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_report_has_its_fields() {
    let broker = common::reference_broker().await;
    let port = broker.local_addr().port().to_string();
    let pid = std::process::id().to_string();
    let args = [
        "p2p",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-n",
        "2",
        "-q",
        "1",
        "-C",
        "300",
        "--duration",
        "20",
        "--json",
        "--broker-pid",
        &pid,
        "--no-progress",
    ];
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mqttkit_bench(&args)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stderr}\n{stdout}");
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(field(&json, "scenario"), "p2p");
    assert_eq!(field(&json, "qos"), 1);
    assert_eq!(field(&json, "clients.publishers"), 2);
    assert_eq!(field(&json, "connections.connected"), 4);
    assert_eq!(field(&json, "messages.sent"), 600);
    assert_eq!(field(&json, "messages.acknowledged"), 600);
    assert_eq!(field(&json, "messages.delivered"), 600);
    assert_eq!(field(&json, "messages.lost"), 0);
    assert_eq!(field(&json, "messages.drain"), "complete");
    assert_eq!(field(&json, "latency_us.count"), 600);
    assert_eq!(field(&json, "errors.total"), 0);
    assert_eq!(field(&json, "disconnects.total"), 0);
    for number in [
        "messages.delivered_per_s",
        "messages.sent_per_s",
        "connections.rate_per_s",
        "connections.time_ms.p99",
        "latency_us.p50",
        "latency_us.p90",
        "latency_us.p99",
        "latency_us.p999",
        "latency_us.max",
        "broker.cpu_s",
        "broker.cpu_us_per_message",
        "broker.rss_kib_peak",
        "generator.cpu_s",
        "generator.cpu_us_per_message",
        "generator.cpu_utilisation",
    ] {
        assert!(field(&json, number).is_number(), "`{number}` is not a number in {json:#}");
    }
    assert!(field(&json, "bottleneck").is_string());
    broker.shutdown().await;
}

#[test]
fn failures_are_reported_with_their_reasons() {
    // Nothing listens on this port.
    let port = common::free_port().to_string();
    let (code, stdout, stderr) =
        mqttkit_bench(&["conn", "-h", "127.0.0.1", "-p", &port, "-n", "3", "--hold", "0", "--json", "--no-progress"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("no connection could be set up"), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(field(&json, "connections.failed"), 3);
    assert_eq!(field(&json, "errors.total"), 3);
    let reasons = field(&json, "errors.reasons").as_object().unwrap();
    assert!(reasons.keys().all(|r| r.starts_with("connect: could not connect")), "{reasons:?}");

    let (code, _, stderr) = mqttkit_bench(&["p2p", "-n", "2", "-t", "same/topic"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("%i"), "{stderr}");
    let (code, _, stderr) = mqttkit_bench(&["pub", "-t", "bad/#", "-h", "127.0.0.1", "-p", &port]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid topic"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_broker_closes_are_disconnects_with_their_reason() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that accepts each CONNECT (3.1.1 CONNACK 0x00) and hangs up 200 ms later.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { break };
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(&[0x20, 0x02, 0x00, 0x00]).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    let mut plan = plan("conn", &common::url(addr), ProtocolVersion::V3_1_1);
    plan.idle = 3;
    plan.duration = Duration::from_secs(1);
    plan.settle = Duration::ZERO;
    let report = run(plan).await;
    let summary = report.to_text();
    assert_eq!((report.connected, report.setup_failed), (3, 0), "{summary}");
    assert_eq!(report.disconnects.values().sum::<u64>(), 3, "{summary}");
    assert!(report.disconnects.keys().all(|r| r.contains("closed by the broker")), "{summary}");
    assert!(summary.contains("disconnects  3: "), "{summary}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_fan_out_against_mosquitto() {
    let ws_port = common::free_port();
    let Some(m) = common::Mosquitto::start(&format!("listener {ws_port} 127.0.0.1\nprotocol websockets")) else {
        return;
    };
    common::wait_listening(ws_port);
    let url = format!("ws://127.0.0.1:{ws_port}/mqtt");
    let mut plan = plan("fan-out", &url, ProtocolVersion::V5);
    plan.subscribers = Some(Subscribers::new(3, "ws/fan", QoS::AtLeastOnce));
    let mut publisher = Publishers::new(1, "ws/fan", QoS::AtLeastOnce);
    publisher.messages = Some(50);
    plan.publishers = Some(publisher);
    plan.expected = Expected::PerPublication(3);
    plan.broker_pid = Some(m.child.id());
    let report = run(plan).await;
    assert_complete(&report, 50, 150, true);
    assert!(report.url.starts_with("ws://"));
    assert!(report.broker.is_some(), "{}", report.to_text());
}

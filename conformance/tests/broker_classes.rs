//! Verdicts on behaviour real brokers have, reproduced by a proxy in front of the reference
//! broker: no FAIL for what the standard allows, real deviations on the right statement, and
//! runs that stop early (with the right exit status) where nothing can be checked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use common::proxy::{self, Behaviour, Conn, Step};
use mqttkit_conformance::cli::{self, Args};
use mqttkit_conformance::outcome::exit;
use mqttkit_conformance::profile::Profile;
use serde_json::Value;

async fn reference_broker() -> mqttkit_broker::BrokerHandle {
    mqttkit_broker::Broker::start(mqttkit_conformance::embedded::embedded_config()).await.expect("broker starts")
}

/// Run the command line with `args` (after the URL); returns the exit status and the JSON report.
async fn run_cli(url: &str, args: &[&str]) -> (i32, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    let report = format!("json={}", json.display());
    let mut argv = vec!["mqttkit-conformance", url, "--no-progress", "--report", &report];
    argv.extend_from_slice(args);
    let code = tokio::time::timeout(Duration::from_secs(240), cli::main_with(Args::parse_from(argv)))
        .await
        .expect("the run is bounded");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no report written ({e}), exit {code}"));
    (code, serde_json::from_str(&text).expect("valid JSON"))
}

fn results(report: &Value) -> &Vec<Value> {
    report["results"].as_array().expect("results")
}

fn kind(result: &Value) -> &str {
    result["outcome"]["kind"].as_str().unwrap_or_default()
}

fn describe(report: &Value) -> String {
    results(report)
        .iter()
        .map(|r| {
            format!(
                "{} [{}] {}: {}\n",
                r["id"].as_str().unwrap_or_default(),
                r["version"].as_str().unwrap_or_default(),
                kind(r),
                r["outcome"]["reason"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn fails(report: &Value) -> Vec<&Value> {
    results(report).iter().filter(|r| kind(r) == "fail").collect()
}

/// Answers a 5.0 CONNECT the way a 3.1.1 server must [MQTT-3.1.1: 3.1.2-2].
struct SpeaksOnly311;

impl Behaviour for SpeaksOnly311 {
    fn on_client_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if frame[0] == 0x10 && conn.level == 5 {
            return vec![Step::ToClient(vec![0x20, 0x02, 0x00, 0x01]), Step::Close];
        }
        vec![Step::ToBroker(frame.to_vec())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_5_0_skips_every_5_0_scenario_with_one_reason() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), SpeaksOnly311).await;
    let (code, report) = run_cli(&proxy.url, &["--only", "connect.", "--only", "retain", "--jobs", "8"]).await;
    assert_eq!(code, exit::OK, "{}", describe(&report));
    let v5 = report["versions"].as_array().unwrap().iter().find(|v| v["version"] == "5.0").unwrap();
    assert_eq!(v5["support"], "unsupported");
    assert!(v5["evidence"].as_str().unwrap().contains("20 02 00 01"), "{v5}");
    let mut v5_runs = 0;
    for r in results(&report).iter().filter(|r| r["version"] == "5.0") {
        v5_runs += 1;
        assert_eq!(kind(r), "skip", "{}", describe(&report));
        assert!(r["outcome"]["reason"].as_str().unwrap().contains("does not support MQTT 5.0"));
    }
    assert!(v5_runs > 10);
    assert!(fails(&report).is_empty(), "{}", describe(&report));
    assert!(results(&report).iter().any(|r| r["version"] == "3.1.1" && kind(r) == "pass"));

    let (code, report) = run_cli(&proxy.url, &["--only", "retain", "--protocol", "5"]).await;
    assert_eq!(code, exit::NOTHING_CHECKED, "{}", describe(&report));
    assert!(report["problem"]["message"].as_str().unwrap().contains("does not support MQTT 5.0"), "{report}");
    broker.shutdown().await;
}

/// Serves `limit` connections, then stops answering anything (a dead core behind an open
/// socket, as rumqttd after a panic in its router).
struct DiesAfter {
    limit: usize,
    dead: AtomicBool,
}

impl Behaviour for DiesAfter {
    fn serve(&self, index: usize) -> bool {
        if index >= self.limit {
            self.dead.store(true, Ordering::SeqCst);
        }
        !self.dead.load(Ordering::SeqCst)
    }
    fn on_client_frame(&self, _: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if self.dead.load(Ordering::SeqCst) { Vec::new() } else { vec![Step::ToBroker(frame.to_vec())] }
    }
    fn on_broker_frame(&self, _: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if self.dead.load(Ordering::SeqCst) { Vec::new() } else { vec![Step::ToClient(frame.to_vec())] }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_is_one_finding_not_a_failure_of_every_later_scenario() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), DiesAfter { limit: 14, dead: AtomicBool::new(false) }).await;
    let (code, report) =
        run_cli(&proxy.url, &["--only", "retain", "--protocol", "3.1.1", "--jobs", "1", "--confirm", "0"]).await;
    assert_eq!(code, exit::BROKER_STOPPED, "{}", describe(&report));
    let stopped = &report["broker_stopped"];
    assert_eq!(stopped["during"].as_array().unwrap().len(), 1, "{stopped}");
    let culprit = stopped["noticed_by"].as_str().unwrap();
    let failed = fails(&report);
    assert_eq!(failed.len(), 1, "{}", describe(&report));
    assert!(failed[0]["outcome"]["reason"].as_str().unwrap().contains("stopped accepting connections"));
    assert_eq!(format!("{} [{}]", failed[0]["id"].as_str().unwrap(), failed[0]["version"].as_str().unwrap()), culprit);
    let later: Vec<_> = results(&report).iter().filter(|r| kind(r) == "error").collect();
    assert!(!later.is_empty(), "{}", describe(&report));
    for r in later {
        assert!(r["outcome"]["reason"].as_str().unwrap().contains(culprit), "{}", describe(&report));
    }
    broker.shutdown().await;
}

/// Pushes a retained message of some other client's topic to every new connection.
struct PushesRetainedToEveryone;

impl Behaviour for PushesRetainedToEveryone {
    fn on_broker_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        let mut steps = vec![Step::ToClient(frame.to_vec())];
        if frame[0] == 0x20 && frame.get(3) == Some(&0) && !proxy::frames(&mut frame.to_vec()).is_empty() {
            steps.push(Step::ToClient(proxy::publish_frame(conn.level, "mqzz99zzzza/elsewhere", b"stale", true)));
        }
        steps
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_pushed_to_every_connection_are_one_finding_on_3_3_2_3() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), PushesRetainedToEveryone).await;
    let (code, report) = run_cli(&proxy.url, &["--only", "retain", "--only", "qos", "--jobs", "8"]).await;
    assert_eq!(code, exit::MUST_FAILED, "{}", describe(&report));
    let failed = fails(&report);
    assert_eq!(failed.len(), 2, "one per version: {}", describe(&report));
    for r in failed {
        assert_eq!(r["id"], "runner.unsolicited-publish");
        assert_eq!(r["statements"], serde_json::json!(["MQTT-3.3.2-3"]));
        assert!(r["outcome"]["reason"].as_str().unwrap().contains("mqzz99zzzza/elsewhere"));
    }
    broker.shutdown().await;
}

/// Keeps one QoS 1/2 message in flight per connection: the next waits for the
/// acknowledgement (allowed: 5.0 §4.9, and 3.1.1 §4.4 lets a server send one at a time).
struct OneInFlight;

impl Behaviour for OneInFlight {
    fn on_broker_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if frame[0] >> 4 == 3 {
            let (qos, _, id) = proxy::publish_fields(frame);
            if qos > 0 {
                if conn.outstanding.is_some() {
                    conn.held.push_back(frame.to_vec());
                    return Vec::new();
                }
                conn.outstanding = id;
            }
        }
        vec![Step::ToClient(frame.to_vec())]
    }
    fn on_client_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        let mut steps = vec![Step::ToBroker(frame.to_vec())];
        let completes = matches!(frame[0] >> 4, 4 | 7) && conn.outstanding == Some(proxy::ack_id(frame));
        if completes {
            conn.outstanding = None;
            if let Some(next) = conn.held.pop_front() {
                conn.outstanding = proxy::publish_fields(&next).2;
                steps.push(Step::ToClient(next));
            }
        }
        steps
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_in_flight_is_not_a_failure() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), OneInFlight).await;
    let (code, report) = run_cli(&proxy.url, &["--only", "qos", "--only", "session", "--jobs", "8"]).await;
    assert!(fails(&report).is_empty(), "{}", describe(&report));
    assert_eq!(code, exit::OK, "{}", describe(&report));
    broker.shutdown().await;
}

/// Refuses PUBLISH to `$` topics: QoS 0 dropped, QoS 1/2 refused with 0x87 in 5.0 and by a
/// close in 3.1.1 (both allowed: [MQTT-3.1.1: 3.3.5-2], 5.0 §4.7.2).
struct RefusesDollarPublishes;

impl Behaviour for RefusesDollarPublishes {
    fn on_client_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if frame[0] >> 4 == 3 {
            let (qos, topic, id) = proxy::publish_fields(frame);
            if topic.starts_with('$') {
                return match (qos, conn.level, id) {
                    (0, _, _) => Vec::new(),
                    (1, 5, Some(id)) => vec![Step::ToClient([&[0x40, 0x03][..], &id.to_be_bytes(), &[0x87]].concat())],
                    (2, 5, Some(id)) => vec![Step::ToClient([&[0x50, 0x03][..], &id.to_be_bytes(), &[0x87]].concat())],
                    _ => vec![Step::Close],
                };
            }
        }
        vec![Step::ToBroker(frame.to_vec())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_publishes_to_dollar_topics_is_not_a_failure() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), RefusesDollarPublishes).await;
    let (_, report) = run_cli(&proxy.url, &["--only", "wildcard", "--only", "topic", "--jobs", "8"]).await;
    assert!(fails(&report).is_empty(), "{}", describe(&report));
    assert!(results(&report).iter().any(|r| kind(r) == "pass"), "{}", describe(&report));
    broker.shutdown().await;
}

/// Refuses every CONNECT without a user name (5.0 0x86, 3.1.1 return code 4).
struct RequiresCredentials;

impl Behaviour for RequiresCredentials {
    fn on_client_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if frame[0] == 0x10 && proxy::connect_level_and_flags(frame).1 & 0x80 == 0 {
            let refusal =
                if conn.level == 5 { vec![0x20, 0x03, 0x00, 0x86, 0x00] } else { vec![0x20, 0x02, 0x00, 0x04] };
            return vec![Step::ToClient(refusal), Step::Close];
        }
        vec![Step::ToBroker(frame.to_vec())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_requires_credentials() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), RequiresCredentials).await;

    // Without credentials: stopped by the probe, with the way out.
    let (code, report) = run_cli(&proxy.url, &["--only", "connect."]).await;
    assert_eq!(code, exit::NOTHING_CHECKED, "{report}");
    assert!(report["problem"]["message"].as_str().unwrap().contains("--username"), "{report}");

    // Without credentials and without the probe: no scenario passes or fails on a refusal
    // for authorisation — a refused CONNECT is never "the protocol error was detected".
    let scenarios: Vec<_> = common::built_in()
        .into_iter()
        .filter(|s| s.id.starts_with("connect.") || s.id.starts_with("v5.connect"))
        .collect();
    let runs =
        common::run(scenarios, common::config(&proxy.url, 1.0, Profile::default()), Duration::from_secs(120)).await;
    let refused = |r: &&mqttkit_conformance::ScenarioResult| {
        r.trace.iter().any(|t| t.summary.starts_with("CONNACK") && t.summary.to_lowercase().contains("bad user name"))
    };
    for r in runs.iter().filter(refused) {
        assert_eq!(r.outcome.kind, mqttkit_conformance::OutcomeKind::Inconclusive, "{}", common::summary(&runs));
    }
    assert!(runs.iter().filter(refused).count() > 20, "{}", common::summary(&runs));
    assert!(
        !runs.iter().any(|r| r.outcome.kind == mqttkit_conformance::OutcomeKind::Fail),
        "{}",
        common::summary(&runs)
    );

    // With credentials in the URL: they reach every CONNECT, typed, raw and the runner's own.
    let url = proxy.url.replace("mqtt://", "mqtt://someone:secret@");
    let (code, report) = run_cli(&url, &["--only", "connect.", "--only", "retain", "--jobs", "8"]).await;
    assert_eq!(code, exit::OK, "{}", describe(&report));
    assert!(fails(&report).is_empty(), "{}", describe(&report));
    let second = results(&report).iter().find(|r| r["id"] == "connect.second-connect").expect("scenario");
    assert_eq!(kind(second), "pass", "{}", describe(&report));
    assert!(!serde_json::to_string(&report).unwrap().contains("secret"), "the password is never echoed");
    broker.shutdown().await;
}

async fn serve_once_each(handler: impl Fn(tokio::net::TcpStream) + Send + Sync + 'static) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("mqtt://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            handler(stream);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_that_are_not_mqtt_brokers_stop_the_run_with_exit_3_and_a_hint() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let http = serve_once_each(|mut stream| {
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
        });
    })
    .await;
    let (code, report) = run_cli(&http, &[]).await;
    assert_eq!(code, exit::UNREACHABLE, "{report}");
    assert!(report["problem"]["message"].as_str().unwrap().contains("HTTP server"), "{report}");
    assert!(results(&report).is_empty());

    let resets = serve_once_each(|stream| {
        // SO_LINGER 0: closing sends a reset. Blocking on drop is no concern with linger 0.
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream);
    })
    .await;
    let (code, report) = run_cli(&resets, &[]).await;
    assert_eq!(code, exit::UNREACHABLE, "{report}");
    let message = report["problem"]["message"].as_str().unwrap();
    assert!(message.contains("not answering as an MQTT broker") && message.contains("reset"), "{report}");

    let tls = common::tls::server().await;
    let (code, report) = run_cli(&tls, &[]).await;
    assert_eq!(code, exit::UNREACHABLE, "{report}");
    assert!(report["problem"]["message"].as_str().unwrap().contains("mqtts://"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_that_matches_nothing_is_a_usage_error_before_any_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("mqtt://{}", listener.local_addr().expect("addr"));
    let code = cli::main_with(Args::parse_from(["mqttkit-conformance", &url, "--only", "retian"])).await;
    assert_eq!(code, exit::USAGE);
    let code = cli::main_with(Args::parse_from(["mqttkit-conformance", "mqtt//localhost"])).await;
    assert_eq!(code, exit::USAGE);
    let code = cli::main_with(Args::parse_from(["mqttkit-conformance", "mqtt://localhost:1883/ignored"])).await;
    assert_eq!(code, exit::USAGE);
}

/// Subscribes with at most QoS 1: a requested QoS 2 is lowered on its way to the broker, so
/// the SUBACK grants QoS 1 (allowed: 3.1.1 [MQTT-3.8.4-6], 5.0 [MQTT-3.8.4-7]).
struct GrantsAtMostQos1;

impl Behaviour for GrantsAtMostQos1 {
    fn on_client_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        let mut frame = frame.to_vec();
        if frame[0] == 0x82 {
            for (_, options) in proxy::subscribe_filters(&frame, conn.level).1 {
                if frame.get(options).is_some_and(|o| o & 0b11 == 2) {
                    frame[options] = frame[options] & !0b11 | 1;
                }
            }
        }
        vec![Step::ToBroker(frame)]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_qos_grant_is_not_a_failure() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), GrantsAtMostQos1).await;
    let args = ["--only", "qos", "--only", "retain", "--only", "will", "--only", "session", "--only", "subscribe"];
    let (_, report) = run_cli(&proxy.url, &[&args[..], &["--jobs", "8"]].concat()).await;
    assert!(fails(&report).is_empty(), "{}", describe(&report));
    let qos_kept = results(&report).iter().find(|r| r["id"] == "retain.qos-kept" && r["version"] == "3.1.1").unwrap();
    assert_eq!(kind(qos_kept), "pass", "min(stored QoS 1, granted QoS 1) is still checked: {}", describe(&report));
    assert!(results(&report).iter().any(|r| kind(r) == "skip"), "{}", describe(&report));
    broker.shutdown().await;
}

/// Refuses the first filter of every SUBSCRIBE with several filters (a server may refuse any
/// subscription: 3.1.1 [MQTT-3.8.4-5], 5.0 [MQTT-3.8.4-7]). The broker behind still has the
/// subscription; the runner must not rely on either.
struct RefusesFirstOfSeveralFilters;

impl Behaviour for RefusesFirstOfSeveralFilters {
    fn on_client_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        proxy::watch_subscribe(conn, frame, |filters| filters.len() > 1);
        vec![Step::ToBroker(frame.to_vec())]
    }
    fn on_broker_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        let mut frame = frame.to_vec();
        if proxy::is_watched_suback(conn, &frame) {
            let first = proxy::suback_codes_start(&frame, conn.level);
            frame[first] = 0x80;
        }
        vec![Step::ToClient(frame)]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_one_of_several_filters_is_not_a_failure() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), RefusesFirstOfSeveralFilters).await;
    let args =
        ["--only", "subscribe", "--only", "wildcard", "--only", "v5.suback.", "--only", "unsubscribe", "--jobs", "8"];
    let (_, report) = run_cli(&proxy.url, &args).await;
    assert!(fails(&report).is_empty(), "{}", describe(&report));
    let mixed = results(&report).iter().filter(|r| r["id"] == "subscribe.mixed-valid-invalid");
    for r in mixed {
        assert_eq!(kind(r), "pass", "the invalid filter is still refused in its own position: {}", describe(&report));
    }
    broker.shutdown().await;
}

/// Imposes a Server Keep Alive of 30 s in every 5.0 CONNACK (allowed: [MQTT-5.0: 3.2.2-21]).
/// The broker behind still applies the client's value, which no client can tell.
struct ImposesServerKeepAlive;

impl Behaviour for ImposesServerKeepAlive {
    fn on_broker_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if frame[0] == 0x20 && conn.level == 5 {
            return vec![Step::ToClient(proxy::connack_with_property(frame, &[0x13, 0x00, 0x1e]))];
        }
        vec![Step::ToClient(frame.to_vec())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_keep_alive_is_followed_or_makes_the_run_inconclusive() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), ImposesServerKeepAlive).await;
    let (_, report) =
        run_cli(&proxy.url, &["--only", "keepalive", "--only", "will", "--protocol", "5", "--jobs", "8"]).await;
    assert!(fails(&report).is_empty(), "{}", describe(&report));
    let by_id = |id: &str| kind(results(&report).iter().find(|r| r["id"] == id).unwrap()).to_owned();
    assert_eq!(by_id("keepalive.silence-closes"), "inconclusive", "{}", describe(&report));
    assert_eq!(
        by_id("keepalive.zero-disables-timeout"),
        "pass",
        "30 s still allows a 3 s silence: {}",
        describe(&report)
    );
    assert_eq!(by_id("keepalive.activity-keeps-alive"), "pass", "{}", describe(&report));
    broker.shutdown().await;
}

/// Refuses Keep Alive 0 by closing without CONNACK, as rumqttd does (allowed: a server may
/// refuse a CONNECT on further restrictions, 3.1.1 §3.1.4, [MQTT-5.0: 3.1.4-2]).
struct RefusesKeepAliveZero;

impl Behaviour for RefusesKeepAliveZero {
    fn on_client_frame(&self, _: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if frame[0] == 0x10 && proxy::connect_keep_alive(frame) == 0 {
            return vec![Step::Close];
        }
        vec![Step::ToBroker(frame.to_vec())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_keep_alive_0_is_not_a_failure() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), RefusesKeepAliveZero).await;
    let (_, report) = run_cli(&proxy.url, &["--only", "keepalive.zero-disables-timeout"]).await;
    assert!(fails(&report).is_empty(), "{}", describe(&report));
    assert!(results(&report).iter().all(|r| kind(r) == "inconclusive"), "{}", describe(&report));
    broker.shutdown().await;
}

/// Answers a CONNECT of an unknown protocol level with the 3.1.1-form refusal `20 02 00 01`,
/// then closes: a server that cannot tell the client's version may do so ([MQTT-5.0: 3.1.2-2]).
struct RefusesUnknownLevelsIn311Form;

impl Behaviour for RefusesUnknownLevelsIn311Form {
    fn on_client_frame(&self, _: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if frame[0] == 0x10 && !matches!(proxy::connect_level_and_flags(frame).0, 4 | 5) {
            return vec![Step::ToClient(vec![0x20, 0x02, 0x00, 0x01]), Step::Close];
        }
        vec![Step::ToBroker(frame.to_vec())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_1_1_form_refusal_of_an_unknown_version_passes_everywhere() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), RefusesUnknownLevelsIn311Form).await;
    let ids = [
        "connect.unsupported-protocol-level",
        "connect.unsupported-protocol-level-v5",
        "v5.connect.unsupported-protocol-version",
        "v5.connect.rejected-then-nothing-processed",
    ];
    let args: Vec<&str> = ids.iter().flat_map(|id| ["--only", *id]).collect();
    let (code, report) = run_cli(&proxy.url, &args).await;
    assert_eq!(code, exit::OK, "{}", describe(&report));
    assert_eq!(results(&report).len(), 4, "{}", describe(&report));
    assert!(results(&report).iter().all(|r| kind(r) == "pass"), "{}", describe(&report));
    broker.shutdown().await;
}

/// Sends a retained `$SYS` message to every subscription to `#` or `+/#`, right after its
/// SUBACK: a deviation of [MQTT-4.7.2-1] (both versions).
struct DeliversDollarToWildcards;

impl Behaviour for DeliversDollarToWildcards {
    fn on_client_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        proxy::watch_subscribe(conn, frame, |filters| filters.iter().any(|(f, _)| f == "#" || f == "+/#"));
        vec![Step::ToBroker(frame.to_vec())]
    }
    fn on_broker_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        let mut steps = vec![Step::ToClient(frame.to_vec())];
        if proxy::is_watched_suback(conn, frame) {
            steps.push(Step::ToClient(proxy::publish_frame(conn.level, "$SYS/broker/uptime", b"42 seconds", true)));
        }
        steps
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dollar_messages_delivered_to_wildcards_fail_on_4_7_2_1() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), DeliversDollarToWildcards).await;
    let (code, report) = run_cli(&proxy.url, &["--only", "wildcard", "--only", "topic", "--jobs", "8"]).await;
    assert_eq!(code, exit::MUST_FAILED, "{}", describe(&report));
    let mut failed: Vec<String> = fails(&report)
        .iter()
        .map(|r| {
            assert_eq!(r["statements"], serde_json::json!(["MQTT-4.7.2-1"]), "{}", describe(&report));
            format!("{} [{}]", r["id"].as_str().unwrap(), r["version"].as_str().unwrap())
        })
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "wildcard.dollar-retained-not-matched [3.1.1]",
            "wildcard.dollar-retained-not-matched [5.0]",
            "wildcard.dollar-sys-not-matched [3.1.1]",
            "wildcard.dollar-sys-not-matched [5.0]",
        ],
        "{}",
        describe(&report)
    );
    broker.shutdown().await;
}

/// Never delivers the Will of the will-delay scenarios whose session ends with the connection
/// (payload "session over"): what a broker that waits for the Will Delay (30 s, 60 s) instead
/// of publishing when the session ends looks like within the scenarios' window.
struct WillWaitsForItsDelay;

impl Behaviour for WillWaitsForItsDelay {
    fn on_broker_frame(&self, conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        if frame[0] >> 4 == 3 && proxy::publish_payload(frame, conn.level) == b"session over" {
            return Vec::new();
        }
        vec![Step::ToClient(frame.to_vec())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_that_outlives_its_session_fails_on_3_1_2_8() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), WillWaitsForItsDelay).await;
    let (code, report) = run_cli(&proxy.url, &["--only", "v5.will-delay.", "--jobs", "8"]).await;
    assert_eq!(code, exit::MUST_FAILED, "{}", describe(&report));
    let mut failed: Vec<&str> = fails(&report).iter().map(|r| r["id"].as_str().unwrap()).collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        ["v5.will-delay.no-session-expiry-publishes-at-once", "v5.will-delay.session-end-publishes-early"],
        "{}",
        describe(&report)
    );
    for r in fails(&report) {
        assert_eq!(r["statements"], serde_json::json!(["MQTT-3.1.2-8"]));
    }
    broker.shutdown().await;
}

/// Ids of the built-in scenarios whose raw CONNECT templates carry `{credentials}`.
fn scenarios_with_raw_credentials() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("scenario dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                if text.contains("{credentials}") {
                    let id = text.lines().find_map(|l| l.strip_prefix("id = \"")).expect("id line");
                    out.push(id.trim_end_matches('"').to_owned());
                }
            }
        }
    }
    let mut ids = Vec::new();
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"), &mut ids);
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_connects_carry_the_runs_credentials_and_are_judged_on_their_subject() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), RequiresCredentials).await;
    let ids = scenarios_with_raw_credentials();
    assert!(ids.len() >= 20, "{ids:?}");
    let url = proxy.url.replace("mqtt://", "mqtt://someone:secret@");
    let mut args: Vec<&str> = ids.iter().flat_map(|id| ["--only", id.as_str()]).collect();
    args.extend(["--jobs", "8"]);
    let (code, report) = run_cli(&url, &args).await;
    assert_eq!(code, exit::OK, "{}", describe(&report));
    for r in results(&report) {
        assert_eq!(kind(r), "pass", "refused for missing credentials? {}", describe(&report));
    }
    broker.shutdown().await;
}

/// Sends a stray byte after each DISCONNECT of its own (as rumqttd 0.20 does: `e0 01 94 00`).
struct BytesAfterDisconnect;

impl Behaviour for BytesAfterDisconnect {
    fn on_broker_frame(&self, _: &mut Conn, frame: &[u8]) -> Vec<Step> {
        let mut bytes = frame.to_vec();
        if frame[0] == 0xE0 {
            bytes.push(0x00);
        }
        vec![Step::ToClient(bytes)]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_after_the_brokers_disconnect_are_one_finding_on_3_14_4_1() {
    let broker = reference_broker().await;
    let proxy = proxy::start(broker.local_addr(), BytesAfterDisconnect).await;
    let (code, report) = run_cli(&proxy.url, &["--only", "malformed", "--protocol", "5", "--jobs", "8"]).await;
    assert_eq!(code, exit::MUST_FAILED, "{}", describe(&report));
    let failed = fails(&report);
    assert_eq!(failed.len(), 1, "{}", describe(&report));
    assert_eq!(failed[0]["id"], "runner.packet-after-disconnect");
    assert_eq!(failed[0]["statements"], serde_json::json!(["MQTT-3.14.4-1"]));
    assert!(results(&report).iter().filter(|r| kind(r) == "pass").count() > 20, "{}", describe(&report));
    broker.shutdown().await;
}

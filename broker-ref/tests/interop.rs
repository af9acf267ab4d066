//! Interop with the Eclipse Mosquitto command-line clients (`mosquitto_pub`,
//! `mosquitto_sub`). Skipped with a message when they are missing, unless
//! `MQTTKIT_REQUIRE_PEERS=1`, in which case missing tools fail the test.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{start, test_config};

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Whether the peers are available; panics if they are required and missing.
fn peers() -> bool {
    let missing: Vec<&str> = ["mosquitto_pub", "mosquitto_sub"].into_iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("MQTTKIT_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("MQTTKIT_REQUIRE_PEERS=1 but {missing:?} not found (apt-get install mosquitto-clients)");
    }
    eprintln!("SKIPPED: {missing:?} not found (apt-get install mosquitto-clients)");
    false
}

fn pub_cmd(port: u16, version: &str, args: &[&str]) {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "mosquitto_pub {args:?} failed");
}

fn sub_cmd(port: u16, version: &str, args: &[&str]) -> std::process::Child {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version, "-W", "10"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn retained_roundtrip(version: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let broker = rt.block_on(start(test_config()));
    let port = broker.local_addr().port();
    let topic = format!("interop/{version}/retained");
    pub_cmd(port, version, &["-t", &topic, "-m", "hello", "-r", "-q", "1"]);
    let out = sub_cmd(port, version, &["-t", "interop/#", "-C", "1", "-q", "2", "-v"]).wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{topic} hello"));
    rt.block_on(broker.shutdown());
}

#[test]
fn mosquitto_retained_v311() {
    if peers() {
        retained_roundtrip("mqttv311");
    }
}

#[test]
fn mosquitto_retained_v5() {
    if peers() {
        retained_roundtrip("5");
    }
}

#[test]
fn mosquitto_live_qos2_v5_to_v311() {
    if !peers() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let broker = rt.block_on(start(test_config()));
    let port = broker.local_addr().port();
    let mut sub = sub_cmd(port, "mqttv311", &["-t", "live/+", "-C", "1", "-q", "2"]);
    // Publish until the subscriber (which may not have subscribed yet) has its message.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        pub_cmd(port, "5", &["-t", "live/x", "-m", "ping", "-q", "2"]);
        if sub.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ping");
    rt.block_on(broker.shutdown());
}

/// Publish with `mosquitto_pub` until a `mosquitto_sub` (which may not have subscribed
/// yet) prints its message, and return what it printed.
fn deliver_live(port: u16, sub_args: &[&str], sub_version: &str, pub_args: &[&str], pub_version: &str) -> String {
    let mut sub = sub_cmd(port, sub_version, sub_args);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        pub_cmd(port, pub_version, pub_args);
        if sub.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "mosquitto_sub {sub_args:?} timed out");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn mosquitto_qos_0_1_2_both_versions_delivered_at_the_lower_qos() {
    if !peers() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let broker = rt.block_on(start(test_config()));
    let port = broker.local_addr().port();
    for version in ["mqttv311", "5"] {
        for pub_qos in ["0", "1", "2"] {
            for sub_qos in ["0", "1", "2"] {
                let topic = format!("qos/{version}/{pub_qos}/{sub_qos}");
                let payload = format!("m{pub_qos}{sub_qos}");
                let printed = deliver_live(
                    port,
                    &["-t", &topic, "-q", sub_qos, "-C", "1", "-F", "%q %t %p"],
                    version,
                    &["-t", &topic, "-m", &payload, "-q", pub_qos],
                    version,
                );
                // "The QoS of Payload Messages sent in response to a Subscription MUST be
                // the minimum of the QoS of the originally published message and the
                // Maximum QoS granted by the Server" [MQTT-3.8.4-6] / [MQTT-3.8.4-8].
                let expected_qos = pub_qos.min(sub_qos);
                assert_eq!(
                    printed,
                    format!("{expected_qos} {topic} {payload}"),
                    "v{version} pub {pub_qos} sub {sub_qos}"
                );
            }
        }
    }
    rt.block_on(broker.shutdown());
}

#[test]
fn mosquitto_will_published_when_client_dies() {
    if !peers() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let broker = rt.block_on(start(test_config()));
    let port = broker.local_addr().port();
    for version in ["mqttv311", "5"] {
        let will_topic = format!("will/{version}");
        // A client with a retained will, killed without DISCONNECT once connected. The will
        // is retained so that the check below does not race the listener's SUBSCRIBE.
        // `stdbuf -oL`: mosquitto_sub's `-d` lines go through stdio, which a pipe would
        // otherwise buffer until exit, and the readiness wait below would never end.
        let mut dying = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
            .args(["-t", "will/unused", "-d"])
            .args(["--will-topic", &will_topic, "--will-payload", "gone", "--will-qos", "1", "--will-retain"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Ready once the broker has answered its SUBSCRIBE (so the will is stored): `-d`
        // prints each packet received. Read on a thread so that a silent client cannot
        // hang the test.
        let stdout = dying.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ready = std::io::BufRead::lines(std::io::BufReader::new(stdout))
                .map_while(Result::ok)
                .any(|line| line.contains("received SUBACK"));
            let _ = ready_tx.send(ready);
        });
        let ready = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap_or(false);
        if !ready {
            let _ = dying.kill();
        }
        assert!(ready, "mosquitto_sub never printed its SUBACK within 10 s");
        dying.kill().unwrap();
        dying.wait().unwrap();
        let out = sub_cmd(port, version, &["-t", &will_topic, "-C", "1", "-q", "1", "-F", "%q %r %p"])
            .wait_with_output()
            .unwrap();
        assert!(out.status.success(), "no will arrived for {version}");
        // Published as a retained message at the will's QoS 1 [MQTT-3.1.2-17] / [MQTT-3.1.2-15].
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1 1 gone", "{version}");
    }
    rt.block_on(broker.shutdown());
}

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

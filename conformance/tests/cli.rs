//! The `mqttkit-conformance` binary as a user runs it: Ctrl-C ends the run with a partial
//! summary and the requested reports; an unreachable broker still gets a report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn ctrl_c_ends_with_a_partial_report_and_exit_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("partial.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqttkit-conformance"))
        .args(["--only", "keepalive", "--only", "will", "--no-progress", "--jobs", "2"])
        .arg("--report")
        .arg(format!("json={}", json.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runner starts");
    // Wait until the probe has reported both versions: scenarios are running then.
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        if line.expect("utf-8").contains("MQTT 5.0") {
            break;
        }
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let output = child.wait_with_output().expect("runner ends");
    assert_eq!(output.status.code(), Some(130), "{rest:?}");
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("INTERRUPTED"), "{summary}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    assert_eq!(report["interrupted"], true);
    let results = report["results"].as_array().expect("results");
    assert!(!results.is_empty());
    assert!(results.iter().any(|r| r["outcome"]["reason"].as_str().is_some_and(|s| s.contains("interrupted"))));
}

#[test]
fn an_unreachable_broker_exits_3_and_still_writes_the_report() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = format!("mqtt://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_mqttkit-conformance"))
        .args([&address, "--no-progress", "--report"])
        .arg(format!("json={}", json.display()))
        .output()
        .expect("runner runs");
    assert_eq!(output.status.code(), Some(3));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    assert!(report["problem"]["message"].as_str().is_some_and(|m| m.contains("cannot reach")), "{report}");
}

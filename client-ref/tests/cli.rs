//! The `mqttkit` binary: interop with mosquitto_pub / mosquitto_sub both ways, `-l`
//! keeping every queued QoS 1/2 message, output formats, exit statuses, and Ctrl-C.
//! Skipped with a printed reason when mosquitto is missing, unless
//! `MQTTKIT_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Mosquitto, have};

/// A child process killed when dropped, so that a failing test leaves none behind.
struct Proc(Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mqttkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mqttkit"))
}

/// Lines of a child's output, read on a thread.
fn lines(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line matching `wanted` (bounded: a test never hangs).
fn wait_line(rx: &mpsc::Receiver<String>, wanted: impl Fn(&str) -> bool, what: &str) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if wanted(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no {what}: {e}"),
        }
    }
}

fn wait_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    for _ in 0..2000 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("{what} did not exit");
}

fn port_args(m: &Mosquitto) -> [String; 4] {
    ["-h".into(), "127.0.0.1".into(), "-p".into(), m.port.to_string()]
}

/// `mosquitto_sub` started and subscribed (its `-d` output says so), printing `MSG …`.
fn mosquitto_sub(m: &Mosquitto, version: &str, args: &[&str]) -> (Proc, mpsc::Receiver<String>) {
    // mosquitto_sub buffers its stdout in a pipe: line-buffer it so `-d` lines show.
    let mut child = Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub"])
        .args(port_args(m))
        .args(["-V", version, "-d"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(Proc)
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    wait_line(&out, |l| l.starts_with("Subscribed"), "mosquitto_sub subscription");
    (child, out)
}

/// `mqttkit sub` started and subscribed (its `-d` output says so).
fn mqttkit_sub(m: &Mosquitto, args: &[&str]) -> (Proc, mpsc::Receiver<String>) {
    let mut child = mqttkit()
        .arg("sub")
        .args(port_args(m))
        .arg("-d")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(Proc)
        .unwrap();
    let err = lines(child.stderr.take().unwrap());
    wait_line(&err, |l| l.contains("subscribed:"), "mqttkit sub subscription");
    let out = lines(child.stdout.take().unwrap());
    (child, out)
}

fn peers() -> Option<Mosquitto> {
    if !have(&["mosquitto_pub", "mosquitto_sub"]) {
        return None;
    }
    // mosquitto queues at most 1000 messages per subscriber by default and drops the
    // rest; `pub -l` below sends faster than mosquitto_sub reads.
    Mosquitto::start("log_type all\nmax_queued_messages 100000")
}

#[test]
fn mqttkit_pub_reaches_mosquitto_sub() {
    let Some(m) = peers() else { return };
    for (version, mqttkit_version) in [("mqttv311", "3.1.1"), ("mqttv5", "5")] {
        let topic = format!("cli/{version}");
        let (mut sub, out) = mosquitto_sub(&m, version, &["-t", &topic, "-C", "1", "-q", "2", "-F", "MSG %t %p %q %P"]);
        let mut args = vec!["pub", "-V", mqttkit_version, "-t", &topic, "-m", "hello", "-q", "2"];
        if version == "mqttv5" {
            args.extend(["-D", "publish", "user-property", "k", "v"]);
        }
        let status = mqttkit().args(&args).args(port_args(&m)).status().unwrap();
        assert!(status.success(), "{version}");
        let line = wait_line(&out, |l| l.starts_with("MSG "), "message at mosquitto_sub");
        let expected =
            if version == "mqttv5" { format!("MSG {topic} hello 2 k:v") } else { format!("MSG {topic} hello 2 ") };
        assert_eq!(line.trim_end(), expected.trim_end(), "{version}");
        assert!(wait_exit(&mut sub, "mosquitto_sub").success());
    }
}

#[test]
fn mosquitto_pub_reaches_mqttkit_sub() {
    let Some(m) = peers() else { return };
    for (version, mqttkit_version) in [("mqttv311", "3.1.1"), ("mqttv5", "5")] {
        let topic = format!("cli/back/{version}");
        let (mut sub, out) = mqttkit_sub(&m, &["-V", mqttkit_version, "-t", "cli/back/#", "-q", "1", "-C", "2", "-v"]);
        for payload in ["one", "two"] {
            let status = Command::new("mosquitto_pub")
                .args(port_args(&m))
                .args(["-V", version, "-t", &topic, "-m", payload, "-q", "1"])
                .status()
                .unwrap();
            assert!(status.success());
        }
        assert_eq!(wait_line(&out, |_| true, "first message"), format!("{topic} one"));
        assert_eq!(wait_line(&out, |_| true, "second message"), format!("{topic} two"));
        assert!(wait_exit(&mut sub, "mqttkit sub").success(), "{version}: -C 2 exits 0");
    }
}

#[test]
fn pub_lines_delivers_every_queued_qos1_and_qos2_message() {
    let Some(m) = peers() else { return };
    for (qos, count) in [("1", 2000), ("2", 500)] {
        let topic = format!("cli/lines/{qos}");
        let (mut sub, out) =
            mosquitto_sub(&m, "mqttv311", &["-t", &topic, "-q", qos, "-C", &count.to_string(), "-F", "MSG %p"]);
        let mut publisher = mqttkit()
            .args(["pub", "-t", &topic, "-l", "-q", qos])
            .args(port_args(&m))
            .stdin(Stdio::piped())
            .spawn()
            .map(Proc)
            .unwrap();
        let mut stdin = publisher.stdin.take().unwrap();
        let input: String = (0..count).map(|n| format!("line {n}\n")).collect();
        stdin.write_all(input.as_bytes()).unwrap();
        // End of input right after the last line: nothing may be dropped.
        drop(stdin);
        assert!(wait_exit(&mut publisher, "mqttkit pub -l").success());
        let mut received = Vec::new();
        while received.len() < count {
            let what = format!("line {} (QoS {qos})", received.len());
            received.push(wait_line(&out, |l| l.starts_with("MSG "), &what));
        }
        let expected: Vec<String> = (0..count).map(|n| format!("MSG line {n}")).collect();
        assert_eq!(received, expected, "QoS {qos}: every line, in order");
        assert!(wait_exit(&mut sub, "mosquitto_sub").success());
    }
}

#[test]
fn sub_prints_json_and_format_templates() {
    let Some(m) = peers() else { return };
    let (mut json_sub, json_out) = mqttkit_sub(&m, &["-V", "5", "-t", "cli/fmt", "-C", "1", "--json"]);
    let (mut fmt_sub, fmt_out) =
        mqttkit_sub(&m, &["-V", "5", "-t", "cli/fmt", "-C", "1", "-F", "%t|%q|%r|%l|%x|%C|%P|%p"]);
    let status = mqttkit()
        .args(["pub", "-V", "5", "-t", "cli/fmt", "-m", "hi", "-q", "1"])
        .args(["-D", "publish", "content-type", "text/plain", "-D", "publish", "user-property", "a", "b"])
        .args(port_args(&m))
        .status()
        .unwrap();
    assert!(status.success());
    let line = wait_line(&json_out, |_| true, "a JSON line");
    let json: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(json["topic"], "cli/fmt");
    assert_eq!(json["payload"], "hi");
    assert_eq!(json["qos"], 0);
    assert_eq!(json["payloadlen"], 2);
    assert_eq!(json["properties"]["content_type"], "text/plain");
    assert_eq!(json["properties"]["user_properties"], serde_json::json!([["a", "b"]]));
    assert!(json["tst"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(wait_line(&fmt_out, |_| true, "a formatted line"), "cli/fmt|0|0|2|6869|text/plain|a:b|hi");
    assert!(wait_exit(&mut json_sub, "json sub").success());
    assert!(wait_exit(&mut fmt_sub, "format sub").success());
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = mqttkit().args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn exit_statuses_and_errors_are_documented_ones() {
    let unused = common::free_port().to_string();
    let (code, err) = run(&["pub", "-h", "127.0.0.1", "-p", &unused, "-t", "a", "-m", "x"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("could not connect"), "{err}");
    let (code, err) = run(&["pub", "-t", "a/+", "-m", "x", "-p", &unused]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("wildcard"), "{err}");
    assert_eq!(run(&["pub", "-t", "a", "-m", "x", "--bogus"]).0, Some(2));
    assert_eq!(run(&["pub", "-t", "a"]).0, Some(2), "no message source");
    let (code, err) = run(&["pub", "-t", "a", "-m", "x", "-D", "publish", "content-type", "x", "-p", &unused]);
    assert_eq!(code, Some(2), "-D needs -V 5: {err}");
    let (code, err) = run(&["pub", "-t", "a", "-f", "/nonexistent/file", "-p", &unused]);
    assert_eq!(code, Some(2), "{err}");
    let Some(m) = peers() else { return };
    let (code, err) = run(&["sub", "-h", "127.0.0.1", "-p", &m.port.to_string(), "-t", "nothing", "-W", "0.5"]);
    assert_eq!(code, Some(27), "{err}");
    drop(m);
    let Some(closed) = Mosquitto::start("allow_anonymous false") else { return };
    let port = closed.port.to_string();
    for (version, expected) in [("3.1.1", "0x05 (Connection Refused, not authorized)"), ("5", "0x87 (Not authorized)")]
    {
        let (code, err) = run(&["pub", "-h", "127.0.0.1", "-p", &port, "-V", version, "-t", "a", "-m", "x"]);
        assert_eq!(code, Some(4), "{version}: {err}");
        assert!(err.contains(&format!("connection refused: {expected}")), "{version}: {err}");
    }
}

fn interrupt(child: &Child) {
    common::signal(child, rustix::process::Signal::INT);
}

#[test]
fn ctrl_c_disconnects_cleanly() {
    let Some(m) = peers() else { return };
    let (mut sub, _out) = mqttkit_sub(&m, &["-t", "cli/int", "-i", "interrupted-sub"]);
    interrupt(&sub);
    assert_eq!(wait_exit(&mut sub, "mqttkit sub").code(), Some(0));
    let mut publisher = mqttkit()
        .args(["pub", "-t", "cli/int", "-l", "-i", "interrupted-pub", "-d"])
        .args(port_args(&m))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(Proc)
        .unwrap();
    let err = lines(publisher.stderr.take().unwrap());
    wait_line(&err, |l| l.contains("connected"), "the publisher's connection");
    interrupt(&publisher);
    assert_eq!(wait_exit(&mut publisher, "mqttkit pub").code(), Some(130));
    let log = m.log();
    for id in ["interrupted-sub", "interrupted-pub"] {
        assert!(log.contains(&format!("Received DISCONNECT from {id}")), "{id} did not disconnect cleanly:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_and_sub_against_the_reference_broker() {
    let broker = common::reference_broker().await;
    let port = broker.local_addr().port().to_string();
    let sub_port = port.clone();
    let sub = tokio::task::spawn_blocking(move || {
        let mut child = mqttkit()
            .args(["sub", "-h", "127.0.0.1", "-p", &sub_port, "-V", "5", "-t", "ref/#", "-C", "1", "-v", "-d"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map(Proc)
            .unwrap();
        let err = lines(child.stderr.take().unwrap());
        wait_line(&err, |l| l.contains("subscribed:"), "subscription");
        (child, lines(BufReader::new(std::io::empty())))
    })
    .await
    .unwrap();
    let (mut child, _) = sub;
    let status = tokio::task::spawn_blocking(move || {
        mqttkit()
            .args(["pub", "-h", "127.0.0.1", "-p", &port, "-V", "5", "-t", "ref/x", "-m", "hi", "-q", "2"])
            .status()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || {
        let status = wait_exit(&mut child, "mqttkit sub");
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        (status, out)
    })
    .await
    .unwrap();
    assert!(output.0.success());
    assert_eq!(output.1, "ref/x hi\n");
    broker.shutdown().await;
}

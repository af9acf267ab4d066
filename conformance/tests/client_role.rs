//! The client role: the runner plays the broker. The embedded mqttkit-client must pass
//! every client scenario; fake clients show that verdicts stay honest (a client that never
//! pings fails the keep-alive scenario, a driver that crashes or hangs is an error, one
//! that answers `unsupported` is a skip, and a timeout is never a pass).

use std::sync::Arc;
use std::time::Duration;

use mqttkit_conformance::catalogue::Catalogue;
use mqttkit_conformance::clients::{ClientConfig, ClientScenario, Driver, DriverIo, embedded_driver, load, run};
use mqttkit_conformance::engine::Hooks;
use mqttkit_conformance::profile::Profile;
use mqttkit_conformance::{OutcomeKind, ScenarioResult, Version};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn scenarios() -> Vec<ClientScenario> {
    let catalogue = Catalogue::embedded().expect("catalogue");
    load(&catalogue, &[]).expect("client scenarios load")
}

fn only(ids: &[&str]) -> Vec<ClientScenario> {
    let all = scenarios();
    let chosen: Vec<ClientScenario> = all.into_iter().filter(|s| ids.contains(&s.meta.id.as_str())).collect();
    assert_eq!(chosen.len(), ids.len(), "every id names a scenario: {ids:?}");
    chosen
}

fn config(driver: Driver, time_scale: f64) -> ClientConfig {
    ClientConfig {
        driver,
        jobs: 4,
        time_scale,
        max_duration: Duration::from_secs(600),
        confirm: 0,
        profile: Profile::default(),
        capabilities: Vec::new(),
    }
}

async fn run_with(driver: Driver, scenarios: Vec<ClientScenario>, versions: &[Version]) -> Vec<ScenarioResult> {
    run(scenarios, versions, config(driver, 1.0), Hooks::default()).await
}

fn summary(results: &[ScenarioResult]) -> String {
    results
        .iter()
        .map(|r| {
            format!("{} [{}] {}: {}", r.id, r.version, r.outcome.kind, r.outcome.reason.clone().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_mqttkit_client_passes_every_client_scenario() {
    let all = scenarios();
    assert!(all.len() >= 100, "at least 100 client scenarios ({})", all.len());
    let mut driver_config = config(embedded_driver(), 1.0);
    driver_config.capabilities = vec!["disconnect-reason-codes".into()];
    driver_config.confirm = 1;
    let results = run(all, &Version::ALL, driver_config, Hooks::default()).await;
    let bad: Vec<&ScenarioResult> = results.iter().filter(|r| r.outcome.kind != OutcomeKind::Pass).collect();
    assert!(bad.is_empty(), "mqttkit-client did not pass:\n{}", summary(&bad.into_iter().cloned().collect::<Vec<_>>()));
    assert!(results.len() >= 160, "runs across both versions: {}", results.len());
}

/// An in-process fake client: `on_command` gets each command and the event sender, and
/// returns the reply (`ack`, `unsupported`, `error`) or `None` to stay silent.
fn fake(
    name: &str,
    on_command: impl Fn(&Value, String, tokio::sync::mpsc::UnboundedSender<Value>) -> Option<Value> + Send + Sync + 'static,
) -> Driver {
    let on_command = Arc::new(on_command);
    Driver::InProcess {
        name: name.to_owned(),
        start: Arc::new(move |url: String, mut io: DriverIo| {
            let on_command = Arc::clone(&on_command);
            tokio::spawn(async move {
                let _ = io.events.send(json!({"event": "hello", "library": "fake", "library_version": "0",
                    "versions": ["3.1.1", "5.0"]}));
                while let Some(command) = io.commands.recv().await {
                    if command["cmd"] == "quit" {
                        return;
                    }
                    if let Some(mut reply) = on_command(&command, url.clone(), io.events.clone()) {
                        reply["id"] = command["id"].clone();
                        let _ = io.events.send(reply);
                    }
                }
            });
        }),
    }
}

/// A 3.1.1 CONNECT with this client id and keep alive.
fn connect_bytes(client_id: &str, keep_alive: u16) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    body.extend_from_slice(&u16::try_from(client_id.len()).expect("short id").to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, u8::try_from(body.len()).expect("short CONNECT")];
    packet.extend_from_slice(&body);
    packet
}

/// A fake client that connects (3.1.1), reports `connected`, and then never sends
/// anything again: no PINGREQ, whatever its keep alive.
fn silent_client() -> Driver {
    fake("silent", |command, url, events| {
        if command["cmd"] != "connect" {
            return Some(json!({"event": "ack"}));
        }
        let client_id = command["client_id"].as_str().unwrap_or_default().to_owned();
        let keep_alive = u16::try_from(command["keep_alive"].as_u64().unwrap_or(60)).unwrap_or(60);
        tokio::spawn(async move {
            let address = url.trim_start_matches("mqtt://").to_owned();
            let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else { return };
            if stream.write_all(&connect_bytes(&client_id, keep_alive)).await.is_err() {
                return;
            }
            let mut buffer = [0u8; 256];
            if let Ok(n) = stream.read(&mut buffer).await {
                if n >= 4 && buffer[0] == 0x20 {
                    let _ = events.send(json!({"event": "connected", "session_present": false}));
                }
            }
            // Read (and ignore) whatever comes, send nothing.
            while let Ok(n) = stream.read(&mut buffer).await {
                if n == 0 {
                    return;
                }
            }
        });
        Some(json!({"event": "ack"}))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_pings_fails_the_keep_alive_scenario() {
    let results = run_with(silent_client(), only(&["client.keepalive.pingreq-when-idle"]), &[Version::V3_1_1]).await;
    let result = results.first().expect("one run");
    assert_eq!(result.outcome.kind, OutcomeKind::Fail, "{}", summary(&results));
    assert!(result.statements.contains(&"MQTT-3.1.2-23".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_never_a_pass() {
    // Connected but silent: the PUBLISH it was told to send never comes.
    let results = run_with(silent_client(), only(&["client.publish.qos1"]), &[Version::V3_1_1]).await;
    let result = results.first().expect("one run");
    assert_eq!(result.outcome.kind, OutcomeKind::Fail, "{}", summary(&results));
    assert!(result.outcome.reason.as_deref().unwrap_or_default().contains("within"), "{}", summary(&results));
    // Never connecting at all: the subject is never reached, so the run cannot pass either.
    let never = fake("never-connects", |_, _, _| Some(json!({"event": "ack"})));
    let results = run_with(never, only(&["client.connect.first-packet"]), &[Version::V3_1_1]).await;
    let result = results.first().expect("one run");
    assert_ne!(result.outcome.kind, OutcomeKind::Pass, "{}", summary(&results));
    assert_eq!(result.outcome.kind, OutcomeKind::Inconclusive, "{}", summary(&results));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_answering_unsupported_is_a_skip() {
    let driver = fake("cannot", |_, _, _| Some(json!({"event": "unsupported", "reason": "no such option"})));
    let results = run_with(driver, only(&["client.connect.first-packet", "client.publish.qos1"]), &Version::ALL).await;
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|r| r.outcome.kind == OutcomeKind::Skip), "{}", summary(&results));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_crashes_or_hangs_is_an_error() {
    let crashing = Driver::Process {
        name: "crashes".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            r#"echo '{"event":"hello","library":"crash","versions":["3.1.1"]}'; read line; exit 3"#.into(),
        ],
        env: Vec::new(),
    };
    let results = run_with(crashing, only(&["client.connect.first-packet"]), &[Version::V3_1_1]).await;
    let result = results.first().expect("one run");
    assert_eq!(result.outcome.kind, OutcomeKind::Error, "{}", summary(&results));
    assert!(result.outcome.reason.as_deref().unwrap_or_default().contains("crashed"), "{}", summary(&results));

    let hanging = fake("hangs", |_, _, _| None);
    let results =
        run(only(&["client.connect.first-packet"]), &[Version::V3_1_1], config(hanging, 0.2), Hooks::default()).await;
    let result = results.first().expect("one run");
    assert_eq!(result.outcome.kind, OutcomeKind::Error, "{}", summary(&results));
    assert!(result.outcome.reason.as_deref().unwrap_or_default().contains("hung"), "{}", summary(&results));

    let garbled = Driver::Process {
        name: "garbled".into(),
        command: vec!["sh".into(), "-c".into(), "echo not json; sleep 5".into()],
        env: Vec::new(),
    };
    let results = run_with(garbled, only(&["client.connect.first-packet"]), &[Version::V3_1_1]).await;
    assert_eq!(results.first().map(|r| r.outcome.kind), Some(OutcomeKind::Error), "{}", summary(&results));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_refusing_a_needed_command_is_inconclusive_not_a_failure() {
    let refuses = fake("refuses", |_, _, _| Some(json!({"event": "error", "message": "no"})));
    let results = run_with(refuses, only(&["client.connect.first-packet"]), &[Version::V3_1_1]).await;
    assert_eq!(results.first().map(|r| r.outcome.kind), Some(OutcomeKind::Inconclusive), "{}", summary(&results));
}

#[test]
fn client_scenarios_cite_only_statements_binding_a_client_and_cover_most_observable_ones() {
    let catalogue = Catalogue::embedded().expect("catalogue");
    let all = scenarios();
    let coverage = mqttkit_conformance::clients::coverage::client_coverage(&catalogue, &all, &[], &Version::ALL);
    for version in &coverage {
        assert!(
            version.observable_covered * 100 >= version.observable_total * 80,
            "MQTT {}: {} of {} client-side statements a server can observe are covered",
            version.version,
            version.observable_covered,
            version.observable_total
        );
    }
}

#[test]
fn client_profiles_name_scenarios_that_cite_their_statements() {
    let catalogue = Catalogue::embedded().expect("catalogue");
    let all = scenarios();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("conformance/clients") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let profile = Profile::load(&path).expect("a valid client profile");
        assert!(profile.unknown_statements(&catalogue).is_empty(), "{}", path.display());
        for deviation in &profile.deviations {
            let id = deviation.scenario.as_deref().expect("client deviations name their scenario");
            let scenario =
                all.iter().find(|s| s.meta.id == id).unwrap_or_else(|| panic!("{}: no scenario {id}", path.display()));
            let statement = deviation.statement.as_deref().expect("client deviations name their statement");
            let versions: Vec<Version> = if deviation.versions.is_empty() {
                scenario.meta.versions.clone()
            } else {
                deviation.versions.iter().map(|v| v.parse().expect("version")).collect()
            };
            for version in versions {
                assert!(
                    scenario.meta.statements_for(version).iter().any(|s| s == statement),
                    "{}: {id} does not cite {statement} under MQTT {version}",
                    path.display()
                );
            }
            assert!(
                deviation.evidence.as_deref().is_some_and(|e| e.contains("trace")),
                "{}: {id} needs evidence",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "client deviations checked: {checked}");
}

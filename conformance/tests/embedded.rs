//! The reference broker must pass every built-in scenario it does not skip: a failure here
//! is a broker bug to fix, never a deviation to record (its profile is empty).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use mqttkit_conformance::OutcomeKind;
use mqttkit_conformance::profile::Profile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_broker_passes_every_scenario() {
    let config = mqttkit_broker::Config { listen: "127.0.0.1:0".into(), ..mqttkit_broker::Config::default() };
    let broker = mqttkit_broker::Broker::start(config).await.expect("broker starts");
    let address = format!("mqtt://{}", broker.local_addr());
    let scenarios = common::built_in();
    let results =
        common::run(scenarios, common::config(&address, 1.0, Profile::default()), Duration::from_secs(180)).await;
    broker.shutdown().await;
    let bad: Vec<_> =
        results.iter().filter(|r| !matches!(r.outcome.kind, OutcomeKind::Pass | OutcomeKind::Skip)).collect();
    assert!(bad.is_empty(), "{}", common::summary(&results));
    let passed = results.iter().filter(|r| r.outcome.kind == OutcomeKind::Pass).count();
    assert!(passed >= 400, "only {passed} runs passed:\n{}", common::summary(&results));
}

//! The reference broker must pass every built-in scenario: a failure here is a broker bug to
//! fix, never a deviation to record (its profile lists no deviations).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use mqttkit_conformance::profile::Profile;
use mqttkit_conformance::{OutcomeKind, embedded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_broker_passes_every_scenario() {
    let broker = mqttkit_broker::Broker::start(embedded::embedded_config()).await.expect("broker starts");
    let address = format!("mqtt://{}", broker.local_addr());
    let profile = Profile { refused_topic: Some(embedded::REFUSED_TOPIC.into()), ..Profile::default() };
    let results =
        common::run(common::built_in(), common::config(&address, 1.0, profile), Duration::from_secs(180)).await;
    broker.shutdown().await;
    // Nothing is skipped either: the embedded broker offers every capability a scenario can
    // require, including a refused topic.
    let bad: Vec<_> = results.iter().filter(|r| r.outcome.kind != OutcomeKind::Pass).collect();
    assert!(bad.is_empty(), "{}", common::summary(&results));
    let passed = results.iter().filter(|r| r.outcome.kind == OutcomeKind::Pass).count();
    assert!(passed >= 400, "only {passed} runs passed:\n{}", common::summary(&results));
}

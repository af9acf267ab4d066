//! Shared helpers for the runner tests: running built-in scenarios against an address.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod proxy;
pub mod synthetic;
pub mod tls;

use std::collections::BTreeMap;
use std::time::Duration;

use mqttkit_conformance::engine::{self, Capabilities, RunConfig};
use mqttkit_conformance::profile::Profile;
use mqttkit_conformance::scenario::{self, Scenario};
use mqttkit_conformance::transport::{Address, Connector, TlsOptions};
use mqttkit_conformance::{ScenarioResult, Version};

pub fn built_in() -> Vec<Scenario> {
    scenario::built_in().expect("built-in scenarios load")
}

pub fn config(address: &str, time_scale: f64, profile: Profile) -> RunConfig {
    let connector =
        Connector::new(Address::parse(address).expect("address"), &TlsOptions::default()).expect("connector");
    RunConfig {
        connector,
        jobs: 8,
        time_scale,
        max_duration: Duration::from_secs(120),
        username: None,
        password: None,
        profile,
        confirm: 1,
    }
}

/// Run `scenarios` (both versions) and fail the test if the run is not bounded.
pub async fn run(scenarios: Vec<Scenario>, config: RunConfig, bound: Duration) -> Vec<ScenarioResult> {
    let caps: BTreeMap<Version, Capabilities> =
        Version::ALL.iter().map(|v| (*v, Capabilities::from_profile(&config.profile))).collect();
    tokio::time::timeout(bound, engine::run(scenarios, &Version::ALL, config, caps, engine::Hooks::default()))
        .await
        .expect("the run finished within its bound")
        .results
}

pub fn summary(results: &[ScenarioResult]) -> String {
    results
        .iter()
        .map(|r| {
            format!("{} [{}] {}: {}\n", r.id, r.version, r.outcome.kind, r.outcome.reason.as_deref().unwrap_or(""))
        })
        .collect()
}

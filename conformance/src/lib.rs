//! # mqttkit-conformance
//!
//! A scenario-driven conformance runner for MQTT 3.1.1 and 5.0 brokers. Scenarios are
//! data (TOML files, see `SCENARIOS.md`); every client is a raw codec-level connection so
//! scenarios can send what normal client libraries refuse; every step has a timeout and a
//! timeout is never a pass. Verdicts cite the normative statements of the standard, taken
//! from the statement catalogue embedded in the crate. In client mode ([`clients`]) the
//! runner plays the broker and checks MQTT client libraries the same way.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]

pub mod catalogue;
pub mod cli;
pub mod client;
pub mod clients;
pub mod embedded;
pub mod engine;
pub mod matcher;
pub mod observed;
pub mod outcome;
pub mod outgoing;
pub mod probe;
pub mod profile;
pub mod properties;
pub mod reports;
pub mod scenario;
pub mod template;
pub mod version;

/// The transports (`mqtt://`, `mqtts://`, `ws://`, `wss://`), shared with the client.
pub use mqttkit_client::transport;

pub use outcome::{Outcome, OutcomeKind, RunReport, ScenarioResult};
pub use scenario::Scenario;
pub use version::Version;

//! Deviations seen across scenario runs rather than by one of them: each kind is reported
//! once per version, against the statement that forbids it, never against the statements
//! of the scenario that happened to see it.

use std::collections::BTreeMap;

use super::apply_profile;
use crate::outcome::{Direction, Outcome, OutcomeKind, ScenarioResult, TraceEntry};
use crate::profile::Profile;
use crate::scenario::Level;
use crate::version::Version;

/// What was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingKind {
    /// A PUBLISH reached a run none of whose clients subscribed to a matching filter:
    /// [MQTT-3.3.2-3] in both versions ("The Topic Name in a PUBLISH packet sent by a Server
    /// to a subscribing Client MUST match the Subscription's Topic Filter").
    UnsolicitedPublish,
    /// Bytes after the server's own DISCONNECT: [MQTT-5.0: 3.14.4-1] ("After sending a
    /// DISCONNECT packet the sender MUST NOT send any more MQTT Control Packets on that
    /// Network Connection").
    AfterDisconnect,
}

impl FindingKind {
    /// Id of the synthetic result.
    pub const fn id(self) -> &'static str {
        match self {
            Self::UnsolicitedPublish => "runner.unsolicited-publish",
            Self::AfterDisconnect => "runner.packet-after-disconnect",
        }
    }

    const fn title(self) -> &'static str {
        match self {
            Self::UnsolicitedPublish => "The broker sends a PUBLISH only to clients with a matching subscription",
            Self::AfterDisconnect => "The broker sends nothing after its own DISCONNECT",
        }
    }

    const fn statement(self) -> &'static str {
        match self {
            Self::UnsolicitedPublish => "MQTT-3.3.2-3",
            Self::AfterDisconnect => "MQTT-3.14.4-1",
        }
    }

    const fn what(self) -> &'static str {
        match self {
            Self::UnsolicitedPublish => {
                "PUBLISH packets reached scenario runs none of whose clients subscribed to a matching filter"
            }
            Self::AfterDisconnect => "times the broker sent more bytes after its own DISCONNECT",
        }
    }
}

/// One observation.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What.
    pub kind: FindingKind,
    /// The version of the run that saw it.
    pub version: Version,
    /// The run that saw it (`id [version]`).
    pub scenario: String,
    /// The client that received it.
    pub client: String,
    /// The packet (or bytes) received.
    pub packet: String,
}

/// One result per kind and version.
pub fn results(found: &[Finding], profile: &Profile) -> Vec<ScenarioResult> {
    let mut grouped: BTreeMap<(FindingKind, Version), Vec<&Finding>> = BTreeMap::new();
    for finding in found {
        grouped.entry((finding.kind, finding.version)).or_default().push(finding);
    }
    grouped
        .into_iter()
        .map(|((kind, version), items)| {
            let trace = items
                .iter()
                .take(20)
                .map(|item| TraceEntry {
                    at_ms: 0,
                    client: item.client.clone(),
                    direction: Direction::Received,
                    summary: format!("in {}: {}", item.scenario, item.packet),
                    hex: String::new(),
                })
                .collect();
            let first = items.first().map(|i| format!("{} received {}", i.scenario, i.packet)).unwrap_or_default();
            let mut result = ScenarioResult {
                id: kind.id().into(),
                title: kind.title().into(),
                version,
                level: Level::Must,
                tags: vec!["observed".into()],
                statements: vec![kind.statement().into()],
                outcome: Outcome::new(OutcomeKind::Fail, format!("{} {}; e.g. {first}", items.len(), kind.what())),
                duration_ms: 0,
                trace,
                source: "runner (observed across scenario runs)".into(),
                attempts: Vec::new(),
            };
            apply_profile(profile, &mut result);
            result
        })
        .collect()
}

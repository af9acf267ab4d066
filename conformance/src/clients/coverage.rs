//! Client-side statement coverage: the statements that bind a client (or both sides), and
//! of those the ones a test server can observe (`client_observable` in the catalogue).

use std::collections::BTreeMap;

use super::scenario::ClientScenario;
use crate::catalogue::Catalogue;
use crate::outcome::{ScenarioResult, StatementCoverage, VersionCoverage};
use crate::version::Version;

/// Per version: every client-side statement, the client scenarios citing it and how they
/// fared; `observable` there means observable by a server.
pub fn client_coverage(
    catalogue: &Catalogue,
    scenarios: &[ClientScenario],
    results: &[ScenarioResult],
    versions: &[Version],
) -> Vec<VersionCoverage> {
    versions
        .iter()
        .map(|&version| {
            let mut citing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for scenario in scenarios {
                for id in scenario.meta.statements_for(version) {
                    citing.entry(id.as_str()).or_default().push(scenario.meta.id.clone());
                }
            }
            let statements: Vec<StatementCoverage> = catalogue
                .statements(version)
                .iter()
                .filter(|s| s.binds != "server")
                .map(|statement| StatementCoverage {
                    id: statement.id.clone(),
                    level: statement.level.clone(),
                    observable: statement.client_observable,
                    summary: statement.summary.clone(),
                    scenarios: citing.get(statement.id.as_str()).cloned().unwrap_or_default(),
                    outcomes: results
                        .iter()
                        .filter(|r| r.version == version && r.statements.contains(&statement.id))
                        .map(|r| (r.id.clone(), r.outcome.kind))
                        .collect(),
                })
                .collect();
            let observable_total = statements.iter().filter(|s| s.observable).count();
            let observable_covered = statements.iter().filter(|s| s.observable && !s.scenarios.is_empty()).count();
            VersionCoverage { version, statements, observable_total, observable_covered }
        })
        .collect()
}

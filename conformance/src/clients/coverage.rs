//! Client-side statement coverage: the statements that bind a client (or both sides), and
//! of those the ones a test server can observe (`client_observable` in the catalogue).

use super::scenario::ClientScenario;
use crate::catalogue::Catalogue;
use crate::outcome::{ScenarioResult, VersionCoverage};
use crate::version::Version;

/// Per version: every client-side statement, the client scenarios citing it and how they
/// fared (the broker side's coverage, narrowed); `observable` there means observable by a
/// server.
pub fn client_coverage(
    catalogue: &Catalogue,
    scenarios: &[ClientScenario],
    results: &[ScenarioResult],
    versions: &[Version],
) -> Vec<VersionCoverage> {
    let metas: Vec<_> = scenarios.iter().map(|s| s.meta.clone()).collect();
    let mut coverage = crate::reports::coverage(catalogue, &metas, results, versions);
    for version in &mut coverage {
        version.statements.retain_mut(|statement| {
            match catalogue.get(version.version, &statement.id).filter(|s| s.binds != "server") {
                Some(entry) => {
                    statement.observable = entry.client_observable;
                    true
                }
                None => false,
            }
        });
        version.observable_total = version.statements.iter().filter(|s| s.observable).count();
        version.observable_covered =
            version.statements.iter().filter(|s| s.observable && !s.scenarios.is_empty()).count();
    }
    coverage
}

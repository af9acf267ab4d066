//! JSON report: every scenario run with id, statements, level, version, outcome, duration
//! and evidence trace, plus coverage.

use crate::outcome::RunReport;

/// Render.
pub fn render(report: &RunReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

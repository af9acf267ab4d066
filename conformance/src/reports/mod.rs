//! Reports rendered from a [`RunReport`]: console summary, JSON, JUnit XML, Markdown, HTML.

pub mod console;
pub mod digest;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod matrix;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::catalogue::Catalogue;
use crate::outcome::{OutcomeKind, ScenarioResult, StatementCoverage, VersionCoverage};
use crate::scenario::Scenario;
use crate::version::Version;

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// JUnit XML.
    Junit,
    /// Markdown.
    Markdown,
    /// Self-contained HTML.
    Html,
}

/// `--report FORMAT=FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTarget {
    /// Format.
    pub format: Format,
    /// Output file.
    pub path: PathBuf,
}

impl std::str::FromStr for ReportTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (format, path) = text.split_once('=').ok_or("expected FORMAT=FILE, e.g. json=report.json")?;
        let format = match format {
            "json" => Format::Json,
            "junit" | "xml" => Format::Junit,
            "md" | "markdown" => Format::Markdown,
            "html" => Format::Html,
            other => return Err(format!("unknown report format `{other}` (json, junit, md, html)")),
        };
        if path.is_empty() {
            return Err("missing file name after `=`".into());
        }
        Ok(Self { format, path: PathBuf::from(path) })
    }
}

/// Render a report.
pub fn render(format: Format, report: &crate::outcome::RunReport) -> String {
    match format {
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
    }
}

/// Statement coverage: which scenarios cite each statement and how they fared.
pub fn coverage(
    catalogue: &Catalogue,
    scenarios: &[Scenario],
    results: &[ScenarioResult],
    versions: &[Version],
) -> Vec<VersionCoverage> {
    versions
        .iter()
        .map(|&version| {
            let mut citing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for scenario in scenarios {
                for id in scenario.statements_for(version) {
                    citing.entry(id.as_str()).or_default().push(scenario.id.clone());
                }
            }
            let statements: Vec<StatementCoverage> = catalogue
                .statements(version)
                .iter()
                .map(|statement| {
                    let scenario_ids = citing.get(statement.id.as_str()).cloned().unwrap_or_default();
                    let outcomes = results
                        .iter()
                        .filter(|r| r.version == version && r.statements.contains(&statement.id))
                        .map(|r| (r.id.clone(), r.outcome.kind))
                        .collect();
                    StatementCoverage {
                        id: statement.id.clone(),
                        level: statement.level.clone(),
                        observable: statement.observable,
                        summary: statement.summary.clone(),
                        scenarios: scenario_ids,
                        outcomes,
                    }
                })
                .collect();
            let observable_total = statements.iter().filter(|s| s.observable).count();
            let observable_covered = statements.iter().filter(|s| s.observable && !s.scenarios.is_empty()).count();
            VersionCoverage { version, statements, observable_total, observable_covered }
        })
        .collect()
}

/// Counts per group (tag or level) and outcome kind.
pub fn grouped_counts<'a>(
    results: &'a [ScenarioResult],
    key: impl Fn(&'a ScenarioResult) -> Vec<String>,
) -> BTreeMap<String, BTreeMap<OutcomeKind, usize>> {
    let mut groups: BTreeMap<String, BTreeMap<OutcomeKind, usize>> = BTreeMap::new();
    for result in results {
        for group in key(result) {
            *groups.entry(group).or_default().entry(result.outcome.kind).or_insert(0) += 1;
        }
    }
    groups
}

/// Escape text for XML and HTML.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow, even escaped.
            c if ((c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
    out
}

/// A failure's explanation as plain text lines.
pub fn failure_text(result: &ScenarioResult) -> String {
    let outcome = &result.outcome;
    let mut text = String::new();
    if let Some(reason) = &outcome.reason {
        text.push_str(reason);
        text.push('\n');
    }
    if let (Some(step), Some(line)) = (outcome.step, outcome.line) {
        text.push_str(&format!("at step {step} ({}:{line})\n", result.source));
    }
    if let Some(expected) = &outcome.expected {
        text.push_str(&format!("expected: {expected}\n"));
    }
    if let Some(actual) = &outcome.actual {
        text.push_str(&format!("got:      {actual}\n"));
    }
    text
}

/// A trace as plain text.
pub fn trace_text(result: &ScenarioResult) -> String {
    result.trace.iter().map(|entry| format!("{entry}\n")).collect()
}

//! The coloured summary printed at the end of a run, and the `--coverage` listing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use console::style;

use super::{failure_text, grouped_counts, trace_text};
use crate::outcome::{OutcomeKind, RunReport, VersionCoverage};

fn styled(kind: OutcomeKind, text: String) -> String {
    match kind {
        OutcomeKind::Pass => style(text).green().to_string(),
        OutcomeKind::Fail | OutcomeKind::Error => style(text).red().bold().to_string(),
        OutcomeKind::Skip => style(text).dim().to_string(),
        OutcomeKind::KnownDeviation => style(text).yellow().to_string(),
        OutcomeKind::Inconclusive => style(text).magenta().to_string(),
    }
}

fn row(out: &mut String, name: &str, counts: &BTreeMap<OutcomeKind, usize>) {
    let _ = write!(out, "  {name:<22}");
    for kind in OutcomeKind::ALL {
        let n = counts.get(&kind).copied().unwrap_or(0);
        let cell = format!("{n:>10}");
        out.push_str(&if n == 0 { style(cell).dim().to_string() } else { styled(kind, cell) });
    }
    out.push('\n');
}

/// The end-of-run summary: failures with evidence first, then the count tables.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    for r in report.results.iter().filter(|r| matches!(r.outcome.kind, OutcomeKind::Fail | OutcomeKind::Error)) {
        let _ = writeln!(
            out,
            "\n{} {} [{}] {} — {}",
            styled(r.outcome.kind, r.outcome.kind.label().to_uppercase()),
            style(&r.id).bold(),
            r.version,
            r.level,
            r.title
        );
        let _ = writeln!(out, "  statements: {}", r.statements.join(", "));
        for line in failure_text(r).lines() {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out, "  trace:");
        for line in trace_text(r).lines() {
            let _ = writeln!(out, "  {}", style(line).dim());
        }
    }
    for r in report.results.iter().filter(|r| {
        matches!(r.outcome.kind, OutcomeKind::KnownDeviation | OutcomeKind::Inconclusive | OutcomeKind::Skip)
    }) {
        let _ = writeln!(
            out,
            "{} {} [{}]: {}",
            styled(r.outcome.kind, r.outcome.kind.label().to_owned()),
            r.id,
            r.version,
            r.outcome.reason.as_deref().unwrap_or("")
        );
    }
    let _ = write!(out, "\n{}\n  {:<22}", style(format!("Summary — {}", report.target)).bold(), "");
    for label in ["pass", "fail", "skip", "deviation", "inconcl.", "error"] {
        let _ = write!(out, "{label:>10}");
    }
    out.push('\n');
    row(&mut out, "all", &report.counts());
    for (group, counts) in grouped_counts(&report.results, |r| vec![format!("MQTT {}", r.version)]) {
        row(&mut out, &group, &counts);
    }
    for (group, counts) in grouped_counts(&report.results, |r| vec![r.level.to_string()]) {
        row(&mut out, &group, &counts);
    }
    for (group, counts) in grouped_counts(&report.results, |r| r.tags.iter().map(|t| format!("#{t}")).collect()) {
        row(&mut out, &group, &counts);
    }
    let _ = writeln!(out, "  ({:.1} s)", report.duration_ms as f64 / 1000.0);
    out
}

/// `--coverage`: per statement, the scenarios covering it; then the uncovered observable ones.
pub fn coverage(coverage: &[VersionCoverage]) -> String {
    let mut out = String::new();
    for version in coverage {
        let _ = writeln!(
            out,
            "{}",
            style(format!(
                "MQTT {}: {} of {} observable statements covered",
                version.version, version.observable_covered, version.observable_total
            ))
            .bold()
        );
        for s in version.statements.iter().filter(|s| !s.scenarios.is_empty()) {
            let _ = writeln!(out, "  {:<16} {:<9} {}", s.id, s.level, s.scenarios.join(", "));
        }
        let uncovered: Vec<_> = version.statements.iter().filter(|s| s.observable && s.scenarios.is_empty()).collect();
        if !uncovered.is_empty() {
            let _ = writeln!(
                out,
                "  {}",
                style(format!("uncovered observable statements ({}):", uncovered.len())).yellow()
            );
            for s in uncovered {
                let _ = writeln!(out, "  {:<16} {:<9} {}", s.id, s.level, style(&s.summary).dim());
            }
        }
        out.push('\n');
    }
    out
}

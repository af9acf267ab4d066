//! Terminal output: what the probe found (first), one line per result that is not a pass
//! (as they come), and the summary with the verdict (last). Full expectations and traces
//! only with `--verbose`; the reports always have them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use console::style;

use super::{digest, failure_text, grouped_counts, trace_text};
use crate::outcome::{OutcomeKind, RunReport, ScenarioResult, Support, VersionCoverage, VersionSupport};
use crate::scenario::Scenario;

fn styled(kind: OutcomeKind, text: String) -> String {
    match kind {
        OutcomeKind::Pass => style(text).green().to_string(),
        OutcomeKind::Fail | OutcomeKind::Error => style(text).red().bold().to_string(),
        OutcomeKind::Skip => style(text).dim().to_string(),
        OutcomeKind::KnownDeviation => style(text).yellow().to_string(),
        OutcomeKind::Inconclusive => style(text).magenta().to_string(),
    }
}

/// The probe's findings, one line per version: the first lines of every run.
pub fn versions(versions: &[VersionSupport], selected: &[Scenario]) -> String {
    let mut out = String::new();
    for v in versions {
        let runs = selected.iter().filter(|s| s.versions.contains(&v.version)).count();
        let words = digest::support_words(v);
        let status = if v.support == Support::Supported { style(words).green() } else { style(words).yellow() };
        let consequence = match (v.selected, v.support) {
            (true, Support::Supported) => String::new(),
            _ => format!(" ({})", digest::support_consequence(v, runs)),
        };
        let _ = writeln!(out, "  MQTT {:<6} {status}: {}{consequence}", v.version.label(), v.evidence);
    }
    out
}

/// One line for a result: outcome, id, version, level, statements, reason.
pub fn result_line(r: &ScenarioResult, verbose: bool) -> String {
    let reason = r.outcome.reason.as_deref().unwrap_or("").lines().next().unwrap_or("");
    let mut line = format!(
        "{} {} [{}] {} {}: {reason}",
        styled(r.outcome.kind, format!("{:<15}", r.outcome.kind.label().to_uppercase())),
        style(&r.id).bold(),
        r.version,
        r.level,
        r.statements.join(","),
    );
    if verbose && r.outcome.kind != OutcomeKind::Pass {
        for text in failure_text(r).lines().skip(1) {
            let _ = write!(line, "\n    {text}");
        }
        for text in trace_text(r).lines() {
            let _ = write!(line, "\n    {}", style(text).dim());
        }
    }
    line
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

/// The end-of-run summary: skips grouped by reason, the count tables, then the verdict.
pub fn summary(report: &RunReport, verbose: bool) -> String {
    let mut out = String::new();
    if verbose {
        for r in report.results.iter().filter(|r| matches!(r.outcome.kind, OutcomeKind::Fail | OutcomeKind::Error)) {
            let _ = writeln!(out, "\n{}", result_line(r, true));
        }
    }
    let skips = digest::skip_groups(&report.results);
    if !skips.is_empty() {
        let _ = writeln!(out, "\n{}", style("Skipped").bold());
        for group in &skips {
            let _ = writeln!(out, "  {:>4} × [{}] {}", group.count(), group.versions_text(), group.reason);
        }
    }
    if let Some(stopped) = &report.broker_stopped {
        let _ = writeln!(
            out,
            "\n{} the broker stopped answering ({}) during {}; later scenarios were not run",
            style("BROKER STOPPED:").red().bold(),
            stopped.evidence,
            stopped.during.join(" or ")
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
    let verdict = report.verdict();
    let _ = writeln!(
        out,
        "\n{} ({} — {}; {:.1} s; exit {})",
        if verdict.exit_code == 0 {
            style(verdict.headline.clone()).green().bold()
        } else {
            style(verdict.headline.clone()).red().bold()
        },
        report.runner,
        report.profile.as_ref().map(|p| format!("profile {p}")).unwrap_or_else(|| "no broker profile".into()),
        report.duration_ms as f64 / 1000.0,
        verdict.exit_code
    );
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

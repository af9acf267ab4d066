//! Markdown report: summary tables, failures with traces, statement coverage.

use std::fmt::Write as _;

use super::{failure_text, grouped_counts, trace_text};
use crate::outcome::{OutcomeKind, RunReport};

fn counts_row(counts: &std::collections::BTreeMap<OutcomeKind, usize>) -> String {
    OutcomeKind::ALL.iter().map(|k| format!(" {} |", counts.get(k).copied().unwrap_or(0))).collect()
}

fn header() -> String {
    let names: String = OutcomeKind::ALL.iter().map(|k| format!(" {k} |")).collect();
    let rule: String = OutcomeKind::ALL.iter().map(|_| "---:|").collect();
    format!("| group |{names}\n|---|{rule}\n")
}

/// Render.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# MQTT conformance: {}\n", report.target);
    if let Some(profile) = &report.profile {
        let _ = writeln!(out, "Broker profile: {profile}\n");
    }
    let _ = writeln!(
        out,
        "{} scenario runs in {:.1} s ({}).\n",
        report.results.len(),
        report.duration_ms as f64 / 1000.0,
        report.runner
    );
    out.push_str("## Summary\n\n");
    out.push_str(&header());
    let _ = writeln!(out, "| **all** |{}", counts_row(&report.counts()));
    for (version, counts) in grouped_counts(&report.results, |r| vec![format!("MQTT {}", r.version)]) {
        let _ = writeln!(out, "| {version} |{}", counts_row(&counts));
    }
    for (level, counts) in grouped_counts(&report.results, |r| vec![r.level.to_string()]) {
        let _ = writeln!(out, "| {level} |{}", counts_row(&counts));
    }
    for (tag, counts) in grouped_counts(&report.results, |r| r.tags.iter().map(|t| format!("`{t}`")).collect()) {
        let _ = writeln!(out, "| {tag} |{}", counts_row(&counts));
    }
    out.push_str(
        "\n## Results\n\n| scenario | version | level | statements | outcome | ms |\n|---|---|---|---|---|---:|\n",
    );
    for r in &report.results {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            r.id,
            r.version,
            r.level,
            r.statements.join(", "),
            r.outcome.kind,
            r.duration_ms
        );
    }
    let problems: Vec<_> = report.results.iter().filter(|r| r.outcome.kind != OutcomeKind::Pass).collect();
    if !problems.is_empty() {
        out.push_str("\n## Not passed\n");
        for r in problems {
            let _ = writeln!(out, "\n### `{}` [{}] — {}\n\n{}\n", r.id, r.version, r.outcome.kind, r.title);
            let _ = writeln!(out, "```text\n{}\n{}```", failure_text(r), trace_text(r));
        }
    }
    out.push_str("\n## Statement coverage\n");
    for coverage in &report.coverage {
        let _ = writeln!(
            out,
            "\n### MQTT {}: {} of {} observable statements covered\n\n| statement | level | observable | scenarios | outcomes |\n|---|---|---|---|---|",
            coverage.version, coverage.observable_covered, coverage.observable_total
        );
        for s in &coverage.statements {
            let outcomes: Vec<String> = s.outcomes.iter().map(|(id, kind)| format!("{id}: {kind}")).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                s.id,
                s.level,
                if s.observable { "yes" } else { "no" },
                s.scenarios.join(", "),
                outcomes.join(", ")
            );
        }
    }
    out
}

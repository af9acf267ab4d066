//! Markdown report, readable at any size: the verdict and the protocol versions first, a
//! compact summary, skips grouped by reason, one table row per other non-pass, details of
//! the failures within a size budget, and the statement coverage reduced to what did not pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::digest::{self, TRACE_TAIL};
use super::grouped_counts;
use crate::outcome::{OutcomeKind, RunReport, ScenarioResult, VersionCoverage};
use crate::scenario::Level;

/// The size a report aims at: failure details fill what the other sections leave of it
/// (at least [`DETAILS_FLOOR`]); failures past it keep their table row, and the HTML and
/// JSON reports have their details.
const REPORT_BUDGET: usize = 128 * 1024;

/// Bytes of failure details a report always has room for.
const DETAILS_FLOOR: usize = 16 * 1024;

/// Bytes of a packet's wire form shown in a trace.
const HEX_BYTES: usize = 32;

/// Text for a Markdown line or table cell: one line, `|` escaped, no HTML.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block whose fence no line of `text` can close.
fn code_block(out: &mut String, text: &str) {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let _ = writeln!(out, "{fence}text\n{}{}{fence}\n", text, if text.ends_with('\n') { "" } else { "\n" });
}

/// Render.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    heading(&mut out, report);
    versions(&mut out, report);
    summary(&mut out, report);
    skips(&mut out, report);
    let listed = non_passes(&mut out, report);
    let mut statements = String::new();
    for version in report.coverage.iter().filter(|c| report.results.iter().any(|r| r.version == c.version)) {
        coverage(&mut statements, version);
    }
    let budget = REPORT_BUDGET.saturating_sub(out.len() + statements.len()).max(DETAILS_FLOOR);
    failure_details(&mut out, &listed, budget);
    out.push_str(&statements);
    out
}

fn heading(out: &mut String, report: &RunReport) {
    let verdict = report.verdict();
    let _ = writeln!(out, "# MQTT conformance: {}\n", md(&report.target));
    let _ = writeln!(
        out,
        "**{}** (exit status {}: {})\n",
        md(&verdict.headline),
        verdict.exit_code,
        digest::exit_meaning(verdict.exit_code)
    );
    let _ = writeln!(out, "- Broker: {}", md(&report.target));
    let _ = writeln!(
        out,
        "- Profile: {}",
        report.profile.as_deref().map_or_else(|| "none (no broker profile)".to_owned(), md)
    );
    let scale = if report.time_scale == 1.0 { String::new() } else { format!(", time scale {}", report.time_scale) };
    let _ = writeln!(
        out,
        "- Run: {} scenario runs, started {}, {:.1} s{scale}, {}\n",
        report.results.len(),
        digest::utc_date(report.started_unix),
        report.duration_ms as f64 / 1000.0,
        md(&report.runner)
    );
    for (heading, text) in digest::run_notes(report) {
        let _ = writeln!(out, "> **{heading}:** {}\n", md(&text));
    }
}

fn versions(out: &mut String, report: &RunReport) {
    if report.versions.is_empty() {
        return;
    }
    out.push_str(
        "## Protocol versions\n\n| version | the probe found | evidence | scenario runs |\n|---|---|---|---|\n",
    );
    for v in &report.versions {
        let runs = report.results.iter().filter(|r| r.version == v.version).count();
        let _ = writeln!(
            out,
            "| MQTT {} | {} | {} | {} |",
            v.version,
            md(&digest::support_words(v)),
            md(&v.evidence),
            digest::support_consequence(v, runs)
        );
    }
    out.push('\n');
}

fn counts_row(name: &str, counts: &BTreeMap<OutcomeKind, usize>) -> String {
    let cells: String =
        OutcomeKind::ALL.iter().map(|k| format!(" {} |", counts.get(k).copied().unwrap_or(0))).collect();
    format!("| {name} |{cells}\n")
}

fn summary(out: &mut String, report: &RunReport) {
    let names: String = OutcomeKind::ALL.iter().map(|k| format!(" {k} |")).collect();
    let rule: String = OutcomeKind::ALL.iter().map(|_| "---:|").collect();
    let _ = write!(out, "## Summary\n\n| runs |{names}\n|---|{rule}\n");
    out.push_str(&counts_row("**all**", &report.counts()));
    for (group, counts) in grouped_counts(&report.results, |r| vec![format!("MQTT {}", r.version)]) {
        out.push_str(&counts_row(&group, &counts));
    }
    for (group, counts) in grouped_counts(&report.results, |r| vec![r.level.to_string()]) {
        out.push_str(&counts_row(&group, &counts));
    }
    out.push('\n');
}

fn skips(out: &mut String, report: &RunReport) {
    let groups = digest::skip_groups(&report.results);
    if groups.is_empty() {
        return;
    }
    let total: usize = groups.iter().map(digest::SkipGroup::count).sum();
    let _ = write!(
        out,
        "## Skipped: {}, {}\n\n| runs | versions | reason |\n|---:|---|---|\n",
        digest::plural(total, "run", "runs"),
        digest::plural(groups.len(), "reason", "reasons")
    );
    for group in &groups {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            group.count(),
            group.versions_text(),
            md(&digest::one_line(&group.reason, 300))
        );
    }
    out.push('\n');
}

/// One row per non-pass that is not a skip; returns them.
fn non_passes<'a>(out: &mut String, report: &'a RunReport) -> Vec<&'a ScenarioResult> {
    let listed = digest::non_passes(&report.results, false);
    if listed.is_empty() {
        return listed;
    }
    let counts: Vec<String> = digest::WORST_FIRST
        .iter()
        .filter_map(|&kind| {
            let n = listed.iter().filter(|r| r.outcome.kind == kind).count();
            (n > 0).then(|| format!("{n} {kind}"))
        })
        .collect();
    let _ = write!(
        out,
        "## Not passed: {}\n\n| outcome | scenario | version | level | statements | reason |\n|---|---|---|---|---|---|\n",
        counts.join(", ")
    );
    for r in &listed {
        let kind = if r.outcome.kind == OutcomeKind::Fail { "**fail**".to_owned() } else { r.outcome.kind.to_string() };
        let _ = writeln!(
            out,
            "| {kind} | `{}` | {} | {} | {} | {} |",
            md(&r.id),
            r.version,
            r.level,
            md(&r.statements.join(", ")),
            md(&digest::reason_line(r))
        );
    }
    out.push('\n');
    listed
}

/// One failure: where it failed, what was expected and seen, and its bounded traces.
fn failure_detail(r: &ScenarioResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### `{}` [{}] {}\n", md(&r.id), r.version, md(&r.title));
    let at = match (r.outcome.step, r.outcome.line) {
        (Some(step), Some(line)) => format!(" · step {step} at `{}:{line}`", md(&r.source)),
        _ => format!(" · `{}`", md(&r.source)),
    };
    let _ = writeln!(out, "{} · {}{at}\n", r.level, md(&r.statements.join(", ")));
    let mut text = String::new();
    for line in r.outcome.reason.as_deref().unwrap_or("").lines() {
        let _ = writeln!(text, "{}", digest::one_line(line, 500));
    }
    if let Some(expected) = &r.outcome.expected {
        let _ = writeln!(text, "expected: {}", digest::one_line(expected, 500));
    }
    if let Some(actual) = &r.outcome.actual {
        let _ = writeln!(text, "got:      {}", digest::one_line(actual, 500));
    }
    for trace in digest::traces(r) {
        text.push('\n');
        if !trace.label.is_empty() {
            let _ = writeln!(text, "— {}", trace.label);
        }
        text.push_str(&digest::bounded_trace_text(trace.trace, HEX_BYTES));
    }
    code_block(&mut out, &text);
    out
}

/// Details of as many failures as fit in `budget` bytes: MUST failures first, and one per
/// distinct reason before a second of the same reason, shown in table order.
fn failure_details(out: &mut String, listed: &[&ScenarioResult], budget: usize) {
    let failures: Vec<&ScenarioResult> =
        listed.iter().copied().filter(|r| r.outcome.kind == OutcomeKind::Fail).collect();
    if failures.is_empty() {
        return;
    }
    let mut order: Vec<usize> = (0..failures.len()).collect();
    let mut seen = BTreeSet::new();
    let first_of_reason: Vec<bool> = failures.iter().map(|r| seen.insert(digest::reason_line(r))).collect();
    order.sort_by_key(|&i| (failures[i].level != Level::Must, !first_of_reason[i], i));
    let mut chosen: BTreeMap<usize, String> = BTreeMap::new();
    let mut used = 0;
    for i in order {
        let detail = failure_detail(failures[i]);
        if used + detail.len() <= budget {
            used += detail.len();
            chosen.insert(i, detail);
        }
    }
    let _ = write!(
        out,
        "## Failures in detail\n\nTraces show their last {TRACE_TAIL} entries; the JSON report has every entry."
    );
    let left_out = failures.len() - chosen.len();
    if left_out > 0 {
        let _ = write!(
            out,
            " {left_out} of the {} failures are not detailed here, to keep this report small: their reasons are in \
             the table above, their traces in the HTML and JSON reports.",
            failures.len()
        );
    }
    out.push_str("\n\n");
    for detail in chosen.values() {
        out.push_str(detail);
    }
}

/// Scenarios named per statement in the coverage table (the table of non-passes above
/// names every scenario's statements).
const SCENARIOS_PER_STATEMENT: usize = 2;

/// Per version: how much is covered, the statements with a non-pass outcome, and the ids
/// of those only skipped and of the uncovered observable ones (not the matrix of passes).
fn coverage(out: &mut String, version: &VersionCoverage) {
    let bad = |s: &&crate::outcome::StatementCoverage| {
        s.outcomes.values().any(|k| !matches!(k, OutcomeKind::Pass | OutcomeKind::Skip))
    };
    let not_passed: Vec<_> = version.statements.iter().filter(bad).collect();
    let only_skipped: Vec<&str> = version
        .statements
        .iter()
        .filter(|s| !s.outcomes.is_empty() && s.outcomes.values().all(|k| *k == OutcomeKind::Skip))
        .map(|s| s.id.as_str())
        .collect();
    // Passed wherever it ran (some of its scenarios may have been skipped).
    let all_passed =
        version.statements.iter().filter(|s| s.outcomes.values().any(|k| *k == OutcomeKind::Pass) && !bad(s)).count();
    let uncovered: Vec<&str> =
        version.statements.iter().filter(|s| s.observable && s.scenarios.is_empty()).map(|s| s.id.as_str()).collect();
    let _ = writeln!(
        out,
        "## Statement coverage, MQTT {}\n\n{} of {} observable statements are cited by a scenario. Of the statements \
         checked in this run, {all_passed} passed wherever they ran, {} had another outcome, {} were only skipped.\n",
        version.version,
        version.observable_covered,
        version.observable_total,
        not_passed.len(),
        only_skipped.len()
    );
    if !not_passed.is_empty() {
        out.push_str("| statement | level | outcomes | scenarios not passed |\n|---|---|---|---|\n");
        for s in &not_passed {
            let mut counts: BTreeMap<usize, (OutcomeKind, usize)> = BTreeMap::new();
            for &kind in s.outcomes.values() {
                counts.entry(digest::severity(kind)).or_insert((kind, 0)).1 += 1;
            }
            let counts: Vec<String> = counts.values().map(|(kind, n)| format!("{n} {kind}")).collect();
            let mut not_passed: Vec<_> = s.outcomes.iter().filter(|(_, k)| **k != OutcomeKind::Pass).collect();
            not_passed.sort_by_key(|(id, kind)| (digest::severity(**kind), id.as_str()));
            let mut scenarios: Vec<String> = not_passed
                .iter()
                .take(SCENARIOS_PER_STATEMENT)
                .map(|(id, kind)| format!("`{}` {kind}", md(id)))
                .collect();
            if not_passed.len() > SCENARIOS_PER_STATEMENT {
                scenarios.push(format!("{} more", not_passed.len() - SCENARIOS_PER_STATEMENT));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md(&s.id),
                md(&s.level),
                counts.join(", "),
                scenarios.join(", ")
            );
        }
        out.push('\n');
    }
    if all_passed == 0 && not_passed.is_empty() {
        let _ =
            writeln!(out, "No statement of MQTT {} was checked: every scenario run was skipped.\n", version.version);
    } else if !only_skipped.is_empty() {
        let _ = writeln!(out, "Only skipped ({}): {}\n", only_skipped.len(), md(&only_skipped.join(", ")));
    }
    if !uncovered.is_empty() {
        let _ =
            writeln!(out, "Observable but cited by no scenario ({}): {}\n", uncovered.len(), md(&uncovered.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_break_a_table_or_inject_html() {
        assert_eq!(md("a|b<script>\nc"), "a\\|b&lt;script&gt; c");
    }

    #[test]
    fn a_code_block_outlasts_any_fence_in_its_text() {
        let mut out = String::new();
        code_block(&mut out, "x\n````\ny");
        assert!(out.starts_with("`````text\n"), "{out}");
        assert!(out.ends_with("\n`````\n\n"), "{out}");
    }
}

//! One self-contained HTML page (no external resource, works offline): a verdict banner,
//! the summary, skips grouped by reason, every scenario run filterable by outcome with its
//! details, and the per-statement matrix linking each statement to its scenario runs.
//! Everything a broker could have sent is escaped.

use std::fmt::Write as _;

use super::digest::{self, TRACE_TAIL};
use super::{escape_xml as esc, grouped_counts};
use crate::outcome::{OutcomeKind, RunReport, ScenarioResult, StatementCoverage, VersionCoverage};
use crate::version::Version;

const STYLE: &str = include_str!("assets/report.css");
const SCRIPT: &str = include_str!("assets/report.js");

/// Bytes of a packet's wire form shown in a trace.
const HEX_BYTES: usize = 64;

/// The anchor of a scenario run's details.
pub fn run_anchor(id: &str, version: Version) -> String {
    format!("run-{id}-{version}")
}

/// The banner's class for an exit status: passed, failed, or could not tell.
fn banner_class(exit_code: i32) -> &'static str {
    match exit_code {
        crate::outcome::exit::OK => "ok",
        crate::outcome::exit::MUST_FAILED => "bad",
        _ => "warn",
    }
}

/// Render.
pub fn render(report: &RunReport) -> String {
    let verdict = report.verdict();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>MQTT conformance: {} — {}</title><style>{STYLE}</style></head><body>",
        esc(&report.target),
        esc(&verdict.headline)
    );
    banner(&mut out, report);
    out.push_str("<main>");
    out.push_str("<div class=\"side-by-side\">");
    summary(&mut out, report);
    skips(&mut out, report);
    out.push_str("</div>");
    runs(&mut out, report);
    out.push_str("<section id=\"statements\"><h2>Statements</h2>");
    out.push_str(
        "<p>Each statement of the standard with the scenario runs citing it; a link opens the run's details. \
         Observable statements no scenario cites are marked.</p>",
    );
    for coverage in report.coverage.iter().filter(|c| report.results.iter().any(|r| r.version == c.version)) {
        statements(&mut out, coverage);
    }
    let _ = writeln!(out, "</section></main><script>{SCRIPT}</script></body></html>");
    out
}

fn banner(out: &mut String, report: &RunReport) {
    let verdict = report.verdict();
    let _ = write!(
        out,
        "<header id=\"verdict\" class=\"banner {}\"><h1>MQTT conformance report</h1><p class=\"headline\">{}</p><dl>",
        banner_class(verdict.exit_code),
        esc(&verdict.headline)
    );
    let _ =
        write!(out, "<dt>Broker</dt><dd><code>{}</code></dd><dt>Protocol versions</dt><dd><ul>", esc(&report.target));
    for v in &report.versions {
        let runs = report.results.iter().filter(|r| r.version == v.version).count();
        let _ = write!(
            out,
            "<li class=\"version-support\" data-version=\"{}\"><strong>MQTT {}: {}</strong> ({}) \
             <span class=\"evidence\">{}</span></li>",
            v.version,
            v.version,
            esc(&digest::support_words(v)),
            esc(&digest::support_consequence(v, runs)),
            esc(&v.evidence)
        );
    }
    let _ = write!(
        out,
        "</ul></dd><dt>Profile</dt><dd>{}</dd><dt>Date</dt><dd>{} ({:.1} s{})</dd><dt>Runner</dt><dd>{}</dd>\
         <dt>Exit status</dt><dd>{} ({})</dd></dl>",
        report.profile.as_deref().map_or_else(|| "none (no broker profile)".to_owned(), esc),
        digest::utc_date(report.started_unix),
        report.duration_ms as f64 / 1000.0,
        if report.time_scale == 1.0 { String::new() } else { format!(", time scale {}", report.time_scale) },
        esc(&report.runner),
        verdict.exit_code,
        digest::exit_meaning(verdict.exit_code)
    );
    for (heading, text) in digest::run_notes(report) {
        let _ = write!(out, "<p class=\"note\">{heading}: {}</p>", esc(&text));
    }
    out.push_str("</header>");
}

fn summary(out: &mut String, report: &RunReport) {
    out.push_str("<section id=\"summary\"><h2>Summary</h2><table><tr><th>scenario runs</th>");
    for kind in OutcomeKind::ALL {
        let _ = write!(out, "<th class=\"{kind}\">{kind}</th>");
    }
    out.push_str("</tr>");
    let mut groups = vec![("all".to_owned(), report.counts())];
    groups.extend(grouped_counts(&report.results, |r| vec![format!("MQTT {}", r.version)]));
    groups.extend(grouped_counts(&report.results, |r| vec![r.level.to_string()]));
    counts_rows(out, groups);
    out.push_str("</table>");
    let tags = grouped_counts(&report.results, |r| r.tags.clone());
    if !tags.is_empty() {
        let _ = write!(out, "<details><summary>By tag ({} tags)</summary><table><tr><th>tag</th>", tags.len());
        for kind in OutcomeKind::ALL {
            let _ = write!(out, "<th class=\"{kind}\">{kind}</th>");
        }
        out.push_str("</tr>");
        counts_rows(out, tags);
        out.push_str("</table></details>");
    }
    out.push_str("</section>");
}

fn counts_rows(
    out: &mut String,
    groups: impl IntoIterator<Item = (String, std::collections::BTreeMap<OutcomeKind, usize>)>,
) {
    for (group, counts) in groups {
        let _ = write!(out, "<tr><td>{}</td>", esc(&group));
        for kind in OutcomeKind::ALL {
            let n = counts.get(&kind).copied().unwrap_or(0);
            let class = if n == 0 { "n" } else { kind.label() };
            let _ = write!(out, "<td class=\"n {class}\">{n}</td>");
        }
        out.push_str("</tr>");
    }
}

fn skips(out: &mut String, report: &RunReport) {
    let groups = digest::skip_groups(&report.results);
    if groups.is_empty() {
        return;
    }
    out.push_str(
        "<section id=\"skips\"><h2>Skipped, by reason</h2><table><tr><th>runs</th><th>versions</th><th>reason</th></tr>",
    );
    for group in &groups {
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            group.count(),
            group.versions_text(),
            esc(&group.reason)
        );
    }
    out.push_str("</table></section>");
}

/// Every run, worst first: the non-passes shown, the passes behind their filter.
fn runs(out: &mut String, report: &RunReport) {
    let counts = report.counts();
    out.push_str("<section id=\"runs\"><h2>Scenario runs</h2><div id=\"filters\" hidden>Show: ");
    for kind in digest::WORST_FIRST {
        let n = counts.get(&kind).copied().unwrap_or(0);
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" name=\"kind\" value=\"{kind}\"{}> <span class=\"k {kind}\">{kind}</span> {n}</label>",
            if kind == OutcomeKind::Pass { "" } else { " checked" }
        );
    }
    out.push_str(
        "<button type=\"button\" id=\"expand-all\">Expand all</button>\
         <button type=\"button\" id=\"collapse-all\">Collapse all</button><span id=\"shown\"></span></div>\
         <div id=\"run-list\">",
    );
    let mut all: Vec<&ScenarioResult> = report.results.iter().collect();
    all.sort_by(|a, b| {
        (digest::severity(a.outcome.kind), a.id.as_str(), a.version).cmp(&(
            digest::severity(b.outcome.kind),
            b.id.as_str(),
            b.version,
        ))
    });
    for r in all {
        run(out, r);
    }
    out.push_str("</div></section>");
}

fn run(out: &mut String, r: &ScenarioResult) {
    let kind = r.outcome.kind;
    let _ = write!(
        out,
        "<details class=\"run\" id=\"{}\" data-kind=\"{kind}\"><summary><span class=\"k {kind}\">{kind}</span> \
         <code>{}</code> [{}] {} <span class=\"stmts\">{}</span> <span class=\"reason\">{}</span></summary>",
        esc(&run_anchor(&r.id, r.version)),
        esc(&r.id),
        r.version,
        r.level,
        esc(&r.statements.join(", ")),
        esc(&digest::reason_line(r))
    );
    let at = match (r.outcome.step, r.outcome.line) {
        (Some(step), Some(line)) => format!(", step {step} at line {line}"),
        _ => String::new(),
    };
    let _ = write!(out, "<p>{} — <code>{}</code>{at} · {} ms</p>", esc(&r.title), esc(&r.source), r.duration_ms);
    if kind == OutcomeKind::Pass {
        out.push_str("<p>Every expectation was met; the JSON report has the trace.</p></details>");
        return;
    }
    let mut text = String::new();
    if let Some(reason) = &r.outcome.reason {
        let _ = writeln!(text, "{reason}");
    }
    if let Some(expected) = &r.outcome.expected {
        let _ = writeln!(text, "expected: {expected}");
    }
    if let Some(actual) = &r.outcome.actual {
        let _ = writeln!(text, "got:      {actual}");
    }
    let _ = write!(out, "<pre class=\"failure\">{}</pre>", esc(&text));
    for trace in digest::traces(r) {
        if trace.trace.is_empty() {
            continue;
        }
        let label = if trace.label.is_empty() { "Trace".to_owned() } else { format!("Trace of {}", trace.label) };
        let cut = if trace.trace.len() > TRACE_TAIL { format!(" (last {TRACE_TAIL} entries)") } else { String::new() };
        let _ = write!(
            out,
            "<h4 class=\"{}\">{}{cut}</h4><pre class=\"trace\">{}</pre>",
            trace.kind,
            esc(&label),
            esc(&digest::bounded_trace_text(trace.trace, HEX_BYTES))
        );
    }
    out.push_str("</details>");
}

fn statements(out: &mut String, coverage: &VersionCoverage) {
    let _ = write!(
        out,
        "<h3 id=\"statements-{v}\">MQTT {v}: {} of {} observable statements cited by a scenario</h3>\
         <table class=\"matrix\"><tr><th>statement</th><th>level</th><th>summary</th><th>scenario runs</th></tr>",
        coverage.observable_covered,
        coverage.observable_total,
        v = coverage.version
    );
    for s in &coverage.statements {
        statement_row(out, coverage.version, s);
    }
    out.push_str("</table>");
}

fn statement_row(out: &mut String, version: Version, s: &StatementCoverage) {
    let uncovered = s.observable && s.scenarios.is_empty();
    let _ = write!(
        out,
        "<tr id=\"{}\"{}><td><code>{}</code></td><td>{}</td><td>{}{}</td><td{}>",
        esc(&format!("statement-{version}-{}", s.id)),
        if uncovered { " class=\"uncovered\"" } else { "" },
        esc(&s.id),
        esc(&s.level),
        esc(&s.summary),
        if s.observable { "" } else { " <em>(not observable over the wire)</em>" },
        if uncovered { " class=\"mark\"" } else { "" }
    );
    if uncovered {
        out.push_str("not covered by any scenario");
    }
    for id in &s.scenarios {
        match s.outcomes.get(id) {
            Some(kind) => {
                let _ = write!(
                    out,
                    "<a class=\"run-link {kind}\" href=\"#{}\" title=\"{kind}\">{}</a> ",
                    esc(&run_anchor(id, version)),
                    esc(id)
                );
            }
            None => {
                let _ = write!(out, "<span class=\"not-run\" title=\"not run\">{}</span> ", esc(id));
            }
        }
    }
    out.push_str("</td></tr>");
}

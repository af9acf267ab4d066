//! One self-contained HTML page: summary, per-statement matrix, failures with traces.

use std::fmt::Write as _;

use super::{escape_xml as esc, failure_text, grouped_counts, trace_text};
use crate::outcome::{OutcomeKind, RunReport};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}\
.pass{background:#d9f2d9}.fail{background:#f8d0d0}.skip{background:#eee}.known-deviation{background:#fbe9c6}\
.inconclusive{background:#e6e0f5}.error{background:#f5c0e0}.uncovered{color:#999}pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:85%}\
details{margin:.5em 0}summary{cursor:pointer;font-weight:600}";

/// Render.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>MQTT conformance: {}</title><style>{STYLE}</style></head><body>",
        esc(&report.target)
    );
    let _ = write!(out, "<h1>MQTT conformance: {}</h1>", esc(&report.target));
    let _ = write!(
        out,
        "<p>{} scenario runs in {:.1} s · {}{}</p>",
        report.results.len(),
        report.duration_ms as f64 / 1000.0,
        esc(&report.runner),
        report.profile.as_ref().map(|p| format!(" · profile: {}", esc(p))).unwrap_or_default()
    );
    out.push_str("<h2>Summary</h2><table><tr><th>group</th>");
    for kind in OutcomeKind::ALL {
        let _ = write!(out, "<th class=\"{kind}\">{kind}</th>");
    }
    out.push_str("</tr>");
    let mut groups = vec![("all".to_owned(), report.counts())];
    groups.extend(grouped_counts(&report.results, |r| vec![format!("MQTT {}", r.version)]));
    groups.extend(grouped_counts(&report.results, |r| vec![r.level.to_string()]));
    groups.extend(grouped_counts(&report.results, |r| r.tags.iter().map(|t| format!("tag: {t}")).collect()));
    for (group, counts) in groups {
        let _ = write!(out, "<tr><td>{}</td>", esc(&group));
        for kind in OutcomeKind::ALL {
            let _ = write!(out, "<td>{}</td>", counts.get(&kind).copied().unwrap_or(0));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    let problems: Vec<_> = report.results.iter().filter(|r| r.outcome.kind != OutcomeKind::Pass).collect();
    if !problems.is_empty() {
        out.push_str("<h2>Not passed</h2>");
        for r in problems {
            let _ = write!(
                out,
                "<details class=\"{}\"><summary>{} [{}] — {} — {}</summary><pre>{}</pre><pre>{}</pre></details>",
                r.outcome.kind,
                esc(&r.id),
                r.version,
                r.outcome.kind,
                esc(&r.title),
                esc(&failure_text(r)),
                esc(&trace_text(r))
            );
        }
    }
    out.push_str("<h2>Statements</h2>");
    for coverage in &report.coverage {
        let _ = write!(
            out,
            "<h3>MQTT {}: {} of {} observable statements covered</h3><table><tr><th>statement</th><th>level</th><th>summary</th><th>scenarios</th></tr>",
            coverage.version, coverage.observable_covered, coverage.observable_total
        );
        for s in &coverage.statements {
            let class = if s.scenarios.is_empty() { " class=\"uncovered\"" } else { "" };
            let _ = write!(
                out,
                "<tr{class}><td>{}</td><td>{}</td><td>{}{}</td><td>",
                esc(&s.id),
                esc(&s.level),
                esc(&s.summary),
                if s.observable { "" } else { " <em>(not observable)</em>" }
            );
            for id in &s.scenarios {
                match s.outcomes.get(id) {
                    Some(kind) => {
                        let _ = write!(out, "<span class=\"{kind}\">{} ({kind})</span> ", esc(id));
                    }
                    None => {
                        let _ = write!(out, "{} ", esc(id));
                    }
                }
            }
            out.push_str("</td></tr>");
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>\n");
    out
}

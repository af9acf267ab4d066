//! JUnit XML: one testcase per scenario and version.

use std::fmt::Write as _;

use super::{escape_xml, failure_text, trace_text};
use crate::outcome::{OutcomeKind, RunReport};
use crate::version::Version;

/// Render.
pub fn render(report: &RunReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = report.counts();
    let total = report.results.len();
    let failures = counts.get(&OutcomeKind::Fail).copied().unwrap_or(0);
    let errors = counts.get(&OutcomeKind::Error).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "<testsuites name=\"mqttkit-conformance\" tests=\"{total}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
        report.duration_ms as f64 / 1000.0
    );
    for version in Version::ALL {
        let results: Vec<_> = report.results.iter().filter(|r| r.version == version).collect();
        if results.is_empty() {
            continue;
        }
        let count = |kind| results.iter().filter(|r| r.outcome.kind == kind).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"MQTT {version} — {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            escape_xml(&report.target),
            results.len(),
            count(OutcomeKind::Fail),
            count(OutcomeKind::Error),
            count(OutcomeKind::Skip) + count(OutcomeKind::KnownDeviation) + count(OutcomeKind::Inconclusive),
        );
        for result in results {
            let _ = write!(
                out,
                "    <testcase classname=\"mqtt{}.{}\" name=\"{} [{}]\" time=\"{:.3}\"",
                version.label().replace('.', ""),
                escape_xml(result.tags.first().map_or("general", String::as_str)),
                escape_xml(&result.id),
                escape_xml(&result.statements.join(" ")),
                result.duration_ms as f64 / 1000.0
            );
            let body = match result.outcome.kind {
                OutcomeKind::Pass => None,
                OutcomeKind::Fail => Some(("failure", true)),
                OutcomeKind::Error => Some(("error", true)),
                OutcomeKind::Skip | OutcomeKind::KnownDeviation | OutcomeKind::Inconclusive => Some(("skipped", false)),
            };
            match body {
                None => out.push_str("/>\n"),
                Some((element, with_trace)) => {
                    out.push_str(">\n");
                    let message =
                        format!("{}: {}", result.outcome.kind, result.outcome.reason.as_deref().unwrap_or(""));
                    if with_trace {
                        let _ = writeln!(
                            out,
                            "      <{element} message=\"{}\">{}</{element}>",
                            escape_xml(&message),
                            escape_xml(&format!("{}\n{}", failure_text(result), trace_text(result)))
                        );
                    } else {
                        let _ = writeln!(out, "      <{element} message=\"{}\"/>", escape_xml(&message));
                    }
                    out.push_str("    </testcase>\n");
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

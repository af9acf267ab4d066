//! JUnit XML: one testsuite per protocol version with the run's facts as properties, one
//! testcase per scenario run. A failure or error carries the one-line reason as its message
//! and the expectation and bounded traces as its text; skipped, inconclusive and known
//! deviations are `skipped` with their reason. A run stopped before any scenario (broker
//! unreachable, not MQTT) is one errored testcase, so CI does not read it as empty success.

use std::fmt::Write as _;

use super::digest::{self, TRACE_TAIL};
use super::{escape_xml, failure_text};
use crate::outcome::{OutcomeKind, RunReport, ScenarioResult};
use crate::version::Version;

/// Bytes of a packet's wire form shown in a trace.
const HEX_BYTES: usize = 64;

/// Render.
pub fn render(report: &RunReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = report.counts();
    let problem = usize::from(report.problem.is_some());
    let _ = writeln!(
        out,
        "<testsuites name=\"mqttkit-conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        report.results.len() + problem,
        counts.get(&OutcomeKind::Fail).copied().unwrap_or(0),
        counts.get(&OutcomeKind::Error).copied().unwrap_or(0) + problem,
        report.duration_ms as f64 / 1000.0
    );
    if let Some(problem) = &report.problem {
        let _ = writeln!(
            out,
            "  <testsuite name=\"probe — {target}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n{}    \
             <testcase classname=\"probe\" name=\"the target answers as an MQTT broker\">\n      \
             <error message=\"{message}\"/>\n    </testcase>\n  </testsuite>",
            properties(report),
            target = escape_xml(&report.target),
            message = escape_xml(&digest::one_line(&problem.message, 500))
        );
    }
    for version in Version::ALL {
        let results: Vec<_> = report.results.iter().filter(|r| r.version == version).collect();
        if results.is_empty() {
            continue;
        }
        let count = |kind| results.iter().filter(|r| r.outcome.kind == kind).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"MQTT {version} — {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            escape_xml(&report.target),
            results.len(),
            count(OutcomeKind::Fail),
            count(OutcomeKind::Error),
            count(OutcomeKind::Skip) + count(OutcomeKind::KnownDeviation) + count(OutcomeKind::Inconclusive),
            results.iter().map(|r| r.duration_ms).sum::<u64>() as f64 / 1000.0
        );
        out.push_str(&properties(report));
        for result in results {
            testcase(&mut out, version, result);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The run's facts: target, profile, runner, verdict and what the probe found.
fn properties(report: &RunReport) -> String {
    let verdict = report.verdict();
    let mut props = vec![
        ("target", report.target.clone()),
        ("profile", report.profile.clone().unwrap_or_else(|| "none".into())),
        ("runner", report.runner.clone()),
        ("started", digest::utc_date(report.started_unix)),
        ("verdict", verdict.headline),
        ("exit-status", verdict.exit_code.to_string()),
    ];
    for v in &report.versions {
        props.push(("protocol", format!("MQTT {}: {} — {}", v.version, digest::support_words(v), v.evidence)));
    }
    let mut out = String::from("    <properties>\n");
    for (name, value) in props {
        let _ = writeln!(out, "      <property name=\"{name}\" value=\"{}\"/>", escape_xml(&value));
    }
    out.push_str("    </properties>\n");
    out
}

fn testcase(out: &mut String, version: Version, result: &ScenarioResult) {
    let _ = write!(
        out,
        "    <testcase classname=\"mqtt{}.{}\" name=\"{} [{}]\" time=\"{:.3}\"",
        version.label().replace('.', ""),
        escape_xml(result.tags.first().map_or("general", String::as_str)),
        escape_xml(&result.id),
        escape_xml(&result.statements.join(" ")),
        result.duration_ms as f64 / 1000.0
    );
    let reason = digest::reason_line(result);
    match result.outcome.kind {
        OutcomeKind::Pass => out.push_str("/>\n"),
        OutcomeKind::Fail | OutcomeKind::Error => {
            let element = if result.outcome.kind == OutcomeKind::Fail { "failure" } else { "error" };
            let _ = writeln!(
                out,
                ">\n      <{element} message=\"{}\" type=\"{}\">{}</{element}>\n    </testcase>",
                escape_xml(&reason),
                result.level,
                escape_xml(&details(result))
            );
        }
        OutcomeKind::Skip | OutcomeKind::KnownDeviation | OutcomeKind::Inconclusive => {
            let message = match result.outcome.kind {
                OutcomeKind::Skip => reason,
                kind => format!("{kind}: {reason}"),
            };
            let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", escape_xml(&message));
        }
    }
}

/// The expectation and the bounded traces of a failure or error.
fn details(result: &ScenarioResult) -> String {
    let mut text = failure_text(result);
    for trace in digest::traces(result) {
        text.push('\n');
        if !trace.label.is_empty() {
            let _ = writeln!(text, "{}:", trace.label);
        }
        text.push_str(&digest::bounded_trace_text(trace.trace, HEX_BYTES));
    }
    let _ = write!(text, "\n(traces show their last {TRACE_TAIL} entries; the JSON report has every entry)");
    text
}

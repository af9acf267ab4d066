//! The report formats on synthetic runs shaped like real ones: every built-in scenario and
//! statement, hundreds of failures with long traces and attempts, a broker that speaks only
//! 3.1.1, a broker that could not be checked, and text no broker should be trusted with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::synthetic::{self, HOSTILE};
use mqttkit_conformance::outcome::{BrokerStopped, OutcomeKind, RunReport};
use mqttkit_conformance::probe::Problem;
use mqttkit_conformance::reports::{self, Format, html, markdown};

fn non_skip_non_passes(report: &RunReport) -> impl Iterator<Item = &mqttkit_conformance::ScenarioResult> {
    report.results.iter().filter(|r| !matches!(r.outcome.kind, OutcomeKind::Pass | OutcomeKind::Skip))
}

#[test]
fn markdown_of_hundreds_of_failures_stays_small_and_lists_every_non_pass() {
    let report = synthetic::report(70, false);
    let fails = synthetic::count(&report, OutcomeKind::Fail);
    assert!(fails >= 300, "the synthetic run has {fails} failures");
    let md = markdown::render(&report);
    assert!(md.len() < 150_000, "{} bytes for {fails} failures", md.len());

    let mut lines = md.lines();
    assert!(lines.next().unwrap().starts_with("# MQTT conformance: mqtt://127.0.0.1:1883"));
    assert_eq!(
        lines.nth(1).unwrap(),
        format!("**{}** (exit status 1: a MUST scenario failed)", report.verdict().headline)
    );
    let top = &md[..md.find("## Summary").unwrap()];
    assert!(top.contains("| MQTT 5.0 | supported | answered `20 09 00 00 06 22 00 0a 21 00 14`"), "{top}");
    assert!(top.contains("- Profile: synthetic"), "{top}");

    for r in non_skip_non_passes(&report) {
        let row = format!("| `{}` | {} | {} |", r.id, r.version, r.level);
        assert!(md.contains(&row), "no row for {} [{}]", r.id, r.version);
    }
    let skips = synthetic::count(&report, OutcomeKind::Skip);
    assert!(md.contains(&format!("## Skipped: {skips} runs, 2 reasons")), "skips are grouped by reason");
    assert!(md.contains("| needs `retain`: Retain Available 0 in the CONNACK |"));

    let details = &md[md.find("## Failures in detail").unwrap()..md.find("## Statement coverage").unwrap()];
    assert!(details.contains("failures are not detailed here"), "the details are bounded");
    assert!(details.contains("earlier entries cut"), "long traces are cut");
    assert!(details.contains("— attempt 2 (alone): fail"), "attempts are labelled");
    assert!(details.matches("\n### `").count() >= 5);

    let coverage = &md[md.find("## Statement coverage, MQTT 5.0").unwrap()..];
    assert!(coverage.contains("| statement | level | outcomes | scenarios not passed |"));
    assert!(coverage.contains("Observable but cited by no scenario ("));
    assert!(!md.contains("<script>"), "broker text cannot inject HTML into a rendered Markdown file");
}

#[test]
fn markdown_of_a_broker_speaking_only_3_1_1_says_so_once() {
    let report = synthetic::report(20, true);
    let md = markdown::render(&report);
    // Every 5.0 run of the built-in scenarios is skipped for the one reason.
    let v5_runs = mqttkit_conformance::scenario::built_in()
        .unwrap()
        .iter()
        .map(|s| s.versions.iter().filter(|v| v.to_string() == "5.0").count())
        .sum::<usize>();
    assert!(v5_runs > 100, "{v5_runs} 5.0 runs");
    let top = &md[..md.find("## Summary").unwrap()];
    assert!(
        top.contains(&format!("| MQTT 5.0 | does not support MQTT 5.0 | answered `20 02 00 01` (3.1.1-form CONNACK 0x01 unacceptable protocol version) | its {v5_runs} scenario runs are skipped |")),
        "{top}"
    );
    assert!(
        md.contains(&format!("| {v5_runs} | 5.0 | the broker does not support MQTT 5.0: answered `20 02 00 01`")),
        "one line for the reason"
    );
    assert!(md.contains("No statement of MQTT 5.0 was checked: every scenario run was skipped."));
    assert!(!md.contains("| `v5."), "no row per skipped run");
}

#[test]
fn every_format_says_why_nothing_was_checked() {
    let mut report = synthetic::report(0, false);
    report.results.clear();
    report.coverage.clear();
    report.problem = Some(Problem {
        message: "127.0.0.1:1 refused the connection <again>; is the broker running?".into(),
        not_mqtt: true,
    });
    let md = markdown::render(&report);
    assert!(md.contains("**NOT CHECKED: 127.0.0.1:1 refused the connection &lt;again&gt;"), "{md}");
    assert!(md.contains("> **Not checked:** 127.0.0.1:1 refused the connection &lt;again&gt;"), "{md}");
    let page = html::render(&report);
    assert!(page.contains("<p class=\"headline\">NOT CHECKED: 127.0.0.1:1 refused the connection &lt;again&gt;"));
    assert!(page.contains("<p class=\"note\">Not checked: 127.0.0.1:1 refused the connection &lt;again&gt;"));
    let junit = reports::render(Format::Junit, &report);
    assert!(junit.contains("tests=\"1\" failures=\"0\" errors=\"1\""), "{junit}");
    assert!(junit.contains("<error message=\"127.0.0.1:1 refused the connection &lt;again&gt;"), "{junit}");
}

#[test]
fn html_escapes_broker_text_and_links_every_statement_to_existing_details() {
    let report = synthetic::report(66, false);
    let page = html::render(&report);
    assert_eq!(page.matches("<script").count(), 1, "only the page's own script");
    assert!(!page.contains(HOSTILE));
    assert!(page.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;"));
    for r in &report.results {
        let id = format!("id=\"{}\" data-kind=\"{}\"", html::run_anchor(&r.id, r.version), r.outcome.kind);
        assert!(page.contains(&id), "no details for {} [{}]", r.id, r.version);
    }
    let mut links = 0;
    for href in page.split("href=\"#").skip(1) {
        let target = &href[..href.find('"').unwrap()];
        assert!(page.contains(&format!("id=\"{target}\"")), "a link to #{target} that goes nowhere");
        links += 1;
    }
    assert!(links > 500, "{links} statement links");
    assert!(page.contains("earlier entries cut"), "traces are bounded");
    assert!(page.contains("Trace of attempt 2 (alone): pass"), "attempts have their traces");
    assert!(
        page.contains("<tr id=\"statement-5.0-MQTT-3.2.2-11\" class=\"uncovered\">"),
        "uncovered statements are marked"
    );
}

#[test]
fn junit_failures_carry_the_one_line_reason_and_the_rest_are_skipped() {
    let report = synthetic::report(66, false);
    let junit = reports::render(Format::Junit, &report);
    assert_eq!(junit.matches("<testcase ").count(), report.results.len());
    assert_eq!(junit.matches("<failure ").count(), synthetic::count(&report, OutcomeKind::Fail));
    assert_eq!(junit.matches("<error ").count(), synthetic::count(&report, OutcomeKind::Error));
    let skipped = synthetic::count(&report, OutcomeKind::Skip)
        + synthetic::count(&report, OutcomeKind::Inconclusive)
        + synthetic::count(&report, OutcomeKind::KnownDeviation);
    assert_eq!(junit.matches("<skipped ").count(), skipped);
    assert!(junit.contains(
        "<failure message=\"`c`: expected the connection to be closed, but a packet arrived…\" type=\"MUST\">"
    ));
    assert!(junit.contains("<skipped message=\"inconclusive: failed alongside other scenarios, passed alone"));
    assert!(!junit.contains("<script>"));
}

#[test]
fn json_keeps_its_structure_and_reads_back() {
    let report = synthetic::report(66, false);
    let json = reports::render(Format::Json, &report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in ["runner", "target", "profile", "started_unix", "versions", "interrupted", "results", "coverage"] {
        assert!(value.get(key).is_some(), "`{key}` is missing");
    }
    let read: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(reports::render(Format::Json, &read), json, "what other tools read is what was written");
}

#[test]
fn a_broker_that_stopped_is_said_at_the_top() {
    let mut report = synthetic::report(10, false);
    report.broker_stopped = Some(BrokerStopped {
        noticed_by: "retain.qos-kept [5.0]".into(),
        during: vec!["shared.x [5.0]".into(), "retain.qos-kept [5.0]".into()],
        at_ms: 4200,
        evidence: "connection refused".into(),
    });
    let md = markdown::render(&report);
    let top = &md[..md.find("## Summary").unwrap()];
    assert!(top.contains("(exit status 6: the broker stopped answering during the run)"), "{top}");
    assert!(
        top.contains("> **The broker stopped answering:** during shared.x [5.0] or retain.qos-kept [5.0] (noticed by retain.qos-kept [5.0] at 4200 ms): connection refused."),
        "{top}"
    );
    let page = html::render(&report);
    assert!(page.contains("<header id=\"verdict\" class=\"banner warn\">"));
    assert!(page.contains("<p class=\"note\">The broker stopped answering: during shared.x [5.0]"));
}

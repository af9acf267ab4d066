//! The HTML report and the compatibility matrix in a real browser: headless Chromium loads
//! each page from a file (offline), runs its script, and the dumped DOM must show the
//! banner, the filter controls and exactly the rows the filter selects. Chromium's XML
//! parser also reads the JUnit report. Skipped (with a reason) when Chromium is not
//! installed, unless `MQTTKIT_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::synthetic;
use mqttkit_conformance::outcome::OutcomeKind;
use mqttkit_conformance::reports::{self, Format};

/// The Chromium binary, or `None` (after saying why) if there is none.
fn chromium() -> Option<&'static str> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if found.is_ok_and(|s| s.success()) {
            return Some(name);
        }
    }
    if std::env::var("MQTTKIT_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("MQTTKIT_REQUIRE_PEERS=1 but Chromium is not installed (apt-get install chromium)");
    }
    eprintln!("skipping: Chromium is not installed (apt-get install chromium)");
    None
}

/// The DOM of `url` after its scripts ran, as headless Chromium serialises it.
fn dump_dom(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read while it writes: a DOM larger than the pipe's buffer would block it otherwise.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = Vec::new();
        let _ = stdout.read_to_end(&mut dom);
        dom
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Chromium did not finish loading {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Each `<tag …>` opening tag of the DOM that contains `marker`.
fn opening_tags<'a>(dom: &'a str, tag: &str, marker: &str) -> Vec<&'a str> {
    dom.split(&format!("<{tag} "))
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap()])
        .filter(|attrs| attrs.contains(marker))
        .collect()
}

fn attribute<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let start = attrs
        .find(&format!(" {name}=\""))
        .map(|i| i + name.len() + 3)
        .or_else(|| attrs.starts_with(&format!("{name}=\"")).then_some(name.len() + 2))?;
    Some(&attrs[start..start + attrs[start..].find('"')?])
}

fn is_hidden(attrs: &str) -> bool {
    attrs.split_whitespace().any(|a| a == "hidden" || a.starts_with("hidden="))
}

/// The runs' `(data-kind, hidden)` in the dumped DOM.
fn runs(dom: &str) -> Vec<(String, bool)> {
    opening_tags(dom, "details", "class=\"run\"")
        .into_iter()
        .map(|attrs| (attribute(attrs, "data-kind").unwrap().to_owned(), is_hidden(attrs)))
        .collect()
}

#[test]
fn the_report_page_filters_runs_by_outcome_in_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = synthetic::report(66, false);
    let page = dir.path().join("report.html");
    std::fs::write(&page, reports::render(Format::Html, &report)).unwrap();
    let total = report.results.len();

    // Default: every non-pass shown, passes behind their filter.
    let dom = dump_dom(browser, &file_url(&page));
    assert!(dom.contains("<header id=\"verdict\" class=\"banner bad\">"), "no banner in {dom:.2000}");
    assert!(dom.contains(&report.verdict().headline), "the banner has the verdict");
    assert!(dom.contains("MQTT 5.0: supported"), "the banner has the protocol versions");
    let filters = opening_tags(&dom, "div", "id=\"filters\"");
    assert_eq!(filters.len(), 1);
    assert!(!is_hidden(filters[0]), "the script did not run: the filter controls are still hidden");
    for kind in OutcomeKind::ALL {
        assert!(dom.contains(&format!("name=\"kind\" value=\"{kind}\"")), "no filter for {kind}");
    }
    assert!(dom.contains("id=\"expand-all\"") && dom.contains("id=\"collapse-all\""));
    let shown = runs(&dom);
    assert_eq!(shown.len(), total, "one entry per scenario run");
    for (kind, hidden) in &shown {
        assert_eq!(*hidden, kind == "pass", "a {kind} run is {}", if *hidden { "hidden" } else { "shown" });
    }
    let passes = synthetic::count(&report, OutcomeKind::Pass);
    assert!(dom.contains(&format!("{} of {total} runs shown", total - passes)));
    assert_eq!(dom.matches("<script").count(), 1, "broker text stayed text");

    // `?show=inconclusive` selects only the inconclusive runs.
    let dom = dump_dom(browser, &format!("{}?show=inconclusive", file_url(&page)));
    let inconclusive = synthetic::count(&report, OutcomeKind::Inconclusive);
    assert!(inconclusive > 0);
    for (kind, hidden) in runs(&dom) {
        assert_eq!(hidden, kind != "inconclusive", "a {kind} run with ?show=inconclusive");
    }
    assert!(dom.contains(&format!("{inconclusive} of {total} runs shown")));

    // A statement's link to a passed run opens it although passes are filtered out.
    let pass = report.results.iter().find(|r| r.outcome.kind == OutcomeKind::Pass).unwrap();
    let anchor = reports::html::run_anchor(&pass.id, pass.version);
    let dom = dump_dom(browser, &format!("{}#{anchor}", file_url(&page)));
    let target = opening_tags(&dom, "details", &format!("id=\"{anchor}\""));
    assert_eq!(target.len(), 1);
    assert!(!is_hidden(target[0]) && target[0].split_whitespace().any(|a| a.starts_with("open")), "{}", target[0]);
}

#[test]
fn the_compatibility_matrix_filters_statements_in_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broken = synthetic::report(66, false);
    let old = synthetic::report(20, true);
    for (name, report) in [("broken", &broken), ("old", &old)] {
        std::fs::write(dir.path().join(format!("{name}.json")), reports::render(Format::Json, report)).unwrap();
        std::fs::write(dir.path().join(format!("{name}.html")), reports::render(Format::Html, report)).unwrap();
    }
    let page = dir.path().join("out/compat.html");
    let markdown = dir.path().join("out/compat.md");
    let status = Command::new(env!("CARGO_BIN_EXE_compat-matrix"))
        .arg("--html")
        .arg(&page)
        .arg("--markdown")
        .arg(&markdown)
        .arg(format!("broken broker={}", dir.path().join("broken.json").display()))
        .arg(format!("3.1.1 only={}", dir.path().join("old.json").display()))
        .status()
        .unwrap();
    assert!(status.success());
    let table = std::fs::read_to_string(&markdown).unwrap();
    // Every 5.0 run of the built-in scenarios is a skip for the 3.1.1-only broker.
    let v5_runs = mqttkit_conformance::scenario::built_in()
        .unwrap()
        .iter()
        .map(|s| s.versions.iter().filter(|v| v.to_string() == "5.0").count())
        .sum::<usize>();
    assert!(v5_runs > 100, "{v5_runs} 5.0 runs");
    assert!(
        table.contains(&format!("| 3.1.1 only | 5.0 (not supported) | 0 | 0 | {v5_runs} | 0 | 0 | 0 | 0/")),
        "{table}"
    );

    let dom = dump_dom(browser, &format!("{}?only=differing", file_url(&page)));
    assert!(dom.contains("MQTT compatibility matrix"));
    assert!(dom.contains("<a href=\"../broken.html\">broken broker</a>"), "brokers link to their reports");
    assert!(dom.contains("MQTT 5.0: does not support MQTT 5.0"), "the header says which versions each speaks");
    let filters = opening_tags(&dom, "div", "id=\"row-filters\"");
    assert!(!is_hidden(filters[0]), "the script did not run");
    let rows = opening_tags(&dom, "tr", "data-differs=");
    assert!(rows.len() > 300, "{} statement rows", rows.len());
    let mut shown = 0;
    for attrs in &rows {
        let differs = attribute(attrs, "data-differs") == Some("1");
        assert_eq!(is_hidden(attrs), !differs, "{attrs}");
        shown += usize::from(differs);
    }
    assert!(shown > 0 && shown < rows.len(), "{shown} of {} rows differ", rows.len());
    assert!(dom.contains(&format!("{shown} of {} statements shown", rows.len())));
    assert!(dom.contains("href=\"../broken.html#run-"), "cells link into the broker's report");
}

#[test]
fn chromium_parses_the_junit_report() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = synthetic::report(66, false);
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, reports::render(Format::Junit, &report)).unwrap();
    let dom = dump_dom(browser, &file_url(&file));
    assert!(dom.contains("testsuites"), "Chromium did not show the XML: {dom:.500}");
    assert!(!dom.contains("parsererror"), "the JUnit report is not well-formed XML: {dom:.2000}");
}

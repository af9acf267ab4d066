//! The statement catalogues (`catalogue/v3.1.1.toml`, `catalogue/v5.0.toml`) are well formed:
//! every statement of the standard exactly once, in order, with a level, party, section and
//! a one-line summary in our own words.
//!
//! The project does not depend on the standard's text at build or test time. With
//! `MQTT_SPEC_DIR` pointing at a folder holding `statements-v3.1.1.json` and
//! `statements-v5.0.json` (lists of `{id, text}`), the test also checks the ids against the
//! standard's list, each level against the keywords of the statement's text, and that no
//! summary copies the text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use mqttkit_conformance::Version;
use mqttkit_conformance::catalogue::{Catalogue, Statement};

const LEVELS: [&str; 5] = ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"];
const BINDS: [&str; 3] = ["client", "server", "both"];
const TOPICS: [&str; 25] = [
    "connect",
    "connack",
    "publish",
    "qos",
    "retain",
    "wildcard",
    "topic",
    "keepalive",
    "will",
    "session",
    "subscribe",
    "unsubscribe",
    "ping",
    "disconnect",
    "auth",
    "malformed",
    "properties",
    "flow-control",
    "topic-alias",
    "expiry",
    "shared-subscription",
    "request-response",
    "utf8",
    "packet-id",
    "general",
];
const MAX_SUMMARY: usize = 120;

/// Statements whose section differs from the number in the id (checked against the text).
const SECTION_EXCEPTIONS: [(Version, &str, &str); 5] = [
    (Version::V3_1_1, "MQTT-3.1.2.7", "3.1.2"),
    (Version::V3_1_1, "MQTT-3-8.3-4", "3.8.3"),
    (Version::V5, "MQTT-4.1.0-1", "4.1.1"),
    (Version::V5, "MQTT-4.1.0-2", "4.1.1"),
    (Version::V5, "MQTT-4.7.0-1", "4.7.1"),
];

/// Statements with no RFC 2119 keyword in their own sentence: the level comes from the text
/// around them.
const NO_KEYWORD: [(Version, &str); 3] =
    [(Version::V3_1_1, "MQTT-2.3.1-4"), (Version::V5, "MQTT-3.1.2-12"), (Version::V5, "MQTT-3.8.3-4")];

/// `MQTT-3.3.1-5` → `3.3.1`; trailing `.0` parts dropped (`MQTT-4.8.0-1` → `4.8`).
fn expected_section(version: Version, id: &str) -> String {
    if let Some((_, _, section)) = SECTION_EXCEPTIONS.iter().find(|(v, i, _)| *v == version && *i == id) {
        return (*section).to_owned();
    }
    let body = id.trim_start_matches("MQTT-");
    let body = body.rsplit_once('-').map_or(body, |(head, _)| head);
    let mut parts: Vec<&str> = body.split('.').collect();
    while parts.len() > 1 && parts.last() == Some(&"0") {
        parts.pop();
    }
    parts.join(".")
}

fn check_statement(version: Version, s: &Statement, errors: &mut Vec<String>) {
    let mut error = |message: String| errors.push(format!("{version} {}: {message}", s.id));
    if !LEVELS.contains(&s.level.as_str()) {
        error(format!("bad level `{}`", s.level));
    }
    if !BINDS.contains(&s.binds.as_str()) {
        error(format!("bad binds `{}`", s.binds));
    }
    if !TOPICS.contains(&s.topic.as_str()) {
        error(format!("bad topic `{}`", s.topic));
    }
    if !s.section.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) {
        error(format!("bad section `{}`", s.section));
    } else if s.section != expected_section(version, &s.id) {
        error(format!("section {} but the id says {}", s.section, expected_section(version, &s.id)));
    }
    let summary = &s.summary;
    if summary.trim().is_empty() || summary.contains('\n') || summary.trim() != summary {
        error("the summary must be one trimmed, non-empty line".into());
    }
    if summary.chars().count() > MAX_SUMMARY {
        error(format!("the summary has {} characters (at most {MAX_SUMMARY})", summary.chars().count()));
    }
    // Statements binding the client (or both) say whether a test server can observe them.
    if s.binds == "server" && s.client_observable {
        error("a statement binding only the server cannot be client_observable".into());
    }
}

#[test]
fn both_catalogues_are_well_formed() {
    let catalogue = Catalogue::embedded().expect("catalogue");
    let mut errors = Vec::new();
    for (version, expected) in [(Version::V3_1_1, 141), (Version::V5, 251)] {
        let statements = catalogue.statements(version);
        assert_eq!(statements.len(), expected, "{version}: statement count");
        let mut seen = BTreeSet::new();
        for s in statements {
            if !seen.insert(s.id.as_str()) {
                errors.push(format!("{version} {}: listed twice", s.id));
            }
            check_statement(version, s, &mut errors);
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Words of `text`, lower-case.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// 2 × (longest common subsequence of words) / (total words): 1.0 for a copy.
fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut previous = vec![0usize; b.len() + 1];
    for x in &a {
        let mut current = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y { previous[j] + 1 } else { previous[j + 1].max(current[j]) };
        }
        previous = current;
    }
    2.0 * previous[b.len()] as f64 / (a.len() + b.len()) as f64
}

/// The RFC 2119 keywords of a statement's text, normalised (SHALL → MUST, …).
fn keywords(text: &str) -> Vec<&'static str> {
    let upper: Vec<&str> = text.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()).collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < upper.len() {
        let negated = upper.get(i + 1) == Some(&"NOT");
        let keyword = match (upper[i], negated) {
            ("MUST" | "SHALL", true) => Some("MUST NOT"),
            ("MUST" | "SHALL" | "REQUIRED", _) => Some("MUST"),
            ("SHOULD", true) => Some("SHOULD NOT"),
            ("SHOULD" | "RECOMMENDED", _) => Some("SHOULD"),
            ("MAY" | "OPTIONAL", _) => Some("MAY"),
            _ => None,
        };
        if let Some(keyword) = keyword {
            found.push(keyword);
            i += usize::from(negated);
        }
        i += 1;
    }
    found
}

fn rank(level: &str) -> u8 {
    match level {
        "MUST" | "MUST NOT" => 3,
        "SHOULD" | "SHOULD NOT" => 2,
        _ => 1,
    }
}

#[test]
fn catalogues_agree_with_the_standards_text_when_it_is_given() {
    let Ok(dir) = std::env::var("MQTT_SPEC_DIR") else {
        eprintln!("skipping: set MQTT_SPEC_DIR to a folder with statements-v3.1.1.json and statements-v5.0.json");
        return;
    };
    let catalogue = Catalogue::embedded().expect("catalogue");
    let mut errors = Vec::new();
    for (version, file) in [(Version::V3_1_1, "statements-v3.1.1.json"), (Version::V5, "statements-v5.0.json")] {
        let text = std::fs::read_to_string(std::path::Path::new(&dir).join(file)).expect("statement list");
        let list: Vec<BTreeMap<String, String>> = serde_json::from_str(&text).expect("JSON list of {id, text}");
        let standard: Vec<(&str, &str)> = list.iter().map(|s| (s["id"].as_str(), s["text"].as_str())).collect();
        let ours: Vec<&str> = catalogue.statements(version).iter().map(|s| s.id.as_str()).collect();
        let theirs: Vec<&str> = standard.iter().map(|(id, _)| *id).collect();
        if ours != theirs {
            errors.push(format!("{version}: the ids differ from the standard's list (or its order)"));
        }
        for s in catalogue.statements(version) {
            let Some((_, text)) = standard.iter().find(|(id, _)| *id == s.id) else { continue };
            let ratio = similarity(&s.summary, text);
            if ratio >= 0.75 {
                errors.push(format!("{version} {}: summary too close to the standard's text ({ratio:.2})", s.id));
            }
            let found = keywords(text);
            if found.is_empty() {
                if !NO_KEYWORD.contains(&(version, s.id.as_str())) {
                    errors.push(format!("{version} {}: the text has no keyword; decide the level", s.id));
                }
            } else if !found.contains(&s.level.as_str()) {
                errors.push(format!("{version} {}: level {} is not a keyword of the text {found:?}", s.id, s.level));
            } else if found.iter().any(|k| rank(k) > rank(&s.level)) {
                errors.push(format!("{version} {}: level {} is weaker than the text {found:?}", s.id, s.level));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn keyword_and_similarity_helpers() {
    assert_eq!(
        keywords("The Server MUST NOT send it, and SHOULD close; it MAY log."),
        vec!["MUST NOT", "SHOULD", "MAY"]
    );
    assert!(similarity("a b c d", "a b c d") > 0.99);
    assert!(similarity("server closes the connection", "the sender must not be blue") < 0.5);
}

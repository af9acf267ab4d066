//! The built-in scenarios load, cite only catalogue statements, and errors carry file:line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mqttkit_conformance::catalogue::Catalogue;
use mqttkit_conformance::scenario;

#[test]
fn built_in_scenarios_cite_only_statements_in_the_catalogue() {
    let catalogue = Catalogue::embedded().expect("catalogue");
    assert_eq!(catalogue.statements(mqttkit_conformance::Version::V3_1_1).len(), 141);
    assert_eq!(catalogue.statements(mqttkit_conformance::Version::V5).len(), 251);
    let scenarios = scenario::built_in()
        .unwrap_or_else(|errors| panic!("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
    assert!(scenarios.len() >= 30, "{} scenarios", scenarios.len());
    let errors = scenario::check(&scenarios, &catalogue);
    assert!(errors.is_empty(), "{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"));
}

#[test]
fn an_unknown_statement_id_is_reported() {
    let catalogue = Catalogue::embedded().expect("catalogue");
    let text = r#"
id = "x.bad-id"
title = "cites a statement that does not exist"
level = "MUST"
versions = ["5.0"]
statements = { "5.0" = ["MQTT-9.9.9-9"] }
[[step]]
connect = "c"
"#;
    let parsed = scenario::parse_scenario("x.toml", text).expect("parses");
    let errors = scenario::check(&[parsed], &catalogue);
    assert_eq!(errors.len(), 1);
    assert!(errors.first().is_some_and(|e| e.to_string().contains("MQTT-9.9.9-9")));
}

#[test]
fn a_malformed_file_in_a_user_directory_reports_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "id = \"u.broken\"\ntitle = \"t\"\nlevel = \"MUST\"\nversions = [\"5.0\"]\nstatements = { \"5.0\" = [\"MQTT-3.12.4-1\"] }\n\n[[step]]\nexpect = \"c\"\npacket = { type = \"PINGRESP\", colour = 1 }\n",
    )
    .expect("write");
    let errors = scenario::from_dir(dir.path()).expect_err("invalid");
    let text = errors.first().map(ToString::to_string).unwrap_or_default();
    assert!(text.contains("broken.toml:7:"), "{text}");
    assert!(text.contains("colour"), "{text}");
}

#[test]
fn a_topic_or_client_id_without_the_run_prefix_is_refused() {
    let catalogue = Catalogue::embedded().expect("catalogue");
    let text = r#"
id = "x.shared-topic"
title = "publishes on a topic other runs could also use"
level = "MUST"
versions = ["3.1.1"]
statements = { "3.1.1" = ["MQTT-3.3.1-5"] }
[[step]]
connect = "c"
client_id = "fixed"
[[step]]
publish = "c"
topic = "a/b"
"#;
    let parsed = scenario::parse_scenario("x.toml", text).expect("parses");
    let errors: Vec<String> = scenario::check(&[parsed], &catalogue).iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("client id `fixed`")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("topic `a/b`")), "{errors:?}");
}

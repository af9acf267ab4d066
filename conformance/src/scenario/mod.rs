//! Scenarios: the data model, the TOML parser (errors carry file:line) and loading of the
//! built-in and user scenario directories.

pub(crate) mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};

use crate::catalogue::Catalogue;
use crate::matcher::{PacketPattern, ValuePattern};
use crate::outgoing::{ConnectSpec, OutgoingPacket, PropertySpec};
use crate::version::Version;

pub use parse::parse_scenario;

static BUILT_IN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/scenarios");

/// The strength of the obligation a scenario checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// MUST / MUST NOT.
    #[serde(rename = "MUST")]
    Must,
    /// SHOULD / SHOULD NOT.
    #[serde(rename = "SHOULD")]
    Should,
    /// MAY.
    #[serde(rename = "MAY")]
    May,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Must => "MUST",
            Self::Should => "SHOULD",
            Self::May => "MAY",
        })
    }
}

/// One scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Stable id, e.g. `retain.replaced-by-newer`.
    pub id: String,
    /// One-line title.
    pub title: String,
    /// Longer explanation, if any.
    pub description: Option<String>,
    /// Level.
    pub level: Level,
    /// Versions it runs under.
    pub versions: Vec<Version>,
    /// Statement ids checked, per version.
    pub statements: BTreeMap<Version, Vec<String>>,
    /// Tags (`qos`, `retain`, …).
    pub tags: Vec<String>,
    /// Capabilities the broker needs (`retain`, `qos2`, `wildcard-subscriptions`, …).
    pub requires: Vec<String>,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Where the scenario came from (file path, `builtin:` for embedded ones).
    pub source: String,
}

impl Scenario {
    /// Statement ids for one version.
    pub fn statements_for(&self, version: Version) -> &[String] {
        self.statements.get(&version).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether the scenario carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The capabilities a broker needs for this scenario under `version`: those listed in
    /// `requires`, plus those its ordinary steps imply — a CONNECT resuming a session, a
    /// `publish` shortcut at QoS 1/2 or
    /// with RETAIN, a Will with QoS or RETAIN, a `subscribe` shortcut with wildcards, a shared
    /// subscription or a Subscription Identifier, a Topic Alias. Packets written with `send`
    /// imply nothing: they are often the deliberate misuse the scenario is about.
    pub fn required_capabilities(&self, version: Version) -> Vec<String> {
        let mut needed: Vec<String> = self.requires.clone();
        let mut need = |capability: &str| {
            if !needed.iter().any(|c| c == capability) {
                needed.push(capability.to_owned());
            }
        };
        for step in self.steps.iter().filter(|s| s.versions.as_ref().is_none_or(|v| v.contains(&version))) {
            match &step.action {
                Action::Connect { connect, .. } => {
                    if !connect.clean_start {
                        need("persistent-sessions");
                    }
                    if let Some(will) = &connect.will {
                        for capability in capabilities_of_publish(will.qos, will.retain, &will.properties) {
                            need(capability);
                        }
                    }
                }
                Action::Send { packet, deliberate: false, .. } => match packet {
                    OutgoingPacket::Publish { qos, retain, properties, .. } => {
                        for capability in capabilities_of_publish(*qos, *retain, properties) {
                            need(capability);
                        }
                    }
                    OutgoingPacket::Subscribe { filters, properties, .. } => {
                        for filter in filters {
                            if filter.filter.starts_with("$share/") {
                                need("shared-subscriptions");
                            } else if filter.filter.contains(['+', '#']) {
                                need("wildcard-subscriptions");
                            }
                        }
                        if version.is_v5() && properties.iter().any(|p| p.id == SUBSCRIPTION_IDENTIFIER) {
                            need("subscription-identifiers");
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        needed
    }

    /// Whether `--only`/`--skip` selector `sel` names this scenario: its id (or an id prefix
    /// ending in `.`), a tag, a statement id, or a section (`3.3` matches `MQTT-3.3.1-5`).
    pub fn is_selected_by(&self, selector: &str, catalogue: &Catalogue) -> bool {
        if self.id == selector || (selector.ends_with('.') && self.id.starts_with(selector)) {
            return true;
        }
        if self.tags.iter().any(|t| t == selector) {
            return true;
        }
        self.statements.iter().any(|(version, ids)| {
            ids.iter().any(|id| {
                id == selector
                    || catalogue
                        .section_of(*version, id)
                        .is_some_and(|section| section == selector || section.starts_with(&format!("{selector}.")))
            })
        })
    }
}

/// Property identifiers that imply capabilities (MQTT 5.0 §2.2.2.2).
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
const TOPIC_ALIAS: u8 = 0x23;

fn capabilities_of_publish(qos: u8, retain: bool, properties: &[PropertySpec]) -> Vec<&'static str> {
    let mut needed = Vec::new();
    match qos {
        1 => needed.push("qos1"),
        2 => needed.push("qos2"),
        _ => {}
    }
    if retain {
        needed.push("retain");
    }
    if properties.iter().any(|p| p.id == TOPIC_ALIAS) {
        needed.push("topic-alias");
    }
    needed
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Line in the scenario file.
    pub line: usize,
    /// Versions the step applies to (`None`: all of the scenario's).
    pub versions: Option<Vec<Version>>,
    /// A note printed with a failure of this step.
    pub note: Option<String>,
    /// What to do.
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Open the network connection only.
    Open {
        /// Client name.
        client: String,
    },
    /// Open (if needed), send CONNECT and expect CONNACK.
    Connect {
        /// Client name.
        client: String,
        /// The CONNECT.
        connect: ConnectSpec,
        /// What the CONNACK must look like; `None`: success, and a refusal is inconclusive.
        connack: Option<Expectation>,
        /// Seconds to wait for the CONNACK.
        timeout: f64,
    },
    /// Send one packet.
    Send {
        /// Client name.
        client: String,
        /// The packet.
        packet: OutgoingPacket,
        /// Written by the author with `send` (often invalid on purpose), as opposed to the
        /// packet of a `publish`/`subscribe`/`unsubscribe` shortcut. Only shortcut packets
        /// imply capabilities the broker needs.
        deliberate: bool,
    },
    /// Expect packets.
    Expect {
        /// Client name.
        client: String,
        /// The packets.
        expectation: Expectation,
        /// Seconds to wait.
        timeout: f64,
        /// Acknowledge QoS 1 / 2 PUBLISH packets matched (PUBACK, or PUBREC-PUBREL-PUBCOMP).
        ack: bool,
        /// Whether the packets are the scenario's subject or the answer to a shortcut.
        purpose: Purpose,
    },
    /// Expect no packet during a window.
    ExpectNothing {
        /// Client name.
        client: String,
        /// Seconds.
        window: f64,
    },
    /// Expect the server to close the connection.
    ExpectClosed {
        /// Client name.
        client: String,
        /// Reason codes acceptable in a DISCONNECT sent before closing.
        disconnect_reason: Option<ValuePattern>,
        /// Packets tolerated before the close.
        allow: Vec<PacketPattern>,
        /// Seconds to wait.
        timeout: f64,
    },
    /// Sleep.
    Wait {
        /// Seconds.
        seconds: f64,
    },
    /// Send DISCONNECT and close.
    Disconnect {
        /// Client name.
        client: String,
        /// The DISCONNECT.
        packet: OutgoingPacket,
    },
    /// Close the network connection without DISCONNECT.
    Drop {
        /// Client name.
        client: String,
    },
}

impl Action {
    /// The client the step acts on.
    pub fn client(&self) -> Option<&str> {
        match self {
            Self::Open { client }
            | Self::Connect { client, .. }
            | Self::Send { client, .. }
            | Self::Expect { client, .. }
            | Self::ExpectNothing { client, .. }
            | Self::ExpectClosed { client, .. }
            | Self::Disconnect { client, .. }
            | Self::Drop { client } => Some(client),
            Self::Wait { .. } => None,
        }
    }
}

/// Why an `expect` step waits for packets. Answers to shortcuts are preconditions: where
/// the standard lets the broker refuse them, a refusal makes the scenario inconclusive (or
/// a skip, when the refusal says a capability is missing) instead of failing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// The packets are what the scenario checks: any mismatch is a failure.
    Subject,
    /// The PUBACK / PUBREC / PUBCOMP of a `publish` shortcut.
    PublishFlow,
    /// The SUBACK of a `subscribe` shortcut, with each filter and the QoS it asked for.
    Suback {
        /// Filter templates and requested QoS, in SUBSCRIBE order.
        filters: Vec<(String, u8)>,
    },
    /// The UNSUBACK of an `unsubscribe` shortcut.
    Unsuback,
    /// An `expect` with `precondition = true`: packets the scenario needs in order to check
    /// its subject, which the standard lets a broker withhold (e.g. delivery on a `$` topic,
    /// which a server SHOULD prevent). Not getting them makes the run inconclusive.
    Precondition,
}

/// Expected packets: each entry is a set of alternatives for one packet.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// One entry per packet; each a list of acceptable patterns.
    pub packets: Vec<Vec<PacketPattern>>,
    /// Whether the packets may arrive in any order.
    pub in_any_order: bool,
    /// `ack_held_after = SECONDS`: if nothing arrives for this long while the client holds
    /// QoS 1/2 deliveries it has not acknowledged, acknowledge them and keep waiting. A
    /// server may send fewer messages at once than the client allows (5.0 §4.9) and hold a
    /// delivery until the one before it is acknowledged (3.1.1 §4.4).
    pub ack_held_after: Option<f64>,
}

impl Expectation {
    /// One packet matching one of `alternatives`, in order.
    pub fn one_of(alternatives: Vec<PacketPattern>) -> Self {
        Self { packets: vec![alternatives], in_any_order: false, ack_held_after: None }
    }
}

/// A scenario file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// File.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The scenarios embedded in the binary.
pub fn built_in() -> Result<Vec<Scenario>, Vec<LoadError>> {
    let mut files = Vec::new();
    collect_embedded(&BUILT_IN, &mut files);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    parse_all(files.into_iter().map(|(path, text)| (format!("scenarios/{path}"), text)))
}

pub(crate) fn collect_embedded(dir: &Dir<'static>, out: &mut Vec<(String, String)>) {
    for file in dir.files() {
        if file.path().extension().is_some_and(|e| e == "toml") {
            let text = file.contents_utf8().unwrap_or_default().to_owned();
            out.push((file.path().display().to_string(), text));
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

/// The scenarios in a directory tree (`*.toml`).
pub fn from_dir(dir: &Path) -> Result<Vec<Scenario>, Vec<LoadError>> {
    parse_all(read_tree(dir)?.into_iter())
}

/// Every `*.toml` file under `dir`, as (path, text), sorted by path.
pub(crate) fn read_tree(dir: &Path) -> Result<Vec<(String, String)>, Vec<LoadError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    walk(dir, &mut files, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    files.sort();
    let mut texts = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => texts.push((path.display().to_string(), text)),
            Err(e) => errors.push(LoadError { file: path.display().to_string(), line: 0, message: e.to_string() }),
        }
    }
    if errors.is_empty() { Ok(texts) } else { Err(errors) }
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>, errors: &mut Vec<LoadError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(LoadError { file: dir.display().to_string(), line: 0, message: e.to_string() });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files, errors);
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
}

fn parse_all(files: impl Iterator<Item = (String, String)>) -> Result<Vec<Scenario>, Vec<LoadError>> {
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in files {
        match parse_scenario(&file, &text) {
            Ok(scenario) => scenarios.push(scenario),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(scenarios) } else { Err(errors) }
}

/// Topic names and client ids a scenario writes that do not carry `{prefix}`: without it,
/// parallel runs (and other users of a shared broker) would see each other's messages.
pub fn unprefixed_names(scenario: &Scenario) -> Vec<String> {
    let carries_prefix = |text: &str| text.contains("{prefix}") || text.contains("{refused_topic}");
    let mut found = Vec::new();
    let mut check = |what: &str, text: &str| {
        if !text.is_empty() && !carries_prefix(text) {
            found.push(format!("{what} `{text}`"));
        }
    };
    for step in &scenario.steps {
        let connect = match &step.action {
            Action::Connect { connect, .. } => Some(connect),
            Action::Send { packet: OutgoingPacket::Connect(connect), .. } => Some(connect),
            Action::Send { packet: OutgoingPacket::Publish { topic, .. }, .. } => {
                check("topic", topic);
                None
            }
            _ => None,
        };
        if let Some(connect) = connect {
            if let Some(id) = &connect.client_id {
                check("client id", id);
            }
            if let Some(will) = &connect.will {
                check("will topic", &will.topic);
            }
        }
    }
    found
}

/// Check scenario ids are unique, every cited statement is in the catalogue, and every
/// topic name and client id carries `{prefix}`.
pub fn check(scenarios: &[Scenario], catalogue: &Catalogue) -> Vec<LoadError> {
    let mut errors = Vec::new();
    for scenario in scenarios {
        for name in unprefixed_names(scenario) {
            errors.push(LoadError {
                file: scenario.source.clone(),
                line: 1,
                message: format!("{name} does not contain `{{prefix}}`, so parallel runs could see each other"),
            });
        }
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for scenario in scenarios {
        if let Some(first) = seen.insert(&scenario.id, &scenario.source) {
            errors.push(LoadError {
                file: scenario.source.clone(),
                line: 1,
                message: format!("scenario id `{}` is also used by {first}", scenario.id),
            });
        }
        for (version, ids) in &scenario.statements {
            for id in ids {
                if !catalogue.contains(*version, id) {
                    errors.push(LoadError {
                        file: scenario.source.clone(),
                        line: 1,
                        message: format!("statement `{id}` is not in the {version} catalogue"),
                    });
                }
            }
        }
    }
    errors
}

//! Verdicts and the run report data every report format is rendered from.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::scenario::Level;
use crate::version::Version;

/// The kind of verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// Every expectation was met.
    Pass,
    /// An expectation was not met (a timeout counts as not met).
    Fail,
    /// A capability the scenario needs is missing.
    Skip,
    /// Failed, and the broker profile lists this as a known deviation.
    KnownDeviation,
    /// A precondition outside the scenario's subject was not met.
    Inconclusive,
    /// The runner or the network failed.
    Error,
}

impl OutcomeKind {
    /// All kinds, in report order.
    pub const ALL: [Self; 6] =
        [Self::Pass, Self::Fail, Self::Skip, Self::KnownDeviation, Self::Inconclusive, Self::Error];

    /// Label used in reports.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Skip => "skip",
            Self::KnownDeviation => "known-deviation",
            Self::Inconclusive => "inconclusive",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A verdict with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Kind.
    pub kind: OutcomeKind,
    /// Why (for anything but a pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the failing step expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What arrived instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// 1-based index of the failing step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// Line of the failing step in the scenario file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Outcome {
    /// A pass.
    pub const fn pass() -> Self {
        Self { kind: OutcomeKind::Pass, reason: None, expected: None, actual: None, step: None, line: None }
    }

    /// Any other verdict with a reason.
    pub fn new(kind: OutcomeKind, reason: impl Into<String>) -> Self {
        Self { kind, reason: Some(reason.into()), ..Self::pass() }
    }
}

/// Direction of a trace entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Runner to broker.
    Sent,
    /// Broker to runner.
    Received,
    /// Connection event (opened, closed, …).
    Event,
}

/// One line of a packet trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// Milliseconds since the scenario started.
    pub at_ms: u64,
    /// Client name.
    pub client: String,
    /// Direction.
    pub direction: Direction,
    /// Decoded form or event description.
    pub summary: String,
    /// Bytes on the wire, hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hex: String,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::Sent => "->",
            Direction::Received => "<-",
            Direction::Event => "--",
        };
        write!(f, "{:>6} ms {:<8} {arrow} {}", self.at_ms, self.client, self.summary)?;
        if !self.hex.is_empty() {
            write!(f, "\n{:>18}[{}]", "", self.hex)?;
        }
        Ok(())
    }
}

/// One earlier attempt of a scenario whose verdict was re-checked (see `--confirm`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Whether no other scenario was in flight during this attempt.
    pub alone: bool,
    /// The verdict of this attempt.
    pub outcome: Outcome,
    /// Its packet trace.
    pub trace: Vec<TraceEntry>,
}

/// The result of one scenario under one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Version it ran under.
    pub version: Version,
    /// Level.
    pub level: Level,
    /// Tags.
    pub tags: Vec<String>,
    /// Statement ids checked under this version.
    pub statements: Vec<String>,
    /// Verdict.
    pub outcome: Outcome,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// The packet trace.
    pub trace: Vec<TraceEntry>,
    /// Scenario source file.
    pub source: String,
    /// Every attempt when the verdict was re-checked (the first attempt first); empty when
    /// the scenario ran once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

impl ScenarioResult {
    /// Whether this result is a real verdict on the broker (pass, fail or a recorded
    /// deviation), as opposed to skipped, inconclusive or not run.
    pub const fn is_verdict(&self) -> bool {
        matches!(self.outcome.kind, OutcomeKind::Pass | OutcomeKind::Fail | OutcomeKind::KnownDeviation)
    }
}

/// Which scenarios cover one statement, and how they fared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementCoverage {
    /// Statement id.
    pub id: String,
    /// Level in the standard.
    pub level: String,
    /// Observable over the wire.
    pub observable: bool,
    /// Summary.
    pub summary: String,
    /// Scenario ids citing it.
    pub scenarios: Vec<String>,
    /// Outcomes of those scenarios in this run (scenario id → outcome).
    pub outcomes: BTreeMap<String, OutcomeKind>,
}

/// Coverage of one version's catalogue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionCoverage {
    /// Version.
    pub version: Version,
    /// Every statement.
    pub statements: Vec<StatementCoverage>,
    /// Observable statements in the catalogue.
    pub observable_total: usize,
    /// Observable statements cited by at least one scenario.
    pub observable_covered: usize,
}

/// The broker stopped answering during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStopped {
    /// The scenario run (`id [version]`) whose liveness check found the broker gone.
    pub noticed_by: String,
    /// Every scenario run in flight at that moment: the broker stopped during one of them.
    pub during: Vec<String>,
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// What the liveness check saw.
    pub evidence: String,
}

/// Whether the broker speaks a protocol version, as the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Support {
    /// It accepted a CONNECT of this version.
    Supported,
    /// It refused the version (3.1.1-form CONNACK, 0x84, a close or silence).
    Unsupported,
    /// It speaks the version but refused the CONNECT for want of credentials or rights.
    NeedsCredentials,
    /// It speaks the version but refused the CONNECT for another reason.
    Refused,
}

/// What the probe learned about one protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSupport {
    /// The version.
    pub version: Version,
    /// Whether the user asked for it (`--protocol`).
    pub selected: bool,
    /// What the probe found.
    pub support: Support,
    /// What the broker answered, in words and bytes.
    pub evidence: String,
}

/// Everything a report needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Runner name and version.
    pub runner: String,
    /// What was tested (address or "embedded reference broker").
    pub target: String,
    /// Broker profile name, if any.
    pub profile: Option<String>,
    /// Seconds since the Unix epoch at the start.
    pub started_unix: u64,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// Time scale used.
    pub time_scale: f64,
    /// Protocol versions, as the probe found them.
    pub versions: Vec<VersionSupport>,
    /// A problem that stopped the run before any scenario (unreachable, not an MQTT broker,
    /// credentials missing), with a hint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<crate::probe::Problem>,
    /// The broker stopped answering during the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_stopped: Option<BrokerStopped>,
    /// The run was interrupted (Ctrl-C) and is partial.
    pub interrupted: bool,
    /// Every result.
    pub results: Vec<ScenarioResult>,
    /// Statement coverage per version.
    pub coverage: Vec<VersionCoverage>,
}

/// The run's overall verdict: the exit status and one line saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Process exit status (see [`exit`]).
    pub exit_code: i32,
    /// One line for people.
    pub headline: String,
}

/// Exit statuses of the runner.
pub mod exit {
    /// Something was checked and no MUST scenario failed.
    pub const OK: i32 = 0;
    /// At least one MUST scenario failed.
    pub const MUST_FAILED: i32 = 1;
    /// Bad arguments, scenario files, profile, or a selector that matches nothing.
    pub const USAGE: i32 = 2;
    /// The target could not be reached, or is not an MQTT broker.
    pub const UNREACHABLE: i32 = 3;
    /// No address was given and the embedded broker is not available.
    pub const NO_EMBEDDED_BROKER: i32 = 4;
    /// Nothing was checked: every scenario was skipped, inconclusive or not run (e.g. the
    /// broker supports none of the selected versions, or refused every CONNECT).
    pub const NOTHING_CHECKED: i32 = 5;
    /// The broker stopped answering during the run.
    pub const BROKER_STOPPED: i32 = 6;
    /// Interrupted (Ctrl-C); reports hold the partial results.
    pub const INTERRUPTED: i32 = 130;
}

impl RunReport {
    /// Count of results by kind.
    pub fn counts(&self) -> BTreeMap<OutcomeKind, usize> {
        count(self.results.iter())
    }

    /// Whether a MUST scenario failed.
    pub fn must_failed(&self) -> bool {
        self.results.iter().any(|r| r.level == Level::Must && matches!(r.outcome.kind, OutcomeKind::Fail))
    }

    /// The versions the broker speaks, among those selected.
    pub fn supported_versions(&self) -> Vec<Version> {
        self.versions.iter().filter(|v| v.selected && v.support == Support::Supported).map(|v| v.version).collect()
    }

    /// The overall verdict. In order: a problem before any scenario; an interrupted run; a
    /// broker that stopped; a MUST failure; nothing checked; success.
    pub fn verdict(&self) -> Verdict {
        let verdict = |exit_code, headline: String| Verdict { exit_code, headline };
        let counts = self.counts();
        let n = |kind| counts.get(&kind).copied().unwrap_or(0);
        if let (Some(problem), false) = (&self.problem, self.interrupted) {
            let code = if problem.not_mqtt { exit::UNREACHABLE } else { exit::NOTHING_CHECKED };
            return verdict(code, format!("NOT CHECKED: {}", problem.message));
        }
        let must_failures =
            self.results.iter().filter(|r| r.level == Level::Must && r.outcome.kind == OutcomeKind::Fail).count();
        if self.interrupted {
            return verdict(
                exit::INTERRUPTED,
                format!(
                    "INTERRUPTED: partial results ({} passed, {} failed so far)",
                    n(OutcomeKind::Pass),
                    n(OutcomeKind::Fail)
                ),
            );
        }
        if let Some(stopped) = &self.broker_stopped {
            return verdict(
                exit::BROKER_STOPPED,
                format!(
                    "BROKER STOPPED answering during {} ({} MUST failures before that)",
                    stopped.during.join(" or "),
                    must_failures
                ),
            );
        }
        if must_failures > 0 {
            return verdict(
                exit::MUST_FAILED,
                format!("FAIL: {must_failures} MUST scenario runs failed ({} passed)", n(OutcomeKind::Pass)),
            );
        }
        if !self.results.iter().any(ScenarioResult::is_verdict) {
            let why = if self.supported_versions().is_empty() {
                "the broker supports none of the selected protocol versions".to_owned()
            } else if self.results.is_empty() {
                "no scenario was selected".to_owned()
            } else {
                format!(
                    "every scenario run was skipped, inconclusive or not run ({} skip, {} inconclusive, {} error)",
                    n(OutcomeKind::Skip),
                    n(OutcomeKind::Inconclusive),
                    n(OutcomeKind::Error)
                )
            };
            return verdict(exit::NOTHING_CHECKED, format!("NOTHING CHECKED: {why}"));
        }
        verdict(
            exit::OK,
            format!(
                "PASS: no MUST scenario failed ({} passed, {} known deviations, {} not checked)",
                n(OutcomeKind::Pass),
                n(OutcomeKind::KnownDeviation),
                n(OutcomeKind::Skip) + n(OutcomeKind::Inconclusive) + n(OutcomeKind::Error)
            ),
        )
    }
}

/// Count results by kind.
pub fn count<'a>(results: impl Iterator<Item = &'a ScenarioResult>) -> BTreeMap<OutcomeKind, usize> {
    let mut counts = BTreeMap::new();
    for result in results {
        *counts.entry(result.outcome.kind).or_insert(0usize) += 1;
    }
    counts
}

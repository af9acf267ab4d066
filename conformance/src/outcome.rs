//! Verdicts and the run report data every report format is rendered from.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::scenario::Level;
use crate::version::Version;

/// The kind of verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    #[serde(skip_serializing_if = "String::is_empty")]
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

/// The result of one scenario under one version.
#[derive(Debug, Clone, Serialize)]
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
}

/// Which scenarios cover one statement, and how they fared.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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

/// Everything a report needs.
#[derive(Debug, Clone, Serialize)]
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
    /// Every result.
    pub results: Vec<ScenarioResult>,
    /// Statement coverage per version.
    pub coverage: Vec<VersionCoverage>,
}

impl RunReport {
    /// Count of results by kind.
    pub fn counts(&self) -> BTreeMap<OutcomeKind, usize> {
        count(self.results.iter())
    }

    /// Whether a MUST scenario failed (the exit status depends on it).
    pub fn must_failed(&self) -> bool {
        self.results.iter().any(|r| r.level == Level::Must && matches!(r.outcome.kind, OutcomeKind::Fail))
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

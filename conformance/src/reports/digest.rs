//! What every report shows the same way, sized for runs with hundreds of non-passes:
//! one-line reasons, bounded traces, skips grouped by reason, non-passes worst first, the
//! probe's findings in words, and dates.

use std::collections::BTreeMap;

use crate::outcome::{OutcomeKind, RunReport, ScenarioResult, Support, TraceEntry, VersionSupport};
use crate::version::Version;

/// Trace entries a report shows per trace: the last ones, where a failure shows.
pub const TRACE_TAIL: usize = 40;

/// Outcome kinds from the one that matters most to a reader to the one that matters least:
/// deviations from the standard first, then runs that could not tell, then passes.
pub const WORST_FIRST: [OutcomeKind; 6] = [
    OutcomeKind::Fail,
    OutcomeKind::KnownDeviation,
    OutcomeKind::Error,
    OutcomeKind::Inconclusive,
    OutcomeKind::Skip,
    OutcomeKind::Pass,
];

/// Position of `kind` in [`WORST_FIRST`] (0 is the worst).
pub fn severity(kind: OutcomeKind) -> usize {
    WORST_FIRST.iter().position(|k| *k == kind).unwrap_or(WORST_FIRST.len())
}

/// The first line of `text`, at most `max_chars` characters, with an ellipsis when
/// anything was left out; control characters become U+FFFD.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let mut out: String = first.chars().take(max_chars).map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect();
    if first.chars().count() > max_chars || lines.any(|l| !l.trim().is_empty()) {
        out.push('…');
    }
    out
}

/// A result's reason on one line (empty for a pass).
pub fn reason_line(result: &ScenarioResult) -> String {
    one_line(result.outcome.reason.as_deref().unwrap_or(""), 200)
}

/// Longest trace summary a report prints, in characters.
const SUMMARY_CHARS: usize = 300;

/// One trace entry like its `Display`, with the summary and the hex bounded (`hex_bytes`
/// bytes of the wire form at most, then how many more there were).
pub fn entry_text(entry: &TraceEntry, hex_bytes: usize) -> String {
    let bounded = TraceEntry {
        summary: one_line(&entry.summary, SUMMARY_CHARS),
        hex: bounded_hex(&entry.hex, hex_bytes),
        ..entry.clone()
    };
    bounded.to_string()
}

fn bounded_hex(hex: &str, max_bytes: usize) -> String {
    let bytes: Vec<&str> = hex.split_whitespace().collect();
    if bytes.len() <= max_bytes {
        return hex.to_owned();
    }
    format!("{} … ({} bytes in all)", bytes[..max_bytes].join(" "), bytes.len())
}

/// The last [`TRACE_TAIL`] entries of a trace as text, after a line saying how many
/// earlier entries were cut.
pub fn bounded_trace_text(trace: &[TraceEntry], hex_bytes: usize) -> String {
    let cut = trace.len().saturating_sub(TRACE_TAIL);
    let mut text = String::new();
    if cut > 0 {
        text.push_str(&format!(
            "… {cut} earlier entries cut ({} in all; the JSON report has every entry)\n",
            trace.len()
        ));
    }
    for entry in &trace[cut..] {
        text.push_str(&entry_text(entry, hex_bytes));
        text.push('\n');
    }
    text
}

/// A trace to show for a result, with its label when the result has several attempts.
#[derive(Debug)]
pub struct LabelledTrace<'a> {
    /// "attempt 1 (in parallel): fail — reason", or empty for a result run once.
    pub label: String,
    /// The attempt's verdict (the result's own when run once).
    pub kind: OutcomeKind,
    /// The entries.
    pub trace: &'a [TraceEntry],
}

/// The traces a report shows for a result: each attempt's (labelled "in parallel" or
/// "alone") when the verdict was re-checked, else the result's own. The result's trace is
/// its first attempt's, so it is shown again only if it differs.
pub fn traces(result: &ScenarioResult) -> Vec<LabelledTrace<'_>> {
    let mut traces = Vec::new();
    let first_differs = result.attempts.first().is_none_or(|first| first.trace != result.trace);
    if first_differs {
        traces.push(LabelledTrace { label: String::new(), kind: result.outcome.kind, trace: &result.trace });
    }
    for (i, attempt) in result.attempts.iter().enumerate() {
        let reason = attempt.outcome.reason.as_deref().map(|r| format!(" — {}", one_line(r, 200))).unwrap_or_default();
        traces.push(LabelledTrace {
            label: format!(
                "attempt {} ({}): {}{reason}",
                i + 1,
                if attempt.alone { "alone" } else { "in parallel" },
                attempt.outcome.kind
            ),
            kind: attempt.outcome.kind,
            trace: &attempt.trace,
        });
    }
    traces
}

/// Every result but the passes (and the skips unless `with_skips`), worst first, then by
/// scenario id and version.
pub fn non_passes(results: &[ScenarioResult], with_skips: bool) -> Vec<&ScenarioResult> {
    let mut list: Vec<_> = results
        .iter()
        .filter(|r| r.outcome.kind != OutcomeKind::Pass && (with_skips || r.outcome.kind != OutcomeKind::Skip))
        .collect();
    list.sort_by(|a, b| {
        (severity(a.outcome.kind), a.id.as_str(), a.version).cmp(&(severity(b.outcome.kind), b.id.as_str(), b.version))
    });
    list
}

/// Skipped runs sharing one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipGroup {
    /// The reason, as the runner gave it.
    pub reason: String,
    /// How many runs per version.
    pub versions: BTreeMap<Version, usize>,
}

impl SkipGroup {
    /// Runs in the group.
    pub fn count(&self) -> usize {
        self.versions.values().sum()
    }

    /// "5.0" when all runs are of one version, else "3.1.1: 4, 5.0: 9".
    pub fn versions_text(&self) -> String {
        if self.versions.len() == 1 {
            return self.versions.keys().map(|v| v.to_string()).collect();
        }
        self.versions.iter().map(|(v, n)| format!("{v}: {n}")).collect::<Vec<_>>().join(", ")
    }
}

/// The skipped runs grouped by reason, the largest group first.
pub fn skip_groups(results: &[ScenarioResult]) -> Vec<SkipGroup> {
    let mut groups: BTreeMap<String, BTreeMap<Version, usize>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.outcome.kind == OutcomeKind::Skip) {
        let reason = r.outcome.reason.clone().unwrap_or_default();
        *groups.entry(reason).or_default().entry(r.version).or_default() += 1;
    }
    let mut groups: Vec<SkipGroup> =
        groups.into_iter().map(|(reason, versions)| SkipGroup { reason, versions }).collect();
    groups.sort_by(|a, b| b.count().cmp(&a.count()).then_with(|| a.reason.cmp(&b.reason)));
    groups
}

/// What the probe found about a version, in words: "supported", "not supported", ….
pub fn support_words(support: &VersionSupport) -> String {
    match support.support {
        Support::Supported => "supported".to_owned(),
        Support::Unsupported => format!("does not support MQTT {}", support.version),
        Support::NeedsCredentials => "refused: credentials needed".to_owned(),
        Support::Refused => "refused the CONNECT".to_owned(),
    }
}

/// What happened to the scenario runs of a version because of the probe's finding.
pub fn support_consequence(support: &VersionSupport, runs: usize) -> String {
    match (support.selected, support.support) {
        (false, _) => "not selected".to_owned(),
        (true, Support::Supported) => format!("{runs} scenario runs"),
        (true, Support::Unsupported) => format!("its {runs} scenario runs are skipped"),
        (true, _) => format!("its {runs} scenario runs are not run"),
    }
}

/// What every report says before the summary when the run was not a complete run: a
/// problem before any scenario, a broker that stopped answering, an interruption. Each is
/// a heading and a sentence.
pub fn run_notes(report: &RunReport) -> Vec<(&'static str, String)> {
    let mut notes = Vec::new();
    if let Some(problem) = &report.problem {
        notes.push(("Not checked", problem.message.clone()));
    }
    if let Some(stopped) = &report.broker_stopped {
        notes.push((
            "The broker stopped answering",
            format!(
                "during {} (noticed by {} at {} ms): {}. Later scenario runs were not run.",
                stopped.during.join(" or "),
                stopped.noticed_by,
                stopped.at_ms,
                stopped.evidence
            ),
        ));
    }
    if report.interrupted {
        notes.push(("Interrupted", "the run was stopped early; these are partial results.".to_owned()));
    }
    notes
}

/// What an exit status of the runner means (see [`crate::outcome::exit`]).
pub fn exit_meaning(code: i32) -> &'static str {
    use crate::outcome::exit;
    match code {
        exit::OK => "something was checked and no MUST scenario failed",
        exit::MUST_FAILED => "a MUST scenario failed",
        exit::USAGE => "bad arguments, scenario files or profile",
        exit::UNREACHABLE => "the target could not be reached or is not an MQTT broker",
        exit::NO_EMBEDDED_BROKER => "no address given and no embedded broker",
        exit::NOTHING_CHECKED => "nothing was checked",
        exit::BROKER_STOPPED => "the broker stopped answering during the run",
        exit::INTERRUPTED => "interrupted: partial results",
        _ => "unknown",
    }
}

/// "1 run", "2 runs".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `2024-12-01 06:28 UTC` for seconds since the Unix epoch.
pub fn utc_date(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let seconds = unix % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", seconds / 3600, seconds % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Attempt, Direction, Outcome};
    use crate::scenario::Level;

    fn entry(i: u64, hex_bytes: usize) -> TraceEntry {
        TraceEntry {
            at_ms: i,
            client: "c".into(),
            direction: Direction::Received,
            summary: format!("PUBACK packet_id={i}"),
            hex: vec!["ab"; hex_bytes].join(" "),
        }
    }

    fn result(kind: OutcomeKind, id: &str, reason: &str) -> ScenarioResult {
        ScenarioResult {
            id: id.into(),
            title: "t".into(),
            version: Version::V5,
            level: Level::Must,
            tags: vec![],
            statements: vec!["MQTT-3.3.1-5".into()],
            outcome: if kind == OutcomeKind::Pass { Outcome::pass() } else { Outcome::new(kind, reason) },
            duration_ms: 1,
            trace: vec![entry(1, 4)],
            source: "s.toml".into(),
            attempts: vec![],
        }
    }

    #[test]
    fn one_line_keeps_the_first_line_and_marks_what_was_left_out() {
        assert_eq!(one_line("short", 10), "short");
        assert_eq!(one_line("first\nsecond", 10), "first…");
        assert_eq!(one_line("first\n\n", 10), "first");
        assert_eq!(one_line("abcdefghijkl", 5), "abcde…");
        assert_eq!(one_line("a\u{7}b", 5), "a\u{FFFD}b");
    }

    #[test]
    fn bounded_trace_keeps_the_last_entries_and_says_how_many_were_cut() {
        let trace: Vec<_> = (0..100).map(|i| entry(i, 2)).collect();
        let text = bounded_trace_text(&trace, 8);
        assert!(text.starts_with("… 60 earlier entries cut (100 in all;"), "{text}");
        assert!(text.contains("packet_id=99") && text.contains("packet_id=60") && !text.contains("packet_id=59\n"));
        let short = bounded_trace_text(&trace[..3], 8);
        assert!(!short.contains("cut"), "{short}");
    }

    #[test]
    fn long_wire_forms_are_bounded() {
        let text = entry_text(&entry(1, 600), 16);
        assert!(text.contains("… (600 bytes in all)"), "{text}");
        assert!(text.len() < 200, "{text}");
        assert!(!entry_text(&entry(1, 16), 16).contains("in all"));
    }

    #[test]
    fn attempts_are_labelled_and_the_first_trace_is_not_repeated() {
        let mut r = result(OutcomeKind::Inconclusive, "a", "failed alongside other scenarios, passed alone");
        r.attempts = vec![
            Attempt { alone: false, outcome: Outcome::new(OutcomeKind::Fail, "late"), trace: r.trace.clone() },
            Attempt { alone: true, outcome: Outcome::pass(), trace: vec![entry(2, 1)] },
        ];
        let labels: Vec<_> = traces(&r).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["attempt 1 (in parallel): fail — late", "attempt 2 (alone): pass"]);
        r.trace = vec![entry(9, 1)];
        assert_eq!(traces(&r).len(), 3, "a result trace that differs from the first attempt's is shown too");
        assert_eq!(traces(&result(OutcomeKind::Fail, "b", "x")).len(), 1);
    }

    #[test]
    fn non_passes_come_worst_first_and_skips_group_by_reason() {
        let results = vec![
            result(OutcomeKind::Skip, "a", "needs retain"),
            result(OutcomeKind::Inconclusive, "b", "x"),
            result(OutcomeKind::Pass, "c", ""),
            result(OutcomeKind::Fail, "d", "y"),
            result(OutcomeKind::Skip, "e", "needs retain"),
            result(OutcomeKind::Skip, "f", "needs qos2"),
        ];
        let ids: Vec<_> = non_passes(&results, false).iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["d", "b"]);
        assert_eq!(non_passes(&results, true).len(), 5);
        let groups = skip_groups(&results);
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].reason.as_str(), groups[0].count()), ("needs retain", 2));
        assert_eq!(groups[0].versions_text(), "5.0");
        let both = SkipGroup { reason: "r".into(), versions: [(Version::V3_1_1, 4), (Version::V5, 9)].into() };
        assert_eq!((both.count(), both.versions_text().as_str()), (13, "3.1.1: 4, 5.0: 9"));
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(1_733_034_520), "2024-12-01 06:28 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
    }
}

//! Compatibility matrix of several brokers' runs, read from their JSON reports: one HTML
//! page of statements × brokers per protocol version, and a Markdown table of counts per
//! broker and version for a README. Used by the `compat-matrix` binary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::digest::{self, WORST_FIRST};
use super::escape_xml as esc;
use crate::outcome::{OutcomeKind, RunReport, StatementCoverage, Support};
use crate::version::Version;

const STYLE: &str = concat!(include_str!("assets/report.css"), include_str!("assets/matrix.css"));
const SCRIPT: &str = include_str!("assets/matrix.js");

/// One broker's run: a column of the matrix.
#[derive(Debug, Clone)]
pub struct Column {
    /// The broker's name as given on the command line.
    pub name: String,
    /// Its run.
    pub report: RunReport,
    /// Where its HTML report is, relative to the matrix page, if known.
    pub report_href: Option<String>,
}

/// A `NAME=FILE.json` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Broker name shown in the matrix.
    pub name: String,
    /// The JSON report written by `mqttkit-conformance --report json=FILE`.
    pub path: PathBuf,
}

impl std::str::FromStr for Input {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('=') {
            Some((name, path)) if !name.trim().is_empty() && !path.is_empty() => {
                Ok(Self { name: name.trim().to_owned(), path: PathBuf::from(path) })
            }
            _ => {
                Err(format!("expected NAME=FILE.json, e.g. mosquitto=target/conformance/mosquitto.json; got `{text}`"))
            }
        }
    }
}

/// Read a JSON report.
pub fn load(path: &Path) -> Result<RunReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!("{} is not a JSON report of mqttkit-conformance (--report json=FILE): {e}", path.display())
    })
}

/// The path of `target` relative to the directory `from`, as a URL path; both must exist.
pub fn relative_href(from: &Path, target: &Path) -> Option<String> {
    let from = std::fs::canonicalize(from).ok()?;
    let target = std::fs::canonicalize(target).ok()?;
    let from: Vec<Component<'_>> = from.components().collect();
    let to: Vec<Component<'_>> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(to[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    Some(parts.iter().map(|p| url_escape(p)).collect::<Vec<_>>().join("/"))
}

fn url_escape(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The scenario runs citing each statement on one broker: (version, statement) → runs.
type Citations = BTreeMap<(Version, String), Vec<(String, OutcomeKind)>>;

fn citations(report: &RunReport) -> Citations {
    let mut map: Citations = BTreeMap::new();
    for r in &report.results {
        for statement in &r.statements {
            map.entry((r.version, statement.clone())).or_default().push((r.id.clone(), r.outcome.kind));
        }
    }
    for runs in map.values_mut() {
        runs.sort_by_key(|(id, kind)| (digest::severity(*kind), id.clone()));
    }
    map
}

/// The statements of `version`, in catalogue order, from every report that has them.
fn statements(columns: &[Column], version: Version) -> Vec<StatementCoverage> {
    let mut seen = BTreeSet::new();
    let mut list = Vec::new();
    for column in columns {
        for coverage in column.report.coverage.iter().filter(|c| c.version == version) {
            for s in &coverage.statements {
                if seen.insert(s.id.clone()) {
                    list.push(s.clone());
                }
            }
        }
    }
    list
}

fn ran(report: &RunReport, version: Version) -> bool {
    report.results.iter().any(|r| r.version == version)
}

/// What the probe found for each version, e.g. "3.1.1 supported · 5.0 does not support MQTT 5.0".
fn support_line(report: &RunReport) -> String {
    report
        .versions
        .iter()
        .map(|v| format!("{} {}", v.version, digest::support_words(v)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Observable statements of `version` with a scenario run that reached a verdict (pass, fail
/// or known deviation) on this broker, and the observable statements in the catalogue.
fn statements_checked(report: &RunReport, version: Version) -> (usize, usize) {
    let Some(coverage) = report.coverage.iter().find(|c| c.version == version) else { return (0, 0) };
    let checked = coverage
        .statements
        .iter()
        .filter(|s| s.observable)
        .filter(|s| {
            s.outcomes
                .values()
                .any(|k| matches!(k, OutcomeKind::Pass | OutcomeKind::Fail | OutcomeKind::KnownDeviation))
        })
        .count();
    (checked, coverage.observable_total)
}

/// The Markdown table: per broker and version, the count of each outcome and the
/// observable statements checked.
pub fn markdown(columns: &[Column]) -> String {
    let mut out = String::from(
        "| broker | version | pass | fail | skip | known deviation | inconclusive | error | statements checked |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let cell = |text: &str| text.replace('|', "\\|").replace(['\n', '\r'], " ");
    for column in columns {
        let report = &column.report;
        if report.results.is_empty() {
            let _ = writeln!(
                out,
                "| {} | — | 0 | 0 | 0 | 0 | 0 | 0 | {} |",
                cell(&column.name),
                cell(&report.verdict().headline)
            );
            continue;
        }
        for version in Version::ALL.into_iter().filter(|v| ran(report, *v)) {
            let results: Vec<_> = report.results.iter().filter(|r| r.version == version).collect();
            let counts = crate::outcome::count(results.into_iter());
            let unsupported =
                report.versions.iter().any(|v| v.version == version && v.selected && v.support != Support::Supported);
            let (checked, total) = statements_checked(report, version);
            let _ = write!(
                out,
                "| {} | {version}{} |",
                cell(&column.name),
                if unsupported { " (not supported)" } else { "" }
            );
            for kind in OutcomeKind::ALL {
                let _ = write!(out, " {} |", counts.get(&kind).copied().unwrap_or(0));
            }
            let _ = writeln!(out, " {checked}/{total} |");
        }
    }
    out.push_str(
        "\nStatements checked: observable statements of that version with at least one scenario run that \
         reached a verdict (pass, fail or known deviation) on that broker, of those in the catalogue.\n",
    );
    out
}

/// The HTML page: a header per broker (versions it supports, verdict, counts), then per
/// version the statements × brokers matrix, each cell the worst outcome of the scenario
/// runs citing the statement on that broker, with the runs in its tooltip and a link to the
/// worst run in the broker's own report.
pub fn html(columns: &[Column]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>MQTT compatibility matrix</title><style>{STYLE}</style></head><body>\
         <header class=\"banner neutral\"><h1>MQTT compatibility matrix</h1><p class=\"headline\">{} brokers, \
         statement by statement</p></header><main>",
        columns.len()
    );
    brokers(&mut out, columns);
    out.push_str(
        "<p class=\"legend\">Each cell is the worst outcome of the scenario runs citing the statement on that \
         broker, in this order: ",
    );
    for kind in WORST_FIRST {
        let _ = write!(out, "<span class=\"k {kind}\">{kind}</span> ");
    }
    out.push_str(
        "(— none ran). The count is how many of those runs had that outcome. Hover for every run; a click \
         opens the broker's report at that run.</p><div id=\"row-filters\" hidden>\
         <label><input type=\"checkbox\" id=\"only-nonpass\"> only statements with an outcome other than pass</label> \
         <label><input type=\"checkbox\" id=\"only-differing\"> only statements whose outcome differs between brokers</label>\
         <span id=\"rows-shown\"></span></div>",
    );
    let cited: Vec<Citations> = columns.iter().map(|c| citations(&c.report)).collect();
    for version in Version::ALL {
        if columns.iter().any(|c| ran(&c.report, version)) {
            version_table(&mut out, columns, &cited, version);
        }
    }
    let _ = writeln!(out, "</main><script>{SCRIPT}</script></body></html>");
    out
}

fn brokers(out: &mut String, columns: &[Column]) {
    out.push_str(
        "<section id=\"brokers\"><h2>Brokers</h2><table><tr><th>broker</th><th>target</th><th>profile</th>\
         <th>protocol versions</th><th>verdict</th>",
    );
    for kind in OutcomeKind::ALL {
        let _ = write!(out, "<th class=\"{kind}\">{kind}</th>");
    }
    out.push_str("</tr>");
    for column in columns {
        let report = &column.report;
        let verdict = report.verdict();
        let name = match &column.report_href {
            Some(href) => format!("<a href=\"{}\">{}</a>", esc(href), esc(&column.name)),
            None => esc(&column.name),
        };
        let _ = write!(
            out,
            "<tr class=\"broker\"><td><strong>{name}</strong></td><td><code>{}</code></td><td>{}</td><td>",
            esc(&report.target),
            report.profile.as_deref().map_or_else(|| "none".to_owned(), esc),
        );
        for v in &report.versions {
            let _ = write!(
                out,
                "<div class=\"support {}\" title=\"{}\">MQTT {}: {}</div>",
                if v.support == Support::Supported { "yes" } else { "no" },
                esc(&v.evidence),
                v.version,
                esc(&digest::support_words(v))
            );
        }
        let class = match verdict.exit_code {
            crate::outcome::exit::OK => "ok",
            crate::outcome::exit::MUST_FAILED => "bad",
            _ => "warn",
        };
        let _ = write!(out, "</td><td class=\"verdict {class}\">{}</td>", esc(&verdict.headline));
        let counts = report.counts();
        for kind in OutcomeKind::ALL {
            let _ = write!(out, "<td class=\"n\">{}</td>", counts.get(&kind).copied().unwrap_or(0));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></section>");
}

fn version_table(out: &mut String, columns: &[Column], cited: &[Citations], version: Version) {
    let statements = statements(columns, version);
    let _ = write!(
        out,
        "<section class=\"version\" id=\"mqtt-{version}\"><h2>MQTT {version}</h2><table class=\"matrix\"><thead><tr>\
         <th>statement</th><th>level</th>"
    );
    for column in columns {
        let _ = write!(
            out,
            "<th class=\"broker-col\" title=\"{}\">{}</th>",
            esc(&support_line(&column.report)),
            esc(&column.name)
        );
    }
    out.push_str("</tr></thead><tbody>");
    for s in &statements {
        let cells: Vec<Option<&Vec<(String, OutcomeKind)>>> =
            cited.iter().map(|c| c.get(&(version, s.id.clone()))).collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let worst: Vec<Option<OutcomeKind>> =
            cells.iter().map(|c| c.and_then(|runs| runs.first().map(|r| r.1))).collect();
        let distinct: BTreeSet<_> = worst.iter().flatten().collect();
        let nonpass = worst.iter().flatten().any(|k| *k != OutcomeKind::Pass);
        let _ = write!(
            out,
            "<tr data-nonpass=\"{}\" data-differs=\"{}\"><td title=\"{}\"><code>{}</code></td><td>{}</td>",
            u8::from(nonpass),
            u8::from(distinct.len() > 1),
            esc(&s.summary),
            esc(&s.id),
            esc(&s.level)
        );
        for (column, runs) in columns.iter().zip(&cells) {
            cell(out, column, version, runs.map(Vec::as_slice));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    let uncovered: Vec<&str> =
        statements.iter().filter(|s| s.observable && s.scenarios.is_empty()).map(|s| s.id.as_str()).collect();
    if !uncovered.is_empty() {
        let _ = write!(
            out,
            "<p class=\"uncovered\">Observable statements no scenario cites ({}): {}</p>",
            uncovered.len(),
            esc(&uncovered.join(", "))
        );
    }
    out.push_str("</section>");
}

fn cell(out: &mut String, column: &Column, version: Version, runs: Option<&[(String, OutcomeKind)]>) {
    let Some(runs) = runs.filter(|r| !r.is_empty()) else {
        let why = if ran(&column.report, version) { "no scenario run cites it" } else { "this version was not run" };
        let _ = write!(out, "<td class=\"none\" title=\"{why}\">—</td>");
        return;
    };
    let (worst_id, worst) = (&runs[0].0, runs[0].1);
    let at_worst = runs.iter().filter(|r| r.1 == worst).count();
    let tooltip: Vec<String> = runs.iter().map(|(id, kind)| format!("{id} [{version}]: {kind}")).collect();
    let label = format!("{worst} <small>{at_worst}/{}</small>", runs.len());
    let body = match &column.report_href {
        Some(href) => format!(
            "<a href=\"{}#{}\">{label}</a>",
            esc(href),
            esc(&url_escape(&super::html::run_anchor(worst_id, version)))
        ),
        None => label,
    };
    let _ = write!(out, "<td class=\"{worst}\" title=\"{}\">{body}</td>", esc(&tooltip.join("\n")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Outcome, ScenarioResult, VersionCoverage, VersionSupport};
    use crate::scenario::Level;

    fn result(id: &str, version: Version, statement: &str, kind: OutcomeKind) -> ScenarioResult {
        ScenarioResult {
            id: id.into(),
            title: id.into(),
            version,
            level: Level::Must,
            tags: vec![],
            statements: vec![statement.into()],
            outcome: if kind == OutcomeKind::Pass { Outcome::pass() } else { Outcome::new(kind, "why") },
            duration_ms: 1,
            trace: vec![],
            source: "x.toml".into(),
            attempts: vec![],
        }
    }

    fn statement(id: &str, scenarios: &[&str], results: &[ScenarioResult]) -> StatementCoverage {
        StatementCoverage {
            id: id.into(),
            level: "MUST".into(),
            observable: true,
            summary: format!("summary of {id}"),
            scenarios: scenarios.iter().map(|s| (*s).to_owned()).collect(),
            outcomes: results
                .iter()
                .filter(|r| r.statements.iter().any(|s| s == id))
                .map(|r| (r.id.clone(), r.outcome.kind))
                .collect(),
        }
    }

    fn report(name: &str, results: Vec<ScenarioResult>, v5: Support) -> Column {
        let coverage = Version::ALL
            .iter()
            .map(|&version| {
                let mine: Vec<_> = results.iter().filter(|r| r.version == version).cloned().collect();
                VersionCoverage {
                    version,
                    statements: vec![
                        statement("MQTT-1", &["a", "b"], &mine),
                        statement("MQTT-2", &["c"], &mine),
                        statement("MQTT-9", &[], &mine),
                    ],
                    observable_total: 3,
                    observable_covered: 2,
                }
            })
            .collect();
        let support = |version, support| VersionSupport { version, selected: true, support, evidence: "ev".into() };
        Column {
            name: name.into(),
            report: RunReport {
                runner: "r".into(),
                target: format!("mqtt://{name}"),
                profile: None,
                started_unix: 0,
                duration_ms: 0,
                time_scale: 1.0,
                versions: vec![support(Version::V3_1_1, Support::Supported), support(Version::V5, v5)],
                problem: None,
                broker_stopped: None,
                interrupted: false,
                results,
                coverage,
            },
            report_href: None,
        }
    }

    fn columns() -> Vec<Column> {
        use OutcomeKind::*;
        use Version::*;
        vec![
            report(
                "good",
                vec![
                    result("a", V3_1_1, "MQTT-1", Pass),
                    result("b", V3_1_1, "MQTT-1", Pass),
                    result("c", V3_1_1, "MQTT-2", Pass),
                    result("a", V5, "MQTT-1", Pass),
                    result("b", V5, "MQTT-1", Pass),
                    result("c", V5, "MQTT-2", Pass),
                ],
                Support::Supported,
            ),
            report(
                "<old> & broken",
                vec![
                    result("a", V3_1_1, "MQTT-1", Pass),
                    result("b", V3_1_1, "MQTT-1", Fail),
                    result("c", V3_1_1, "MQTT-2", Inconclusive),
                    result("a", V5, "MQTT-1", Skip),
                    result("b", V5, "MQTT-1", Skip),
                    result("c", V5, "MQTT-2", Skip),
                ],
                Support::Unsupported,
            ),
        ]
    }

    #[test]
    fn inputs_are_name_equals_file() {
        let input: Input = "mosquitto 2.0=out/m=1.json".parse().expect("valid");
        assert_eq!(input, Input { name: "mosquitto 2.0".into(), path: "out/m=1.json".into() });
        assert!("file.json".parse::<Input>().is_err());
        assert!("=file.json".parse::<Input>().is_err());
        assert!("name=".parse::<Input>().is_err());
    }

    #[test]
    fn markdown_counts_each_broker_and_version() {
        let md = markdown(&columns());
        assert!(md.contains("| good | 3.1.1 | 3 | 0 | 0 | 0 | 0 | 0 | 2/3 |"), "{md}");
        assert!(md.contains("| good | 5.0 | 3 | 0 | 0 | 0 | 0 | 0 | 2/3 |"), "{md}");
        assert!(md.contains("| <old> & broken | 3.1.1 | 1 | 1 | 0 | 0 | 1 | 0 | 1/3 |"), "{md}");
        assert!(md.contains("| <old> & broken | 5.0 (not supported) | 0 | 0 | 3 | 0 | 0 | 0 | 0/3 |"), "{md}");
    }

    #[test]
    fn a_cell_is_the_worst_outcome_with_every_run_in_its_tooltip() {
        let page = html(&columns());
        assert!(page.contains("<th class=\"broker-col\" title=\"3.1.1 supported · 5.0 does not support MQTT 5.0\">&lt;old&gt; &amp; broken</th>"), "{page}");
        assert!(
            page.contains("<td class=\"fail\" title=\"b [3.1.1]: fail\na [3.1.1]: pass\">fail <small>1/2</small></td>"),
            "{page}"
        );
        assert!(page.contains("<td class=\"inconclusive\" title=\"c [3.1.1]: inconclusive\">"), "{page}");
        assert!(page.contains("<tr data-nonpass=\"1\" data-differs=\"1\"><td title=\"summary of MQTT-1\">"), "{page}");
        assert!(page.contains("<tr data-nonpass=\"1\" data-differs=\"1\"><td title=\"summary of MQTT-2\">"), "{page}");
        assert!(page.contains("Observable statements no scenario cites (1): MQTT-9"), "{page}");
        assert!(!page.contains("<old>"), "names are escaped");
    }

    #[test]
    fn cells_link_to_the_worst_run_in_the_brokers_report() {
        let mut columns = columns();
        columns[1].report_href = Some("old broker.html".into());
        let page = html(&columns);
        assert!(page.contains("<a href=\"old broker.html#run-b-3.1.1\">fail <small>1/2</small></a>"), "{page}");
        assert!(page.contains("<a href=\"old broker.html\">&lt;old&gt; &amp; broken</a>"), "{page}");
    }

    #[test]
    fn hrefs_are_relative_to_the_page() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("dirs");
        std::fs::create_dir_all(dir.path().join("c")).expect("dirs");
        std::fs::write(dir.path().join("c/my report.html"), "").expect("file");
        std::fs::write(dir.path().join("a/b/x.html"), "").expect("file");
        assert_eq!(
            relative_href(&dir.path().join("a/b"), &dir.path().join("c/my report.html")).as_deref(),
            Some("../../c/my%20report.html")
        );
        assert_eq!(relative_href(&dir.path().join("a/b"), &dir.path().join("a/b/x.html")).as_deref(), Some("x.html"));
        assert_eq!(relative_href(&dir.path().join("a/b"), &dir.path().join("missing.html")), None);
    }
}

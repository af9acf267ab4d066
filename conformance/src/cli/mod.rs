//! Command line: argument parsing and the top-level flow (load, select, probe, run, report).

mod selection;
mod target;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

pub use selection::{SelectionError, select};
pub use target::{Target, parse_target};

use crate::catalogue::Catalogue;
use crate::engine::{self, Capabilities, Hooks, RunConfig};
use crate::outcome::{OutcomeKind, RunReport, ScenarioResult, Support};
use crate::probe::{self, ProbeReport};
use crate::profile::Profile;
use crate::reports::{self, ReportTarget};
use crate::scenario::{self, Scenario};
use crate::transport::{Address, Connector, TlsOptions};
use crate::version::Version;

/// Exit statuses (see [`crate::outcome::exit`]).
pub use crate::outcome::exit::{
    BROKER_STOPPED as EXIT_BROKER_STOPPED, INTERRUPTED as EXIT_INTERRUPTED, MUST_FAILED as EXIT_MUST_FAILED,
    NO_EMBEDDED_BROKER as EXIT_NO_EMBEDDED_BROKER, NOTHING_CHECKED as EXIT_NOTHING_CHECKED, OK as EXIT_OK,
    UNREACHABLE as EXIT_UNREACHABLE, USAGE as EXIT_USAGE,
};

const EXAMPLES: &str = "\
Examples:
  mqttkit-conformance                                   check the embedded reference broker
  mqttkit-conformance mqtt://127.0.0.1:1883             check a broker over TCP
  mqttkit-conformance mqtt://user:secret@localhost:1883 with credentials (never echoed)
  mqttkit-conformance mqtt://localhost:1883 --protocol 5 --only retain --only MQTT-3.3.1-5
  mqttkit-conformance mqtts://broker:8883 --cafile ca.pem --username u --password p
  mqttkit-conformance ws://localhost:8080/mqtt --skip keepalive --time-scale 2
  mqttkit-conformance mqtt://localhost:1883 --broker-profile conformance/brokers/mosquitto.toml \\
      --report json=report.json --report junit=junit.xml --report md=report.md --report html=report.html
  mqttkit-conformance --list --only qos                 list the scenarios tagged qos
  mqttkit-conformance --coverage                        which statements the scenarios cover
  mqttkit-conformance client [DRIVER]                   check a client library instead (client --help)

Exit status: 0 something was checked and no MUST scenario failed; 1 a MUST scenario failed;
2 bad arguments, scenario files or a selector that matches nothing; 3 broker unreachable or
not an MQTT broker; 4 no address given and no embedded broker; 5 nothing was checked (every
scenario skipped or inconclusive: unsupported protocol version, credentials missing);
6 the broker stopped answering during the run; 130 interrupted (reports hold the partial run).";

/// Protocol selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolChoice {
    /// MQTT 3.1.1.
    #[value(name = "3.1.1", alias = "3", alias = "4")]
    V3_1_1,
    /// MQTT 5.0.
    #[value(name = "5", alias = "5.0")]
    V5,
    /// Both.
    All,
}

/// Check an MQTT broker against the MQTT 3.1.1 and 5.0 standards, statement by statement.
#[derive(Debug, Parser)]
#[command(name = "mqttkit-conformance", version, after_help = EXAMPLES)]
pub struct Args {
    /// Broker URL: mqtt://[user:pass@]host:port, mqtts://…, ws://host:port/path, wss://…
    /// Without it, the embedded reference broker is started and checked.
    pub url: Option<String>,
    /// Protocol versions to check.
    #[arg(long, value_enum, default_value = "all")]
    pub protocol: ProtocolChoice,
    /// Run only scenarios matching an id (or id prefix ending in `.`), tag, statement id or
    /// section (e.g. `3.3`); repeatable. A selector that matches nothing is an error.
    #[arg(long, value_name = "ID|TAG|SECTION")]
    pub only: Vec<String>,
    /// Leave out scenarios matching an id, tag, statement id or section; repeatable.
    #[arg(long, value_name = "ID|TAG|SECTION")]
    pub skip: Vec<String>,
    /// List the selected scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// Print which scenarios cover each statement, and the uncovered observable ones.
    #[arg(long)]
    pub coverage: bool,
    /// Scenarios run in parallel.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Re-run each failed scenario alone N times before reporting it; a failure that does
    /// not repeat is reported as inconclusive (0: report failures as they come).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub confirm: u32,
    /// Multiply every timeout and wait (e.g. 3 for a slow remote broker).
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub time_scale: f64,
    /// Upper bound on the whole run, in seconds (before --time-scale).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub max_duration: u64,
    /// Write a report: json=FILE, junit=FILE, md=FILE or html=FILE; repeatable.
    #[arg(long, value_name = "FORMAT=FILE")]
    pub report: Vec<ReportTarget>,
    /// Add the scenarios in this directory (*.toml, recursively); repeatable.
    #[arg(long, value_name = "DIR")]
    pub scenarios: Vec<PathBuf>,
    /// Broker profile: refused topic, credentials, limits, unsupported features, known
    /// deviations. A file, or the name of a built-in one (mosquitto, aedes, amqtt, rumqttd).
    #[arg(long, value_name = "FILE|NAME")]
    pub broker_profile: Option<PathBuf>,
    /// CA certificates (PEM) for mqtts:// and wss://.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Client certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Do not verify the server certificate.
    #[arg(long)]
    pub insecure: bool,
    /// User name for every connection.
    #[arg(long)]
    pub username: Option<String>,
    /// Password for every connection.
    #[arg(long)]
    pub password: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Print every failure's expectation and packet trace (the reports always have them).
    #[arg(long, short)]
    pub verbose: bool,
}

impl Args {
    fn versions(&self) -> Vec<Version> {
        match self.protocol {
            ProtocolChoice::V3_1_1 => vec![Version::V3_1_1],
            ProtocolChoice::V5 => vec![Version::V5],
            ProtocolChoice::All => Version::ALL.to_vec(),
        }
    }
}

/// Load built-in and user scenarios, checked against the catalogue.
pub fn load_scenarios(
    catalogue: &Catalogue,
    extra_dirs: &[PathBuf],
) -> Result<Vec<Scenario>, Vec<scenario::LoadError>> {
    let mut scenarios = scenario::built_in()?;
    for dir in extra_dirs {
        scenarios.extend(scenario::from_dir(dir)?);
    }
    let errors = scenario::check(&scenarios, catalogue);
    if errors.is_empty() { Ok(scenarios) } else { Err(errors) }
}

/// Print an error and return the usage exit status.
fn usage(message: impl std::fmt::Display) -> i32 {
    eprintln!("error: {message}");
    EXIT_USAGE
}

/// Run the command line; returns the exit status.
pub async fn main_with(args: Args) -> i32 {
    interruptible(|cancel| run_command(args, cancel)).await
}

/// Run `command` with Ctrl-C handling: the first ends the run with a partial report (the
/// token is cancelled), the second aborts.
pub(crate) async fn interruptible<F: std::future::Future<Output = i32>>(
    command: impl FnOnce(tokio_util::sync::CancellationToken) -> F,
) -> i32 {
    let cancel = tokio_util::sync::CancellationToken::new();
    let interrupt = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing with a partial report (Ctrl-C again to abort)");
                cancel.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        })
    };
    let status = command(cancel).await;
    interrupt.abort();
    status
}

async fn run_command(args: Args, cancel: tokio_util::sync::CancellationToken) -> i32 {
    let catalogue = match Catalogue::embedded() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let all = match load_scenarios(&catalogue, &args.scenarios) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return EXIT_USAGE;
        }
    };
    let versions = args.versions();
    if args.coverage {
        print!("{}", reports::console::coverage(&reports::coverage(&catalogue, &all, &[], &versions)));
        return EXIT_OK;
    }
    let selected = match select(&all, &args.only, &args.skip, &versions, &catalogue) {
        Ok(selected) => selected,
        Err(SelectionError(message)) => return usage(message),
    };
    if args.list {
        for s in &selected {
            let vs: Vec<&str> = s.versions.iter().map(|v| v.label()).collect();
            println!("{:<44} {:<6} {:<11} [{}] {}", s.id, s.level, vs.join(","), s.tags.join(","), s.title);
        }
        println!("{} scenarios", selected.len());
        return EXIT_OK;
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        return usage("--time-scale must be a positive number");
    }
    let mut profile = match &args.broker_profile {
        Some(path) => match Profile::resolve(path) {
            Ok(p) => {
                if let Some(problem) = p.unknown_statements(&catalogue).first() {
                    return usage(format!("{}: {problem}", path.display()));
                }
                p
            }
            Err(e) => return usage(e),
        },
        None => Profile::default(),
    };
    let mut _embedded = None;
    let mut url_credentials = (None, None);
    let (address, target) = match &args.url {
        Some(url) => {
            let parsed = match parse_target(url) {
                Ok(parsed) => parsed,
                Err(e) => return usage(e),
            };
            url_credentials = (parsed.username.clone(), parsed.password.clone());
            match Address::parse(&parsed.url) {
                Ok(a) => {
                    let target = a.to_string();
                    (a, target)
                }
                Err(e) => return usage(e),
            }
        }
        None => match crate::embedded::start_embedded().await {
            Ok(broker) => {
                let address = Address {
                    scheme: crate::transport::Scheme::Tcp,
                    host: broker.address.ip().to_string(),
                    port: broker.address.port(),
                    path: "/mqtt".into(),
                };
                let target = format!("{address} ({})", broker.description);
                profile.refused_topic.get_or_insert_with(|| broker.refused_topic.clone());
                _embedded = Some(broker);
                (address, target)
            }
            Err(e) => {
                eprintln!("{e}");
                return EXIT_NO_EMBEDDED_BROKER;
            }
        },
    };
    let tls = TlsOptions {
        cafile: args.cafile.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
        insecure: args.insecure,
    };
    let connector = match Connector::new(address, &tls) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let config = RunConfig {
        connector,
        jobs: args.jobs.max(1),
        time_scale: args.time_scale,
        max_duration: Duration::from_secs_f64(args.max_duration as f64 * args.time_scale),
        username: args.username.clone().or(url_credentials.0).or_else(|| profile.username.clone()),
        password: args.password.clone().or(url_credentials.1).or_else(|| profile.password.clone()),
        profile: profile.clone(),
        confirm: args.confirm,
    };
    let profile_name = profile.name.clone().or_else(|| args.broker_profile.as_ref().map(|p| p.display().to_string()));
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    eprintln!(
        "{} — {}{}",
        runner_name(),
        target,
        profile_name.as_ref().map(|p| format!(" (profile: {p})")).unwrap_or_else(|| " (no broker profile)".into())
    );
    let probe = tokio::select! {
        probe = probe::probe(&config, &versions) => probe,
        () = cancel.cancelled() => ProbeReport {
            versions: Vec::new(),
            connacks: Vec::new(),
            problem: Some(probe::Problem { message: "interrupted while probing".into(), not_mqtt: false }),
        },
    };
    eprint!("{}", reports::console::versions(&probe.versions, &selected));
    let mut report = RunReport {
        runner: runner_name(),
        target,
        profile: profile_name,
        started_unix,
        duration_ms: 0,
        time_scale: args.time_scale,
        versions: probe.versions.clone(),
        problem: probe.problem.clone(),
        broker_stopped: None,
        interrupted: cancel.is_cancelled(),
        results: Vec::new(),
        coverage: Vec::new(),
    };
    if report.problem.is_none() {
        let output = run_selected(selected, &config, &probe, &args, cancel).await;
        report.results = output.results;
        report.broker_stopped = output.broker_stopped;
        report.interrupted = output.interrupted;
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if !report.results.is_empty() {
        report.coverage = reports::coverage(&catalogue, &all, &report.results, &versions);
    }
    print!("{}", reports::console::summary(&report, args.verbose));
    let _ = std::io::stdout().flush();
    let mut status = report.verdict().exit_code;
    for target in &args.report {
        if let Err(e) = std::fs::write(&target.path, reports::render(target.format, &report)) {
            eprintln!("error: cannot write {}: {e}", target.path.display());
            status = EXIT_USAGE;
        } else {
            eprintln!("wrote {}", target.path.display());
        }
    }
    status
}

pub(crate) fn runner_name() -> String {
    format!("mqttkit-conformance {}", env!("CARGO_PKG_VERSION"))
}

/// Run the selection on the versions the broker supports; the others' scenario runs are
/// recorded as skipped (unsupported version) or inconclusive (refused CONNECT) with the
/// probe's evidence, and never run.
async fn run_selected(
    selected: Vec<Scenario>,
    config: &RunConfig,
    probe: &ProbeReport,
    args: &Args,
    cancel: tokio_util::sync::CancellationToken,
) -> engine::RunOutput {
    let mut capabilities = BTreeMap::new();
    let mut runnable = Vec::new();
    let mut not_run = Vec::new();
    for support in probe.versions.iter().filter(|v| v.selected) {
        match support.support {
            Support::Supported => {
                let mut caps = Capabilities::from_profile(&config.profile);
                for (_, connack) in probe.connacks.iter().filter(|(v, _)| *v == support.version) {
                    caps.learn_from_connack(connack);
                }
                capabilities.insert(support.version, caps);
                runnable.push(support.version);
            }
            other => {
                let (kind, reason) = match other {
                    Support::Unsupported => (
                        OutcomeKind::Skip,
                        format!("the broker does not support MQTT {}: {}", support.version, support.evidence),
                    ),
                    _ => (
                        OutcomeKind::Inconclusive,
                        format!("the broker refused the MQTT {} CONNECT: {}", support.version, support.evidence),
                    ),
                };
                for scenario in selected.iter().filter(|s| s.versions.contains(&support.version)) {
                    not_run.push(engine::skipped(
                        scenario,
                        support.version,
                        crate::outcome::Outcome::new(kind, reason.clone()),
                    ));
                }
            }
        }
    }
    let runs: u64 = selected.iter().map(|s| s.versions.iter().filter(|v| runnable.contains(v)).count() as u64).sum();
    let bar = progress_bar(args.no_progress, runs);
    let hooks = Hooks {
        progress: Some(progress_printer(bar.clone(), args.verbose, args.confirm > 0)),
        cancel,
        probed_alive: true,
    };
    let mut output = engine::run(selected, &runnable, config.clone(), capabilities, hooks).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    output.results.extend(not_run);
    output.results.sort_by(|a, b| (a.id.as_str(), a.version).cmp(&(b.id.as_str(), b.version)));
    output
}

pub(crate) fn progress_bar(no_progress: bool, runs: u64) -> Option<ProgressBar> {
    if no_progress || !console::Term::stderr().is_term() {
        return None;
    }
    let bar = ProgressBar::new(runs);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// One line per result that is not a pass or skip, as it comes (a failure once it is
/// confirmed); the bar counts the rest.
pub(crate) fn progress_printer(bar: Option<ProgressBar>, verbose: bool, confirming: bool) -> engine::ProgressFn {
    Arc::new(move |result: &ScenarioResult| {
        let unconfirmed = confirming && result.outcome.kind == OutcomeKind::Fail && result.attempts.is_empty();
        let line = (!matches!(result.outcome.kind, OutcomeKind::Pass | OutcomeKind::Skip) && !unconfirmed)
            .then(|| reports::console::result_line(result, verbose));
        match &bar {
            Some(bar) => {
                if let Some(line) = line {
                    bar.println(line);
                }
                if result.attempts.is_empty() {
                    bar.inc(1);
                }
                bar.set_message(format!("{} [{}] {}", result.id, result.version, result.outcome.kind));
            }
            None => {
                if let Some(line) = line {
                    eprintln!("{line}");
                }
            }
        }
    })
}

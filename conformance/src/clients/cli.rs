//! `mqttkit-conformance client [DRIVER]`: the client mode's command line.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;

use super::driver::{Driver, DriverSession, Hello, embedded_driver, known_drivers};
use super::engine::{ClientConfig, DRIVER_START_TIMEOUT, run};
use super::scenario::{ClientScenario, load};
use crate::catalogue::Catalogue;
use crate::cli::{ProtocolChoice, SelectionError, progress_bar, progress_printer, runner_name, select};
use crate::engine::Hooks;
use crate::outcome::exit;
use crate::outcome::{Outcome, OutcomeKind, RunReport, Support, VersionSupport};
use crate::profile::Profile;
use crate::reports::{self, ReportTarget};
use crate::version::Version;

const EXAMPLES: &str = "\
Examples:
  mqttkit-conformance client                            check the embedded mqttkit-client (nothing to install)
  mqttkit-conformance client paho-golang                a driver of conformance/drivers/ (install it first:
                                                        conformance/drivers/driver.sh install paho-golang)
  mqttkit-conformance client paho-python --client-profile conformance/clients/paho-python.toml \\
      --report json=paho.json --report md=paho.md --report html=paho.html
  mqttkit-conformance client ./my-driver/driver.toml   your own driver (conformance/CLIENT-DRIVERS.md)
  mqttkit-conformance client --only keepalive --protocol 5 -v
  mqttkit-conformance client --coverage                 which client-side statements the scenarios cover

The runner listens on an ephemeral 127.0.0.1 port, starts the client under test through its
driver for each scenario run, plays the broker, and checks what the client sends and what the
library reports. Exit status as for brokers: 0 something was checked and no MUST scenario
failed; 1 a MUST scenario failed; 2 bad arguments; 3 the driver could not be started or does
not speak the driver protocol; 5 nothing was checked; 130 interrupted.";

/// Check an MQTT client library against the client-side statements of MQTT 3.1.1 and 5.0.
#[derive(Debug, Parser)]
#[command(name = "mqttkit-conformance client", version, after_help = EXAMPLES)]
pub struct ClientArgs {
    /// The client under test: a driver name (a folder of conformance/drivers/), a path to a
    /// driver.toml, or mqttkit-client (the default: the kit's own client, in-process).
    pub driver: Option<String>,
    /// Protocol versions to check.
    #[arg(long, value_enum, default_value = "all")]
    pub protocol: ProtocolChoice,
    /// Run only scenarios matching an id (or id prefix ending in `.`), tag, statement id or
    /// section; repeatable.
    #[arg(long, value_name = "ID|TAG|SECTION")]
    pub only: Vec<String>,
    /// Leave out scenarios matching an id, tag, statement id or section; repeatable.
    #[arg(long, value_name = "ID|TAG|SECTION")]
    pub skip: Vec<String>,
    /// List the selected scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// Print which client scenarios cover each client-side statement, and the uncovered
    /// ones a server can observe.
    #[arg(long)]
    pub coverage: bool,
    /// Scenario runs in parallel (each has its own listener and client).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Re-run each failed scenario alone N times before reporting it.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub confirm: u32,
    /// Multiply every timeout and wait.
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub time_scale: f64,
    /// Upper bound on the whole run, in seconds (before --time-scale).
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub max_duration: u64,
    /// Write a report: json=FILE, junit=FILE, md=FILE or html=FILE; repeatable.
    #[arg(long, value_name = "FORMAT=FILE")]
    pub report: Vec<ReportTarget>,
    /// Add the client scenarios in this directory (*.toml, recursively); repeatable.
    #[arg(long, value_name = "DIR")]
    pub scenarios: Vec<PathBuf>,
    /// Client profile: the library's known deviations (conformance/clients/<name>.toml).
    #[arg(long, value_name = "FILE")]
    pub client_profile: Option<PathBuf>,
    /// Where driver folders are (default: the crate's drivers/).
    #[arg(long, value_name = "DIR")]
    pub drivers_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Print every failure's expectation and trace.
    #[arg(long, short)]
    pub verbose: bool,
}

impl ClientArgs {
    fn versions(&self) -> Vec<Version> {
        match self.protocol {
            ProtocolChoice::V3_1_1 => vec![Version::V3_1_1],
            ProtocolChoice::V5 => vec![Version::V5],
            ProtocolChoice::All => Version::ALL.to_vec(),
        }
    }
}

/// The driver folders shipped with the crate.
pub fn default_drivers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers")
}

/// Where drivers are installed: `$MQTTKIT_DRIVERS_DIR`, or the workspace's
/// `target/client-drivers`.
pub fn drivers_cache_dir() -> PathBuf {
    std::env::var_os("MQTTKIT_DRIVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/client-drivers"))
}

/// The driver named on the command line (none: the embedded mqttkit-client).
pub fn resolve_driver(name: Option<&str>, drivers_dir: &Path) -> Result<Driver, String> {
    match name {
        None | Some("mqttkit-client" | "embedded") => Ok(embedded_driver()),
        Some(name) => Driver::load(name, drivers_dir, &drivers_cache_dir()),
    }
}

fn usage(message: impl std::fmt::Display) -> i32 {
    eprintln!("error: {message}");
    exit::USAGE
}

/// Run the client mode; returns the exit status.
pub async fn main_with(args: ClientArgs) -> i32 {
    crate::cli::interruptible(|cancel| run_command(args, cancel)).await
}

/// Start the driver once to learn the library and the versions it speaks.
pub async fn probe_driver(driver: &Driver, time_scale: f64) -> Result<Hello, String> {
    let trace = crate::client::Trace::default();
    let timeout = crate::engine::scaled(DRIVER_START_TIMEOUT, time_scale);
    let (session, hello) = DriverSession::start(driver, "mqtt://127.0.0.1:9", Version::V3_1_1, trace, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let _ = session.finish().await;
    Ok(hello)
}

async fn run_command(args: ClientArgs, cancel: tokio_util::sync::CancellationToken) -> i32 {
    let catalogue = match Catalogue::embedded() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let all = match load(&catalogue, &args.scenarios) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return exit::USAGE;
        }
    };
    let versions = args.versions();
    if args.coverage {
        let coverage = super::coverage::client_coverage(&catalogue, &all, &[], &versions);
        print!("{}", reports::console::coverage(&coverage));
        return exit::OK;
    }
    let metas: Vec<_> = all.iter().map(|s| s.meta.clone()).collect();
    let selected_ids = match select(&metas, &args.only, &args.skip, &versions, &catalogue) {
        Ok(selected) => selected.into_iter().map(|s| s.id).collect::<Vec<_>>(),
        Err(SelectionError(message)) => return usage(message),
    };
    let selected: Vec<ClientScenario> = all.iter().filter(|s| selected_ids.contains(&s.meta.id)).cloned().collect();
    if args.list {
        for s in &selected {
            let vs: Vec<&str> = s.meta.versions.iter().map(|v| v.label()).collect();
            println!(
                "{:<44} {:<6} {:<11} [{}] {}",
                s.meta.id,
                s.meta.level,
                vs.join(","),
                s.meta.tags.join(","),
                s.meta.title
            );
        }
        println!("{} client scenarios", selected.len());
        return exit::OK;
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        return usage("--time-scale must be a positive number");
    }
    let profile = match &args.client_profile {
        Some(path) => match Profile::load(path) {
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
    let drivers_dir = args.drivers_dir.clone().unwrap_or_else(default_drivers_dir);
    let driver = match resolve_driver(args.driver.as_deref(), &drivers_dir) {
        Ok(d) => d,
        Err(e) => {
            let known = known_drivers(&drivers_dir);
            eprintln!("error: {e}");
            if !known.is_empty() && args.driver.is_none() {
                eprintln!("drivers: {}", known.join(", "));
            }
            return exit::USAGE;
        }
    };
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let profile_name = profile.name.clone().or_else(|| args.client_profile.as_ref().map(|p| p.display().to_string()));
    let mut report = RunReport {
        runner: runner_name(),
        target: format!("client driver {}", driver.name()),
        profile: profile_name.clone(),
        started_unix,
        duration_ms: 0,
        time_scale: args.time_scale,
        versions: Vec::new(),
        problem: None,
        broker_stopped: None,
        interrupted: false,
        results: Vec::new(),
        coverage: Vec::new(),
    };
    let hello = match probe_driver(&driver, args.time_scale).await {
        Ok(hello) => hello,
        Err(e) => {
            report.problem = Some(crate::probe::Problem { message: e, not_mqtt: true });
            eprintln!("{} — {}", runner_name(), report.target);
            print!("{}", reports::console::summary(&report, args.verbose));
            write_reports(&args.report, &report);
            return exit::UNREACHABLE;
        }
    };
    report.target = format!("{} (client, driver {})", hello.describe(), driver.name());
    eprintln!(
        "{} — {}{}",
        runner_name(),
        report.target,
        profile_name.as_ref().map(|p| format!(" (profile: {p})")).unwrap_or_else(|| " (no client profile)".into())
    );
    report.versions = Version::ALL
        .iter()
        .map(|&version| {
            let speaks = hello.versions.contains(&version);
            VersionSupport {
                version,
                selected: versions.contains(&version),
                support: if speaks { Support::Supported } else { Support::Unsupported },
                evidence: if speaks {
                    format!("the driver drives MQTT {version}")
                } else {
                    let listed: Vec<&str> = hello.versions.iter().map(|v| v.label()).collect();
                    format!("the library does not speak MQTT {version} (its driver lists {})", listed.join(", "))
                },
            }
        })
        .collect();
    let metas: Vec<_> = selected.iter().map(|s| s.meta.clone()).collect();
    eprint!("{}", reports::console::versions(&report.versions, &metas));
    let runnable: Vec<Version> = versions.iter().copied().filter(|v| hello.versions.contains(v)).collect();
    let mut not_run = Vec::new();
    for version in versions.iter().filter(|v| !runnable.contains(v)) {
        for scenario in selected.iter().filter(|s| s.meta.versions.contains(version)) {
            not_run.push(crate::engine::skipped(
                &scenario.meta,
                *version,
                Outcome::new(OutcomeKind::Skip, format!("the library does not speak MQTT {version}")),
            ));
        }
    }
    let runs: u64 =
        selected.iter().map(|s| s.meta.versions.iter().filter(|v| runnable.contains(v)).count() as u64).sum();
    let bar = progress_bar(args.no_progress, runs);
    let hooks = Hooks {
        progress: Some(progress_printer(bar.clone(), args.verbose, args.confirm > 0)),
        cancel: cancel.clone(),
        probed_alive: true,
    };
    let config = ClientConfig {
        driver,
        jobs: args.jobs.max(1),
        time_scale: args.time_scale,
        max_duration: Duration::from_secs_f64(args.max_duration as f64 * args.time_scale),
        confirm: args.confirm,
        profile,
        capabilities: hello.capabilities.clone(),
    };
    let mut results = run(selected, &runnable, config, hooks).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    results.extend(not_run);
    results.sort_by(|a, b| (a.id.as_str(), a.version).cmp(&(b.id.as_str(), b.version)));
    report.results = results;
    report.interrupted = cancel.is_cancelled();
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report.coverage = super::coverage::client_coverage(&catalogue, &all, &report.results, &versions);
    print!("{}", reports::console::summary(&report, args.verbose));
    let _ = std::io::stdout().flush();
    let mut status = report.verdict().exit_code;
    if !write_reports(&args.report, &report) {
        status = exit::USAGE;
    }
    status
}

fn write_reports(targets: &[ReportTarget], report: &RunReport) -> bool {
    let mut ok = true;
    for target in targets {
        if let Err(e) = std::fs::write(&target.path, reports::render(target.format, report)) {
            eprintln!("error: cannot write {}: {e}", target.path.display());
            ok = false;
        } else {
            eprintln!("wrote {}", target.path.display());
        }
    }
    ok
}

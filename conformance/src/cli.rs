//! Command line: argument parsing and the top-level flow (load, select, probe, run, report).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::catalogue::Catalogue;
use crate::engine::{self, Capabilities, RunConfig};
use crate::outcome::RunReport;
use crate::profile::Profile;
use crate::reports::{self, ReportTarget};
use crate::scenario::{self, Scenario};
use crate::transport::{Address, Connector, TlsOptions};
use crate::version::Version;

/// No MUST scenario failed.
pub const EXIT_OK: i32 = 0;
/// At least one MUST scenario failed.
pub const EXIT_MUST_FAILED: i32 = 1;
/// Bad arguments, scenario files or profile.
pub const EXIT_USAGE: i32 = 2;
/// The broker could not be reached at all.
pub const EXIT_UNREACHABLE: i32 = 3;
/// No address was given and the embedded broker is not available.
pub const EXIT_NO_EMBEDDED_BROKER: i32 = 4;

const EXAMPLES: &str = "\
Examples:
  mqttkit-conformance                                   check the embedded reference broker
  mqttkit-conformance mqtt://127.0.0.1:1883             check a broker over TCP
  mqttkit-conformance mqtt://localhost:1883 --protocol 5 --only retain --only MQTT-3.3.1-5
  mqttkit-conformance mqtts://broker:8883 --cafile ca.pem --username u --password p
  mqttkit-conformance ws://localhost:8080/mqtt --skip keepalive --time-scale 2
  mqttkit-conformance mqtt://localhost:1883 --broker-profile conformance/brokers/mosquitto.toml \\
      --report json=report.json --report junit=junit.xml --report md=report.md --report html=report.html
  mqttkit-conformance --list --only qos                 list the scenarios tagged qos
  mqttkit-conformance --coverage                        which statements the scenarios cover

Exit status: 0 no MUST scenario failed; 1 a MUST scenario failed; 2 bad arguments or
scenario files; 3 broker unreachable; 4 no address given and no embedded broker.";

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
    /// Broker URL: mqtt://host:port, mqtts://host:port, ws://host:port/path, wss://…
    /// Without it, the embedded reference broker is started and checked.
    pub url: Option<String>,
    /// Protocol versions to check.
    #[arg(long, value_enum, default_value = "all")]
    pub protocol: ProtocolChoice,
    /// Run only scenarios matching an id (or id prefix ending in `.`), tag, statement id or
    /// section (e.g. `3.3`); repeatable.
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
    /// deviations.
    #[arg(long, value_name = "FILE")]
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

/// Scenarios selected by `--only`, `--skip` and `--protocol`.
pub fn select(scenarios: &[Scenario], args: &Args, catalogue: &Catalogue) -> Vec<Scenario> {
    let versions = args.versions();
    scenarios
        .iter()
        .filter(|s| s.versions.iter().any(|v| versions.contains(v)))
        .filter(|s| args.only.is_empty() || args.only.iter().any(|sel| s.is_selected_by(sel, catalogue)))
        .filter(|s| !args.skip.iter().any(|sel| s.is_selected_by(sel, catalogue)))
        .cloned()
        .collect()
}

/// Run the command line; returns the exit status.
pub async fn main_with(args: Args) -> i32 {
    let catalogue = match Catalogue::embedded() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
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
    let selected = select(&all, &args, &catalogue);
    if args.list {
        for s in &selected {
            let vs: Vec<&str> = s.versions.iter().map(|v| v.label()).collect();
            println!("{:<44} {:<6} {:<11} [{}] {}", s.id, s.level, vs.join(","), s.tags.join(","), s.title);
        }
        println!("{} scenarios", selected.len());
        return EXIT_OK;
    }
    if args.coverage {
        print!("{}", reports::console::coverage(&reports::coverage(&catalogue, &all, &[], &versions)));
        return EXIT_OK;
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        eprintln!("error: --time-scale must be a positive number");
        return EXIT_USAGE;
    }
    let mut profile = match &args.broker_profile {
        Some(path) => match Profile::load(path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        },
        None => Profile::default(),
    };
    let mut _embedded = None;
    let (address, target) = match &args.url {
        Some(url) => match Address::parse(url) {
            Ok(a) => {
                let target = a.to_string();
                (a, target)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        },
        None => match crate::embedded::start_embedded().await {
            Ok(broker) => {
                let address = Address::parse(&format!("mqtt://{}", broker.address)).unwrap_or_else(|_| Address {
                    scheme: crate::transport::Scheme::Tcp,
                    host: "127.0.0.1".into(),
                    port: broker.address.port(),
                    path: "/mqtt".into(),
                });
                let target = format!("{} (embedded, {})", address, broker.description);
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
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let config = RunConfig {
        connector,
        jobs: args.jobs.max(1),
        time_scale: args.time_scale,
        max_duration: Duration::from_secs_f64(args.max_duration as f64 * args.time_scale),
        username: args.username.clone().or_else(|| profile.username.clone()),
        password: args.password.clone().or_else(|| profile.password.clone()),
        profile: profile.clone(),
    };
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = engine::run_tag();
    let mut capabilities = BTreeMap::new();
    for version in &versions {
        match engine::probe(&config, *version, &tag).await {
            Ok(probe) => {
                eprintln!("probe {}", probe.note);
                let mut caps = Capabilities::from_profile(&profile);
                if let Some(connack) = &probe.connack {
                    caps.learn_from_connack(connack);
                }
                capabilities.insert(*version, caps);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_UNREACHABLE;
            }
        }
    }
    let runs: u64 = selected.iter().map(|s| s.versions.iter().filter(|v| versions.contains(v)).count() as u64).sum();
    let progress = if args.no_progress || !console::Term::stderr().is_term() {
        None
    } else {
        let bar = ProgressBar::new(runs);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(bar)
    };
    let results = engine::run(selected, &versions, config, capabilities, progress.clone()).await;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let report = RunReport {
        runner: format!("mqttkit-conformance {}", env!("CARGO_PKG_VERSION")),
        target,
        profile: profile.name.clone().or_else(|| args.broker_profile.as_ref().map(|p| p.display().to_string())),
        started_unix,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        time_scale: args.time_scale,
        coverage: reports::coverage(&catalogue, &all, &results, &versions),
        results,
    };
    print!("{}", reports::console::summary(&report));
    for target in &args.report {
        if let Err(e) = std::fs::write(&target.path, reports::render(target.format, &report)) {
            eprintln!("error: cannot write {}: {e}", target.path.display());
            return EXIT_USAGE;
        }
        eprintln!("wrote {}", target.path.display());
    }
    if report.must_failed() { EXIT_MUST_FAILED } else { EXIT_OK }
}

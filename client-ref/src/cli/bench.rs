//! `mqttkit bench`: load a broker with many connections (see [`mqttkit_client::bench`])
//! in the scenarios of EMQ's Open MQTT Benchmark Suite, and report throughput, latency,
//! connection rate, errors, and the broker's and the generator's CPU time and memory.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};
use mqttkit_client::bench::{self, Expected, Plan, Publishers, Report, Subscribers};
use mqttkit_client::{QoS, RequestProperties};

use super::connection::{ConnectArgs, parse_qos};
use super::{Exit, Interrupt};

/// Exit statuses of `mqttkit bench`.
const BENCH_EXIT_CODES: &str = "\
Exit status:
  0    the run completed without errors or lost connections
  1    the run completed, but connections or subscriptions failed, publications were
       rejected or connections were lost (see the report)
  2    bad command line
  3    not a single connection could be set up (broker unreachable or refusing)
  130  interrupted by Ctrl-C (the report covers what was measured)";

/// Load a broker and measure it.
#[derive(Debug, Args)]
#[command(
    after_help = BENCH_EXIT_CODES,
    after_long_help = concat!(
        "Examples (the broker on 127.0.0.1, its process id for CPU and memory):\n",
        "  mqttkit bench conn -n 10000 --connect-rate 2000 --hold 10 --broker-pid $(pidof mosquitto)\n",
        "  mqttkit bench p2p -n 100 --rate 100 -q 1 --duration 30\n",
        "  mqttkit bench fan-out -n 1000 -q 0 -s 16 --rate 10\n",
        "  mqttkit bench fan-in -n 100 -V 5 --shared g --subscribers 4 -q 1\n",
        "  mqttkit bench pub -n 10 -t 'sensors/%i' --rate 1000 -C 10000 & mqttkit bench sub -t 'sensors/#' -C 100000\n",
        "  mqttkit bench p2p -L ws://127.0.0.1:8080/mqtt --json\n\n",
    )
)]
pub struct BenchArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// N idle connections at a connection rate, held open: connect rate, and with
    /// --broker-pid the broker's memory per connection and after they close.
    Conn(ConnScenario),
    /// N publishers (topic pattern with %i for the publisher's index).
    Pub(TrafficScenario),
    /// N subscribers, counting and timing what arrives.
    Sub(SubScenario),
    /// Point-to-point: N publishers → N subscribers, publisher i to subscriber i on topic i.
    P2p(TrafficScenario),
    /// Fan-out: 1 publisher → N subscribers of one topic.
    #[command(name = "fan-out")]
    FanOut(TrafficScenario),
    /// Fan-in: N publishers → subscribers of a wildcard, or of a shared subscription.
    #[command(name = "fan-in")]
    FanIn(FanInScenario),
}

/// Options of every scenario.
#[derive(Debug, Args)]
struct CommonArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Connections (conn), publishers (pub, p2p pairs, fan-in) or subscribers (sub, fan-out).
    #[arg(short = 'n', long = "clients")]
    clients: Option<usize>,
    /// New connections per second (0: as fast as --connect-concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Most connection handshakes (transport, CONNACK, SUBACK) in progress at once.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// The broker's process id: its CPU time and memory (RSS) from /proc.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    no_progress: bool,
    /// Generator threads for the publishers and idle connections (subscribers get one of
    /// their own when there are publishers too).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// What publishers send.
#[derive(Debug, Args)]
struct PublishArgs {
    /// QoS.
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Payload bytes (the first 12 carry the send time, for latency).
    #[arg(short = 's', long = "size", default_value_t = 64)]
    size: usize,
    /// Messages per second per publisher (0: as fast as the window and the broker allow).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Messages per publisher (the duration still bounds the run).
    #[arg(short = 'C', long = "count")]
    count: Option<u64>,
    /// Seconds of publishing [default: 10; 300 as a bound with -C].
    #[arg(long)]
    duration: Option<f64>,
    /// Most QoS 1/2 messages in flight per publisher.
    #[arg(short = 'M', long = "inflight", default_value_t = 20)]
    inflight: u16,
    /// Publish retained messages.
    #[arg(short = 'r', long)]
    retain: bool,
    /// After publishing, wait for outstanding messages until none arrived for this many
    /// seconds (at most 10 times as long).
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
struct ConnScenario {
    #[command(flatten)]
    common: CommonArgs,
    /// Seconds to hold the connections open once all are connected.
    #[arg(long, default_value_t = 10.0)]
    hold: f64,
    /// Seconds to wait before reading the broker's memory (after connecting, and after
    /// closing).
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
struct SubScenario {
    #[command(flatten)]
    common: CommonArgs,
    /// Topic filter (%i: the subscriber's index).
    #[arg(short = 't', long, default_value = "bench/#")]
    topic: String,
    /// Requested QoS.
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Stop once this many messages arrived (all subscribers together).
    #[arg(short = 'C', long = "count")]
    count: Option<u64>,
    /// Seconds to run [default: 10; 300 as a bound with -C].
    #[arg(long)]
    duration: Option<f64>,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
struct TrafficScenario {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    publish: PublishArgs,
    /// Publishers' topic (%i: the publisher's index) [default: bench/%i; fan-out:
    /// bench/fan-out].
    #[arg(short = 't', long)]
    topic: Option<String>,
}

impl TrafficScenario {
    fn topic(&self) -> String {
        self.topic.clone().unwrap_or_else(|| "bench/%i".into())
    }
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
struct FanInScenario {
    #[command(flatten)]
    traffic: TrafficScenario,
    /// Subscribers' filter (a wildcard matching every publisher's topic).
    #[arg(long, default_value = "bench/#")]
    filter: String,
    /// Subscribers.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Subscribe through the shared subscription `$share/GROUP/FILTER` (each message goes
    /// to one subscriber of the group).
    #[arg(long, value_name = "GROUP")]
    shared: Option<String>,
}

fn seconds(value: f64, what: &str) -> Result<Duration, Exit> {
    Duration::try_from_secs_f64(value).map_err(|_| Exit::usage(format!("{what} must be a number of seconds ≥ 0")))
}

/// The bound of a run limited by count, if no duration is given.
const COUNT_TIME_LIMIT: f64 = 300.0;

fn duration(duration: Option<f64>, count: Option<u64>) -> Result<Duration, Exit> {
    let default = if count.is_some() { COUNT_TIME_LIMIT } else { 10.0 };
    seconds(duration.unwrap_or(default), "--duration")
}

impl CommonArgs {
    fn plan(&self, scenario: &str) -> Result<Plan, Exit> {
        let (options, _, props) = self.conn.options("bench")?;
        let unsupported = props.publish != Default::default()
            || props.subscribe != RequestProperties::default()
            || props.unsubscribe != RequestProperties::default()
            || props.disconnect_session_expiry.is_some();
        if unsupported {
            return Err(Exit::usage("bench takes -D connect and -D will properties only"));
        }
        if self.threads == 0 {
            return Err(Exit::usage("--threads must be at least 1"));
        }
        let mut plan = Plan::new(scenario, options);
        plan.connect_rate = self.connect_rate;
        plan.connect_concurrency = self.connect_concurrency;
        plan.broker_pid = self.broker_pid;
        Ok(plan)
    }

    fn clients(&self, default: usize) -> usize {
        self.clients.unwrap_or(default)
    }
}

impl PublishArgs {
    fn publishers(&self, count: usize, topic: String) -> Publishers {
        Publishers {
            count,
            topic,
            qos: self.qos,
            retain: self.retain,
            rate: self.rate,
            messages: self.count,
            payload_size: self.size,
            inflight: self.inflight,
        }
    }

    fn apply(&self, plan: &mut Plan) -> Result<(), Exit> {
        plan.duration = duration(self.duration, self.count)?;
        plan.drain = seconds(self.drain, "--drain")?;
        Ok(())
    }
}

/// The plan for the command line, and the options that are not part of it.
fn plan(args: &BenchArgs) -> Result<(Plan, &CommonArgs), Exit> {
    let (plan, common) = match &args.scenario {
        Scenario::Conn(s) => {
            let mut plan = s.common.plan("conn")?;
            plan.idle = s.common.clients(100);
            plan.duration = seconds(s.hold, "--hold")?;
            plan.settle = seconds(s.settle, "--settle")?;
            (plan, &s.common)
        }
        Scenario::Pub(s) => {
            let mut plan = s.common.plan("pub")?;
            plan.publishers = Some(s.publish.publishers(s.common.clients(1), s.topic()));
            s.publish.apply(&mut plan)?;
            (plan, &s.common)
        }
        Scenario::Sub(s) => {
            let mut plan = s.common.plan("sub")?;
            plan.subscribers = Some(Subscribers::new(s.common.clients(1), s.topic.clone(), s.qos));
            plan.duration = duration(s.duration, s.count)?;
            plan.expected = s.count.map_or(Expected::Unknown, Expected::Total);
            (plan, &s.common)
        }
        Scenario::P2p(s) => {
            let mut plan = s.common.plan("p2p")?;
            let n = s.common.clients(1);
            let topic = s.topic();
            if n > 1 && !topic.contains("%i") {
                return Err(Exit::usage("p2p needs %i in the topic: one topic per pair"));
            }
            plan.subscribers = Some(Subscribers::new(n, topic.clone(), s.publish.qos));
            plan.publishers = Some(s.publish.publishers(n, topic));
            plan.expected = Expected::PerPublication(1);
            s.publish.apply(&mut plan)?;
            (plan, &s.common)
        }
        Scenario::FanOut(s) => {
            let mut plan = s.common.plan("fan-out")?;
            let n = s.common.clients(100);
            let topic = s.topic.clone().unwrap_or_else(|| "bench/fan-out".into());
            if topic.contains("%i") {
                return Err(Exit::usage("fan-out publishes to one topic: no %i"));
            }
            plan.subscribers = Some(Subscribers::new(n, topic.clone(), s.publish.qos));
            plan.publishers = Some(s.publish.publishers(1, topic));
            plan.expected = Expected::PerPublication(n as u64);
            s.publish.apply(&mut plan)?;
            (plan, &s.common)
        }
        Scenario::FanIn(fan_in) => {
            let s = &fan_in.traffic;
            let mut plan = s.common.plan("fan-in")?;
            let filter = match &fan_in.shared {
                Some(group) => format!("$share/{group}/{}", fan_in.filter),
                None => fan_in.filter.clone(),
            };
            plan.subscribers = Some(Subscribers::new(fan_in.subscribers, filter, s.publish.qos));
            plan.publishers = Some(s.publish.publishers(s.common.clients(100), s.topic()));
            // A shared subscription delivers each message once; a plain one to everyone.
            let per = if fan_in.shared.is_some() { 1 } else { fan_in.subscribers as u64 };
            plan.expected = Expected::PerPublication(per);
            s.publish.apply(&mut plan)?;
            (plan, &s.common)
        }
    };
    Ok((plan, common))
}

impl BenchArgs {
    /// `--quiet`: no error message.
    pub fn quiet(&self) -> bool {
        self.common().conn.quiet
    }

    fn common(&self) -> &CommonArgs {
        match &self.scenario {
            Scenario::Conn(s) => &s.common,
            Scenario::Sub(s) => &s.common,
            Scenario::Pub(s) | Scenario::P2p(s) | Scenario::FanOut(s) => &s.common,
            Scenario::FanIn(s) => &s.traffic.common,
        }
    }
}

/// Run `mqttkit bench` (on its own runtime: one thread, or `--threads`).
pub fn run(args: BenchArgs) -> Result<(), Exit> {
    let (plan, common) = plan(&args)?;
    let runtime = if common.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(common.threads).enable_all().build()
    }
    .map_err(|e| Exit::failed(format!("cannot start the runtime: {e}")))?;
    let show_progress = !(common.no_progress || common.conn.quiet);
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |line: &str| {
        if !show_progress {
            return;
        }
        if terminal {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    };
    let cancel = async {
        Interrupt::new().recv().await;
    };
    let report = runtime.block_on(bench::run(plan, &mut progress, cancel)).map_err(Exit::usage)?;
    runtime.shutdown_background();
    if show_progress && terminal {
        eprintln!();
    }
    if common.json {
        println!("{:#}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    status(&report)
}

fn status(report: &Report) -> Result<(), Exit> {
    if report.cancelled {
        return Err(Exit::code(130, "interrupted"));
    }
    if report.attempted > 0 && report.connected == 0 {
        let reason = report.errors.keys().next().map_or("", String::as_str);
        return Err(Exit::code(3, format!("no connection could be set up: {reason}")));
    }
    let errors: u64 = report.errors.values().sum();
    let lost: u64 = report.disconnects.values().sum();
    if errors + lost > 0 {
        return Err(Exit::failed(format!("{errors} errors, {lost} connections lost (see the report)")));
    }
    Ok(())
}

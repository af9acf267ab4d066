//! The engine: runs scenarios against a broker, in parallel, each isolated by its own
//! prefix, every step under a timeout (a timeout is never a pass), the whole run bounded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use mqttkit_codec::PacketType;
use tokio::sync::Semaphore;

use crate::client::{Connection, Event, Trace};
use crate::matcher::{PacketPattern, ValuePattern, match_value};
use crate::observed::{Observed, Value};
use crate::outcome::{Direction, Outcome, OutcomeKind, ScenarioResult};
use crate::outgoing::{ConnectSpec, IntSpec, OutgoingPacket, SentFacts};
use crate::profile::Profile;
use crate::scenario::{Action, Expectation, Scenario, Step};
use crate::template::Variables;
use crate::transport::Connector;
use crate::version::Version;

/// Settings for a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// How to reach the broker.
    pub connector: Connector,
    /// Parallel scenarios.
    pub jobs: usize,
    /// Multiplier for every timeout and wait.
    pub time_scale: f64,
    /// Bound on the whole run.
    pub max_duration: Duration,
    /// User name for every CONNECT that names none.
    pub username: Option<String>,
    /// Password for every CONNECT that names none.
    pub password: Option<String>,
    /// Broker profile.
    pub profile: Profile,
}

/// Capabilities a broker lacks, with how we know.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    lacking: BTreeMap<String, String>,
}

impl Capabilities {
    /// From the profile.
    pub fn from_profile(profile: &Profile) -> Self {
        let mut caps = Self::default();
        for capability in &profile.unsupported {
            caps.lacking.insert(capability.clone(), "the broker profile lists it as unsupported".into());
        }
        if profile.refused_topic.is_none() {
            caps.lacking.insert("refused-topic".into(), "the broker profile names no `refused_topic`".into());
        }
        caps
    }

    /// Add what a 5.0 CONNACK's properties say is missing.
    pub fn learn_from_connack(&mut self, connack: &Observed) {
        let property = |name: &str| match connack.properties.get(name) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        };
        let mut lack = |capability: &str, why: String| {
            self.lacking.entry(capability.to_owned()).or_insert(why);
        };
        if property("retain_available") == Some(0) {
            lack("retain", "CONNACK Retain Available = 0".into());
        }
        match property("maximum_qos") {
            Some(0) => {
                lack("qos1", "CONNACK Maximum QoS = 0".into());
                lack("qos2", "CONNACK Maximum QoS = 0".into());
            }
            Some(1) => lack("qos2", "CONNACK Maximum QoS = 1".into()),
            _ => {}
        }
        if property("wildcard_subscription_available") == Some(0) {
            lack("wildcard-subscriptions", "CONNACK Wildcard Subscription Available = 0".into());
        }
        if property("subscription_identifier_available") == Some(0) {
            lack("subscription-identifiers", "CONNACK Subscription Identifier Available = 0".into());
        }
        if property("shared_subscription_available") == Some(0) {
            lack("shared-subscriptions", "CONNACK Shared Subscription Available = 0".into());
        }
    }

    /// The first required capability that is missing, with the reason.
    pub fn missing<'a>(&'a self, required: &'a [String]) -> Option<(&'a str, &'a str)> {
        required.iter().find_map(|c| self.lacking.get(c).map(|why| (c.as_str(), why.as_str())))
    }
}

/// What the probe connection found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The CONNACK, if one came.
    pub connack: Option<Observed>,
    /// Human-readable note.
    pub note: String,
}

/// Probe the broker with one CONNECT. `Err` means the broker could not be reached at all.
pub async fn probe(config: &RunConfig, version: Version, run_tag: &str) -> Result<Probe, String> {
    let trace = Trace::default();
    let mut connection = Connection::open(&config.connector, "probe", version, trace)
        .await
        .map_err(|e| format!("cannot reach {}: {e}", config.connector.address()))?;
    let mut vars = Variables::default();
    vars.set("prefix", format!("mq{run_tag}prb"));
    let spec = ConnectSpec {
        username: config.username.clone(),
        password: config.password.clone().map(crate::outgoing::BytesSpec::Text),
        ..ConnectSpec::default()
    };
    let (bytes, _) = OutgoingPacket::Connect(spec).encode(version, &vars, &format!("mq{run_tag}probe"))?;
    connection.send(&bytes).await?;
    let deadline = tokio::time::Instant::now() + scaled(5.0, config.time_scale);
    let probe = match connection.next_event(deadline).await {
        Some(Event::Packet(packet)) if packet.kind == "CONNACK" => {
            let note = format!("{version}: {packet}");
            Probe { connack: Some(packet), note }
        }
        Some(Event::Packet(packet)) => {
            Probe { connack: None, note: format!("{version}: answered CONNECT with {packet}") }
        }
        Some(Event::Closed(how)) => {
            Probe { connack: None, note: format!("{version}: CONNECT answered by close ({how})") }
        }
        Some(Event::TransportFailed(how)) => {
            return Err(format!("cannot talk to {}: {how}", config.connector.address()));
        }
        None => Probe { connack: None, note: format!("{version}: no CONNACK within 5 s") },
    };
    if let Ok((bytes, _)) =
        (OutgoingPacket::Disconnect { reason_code: 0, properties: Vec::new() }).encode(version, &vars, "")
    {
        let _ = connection.send(&bytes).await;
    }
    connection.close().await;
    Ok(probe)
}

fn scaled(seconds: f64, scale: f64) -> Duration {
    Duration::try_from_secs_f64((seconds * scale).max(0.0)).unwrap_or(Duration::from_secs(3600))
}

/// A short tag unique to this run (base 36 of the clock).
pub fn run_tag() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    base36(u64::try_from(nanos % 1_679_616).unwrap_or(0) ^ u64::from(std::process::id() % 1_679_616), 4)
}

fn base36(mut value: u64, width: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS.get((value % 36) as usize).copied().unwrap_or(b'0');
        value /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Run scenarios under the given versions; results come back sorted by id and version.
pub async fn run(
    scenarios: Vec<Scenario>,
    versions: &[Version],
    config: RunConfig,
    capabilities: BTreeMap<Version, Capabilities>,
    progress: Option<ProgressBar>,
) -> Vec<ScenarioResult> {
    let tag = run_tag();
    let started = Instant::now();
    let semaphore = Arc::new(Semaphore::new(config.jobs.max(1)));
    let config = Arc::new(config);
    let capabilities = Arc::new(capabilities);
    let mut tasks = tokio::task::JoinSet::new();
    let mut index = 0u64;
    for scenario in scenarios {
        let scenario = Arc::new(scenario);
        for version in scenario.versions.iter().copied().filter(|v| versions.contains(v)) {
            index += 1;
            let prefix = format!("mq{tag}{}{}", base36(index, 3), if version.is_v5() { 'b' } else { 'a' });
            let (scenario, config, capabilities, semaphore, progress) = (
                Arc::clone(&scenario),
                Arc::clone(&config),
                Arc::clone(&capabilities),
                Arc::clone(&semaphore),
                progress.clone(),
            );
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await.ok();
                let caps = capabilities.get(&version).cloned().unwrap_or_default();
                let result = if started.elapsed() >= config.max_duration {
                    not_run(&scenario, version, "the run's time budget (--max-duration) was spent before it started")
                } else {
                    let remaining = config.max_duration.saturating_sub(started.elapsed());
                    run_scenario(&scenario, version, &prefix, &config, caps, remaining).await
                };
                if let Some(bar) = &progress {
                    bar.set_message(format!("{} [{}] {}", scenario.id, version, result.outcome.kind));
                    bar.inc(1);
                }
                result
            });
        }
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(e) => results.push(ScenarioResult {
                id: "runner".into(),
                title: "runner task".into(),
                version: Version::V5,
                level: crate::scenario::Level::Must,
                tags: Vec::new(),
                statements: Vec::new(),
                outcome: Outcome::new(OutcomeKind::Error, format!("runner task failed: {e}")),
                duration_ms: 0,
                trace: Vec::new(),
                source: String::new(),
            }),
        }
    }
    results.sort_by(|a, b| (a.id.as_str(), a.version).cmp(&(b.id.as_str(), b.version)));
    results
}

fn not_run(scenario: &Scenario, version: Version, why: &str) -> ScenarioResult {
    result_of(scenario, version, Outcome::new(OutcomeKind::Error, why), Duration::ZERO, Vec::new())
}

fn result_of(
    scenario: &Scenario,
    version: Version,
    outcome: Outcome,
    duration: Duration,
    trace: Vec<crate::outcome::TraceEntry>,
) -> ScenarioResult {
    ScenarioResult {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        version,
        level: scenario.level,
        tags: scenario.tags.clone(),
        statements: scenario.statements_for(version).to_vec(),
        outcome,
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        trace,
        source: scenario.source.clone(),
    }
}

/// Upper bound on a scenario's duration, before scaling.
fn budget_seconds(scenario: &Scenario) -> f64 {
    let steps: f64 = scenario
        .steps
        .iter()
        .map(|step| match &step.action {
            Action::Connect { timeout, .. } | Action::Expect { timeout, .. } | Action::ExpectClosed { timeout, .. } => {
                *timeout
            }
            Action::ExpectNothing { window, .. } => *window,
            Action::Wait { seconds } => *seconds,
            _ => 0.5,
        })
        .sum();
    steps + 5.0
}

/// Run one scenario under one version.
pub async fn run_scenario(
    scenario: &Scenario,
    version: Version,
    prefix: &str,
    config: &RunConfig,
    capabilities: Capabilities,
    remaining: Duration,
) -> ScenarioResult {
    let started = Instant::now();
    if let Some((capability, why)) = capabilities.missing(&scenario.requires) {
        let outcome = Outcome::new(OutcomeKind::Skip, format!("needs `{capability}`: {why}"));
        return result_of(scenario, version, outcome, started.elapsed(), Vec::new());
    }
    let mut vars = Variables::default();
    vars.set("prefix", prefix);
    if let Some(topic) = &config.profile.refused_topic {
        vars.set("refused_topic", topic.clone());
    }
    let trace = Trace::default();
    let mut run = ScenarioRun {
        scenario,
        version,
        config,
        capabilities,
        vars,
        trace: trace.clone(),
        clients: HashMap::new(),
        facts: RunFacts::default(),
    };
    let budget = scaled(budget_seconds(scenario), config.time_scale).min(remaining);
    let mut outcome = match tokio::time::timeout(budget, run.execute()).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::new(
            OutcomeKind::Error,
            format!("the scenario did not finish within its budget of {:.1} s", budget.as_secs_f64()),
        ),
    };
    let facts = std::mem::take(&mut run.facts);
    let clients = std::mem::take(&mut run.clients);
    for (_, state) in clients {
        state.connection.abort();
    }
    let duration = started.elapsed();
    cleanup(config, version, prefix, &facts).await;
    if outcome.kind == OutcomeKind::Fail {
        if let Some(deviation) = config.profile.deviation_for(&scenario.id, scenario.statements_for(version), version) {
            let failure = outcome.reason.take().unwrap_or_default();
            outcome.kind = OutcomeKind::KnownDeviation;
            outcome.reason = Some(format!("{} (observed: {failure})", deviation.reason));
        }
    }
    result_of(scenario, version, outcome, duration, trace.entries())
}

/// What the run created that it must clean up.
#[derive(Debug, Default)]
struct RunFacts {
    retained_topics: BTreeSet<String>,
    persistent_client_ids: BTreeSet<String>,
}

impl RunFacts {
    fn absorb(&mut self, facts: SentFacts) {
        self.retained_topics.extend(facts.retained_topics);
        self.persistent_client_ids.extend(facts.persistent_client_id);
    }
}

/// Remove what the scenario left behind: persistent sessions of its own client ids, and
/// retained messages on topics it published retained to. Nothing else is ever touched.
async fn cleanup(config: &RunConfig, version: Version, prefix: &str, facts: &RunFacts) {
    let trace = Trace::default();
    let mut vars = Variables::default();
    vars.set("prefix", prefix);
    let deadline = || tokio::time::Instant::now() + scaled(2.0, config.time_scale);
    let credentials = ConnectSpec {
        username: config.username.clone(),
        password: config.password.clone().map(crate::outgoing::BytesSpec::Text),
        ..ConnectSpec::default()
    };
    let disconnect = OutgoingPacket::Disconnect { reason_code: 0, properties: Vec::new() };
    for client_id in &facts.persistent_client_ids {
        let Ok(mut connection) = Connection::open(&config.connector, "cleanup", version, trace.clone()).await else {
            return;
        };
        let connect =
            OutgoingPacket::Connect(ConnectSpec { client_id: Some(client_id.clone()), ..credentials.clone() });
        if let Ok((bytes, _)) = connect.encode(version, &vars, client_id) {
            let _ = connection.send(&bytes).await;
            let _ = connection.next_event(deadline()).await;
        }
        if let Ok((bytes, _)) = disconnect.encode(version, &vars, "") {
            let _ = connection.send(&bytes).await;
        }
        connection.close().await;
    }
    if facts.retained_topics.is_empty() {
        return;
    }
    let Ok(mut connection) = Connection::open(&config.connector, "cleanup", version, trace.clone()).await else {
        return;
    };
    let client_id = format!("{prefix}cln");
    let Ok((bytes, _)) = OutgoingPacket::Connect(credentials).encode(version, &vars, &client_id) else { return };
    let _ = connection.send(&bytes).await;
    let _ = connection.next_event(deadline()).await;
    for (i, topic) in facts.retained_topics.iter().enumerate() {
        let clear = OutgoingPacket::Publish {
            topic: topic.replace('{', "{{").replace('}', "}}"),
            payload: crate::outgoing::BytesSpec::Text(String::new()),
            qos: 1,
            retain: true,
            dup: false,
            packet_id: Some(IntSpec::Literal(u64::try_from(i).unwrap_or(0).saturating_add(1))),
            properties: Vec::new(),
        };
        if let Ok((bytes, _)) = clear.encode(version, &vars, "") {
            let _ = connection.send(&bytes).await;
            let _ = connection.next_event(deadline()).await;
        }
    }
    if let Ok((bytes, _)) = disconnect.encode(version, &vars, "") {
        let _ = connection.send(&bytes).await;
    }
    connection.close().await;
}

struct ClientState {
    connection: Connection,
    /// QoS 2 packet ids we sent PUBREC for and whose PUBREL we answer automatically.
    awaiting_pubrel: BTreeSet<u64>,
}

struct ScenarioRun<'a> {
    scenario: &'a Scenario,
    version: Version,
    config: &'a RunConfig,
    capabilities: Capabilities,
    vars: Variables,
    trace: Trace,
    clients: HashMap<String, ClientState>,
    facts: RunFacts,
}

/// Why a step did not succeed.
struct StepFailure {
    kind: OutcomeKind,
    reason: String,
    expected: Option<String>,
    actual: Option<String>,
}

impl StepFailure {
    fn fail(reason: impl Into<String>, expected: Option<String>, actual: Option<String>) -> Self {
        Self { kind: OutcomeKind::Fail, reason: reason.into(), expected, actual }
    }

    fn error(reason: impl Into<String>) -> Self {
        Self { kind: OutcomeKind::Error, reason: reason.into(), expected: None, actual: None }
    }
}

/// What `next_packet` found.
enum Next {
    Packet(Observed),
    Closed(String),
    Timeout,
}

impl ScenarioRun<'_> {
    async fn execute(&mut self) -> Outcome {
        for (index, step) in self.scenario.steps.iter().enumerate() {
            if step.versions.as_ref().is_some_and(|versions| !versions.contains(&self.version)) {
                continue;
            }
            if let Err(failure) = self.step(step).await {
                let mut reason = failure.reason;
                if let Some(note) = &step.note {
                    reason = format!("{reason} — {note}");
                }
                return Outcome {
                    kind: failure.kind,
                    reason: Some(reason),
                    expected: failure.expected,
                    actual: failure.actual,
                    step: Some(index + 1),
                    line: Some(step.line),
                };
            }
        }
        Outcome::pass()
    }

    fn seconds(&self, seconds: f64) -> Duration {
        scaled(seconds, self.config.time_scale)
    }

    fn client(&mut self, name: &str) -> Result<&mut ClientState, StepFailure> {
        self.clients.get_mut(name).ok_or_else(|| {
            StepFailure::error(format!("client `{name}` is not connected (add a `connect` or `open` step first)"))
        })
    }

    async fn open(&mut self, name: &str) -> Result<(), StepFailure> {
        if self.clients.contains_key(name) {
            return Ok(());
        }
        let connection = Connection::open(&self.config.connector, name, self.version, self.trace.clone())
            .await
            .map_err(|e| StepFailure::error(format!("could not open a connection for `{name}`: {e}")))?;
        self.clients.insert(name.to_owned(), ClientState { connection, awaiting_pubrel: BTreeSet::new() });
        Ok(())
    }

    async fn send(&mut self, name: &str, packet: &OutgoingPacket) -> Result<(), StepFailure> {
        let default_client_id = format!("{}{name}", self.vars.get("prefix").unwrap_or_default());
        let (bytes, facts) = packet
            .encode(self.version, &self.vars, &default_client_id)
            .map_err(|e| StepFailure::error(format!("cannot build the packet: {e}")))?;
        self.facts.absorb(facts);
        let state = self.client(name)?;
        // A failed send is recorded in the trace; the next expectation reports the close.
        let _ = state.connection.send(&bytes).await;
        Ok(())
    }

    /// The next packet, answering PUBRELs of QoS 2 flows this runner acknowledged.
    async fn next_packet(&mut self, name: &str, deadline: tokio::time::Instant) -> Result<Next, StepFailure> {
        loop {
            let state = self.client(name)?;
            match state.connection.next_event(deadline).await {
                None => return Ok(Next::Timeout),
                Some(Event::Closed(how)) => return Ok(Next::Closed(how)),
                Some(Event::TransportFailed(how)) => {
                    return Err(StepFailure::error(format!("`{name}`: the transport failed: {how}")));
                }
                Some(Event::Packet(packet)) => {
                    let pending_pubrel = match (packet.kind.as_str(), packet.fields.get("packet_id")) {
                        ("PUBREL", Some(Value::Int(id))) if state.awaiting_pubrel.remove(id) => Some(*id),
                        _ => None,
                    };
                    match pending_pubrel {
                        Some(id) => self.send_response(name, PacketType::PubComp, id).await?,
                        None => return Ok(Next::Packet(packet)),
                    }
                }
            }
        }
    }

    async fn send_response(&mut self, name: &str, kind: PacketType, packet_id: u64) -> Result<(), StepFailure> {
        let packet = OutgoingPacket::PublishResponse {
            kind,
            packet_id: IntSpec::Literal(packet_id),
            reason_code: 0,
            properties: Vec::new(),
        };
        self.send(name, &packet).await
    }

    async fn step(&mut self, step: &Step) -> Result<(), StepFailure> {
        match &step.action {
            Action::Open { client } => self.open(client).await,
            Action::Connect { client, connect, connack, timeout } => {
                self.open(client).await?;
                let mut connect = connect.clone();
                if connect.username.is_none() && connect.password.is_none() {
                    connect.username.clone_from(&self.config.username);
                    connect.password = self.config.password.clone().map(crate::outgoing::BytesSpec::Text);
                }
                self.send(client, &OutgoingPacket::Connect(connect)).await?;
                let default_connack;
                let expectation = match connack {
                    Some(expectation) => expectation,
                    None => {
                        default_connack = Expectation {
                            packets: vec![vec![
                                PacketPattern::of_kind("CONNACK").with_field("reason_code", ValuePattern::Int(0)),
                            ]],
                            in_any_order: false,
                        };
                        &default_connack
                    }
                };
                let received = self.expect(client, expectation, *timeout, false).await;
                let received = match received {
                    Err(mut failure) if connack.is_none() => {
                        if failure.actual.as_deref().is_some_and(|a| a.starts_with("CONNACK")) {
                            failure.kind = OutcomeKind::Inconclusive;
                            failure.reason = format!("the broker refused a plain CONNECT: {}", failure.reason);
                        }
                        return Err(failure);
                    }
                    other => other?,
                };
                if let Some(connack) = received.first() {
                    self.capabilities.learn_from_connack(connack);
                    if let Some((capability, why)) = self.capabilities.missing(&self.scenario.requires) {
                        return Err(StepFailure {
                            kind: OutcomeKind::Skip,
                            reason: format!("needs `{capability}`: {why}"),
                            expected: None,
                            actual: None,
                        });
                    }
                }
                Ok(())
            }
            Action::Send { client, packet } => self.send(client, packet).await,
            Action::Expect { client, expectation, timeout, ack } => {
                self.expect(client, expectation, *timeout, *ack).await.map(drop)
            }
            Action::ExpectNothing { client, window } => {
                let deadline = tokio::time::Instant::now() + self.seconds(*window);
                match self.next_packet(client, deadline).await? {
                    Next::Timeout => Ok(()),
                    Next::Packet(packet) => Err(StepFailure::fail(
                        format!("`{client}` received a packet where none was expected"),
                        Some(format!("nothing for {:.1} s", self.seconds(*window).as_secs_f64())),
                        Some(packet.to_string()),
                    )),
                    Next::Closed(how) => Err(StepFailure::fail(
                        format!("`{client}`'s connection closed where nothing was expected"),
                        Some(format!("nothing for {:.1} s, connection open", self.seconds(*window).as_secs_f64())),
                        Some(how),
                    )),
                }
            }
            Action::ExpectClosed { client, disconnect_reason, allow, timeout } => {
                self.expect_closed(client, disconnect_reason.as_ref(), allow, *timeout).await
            }
            Action::Wait { seconds } => {
                tokio::time::sleep(self.seconds(*seconds)).await;
                Ok(())
            }
            Action::Disconnect { client, packet } => {
                self.send(client, packet).await?;
                if let Some(state) = self.clients.remove(client) {
                    state.connection.close().await;
                }
                Ok(())
            }
            Action::Drop { client } => {
                let state = self.clients.remove(client).ok_or_else(|| {
                    StepFailure::error(format!("client `{client}` is not connected, so it cannot be dropped"))
                })?;
                state.connection.abort();
                Ok(())
            }
        }
    }

    async fn expect(
        &mut self,
        client: &str,
        expectation: &Expectation,
        timeout: f64,
        ack: bool,
    ) -> Result<Vec<Observed>, StepFailure> {
        let deadline = tokio::time::Instant::now() + self.seconds(timeout);
        let describe = |run: &Self, entry: &[PacketPattern]| {
            entry.iter().map(|p| p.describe(&run.vars)).collect::<Vec<_>>().join("  OR  ")
        };
        let mut remaining: Vec<&Vec<PacketPattern>> = expectation.packets.iter().collect();
        let mut received = Vec::new();
        while !remaining.is_empty() {
            let expected_text = if expectation.in_any_order {
                remaining.iter().map(|e| describe(self, e)).collect::<Vec<_>>().join("; ")
            } else {
                remaining.first().map(|e| describe(self, e)).unwrap_or_default()
            };
            let packet = match self.next_packet(client, deadline).await? {
                Next::Packet(packet) => packet,
                Next::Timeout => {
                    return Err(StepFailure::fail(
                        format!("`{client}`: nothing arrived within {:.1} s", self.seconds(timeout).as_secs_f64()),
                        Some(expected_text),
                        Some("nothing (timeout)".into()),
                    ));
                }
                Next::Closed(how) => {
                    let closed = Observed::closed(&how);
                    let accepts_close = remaining.iter().enumerate().any(|(i, alternatives)| {
                        (expectation.in_any_order || i == 0)
                            && alternatives.iter().any(|p| p.matches(&closed, &mut self.vars.clone()).is_ok())
                    });
                    if accepts_close {
                        received.push(closed);
                        return Ok(received);
                    }
                    return Err(StepFailure::fail(
                        format!("`{client}`: the connection closed before the expected packet arrived"),
                        Some(expected_text),
                        Some(how),
                    ));
                }
            };
            let candidates: Vec<usize> =
                if expectation.in_any_order { (0..remaining.len()).collect() } else { vec![0] };
            let mut matched = None;
            let mut mismatches = Vec::new();
            'search: for index in candidates {
                let Some(alternatives) = remaining.get(index) else { continue };
                for pattern in alternatives.iter() {
                    match pattern.matches(&packet, &mut self.vars) {
                        Ok(()) => {
                            matched = Some(index);
                            break 'search;
                        }
                        Err(why) => mismatches.push(why),
                    }
                }
            }
            let Some(index) = matched else {
                if let Some(skip) = unsupported_feature(&packet) {
                    return Err(StepFailure {
                        kind: OutcomeKind::Skip,
                        reason: skip,
                        expected: Some(expected_text),
                        actual: Some(packet.to_string()),
                    });
                }
                return Err(StepFailure::fail(
                    format!("`{client}` received an unexpected packet: {}", mismatches.join("; ")),
                    Some(expected_text),
                    Some(packet.to_string()),
                ));
            };
            remaining.remove(index);
            if ack {
                self.acknowledge(client, &packet).await?;
            }
            received.push(packet);
        }
        Ok(received)
    }

    async fn acknowledge(&mut self, client: &str, packet: &Observed) -> Result<(), StepFailure> {
        if packet.kind != "PUBLISH" {
            return Ok(());
        }
        let (Some(Value::Int(qos)), Some(Value::Int(id))) = (packet.fields.get("qos"), packet.fields.get("packet_id"))
        else {
            return Ok(());
        };
        match qos {
            1 => self.send_response(client, PacketType::PubAck, *id).await,
            2 => {
                self.client(client)?.awaiting_pubrel.insert(*id);
                self.send_response(client, PacketType::PubRec, *id).await
            }
            _ => Ok(()),
        }
    }

    async fn expect_closed(
        &mut self,
        client: &str,
        disconnect_reason: Option<&ValuePattern>,
        allow: &[PacketPattern],
        timeout: f64,
    ) -> Result<(), StepFailure> {
        let deadline = tokio::time::Instant::now() + self.seconds(timeout);
        let expected = match disconnect_reason {
            Some(reason) if self.version.is_v5() => format!(
                "the broker closes the connection (a DISCONNECT before it, if any, with reason {})",
                crate::matcher::describe_value(reason, &self.vars)
            ),
            _ => "the broker closes the connection".to_owned(),
        };
        loop {
            match self.next_packet(client, deadline).await? {
                Next::Closed(_) => return Ok(()),
                Next::Timeout => {
                    return Err(StepFailure::fail(
                        format!(
                            "`{client}`: the connection was still open after {:.1} s",
                            self.seconds(timeout).as_secs_f64()
                        ),
                        Some(expected),
                        Some("connection still open (timeout)".into()),
                    ));
                }
                Next::Packet(packet) if packet.kind == "DISCONNECT" && self.version.is_v5() => {
                    if let Some(reason) = disconnect_reason {
                        let mut scratch = self.vars.clone();
                        if let Err(why) = match_value(reason, packet.fields.get("reason_code"), &mut scratch) {
                            return Err(StepFailure::fail(
                                format!("`{client}`: DISCONNECT with an unexpected reason code: {why}"),
                                Some(expected),
                                Some(packet.to_string()),
                            ));
                        }
                    }
                }
                Next::Packet(packet) => {
                    let mut scratch = self.vars.clone();
                    if !allow.iter().any(|p| p.matches(&packet, &mut scratch).is_ok()) {
                        return Err(StepFailure::fail(
                            format!("`{client}`: expected the connection to be closed, but a packet arrived"),
                            Some(expected),
                            Some(packet.to_string()),
                        ));
                    }
                }
            }
        }
    }
}

/// A SUBACK/CONNACK code saying the broker lacks a feature (5.0), which makes a scenario
/// that needs it a skip rather than a failure.
fn unsupported_feature(packet: &Observed) -> Option<String> {
    let codes: Vec<u64> = match packet.fields.get("reason_codes") {
        Some(Value::List(codes)) => {
            codes.iter().filter_map(|c| if let Value::Int(v) = c { Some(*v) } else { None }).collect()
        }
        _ => Vec::new(),
    };
    codes.iter().find_map(|code| match code {
        0x9E => Some("the broker does not support shared subscriptions (SUBACK 0x9E)".to_owned()),
        0xA1 => Some("the broker does not support subscription identifiers (SUBACK 0xA1)".to_owned()),
        0xA2 => Some("the broker does not support wildcard subscriptions (SUBACK 0xA2)".to_owned()),
        _ => None,
    })
}

/// Record a note in a trace (used by the CLI for the probe).
pub fn note(trace: &Trace, text: &str) {
    trace.record("runner", Direction::Event, text.to_owned(), &[]);
}

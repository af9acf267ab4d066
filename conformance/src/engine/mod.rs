//! The engine: runs scenarios against a broker, in parallel, each isolated by its own
//! prefix, every step under a timeout (a timeout is never a pass), the whole run bounded.
//!
//! Around each run it keeps the verdicts honest:
//! * after every run that did not pass, a liveness check tells a broker that stopped
//!   answering from a scenario that failed ([`health`]);
//! * every failure is re-run alone (`--confirm N` times) before it is reported: a failure
//!   that does not repeat is inconclusive, with every attempt's trace;
//! * deliveries no client of a run subscribed to are collected and reported once per
//!   version, against the statement that forbids them.

mod capabilities;
mod cleanup;
pub mod findings;
pub mod health;
mod steps;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use capabilities::Capabilities;
use cleanup::{RunFacts, cleanup};
use findings::Finding;
use health::Health;
use steps::ScenarioRun;

use crate::client::Trace;
use crate::outcome::{Attempt, BrokerStopped, Direction, Outcome, OutcomeKind, ScenarioResult, TraceEntry};
use crate::outgoing::{PASSWORD_VARIABLE, USERNAME_VARIABLE};
use crate::profile::Profile;
use crate::scenario::{Action, Level, Scenario};
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
    /// How many times a failed scenario is re-run alone before the failure is reported
    /// (0: never).
    pub confirm: u32,
}

/// Called with every result as soon as it is known (for progress output).
pub type ProgressFn = Arc<dyn Fn(&ScenarioResult) + Send + Sync>;

/// Progress reporting and cancellation for a run.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Called with each result.
    pub progress: Option<ProgressFn>,
    /// Cancelled on Ctrl-C: runs in flight end as `error`, the rest are not started.
    pub cancel: CancellationToken,
    /// The broker answered the probe's CONNECT, so a later silence means it stopped.
    pub probed_alive: bool,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").field("cancelled", &self.cancel.is_cancelled()).finish()
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Results, sorted by id and version.
    pub results: Vec<ScenarioResult>,
    /// The broker stopped answering during the run.
    pub broker_stopped: Option<BrokerStopped>,
    /// The run was cancelled.
    pub interrupted: bool,
}

pub(crate) fn scaled(seconds: f64, scale: f64) -> Duration {
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

/// Shared by every task of one run.
struct RunContext {
    config: RunConfig,
    capabilities: BTreeMap<Version, Capabilities>,
    health: Health,
    hooks: Hooks,
    tag: String,
    started: Instant,
    next_prefix: std::sync::atomic::AtomicU64,
    scenarios: HashMap<String, Arc<Scenario>>,
}

impl RunContext {
    /// A prefix no other run of this process uses: `mq` + run tag + counter + version.
    fn prefix(&self, version: Version) -> String {
        let index = self.next_prefix.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("mq{}{}{}", self.tag, base36(index, 3), if version.is_v5() { 'b' } else { 'a' })
    }

    fn scenario(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.get(id).map(|s| s.as_ref())
    }
}

/// One attempt of one scenario under one version.
struct AttemptResult {
    outcome: Outcome,
    trace: Vec<TraceEntry>,
    duration: Duration,
    findings: Vec<Finding>,
}

/// Run scenarios under the given versions (those the broker supports); results come back
/// sorted by id and version.
pub async fn run(
    scenarios: Vec<Scenario>,
    versions: &[Version],
    config: RunConfig,
    capabilities: BTreeMap<Version, Capabilities>,
    hooks: Hooks,
) -> RunOutput {
    let scenarios: Vec<Arc<Scenario>> = scenarios.into_iter().map(Arc::new).collect();
    let context = Arc::new(RunContext {
        scenarios: scenarios.iter().map(|s| (s.id.clone(), Arc::clone(s))).collect(),
        config,
        capabilities,
        health: Health::new(hooks.probed_alive),
        hooks,
        tag: run_tag(),
        started: Instant::now(),
        next_prefix: std::sync::atomic::AtomicU64::new(1),
    });
    let semaphore = Arc::new(Semaphore::new(context.config.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut key = 0u64;
    for scenario in scenarios {
        for version in scenario.versions.iter().copied().filter(|v| versions.contains(v)) {
            key += 1;
            let (scenario, context, semaphore) = (Arc::clone(&scenario), Arc::clone(&context), Arc::clone(&semaphore));
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await.ok();
                let (result, findings) = first_attempt(&context, &scenario, version, key).await;
                if let Some(progress) = &context.hooks.progress {
                    progress(&result);
                }
                (result, findings)
            });
        }
    }
    let mut results = Vec::new();
    let mut findings = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((result, found)) => {
                results.push(result);
                findings.extend(found);
            }
            Err(e) => results.push(runner_failure(format!("runner task failed: {e}"))),
        }
    }
    confirm_failures(&context, &mut results).await;
    let profile = &context.config.profile;
    for result in &mut results {
        apply_profile(profile, result);
    }
    results.extend(findings::results(&findings, profile));
    results.sort_by(|a, b| (a.id.as_str(), a.version).cmp(&(b.id.as_str(), b.version)));
    RunOutput { results, broker_stopped: context.health.stopped(), interrupted: context.hooks.cancel.is_cancelled() }
}

fn runner_failure(reason: String) -> ScenarioResult {
    ScenarioResult {
        id: "runner".into(),
        title: "runner task".into(),
        version: Version::V5,
        level: Level::Must,
        tags: Vec::new(),
        statements: Vec::new(),
        outcome: Outcome::new(OutcomeKind::Error, reason),
        duration_ms: 0,
        trace: Vec::new(),
        source: String::new(),
        attempts: Vec::new(),
    }
}

fn label(scenario: &Scenario, version: Version) -> String {
    format!("{} [{version}]", scenario.id)
}

/// The first (usually parallel) attempt of a scenario run, with the broker's health
/// checked when it did not pass.
async fn first_attempt(
    context: &RunContext,
    scenario: &Scenario,
    version: Version,
    key: u64,
) -> (ScenarioResult, Vec<Finding>) {
    let not_run = |why: String| (skipped(scenario, version, Outcome::new(OutcomeKind::Error, why)), Vec::new());
    if context.hooks.cancel.is_cancelled() {
        return not_run("not run: the run was interrupted".into());
    }
    if let Some(stopped) = context.health.stopped() {
        return not_run(format!("not run: the broker stopped answering during {}", stopped.noticed_by));
    }
    if context.started.elapsed() >= context.config.max_duration {
        return not_run("not run: the run's time budget (--max-duration) was spent before it started".into());
    }
    let label = label(scenario, version);
    context.health.begin(key, label.clone());
    let attempt = attempt(context, scenario, version).await;
    let mut stopped = None;
    if attempt.outcome.kind == OutcomeKind::Pass {
        context.health.answered();
    } else if !context.hooks.cancel.is_cancelled() {
        stopped = context.health.check(&context.config, version, &label).await;
    }
    context.health.end(key);
    let mut result = result_of(scenario, version, attempt.outcome, attempt.duration, attempt.trace);
    if let Some(stopped) = stopped {
        blame_stop(&mut result, &stopped, &label);
    }
    (result, attempt.findings)
}

/// A run that did not pass while the broker stopped answering: the run during which it
/// stopped fails ("stopped accepting connections"), several candidates are inconclusive
/// (which one stopped it cannot be told), and later runs are errors — never a failure of
/// their own statements.
fn blame_stop(result: &mut ScenarioResult, stopped: &BrokerStopped, label: &str) {
    let original = result.outcome.reason.clone().unwrap_or_default();
    if stopped.during.iter().any(|l| l == label) {
        if stopped.during.len() == 1 {
            result.outcome.kind = OutcomeKind::Fail;
            result.outcome.reason = Some(format!(
                "the broker stopped accepting connections during this scenario ({}); the step that noticed: {original}",
                stopped.evidence
            ));
        } else {
            let others: Vec<&str> = stopped.during.iter().map(String::as_str).filter(|l| *l != label).collect();
            result.outcome.kind = OutcomeKind::Inconclusive;
            result.outcome.reason = Some(format!(
                "the broker stopped answering ({}) while this scenario ran alongside {}; run them alone \
                 (--jobs 1 --only ID) on a restarted broker to tell which stops it",
                stopped.evidence,
                others.join(", ")
            ));
        }
    } else {
        result.outcome = Outcome::new(
            OutcomeKind::Error,
            format!("the broker has been unreachable since {} ({})", stopped.noticed_by, stopped.evidence),
        );
    }
}

/// One attempt, bounded by the scenario's budget and cancelled on Ctrl-C.
async fn attempt(context: &RunContext, scenario: &Scenario, version: Version) -> AttemptResult {
    let started = Instant::now();
    let config = &context.config;
    let capabilities = context.capabilities.get(&version).cloned().unwrap_or_default();
    if let Some(deviation) = config.profile.not_to_run(&scenario.id, version) {
        return AttemptResult {
            outcome: Outcome::new(
                OutcomeKind::KnownDeviation,
                format!("not run (the broker profile says it stops the broker): {}", deviation.reason),
            ),
            trace: Vec::new(),
            duration: started.elapsed(),
            findings: Vec::new(),
        };
    }
    let needed = scenario.required_capabilities(version);
    if let Some((capability, why)) = capabilities.missing(&needed) {
        return AttemptResult {
            outcome: Outcome::new(OutcomeKind::Skip, format!("needs `{capability}`: {why}")),
            trace: Vec::new(),
            duration: started.elapsed(),
            findings: Vec::new(),
        };
    }
    let prefix = context.prefix(version);
    let mut vars = Variables::default();
    vars.set("prefix", prefix.clone());
    if let Some(topic) = &config.profile.refused_topic {
        vars.set("refused_topic", topic.clone());
    }
    if !scenario.has_tag("credentials") {
        if let Some(username) = &config.username {
            vars.set(USERNAME_VARIABLE, username.clone());
        }
        if let Some(password) = &config.password {
            vars.set(PASSWORD_VARIABLE, password.clone());
        }
    }
    let trace = Trace::default();
    let mut run = ScenarioRun {
        scenario,
        version,
        config,
        capabilities,
        prefix: prefix.clone(),
        vars,
        trace: trace.clone(),
        clients: HashMap::new(),
        facts: RunFacts::default(),
        subscribed: Vec::new(),
        subscriptions_unknown: false,
        findings: Vec::new(),
        downgrade: None,
    };
    let remaining = config.max_duration.saturating_sub(context.started.elapsed());
    let budget = scaled(budget_seconds(scenario), config.time_scale).min(remaining);
    let outcome = tokio::select! {
        finished = tokio::time::timeout(budget, run.execute()) => match finished {
            Ok(outcome) => outcome,
            Err(_) => Outcome::new(
                OutcomeKind::Error,
                format!("the scenario did not finish within its budget of {:.1} s", budget.as_secs_f64()),
            ),
        },
        () = context.hooks.cancel.cancelled() => Outcome::new(OutcomeKind::Error, "interrupted"),
    };
    let facts = std::mem::take(&mut run.facts);
    let clients = std::mem::take(&mut run.clients);
    let findings = std::mem::take(&mut run.findings);
    drop(run);
    for (_, state) in clients {
        state.abort();
    }
    let duration = started.elapsed();
    if !context.hooks.cancel.is_cancelled() {
        cleanup(config, version, &prefix, &facts).await;
    }
    AttemptResult { outcome, trace: trace.entries(), duration, findings }
}

/// Re-run every failure alone, `--confirm` times, before reporting it: a failure that
/// does not repeat is inconclusive (scenarios disturbed each other, or the broker's
/// behaviour varies), with every attempt's trace.
async fn confirm_failures(context: &RunContext, results: &mut [ScenarioResult]) {
    if context.config.confirm == 0 {
        return;
    }
    for result in results.iter_mut().filter(|r| r.outcome.kind == OutcomeKind::Fail) {
        if context.hooks.cancel.is_cancelled() || context.health.stopped().is_some() {
            return;
        }
        let Some(scenario) = context.scenario(&result.id) else { continue };
        let first =
            Attempt { alone: context.config.jobs <= 1, outcome: result.outcome.clone(), trace: result.trace.clone() };
        let mut attempts = vec![first];
        for _ in 0..context.config.confirm {
            let label = label(scenario, result.version);
            context.health.begin(0, label.clone());
            let again = attempt(context, scenario, result.version).await;
            let stopped = if again.outcome.kind == OutcomeKind::Pass {
                None
            } else {
                context.health.check(&context.config, result.version, &label).await
            };
            context.health.end(0);
            attempts.push(Attempt { alone: true, outcome: again.outcome, trace: again.trace });
            if let Some(stopped) = stopped {
                blame_stop(result, &stopped, &label);
                result.attempts = attempts;
                return;
            }
        }
        conclude(result, attempts);
        if let Some(progress) = &context.hooks.progress {
            progress(result);
        }
    }
}

/// The verdict over all attempts: a failure only if every attempt failed.
pub(crate) fn conclude(result: &mut ScenarioResult, attempts: Vec<Attempt>) {
    let failed = attempts.iter().filter(|a| a.outcome.kind == OutcomeKind::Fail).count();
    let total = attempts.len();
    if failed < total {
        let first_in_parallel = attempts.first().is_some_and(|a| !a.alone);
        let later_passed = attempts.iter().skip(1).all(|a| a.outcome.kind == OutcomeKind::Pass);
        let kinds: Vec<&str> = attempts.iter().map(|a| a.outcome.kind.label()).collect();
        let first_reason = result.outcome.reason.clone().unwrap_or_default();
        let reason = if first_in_parallel && later_passed {
            format!(
                "failed alongside other scenarios, passed alone ({} of {} solo attempts); the first failure: {first_reason}",
                total - 1,
                total - 1
            )
        } else {
            format!(
                "the verdict changed between attempts ({}: failed {failed} of {total}); the first failure: {first_reason}",
                kinds.join(", ")
            )
        };
        result.outcome = Outcome { kind: OutcomeKind::Inconclusive, reason: Some(reason), ..result.outcome.clone() };
    }
    result.attempts = attempts;
}

/// A failure the broker profile records becomes a known deviation.
pub(crate) fn apply_profile(profile: &Profile, result: &mut ScenarioResult) {
    if result.outcome.kind != OutcomeKind::Fail {
        return;
    }
    if let Some(deviation) = profile.deviation_for(&result.id, &result.statements, result.version) {
        let failure = result.outcome.reason.take().unwrap_or_default();
        result.outcome.kind = OutcomeKind::KnownDeviation;
        result.outcome.reason = Some(format!("{} (observed: {failure})", deviation.reason));
    }
}

/// The result of a scenario run that was not executed (skipped, not run).
pub fn skipped(scenario: &Scenario, version: Version, outcome: Outcome) -> ScenarioResult {
    result_of(scenario, version, outcome, Duration::ZERO, Vec::new())
}

pub(crate) fn result_of(
    scenario: &Scenario,
    version: Version,
    outcome: Outcome,
    duration: Duration,
    trace: Vec<TraceEntry>,
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
        attempts: Vec::new(),
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

/// Record a note in a trace (used by the CLI for the probe).
pub fn note(trace: &Trace, text: &str) {
    trace.record("runner", Direction::Event, text.to_owned(), &[]);
}

//! Runs client scenarios: each run gets its own listener and its own driver instance, so
//! runs in parallel never see each other. Failures are re-run alone before they are
//! reported (`--confirm`), and a client profile turns recorded deviations into
//! `known-deviation`, as on the broker side.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::connection::{AutoAnswers, Listener};
use super::driver::{Driver, DriverSession};
use super::scenario::{ClientScenario, DEFAULT_TIMEOUT, DRIVER_REPLY_TIMEOUT, ServerAction};
use super::steps::ClientRun;
use crate::client::Trace;
use crate::engine::{Hooks, apply_profile, conclude, result_of, scaled};
use crate::outcome::{Attempt, Outcome, OutcomeKind, ScenarioResult};
use crate::profile::Profile;
use crate::template::Variables;
use crate::version::Version;

/// Seconds a driver gets to start and say `hello`.
pub const DRIVER_START_TIMEOUT: f64 = 15.0;

/// Settings of a client run.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The client under test.
    pub driver: Driver,
    /// Runs in parallel.
    pub jobs: usize,
    /// Multiplies every timeout, window and wait.
    pub time_scale: f64,
    /// Bound on the whole run.
    pub max_duration: Duration,
    /// Solo re-runs of a failure before it is reported.
    pub confirm: u32,
    /// The client profile (known deviations).
    pub profile: Profile,
    /// Abilities the driver announced in its `hello` (`requires` of a scenario).
    pub capabilities: Vec<String>,
}

struct Context {
    config: ClientConfig,
    hooks: Hooks,
    started: Instant,
    tag: String,
    counter: AtomicU64,
}

impl Context {
    fn prefix(&self, version: Version) -> String {
        let index = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("mq{}{index:03}{}", self.tag, if version.is_v5() { 'b' } else { 'a' })
    }
}

/// Run the scenarios under the versions given; results sorted by id and version.
pub async fn run(
    scenarios: Vec<ClientScenario>,
    versions: &[Version],
    config: ClientConfig,
    hooks: Hooks,
) -> Vec<ScenarioResult> {
    let context = Arc::new(Context {
        config,
        hooks,
        started: Instant::now(),
        tag: crate::engine::run_tag(),
        counter: AtomicU64::new(1),
    });
    let scenarios: Vec<Arc<ClientScenario>> = scenarios.into_iter().map(Arc::new).collect();
    let semaphore = Arc::new(Semaphore::new(context.config.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for scenario in &scenarios {
        for version in scenario.meta.versions.iter().copied().filter(|v| versions.contains(v)) {
            let (scenario, context, semaphore) = (Arc::clone(scenario), Arc::clone(&context), Arc::clone(&semaphore));
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await.ok();
                let result = first_attempt(&context, &scenario, version).await;
                if let Some(progress) = &context.hooks.progress {
                    progress(&result);
                }
                result
            });
        }
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    confirm_failures(&context, &scenarios, &mut results).await;
    for result in &mut results {
        apply_profile(&context.config.profile, result);
    }
    results.sort_by(|a, b| (a.id.as_str(), a.version).cmp(&(b.id.as_str(), b.version)));
    results
}

async fn first_attempt(context: &Context, scenario: &ClientScenario, version: Version) -> ScenarioResult {
    let not_run = |why: &str| crate::engine::skipped(&scenario.meta, version, Outcome::new(OutcomeKind::Error, why));
    if context.hooks.cancel.is_cancelled() {
        return not_run("not run: the run was interrupted");
    }
    if context.started.elapsed() >= context.config.max_duration {
        return not_run("not run: the run's time budget (--max-duration) was spent before it started");
    }
    let (outcome, trace, duration) = attempt(context, scenario, version).await;
    result_of(&scenario.meta, version, outcome, duration, trace)
}

/// One attempt: a listener, a driver, the steps, under the scenario's budget.
async fn attempt(
    context: &Context,
    scenario: &ClientScenario,
    version: Version,
) -> (Outcome, Vec<crate::outcome::TraceEntry>, Duration) {
    let started = Instant::now();
    let config = &context.config;
    if let Some(missing) = scenario.meta.requires.iter().find(|c| !config.capabilities.contains(c)) {
        let outcome = Outcome::new(
            OutcomeKind::Skip,
            format!("needs `{missing}`, which the driver does not announce (its `hello` capabilities)"),
        );
        return (outcome, Vec::new(), started.elapsed());
    }
    let trace = Trace::default();
    let mut vars = Variables::default();
    vars.set("prefix", context.prefix(version));
    let auto = Arc::new(AutoAnswers::default());
    let listener = match Listener::bind(trace.clone(), Arc::clone(&auto), version).await {
        Ok(listener) => listener,
        Err(e) => {
            let outcome = Outcome::new(OutcomeKind::Error, format!("cannot listen on 127.0.0.1: {e}"));
            return (outcome, trace.entries(), started.elapsed());
        }
    };
    let start_timeout = scaled(DRIVER_START_TIMEOUT, config.time_scale);
    let url = listener.url.clone();
    let (driver, _hello) = match DriverSession::start(&config.driver, &url, version, trace.clone(), start_timeout).await
    {
        Ok(started) => started,
        Err(failure) => {
            let outcome = Outcome::new(OutcomeKind::Error, failure.to_string());
            return (outcome, trace.entries(), started.elapsed());
        }
    };
    let mut run = ClientRun {
        scenario,
        version,
        time_scale: config.time_scale,
        vars,
        trace: trace.clone(),
        listener,
        driver,
        auto,
        current: None,
        earlier: Vec::new(),
        awaiting_pubrel: BTreeSet::new(),
    };
    let remaining = config.max_duration.saturating_sub(context.started.elapsed());
    let budget = scaled(budget_seconds(scenario), config.time_scale).min(remaining);
    let mut outcome = tokio::select! {
        finished = tokio::time::timeout(budget, run.execute()) => match finished {
            Ok(outcome) => outcome,
            Err(_) => Outcome::new(
                OutcomeKind::Error,
                format!("the scenario did not finish within its budget of {:.1} s", budget.as_secs_f64()),
            ),
        },
        () = context.hooks.cancel.cancelled() => Outcome::new(OutcomeKind::Error, "interrupted"),
    };
    let ClientRun { driver, current, earlier, .. } = run;
    drop((current, earlier));
    // A driver that died during the run makes it an error, whatever the steps saw.
    if let Some(failure) = driver.finish().await {
        if outcome.kind != OutcomeKind::Error {
            let before = match outcome.kind {
                OutcomeKind::Pass => "the steps had passed".to_owned(),
                kind => format!("the steps ended as {kind}: {}", outcome.reason.clone().unwrap_or_default()),
            };
            outcome = Outcome::new(OutcomeKind::Error, format!("{failure} ({before})"));
        }
    }
    (outcome, trace.entries(), started.elapsed())
}

/// Re-run each failure alone `--confirm` times: a failure that does not repeat is
/// inconclusive (timing, or a library whose behaviour varies), with every attempt's trace.
async fn confirm_failures(context: &Context, scenarios: &[Arc<ClientScenario>], results: &mut [ScenarioResult]) {
    if context.config.confirm == 0 {
        return;
    }
    for result in results.iter_mut().filter(|r| r.outcome.kind == OutcomeKind::Fail) {
        if context.hooks.cancel.is_cancelled() {
            return;
        }
        let Some(scenario) = scenarios.iter().find(|s| s.meta.id == result.id) else { continue };
        let first =
            Attempt { alone: context.config.jobs <= 1, outcome: result.outcome.clone(), trace: result.trace.clone() };
        let mut attempts = vec![first];
        for _ in 0..context.config.confirm {
            let (outcome, trace, _) = attempt(context, scenario, result.version).await;
            attempts.push(Attempt { alone: true, outcome, trace });
        }
        conclude(result, attempts);
        if let Some(progress) = &context.hooks.progress {
            progress(result);
        }
    }
}

/// Upper bound on a run's duration, before scaling: every timeout, window and wait, plus
/// the driver's start and its answers.
fn budget_seconds(scenario: &ClientScenario) -> f64 {
    let steps: f64 = scenario
        .steps
        .iter()
        .map(|step| match &step.action {
            ServerAction::Accept { timeout }
            | ServerAction::Expect { timeout, .. }
            | ServerAction::ExpectEvent { timeout, .. }
            | ServerAction::Exchange { timeout, .. }
            | ServerAction::ExpectClosed { timeout, .. } => *timeout,
            ServerAction::ExpectNoEvent { window, .. }
            | ServerAction::ExpectNothing { window }
            | ServerAction::ExpectNone { window, .. } => *window,
            ServerAction::Wait { seconds } => *seconds,
            ServerAction::Drive { repeat, interval, .. } | ServerAction::Send { repeat, interval, .. } => {
                f64::from(*repeat) * (interval + 0.1)
            }
            _ => 0.1,
        })
        .sum();
    steps + DRIVER_START_TIMEOUT + DRIVER_REPLY_TIMEOUT + DEFAULT_TIMEOUT
}

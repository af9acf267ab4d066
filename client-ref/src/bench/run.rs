//! The phases of a run: set-up (subscribers, publishers, idle connections, paced), the
//! measured window (start, publish, drain), and teardown; a progress line once a second.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::link::{self, Ctx, PublisherSpec, Role};
use super::procfs::{self, Sample};
use super::report::{DrainEnd, IdleMemory, Latency, ProcessUsage, Report};
use super::stats::Stats;
use super::{Expected, Plan, expand};
use crate::transport::{Address, Connector};
use crate::{Subscription, Topic};

/// How often the run checks its conditions.
const POLL: Duration = Duration::from_millis(10);

/// Bound on disconnecting everything at the end.
const TEARDOWN: Duration = Duration::from_secs(5);

/// Extra time publishers get past the duration before the run stops waiting for them.
const PUBLISH_GRACE: Duration = Duration::from_secs(5);

/// Run `plan`. `progress` gets a status line about once a second; `cancel` (Ctrl-C) ends
/// the run early, which still reports what was measured. Fails only for a plan that cannot
/// run (bad URL, TLS files, topics); everything that goes wrong while running is in the
/// report.
pub async fn run(
    plan: Plan,
    progress: &mut dyn FnMut(&str),
    cancel: impl Future<Output = ()> + Send + 'static,
) -> Result<Report, String> {
    validate(&plan)?;
    let server = plan.options.servers.first().ok_or("no broker URL")?;
    let address = Address::parse(server)?;
    let connector =
        Connector::new(address.clone(), &plan.options.tls)?.with_handshake_timeout(plan.options.connect_timeout);
    let (start_tx, start) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let canceller = tokio::spawn(async move {
        cancel.await;
        let _ = cancel_tx.send(true);
    });
    let epoch = Instant::now();
    let ctx = Arc::new(Ctx {
        connector,
        stats: Stats::default(),
        epoch,
        start,
        stop,
        ready: AtomicU64::new(0),
        publishers_done: AtomicU64::new(0),
        last_publish_ns: AtomicU64::new(0),
        last_connack_ns: AtomicU64::new(0),
        // The transport and CONNACK each have the connect timeout; SUBACK shares it.
        setup_timeout: plan.options.connect_timeout.saturating_mul(2),
    });
    let permits = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let monitor = Monitor::new(plan.broker_pid, epoch, progress);
    // Publishers and subscribers are separate clients in the benchmark suite's method: the
    // subscribers get a thread of their own, so that flat-out publishers cannot starve them.
    let subscriber_thread = match (&plan.subscribers, &plan.publishers) {
        (Some(_), Some(_)) => Some(SubscriberThread::start().map_err(|e| format!("cannot start a thread: {e}"))?),
        _ => None,
    };
    let mut runner =
        Runner { plan, ctx, tasks: JoinSet::new(), permits, cancel: cancel_rx, monitor, spawned: 0, subscriber_thread };
    let report = runner.run(&address, &start_tx, &stop_tx).await;
    if let Some(thread) = runner.subscriber_thread.take() {
        thread.stop().await;
    }
    canceller.abort();
    Ok(report)
}

/// A current-thread runtime on its own OS thread, for the subscribers.
struct SubscriberThread {
    handle: tokio::runtime::Handle,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl SubscriberThread {
    fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("bench-subscribers".into()).spawn(move || {
            let _ = runtime.block_on(stopped);
            // Dropped here, outside any async context.
            drop(runtime);
        })?;
        Ok(Self { handle, stop, thread })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}

fn validate(plan: &Plan) -> Result<(), String> {
    use mqttkit_codec::{TopicFilter, TopicName};
    if let Some(subs) = &plan.subscribers {
        let filter = expand(&subs.filter, 0);
        TopicFilter::new(&filter).map_err(|e| format!("invalid topic filter `{filter}`: {e}"))?;
    }
    if let Some(pubs) = &plan.publishers {
        let topic = expand(&pubs.topic, 0);
        TopicName::new(&topic).map_err(|e| format!("invalid topic `{topic}`: {e}"))?;
        if topic.is_empty() {
            return Err("the topic is empty".into());
        }
        if !(pubs.rate.is_finite() && pubs.rate >= 0.0) {
            return Err("the rate must be a number ≥ 0".into());
        }
    }
    if !(plan.connect_rate.is_finite() && plan.connect_rate >= 0.0) {
        return Err("the connection rate must be a number ≥ 0".into());
    }
    Ok(())
}

enum Waited {
    Done,
    TimedOut,
    Cancelled,
}

struct Runner<'p> {
    plan: Plan,
    ctx: Arc<Ctx>,
    tasks: JoinSet<()>,
    permits: Arc<Semaphore>,
    cancel: watch::Receiver<bool>,
    monitor: Monitor<'p>,
    spawned: u64,
    subscriber_thread: Option<SubscriberThread>,
}

impl Runner<'_> {
    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Wait (polling) until `done`, the deadline or Ctrl-C.
    async fn wait_until(&mut self, deadline: Instant, done: impl Fn(&Ctx) -> bool) -> Waited {
        loop {
            if done(&self.ctx) {
                return Waited::Done;
            }
            if self.cancelled() {
                return Waited::Cancelled;
            }
            if Instant::now() >= deadline {
                return Waited::TimedOut;
            }
            self.monitor.tick(&self.ctx);
            tokio::time::sleep(POLL).await;
        }
    }

    async fn pause(&mut self, time: Duration) {
        self.wait_until(Instant::now() + time, |_| false).await;
    }

    /// Open `count` connections with these roles, paced, and wait for their set-up.
    /// `false` if Ctrl-C came first.
    async fn connect_group(&mut self, count: usize, kind: &str, role: impl Fn(usize) -> Role) -> bool {
        let first = Instant::now();
        let rate = self.plan.connect_rate;
        for i in 0..count {
            if rate > 0.0 {
                let at = first + Duration::from_secs_f64(i as f64 / rate);
                if let Waited::Cancelled = self.wait_until(at, |_| false).await {
                    return false;
                }
            }
            let permit = loop {
                if self.cancelled() {
                    return false;
                }
                match Arc::clone(&self.permits).try_acquire_owned() {
                    Ok(permit) => break permit,
                    Err(_) => {
                        self.monitor.tick(&self.ctx);
                        tokio::time::sleep(POLL).await;
                    }
                }
            };
            let mut options = self.plan.options.clone();
            options.client_id = format!("{}-{kind}-{i}", self.plan.options.client_id);
            let role = role(i);
            let task = link::run(Arc::clone(&self.ctx), options, role.clone(), permit);
            match (&role, &self.subscriber_thread) {
                (Role::Subscriber(_), Some(thread)) => self.tasks.spawn_on(task, &thread.handle),
                _ => self.tasks.spawn(task),
            };
            self.spawned += 1;
            self.monitor.tick(&self.ctx);
        }
        let spawned = self.spawned;
        let deadline = Instant::now() + self.ctx.setup_timeout + Duration::from_secs(1);
        let set_up = |ctx: &Ctx| Stats::get(&ctx.ready) + Stats::get(&ctx.stats.setup_failed) >= spawned;
        !matches!(self.wait_until(deadline, set_up).await, Waited::Cancelled)
    }

    async fn run(
        &mut self,
        address: &Address,
        start: &watch::Sender<Option<Instant>>,
        stop: &watch::Sender<bool>,
    ) -> Report {
        let plan = self.plan.clone();
        let broker_before_setup = self.monitor.broker();
        let setup_started = Instant::now();
        let mut going = true;
        if let Some(subs) = &plan.subscribers {
            self.monitor.phase = "subscribing";
            going = self
                .connect_group(subs.count, "sub", |i| {
                    Role::Subscriber(vec![Subscription::new(expand(&subs.filter, i), subs.qos)])
                })
                .await;
        }
        let ready_before_publishers = Stats::get(&self.ctx.ready);
        if let (true, Some(pubs)) = (going, &plan.publishers) {
            self.monitor.phase = "connecting publishers";
            let offset_step = if pubs.rate > 0.0 { 1.0 / pubs.rate / pubs.count.max(1) as f64 } else { 0.0 };
            going = self
                .connect_group(pubs.count, "pub", |i| {
                    Role::Publisher(PublisherSpec {
                        topic: Topic::copy_from(&expand(&pubs.topic, i)),
                        qos: pubs.qos,
                        retain: pubs.retain,
                        rate: pubs.rate,
                        limit: pubs.messages,
                        duration: plan.duration,
                        payload_size: pubs.payload_size,
                        window: usize::from(pubs.inflight.max(1)),
                        offset: Duration::from_secs_f64(offset_step * i as f64),
                    })
                })
                .await;
        }
        let ready_publishers = Stats::get(&self.ctx.ready) - ready_before_publishers;
        if going && plan.idle > 0 {
            self.monitor.phase = "connecting";
            going = self.connect_group(plan.idle, "conn", |_| Role::Idle).await;
        }
        let setup_seconds = {
            let last = Stats::get(&self.ctx.last_connack_ns);
            let first = setup_started.saturating_duration_since(self.ctx.epoch).as_nanos() as u64;
            last.saturating_sub(first) as f64 / 1e9
        };

        let mut memory = None;
        let mut drain = None;
        let window_start;
        let broker_start;
        let own_start;
        if plan.subscribers.is_none() && plan.publishers.is_none() {
            // Idle connections: memory with them open, held, then after they close.
            window_start = setup_started;
            broker_start = broker_before_setup.clone();
            own_start = self.monitor.own_at_start.clone();
            if going {
                self.monitor.phase = "settling";
                self.pause(plan.settle).await;
                let idle = self.monitor.broker();
                let connections = Stats::get(&self.ctx.stats.open);
                self.monitor.phase = "holding";
                self.wait_until(Instant::now() + plan.duration, |_| false).await;
                self.teardown(stop).await;
                self.monitor.phase = "settling";
                self.pause(plan.settle).await;
                let after = self.monitor.broker();
                if let (Some(base), Some(idle), Some(after)) = (&broker_before_setup, idle, after) {
                    memory = Some(IdleMemory {
                        baseline_kib: base.rss_kib,
                        idle_kib: idle.rss_kib,
                        after_close_kib: after.rss_kib,
                        connections,
                    });
                }
            }
        } else {
            broker_start = self.monitor.broker();
            own_start = procfs::own();
            window_start = Instant::now();
            if going {
                let _ = start.send(Some(window_start));
                drain = Some(self.measure(window_start, ready_publishers).await);
            }
        }
        let window_end = Instant::now();
        let broker_end = self.monitor.broker();
        let own_end = procfs::own();
        self.teardown(stop).await;

        let since_start = |ns: u64| {
            let start_ns = window_start.saturating_duration_since(self.ctx.epoch).as_nanos() as u64;
            ns.saturating_sub(start_ns) as f64 / 1e9
        };
        let stats = &self.ctx.stats;
        let (delivered, sent) = (Stats::get(&stats.delivered), Stats::get(&stats.sent));
        let expected = match plan.expected {
            Expected::PerPublication(n) => Some(sent.saturating_mul(n)),
            Expected::Total(n) => Some(n),
            Expected::Unknown => None,
        };
        let wall = window_end.saturating_duration_since(window_start);
        let usage = |pid: u32, a: Option<Sample>, b: Option<Sample>, peak: u64| {
            let (a, b) = (a?, b?);
            Some(ProcessUsage {
                pid,
                cpu_seconds: b.cpu.saturating_sub(a.cpu).as_secs_f64(),
                wall_seconds: wall.as_secs_f64(),
                busiest_thread: b.busiest_thread_since(&a, wall),
                rss_start_kib: a.rss_kib,
                rss_end_kib: b.rss_kib,
                rss_peak_kib: peak.max(a.rss_kib).max(b.rss_kib),
            })
        };
        Report {
            scenario: plan.scenario.clone(),
            url: address.to_string(),
            protocol: match plan.options.version {
                mqttkit_codec::ProtocolVersion::V3_1 => "3.1",
                mqttkit_codec::ProtocolVersion::V3_1_1 => "3.1.1",
                _ => "5.0",
            }
            .to_owned(),
            qos: plan
                .publishers
                .as_ref()
                .map(|p| p.qos.as_u8())
                .or_else(|| plan.subscribers.as_ref().map(|s| s.qos.as_u8())),
            payload_size: plan.publishers.as_ref().map(|p| p.payload_size),
            publishers: plan.publishers.as_ref().map_or(0, |p| p.count),
            subscribers: plan.subscribers.as_ref().map_or(0, |s| s.count),
            idle: plan.idle,
            rate_per_publisher: plan.publishers.as_ref().map_or(0.0, |p| p.rate),
            threads: tokio::runtime::Handle::current().metrics().num_workers()
                + usize::from(self.subscriber_thread.is_some()),
            attempted: Stats::get(&stats.attempted),
            connected: Stats::get(&stats.connected),
            setup_failed: Stats::get(&stats.setup_failed),
            connect_seconds: setup_seconds,
            connect_time: Latency::from_histogram(&stats.connect_times()),
            sent,
            acknowledged: Stats::get(&stats.acknowledged),
            expected,
            delivered,
            untimed: Stats::get(&stats.untimed),
            publish_seconds: since_start(Stats::get(&self.ctx.last_publish_ns)),
            delivery_seconds: since_start(Stats::get(&stats.last_delivery_ns)),
            measured_seconds: window_end.saturating_duration_since(window_start).as_secs_f64(),
            latency: Latency::from_histogram(&stats.latency()),
            errors: stats.errors.snapshot(),
            disconnects: stats.disconnects.snapshot(),
            broker: plan.broker_pid.and_then(|pid| usage(pid, broker_start, broker_end, self.monitor.broker_peak)),
            generator: usage(std::process::id(), own_start, own_end, self.monitor.own_peak),
            memory,
            drain,
            cancelled: self.cancelled(),
        }
    }

    /// The measured window: publishing, then draining.
    async fn measure(&mut self, start: Instant, ready_publishers: u64) -> DrainEnd {
        let plan = self.plan.clone();
        let duration = plan.duration;
        let total = match plan.expected {
            Expected::Total(n) => Some(n),
            _ => None,
        };
        let per_publication = match plan.expected {
            Expected::PerPublication(n) => Some(n),
            _ => None,
        };
        let acknowledged_qos = plan.publishers.as_ref().is_some_and(|p| p.qos.as_u8() > 0);
        self.monitor.phase = "publishing";
        let published = if ready_publishers > 0 {
            let deadline = start + duration + PUBLISH_GRACE;
            self.wait_until(deadline, |ctx| Stats::get(&ctx.publishers_done) >= ready_publishers).await
        } else {
            // Subscribers only: until the expected total arrived or the duration passed.
            let done = move |ctx: &Ctx| total.is_some_and(|t| Stats::get(&ctx.stats.delivered) >= t);
            self.wait_until(start + duration, done).await
        };
        if let Waited::Cancelled = published {
            return DrainEnd::Interrupted;
        }
        // Drain: until everything arrived and was acknowledged, or nothing moved for the
        // drain time.
        self.monitor.phase = "draining";
        let complete = move |ctx: &Ctx| {
            let (sent, delivered) = (Stats::get(&ctx.stats.sent), Stats::get(&ctx.stats.delivered));
            let all_delivered = match (per_publication, total) {
                (Some(n), _) => delivered >= sent.saturating_mul(n),
                (None, Some(t)) => delivered >= t,
                (None, None) => true,
            };
            all_delivered && (!acknowledged_qos || Stats::get(&ctx.stats.acknowledged) >= sent)
        };
        let drain_end = Instant::now() + plan.drain.saturating_mul(10);
        let drain = plan.drain;
        loop {
            let seen = self.progress_count();
            let quiet_until = (Instant::now() + drain).min(drain_end);
            let moved = |ctx: &Ctx| complete(ctx) || progress_count(ctx) != seen;
            match self.wait_until(quiet_until, moved).await {
                Waited::Done if complete(&self.ctx) => return DrainEnd::Complete,
                Waited::Done if Instant::now() < drain_end => {}
                Waited::Done => return DrainEnd::TimeLimit,
                Waited::TimedOut if self.progress_count() != seen => return DrainEnd::TimeLimit,
                Waited::TimedOut => return DrainEnd::Quiet,
                Waited::Cancelled => return DrainEnd::Interrupted,
            }
        }
    }

    fn progress_count(&self) -> u64 {
        progress_count(&self.ctx)
    }

    /// Disconnect everything (bounded), then abort what is left.
    async fn teardown(&mut self, stop: &watch::Sender<bool>) {
        let _ = stop.send(true);
        self.monitor.phase = "disconnecting";
        let deadline = tokio::time::Instant::now() + TEARDOWN;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    self.tasks.abort_all();
                    while self.tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
    }
}

/// Deliveries and acknowledgements so far (their sum changes while a drain makes progress).
fn progress_count(ctx: &Ctx) -> u64 {
    Stats::get(&ctx.stats.delivered) + Stats::get(&ctx.stats.acknowledged)
}

/// Samples the broker and the generator, and prints the progress line.
struct Monitor<'p> {
    progress: &'p mut dyn FnMut(&str),
    broker_pid: Option<u32>,
    epoch: Instant,
    phase: &'static str,
    last: Instant,
    last_sent: u64,
    last_delivered: u64,
    last_broker: Option<Sample>,
    last_own: Option<Sample>,
    own_at_start: Option<Sample>,
    broker_peak: u64,
    own_peak: u64,
}

impl<'p> Monitor<'p> {
    fn new(broker_pid: Option<u32>, epoch: Instant, progress: &'p mut dyn FnMut(&str)) -> Self {
        let own = procfs::own();
        let broker = broker_pid.and_then(procfs::sample);
        let (broker_peak, own_peak) = (broker.as_ref().map_or(0, |b| b.rss_kib), own.as_ref().map_or(0, |o| o.rss_kib));
        Self {
            progress,
            broker_pid,
            epoch,
            phase: "starting",
            last: epoch,
            last_sent: 0,
            last_delivered: 0,
            last_broker: broker,
            last_own: own.clone(),
            own_at_start: own,
            broker_peak,
            own_peak,
        }
    }

    fn broker(&mut self) -> Option<Sample> {
        let sample = self.broker_pid.and_then(procfs::sample);
        if let Some(s) = &sample {
            self.broker_peak = self.broker_peak.max(s.rss_kib);
        }
        sample
    }

    /// Once a second: sample and print.
    fn tick(&mut self, ctx: &Ctx) {
        let now = Instant::now();
        let interval = now.saturating_duration_since(self.last);
        if interval < Duration::from_secs(1) {
            return;
        }
        let secs = interval.as_secs_f64();
        let stats = &ctx.stats;
        let (sent, delivered) = (Stats::get(&stats.sent), Stats::get(&stats.delivered));
        let mut line = format!(
            "[{:6.1} s] {:<21} open {}/{}  sent {} ({:.0}/s)  delivered {} ({:.0}/s)  errors {}  disconnects {}",
            now.saturating_duration_since(self.epoch).as_secs_f64(),
            self.phase,
            Stats::get(&stats.open),
            Stats::get(&stats.attempted),
            sent,
            (sent - self.last_sent) as f64 / secs,
            delivered,
            (delivered - self.last_delivered) as f64 / secs,
            stats.errors.total(),
            stats.disconnects.total(),
        );
        let broker = self.broker();
        if let (Some(a), Some(b)) = (&self.last_broker, &broker) {
            let cpu = b.cpu.saturating_sub(a.cpu).as_secs_f64() / secs;
            line.push_str(&format!("  broker {:.0}% CPU {:.1} MiB", cpu * 100.0, b.rss_kib as f64 / 1024.0));
        }
        let own = procfs::own();
        if let (Some(a), Some(b)) = (&self.last_own, &own) {
            let cpu = b.cpu.saturating_sub(a.cpu).as_secs_f64() / secs;
            line.push_str(&format!("  generator {:.0}% CPU", cpu * 100.0));
            self.own_peak = self.own_peak.max(b.rss_kib);
        }
        (self.progress)(&line);
        self.last = now;
        self.last_sent = sent;
        self.last_delivered = delivered;
        self.last_broker = broker;
        self.last_own = own;
    }
}

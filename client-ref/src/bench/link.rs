//! One benchmark connection: a task owning a sans-IO client [`Core`] and its transport.
//! It connects (and subscribes), waits for the run's start, publishes at its rate or as
//! fast as its window allows, counts what it receives, and disconnects when the run stops.
//!
//! Writes never block reading: while bytes are being written the task keeps reading (and
//! acknowledging), so a broker that pushes back on one direction cannot deadlock it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqttkit_codec::{PacketType, ReasonCode};
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::payload::{self, Payloads};
use super::stats::Stats;
use crate::core::{Core, Event};
use crate::transport::{Connector, Reader, Writer};
use crate::{ConnectionEvent, Options, Publication, PublishError, QoS, RequestError, RequestProperties};
use crate::{Subscription, Topic};

/// Publications handed to the core at once before their bytes are written.
const BATCH: u64 = 64;

/// What the tasks of one run share.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub connector: Connector,
    pub stats: Stats,
    /// Time zero of the run (for the `*_ns` counters).
    pub epoch: Instant,
    /// Set once: when publishers start.
    pub start: watch::Receiver<Option<Instant>>,
    /// Set once: disconnect and end.
    pub stop: watch::Receiver<bool>,
    /// Connections that finished their set-up (CONNACK, and SUBACK for subscribers).
    pub ready: AtomicU64,
    /// Publishers that stopped publishing (done, failed or stopped), each counted once.
    pub publishers_done: AtomicU64,
    /// When the last publisher stopped, in nanoseconds since `epoch`.
    pub last_publish_ns: AtomicU64,
    /// When the last CONNACK arrived, in nanoseconds since `epoch`.
    pub last_connack_ns: AtomicU64,
    /// Bound on a connection's set-up (transport, CONNACK, SUBACK).
    pub setup_timeout: Duration,
}

impl Ctx {
    fn mark(&self, counter: &AtomicU64, at: Instant) {
        let ns = u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        counter.fetch_max(ns, Ordering::Relaxed);
    }
}

/// What a publisher sends.
#[derive(Debug, Clone)]
pub(crate) struct PublisherSpec {
    pub topic: Topic,
    pub qos: QoS,
    pub retain: bool,
    /// Messages per second; 0: as fast as the window and the transport allow.
    pub rate: f64,
    /// Messages to send, if limited by count.
    pub limit: Option<u64>,
    /// Publishing stops this long after the start.
    pub duration: Duration,
    pub payload_size: usize,
    /// Most QoS 1/2 publications in flight (sent or queued in the core).
    pub window: usize,
    /// Delay of the first message after the start (spreads publishers over one interval).
    pub offset: Duration,
}

/// What a connection does once connected.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// Stay connected (keep-alive only).
    Idle,
    /// Subscribe, then count and time what arrives.
    Subscriber(Vec<Subscription>),
    /// Publish.
    Publisher(PublisherSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for CONNACK.
    Connecting,
    /// Waiting for SUBACK.
    Subscribing,
    /// Set up; publishers wait for the start.
    Ready,
    Publishing,
    /// A publisher that finished sending; it still takes acknowledgements.
    Published,
    /// Stopped for good (the core closed).
    Done,
}

struct Publishing {
    spec: PublisherSpec,
    payloads: Payloads,
    /// When the first message is due.
    first: Instant,
    /// When publishing stops.
    end: Instant,
    sent: u64,
    failed: bool,
}

impl Publishing {
    fn new(spec: PublisherSpec, start: Instant) -> Self {
        let payloads = Payloads::new(spec.payload_size);
        Self { first: start + spec.offset, end: start + spec.duration, payloads, spec, sent: 0, failed: false }
    }

    fn finished(&self, now: Instant) -> bool {
        self.failed || now >= self.end || self.spec.limit.is_some_and(|limit| self.sent >= limit)
    }

    /// Messages due by `now` and not yet sent (a batch when unlimited by rate).
    fn due(&self, now: Instant) -> u64 {
        if now < self.first {
            return 0;
        }
        let left = self.spec.limit.map_or(u64::MAX, |limit| limit.saturating_sub(self.sent));
        let due = if self.spec.rate > 0.0 {
            // The first message at `first`, then one every 1/rate seconds.
            let by_now = (now.duration_since(self.first).as_secs_f64() * self.spec.rate) as u64 + 1;
            by_now.saturating_sub(self.sent)
        } else {
            BATCH
        };
        due.min(left)
    }

    /// When the next message is due, for a rate-limited publisher.
    fn next_due(&self) -> Option<Instant> {
        (self.spec.rate > 0.0)
            .then(|| self.first + Duration::from_secs_f64(self.sent as f64 / self.spec.rate).min(self.spec.duration))
    }
}

/// Everything of a connection but its transport (so that reading can go on while a
/// write is in progress).
struct State {
    ctx: Arc<Ctx>,
    core: Core,
    role: Role,
    phase: Phase,
    began: Instant,
    /// Held during set-up: bounds the handshakes in progress at once.
    permit: Option<OwnedSemaphorePermit>,
    publishing: Option<Publishing>,
    latencies: Vec<u64>,
    /// The run asked us to stop (lost connections are then not counted as disconnects).
    closing: bool,
    close_transport: bool,
    /// Whether this connection is counted in `Stats::open`.
    counted_open: bool,
    /// Whether the set-up outcome (ready or failed) was counted.
    setup_counted: bool,
    publisher_counted: bool,
}

/// Run one connection to its end.
pub(crate) async fn run(ctx: Arc<Ctx>, options: Options, role: Role, permit: OwnedSemaphorePermit) {
    Stats::add(&ctx.stats.attempted, 1);
    let began = Instant::now();
    let core = match Core::new(options, began) {
        Ok(core) => core,
        Err(e) => {
            ctx.stats.errors.add(&format!("options: {e}"));
            Stats::add(&ctx.stats.setup_failed, 1);
            return;
        }
    };
    let mut st = State {
        ctx,
        core,
        role,
        phase: Phase::Connecting,
        began,
        permit: Some(permit),
        publishing: None,
        latencies: Vec::new(),
        closing: false,
        close_transport: false,
        counted_open: false,
        setup_counted: false,
        publisher_counted: false,
    };
    st.core.connect(began);
    while st.core.poll_event().is_some() {}
    let mut stop = st.ctx.stop.clone();
    let opened = tokio::select! {
        opened = st.ctx.connector.connect() => opened,
        _ = stop.wait_for(|stop| *stop) => Err(io::Error::other("the run ended first")),
    };
    match opened {
        Ok((reader, writer)) => {
            st.core.transport_opened(Instant::now());
            let start = st.ctx.start.clone();
            let mut link = Link { reader, writer, rbuf: BytesMut::new(), reading: true, st, start, stop };
            link.drive().await;
            link.writer.close_now().await;
            link.st.finish();
        }
        Err(e) => {
            st.core.transport_failed(Instant::now(), e.to_string());
            st.handle_events();
            st.finish();
        }
    }
}

struct Link {
    reader: Reader,
    writer: Writer,
    rbuf: BytesMut,
    reading: bool,
    st: State,
    start: watch::Receiver<Option<Instant>>,
    stop: watch::Receiver<bool>,
}

impl Link {
    async fn drive(&mut self) {
        loop {
            if !self.flush().await || self.st.close_transport || self.st.phase == Phase::Done {
                return;
            }
            let now = Instant::now();
            self.st.on_time(now, *self.start.borrow());
            if *self.stop.borrow() && !self.st.closing {
                self.st.begin_close();
                continue;
            }
            if self.st.publish_due(now) {
                // Write the batch, then let the other connections of this thread run (a
                // flat-out publisher must not starve the subscribers it feeds).
                if !self.flush().await {
                    return;
                }
                tokio::task::yield_now().await;
                continue;
            }
            if self.st.close_transport {
                continue;
            }
            let wake = self.st.next_wake(now);
            let waiting_start = self.st.phase == Phase::Ready && self.start.borrow().is_none();
            tokio::select! {
                biased;
                changed = self.stop.changed(), if !self.st.closing => {
                    if changed.is_err() {
                        self.st.begin_close();
                    }
                }
                changed = self.start.changed(), if waiting_start => {
                    if changed.is_err() {
                        self.st.begin_close();
                    }
                }
                read = self.reader.read_buf(&mut self.rbuf), if self.reading => {
                    absorb(&mut self.st, &mut self.rbuf, &mut self.reading, read);
                }
                () = sleep_until(wake), if wake.is_some() => {}
            }
        }
    }

    /// Write what the core has to send, reading meanwhile. `false` if the transport failed.
    async fn flush(&mut self) -> bool {
        while let Some(bytes) = self.st.core.poll_transmit() {
            let write = self.writer.write(&bytes);
            tokio::pin!(write);
            loop {
                tokio::select! {
                    biased;
                    written = &mut write => {
                        if let Err(e) = written {
                            self.reading = false;
                            self.st.core.transport_closed(Instant::now(), format!("write failed: {e}"));
                            self.st.handle_events();
                            return false;
                        }
                        break;
                    }
                    read = self.reader.read_buf(&mut self.rbuf), if self.reading => {
                        absorb(&mut self.st, &mut self.rbuf, &mut self.reading, read);
                    }
                }
            }
        }
        true
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

/// Hand what was read to the core.
fn absorb(st: &mut State, rbuf: &mut BytesMut, reading: &mut bool, read: io::Result<usize>) {
    let now = Instant::now();
    match read {
        Ok(0) => {
            *reading = false;
            st.core.transport_closed(now, "closed by the broker");
        }
        Ok(_) => {
            st.core.handle_bytes(rbuf, now);
            rbuf.clear();
            // An idle connection reads a few bytes a minute: give the read buffer back
            // rather than hold it for thousands of connections.
            if matches!(st.role, Role::Idle) {
                *rbuf = BytesMut::new();
            }
        }
        Err(e) => {
            *reading = false;
            st.core.transport_closed(now, e.to_string());
        }
    }
    st.handle_events();
}

impl State {
    fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    fn in_setup(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Subscribing)
    }

    fn handle_events(&mut self) {
        let (mut delivered, mut untimed, mut acknowledged) = (0u64, 0u64, 0u64);
        let mut now_ns = None;
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Message(message) => {
                    delivered += 1;
                    match payload::sent_at(message.payload()) {
                        Some(sent) => {
                            let now = *now_ns.get_or_insert_with(payload::now_ns);
                            self.latencies.push(now.saturating_sub(sent));
                        }
                        None => untimed += 1,
                    }
                }
                Event::Published { result: Ok(_), .. } => acknowledged += 1,
                // Publications still in flight when the run closes the connection are
                // not errors (they show as sent but not acknowledged).
                Event::Published { result: Err(e), .. } if !(self.closing && e == PublishError::Closed) => {
                    self.ctx.stats.errors.add(&format!("publish: {e}"));
                }
                Event::Subscribed { result, .. } => self.subscribed(result),
                Event::Connection(event) => {
                    // `-d`: connection events on stderr.
                    if let Some(handler) = &self.core.options().on_event {
                        handler(&event);
                    }
                    match event {
                        ConnectionEvent::Connected(_) => self.connected(),
                        ConnectionEvent::ConnectionLost { reason } => self.lost(&reason.to_string()),
                        ConnectionEvent::Closed(_) => self.phase = Phase::Done,
                        _ => {}
                    }
                }
                Event::CloseTransport => self.close_transport = true,
                _ => {}
            }
        }
        let stats = &self.ctx.stats;
        Stats::add(&stats.delivered, delivered);
        Stats::add(&stats.untimed, untimed);
        Stats::add(&stats.acknowledged, acknowledged);
        if delivered > 0 {
            self.ctx.mark(&stats.last_delivery_ns, Instant::now());
            stats.record_latencies(&self.latencies);
            self.latencies.clear();
        }
    }

    fn connected(&mut self) {
        let now = Instant::now();
        let stats = &self.ctx.stats;
        Stats::add(&stats.connected, 1);
        Stats::add(&stats.open, 1);
        self.counted_open = true;
        stats.record_connect_time(now.saturating_duration_since(self.began));
        self.ctx.mark(&self.ctx.last_connack_ns, now);
        match &self.role {
            Role::Subscriber(subscriptions) => {
                let subscribed = self.core.subscribe(subscriptions.clone(), RequestProperties::default(), 0, now);
                match subscribed {
                    Ok(()) => self.phase = Phase::Subscribing,
                    Err(e) => self.setup_failed(&format!("subscribe: {e}")),
                }
            }
            Role::Idle | Role::Publisher(_) => self.ready(),
        }
    }

    fn subscribed(&mut self, result: Result<Vec<ReasonCode>, RequestError>) {
        match result {
            Ok(codes) => match codes.iter().find(|code| code.is_error()) {
                None => {
                    Stats::add(&self.ctx.stats.subscribed, 1);
                    self.ready();
                }
                Some(code) => {
                    let name = code.name(PacketType::SubAck, self.core.version()).unwrap_or("refused");
                    self.setup_failed(&format!("subscribe: SUBACK {code} ({name})"));
                }
            },
            Err(e) => self.setup_failed(&format!("subscribe: {e}")),
        }
    }

    fn ready(&mut self) {
        self.phase = Phase::Ready;
        self.permit = None;
        self.setup_counted = true;
        Stats::add(&self.ctx.ready, 1);
    }

    /// Set-up failed: count it (once), and close.
    fn setup_failed(&mut self, reason: &str) {
        self.count_setup_failure(reason);
        self.begin_close();
    }

    fn count_setup_failure(&mut self, reason: &str) {
        if !self.setup_counted {
            self.setup_counted = true;
            self.ctx.stats.errors.add(reason);
            Stats::add(&self.ctx.stats.setup_failed, 1);
        }
        self.permit = None;
    }

    fn lost(&mut self, reason: &str) {
        if self.in_setup() {
            self.setup_failed(&format!("connect: {reason}"));
        } else if !self.closing {
            self.ctx.stats.disconnects.add(reason);
        }
        self.publisher_stopped(Instant::now());
    }

    fn publisher_stopped(&mut self, now: Instant) {
        if matches!(self.role, Role::Publisher(_)) && !self.publisher_counted {
            self.publisher_counted = true;
            Stats::add(&self.ctx.publishers_done, 1);
            if self.publishing.is_some() {
                self.ctx.mark(&self.ctx.last_publish_ns, now);
            }
            if self.phase == Phase::Publishing {
                self.phase = Phase::Published;
            }
        }
    }

    /// Disconnect (DISCONNECT, then close).
    fn begin_close(&mut self) {
        if self.closing {
            return;
        }
        self.closing = true;
        if self.in_setup() {
            self.count_setup_failure("connect: set-up not finished when the run ended");
        }
        self.publisher_stopped(Instant::now());
        self.core.disconnect(Instant::now(), Duration::ZERO, ReasonCode::SUCCESS, None);
        self.handle_events();
    }

    /// Timers: the core's (keep alive, connect timeout), the set-up bound, the start and
    /// the end of publishing.
    fn on_time(&mut self, now: Instant, start: Option<Instant>) {
        if self.core.poll_timeout().is_some_and(|at| at <= now) {
            self.core.handle_timeout(now);
            self.handle_events();
        }
        if self.in_setup() && now >= self.began + self.ctx.setup_timeout {
            let what = if self.phase == Phase::Connecting { "CONNACK" } else { "SUBACK" };
            let secs = self.ctx.setup_timeout.as_secs_f64();
            self.setup_failed(&format!("connect: no {what} within {secs:.0} s"));
        }
        if let (Phase::Ready, Some(start), Role::Publisher(spec)) = (self.phase, start, &self.role) {
            self.publishing = Some(Publishing::new(spec.clone(), start));
            self.phase = Phase::Publishing;
        }
        if self.phase == Phase::Publishing && self.publishing.as_ref().is_some_and(|p| p.finished(now)) {
            self.publisher_stopped(now);
        }
    }

    /// Hand the publications due now to the core; `true` if there were any.
    fn publish_due(&mut self, now: Instant) -> bool {
        let Some(p) = self.publishing.as_ref().filter(|_| self.phase == Phase::Publishing) else { return false };
        let n = p.due(now).min(self.room(p)).min(BATCH);
        let Some(p) = self.publishing.as_mut() else { return false };
        if n == 0 {
            return false;
        }
        // QoS 0 needs no completion event; QoS 1/2 report their acknowledgement.
        let tag = (p.spec.qos != QoS::AtMostOnce).then_some(0);
        let now_ns = payload::now_ns();
        let mut sent = 0;
        for _ in 0..n {
            let publication =
                Publication::new(p.spec.topic.clone(), p.spec.qos, p.spec.retain, p.payloads.next(now_ns));
            if let Err(e) = self.core.publish(publication, tag, now) {
                self.ctx.stats.errors.add(&format!("publish: {e}"));
                p.failed = true;
                break;
            }
            sent += 1;
        }
        p.sent += sent;
        Stats::add(&self.ctx.stats.sent, sent);
        self.handle_events();
        true
    }

    /// Room in the publisher's window.
    fn room(&self, p: &Publishing) -> u64 {
        match p.spec.qos {
            QoS::AtMostOnce => BATCH,
            _ => p.spec.window.saturating_sub(self.core.in_flight() + self.core.queued()) as u64,
        }
    }

    /// When the task must wake up without input (never a time already past: nothing is
    /// due now, so a full window waits for acknowledgements, not for the clock).
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let mut wake = self.core.poll_timeout();
        let mut consider = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));
        if self.in_setup() {
            consider(self.began + self.ctx.setup_timeout);
        }
        if let (Phase::Publishing, Some(p)) = (self.phase, &self.publishing) {
            consider(p.end);
            if now < p.first {
                consider(p.first);
            } else if let Some(at) = p.next_due().filter(|_| self.room(p) > 0) {
                consider(at);
            }
        }
        wake
    }

    /// The task ends: settle the counts.
    fn finish(&mut self) {
        if !self.setup_counted {
            self.count_setup_failure("connect: closed during set-up");
        }
        if self.counted_open {
            self.ctx.stats.open.fetch_sub(1, Ordering::Relaxed);
            self.counted_open = false;
        }
        self.publisher_stopped(Instant::now());
        self.stats().record_latencies(&self.latencies);
        self.latencies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rate: f64, limit: Option<u64>) -> PublisherSpec {
        PublisherSpec {
            topic: Topic::copy_from("t"),
            qos: QoS::AtMostOnce,
            retain: false,
            rate,
            limit,
            duration: Duration::from_secs(10),
            payload_size: 16,
            window: 20,
            offset: Duration::from_millis(100),
        }
    }

    #[test]
    fn a_rated_publisher_follows_its_schedule() {
        let start = Instant::now();
        let mut p = Publishing::new(spec(100.0, None), start);
        assert_eq!(p.due(start), 0, "nothing before the offset");
        assert_eq!(p.next_due(), Some(start + Duration::from_millis(100)));
        let first = start + Duration::from_millis(100);
        assert_eq!(p.due(first), 1);
        p.sent = 1;
        assert_eq!(p.due(first + Duration::from_millis(5)), 0);
        assert_eq!(p.next_due(), Some(first + Duration::from_millis(10)));
        // Late by half a second: the 50 missed messages are due at once (then capped by
        // the batch and the window).
        assert_eq!(p.due(first + Duration::from_millis(505)), 50);
        assert!(!p.finished(first + Duration::from_secs(1)));
        assert!(p.finished(start + Duration::from_secs(10)));
    }

    #[test]
    fn a_counted_publisher_stops_at_its_count() {
        let start = Instant::now();
        let mut p = Publishing::new(spec(0.0, Some(100)), start);
        let first = start + Duration::from_millis(100);
        assert_eq!(p.due(first), BATCH);
        assert_eq!(p.next_due(), None, "flat out: no schedule");
        p.sent = 90;
        assert_eq!(p.due(first), 10);
        p.sent = 100;
        assert_eq!(p.due(first), 0);
        assert!(p.finished(first));
    }
}

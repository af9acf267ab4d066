//! A load generator for MQTT brokers (the engine of `mqttkit bench`): many connections
//! on the caller's tokio runtime, each a sans-IO [`crate::core::Core`] driven by its own
//! small task, with the scenarios of EMQ's Open MQTT Benchmark Suite built from three
//! roles: idle connections, subscribers and publishers. When a run has both publishers and
//! subscribers, the subscribers run on a thread of their own (a current-thread runtime),
//! so that flat-out publishers cannot starve them.
//!
//! A run connects the subscribers (and waits for their SUBACK), then the publishers, at a
//! connection rate with a bounded number of handshakes in progress; starts every publisher
//! at once; publishes until each publisher's count or the duration; waits for stragglers;
//! then disconnects everything. Every phase is bounded in time.
//!
//! Latency is measured from a timestamp in each payload ([`HEADER_LEN`] bytes:
//! `mqkb` and the wall-clock send time) to its arrival, recorded in an HDR histogram. With
//! a broker process id the broker's CPU time and memory are read from `/proc`, and so are
//! the generator's own, so a report shows which of the two was the bottleneck.
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use std::time::Duration;
//! use mqttkit_client::bench::{self, Plan, Publishers, Subscribers};
//! use mqttkit_client::{Options, QoS};
//!
//! // p2p: 10 publishers → 10 subscribers, each pair on its own topic, QoS 1, 5 seconds.
//! let mut plan = Plan::new("p2p", Options::new("mqtt://127.0.0.1:1883").client_id("bench"));
//! plan.subscribers = Some(Subscribers::new(10, "bench/%i", QoS::AtLeastOnce));
//! plan.publishers = Some(Publishers::new(10, "bench/%i", QoS::AtLeastOnce));
//! plan.duration = Duration::from_secs(5);
//! let report = bench::run(plan, &mut |line: &str| eprintln!("{line}"), std::future::pending()).await?;
//! println!("{}", report.to_json());
//! # Ok(()) }
//! ```

mod link;
mod payload;
pub mod procfs;
mod report;
mod run;
mod stats;

use std::time::Duration;

use crate::{Options, QoS};

pub use self::payload::HEADER_LEN;
pub use self::report::{DrainEnd, IdleMemory, Latency, ProcessUsage, Report};
pub use self::run::run;

/// How many deliveries the run expects, to know when every message has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Each publication reaches this many subscribers (p2p and shared fan-in: 1,
    /// fan-out: N).
    PerPublication(u64),
    /// Subscribers stop once this many messages arrived in total (`bench sub -C`).
    Total(u64),
    /// Not known (publishers only, or subscribers fed from elsewhere until the duration).
    Unknown,
}

/// Subscribing connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribers {
    /// How many.
    pub count: usize,
    /// Topic filter; `%i` is replaced by the subscriber's index (0-based).
    pub filter: String,
    /// Requested QoS.
    pub qos: QoS,
}

impl Subscribers {
    /// `count` subscribers of `filter` at `qos`.
    pub fn new(count: usize, filter: impl Into<String>, qos: QoS) -> Self {
        Self { count, filter: filter.into(), qos }
    }
}

/// Publishing connections.
#[derive(Debug, Clone, PartialEq)]
pub struct Publishers {
    /// How many.
    pub count: usize,
    /// Topic; `%i` is replaced by the publisher's index (0-based).
    pub topic: String,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Messages per second per publisher; 0: as fast as the window and the transport allow.
    pub rate: f64,
    /// Messages per publisher, if limited by count (the run's duration still bounds it).
    pub messages: Option<u64>,
    /// Payload bytes (at least [`HEADER_LEN`] to measure latency).
    pub payload_size: usize,
    /// Most QoS 1/2 publications in flight per publisher.
    pub inflight: u16,
}

impl Publishers {
    /// `count` publishers to `topic` at `qos`, as fast as possible, 64-byte payloads, 20 in
    /// flight (mosquitto_pub's window).
    pub fn new(count: usize, topic: impl Into<String>, qos: QoS) -> Self {
        Self {
            count,
            topic: topic.into(),
            qos,
            retain: false,
            rate: 0.0,
            messages: None,
            payload_size: 64,
            inflight: 20,
        }
    }
}

/// A benchmark run. The connections use `options` (server, version, TLS, keep alive,
/// credentials) with client identifiers `{client_id}-sub-{i}`, `-pub-{i}` and `-conn-{i}`.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name in the report (`p2p`, `fan-out`, …).
    pub scenario: String,
    /// Options of every connection; the client identifier is the prefix.
    pub options: Options,
    /// Idle connections (the `conn` scenario).
    pub idle: usize,
    /// Subscribers (connected first).
    pub subscribers: Option<Subscribers>,
    /// Publishers.
    pub publishers: Option<Publishers>,
    /// New connections per second; 0: as fast as `connect_concurrency` allows.
    pub connect_rate: f64,
    /// Most connection handshakes (transport, CONNACK, SUBACK) in progress at once.
    pub connect_concurrency: usize,
    /// Publishing time (bounds count-limited publishers too); for idle connections, how
    /// long they are held open once all are connected.
    pub duration: Duration,
    /// Deliveries expected.
    pub expected: Expected,
    /// After publishing, wait for outstanding messages until none arrived for this long
    /// (at most 10 times as long in all).
    pub drain: Duration,
    /// Idle connections: pause before reading the broker's memory (after connecting, and
    /// after closing).
    pub settle: Duration,
    /// The broker's process id, for its CPU time and memory from `/proc`.
    pub broker_pid: Option<u32>,
}

impl Plan {
    /// A plan with no connections yet: 10 s, unlimited connection rate with 100
    /// handshakes at once, 2 s drain, 2 s settle.
    pub fn new(scenario: impl Into<String>, options: Options) -> Self {
        Self {
            scenario: scenario.into(),
            options,
            idle: 0,
            subscribers: None,
            publishers: None,
            connect_rate: 0.0,
            connect_concurrency: 100,
            duration: Duration::from_secs(10),
            expected: Expected::Unknown,
            drain: Duration::from_secs(2),
            settle: Duration::from_secs(2),
            broker_pid: None,
        }
    }
}

/// `pattern` with `%i` replaced by `index`.
pub fn expand(pattern: &str, index: usize) -> String {
    if pattern.contains("%i") { pattern.replace("%i", &index.to_string()) } else { pattern.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_the_client_index() {
        assert_eq!(expand("bench/%i", 7), "bench/7");
        assert_eq!(expand("a/%i/b/%i", 3), "a/3/b/3");
        assert_eq!(expand("bench/#", 3), "bench/#");
    }
}

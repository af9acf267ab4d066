//! The result of a run: counts, rates, latency percentiles, errors and disconnects with
//! their reasons, and the CPU time and memory of the broker and of the generator; as JSON
//! (`--json`) or as a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Percentiles of a histogram of nanoseconds, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1e3;
        Self {
            count: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1e3,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }

    fn to_json(self, scale: f64) -> Value {
        if self.count == 0 {
            return json!({ "count": 0 });
        }
        json!({
            "count": self.count,
            "min": round3(self.min * scale),
            "mean": round3(self.mean * scale),
            "p50": round3(self.p50 * scale),
            "p90": round3(self.p90 * scale),
            "p99": round3(self.p99 * scale),
            "p999": round3(self.p999 * scale),
            "max": round3(self.max * scale),
        })
    }
}

/// CPU time and memory of a process over the measured part of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUsage {
    /// Process id.
    pub pid: u32,
    /// CPU seconds (user + system, all threads) in the window.
    pub cpu_seconds: f64,
    /// Wall-clock seconds of the window.
    pub wall_seconds: f64,
    /// The busiest thread's share of the window (1.0: always on a CPU), where per-thread
    /// times could be read.
    pub busiest_thread: Option<f64>,
    /// Resident memory at the start of the window, KiB.
    pub rss_start_kib: u64,
    /// At its end.
    pub rss_end_kib: u64,
    /// Largest seen (sampled once a second and at the ends).
    pub rss_peak_kib: u64,
}

impl ProcessUsage {
    /// CPU seconds per wall-clock second (1.0: one core busy).
    pub fn utilisation(&self) -> f64 {
        if self.wall_seconds > 0.0 { self.cpu_seconds / self.wall_seconds } else { 0.0 }
    }

    /// CPU microseconds per message.
    pub fn cpu_us_per(&self, messages: u64) -> Option<f64> {
        (messages > 0).then(|| self.cpu_seconds * 1e6 / messages as f64)
    }

    fn to_json(self, messages: u64) -> Value {
        json!({
            "pid": self.pid,
            "cpu_s": round3(self.cpu_seconds),
            "cpu_utilisation": round3(self.utilisation()),
            "busiest_thread_utilisation": self.busiest_thread.map(round3),
            "cpu_us_per_message": self.cpu_us_per(messages).map(round3),
            "cpu_s_per_100k_messages": self.cpu_us_per(messages).map(|us| round3(us / 10.0)),
            "rss_kib_start": self.rss_start_kib,
            "rss_kib_end": self.rss_end_kib,
            "rss_kib_peak": self.rss_peak_kib,
        })
    }
}

/// How the wait for outstanding messages after publishing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// Every expected message arrived (and every QoS 1/2 publication was acknowledged).
    Complete,
    /// Nothing arrived for the drain time: what is missing was lost.
    Quiet,
    /// Messages were still arriving when the run stopped waiting (10 × the drain time):
    /// what is missing may still have been on its way.
    TimeLimit,
    /// Ctrl-C.
    Interrupted,
}

impl DrainEnd {
    /// `complete`, `quiet`, `time limit`, `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Quiet => "quiet",
            Self::TimeLimit => "time limit",
            Self::Interrupted => "interrupted",
        }
    }
}

/// The broker's memory around idle connections (the `conn` scenario).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleMemory {
    /// Before any connection, KiB.
    pub baseline_kib: u64,
    /// With every connection open (after the settle pause).
    pub idle_kib: u64,
    /// After they all closed (after the settle pause).
    pub after_close_kib: u64,
    /// Connections open when `idle_kib` was read.
    pub connections: u64,
}

impl IdleMemory {
    /// KiB per connection: (idle − baseline) / connections.
    pub fn kib_per_connection(&self) -> Option<f64> {
        (self.connections > 0).then(|| self.idle_kib.saturating_sub(self.baseline_kib) as f64 / self.connections as f64)
    }

    /// After-close memory as a multiple of the baseline.
    pub fn after_close_vs_baseline(&self) -> Option<f64> {
        (self.baseline_kib > 0).then(|| self.after_close_kib as f64 / self.baseline_kib as f64)
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Broker URL.
    pub url: String,
    /// Protocol version (`3.1`, `3.1.1`, `5.0`).
    pub protocol: String,
    /// Publishers' (or subscribers') QoS.
    pub qos: Option<u8>,
    /// Payload bytes.
    pub payload_size: Option<usize>,
    /// Publishers.
    pub publishers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// Idle connections.
    pub idle: usize,
    /// Messages per second per publisher (0: as fast as possible).
    pub rate_per_publisher: f64,
    /// Generator threads.
    pub threads: usize,
    /// Connection attempts.
    pub attempted: u64,
    /// Connections accepted (CONNACK).
    pub connected: u64,
    /// Connections or subscriptions that failed during set-up.
    pub setup_failed: u64,
    /// From the first attempt to the last CONNACK.
    pub connect_seconds: f64,
    /// Time from starting a connection to its CONNACK (transport handshakes included).
    pub connect_time: Latency,
    /// Publications handed to connections.
    pub sent: u64,
    /// QoS 1/2 publications acknowledged.
    pub acknowledged: u64,
    /// Deliveries expected, when known.
    pub expected: Option<u64>,
    /// Messages received by the subscribers.
    pub delivered: u64,
    /// Received messages without a benchmark timestamp.
    pub untimed: u64,
    /// From the start to the last publication.
    pub publish_seconds: f64,
    /// From the start to the last delivery.
    pub delivery_seconds: f64,
    /// From the start to the end of the measured window (after draining).
    pub measured_seconds: f64,
    /// Send-to-receive latency.
    pub latency: Latency,
    /// Errors (failed connections, refusals, rejected publications) by reason.
    pub errors: BTreeMap<String, u64>,
    /// Connections lost during the run by reason.
    pub disconnects: BTreeMap<String, u64>,
    /// The broker (`--broker-pid`).
    pub broker: Option<ProcessUsage>,
    /// The generator itself.
    pub generator: Option<ProcessUsage>,
    /// The broker's memory around idle connections.
    pub memory: Option<IdleMemory>,
    /// How waiting for outstanding messages ended (runs with publishers or subscribers).
    pub drain: Option<DrainEnd>,
    /// Ctrl-C ended the run early.
    pub cancelled: bool,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { n as f64 / seconds } else { 0.0 }
}

impl Report {
    /// The messages CPU time is divided by: deliveries when there are subscribers,
    /// publications otherwise.
    pub fn messages(&self) -> u64 {
        if self.subscribers > 0 { self.delivered } else { self.sent }
    }

    /// Deliveries per second, from the start to the last delivery or the last publication,
    /// whichever came later (a subscriber cut off early has a low rate, not the rate of
    /// its few first messages).
    pub fn delivered_per_second(&self) -> f64 {
        per_second(self.delivered, self.delivery_seconds.max(self.publish_seconds))
    }

    /// Publications per second (start to last publication).
    pub fn sent_per_second(&self) -> f64 {
        per_second(self.sent, self.publish_seconds)
    }

    /// Connections accepted per second.
    pub fn connect_rate(&self) -> f64 {
        per_second(self.connected, self.connect_seconds)
    }

    /// Delivered as a share of the expected deliveries, in percent.
    pub fn delivered_percent(&self) -> Option<f64> {
        self.expected.filter(|&e| e > 0).map(|e| self.delivered as f64 * 100.0 / e as f64)
    }

    /// Which side ran out of CPU: the broker when it used at least 90% of a core (or one
    /// of its threads was 90% busy), the generator when one of its threads was 90% busy
    /// (flat-out publishers keep theirs busy by design: then compare the broker's side).
    pub fn bottleneck(&self) -> &'static str {
        let busy = |u: Option<ProcessUsage>, cores: f64| {
            u.is_some_and(|u| u.utilisation() >= 0.9 * cores || u.busiest_thread.is_some_and(|t| t >= 0.9))
        };
        match (busy(self.broker, 1.0), busy(self.generator, self.threads.max(1) as f64), self.broker.is_some()) {
            (true, true, _) => "both (broker and a generator thread busy)",
            (true, false, _) => "broker",
            (false, true, _) => "generator",
            (false, false, true) => "neither",
            (false, false, false) => "unknown (no --broker-pid)",
        }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let messages = self.messages();
        let reasons = |map: &BTreeMap<String, u64>| json!({ "total": map.values().sum::<u64>(), "reasons": map });
        json!({
            "scenario": self.scenario,
            "url": self.url,
            "protocol": self.protocol,
            "qos": self.qos,
            "payload_size": self.payload_size,
            "clients": { "publishers": self.publishers, "subscribers": self.subscribers, "idle": self.idle },
            "rate_per_publisher": self.rate_per_publisher,
            "threads": self.threads,
            "connections": {
                "attempted": self.attempted,
                "connected": self.connected,
                "failed": self.setup_failed,
                "seconds": round3(self.connect_seconds),
                "rate_per_s": round3(self.connect_rate()),
                "time_ms": self.connect_time.to_json(1e-3),
            },
            "messages": {
                "sent": self.sent,
                "acknowledged": self.acknowledged,
                "expected": self.expected,
                "delivered": self.delivered,
                "lost": self.expected.map(|e| e.saturating_sub(self.delivered)),
                "delivered_pct": self.delivered_percent().map(round3),
                "untimed": self.untimed,
                "sent_per_s": round3(self.sent_per_second()),
                "delivered_per_s": round3(self.delivered_per_second()),
                "publish_seconds": round3(self.publish_seconds),
                "delivery_seconds": round3(self.delivery_seconds),
                "drain": self.drain.map(DrainEnd::as_str),
            },
            "latency_us": self.latency.to_json(1.0),
            "errors": reasons(&self.errors),
            "disconnects": reasons(&self.disconnects),
            "broker": self.broker.map(|b| b.to_json(messages)),
            "generator": self.generator.map(|g| g.to_json(messages)),
            "memory": self.memory.map(|m| json!({
                "connections": m.connections,
                "baseline_kib": m.baseline_kib,
                "idle_kib": m.idle_kib,
                "after_close_kib": m.after_close_kib,
                "kib_per_connection": m.kib_per_connection().map(round3),
                "after_close_vs_baseline": m.after_close_vs_baseline().map(round3),
            })),
            "measured_seconds": round3(self.measured_seconds),
            "bottleneck": self.bottleneck(),
            "cancelled": self.cancelled,
        })
    }

    /// A few lines for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let qos = self.qos.map(|q| format!(", QoS {q}")).unwrap_or_default();
        let size = self.payload_size.map(|s| format!(", {s} B")).unwrap_or_default();
        let rate = if self.publishers == 0 {
            String::new()
        } else if self.rate_per_publisher > 0.0 {
            format!(", {} msg/s per publisher", self.rate_per_publisher)
        } else {
            ", flat out".to_owned()
        };
        let _ = writeln!(
            out,
            "{}: {} publishers, {} subscribers, {} idle{qos}{size}{rate}; MQTT {} at {}{}",
            self.scenario,
            self.publishers,
            self.subscribers,
            self.idle,
            self.protocol,
            self.url,
            if self.cancelled { " (interrupted)" } else { "" }
        );
        let _ = writeln!(
            out,
            "connections  {} of {} in {:.2} s ({:.0}/s), CONNACK p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.connected,
            self.attempted,
            self.connect_seconds,
            self.connect_rate(),
            self.connect_time.p50 / 1e3,
            self.connect_time.p99 / 1e3,
            self.connect_time.max / 1e3,
        );
        if self.publishers + self.subscribers > 0 {
            let mut parts = Vec::new();
            if self.publishers > 0 {
                parts.push(format!("sent {} ({:.0}/s)", self.sent, self.sent_per_second()));
                if self.qos.is_some_and(|q| q > 0) {
                    parts.push(format!("acknowledged {}", self.acknowledged));
                }
            }
            if self.subscribers > 0 {
                let mut delivered = format!("delivered {}", self.delivered);
                if let (Some(expected), Some(pct)) = (self.expected, self.delivered_percent()) {
                    let _ = write!(delivered, " of {expected} ({pct:.3}%)");
                }
                let _ = write!(delivered, ", {:.0} deliveries/s", self.delivered_per_second());
                if self.drain == Some(DrainEnd::TimeLimit) {
                    delivered.push_str(" (still arriving when the run stopped waiting)");
                }
                parts.push(delivered);
            }
            let _ = writeln!(out, "messages     {}", parts.join(", "));
            let l = &self.latency;
            if l.count > 0 {
                let _ = writeln!(
                    out,
                    "latency      p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} timed)",
                    l.p50, l.p90, l.p99, l.p999, l.max, l.count
                );
            }
        }
        for (what, map) in [("errors", &self.errors), ("disconnects", &self.disconnects)] {
            let total: u64 = map.values().sum();
            let detail: Vec<String> = map.iter().map(|(reason, n)| format!("{reason} ({n})")).collect();
            let detail = if total == 0 { "none".to_owned() } else { format!("{total}: {}", detail.join("; ")) };
            let _ = writeln!(out, "{what:<12} {detail}");
        }
        let messages = self.messages();
        for (what, usage) in [("broker", self.broker), ("generator", self.generator)] {
            let Some(u) = usage else { continue };
            let per = u.cpu_us_per(messages).map(|us| format!(", {us:.2} µs/message")).unwrap_or_default();
            let busiest = u.busiest_thread.map(|t| format!(", busiest thread {:.0}%", t * 100.0)).unwrap_or_default();
            let _ = writeln!(
                out,
                "{what:<12} CPU {:.2} s ({:.2} cores{busiest}){per}, RSS {:.1} → {:.1} MiB (peak {:.1})",
                u.cpu_seconds,
                u.utilisation(),
                u.rss_start_kib as f64 / 1024.0,
                u.rss_end_kib as f64 / 1024.0,
                u.rss_peak_kib as f64 / 1024.0,
            );
        }
        if let Some(m) = self.memory {
            let _ = writeln!(
                out,
                "memory       baseline {:.1} MiB, {} idle connections {:.1} MiB ({:.2} KiB each), after closing {:.1} MiB ({:.2}× baseline)",
                m.baseline_kib as f64 / 1024.0,
                m.connections,
                m.idle_kib as f64 / 1024.0,
                m.kib_per_connection().unwrap_or(0.0),
                m.after_close_kib as f64 / 1024.0,
                m.after_close_vs_baseline().unwrap_or(0.0),
            );
        }
        let _ = writeln!(out, "bottleneck   {}", self.bottleneck());
        out
    }
}

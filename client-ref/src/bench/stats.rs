//! What every connection task reports to the run: counters (atomics, added once per read
//! or per batch of publications, not per message), latency and connect-time histograms
//! (HDR, recorded in batches under a lock), and the reasons of errors and disconnects.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency or connect time recorded: one hour, in nanoseconds (larger values are
/// clamped to it).
const HISTOGRAM_MAX_NS: u64 = 3_600_000_000_000;

/// Distinct reasons kept per kind; further ones are counted under "other".
const MAX_REASONS: usize = 64;

/// An HDR histogram of nanoseconds, 3 significant digits, 1 ns to 1 hour.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 3).expect("constant bounds: low ≥ 1, high ≥ 2 × low, 3 digits")
}

/// Reasons counted by text.
#[derive(Debug, Default)]
pub(crate) struct Reasons(Mutex<BTreeMap<String, u64>>);

impl Reasons {
    pub(crate) fn add(&self, reason: &str) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = map.get_mut(reason) {
            *count += 1;
        } else if map.len() < MAX_REASONS {
            map.insert(reason.to_owned(), 1);
        } else {
            *map.entry("other".to_owned()).or_default() += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn total(&self) -> u64 {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().sum()
    }
}

/// Counters and histograms shared by every connection of a run.
#[derive(Debug)]
pub(crate) struct Stats {
    /// Connection attempts started.
    pub attempted: AtomicU64,
    /// CONNACK accepted.
    pub connected: AtomicU64,
    /// Subscribers whose SUBACK granted every filter.
    pub subscribed: AtomicU64,
    /// Connections (or subscriptions) that failed before the load started.
    pub setup_failed: AtomicU64,
    /// Connections currently open (connected and not yet closed).
    pub open: AtomicU64,
    /// PUBLISH handed to the connection (written, for QoS 0).
    pub sent: AtomicU64,
    /// QoS 1/2 publications acknowledged (PUBACK, PUBCOMP) with a success code.
    pub acknowledged: AtomicU64,
    /// Messages received by subscribers.
    pub delivered: AtomicU64,
    /// Received messages without the benchmark's timestamp (no latency recorded).
    pub untimed: AtomicU64,
    /// When the last message arrived, in nanoseconds since the run's epoch (0: none yet).
    pub last_delivery_ns: AtomicU64,
    /// Connection failures, refusals and rejected publications or subscriptions.
    pub errors: Reasons,
    /// Connections lost after they were established, before the run closed them.
    pub disconnects: Reasons,
    latency: Mutex<Histogram<u64>>,
    connect_time: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            attempted: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
            setup_failed: AtomicU64::new(0),
            open: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            untimed: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            errors: Reasons::default(),
            disconnects: Reasons::default(),
            latency: Mutex::new(new_histogram()),
            connect_time: Mutex::new(new_histogram()),
        }
    }
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Record latencies (nanoseconds), one lock for the batch.
    pub(crate) fn record_latencies(&self, batch: &[u64]) {
        if batch.is_empty() {
            return;
        }
        let mut h = self.latency.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for &ns in batch {
            h.saturating_record(ns.clamp(1, HISTOGRAM_MAX_NS));
        }
    }

    pub(crate) fn record_connect_time(&self, time: Duration) {
        let ns = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX).clamp(1, HISTOGRAM_MAX_NS);
        self.connect_time.lock().unwrap_or_else(std::sync::PoisonError::into_inner).saturating_record(ns);
    }

    pub(crate) fn latency(&self) -> Histogram<u64> {
        self.latency.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn connect_times(&self) -> Histogram<u64> {
        self.connect_time.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_capped() {
        let reasons = Reasons::default();
        for i in 0..MAX_REASONS + 10 {
            reasons.add(&format!("r{i}"));
        }
        reasons.add("r0");
        let map = reasons.snapshot();
        assert_eq!(map.len(), MAX_REASONS + 1);
        assert_eq!(map.get("other"), Some(&10));
        assert_eq!(map.get("r0"), Some(&2));
        assert_eq!(reasons.total(), (MAX_REASONS + 11) as u64);
    }

    #[test]
    fn latencies_are_recorded_and_clamped() {
        let stats = Stats::default();
        stats.record_latencies(&[0, 1_000, 2_000, u64::MAX]);
        let h = stats.latency();
        assert_eq!(h.len(), 4);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= HISTOGRAM_MAX_NS - HISTOGRAM_MAX_NS / 1000);
    }
}

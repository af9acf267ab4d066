//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;
use std::time::Instant;

use crate::core::{Core, VERSION};

/// The broker's gauges and counters.
pub(super) fn render(core: &Core, now: Instant) -> String {
    let stats = core.stats();
    let clients = core.clients(now);
    let connected = clients.iter().filter(|c| c.connected).count();
    let queued: usize = clients.iter().map(|c| c.queued).sum();
    let inflight: usize = clients.iter().map(|c| c.inflight).sum();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    let version = VERSION.rsplit(' ').next().unwrap_or(VERSION);
    metric("mqttkit_build_info", "gauge", "Broker version (label).", "1".into());
    metric(
        "mqttkit_uptime_seconds",
        "gauge",
        "Seconds since the broker started.",
        now.saturating_duration_since(core.started()).as_secs().to_string(),
    );
    metric("mqttkit_connections", "gauge", "Open network connections.", core.connection_count().to_string());
    metric("mqttkit_clients_connected", "gauge", "Clients past CONNECT.", connected.to_string());
    metric("mqttkit_sessions", "gauge", "Sessions, connected or not.", core.session_count().to_string());
    metric("mqttkit_subscriptions", "gauge", "Subscriptions.", core.subscription_count().to_string());
    metric("mqttkit_retained_messages", "gauge", "Retained messages.", core.retained_count().to_string());
    metric("mqttkit_messages_queued", "gauge", "Messages waiting in sessions.", queued.to_string());
    metric("mqttkit_messages_inflight", "gauge", "QoS 1/2 messages not acknowledged yet.", inflight.to_string());
    metric(
        "mqttkit_messages_received_total",
        "counter",
        "PUBLISH packets received.",
        stats.messages_received.to_string(),
    );
    metric("mqttkit_messages_sent_total", "counter", "PUBLISH packets sent.", stats.messages_sent.to_string());
    metric(
        "mqttkit_messages_dropped_total",
        "counter",
        "Messages dropped (queue full, too large, expired).",
        stats.messages_dropped.to_string(),
    );
    metric("mqttkit_bytes_received_total", "counter", "Bytes received.", stats.bytes_received.to_string());
    metric("mqttkit_bytes_sent_total", "counter", "Bytes sent.", stats.bytes_sent.to_string());
    // The version as a label of the info metric.
    out = out.replacen("mqttkit_build_info 1", &format!("mqttkit_build_info{{version=\"{version}\"}} 1"), 1);
    out
}

//! `$SYS/broker/...` statistics.

use std::time::Instant;

/// Counters published under `$SYS/broker/`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// PUBLISH packets received.
    pub messages_received: u64,
    /// PUBLISH packets sent.
    pub messages_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Messages dropped (queue full, too large, expired).
    pub messages_dropped: u64,
}

/// One client in `$SYS/broker/clients/list`.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Client id.
    pub client_id: String,
    /// Whether a connection is attached.
    pub connected: bool,
    /// Peer address of the connection, if connected.
    pub peer: Option<String>,
    /// Protocol version.
    pub protocol: String,
    /// Keep alive in force, seconds (`None` while disconnected).
    pub keep_alive: Option<u16>,
    /// Topic filters subscribed to.
    pub subscriptions: Vec<String>,
    /// Messages queued.
    pub queued: usize,
}

/// Snapshot of the broker for `$SYS`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Counters.
    pub stats: Stats,
    /// Start time.
    pub started: Instant,
    /// Connected clients.
    pub clients_connected: usize,
    /// Sessions (connected or not).
    pub clients_total: usize,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Retained messages.
    pub retained: usize,
    /// Clients, when `sys_client_list` is on (the list names peers: off by default).
    pub clients: Option<Vec<ClientInfo>>,
}

/// The broker version string.
pub const VERSION: &str = concat!("mqttkit-broker ", env!("CARGO_PKG_VERSION"));

/// `(topic, payload)` pairs to publish (retained) at `now`.
pub fn topics(s: &Snapshot, now: Instant) -> Vec<(String, String)> {
    let uptime = now.saturating_duration_since(s.started).as_secs();
    let mut out = vec![
        ("$SYS/broker/version".to_owned(), VERSION.to_owned()),
        ("$SYS/broker/uptime".to_owned(), format!("{uptime} seconds")),
        ("$SYS/broker/clients/connected".to_owned(), s.clients_connected.to_string()),
        ("$SYS/broker/clients/total".to_owned(), s.clients_total.to_string()),
        ("$SYS/broker/messages/received".to_owned(), s.stats.messages_received.to_string()),
        ("$SYS/broker/messages/sent".to_owned(), s.stats.messages_sent.to_string()),
        ("$SYS/broker/messages/dropped".to_owned(), s.stats.messages_dropped.to_string()),
        ("$SYS/broker/bytes/received".to_owned(), s.stats.bytes_received.to_string()),
        ("$SYS/broker/bytes/sent".to_owned(), s.stats.bytes_sent.to_string()),
        ("$SYS/broker/subscriptions/count".to_owned(), s.subscriptions.to_string()),
        ("$SYS/broker/retained messages/count".to_owned(), s.retained.to_string()),
    ];
    if let Some(clients) = &s.clients {
        out.push(("$SYS/broker/clients/list".to_owned(), clients_json(clients)));
    }
    out
}

/// The client list as a JSON array.
pub fn clients_json(clients: &[ClientInfo]) -> String {
    let items: Vec<String> = clients
        .iter()
        .map(|c| {
            format!(
                "{{\"client_id\":{},\"connected\":{},\"peer\":{},\"protocol\":{},\"keep_alive\":{},\"subscriptions\":{},\"queued\":{}}}",
                json_str(&c.client_id),
                c.connected,
                c.peer.as_deref().map_or_else(|| "null".to_owned(), json_str),
                json_str(&c.protocol),
                c.keep_alive.map_or_else(|| "null".to_owned(), |k| k.to_string()),
                json_array(&c.subscriptions),
                c.queued
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn json_array(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| json_str(item)).collect();
    format!("[{}]", items.join(","))
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len().saturating_add(2));
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        let c = ClientInfo {
            client_id: "a\"b\\\u{1}".into(),
            connected: true,
            peer: None,
            protocol: "5.0".into(),
            keep_alive: Some(30),
            subscriptions: vec!["a/#".into(), "b".into()],
            queued: 0,
        };
        assert_eq!(
            clients_json(&[c]),
            r#"[{"client_id":"a\"b\\\u0001","connected":true,"peer":null,"protocol":"5.0","keep_alive":30,"subscriptions":["a/#","b"],"queued":0}]"#
        );
    }
}

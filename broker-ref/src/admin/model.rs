//! The JSON documents of the management API (also read back by `mqttkit-broker status`
//! and `clients`).

use serde::{Deserialize, Serialize};

/// `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// Broker name and version.
    pub version: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Start time, seconds since the Unix epoch.
    pub started_at: u64,
    /// The MQTT listeners.
    pub listeners: Vec<Listener>,
    /// Open network connections (including those not past CONNECT yet).
    pub connections: usize,
    /// Sessions, connected or not.
    pub sessions: usize,
    /// Subscriptions of all sessions.
    pub subscriptions: usize,
    /// Retained messages.
    pub retained: usize,
    /// PUBLISH packets received.
    pub messages_received: u64,
    /// PUBLISH packets sent.
    pub messages_sent: u64,
    /// Messages dropped (queues full, too large, expired).
    pub messages_dropped: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// The persistent store's file, if persistence is on.
    pub persistence: Option<String>,
}

/// One listener.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Listener {
    /// `mqtt`, `mqtts`, `ws` or `wss`.
    pub transport: String,
    /// Address and port.
    pub address: String,
}

/// `GET /api/v1/clients` (an array of these) and `/api/v1/clients/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Client {
    /// Client identifier.
    pub client_id: String,
    /// Whether it is connected (otherwise its session waits for it).
    pub connected: bool,
    /// User name.
    pub user: Option<String>,
    /// Peer address (connected clients).
    pub peer: Option<String>,
    /// Listener transport (connected clients).
    pub transport: Option<String>,
    /// `3.1`, `3.1.1` or `5.0`.
    pub protocol: String,
    /// Keep alive in force, seconds.
    pub keep_alive: Option<u16>,
    /// Session Expiry Interval in seconds; `null`: never expires.
    pub session_expiry: Option<u32>,
    /// When the current connection's CONNECT was accepted, seconds since the Unix epoch.
    pub connected_since: Option<u64>,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// QoS 1/2 messages sent, not acknowledged yet.
    pub inflight: usize,
    /// Messages waiting to be sent.
    pub queued: usize,
    /// Messages dropped for this session.
    pub dropped: u64,
    /// Bytes received on the current connection.
    pub bytes_in: u64,
    /// Bytes sent on the current connection.
    pub bytes_out: u64,
    /// PUBLISH packets received on the current connection.
    pub messages_in: u64,
    /// PUBLISH packets sent on the current connection.
    pub messages_out: u64,
}

/// One subscription (in a client, or in `GET /api/v1/subscriptions` with its client id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subscription {
    /// The subscribing client (in the subscription list only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The filter as subscribed (`$share/{group}/…` included).
    pub filter: String,
    /// Maximum QoS granted.
    pub qos: u8,
    /// 5.0 No Local.
    pub no_local: bool,
    /// 5.0 Retain As Published.
    pub retain_as_published: bool,
    /// 5.0 Subscription Identifier.
    pub subscription_id: Option<u32>,
}

/// `GET /api/v1/retained` (an array of these).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retained {
    /// Topic.
    pub topic: String,
    /// QoS.
    pub qos: u8,
    /// Payload size in bytes.
    pub size: usize,
    /// The payload: text when it is UTF-8, else Base64 (see `encoding`).
    pub payload: String,
    /// `utf-8` or `base64`.
    pub encoding: String,
    /// Seconds before it expires, if it has a Message Expiry Interval.
    pub expires_in: Option<u64>,
    /// The publisher's client id.
    pub publisher: Option<String>,
}

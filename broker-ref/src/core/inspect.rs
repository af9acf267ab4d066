//! What the management API shows of the broker: clients with their sessions and traffic,
//! retained messages. Read-only views built on request, plus the operator's actions that
//! are not protocol input (removing a retained message; disconnecting a client is in
//! `lifecycle`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqttkit_codec::QoS;

use super::Core;
use super::connection::Traffic;
use super::message::Message;
use super::subscriptions::SubOptions;

/// One session, connected or not, as the management API lists it.
#[derive(Debug, Clone)]
pub struct ClientDetail {
    /// Client identifier.
    pub client_id: Arc<str>,
    /// Whether a connection is attached.
    pub connected: bool,
    /// User name of the (last) connection.
    pub user: Option<Arc<str>>,
    /// Peer address while connected.
    pub peer: Option<SocketAddr>,
    /// Listener transport while connected (`mqtt`, `mqtts`, `ws`, `wss`).
    pub transport: Option<&'static str>,
    /// Protocol version (`3.1`, `3.1.1`, `5.0`).
    pub protocol: String,
    /// Keep alive in force, seconds, while connected.
    pub keep_alive: Option<u16>,
    /// Session Expiry Interval, seconds (`u32::MAX`: never).
    pub session_expiry: u32,
    /// How long ago the current connection's CONNECT was accepted.
    pub connected_for: Option<Duration>,
    /// Subscriptions: filter as sent, and the options granted.
    pub subscriptions: Vec<(String, SubOptions)>,
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub inflight: usize,
    /// Messages waiting (offline, or beyond the in-flight window).
    pub queued: usize,
    /// Messages dropped for this session (queue full, slow consumer).
    pub dropped: u64,
    /// Traffic of the current connection.
    pub traffic: Traffic,
}

/// A retained message as the management API lists it.
#[derive(Debug, Clone)]
pub struct RetainedDetail {
    /// Topic.
    pub topic: Arc<str>,
    /// QoS it was published with.
    pub qos: QoS,
    /// Payload.
    pub payload: bytes::Bytes,
    /// Seconds left before it expires (5.0 Message Expiry Interval).
    pub expires_in: Option<Duration>,
    /// Client id of the publisher, if a client published it.
    pub publisher: Option<Arc<str>>,
}

impl Core {
    /// Every session, sorted by client id.
    pub fn clients(&self, now: Instant) -> Vec<ClientDetail> {
        let mut clients: Vec<ClientDetail> = self.sessions.values().map(|s| self.client_detail(s, now)).collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        clients
    }

    /// The session of `client_id`.
    pub fn client(&self, client_id: &str, now: Instant) -> Option<ClientDetail> {
        self.sessions.get(client_id).map(|s| self.client_detail(s, now))
    }

    fn client_detail(&self, session: &super::session::Session, now: Instant) -> ClientDetail {
        let conn = session.conn.and_then(|id| self.conns.get(&id));
        ClientDetail {
            client_id: session.client_id.clone(),
            connected: conn.is_some(),
            user: session.user.clone(),
            peer: conn.map(|c| c.peer),
            transport: conn.map(|c| c.transport),
            protocol: session.version.to_string(),
            keep_alive: conn.map(|c| c.keep_alive),
            session_expiry: session.expiry_interval,
            connected_for: conn.map(|c| now.saturating_duration_since(c.since)),
            subscriptions: session.subscriptions.iter().map(|(f, o)| (f.as_str().to_owned(), *o)).collect(),
            inflight: session.flow().map_or(0, |f| f.inflight.len()),
            queued: session.queued(),
            dropped: session.dropped,
            traffic: conn.map(|c| c.traffic).unwrap_or_default(),
        }
    }

    /// Number of subscriptions (shared group memberships included).
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// When the core started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Every retained message that has not expired, sorted by topic.
    pub fn retained_messages(&self, now: Instant) -> Vec<RetainedDetail> {
        self.retained.iter(now).map(|m| retained_detail(m, now)).collect()
    }

    /// Remove the retained message of `topic` (as an empty retained PUBLISH would);
    /// whether there was one.
    pub fn remove_retained(&mut self, topic: &str) -> bool {
        let removed = self.retained.remove(topic);
        if removed {
            self.retained_changed(topic);
        }
        removed
    }
}

fn retained_detail(m: &Arc<Message>, now: Instant) -> RetainedDetail {
    RetainedDetail {
        topic: m.topic.clone(),
        qos: m.qos,
        payload: m.payload.clone(),
        expires_in: m.expires_at.map(|at| at.saturating_duration_since(now)),
        publisher: m.publisher.clone(),
    }
}

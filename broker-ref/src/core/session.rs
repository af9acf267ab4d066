//! Session state (§4.1): subscriptions, outgoing in-flight window and queue, incoming
//! QoS 2 packet identifiers, expiry.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use mqttkit_codec::ProtocolVersion;

use super::ConnId;
use super::inflight::Inflight;
use super::message::Delivery;
use super::subscriptions::{SubOptions, SubscriptionFilter};

/// Session Expiry Interval meaning "never expires".
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// The state of one client session.
#[derive(Debug)]
pub struct Session {
    /// Client identifier.
    pub client_id: Arc<str>,
    /// The connection currently attached, if any.
    pub conn: Option<ConnId>,
    /// Protocol version of the last connection.
    pub version: ProtocolVersion,
    /// Subscriptions by filter (looked up by the text as sent, `$share/g/` included).
    pub subscriptions: BTreeMap<SubscriptionFilter, SubOptions>,
    /// Session Expiry Interval in seconds (3.1.1: 0 for clean sessions, never otherwise).
    pub expiry_interval: u32,
    /// When a disconnected session expires.
    pub expires_at: Option<Instant>,
    /// Outgoing QoS 1/2 messages awaiting acknowledgement.
    pub inflight: Inflight,
    /// Messages waiting for the in-flight window or for the client to reconnect.
    pub queue: VecDeque<Delivery>,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
    /// Incoming QoS 2 packet identifiers whose PUBREL has not arrived yet.
    pub incoming_qos2: BTreeSet<u16>,
}

impl Session {
    /// A new empty session.
    pub fn new(client_id: Arc<str>, version: ProtocolVersion) -> Self {
        Self {
            client_id,
            conn: None,
            version,
            subscriptions: BTreeMap::new(),
            expiry_interval: 0,
            expires_at: None,
            inflight: Inflight::default(),
            queue: VecDeque::new(),
            dropped: 0,
            incoming_qos2: BTreeSet::new(),
        }
    }

    /// Queue a delivery. Drop policy: when `limit` messages are queued, the new message is
    /// dropped (drop-newest) and counted in `dropped`. Returns whether it was queued.
    pub fn enqueue(&mut self, delivery: Delivery, limit: usize) -> bool {
        if self.queue.len() >= limit {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        self.queue.push_back(delivery);
        true
    }
}

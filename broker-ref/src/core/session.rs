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
    /// User name of the last connection (for the ACL while it is offline).
    pub user: Option<Arc<str>>,
    /// Subscriptions by filter (looked up by the text as sent, `$share/g/` included).
    pub subscriptions: BTreeMap<SubscriptionFilter, SubOptions>,
    /// Session Expiry Interval in seconds (3.1.1: 0 for clean sessions, never otherwise).
    pub expiry_interval: u32,
    /// When a disconnected session expires.
    pub expires_at: Option<Instant>,
    /// QoS 1/2 state, allocated while there is some (most sessions are idle).
    pub(super) flow: Option<Box<Flow>>,
    /// Messages dropped (queue full, outbound queue full).
    pub dropped: u64,
    /// The last packet identifier used, kept while `flow` is released (identifiers keep
    /// increasing).
    pub(super) last_packet_id: u16,
    /// The number the next queued message gets ([`Delivery::seq`]).
    pub(super) next_seq: u64,
}

/// The QoS 1/2 state of a session.
#[derive(Debug, Default)]
pub struct Flow {
    /// Outgoing QoS 1/2 messages awaiting acknowledgement.
    pub inflight: Inflight,
    /// Messages waiting for the in-flight window or for the client to reconnect.
    pub queue: VecDeque<Delivery>,
    /// Incoming QoS 2 packet identifiers whose PUBREL has not arrived yet.
    pub incoming_qos2: BTreeSet<u16>,
}

impl Flow {
    fn is_idle(&self) -> bool {
        self.inflight.len() == 0 && self.queue.is_empty() && self.incoming_qos2.is_empty()
    }
}

impl Session {
    /// A new empty session.
    pub fn new(client_id: Arc<str>, version: ProtocolVersion) -> Self {
        Self {
            client_id,
            conn: None,
            version,
            user: None,
            subscriptions: BTreeMap::new(),
            expiry_interval: 0,
            expires_at: None,
            flow: None,
            dropped: 0,
            last_packet_id: 0,
            next_seq: 1,
        }
    }

    /// The QoS 1/2 state, if any.
    pub fn flow(&self) -> Option<&Flow> {
        self.flow.as_deref()
    }

    /// The QoS 1/2 state, created if there is none.
    pub fn flow_mut(&mut self) -> &mut Flow {
        let last = self.last_packet_id;
        self.flow.get_or_insert_with(|| Box::new(Flow { inflight: Inflight::after(last), ..Flow::default() }))
    }

    /// Release the QoS 1/2 state once nothing is in it.
    pub fn release_idle_flow(&mut self) {
        if let Some(flow) = self.flow.take_if(|f| f.is_idle()) {
            self.last_packet_id = flow.inflight.last_id();
        }
    }

    /// Messages queued.
    pub fn queued(&self) -> usize {
        self.flow().map_or(0, |f| f.queue.len())
    }

    /// Queue a delivery. Drop policy: when `limit` messages are queued, the new message is
    /// dropped (drop-newest) and counted in `dropped`. Returns whether it was queued.
    pub fn enqueue(&mut self, mut delivery: Delivery, limit: usize) -> bool {
        if self.queued() >= limit {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        delivery.seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.flow_mut().queue.push_back(delivery);
        true
    }
}

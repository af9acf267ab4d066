//! What the persistent store holds: plain records, one per client and one per retained
//! topic, encoded with `postcard`. Times are wall-clock milliseconds since the Unix epoch
//! (a restart keeps deadlines: a session that had one minute left when the broker stopped
//! has one minute minus the downtime when it starts again).

use serde::{Deserialize, Serialize};

/// An application message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS it was published with.
    pub qos: u8,
    /// RETAIN flag it was published with.
    pub retain: bool,
    /// Forwarded 5.0 properties, encoded.
    pub props: Vec<u8>,
    /// When it expires (5.0 Message Expiry Interval).
    pub expires_at_ms: Option<u64>,
    /// The publisher's client id.
    pub publisher: Option<String>,
}

/// A message on its way to one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The message.
    pub message: MessageRecord,
    /// QoS of this delivery.
    pub qos: u8,
    /// RETAIN flag of this delivery.
    pub retain: bool,
    /// Subscription identifiers.
    pub sub_ids: Vec<u32>,
}

/// Where a message of a session is: waiting, or sent with a packet identifier and not
/// acknowledged yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryState {
    /// Waiting to be sent.
    Queued,
    /// QoS 1 PUBLISH sent with this packet identifier, PUBACK awaited.
    Qos1Sent(u16),
    /// QoS 2 PUBLISH sent, PUBREC awaited.
    Qos2Sent(u16),
    /// PUBREL sent, PUBCOMP awaited.
    Released(u16),
}

/// A change to one message of a session (key: client id and the message's number in
/// the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryChange {
    /// New (with its message) or moved to another state (without).
    Put(EntryState, Option<DeliveryRecord>),
    /// Acknowledged, dropped, or its session ended.
    Delete,
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// The filter as subscribed.
    pub filter: String,
    /// Whether it is a 5.0 shared subscription (`$share/...` subscribed in 5.0).
    pub shared: bool,
    /// Granted QoS.
    pub qos: u8,
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: u8,
    /// Subscription Identifier.
    pub sub_id: Option<u32>,
}

/// A persistent session (Session Expiry Interval above 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Protocol level of its last connection (3, 4, 5).
    pub protocol_level: u8,
    /// User name of its last connection.
    pub user: Option<String>,
    /// Session Expiry Interval, seconds (`u32::MAX`: never).
    pub expiry_interval: u32,
    /// When it expires, if it is disconnected and expires (`None` while connected: the
    /// interval then counts from the restart).
    pub expires_at_ms: Option<u64>,
    /// Subscriptions.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// The last packet identifier used.
    pub last_packet_id: u16,
    /// The number the next queued message gets. Its messages are records of their own
    /// (one per message, so that a batch writes what changed, not the whole queue).
    pub next_seq: u64,
    /// Incoming QoS 2 packet identifiers awaiting PUBREL (a re-sent PUBLISH with one of
    /// them is not delivered again).
    pub incoming_qos2: Vec<u16>,
}

/// A will message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WillRecord {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS.
    pub qos: u8,
    /// Will Retain.
    pub retain: bool,
    /// Forwarded properties.
    pub props: Vec<u8>,
    /// Message Expiry Interval, seconds.
    pub expiry: Option<u32>,
    /// Will Delay Interval, seconds.
    pub delay: u32,
    /// Pending (its connection closed): when it is due. `None`: its connection was open
    /// when this was written, so a restart ends that connection and the will follows.
    pub due_at_ms: Option<u64>,
}

/// Everything stored about one client id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Its persistent session.
    pub session: Option<SessionRecord>,
    /// Its will, pending or of the open connection.
    pub will: Option<WillRecord>,
}

/// Changes to write in one transaction; `None` deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Sequence number (answered by the writer).
    pub id: u64,
    /// Client records by client id.
    pub clients: Vec<(String, Option<ClientRecord>)>,
    /// Messages of sessions, by client id and number.
    pub entries: Vec<(String, u64, EntryChange)>,
    /// Retained messages by topic.
    pub retained: Vec<(String, Option<MessageRecord>)>,
}

/// What a store held when the broker started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Client records.
    pub clients: Vec<(String, ClientRecord)>,
    /// Messages of sessions: client id, number, state, message (in key order).
    pub entries: Vec<(String, u64, EntryState, DeliveryRecord)>,
    /// Retained messages.
    pub retained: Vec<MessageRecord>,
}

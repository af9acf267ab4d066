//! Will messages (§3.1.2.5, §3.1.3.2): kept per connection, published on abnormal close,
//! possibly after the Will Delay Interval.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit_codec::{QoS, Will};

use super::message::Message;

/// A will as received in CONNECT.
#[derive(Debug, Clone)]
pub struct WillMessage {
    /// Topic.
    pub topic: Arc<str>,
    /// Payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// Forwarded properties.
    pub props: Bytes,
    /// Message Expiry Interval in seconds, applied when published.
    pub expiry: Option<u32>,
    /// Will Delay Interval in seconds.
    pub delay: u32,
}

impl WillMessage {
    /// From a CONNECT's will.
    pub fn from_connect(will: &Will<'_>) -> Self {
        Self {
            topic: Arc::from(will.topic.as_str()),
            payload: Bytes::copy_from_slice(will.payload),
            qos: will.qos,
            retain: will.retain,
            props: Message::forwarded_properties(&will.properties),
            expiry: will.properties.message_expiry_interval(),
            delay: will.properties.will_delay_interval().unwrap_or(0),
        }
    }

    /// The message to publish at `now` on behalf of `client`.
    pub fn into_message(self, client: Arc<str>, now: Instant) -> Message {
        Message {
            topic: self.topic,
            payload: self.payload,
            qos: self.qos,
            // "If the Will Flag is set to 1 and Will Retain is set to 1, the Server MUST
            // publish the Will Message as a retained message" [MQTT-3.1.2-15]; otherwise
            // as a non-retained message [MQTT-3.1.2-14].
            retain: self.retain,
            props: self.props,
            expires_at: self.expiry.map(|s| now.checked_add(Duration::from_secs(u64::from(s))).unwrap_or(now)),
            publisher: Some(client),
        }
    }
}

/// Wills waiting for their delay to pass, by client id, with a deadline index so that the
/// next deadline and the due wills are found in O(log n).
#[derive(Debug, Default)]
pub struct PendingWills {
    wills: BTreeMap<Arc<str>, (Instant, WillMessage)>,
    by_deadline: BTreeSet<(Instant, Arc<str>)>,
}

impl PendingWills {
    /// Schedule a will (replacing a pending one of the same client).
    pub fn schedule(&mut self, client: Arc<str>, at: Instant, will: WillMessage) {
        if let Some((old, _)) = self.wills.insert(client.clone(), (at, will)) {
            self.by_deadline.remove(&(old, client.clone()));
        }
        self.by_deadline.insert((at, client));
    }

    /// The pending will of `client` and when it is due.
    pub fn get(&self, client: &str) -> Option<(Instant, &WillMessage)> {
        self.wills.get(client).map(|(at, will)| (*at, will))
    }

    /// Whether `client` has a pending will.
    pub fn contains(&self, client: &str) -> bool {
        self.wills.contains_key(client)
    }

    /// Cancel and return the will of `client`.
    pub fn take(&mut self, client: &str) -> Option<WillMessage> {
        let (key, (at, will)) = self.wills.remove_entry(client)?;
        self.by_deadline.remove(&(at, key));
        Some(will)
    }

    /// Wills due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<(Arc<str>, WillMessage)> {
        let mut due = Vec::new();
        while let Some((at, client)) = self.by_deadline.first().cloned()
            && at <= now
        {
            self.by_deadline.remove(&(at, client.clone()));
            if let Some((_, will)) = self.wills.remove(&client) {
                due.push((client, will));
            }
        }
        due
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// Number of pending wills.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.wills.len(), self.by_deadline.len());
        self.wills.len()
    }
}

//! The retained message store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use mqttkit_codec::filter_matches;

use super::message::Message;

/// Retained messages by topic name.
#[derive(Debug, Default)]
pub struct RetainedStore {
    messages: BTreeMap<Arc<str>, Arc<Message>>,
}

impl RetainedStore {
    /// Store, replace or clear the retained message of `msg.topic`.
    pub fn update(&mut self, msg: &Arc<Message>) {
        if msg.payload.is_empty() {
            // "If the Payload contains zero bytes it is processed normally by the Server
            // but any retained message with the same topic name MUST be removed"
            // [MQTT-3.3.1-6]; "A retained message with a Payload containing zero bytes
            // MUST NOT be stored" [MQTT-3.3.1-7].
            self.messages.remove(&msg.topic);
        } else {
            // "the Server MUST replace any existing retained message for this topic and
            // store the Application Message" [MQTT-3.3.1-5].
            self.messages.insert(msg.topic.clone(), msg.clone());
        }
    }

    /// Retained messages whose topic matches `filter` (expired ones are removed).
    pub fn matching(&mut self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        self.messages.retain(|_, m| !m.is_expired(now));
        self.messages.values().filter(|m| filter_matches(filter, &m.topic)).cloned().collect()
    }

    /// Every retained message that has not expired, by topic.
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = &Arc<Message>> {
        self.messages.values().filter(move |m| !m.is_expired(now))
    }

    /// The retained message of `topic`.
    pub fn get(&self, topic: &str) -> Option<&Arc<Message>> {
        self.messages.get(topic)
    }

    /// Store a message as it was (restoring from the persistent store).
    pub fn restore(&mut self, msg: Arc<Message>) {
        self.messages.insert(msg.topic.clone(), msg);
    }

    /// Remove the retained message of `topic`; whether there was one.
    pub fn remove(&mut self, topic: &str) -> bool {
        self.messages.remove(topic).is_some()
    }

    /// Number of retained messages.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.messages.len()
    }
}

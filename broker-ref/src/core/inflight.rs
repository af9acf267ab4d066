//! Outgoing QoS 1 / 2 messages awaiting acknowledgement, in the order they were sent.

use mqttkit_codec::PacketId;

use super::message::Delivery;

/// Where an outgoing message is in its acknowledgement flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    Qos1Sent,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    Qos2Sent,
    /// PUBREL sent, waiting for PUBCOMP.
    Released,
}

/// One unacknowledged outgoing message.
#[derive(Debug, Clone)]
pub struct OutFlight {
    /// Packet identifier.
    pub id: PacketId,
    /// Acknowledgement state.
    pub state: OutState,
    /// The message.
    pub delivery: Delivery,
    /// Sent on an earlier connection and not yet re-sent on the current one.
    pub resend: bool,
}

/// The in-flight window of one session.
#[derive(Debug, Default)]
pub struct Inflight {
    entries: Vec<OutFlight>,
    next_id: u16,
}

impl Inflight {
    /// Number of unacknowledged messages (PUBREL-pending ones included).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// "the sender MUST assign an unused Packet Identifier each time it has a new
    /// Application Message to publish" [MQTT-4.3.2-1], [MQTT-4.3.3-1].
    pub fn allocate_id(&mut self) -> Option<PacketId> {
        for _ in 0..=u16::MAX {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            let candidate = PacketId::new(self.next_id)?;
            if !self.entries.iter().any(|e| e.id == candidate) {
                return Some(candidate);
            }
        }
        None
    }

    /// Record a sent message.
    pub fn push(&mut self, id: PacketId, state: OutState, delivery: Delivery) {
        self.entries.push(OutFlight { id, state, delivery, resend: false });
    }

    /// Unacknowledged messages sent on the current connection.
    pub fn on_wire(&self) -> usize {
        self.entries.iter().filter(|e| !e.resend).count()
    }

    /// After a reconnect: every entry has to be sent again, in order.
    pub fn mark_all_for_resend(&mut self) {
        for e in &mut self.entries {
            e.resend = true;
        }
    }

    /// The oldest entry waiting to be re-sent, now marked as sent.
    pub fn take_resend(&mut self) -> Option<OutFlight> {
        let e = self.entries.iter_mut().find(|e| e.resend)?;
        e.resend = false;
        Some(e.clone())
    }

    /// The state of `id`.
    pub fn state(&self, id: PacketId) -> Option<OutState> {
        self.entries.iter().find(|e| e.id == id).map(|e| e.state)
    }

    /// Move `id` to `state`.
    pub fn set_state(&mut self, id: PacketId, state: OutState) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
            e.state = state;
        }
    }

    /// Remove `id`; returns whether it was there.
    pub fn remove(&mut self, id: PacketId) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        before != self.entries.len()
    }
}

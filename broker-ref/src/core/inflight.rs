//! Outgoing QoS 1 / 2 messages awaiting acknowledgement, in the order they were sent.
//!
//! Windows can be large (a 5.0 client that sends no Receive Maximum allows 65,535), so
//! every operation is O(1) in the usual case: acknowledgements arrive mostly in order and
//! are looked up from the oldest entry; packet identifiers are allocated in increasing
//! order, so the ones in use lie between the oldest and the newest entry's.

use std::collections::VecDeque;

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

/// Packet identifiers: 1 to 65,535.
const IDS: u32 = 65_535;

/// The in-flight window of one session.
#[derive(Debug, Default)]
pub struct Inflight {
    entries: VecDeque<OutFlight>,
    /// Entries with `resend` set: always the newest ones (nothing new is sent while
    /// re-sends are pending).
    resend_pending: usize,
    next_id: u16,
}

impl Inflight {
    /// An empty window whose next identifier follows `last`.
    pub fn after(last: u16) -> Self {
        Self { next_id: last, ..Self::default() }
    }

    /// The last identifier allocated (0: none yet).
    pub fn last_id(&self) -> u16 {
        self.next_id
    }

    /// Number of unacknowledged messages (PUBREL-pending ones included).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// "the sender MUST assign an unused Packet Identifier each time it has a new
    /// Application Message to publish" [MQTT-4.3.2-1], [MQTT-4.3.3-1].
    pub fn allocate_id(&mut self) -> Option<PacketId> {
        if self.entries.len() >= IDS as usize {
            return None;
        }
        for _ in 0..IDS {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            let candidate = PacketId::new(self.next_id)?;
            if !self.in_use(candidate) {
                return Some(candidate);
            }
        }
        None
    }

    fn in_use(&self, id: PacketId) -> bool {
        let (Some(first), Some(last)) = (self.entries.front(), self.entries.back()) else { return false };
        let distance = |from: PacketId, to: PacketId| (u32::from(to.get()) + IDS - u32::from(from.get())) % IDS;
        // Outside the span of identifiers in flight: free without looking.
        distance(first.id, id) <= distance(first.id, last.id) && self.position(id).is_some()
    }

    fn position(&self, id: PacketId) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &OutFlight> {
        self.entries.iter()
    }

    /// Record a sent message.
    pub fn push(&mut self, id: PacketId, state: OutState, delivery: Delivery) {
        self.entries.push_back(OutFlight { id, state, delivery, resend: false });
    }

    /// Unacknowledged messages sent on the current connection.
    pub fn on_wire(&self) -> usize {
        self.entries.len().saturating_sub(self.resend_pending)
    }

    /// Whether entries sent on an earlier connection wait to be re-sent.
    pub fn has_resend(&self) -> bool {
        self.resend_pending > 0
    }

    /// After a reconnect: every entry has to be sent again, in order.
    pub fn mark_all_for_resend(&mut self) {
        for e in &mut self.entries {
            e.resend = true;
        }
        self.resend_pending = self.entries.len();
    }

    /// The oldest entry waiting to be re-sent, now marked as sent.
    pub fn take_resend(&mut self) -> Option<OutFlight> {
        if self.resend_pending == 0 {
            return None;
        }
        let first = self.entries.len().saturating_sub(self.resend_pending);
        let index = match self.entries.get(first) {
            Some(e) if e.resend => first,
            _ => self.entries.iter().position(|e| e.resend)?,
        };
        let e = self.entries.get_mut(index)?;
        e.resend = false;
        self.resend_pending -= 1;
        Some(e.clone())
    }

    /// The state of `id`.
    pub fn state(&self, id: PacketId) -> Option<OutState> {
        self.position(id).and_then(|i| self.entries.get(i)).map(|e| e.state)
    }

    /// Move `id` to `state`.
    pub fn set_state(&mut self, id: PacketId, state: OutState) {
        if let Some(e) = self.position(id).and_then(|i| self.entries.get_mut(i)) {
            e.state = state;
        }
    }

    /// Remove `id`; returns whether it was there.
    pub fn remove(&mut self, id: PacketId) -> bool {
        let Some(removed) = self.position(id).and_then(|i| self.entries.remove(i)) else { return false };
        if removed.resend {
            self.resend_pending -= 1;
        }
        if self.entries.is_empty() {
            // Release the window's memory once nothing is in flight.
            self.entries = VecDeque::new();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use mqttkit_codec::QoS;

    use super::*;
    use crate::core::message::Message;

    fn delivery() -> Delivery {
        let msg = Arc::new(Message::new("t", Bytes::new(), QoS::AtLeastOnce, false));
        Delivery { msg, qos: QoS::AtLeastOnce, retain: false, sub_ids: Vec::new(), seq: 0 }
    }

    #[test]
    fn identifiers_wrap_and_skip_those_in_flight() {
        let mut w = Inflight::default();
        let first = w.allocate_id().unwrap();
        w.push(first, OutState::Qos1Sent, delivery());
        // Fill all but one identifier, acknowledging none: the next ones are allocated in
        // order, then the window is full.
        for _ in 1..65_534 {
            let id = w.allocate_id().unwrap();
            w.push(id, OutState::Qos1Sent, delivery());
        }
        assert_eq!(w.len(), 65_534);
        let last = w.allocate_id().unwrap();
        assert_eq!(last.get(), 65_535);
        w.push(last, OutState::Qos1Sent, delivery());
        assert_eq!(w.allocate_id(), None);
        // Freeing one in the middle makes exactly that one available.
        assert!(w.remove(PacketId::new(300).unwrap()));
        assert_eq!(w.allocate_id(), PacketId::new(300));
    }

    #[test]
    fn resends_in_order_within_the_counts() {
        let mut w = Inflight::default();
        for _ in 0..5 {
            let id = w.allocate_id().unwrap();
            w.push(id, OutState::Qos1Sent, delivery());
        }
        w.mark_all_for_resend();
        assert_eq!(w.on_wire(), 0);
        assert!(w.remove(PacketId::new(2).unwrap()), "acknowledged before it was re-sent");
        let order: Vec<u16> = std::iter::from_fn(|| w.take_resend()).map(|e| e.id.get()).collect();
        assert_eq!(order, [1, 3, 4, 5]);
        assert_eq!(w.on_wire(), 4);
    }
}

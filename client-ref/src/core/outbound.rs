//! Outgoing publications: packet identifiers, the in-flight window (the server's Receive
//! Maximum) and the queue behind it. Part of the session state (§4.1): it survives
//! reconnections while the server keeps the session.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use mqttkit_codec::{PacketId, QoS, ReasonCode};

use crate::message::Publication;

/// Where an in-flight publication is in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    AwaitAck,
    /// PUBREL sent; waiting for PUBCOMP (QoS 2).
    AwaitComp,
}

/// A QoS 1/2 publication that holds a packet identifier.
#[derive(Debug)]
pub(crate) struct Inflight {
    /// Send order, for re-sending in the original order \[MQTT-5.0: 4.6.0-1\].
    pub seq: u64,
    pub tag: Option<u64>,
    pub publication: Publication,
    pub stage: Stage,
    /// The PUBREC reason code (QoS 2), reported when PUBCOMP arrives.
    pub rec_code: ReasonCode,
}

/// A publication waiting for a connection or for room in the window.
#[derive(Debug)]
pub(crate) struct Queued {
    pub tag: Option<u64>,
    pub publication: Publication,
}

/// Multiplicative hashing for 16-bit packet identifiers (spreads them over the whole
/// hash, which SipHash would do at ten times the cost).
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type IdMap<V> = HashMap<u16, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default)]
pub(crate) struct Outbound {
    pub inflight: IdMap<Inflight>,
    pub queue: VecDeque<Queued>,
    next_seq: u64,
    next_id: u16,
}

impl Outbound {
    /// A currently unused, non-zero packet identifier: "Each time a Client sends a new
    /// packet of one of these types it MUST assign it a currently unused Packet
    /// Identifier" \[MQTT-3.1.1: 2.3.1-2\] \[MQTT-5.0: 2.2.1-3\]. `also_used` covers the
    /// identifiers held by SUBSCRIBE / UNSUBSCRIBE.
    pub fn allocate_id(&mut self, also_used: impl Fn(u16) -> bool) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            let id = self.next_id;
            if !self.inflight.contains_key(&id) && !also_used(id) {
                return PacketId::new(id);
            }
        }
        None
    }

    /// Record a publication just sent with `id`.
    pub fn insert(&mut self, id: PacketId, tag: Option<u64>, publication: Publication) {
        self.next_seq = self.next_seq.wrapping_add(1);
        let entry =
            Inflight { seq: self.next_seq, tag, publication, stage: Stage::AwaitAck, rec_code: ReasonCode::SUCCESS };
        self.inflight.insert(id.get(), entry);
    }

    /// Whether the next queued publication may be sent with `quota` QoS 1/2 packets
    /// allowed in flight.
    pub fn front_fits(&self, quota: usize) -> bool {
        match self.queue.front() {
            Some(q) if q.publication.qos == QoS::AtMostOnce => true,
            Some(_) => self.inflight.len() < quota,
            None => false,
        }
    }

    /// The in-flight identifiers in the order their PUBLISH was first sent.
    pub fn in_send_order(&self) -> Vec<u16> {
        let mut ids: Vec<(u64, u16)> = self.inflight.iter().map(|(id, e)| (e.seq, *id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// The session ended on the server: publications whose PUBLISH was never
    /// acknowledged go back to the head of the queue, in their original order, to be sent
    /// as new messages; those already past PUBREC are complete and returned.
    pub fn restart_session(&mut self) -> Vec<Inflight> {
        let mut done = Vec::new();
        let mut resend = Vec::new();
        for id in self.in_send_order() {
            if let Some(entry) = self.inflight.remove(&id) {
                match entry.stage {
                    Stage::AwaitAck => resend.push(Queued { tag: entry.tag, publication: entry.publication }),
                    Stage::AwaitComp => done.push(entry),
                }
            }
        }
        for q in resend.into_iter().rev() {
            self.queue.push_front(q);
        }
        done
    }
}

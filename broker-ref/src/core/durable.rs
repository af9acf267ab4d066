//! Persistence hooks of the core (sans-IO: the store itself is [`crate::persist`]).
//!
//! **What changed.** With `persistence` configured the core notes, before it answers, the
//! clients whose durable state it is about to change (a persistent session's
//! subscriptions, queue, in-flight window, incoming QoS 2 ids, expiry; a will) and the
//! retained topics. [`Core::take_batch`] turns them into records ([`Batch`]), at most one
//! batch in flight at a time, so batches grow with the load (group commit).
//!
//! **Write barrier.** Nothing the core sends may promise what the store does not hold yet:
//! a PUBACK, PUBREC, PUBCOMP, SUBACK or CONNACK, but also a PUBLISH to a subscriber (after
//! a crash a QoS 2 message already delivered must not be delivered again). So while a
//! change is unwritten, bytes queued for any connection are held; [`Core::batch_written`]
//! releases what was queued before its batch was taken. Connections closed meanwhile get
//! their Close once their bytes may go. With nothing unwritten, bytes go out at once (a
//! broker whose clients use clean sessions and no retained messages never waits).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqttkit_codec::QoS;

use super::inflight::OutState;
use super::message::{Delivery, Message};
use super::outputs::Output;
use super::session::{NEVER_EXPIRES, Session};
use super::will::WillMessage;
use super::{ConnId, Core};
use crate::persist::model::{
    Batch, ClientRecord, DeliveryRecord, EntryChange, EntryState, MessageRecord, SessionRecord, SubscriptionRecord,
    WillRecord,
};

/// The durable-state bookkeeping of a core with persistence.
#[derive(Debug, Default)]
pub(super) struct Durability {
    /// Clients whose record has to be rewritten.
    dirty_clients: HashSet<Arc<str>>,
    /// Retained topics whose record has to be rewritten.
    dirty_retained: BTreeSet<Arc<str>>,
    /// The record of each client as the store has it (an unchanged one is not written
    /// again).
    stored: HashMap<Arc<str>, ClientRecord>,
    /// The messages of each session as the store has them: number → state.
    entries: HashMap<Arc<str>, BTreeMap<u64, EntryState>>,
    /// The batch being written, if any.
    in_flight: Option<u64>,
    next_batch: u64,
    /// What is held back and not yet part of a batch, in the order it happened (so that
    /// releasing it gives the I/O layer the same sequence as without persistence).
    held: Vec<Held>,
    /// The connections in `held`.
    held_conns: HashSet<ConnId>,
    /// For the batch in flight: what it releases (a connection: up to how many bytes).
    releases: Vec<(Held, u64)>,
}

/// Something waiting for the store.
#[derive(Debug)]
enum Held {
    /// Bytes queued for a connection.
    Bytes(ConnId),
    /// A connection closed (with its last bytes).
    Close(Output),
}

impl Durability {
    /// Whether bytes queued now must wait for a batch.
    fn holding(&self) -> bool {
        self.in_flight.is_some() || !self.dirty_clients.is_empty() || !self.dirty_retained.is_empty()
    }
}

/// Whether sending `packet` tells the client something the store must hold first: an
/// acknowledgement (its message is in the sessions it was routed to; a QoS 2 id is
/// remembered), SUBACK / UNSUBACK, CONNACK (the session), a QoS 2 PUBLISH or a PUBREL to
/// a subscriber (after a crash it must not be delivered twice). A QoS 0 or 1 PUBLISH
/// promises nothing (a crash can at most repeat a QoS 1 message, which QoS 1 allows), so
/// a subscriber that acknowledges at once may never have its messages written at all.
pub(super) fn promises_state(packet: &mqttkit_codec::Packet<'_>) -> bool {
    use mqttkit_codec::Packet;
    match packet {
        Packet::Publish(p) => p.qos.qos() == QoS::ExactlyOnce,
        Packet::PingResp => false,
        _ => true,
    }
}

/// Instants as wall-clock milliseconds and back, around one moment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) now: Instant,
    pub(super) wall_ms: u64,
}

impl Clock {
    pub(super) fn to_wall(self, at: Instant) -> u64 {
        match at.checked_duration_since(self.now) {
            Some(ahead) => self.wall_ms.saturating_add(millis(ahead)),
            None => self.wall_ms.saturating_sub(millis(self.now.saturating_duration_since(at))),
        }
    }

    /// The instant of a wall-clock time (`now` if it has passed).
    pub(super) fn to_instant(self, wall_ms: u64) -> Instant {
        let ahead = Duration::from_millis(wall_ms.saturating_sub(self.wall_ms));
        self.now.checked_add(ahead).unwrap_or(self.now)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Core {
    /// Whether the core keeps track of durable state (persistence configured).
    pub fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// `client`'s durable state is about to change: note it (before anything is sent
    /// about it). `relevant`: whether it has state worth storing besides what is stored
    /// already (a persistent session, a will).
    pub(super) fn touch_client(&mut self, client: &Arc<str>, relevant: bool) {
        let Some(durable) = self.durable.as_deref_mut() else { return };
        if relevant || durable.stored.contains_key(client) {
            durable.dirty_clients.insert(client.clone());
        }
    }

    /// [`Self::touch_client`] for a session that may be persistent or have a will.
    pub(super) fn touch(&mut self, client: &Arc<str>) {
        if self.durable.is_none() {
            return;
        }
        let relevant = self.sessions.get(client).is_some_and(|s| {
            s.expiry_interval > 0 || s.conn.and_then(|c| self.conns.get(&c)).is_some_and(|c| c.will.is_some())
        }) || self.wills.contains(client);
        self.touch_client(client, relevant);
    }

    /// The retained message of `topic` changed (`$` topics are the broker's own, not
    /// stored).
    pub(super) fn retained_changed(&mut self, topic: &str) {
        if let Some(durable) = self.durable.as_deref_mut()
            && !topic.starts_with('$')
        {
            durable.dirty_retained.insert(Arc::from(topic));
        }
    }

    /// A packet was queued for `conn` (its bytes from `before` on): with changes
    /// unwritten, one that `promises` durable state waits for a batch, and so does
    /// anything queued after bytes that wait. Whether the bytes may go now.
    pub(super) fn bytes_queued(&mut self, id: ConnId, before: u64, promises: bool) -> bool {
        let Some(durable) = self.durable.as_deref_mut() else { return true };
        let Some(conn) = self.conns.get_mut(&id) else { return true };
        let waiting = conn.release_upto < before;
        if durable.holding() && (promises || waiting) {
            if durable.held_conns.insert(id) {
                durable.held.push(Held::Bytes(id));
            }
            return false;
        }
        conn.release_upto = conn.queued_total;
        true
    }

    /// A Close for the I/O layer, held back if the connection's bytes are.
    pub(super) fn emit_close(&mut self, close: Output) {
        match self.durable.as_deref_mut() {
            Some(durable) if durable.holding() => durable.held.push(Held::Close(close)),
            _ => self.outputs.push_back(close),
        }
    }

    /// The changes since the last batch, if there are some and no batch is being written.
    /// `wall_ms`: the wall clock at `now`, in milliseconds since the Unix epoch.
    pub fn take_batch(&mut self, now: Instant, wall_ms: u64) -> Option<Batch> {
        let durable = self.durable.as_deref_mut()?;
        if durable.in_flight.is_some() || (durable.dirty_clients.is_empty() && durable.dirty_retained.is_empty()) {
            return None;
        }
        let clock = Clock { now, wall_ms };
        let id = durable.next_batch;
        durable.next_batch = id.wrapping_add(1);
        durable.in_flight = Some(id);
        let dirty_clients = std::mem::take(&mut durable.dirty_clients);
        let dirty_retained = std::mem::take(&mut durable.dirty_retained);
        let held = std::mem::take(&mut durable.held);
        durable.held_conns.clear();
        let releases: Vec<(Held, u64)> = held
            .into_iter()
            .map(|h| match h {
                Held::Bytes(id) => {
                    let mark = self.conns.get(&id).map_or(0, |c| c.queued_total);
                    (Held::Bytes(id), mark)
                }
                close => (close, 0),
            })
            .collect();
        let mut batch = Batch { id, ..Batch::default() };
        let mut stored = Vec::new();
        for client in dirty_clients {
            let record = self.client_record(&client, clock);
            let unchanged = self.durable.as_deref().is_some_and(|d| d.stored.get(&client) == record.as_ref());
            if !unchanged {
                batch.clients.push((client.to_string(), record.clone()));
                stored.push((client.clone(), record));
            }
            self.entry_changes(&client, clock, &mut batch.entries);
        }
        for topic in dirty_retained {
            let record = self.retained.get(&topic).map(|m| message_record(m, clock));
            batch.retained.push((topic.to_string(), record));
        }
        if let Some(durable) = self.durable.as_deref_mut() {
            durable.releases = releases;
            for (client, record) in stored {
                match record {
                    Some(record) => durable.stored.insert(client, record),
                    None => durable.stored.remove(&client),
                };
            }
        }
        if batch.clients.is_empty() && batch.entries.is_empty() && batch.retained.is_empty() {
            // Nothing to write after all (a subscriber acknowledged before its messages
            // had to be): what waited may go at once.
            self.batch_written(id);
            return None;
        }
        Some(batch)
    }

    /// Batch `id` is in the store: what was held for it may go.
    pub fn batch_written(&mut self, id: u64) {
        let Some(durable) = self.durable.as_deref_mut() else { return };
        if durable.in_flight != Some(id) {
            return;
        }
        durable.in_flight = None;
        let mut releases = std::mem::take(&mut durable.releases);
        if !durable.holding() {
            // Nothing changed since: everything queued meanwhile may go as well.
            durable.held_conns.clear();
            releases.extend(std::mem::take(&mut durable.held).into_iter().map(|h| (h, u64::MAX)));
        }
        for (held, mark) in releases {
            match held {
                Held::Bytes(id) => {
                    let Some(conn) = self.conns.get_mut(&id) else { continue };
                    conn.release_upto = conn.release_upto.max(mark.min(conn.queued_total));
                    if conn.release_upto > conn.written_total {
                        conn.announced = false;
                        self.announce(id);
                    }
                }
                Held::Close(close) => self.outputs.push_back(close),
            }
        }
    }

    /// What changed in the messages of `client`'s session since the last batch: the flow
    /// as it is now against what the store has (numbers and states only).
    fn entry_changes(&mut self, client: &Arc<str>, clock: Clock, out: &mut Vec<(String, u64, EntryChange)>) {
        let Some(durable) = self.durable.as_deref_mut() else { return };
        let flow = self.sessions.get(client).filter(|s| s.expiry_interval > 0).and_then(|s| s.flow());
        let mut current: Vec<(u64, EntryState, &Delivery)> = Vec::new();
        if let Some(flow) = flow {
            current.extend(flow.inflight.iter().map(|e| {
                let pid = e.id.get();
                let state = match e.state {
                    OutState::Qos1Sent => EntryState::Qos1Sent(pid),
                    OutState::Qos2Sent => EntryState::Qos2Sent(pid),
                    OutState::Released => EntryState::Released(pid),
                };
                (e.delivery.seq, state, &e.delivery)
            }));
            current
                .extend(flow.queue.iter().filter(|d| d.qos != QoS::AtMostOnce).map(|d| (d.seq, EntryState::Queued, d)));
        }
        let previous = durable.entries.remove(client).unwrap_or_default();
        if current.is_empty() && previous.is_empty() {
            return;
        }
        let mut now_stored = BTreeMap::new();
        for (seq, state, delivery) in current {
            match previous.get(&seq) {
                Some(old) if *old == state => {}
                Some(_) => out.push((client.to_string(), seq, EntryChange::Put(state, None))),
                None => {
                    out.push((client.to_string(), seq, EntryChange::Put(state, Some(delivery_record(delivery, clock)))))
                }
            }
            now_stored.insert(seq, state);
        }
        for seq in previous.keys().filter(|seq| !now_stored.contains_key(seq)) {
            out.push((client.to_string(), *seq, EntryChange::Delete));
        }
        if !now_stored.is_empty() {
            durable.entries.insert(client.clone(), now_stored);
        }
    }

    /// Note a client's record as the store has it (at a restart).
    pub(super) fn restored_record(&mut self, client: &Arc<str>, record: ClientRecord) {
        if let Some(durable) = self.durable.as_deref_mut() {
            durable.stored.insert(client.clone(), record);
        }
    }

    /// Note what a restored session's messages are in the store.
    pub(super) fn restored_entries(&mut self, client: &Arc<str>, entries: BTreeMap<u64, EntryState>) {
        if let Some(durable) = self.durable.as_deref_mut()
            && !entries.is_empty()
        {
            durable.entries.insert(client.clone(), entries);
        }
    }

    /// The record of `client`, or `None` if nothing about it is worth storing.
    fn client_record(&self, client: &Arc<str>, clock: Clock) -> Option<ClientRecord> {
        let session = self.sessions.get(client);
        let live_will = session.and_then(|s| s.conn).and_then(|c| self.conns.get(&c)).and_then(|c| c.will.as_deref());
        let will = match (self.wills.get(client), live_will) {
            (Some((due, will)), _) => Some(will_record(will, Some(clock.to_wall(due)))),
            (None, Some(will)) => Some(will_record(will, None)),
            (None, None) => None,
        };
        let session = session.filter(|s| s.expiry_interval > 0).map(|s| session_record(s, clock));
        (session.is_some() || will.is_some()).then_some(ClientRecord { session, will })
    }
}

fn session_record(s: &Session, clock: Clock) -> SessionRecord {
    let flow = s.flow();
    SessionRecord {
        protocol_level: s.version.level(),
        user: s.user.as_deref().map(str::to_owned),
        expiry_interval: s.expiry_interval,
        expires_at_ms: if s.conn.is_some() || s.expiry_interval == NEVER_EXPIRES {
            None
        } else {
            s.expires_at.map(|at| clock.to_wall(at))
        },
        subscriptions: s
            .subscriptions
            .iter()
            .map(|(f, o)| SubscriptionRecord {
                filter: f.as_str().to_owned(),
                shared: f.is_shared(),
                qos: o.qos.as_u8(),
                no_local: o.no_local,
                retain_as_published: o.retain_as_published,
                retain_handling: o.retain_handling as u8,
                sub_id: o.sub_id,
            })
            .collect(),
        last_packet_id: flow.map_or(s.last_packet_id, |f| f.inflight.last_id()),
        next_seq: s.next_seq,
        incoming_qos2: flow.map(|f| f.incoming_qos2.iter().copied().collect()).unwrap_or_default(),
    }
}

fn delivery_record(d: &Delivery, clock: Clock) -> DeliveryRecord {
    DeliveryRecord {
        message: message_record(&d.msg, clock),
        qos: d.qos.as_u8(),
        retain: d.retain,
        sub_ids: d.sub_ids.clone(),
    }
}

pub(super) fn message_record(m: &Message, clock: Clock) -> MessageRecord {
    MessageRecord {
        topic: m.topic.to_string(),
        payload: m.payload.to_vec(),
        qos: m.qos.as_u8(),
        retain: m.retain,
        props: m.props.to_vec(),
        expires_at_ms: m.expires_at.map(|at| clock.to_wall(at)),
        publisher: m.publisher.as_deref().map(str::to_owned),
    }
}

fn will_record(w: &WillMessage, due_at_ms: Option<u64>) -> WillRecord {
    WillRecord {
        topic: w.topic.to_string(),
        payload: w.payload.to_vec(),
        qos: w.qos.as_u8(),
        retain: w.retain,
        props: w.props.to_vec(),
        expiry: w.expiry,
        delay: w.delay,
        due_at_ms,
    }
}

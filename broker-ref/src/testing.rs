//! The in-memory harness for the sans-IO [`Core`]: clients as connection ids, packets in
//! and out as bytes, a simulated clock. Used by the core's unit tests, the integration
//! tests and the `broker_core` fuzz driver ([`crate::fuzzing`]); compiled only for them
//! (the hidden `_test-support` feature).
//!
//! Everything the core emits is collected in order. Tests take what one connection
//! received ([`Harness::take`], decoded in the version it connected with); the fuzz driver
//! takes the whole ordered log ([`Harness::events`]). Whoever reads, the harness checks
//! that nothing is sent to a connection after it was closed, that no connection is closed
//! twice and that timers make progress.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqttkit_codec::{
    Connect, MqttStr, OwnedPacket, Packet, PacketId, Properties, PropertiesBuf, Property, ProtocolVersion, Publish,
    PublishQoS, QoS, Status, Subscribe, SubscribeFiltersBuf, SubscriptionOptions, TopicFilter, TopicName,
    parse_fixed_header,
};

use crate::config::Config;
use crate::core::{CloseReason, ConnId, Core, Output};
use crate::persist::model::{Batch, ClientRecord, DeliveryRecord, EntryChange, EntryState, MessageRecord, Snapshot};

/// Something the core did to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes written to it.
    Bytes(Bytes),
    /// It was closed.
    Closed(CloseReason),
}

/// A received PUBLISH, as (topic, payload, qos, retain, dup).
pub type ReceivedPublish = (String, Vec<u8>, QoS, bool, bool);

/// The persistent store as maps: what a core with persistence wrote ([`Harness`] writes
/// every batch at once unless [`Harness::hold_writes`] is set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    /// Client records by client id.
    pub clients: BTreeMap<String, ClientRecord>,
    /// Messages of sessions by client id and number.
    pub entries: BTreeMap<(String, u64), (EntryState, DeliveryRecord)>,
    /// Retained messages by topic.
    pub retained: BTreeMap<String, MessageRecord>,
    /// Batches written.
    pub batches: usize,
}

impl MemoryStore {
    /// Apply a batch, as the store would.
    pub fn apply(&mut self, batch: &Batch) {
        for (client, record) in &batch.clients {
            match record {
                Some(r) => self.clients.insert(client.clone(), r.clone()),
                None => self.clients.remove(client),
            };
        }
        for (client, seq, change) in &batch.entries {
            let key = (client.clone(), *seq);
            match change {
                EntryChange::Put(state, Some(message)) => {
                    self.entries.insert(key, (*state, message.clone()));
                }
                EntryChange::Put(state, None) => {
                    let entry = self.entries.get_mut(&key).expect("a state change of a stored message");
                    entry.0 = *state;
                }
                EntryChange::Delete => {
                    self.entries.remove(&key).expect("deleting a stored message");
                }
            }
        }
        for (topic, record) in &batch.retained {
            match record {
                Some(r) => self.retained.insert(topic.clone(), r.clone()),
                None => self.retained.remove(topic),
            };
        }
        self.batches += 1;
    }

    /// What a restarted broker would load.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            clients: self.clients.iter().map(|(c, r)| (c.clone(), r.clone())).collect(),
            entries: self.entries.iter().map(|((c, seq), (state, m))| (c.clone(), *seq, *state, m.clone())).collect(),
            retained: self.retained.values().cloned().collect(),
        }
    }
}

/// The simulated wall clock at the harness's start (milliseconds since the Unix epoch).
const WALL_START_MS: u64 = 1_800_000_000_000;

/// A [`Core`] on a simulated clock with its outputs collected.
#[derive(Debug)]
pub struct Harness {
    /// The core under test.
    pub core: Core,
    /// The simulated clock.
    pub now: Instant,
    /// With persistence: the store the core's batches go to.
    pub store: MemoryStore,
    /// With persistence: leave batches unwritten (what waits for them stays unsent) until
    /// [`Self::write_batches`].
    pub hold_writes: bool,
    /// The simulated clock's start, and its wall-clock time then.
    start: Instant,
    wall_start_ms: u64,
    /// What the core emitted and nobody has taken yet, in order.
    log: VecDeque<(ConnId, Event)>,
    closed: BTreeMap<ConnId, CloseReason>,
    versions: BTreeMap<ConnId, ProtocolVersion>,
    /// Connections whose client reads nothing: their sockets take no bytes.
    stalled: BTreeSet<ConnId>,
}

/// The default configuration without `$SYS` publications (which would add traffic at
/// every clock step).
pub fn quiet_config() -> Config {
    Config { sys_interval_secs: 0, ..Config::default() }
}

/// A password hash for the `users` table (one PBKDF2 iteration: test data only).
///
/// # Panics
/// If no random salt can be drawn.
pub fn hashed(password: &str) -> String {
    crate::auth::PasswordHash::new(password.as_bytes(), 1).expect("password hash").to_string()
}

/// A packet identifier from a non-zero number (test data).
///
/// # Panics
/// If `n` is 0.
pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet identifier")
}

/// A property list (test data).
///
/// # Panics
/// If a property cannot be encoded.
pub fn props(list: &[Property<'_>]) -> PropertiesBuf {
    let mut buf = PropertiesBuf::new();
    for p in list {
        buf.push(*p).expect("property fits");
    }
    buf
}

/// Encode a packet.
///
/// # Panics
/// If it cannot be encoded in `version`.
pub fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
    let mut v = Vec::new();
    packet.encode(version, &mut v).expect("encodable test packet");
    v
}

/// Split `bytes` into frames and decode each in `version`.
///
/// # Panics
/// If the bytes are not a sequence of complete, valid packets.
pub fn decode_all(bytes: Bytes, version: ProtocolVersion) -> Vec<OwnedPacket> {
    let mut rest = bytes;
    let mut packets = Vec::new();
    while !rest.is_empty() {
        let frame_len = match parse_fixed_header(&rest, Some(version), usize::MAX) {
            Ok(Status::Complete(header)) => header.frame_len(),
            other => panic!("not a complete {version:?} frame ({other:?}): {:02x?}", &rest[..]),
        };
        let frame = rest.split_to(frame_len.min(rest.len()));
        let packet = OwnedPacket::from_frame(frame.clone(), version)
            .unwrap_or_else(|e| panic!("invalid {version:?} packet ({e}): {:02x?}", &frame[..]));
        packets.push(packet);
    }
    packets
}

impl Harness {
    /// A core with this configuration (as given: see [`quiet_config`]).
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        Self {
            core: Core::new(config, now),
            now,
            store: MemoryStore::default(),
            hold_writes: false,
            start: now,
            wall_start_ms: WALL_START_MS,
            log: VecDeque::new(),
            closed: BTreeMap::new(),
            versions: BTreeMap::new(),
            stalled: BTreeSet::new(),
        }
    }

    /// A core with [`quiet_config`].
    pub fn quiet() -> Self {
        Self::new(quiet_config())
    }

    /// The simulated wall clock (milliseconds since the Unix epoch).
    pub fn wall_ms(&self) -> u64 {
        let elapsed = self.now.saturating_duration_since(self.start).as_millis();
        self.wall_start_ms.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// The broker stops (as if killed: nothing more is written), is down for `downtime`,
    /// and starts again from its store. Connections are not carried over.
    pub fn restart(&self, downtime: Duration) -> Self {
        let mut next = Self::new(self.core.config().clone());
        next.wall_start_ms = self.wall_ms().saturating_add(u64::try_from(downtime.as_millis()).unwrap_or(0));
        next.store = self.store.clone();
        let (now, wall) = (next.now, next.wall_ms());
        next.core.restore(next.store.snapshot(), now, wall);
        next.drain();
        next
    }

    /// Write every batch the core has (and what follows from it), even with
    /// [`Self::hold_writes`].
    pub fn write_batches(&mut self) {
        let hold = std::mem::replace(&mut self.hold_writes, false);
        self.drain();
        self.hold_writes = hold;
    }

    // ------------------------------------------------------------------ driving

    /// Open connection `id` from 127.0.0.1.
    pub fn open(&mut self, id: impl Into<ConnId>) {
        let id = id.into();
        let port = u16::try_from(id.0 % 60_000).unwrap_or(0).saturating_add(1024);
        self.closed.remove(&id);
        self.versions.remove(&id);
        self.core.connection_opened(id, SocketAddr::from(([127, 0, 0, 1], port)), self.now);
        self.drain();
    }

    /// The version packets to and from `id` are encoded in (3.1.1 until it connects).
    pub fn version(&self, id: impl Into<ConnId>) -> ProtocolVersion {
        self.versions.get(&id.into()).copied().unwrap_or(ProtocolVersion::V3_1_1)
    }

    /// Encode packets to and from `id` in `version` from now on.
    pub fn set_version(&mut self, id: impl Into<ConnId>, version: ProtocolVersion) {
        self.versions.insert(id.into(), version);
    }

    /// Bytes from the client of `id`.
    pub fn raw(&mut self, id: impl Into<ConnId>, bytes: &[u8]) {
        self.core.handle_bytes(id.into(), bytes, self.now);
        self.drain();
    }

    /// A packet from the client of `id`, in its version.
    pub fn send(&mut self, id: impl Into<ConnId>, packet: &Packet<'_>) {
        let id = id.into();
        let bytes = encode(packet, self.version(id));
        self.raw(id, &bytes);
    }

    /// The client's network connection ends without DISCONNECT.
    pub fn close_abruptly(&mut self, id: impl Into<ConnId>) {
        self.core.connection_closed(id.into(), self.now);
        self.drain();
    }

    /// Advance the clock by `d`, running every timer at its exact deadline.
    ///
    /// # Panics
    /// If handling a deadline leaves a deadline at or before the clock.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now.checked_add(d).unwrap_or(self.now);
        while let Some(at) = self.core.poll_timeout() {
            if at > target {
                break;
            }
            self.now = at.max(self.now);
            self.core.handle_timeout(self.now);
            self.drain();
            assert!(self.core.poll_timeout().is_none_or(|next| next > self.now), "timer did not make progress");
        }
        self.now = target;
        self.core.handle_timeout(self.now);
        self.drain();
    }

    /// The client of `id` stops reading: its socket takes no more bytes (they stay queued
    /// in the core) until [`Self::resume`].
    pub fn stall(&mut self, id: impl Into<ConnId>) {
        self.stalled.insert(id.into());
    }

    /// The client of `id` reads again: everything waiting is written.
    pub fn resume(&mut self, id: impl Into<ConnId>) {
        let id = id.into();
        self.stalled.remove(&id);
        self.write_pending(id);
        self.drain();
    }

    /// The socket of a stalled connection takes `n` bytes (a client that reads a little).
    pub fn accept(&mut self, id: impl Into<ConnId>, n: usize) {
        let id = id.into();
        let mut written = BytesMut::new();
        {
            let mut slices = [IoSlice::new(&[]); 16];
            let count = self.core.transmit(id, &mut slices);
            for slice in slices.iter().take(count) {
                let take = n.saturating_sub(written.len()).min(slice.len());
                written.extend_from_slice(&slice[..take]);
            }
        }
        self.core.transmitted(id, written.len(), self.now);
        self.record(id, written.freeze());
        self.drain();
    }

    /// Collect the core's outputs: a connection's bytes are written whole unless it is
    /// stalled (then the socket takes nothing).
    ///
    /// # Panics
    /// If a connection is written to after it was closed, or closed twice.
    pub fn drain(&mut self) {
        loop {
            self.drain_outputs();
            if self.hold_writes {
                return;
            }
            let wall = self.wall_ms();
            let Some(batch) = self.core.take_batch(self.now, wall) else { return };
            self.store.apply(&batch);
            self.core.batch_written(batch.id);
        }
    }

    fn drain_outputs(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Transmit(id) if self.stalled.contains(&id) => self.core.transmitted(id, 0, self.now),
                Output::Transmit(id) => self.write_pending(id),
                Output::Close { id, reason, unsent } => {
                    for bytes in unsent {
                        self.record(id, bytes);
                    }
                    let again = self.closed.insert(id, reason.clone());
                    assert!(again.is_none(), "{id:?} closed twice");
                    self.log.push_back((id, Event::Closed(reason)));
                }
            }
        }
    }

    /// Write everything the core has for `id`, as a socket that takes it all.
    fn write_pending(&mut self, id: ConnId) {
        loop {
            let mut written = BytesMut::new();
            {
                let mut slices = [IoSlice::new(&[]); 16];
                let n = self.core.transmit(id, &mut slices);
                for slice in slices.iter().take(n) {
                    written.extend_from_slice(slice);
                }
            }
            if written.is_empty() {
                return;
            }
            self.core.transmitted(id, written.len(), self.now);
            self.record(id, written.freeze());
        }
    }

    fn record(&mut self, id: ConnId, bytes: Bytes) {
        assert!(!self.closed.contains_key(&id), "output after close on {id:?}: {:02x?}", &bytes[..]);
        self.log.push_back((id, Event::Bytes(bytes)));
    }

    // ------------------------------------------------------------------ observing

    /// Everything emitted since the last call, in order (for the fuzz model).
    pub fn events(&mut self) -> Vec<(ConnId, Event)> {
        self.drain();
        self.log.drain(..).collect()
    }

    /// The bytes written to `id` and not taken yet, concatenated.
    pub fn take_bytes(&mut self, id: impl Into<ConnId>) -> Bytes {
        let id = id.into();
        self.drain();
        let mut out = BytesMut::new();
        self.log.retain(|(to, event)| match event {
            Event::Bytes(bytes) if *to == id => {
                out.extend_from_slice(bytes);
                false
            }
            _ => true,
        });
        out.freeze()
    }

    /// Whether nothing was written to any connection since the last take.
    pub fn nothing_sent(&mut self) -> bool {
        self.drain();
        !self.log.iter().any(|(_, event)| matches!(event, Event::Bytes(_)))
    }

    /// The packets written to `id` and not taken yet, decoded in its version.
    ///
    /// # Panics
    /// If they do not decode.
    pub fn take(&mut self, id: impl Into<ConnId>) -> Vec<OwnedPacket> {
        let id = id.into();
        let bytes = self.take_bytes(id);
        decode_all(bytes, self.version(id))
    }

    /// Give packets back, to be taken again before anything sent later.
    fn untake(&mut self, id: ConnId, packets: &[OwnedPacket]) {
        for packet in packets.iter().rev() {
            self.log.push_front((id, Event::Bytes(packet.frame().clone())));
        }
    }

    /// Whether no connection was closed yet.
    pub fn nothing_closed(&self) -> bool {
        self.closed.is_empty()
    }

    /// Why `id` was closed, if it was.
    pub fn closed(&self, id: impl Into<ConnId>) -> Option<&CloseReason> {
        self.closed.get(&id.into())
    }

    // ------------------------------------------------------------------ MQTT shortcuts

    /// Open `id`, send this CONNECT and return the first packet received (the CONNACK);
    /// anything after it stays to be taken.
    ///
    /// # Panics
    /// If nothing is received.
    pub fn connect_with(&mut self, id: impl Into<ConnId>, connect: Connect<'_>) -> OwnedPacket {
        let id = id.into();
        self.open(id);
        self.set_version(id, connect.version);
        self.send(id, &Packet::Connect(connect));
        let mut got = self.take(id);
        assert!(!got.is_empty(), "no CONNACK");
        let first = got.remove(0);
        self.untake(id, &got);
        first
    }

    /// Open `id` and connect as `client` (Keep Alive 0).
    ///
    /// # Panics
    /// If `client` is not a valid string or nothing is received.
    pub fn connect(
        &mut self,
        id: impl Into<ConnId>,
        version: ProtocolVersion,
        client: &str,
        clean: bool,
    ) -> OwnedPacket {
        let c = Connect::new(version, MqttStr::new(client).expect("client id"), clean, 0);
        self.connect_with(id, c)
    }

    /// Subscribe to one filter (packet id 1); returns the SUBACK reason codes. Retained
    /// messages sent after the SUBACK stay to be taken.
    ///
    /// # Panics
    /// If the first packet received is not a SUBACK.
    pub fn subscribe(&mut self, id: impl Into<ConnId>, filter: &str, opts: SubscriptionOptions) -> Vec<u8> {
        self.subscribe_props(id, filter, opts, Properties::EMPTY)
    }

    /// [`Self::subscribe`] with SUBSCRIBE properties.
    ///
    /// # Panics
    /// If the first packet received is not a SUBACK.
    pub fn subscribe_props(
        &mut self,
        id: impl Into<ConnId>,
        filter: &str,
        opts: SubscriptionOptions,
        properties: Properties<'_>,
    ) -> Vec<u8> {
        let id = id.into();
        let version = self.version(id);
        let mut buf = SubscribeFiltersBuf::new();
        buf.push(TopicFilter::new(filter).expect("topic filter"), opts);
        let sub = Subscribe { packet_id: pid(1), properties, filters: buf.filters(version).expect("filters") };
        self.send(id, &Packet::Subscribe(sub));
        let mut got = self.take(id);
        let codes = match got.first().map(OwnedPacket::packet) {
            Some(Packet::SubAck(ack)) => ack.reason_codes.as_bytes().to_vec(),
            _ => panic!("expected SUBACK, got {got:?}"),
        };
        got.remove(0);
        self.untake(id, &got);
        codes
    }

    /// PUBLISH `payload` on `topic` (packet id 100 for QoS 1 and 2).
    ///
    /// # Panics
    /// If `topic` is not a valid topic name.
    pub fn publish(&mut self, id: impl Into<ConnId>, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        let q = match qos {
            QoS::AtMostOnce => PublishQoS::AtMostOnce,
            q => PublishQoS::new(q, pid(100)),
        };
        let mut p = Publish::new(TopicName::new(topic).expect("topic name"), q, payload);
        p.retain = retain;
        self.send(id, &Packet::Publish(p));
    }

    /// The PUBLISH packets received by `id` (other packets taken are discarded).
    ///
    /// # Panics
    /// If what was received does not decode.
    pub fn publishes(&mut self, id: impl Into<ConnId>) -> Vec<ReceivedPublish> {
        self.take(id)
            .iter()
            .filter_map(|p| match p.packet() {
                Packet::Publish(p) => Some((p.topic.to_string(), p.payload.to_vec(), p.qos.qos(), p.retain, p.dup)),
                _ => None,
            })
            .collect()
    }
}

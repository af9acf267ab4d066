//! Fuzzing support: [`run_ops`] interprets arbitrary bytes as a sequence of operations
//! across several clients driven into the sans-IO [`Core`](crate::core::Core) through
//! the [`Harness`], and checks invariants after every step. Used by the `broker_core` cargo-fuzz target (`fuzz/fuzz_targets/broker_core.rs`)
//! and replayed on stable by `tests/fuzz_broker_core.rs`.
//!
//! Operations: open a connection, send a CONNECT / SUBSCRIBE / UNSUBSCRIBE / PUBLISH /
//! acknowledgement / PINGREQ / DISCONNECT built from the data (in the connection's
//! version, sometimes split across two reads), send raw bytes, close abruptly, report a
//! slow consumer, advance the simulated clock.
//!
//! Invariants (a violation panics, which the fuzzer reports as a crash):
//! * every write is a sequence of complete packets that the codec parses in the
//!   connection's protocol version, and nothing is sent to a connection after it was
//!   closed (checked by the harness);
//! * no packet larger than the client's Maximum Packet Size [MQTT-3.1.2-24];
//! * at most Receive Maximum unacknowledged QoS 1/2 PUBLISH packets per connection
//!   [MQTT-3.3.4-9], and no new PUBLISH reuses a packet identifier still in flight;
//! * no PUBLISH to a client whose session never subscribed a matching filter;
//! * `handle_timeout(now)` leaves no deadline at or before `now` (timers make progress,
//!   checked by the harness).
//!
//! The clients' packets are also decoded by a mirror [`StreamDecoder`] configured like the
//! broker's, so the model sees exactly what the broker sees (version, Maximum Packet Size,
//! Receive Maximum, filters, acknowledgements), whatever mix of valid and raw bytes sent.

mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mqttkit_codec::{
    Connect, DecoderConfig, Disconnect, MqttStr, Packet, PacketId, Properties, PropertiesBuf, Property,
    PropertyContext, ProtocolVersion, Publish, PublishQoS, PublishResponse, QoS, ReasonCode, RetainHandling,
    StreamDecoder, Subscribe, SubscribeFiltersBuf, SubscriptionOptions, TopicFilter, TopicName, Unsubscribe,
    UnsubscribeFiltersBuf, Will,
};

use self::model::ConnModel;
use crate::config::{AclConfig, Config};
use crate::core::ConnId;
use crate::testing::Harness;

const SLOTS: usize = 4;
const MAX_OPS: usize = 4096;
const CLIENT_IDS: [&str; 4] = ["a", "b", "c", ""];
const TOPICS: [&str; 8] = ["t", "t/x", "t/y", "u", "$SYS/x", "secret/s", "ro/r", "t/x/y"];
const FILTERS: [&str; 10] = ["t", "t/+", "#", "+/x", "t/#", "$share/g/t/#", "$share/h/#", "$SYS/#", "secret/#", "u"];

/// Run one fuzz input. Panics if an invariant is violated.
pub fn run_ops(data: &[u8]) {
    let mut input = Input { data, pos: 0 };
    let mut h = Driver::new(input.byte());
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        h.step(&mut input);
    }
    // Let every timer run out: sessions expire (at most `max_session_expiry_secs`),
    // wills fire.
    h.advance(Duration::from_secs(1100));
}

/// Reads the fuzz data; zeros once exhausted.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let i = usize::from(self.byte()) % items.len();
        items[i]
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }
}

struct Driver {
    /// The core, its clock and outputs (which it checks: nothing after a close, timers
    /// make progress).
    h: Harness,
    next_conn: u64,
    slots: [Option<ConnModel>; SLOTS],
    /// Filters (inner filter for shared subscriptions) every session has ever subscribed
    /// since it was last created (CONNACK with Session Present 0). An over-approximation
    /// of the broker's subscriptions: a delivery outside it is a bug.
    subscribed: BTreeMap<String, BTreeSet<String>>,
    /// Sessions whose identity the model cannot follow (ids that collide with the
    /// broker's generated ones): the subscription check is skipped for them.
    untracked: BTreeSet<String>,
    max_packet_size: usize,
    /// Print every operation and output (`MQTTKIT_FUZZ_TRACE=1`), to study a crash.
    trace: bool,
}

fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    packet.encode(version, &mut out).ok()?;
    Some(out)
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n.max(1)).unwrap_or(PacketId::MIN)
}

impl Driver {
    fn new(variant: u8) -> Self {
        let config = Config {
            max_connections: 6,
            max_packet_size: 400,
            receive_maximum: 3,
            max_inflight: 3,
            max_queued_messages: 6,
            max_topic_length: 40,
            max_topic_levels: 4,
            connect_timeout_secs: 5,
            server_keep_alive: (variant & 1 != 0).then_some(3),
            topic_alias_maximum: 3,
            maximum_qos: if variant & 2 != 0 { 1 } else { 2 },
            retain_available: variant & 4 == 0,
            max_session_expiry_secs: 1000,
            sys_interval_secs: if variant & 8 != 0 { 70 } else { 0 },
            users: if variant & 16 != 0 {
                [("u".to_owned(), crate::testing::hashed("p"))].into_iter().collect()
            } else {
                BTreeMap::new()
            },
            acl: AclConfig { deny_publish: vec!["ro/#".into()], deny_subscribe: vec!["secret/#".into()] },
            // The write barrier of persistence (batches written at once by the harness).
            persistence: (variant & 32 != 0).then(|| "fuzz".into()),
            ..Config::default()
        };
        let max_packet_size = usize::try_from(config.max_packet_size).unwrap_or(usize::MAX);
        Self {
            h: Harness::new(config),
            next_conn: 1,
            slots: Default::default(),
            subscribed: BTreeMap::new(),
            untracked: BTreeSet::new(),
            max_packet_size,
            trace: std::env::var_os("MQTTKIT_FUZZ_TRACE").is_some(),
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.byte();
        let slot = usize::from(op >> 4) % SLOTS;
        match op & 0x0F {
            0 => self.open(slot, input),
            1 | 2 => self.send_connect(slot, input),
            3 => self.send_subscribe(slot, input),
            4 => self.send_unsubscribe(slot, input),
            5 | 6 => self.send_publish(slot, input),
            7 => self.send_ack(slot, input),
            8 => self.ack_all(slot),
            9 => {
                let p = if input.byte() & 1 == 0 { Some(Packet::PingReq) } else { None };
                match p {
                    Some(p) => self.send_packet(slot, &p, input),
                    None => self.send_disconnect(slot, input),
                }
            }
            10 => {
                let n = usize::from(input.byte() % 64);
                let raw = input.bytes(n).to_vec();
                self.send_bytes(slot, &raw);
            }
            11 => self.abrupt_close(slot),
            12 => {
                if let Some(conn) = self.slots[slot].take() {
                    self.h.core.disconnect_slow_consumer(conn.id, self.h.now);
                    self.check_outputs();
                }
            }
            13 | 14 => {
                let b = input.byte();
                let d = match b >> 6 {
                    0 => Duration::from_millis(u64::from(b & 0x3F) * 50),
                    1 => Duration::from_secs(u64::from(b & 0x3F)),
                    2 => Duration::from_secs(u64::from(b & 0x3F) * 30),
                    _ => Duration::ZERO,
                };
                self.advance(d);
            }
            _ => {
                // A whole session: open, CONNECT, SUBSCRIBE in one go (reaches deep states
                // with fewer bytes).
                self.open(slot, input);
                self.send_connect(slot, input);
                self.send_subscribe(slot, input);
            }
        }
    }

    // ------------------------------------------------------------------ operations

    fn open(&mut self, slot: usize, input: &mut Input<'_>) {
        self.abrupt_close(slot);
        let id = ConnId(self.next_conn);
        self.next_conn = self.next_conn.saturating_add(1);
        let intended = match input.byte() % 4 {
            0 => ProtocolVersion::V3_1,
            1 => ProtocolVersion::V3_1_1,
            _ => ProtocolVersion::V5,
        };
        self.h.open(id);
        self.check_outputs();
        let mirror = StreamDecoder::new(DecoderConfig { max_packet_size: self.max_packet_size, version: None });
        self.slots[slot] = Some(ConnModel {
            id,
            intended,
            mirror,
            mirror_dead: false,
            session: None,
            connected: false,
            version: None,
            max_packet_size: usize::MAX,
            receive_maximum: usize::MAX,
            inflight: BTreeMap::new(),
            stray_pubrecs: BTreeSet::new(),
            filters: BTreeSet::new(),
            next_pid: 1,
        });
    }

    fn abrupt_close(&mut self, slot: usize) {
        if let Some(conn) = self.slots[slot].take() {
            self.h.close_abruptly(conn.id);
            self.check_outputs();
        }
    }

    fn send_connect(&mut self, slot: usize, input: &mut Input<'_>) {
        let Some(conn) = &self.slots[slot] else { return };
        let version = conn.intended;
        let flags = input.byte();
        let mut client_id = input.pick(&CLIENT_IDS);
        if version == ProtocolVersion::V3_1 && client_id.is_empty() && flags & 0x80 == 0 {
            client_id = "a";
        }
        let Ok(client) = MqttStr::new(client_id) else { return };
        let keep_alive = u16::from(input.byte() % 8);
        let mut c = Connect::new(version, client, flags & 1 != 0, keep_alive);
        let mut props = PropertiesBuf::new();
        let mut will_props = PropertiesBuf::new();
        if version.is_v5() {
            let expiry = match input.byte() % 5 {
                0 => None,
                1 => Some(0),
                2 => Some(3),
                3 => Some(100),
                _ => Some(u32::MAX),
            };
            if let Some(e) = expiry {
                let _ = props.push(Property::SessionExpiryInterval(e));
            }
            let rm = input.byte() % 6;
            if rm > 0 {
                let _ = props.push(Property::ReceiveMaximum(u16::from(rm)));
            }
            let mps = input.byte();
            if mps > 0 {
                let _ = props.push(Property::MaximumPacketSize(u32::from(mps).saturating_mul(2)));
            }
            if flags & 0x40 != 0 {
                let _ = props.push(Property::RequestResponseInformation(1));
            }
            if flags & 0x20 != 0 {
                let _ = will_props.push(Property::WillDelayInterval(u32::from(input.byte() % 8)));
            }
        }
        c.properties = props.properties(PropertyContext::Connect).unwrap_or(Properties::EMPTY);
        let will_topic = input.pick(&TOPICS);
        if flags & 0x02 != 0
            && let Ok(topic) = TopicName::new(will_topic)
        {
            c.will = Some(Will {
                qos: QoS::from_u8((flags >> 2) % 3).unwrap_or(QoS::AtMostOnce),
                retain: flags & 0x10 != 0,
                properties: will_props.properties(PropertyContext::Will).unwrap_or(Properties::EMPTY),
                topic,
                payload: b"will",
            });
        }
        if flags & 0x08 != 0 {
            c.username = MqttStr::new("u").ok();
            c.password = Some(if flags & 0x04 != 0 { b"p" } else { b"x" });
        }
        let packet = Packet::Connect(c);
        self.send_packet(slot, &packet, input);
    }

    fn send_subscribe(&mut self, slot: usize, input: &mut Input<'_>) {
        let Some(conn) = &self.slots[slot] else { return };
        let version = conn.intended;
        let n = 1 + usize::from(input.byte() % 3);
        let mut buf = SubscribeFiltersBuf::new();
        for _ in 0..n {
            let Ok(filter) = TopicFilter::new(input.pick(&FILTERS)) else { continue };
            let o = input.byte();
            let mut opts = SubscriptionOptions::qos(QoS::from_u8(o % 3).unwrap_or(QoS::AtMostOnce));
            if version.is_v5() {
                opts.no_local = o & 0x04 != 0 && !filter.as_str().starts_with("$share/");
                opts.retain_as_published = o & 0x08 != 0;
                opts.retain_handling = match (o >> 4) % 3 {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                };
            }
            buf.push(filter, opts);
        }
        let mut props = PropertiesBuf::new();
        let sid = input.byte();
        if version.is_v5() && sid & 1 != 0 {
            let _ = props.push(Property::SubscriptionIdentifier(u32::from(sid >> 1).max(1)));
        }
        let Ok(filters) = buf.filters(version) else { return };
        let properties = props.properties(PropertyContext::Subscribe).unwrap_or(Properties::EMPTY);
        let sub = Subscribe { packet_id: pid(input.u16()), properties, filters };
        self.send_packet(slot, &Packet::Subscribe(sub), input);
    }

    fn send_unsubscribe(&mut self, slot: usize, input: &mut Input<'_>) {
        let Some(conn) = &self.slots[slot] else { return };
        let version = conn.intended;
        let mut buf = UnsubscribeFiltersBuf::new();
        if let Ok(filter) = TopicFilter::new(input.pick(&FILTERS)) {
            buf.push(filter);
        }
        let Ok(filters) = buf.filters(version) else { return };
        let unsub = Unsubscribe { packet_id: pid(input.u16()), properties: Properties::EMPTY, filters };
        self.send_packet(slot, &Packet::Unsubscribe(unsub), input);
    }

    fn send_publish(&mut self, slot: usize, input: &mut Input<'_>) {
        let Some(conn) = &mut self.slots[slot] else { return };
        let version = conn.intended;
        let flags = input.byte();
        let topic = input.pick(&TOPICS);
        let qos = QoS::from_u8(flags % 3).unwrap_or(QoS::AtMostOnce);
        let id = if flags & 0x80 != 0 {
            u16::from(input.byte() % 4).max(1)
        } else {
            conn.next_pid = conn.next_pid.checked_add(1).unwrap_or(1);
            conn.next_pid
        };
        let pq = match qos {
            QoS::AtMostOnce => PublishQoS::AtMostOnce,
            q => PublishQoS::new(q, pid(id)),
        };
        let len = match input.byte() {
            b if b >= 250 => 300 + usize::from(b),
            b => usize::from(b % 32),
        };
        let payload = vec![b'p'; len];
        let mut props = PropertiesBuf::new();
        let mut topic_str = topic;
        if version.is_v5() {
            let p = input.byte();
            if p & 1 != 0 {
                let _ = props.push(Property::MessageExpiryInterval(u32::from(p >> 5)));
            }
            if p & 2 != 0 {
                let _ = props.push(Property::TopicAlias(u16::from((p >> 2) % 5)));
                if p & 4 != 0 {
                    topic_str = "";
                }
            }
            if p & 8 != 0 {
                let _ = props.push(Property::UserProperty("k", "v"));
            }
        }
        let Ok(topic) = TopicName::new(topic_str) else { return };
        let mut publish = Publish::new(topic, pq, &payload);
        publish.retain = flags & 0x08 != 0;
        publish.dup = flags & 0x10 != 0 && qos != QoS::AtMostOnce;
        publish.properties = props.properties(PropertyContext::Publish).unwrap_or(Properties::EMPTY);
        self.send_packet(slot, &Packet::Publish(publish), input);
    }

    fn send_ack(&mut self, slot: usize, input: &mut Input<'_>) {
        let Some(conn) = &self.slots[slot] else { return };
        let kind = input.byte();
        let known: Vec<u16> = conn.inflight.keys().copied().collect();
        let id = if kind & 0x80 == 0 && !known.is_empty() {
            known[usize::from(input.byte()) % known.len()]
        } else {
            u16::from(input.byte() % 8).max(1)
        };
        let mut ack = PublishResponse::new(pid(id));
        if kind & 0x40 != 0 && conn.intended.is_v5() {
            ack.reason_code = ReasonCode::UNSPECIFIED_ERROR;
        }
        let packet = match kind % 4 {
            0 => Packet::PubAck(ack),
            1 => Packet::PubRec(ack),
            2 => Packet::PubRel(ack),
            _ => Packet::PubComp(ack),
        };
        self.send_packet(slot, &packet, input);
    }

    /// Acknowledge everything in flight the way a well-behaved client would.
    fn ack_all(&mut self, slot: usize) {
        let Some(conn) = &self.slots[slot] else { return };
        let Some(version) = conn.version else { return };
        let mut bytes = Vec::new();
        for (&id, &(qos, released)) in &conn.inflight {
            let ack = PublishResponse::new(pid(id));
            let packet = match (qos, released) {
                (QoS::AtLeastOnce, _) => Packet::PubAck(ack),
                (_, false) => Packet::PubRec(ack),
                (_, true) => Packet::PubComp(ack),
            };
            if let Some(b) = encode(&packet, version) {
                bytes.extend_from_slice(&b);
            }
        }
        self.send_bytes(slot, &bytes);
    }

    fn send_disconnect(&mut self, slot: usize, input: &mut Input<'_>) {
        let b = input.byte();
        let mut d =
            Disconnect::new(if b & 1 != 0 { ReasonCode::DISCONNECT_WITH_WILL_MESSAGE } else { ReasonCode::SUCCESS });
        let mut props = PropertiesBuf::new();
        if b & 2 != 0 {
            let _ = props.push(Property::SessionExpiryInterval(u32::from(b >> 4)));
        }
        d.properties = props.properties(PropertyContext::Disconnect).unwrap_or(Properties::EMPTY);
        self.send_packet(slot, &Packet::Disconnect(d), input);
    }

    /// Encode in the connection's intended version; sometimes split across two reads.
    fn send_packet(&mut self, slot: usize, packet: &Packet<'_>, input: &mut Input<'_>) {
        let Some(conn) = &self.slots[slot] else { return };
        let Some(bytes) = encode(packet, conn.intended) else { return };
        let split = usize::from(input.byte());
        if split < bytes.len() && split % 3 == 0 {
            let (a, b) = bytes.split_at(split);
            self.send_bytes(slot, a);
            self.send_bytes(slot, b);
        } else {
            self.send_bytes(slot, &bytes);
        }
    }

    fn send_bytes(&mut self, slot: usize, bytes: &[u8]) {
        let Some(conn) = &mut self.slots[slot] else { return };
        let id = conn.id;
        if self.trace {
            eprintln!("{:?} -> {id:?}: {:?}", self.h.now, bytes);
        }
        self.mirror(slot, bytes);
        self.h.raw(id, bytes);
        self.check_outputs();
    }

    /// Move the clock forward by `d`, running every timer at its exact deadline.
    fn advance(&mut self, d: Duration) {
        self.h.advance(d);
        self.check_outputs();
    }
}

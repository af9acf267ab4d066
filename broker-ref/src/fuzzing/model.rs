//! The model of the fuzz driver: what each client sent (decoded as the broker decodes
//! it) and the invariants every byte the broker writes must satisfy.

use std::collections::{BTreeMap, BTreeSet};

use mqttkit_codec::{
    DecoderConfig, Packet, ProtocolVersion, QoS, ReasonCode, Status, StreamDecoder, decode_packet, filter_matches,
};

use super::Driver;
use crate::core::ConnId;
use crate::testing::Event;

/// What the model knows about one open connection.
#[derive(Debug)]
pub(super) struct ConnModel {
    pub(super) id: ConnId,
    /// Version used to build this client's packets.
    pub(super) intended: ProtocolVersion,
    /// Mirror of the broker's decoder: what the broker has decoded from this client.
    pub(super) mirror: StreamDecoder,
    pub(super) mirror_dead: bool,
    /// Session key (client id) from the first CONNECT, once decoded.
    pub(super) session: Option<String>,
    /// The first packet was a CONNECT (so the version and limits below are known).
    pub(super) connected: bool,
    pub(super) version: Option<ProtocolVersion>,
    pub(super) max_packet_size: usize,
    pub(super) receive_maximum: usize,
    /// Unacknowledged QoS 1/2 PUBLISH packets sent to this client: pid → (qos, released).
    pub(super) inflight: BTreeMap<u16, (QoS, bool)>,
    /// PUBRECs the client sent for packet ids not in flight: the broker's PUBREL answer
    /// to them is not an in-flight message.
    pub(super) stray_pubrecs: BTreeSet<u16>,
    /// Filters this connection subscribed (inner filter for shared subscriptions).
    pub(super) filters: BTreeSet<String>,
    /// Packet identifier of the next PUBLISH from this client.
    pub(super) next_pid: u16,
}

impl Driver {
    /// Decode what the client sent, as the broker does, and update the model.
    pub(super) fn mirror(&mut self, slot: usize, bytes: &[u8]) {
        let Some(conn) = &mut self.slots[slot] else { return };
        if conn.mirror_dead {
            return;
        }
        conn.mirror.feed(bytes);
        let mut new_filters: Vec<String> = Vec::new();
        loop {
            match conn.mirror.next_packet() {
                Ok(Some(packet)) => match packet {
                    Packet::Connect(c) if conn.version.is_none() => {
                        conn.connected = true;
                        conn.version = Some(c.version);
                        if c.version.is_v5() {
                            if let Some(max) = c.properties.maximum_packet_size() {
                                conn.max_packet_size = usize::try_from(max).unwrap_or(usize::MAX);
                            }
                            conn.receive_maximum = usize::from(c.properties.receive_maximum().unwrap_or(u16::MAX));
                        }
                        let key = c.client_id.as_str();
                        conn.session =
                            Some(if key.is_empty() { format!("#conn{}", conn.id.0) } else { key.to_owned() });
                        if key.starts_with("mqttkit-") {
                            self.untracked.insert(key.to_owned());
                        }
                    }
                    Packet::Subscribe(s) => {
                        for (filter, _) in s.filters.iter() {
                            let f = filter.as_str();
                            let inner = match (conn.version, f.strip_prefix("$share/")) {
                                (Some(v), Some(rest)) if v.is_v5() => {
                                    rest.split_once('/').map_or(f, |(_, inner)| inner)
                                }
                                _ => f,
                            };
                            new_filters.push(inner.to_owned());
                        }
                    }
                    Packet::PubAck(a) => {
                        if let Some((QoS::AtLeastOnce, _)) = conn.inflight.get(&a.packet_id.get()) {
                            conn.inflight.remove(&a.packet_id.get());
                        }
                    }
                    Packet::PubRec(a) => {
                        let id = a.packet_id.get();
                        match conn.inflight.get_mut(&id) {
                            Some((QoS::ExactlyOnce, released)) => {
                                if a.reason_code.is_error() && !*released {
                                    conn.inflight.remove(&id);
                                } else {
                                    *released = true;
                                }
                            }
                            Some(_) => {}
                            None => {
                                conn.stray_pubrecs.insert(id);
                            }
                        }
                    }
                    Packet::PubComp(a) => {
                        if let Some((QoS::ExactlyOnce, true)) = conn.inflight.get(&a.packet_id.get()) {
                            conn.inflight.remove(&a.packet_id.get());
                        }
                    }
                    _ => {}
                },
                Ok(None) => break,
                Err(_) => {
                    conn.mirror_dead = true;
                    break;
                }
            }
        }
        if self.trace && !new_filters.is_empty() {
            eprintln!("  model: {:?} {:?} subscribes {new_filters:?}", conn.id, conn.session);
        }
        conn.filters.extend(new_filters.iter().cloned());
        if let Some(session) = &conn.session {
            self.subscribed.entry(session.clone()).or_default().extend(new_filters);
        }
    }

    fn slot_of(&self, id: ConnId) -> Option<usize> {
        self.slots.iter().position(|s| s.as_ref().is_some_and(|c| c.id == id))
    }

    /// Check what the core emitted since the last call, in order.
    pub(super) fn check_outputs(&mut self) {
        for (id, event) in self.h.events() {
            match event {
                Event::Bytes(bytes) => {
                    if self.trace {
                        eprintln!("{:?} <- {id:?}: {:?}", self.h.now, &bytes[..]);
                    }
                    self.check_sent(id, &bytes);
                }
                Event::Closed(reason) => {
                    if self.trace {
                        eprintln!("{:?} close {id:?}: {reason:?}", self.h.now);
                    }
                    if let Some(slot) = self.slot_of(id) {
                        self.slots[slot] = None;
                    }
                }
            }
        }
    }

    /// Check bytes written to a connection against the invariants.
    fn check_sent(&mut self, id: ConnId, bytes: &[u8]) {
        let slot = self.slot_of(id).unwrap_or_else(|| panic!("output for unknown connection {id:?}"));
        let versions: Vec<ProtocolVersion> = match &self.slots[slot] {
            Some(ConnModel { version: Some(v), .. }) => vec![*v],
            // Refusals of undecodable CONNECTs: either format.
            _ => vec![ProtocolVersion::V5, ProtocolVersion::V3_1_1],
        };
        let version = versions
            .iter()
            .copied()
            .find(|v| parse_all(bytes, *v).is_some())
            .unwrap_or_else(|| panic!("output does not parse as {versions:?}: {bytes:02x?}"));
        let mut rest = bytes;
        while let Ok(Status::Complete((packet, frame_len))) = decode_packet(rest, Some(version), usize::MAX) {
            rest = rest.get(frame_len..).unwrap_or_default();
            let Some(conn) = &mut self.slots[slot] else { return };
            assert!(
                frame_len <= conn.max_packet_size,
                "{frame_len}-byte {:?} exceeds the client's Maximum Packet Size {}",
                packet.packet_type(),
                conn.max_packet_size
            );
            match packet {
                Packet::ConnAck(ack) if ack.code == ReasonCode::SUCCESS && !ack.session_present => {
                    // A new session: the model's filters start over.
                    let key = match ack.properties.assigned_client_identifier() {
                        Some(assigned) => {
                            let key = assigned.to_owned();
                            conn.session = Some(key.clone());
                            key
                        }
                        None => conn.session.clone().unwrap_or_default(),
                    };
                    // Filters sent on this connection after its CONNECT belong to it.
                    self.subscribed.insert(key, conn.filters.clone());
                }
                Packet::Publish(p) => {
                    let topic = p.topic.as_str();
                    assert!(!topic.is_empty(), "PUBLISH without topic name");
                    if let Some(session) = &conn.session
                        && !self.untracked.contains(session)
                    {
                        let filters = self.subscribed.get(session);
                        assert!(
                            filters.is_some_and(|f| f.iter().any(|f| filter_matches(f, topic))),
                            "PUBLISH on {topic:?} to {session:?} without a matching subscription ({filters:?})"
                        );
                    }
                    if let Some(pid) = p.qos.packet_id() {
                        let fresh = conn.inflight.insert(pid.get(), (p.qos.qos(), false)).is_none();
                        assert!(fresh || p.dup, "new PUBLISH reuses in-flight packet id {}", pid.get());
                        assert!(
                            conn.inflight.len() <= conn.receive_maximum,
                            "{} QoS 1/2 PUBLISH in flight, client Receive Maximum {}",
                            conn.inflight.len(),
                            conn.receive_maximum
                        );
                    }
                }
                Packet::PubRel(r) => {
                    let id = r.packet_id.get();
                    // A PUBREL is in flight unless it answers a stray PUBREC (in 3.1.1 the
                    // answer cannot say "Packet Identifier not found").
                    if !r.reason_code.is_error() && !conn.stray_pubrecs.remove(&id) {
                        conn.inflight.insert(id, (QoS::ExactlyOnce, true));
                        assert!(conn.inflight.len() <= conn.receive_maximum, "PUBREL beyond Receive Maximum");
                    }
                }
                _ => {}
            }
        }
    }
}

/// Every frame of `bytes` parses in `version`, with nothing left over.
fn parse_all(bytes: &[u8], version: ProtocolVersion) -> Option<usize> {
    let mut decoder = StreamDecoder::new(DecoderConfig { max_packet_size: usize::MAX, version: Some(version) });
    decoder.feed(bytes);
    let mut n = 0usize;
    loop {
        match decoder.next_packet() {
            Ok(Some(_)) => n = n.saturating_add(1),
            Ok(None) => break,
            Err(_) => return None,
        }
    }
    (decoder.buffered() == 0 && n > 0).then_some(n)
}

//! Outputs: the bytes waiting for each connection and what the I/O layer has to do.
//!
//! Each connection has an [`Outbound`] queue, allocated when the first packet for it is
//! queued and released as soon as everything was written, so an idle connection holds no
//! buffer. Small packets are appended to one open buffer (a write of many small packets is
//! one slice); large payloads, and QoS 0 packets encoded once for every subscriber, are
//! queued as shared [`Bytes`] without copying. The I/O layer learns that a connection has
//! bytes from [`Output::Transmit`], takes them as slices for one vectored write with
//! [`Core::transmit`] and reports what the socket accepted with [`Core::transmitted`].

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use mqttkit_codec::{Packet, ProtocolVersion};

use super::{CloseReason, ConnId, Core};

/// Something for the I/O layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// This connection has bytes waiting: write what [`Core::transmit`] gives and report it
    /// with [`Core::transmitted`], now or when the socket is writable. Announced once until
    /// everything queued so far was written.
    Transmit(ConnId),
    /// Write `unsent` (what was queued for the connection before it was closed), then close
    /// it. The core has forgotten the connection.
    Close {
        /// The connection.
        id: ConnId,
        /// Why.
        reason: CloseReason,
        /// Bytes queued and not written yet, in order.
        unsent: Vec<Bytes>,
    },
}

/// Packets below this size are copied into the open buffer rather than queued as chunks
/// of their own.
const SMALL_PACKET: usize = 1024;

/// The bytes waiting to be written to one connection.
#[derive(Debug, Default)]
pub(super) struct Outbound {
    /// Sealed chunks, in order.
    chunks: VecDeque<Bytes>,
    /// Small packets appended after the chunks.
    open: BytesMut,
    /// Bytes in `chunks` and `open`.
    len: usize,
}

impl Outbound {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Queue encoded packets.
    pub(super) fn push(&mut self, bytes: Bytes) {
        self.len = self.len.saturating_add(bytes.len());
        if bytes.len() < SMALL_PACKET {
            self.open.extend_from_slice(&bytes);
        } else {
            self.seal();
            self.chunks.push_back(bytes);
        }
    }

    /// Encode a packet directly into the open buffer; a PUBLISH payload that is large is
    /// queued as a slice of `payload` (the same bytes, not copied).
    pub(super) fn push_packet(
        &mut self,
        packet: &Packet<'_>,
        version: ProtocolVersion,
        payload: Option<&Bytes>,
    ) -> bool {
        let before = self.open.len();
        let Ok(rest) = packet.encode_vectored(version, &mut self.open) else {
            self.open.truncate(before);
            return false;
        };
        let mut added = self.open.len().saturating_sub(before);
        if !rest.is_empty() {
            added = added.saturating_add(rest.len());
            match payload {
                Some(shared) if rest.len() >= SMALL_PACKET => {
                    self.seal();
                    self.chunks.push_back(shared.slice_ref(rest));
                }
                _ => self.open.extend_from_slice(rest),
            }
        }
        self.len = self.len.saturating_add(added);
        true
    }

    fn seal(&mut self) {
        if !self.open.is_empty() {
            self.chunks.push_back(self.open.split().freeze());
        }
    }

    /// Fill `dst` with at most `limit` of the waiting bytes, in order; the number of
    /// slices filled.
    fn slices<'a>(&'a mut self, dst: &mut [IoSlice<'a>], mut limit: usize) -> usize {
        self.seal();
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(self.chunks.iter()) {
            if limit == 0 {
                break;
            }
            let take = chunk.len().min(limit);
            *slot = IoSlice::new(chunk.get(..take).unwrap_or_default());
            limit -= take;
            n += 1;
        }
        n
    }

    /// `n` bytes were written.
    fn consume(&mut self, mut n: usize) {
        self.seal();
        self.len = self.len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else { break };
            if n < front.len() {
                front.advance(n);
                break;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// Everything not written, in order.
    fn into_unsent(mut self) -> Vec<Bytes> {
        self.seal();
        self.chunks.into()
    }
}

impl Core {
    /// Whether [`Self::poll_output`] has something.
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// The next thing the I/O layer has to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The bytes waiting for `id` as up to `dst.len()` slices, in order, for one vectored
    /// write; the number of slices filled (0: nothing waiting, or not open).
    /// With persistence, only bytes the store has caught up with are given (see
    /// `durable`).
    pub fn transmit<'a>(&'a mut self, id: ConnId, dst: &mut [IoSlice<'a>]) -> usize {
        let durable = self.durable.is_some();
        let Some(conn) = self.conns.get_mut(&id) else { return 0 };
        let limit = if durable {
            usize::try_from(conn.release_upto.saturating_sub(conn.written_total)).unwrap_or(usize::MAX)
        } else {
            usize::MAX
        };
        match conn.out.as_deref_mut() {
            Some(out) => out.slices(dst, limit),
            None => 0,
        }
    }

    /// Bytes waiting for `id`.
    pub fn pending_bytes(&self, id: ConnId) -> usize {
        self.conns.get(&id).and_then(|c| c.out.as_ref()).map_or(0, |out| out.len())
    }

    /// Whether the I/O layer should read from `id`: not while its outbound queue is full
    /// (what it sends would only add to it), nor once it is closed.
    pub fn wants_input(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id) && self.pending_bytes(id) < self.config.max_outbound_bytes
    }

    /// `n` of the bytes [`Self::transmit`] gave for `id` were written at `now` (0: the
    /// socket took nothing). Writing makes room: messages waiting for it are sent.
    pub fn transmitted(&mut self, id: ConnId, n: usize, now: Instant) {
        let limit = self.config.max_outbound_bytes;
        let durable = self.durable.is_some();
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Some(out) = conn.out.as_deref_mut() else { return };
        let was_full = out.len() >= limit;
        out.consume(n);
        conn.written_total = conn.written_total.saturating_add(n as u64);
        let left = out.len();
        // Bytes held for the store are not the socket's fault.
        let writable_left = !durable || conn.release_upto > conn.written_total;
        if left == 0 {
            // Nothing waiting: release the buffers (an idle connection holds none).
            conn.out = None;
            conn.announced = false;
            conn.stalled_since = None;
        } else if !writable_left {
            conn.stalled_since = None;
        } else if n > 0 || conn.stalled_since.is_none() {
            // Progress, or the first write the socket did not take whole: the write
            // timeout counts from here. The registered deadline may be earlier; it is
            // moved when it falls due.
            let first = conn.stalled_since.is_none();
            conn.stalled_since = Some(now);
            if first {
                self.reschedule_conn(id);
            }
        }
        if was_full
            && left < limit
            && let Some(client) = self.client_of(id)
        {
            self.pump(&client, now);
        }
    }

    /// Encode and queue a packet for an accepted connection (its version), dropping it if
    /// it exceeds the client's Maximum Packet Size [MQTT-3.1.2-24].
    pub(super) fn send_packet(&mut self, id: ConnId, packet: &Packet<'_>) -> bool {
        let Some(conn) = self.conns.get(&id) else { return false };
        let (version, max) = (conn.version, conn.max_packet_out);
        if packet.encoded_len(version) > max {
            return false;
        }
        self.queue_packet(id, packet, version, None)
    }

    /// Encode and queue a packet in `version`, for answers sent before CONNECT is accepted.
    pub(super) fn send_raw(&mut self, id: ConnId, packet: &Packet<'_>, version: ProtocolVersion) {
        self.queue_packet(id, packet, version, None);
    }

    /// Encode a packet straight into the connection's queue (see [`Outbound::push_packet`]).
    pub(super) fn queue_packet(
        &mut self,
        id: ConnId,
        packet: &Packet<'_>,
        version: ProtocolVersion,
        payload: Option<&Bytes>,
    ) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else { return false };
        let out = conn.out.get_or_insert_default();
        let before = out.len();
        if !out.push_packet(packet, version, payload) {
            return false;
        }
        let added = out.len().saturating_sub(before) as u64;
        self.stats.bytes_sent = self.stats.bytes_sent.saturating_add(added);
        conn.traffic.bytes_out = conn.traffic.bytes_out.saturating_add(added);
        let before_total = conn.queued_total;
        conn.queued_total = conn.queued_total.saturating_add(added);
        if self.bytes_queued(id, before_total, super::durable::promises_state(packet)) {
            self.announce(id);
        }
        true
    }

    /// Queue encoded packets.
    pub(super) fn send_bytes(&mut self, id: ConnId, bytes: Bytes) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        self.stats.bytes_sent = self.stats.bytes_sent.saturating_add(bytes.len() as u64);
        conn.traffic.bytes_out = conn.traffic.bytes_out.saturating_add(bytes.len() as u64);
        let before_total = conn.queued_total;
        conn.queued_total = conn.queued_total.saturating_add(bytes.len() as u64);
        conn.out.get_or_insert_default().push(bytes);
        // Shared encodings are QoS 0 PUBLISH packets: they promise nothing.
        if self.bytes_queued(id, before_total, false) {
            self.announce(id);
        }
    }

    /// Tell the I/O layer once that `id` has bytes waiting.
    pub(super) fn announce(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id)
            && !conn.announced
        {
            conn.announced = true;
            self.outputs.push_back(Output::Transmit(id));
        }
    }

    /// Whether `id`'s outbound queue is full (see `Config::max_outbound_bytes`).
    pub(super) fn outbound_full(&self, id: ConnId) -> bool {
        self.pending_bytes(id) >= self.config.max_outbound_bytes
    }

    /// The unsent bytes of a connection being forgotten.
    pub(super) fn take_unsent(out: Option<Box<Outbound>>) -> Vec<Bytes> {
        out.map(|out| out.into_unsent()).unwrap_or_default()
    }
}

/// Encode one packet in `version`.
pub(super) fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(packet.encoded_len(version));
    packet.encode(version, &mut buf).ok()?;
    Some(buf.freeze())
}

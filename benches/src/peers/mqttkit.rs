//! Our codec: `mqttkit-codec` (this workspace), always built.
//!
//! Decoder: `decode_packet(&[u8], Some(version), max) -> Status<(Packet<'_>, used)>`,
//! fully borrowing: strings are validated `&str`, payloads `&[u8]`, and the 5.0
//! property block and the SUBSCRIBE filter list are validated once and then
//! iterated lazily from the input bytes. The check below reads every field it
//! needs through those iterators, so their cost is part of the measurement.
//! Streams go through [`StreamDecoder`], fed in the (untimed) setup exactly like
//! the owned-buffer peers get their `BytesMut` there.
//!
//! Encoder: `Packet::encode(version, &mut impl BufMut)` into the same
//! preallocated 128 KiB `BytesMut` that rumqttc and rmqtt-codec write into
//! (validation included: `encode` refuses what the decoder would reject). The
//! prepared value is the `Packet` decoded from the sample, borrowing it
//! (`tests/mqttkit.rs` checks that building the same packets from fields with
//! the builder API gives equal values). For large PUBLISH payloads there is
//! also [`encode_vectored_publish_v4`]/[`encode_vectored_publish_v5`]:
//! `encode_vectored` writes only the header and returns the payload borrowed,
//! for a vectored (`writev`) send.

use bytes::BytesMut;
use mqttkit_codec::{
    DecoderConfig, PROTOCOL_MAX_PACKET_SIZE, Packet, Property, ProtocolVersion, Status, StreamDecoder, decode_packet,
};

use super::{frame_len, peer_cases};
use crate::Check;
use crate::check::{PeerResult, err};

pub const KRATE: &str = "mqttkit-codec 0.1.0 (this workspace)";

const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Same limit as the other adapters (MQTT's own maximum).
const MAX: usize = PROTOCOL_MAX_PACKET_SIZE;

/// Single packets are only read (one input serves every iteration); the
/// streams consume the fed [`StreamDecoder`] and always get a fresh input.
pub const DECODE_CONSUMES_INPUT: bool = false;

/// Read-only input for single packets; for a buffer of several frames (the
/// streams) also a [`StreamDecoder`] already fed with it.
#[derive(Debug)]
pub struct Input {
    bytes: Vec<u8>,
    stream: Option<StreamDecoder>,
}

pub fn input(bytes: &[u8]) -> Input {
    let stream = (frame_len(bytes) != Some(bytes.len())).then(|| {
        let mut d = StreamDecoder::new(DecoderConfig { max_packet_size: MAX, version: None });
        d.feed(bytes);
        d
    });
    Input { bytes: bytes.to_vec(), stream }
}

pub type Output = BytesMut;
pub fn output() -> Output {
    BytesMut::with_capacity(128 * 1024)
}
pub fn reset_output(out: &mut Output) {
    out.clear();
}
pub fn output_bytes(out: &Output, n: usize) -> Vec<u8> {
    out[..n].to_vec()
}

peer_cases! {
    PublishV4 => decode_publish_v4, prepare_publish_v4, encode_publish_v4;
    ConnectV4 => decode_connect_v4, prepare_connect_v4, encode_connect_v4;
    SubscribeV4 => decode_subscribe_v4, prepare_subscribe_v4, encode_subscribe_v4;
    PubackV4 => decode_puback_v4, prepare_puback_v4, encode_puback_v4;
    StreamV4 => decode_stream_v4;
    PublishV5 => decode_publish_v5, prepare_publish_v5, encode_publish_v5;
    ConnectV5 => decode_connect_v5, prepare_connect_v5, encode_connect_v5;
    SubscribeV5 => decode_subscribe_v5, prepare_subscribe_v5, encode_subscribe_v5;
    PubackV5 => decode_puback_v5, prepare_puback_v5, encode_puback_v5;
    StreamV5 => decode_stream_v5;
}

/// Decode one complete packet that must fill `bytes` exactly and hand it to
/// `f` by reference. `Packet` is 144 bytes: matching on the returned value in
/// place instead of moving it out through `Result`s saves several `memcpy`
/// calls per packet — what a user matching on `decode_packet(..)?` gets too.
#[inline(always)]
fn with_packet<'a, R>(
    bytes: &'a [u8],
    version: ProtocolVersion,
    f: impl FnOnce(&Packet<'a>) -> PeerResult<R>,
) -> PeerResult<R> {
    match decode_packet(bytes, Some(version), MAX) {
        Ok(Status::Complete((ref p, used))) if used == bytes.len() => f(p),
        Ok(Status::Complete((_, used))) => Err(format!("{} trailing bytes", bytes.len() - used)),
        Ok(Status::Incomplete { .. }) => Err("incomplete packet".into()),
        Err(e) => Err(err(e)),
    }
}

/// The [`Check`] of a decoded packet (see `crate::check` for the fields).
/// Properties are read in one pass over the lazily iterated block.
#[inline]
fn check(p: &Packet<'_>) -> PeerResult<Check> {
    Ok(match p {
        Packet::Publish(p) => {
            let (mut items, mut len) = (0u64, p.topic.len() + p.payload.len());
            for prop in p.properties.iter() {
                match prop {
                    Property::UserProperty(..) => items += 1,
                    Property::MessageExpiryInterval(e) => items += e as u64,
                    Property::ContentType(c) => len += c.len(),
                    _ => {}
                }
            }
            Check::new(p.qos.packet_id().map_or(0, |i| i.get() as u64), items, len as u64)
        }
        Packet::Connect(c) => {
            let mut len = c.client_id.len();
            let mut items = 0u64;
            for prop in c.properties.iter() {
                match prop {
                    Property::SessionExpiryInterval(v) | Property::MaximumPacketSize(v) => items += v as u64,
                    Property::ReceiveMaximum(v) => items += v as u64,
                    _ => {}
                }
            }
            if let Some(w) = &c.will {
                len += w.topic.len() + w.payload.len();
                items += w.qos.as_u8() as u64;
                for prop in w.properties.iter() {
                    if let Property::WillDelayInterval(v) = prop {
                        items += v as u64;
                    }
                }
            }
            len += c.username.map_or(0, |u| u.len()) + c.password.map_or(0, <[u8]>::len);
            Check::new(c.keep_alive as u64, items, len as u64)
        }
        Packet::Subscribe(s) => {
            let (mut n, mut q, mut len) = (0u64, 0u64, 0u64);
            for (filter, options) in s.filters.iter() {
                n += 1;
                q += options.qos.as_u8() as u64;
                len += filter.len() as u64;
            }
            Check::new(s.packet_id.get() as u64, n + q, len)
        }
        Packet::PubAck(a) => Check::new(a.packet_id.get() as u64, a.reason_code.0 as u64, 0),
        other => return Err(format!("unexpected packet {other:?}")),
    })
}

macro_rules! single {
    ($version:ident, $decode:ident, $prepare:ident, $encode:ident, $variant:ident) => {
        pub fn $decode(src: &mut Input) -> PeerResult<Check> {
            with_packet(&src.bytes, $version, |p| match p {
                Packet::$variant(..) => check(p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            })
        }
        /// The prepared value is the whole `Packet` (what `encode` is defined
        /// on), borrowing `bytes`.
        pub fn $prepare(bytes: &[u8]) -> PeerResult<Packet<'_>> {
            with_packet(bytes, $version, |p| match p {
                Packet::$variant(..) => Ok(p.clone()),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            })
        }
        pub fn $encode(p: &Packet<'_>, out: &mut Output) -> PeerResult<usize> {
            let before = out.len();
            p.encode($version, out).map_err(err)?;
            Ok(out.len() - before)
        }
    };
}

single!(V4, decode_publish_v4, prepare_publish_v4, encode_publish_v4, Publish);
single!(V4, decode_connect_v4, prepare_connect_v4, encode_connect_v4, Connect);
single!(V4, decode_subscribe_v4, prepare_subscribe_v4, encode_subscribe_v4, Subscribe);
single!(V4, decode_puback_v4, prepare_puback_v4, encode_puback_v4, PubAck);
single!(V5, decode_publish_v5, prepare_publish_v5, encode_publish_v5, Publish);
single!(V5, decode_connect_v5, prepare_connect_v5, encode_connect_v5, Connect);
single!(V5, decode_subscribe_v5, prepare_subscribe_v5, encode_subscribe_v5, Subscribe);
single!(V5, decode_puback_v5, prepare_puback_v5, encode_puback_v5, PubAck);

/// Vectored encode of a PUBLISH: only the fixed and variable header go into
/// `head`; the payload comes back borrowed (not copied), to be sent with it in
/// one `writev`. Returns (header bytes written, payload).
#[inline]
fn encode_vectored<'a>(p: &Packet<'a>, version: ProtocolVersion, head: &mut Output) -> PeerResult<(usize, &'a [u8])> {
    let before = head.len();
    let payload = p.encode_vectored(version, head).map_err(err)?;
    Ok((head.len() - before, payload))
}

pub fn encode_vectored_publish_v4<'a>(p: &Packet<'a>, head: &mut Output) -> PeerResult<(usize, &'a [u8])> {
    encode_vectored(p, V4, head)
}
pub fn encode_vectored_publish_v5<'a>(p: &Packet<'a>, head: &mut Output) -> PeerResult<(usize, &'a [u8])> {
    encode_vectored(p, V5, head)
}

/// Whole stream through [`StreamDecoder::next_packet`] (the decoder was fed in
/// [`input`]; a stream without CONNECT needs the version set first).
#[inline]
fn decode_stream(src: &mut Input, version: ProtocolVersion) -> PeerResult<Check> {
    let d = src.stream.as_mut().ok_or("input is a single frame, not a stream")?;
    d.set_version(version);
    let mut total = Check::default();
    while let Some(ref p) = d.next_packet().map_err(err)? {
        total += check(p)?;
    }
    if d.buffered() != 0 {
        return Err(format!("{} bytes left undecoded", d.buffered()));
    }
    Ok(total)
}

pub fn decode_stream_v4(src: &mut Input) -> PeerResult<Check> {
    decode_stream(src, V4)
}
pub fn decode_stream_v5(src: &mut Input) -> PeerResult<Check> {
    decode_stream(src, V5)
}

//! Peer: `ntex-mqtt` codec (`ntex_mqtt::v3::codec`, `ntex_mqtt::v5::codec`).
//!
//! Version note: ntex-mqtt 9.x does not build on Rust 1.95 — 9.0.0's
//! dependency ntex-io 4.0.0 calls `BytesMut::reserve_capacity`, which no
//! published ntex-bytes has (E0599), and 9.1+ needs Rust 1.97 — so this
//! adapter is written against ntex-mqtt 8.2.1 (`version = "8"`).
//!
//! Decoder: `ntex_codec::Decoder::decode(&self, &mut ntex_bytes::BytesMut)`.
//! PUBLISH comes out as `Decoded::Publish(header, payload, size)`: the payload
//! is a separate zero-copy `Bytes` (with the default `min_chunk_size` 0 and a
//! complete frame in the buffer it is always the whole payload).
//!
//! Encoder: `ntex_codec::Encoder::encodev(&self, Encoded, &mut BytePages)`,
//! by value, so `encode_*` clones the prepared packet. Payloads larger than
//! 4 KiB are appended to the pages without copying.

use ntex_bytes::{BytePageSize, BytePages, Bytes, BytesMut};
use ntex_codec::{Decoder, Encoder};
use ntex_mqtt::{v3, v5};

use super::peer_cases;
use crate::Check;
use crate::check::{PeerResult, err};

pub const KRATE: &str = "ntex-mqtt 8.2.1";

/// Decoding splits the frame off the `BytesMut`: every decode needs a fresh input.
pub const DECODE_CONSUMES_INPUT: bool = true;

pub type Input = BytesMut;
pub fn input(bytes: &[u8]) -> Input {
    BytesMut::copy_from_slice(bytes)
}

pub type Output = BytePages;
pub fn output() -> Output {
    BytePages::new(BytePageSize::Size16)
}
pub fn reset_output(out: &mut Output) {
    let n = out.len();
    out.advance_to(n);
}
pub fn output_bytes(out: &Output, n: usize) -> Vec<u8> {
    let v: Vec<u8> = out.iter().flatten().copied().collect();
    v[v.len() - n..].to_vec()
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

// ---------------------------------------------------------------------------
// 3.1.1
// ---------------------------------------------------------------------------

fn read_v4(src: &mut BytesMut) -> PeerResult<v3::codec::Decoded> {
    v3::codec::Codec::new().decode(src).map_err(err)?.ok_or_else(|| "incomplete packet".to_string())
}

fn check_v4(d: &v3::codec::Decoded) -> PeerResult<Check> {
    use v3::codec::{Decoded, Packet};
    Ok(match d {
        Decoded::Publish(p, payload, _) => {
            Check::new(p.packet_id.map_or(0, |i| i.get() as u64), 0, (p.topic.len() + payload.len()) as u64)
        }
        Decoded::Packet(Packet::Connect(c), _) => {
            let mut len = c.client_id.len();
            let mut items = 0;
            if let Some(w) = &c.last_will {
                len += w.topic.len() + w.message.len();
                items += u8::from(w.qos) as u64;
            }
            len += c.username.as_ref().map_or(0, |u| u.len()) + c.password.as_ref().map_or(0, |p| p.len());
            Check::new(c.keep_alive as u64, items, len as u64)
        }
        Decoded::Packet(Packet::Subscribe { packet_id, topic_filters }, _) => Check::new(
            packet_id.get() as u64,
            topic_filters.len() as u64 + topic_filters.iter().map(|f| u8::from(f.1) as u64).sum::<u64>(),
            topic_filters.iter().map(|f| f.0.len() as u64).sum(),
        ),
        Decoded::Packet(Packet::PublishAck { packet_id }, _) => Check::new(packet_id.get() as u64, 0, 0),
        other => return Err(format!("unexpected {other:?}")),
    })
}

pub fn decode_publish_v4(src: &mut Input) -> PeerResult<Check> {
    match read_v4(src)? {
        d @ v3::codec::Decoded::Publish(..) => check_v4(&d),
        other => Err(format!("expected Publish, got {other:?}")),
    }
}

/// PUBLISH header and payload travel separately in ntex-mqtt.
pub type PublishV4 = (v3::codec::Publish, Bytes);

pub fn prepare_publish_v4(bytes: &[u8]) -> PeerResult<PublishV4> {
    match read_v4(&mut input(bytes))? {
        v3::codec::Decoded::Publish(p, payload, _) => Ok((p, payload)),
        other => Err(format!("expected Publish, got {other:?}")),
    }
}

fn encode_v4(item: v3::codec::Encoded, out: &mut Output) -> PeerResult<usize> {
    let before = out.len();
    v3::codec::Codec::new().encodev(item, out).map_err(err)?;
    Ok(out.len() - before)
}

pub fn encode_publish_v4(p: &PublishV4, out: &mut Output) -> PeerResult<usize> {
    encode_v4(v3::codec::Encoded::Publish(p.0.clone(), Some(p.1.clone())), out)
}

macro_rules! packet_v4 {
    ($decode:ident, $prepare:ident, $encode:ident, $variant:ident) => {
        pub fn $decode(src: &mut Input) -> PeerResult<Check> {
            match read_v4(src)? {
                d @ v3::codec::Decoded::Packet(v3::codec::Packet::$variant { .. }, _) => check_v4(&d),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $prepare(bytes: &[u8]) -> PeerResult<v3::codec::Packet> {
            match read_v4(&mut input(bytes))? {
                v3::codec::Decoded::Packet(p @ v3::codec::Packet::$variant { .. }, _) => Ok(p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $encode(p: &v3::codec::Packet, out: &mut Output) -> PeerResult<usize> {
            encode_v4(v3::codec::Encoded::Packet(p.clone()), out)
        }
    };
}

packet_v4!(decode_connect_v4, prepare_connect_v4, encode_connect_v4, Connect);
packet_v4!(decode_subscribe_v4, prepare_subscribe_v4, encode_subscribe_v4, Subscribe);
packet_v4!(decode_puback_v4, prepare_puback_v4, encode_puback_v4, PublishAck);

pub fn decode_stream_v4(src: &mut Input) -> PeerResult<Check> {
    let codec = v3::codec::Codec::new();
    let mut total = Check::default();
    while let Some(d) = codec.decode(src).map_err(err)? {
        total += check_v4(&d)?;
    }
    if !src.is_empty() {
        return Err(format!("{} bytes left undecoded", src.len()));
    }
    Ok(total)
}

// ---------------------------------------------------------------------------
// 5.0
// ---------------------------------------------------------------------------

fn read_v5(src: &mut BytesMut) -> PeerResult<v5::codec::Decoded> {
    v5::codec::Codec::new().decode(src).map_err(err)?.ok_or_else(|| "incomplete packet".to_string())
}

fn check_v5(d: &v5::codec::Decoded) -> PeerResult<Check> {
    use v5::codec::{Decoded, Packet};
    Ok(match d {
        Decoded::Publish(p, payload, _) => {
            let props = &p.properties;
            Check::new(
                p.packet_id.map_or(0, |i| i.get() as u64),
                props.user_properties.len() as u64 + props.message_expiry_interval.map_or(0, |e| e.get() as u64),
                (p.topic.len() + payload.len() + props.content_type.as_ref().map_or(0, |c| c.len())) as u64,
            )
        }
        Decoded::Packet(Packet::Connect(c), _) => {
            let mut len = c.client_id.len();
            let mut items = c.session_expiry_interval_secs as u64
                + c.receive_max.map_or(0, |r| r.get() as u64)
                + c.max_packet_size.map_or(0, |m| m.get() as u64);
            if let Some(w) = &c.last_will {
                len += w.topic.len() + w.message.len();
                items += u8::from(w.qos) as u64 + w.will_delay_interval_sec.unwrap_or(0) as u64;
            }
            len += c.username.as_ref().map_or(0, |u| u.len()) + c.password.as_ref().map_or(0, |p| p.len());
            Check::new(c.keep_alive as u64, items, len as u64)
        }
        Decoded::Packet(Packet::Subscribe(s), _) => Check::new(
            s.packet_id.get() as u64,
            s.topic_filters.len() as u64 + s.topic_filters.iter().map(|f| u8::from(f.1.qos) as u64).sum::<u64>(),
            s.topic_filters.iter().map(|f| f.0.len() as u64).sum(),
        ),
        Decoded::Packet(Packet::PublishAck(a), _) => {
            Check::new(a.packet_id.get() as u64, u8::from(a.reason_code) as u64, 0)
        }
        other => return Err(format!("unexpected {other:?}")),
    })
}

pub fn decode_publish_v5(src: &mut Input) -> PeerResult<Check> {
    match read_v5(src)? {
        d @ v5::codec::Decoded::Publish(..) => check_v5(&d),
        other => Err(format!("expected Publish, got {other:?}")),
    }
}

pub type PublishV5 = (v5::codec::Publish, Bytes);

pub fn prepare_publish_v5(bytes: &[u8]) -> PeerResult<PublishV5> {
    match read_v5(&mut input(bytes))? {
        v5::codec::Decoded::Publish(p, payload, _) => Ok((p, payload)),
        other => Err(format!("expected Publish, got {other:?}")),
    }
}

fn encode_v5(item: v5::codec::Encoded, out: &mut Output) -> PeerResult<usize> {
    let before = out.len();
    v5::codec::Codec::new().encodev(item, out).map_err(err)?;
    Ok(out.len() - before)
}

pub fn encode_publish_v5(p: &PublishV5, out: &mut Output) -> PeerResult<usize> {
    encode_v5(v5::codec::Encoded::Publish(p.0.clone(), Some(p.1.clone())), out)
}

macro_rules! packet_v5 {
    ($decode:ident, $prepare:ident, $encode:ident, $variant:ident) => {
        pub fn $decode(src: &mut Input) -> PeerResult<Check> {
            match read_v5(src)? {
                d @ v5::codec::Decoded::Packet(v5::codec::Packet::$variant(..), _) => check_v5(&d),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $prepare(bytes: &[u8]) -> PeerResult<v5::codec::Packet> {
            match read_v5(&mut input(bytes))? {
                v5::codec::Decoded::Packet(p @ v5::codec::Packet::$variant(..), _) => Ok(p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $encode(p: &v5::codec::Packet, out: &mut Output) -> PeerResult<usize> {
            encode_v5(v5::codec::Encoded::Packet(p.clone()), out)
        }
    };
}

packet_v5!(decode_connect_v5, prepare_connect_v5, encode_connect_v5, Connect);
packet_v5!(decode_subscribe_v5, prepare_subscribe_v5, encode_subscribe_v5, Subscribe);
packet_v5!(decode_puback_v5, prepare_puback_v5, encode_puback_v5, PublishAck);

pub fn decode_stream_v5(src: &mut Input) -> PeerResult<Check> {
    let codec = v5::codec::Codec::new();
    let mut total = Check::default();
    while let Some(d) = codec.decode(src).map_err(err)? {
        total += check_v5(&d)?;
    }
    if !src.is_empty() {
        return Err(format!("{} bytes left undecoded", src.len()));
    }
    Ok(total)
}

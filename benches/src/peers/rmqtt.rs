//! Peer: `rmqtt-codec` (the codec of the rmqtt broker, derived from
//! ntex-mqtt's codec, on `bytes`/`tokio-util`).
//!
//! The only public decode entry point is the tokio-util `Decoder`
//! (`v3::Codec` / `v5::Codec`), so single packets go through it too. The
//! `Encoder` takes the packet by value: `encode_*` clones the prepared packet
//! (refcount bumps for `Bytes`/`ByteString`, plus `Vec`/`Box` allocations).
//! Payloads and strings are zero-copy slices of the input buffer.

use bytes::BytesMut;
use rmqtt_codec::{v3, v5};
use tokio_util::codec::{Decoder, Encoder};

use super::{MAX_PACKET, peer_cases};
use crate::Check;
use crate::check::{PeerResult, err};

pub const KRATE: &str = "rmqtt-codec 0.3.1";

/// Decoding splits the frame off the `BytesMut`: every decode needs a fresh input.
pub const DECODE_CONSUMES_INPUT: bool = true;

pub type Input = BytesMut;
pub fn input(bytes: &[u8]) -> Input {
    BytesMut::from(bytes)
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

// ---------------------------------------------------------------------------
// 3.1.1
// ---------------------------------------------------------------------------

fn read_v4(src: &mut BytesMut) -> PeerResult<v3::Packet> {
    match v3::Codec::new(MAX_PACKET).decode(src).map_err(err)? {
        Some((p, _)) => Ok(p),
        None => Err("incomplete packet".into()),
    }
}

fn check_v4(p: &v3::Packet) -> PeerResult<Check> {
    Ok(match p {
        v3::Packet::Publish(p) => {
            Check::new(p.packet_id.map_or(0, |i| i.get() as u64), 0, (p.topic.len() + p.payload.len()) as u64)
        }
        v3::Packet::Connect(c) => {
            let mut len = c.client_id.len();
            let mut items = 0;
            if let Some(w) = &c.last_will {
                len += w.topic.len() + w.message.len();
                items += u8::from(w.qos) as u64;
            }
            len += c.username.as_ref().map_or(0, |u| u.len()) + c.password.as_ref().map_or(0, |p| p.len());
            Check::new(c.keep_alive as u64, items, len as u64)
        }
        v3::Packet::Subscribe { packet_id, topic_filters } => Check::new(
            packet_id.get() as u64,
            topic_filters.len() as u64 + topic_filters.iter().map(|f| u8::from(f.1) as u64).sum::<u64>(),
            topic_filters.iter().map(|f| f.0.len() as u64).sum(),
        ),
        v3::Packet::PublishAck { packet_id } => Check::new(packet_id.get() as u64, 0, 0),
        other => return Err(format!("unexpected packet {other:?}")),
    })
}

macro_rules! single {
    ($read:ident, $check:ident, $m:ident, $decode:ident, $prepare:ident, $variant:ident) => {
        pub fn $decode(src: &mut Input) -> PeerResult<Check> {
            match $read(src)? {
                p @ $m::Packet::$variant { .. } => $check(&p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        /// The whole `Packet` is the prepared value (the encoder takes a `Packet`).
        pub fn $prepare(bytes: &[u8]) -> PeerResult<$m::Packet> {
            match $read(&mut input(bytes))? {
                p @ $m::Packet::$variant { .. } => Ok(p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
    };
}

single!(read_v4, check_v4, v3, decode_publish_v4, prepare_publish_v4, Publish);
single!(read_v4, check_v4, v3, decode_connect_v4, prepare_connect_v4, Connect);
single!(read_v4, check_v4, v3, decode_subscribe_v4, prepare_subscribe_v4, Subscribe);
single!(read_v4, check_v4, v3, decode_puback_v4, prepare_puback_v4, PublishAck);

pub fn encode_v4(p: &v3::Packet, out: &mut Output) -> PeerResult<usize> {
    let before = out.len();
    v3::Codec::new(MAX_PACKET).encode(p.clone(), out).map_err(err)?;
    Ok(out.len() - before)
}
pub use encode_v4 as encode_publish_v4;
pub use encode_v4 as encode_connect_v4;
pub use encode_v4 as encode_subscribe_v4;
pub use encode_v4 as encode_puback_v4;

pub fn decode_stream_v4(src: &mut Input) -> PeerResult<Check> {
    let mut codec = v3::Codec::new(MAX_PACKET);
    let mut total = Check::default();
    while let Some((p, _)) = codec.decode(src).map_err(err)? {
        total += check_v4(&p)?;
    }
    if !src.is_empty() {
        return Err(format!("{} bytes left undecoded", src.len()));
    }
    Ok(total)
}

// ---------------------------------------------------------------------------
// 5.0
// ---------------------------------------------------------------------------

fn read_v5(src: &mut BytesMut) -> PeerResult<v5::Packet> {
    match v5::Codec::new(MAX_PACKET, MAX_PACKET).decode(src).map_err(err)? {
        Some((p, _)) => Ok(p),
        None => Err("incomplete packet".into()),
    }
}

fn check_v5(p: &v5::Packet) -> PeerResult<Check> {
    Ok(match p {
        v5::Packet::Publish(p) => {
            let (mut items, mut len) = (0u64, p.topic.len() + p.payload.len());
            if let Some(props) = &p.properties {
                items +=
                    props.user_properties.len() as u64 + props.message_expiry_interval.map_or(0, |e| e.get() as u64);
                len += props.content_type.as_ref().map_or(0, |c| c.len());
            }
            Check::new(p.packet_id.map_or(0, |i| i.get() as u64), items, len as u64)
        }
        v5::Packet::Connect(c) => {
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
        v5::Packet::Subscribe(s) => Check::new(
            s.packet_id.get() as u64,
            s.topic_filters.len() as u64 + s.topic_filters.iter().map(|f| u8::from(f.1.qos) as u64).sum::<u64>(),
            s.topic_filters.iter().map(|f| f.0.len() as u64).sum(),
        ),
        v5::Packet::PublishAck(a) => Check::new(a.packet_id.get() as u64, a.reason_code as u64, 0),
        other => return Err(format!("unexpected packet {other:?}")),
    })
}

single!(read_v5, check_v5, v5, decode_publish_v5, prepare_publish_v5, Publish);
single!(read_v5, check_v5, v5, decode_connect_v5, prepare_connect_v5, Connect);
single!(read_v5, check_v5, v5, decode_subscribe_v5, prepare_subscribe_v5, Subscribe);
single!(read_v5, check_v5, v5, decode_puback_v5, prepare_puback_v5, PublishAck);

pub fn encode_v5(p: &v5::Packet, out: &mut Output) -> PeerResult<usize> {
    let before = out.len();
    v5::Codec::new(MAX_PACKET, MAX_PACKET).encode(p.clone(), out).map_err(err)?;
    Ok(out.len() - before)
}
pub use encode_v5 as encode_publish_v5;
pub use encode_v5 as encode_connect_v5;
pub use encode_v5 as encode_subscribe_v5;
pub use encode_v5 as encode_puback_v5;

pub fn decode_stream_v5(src: &mut Input) -> PeerResult<Check> {
    let mut codec = v5::Codec::new(MAX_PACKET, MAX_PACKET);
    let mut total = Check::default();
    while let Some((p, _)) = codec.decode(src).map_err(err)? {
        total += check_v5(&p)?;
    }
    if !src.is_empty() {
        return Err(format!("{} bytes left undecoded", src.len()));
    }
    Ok(total)
}

//! Peer: rumqttc's `mqttbytes` (built without TLS: `default-features = false`).
//!
//! * 3.1.1: `rumqttc::mqttbytes::v4` — `Packet::read(&mut BytesMut, max)`,
//!   per-packet `write(&self, &mut BytesMut)`, `Codec` (tokio-util) for streams.
//! * 5.0: `rumqttc::v5::mqttbytes::v5` — same shape, `max: Option<u32>`.
//!
//! Both decoders split the frame off the input `BytesMut` and keep payloads
//! as `Bytes` slices of it (zero copy); topics and strings are copied into
//! `String`s (the 5.0 PUBLISH topic stays `Bytes`).

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use tokio_util::codec::Decoder;

use super::{MAX_PACKET, peer_cases};
use crate::Check;
use crate::check::{PeerResult, err};

pub const KRATE: &str = "rumqttc 0.25.1";

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

fn read_v4(src: &mut BytesMut) -> PeerResult<v4::Packet> {
    v4::Packet::read(src, MAX_PACKET as usize).map_err(err)
}

fn check_v4(p: &v4::Packet) -> PeerResult<Check> {
    Ok(match p {
        v4::Packet::Publish(p) => Check::new(p.pkid as u64, 0, (p.topic.len() + p.payload.len()) as u64),
        v4::Packet::Connect(c) => {
            let mut len = c.client_id.len();
            let mut items = 0;
            if let Some(w) = &c.last_will {
                len += w.topic.len() + w.message.len();
                items += w.qos as u64;
            }
            if let Some(l) = &c.login {
                len += l.username.len() + l.password.len();
            }
            Check::new(c.keep_alive as u64, items, len as u64)
        }
        v4::Packet::Subscribe(s) => Check::new(
            s.pkid as u64,
            s.filters.len() as u64 + s.filters.iter().map(|f| f.qos as u64).sum::<u64>(),
            s.filters.iter().map(|f| f.path.len() as u64).sum(),
        ),
        v4::Packet::PubAck(a) => Check::new(a.pkid as u64, 0, 0),
        other => return Err(format!("unexpected packet {other:?}")),
    })
}

macro_rules! single_v4 {
    ($decode:ident, $prepare:ident, $encode:ident, $variant:ident, $ty:ty) => {
        pub fn $decode(src: &mut Input) -> PeerResult<Check> {
            match read_v4(src)? {
                p @ v4::Packet::$variant(..) => check_v4(&p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $prepare(bytes: &[u8]) -> PeerResult<$ty> {
            match read_v4(&mut input(bytes))? {
                v4::Packet::$variant(p) => Ok(p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $encode(p: &$ty, out: &mut Output) -> PeerResult<usize> {
            p.write(out).map_err(err)
        }
    };
}

single_v4!(decode_publish_v4, prepare_publish_v4, encode_publish_v4, Publish, v4::Publish);
single_v4!(decode_connect_v4, prepare_connect_v4, encode_connect_v4, Connect, v4::Connect);
single_v4!(decode_subscribe_v4, prepare_subscribe_v4, encode_subscribe_v4, Subscribe, v4::Subscribe);
single_v4!(decode_puback_v4, prepare_puback_v4, encode_puback_v4, PubAck, v4::PubAck);

/// Whole stream through the tokio-util `Codec` (what rumqttc's framed
/// transport uses).
pub fn decode_stream_v4(src: &mut Input) -> PeerResult<Check> {
    let mut codec = v4::Codec { max_incoming_size: MAX_PACKET as usize, max_outgoing_size: MAX_PACKET as usize };
    let mut total = Check::default();
    while let Some(p) = codec.decode(src).map_err(err)? {
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
    v5::Packet::read(src, Some(MAX_PACKET)).map_err(err)
}

fn check_v5(p: &v5::Packet) -> PeerResult<Check> {
    Ok(match p {
        v5::Packet::Publish(p) => {
            let (mut items, mut len) = (0u64, p.topic.len() + p.payload.len());
            if let Some(props) = &p.properties {
                items += props.user_properties.len() as u64 + props.message_expiry_interval.unwrap_or(0) as u64;
                len += props.content_type.as_ref().map_or(0, |c| c.len());
            }
            Check::new(p.pkid as u64, items, len as u64)
        }
        v5::Packet::Connect(c, will, login) => {
            let mut len = c.client_id.len();
            let mut items = 0u64;
            if let Some(props) = &c.properties {
                items += props.session_expiry_interval.unwrap_or(0) as u64
                    + props.receive_maximum.unwrap_or(0) as u64
                    + props.max_packet_size.unwrap_or(0) as u64;
            }
            if let Some(w) = will {
                len += w.topic.len() + w.message.len();
                items += w.qos as u64;
                if let Some(wp) = &w.properties {
                    items += wp.delay_interval.unwrap_or(0) as u64;
                }
            }
            if let Some(l) = login {
                len += l.username.len() + l.password.len();
            }
            Check::new(c.keep_alive as u64, items, len as u64)
        }
        v5::Packet::Subscribe(s) => Check::new(
            s.pkid as u64,
            s.filters.len() as u64 + s.filters.iter().map(|f| f.qos as u64).sum::<u64>(),
            s.filters.iter().map(|f| f.path.len() as u64).sum(),
        ),
        v5::Packet::PubAck(a) => {
            let reason = match a.reason {
                v5::PubAckReason::Success => 0,
                v5::PubAckReason::NoMatchingSubscribers => 0x10,
                _ => 0x80,
            };
            Check::new(a.pkid as u64, reason, 0)
        }
        other => return Err(format!("unexpected packet {other:?}")),
    })
}

macro_rules! single_v5 {
    ($decode:ident, $prepare:ident, $variant:ident, $ty:ty) => {
        pub fn $decode(src: &mut Input) -> PeerResult<Check> {
            match read_v5(src)? {
                p @ v5::Packet::$variant(..) => check_v5(&p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $prepare(bytes: &[u8]) -> PeerResult<$ty> {
            match read_v5(&mut input(bytes))? {
                v5::Packet::$variant(p) => Ok(p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
    };
}

single_v5!(decode_publish_v5, prepare_publish_v5, Publish, v5::Publish);
single_v5!(decode_subscribe_v5, prepare_subscribe_v5, Subscribe, v5::Subscribe);
single_v5!(decode_puback_v5, prepare_puback_v5, PubAck, v5::PubAck);

pub fn encode_publish_v5(p: &v5::Publish, out: &mut Output) -> PeerResult<usize> {
    p.write(out).map_err(err)
}
pub fn encode_subscribe_v5(p: &v5::Subscribe, out: &mut Output) -> PeerResult<usize> {
    p.write(out).map_err(err)
}
pub fn encode_puback_v5(p: &v5::PubAck, out: &mut Output) -> PeerResult<usize> {
    p.write(out).map_err(err)
}

pub fn decode_connect_v5(src: &mut Input) -> PeerResult<Check> {
    match read_v5(src)? {
        p @ v5::Packet::Connect(..) => check_v5(&p),
        other => Err(format!("expected Connect, got {other:?}")),
    }
}

/// rumqttc keeps the will and the login next to the `Connect` struct.
pub type ConnectV5 = (v5::Connect, Option<v5::LastWill>, Option<v5::Login>);

pub fn prepare_connect_v5(bytes: &[u8]) -> PeerResult<ConnectV5> {
    match read_v5(&mut input(bytes))? {
        v5::Packet::Connect(c, w, l) => Ok((c, w, l)),
        other => Err(format!("expected Connect, got {other:?}")),
    }
}
pub fn encode_connect_v5(p: &ConnectV5, out: &mut Output) -> PeerResult<usize> {
    p.0.write(&p.1, &p.2, out).map_err(err)
}

pub fn decode_stream_v5(src: &mut Input) -> PeerResult<Check> {
    let mut codec = v5::Codec { max_incoming_size: Some(MAX_PACKET), max_outgoing_size: Some(MAX_PACKET) };
    let mut total = Check::default();
    while let Some(p) = codec.decode(src).map_err(err)? {
        total += check_v5(&p)?;
    }
    if !src.is_empty() {
        return Err(format!("{} bytes left undecoded", src.len()));
    }
    Ok(total)
}

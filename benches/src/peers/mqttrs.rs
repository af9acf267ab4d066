//! Peer: `mqttrs` (MQTT 3.1.1 only).
//!
//! Borrowing decoder: `decode_slice(&[u8]) -> Option<Packet<'_>>`; topics,
//! payloads, client id, will, username and password borrow the input. SUBSCRIBE
//! filters are copied into `String`s in a `Vec` (with the default `std`
//! feature). Encoder: `encode_slice(&Packet, &mut [u8]) -> len`, into a
//! caller-provided slice, no allocation.
//!
//! `decode_slice` does not report how many bytes it consumed, so the stream
//! adapter reads each frame's length itself ([`super::frame_len`], a few
//! instructions per packet) and slices the buffer.

use mqttrs::{Packet, QoS, QosPid, decode_slice, encode_slice};

use super::{frame_len, peer_cases};
use crate::Check;
use crate::check::{PeerResult, err};

pub const KRATE: &str = "mqttrs 0.4.1";

/// Decoding only reads the input: one input serves every iteration.
pub const DECODE_CONSUMES_INPUT: bool = false;

/// Read-only input.
pub type Input = Vec<u8>;
pub fn input(bytes: &[u8]) -> Input {
    bytes.to_vec()
}

/// `encode_slice` writes into a slice: a zeroed 128 KiB buffer, reused.
pub type Output = Vec<u8>;
pub fn output() -> Output {
    vec![0; 128 * 1024]
}
pub fn reset_output(_out: &mut Output) {}
pub fn output_bytes(out: &Output, n: usize) -> Vec<u8> {
    out[..n].to_vec()
}

peer_cases! {
    PublishV4 => decode_publish_v4, prepare_publish_v4, encode_publish_v4;
    ConnectV4 => decode_connect_v4, prepare_connect_v4, encode_connect_v4;
    SubscribeV4 => decode_subscribe_v4, prepare_subscribe_v4, encode_subscribe_v4;
    PubackV4 => decode_puback_v4, prepare_puback_v4, encode_puback_v4;
    StreamV4 => decode_stream_v4;
}

fn qos(q: QoS) -> u64 {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

fn read(bytes: &[u8]) -> PeerResult<Packet<'_>> {
    decode_slice(bytes).map_err(err)?.ok_or_else(|| "incomplete packet".to_string())
}

fn check(p: &Packet<'_>) -> PeerResult<Check> {
    Ok(match p {
        Packet::Publish(p) => {
            let id = match p.qospid {
                QosPid::AtMostOnce => 0,
                QosPid::AtLeastOnce(pid) | QosPid::ExactlyOnce(pid) => pid.get() as u64,
            };
            Check::new(id, 0, (p.topic_name.len() + p.payload.len()) as u64)
        }
        Packet::Connect(c) => {
            let mut len = c.client_id.len();
            let mut items = 0;
            if let Some(w) = &c.last_will {
                len += w.topic.len() + w.message.len();
                items += qos(w.qos);
            }
            len += c.username.map_or(0, str::len) + c.password.map_or(0, <[u8]>::len);
            Check::new(c.keep_alive as u64, items, len as u64)
        }
        Packet::Subscribe(s) => Check::new(
            s.pid.get() as u64,
            s.topics.len() as u64 + s.topics.iter().map(|t| qos(t.qos)).sum::<u64>(),
            s.topics.iter().map(|t| t.topic_path.len() as u64).sum(),
        ),
        Packet::Puback(pid) => Check::new(pid.get() as u64, 0, 0),
        other => return Err(format!("unexpected packet {other:?}")),
    })
}

macro_rules! single {
    ($decode:ident, $prepare:ident, $encode:ident, $variant:ident) => {
        pub fn $decode(src: &mut Input) -> PeerResult<Check> {
            match read(src)? {
                p @ Packet::$variant(..) => check(&p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        /// The prepared value is the whole `Packet` (what `encode_slice` takes),
        /// borrowing `bytes`.
        pub fn $prepare(bytes: &[u8]) -> PeerResult<Packet<'_>> {
            match read(bytes)? {
                p @ Packet::$variant(..) => Ok(p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $encode(p: &Packet<'_>, out: &mut Output) -> PeerResult<usize> {
            encode_slice(p, out).map_err(err)
        }
    };
}

single!(decode_publish_v4, prepare_publish_v4, encode_publish_v4, Publish);
single!(decode_connect_v4, prepare_connect_v4, encode_connect_v4, Connect);
single!(decode_subscribe_v4, prepare_subscribe_v4, encode_subscribe_v4, Subscribe);
single!(decode_puback_v4, prepare_puback_v4, encode_puback_v4, Puback);

pub fn decode_stream_v4(src: &mut Input) -> PeerResult<Check> {
    let mut buf: &[u8] = src;
    let mut total = Check::default();
    while !buf.is_empty() {
        let n = frame_len(buf).ok_or("incomplete frame")?;
        total += check(&read(buf)?)?;
        buf = &buf[n..];
    }
    Ok(total)
}

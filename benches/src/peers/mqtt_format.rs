//! Peer: `mqtt-format` 0.4 (cloudmqtt's nom-based parser, MQTT 3.1.1 only).
//!
//! Decoder: `mpacket(&[u8]) -> IResult<rest, MPacket<'_>>`, fully borrowing.
//! SUBSCRIBE filters are validated and counted at decode time but kept as a
//! raw slice; reading them (as the check does) parses them a second time via
//! the iterator — that is what a user of this API pays.
//!
//! Encoder: only `async fn MPacket::write_to(Pin<&mut impl futures::AsyncWrite>)`.
//! Writing into a `Vec<u8>` never returns `Pending`, so the adapter polls the
//! future once with `Waker::noop()` (no executor, no extra dependency).

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use mqtt_format::v3::packet::{MPacket, mpacket};
use mqtt_format::v3::qos::MQualityOfService;

use super::peer_cases;
use crate::Check;
use crate::check::{PeerResult, err};

pub const KRATE: &str = "mqtt-format 0.4.0";

/// Decoding only reads the input: one input serves every iteration.
pub const DECODE_CONSUMES_INPUT: bool = false;

/// Read-only input.
pub type Input = Vec<u8>;
pub fn input(bytes: &[u8]) -> Input {
    bytes.to_vec()
}

pub type Output = Vec<u8>;
pub fn output() -> Output {
    Vec::with_capacity(128 * 1024)
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
}

fn qos(q: MQualityOfService) -> u64 {
    q.to_byte() as u64
}

/// Parse one packet; returns it and the unparsed rest.
fn read(bytes: &[u8]) -> PeerResult<(MPacket<'_>, &[u8])> {
    let (rest, p) = mpacket(bytes).map_err(err)?;
    Ok((p, rest))
}

fn read_one(bytes: &[u8]) -> PeerResult<MPacket<'_>> {
    let (p, rest) = read(bytes)?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes", rest.len()));
    }
    Ok(p)
}

fn check(p: &MPacket<'_>) -> PeerResult<Check> {
    Ok(match p {
        MPacket::Publish(p) => {
            Check::new(p.id.map_or(0, |i| i.0 as u64), 0, (p.topic_name.value.len() + p.payload.len()) as u64)
        }
        MPacket::Connect(c) => {
            let mut len = c.client_id.value.len();
            let mut items = 0;
            if let Some(w) = &c.will {
                len += w.topic.value.len() + w.payload.len();
                items += qos(w.qos);
            }
            len += c.username.map_or(0, |u| u.value.len()) + c.password.map_or(0, <[u8]>::len);
            Check::new(c.keep_alive as u64, items, len as u64)
        }
        MPacket::Subscribe(s) => {
            let (mut n, mut q, mut len) = (0u64, 0u64, 0u64);
            for r in s.subscriptions {
                n += 1;
                q += qos(r.qos);
                len += r.topic.value.len() as u64;
            }
            if n != s.subscriptions.count as u64 {
                return Err(format!("iterated {n} filters, count says {}", s.subscriptions.count));
            }
            Check::new(s.id.0 as u64, n + q, len)
        }
        MPacket::Puback(a) => Check::new(a.id.0 as u64, 0, 0),
        other => return Err(format!("unexpected packet {other:?}")),
    })
}

macro_rules! single {
    ($decode:ident, $prepare:ident, $encode:ident, $variant:ident) => {
        pub fn $decode(src: &mut Input) -> PeerResult<Check> {
            match read_one(src)? {
                p @ MPacket::$variant(..) => check(&p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        /// The prepared value is the whole `MPacket` (what `write_to` is
        /// defined on), borrowing `bytes`.
        pub fn $prepare(bytes: &[u8]) -> PeerResult<MPacket<'_>> {
            match read_one(bytes)? {
                p @ MPacket::$variant(..) => Ok(p),
                other => Err(format!("expected {}, got {other:?}", stringify!($variant))),
            }
        }
        pub fn $encode(p: &MPacket<'_>, out: &mut Output) -> PeerResult<usize> {
            write(p, out)
        }
    };
}

single!(decode_publish_v4, prepare_publish_v4, encode_publish_v4, Publish);
single!(decode_connect_v4, prepare_connect_v4, encode_connect_v4, Connect);
single!(decode_subscribe_v4, prepare_subscribe_v4, encode_subscribe_v4, Subscribe);
single!(decode_puback_v4, prepare_puback_v4, encode_puback_v4, Puback);

/// Drive `write_to` to completion by polling once (a `Vec` never blocks).
fn write(p: &MPacket<'_>, out: &mut Output) -> PeerResult<usize> {
    let before = out.len();
    {
        let fut = pin!(p.write_to(Pin::new(&mut *out)));
        match fut.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => r.map_err(err)?,
            Poll::Pending => return Err("write_to returned Pending on a Vec".into()),
        }
    }
    Ok(out.len() - before)
}

pub fn decode_stream_v4(src: &mut Input) -> PeerResult<Check> {
    let mut buf: &[u8] = src;
    let mut total = Check::default();
    while !buf.is_empty() {
        let (p, rest) = read(buf)?;
        total += check(&p)?;
        buf = rest;
    }
    Ok(total)
}

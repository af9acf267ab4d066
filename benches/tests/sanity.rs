//! Sanity checks for the benchmark inputs and the peer adapters.
//!
//! ```text
//! cargo test -p mqttkit-benches -- --nocapture
//! cargo test -p mqttkit-benches --features all-peers -- --nocapture   # with ntex-mqtt
//! ```
//!
//! `peers_decode_and_encode` prints one line per (peer, sample): `ok`,
//! `ok (non-canonical encoding, round-trips)` or the peer's error. Failures
//! listed in `peers::KNOWN_REJECTIONS` are reported but tolerated; any other failure fails the
//! test.

use mqttkit_benches::Check;
use mqttkit_benches::peers::{self, memcpy};
use mqttkit_benches::samples;

use peers::known_rejection as known;

#[test]
fn samples_are_valid_frames() {
    for s in samples::all() {
        let frames = samples::frames(s.bytes).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let want = if s.class.is_stream() { samples::STREAM_PACKETS } else { 1 };
        assert_eq!(frames.len(), want, "{}: frame count", s.name);
        assert_eq!(s.expect.packets as usize, want, "{}: expected check packets", s.name);
    }
    let size = |n| samples::by_name(n).bytes.len();
    assert_eq!(size("publish_v4_31b"), 31);
    assert_eq!(size("publish_v4_1k"), 1049);
    assert_eq!(size("publish_v4_64k"), 65562);
    assert_eq!(size("publish_v5_32b"), 32);
    assert_eq!(size("publish_v5_1k"), 1050);
    assert_eq!(size("publish_v5_props"), 145);
    assert_eq!(size("connect_v4"), 94);
    assert_eq!(size("connect_v5"), 114);
    assert_eq!(size("subscribe_v4_10"), 204);
    assert_eq!(size("subscribe_v5_10"), 205);
    assert_eq!(size("puback_v4"), 4);
    assert_eq!(size("puback_v5"), 4);
    assert_eq!(size("stream_v4_10k"), 402_000);
    assert_eq!(size("stream_v5_10k"), 522_000);
}

/// Independent little parser for the 5.0 PUBLISH with properties, so the
/// hand-written property block is checked by something other than a peer.
#[test]
fn publish_v5_props_layout() {
    let b = &samples::PUBLISH_V5_PROPS;
    let mut i = 3; // fixed header: 0x32, varint 142 (2 bytes)
    assert_eq!((b[1] as usize & 0x7f) | ((b[2] as usize) << 7), b.len() - 3);
    let tl = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
    assert_eq!(&b[i + 2..i + 2 + tl], samples::TOPIC);
    i += 2 + tl + 2;
    let plen = b[i] as usize;
    i += 1;
    let end = i + plen;
    let (mut user, mut expiry, mut ctype) = (0, 0u32, 0usize);
    while i < end {
        match b[i] {
            0x02 => {
                expiry = u32::from_be_bytes(b[i + 1..i + 5].try_into().unwrap());
                i += 5;
            }
            0x03 => {
                ctype = u16::from_be_bytes([b[i + 1], b[i + 2]]) as usize;
                i += 3 + ctype;
            }
            0x26 => {
                let k = u16::from_be_bytes([b[i + 1], b[i + 2]]) as usize;
                let v = u16::from_be_bytes([b[i + 3 + k], b[i + 4 + k]]) as usize;
                i += 5 + k + v;
                user += 1;
            }
            p => panic!("unexpected property {p:#x}"),
        }
    }
    assert_eq!(i, end);
    assert_eq!(&b[end..], samples::PROPS_PAYLOAD);
    assert_eq!((user, expiry, ctype), (2, samples::MESSAGE_EXPIRY, 16));
}

#[test]
fn memcpy_baseline_copies() {
    let mut out = memcpy::output();
    let cap = out.capacity();
    for s in samples::all() {
        assert_eq!(memcpy::copy(s.bytes, &mut out), s.bytes.len());
        assert_eq!(&out[..], s.bytes);
        assert_eq!(out.capacity(), cap, "baseline must not reallocate");
    }
}

#[derive(Debug)]
enum Outcome {
    Ok,
    /// Encoding differs from the sample but decodes back to the same check.
    NonCanonical(String),
    Fail(String),
}

fn run(peer: &peers::Peer, s: &samples::Sample, case: peers::Case) -> Outcome {
    let got: Check = match std::panic::catch_unwind(|| (case.decode)(s.bytes)) {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Outcome::Fail(format!("decode error: {e}")),
        Err(_) => return Outcome::Fail("decode panicked".into()),
    };
    if got != s.expect {
        return Outcome::Fail(format!("decode check {got:?} != expected {:?}", s.expect));
    }
    let Some(enc) = case.encode else { return Outcome::Ok };
    let bytes = match std::panic::catch_unwind(|| enc(s.bytes)) {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Outcome::Fail(format!("encode error: {e}")),
        Err(_) => return Outcome::Fail("encode panicked".into()),
    };
    if bytes == s.bytes {
        return Outcome::Ok;
    }
    // Not byte-identical: it must still decode (with the same peer) to the
    // same check, and be a single well-formed frame.
    if samples::frames(&bytes).map(|f| f.len()) != Ok(1) {
        return Outcome::Fail(format!("encoding is not one frame: {bytes:02x?}"));
    }
    match (case.decode)(&bytes) {
        Ok(c) if c == s.expect => Outcome::NonCanonical(if bytes.len() <= 48 {
            format!("{bytes:02x?}")
        } else {
            let at = bytes.iter().zip(s.bytes).position(|(a, b)| a != b).unwrap_or(bytes.len().min(s.bytes.len()));
            format!("{} bytes vs {}, first difference at offset {at}", bytes.len(), s.bytes.len())
        }),
        Ok(c) => Outcome::Fail(format!("re-encoded packet decodes to {c:?} != {:?}; bytes {bytes:02x?}", s.expect)),
        Err(e) => Outcome::Fail(format!("re-encoded packet does not decode: {e}; bytes {bytes:02x?} ({})", peer.name)),
    }
}

#[test]
fn peers_decode_and_encode() {
    let mut unexpected = Vec::new();
    let peers = peers::all();
    if peers.is_empty() {
        eprintln!("no peer feature enabled, nothing to check");
        return;
    }
    for peer in &peers {
        eprintln!("== {} ({})", peer.name, peer.krate);
        for s in samples::all() {
            let Some(case) = peer.case(s.class) else {
                eprintln!("   {:<18} unsupported", s.name);
                continue;
            };
            let outcome = run(peer, &s, case);
            match (&outcome, known(peer.name, s.name)) {
                (Outcome::Ok, None) => eprintln!("   {:<18} ok", s.name),
                (Outcome::NonCanonical(how), None) => {
                    eprintln!("   {:<18} ok (non-canonical encoding, round-trips: {how})", s.name)
                }
                (Outcome::Fail(e), Some(why)) => eprintln!("   {:<18} KNOWN: {why}: {e}", s.name),
                (Outcome::Fail(e), None) => {
                    eprintln!("   {:<18} FAIL: {e}", s.name);
                    unexpected.push(format!("{} / {}: {e}", peer.name, s.name));
                }
                (_, Some(why)) => {
                    eprintln!("   {:<18} now passes, remove from KNOWN: {why}", s.name);
                    unexpected.push(format!("{} / {}: listed in KNOWN_REJECTIONS but passes", peer.name, s.name));
                }
            }
        }
    }
    assert!(unexpected.is_empty(), "unexpected outcomes:\n{}", unexpected.join("\n"));
}

/// Every class has at least one peer (rumqttc covers all), so every
/// benchmark group has a comparison point.
#[test]
#[cfg(feature = "peer-rumqttc")]
fn every_class_has_a_peer() {
    use samples::Class;
    let peers = peers::all();
    for class in [
        Class::PublishV4,
        Class::PublishV5,
        Class::ConnectV4,
        Class::ConnectV5,
        Class::SubscribeV4,
        Class::SubscribeV5,
        Class::PubackV4,
        Class::PubackV5,
        Class::StreamV4,
        Class::StreamV5,
    ] {
        assert!(peers.iter().any(|p| p.case(class).is_some()), "no peer for {class:?}");
    }
}

//! Codec adapters: our own (`mqttkit`) and other Rust MQTT codecs ("peers"), one module per crate.
//!
//! Every adapter module has the same shape, so a benchmark can call any of
//! them the same way (all calls are direct, monomorphic functions; the
//! [`Case`] table below with fn pointers is only for the sanity tests):
//!
//! ```text
//! pub const DECODE_CONSUMES_INPUT: bool;           // decode_* consumes its Input
//! pub type Input;                                  // what the peer decodes from
//! pub fn input(bytes: &[u8]) -> Input;             // build it (untimed setup)
//! pub type Output;                                 // what the peer encodes into
//! pub fn output() -> Output;                       // preallocated (128 KiB)
//! pub fn reset_output(out: &mut Output);           // empty it, keep capacity
//! pub fn output_bytes(out: &Output, n: usize) -> Vec<u8>;   // tests only
//!
//! pub fn decode_<class>(src: &mut Input) -> PeerResult<Check>;
//! pub fn prepare_<class>(bytes: &[u8]) -> PeerResult<Prepared>;  // peer's packet value
//! pub fn encode_<class>(p: &Prepared, out: &mut Output) -> PeerResult<usize>;
//! ```
//!
//! `<class>` is one of `publish_v4`, `publish_v5`, `connect_v4`, `connect_v5`,
//! `subscribe_v4`, `subscribe_v5`, `puback_v4`, `puback_v5` and (decode only)
//! `stream_v4`, `stream_v5`. A peer simply lacks the functions of the classes
//! it does not support.
//!
//! Decoding: owned-buffer peers (rumqttc, rmqtt-codec, ntex-mqtt) take a
//! `BytesMut` and consume it, as they would a socket read buffer; borrowing
//! peers (mqttrs, mqtt-format) take a `Vec<u8>` and only read it; mqttkit
//! reads a `Vec<u8>` too, and its streams come from a `StreamDecoder` that
//! `input()` has already fed. In all
//! cases `input()` runs outside the timed region (`iter_batched_ref`). The
//! decoded packet is dropped inside the decode function, so its destruction
//! is measured too.
//!
//! Encoding: the prepared value is the peer's own packet type, built once by
//! decoding the sample with the same peer. Peers whose encoder consumes the
//! packet (rmqtt-codec, ntex-mqtt) clone it inside `encode_*`: that clone is
//! part of what using their API costs.

use crate::Check;
use crate::alloc_counter::AllocStats;
use crate::check::PeerResult;
use crate::samples::Class;

pub mod memcpy;

/// Our codec (no feature gate: always built), first in [`all`].
pub mod mqttkit;

#[cfg(feature = "peer-mqtt-format")]
pub mod mqtt_format;
#[cfg(feature = "peer-mqttrs")]
pub mod mqttrs;
#[cfg(feature = "peer-ntex")]
pub mod ntex;
#[cfg(feature = "peer-rmqtt")]
pub mod rmqtt;
#[cfg(feature = "peer-rumqttc")]
pub mod rumqttc;

/// (peer, sample, reason): valid samples a peer cannot handle, found by
/// `tests/sanity.rs`. Benchmarks skip these pairs; the test fails if one of
/// them starts passing (so the list stays true).
pub const KNOWN_REJECTIONS: &[(&str, &str, &str)] = &[
    // mqtt-format 0.4.0 `mfixedheader` reads the remaining length as the first
    // byte plus the *following* continuation bytes, so any multi-byte length
    // (remaining length >= 128) is mis-decoded: 1046 is read as 22 and the
    // packet fails with nom `Eof` / `Many1Count`.
    ("mqtt_format", "publish_v4_1k", "mqtt-format 0.4 mis-decodes remaining length >= 128"),
    ("mqtt_format", "publish_v4_64k", "mqtt-format 0.4 mis-decodes remaining length >= 128"),
    ("mqtt_format", "subscribe_v4_10", "mqtt-format 0.4 mis-decodes remaining length >= 128"),
    ("mqtt_format", "stream_v4_10k", "contains SUBSCRIBE (remaining length 201), see above"),
];

/// Why `peer` cannot handle `sample`, if it is a known rejection.
pub fn known_rejection(peer: &str, sample: &str) -> Option<&'static str> {
    KNOWN_REJECTIONS.iter().find(|(p, s, _)| *p == peer && *s == sample).map(|k| k.2)
}

/// Largest packet the adapters allow (MQTT's own limit, 256 MiB - 1).
pub const MAX_PACKET: u32 = 268_435_455;

pub type DecodeFn = fn(&[u8]) -> PeerResult<Check>;
pub type EncodeFn = fn(&[u8]) -> PeerResult<Vec<u8>>;
/// Runs the peer call once to warm up, then again under
/// [`crate::alloc_counter::measure`]; input, prepared packet and output are
/// built outside the measured region.
pub type MeasuredFn = fn(&[u8]) -> (PeerResult<()>, AllocStats);

/// One class an adapter supports, with type-erased entry points (tests only).
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub class: Class,
    /// `input(bytes)` then `decode_<class>`.
    pub decode: DecodeFn,
    /// `prepare_<class>(bytes)`, `encode_<class>` into a fresh output, and the
    /// bytes written. `None` for the streams.
    pub encode: Option<EncodeFn>,
    /// Allocations of `decode_<class>` alone.
    pub decode_allocs: MeasuredFn,
    /// Allocations of `encode_<class>` alone (into a fresh preallocated output).
    pub encode_allocs: Option<MeasuredFn>,
}

/// A peer codec.
#[derive(Debug)]
pub struct Peer {
    /// Module name, used in benchmark ids.
    pub name: &'static str,
    /// Crate and version the adapter was written against.
    pub krate: &'static str,
    pub cases: fn() -> Vec<Case>,
}

impl Peer {
    pub fn case(&self, class: Class) -> Option<Case> {
        (self.cases)().into_iter().find(|c| c.class == class)
    }
}

/// Our codec first, then every peer enabled by cargo features.
#[allow(clippy::vec_init_then_push)]
pub fn all() -> Vec<Peer> {
    #[allow(unused_mut)]
    let mut v = vec![Peer { name: "mqttkit", krate: mqttkit::KRATE, cases: mqttkit::cases }];
    #[cfg(feature = "peer-rumqttc")]
    v.push(Peer { name: "rumqttc", krate: rumqttc::KRATE, cases: rumqttc::cases });
    #[cfg(feature = "peer-rmqtt")]
    v.push(Peer { name: "rmqtt", krate: rmqtt::KRATE, cases: rmqtt::cases });
    #[cfg(feature = "peer-mqttrs")]
    v.push(Peer { name: "mqttrs", krate: mqttrs::KRATE, cases: mqttrs::cases });
    #[cfg(feature = "peer-mqtt-format")]
    v.push(Peer { name: "mqtt_format", krate: mqtt_format::KRATE, cases: mqtt_format::cases });
    #[cfg(feature = "peer-ntex")]
    v.push(Peer { name: "ntex", krate: ntex::KRATE, cases: ntex::cases });
    v
}

/// Generates `pub fn cases() -> Vec<Case>` for an adapter module from a list
/// of `Class => decode_fn [, prepare_fn, encode_fn];` lines. The generated
/// code calls the module's `input`, `output` and `output_bytes`.
macro_rules! peer_cases {
    ($( $class:ident => $decode:ident $(, $prepare:ident, $encode:ident)? ; )*) => {
        pub fn cases() -> Vec<$crate::peers::Case> {
            vec![$(
                $crate::peers::Case {
                    class: $crate::samples::Class::$class,
                    decode: {
                        fn dec(bytes: &[u8]) -> $crate::check::PeerResult<$crate::Check> {
                            let mut i = input(bytes);
                            $decode(&mut i)
                        }
                        dec
                    },
                    encode: peer_cases!(@enc $($prepare, $encode)?),
                    decode_allocs: {
                        fn dm(bytes: &[u8]) -> ($crate::check::PeerResult<()>, $crate::alloc_counter::AllocStats) {
                            // warm-up (thread-local caches, lazy statics)
                            let _ = $decode(&mut input(bytes));
                            let mut i = input(bytes);
                            let (r, s) = $crate::alloc_counter::measure(|| $decode(&mut i).map(drop));
                            drop(i);
                            (r, s)
                        }
                        dm
                    },
                    encode_allocs: peer_cases!(@encm $($prepare, $encode)?),
                },
            )*]
        }
    };
    (@enc) => { None };
    (@encm) => { None };
    (@encm $prepare:ident, $encode:ident) => {{
        fn em(bytes: &[u8]) -> ($crate::check::PeerResult<()>, $crate::alloc_counter::AllocStats) {
            let p = match $prepare(bytes) {
                Ok(p) => p,
                Err(e) => return (Err(e), Default::default()),
            };
            let mut o = output();
            // warm-up (lazily allocated pages, caches)
            let _ = $encode(&p, &mut o);
            reset_output(&mut o);
            let (r, s) = $crate::alloc_counter::measure(|| $encode(&p, &mut o).map(drop));
            reset_output(&mut o);
            (r, s)
        }
        Some(em as $crate::peers::MeasuredFn)
    }};
    (@enc $prepare:ident, $encode:ident) => {{
        fn enc(bytes: &[u8]) -> $crate::check::PeerResult<Vec<u8>> {
            let p = $prepare(bytes)?;
            let mut o = output();
            let n = $encode(&p, &mut o)?;
            Ok(output_bytes(&o, n))
        }
        Some(enc as $crate::peers::EncodeFn)
    }};
}
pub(crate) use peer_cases;

/// Length of the first MQTT frame in `buf` (fixed header + remaining
/// length), or `None` if the buffer does not hold a complete frame or the
/// remaining length is malformed. For adapters whose decoder does not report
/// how much it consumed.
#[inline]
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 0..4 {
        let b = *buf.get(1 + i)?;
        len |= ((b & 0x7F) as usize) << (7 * i);
        if b & 0x80 == 0 {
            let total = 2 + i + len;
            return (total <= buf.len()).then_some(total);
        }
    }
    None
}

//! Hand-built MQTT packets used by every benchmark.
//!
//! Every byte is written out here (no codec is used to produce them), so all
//! peers and our own codec are measured on exactly the same input. The small
//! packets are `const` arrays assembled by [`cat`], which fails to compile if
//! the parts do not add up to the declared length. The large PUBLISH payloads
//! (1 KiB, 64 KiB) and the 10,000-packet streams are built at first use from
//! hand-written headers plus a deterministic payload pattern.
//!
//! Shared field values:
//! * PUBLISH topic `sensors/room1/temp` (18 bytes), packet id `0x1234` (4660), QoS 1.
//! * CONNECT client id `mqttkit-bench-client` (20), keep alive 60 s, clean
//!   session/start, will topic `clients/bench/status` (20), will payload
//!   `offline` (7), will QoS 1, will retain 0, username `bench-user` (10),
//!   password `s3cr3t-passw0rd` (15).
//! * SUBSCRIBE packet id `0x002A` (42), the 10 filters of [`SUBSCRIBE_FILTERS`].
//!
//! The expected [`Check`] of every sample is written by hand as well (see
//! [`crate::check`] for what the fields mean).

use std::sync::LazyLock;

use crate::Check;

/// Concatenate byte slices into a fixed-size array at compile time; a wrong
/// total length is a compile error (const evaluation panic).
pub const fn cat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    let mut p = 0;
    while p < parts.len() {
        let part = parts[p];
        let mut j = 0;
        while j < part.len() {
            out[i] = part[j];
            i += 1;
            j += 1;
        }
        p += 1;
    }
    assert!(i == N, "sample parts do not add up to the declared length");
    out
}

/// Which kind of packet a sample is; adapters expose one decode (and one
/// encode) function per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    PublishV4,
    PublishV5,
    ConnectV4,
    ConnectV5,
    SubscribeV4,
    SubscribeV5,
    PubackV4,
    PubackV5,
    /// 10,000 mixed 3.1.1 packets in one buffer, decoded through a framing API.
    StreamV4,
    /// 10,000 mixed 5.0 packets in one buffer, decoded through a framing API.
    StreamV5,
}

impl Class {
    pub fn is_v5(self) -> bool {
        matches!(self, Class::PublishV5 | Class::ConnectV5 | Class::SubscribeV5 | Class::PubackV5 | Class::StreamV5)
    }
    pub fn is_stream(self) -> bool {
        matches!(self, Class::StreamV4 | Class::StreamV5)
    }
}

/// One benchmark input.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Stable name, used as the criterion benchmark id.
    pub name: &'static str,
    pub class: Class,
    pub bytes: &'static [u8],
    pub expect: Check,
}

// ---------------------------------------------------------------------------
// Field values (shared by 3.1.1 and 5.0 samples)
// ---------------------------------------------------------------------------

pub const TOPIC: &[u8] = b"sensors/room1/temp"; // 18 bytes
pub const PKID: u16 = 0x1234;
pub const SMALL_PAYLOAD: &[u8] = b"t=21.5C"; // 7 bytes

pub const CLIENT_ID: &[u8] = b"mqttkit-bench-client"; // 20
pub const WILL_TOPIC: &[u8] = b"clients/bench/status"; // 20
pub const WILL_PAYLOAD: &[u8] = b"offline"; // 7
pub const USERNAME: &[u8] = b"bench-user"; // 10
pub const PASSWORD: &[u8] = b"s3cr3t-passw0rd"; // 15
pub const KEEP_ALIVE: u16 = 60;

pub const SUB_PKID: u16 = 0x002A;

/// The 10 SUBSCRIBE filters: (filter, 3.1.1 requested QoS byte, 5.0 options byte).
///
/// 5.0 options byte: bits 0-1 max QoS, bit 2 No Local, bit 3 Retain As
/// Published, bits 4-5 Retain Handling. Every byte below has the same max QoS
/// as its 3.1.1 counterpart.
pub const SUBSCRIBE_FILTERS: [(&str, u8, u8); 10] = [
    ("sensors/+/temp", 1, 0x01),                // QoS 1
    ("sensors/+/humidity", 1, 0x05),            // QoS 1, No Local
    ("devices/#", 0, 0x00),                     // QoS 0
    ("alerts/critical", 2, 0x0A),               // QoS 2, Retain As Published
    ("home/livingroom/light", 1, 0x11),         // QoS 1, Retain Handling 1
    ("home/kitchen/+", 0, 0x20),                // QoS 0, Retain Handling 2
    ("$SYS/broker/uptime", 0, 0x00),            // QoS 0
    ("factory/line1/machine7/status", 2, 0x02), // QoS 2
    ("fleet/truck-17/gps", 1, 0x0D),            // QoS 1, No Local, Retain As Published
    ("cmd/mqttkit/#", 1, 0x01),                 // QoS 1
];

// ---------------------------------------------------------------------------
// 1. MQTT 3.1.1 PUBLISH
// ---------------------------------------------------------------------------

/// 3.1.1 PUBLISH, QoS 1, 31 bytes total.
///
/// `0x32` = PUBLISH, DUP 0, QoS 1, RETAIN 0; remaining length 29 =
/// 2 + 18 (topic) + 2 (packet id) + 7 (payload).
pub const PUBLISH_V4_SMALL: [u8; 31] = cat(&[&[0x32, 29], &[0x00, 18], TOPIC, &[0x12, 0x34], SMALL_PAYLOAD]);

/// Header of the 3.1.1 PUBLISH with a 1 KiB payload: remaining length
/// 2 + 18 + 2 + 1024 = 1046 = varint `0x96 0x08`. Total 1049 bytes.
pub const PUBLISH_V4_1K_HEADER: [u8; 25] = cat(&[&[0x32, 0x96, 0x08], &[0x00, 18], TOPIC, &[0x12, 0x34]]);

/// Header of the 3.1.1 PUBLISH with a 64 KiB payload: remaining length
/// 2 + 18 + 2 + 65536 = 65558 = varint `0x96 0x80 0x04`. Total 65562 bytes.
pub const PUBLISH_V4_64K_HEADER: [u8; 26] = cat(&[&[0x32, 0x96, 0x80, 0x04], &[0x00, 18], TOPIC, &[0x12, 0x34]]);

// ---------------------------------------------------------------------------
// 2. MQTT 5.0 PUBLISH
// ---------------------------------------------------------------------------

/// 5.0 PUBLISH, QoS 1, no properties, 32 bytes total: the 3.1.1 packet plus
/// a property length byte `0x00`. Remaining length 30.
pub const PUBLISH_V5_SMALL: [u8; 32] = cat(&[
    &[0x32, 30],
    &[0x00, 18],
    TOPIC,
    &[0x12, 0x34],
    &[0x00], // property length 0
    SMALL_PAYLOAD,
]);

/// Header of the 5.0 PUBLISH with a 1 KiB payload: remaining length
/// 2 + 18 + 2 + 1 + 1024 = 1047 = varint `0x97 0x08`. Total 1050 bytes.
pub const PUBLISH_V5_1K_HEADER: [u8; 26] = cat(&[&[0x32, 0x97, 0x08], &[0x00, 18], TOPIC, &[0x12, 0x34], &[0x00]]);

/// JSON payload of [`PUBLISH_V5_PROPS`], 49 bytes.
pub const PROPS_PAYLOAD: &[u8] = br#"{"sensor":"room1","temp":21.25,"unit":"C","ok":1}"#;
pub const CONTENT_TYPE: &[u8] = b"application/json"; // 16
pub const MESSAGE_EXPIRY: u32 = 3600;
pub const USER_PROPERTIES: [(&str, &str); 2] = [("src", "sensor-42"), ("trace-id", "4bf92f3577b34da6")];

/// 5.0 PUBLISH, QoS 1, with properties, 145 bytes total.
///
/// Properties (70 bytes):
/// * `0x02` Message Expiry Interval = 3600 (5 bytes)
/// * `0x03` Content Type = `application/json` (19 bytes)
/// * `0x26` User Property `src` = `sensor-42` (17 bytes)
/// * `0x26` User Property `trace-id` = `4bf92f3577b34da6` (29 bytes)
///
/// Remaining length 20 (topic) + 2 (packet id) + 1 + 70 (properties) + 49
/// (payload) = 142 = varint `0x8E 0x01`.
pub const PUBLISH_V5_PROPS: [u8; 145] = cat(&[
    &[0x32, 0x8E, 0x01],
    &[0x00, 18],
    TOPIC,
    &[0x12, 0x34],
    &[70], // property length
    &[0x02, 0x00, 0x00, 0x0E, 0x10],
    &[0x03, 0x00, 16],
    CONTENT_TYPE,
    &[0x26, 0x00, 3],
    b"src",
    &[0x00, 9],
    b"sensor-42",
    &[0x26, 0x00, 8],
    b"trace-id",
    &[0x00, 16],
    b"4bf92f3577b34da6",
    PROPS_PAYLOAD,
]);

// ---------------------------------------------------------------------------
// 3. CONNECT
// ---------------------------------------------------------------------------

/// CONNECT flags `0xCE`: username 1, password 1, will retain 0, will QoS 01,
/// will flag 1, clean session/start 1, reserved 0.
pub const CONNECT_FLAGS: u8 = 0xCE;

/// 3.1.1 CONNECT with will (QoS 1) and username + password, 94 bytes total.
///
/// Remaining length 92 = 10 (protocol name, level 4, flags, keep alive)
/// + 22 (client id) + 22 (will topic) + 9 (will payload) + 12 (username)
/// + 17 (password).
pub const CONNECT_V4: [u8; 94] = cat(&[
    &[0x10, 92],
    &[0x00, 4],
    b"MQTT",
    &[0x04, CONNECT_FLAGS, 0x00, 60],
    &[0x00, 20],
    CLIENT_ID,
    &[0x00, 20],
    WILL_TOPIC,
    &[0x00, 7],
    WILL_PAYLOAD,
    &[0x00, 10],
    USERNAME,
    &[0x00, 15],
    PASSWORD,
]);

pub const SESSION_EXPIRY: u32 = 3600;
pub const RECEIVE_MAXIMUM: u16 = 100;
pub const MAXIMUM_PACKET_SIZE: u32 = 1 << 20;
pub const WILL_DELAY: u32 = 30;

/// 5.0 CONNECT with will (QoS 1, one will property) and username + password,
/// 114 bytes total.
///
/// Connect properties (13 bytes): `0x11` Session Expiry Interval 3600,
/// `0x21` Receive Maximum 100, `0x27` Maximum Packet Size 1048576.
/// Will properties (5 bytes): `0x18` Will Delay Interval 30.
///
/// Remaining length 112 = 10 + 14 (properties) + 22 (client id) + 6 (will
/// properties) + 22 (will topic) + 9 (will payload) + 12 + 17.
pub const CONNECT_V5: [u8; 114] = cat(&[
    &[0x10, 112],
    &[0x00, 4],
    b"MQTT",
    &[0x05, CONNECT_FLAGS, 0x00, 60],
    &[13],
    &[0x11, 0x00, 0x00, 0x0E, 0x10],
    &[0x21, 0x00, 100],
    &[0x27, 0x00, 0x10, 0x00, 0x00],
    &[0x00, 20],
    CLIENT_ID,
    &[5],
    &[0x18, 0x00, 0x00, 0x00, 30],
    &[0x00, 20],
    WILL_TOPIC,
    &[0x00, 7],
    WILL_PAYLOAD,
    &[0x00, 10],
    USERNAME,
    &[0x00, 15],
    PASSWORD,
]);

// ---------------------------------------------------------------------------
// 4. SUBSCRIBE with 10 filters
// ---------------------------------------------------------------------------

macro_rules! filters {
    ($idx:tt) => {
        cat::<199>(&[
            &[0, 14],
            b"sensors/+/temp",
            &[SUBSCRIBE_FILTERS[0].$idx],
            &[0, 18],
            b"sensors/+/humidity",
            &[SUBSCRIBE_FILTERS[1].$idx],
            &[0, 9],
            b"devices/#",
            &[SUBSCRIBE_FILTERS[2].$idx],
            &[0, 15],
            b"alerts/critical",
            &[SUBSCRIBE_FILTERS[3].$idx],
            &[0, 21],
            b"home/livingroom/light",
            &[SUBSCRIBE_FILTERS[4].$idx],
            &[0, 14],
            b"home/kitchen/+",
            &[SUBSCRIBE_FILTERS[5].$idx],
            &[0, 18],
            b"$SYS/broker/uptime",
            &[SUBSCRIBE_FILTERS[6].$idx],
            &[0, 29],
            b"factory/line1/machine7/status",
            &[SUBSCRIBE_FILTERS[7].$idx],
            &[0, 18],
            b"fleet/truck-17/gps",
            &[SUBSCRIBE_FILTERS[8].$idx],
            &[0, 13],
            b"cmd/mqttkit/#",
            &[SUBSCRIBE_FILTERS[9].$idx],
        ])
    };
}

/// The 10 filter entries with their 3.1.1 QoS byte: 169 filter bytes +
/// 10 × (2 length + 1 QoS) = 199 bytes.
const SUB_FILTERS_V4: [u8; 199] = filters!(1);
/// Same with the 5.0 subscription options bytes.
const SUB_FILTERS_V5: [u8; 199] = filters!(2);

/// 3.1.1 SUBSCRIBE, packet id 42, 10 filters, 204 bytes total.
/// `0x82` (SUBSCRIBE, reserved flags 0010); remaining length 2 + 199 = 201 =
/// varint `0xC9 0x01`.
pub const SUBSCRIBE_V4: [u8; 204] = cat(&[&[0x82, 0xC9, 0x01], &[0x00, 0x2A], &SUB_FILTERS_V4]);

/// 5.0 SUBSCRIBE, packet id 42, no properties, 10 filters with mixed
/// subscription options, 205 bytes total. Remaining length 2 + 1 + 199 = 202 =
/// varint `0xCA 0x01`.
pub const SUBSCRIBE_V5: [u8; 205] = cat(&[&[0x82, 0xCA, 0x01], &[0x00, 0x2A], &[0x00], &SUB_FILTERS_V5]);

// ---------------------------------------------------------------------------
// 5. PUBACK
// ---------------------------------------------------------------------------

/// 3.1.1 PUBACK for packet id 0x1234.
pub const PUBACK_V4: [u8; 4] = [0x40, 0x02, 0x12, 0x34];
/// 5.0 PUBACK, short form (remaining length 2: reason code 0x00 Success and
/// no properties are implied). Byte-identical to the 3.1.1 one.
pub const PUBACK_V5: [u8; 4] = [0x40, 0x02, 0x12, 0x34];

// ---------------------------------------------------------------------------
// Large payloads and streams (built once, on first use)
// ---------------------------------------------------------------------------

/// Deterministic binary payload: byte `i` is `(i * 7 + 3) mod 256`.
pub fn payload_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(7).wrapping_add(3)) as u8).collect()
}

fn with_payload(header: &[u8], len: usize) -> &'static [u8] {
    let mut v = header.to_vec();
    v.extend_from_slice(&payload_pattern(len));
    Box::leak(v.into_boxed_slice())
}

pub static PUBLISH_V4_1K: LazyLock<&'static [u8]> = LazyLock::new(|| with_payload(&PUBLISH_V4_1K_HEADER, 1024));
pub static PUBLISH_V4_64K: LazyLock<&'static [u8]> = LazyLock::new(|| with_payload(&PUBLISH_V4_64K_HEADER, 64 * 1024));
pub static PUBLISH_V5_1K: LazyLock<&'static [u8]> = LazyLock::new(|| with_payload(&PUBLISH_V5_1K_HEADER, 1024));

/// Number of packets in each stream.
pub const STREAM_PACKETS: usize = 10_000;

/// One cycle of the 3.1.1 stream (10 packets): 6 × PUBLISH (31 B),
/// 3 × PUBACK, 1 × SUBSCRIBE. A cycle is 186 + 12 + 204 = 402 bytes; the
/// stream is 1,000 cycles = 10,000 packets, 402,000 bytes. No CONNECT: it is
/// only valid as the first packet of a connection.
pub const STREAM_V4_CYCLE: [&[u8]; 10] = [
    &PUBLISH_V4_SMALL,
    &PUBLISH_V4_SMALL,
    &PUBACK_V4,
    &PUBLISH_V4_SMALL,
    &PUBLISH_V4_SMALL,
    &PUBACK_V4,
    &PUBLISH_V4_SMALL,
    &PUBLISH_V4_SMALL,
    &PUBACK_V4,
    &SUBSCRIBE_V4,
];

/// One cycle of the 5.0 stream (10 packets): 5 × PUBLISH (32 B),
/// 1 × PUBLISH with properties (145 B), 3 × PUBACK, 1 × SUBSCRIBE.
/// A cycle is 160 + 145 + 12 + 205 = 522 bytes; 1,000 cycles = 522,000 bytes.
pub const STREAM_V5_CYCLE: [&[u8]; 10] = [
    &PUBLISH_V5_SMALL,
    &PUBLISH_V5_SMALL,
    &PUBACK_V5,
    &PUBLISH_V5_SMALL,
    &PUBLISH_V5_PROPS,
    &PUBACK_V5,
    &PUBLISH_V5_SMALL,
    &PUBLISH_V5_SMALL,
    &PUBACK_V5,
    &SUBSCRIBE_V5,
];

fn stream(cycle: &[&[u8]]) -> &'static [u8] {
    let mut v = Vec::new();
    for _ in 0..STREAM_PACKETS / cycle.len() {
        for p in cycle {
            v.extend_from_slice(p);
        }
    }
    Box::leak(v.into_boxed_slice())
}

pub static STREAM_V4: LazyLock<&'static [u8]> = LazyLock::new(|| stream(&STREAM_V4_CYCLE));
pub static STREAM_V5: LazyLock<&'static [u8]> = LazyLock::new(|| stream(&STREAM_V5_CYCLE));

// ---------------------------------------------------------------------------
// Expected checks (hand-computed, see crate::check)
// ---------------------------------------------------------------------------

const ID: u64 = PKID as u64; // 4660

pub const EXPECT_PUBLISH_SMALL: Check = Check::new(ID, 0, 18 + 7);
pub const EXPECT_PUBLISH_1K: Check = Check::new(ID, 0, 18 + 1024);
pub const EXPECT_PUBLISH_64K: Check = Check::new(ID, 0, 18 + 65536);
/// 2 user properties + expiry 3600; topic 18 + payload 49 + content type 16.
pub const EXPECT_PUBLISH_V5_PROPS: Check = Check::new(ID, 2 + 3600, 18 + 49 + 16);
/// keep alive 60; will QoS 1; 20 + 20 + 7 + 10 + 15 = 72.
pub const EXPECT_CONNECT_V4: Check = Check::new(60, 1, 72);
/// will QoS 1 + session expiry 3600 + receive max 100 + max packet size
/// 1048576 + will delay 30 = 1052307.
pub const EXPECT_CONNECT_V5: Check = Check::new(60, 1 + 3600 + 100 + 1_048_576 + 30, 72);
/// 10 filters + QoS sum 9; 169 filter bytes.
pub const EXPECT_SUBSCRIBE: Check = Check::new(42, 10 + 9, 169);
pub const EXPECT_PUBACK: Check = Check::new(ID, 0, 0);

fn expect_stream(cycle: &[&[u8]]) -> Check {
    let mut c = Check::default();
    for p in cycle {
        c += expect_of(p).expect("stream member is a known sample");
    }
    let mut total = Check::default();
    for _ in 0..STREAM_PACKETS / cycle.len() {
        total += c;
    }
    total
}

/// Expected check of a small sample, looked up by bytes.
fn expect_of(bytes: &[u8]) -> Option<Check> {
    Some(match bytes {
        b if b == PUBLISH_V4_SMALL || b == PUBLISH_V5_SMALL => EXPECT_PUBLISH_SMALL,
        b if b == PUBLISH_V5_PROPS => EXPECT_PUBLISH_V5_PROPS,
        b if b == PUBACK_V4 => EXPECT_PUBACK,
        b if b == SUBSCRIBE_V4 || b == SUBSCRIBE_V5 => EXPECT_SUBSCRIBE,
        _ => return None,
    })
}

/// Every sample, in a stable order.
pub fn all() -> Vec<Sample> {
    vec![
        Sample {
            name: "publish_v4_31b",
            class: Class::PublishV4,
            bytes: &PUBLISH_V4_SMALL,
            expect: EXPECT_PUBLISH_SMALL,
        },
        Sample { name: "publish_v4_1k", class: Class::PublishV4, bytes: *PUBLISH_V4_1K, expect: EXPECT_PUBLISH_1K },
        Sample { name: "publish_v4_64k", class: Class::PublishV4, bytes: *PUBLISH_V4_64K, expect: EXPECT_PUBLISH_64K },
        Sample {
            name: "publish_v5_32b",
            class: Class::PublishV5,
            bytes: &PUBLISH_V5_SMALL,
            expect: EXPECT_PUBLISH_SMALL,
        },
        Sample { name: "publish_v5_1k", class: Class::PublishV5, bytes: *PUBLISH_V5_1K, expect: EXPECT_PUBLISH_1K },
        Sample {
            name: "publish_v5_props",
            class: Class::PublishV5,
            bytes: &PUBLISH_V5_PROPS,
            expect: EXPECT_PUBLISH_V5_PROPS,
        },
        Sample { name: "connect_v4", class: Class::ConnectV4, bytes: &CONNECT_V4, expect: EXPECT_CONNECT_V4 },
        Sample { name: "connect_v5", class: Class::ConnectV5, bytes: &CONNECT_V5, expect: EXPECT_CONNECT_V5 },
        Sample { name: "subscribe_v4_10", class: Class::SubscribeV4, bytes: &SUBSCRIBE_V4, expect: EXPECT_SUBSCRIBE },
        Sample { name: "subscribe_v5_10", class: Class::SubscribeV5, bytes: &SUBSCRIBE_V5, expect: EXPECT_SUBSCRIBE },
        Sample { name: "puback_v4", class: Class::PubackV4, bytes: &PUBACK_V4, expect: EXPECT_PUBACK },
        Sample { name: "puback_v5", class: Class::PubackV5, bytes: &PUBACK_V5, expect: EXPECT_PUBACK },
        Sample {
            name: "stream_v4_10k",
            class: Class::StreamV4,
            bytes: *STREAM_V4,
            expect: expect_stream(&STREAM_V4_CYCLE),
        },
        Sample {
            name: "stream_v5_10k",
            class: Class::StreamV5,
            bytes: *STREAM_V5,
            expect: expect_stream(&STREAM_V5_CYCLE),
        },
    ]
}

/// Look a sample up by name (panics on an unknown name).
pub fn by_name(name: &str) -> Sample {
    all().into_iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no sample {name}"))
}

/// Split a buffer of concatenated packets into frames (test helper; validates
/// the fixed header: at most 4 remaining-length bytes, frame within buffer).
pub fn frames(mut buf: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let mut len = 0usize;
        let mut i = 1;
        loop {
            let b = *buf.get(i).ok_or("truncated remaining length")?;
            len |= ((b & 0x7F) as usize) << (7 * (i - 1));
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            if i > 4 {
                return Err("remaining length longer than 4 bytes".into());
            }
        }
        let total = i + len;
        if total > buf.len() {
            return Err(format!("frame of {total} bytes, only {} left", buf.len()));
        }
        out.push(&buf[..total]);
        buf = &buf[total..];
    }
    Ok(out)
}

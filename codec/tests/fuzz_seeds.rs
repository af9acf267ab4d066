//! Writes the committed seed corpora under `fuzz/corpus/<target>/` (ignored by default):
//!
//! ```text
//! cargo test -p mqttkit-codec --test fuzz_seeds -- --ignored
//! ```
//!
//! * `decode`: the spec vectors of `tests/common` (one file per 5.0 packet type, plus a
//!   stream of every vector per version, each opened by a CONNECT so that a decoder
//!   that does not know the version yet gets going), the non-canonical short forms, and
//!   malformed frames (each after a valid CONNECT and before a valid PINGREQ, which the
//!   decoder must never reach).
//! * `roundtrip`: for every packet type of 3.1.1 and 5.0 (and a few of 3.1), the input
//!   that makes `ArbitraryPacket` produce the richest such packet among a fixed
//!   pseudo-random sample.
//! * `stream_split`: inputs that make streams of 1, 2, 3, 5 and 8 packets per version,
//!   and streams opened by a CONNECT.
//!
//! The test checks what it writes (valid vectors decode, malformed ones fail) before
//! writing anything.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{NON_CANONICAL, VECTORS};
use mqttkit_codec::ArbitraryPacket;
use mqttkit_codec::fuzz_targets::{self, arbitrary::Unstructured};
use mqttkit_codec::{DEFAULT_MAX_PACKET_SIZE, PacketType, ProtocolVersion, Status, decode_packet};

const V31: ProtocolVersion = ProtocolVersion::V3_1;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

fn vector(name: &str) -> &'static [u8] {
    VECTORS.iter().find(|(n, _, _)| *n == name).map(|(_, _, b)| *b).unwrap_or_else(|| panic!("no vector {name}"))
}

fn version_tag(version: ProtocolVersion) -> &'static str {
    match version {
        V31 => "v31",
        V311 => "v311",
        V5 => "v5",
    }
}

/// A frame with a one-byte remaining length.
fn frame(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte, u8::try_from(body.len()).expect("short body")];
    out.extend_from_slice(body);
    out
}

/// Decode a whole buffer under `version` (unknown at first when `None`): the packets
/// that decode, and whether it ended in an error.
fn decode_all(mut bytes: &[u8], mut version: Option<ProtocolVersion>) -> (usize, bool) {
    let mut count = 0;
    loop {
        match decode_packet(bytes, version, DEFAULT_MAX_PACKET_SIZE) {
            Ok(Status::Complete((packet, used))) => {
                if let mqttkit_codec::Packet::Connect(c) = &packet {
                    version.get_or_insert(c.version);
                }
                count += 1;
                bytes = &bytes[used..];
            }
            Ok(Status::Incomplete { .. }) => return (count, false),
            Err(_) => return (count, true),
        }
    }
}

fn decode_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let connect = |v: ProtocolVersion| match v {
        V31 => vector("connect-3.1"),
        V311 => vector("connect"),
        V5 => vector("v5-connect"),
    };

    // Streams of every vector of a version, CONNECT first.
    for version in [V31, V311, V5] {
        let vectors_of = if version == V5 { V5 } else { V311 };
        let mut stream = connect(version).to_vec();
        for (_, v, bytes) in VECTORS {
            if *v == vectors_of && bytes[0] >> 4 != 1 {
                stream.extend_from_slice(bytes);
            }
        }
        let count = 1 + VECTORS.iter().filter(|(_, v, b)| *v == vectors_of && b[0] >> 4 != 1).count();
        for start in [None, Some(version)] {
            assert_eq!(decode_all(&stream, start), (count, false), "{version} stream");
        }
        seeds.push((format!("{}-stream-all-vectors", version_tag(version)), stream));
    }

    // One file per 5.0 packet type: the richest vector of each type.
    let mut per_type: BTreeMap<u8, &(&str, ProtocolVersion, &[u8])> = BTreeMap::new();
    for entry in VECTORS.iter().filter(|(_, v, _)| *v == V5) {
        let kind = entry.2[0] >> 4;
        if per_type.get(&kind).is_none_or(|best| best.2.len() < entry.2.len()) {
            per_type.insert(kind, entry);
        }
    }
    assert!(per_type.len() >= 14, "the 5.0 vectors cover (nearly) every packet type");
    for (name, version, bytes) in per_type.into_values() {
        assert_eq!(decode_all(bytes, Some(*version)), (1, false), "{name}");
        seeds.push(((*name).to_owned(), bytes.to_vec()));
    }

    // The non-canonical short forms, after a CONNECT.
    let mut stream = connect(V5).to_vec();
    for (_, _, bytes) in NON_CANONICAL {
        stream.extend_from_slice(bytes);
    }
    assert_eq!(decode_all(&stream, None), (1 + NON_CANONICAL.len(), false));
    seeds.push(("v5-stream-non-canonical".to_owned(), stream));

    // Malformed frames: CONNECT, the bad frame, PINGREQ (never reached).
    let ping = [0xC0, 0x00];
    let share_g_ab = b"$share/g/ab";
    let mut no_local_shared = vec![0, 1, 0, 0, 11];
    no_local_shared.extend_from_slice(share_g_ab);
    no_local_shared.push(0b100);
    let mut reserved_connect = vector("connect").to_vec();
    reserved_connect[9] = 0x03;
    let mut level_6 = vector("connect").to_vec();
    level_6[8] = 6;
    let malformed: Vec<(&str, ProtocolVersion, Vec<u8>)> = vec![
        ("reserved-type-0", V311, vec![0x00, 0x00]),
        ("auth-before-v5", V311, vec![0xF0, 0x00]),
        ("puback-flags", V311, frame(0x41, &[0, 1])),
        ("remaining-length-not-minimal", V311, vec![0x30, 0x80, 0x00]),
        ("remaining-length-5-bytes", V5, vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        ("remaining-length-256mib", V5, vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1, b't']),
        ("publish-qos3", V311, frame(0x36, &[0, 1, b't', 0, 1])),
        ("publish-wildcard-topic", V311, frame(0x30, &[0, 3, b'a', b'/', b'+'])),
        ("publish-surrogate", V311, frame(0x30, &[0, 3, 0xED, 0xA0, 0x80])),
        ("connect-reserved-flag", V311, reserved_connect),
        ("connect-level-6", V311, level_6),
        ("v5-duplicate-property", V5, frame(0x30, &[0, 1, b't', 4, 0x01, 1, 0x01, 0])),
        ("v5-auth-data-without-method", V5, frame(0xF0, &[0x18, 4, 0x16, 0, 1, b'x'])),
        ("v5-no-local-shared", V5, frame(0x82, &no_local_shared)),
        ("v5-subscription-id-not-minimal", V5, frame(0x82, &[0, 1, 3, 0x0B, 0x81, 0x00, 0, 1, b'a', 0])),
        ("v5-disconnect-property-truncated", V5, frame(0xE0, &[0x00, 5, 0x11])),
    ];
    for (name, version, bad) in malformed {
        let opens_with_connect = bad[0] >> 4 == 1;
        let mut stream = if opens_with_connect { Vec::new() } else { connect(version).to_vec() };
        stream.extend_from_slice(&bad);
        stream.extend_from_slice(&ping);
        let before = usize::from(!opens_with_connect);
        assert_eq!(decode_all(&stream, None), (before, true), "{name}");
        seeds.push((format!("malformed-{name}"), stream));
    }
    seeds
}

/// xorshift64*: a fixed pseudo-random sample.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, min: usize, max: usize) -> Vec<u8> {
        let len = min + (self.next() % (max - min + 1) as u64) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn type_tag(t: PacketType) -> String {
    t.name().to_lowercase()
}

fn roundtrip_seeds() -> Vec<(String, Vec<u8>)> {
    let wanted = |v: ProtocolVersion, t: PacketType| match v {
        V31 => matches!(t, PacketType::Connect | PacketType::Publish | PacketType::SubAck),
        _ => true,
    };
    // (version, type) -> (encoded length, input)
    let mut best: BTreeMap<(ProtocolVersion, PacketType), (usize, Vec<u8>)> = BTreeMap::new();
    let mut rng = Rng(0xC0DE_0001);
    for _ in 0..20_000 {
        let data = rng.bytes(16, 200);
        let Ok(seed) = fuzz_targets::arbitrary_packet(&data) else { continue };
        let key = (seed.version(), seed.packet_type());
        if !wanted(key.0, key.1) {
            continue;
        }
        let len = seed.packet().encoded_len(key.0);
        if len <= 400 && best.get(&key).is_none_or(|(l, _)| *l < len) {
            best.insert(key, (len, data));
        }
    }
    assert_eq!(best.len(), 15 + 14 + 3, "every wanted (version, type) found: {:?}", best.keys());
    best.into_iter()
        .map(|((v, t), (_, data))| {
            fuzz_targets::roundtrip(&data);
            (format!("{}-{}", version_tag(v), type_tag(t)), data)
        })
        .collect()
}

fn stream_split_seeds() -> Vec<(String, Vec<u8>)> {
    let mut best: BTreeMap<(ProtocolVersion, String), Vec<u8>> = BTreeMap::new();
    let mut rng = Rng(0xC0DE_0002);
    for _ in 0..20_000 {
        let data = rng.bytes(64, 700);
        let mut u = Unstructured::new(&data);
        let Ok(&version) = u.choose(&ProtocolVersion::ALL) else { continue };
        let count = u.int_in_range(1..=8u8).unwrap_or(1);
        let seeds: Result<Vec<_>, _> = (0..count).map(|_| ArbitraryPacket::arbitrary_for(&mut u, version)).collect();
        let Ok(seeds) = seeds else { continue };
        // Keep inputs that still have bytes left to cut the stream with.
        if u.len() < 16 {
            continue;
        }
        let key = if seeds[0].packet_type() == PacketType::Connect && count > 1 {
            "connect-first".to_owned()
        } else if [1, 2, 3, 5, 8].contains(&count) {
            format!("{count}-packets")
        } else {
            continue;
        };
        best.entry((version, key)).or_insert(data);
    }
    assert_eq!(best.len(), 3 * 6, "every wanted stream found: {:?}", best.keys());
    best.into_iter()
        .map(|((v, key), data)| {
            fuzz_targets::stream_split(&data);
            (format!("{}-{key}", version_tag(v)), data)
        })
        .collect()
}

#[test]
#[ignore = "writes fuzz/corpus; run explicitly to regenerate the seeds"]
fn write_seed_corpora() {
    for (target, seeds) in
        [("decode", decode_seeds()), ("roundtrip", roundtrip_seeds()), ("stream_split", stream_split_seeds())]
    {
        let dir = corpus_dir(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("clear old seeds");
        }
        fs::create_dir_all(&dir).expect("create corpus dir");
        for (name, data) in &seeds {
            fs::write(dir.join(name), data).expect("write seed");
        }
        println!("{target}: {} seeds", seeds.len());
    }
}

/// The seed lists are checked without writing them.
#[test]
fn seeds_are_what_they_claim() {
    assert!(decode_seeds().len() >= 30);
}

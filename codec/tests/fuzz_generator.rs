//! The fuzzing machinery checked on stable: `ArbitraryPacket` generates valid packets of
//! every type and version from any input, and the fuzz target bodies pass on
//! pseudo-random inputs (a few thousand, deterministic — the real exploration is
//! `cargo fuzz`, see fuzz/README.md).

use std::collections::BTreeSet;

use mqttkit_codec::ArbitraryPacket;
use mqttkit_codec::fuzz_targets::{self, arbitrary::Unstructured};
use mqttkit_codec::{PacketType, ProtocolVersion};

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next() % (max_len as u64 + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn all_kinds() -> BTreeSet<(ProtocolVersion, PacketType)> {
    ProtocolVersion::ALL.into_iter().flat_map(|v| PacketType::all_in(v).iter().map(move |&t| (v, t))).collect()
}

#[test]
fn generator_never_refuses_and_covers_every_type_and_version() {
    let mut rng = Rng(0x5EED_0001);
    let mut seen = BTreeSet::new();
    for round in 0..3000 {
        let data = rng.bytes(if round % 10 == 0 { 2048 } else { 256 });
        let seed = fuzz_targets::arbitrary_packet(&data)
            .unwrap_or_else(|e| panic!("generator refused input {data:02x?}: {e}"));
        seen.insert((seed.version(), seed.packet_type()));
    }
    // Exhausted input still yields a packet.
    assert!(fuzz_targets::arbitrary_packet(&[]).is_ok());
    let missing: Vec<_> = all_kinds().difference(&seen).copied().collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

#[test]
fn every_type_of_every_version_can_be_asked_for() {
    let mut rng = Rng(0x5EED_0002);
    for (version, packet_type) in all_kinds() {
        for _ in 0..50 {
            let data = rng.bytes(512);
            let seed = ArbitraryPacket::arbitrary_of_type(&mut Unstructured::new(&data), version, packet_type)
                .unwrap_or_else(|e| panic!("{packet_type} {version}: {e}"));
            assert_eq!((seed.version(), seed.packet_type()), (version, packet_type));
            fuzz_targets::check_roundtrip(&seed);
        }
    }
    assert!(
        ArbitraryPacket::arbitrary_of_type(&mut Unstructured::new(&[]), ProtocolVersion::V3_1_1, PacketType::Auth)
            .is_err()
    );
}

#[test]
fn roundtrip_target_on_random_inputs() {
    let mut rng = Rng(0x5EED_0003);
    for _ in 0..3000 {
        fuzz_targets::roundtrip(&rng.bytes(512));
    }
}

#[test]
fn stream_split_target_on_random_inputs() {
    let mut rng = Rng(0x5EED_0004);
    for _ in 0..1500 {
        fuzz_targets::stream_split(&rng.bytes(1024));
    }
}

#[test]
fn decode_target_on_random_and_mutated_valid_inputs() {
    let mut rng = Rng(0x5EED_0005);
    for _ in 0..1000 {
        fuzz_targets::decode(&rng.bytes(64));
    }
    // Valid encodings (with a CONNECT first, so that the unknown-version decoder gets
    // going) and one-byte mutations of them.
    for _ in 0..1000 {
        let data = rng.bytes(512);
        let Ok(seed) = fuzz_targets::arbitrary_packet(&data) else { continue };
        let mut wire = Vec::new();
        let connect =
            ArbitraryPacket::arbitrary_of_type(&mut Unstructured::new(&data), seed.version(), PacketType::Connect)
                .expect("CONNECT");
        wire.extend(fuzz_targets::check_roundtrip(&connect));
        wire.extend(fuzz_targets::check_roundtrip(&seed));
        fuzz_targets::decode(&wire);
        let at = (rng.next() as usize) % wire.len();
        wire[at] ^= 1 << (rng.next() % 8);
        fuzz_targets::decode(&wire);
    }
}

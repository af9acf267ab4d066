//! Crashes found by `cargo fuzz` (see fuzz/README.md), kept as named regression tests.
//! Each replays the minimized input through the fuzz target body that found it, and
//! pins the fixed behaviour directly.

use mqttkit_codec::fuzz_targets;
use mqttkit_codec::{DecoderConfig, FrameError, PacketType, StreamDecoder, StreamError};

/// Found by `decode` within seconds (input `[0x80]`, whose last byte selects a maximum
/// packet size of 0): `StreamDecoder::read_buffer` computed the reservation as
/// `wanted.clamp(1, min(8 KiB, max_packet_size))`, and `clamp` panics ("min > max") when
/// `max_packet_size` is 0. Fixed in `codec/src/stream.rs`: the upper bound is at least 1
/// byte, enough to read the first byte of the header and refuse the frame.
#[test]
fn read_buffer_with_zero_max_packet_size() {
    fuzz_targets::decode(&[0x80]);

    let mut decoder = StreamDecoder::new(DecoderConfig { max_packet_size: 0, version: None });
    assert!(decoder.read_buffer().capacity() >= 1, "room for at least one byte");
    decoder.read_buffer().extend_from_slice(&[0xC0, 0x00]);
    assert_eq!(decoder.next_packet(), Err(StreamError::Frame(FrameError::PacketTooLarge { size: 2, limit: 0 })));
    // A wrong first byte is still reported as such, before the size.
    let mut decoder = StreamDecoder::new(DecoderConfig { max_packet_size: 0, version: None });
    decoder.read_buffer().extend_from_slice(&[0x41]);
    assert!(matches!(
        decoder.next_packet(),
        Err(StreamError::Packet(mqttkit_codec::DecodeError::InvalidFlags { packet_type: PacketType::PubAck, .. }))
    ));
}

/// Found by `roundtrip` in the CI smoke run of 2026-12-01: a 174-byte input generates a
/// valid 5.0 CONNECT of 1,068,754 bytes (a long user property), above the 1 MiB default
/// packet size. `check_roundtrip` fed it to a `StreamDecoder` with the default limit,
/// which rightly refused it with `PacketTooLarge`; the harness, not the codec, was wrong.
/// Fixed in `codec/src/fuzz_targets.rs`: the stream decoder's limit is the packet's size.
#[test]
fn roundtrip_packet_larger_than_default_limit() {
    const INPUT: &[u8] = &[
        0xce, 0xc3, 0x2f, 0x61, 0x15, 0x8f, 0xfb, 0xd5, 0x8d, 0x97, 0x7c, 0x8b, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7,
        0xe7, 0xe7, 0xe7, 0xe7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0xe7, 0xe7, 0xe7, 0xcf, 0xcf, 0xcf,
        0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xcf, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7,
        0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
        0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xe7,
        0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7,
        0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7,
        0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7,
        0xe7, 0xe7, 0xe7, 0xeb, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7,
        0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0x65,
    ];
    let seed = fuzz_targets::arbitrary_packet(INPUT).expect("the input still generates a packet");
    let encoded = fuzz_targets::check_roundtrip(&seed);
    assert!(encoded.len() > mqttkit_codec::DEFAULT_MAX_PACKET_SIZE, "the case is a packet over the default limit");
    // With the default limit the stream decoder refuses it from the header alone.
    let mut decoder = StreamDecoder::new(DecoderConfig { version: Some(seed.version()), ..DecoderConfig::default() });
    decoder.feed(encoded.get(..8).unwrap_or_default());
    assert_eq!(
        decoder.next_packet(),
        Err(StreamError::Frame(FrameError::PacketTooLarge {
            size: encoded.len(),
            limit: mqttkit_codec::DEFAULT_MAX_PACKET_SIZE
        }))
    );
}

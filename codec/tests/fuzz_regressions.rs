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

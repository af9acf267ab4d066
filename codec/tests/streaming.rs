//! Layer 2: framing. Every prefix is incomplete, chunked streams decode like one piece,
//! a malformed frame kills the stream, and size claims never drive allocation.

mod common;

use common::VECTORS;
use mqttkit_codec::{
    DecodeError, DecoderConfig, FrameError, MAX_RESERVE, PROTOCOL_MAX_PACKET_SIZE, Packet, ProtocolVersion, Status,
    StreamDecoder, StreamError, decode_packet,
};

fn owned_debug(packet: &Packet<'_>) -> String {
    format!("{packet:?}")
}

#[test]
fn every_prefix_is_incomplete() {
    for &(name, version, bytes) in VECTORS {
        for cut in 0..bytes.len() {
            let status = decode_packet(&bytes[..cut], Some(version), PROTOCOL_MAX_PACKET_SIZE)
                .unwrap_or_else(|e| panic!("{name}[..{cut}]: {e}"));
            assert!(matches!(status, Status::Incomplete { .. }), "{name}[..{cut}] is not incomplete");
            let mut decoder = StreamDecoder::with_version(version);
            decoder.feed(&bytes[..cut]);
            assert!(decoder.next_packet().expect("no error").is_none(), "{name}[..{cut}]");
        }
    }
}

/// All vectors of one version after a CONNECT, as one stream.
fn stream(version_is_v5: bool) -> (ProtocolVersion, Vec<u8>) {
    let version = if version_is_v5 { ProtocolVersion::V5 } else { ProtocolVersion::V3_1_1 };
    let mut bytes = Vec::new();
    for &(_, v, vector) in VECTORS {
        if v == version {
            bytes.extend_from_slice(vector);
        }
    }
    (version, bytes)
}

fn decode_all(decoder: &mut StreamDecoder, out: &mut Vec<String>) {
    while let Some(packet) = decoder.next_packet().expect("valid stream") {
        out.push(owned_debug(&packet));
    }
}

#[test]
fn chunked_stream_decodes_like_one_piece() {
    for v5 in [false, true] {
        let (version, bytes) = stream(v5);
        let mut whole = StreamDecoder::with_version(version);
        whole.feed(&bytes);
        let mut expected = Vec::new();
        decode_all(&mut whole, &mut expected);
        assert_eq!(expected.len(), VECTORS.iter().filter(|v| v.1 == version).count());

        // Fixed chunk sizes, then an irregular pattern.
        let patterns: Vec<Vec<usize>> = (1..=9).map(|n| vec![n]).chain([vec![1, 7, 2, 30, 3, 5, 11]]).collect();
        for pattern in patterns {
            let mut decoder = StreamDecoder::with_version(version);
            let mut got = Vec::new();
            let mut rest = &bytes[..];
            for &size in pattern.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(size.min(rest.len()));
                decoder.feed(chunk);
                decode_all(&mut decoder, &mut got);
                rest = tail;
            }
            assert_eq!(got, expected, "pattern {pattern:?}");
            assert_eq!(decoder.buffered(), 0);
        }
    }
}

#[test]
fn learns_version_from_connect() {
    let v5_connect = VECTORS.iter().find(|v| v.0 == "v5-connect").expect("vector").2;
    let mut decoder = StreamDecoder::default();
    decoder.feed(v5_connect);
    // A 5.0 PUBACK with a reason code is only valid once the version is 5.0.
    decoder.feed(&[0x40, 0x03, 0, 1, 0x10]);
    assert!(matches!(decoder.next_packet(), Ok(Some(Packet::Connect(_)))));
    assert_eq!(decoder.version(), Some(ProtocolVersion::V5));
    assert!(matches!(decoder.next_packet(), Ok(Some(Packet::PubAck(_)))));
}

#[test]
fn malformed_frame_is_not_resynchronised() {
    // A PUBLISH with QoS 3, then two valid PINGREQs.
    let mut decoder = StreamDecoder::with_version(ProtocolVersion::V3_1_1);
    decoder.feed(&[0x36, 0x05, 0, 1, b't', 0, 1, 0xC0, 0x00, 0xC0, 0x00]);
    assert_eq!(decoder.next_packet().map(|p| p.is_some()), Err(StreamError::Packet(DecodeError::InvalidQoS)));
    for _ in 0..3 {
        assert_eq!(decoder.next_packet().map(|p| p.is_some()), Err(StreamError::Dead));
    }
    assert!(decoder.is_dead());
    // The same for a frame whose body is bad while its length is fine.
    let mut decoder = StreamDecoder::with_version(ProtocolVersion::V3_1_1);
    decoder.feed(&[0x40, 0x03, 0, 1, 0, 0xC0, 0x00]);
    assert_eq!(decoder.next_packet().map(|p| p.is_some()), Err(StreamError::Packet(DecodeError::TrailingBytes)));
    assert_eq!(decoder.next_packet().map(|p| p.is_some()), Err(StreamError::Dead));
}

#[test]
fn oversized_claim_is_refused_before_the_body() {
    let mut decoder = StreamDecoder::with_version(ProtocolVersion::V5);
    decoder.feed(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert_eq!(
        decoder.next_packet().map(|p| p.is_some()),
        Err(StreamError::Frame(FrameError::PacketTooLarge {
            size: PROTOCOL_MAX_PACKET_SIZE,
            limit: mqttkit_codec::DEFAULT_MAX_PACKET_SIZE
        }))
    );
    assert_eq!(StreamError::Frame(FrameError::PacketTooLarge { size: 1, limit: 0 }).reason_code().0, 0x95);
}

#[test]
fn claim_of_256_mib_reserves_at_most_8_kib() {
    // With the limit at the protocol maximum, the claim is allowed — yet reading it may
    // only ever reserve min(limit, 8 KiB) ahead of the bytes actually received.
    let config = DecoderConfig { max_packet_size: PROTOCOL_MAX_PACKET_SIZE, version: Some(ProtocolVersion::V5) };
    let mut decoder = StreamDecoder::new(config);
    decoder.feed(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(decoder.next_packet().expect("incomplete, not an error").is_none());
    let capacity = decoder.read_buffer().capacity();
    assert!(capacity <= 5 + MAX_RESERVE + 64, "reserved {capacity} bytes");
    // Feed 100 KiB of body in 1 KiB reads: the buffer grows with the data received
    // (amortised doubling at most), never towards the 256 MiB claimed.
    for _ in 0..100 {
        let buf = decoder.read_buffer();
        assert!(
            buf.capacity() <= 2 * (buf.len() + MAX_RESERVE) + 64,
            "capacity {} for {} bytes",
            buf.capacity(),
            buf.len()
        );
        buf.extend_from_slice(&[0u8; 1024]);
    }
    assert!(decoder.read_buffer().capacity() < 1024 * 1024);
}

#[test]
fn small_limit_caps_reservation() {
    let config = DecoderConfig { max_packet_size: 100, version: Some(ProtocolVersion::V3_1_1) };
    let mut decoder = StreamDecoder::new(config);
    decoder.feed(&[0x30, 0x50]);
    assert!(decoder.next_packet().expect("fits the limit").is_none());
    assert!(decoder.read_buffer().capacity() <= 2 + 100 + 64);
}

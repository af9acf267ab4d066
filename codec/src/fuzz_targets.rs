//! The bodies of the fuzz targets in `fuzz/` (hidden feature `__fuzzing`, which is not part
//! of the API), as library functions
//! so that `cargo test` can replay the seed corpora and crash regressions on stable
//! Rust. Each function panics only on a real bug: a panic inside the codec, a packet that
//! decodes but does not re-encode to an equal packet, or two decoding paths that
//! disagree.
//!
//! * [`decode`]: arbitrary bytes through [`StreamDecoder`] and [`decode_packet`] under
//!   every protocol version (and an unknown one), with the default and a small maximum
//!   packet size (0 to 63 bytes, from the input).
//! * [`roundtrip`]: one [`ArbitraryPacket`] through every encoder and decoder.
//! * [`stream_split`]: several valid packets of one version, cut at arbitrary points and
//!   fed piece by piece into a [`StreamDecoder`].
//!
//! Memory stays proportional to the input: the decoders buffer at most the input, the
//! maximum packet size refuses larger frames from their header, and re-encodings are
//! never longer than the frames they come from.

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;

pub use arbitrary;

use crate::ArbitraryPacket;
use crate::frame::{DEFAULT_MAX_PACKET_SIZE, DecoderConfig, PROTOCOL_MAX_PACKET_SIZE, Status, decode_packet};
use crate::owned::OwnedPacket;
use crate::packet::{Packet, PacketType};
use crate::stream::StreamDecoder;
use crate::version::ProtocolVersion;
use crate::{StreamError, wire};

/// The small maximum packet size the `decode` target also runs with: 0 to 63 bytes,
/// taken from the input's last byte (32 for empty input), so that limits below, at and
/// above each frame's size (including the degenerate 0) are all tried.
pub fn small_max_packet_size(data: &[u8]) -> usize {
    data.last().map_or(32, |&b| usize::from(b & 0x3F))
}

/// Every decoder version: unknown (learnt from CONNECT), 3.1, 3.1.1 and 5.0.
pub const DECODER_VERSIONS: [Option<ProtocolVersion>; 4] =
    [None, Some(ProtocolVersion::V3_1), Some(ProtocolVersion::V3_1_1), Some(ProtocolVersion::V5)];

/// What decoding a whole buffer produced: each packet re-encoded, and how it stopped.
#[derive(Debug, PartialEq, Eq)]
struct Trace {
    packets: Vec<Vec<u8>>,
    end: End,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The buffer ended inside a frame (or exactly between frames).
    NeedMore,
    /// The stream failed with this error.
    Failed(StreamError),
}

/// Fuzz target `decode`: arbitrary bytes must never panic the decoder, and whatever
/// decodes must re-encode (under the stream's version) to bytes that decode to an equal
/// packet. [`StreamDecoder`] fed in one piece, and fed in small pieces, must agree with
/// [`decode_packet`] applied frame after frame.
pub fn decode(data: &[u8]) {
    for version in DECODER_VERSIONS {
        for max_packet_size in [DEFAULT_MAX_PACKET_SIZE, small_max_packet_size(data)] {
            let reference = decode_reference(data, version, max_packet_size);
            // One piece: through `feed` with the default limit, `read_buffer` with the
            // small one.
            let read_buffer = max_packet_size != DEFAULT_MAX_PACKET_SIZE;
            let whole = decode_stream(data, version, max_packet_size, read_buffer, &mut core::iter::once(data.len()));
            assert_eq!(whole, reference, "StreamDecoder fed in one piece disagrees with decode_packet ({version:?})");
            if version.is_none() && max_packet_size == DEFAULT_MAX_PACKET_SIZE {
                let mut sizes = (1..=7usize).cycle();
                let pieces = decode_stream(data, version, max_packet_size, false, &mut sizes);
                assert_eq!(pieces, reference, "StreamDecoder fed in pieces disagrees with decode_packet");
            }
        }
    }
}

/// The version a decoded packet is re-encoded under: a CONNECT's own, otherwise the
/// stream's (which must be known, as only CONNECT decodes without one).
fn encode_version(packet: &Packet<'_>, stream_version: Option<ProtocolVersion>) -> ProtocolVersion {
    match (packet, stream_version) {
        (Packet::Connect(connect), _) => connect.version,
        (_, Some(version)) => version,
        (other, None) => panic!("{:?} decoded while the version was unknown", other.packet_type()),
    }
}

/// Decode `data` frame by frame with [`decode_packet`], checking each packet thoroughly.
fn decode_reference(data: &[u8], mut version: Option<ProtocolVersion>, max_packet_size: usize) -> Trace {
    let mut packets = Vec::new();
    let mut rest = data;
    loop {
        match decode_packet(rest, version, max_packet_size) {
            Ok(Status::Complete((packet, used))) => {
                assert!(used >= 2 && used <= max_packet_size, "frame of {used} bytes (limit {max_packet_size})");
                let (Some(frame), Some(after)) = (rest.get(..used), rest.get(used..)) else {
                    panic!("decode_packet used {used} bytes of {}", rest.len());
                };
                let v = encode_version(&packet, version);
                packets.push(check_decoded(&packet, v, frame));
                if let (None, Packet::Connect(connect)) = (version, &packet) {
                    version = Some(connect.version);
                }
                rest = after;
            }
            Ok(Status::Incomplete { frame_len }) => {
                if let Some(frame_len) = frame_len {
                    assert!(frame_len > rest.len(), "incomplete, yet the {frame_len}-byte frame is all there");
                    assert!(frame_len <= max_packet_size, "waiting for a frame larger than the limit");
                }
                return Trace { packets, end: End::NeedMore };
            }
            Err(error) => return Trace { packets, end: End::Failed(error) },
        }
    }
}

/// Check one decoded packet against the frame it came from, and return its encoding.
///
/// The encoder writes the shortest form, so the re-encoding equals the frame except for
/// the 5.0 forms that spell out a default (Success reason code, empty property block),
/// which only PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH have.
fn check_decoded(packet: &Packet<'_>, version: ProtocolVersion, frame: &[u8]) -> Vec<u8> {
    let encoded = encode_checked(packet, version);
    let canonical;
    let frame = if version == ProtocolVersion::V3_1 {
        canonical = canonical_v3_1(packet, frame);
        &canonical[..]
    } else {
        frame
    };
    if encoded.len() != frame.len() {
        let shortened = matches!(
            packet.packet_type(),
            PacketType::PubAck
                | PacketType::PubRec
                | PacketType::PubRel
                | PacketType::PubComp
                | PacketType::Disconnect
                | PacketType::Auth
        );
        assert!(
            version.is_v5() && shortened && encoded.len() < frame.len(),
            "re-encoding of {packet:?} changed its length: {frame:02x?} -> {encoded:02x?}"
        );
    } else {
        assert_eq!(encoded, frame, "re-encoding of {packet:?} differs from the frame");
    }
    match decode_packet(&encoded, Some(version), PROTOCOL_MAX_PACKET_SIZE) {
        Ok(Status::Complete((again, used))) => {
            assert_eq!(used, encoded.len(), "re-encoding of {packet:?} decoded with leftover bytes");
            assert_eq!(&again, packet, "re-encoding decoded to another packet");
        }
        other => panic!("re-encoding {encoded:02x?} of {packet:?} does not decode: {other:?}"),
    }
    match OwnedPacket::from_frame(Bytes::copy_from_slice(frame), version) {
        Ok(owned) => assert_eq!(&owned.packet(), packet, "OwnedPacket view differs"),
        Err(e) => panic!("OwnedPacket refuses a frame decode_packet accepted: {e}"),
    }
    encoded
}

/// `frame` with the bits MQTT 3.1 ignores set as the encoder writes them: the fixed-header
/// flags of every packet but PUBLISH, and CONNECT's reserved flag.
fn canonical_v3_1(packet: &Packet<'_>, frame: &[u8]) -> Vec<u8> {
    let mut frame = frame.to_vec();
    if packet.packet_type() != PacketType::Publish
        && let Some(first) = frame.first_mut()
    {
        *first = packet.first_byte();
    }
    if let Packet::Connect(_) = packet {
        // Fixed header, then "MQIsdp" (2 + 6 bytes) and the level: the flags byte.
        let header_len = match crate::wire::decode_var_int(frame.get(1..).unwrap_or_default()) {
            crate::wire::VarIntStatus::Complete { len, .. } => len.saturating_add(1),
            _ => frame.len(),
        };
        if let Some(flags) = frame.get_mut(header_len.saturating_add(9)) {
            *flags &= !0x01;
        }
    }
    frame
}

/// Encode with [`Packet::encode`], which must succeed and write exactly
/// [`Packet::encoded_len`] bytes.
fn encode_checked(packet: &Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
    let len = packet.encoded_len(version);
    let mut out = Vec::with_capacity(len);
    if let Err(e) = packet.encode(version, &mut out) {
        panic!("valid packet refused by the encoder ({version}): {e}: {packet:?}");
    }
    assert_eq!(out.len(), len, "encoded_len() is not the number of bytes written for {packet:?}");
    out
}

/// Decode `data` with a [`StreamDecoder`], feeding it pieces of the sizes `sizes` yields
/// (alternately through `feed` and `read_buffer`, starting with `read_buffer` if asked)
/// and taking out every complete packet after each piece.
fn decode_stream(
    data: &[u8],
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
    mut through_read_buffer: bool,
    sizes: &mut dyn Iterator<Item = usize>,
) -> Trace {
    let mut decoder = StreamDecoder::new(DecoderConfig { max_packet_size, version });
    let mut packets = Vec::new();
    let mut rest = data;
    loop {
        let size = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (Some(piece), Some(after)) = (rest.get(..size), rest.get(size..)) else {
            panic!("piece of {size} bytes out of {}", rest.len());
        };
        if through_read_buffer {
            decoder.read_buffer().extend_from_slice(piece);
        } else {
            decoder.feed(piece);
        }
        through_read_buffer = !through_read_buffer;
        rest = after;
        loop {
            let stream_version = decoder.version();
            match decoder.next_packet() {
                Ok(Some(packet)) => {
                    let v = encode_version(&packet, stream_version);
                    packets.push(encode_checked(&packet, v));
                }
                Ok(None) => break,
                Err(error) => {
                    assert!(decoder.is_dead(), "decoder still alive after {error}");
                    assert_eq!(decoder.next_packet(), Err(StreamError::Dead), "decoder resumed after an error");
                    return Trace { packets, end: End::Failed(error) };
                }
            }
        }
        if rest.is_empty() {
            return Trace { packets, end: End::NeedMore };
        }
    }
}

/// Generate one [`ArbitraryPacket`] from fuzzer input (for tests and corpus tools).
pub fn arbitrary_packet(data: &[u8]) -> arbitrary::Result<ArbitraryPacket> {
    ArbitraryPacket::arbitrary_take_rest(Unstructured::new(data))
}

/// Fuzz target `roundtrip`: a valid packet encodes to exactly `encoded_len()` bytes that
/// decode to an equal packet, through every encoding and decoding path.
pub fn roundtrip(data: &[u8]) {
    if let Ok(seed) = arbitrary_packet(data) {
        check_roundtrip(&seed);
    }
}

/// The checks of [`roundtrip`] on one seed; returns the encoding.
pub fn check_roundtrip(seed: &ArbitraryPacket) -> Vec<u8> {
    let version = seed.version();
    let packet = seed.packet();
    assert_eq!(packet.packet_type(), seed.packet_type());
    if let Err(e) = packet.validate(version) {
        panic!("generated packet is invalid for {version}: {e}: {packet:?}");
    }
    let out = encode_checked(&packet, version);
    let len = out.len();

    // The fixed header: first byte, then the remaining length.
    let remaining = packet.remaining_len(version);
    let header_len = len.checked_sub(remaining).unwrap_or_else(|| panic!("remaining length exceeds the packet"));
    let var_int_len = wire::var_int_len(u32::try_from(remaining).unwrap_or(u32::MAX));
    assert_eq!(Some(header_len), var_int_len.checked_add(1), "fixed header of {packet:?}");
    assert_eq!(out.first(), Some(&packet.first_byte()));

    // Writing into a slice of exactly encoded_len() bytes fills it.
    let mut exact = vec![0u8; len];
    let mut window = exact.as_mut_slice();
    if let Err(e) = packet.encode(version, &mut window) {
        panic!("encoding into an exact buffer failed: {e}");
    }
    assert!(window.is_empty(), "encoding left {} bytes of an exact buffer unused", window.len());
    assert_eq!(exact, out);

    // Decoding gives the packet back, with and without a known version for CONNECT.
    match decode_packet(&out, Some(version), len) {
        Ok(Status::Complete((decoded, used))) => {
            assert_eq!(used, len);
            assert_eq!(decoded, packet, "round trip changed the packet ({version})");
        }
        other => panic!("encoding {out:02x?} of {packet:?} does not decode: {other:?}"),
    }
    if packet.packet_type() == PacketType::Connect {
        match decode_packet(&out, None, len) {
            Ok(Status::Complete((decoded, _))) => assert_eq!(decoded, packet),
            other => panic!("CONNECT does not decode without a version: {other:?}"),
        }
    }
    // One byte under the limit is refused from the header alone.
    if let Some(limit) = len.checked_sub(1) {
        match decode_packet(&out, Some(version), limit) {
            Err(StreamError::Frame(crate::FrameError::PacketTooLarge { size, limit: l })) => {
                assert_eq!((size, l), (len, limit));
            }
            other => panic!("packet of {len} bytes not refused with limit {limit}: {other:?}"),
        }
    }
    // Every prefix is incomplete, with the frame length known once the header is.
    for cut in [0, 1, header_len.saturating_sub(1), header_len, len / 2, len.saturating_sub(1)] {
        let Some(prefix) = out.get(..cut).filter(|_| cut < len) else { continue };
        let expected = if cut >= header_len { Some(len) } else { None };
        match decode_packet(prefix, Some(version), len) {
            Ok(Status::Incomplete { frame_len }) => assert_eq!(frame_len, expected, "prefix of {cut} bytes"),
            other => panic!("prefix of {cut} bytes: {other:?}"),
        }
    }

    // Vectored: head plus the borrowed payload is the same encoding.
    let mut head = Vec::new();
    match packet.encode_vectored(version, &mut head) {
        Ok(payload) => {
            let expected_payload: &[u8] = match &packet {
                Packet::Publish(publish) => publish.payload,
                _ => &[],
            };
            assert_eq!(payload, expected_payload, "encode_vectored returned another payload");
            assert_eq!(out.get(..head.len()), Some(head.as_slice()), "vectored head differs");
            assert_eq!(out.get(head.len()..), Some(payload), "vectored payload differs");
        }
        Err(e) => panic!("encode_vectored refused what encode accepted: {e}"),
    }

    // Owned packets: built from the packet or from the frame, they agree.
    match (OwnedPacket::from_packet(&packet, version), OwnedPacket::from_frame(Bytes::from(out.clone()), version)) {
        (Ok(from_packet), Ok(from_frame)) => {
            assert_eq!(from_packet.frame().as_ref(), out.as_slice());
            assert_eq!(from_packet, from_frame, "OwnedPacket from the packet and from its frame differ");
            assert_eq!(from_frame.packet(), packet);
            assert_eq!(from_frame.version(), version);
            let payload: &[u8] = match &packet {
                Packet::Publish(publish) => publish.payload,
                _ => &[],
            };
            assert_eq!(from_frame.payload().as_ref(), payload);
        }
        other => panic!("OwnedPacket refused a valid packet: {other:?}"),
    }

    // A stream decoder hands it out once, then wants more. Its limit is the packet's own
    // size: a valid packet may be larger than the default limit (fuzz regression
    // `roundtrip_packet_larger_than_default_limit`).
    let mut decoder = StreamDecoder::new(DecoderConfig { max_packet_size: len, version: Some(version) });
    decoder.feed(&out);
    assert_eq!(decoder.next_packet(), Ok(Some(packet.clone())));
    assert_eq!(decoder.next_packet(), Ok(None));
    assert_eq!(decoder.buffered(), 0);
    out
}

/// Fuzz target `stream_split`: up to eight valid packets of one version, concatenated,
/// cut at points taken from the input and fed piece by piece (through `feed` and
/// `read_buffer`) into a [`StreamDecoder`]. Each packet must come out as soon as its last
/// byte is in, equal to the original and to what decoding the whole buffer gives.
pub fn stream_split(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(&version) = u.choose(&ProtocolVersion::ALL) else { return };
    let count = u.int_in_range(1..=8u8).unwrap_or(1);
    let mut seeds = Vec::new();
    for _ in 0..count {
        match ArbitraryPacket::arbitrary_for(&mut u, version) {
            Ok(seed) => seeds.push(seed),
            Err(_) => return,
        }
    }
    check_stream_split(&seeds, &mut u);
}

/// The checks of [`stream_split`] on given packets, cutting where `u` says.
pub fn check_stream_split(seeds: &[ArbitraryPacket], u: &mut Unstructured<'_>) {
    let Some(version) = seeds.first().map(ArbitraryPacket::version) else { return };
    assert!(seeds.iter().all(|s| s.version() == version), "packets of one stream must share a version");
    let originals: Vec<Packet<'_>> = seeds.iter().map(ArbitraryPacket::packet).collect();
    let mut wire = Vec::new();
    let mut frame_ends = Vec::new();
    for packet in &originals {
        wire.extend_from_slice(&encode_checked(packet, version));
        frame_ends.push(wire.len());
    }
    // The tightest limit that admits every frame.
    let mut max_frame = 0;
    let mut start = 0;
    for &end in &frame_ends {
        max_frame = max_frame.max(end.saturating_sub(start));
        start = end;
    }
    // A stream that opens with CONNECT may learn its version from it.
    let learn = originals.first().map(Packet::packet_type) == Some(PacketType::Connect)
        && u.arbitrary::<bool>().unwrap_or(false);
    let config = DecoderConfig { max_packet_size: max_frame, version: if learn { None } else { Some(version) } };

    // Whole buffer, frame by frame.
    let mut rest = wire.as_slice();
    let mut stream_version = config.version;
    for original in &originals {
        match decode_packet(rest, stream_version, max_frame) {
            Ok(Status::Complete((packet, used))) => {
                assert_eq!(&packet, original, "whole-buffer decode differs from the original");
                stream_version = Some(version);
                rest = rest.get(used..).unwrap_or_default();
            }
            other => panic!("whole-buffer decode failed: {other:?}"),
        }
    }
    assert!(rest.is_empty(), "{} bytes left after the last packet", rest.len());

    // Whole buffer, one feed.
    let mut decoder = StreamDecoder::new(config);
    decoder.feed(&wire);
    for original in &originals {
        assert_eq!(decoder.next_packet(), Ok(Some(original.clone())), "one-feed stream differs");
    }
    assert_eq!(decoder.next_packet(), Ok(None));

    // Piece by piece.
    let mut decoder = StreamDecoder::new(config);
    let mut fed = 0usize;
    let mut delivered = 0usize;
    while fed < wire.len() {
        let left = wire.len().saturating_sub(fed);
        let size = if u.is_empty() {
            left
        } else if u.ratio(1u8, 4).unwrap_or(true) {
            u.int_in_range(0..=left).unwrap_or(left)
        } else {
            u.int_in_range(0..=8usize).unwrap_or(left).min(left)
        };
        let end = fed.saturating_add(size);
        let Some(piece) = wire.get(fed..end) else { panic!("piece {fed}..{end} of {}", wire.len()) };
        if u.arbitrary::<bool>().unwrap_or(false) {
            decoder.read_buffer().extend_from_slice(piece);
        } else {
            decoder.feed(piece);
        }
        fed = end;
        loop {
            match decoder.next_packet() {
                Ok(Some(packet)) => {
                    let Some(original) = originals.get(delivered) else {
                        panic!("extra packet {packet:?} after {delivered}");
                    };
                    assert_eq!(&packet, original, "packet {delivered} differs after splitting");
                    delivered = delivered.saturating_add(1);
                }
                Ok(None) => break,
                Err(e) => panic!("stream of valid packets failed after {delivered} packets and {fed} bytes: {e}"),
            }
        }
        // Exactly the packets whose last byte is in have come out.
        let complete = frame_ends.iter().filter(|&&end| end <= fed).count();
        assert_eq!(delivered, complete, "after {fed} bytes: {delivered} packets out, {complete} complete");
        if learn && delivered > 0 {
            assert_eq!(decoder.version(), Some(version), "version not learnt from CONNECT");
        }
    }
    assert_eq!(delivered, originals.len());
    assert_eq!(decoder.buffered(), 0);
    assert_eq!(decoder.next_packet(), Ok(None));
}

//! The `tokio-util` codec (feature `tokio-codec`) frames like the stream decoder.

use bytes::BytesMut;
use mqttkit_codec::{
    CodecError, DecodeError, EncodeError, MqttCodec, Packet, PacketId, ProtocolVersion, PublishResponse, StreamError,
};
use tokio_util::codec::{Decoder, Encoder};

#[test]
fn decodes_chunks_and_learns_the_version() {
    let mut codec = MqttCodec::default();
    let connect = [0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 1, b'c'];
    let puback = [0x40, 0x03, 0, 1, 0x10];
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for byte in connect.iter().chain(&puback) {
        buf.extend_from_slice(&[*byte]);
        if let Some(packet) = codec.decode(&mut buf).expect("valid") {
            packets.push(packet);
        }
    }
    assert_eq!(packets.len(), 2);
    assert_eq!(codec.version(), Some(ProtocolVersion::V5));
    assert!(matches!(packets[1].packet(), Packet::PubAck(ack) if ack.reason_code.0 == 0x10));

    let mut out = BytesMut::new();
    codec.encode(&packets[1], &mut out).expect("encodes");
    let decoded = packets[1].packet();
    codec.encode(&decoded, &mut out).expect("encodes");
    assert_eq!(&out[..], [&puback[..], &puback[..]].concat());
}

#[test]
fn refuses_packets_before_connect_and_stays_dead() {
    let mut codec = MqttCodec::default();
    let mut buf = BytesMut::from(&[0xC0, 0x00, 0xC0, 0x00][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::Stream(StreamError::Packet(DecodeError::UnexpectedPacket(_))))
    ));
    assert!(matches!(codec.decode(&mut buf), Err(CodecError::Stream(StreamError::Dead))));
}

#[test]
fn refuses_to_encode_before_the_version_is_known() {
    let mut codec = MqttCodec::default();
    let puback = Packet::PubAck(PublishResponse::new(PacketId::MIN));
    let mut out = BytesMut::new();
    assert!(matches!(codec.encode(&puback, &mut out), Err(CodecError::Encode(EncodeError::UnknownVersion))));
    assert!(out.is_empty());
    // Once the version is known (here from the CONNECT received), it encodes in it.
    let mut buf = BytesMut::from(&[0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'c'][..]);
    assert!(codec.decode(&mut buf).expect("valid").is_some());
    codec.encode(&puback, &mut out).expect("3.1.1 now");
    assert_eq!(&out[..], [0x40, 0x02, 0, 1]);
}

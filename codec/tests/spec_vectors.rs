//! Layer 1: spec byte vectors. Every packet type decodes from hand-built bytes and
//! re-encodes to exactly those bytes; malformed frames are refused with the exact error.

mod common;

use common::{NON_CANONICAL, VECTORS};
use mqttkit_codec::{
    DecodeError, FrameError, Packet, PacketType, PropertyId, ProtocolVersion, Status, StreamError, decode_packet,
};

const LIMIT: usize = mqttkit_codec::PROTOCOL_MAX_PACKET_SIZE;

fn decode(bytes: &[u8], version: ProtocolVersion) -> Result<Packet<'_>, StreamError> {
    match decode_packet(bytes, Some(version), LIMIT)? {
        Status::Complete((packet, used)) => {
            assert_eq!(used, bytes.len(), "frame must use every byte");
            Ok(packet)
        }
        Status::Incomplete { .. } => panic!("complete frame reported incomplete"),
    }
}

fn reject(bytes: &[u8], version: ProtocolVersion) -> StreamError {
    match decode_packet(bytes, Some(version), LIMIT) {
        Err(e) => e,
        Ok(other) => panic!("accepted {bytes:02x?}: {other:?}"),
    }
}

#[test]
fn vectors_are_well_framed() {
    for (name, _, bytes) in VECTORS.iter().chain(NON_CANONICAL) {
        assert_eq!(usize::from(bytes[1]), bytes.len() - 2, "{name}: remaining length");
    }
}

#[test]
fn decodes_every_vector_and_reencodes_it_exactly() {
    let mut seen = std::collections::BTreeSet::new();
    for &(name, version, bytes) in VECTORS {
        let packet = decode(bytes, version).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen.insert((packet.packet_type(), version.is_v5()));
        assert_eq!(packet.encoded_len(version), bytes.len(), "{name}: encoded_len");
        let mut out = Vec::new();
        packet.encode(version, &mut out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out, bytes, "{name}: re-encoding");
    }
    // Every packet type is covered for both protocol generations (AUTH only in 5.0).
    assert_eq!(seen.len(), 14 + 15 - 1, "types covered: {seen:?}");
}

#[test]
fn decodes_non_canonical_short_forms() {
    for &(name, version, bytes) in NON_CANONICAL {
        let packet = decode(bytes, version).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut out = Vec::new();
        packet.encode(version, &mut out).expect("encodes");
        assert!(out.len() < bytes.len(), "{name}: encoder picks the shorter form");
        assert_eq!(decode(&out, version).expect("re-decodes"), packet, "{name}");
    }
}

#[test]
fn decodes_v5_connect_fields() {
    let bytes = VECTORS.iter().find(|v| v.0 == "v5-connect-props-will").expect("vector").2;
    let Packet::Connect(c) = decode(bytes, ProtocolVersion::V5).expect("valid") else { panic!("not CONNECT") };
    assert_eq!(c.properties.session_expiry_interval(), Some(10));
    let will = c.will.expect("will");
    assert_eq!(will.properties.will_delay_interval(), Some(5));
    assert_eq!(will.topic, "w");
}

#[test]
fn decodes_v5_publish_properties_in_order() {
    let bytes = VECTORS.iter().find(|v| v.0 == "v5-publish-props").expect("vector").2;
    let Packet::Publish(p) = decode(bytes, ProtocolVersion::V5).expect("valid") else { panic!("not PUBLISH") };
    let ids: Vec<_> = p.properties.iter().map(|p| p.id()).collect();
    assert_eq!(
        ids,
        [
            PropertyId::MESSAGE_EXPIRY_INTERVAL,
            PropertyId::CONTENT_TYPE,
            PropertyId::USER_PROPERTY,
            PropertyId::SUBSCRIPTION_IDENTIFIER
        ]
    );
    assert_eq!(p.payload, b"x");
}

#[test]
fn decodes_byte_order_mark_unchanged() {
    let bytes = VECTORS.iter().find(|v| v.0 == "publish-bom").expect("vector").2;
    let Packet::Publish(p) = decode(bytes, ProtocolVersion::V3_1_1).expect("valid") else { panic!() };
    assert_eq!(p.topic, "\u{FEFF}");
}

use ProtocolVersion::{V3_1_1, V5};

#[test]
fn rejects_puback_without_packet_id() {
    // Two bytes `40 00` crash one published codec; here they are a plain error.
    assert_eq!(reject(&[0x40, 0x00], V3_1_1), StreamError::Packet(DecodeError::Truncated));
    assert_eq!(reject(&[0x40, 0x00], V5), StreamError::Packet(DecodeError::Truncated));
}

#[test]
fn rejects_reserved_packet_types() {
    assert_eq!(reject(&[0x00, 0x00], V3_1_1), StreamError::Packet(DecodeError::ReservedPacketType(0)));
    assert_eq!(reject(&[0xF0, 0x00], V3_1_1), StreamError::Packet(DecodeError::ReservedPacketType(15)));
}

#[test]
fn rejects_invalid_fixed_header_flags() {
    for (bytes, packet_type, flags) in [
        (&[0x60, 0x02, 0, 1][..], PacketType::PubRel, 0),
        (&[0x80, 0x06, 0, 1, 0, 1, b'a', 0], PacketType::Subscribe, 0),
        (&[0xA0, 0x05, 0, 1, 0, 1, b'a'], PacketType::Unsubscribe, 0),
        (&[0x41, 0x02, 0, 1], PacketType::PubAck, 1),
        (&[0x12, 0x00], PacketType::Connect, 2),
        (&[0xC1, 0x00], PacketType::PingReq, 1),
        (&[0xE8, 0x00], PacketType::Disconnect, 8),
    ] {
        assert_eq!(
            reject(bytes, V3_1_1),
            StreamError::Packet(DecodeError::InvalidFlags { packet_type, flags }),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn rejects_bad_remaining_lengths() {
    // Non-minimal: 0 encoded in two bytes [MQTT-1.5.5-1].
    assert_eq!(reject(&[0xC0, 0x80, 0x00], V3_1_1), StreamError::Frame(FrameError::InvalidRemainingLength));
    // Five bytes.
    assert_eq!(
        reject(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], V5),
        StreamError::Frame(FrameError::InvalidRemainingLength)
    );
}

#[test]
fn rejects_publish_violations() {
    for (bytes, error) in [
        (&[0x36, 0x05, 0, 1, b't', 0, 1][..], DecodeError::InvalidQoS),
        (&[0x38, 0x03, 0, 1, b't'], DecodeError::DupWithQoS0),
        (&[0x32, 0x05, 0, 1, b't', 0, 0], DecodeError::ZeroPacketId),
        (&[0x30, 0x04, 0, 2, 0xC0, 0xAF], DecodeError::InvalidUtf8),
        (&[0x30, 0x05, 0, 3, 0xED, 0xA0, 0x80], DecodeError::InvalidUtf8),
        (&[0x30, 0x03, 0, 1, 0x00], DecodeError::NullCharacter),
        (&[0x30, 0x05, 0, 3, b'a', b'/', b'+'], DecodeError::WildcardInTopicName),
        (&[0x30, 0x03, 0, 1, b'#'], DecodeError::WildcardInTopicName),
        (&[0x30, 0x02, 0, 0], DecodeError::EmptyTopic),
        (&[0x32, 0x04, 0, 1, b't', 0], DecodeError::Truncated),
    ] {
        assert_eq!(reject(bytes, V3_1_1), StreamError::Packet(error), "{bytes:02x?}");
    }
}

#[test]
fn rejects_v5_property_violations() {
    for (bytes, error) in [
        // Topic Alias 0.
        (&[0x30, 0x07, 0, 1, b't', 3, 0x23, 0, 0][..], DecodeError::InvalidPropertyValue(PropertyId::TOPIC_ALIAS)),
        // Payload Format Indicator twice.
        (
            &[0x30, 0x08, 0, 1, b't', 4, 0x01, 0, 0x01, 1],
            DecodeError::DuplicateProperty(PropertyId::PAYLOAD_FORMAT_INDICATOR),
        ),
        // Unknown property 0x04.
        (&[0x30, 0x06, 0, 1, b't', 2, 0x04, 0], DecodeError::UnknownProperty(0x04)),
        // Property length beyond the packet.
        (&[0x30, 0x05, 0, 1, b't', 9, 0x01], DecodeError::Truncated),
        // User Property with U+0000 in its value.
        (&[0x30, 0x0C, 0, 1, b't', 8, 0x26, 0, 1, b'k', 0, 2, b'v', 0], DecodeError::NullCharacter),
        // Subscription Identifier 0.
        (&[0x30, 0x06, 0, 1, b't', 2, 0x0B, 0], DecodeError::InvalidPropertyValue(PropertyId::SUBSCRIPTION_IDENTIFIER)),
        // Maximum QoS 2 in CONNACK.
        (&[0x20, 0x05, 0, 0, 2, 0x24, 2], DecodeError::InvalidPropertyValue(PropertyId::MAXIMUM_QOS)),
        // Receive Maximum 0 in CONNACK.
        (&[0x20, 0x06, 0, 0, 3, 0x21, 0, 0], DecodeError::InvalidPropertyValue(PropertyId::RECEIVE_MAXIMUM)),
        // Maximum Packet Size 0 in CONNACK.
        (&[0x20, 0x08, 0, 0, 5, 0x27, 0, 0, 0, 0], DecodeError::InvalidPropertyValue(PropertyId::MAXIMUM_PACKET_SIZE)),
        // Topic Alias in SUBSCRIBE.
        (
            &[0x82, 0x09, 0, 1, 3, 0x23, 0, 1, 0, 1, b'a'],
            DecodeError::PropertyNotAllowed { property: PropertyId::TOPIC_ALIAS, packet_type: PacketType::Subscribe },
        ),
        // Two Subscription Identifiers in SUBSCRIBE.
        (
            &[0x82, 0x0B, 0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, b'a', 0],
            DecodeError::DuplicateProperty(PropertyId::SUBSCRIPTION_IDENTIFIER),
        ),
    ] {
        assert_eq!(reject(bytes, V5), StreamError::Packet(error), "{bytes:02x?}");
    }
}

#[test]
fn rejects_subscribe_violations() {
    assert_eq!(reject(&[0x82, 0x02, 0, 1], V3_1_1), StreamError::Packet(DecodeError::EmptySubscribe));
    assert_eq!(reject(&[0xA2, 0x02, 0, 1], V3_1_1), StreamError::Packet(DecodeError::EmptyUnsubscribe));
    assert_eq!(
        reject(&[0x82, 0x07, 0, 1, 0, 2, b'a', b'#', 0], V3_1_1),
        StreamError::Packet(DecodeError::InvalidTopicFilter)
    );
    assert_eq!(
        reject(&[0x82, 0x06, 0, 1, 0, 1, b'a', 0x04], V3_1_1),
        StreamError::Packet(DecodeError::SubscriptionOptionsReserved)
    );
    assert_eq!(
        reject(&[0x82, 0x07, 0, 1, 0, 0, 1, b'a', 0x30], V5),
        StreamError::Packet(DecodeError::InvalidRetainHandling)
    );
}

#[test]
fn rejects_trailing_bytes_in_fixed_size_packets() {
    for bytes in [&[0xC0, 0x01, 0x00][..], &[0xD0, 0x01, 0x00], &[0x40, 0x03, 0, 1, 0], &[0xB0, 0x03, 0, 1, 0]] {
        assert_eq!(reject(bytes, V3_1_1), StreamError::Packet(DecodeError::TrailingBytes), "{bytes:02x?}");
    }
}

#[test]
fn rejects_packets_before_connect_when_version_unknown() {
    assert_eq!(
        decode_packet(&[0x30, 0x03, 0, 1, b't'], None, LIMIT),
        Err(StreamError::Packet(DecodeError::UnexpectedPacket(PacketType::Publish)))
    );
}

#[test]
fn every_decode_error_cites_a_statement_or_section() {
    let error = DecodeError::InvalidFlags { packet_type: PacketType::PubRel, flags: 0 };
    assert_eq!(error.to_string(), "invalid fixed-header flags 0b0000 for PUBREL [MQTT-3.6.1-1]");
    assert_eq!(error.reason_code().0, 0x81);
    // No numbered statement: the section of each version (2.2.3 in 3.1.1, 4.13 in 5.0).
    assert!(DecodeError::Truncated.to_string().ends_with("[MQTT-3.1.1 §2.2.3] [MQTT-5.0 §4.13]"));
    assert_eq!(DecodeError::EmptySubscribe.reason_code().0, 0x82);
}

/// MQTT 3.1 has no rule on reserved bits: mosquitto accepts 3.1 CONNECTs with the CONNECT
/// reserved flag or fixed-header flags set, and 3.1 calls the DUP, QoS and RETAIN flags
/// of most packets "not used". 3.1.1 and 5.0 keep refusing them.
#[test]
fn accepts_what_mqtt_3_1_allows() {
    use mqttkit_codec::{Packet, PacketType, StreamError};
    let v31 = [0x13, 0x0F, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x03, 0, 10, 0, 1, b'x'];
    let Ok(Status::Complete((Packet::Connect(c), 17))) = decode_packet(&v31, None, 1024) else {
        panic!("3.1 CONNECT with header flags and the reserved flag");
    };
    assert_eq!((c.version, c.clean_start), (ProtocolVersion::V3_1, true));
    let v311 = [0x12, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'c'];
    assert_eq!(
        decode_packet(&v311, None, 1024),
        Err(StreamError::Packet(DecodeError::InvalidFlags { packet_type: PacketType::Connect, flags: 2 }))
    );
    let mut reserved = v311;
    reserved[0] = 0x10;
    reserved[9] = 0x03;
    assert_eq!(decode_packet(&reserved, None, 1024), Err(StreamError::Packet(DecodeError::ConnectReservedFlag)));
    // On a 3.1 stream: unused flags ignored; PUBREL, SUBSCRIBE, UNSUBSCRIBE need QoS 1.
    let v31_stream = Some(ProtocolVersion::V3_1);
    assert!(matches!(decode_packet(&[0x4B, 2, 0, 1], v31_stream, 1024), Ok(Status::Complete((Packet::PubAck(_), 4)))));
    assert!(decode_packet(&[0x8A, 6, 0, 1, 0, 1, b'a', 0], v31_stream, 1024).is_ok(), "SUBSCRIBE retried with DUP");
    assert_eq!(
        decode_packet(&[0x80, 6, 0, 1, 0, 1, b'a', 0], v31_stream, 1024),
        Err(StreamError::Packet(DecodeError::InvalidFlags { packet_type: PacketType::Subscribe, flags: 0 }))
    );
    assert!(decode_packet(&[0x4B, 2, 0, 1], Some(ProtocolVersion::V3_1_1), 1024).is_err());
}

/// mosquitto bridges set bit 7 of the protocol level: 0x83 / 0x84 are 3.1 / 3.1.1 from a
/// bridge, reported in `Connect::bridge` and kept when re-encoding.
#[test]
fn decodes_bridge_protocol_levels() {
    use mqttkit_codec::{Connect, Packet};
    for (bytes, version) in [
        (vec![0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 0x84, 0x02, 0, 60, 0, 1, b'c'], ProtocolVersion::V3_1_1),
        (
            vec![0x10, 0x0F, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 0x83, 0x02, 0, 10, 0, 1, b'x'],
            ProtocolVersion::V3_1,
        ),
    ] {
        let Ok(Status::Complete((Packet::Connect(c), _))) = decode_packet(&bytes, None, 1024) else {
            panic!("bridge CONNECT {bytes:02x?}");
        };
        assert_eq!((c.version, c.bridge), (version, true));
        assert_eq!(Connect::peek_version(&bytes[2..]), Some(version));
        let mut out = Vec::new();
        Packet::Connect(c).encode(version, &mut out).expect("valid");
        assert_eq!(out, bytes);
    }
    let v5_bridge = [0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 0x85, 0x02, 0, 60, 0, 0, 1, b'c'];
    assert!(matches!(
        decode_packet(&v5_bridge, None, 1024),
        Err(mqttkit_codec::StreamError::Packet(DecodeError::UnsupportedProtocolLevel(0x85)))
    ));
}

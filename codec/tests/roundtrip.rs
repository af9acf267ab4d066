//! Layer 4: property-based round trips. For arbitrary valid packets of every type:
//! `decode(encode(p)) == p`, `encode(decode(b)) == b`, `encoded_len` is exact, and the
//! vectored form writes the same bytes.

use mqttkit_codec::{
    Auth, ConnAck, Connect, Disconnect, MqttStr, PROTOCOL_MAX_PACKET_SIZE, Packet, PacketId, PacketType, Properties,
    PropertiesBuf, Property, PropertyContext, ProtocolVersion, Publish, PublishQoS, PublishResponse, QoS, ReasonCode,
    ReasonCodes, RetainHandling, Status, SubAck, Subscribe, SubscribeFiltersBuf, SubscriptionOptions, TopicFilter,
    TopicName, UnsubAck, Unsubscribe, UnsubscribeFiltersBuf, Will, decode_packet,
};
use proptest::prelude::*;

fn check(packet: &Packet<'_>, version: ProtocolVersion) -> Result<(), TestCaseError> {
    let mut bytes = Vec::new();
    packet.encode(version, &mut bytes).map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    prop_assert_eq!(packet.encoded_len(version), bytes.len());
    let mut head = Vec::new();
    let payload = packet.encode_vectored(version, &mut head).map_err(|e| TestCaseError::fail(e.to_string()))?;
    head.extend_from_slice(payload);
    prop_assert_eq!(&head, &bytes);
    let decoded = match decode_packet(&bytes, Some(version), PROTOCOL_MAX_PACKET_SIZE) {
        Ok(Status::Complete((decoded, used))) => {
            prop_assert_eq!(used, bytes.len());
            decoded
        }
        other => return Err(TestCaseError::fail(format!("decode of {bytes:02x?}: {other:?}"))),
    };
    prop_assert_eq!(&decoded, packet);
    let mut again = Vec::new();
    decoded.encode(version, &mut again).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(again, bytes);
    Ok(())
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(ProtocolVersion::V3_1), Just(ProtocolVersion::V3_1_1), Just(ProtocolVersion::V5)]
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _./é\u{FEFF}€$-]{0,12}"
}

fn topic() -> impl Strategy<Value = String> {
    "[a-z0-9/ $é\u{FEFF}]{1,16}"
}

fn filter() -> impl Strategy<Value = String> {
    (prop::collection::vec(prop_oneof![Just("a"), Just("bc"), Just("+"), Just(""), Just("é")], 1..5), any::<bool>())
        .prop_map(|(levels, hash)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str(if f.is_empty() { "#" } else { "/#" });
            }
            if f.is_empty() { "x".to_owned() } else { f }
        })
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|id| PacketId::new(id).unwrap_or(PacketId::MIN))
}

/// Owned property values; which are kept depends on the packet.
#[derive(Debug, Clone)]
enum OwnedProperty {
    Byte(u8, bool),
    U16(u8, u16),
    U32(u8, u32),
    Str(u8, String),
    Bin(u8, Vec<u8>),
    User(String, String),
    SubId(u32),
}

fn owned_property() -> impl Strategy<Value = OwnedProperty> {
    prop_oneof![
        (prop::sample::select(vec![0x01u8, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A]), any::<bool>())
            .prop_map(|(id, v)| OwnedProperty::Byte(id, v)),
        (prop::sample::select(vec![0x13u8, 0x21, 0x22, 0x23]), 1u16..).prop_map(|(id, v)| OwnedProperty::U16(id, v)),
        (prop::sample::select(vec![0x02u8, 0x11, 0x18, 0x27]), 1u32..).prop_map(|(id, v)| OwnedProperty::U32(id, v)),
        (prop::sample::select(vec![0x03u8, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F]), topic())
            .prop_map(|(id, v)| OwnedProperty::Str(id, v)),
        (prop::sample::select(vec![0x09u8, 0x16]), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(id, v)| OwnedProperty::Bin(id, v)),
        (text(), text()).prop_map(|(k, v)| OwnedProperty::User(k, v)),
        (1u32..=mqttkit_codec::VAR_INT_MAX).prop_map(OwnedProperty::SubId),
    ]
}

impl OwnedProperty {
    fn property(&self) -> Property<'_> {
        match self {
            Self::Byte(0x01, v) => Property::PayloadFormatIndicator(u8::from(*v)),
            Self::Byte(0x17, v) => Property::RequestProblemInformation(u8::from(*v)),
            Self::Byte(0x19, v) => Property::RequestResponseInformation(u8::from(*v)),
            Self::Byte(0x24, v) => Property::MaximumQoS(u8::from(*v)),
            Self::Byte(0x25, v) => Property::RetainAvailable(u8::from(*v)),
            Self::Byte(0x28, v) => Property::WildcardSubscriptionAvailable(u8::from(*v)),
            Self::Byte(0x29, v) => Property::SubscriptionIdentifierAvailable(u8::from(*v)),
            Self::Byte(_, v) => Property::SharedSubscriptionAvailable(u8::from(*v)),
            Self::U16(0x13, v) => Property::ServerKeepAlive(*v),
            Self::U16(0x21, v) => Property::ReceiveMaximum(*v),
            Self::U16(0x22, v) => Property::TopicAliasMaximum(*v),
            Self::U16(_, v) => Property::TopicAlias(*v),
            Self::U32(0x02, v) => Property::MessageExpiryInterval(*v),
            Self::U32(0x11, v) => Property::SessionExpiryInterval(*v),
            Self::U32(0x18, v) => Property::WillDelayInterval(*v),
            Self::U32(_, v) => Property::MaximumPacketSize(*v),
            Self::Str(0x03, v) => Property::ContentType(v),
            Self::Str(0x08, v) => Property::ResponseTopic(v),
            Self::Str(0x12, v) => Property::AssignedClientIdentifier(v),
            Self::Str(0x15, v) => Property::AuthenticationMethod(v),
            Self::Str(0x1A, v) => Property::ResponseInformation(v),
            Self::Str(0x1C, v) => Property::ServerReference(v),
            Self::Str(_, v) => Property::ReasonString(v),
            Self::Bin(0x09, v) => Property::CorrelationData(v),
            Self::Bin(_, v) => Property::AuthenticationData(v),
            Self::User(k, v) => Property::UserProperty(k, v),
            Self::SubId(v) => Property::SubscriptionIdentifier(*v),
        }
    }
}

/// Keep the candidates that `context` accepts, in order, skipping any that would make the
/// block invalid (duplicates, data without a method).
fn build_properties(candidates: &[OwnedProperty], context: PropertyContext, v5: bool) -> PropertiesBuf {
    let mut buf = PropertiesBuf::new();
    if !v5 {
        return buf;
    }
    for candidate in candidates {
        let mut trial = buf.clone();
        if trial.push(candidate.property()).is_ok() && trial.properties(context).is_ok() {
            buf = trial;
        }
    }
    buf
}

fn props<'a>(buf: &'a PropertiesBuf, context: PropertyContext) -> Properties<'a> {
    buf.properties(context).expect("built valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn publish_round_trips(
        version in version(), topic in topic(), qos in qos(), id in packet_id(), dup in any::<bool>(),
        retain in any::<bool>(), payload in prop::collection::vec(any::<u8>(), 0..300),
        candidates in prop::collection::vec(owned_property(), 0..6),
    ) {
        let props_buf = build_properties(&candidates, PropertyContext::Publish, version.is_v5());
        let qos = PublishQoS::new(qos, id);
        let publish = Publish {
            dup: dup && qos != PublishQoS::AtMostOnce,
            qos,
            retain,
            topic: TopicName::new(&topic).expect("valid topic"),
            properties: props(&props_buf, PropertyContext::Publish),
            payload: &payload,
        };
        check(&Packet::Publish(publish), version)?;
    }

    #[test]
    fn connect_round_trips(
        version in version(), client_id in text(), clean in any::<bool>(), keep_alive in any::<u16>(), bridge in any::<bool>(),
        will in proptest::option::of((qos(), any::<bool>(), topic(), prop::collection::vec(any::<u8>(), 0..20))),
        username in proptest::option::of(text()), password in proptest::option::of(prop::collection::vec(any::<u8>(), 0..20)),
        candidates in prop::collection::vec(owned_property(), 0..6),
        will_candidates in prop::collection::vec(owned_property(), 0..6),
    ) {
        let props_buf = build_properties(&candidates, PropertyContext::Connect, version.is_v5());
        let will_buf = build_properties(&will_candidates, PropertyContext::Will, version.is_v5());
        // Before 5.0 a password needs a user name.
        let password = if version.is_v5() || username.is_some() { password } else { None };
        let connect = Connect {
            version,
            // The bridge bit exists before 5.0 only (protocol levels 0x83 and 0x84).
            bridge: bridge && !version.is_v5(),
            clean_start: clean,
            keep_alive,
            properties: props(&props_buf, PropertyContext::Connect),
            client_id: MqttStr::new(&client_id).expect("valid"),
            will: will.as_ref().map(|(qos, retain, topic, payload)| Will {
                qos: *qos,
                retain: *retain,
                properties: props(&will_buf, PropertyContext::Will),
                topic: TopicName::new(topic).expect("valid"),
                payload,
            }),
            username: username.as_deref().map(|u| MqttStr::new(u).expect("valid")),
            password: password.as_deref(),
        };
        check(&Packet::Connect(connect), version)?;
    }

    #[test]
    fn subscribe_round_trips(
        version in version(), id in packet_id(),
        filters in prop::collection::vec((filter(), qos(), any::<bool>(), any::<bool>(), 0u8..3), 1..8),
        candidates in prop::collection::vec(owned_property(), 0..4),
    ) {
        let props_buf = build_properties(&candidates, PropertyContext::Subscribe, version.is_v5());
        let mut list = SubscribeFiltersBuf::new();
        for (f, qos, no_local, rap, rh) in &filters {
            let options = if version.is_v5() {
                SubscriptionOptions { qos: *qos, no_local: *no_local, retain_as_published: *rap, retain_handling: RetainHandling::from_u8(*rh).expect("0..3") }
            } else {
                SubscriptionOptions::qos(*qos)
            };
            list.push(TopicFilter::new(f).expect("valid filter"), options);
        }
        let subscribe = Subscribe {
            packet_id: id,
            properties: props(&props_buf, PropertyContext::Subscribe),
            filters: list.filters(version).expect("valid list"),
        };
        check(&Packet::Subscribe(subscribe), version)?;

        let mut unsub = UnsubscribeFiltersBuf::new();
        for (f, ..) in &filters {
            unsub.push(TopicFilter::new(f).expect("valid"));
        }
        let unsub_props = build_properties(&candidates, PropertyContext::Unsubscribe, version.is_v5());
        let unsubscribe = Unsubscribe {
            packet_id: id,
            properties: props(&unsub_props, PropertyContext::Unsubscribe),
            filters: unsub.filters(version).expect("valid list"),
        };
        check(&Packet::Unsubscribe(unsubscribe), version)?;
    }

    #[test]
    fn acknowledgements_round_trip(
        version in version(), id in packet_id(), codes in prop::collection::vec(any::<u8>(), 1..6),
        code in any::<u8>(), session_present in any::<bool>(),
        candidates in prop::collection::vec(owned_property(), 0..4),
    ) {
        let pick = |packet_type: PacketType| {
            let valid: Vec<u8> = (0..=255u8).filter(|c| ReasonCode(*c).is_valid_for(packet_type, version)).collect();
            ReasonCode(valid[usize::from(code) % valid.len()])
        };
        let v5 = version.is_v5();
        for (packet_type, context) in [
            (PacketType::PubAck, PropertyContext::PubAck),
            (PacketType::PubRec, PropertyContext::PubRec),
            (PacketType::PubRel, PropertyContext::PubRel),
            (PacketType::PubComp, PropertyContext::PubComp),
        ] {
            let buf = build_properties(&candidates, context, v5);
            let response = PublishResponse { packet_id: id, reason_code: pick(packet_type), properties: props(&buf, context) };
            let packet = match packet_type {
                PacketType::PubAck => Packet::PubAck(response),
                PacketType::PubRec => Packet::PubRec(response),
                PacketType::PubRel => Packet::PubRel(response),
                _ => Packet::PubComp(response),
            };
            check(&packet, version)?;
        }
        let connack_code = pick(PacketType::ConnAck);
        let buf = build_properties(&candidates, PropertyContext::ConnAck, v5);
        let connack = ConnAck {
            session_present: session_present && connack_code == ReasonCode::SUCCESS,
            code: connack_code,
            properties: props(&buf, PropertyContext::ConnAck),
        };
        check(&Packet::ConnAck(connack), version)?;

        let suback_codes: Vec<u8> = codes.iter().map(|c| {
            let valid: Vec<u8> = (0..=255u8).filter(|x| ReasonCode(*x).is_valid_for(PacketType::SubAck, version)).collect();
            valid[usize::from(*c) % valid.len()]
        }).collect();
        let buf = build_properties(&candidates, PropertyContext::SubAck, v5);
        let suback = SubAck {
            packet_id: id,
            properties: props(&buf, PropertyContext::SubAck),
            reason_codes: ReasonCodes::parse(&suback_codes, PacketType::SubAck, version).expect("valid"),
        };
        check(&Packet::SubAck(suback), version)?;

        let unsuback_codes: Vec<u8> = codes.iter().map(|c| {
            let valid: Vec<u8> = (0..=255u8).filter(|x| ReasonCode(*x).is_valid_for(PacketType::UnsubAck, ProtocolVersion::V5)).collect();
            valid[usize::from(*c) % valid.len()]
        }).collect();
        let buf = build_properties(&candidates, PropertyContext::UnsubAck, v5);
        let unsuback = UnsubAck {
            packet_id: id,
            properties: props(&buf, PropertyContext::UnsubAck),
            reason_codes: if v5 {
                ReasonCodes::parse(&unsuback_codes, PacketType::UnsubAck, version).expect("valid")
            } else {
                ReasonCodes::from_raw_unchecked(&[])
            },
        };
        check(&Packet::UnsubAck(unsuback), version)?;

        let buf = build_properties(&candidates, PropertyContext::Disconnect, v5);
        let disconnect = Disconnect { reason_code: pick(PacketType::Disconnect), properties: props(&buf, PropertyContext::Disconnect) };
        check(&Packet::Disconnect(disconnect), version)?;
        check(&Packet::PingReq, version)?;
        check(&Packet::PingResp, version)?;

        if v5 {
            let mut buf = PropertiesBuf::new();
            buf.push(Property::AuthenticationMethod("SCRAM-SHA-1")).expect("valid");
            let with_method = build_properties(&candidates, PropertyContext::Auth, true);
            let auth_props = if with_method.as_bytes().is_empty() { PropertiesBuf::new() } else {
                let mut both = buf.clone();
                for p in with_method.properties(PropertyContext::Auth).expect("valid").iter() {
                    if p.id() != mqttkit_codec::PropertyId::AUTHENTICATION_METHOD {
                        let mut trial = both.clone();
                        if trial.push(p).is_ok() && trial.properties(PropertyContext::Auth).is_ok() { both = trial; }
                    }
                }
                both
            };
            let auth = Auth { reason_code: pick(PacketType::Auth), properties: props(&auth_props, PropertyContext::Auth) };
            check(&Packet::Auth(auth), version)?;
        }
    }
}

#[test]
fn encoder_refuses_what_the_decoder_rejects() {
    use mqttkit_codec::{DecodeError, EncodeError};
    let v5 = ProtocolVersion::V5;
    // Wildcards and U+0000 cannot even be put into the typed fields.
    assert!(TopicName::new("a/+").is_err());
    assert!(MqttStr::new("a\0").is_err());
    assert!(TopicFilter::new("a/#/b").is_err());
    // DUP with QoS 0.
    let mut publish = Publish::new(TopicName::new("t").expect("valid"), PublishQoS::AtMostOnce, b"");
    publish.dup = true;
    assert_eq!(
        Packet::Publish(publish).encode(v5, &mut Vec::new()),
        Err(EncodeError::Invalid(DecodeError::DupWithQoS0))
    );
    // A reason code PUBREL may not carry.
    let mut rel = PublishResponse::new(PacketId::MIN);
    rel.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
    assert!(matches!(Packet::PubRel(rel.clone()).encode(v5, &mut Vec::new()), Err(EncodeError::Invalid(_))));
    // ... which the unchecked path does send, for conformance testing.
    let mut raw = Vec::new();
    Packet::PubRel(rel).encode_unchecked(v5, &mut raw);
    assert_eq!(raw, [0x62, 0x03, 0, 1, 0x10]);
    // AUTH before 5.0.
    assert_eq!(
        Packet::Auth(Auth::default()).encode(ProtocolVersion::V3_1_1, &mut Vec::new()),
        Err(EncodeError::NotInVersion(PacketType::Auth))
    );
    // Properties before 5.0, and properties of another packet.
    let mut buf = PropertiesBuf::new();
    buf.push(Property::ReasonString("r")).expect("valid");
    let ack = PublishResponse {
        packet_id: PacketId::MIN,
        reason_code: ReasonCode::SUCCESS,
        properties: props(&buf, PropertyContext::PubAck),
    };
    assert_eq!(
        Packet::PubAck(ack.clone()).encode(ProtocolVersion::V3_1_1, &mut Vec::new()),
        Err(EncodeError::V5FieldInOlderVersion)
    );
    let mut publish = Publish::new(TopicName::new("t").expect("valid"), PublishQoS::AtMostOnce, b"");
    publish.properties = ack.properties;
    assert_eq!(Packet::Publish(publish).encode(v5, &mut Vec::new()), Err(EncodeError::PropertiesForOtherPacket));
    // Reserved values survive through the raw builder.
    let raw = mqttkit_codec::raw::RawPacket::new(0x40).u16(1).u8(0x05).to_bytes();
    assert_eq!(raw, [0x40, 0x03, 0, 1, 0x05]);
}

#[test]
fn owned_packet_shares_the_payload() {
    let topic = TopicName::new("t").expect("valid");
    let payload = vec![7u8; 64 * 1024];
    let packet = Packet::Publish(Publish::new(topic, PublishQoS::AtLeastOnce(PacketId::MIN), &payload));
    let owned = mqttkit_codec::OwnedPacket::from_packet(&packet, ProtocolVersion::V3_1_1).expect("valid");
    let shared = owned.payload();
    assert_eq!(shared.len(), payload.len());
    // The payload is a view into the frame, not a copy.
    let frame = owned.frame().as_ptr_range();
    assert!(frame.contains(&shared.as_ptr()));
    assert_eq!(owned.packet(), packet);
    let again = mqttkit_codec::OwnedPacket::from_frame(owned.frame().clone(), ProtocolVersion::V3_1_1).expect("valid");
    assert_eq!(again, owned);
}

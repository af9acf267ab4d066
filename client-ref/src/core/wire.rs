//! Every use of the codec's packet API in one place: framing and decoding what the server
//! sends, and encoding what the client sends. Everything is encoded by the codec, which
//! refuses what a receiver would reject.

use bytes::{Bytes, BytesMut};
use mqttkit_codec::{
    Connect, DecodeError, Disconnect, EncodeError, MqttStr, Packet, PacketId, PacketType, Properties, Property,
    PropertyContext, ProtocolVersion, Publish, PublishQoS, PublishResponse, QoS, ReasonCode, Status, StreamError,
    Subscribe, SubscribeFiltersBuf, TopicFilter, TopicName, Unsubscribe, UnsubscribeFiltersBuf, Will,
    parse_fixed_header,
};

use crate::error::{OptionsError, PublishError, RequestError};
use crate::message::{Publication, RequestProperties, Subscription};
use crate::options::Options;

/// Take the next complete frame off `rx`: `(frame, fixed header length)`, or `None` when
/// more bytes are needed. The size limit is checked from the fixed header alone.
pub(crate) fn next_frame(
    rx: &mut BytesMut,
    version: ProtocolVersion,
    limit: usize,
) -> Result<Option<(Bytes, usize)>, StreamError> {
    match parse_fixed_header(rx, Some(version), limit)? {
        Status::Complete(header) if rx.len() >= header.frame_len() => {
            Ok(Some((rx.split_to(header.frame_len()).freeze(), header.header_len)))
        }
        _ => Ok(None),
    }
}

/// Decode one frame taken by [`next_frame`], with the codec's full validation.
pub(crate) fn decode(frame: &Bytes, header_len: usize, version: ProtocolVersion) -> Result<Packet<'_>, DecodeError> {
    let first_byte = frame.first().copied().ok_or(DecodeError::Truncated)?;
    let body = frame.get(header_len..).ok_or(DecodeError::Truncated)?;
    Packet::decode(first_byte, body, Some(version))
}

/// Buffers grow by at least this much: bytes already handed out (`poll_transmit`, or
/// payloads of received messages) keep their block alive, so growing by exact sizes
/// would allocate once per packet.
pub(crate) const BUFFER_BLOCK: usize = 8 * 1024;

/// Make room for `len` more bytes, a block at a time.
pub(crate) fn reserve(buf: &mut BytesMut, len: usize) {
    if buf.capacity().saturating_sub(buf.len()) < len {
        buf.reserve(len.max(BUFFER_BLOCK));
    }
}

fn encode(packet: &Packet<'_>, version: ProtocolVersion, tx: &mut BytesMut) -> Result<(), EncodeError> {
    reserve(tx, packet.encoded_len(version));
    packet.encode(version, tx)
}

/// Check a packet's size against the server's Maximum Packet Size: "The Client MUST NOT
/// send packets exceeding Maximum Packet Size to the Server" \[MQTT-5.0: 3.2.2-15\].
fn check_size(packet: &Packet<'_>, version: ProtocolVersion, limit: Option<usize>) -> Result<(), (usize, usize)> {
    let size = packet.encoded_len(version);
    match limit {
        Some(limit) if size > limit => Err((size, limit)),
        _ => Ok(()),
    }
}

/// CONNECT for these options.
pub(crate) fn encode_connect(
    options: &Options,
    client_id: &str,
    keep_alive: u16,
    scratch: &mut Vec<u8>,
    tx: &mut BytesMut,
) -> Result<(), OptionsError> {
    let version = options.version;
    let invalid = OptionsError::Invalid;
    let mut connect =
        Connect::new(version, MqttStr::new(client_id).map_err(|e| invalid(e.into()))?, options.clean_start, keep_alive);
    connect.username = options.username.as_deref().map(MqttStr::new).transpose().map_err(|e| invalid(e.into()))?;
    connect.password = options.password.as_deref();
    // Properties first into one scratch buffer: CONNECT's, then the will's.
    scratch.clear();
    if version.is_v5() {
        let p = &options.properties;
        if let Some(v) = options.session_expiry_interval {
            Property::SessionExpiryInterval(v).encode(scratch);
        }
        if let Some(v) = p.receive_maximum {
            Property::ReceiveMaximum(v).encode(scratch);
        }
        if let Some(v) = p.maximum_packet_size {
            Property::MaximumPacketSize(v).encode(scratch);
        }
        if let Some(v) = p.topic_alias_maximum {
            Property::TopicAliasMaximum(v).encode(scratch);
        }
        if let Some(v) = p.request_response_information {
            Property::RequestResponseInformation(u8::from(v)).encode(scratch);
        }
        if let Some(v) = p.request_problem_information {
            Property::RequestProblemInformation(u8::from(v)).encode(scratch);
        }
        for (k, v) in &p.user_properties {
            Property::UserProperty(k, v).encode(scratch);
        }
    }
    let connect_len = scratch.len();
    if let (true, Some(will)) = (version.is_v5(), &options.will) {
        if let Some(v) = will.delay_interval {
            Property::WillDelayInterval(v).encode(scratch);
        }
        will.properties.write(scratch);
    }
    let (connect_props, will_props) = scratch.split_at(connect_len);
    connect.properties = Properties::parse(connect_props, PropertyContext::Connect).map_err(|e| invalid(e.into()))?;
    if let Some(will) = &options.will {
        connect.will = Some(Will {
            qos: will.qos,
            retain: will.retain,
            properties: Properties::parse(will_props, PropertyContext::Will).map_err(|e| invalid(e.into()))?,
            topic: TopicName::new(will.topic.as_str()).map_err(|e| invalid(e.into()))?,
            payload: &will.payload,
        });
    }
    encode(&Packet::Connect(connect), version, tx).map_err(invalid)
}

/// How a PUBLISH names its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicForm {
    /// The Topic Name only.
    Name,
    /// The Topic Name and a new Topic Alias for it.
    NameAndAlias(u16),
    /// An empty Topic Name and an alias set earlier on this connection.
    Alias(u16),
}

/// Check a publication once, when the application hands it over: topic, properties and
/// version (the server's limits are checked when it is sent).
pub(crate) fn check_publication(
    p: &Publication,
    version: ProtocolVersion,
    scratch: &mut Vec<u8>,
) -> Result<(), PublishError> {
    if p.properties.is_some() && !version.is_v5() {
        return Err(PublishError::PropertiesNeedV5);
    }
    TopicName::new(p.topic.as_str()).map_err(|e| PublishError::Invalid(e.into()))?;
    if p.topic.is_empty() {
        return Err(PublishError::Invalid(DecodeError::EmptyTopic.into()));
    }
    publish_properties(p, TopicForm::Name, scratch)?;
    Ok(())
}

fn publish_properties<'s>(
    p: &Publication,
    form: TopicForm,
    scratch: &'s mut Vec<u8>,
) -> Result<Properties<'s>, PublishError> {
    scratch.clear();
    if let TopicForm::NameAndAlias(alias) | TopicForm::Alias(alias) = form {
        Property::TopicAlias(alias).encode(scratch);
    }
    if let Some(props) = &p.properties {
        props.write(scratch);
    }
    Properties::parse(scratch, PropertyContext::Publish).map_err(|e| PublishError::Invalid(e.into()))
}

/// Encode a PUBLISH into `tx` (checked by [`check_publication`] before).
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_publish(
    p: &Publication,
    id: Option<PacketId>,
    dup: bool,
    form: TopicForm,
    version: ProtocolVersion,
    limit: Option<usize>,
    scratch: &mut Vec<u8>,
    tx: &mut BytesMut,
) -> Result<(), PublishError> {
    let properties = if version.is_v5() { publish_properties(p, form, scratch)? } else { Properties::EMPTY };
    let topic = match form {
        TopicForm::Alias(_) => "",
        TopicForm::Name | TopicForm::NameAndAlias(_) => p.topic.as_str(),
    };
    let qos = match (p.qos, id) {
        (QoS::AtMostOnce, _) | (_, None) => PublishQoS::AtMostOnce,
        (qos, Some(id)) => PublishQoS::new(qos, id),
    };
    let publish =
        Publish { dup, qos, retain: p.retain, topic: TopicName::new_unchecked(topic), properties, payload: &p.payload };
    let packet = Packet::Publish(publish);
    check_size(&packet, version, limit).map_err(|(size, limit)| PublishError::PacketTooLarge { size, limit })?;
    encode(&packet, version, tx).map_err(PublishError::Invalid)
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
pub(crate) fn encode_response(
    packet_type: PacketType,
    id: PacketId,
    code: ReasonCode,
    version: ProtocolVersion,
    tx: &mut BytesMut,
) {
    let response = PublishResponse { packet_id: id, reason_code: code, properties: Properties::EMPTY };
    let packet = match packet_type {
        PacketType::PubAck => Packet::PubAck(response),
        PacketType::PubRec => Packet::PubRec(response),
        PacketType::PubRel => Packet::PubRel(response),
        _ => Packet::PubComp(response),
    };
    // Only fixed, valid reason codes are used here: encoding cannot fail.
    let _ = encode(&packet, version, tx);
}

pub(crate) fn encode_pingreq(version: ProtocolVersion, tx: &mut BytesMut) {
    let _ = encode(&Packet::PingReq, version, tx);
}

/// DISCONNECT; before 5.0 the reason code and session expiry are not sent.
pub(crate) fn encode_disconnect(
    code: ReasonCode,
    session_expiry: Option<u32>,
    version: ProtocolVersion,
    tx: &mut BytesMut,
) {
    let mut scratch = Vec::new();
    if let (true, Some(v)) = (version.is_v5(), session_expiry) {
        Property::SessionExpiryInterval(v).encode(&mut scratch);
    }
    let mut disconnect = Disconnect::new(if version.is_v5() { code } else { ReasonCode::SUCCESS });
    disconnect.properties = Properties::parse(&scratch, PropertyContext::Disconnect).unwrap_or_default();
    let _ = encode(&Packet::Disconnect(disconnect), version, tx);
}

fn request_properties<'s>(
    props: &RequestProperties,
    context: PropertyContext,
    version: ProtocolVersion,
    scratch: &'s mut Vec<u8>,
) -> Result<Properties<'s>, RequestError> {
    scratch.clear();
    if !version.is_v5() {
        return if *props == RequestProperties::default() { Ok(Properties::EMPTY) } else { Err(RequestError::NeedsV5) };
    }
    props.write(scratch);
    Properties::parse(scratch, context).map_err(|e| RequestError::Invalid(e.into()))
}

/// SUBSCRIBE.
pub(crate) fn encode_subscribe(
    id: PacketId,
    subs: &[Subscription],
    props: &RequestProperties,
    version: ProtocolVersion,
    limit: Option<usize>,
    scratch: &mut Vec<u8>,
    tx: &mut BytesMut,
) -> Result<(), RequestError> {
    if subs.is_empty() {
        return Err(RequestError::Empty);
    }
    let mut filters = SubscribeFiltersBuf::new();
    for sub in subs {
        if !version.is_v5() && sub.options.to_byte() & !0b11 != 0 {
            return Err(RequestError::NeedsV5);
        }
        filters.push(TopicFilter::new(&sub.filter).map_err(|e| RequestError::Invalid(e.into()))?, sub.options);
    }
    let properties = request_properties(props, PropertyContext::Subscribe, version, scratch)?;
    let filters = filters.filters(version).map_err(|e| RequestError::Invalid(e.into()))?;
    encode_request(&Packet::Subscribe(Subscribe { packet_id: id, properties, filters }), version, limit, tx)
}

/// Encode a SUBSCRIBE or UNSUBSCRIBE within the server's Maximum Packet Size.
fn encode_request(
    packet: &Packet<'_>,
    version: ProtocolVersion,
    limit: Option<usize>,
    tx: &mut BytesMut,
) -> Result<(), RequestError> {
    check_size(packet, version, limit).map_err(|(size, limit)| RequestError::PacketTooLarge { size, limit })?;
    encode(packet, version, tx).map_err(RequestError::Invalid)
}

/// UNSUBSCRIBE.
pub(crate) fn encode_unsubscribe(
    id: PacketId,
    filters: &[String],
    props: &RequestProperties,
    version: ProtocolVersion,
    limit: Option<usize>,
    scratch: &mut Vec<u8>,
    tx: &mut BytesMut,
) -> Result<(), RequestError> {
    if filters.is_empty() {
        return Err(RequestError::Empty);
    }
    if props.subscription_identifier.is_some() {
        return Err(RequestError::Invalid(
            DecodeError::PropertyNotAllowed {
                property: mqttkit_codec::PropertyId::SUBSCRIPTION_IDENTIFIER,
                packet_type: PacketType::Unsubscribe,
            }
            .into(),
        ));
    }
    let mut buf = UnsubscribeFiltersBuf::new();
    for filter in filters {
        buf.push(TopicFilter::new(filter).map_err(|e| RequestError::Invalid(e.into()))?);
    }
    let properties = request_properties(props, PropertyContext::Unsubscribe, version, scratch)?;
    let filters = buf.filters(version).map_err(|e| RequestError::Invalid(e.into()))?;
    encode_request(&Packet::Unsubscribe(Unsubscribe { packet_id: id, properties, filters }), version, limit, tx)
}

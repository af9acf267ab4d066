//! Structure-aware generation of **valid** packets for fuzzing (feature `arbitrary`).
//!
//! A [`Packet`] borrows its strings, payloads, property blocks and filter lists, so it
//! cannot implement [`arbitrary::Arbitrary`] itself. [`ArbitraryPacket`] is the owned
//! seed: it holds the generated fields (property blocks in [`PropertiesBuf`], filter
//! lists in [`SubscribeFiltersBuf`] / [`UnsubscribeFiltersBuf`]) and lends them out as a
//! [`Packet`] with [`ArbitraryPacket::packet`].
//!
//! Every generated packet is valid for its protocol version: strings come from small
//! alphabets (no U+0000), topic names carry no wildcard, topic filters are well formed
//! (and shared subscriptions well formed in 5.0), 5.0 properties have values in range
//! and appear only in packets that allow them, reason codes are those listed for the
//! packet, and every field fits its length prefix. The acknowledgements, DISCONNECT and
//! AUTH come in all their short forms. One packet in 16 may have long fields (strings
//! up to the 65,535-byte field limit, payloads up to 70,000 bytes) so that remaining
//! lengths of two and three bytes are exercised; the others stay small and fast.
//!
//! Generation never panics; impossible choices are reported as
//! [`arbitrary::Error::IncorrectFormat`] (which, by construction, does not happen).

use core::fmt;

use arbitrary::{Arbitrary, Error, Result, Unstructured};

use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, Publish, PublishQoS, PublishResponse, ReasonCodes, SubAck, Subscribe,
    SubscribeFiltersBuf, SubscriptionOptions, UnsubAck, Unsubscribe, UnsubscribeFiltersBuf, Will,
};
use crate::property::{PropertiesBuf, Property, PropertyContext, PropertyId};
use crate::reason::ReasonCode;
use crate::topic::{MqttStr, TopicFilter, TopicName};
use crate::version::{PacketId, ProtocolVersion, QoS, RetainHandling};
use crate::wire::{FIELD_MAX, VAR_INT_MAX};
use crate::{EncodeError, PacketType};

/// Characters of topic levels: no `/`, `+`, `#` or U+0000, and no `s`, so that a
/// generated level can never spell `$share` (shared subscriptions are generated on
/// purpose, with a valid share name). Multi-byte UTF-8 and U+FEFF are included.
const LEVEL_CHARS: &[char] = &['a', 'b', 'c', 'x', '0', '9', '-', '_', ' ', '$', 'é', '€', '😀', '\u{FEFF}', '\u{7F}'];

/// Characters of plain UTF-8 Encoded Strings: anything but U+0000.
const STR_CHARS: &[char] = &[
    'a',
    'b',
    'Z',
    '0',
    '/',
    '+',
    '#',
    '$',
    ' ',
    '\u{1}',
    '\u{7F}',
    '\u{80}',
    'é',
    '€',
    '\u{FEFF}',
    '\u{FFFF}',
    '😀',
    '\u{10FFFF}',
];

/// Payload and binary lengths worth hitting: around one- and two-byte boundaries.
const INTERESTING_LENS: &[usize] = &[0, 1, 2, 125, 126, 127, 128, 129, 16_380, 16_383, 16_384, 65_535];

/// Subscription Identifier values around the Variable Byte Integer boundaries.
const INTERESTING_VAR_INTS: &[u32] = &[1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, VAR_INT_MAX];

// Reason codes, written out from the standard (not taken from the codec, so that the
// round trip checks the codec's tables): 3.1.1 Table 3.1 and §3.9.3, 5.0 §3.x tables.
const V3_CONNACK: &[u8] = &[0x00, 0x01, 0x02, 0x03, 0x04, 0x05];
const V31_SUBACK: &[u8] = &[0x00, 0x01, 0x02];
const V311_SUBACK: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const V5_CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B,
    0x9C, 0x9D, 0x9F,
];
const V5_PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const V5_PUBREL: &[u8] = &[0x00, 0x92];
const V5_SUBACK: &[u8] = &[0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2];
const V5_UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const V5_DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97,
    0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const V5_AUTH: &[u8] = &[0x00, 0x18, 0x19];

/// An owned, valid packet of one protocol version, generated from fuzzer input.
#[derive(Clone, PartialEq, Eq)]
pub struct ArbitraryPacket {
    version: ProtocolVersion,
    body: Body,
}

/// The owned fields of each packet type. Property blocks are stored with the context
/// they were built for (implied by the variant).
#[derive(Clone, PartialEq, Eq)]
enum Body {
    Connect {
        bridge: bool,
        clean_start: bool,
        keep_alive: u16,
        properties: PropertiesBuf,
        client_id: String,
        will: Option<WillSeed>,
        username: Option<String>,
        password: Option<Vec<u8>>,
    },
    ConnAck {
        session_present: bool,
        code: ReasonCode,
        properties: PropertiesBuf,
    },
    Publish {
        dup: bool,
        qos: PublishQoS,
        retain: bool,
        topic: String,
        properties: PropertiesBuf,
        payload: Vec<u8>,
    },
    /// PUBACK, PUBREC, PUBREL or PUBCOMP.
    Response {
        packet_type: PacketType,
        packet_id: PacketId,
        code: ReasonCode,
        properties: PropertiesBuf,
    },
    Subscribe {
        packet_id: PacketId,
        properties: PropertiesBuf,
        filters: SubscribeFiltersBuf,
    },
    SubAck {
        packet_id: PacketId,
        properties: PropertiesBuf,
        codes: Vec<u8>,
    },
    Unsubscribe {
        packet_id: PacketId,
        properties: PropertiesBuf,
        filters: UnsubscribeFiltersBuf,
    },
    UnsubAck {
        packet_id: PacketId,
        properties: PropertiesBuf,
        codes: Vec<u8>,
    },
    PingReq,
    PingResp,
    Disconnect {
        code: ReasonCode,
        properties: PropertiesBuf,
    },
    Auth {
        code: ReasonCode,
        properties: PropertiesBuf,
    },
}

#[derive(Clone, PartialEq, Eq)]
struct WillSeed {
    qos: QoS,
    retain: bool,
    properties: PropertiesBuf,
    topic: String,
    payload: Vec<u8>,
}

impl ArbitraryPacket {
    /// Generate a packet of the given version (for a stream of packets that share one).
    pub fn arbitrary_for(u: &mut Unstructured<'_>, version: ProtocolVersion) -> Result<Self> {
        let packet_type = *u.choose(PacketType::all_in(version))?;
        Self::arbitrary_of_type(u, version, packet_type)
    }

    /// Generate a packet of the given version and type. AUTH exists only in 5.0.
    pub fn arbitrary_of_type(
        u: &mut Unstructured<'_>,
        version: ProtocolVersion,
        packet_type: PacketType,
    ) -> Result<Self> {
        let v5 = version.is_v5();
        let long = u.int_in_range(1..=16u8)? == 16;
        let g = &mut Gen { u, long };
        let body = match packet_type {
            PacketType::Connect => gen_connect(g, version)?,
            PacketType::ConnAck => {
                let code = ReasonCode(*g.u.choose(if v5 { V5_CONNACK } else { V3_CONNACK })?);
                // Session Present only with a successful connection [MQTT-3.1.1: 3.2.2-4] [MQTT-5.0: 3.2.2-6].
                let session_present = code == ReasonCode::SUCCESS && g.u.arbitrary()?;
                Body::ConnAck {
                    session_present,
                    code,
                    properties: gen_properties(g, version, PropertyContext::ConnAck)?,
                }
            }
            PacketType::Publish => gen_publish(g, version)?,
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                let (codes, context) = match packet_type {
                    PacketType::PubAck => (V5_PUBACK, PropertyContext::PubAck),
                    PacketType::PubRec => (V5_PUBACK, PropertyContext::PubRec),
                    PacketType::PubRel => (V5_PUBREL, PropertyContext::PubRel),
                    _ => (V5_PUBREL, PropertyContext::PubComp),
                };
                let packet_id = gen_packet_id(g)?;
                let (code, properties) = gen_short_form(g, version, codes, context)?;
                Body::Response { packet_type, packet_id, code, properties }
            }
            PacketType::Subscribe => gen_subscribe(g, version)?,
            PacketType::SubAck => {
                let packet_id = gen_packet_id(g)?;
                let properties = gen_properties(g, version, PropertyContext::SubAck)?;
                let allowed = match version {
                    ProtocolVersion::V3_1 => V31_SUBACK,
                    ProtocolVersion::V3_1_1 => V311_SUBACK,
                    ProtocolVersion::V5 => V5_SUBACK,
                };
                Body::SubAck { packet_id, properties, codes: gen_codes(g, allowed)? }
            }
            PacketType::Unsubscribe => gen_unsubscribe(g, version)?,
            PacketType::UnsubAck => {
                let packet_id = gen_packet_id(g)?;
                let properties = gen_properties(g, version, PropertyContext::UnsubAck)?;
                // Before 5.0 UNSUBACK carries only the packet identifier.
                let codes = if v5 { gen_codes(g, V5_UNSUBACK)? } else { Vec::new() };
                Body::UnsubAck { packet_id, properties, codes }
            }
            PacketType::PingReq => Body::PingReq,
            PacketType::PingResp => Body::PingResp,
            PacketType::Disconnect => {
                let (code, properties) = gen_short_form(g, version, V5_DISCONNECT, PropertyContext::Disconnect)?;
                Body::Disconnect { code, properties }
            }
            PacketType::Auth if v5 => {
                let (code, properties) = gen_short_form(g, version, V5_AUTH, PropertyContext::Auth)?;
                Body::Auth { code, properties }
            }
            PacketType::Auth => return Err(Error::IncorrectFormat),
        };
        let seed = Self { version, body };
        // Everything above is valid by construction; refuse rather than hand out a seed
        // whose `packet()` could fail.
        match seed.try_packet() {
            Ok(_) => Ok(seed),
            Err(_) => Err(Error::IncorrectFormat),
        }
    }

    /// The protocol version the packet is valid for (a CONNECT's own version).
    pub const fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The packet type.
    pub const fn packet_type(&self) -> PacketType {
        match &self.body {
            Body::Connect { .. } => PacketType::Connect,
            Body::ConnAck { .. } => PacketType::ConnAck,
            Body::Publish { .. } => PacketType::Publish,
            Body::Response { packet_type, .. } => *packet_type,
            Body::Subscribe { .. } => PacketType::Subscribe,
            Body::SubAck { .. } => PacketType::SubAck,
            Body::Unsubscribe { .. } => PacketType::Unsubscribe,
            Body::UnsubAck { .. } => PacketType::UnsubAck,
            Body::PingReq => PacketType::PingReq,
            Body::PingResp => PacketType::PingResp,
            Body::Disconnect { .. } => PacketType::Disconnect,
            Body::Auth { .. } => PacketType::Auth,
        }
    }

    /// The packet, borrowing the seed's storage.
    ///
    /// # Panics
    ///
    /// Never in practice: the only fallible steps are the checks of the stored property
    /// blocks, strings and filter lists, which [`Self::arbitrary_of_type`] already ran
    /// successfully on the same (private, immutable) storage before returning the seed.
    /// A panic here would mean the codec's validation is not deterministic — a real bug.
    pub fn packet(&self) -> Packet<'_> {
        // The one `expect` of this module, justified above: the same checks already passed.
        self.try_packet().expect("ArbitraryPacket storage was validated when it was generated")
    }

    /// The packet, re-running the codec's checks on the stored fields.
    pub fn try_packet(&self) -> core::result::Result<Packet<'_>, EncodeError> {
        let v = self.version;
        Ok(match &self.body {
            Body::Connect { bridge, clean_start, keep_alive, properties, client_id, will, username, password } => {
                let will = match will {
                    Some(w) => Some(Will {
                        qos: w.qos,
                        retain: w.retain,
                        properties: w.properties.properties(PropertyContext::Will)?,
                        topic: TopicName::new(&w.topic)?,
                        payload: &w.payload,
                    }),
                    None => None,
                };
                Packet::Connect(Connect {
                    version: v,
                    bridge: *bridge,
                    clean_start: *clean_start,
                    keep_alive: *keep_alive,
                    properties: properties.properties(PropertyContext::Connect)?,
                    client_id: MqttStr::new(client_id)?,
                    will,
                    username: username.as_deref().map(MqttStr::new).transpose()?,
                    password: password.as_deref(),
                })
            }
            Body::ConnAck { session_present, code, properties } => Packet::ConnAck(ConnAck {
                session_present: *session_present,
                code: *code,
                properties: properties.properties(PropertyContext::ConnAck)?,
            }),
            Body::Publish { dup, qos, retain, topic, properties, payload } => Packet::Publish(Publish {
                dup: *dup,
                qos: *qos,
                retain: *retain,
                topic: TopicName::new(topic)?,
                properties: properties.properties(PropertyContext::Publish)?,
                payload,
            }),
            Body::Response { packet_type, packet_id, code, properties } => {
                let context = match packet_type {
                    PacketType::PubAck => PropertyContext::PubAck,
                    PacketType::PubRec => PropertyContext::PubRec,
                    PacketType::PubRel => PropertyContext::PubRel,
                    _ => PropertyContext::PubComp,
                };
                let response = PublishResponse {
                    packet_id: *packet_id,
                    reason_code: *code,
                    properties: properties.properties(context)?,
                };
                match packet_type {
                    PacketType::PubAck => Packet::PubAck(response),
                    PacketType::PubRec => Packet::PubRec(response),
                    PacketType::PubRel => Packet::PubRel(response),
                    _ => Packet::PubComp(response),
                }
            }
            Body::Subscribe { packet_id, properties, filters } => Packet::Subscribe(Subscribe {
                packet_id: *packet_id,
                properties: properties.properties(PropertyContext::Subscribe)?,
                filters: filters.filters(v)?,
            }),
            Body::SubAck { packet_id, properties, codes } => Packet::SubAck(SubAck {
                packet_id: *packet_id,
                properties: properties.properties(PropertyContext::SubAck)?,
                reason_codes: ReasonCodes::parse(codes, PacketType::SubAck, v)?,
            }),
            Body::Unsubscribe { packet_id, properties, filters } => Packet::Unsubscribe(Unsubscribe {
                packet_id: *packet_id,
                properties: properties.properties(PropertyContext::Unsubscribe)?,
                filters: filters.filters(v)?,
            }),
            Body::UnsubAck { packet_id, properties, codes } => Packet::UnsubAck(UnsubAck {
                packet_id: *packet_id,
                properties: properties.properties(PropertyContext::UnsubAck)?,
                reason_codes: if v.is_v5() {
                    ReasonCodes::parse(codes, PacketType::UnsubAck, v)?
                } else {
                    // An empty list is what the decoder produces before 5.0.
                    ReasonCodes::from_raw_unchecked(&[])
                },
            }),
            Body::PingReq => Packet::PingReq,
            Body::PingResp => Packet::PingResp,
            Body::Disconnect { code, properties } => Packet::Disconnect(Disconnect {
                reason_code: *code,
                properties: properties.properties(PropertyContext::Disconnect)?,
            }),
            Body::Auth { code, properties } => {
                Packet::Auth(Auth { reason_code: *code, properties: properties.properties(PropertyContext::Auth)? })
            }
        })
    }
}

impl<'a> Arbitrary<'a> for ArbitraryPacket {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let version = *u.choose(&ProtocolVersion::ALL)?;
        Self::arbitrary_for(u, version)
    }
}

impl fmt::Debug for ArbitraryPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArbitraryPacket").field("version", &self.version).field("packet", &self.try_packet()).finish()
    }
}

/// The input being read, and whether this packet may have long fields. Long fields
/// are decided once per packet (one in 16) so that most inputs stay small and fast;
/// in a long packet about one string in eight is a run of up to 65,535 bytes and one
/// payload or binary field in four is large.
struct Gen<'x, 'a> {
    u: &'x mut Unstructured<'a>,
    long: bool,
}

/// True about once in `n` draws, and false when the input is exhausted (unlike
/// [`Unstructured::ratio`], which returns true then).
fn one_in(g: &mut Gen<'_, '_>, n: u8) -> Result<bool> {
    Ok(g.u.int_in_range(1..=n)? == n)
}

fn gen_packet_id(g: &mut Gen<'_, '_>) -> Result<PacketId> {
    PacketId::new(g.u.int_in_range(1..=u16::MAX)?).ok_or(Error::IncorrectFormat)
}

fn gen_qos(g: &mut Gen<'_, '_>) -> Result<QoS> {
    Ok(*g.u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])?)
}

/// A string of up to `max_chars` characters from `chars`; in long packets sometimes a
/// run of one ASCII character, up to the field limit of 65,535 bytes.
fn gen_chars(g: &mut Gen<'_, '_>, chars: &[char], max_chars: usize) -> Result<String> {
    if g.long && one_in(g, 8)? {
        let len = g.u.int_in_range(0..=FIELD_MAX)?;
        let c = *g.u.choose(chars)?;
        let c = if c.is_ascii() { c } else { 'a' };
        return Ok(core::iter::repeat_n(c, len).collect());
    }
    let len = g.u.int_in_range(0..=max_chars)?;
    let mut text = String::with_capacity(len);
    for _ in 0..len {
        text.push(*g.u.choose(chars)?);
    }
    Ok(text)
}

/// Any UTF-8 Encoded String (may be empty).
fn gen_str(g: &mut Gen<'_, '_>) -> Result<String> {
    gen_chars(g, STR_CHARS, 12)
}

/// Binary data or a payload of at most `max` bytes: usually up to 32 bytes from the
/// input, sometimes a run of an interesting length (around the one-byte remaining
/// length boundary; in long packets also the two-byte one and the field limit), and
/// in long packets sometimes a run of any length.
fn gen_bytes(g: &mut Gen<'_, '_>, max: usize) -> Result<Vec<u8>> {
    let len = match g.u.int_in_range(0u8..=7)? {
        0 => {
            let lens = if g.long { INTERESTING_LENS } else { INTERESTING_LENS.get(..8).unwrap_or_default() };
            let len = *g.u.choose(lens)?;
            return Ok(vec![g.u.arbitrary::<u8>()?; len.min(max)]);
        }
        1 if g.long => {
            let len = g.u.int_in_range(0..=max)?;
            return Ok(vec![g.u.arbitrary::<u8>()?; len]);
        }
        _ => g.u.int_in_range(0..=32usize)?,
    };
    let len = len.min(g.u.len());
    Ok(g.u.bytes(len)?.to_vec())
}

/// A topic level: characters without `/`, `+`, `#` (may be empty).
fn gen_level(g: &mut Gen<'_, '_>) -> Result<String> {
    gen_chars(g, LEVEL_CHARS, 6)
}

/// A non-empty topic name: levels joined by `/`, no wildcards.
fn gen_topic_name(g: &mut Gen<'_, '_>) -> Result<String> {
    let levels = g.u.int_in_range(1..=4u8)?;
    let mut topic = String::new();
    for i in 0..levels {
        if i > 0 {
            topic.push('/');
        }
        topic.push_str(&gen_level(g)?);
    }
    if topic.is_empty() {
        topic.push('a');
    }
    // Only the rare long levels can overflow the field; dropping trailing characters
    // keeps a topic name valid (and non-empty, as the first 65,535 bytes remain).
    while topic.len() > FIELD_MAX {
        topic.pop();
    }
    Ok(topic)
}

/// A well-formed, non-shared topic filter: `+` as whole levels, `#` only as the whole
/// last level, never empty.
fn gen_plain_filter(g: &mut Gen<'_, '_>) -> Result<String> {
    let levels = g.u.int_in_range(1..=4u8)?;
    let mut filter = String::new();
    for i in 0..levels {
        if i > 0 {
            filter.push('/');
        }
        let last = i.checked_add(1) == Some(levels);
        match g.u.int_in_range(0u8..=5)? {
            0 => filter.push('+'),
            1 if last => filter.push('#'),
            _ => filter.push_str(&gen_level(g)?),
        }
    }
    if filter.is_empty() {
        filter.push('#');
    }
    Ok(filter)
}

/// A topic filter, sometimes a shared subscription `$share/{name}/{filter}` (valid in
/// every version: before 5.0 it is an ordinary filter). Returns whether it is shared.
fn gen_filter(g: &mut Gen<'_, '_>) -> Result<(String, bool)> {
    if one_in(g, 6)? {
        let mut name = gen_level(g)?;
        if name.is_empty() {
            name.push('g');
        }
        let inner = gen_plain_filter(g)?;
        let filter = format!("$share/{name}/{inner}");
        if filter.len() > FIELD_MAX {
            return Ok(("$share/g/#".to_owned(), true));
        }
        return Ok((filter, true));
    }
    let mut filter = gen_plain_filter(g)?;
    if filter.len() > FIELD_MAX {
        filter = "#".to_owned();
    }
    Ok((filter, false))
}

/// Properties each block may carry (Table 2-4), User Property aside.
fn allowed_properties(context: PropertyContext) -> &'static [PropertyId] {
    use PropertyId as P;
    match context {
        PropertyContext::Connect => &[
            P::SESSION_EXPIRY_INTERVAL,
            P::RECEIVE_MAXIMUM,
            P::MAXIMUM_PACKET_SIZE,
            P::TOPIC_ALIAS_MAXIMUM,
            P::REQUEST_RESPONSE_INFORMATION,
            P::REQUEST_PROBLEM_INFORMATION,
            P::AUTHENTICATION_METHOD,
            P::AUTHENTICATION_DATA,
        ],
        PropertyContext::Will => &[
            P::WILL_DELAY_INTERVAL,
            P::PAYLOAD_FORMAT_INDICATOR,
            P::MESSAGE_EXPIRY_INTERVAL,
            P::CONTENT_TYPE,
            P::RESPONSE_TOPIC,
            P::CORRELATION_DATA,
        ],
        PropertyContext::ConnAck => &[
            P::SESSION_EXPIRY_INTERVAL,
            P::RECEIVE_MAXIMUM,
            P::MAXIMUM_QOS,
            P::RETAIN_AVAILABLE,
            P::MAXIMUM_PACKET_SIZE,
            P::ASSIGNED_CLIENT_IDENTIFIER,
            P::TOPIC_ALIAS_MAXIMUM,
            P::REASON_STRING,
            P::WILDCARD_SUBSCRIPTION_AVAILABLE,
            P::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            P::SHARED_SUBSCRIPTION_AVAILABLE,
            P::SERVER_KEEP_ALIVE,
            P::RESPONSE_INFORMATION,
            P::SERVER_REFERENCE,
            P::AUTHENTICATION_METHOD,
            P::AUTHENTICATION_DATA,
        ],
        PropertyContext::Publish => &[
            P::PAYLOAD_FORMAT_INDICATOR,
            P::MESSAGE_EXPIRY_INTERVAL,
            P::TOPIC_ALIAS,
            P::RESPONSE_TOPIC,
            P::CORRELATION_DATA,
            P::SUBSCRIPTION_IDENTIFIER,
            P::CONTENT_TYPE,
        ],
        PropertyContext::PubAck
        | PropertyContext::PubRec
        | PropertyContext::PubRel
        | PropertyContext::PubComp
        | PropertyContext::SubAck
        | PropertyContext::UnsubAck => &[P::REASON_STRING],
        PropertyContext::Subscribe => &[P::SUBSCRIPTION_IDENTIFIER],
        PropertyContext::Unsubscribe => &[],
        PropertyContext::Disconnect => &[P::SESSION_EXPIRY_INTERVAL, P::REASON_STRING, P::SERVER_REFERENCE],
        PropertyContext::Auth => &[P::AUTHENTICATION_METHOD, P::AUTHENTICATION_DATA, P::REASON_STRING],
    }
}

/// Push one property with a valid value.
fn push_property(g: &mut Gen<'_, '_>, buf: &mut PropertiesBuf, id: PropertyId) -> Result<()> {
    use Property as P;
    let flag = |g: &mut Gen<'_, '_>| g.u.int_in_range(0..=1u8);
    let text;
    let text2;
    let data;
    let prop = match id {
        PropertyId::PAYLOAD_FORMAT_INDICATOR => P::PayloadFormatIndicator(flag(g)?),
        PropertyId::REQUEST_PROBLEM_INFORMATION => P::RequestProblemInformation(flag(g)?),
        PropertyId::REQUEST_RESPONSE_INFORMATION => P::RequestResponseInformation(flag(g)?),
        PropertyId::MAXIMUM_QOS => P::MaximumQoS(flag(g)?),
        PropertyId::RETAIN_AVAILABLE => P::RetainAvailable(flag(g)?),
        PropertyId::WILDCARD_SUBSCRIPTION_AVAILABLE => P::WildcardSubscriptionAvailable(flag(g)?),
        PropertyId::SUBSCRIPTION_IDENTIFIER_AVAILABLE => P::SubscriptionIdentifierAvailable(flag(g)?),
        PropertyId::SHARED_SUBSCRIPTION_AVAILABLE => P::SharedSubscriptionAvailable(flag(g)?),
        PropertyId::MESSAGE_EXPIRY_INTERVAL => P::MessageExpiryInterval(g.u.arbitrary()?),
        PropertyId::SESSION_EXPIRY_INTERVAL => P::SessionExpiryInterval(g.u.arbitrary()?),
        PropertyId::WILL_DELAY_INTERVAL => P::WillDelayInterval(g.u.arbitrary()?),
        PropertyId::MAXIMUM_PACKET_SIZE => P::MaximumPacketSize(g.u.int_in_range(1..=u32::MAX)?),
        PropertyId::SERVER_KEEP_ALIVE => P::ServerKeepAlive(g.u.arbitrary()?),
        PropertyId::TOPIC_ALIAS_MAXIMUM => P::TopicAliasMaximum(g.u.arbitrary()?),
        PropertyId::RECEIVE_MAXIMUM => P::ReceiveMaximum(g.u.int_in_range(1..=u16::MAX)?),
        PropertyId::TOPIC_ALIAS => P::TopicAlias(g.u.int_in_range(1..=u16::MAX)?),
        PropertyId::SUBSCRIPTION_IDENTIFIER => P::SubscriptionIdentifier(if g.u.arbitrary()? {
            *g.u.choose(INTERESTING_VAR_INTS)?
        } else {
            g.u.int_in_range(1..=VAR_INT_MAX)?
        }),
        PropertyId::RESPONSE_TOPIC => {
            text = gen_topic_name(g)?;
            P::ResponseTopic(&text)
        }
        PropertyId::CORRELATION_DATA | PropertyId::AUTHENTICATION_DATA => {
            data = gen_bytes(g, FIELD_MAX)?;
            if id == PropertyId::CORRELATION_DATA { P::CorrelationData(&data) } else { P::AuthenticationData(&data) }
        }
        PropertyId::USER_PROPERTY => {
            text = gen_str(g)?;
            text2 = gen_str(g)?;
            P::UserProperty(&text, &text2)
        }
        PropertyId::CONTENT_TYPE
        | PropertyId::ASSIGNED_CLIENT_IDENTIFIER
        | PropertyId::AUTHENTICATION_METHOD
        | PropertyId::RESPONSE_INFORMATION
        | PropertyId::SERVER_REFERENCE
        | PropertyId::REASON_STRING => {
            text = gen_str(g)?;
            match id {
                PropertyId::CONTENT_TYPE => P::ContentType(&text),
                PropertyId::ASSIGNED_CLIENT_IDENTIFIER => P::AssignedClientIdentifier(&text),
                PropertyId::AUTHENTICATION_METHOD => P::AuthenticationMethod(&text),
                PropertyId::RESPONSE_INFORMATION => P::ResponseInformation(&text),
                PropertyId::SERVER_REFERENCE => P::ServerReference(&text),
                _ => P::ReasonString(&text),
            }
        }
        _ => return Err(Error::IncorrectFormat),
    };
    buf.push(prop).map_err(|_| Error::IncorrectFormat)?;
    Ok(())
}

/// A valid property block for `context` (empty before 5.0): up to eight properties in
/// any order, single-valued ones at most once, User Property (and Subscription
/// Identifier in PUBLISH) any number of times, Authentication Data only with an
/// Authentication Method, and AUTH properties only with an Authentication Method.
fn gen_properties(g: &mut Gen<'_, '_>, version: ProtocolVersion, context: PropertyContext) -> Result<PropertiesBuf> {
    let mut buf = PropertiesBuf::new();
    if !version.is_v5() {
        return Ok(buf);
    }
    let allowed = allowed_properties(context);
    let count = g.u.int_in_range(0..=8u8)?;
    let mut used: Vec<PropertyId> = Vec::new();
    for _ in 0..count {
        let id = match g.u.int_in_range(0..=allowed.len())? {
            0 => PropertyId::USER_PROPERTY,
            i => *allowed.get(i.saturating_sub(1)).ok_or(Error::IncorrectFormat)?,
        };
        let repeatable = id == PropertyId::USER_PROPERTY
            || (id == PropertyId::SUBSCRIPTION_IDENTIFIER && context == PropertyContext::Publish);
        if !repeatable && used.contains(&id) {
            continue;
        }
        if id == PropertyId::AUTHENTICATION_DATA && !used.contains(&PropertyId::AUTHENTICATION_METHOD) {
            push_property(g, &mut buf, PropertyId::AUTHENTICATION_METHOD)?;
            used.push(PropertyId::AUTHENTICATION_METHOD);
        }
        push_property(g, &mut buf, id)?;
        used.push(id);
    }
    // "It is a Protocol Error to omit the Authentication Method" from an AUTH that has
    // properties (§3.15.2.2.2).
    if context == PropertyContext::Auth
        && !buf.as_bytes().is_empty()
        && !used.contains(&PropertyId::AUTHENTICATION_METHOD)
    {
        push_property(g, &mut buf, PropertyId::AUTHENTICATION_METHOD)?;
    }
    Ok(buf)
}

/// One to eight reason codes from `allowed`.
fn gen_codes(g: &mut Gen<'_, '_>, allowed: &[u8]) -> Result<Vec<u8>> {
    let count = g.u.int_in_range(1..=8u8)?;
    (0..count).map(|_| g.u.choose(allowed).copied()).collect()
}

/// Reason code and properties of a 5.0 acknowledgement, DISCONNECT or AUTH, in one of
/// its three forms: nothing (Success), a reason code alone, or both. Before 5.0: nothing.
fn gen_short_form(
    g: &mut Gen<'_, '_>,
    version: ProtocolVersion,
    codes: &[u8],
    context: PropertyContext,
) -> Result<(ReasonCode, PropertiesBuf)> {
    if !version.is_v5() {
        return Ok((ReasonCode::SUCCESS, PropertiesBuf::new()));
    }
    Ok(match g.u.int_in_range(0..=2u8)? {
        0 => (ReasonCode::SUCCESS, PropertiesBuf::new()),
        1 => (ReasonCode(*g.u.choose(codes)?), PropertiesBuf::new()),
        _ => (ReasonCode(*g.u.choose(codes)?), gen_properties(g, version, context)?),
    })
}

fn gen_connect(g: &mut Gen<'_, '_>, version: ProtocolVersion) -> Result<Body> {
    let clean_start = g.u.arbitrary()?;
    let keep_alive = g.u.arbitrary()?;
    let properties = gen_properties(g, version, PropertyContext::Connect)?;
    let client_id = gen_str(g)?;
    let will = if g.u.arbitrary()? {
        Some(WillSeed {
            qos: gen_qos(g)?,
            retain: g.u.arbitrary()?,
            properties: gen_properties(g, version, PropertyContext::Will)?,
            topic: gen_topic_name(g)?,
            payload: gen_bytes(g, FIELD_MAX)?,
        })
    } else {
        None
    };
    let username = if g.u.arbitrary()? { Some(gen_str(g)?) } else { None };
    // Before 5.0 a password needs a user name [MQTT-3.1.1: 3.1.2-22].
    let password =
        if (version.is_v5() || username.is_some()) && g.u.arbitrary()? { Some(gen_bytes(g, FIELD_MAX)?) } else { None };
    // The bridge bit exists before 5.0 only (protocol levels 0x83 and 0x84).
    let bridge = !version.is_v5() && g.u.arbitrary()?;
    Ok(Body::Connect { bridge, clean_start, keep_alive, properties, client_id, will, username, password })
}

fn gen_publish(g: &mut Gen<'_, '_>, version: ProtocolVersion) -> Result<Body> {
    let qos = match gen_qos(g)? {
        QoS::AtMostOnce => PublishQoS::AtMostOnce,
        QoS::AtLeastOnce => PublishQoS::AtLeastOnce(gen_packet_id(g)?),
        QoS::ExactlyOnce => PublishQoS::ExactlyOnce(gen_packet_id(g)?),
    };
    // DUP only on QoS 1 and 2 [MQTT-3.3.1-2].
    let dup = qos != PublishQoS::AtMostOnce && g.u.arbitrary()?;
    let retain = g.u.arbitrary()?;
    let properties = gen_properties(g, version, PropertyContext::Publish)?;
    let has_alias = properties.properties(PropertyContext::Publish).is_ok_and(|p| p.topic_alias().is_some());
    // An empty topic name only with a Topic Alias (5.0 §3.3.2.1).
    let topic = if has_alias && g.u.arbitrary()? { String::new() } else { gen_topic_name(g)? };
    let payload = gen_bytes(g, 70_000)?;
    Ok(Body::Publish { dup, qos, retain, topic, properties, payload })
}

fn gen_subscribe(g: &mut Gen<'_, '_>, version: ProtocolVersion) -> Result<Body> {
    let packet_id = gen_packet_id(g)?;
    let properties = gen_properties(g, version, PropertyContext::Subscribe)?;
    let count = g.u.int_in_range(1..=6u8)?;
    let mut filters = SubscribeFiltersBuf::new();
    for _ in 0..count {
        let (text, shared) = gen_filter(g)?;
        let filter = TopicFilter::new(&text).map_err(|_| Error::IncorrectFormat)?;
        let qos = gen_qos(g)?;
        let options = if version.is_v5() {
            SubscriptionOptions {
                qos,
                // No Local on a shared subscription is a Protocol Error [MQTT-5.0: 3.8.3-4].
                no_local: !shared && g.u.arbitrary()?,
                retain_as_published: g.u.arbitrary()?,
                retain_handling: *g.u.choose(&[
                    RetainHandling::SendAtSubscribe,
                    RetainHandling::SendIfNew,
                    RetainHandling::DoNotSend,
                ])?,
            }
        } else {
            // Before 5.0 the upper six bits are reserved [MQTT-3.1.1: 3-8.3-4].
            SubscriptionOptions::qos(qos)
        };
        filters.push(filter, options);
    }
    Ok(Body::Subscribe { packet_id, properties, filters })
}

fn gen_unsubscribe(g: &mut Gen<'_, '_>, version: ProtocolVersion) -> Result<Body> {
    let packet_id = gen_packet_id(g)?;
    let properties = gen_properties(g, version, PropertyContext::Unsubscribe)?;
    let count = g.u.int_in_range(1..=6u8)?;
    let mut filters = UnsubscribeFiltersBuf::new();
    for _ in 0..count {
        let (text, _) = gen_filter(g)?;
        filters.push(TopicFilter::new(&text).map_err(|_| Error::IncorrectFormat)?);
    }
    Ok(Body::Unsubscribe { packet_id, properties, filters })
}

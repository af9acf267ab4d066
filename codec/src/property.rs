//! MQTT 5.0 properties (§2.2.2): identifiers, typed values, and [`Properties`], a
//! validated view of a packet's raw property bytes that is iterated lazily.
//!
//! Decoding checks the whole property block once (known identifiers, minimal Variable
//! Byte Integers, well-formed strings, values in range, no duplicates of single-valued
//! properties, each property allowed in this packet) and then keeps the raw bytes:
//! nothing is allocated, and [`Properties::iter`] re-reads them on demand.

use core::fmt;

use bytes::BufMut;

use crate::error::{DecodeError, ValidationError};
use crate::packet::PacketType;
use crate::topic::{MqttStr, TopicName};
use crate::wire::{self, Block, BlockReader};

/// A property identifier (Table 2-4). An open code space: unknown values can be carried
/// by [`crate::raw`] builders, and the decoder rejects them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PropertyId(pub u8);

/// Where a property block sits: a packet type, or CONNECT's Will Properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum PropertyContext {
    /// CONNECT properties (§3.1.2.11).
    Connect,
    /// CONNECT Will Properties (§3.1.3.2).
    Will,
    /// CONNACK (§3.2.2.3).
    ConnAck,
    /// PUBLISH (§3.3.2.3).
    Publish,
    /// PUBACK (§3.4.2.2).
    PubAck,
    /// PUBREC (§3.5.2.2).
    PubRec,
    /// PUBREL (§3.6.2.2).
    PubRel,
    /// PUBCOMP (§3.7.2.2).
    PubComp,
    /// SUBSCRIBE (§3.8.2.1).
    Subscribe,
    /// SUBACK (§3.9.2.1).
    SubAck,
    /// UNSUBSCRIBE (§3.10.2.1).
    Unsubscribe,
    /// UNSUBACK (§3.11.2.1).
    UnsubAck,
    /// DISCONNECT (§3.14.2.2).
    Disconnect,
    /// AUTH (§3.15.2.2).
    Auth,
}

impl PropertyContext {
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The packet type the block belongs to.
    pub const fn packet_type(self) -> PacketType {
        match self {
            Self::Connect | Self::Will => PacketType::Connect,
            Self::ConnAck => PacketType::ConnAck,
            Self::Publish => PacketType::Publish,
            Self::PubAck => PacketType::PubAck,
            Self::PubRec => PacketType::PubRec,
            Self::PubRel => PacketType::PubRel,
            Self::PubComp => PacketType::PubComp,
            Self::Subscribe => PacketType::Subscribe,
            Self::SubAck => PacketType::SubAck,
            Self::Unsubscribe => PacketType::Unsubscribe,
            Self::UnsubAck => PacketType::UnsubAck,
            Self::Disconnect => PacketType::Disconnect,
            Self::Auth => PacketType::Auth,
        }
    }
}

const ALL_CONTEXTS: u16 = (1 << 14) - 1;

/// The wire type of a property's value (§2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// One byte.
    Byte,
    /// Two Byte Integer.
    TwoByte,
    /// Four Byte Integer.
    FourByte,
    /// Variable Byte Integer.
    VarInt,
    /// UTF-8 Encoded String.
    Utf8,
    /// Binary Data.
    Binary,
    /// UTF-8 String Pair.
    Utf8Pair,
}

macro_rules! properties {
    ($($name:ident = $id:literal, $variant:ident($($field:ident),+), $key:literal, $vt:ident, $text:literal, [$($ctx:ident),*];)*) => {
        impl PropertyId {
            $(#[doc = concat!($text, " (Table 2-4).")] pub const $name: Self = Self($id);)*

            /// The name the standard gives this property.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 { $($id => Some($text),)* _ => None }
            }

            /// The property's name in snake_case (`payload_format_indicator`), as scenario
            /// files and reports spell it.
            pub const fn key(self) -> Option<&'static str> {
                match self.0 { $($id => Some($key),)* _ => None }
            }

            /// The property with this snake_case name.
            pub fn from_key(key: &str) -> Option<Self> {
                match key { $($key => Some(Self::$name),)* _ => None }
            }

            /// The wire type of the property's value.
            pub const fn value_type(self) -> Option<ValueType> {
                match self.0 { $($id => Some(ValueType::$vt),)* _ => None }
            }

            /// The set of [`PropertyContext`]s where the property may appear, as a bit mask.
            const fn allowed_in(self) -> u16 {
                match self.0 { $($id => 0 $(| PropertyContext::$ctx.bit())*,)* _ => 0 }
            }
        }

        impl<'a> Property<'a> {
            /// The property's identifier.
            pub const fn id(&self) -> PropertyId {
                match self { $(Self::$variant(..) => PropertyId::$name,)* }
            }

            /// The value, by wire type.
            const fn value(&self) -> Value<'a> {
                match *self { $(Self::$variant($($field),+) => Value::$vt($($field),+),)* }
            }

            /// The property `id` with this value, if the value has the property's type.
            const fn from_value(id: PropertyId, value: Value<'a>) -> Option<Self> {
                match (id.0, value) { $(($id, Value::$vt($($field),+)) => Some(Self::$variant($($field),+)),)* _ => None }
            }
        }
    };
}

// One table: identifier, variant, key, wire type, name, and the packets that may carry it.
properties! {
    PAYLOAD_FORMAT_INDICATOR = 0x01, PayloadFormatIndicator(v), "payload_format_indicator", Byte, "Payload Format Indicator", [Publish, Will];
    MESSAGE_EXPIRY_INTERVAL = 0x02, MessageExpiryInterval(v), "message_expiry_interval", FourByte, "Message Expiry Interval", [Publish, Will];
    CONTENT_TYPE = 0x03, ContentType(v), "content_type", Utf8, "Content Type", [Publish, Will];
    RESPONSE_TOPIC = 0x08, ResponseTopic(v), "response_topic", Utf8, "Response Topic", [Publish, Will];
    CORRELATION_DATA = 0x09, CorrelationData(v), "correlation_data", Binary, "Correlation Data", [Publish, Will];
    SUBSCRIPTION_IDENTIFIER = 0x0B, SubscriptionIdentifier(v), "subscription_identifier", VarInt, "Subscription Identifier", [Publish, Subscribe];
    SESSION_EXPIRY_INTERVAL = 0x11, SessionExpiryInterval(v), "session_expiry_interval", FourByte, "Session Expiry Interval", [Connect, ConnAck, Disconnect];
    ASSIGNED_CLIENT_IDENTIFIER = 0x12, AssignedClientIdentifier(v), "assigned_client_identifier", Utf8, "Assigned Client Identifier", [ConnAck];
    SERVER_KEEP_ALIVE = 0x13, ServerKeepAlive(v), "server_keep_alive", TwoByte, "Server Keep Alive", [ConnAck];
    AUTHENTICATION_METHOD = 0x15, AuthenticationMethod(v), "authentication_method", Utf8, "Authentication Method", [Connect, ConnAck, Auth];
    AUTHENTICATION_DATA = 0x16, AuthenticationData(v), "authentication_data", Binary, "Authentication Data", [Connect, ConnAck, Auth];
    REQUEST_PROBLEM_INFORMATION = 0x17, RequestProblemInformation(v), "request_problem_information", Byte, "Request Problem Information", [Connect];
    WILL_DELAY_INTERVAL = 0x18, WillDelayInterval(v), "will_delay_interval", FourByte, "Will Delay Interval", [Will];
    REQUEST_RESPONSE_INFORMATION = 0x19, RequestResponseInformation(v), "request_response_information", Byte, "Request Response Information", [Connect];
    RESPONSE_INFORMATION = 0x1A, ResponseInformation(v), "response_information", Utf8, "Response Information", [ConnAck];
    SERVER_REFERENCE = 0x1C, ServerReference(v), "server_reference", Utf8, "Server Reference", [ConnAck, Disconnect];
    REASON_STRING = 0x1F, ReasonString(v), "reason_string", Utf8, "Reason String", [ConnAck, PubAck, PubRec, PubRel, PubComp, SubAck, UnsubAck, Disconnect, Auth];
    RECEIVE_MAXIMUM = 0x21, ReceiveMaximum(v), "receive_maximum", TwoByte, "Receive Maximum", [Connect, ConnAck];
    TOPIC_ALIAS_MAXIMUM = 0x22, TopicAliasMaximum(v), "topic_alias_maximum", TwoByte, "Topic Alias Maximum", [Connect, ConnAck];
    TOPIC_ALIAS = 0x23, TopicAlias(v), "topic_alias", TwoByte, "Topic Alias", [Publish];
    MAXIMUM_QOS = 0x24, MaximumQoS(v), "maximum_qos", Byte, "Maximum QoS", [ConnAck];
    RETAIN_AVAILABLE = 0x25, RetainAvailable(v), "retain_available", Byte, "Retain Available", [ConnAck];
    USER_PROPERTY = 0x26, UserProperty(k, v), "user_property", Utf8Pair, "User Property", [Connect, Will, ConnAck, Publish, PubAck, PubRec, PubRel, PubComp, Subscribe, SubAck, Unsubscribe, UnsubAck, Disconnect, Auth];
    MAXIMUM_PACKET_SIZE = 0x27, MaximumPacketSize(v), "maximum_packet_size", FourByte, "Maximum Packet Size", [Connect, ConnAck];
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28, WildcardSubscriptionAvailable(v), "wildcard_subscription_available", Byte, "Wildcard Subscription Available", [ConnAck];
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29, SubscriptionIdentifierAvailable(v), "subscription_identifier_available", Byte, "Subscription Identifier Available", [ConnAck];
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A, SharedSubscriptionAvailable(v), "shared_subscription_available", Byte, "Shared Subscription Available", [ConnAck];
}

/// A property value by wire type (§2.2.2.2): what reading, sizing and writing depend on.
#[derive(Clone, Copy)]
enum Value<'a> {
    Byte(u8),
    TwoByte(u16),
    FourByte(u32),
    VarInt(u32),
    Utf8(&'a str),
    Binary(&'a [u8]),
    Utf8Pair(&'a str, &'a str),
}

impl Value<'_> {
    fn encoded_len(self) -> usize {
        match self {
            Self::Byte(_) => 1,
            Self::TwoByte(_) => 2,
            Self::FourByte(_) => 4,
            Self::VarInt(v) => wire::var_int_len(v),
            Self::Utf8(s) => wire::field_len(s.as_bytes()),
            Self::Binary(b) => wire::field_len(b),
            Self::Utf8Pair(k, v) => wire::sum([wire::field_len(k.as_bytes()), wire::field_len(v.as_bytes())]),
        }
    }

    fn encode(self, buf: &mut impl BufMut) {
        match self {
            Self::Byte(v) => buf.put_u8(v),
            Self::TwoByte(v) => buf.put_u16(v),
            Self::FourByte(v) => buf.put_u32(v),
            Self::VarInt(v) => wire::put_var_int(buf, v),
            Self::Utf8(s) => wire::put_field(buf, s.as_bytes()),
            Self::Binary(b) => wire::put_field(buf, b),
            Self::Utf8Pair(k, v) => {
                wire::put_field(buf, k.as_bytes());
                wire::put_field(buf, v.as_bytes());
            }
        }
    }

    /// The strings a builder must check (U+0000, length) and the binary fields' lengths.
    fn check_fields(self) -> Result<(), ValidationError> {
        match self {
            Self::Utf8(s) => MqttStr::new(s).map(drop),
            Self::Utf8Pair(k, v) => MqttStr::new(k).and(MqttStr::new(v)).map(drop),
            Self::Binary(b) => wire::check_len(b.len()),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "PropertyId({:#04x} {name})", self.0),
            None => write!(f, "PropertyId({:#04x})", self.0),
        }
    }
}

impl fmt::Display for PropertyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#04x}", self.0),
        }
    }
}

/// One property with its value, borrowing strings and binary data from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Property<'a> {
    /// 0x01, 0 (unspecified bytes) or 1 (UTF-8).
    PayloadFormatIndicator(u8),
    /// 0x02, seconds.
    MessageExpiryInterval(u32),
    /// 0x03.
    ContentType(&'a str),
    /// 0x08, a topic name (no wildcards, \[MQTT-5.0: 3.3.2-14\]).
    ResponseTopic(&'a str),
    /// 0x09.
    CorrelationData(&'a [u8]),
    /// 0x0B, 1..=268,435,455.
    SubscriptionIdentifier(u32),
    /// 0x11, seconds.
    SessionExpiryInterval(u32),
    /// 0x12.
    AssignedClientIdentifier(&'a str),
    /// 0x13, seconds.
    ServerKeepAlive(u16),
    /// 0x15.
    AuthenticationMethod(&'a str),
    /// 0x16.
    AuthenticationData(&'a [u8]),
    /// 0x17, 0 or 1.
    RequestProblemInformation(u8),
    /// 0x18, seconds.
    WillDelayInterval(u32),
    /// 0x19, 0 or 1.
    RequestResponseInformation(u8),
    /// 0x1A.
    ResponseInformation(&'a str),
    /// 0x1C.
    ServerReference(&'a str),
    /// 0x1F.
    ReasonString(&'a str),
    /// 0x21, non-zero.
    ReceiveMaximum(u16),
    /// 0x22.
    TopicAliasMaximum(u16),
    /// 0x23, non-zero.
    TopicAlias(u16),
    /// 0x24, 0 or 1.
    MaximumQoS(u8),
    /// 0x25, 0 or 1.
    RetainAvailable(u8),
    /// 0x26, a name and a value; may repeat, order is significant.
    UserProperty(&'a str, &'a str),
    /// 0x27, non-zero.
    MaximumPacketSize(u32),
    /// 0x28, 0 or 1.
    WildcardSubscriptionAvailable(u8),
    /// 0x29, 0 or 1.
    SubscriptionIdentifierAvailable(u8),
    /// 0x2A, 0 or 1.
    SharedSubscriptionAvailable(u8),
}

impl Property<'_> {
    /// Bytes this property takes on the wire, identifier included.
    pub fn encoded_len(&self) -> usize {
        self.value().encoded_len().saturating_add(1)
    }

    /// Write the property (identifier and value). Values are not checked here; see
    /// [`PropertiesBuf::push`].
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.id().0);
        self.value().encode(buf);
    }

    /// Check the value's range (each property's section in §3: "It is a Protocol Error
    /// to include … a value other than …").
    fn check_value(&self) -> Result<(), DecodeError> {
        use Property as P;
        let ok = match *self {
            P::PayloadFormatIndicator(v)
            | P::RequestProblemInformation(v)
            | P::RequestResponseInformation(v)
            | P::MaximumQoS(v)
            | P::RetainAvailable(v)
            | P::WildcardSubscriptionAvailable(v)
            | P::SubscriptionIdentifierAvailable(v)
            | P::SharedSubscriptionAvailable(v) => v <= 1,
            P::ReceiveMaximum(v) | P::TopicAlias(v) => v != 0,
            P::MaximumPacketSize(v) => v != 0,
            P::SubscriptionIdentifier(v) => (1..=wire::VAR_INT_MAX).contains(&v),
            // "The Response Topic MUST NOT contain wildcard characters" [MQTT-5.0: 3.3.2-14].
            P::ResponseTopic(s) => {
                return match TopicName::parse(s) {
                    Ok(_) if !s.is_empty() => Ok(()),
                    _ => Err(DecodeError::InvalidPropertyValue(self.id())),
                };
            }
            _ => true,
        };
        if ok { Ok(()) } else { Err(DecodeError::InvalidPropertyValue(self.id())) }
    }
}

/// Read the next property. Strings are UTF-8 checked; with `check`, also for U+0000.
fn read_property<'a>(reader: &mut BlockReader<'a>, check: bool) -> Result<Property<'a>, DecodeError> {
    let id = PropertyId(reader.u8()?);
    let mut string = || {
        let text = reader.utf8_field()?;
        if check && wire::has_nul(text.as_bytes()) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(text)
    };
    let value = match id.value_type() {
        Some(ValueType::Byte) => Value::Byte(reader.u8()?),
        Some(ValueType::TwoByte) => Value::TwoByte(reader.u16()?),
        Some(ValueType::FourByte) => Value::FourByte(reader.u32()?),
        Some(ValueType::VarInt) => Value::VarInt(reader.var_int()?),
        Some(ValueType::Utf8) => Value::Utf8(string()?),
        Some(ValueType::Binary) => Value::Binary(reader.binary()?),
        Some(ValueType::Utf8Pair) => {
            let key = string()?;
            Value::Utf8Pair(key, string()?)
        }
        None => return Err(DecodeError::UnknownProperty(id.0)),
    };
    Property::from_value(id, value).ok_or(DecodeError::UnknownProperty(id.0))
}

/// A validated block of properties, borrowed from the packet (without its length prefix).
///
/// Equality compares the bytes: two blocks are equal when they carry the same
/// properties in the same order.
#[derive(Clone, Copy)]
pub struct Properties<'a> {
    /// The bytes, with the contexts in which every property of the block is allowed.
    block: Block<'a>,
}

impl<'a> Properties<'a> {
    /// No properties.
    pub const EMPTY: Properties<'static> = Properties { block: Block::Text("", ALL_CONTEXTS) };

    /// Check a raw property block (without its length prefix) for use in `context`.
    pub fn parse(raw: &'a [u8], context: PropertyContext) -> Result<Self, DecodeError> {
        let props = Self::parse_any(raw)?;
        props.check_context(context)?;
        Ok(props)
    }

    /// Wrap raw bytes without checking them: for building deliberately malformed packets.
    /// Iteration stops at the first property it cannot read.
    pub const fn from_raw_unchecked(raw: &'a [u8]) -> Self {
        Self { block: Block::Bytes(raw, ALL_CONTEXTS) }
    }

    /// Check everything that does not depend on the packet, and work out in which
    /// packets the block may appear.
    fn parse_any(raw: &'a [u8]) -> Result<Self, DecodeError> {
        if raw.is_empty() {
            return Ok(Self::EMPTY);
        }
        let mut seen: u64 = 0;
        let mut contexts = ALL_CONTEXTS;
        let block = Block::new(raw, ALL_CONTEXTS);
        let mut reader = block.reader();
        while !reader.is_empty() {
            let prop = read_property(&mut reader, true)?;
            prop.check_value()?;
            let id = prop.id();
            let bit = 1u64 << (id.0 & 63);
            if seen & bit != 0 {
                match id {
                    // User Property may appear many times (§3.1.2.11.8 and siblings).
                    PropertyId::USER_PROPERTY => {}
                    // Several Subscription Identifiers may be sent in PUBLISH (§3.3.2.3.8),
                    // but "It is a Protocol Error to include the Subscription Identifier
                    // more than once" in SUBSCRIBE (§3.8.2.1.2).
                    PropertyId::SUBSCRIPTION_IDENTIFIER => contexts &= !PropertyContext::Subscribe.bit(),
                    _ => return Err(DecodeError::DuplicateProperty(id)),
                }
            }
            seen |= bit;
            contexts &= id.allowed_in();
        }
        // "It is a Protocol Error to include Authentication Data if there is no
        // Authentication Method" (§3.1.2.11.10, §3.2.2.3.18, §3.15.2.2.3).
        let has = |id: PropertyId| seen & (1u64 << (id.0 & 63)) != 0;
        if has(PropertyId::AUTHENTICATION_DATA) && !has(PropertyId::AUTHENTICATION_METHOD) {
            return Err(DecodeError::MissingAuthenticationMethod);
        }
        Ok(Self { block: block.with_meta(contexts) })
    }

    /// Check that every property may appear in `context` (Table 2-4).
    pub fn check_context(&self, context: PropertyContext) -> Result<(), DecodeError> {
        if self.block.meta() & context.bit() != 0 {
            return Ok(());
        }
        // Slow path, only for the error: find which property is out of place.
        let mut sub_ids = 0u32;
        for prop in self.iter() {
            let id = prop.id();
            if id.allowed_in() & context.bit() == 0 {
                return Err(DecodeError::PropertyNotAllowed { property: id, packet_type: context.packet_type() });
            }
            if id == PropertyId::SUBSCRIPTION_IDENTIFIER {
                sub_ids = sub_ids.saturating_add(1);
            }
        }
        if sub_ids > 1 {
            return Err(DecodeError::DuplicateProperty(PropertyId::SUBSCRIPTION_IDENTIFIER));
        }
        Err(DecodeError::PropertyNotAllowed { property: PropertyId(0), packet_type: context.packet_type() })
    }

    /// The raw bytes (without the length prefix).
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.block.bytes()
    }

    /// Whether there are no properties.
    pub const fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// The properties, in wire order.
    pub fn iter(&self) -> PropertyIter<'a> {
        PropertyIter { reader: self.block.reader() }
    }

    /// The first property with this identifier.
    pub fn get(&self, id: PropertyId) -> Option<Property<'a>> {
        self.iter().find(|p| p.id() == id)
    }

    /// All User Properties, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.iter().filter_map(|p| match p {
            Property::UserProperty(k, v) => Some((k, v)),
            _ => None,
        })
    }

    /// All Subscription Identifiers, in order.
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = u32> + use<'a> {
        self.iter().filter_map(|p| match p {
            Property::SubscriptionIdentifier(v) => Some(v),
            _ => None,
        })
    }

    /// Bytes on the wire, length prefix included.
    pub fn encoded_len(&self) -> usize {
        wire::var_int_len(self.raw_len()).saturating_add(self.as_bytes().len())
    }

    fn raw_len(&self) -> u32 {
        u32::try_from(self.as_bytes().len()).unwrap_or(u32::MAX)
    }

    /// Write the length prefix and the properties.
    pub fn encode(&self, buf: &mut impl BufMut) {
        wire::put_var_int(buf, self.raw_len());
        buf.put_slice(self.as_bytes());
    }

    /// Read a length-prefixed property block inside a packet body and check it for
    /// `context`: the block and the bytes after it.
    #[inline]
    pub(crate) fn split(input: &'a [u8], context: PropertyContext) -> Result<(Self, &'a [u8]), DecodeError> {
        // Most packets carry no property at all: a single zero byte.
        if let [0, rest @ ..] = input {
            return Ok((Self::EMPTY, rest));
        }
        let (len, rest) = wire::split_var_int(input)?;
        let (raw, rest) = rest.split_at_checked(len as usize).ok_or(DecodeError::Truncated)?;
        Ok((Self::parse(raw, context)?, rest))
    }
}

macro_rules! accessors {
    ($($(#[$doc:meta])* $fn:ident -> $ty:ty = $variant:ident;)*) => {
        impl<'a> Properties<'a> {
            $($(#[$doc])* pub fn $fn(&self) -> Option<$ty> {
                self.iter().find_map(|p| match p { Property::$variant(v) => Some(v), _ => None })
            })*
        }
    };
}

accessors! {
    /// Payload Format Indicator.
    payload_format_indicator -> u8 = PayloadFormatIndicator;
    /// Message Expiry Interval.
    message_expiry_interval -> u32 = MessageExpiryInterval;
    /// Content Type.
    content_type -> &'a str = ContentType;
    /// Response Topic.
    response_topic -> &'a str = ResponseTopic;
    /// Correlation Data.
    correlation_data -> &'a [u8] = CorrelationData;
    /// Session Expiry Interval.
    session_expiry_interval -> u32 = SessionExpiryInterval;
    /// Assigned Client Identifier.
    assigned_client_identifier -> &'a str = AssignedClientIdentifier;
    /// Server Keep Alive.
    server_keep_alive -> u16 = ServerKeepAlive;
    /// Authentication Method.
    authentication_method -> &'a str = AuthenticationMethod;
    /// Authentication Data.
    authentication_data -> &'a [u8] = AuthenticationData;
    /// Request Problem Information.
    request_problem_information -> u8 = RequestProblemInformation;
    /// Will Delay Interval.
    will_delay_interval -> u32 = WillDelayInterval;
    /// Request Response Information.
    request_response_information -> u8 = RequestResponseInformation;
    /// Response Information.
    response_information -> &'a str = ResponseInformation;
    /// Server Reference.
    server_reference -> &'a str = ServerReference;
    /// Reason String.
    reason_string -> &'a str = ReasonString;
    /// Receive Maximum.
    receive_maximum -> u16 = ReceiveMaximum;
    /// Topic Alias Maximum.
    topic_alias_maximum -> u16 = TopicAliasMaximum;
    /// Topic Alias.
    topic_alias -> u16 = TopicAlias;
    /// Maximum QoS.
    maximum_qos -> u8 = MaximumQoS;
    /// Retain Available.
    retain_available -> u8 = RetainAvailable;
    /// Maximum Packet Size.
    maximum_packet_size -> u32 = MaximumPacketSize;
    /// Wildcard Subscription Available.
    wildcard_subscription_available -> u8 = WildcardSubscriptionAvailable;
    /// Subscription Identifier Available.
    subscription_identifier_available -> u8 = SubscriptionIdentifierAvailable;
    /// Shared Subscription Available.
    shared_subscription_available -> u8 = SharedSubscriptionAvailable;
}

/// [`Properties::EMPTY`]: a derived `Default` would allow the block in no context, and
/// every `encode` would refuse it.
impl Default for Properties<'_> {
    fn default() -> Self {
        Properties::EMPTY
    }
}

impl PartialEq for Properties<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Properties<'_> {}

impl core::hash::Hash for Properties<'_> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Properties<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Properties<'a> {
    type Item = Property<'a>;
    type IntoIter = PropertyIter<'a>;
    fn into_iter(self) -> PropertyIter<'a> {
        self.iter()
    }
}

/// Iterator over a validated property block. Strings are sub-slices of a block that was
/// validated as a whole when it was decoded: iterating validates nothing again.
#[derive(Clone)]
pub struct PropertyIter<'a> {
    reader: BlockReader<'a>,
}

impl fmt::Debug for PropertyIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl<'a> Iterator for PropertyIter<'a> {
    type Item = Property<'a>;

    #[inline]
    fn next(&mut self) -> Option<Property<'a>> {
        if self.reader.is_empty() {
            return None;
        }
        match read_property(&mut self.reader, false) {
            Ok(prop) => Some(prop),
            // Only reachable for blocks built with `from_raw_unchecked`.
            Err(_) => {
                self.reader.stop();
                None
            }
        }
    }
}

/// An owned, growable property block for building packets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PropertiesBuf {
    buf: Vec<u8>,
}

impl PropertiesBuf {
    /// An empty block.
    pub const fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// Append a property after checking its value (range, strings, field lengths).
    pub fn push(&mut self, prop: Property<'_>) -> Result<&mut Self, ValidationError> {
        prop.check_value()?;
        prop.value().check_fields()?;
        prop.encode(&mut self.buf);
        Ok(self)
    }

    /// Check the whole block for `context` (duplicates, placement) and borrow it.
    pub fn properties(&self, context: PropertyContext) -> Result<Properties<'_>, ValidationError> {
        Ok(Properties::parse(&self.buf, context)?)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(props: &[Property<'_>]) -> Vec<u8> {
        let mut buf = Vec::new();
        for p in props {
            p.encode(&mut buf);
        }
        buf
    }

    #[test]
    fn decodes_every_property_type() {
        let props = [
            Property::PayloadFormatIndicator(1),
            Property::MessageExpiryInterval(60),
            Property::ContentType("text/plain"),
            Property::ResponseTopic("r/t"),
            Property::CorrelationData(b"\x00\x01"),
            Property::SubscriptionIdentifier(268_435_455),
            Property::SubscriptionIdentifier(1),
            Property::TopicAlias(3),
            Property::UserProperty("k", "v"),
            Property::UserProperty("k", "v2"),
        ];
        let raw = block(&props);
        let parsed = Properties::parse(&raw, PropertyContext::Publish).expect("valid");
        assert!(parsed.iter().eq(props.iter().copied()));
        assert_eq!(parsed.user_properties().collect::<Vec<_>>(), [("k", "v"), ("k", "v2")]);
        assert_eq!(parsed.subscription_identifiers().collect::<Vec<_>>(), [268_435_455, 1]);
        assert_eq!(
            Properties::parse(&raw, PropertyContext::Subscribe),
            Err(DecodeError::PropertyNotAllowed {
                property: PropertyId::PAYLOAD_FORMAT_INDICATOR,
                packet_type: PacketType::Subscribe
            })
        );
    }

    #[test]
    fn rejects_duplicates_and_out_of_range_values() {
        let dup = block(&[Property::ContentType("a"), Property::ContentType("b")]);
        assert_eq!(
            Properties::parse(&dup, PropertyContext::Publish),
            Err(DecodeError::DuplicateProperty(PropertyId::CONTENT_TYPE))
        );
        let two_sub_ids = block(&[Property::SubscriptionIdentifier(1), Property::SubscriptionIdentifier(2)]);
        assert_eq!(
            Properties::parse(&two_sub_ids, PropertyContext::Subscribe),
            Err(DecodeError::DuplicateProperty(PropertyId::SUBSCRIPTION_IDENTIFIER))
        );
        for bad in [
            Property::ReceiveMaximum(0),
            Property::MaximumPacketSize(0),
            Property::TopicAlias(0),
            Property::SubscriptionIdentifier(0),
            Property::MaximumQoS(2),
            Property::PayloadFormatIndicator(2),
            Property::ResponseTopic("a/+"),
        ] {
            let raw = block(&[bad]);
            assert_eq!(Properties::parse_any(&raw), Err(DecodeError::InvalidPropertyValue(bad.id())), "{bad:?}");
        }
    }

    #[test]
    fn rejects_unknown_identifier_and_truncation() {
        assert_eq!(Properties::parse_any(&[0x04, 0x00]), Err(DecodeError::UnknownProperty(0x04)));
        assert_eq!(Properties::parse_any(&[0x02, 0x00, 0x00]), Err(DecodeError::Truncated));
        // Subscription Identifier encoded with a redundant byte.
        assert_eq!(Properties::parse_any(&[0x0B, 0x81, 0x00]), Err(DecodeError::InvalidVarInt));
    }

    #[test]
    fn names_round_trip_through_snake_case_keys() {
        for id in 0..=u8::MAX {
            let id = PropertyId(id);
            match id.key() {
                Some(key) => {
                    assert_eq!(PropertyId::from_key(key), Some(id));
                    assert_eq!(key, id.name().expect("named").to_lowercase().replace(' ', "_"));
                }
                None => assert!(id.name().is_none() && id.value_type().is_none()),
            }
        }
    }

    #[test]
    fn rejects_null_in_user_property() {
        assert_eq!(Properties::parse_any(&[0x26, 0, 1, 0, 0, 1, b'v']), Err(DecodeError::NullCharacter));
    }

    #[test]
    fn rejects_authentication_data_without_method() {
        let raw = block(&[Property::AuthenticationData(b"x")]);
        assert_eq!(Properties::parse(&raw, PropertyContext::Connect), Err(DecodeError::MissingAuthenticationMethod));
    }

    #[test]
    fn equality_compares_bytes_only() {
        let raw = block(&[Property::ContentType("a")]);
        assert_eq!(
            Properties::from_raw_unchecked(&raw),
            Properties::parse(&raw, PropertyContext::Publish).expect("valid")
        );
    }

    #[test]
    fn builder_refuses_invalid_values() {
        let mut buf = PropertiesBuf::new();
        assert!(buf.push(Property::ReceiveMaximum(0)).is_err());
        buf.push(Property::ReceiveMaximum(10)).expect("valid");
        assert_eq!(buf.properties(PropertyContext::Connect).expect("valid").receive_maximum(), Some(10));
    }
}

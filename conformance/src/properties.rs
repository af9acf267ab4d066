//! MQTT 5.0 properties by their snake_case names, for scenario files: encoding of outgoing
//! properties (deliberately unchecked, so scenarios can send invalid ones) and naming of
//! received ones.

use mqttkit_codec::Property;

use crate::observed::Value;

/// How a property's value is carried on the wire (5.0 §2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    /// One byte.
    Byte,
    /// Two-byte integer.
    TwoByte,
    /// Four-byte integer.
    FourByte,
    /// Variable Byte Integer.
    VarInt,
    /// UTF-8 string.
    Utf8,
    /// Binary data.
    Binary,
    /// UTF-8 string pair.
    Pair,
}

/// (name, identifier, kind) of every 5.0 property.
pub const PROPERTY_TABLE: &[(&str, u8, PropertyKind)] = &[
    ("payload_format_indicator", 0x01, PropertyKind::Byte),
    ("message_expiry_interval", 0x02, PropertyKind::FourByte),
    ("content_type", 0x03, PropertyKind::Utf8),
    ("response_topic", 0x08, PropertyKind::Utf8),
    ("correlation_data", 0x09, PropertyKind::Binary),
    ("subscription_identifier", 0x0B, PropertyKind::VarInt),
    ("session_expiry_interval", 0x11, PropertyKind::FourByte),
    ("assigned_client_identifier", 0x12, PropertyKind::Utf8),
    ("server_keep_alive", 0x13, PropertyKind::TwoByte),
    ("authentication_method", 0x15, PropertyKind::Utf8),
    ("authentication_data", 0x16, PropertyKind::Binary),
    ("request_problem_information", 0x17, PropertyKind::Byte),
    ("will_delay_interval", 0x18, PropertyKind::FourByte),
    ("request_response_information", 0x19, PropertyKind::Byte),
    ("response_information", 0x1A, PropertyKind::Utf8),
    ("server_reference", 0x1C, PropertyKind::Utf8),
    ("reason_string", 0x1F, PropertyKind::Utf8),
    ("receive_maximum", 0x21, PropertyKind::TwoByte),
    ("topic_alias_maximum", 0x22, PropertyKind::TwoByte),
    ("topic_alias", 0x23, PropertyKind::TwoByte),
    ("maximum_qos", 0x24, PropertyKind::Byte),
    ("retain_available", 0x25, PropertyKind::Byte),
    ("user_property", 0x26, PropertyKind::Pair),
    ("maximum_packet_size", 0x27, PropertyKind::FourByte),
    ("wildcard_subscription_available", 0x28, PropertyKind::Byte),
    ("subscription_identifier_available", 0x29, PropertyKind::Byte),
    ("shared_subscription_available", 0x2A, PropertyKind::Byte),
];

/// Look a property up by name.
pub fn by_name(name: &str) -> Option<(u8, PropertyKind)> {
    PROPERTY_TABLE.iter().find(|(n, _, _)| *n == name).map(|(_, id, kind)| (*id, *kind))
}

/// The name of a property identifier.
pub fn name_of(id: u8) -> &'static str {
    PROPERTY_TABLE.iter().find(|(_, i, _)| *i == id).map_or("unknown_property", |(n, _, _)| *n)
}

/// A property value to send, already expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingValue {
    /// Any integer kind.
    Int(u64),
    /// String or binary data.
    Bytes(Vec<u8>),
    /// A user property.
    Pair(String, String),
}

/// Encode one property without checking it (values are truncated to the kind's width).
pub fn encode_property(out: &mut Vec<u8>, id: u8, kind: PropertyKind, value: &OutgoingValue) {
    put_var_int(out, u32::from(id));
    match (kind, value) {
        (PropertyKind::Byte, OutgoingValue::Int(v)) => out.push((*v & 0xFF) as u8),
        (PropertyKind::TwoByte, OutgoingValue::Int(v)) => out.extend_from_slice(&((*v & 0xFFFF) as u16).to_be_bytes()),
        (PropertyKind::FourByte, OutgoingValue::Int(v)) => {
            out.extend_from_slice(&((*v & 0xFFFF_FFFF) as u32).to_be_bytes());
        }
        (PropertyKind::VarInt, OutgoingValue::Int(v)) => put_var_int(out, (*v & 0xFFFF_FFFF) as u32),
        (_, OutgoingValue::Bytes(bytes)) => put_field(out, bytes),
        (_, OutgoingValue::Pair(key, value)) => {
            put_field(out, key.as_bytes());
            put_field(out, value.as_bytes());
        }
        (_, OutgoingValue::Int(v)) => put_field(out, v.to_string().as_bytes()),
    }
}

pub use mqttkit_codec::raw::{put_field, put_var_int};

/// A received property as (name, value).
pub fn describe(property: &Property<'_>) -> (&'static str, Value) {
    let name = name_of(property.id().0);
    let value = match *property {
        Property::PayloadFormatIndicator(v)
        | Property::RequestProblemInformation(v)
        | Property::RequestResponseInformation(v)
        | Property::MaximumQoS(v)
        | Property::RetainAvailable(v)
        | Property::WildcardSubscriptionAvailable(v)
        | Property::SubscriptionIdentifierAvailable(v)
        | Property::SharedSubscriptionAvailable(v) => Value::Int(u64::from(v)),
        Property::ServerKeepAlive(v)
        | Property::ReceiveMaximum(v)
        | Property::TopicAliasMaximum(v)
        | Property::TopicAlias(v) => Value::Int(u64::from(v)),
        Property::MessageExpiryInterval(v)
        | Property::SubscriptionIdentifier(v)
        | Property::SessionExpiryInterval(v)
        | Property::WillDelayInterval(v)
        | Property::MaximumPacketSize(v) => Value::Int(u64::from(v)),
        Property::ContentType(s)
        | Property::ResponseTopic(s)
        | Property::AssignedClientIdentifier(s)
        | Property::AuthenticationMethod(s)
        | Property::ResponseInformation(s)
        | Property::ServerReference(s)
        | Property::ReasonString(s) => Value::Str(s.to_owned()),
        Property::CorrelationData(b) | Property::AuthenticationData(b) => Value::Bytes(b.to_vec()),
        Property::UserProperty(k, v) => Value::List(vec![Value::Str(k.to_owned()), Value::Str(v.to_owned())]),
        _ => Value::Str(format!("{property:?}")),
    };
    (name, value)
}

//! MQTT 5.0 properties by their snake_case names, for scenario files: encoding of outgoing
//! properties (deliberately unchecked, so scenarios can send invalid ones) and naming of
//! received ones.

use mqttkit_codec::Property;

use crate::observed::Value;

use mqttkit_codec::PropertyId;
/// How a property's value is carried on the wire (5.0 §2.2.2.2): the codec's table.
pub use mqttkit_codec::ValueType as PropertyKind;

/// Look a property up by its snake_case name (`payload_format_indicator`).
pub fn by_name(name: &str) -> Option<(u8, PropertyKind)> {
    let id = PropertyId::from_key(name)?;
    Some((id.0, id.value_type()?))
}

/// The snake_case name of a property identifier.
pub fn name_of(id: u8) -> &'static str {
    PropertyId(id).key().unwrap_or("unknown_property")
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

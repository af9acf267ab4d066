//! Packets received from the broker, turned into a uniform field map that patterns are
//! matched against and that traces print.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use mqttkit_codec::{Packet, PublishQoS};
use serde::Serialize;

use crate::properties;

/// A field or property value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// Integers, QoS, packet ids, reason codes.
    Int(u64),
    /// Flags.
    Bool(bool),
    /// UTF-8 strings (topics, client ids).
    Str(String),
    /// Binary data and payloads.
    Bytes(Vec<u8>),
    /// Lists: SUBACK reason codes, repeated properties, a user property's (key, value).
    List(Vec<Value>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) if *v > 9 => write!(f, "{v} ({v:#04x})"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Bytes(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) if bytes.len() <= 64 && !text.chars().any(char::is_control) => write!(f, "{text:?}"),
                _ if bytes.len() > 64 => write!(f, "<{} bytes>", bytes.len()),
                _ => write!(f, "0x{}", hex(bytes)),
            },
            Self::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One packet as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Packet type name as the standard prints it (`PUBLISH`), or `MALFORMED`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Fields by name.
    pub fields: BTreeMap<String, Value>,
    /// 5.0 properties by name; repeatable ones (`user_property`, `subscription_identifier`)
    /// are lists.
    pub properties: BTreeMap<String, Value>,
    /// Why the bytes could not be decoded, for `MALFORMED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Packet kind used for bytes that do not decode.
pub const MALFORMED: &str = "MALFORMED";

impl Observed {
    fn new(kind: &str) -> Self {
        Self { kind: kind.to_owned(), fields: BTreeMap::new(), properties: BTreeMap::new(), error: None }
    }

    /// Bytes that could not be decoded.
    pub fn malformed(error: String) -> Self {
        Self { error: Some(error), ..Self::new(MALFORMED) }
    }

    /// The connection closing, as a pseudo packet (`CLOSED`) patterns can accept.
    pub fn closed(how: &str) -> Self {
        Self { error: Some(how.to_owned()), ..Self::new(crate::matcher::CLOSED) }
    }

    fn field(&mut self, name: &str, value: Value) {
        self.fields.insert(name.to_owned(), value);
    }

    fn add_properties(&mut self, props: &mqttkit_codec::Properties<'_>) {
        for property in props.iter() {
            let (name, value) = properties::describe(&property);
            if matches!(name, "user_property" | "subscription_identifier") {
                match self.properties.entry(name.to_owned()).or_insert_with(|| Value::List(Vec::new())) {
                    Value::List(items) => items.push(value),
                    other => *other = Value::List(vec![value]),
                }
            } else {
                self.properties.insert(name.to_owned(), value);
            }
        }
    }

    /// Describe a decoded packet.
    pub fn from_packet(packet: &Packet<'_>) -> Self {
        let mut observed = Self::new(packet.packet_type().name());
        match packet {
            Packet::Connect(connect) => {
                observed.field("client_id", Value::Str(connect.client_id.as_str().to_owned()));
                observed.field("clean_start", Value::Bool(connect.clean_start));
                observed.field("keep_alive", Value::Int(u64::from(connect.keep_alive)));
                observed.add_properties(&connect.properties);
            }
            Packet::ConnAck(connack) => {
                observed.field("session_present", Value::Bool(connack.session_present));
                observed.field("reason_code", Value::Int(u64::from(connack.code.0)));
                observed.add_properties(&connack.properties);
            }
            Packet::Publish(publish) => {
                observed.field("topic", Value::Str(publish.topic.as_str().to_owned()));
                observed.field("qos", Value::Int(u64::from(publish.qos.qos().as_u8())));
                observed.field("retain", Value::Bool(publish.retain));
                observed.field("dup", Value::Bool(publish.dup));
                if let PublishQoS::AtLeastOnce(id) | PublishQoS::ExactlyOnce(id) = publish.qos {
                    observed.field("packet_id", Value::Int(u64::from(id.get())));
                }
                observed.field("payload", Value::Bytes(publish.payload.to_vec()));
                observed.add_properties(&publish.properties);
            }
            Packet::PubAck(response)
            | Packet::PubRec(response)
            | Packet::PubRel(response)
            | Packet::PubComp(response) => {
                observed.field("packet_id", Value::Int(u64::from(response.packet_id.get())));
                observed.field("reason_code", Value::Int(u64::from(response.reason_code.0)));
                observed.add_properties(&response.properties);
            }
            Packet::Subscribe(subscribe) => {
                observed.field("packet_id", Value::Int(u64::from(subscribe.packet_id.get())));
            }
            Packet::SubAck(suback) => {
                observed.field("packet_id", Value::Int(u64::from(suback.packet_id.get())));
                let codes = suback.reason_codes.iter().map(|c| Value::Int(u64::from(c.0))).collect();
                observed.field("reason_codes", Value::List(codes));
                observed.add_properties(&suback.properties);
            }
            Packet::Unsubscribe(unsubscribe) => {
                observed.field("packet_id", Value::Int(u64::from(unsubscribe.packet_id.get())));
            }
            Packet::UnsubAck(unsuback) => {
                observed.field("packet_id", Value::Int(u64::from(unsuback.packet_id.get())));
                let codes = unsuback.reason_codes.iter().map(|c| Value::Int(u64::from(c.0))).collect();
                observed.field("reason_codes", Value::List(codes));
                observed.add_properties(&unsuback.properties);
            }
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(disconnect) => {
                observed.field("reason_code", Value::Int(u64::from(disconnect.reason_code.0)));
                observed.add_properties(&disconnect.properties);
            }
            Packet::Auth(auth) => {
                observed.field("reason_code", Value::Int(u64::from(auth.reason_code.0)));
                observed.add_properties(&auth.properties);
            }
        }
        observed
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        for (name, value) in &self.fields {
            write!(f, " {name}={value}")?;
        }
        if !self.properties.is_empty() {
            f.write_str(" {")?;
            for (i, (name, value)) in self.properties.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{name}: {value}")?;
            }
            f.write_str("}")?;
        }
        if let Some(error) = &self.error {
            write!(f, " ({error})")?;
        }
        Ok(())
    }
}

/// Lower-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Lower-case hex, bytes separated by spaces (for traces).
pub fn spaced_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(3));
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

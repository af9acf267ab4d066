//! Packets received from the broker, turned into a uniform field map that patterns are
//! matched against and that traces print.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use mqttkit_codec::{Packet, PublishQoS};
use serde::Serialize;

use crate::properties;
use crate::version::Version;

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
    /// The protocol version of the connection it arrived on (names reason codes in text).
    #[serde(skip)]
    pub version: Option<Version>,
}

/// Packet kind used for bytes that do not decode.
pub const MALFORMED: &str = "MALFORMED";

impl Observed {
    /// An empty observation of `kind` (a packet type, or a driver event in the client role).
    pub fn new(kind: &str) -> Self {
        Self { kind: kind.to_owned(), fields: BTreeMap::new(), properties: BTreeMap::new(), error: None, version: None }
    }

    /// Bytes that could not be decoded.
    pub fn malformed(error: String) -> Self {
        Self { error: Some(error), ..Self::new(MALFORMED) }
    }

    /// The connection closing, as a pseudo packet (`CLOSED`) patterns can accept.
    pub fn closed(how: &str) -> Self {
        Self { error: Some(how.to_owned()), ..Self::new(crate::matcher::CLOSED) }
    }

    /// Set a field.
    pub fn field(&mut self, name: &str, value: Value) {
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

    /// A CONNACK in the 3.1.1 form (`20 02 flags code`) received on a 5.0 connection: what a
    /// server that does not speak 5.0 answers [MQTT-3.1.1: 3.1.2-2]. Its return code is also
    /// given as the equivalent 5.0 reason code, so that patterns over 5.0 reason codes judge
    /// it the same way everywhere (1 → 0x84, 2 → 0x85, 3 → 0x88, 4 → 0x86, 5 → 0x87).
    pub fn connack_in_v3_form(flags: u8, return_code: u8) -> Self {
        let mut observed = Self::new("CONNACK");
        observed.version = Some(Version::V5);
        observed.field("session_present", Value::Bool(flags & 1 == 1));
        observed.field("return_code", Value::Int(u64::from(return_code)));
        // Return code 0 has no 5.0 equivalent here: accepting a 5.0 CONNECT with a 3.1.1
        // CONNACK is not a 5.0 success, so no `reason_code = 0` pattern may match it.
        let equivalent = match return_code {
            0 => None,
            1 => Some(0x84),
            2 => Some(0x85),
            3 => Some(0x88),
            4 => Some(0x86),
            5 => Some(0x87),
            _ => Some(0x80),
        };
        if let Some(code) = equivalent {
            observed.field("reason_code", Value::Int(code));
        }
        observed.field("v3_form", Value::Bool(true));
        observed
    }

    /// Whether this is a 3.1.1-form CONNACK received on a 5.0 connection.
    pub fn is_v3_form_connack(&self) -> bool {
        self.fields.get("v3_form") == Some(&Value::Bool(true))
    }

    /// An integer field (`reason_code`, `qos`, `packet_id`, …).
    pub fn int(&self, name: &str) -> Option<u64> {
        match self.fields.get(name) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }

    /// A text field (`topic`, …).
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.fields.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer property.
    pub fn int_property(&self, name: &str) -> Option<u64> {
        match self.properties.get(name) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }

    /// The reason codes of a SUBACK / UNSUBACK.
    pub fn reason_codes(&self) -> Vec<u64> {
        match self.fields.get("reason_codes") {
            Some(Value::List(codes)) => {
                codes.iter().filter_map(|c| if let Value::Int(v) = c { Some(*v) } else { None }).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Why this packet ends the connection for a reason outside any scenario's subject: a
    /// CONNACK or DISCONNECT refusing for authorisation (5.0 0x86 / 0x87, 3.1.1 return codes
    /// 4 / 5), or because the server is unavailable, busy, shutting down or over a quota or
    /// rate (5.0 0x88, 0x89, 0x8B, 0x96, 0x97, 0x9F; 3.1.1 return code 3).
    pub fn refusal_outside_subject(&self) -> Option<&'static str> {
        if self.is_authorisation_refusal() {
            return Some("the broker refused the connection for authorisation (give credentials with --username)");
        }
        let code = self.int("reason_code")?;
        let transient = match (self.kind.as_str(), self.version) {
            ("CONNACK", Some(Version::V3_1_1)) => code == 3,
            ("CONNACK" | "DISCONNECT", _) => matches!(code, 0x88 | 0x89 | 0x8B | 0x96 | 0x97 | 0x9F),
            _ => false,
        };
        if transient {
            return Some("the broker is unavailable, busy or over a limit");
        }
        (self.kind == "DISCONNECT" && code == 0x87).then_some("the broker disconnected with 0x87 Not authorized")
    }

    /// Whether this CONNACK refuses the connection for want of credentials or rights: 5.0
    /// reason codes 0x86 / 0x87, 3.1.1 return codes 4 / 5.
    pub fn is_authorisation_refusal(&self) -> bool {
        if self.kind != "CONNACK" {
            return false;
        }
        match (self.version, self.int("reason_code")) {
            (Some(Version::V3_1_1), Some(code)) => matches!(code, 4 | 5),
            (_, Some(code)) => matches!(code, 0x86 | 0x87),
            _ => false,
        }
    }

    /// Describe a decoded packet received on a connection of `version`.
    pub fn from_packet(packet: &Packet<'_>, version: Version) -> Self {
        let mut observed = Self::new(packet.packet_type().name());
        observed.version = Some(version);
        match packet {
            Packet::Connect(connect) => {
                observed.field("protocol_version", Value::Str(connect.version.to_string()));
                observed.field("client_id", Value::Str(connect.client_id.as_str().to_owned()));
                observed.field("clean_start", Value::Bool(connect.clean_start));
                observed.field("keep_alive", Value::Int(u64::from(connect.keep_alive)));
                if let Some(username) = &connect.username {
                    observed.field("username", Value::Str(username.as_str().to_owned()));
                }
                if let Some(password) = connect.password {
                    observed.field("password", Value::Bytes(password.to_vec()));
                }
                observed.field("will", Value::Bool(connect.will.is_some()));
                if let Some(will) = &connect.will {
                    observed.field("will_topic", Value::Str(will.topic.as_str().to_owned()));
                    observed.field("will_payload", Value::Bytes(will.payload.to_vec()));
                    observed.field("will_qos", Value::Int(u64::from(will.qos.as_u8())));
                    observed.field("will_retain", Value::Bool(will.retain));
                    // Will Properties as `will_<name>` fields (the packet's own properties
                    // keep the plain names).
                    let mut will_properties = Self::new("WILL");
                    will_properties.add_properties(&will.properties);
                    for (name, value) in will_properties.properties {
                        observed.field(&format!("will_{name}"), value);
                    }
                }
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
                let entries: Vec<_> = subscribe.filters.iter().collect();
                let list =
                    |f: &dyn Fn(&(mqttkit_codec::TopicFilter<'_>, mqttkit_codec::SubscriptionOptions)) -> Value| {
                        Value::List(entries.iter().map(f).collect())
                    };
                observed.field("filters", list(&|(filter, _)| Value::Str(filter.as_str().to_owned())));
                observed.field("qos", list(&|(_, options)| Value::Int(u64::from(options.qos.as_u8()))));
                observed.field("no_local", list(&|(_, options)| Value::Bool(options.no_local)));
                observed.field("retain_as_published", list(&|(_, options)| Value::Bool(options.retain_as_published)));
                observed.field("retain_handling", list(&|(_, options)| Value::Int(options.retain_handling as u64)));
                observed.add_properties(&subscribe.properties);
            }
            Packet::SubAck(suback) => {
                observed.field("packet_id", Value::Int(u64::from(suback.packet_id.get())));
                let codes = suback.reason_codes.iter().map(|c| Value::Int(u64::from(c.0))).collect();
                observed.field("reason_codes", Value::List(codes));
                observed.add_properties(&suback.properties);
            }
            Packet::Unsubscribe(unsubscribe) => {
                observed.field("packet_id", Value::Int(u64::from(unsubscribe.packet_id.get())));
                let filters = unsubscribe.filters.iter().map(|f| Value::Str(f.as_str().to_owned())).collect();
                observed.field("filters", Value::List(filters));
                observed.add_properties(&unsubscribe.properties);
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

/// A reason code (5.0) or return code (3.1.1) in hex with the name the standard gives it
/// in this packet and version, e.g. `0x87 Not authorized`.
pub fn describe_code(kind: &str, version: Option<Version>, code: u64) -> String {
    let version = version.unwrap_or(Version::V5).protocol();
    let name = mqttkit_codec::PacketType::ALL
        .iter()
        .find(|t| t.name() == kind)
        .zip(u8::try_from(code).ok())
        .and_then(|(packet_type, code)| mqttkit_codec::ReasonCode(code).name(*packet_type, version));
    match name {
        Some(name) => format!("{code:#04x} {name}"),
        None => format!("{code:#04x}"),
    }
}

impl Observed {
    fn describe_field(&self, name: &str, value: &Value) -> String {
        match (name, value) {
            // A CONNECT's password is matched against, never printed (traces end up in reports).
            ("password", Value::Bytes(bytes)) => format!("<{} bytes, not shown>", bytes.len()),
            ("reason_code", Value::Int(code)) => describe_code(&self.kind, self.version, *code),
            ("return_code", Value::Int(code)) => describe_code("CONNACK", Some(Version::V3_1_1), *code),
            ("reason_codes", Value::List(codes)) => {
                let names: Vec<String> = codes
                    .iter()
                    .map(|c| match c {
                        Value::Int(code) => describe_code(&self.kind, self.version, *code),
                        other => other.to_string(),
                    })
                    .collect();
                format!("[{}]", names.join(", "))
            }
            _ => value.to_string(),
        }
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if self.is_v3_form_connack() {
            f.write_str(" (3.1.1 form)")?;
        }
        for (name, value) in self.fields.iter().filter(|(name, _)| *name != "v3_form") {
            write!(f, " {name}={}", self.describe_field(name, value))?;
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

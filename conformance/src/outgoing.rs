//! Packets a scenario sends: typed specifications (encoded with the codec's unchecked
//! encoder, so invalid values go out as written) and raw byte templates for malformed input.

use mqttkit_codec::{
    Connect, Disconnect, MqttStr, Packet, PacketId, PacketType, Properties, Publish, PublishQoS, PublishResponse, QoS,
    ReasonCode, Subscribe, SubscribeFilters, TopicName, Unsubscribe, UnsubscribeFilters, Will,
};

use crate::properties::{OutgoingValue, PropertyKind, encode_property, put_field, put_var_int};
use crate::template::Variables;
use crate::version::Version;

/// An integer written literally or as a template (e.g. a captured `{pid}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntSpec {
    /// A literal.
    Literal(u64),
    /// A template expanding to a decimal integer.
    Template(String),
}

impl IntSpec {
    /// The value under `vars`.
    pub fn resolve(&self, vars: &Variables) -> Result<u64, String> {
        match self {
            Self::Literal(v) => Ok(*v),
            Self::Template(t) => {
                let text = vars.expand(t)?;
                text.trim().parse().map_err(|_| format!("`{t}` expanded to `{text}`, which is not an integer"))
            }
        }
    }
}

/// Bytes written as text (a template), hex, or a generated run of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BytesSpec {
    /// UTF-8 text after variable expansion.
    Text(String),
    /// Literal bytes.
    Hex(Vec<u8>),
    /// `len` copies of `byte`.
    Repeat {
        /// The byte.
        byte: u8,
        /// How many.
        len: usize,
    },
}

impl BytesSpec {
    /// The bytes under `vars`.
    pub fn resolve(&self, vars: &Variables) -> Result<Vec<u8>, String> {
        match self {
            Self::Text(t) => Ok(vars.expand(t)?.into_bytes()),
            Self::Hex(bytes) => Ok(bytes.clone()),
            Self::Repeat { byte, len } => Ok(vec![*byte; *len]),
        }
    }
}

/// A property value in a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValueSpec {
    /// Integer kinds.
    Int(IntSpec),
    /// String and binary kinds.
    Bytes(BytesSpec),
    /// User property.
    Pair(String, String),
}

/// One property to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertySpec {
    /// Property identifier.
    pub id: u8,
    /// Wire kind.
    pub kind: PropertyKind,
    /// Value.
    pub value: PropertyValueSpec,
}

/// Encode a property list (without its length prefix).
pub fn encode_properties(specs: &[PropertySpec], vars: &Variables) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for spec in specs {
        let value = match &spec.value {
            PropertyValueSpec::Int(v) => OutgoingValue::Int(v.resolve(vars)?),
            PropertyValueSpec::Bytes(b) => OutgoingValue::Bytes(b.resolve(vars)?),
            PropertyValueSpec::Pair(k, v) => OutgoingValue::Pair(vars.expand(k)?, vars.expand(v)?),
        };
        encode_property(&mut out, spec.id, spec.kind, &value);
    }
    Ok(out)
}

/// The Will of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillSpec {
    /// Will topic (template).
    pub topic: String,
    /// Will payload.
    pub payload: BytesSpec,
    /// Will QoS.
    pub qos: u8,
    /// Will retain.
    pub retain: bool,
    /// Will properties.
    pub properties: Vec<PropertySpec>,
}

/// A CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectSpec {
    /// Client identifier template; `None` means `{prefix}` followed by the client's name.
    pub client_id: Option<String>,
    /// Clean Session / Clean Start.
    pub clean_start: bool,
    /// Keep Alive, seconds.
    pub keep_alive: u16,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<BytesSpec>,
    /// Will.
    pub will: Option<WillSpec>,
    /// CONNECT properties.
    pub properties: Vec<PropertySpec>,
}

impl Default for ConnectSpec {
    fn default() -> Self {
        Self {
            client_id: None,
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            properties: Vec::new(),
        }
    }
}

/// One SUBSCRIBE entry: filter and raw options byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    /// Topic filter (template).
    pub filter: String,
    /// Subscription options byte (QoS, No Local, Retain As Published, Retain Handling).
    pub options: u8,
}

/// A part of a raw packet template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSegment {
    /// Literal bytes.
    Bytes(Vec<u8>),
    /// The Remaining Length of everything after this point, as a Variable Byte Integer.
    RemainingLength,
    /// A length-prefixed UTF-8 string (template).
    Field(String),
    /// Bare UTF-8 bytes (template).
    Text(String),
    /// `{flags:XX}`: a CONNECT flags byte, with the User Name and Password flags added when
    /// the run has credentials (`--username`, `--password` or the broker profile).
    ConnectFlags(u8),
    /// `{credentials}`: the run's User Name and Password fields, or nothing without them.
    Credentials,
}

/// Variables holding the run's credentials for raw CONNECT templates (names no scenario
/// variable can take: scenario variables are letters, digits and `_`).
pub const USERNAME_VARIABLE: &str = "credentials:username";
/// See [`USERNAME_VARIABLE`].
pub const PASSWORD_VARIABLE: &str = "credentials:password";

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingPacket {
    /// CONNECT.
    Connect(ConnectSpec),
    /// PUBLISH.
    Publish {
        /// Topic name (template).
        topic: String,
        /// Payload.
        payload: BytesSpec,
        /// QoS 0–2.
        qos: u8,
        /// RETAIN flag.
        retain: bool,
        /// DUP flag.
        dup: bool,
        /// Packet identifier (QoS > 0).
        packet_id: Option<IntSpec>,
        /// Properties.
        properties: Vec<PropertySpec>,
    },
    /// PUBACK, PUBREC, PUBREL or PUBCOMP.
    PublishResponse {
        /// Which.
        kind: PacketType,
        /// Packet identifier.
        packet_id: IntSpec,
        /// Reason code (5.0).
        reason_code: u8,
        /// Properties.
        properties: Vec<PropertySpec>,
    },
    /// SUBSCRIBE.
    Subscribe {
        /// Packet identifier.
        packet_id: IntSpec,
        /// Filters.
        filters: Vec<FilterSpec>,
        /// Properties.
        properties: Vec<PropertySpec>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Packet identifier.
        packet_id: IntSpec,
        /// Filters (templates).
        filters: Vec<String>,
        /// Properties.
        properties: Vec<PropertySpec>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect {
        /// Reason code (5.0).
        reason_code: u8,
        /// Properties.
        properties: Vec<PropertySpec>,
    },
    /// AUTH.
    Auth {
        /// Reason code.
        reason_code: u8,
        /// Properties.
        properties: Vec<PropertySpec>,
    },
    /// Raw bytes, exactly as written.
    Raw(Vec<RawSegment>),
}

/// What the runner must remember about a packet it sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentFacts {
    /// A topic the packet may have stored a retained message on (to clear afterwards).
    pub retained_topics: Vec<String>,
    /// A client id whose session may outlive the connection (to clean afterwards).
    pub persistent_client_id: Option<String>,
    /// The client id sent in a CONNECT.
    pub client_id: Option<String>,
    /// Keep alive sent in a CONNECT.
    pub keep_alive: Option<u16>,
}

fn packet_id(spec: &IntSpec, vars: &Variables) -> Result<PacketId, String> {
    let value = spec.resolve(vars)?;
    u16::try_from(value)
        .ok()
        .and_then(PacketId::new)
        .ok_or_else(|| format!("packet id {value} is not in 1..=65535 (use `raw` to send 0)"))
}

fn qos(value: u8) -> Result<QoS, String> {
    QoS::from_u8(value).ok_or_else(|| format!("QoS {value} cannot be typed (use `raw`)"))
}

impl OutgoingPacket {
    /// Encode for `version`. `default_client_id` is used when a CONNECT names none.
    pub fn encode(
        &self,
        version: Version,
        vars: &Variables,
        default_client_id: &str,
    ) -> Result<(Vec<u8>, SentFacts), String> {
        let pv = version.protocol();
        let mut out = Vec::new();
        let mut facts = SentFacts::default();
        match self {
            Self::Connect(spec) => {
                let client_id = match &spec.client_id {
                    Some(t) => vars.expand(t)?,
                    None => default_client_id.to_owned(),
                };
                let props = encode_properties(&spec.properties, vars)?;
                let username = spec.username.as_deref().map(|u| vars.expand(u)).transpose()?;
                let password = spec.password.as_ref().map(|p| p.resolve(vars)).transpose()?;
                let will_parts = match &spec.will {
                    Some(will) => Some((
                        vars.expand(&will.topic)?,
                        will.payload.resolve(vars)?,
                        encode_properties(&will.properties, vars)?,
                        qos(will.qos)?,
                        will.retain,
                    )),
                    None => None,
                };
                let will = will_parts.as_ref().map(|(topic, payload, props, qos, retain)| Will {
                    qos: *qos,
                    retain: *retain,
                    properties: Properties::from_raw_unchecked(props),
                    topic: TopicName::new_unchecked(topic),
                    payload,
                });
                if let Some((topic, _, _, _, true)) = &will_parts {
                    facts.retained_topics.push(topic.clone());
                }
                let session_expiry = spec
                    .properties
                    .iter()
                    .any(|p| p.id == 0x11 && !matches!(p.value, PropertyValueSpec::Int(IntSpec::Literal(0))));
                if !spec.clean_start || session_expiry {
                    facts.persistent_client_id = Some(client_id.clone());
                }
                facts.client_id = Some(client_id.clone());
                facts.keep_alive = Some(spec.keep_alive);
                let connect = Connect {
                    version: pv,
                    bridge: false,
                    clean_start: spec.clean_start,
                    keep_alive: spec.keep_alive,
                    properties: Properties::from_raw_unchecked(&props),
                    client_id: MqttStr::new_unchecked(&client_id),
                    will,
                    username: username.as_deref().map(MqttStr::new_unchecked),
                    password: password.as_deref(),
                };
                Packet::Connect(connect).encode_unchecked(pv, &mut out);
            }
            Self::Publish { topic, payload, qos: q, retain, dup, packet_id: id, properties } => {
                let topic = vars.expand(topic)?;
                let payload = payload.resolve(vars)?;
                let props = encode_properties(properties, vars)?;
                let publish_qos = match (qos(*q)?, id) {
                    (QoS::AtMostOnce, _) => PublishQoS::AtMostOnce,
                    (level, Some(id)) => PublishQoS::new(level, packet_id(id, vars)?),
                    (_, None) => return Err("a QoS 1 or 2 PUBLISH needs a packet id".into()),
                };
                if *retain {
                    facts.retained_topics.push(topic.clone());
                }
                let publish = Publish {
                    dup: *dup,
                    qos: publish_qos,
                    retain: *retain,
                    topic: TopicName::new_unchecked(&topic),
                    properties: Properties::from_raw_unchecked(&props),
                    payload: &payload,
                };
                Packet::Publish(publish).encode_unchecked(pv, &mut out);
            }
            Self::PublishResponse { kind, packet_id: id, reason_code, properties } => {
                let props = encode_properties(properties, vars)?;
                let response = PublishResponse {
                    packet_id: packet_id(id, vars)?,
                    reason_code: ReasonCode(*reason_code),
                    properties: Properties::from_raw_unchecked(&props),
                };
                let packet = match kind {
                    PacketType::PubAck => Packet::PubAck(response),
                    PacketType::PubRec => Packet::PubRec(response),
                    PacketType::PubRel => Packet::PubRel(response),
                    _ => Packet::PubComp(response),
                };
                packet.encode_unchecked(pv, &mut out);
            }
            Self::Subscribe { packet_id: id, filters, properties } => {
                let props = encode_properties(properties, vars)?;
                let mut raw = Vec::new();
                for filter in filters {
                    put_field(&mut raw, vars.expand(&filter.filter)?.as_bytes());
                    raw.push(filter.options);
                }
                let subscribe = Subscribe {
                    packet_id: packet_id(id, vars)?,
                    properties: Properties::from_raw_unchecked(&props),
                    filters: SubscribeFilters::from_raw_unchecked(&raw),
                };
                Packet::Subscribe(subscribe).encode_unchecked(pv, &mut out);
            }
            Self::Unsubscribe { packet_id: id, filters, properties } => {
                let props = encode_properties(properties, vars)?;
                let mut raw = Vec::new();
                for filter in filters {
                    put_field(&mut raw, vars.expand(filter)?.as_bytes());
                }
                let unsubscribe = Unsubscribe {
                    packet_id: packet_id(id, vars)?,
                    properties: Properties::from_raw_unchecked(&props),
                    filters: UnsubscribeFilters::from_raw_unchecked(&raw),
                };
                Packet::Unsubscribe(unsubscribe).encode_unchecked(pv, &mut out);
            }
            Self::PingReq => Packet::PingReq.encode_unchecked(pv, &mut out),
            Self::Disconnect { reason_code, properties } => {
                let props = encode_properties(properties, vars)?;
                let disconnect = Disconnect {
                    reason_code: ReasonCode(*reason_code),
                    properties: Properties::from_raw_unchecked(&props),
                };
                Packet::Disconnect(disconnect).encode_unchecked(pv, &mut out);
            }
            Self::Auth { reason_code, properties } => {
                let props = encode_properties(properties, vars)?;
                let auth = mqttkit_codec::Auth {
                    reason_code: ReasonCode(*reason_code),
                    properties: Properties::from_raw_unchecked(&props),
                };
                Packet::Auth(auth).encode_unchecked(pv, &mut out);
            }
            Self::Raw(segments) => out = encode_raw(segments, vars)?,
        }
        Ok((out, facts))
    }
}

/// Assemble a raw template.
pub fn encode_raw(segments: &[RawSegment], vars: &Variables) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut length_at = None;
    for segment in segments {
        match segment {
            RawSegment::Bytes(bytes) => out.extend_from_slice(bytes),
            RawSegment::RemainingLength => length_at = Some(out.len()),
            RawSegment::Field(t) => put_field(&mut out, vars.expand(t)?.as_bytes()),
            RawSegment::Text(t) => out.extend_from_slice(vars.expand(t)?.as_bytes()),
            RawSegment::ConnectFlags(flags) => {
                let mut flags = *flags;
                if vars.get(USERNAME_VARIABLE).is_some() {
                    flags |= 0x80;
                }
                if vars.get(PASSWORD_VARIABLE).is_some() {
                    flags |= 0x40;
                }
                out.push(flags);
            }
            RawSegment::Credentials => {
                for name in [USERNAME_VARIABLE, PASSWORD_VARIABLE] {
                    if let Some(value) = vars.get(name) {
                        put_field(&mut out, value.as_bytes());
                    }
                }
            }
        }
    }
    if let Some(at) = length_at {
        let tail = out.split_off(at);
        put_var_int(&mut out, u32::try_from(tail.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(&tail);
    }
    Ok(out)
}

/// Parse a raw template: hex bytes, `{rl}`, `{s:TEXT}` and `{b:TEXT}` (TEXT may hold
/// `{variables}`).
pub fn parse_raw(text: &str) -> Result<Vec<RawSegment>, String> {
    let mut segments = Vec::new();
    let mut hex = String::new();
    let mut chars = text.char_indices().peekable();
    let flush = |hex: &mut String, segments: &mut Vec<RawSegment>| -> Result<(), String> {
        if !hex.is_empty() {
            segments.push(RawSegment::Bytes(crate::matcher::parse_hex(hex)?));
            hex.clear();
        }
        Ok(())
    };
    let mut rl_seen = false;
    while let Some((start, c)) = chars.next() {
        if c != '{' {
            if !c.is_whitespace() {
                hex.push(c);
            }
            continue;
        }
        flush(&mut hex, &mut segments)?;
        let mut depth = 1usize;
        let mut end = None;
        for (i, c) in chars.by_ref() {
            match c {
                '{' => depth = depth.saturating_add(1),
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("unclosed `{{` in raw bytes `{text}`"))?;
        let inner = text.get(start.saturating_add(1)..end).unwrap_or_default();
        if inner == "rl" {
            if rl_seen {
                return Err("`{rl}` may appear only once".into());
            }
            rl_seen = true;
            segments.push(RawSegment::RemainingLength);
        } else if let Some(s) = inner.strip_prefix("s:") {
            segments.push(RawSegment::Field(s.to_owned()));
        } else if let Some(s) = inner.strip_prefix("b:") {
            segments.push(RawSegment::Text(s.to_owned()));
        } else if let Some(hex) = inner.strip_prefix("flags:") {
            let flags =
                u8::from_str_radix(hex.trim(), 16).map_err(|_| format!("`{{flags:{hex}}}` needs one hex byte"))?;
            segments.push(RawSegment::ConnectFlags(flags));
        } else if inner == "credentials" {
            segments.push(RawSegment::Credentials);
        } else {
            return Err(format!(
                "unknown raw token `{{{inner}}}`; expected {{rl}}, {{s:TEXT}}, {{b:TEXT}}, {{flags:XX}} or {{credentials}}"
            ));
        }
    }
    flush(&mut hex, &mut segments)?;
    if segments.is_empty() {
        return Err("raw bytes are empty".into());
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_templates_compute_remaining_length_and_fields() {
        let mut vars = Variables::default();
        vars.set("prefix", "p");
        let segments = parse_raw("30 {rl} {s:{prefix}/a} 68 69").expect("valid");
        let bytes = encode_raw(&segments, &vars).expect("encodes");
        assert_eq!(bytes, vec![0x30, 7, 0, 3, b'p', b'/', b'a', 0x68, 0x69]);
        assert!(parse_raw("3").is_err());
        assert!(parse_raw("{zz}").is_err());
    }

    #[test]
    fn raw_connect_templates_carry_the_runs_credentials_only_when_it_has_them() {
        let template = parse_raw("10 {rl} 00 04 4d 51 54 54 04 {flags:02} 00 3c {s:c} {credentials}").expect("valid");
        let without = encode_raw(&template, &Variables::default()).expect("encodes");
        assert_eq!(without, vec![0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'c']);
        let mut vars = Variables::default();
        vars.set(USERNAME_VARIABLE, "u");
        vars.set(PASSWORD_VARIABLE, "p");
        let with = encode_raw(&template, &vars).expect("encodes");
        assert_eq!(with.get(9), Some(&0xC2));
        assert_eq!(with.get(15..), Some(&[0, 1, b'u', 0, 1, b'p'][..]));
        assert_eq!(with.get(1), Some(&19));
    }
}

//! TOML → [`Scenario`], with file:line on every error.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mqttkit_codec::PacketType;
use serde::Deserialize;
use toml::Spanned;

use super::{Action, Expectation, Level, LoadError, Purpose, Scenario, Step};
use crate::matcher::{PacketPattern, ValuePattern, parse_hex, parse_value_pattern};
use crate::outgoing::{
    BytesSpec, ConnectSpec, FilterSpec, IntSpec, OutgoingPacket, PropertySpec, PropertyValueSpec, WillSpec, parse_raw,
};
use crate::properties::{self, PropertyKind};
use crate::version::Version;

/// Default seconds to wait for an expected packet (before `--time-scale`).
pub const DEFAULT_EXPECT_TIMEOUT: f64 = 3.0;
/// Default seconds of silence for `expect_nothing`.
pub const DEFAULT_NOTHING_WINDOW: f64 = 1.0;
/// First packet id the parser assigns automatically (ids below are left to authors).
const FIRST_AUTO_PACKET_ID: u64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioDoc {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    description: Option<String>,
    level: Spanned<String>,
    versions: Spanned<Vec<String>>,
    statements: Spanned<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
    step: Spanned<Vec<Spanned<toml::Table>>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count().saturating_add(1)
}

/// Parse one scenario file.
pub fn parse_scenario(file: &str, text: &str) -> Result<Scenario, Vec<LoadError>> {
    let mut parser = StepParser::default();
    let (mut scenario, steps) =
        parse_document(file, text, |table, line, versions| parser.parse_step(table, line, versions))?;
    scenario.steps = steps.into_iter().flatten().collect();
    Ok(scenario)
}

/// Parse a scenario file's header (id, title, level, versions, statements, tags, requires)
/// and hand each `[[step]]` table, with its line and the scenario's versions, to
/// `parse_step`. The returned scenario has no steps: they come back beside it, so another
/// step vocabulary (the server role's, in `crate::clients`) shares the header rules and
/// the file:line errors.
pub(crate) fn parse_document<S>(
    file: &str,
    text: &str,
    mut parse_step: impl FnMut(&toml::Table, usize, &[Version]) -> Result<S, String>,
) -> Result<(Scenario, Vec<S>), Vec<LoadError>> {
    let error = |line: usize, message: String| LoadError { file: file.to_owned(), line, message };
    let doc: ScenarioDoc = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(text, span.start));
        vec![error(line, e.message().to_owned())]
    })?;
    let mut errors = Vec::new();
    let id = doc.id.get_ref().clone();
    if id.is_empty()
        || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
    {
        errors.push(error(line_of(text, doc.id.span().start), format!("id `{id}` must be lower-case [a-z0-9.-_]")));
    }
    let level = match doc.level.get_ref().as_str() {
        "MUST" | "MUST NOT" => Level::Must,
        "SHOULD" | "SHOULD NOT" => Level::Should,
        "MAY" => Level::May,
        other => {
            errors.push(error(
                line_of(text, doc.level.span().start),
                format!("level `{other}` is not MUST, SHOULD or MAY"),
            ));
            Level::Must
        }
    };
    let versions_line = line_of(text, doc.versions.span().start);
    let mut versions = Vec::new();
    for v in doc.versions.get_ref() {
        match v.parse::<Version>() {
            Ok(v) if !versions.contains(&v) => versions.push(v),
            Ok(_) => errors.push(error(versions_line, format!("version {v} listed twice"))),
            Err(e) => errors.push(error(versions_line, e)),
        }
    }
    if versions.is_empty() {
        errors.push(error(versions_line, "`versions` must list 3.1.1 and/or 5.0".into()));
    }
    let statements_line = line_of(text, doc.statements.span().start);
    let mut statements = BTreeMap::new();
    for (key, ids) in doc.statements.get_ref() {
        match key.parse::<Version>() {
            Ok(v) if versions.contains(&v) => {
                statements.insert(v, ids.clone());
            }
            Ok(v) => {
                errors.push(error(statements_line, format!("statements given for {v}, which is not in `versions`")))
            }
            Err(e) => errors.push(error(statements_line, e)),
        }
    }
    for v in &versions {
        if statements.get(v).is_none_or(Vec::is_empty) {
            errors.push(error(statements_line, format!("no statement ids for version {v} (add `\"{v}\" = [...]`)")));
        }
    }
    let mut steps = Vec::new();
    if doc.step.get_ref().is_empty() {
        errors.push(error(line_of(text, doc.step.span().start), "a scenario needs at least one [[step]]".into()));
    }
    for spanned in doc.step.get_ref() {
        let line = line_of(text, spanned.span().start);
        match parse_step(spanned.get_ref(), line, &versions) {
            Ok(step) => steps.push(step),
            Err(message) => errors.push(error(line, message)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let scenario = Scenario {
        id,
        title: doc.title,
        description: doc.description,
        level,
        versions,
        statements,
        tags: doc.tags,
        requires: doc.requires,
        steps: Vec::new(),
        source: file.to_owned(),
    };
    Ok((scenario, steps))
}

/// Reads a table's keys, remembering which were used so leftovers can be refused.
pub(crate) struct Fields<'a> {
    table: &'a toml::Table,
    used: BTreeSet<&'a str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(table: &'a toml::Table) -> Self {
        Self { table, used: BTreeSet::new() }
    }

    pub(crate) fn get(&mut self, key: &'a str) -> Option<&'a toml::Value> {
        let value = self.table.get(key)?;
        self.used.insert(key);
        Some(value)
    }

    pub(crate) fn string(&mut self, key: &'a str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("`{key}` must be a string, not `{other}`")),
        }
    }

    pub(crate) fn boolean(&mut self, key: &'a str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(format!("`{key}` must be true or false, not `{other}`")),
        }
    }

    pub(crate) fn integer(&mut self, key: &'a str, max: u64) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => match u64::try_from(*i) {
                Ok(v) if v <= max => Ok(Some(v)),
                _ => Err(format!("`{key}` must be in 0..={max}, not {i}")),
            },
            Some(other) => Err(format!("`{key}` must be an integer, not `{other}`")),
        }
    }

    pub(crate) fn int_spec(&mut self, key: &'a str) -> Result<Option<IntSpec>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => int_spec(value).map(Some).map_err(|e| format!("`{key}`: {e}")),
        }
    }

    pub(crate) fn seconds(&mut self, key: &'a str, default: f64) -> Result<f64, String> {
        let value = match self.get(key) {
            None => return Ok(default),
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(toml::Value::Float(f)) => *f,
            Some(other) => return Err(format!("`{key}` must be a number of seconds, not `{other}`")),
        };
        if value.is_finite() && (0.0..=3600.0).contains(&value) {
            Ok(value)
        } else {
            Err(format!("`{key}` must be between 0 and 3600 seconds"))
        }
    }

    pub(crate) fn finish(self, what: &str) -> Result<(), String> {
        let unknown: Vec<&str> = self.table.keys().map(String::as_str).filter(|k| !self.used.contains(k)).collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "unknown key(s) {} for {what}",
                unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ))
        }
    }
}

/// A step's `versions = ["5.0"]`: the versions (of the scenario's) it applies to.
pub(crate) fn step_versions(fields: &mut Fields<'_>, versions: &[Version]) -> Result<Option<Vec<Version>>, String> {
    match fields.get("versions") {
        None => Ok(None),
        Some(toml::Value::Array(items)) => {
            let parsed: Vec<Version> = items
                .iter()
                .map(|v| v.as_str().ok_or("`versions` entries must be strings".to_owned())?.parse::<Version>())
                .collect::<Result<_, _>>()?;
            if let Some(v) = parsed.iter().find(|v| !versions.contains(v)) {
                return Err(format!("step restricted to {v}, which the scenario does not run under"));
            }
            Ok(Some(parsed))
        }
        Some(_) => Err("`versions` must be a list like [\"5.0\"]".into()),
    }
}

pub(crate) fn int_spec(value: &toml::Value) -> Result<IntSpec, String> {
    match value {
        toml::Value::Integer(i) => u64::try_from(*i).map(IntSpec::Literal).map_err(|_| format!("{i} is negative")),
        toml::Value::String(s) => Ok(IntSpec::Template(s.clone())),
        other => Err(format!("expected an integer or a \"{{variable}}\", not `{other}`")),
    }
}

pub(crate) fn payload(fields: &mut Fields<'_>) -> Result<BytesSpec, String> {
    let text = fields.string("payload")?;
    let hex = fields.string("payload_hex")?;
    let size = fields.integer("payload_size", 268_435_455)?;
    match (text, hex, size) {
        (Some(t), None, None) => Ok(BytesSpec::Text(t)),
        (None, Some(h), None) => Ok(BytesSpec::Hex(parse_hex(&h)?)),
        (None, None, Some(n)) => Ok(BytesSpec::Repeat { byte: b'x', len: usize::try_from(n).unwrap_or(usize::MAX) }),
        (None, None, None) => Ok(BytesSpec::Text(String::new())),
        _ => Err("give only one of `payload`, `payload_hex`, `payload_size`".into()),
    }
}

pub(crate) fn property_specs(value: Option<&toml::Value>) -> Result<Vec<PropertySpec>, String> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let toml::Value::Table(table) = value else {
        return Err("`properties` must be a table, e.g. { message_expiry_interval = 10 }".into());
    };
    let mut specs = Vec::new();
    for (name, value) in table {
        let (id, kind) = properties::by_name(name).ok_or_else(|| format!("unknown property `{name}`"))?;
        match kind {
            PropertyKind::Utf8Pair => {
                let pairs: Vec<(String, String)> = match value {
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|item| match item.as_array().map(Vec::as_slice) {
                            Some([toml::Value::String(k), toml::Value::String(v)]) => Ok((k.clone(), v.clone())),
                            _ => Err(format!("`{name}` entries must be [\"key\", \"value\"] pairs")),
                        })
                        .collect::<Result<_, _>>()?,
                    toml::Value::Table(map) => map
                        .iter()
                        .map(|(k, v)| match v {
                            toml::Value::String(v) => Ok((k.clone(), v.clone())),
                            _ => Err(format!("`{name}` values must be strings")),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(format!("`{name}` must be a list of [key, value] pairs")),
                };
                for (k, v) in pairs {
                    specs.push(PropertySpec { id, kind, value: PropertyValueSpec::Pair(k, v) });
                }
            }
            PropertyKind::Utf8 | PropertyKind::Binary => {
                let bytes = match value {
                    toml::Value::String(s) => BytesSpec::Text(s.clone()),
                    toml::Value::Table(t) => match t.get("hex").and_then(toml::Value::as_str) {
                        Some(h) => BytesSpec::Hex(parse_hex(h)?),
                        None => return Err(format!("`{name}` must be a string or {{ hex = \"..\" }}")),
                    },
                    _ => return Err(format!("`{name}` must be a string")),
                };
                specs.push(PropertySpec { id, kind, value: PropertyValueSpec::Bytes(bytes) });
            }
            _ => {
                let spec = int_spec(value).map_err(|e| format!("`{name}`: {e}"))?;
                specs.push(PropertySpec { id, kind, value: PropertyValueSpec::Int(spec) });
            }
        }
    }
    Ok(specs)
}

fn expectation_from(fields: &mut Fields<'_>) -> Result<Option<Expectation>, String> {
    let packet = fields.get("packet");
    let any_of = fields.get("any_of");
    let packets = fields.get("packets");
    let in_any_order = fields.boolean("in_any_order", false)?;
    let ack_held_after = match fields.get("ack_held_after") {
        None => None,
        Some(_) => Some(fields.seconds("ack_held_after", 1.0)?),
    };
    let table_pattern = |value: &toml::Value| -> Result<Vec<PacketPattern>, String> {
        match value {
            toml::Value::Table(t) if t.contains_key("any_of") && t.len() == 1 => match t.get("any_of") {
                Some(toml::Value::Array(items)) => items.iter().map(single_pattern).collect(),
                _ => Err("`any_of` must be a list of packet patterns".into()),
            },
            other => Ok(vec![single_pattern(other)?]),
        }
    };
    let list = match (packet, any_of, packets) {
        (Some(p), None, None) => vec![vec![single_pattern(p)?]],
        (None, Some(toml::Value::Array(items)), None) => {
            vec![items.iter().map(single_pattern).collect::<Result<_, _>>()?]
        }
        (None, None, Some(toml::Value::Array(items))) => items.iter().map(table_pattern).collect::<Result<_, _>>()?,
        (None, None, None) => return Ok(None),
        _ => return Err("give exactly one of `packet = {..}`, `any_of = [{..}, ..]`, `packets = [{..}, ..]`".into()),
    };
    if list.is_empty() {
        return Err("expect at least one packet".into());
    }
    Ok(Some(Expectation { packets: list, in_any_order, ack_held_after }))
}

fn single_pattern(value: &toml::Value) -> Result<PacketPattern, String> {
    match value {
        toml::Value::Table(t) => PacketPattern::parse(t),
        other => Err(format!("a packet pattern must be a table like {{ type = \"PUBACK\" }}, not `{other}`")),
    }
}

/// Turns step tables into steps, assigning packet ids per client.
#[derive(Default)]
pub(crate) struct StepParser {
    next_packet_id: HashMap<String, u64>,
}

const ACTIONS: &[&str] = &[
    "open",
    "connect",
    "send",
    "expect",
    "expect_nothing",
    "expect_closed",
    "wait",
    "disconnect",
    "drop",
    "publish",
    "subscribe",
    "unsubscribe",
];

impl StepParser {
    fn auto_id(&mut self, client: &str) -> IntSpec {
        let next = self.next_packet_id.entry(client.to_owned()).or_insert(FIRST_AUTO_PACKET_ID);
        let id = *next;
        *next = next.saturating_add(1);
        IntSpec::Literal(id)
    }

    fn parse_step(&mut self, table: &toml::Table, line: usize, versions: &[Version]) -> Result<Vec<Step>, String> {
        let present: Vec<&str> = ACTIONS.iter().copied().filter(|a| table.contains_key(*a)).collect();
        let action_name = match present.as_slice() {
            [one] => *one,
            [] => return Err(format!("a step needs one action key: {}", ACTIONS.join(", "))),
            many => return Err(format!("a step has one action, this one has {}", many.join(" and "))),
        };
        let mut fields = Fields::new(table);
        let step_versions = step_versions(&mut fields, versions)?;
        let note = fields.string("note")?;
        let target = match fields.get(action_name) {
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(toml::Value::Integer(_) | toml::Value::Float(_)) if action_name == "wait" => None,
            _ => return Err(format!("`{action_name}` must name a client, e.g. {action_name} = \"sub\"")),
        };
        let client = target.clone().unwrap_or_default();
        if target.is_some() {
            check_client_name(&client)?;
        }
        let step = |action: Action| Step { line, versions: step_versions.clone(), note: note.clone(), action };
        let steps = match action_name {
            "open" => vec![step(Action::Open { client })],
            "connect" => {
                let connect = connect_spec(&mut fields)?;
                let connack = match fields.get("connack") {
                    None => None,
                    Some(value @ toml::Value::Table(_)) => Some(Expectation::one_of(vec![single_pattern(value)?])),
                    Some(toml::Value::Array(items)) => {
                        Some(Expectation::one_of(items.iter().map(single_pattern).collect::<Result<_, _>>()?))
                    }
                    Some(_) => return Err("`connack` must be a packet pattern or a list of alternatives".into()),
                };
                let timeout = fields.seconds("timeout", DEFAULT_EXPECT_TIMEOUT)?;
                vec![step(Action::Connect { client, connect, connack, timeout })]
            }
            "send" => {
                let packet = if let Some(raw) = fields.string("raw")? {
                    OutgoingPacket::Raw(parse_raw(&raw)?)
                } else {
                    match fields.get("packet") {
                        Some(toml::Value::Table(t)) => self.outgoing(&client, t)?,
                        _ => return Err("`send` needs `packet = { type = \"..\", .. }` or `raw = \"hex\"`".into()),
                    }
                };
                vec![step(Action::Send { client, packet, deliberate: true })]
            }
            "expect" => {
                let expectation =
                    expectation_from(&mut fields)?.ok_or("`expect` needs `packet`, `any_of` or `packets`")?;
                let timeout = fields.seconds("timeout", DEFAULT_EXPECT_TIMEOUT)?;
                let ack = fields.boolean("ack", false)?;
                let purpose =
                    if fields.boolean("precondition", false)? { Purpose::Precondition } else { Purpose::Subject };
                vec![step(Action::Expect { client, expectation, timeout, ack, purpose })]
            }
            "expect_nothing" => {
                let window = fields.seconds("for", DEFAULT_NOTHING_WINDOW)?;
                vec![step(Action::ExpectNothing { client, window })]
            }
            "expect_closed" => {
                let disconnect_reason = fields.get("disconnect_reason").map(parse_value_pattern).transpose()?;
                let allow = match fields.get("allow") {
                    None => Vec::new(),
                    Some(toml::Value::Array(items)) => items.iter().map(single_pattern).collect::<Result<_, _>>()?,
                    Some(_) => return Err("`allow` must be a list of packet patterns".into()),
                };
                let timeout = fields.seconds("timeout", DEFAULT_EXPECT_TIMEOUT)?;
                vec![step(Action::ExpectClosed { client, disconnect_reason, allow, timeout })]
            }
            "wait" => {
                let seconds = fields.seconds("wait", 0.0)?;
                vec![step(Action::Wait { seconds })]
            }
            "disconnect" => {
                let reason_code = fields.integer("reason_code", 255)?.unwrap_or(0) as u8;
                let properties = property_specs(fields.get("properties"))?;
                vec![step(Action::Disconnect {
                    client,
                    packet: OutgoingPacket::Disconnect { reason_code, properties },
                })]
            }
            "drop" => vec![step(Action::Drop { client })],
            "publish" => self.publish_shortcut(&client, &mut fields)?.into_iter().map(step).collect(),
            "subscribe" => self.subscribe_shortcut(&client, &mut fields)?.into_iter().map(step).collect(),
            "unsubscribe" => self.unsubscribe_shortcut(&client, &mut fields)?.into_iter().map(step).collect(),
            _ => return Err(format!("unknown action `{action_name}`")),
        };
        fields.finish(&format!("`{action_name}`"))?;
        Ok(steps)
    }

    /// A typed packet from `{ type = "PUBLISH", .. }` (packet ids left out are assigned
    /// per `client` from 1000 upwards).
    pub(crate) fn outgoing(&mut self, client: &str, table: &toml::Table) -> Result<OutgoingPacket, String> {
        let mut fields = Fields::new(table);
        let kind = fields.string("type")?.ok_or("a packet needs `type`")?.to_ascii_uppercase();
        let packet = match kind.as_str() {
            "CONNECT" => OutgoingPacket::Connect(connect_spec(&mut fields)?),
            "PUBLISH" => self.publish_packet(client, &mut fields)?,
            "PUBACK" | "PUBREC" | "PUBREL" | "PUBCOMP" => {
                let kind = match kind.as_str() {
                    "PUBACK" => PacketType::PubAck,
                    "PUBREC" => PacketType::PubRec,
                    "PUBREL" => PacketType::PubRel,
                    _ => PacketType::PubComp,
                };
                OutgoingPacket::PublishResponse {
                    kind,
                    packet_id: fields.int_spec("packet_id")?.ok_or("`packet_id` is required")?,
                    reason_code: fields.integer("reason_code", 255)?.unwrap_or(0) as u8,
                    properties: property_specs(fields.get("properties"))?,
                }
            }
            "SUBSCRIBE" => {
                let default_qos = fields.integer("qos", 3)?.unwrap_or(0) as u8;
                OutgoingPacket::Subscribe {
                    packet_id: match fields.int_spec("packet_id")? {
                        Some(id) => id,
                        None => self.auto_id(client),
                    },
                    filters: filter_specs(fields.get("filters"), default_qos)?,
                    properties: property_specs(fields.get("properties"))?,
                }
            }
            "UNSUBSCRIBE" => OutgoingPacket::Unsubscribe {
                packet_id: match fields.int_spec("packet_id")? {
                    Some(id) => id,
                    None => self.auto_id(client),
                },
                filters: string_list(fields.get("filters"))?,
                properties: property_specs(fields.get("properties"))?,
            },
            "PINGREQ" => OutgoingPacket::PingReq,
            "DISCONNECT" => OutgoingPacket::Disconnect {
                reason_code: fields.integer("reason_code", 255)?.unwrap_or(0) as u8,
                properties: property_specs(fields.get("properties"))?,
            },
            "AUTH" => OutgoingPacket::Auth {
                reason_code: fields.integer("reason_code", 255)?.unwrap_or(0) as u8,
                properties: property_specs(fields.get("properties"))?,
            },
            other => return Err(format!("cannot send packet type `{other}` (use `raw`)")),
        };
        fields.finish(&format!("a {kind} packet"))?;
        Ok(packet)
    }

    fn publish_packet(&mut self, client: &str, fields: &mut Fields<'_>) -> Result<OutgoingPacket, String> {
        let topic = fields.string("topic")?.ok_or("a PUBLISH needs `topic`")?;
        let qos = fields.integer("qos", 2)?.unwrap_or(0) as u8;
        let packet_id = match (fields.int_spec("packet_id")?, qos) {
            (Some(id), _) => Some(id),
            (None, 0) => None,
            (None, _) => Some(self.auto_id(client)),
        };
        Ok(OutgoingPacket::Publish {
            topic,
            payload: payload(fields)?,
            qos,
            retain: fields.boolean("retain", false)?,
            dup: fields.boolean("dup", false)?,
            packet_id,
            properties: property_specs(fields.get("properties"))?,
        })
    }

    /// `publish = "c"`: send, then complete the QoS 1 / 2 flow unless `ack = false`.
    fn publish_shortcut(&mut self, client: &str, fields: &mut Fields<'_>) -> Result<Vec<Action>, String> {
        let packet = self.publish_packet(client, fields)?;
        let complete_flow = fields.boolean("ack", true)?;
        let timeout = fields.seconds("timeout", DEFAULT_EXPECT_TIMEOUT)?;
        let (qos, id) = match &packet {
            OutgoingPacket::Publish { qos, packet_id, .. } => (*qos, packet_id.clone()),
            _ => (0, None),
        };
        let mut actions = vec![Action::Send { client: client.to_owned(), packet, deliberate: false }];
        let id_pattern = match &id {
            Some(IntSpec::Literal(v)) => ValuePattern::Int(*v),
            Some(IntSpec::Template(t)) => ValuePattern::Text(t.clone()),
            None => ValuePattern::Present,
        };
        let success = ValuePattern::Range { min: None, max: Some(0x7F) };
        let expect = |kind: &str| Action::Expect {
            client: client.to_owned(),
            expectation: Expectation::one_of(vec![
                PacketPattern::of_kind(kind)
                    .with_field("packet_id", id_pattern.clone())
                    .with_field("reason_code", success.clone()),
            ]),
            timeout,
            ack: false,
            purpose: Purpose::PublishFlow,
        };
        if complete_flow && qos == 1 {
            actions.push(expect("PUBACK"));
        } else if complete_flow && qos == 2 {
            let id = id.ok_or("QoS 2 needs a packet id")?;
            actions.push(expect("PUBREC"));
            actions.push(Action::Send {
                client: client.to_owned(),
                packet: OutgoingPacket::PublishResponse {
                    kind: PacketType::PubRel,
                    packet_id: id,
                    reason_code: 0,
                    properties: Vec::new(),
                },
                deliberate: false,
            });
            actions.push(expect("PUBCOMP"));
        }
        Ok(actions)
    }

    /// `subscribe = "c"`: SUBSCRIBE, then SUBACK granting at most the requested QoS (or
    /// the `suback` pattern).
    fn subscribe_shortcut(&mut self, client: &str, fields: &mut Fields<'_>) -> Result<Vec<Action>, String> {
        let default_qos = fields.integer("qos", 3)?.unwrap_or(0) as u8;
        let filters = filter_specs(fields.get("filters"), default_qos)?;
        let packet_id = match fields.int_spec("packet_id")? {
            Some(id) => id,
            None => self.auto_id(client),
        };
        let properties = property_specs(fields.get("properties"))?;
        let timeout = fields.seconds("timeout", DEFAULT_EXPECT_TIMEOUT)?;
        let suback = match fields.get("suback") {
            Some(value) => single_pattern(value)?,
            None => PacketPattern::of_kind("SUBACK").with_field(
                "reason_codes",
                ValuePattern::Array(
                    filters
                        .iter()
                        .map(|f| ValuePattern::Range { min: None, max: Some(u64::from(f.options & 0b11)) })
                        .collect(),
                ),
            ),
        };
        let suback = suback.with_field("packet_id", int_pattern(&packet_id));
        // With the default SUBACK pattern the subscription is a precondition; a `suback`
        // pattern makes the SUBACK itself the subject.
        let purpose = if fields.get("suback").is_some() {
            Purpose::Subject
        } else {
            Purpose::Suback { filters: filters.iter().map(|f| (f.filter.clone(), f.options & 0b11)).collect() }
        };
        Ok(vec![
            Action::Send {
                client: client.to_owned(),
                packet: OutgoingPacket::Subscribe { packet_id, filters, properties },
                deliberate: false,
            },
            Action::Expect {
                client: client.to_owned(),
                expectation: Expectation::one_of(vec![suback]),
                timeout,
                ack: false,
                purpose,
            },
        ])
    }

    fn unsubscribe_shortcut(&mut self, client: &str, fields: &mut Fields<'_>) -> Result<Vec<Action>, String> {
        let filters = string_list(fields.get("filters"))?;
        let packet_id = match fields.int_spec("packet_id")? {
            Some(id) => id,
            None => self.auto_id(client),
        };
        let properties = property_specs(fields.get("properties"))?;
        let timeout = fields.seconds("timeout", DEFAULT_EXPECT_TIMEOUT)?;
        let unsuback = match fields.get("unsuback") {
            Some(value) => single_pattern(value)?,
            None => PacketPattern::of_kind("UNSUBACK").with_field(
                "reason_codes",
                ValuePattern::AnyOf(vec![
                    ValuePattern::Array(Vec::new()),
                    ValuePattern::Array(
                        filters.iter().map(|_| ValuePattern::Range { min: None, max: Some(0x7F) }).collect(),
                    ),
                ]),
            ),
        };
        let purpose = if fields.get("unsuback").is_some() { Purpose::Subject } else { Purpose::Unsuback };
        let unsuback = unsuback.with_field("packet_id", int_pattern(&packet_id));
        Ok(vec![
            Action::Send {
                client: client.to_owned(),
                packet: OutgoingPacket::Unsubscribe { packet_id, filters, properties },
                deliberate: false,
            },
            Action::Expect {
                client: client.to_owned(),
                expectation: Expectation::one_of(vec![unsuback]),
                timeout,
                ack: false,
                purpose,
            },
        ])
    }
}

fn int_pattern(spec: &IntSpec) -> ValuePattern {
    match spec {
        IntSpec::Literal(v) => ValuePattern::Int(*v),
        IntSpec::Template(t) => ValuePattern::Text(t.clone()),
    }
}

fn check_client_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 10 || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "client name `{name}` must be 1-10 ASCII letters or digits (it is appended to the prefix to form client ids)"
        ));
    }
    Ok(())
}

pub(crate) fn string_list(value: Option<&toml::Value>) -> Result<Vec<String>, String> {
    match value {
        Some(toml::Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| "`filters` entries must be strings".to_owned()))
            .collect(),
        Some(toml::Value::String(s)) => Ok(vec![s.clone()]),
        _ => Err("`filters` must be a non-empty list of topic filters".into()),
    }
}

pub(crate) fn filter_specs(value: Option<&toml::Value>, default_qos: u8) -> Result<Vec<FilterSpec>, String> {
    let items = match value {
        Some(toml::Value::Array(items)) if !items.is_empty() => items.clone(),
        Some(single @ (toml::Value::String(_) | toml::Value::Table(_))) => vec![single.clone()],
        _ => return Err("`filters` must be a non-empty list of filters".into()),
    };
    items
        .iter()
        .map(|item| match item {
            toml::Value::String(filter) => Ok(FilterSpec { filter: filter.clone(), options: default_qos }),
            toml::Value::Table(table) => {
                let mut fields = Fields::new(table);
                let filter = fields.string("filter")?.ok_or("a filter table needs `filter`")?;
                let options = match fields.integer("options", 255)? {
                    Some(raw) => raw as u8,
                    None => {
                        let qos = fields.integer("qos", 3)?.map_or(default_qos, |q| q as u8);
                        let no_local = fields.boolean("no_local", false)?;
                        let retain_as_published = fields.boolean("retain_as_published", false)?;
                        let retain_handling = fields.integer("retain_handling", 3)?.unwrap_or(0) as u8;
                        qos | u8::from(no_local) << 2 | u8::from(retain_as_published) << 3 | retain_handling << 4
                    }
                };
                fields.finish("a filter")?;
                Ok(FilterSpec { filter, options })
            }
            other => Err(format!("a filter must be a string or a table, not `{other}`")),
        })
        .collect()
}

pub(crate) fn connect_spec(fields: &mut Fields<'_>) -> Result<ConnectSpec, String> {
    let defaults = ConnectSpec::default();
    let will = match fields.get("will") {
        None => None,
        Some(toml::Value::Table(table)) => {
            let mut will_fields = Fields::new(table);
            let will = WillSpec {
                topic: will_fields.string("topic")?.ok_or("a will needs `topic`")?,
                payload: payload(&mut will_fields)?,
                qos: will_fields.integer("qos", 2)?.unwrap_or(0) as u8,
                retain: will_fields.boolean("retain", false)?,
                properties: property_specs(will_fields.get("properties"))?,
            };
            will_fields.finish("a will")?;
            Some(will)
        }
        Some(_) => return Err("`will` must be a table { topic = .., payload = .., qos = .., retain = .. }".into()),
    };
    let password = match fields.get("password") {
        None => None,
        Some(toml::Value::String(s)) => Some(BytesSpec::Text(s.clone())),
        Some(toml::Value::Table(t)) => match t.get("hex").and_then(toml::Value::as_str) {
            Some(h) => Some(BytesSpec::Hex(parse_hex(h)?)),
            None => return Err("`password` must be a string or { hex = \"..\" }".into()),
        },
        Some(_) => return Err("`password` must be a string".into()),
    };
    Ok(ConnectSpec {
        client_id: fields.string("client_id")?,
        clean_start: fields.boolean("clean_start", defaults.clean_start)?,
        keep_alive: fields.integer("keep_alive", 65535)?.map_or(defaults.keep_alive, |k| k as u16),
        username: fields.string("username")?,
        password,
        will,
        properties: property_specs(fields.get("properties"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "demo.ok"
title = "demo"
level = "MUST"
versions = ["3.1.1", "5.0"]
statements = { "3.1.1" = ["MQTT-3.3.1-5"], "5.0" = ["MQTT-3.3.1-5"] }
tags = ["retain"]

[[step]]
connect = "pub"

[[step]]
publish = "pub"
topic = "{prefix}/a"
qos = 2
"#;

    #[test]
    fn parses_and_expands_shortcuts() {
        let scenario = parse_scenario("demo.toml", GOOD).expect("valid");
        // connect + (send, PUBREC, PUBREL, PUBCOMP)
        assert_eq!(scenario.steps.len(), 5);
        assert_eq!(scenario.steps.get(1).map(|s| s.line), Some(12), "the step's [[step]] header");
    }

    #[test]
    fn errors_carry_the_line() {
        let bad = GOOD.replace("qos = 2", "qos = 2\ncolour = \"red\"");
        let errors = parse_scenario("demo.toml", &bad).expect_err("unknown key");
        let first = errors.first().expect("one error");
        assert_eq!(first.line, 12, "{first}");
        assert!(first.message.contains("colour"), "{first}");
        let bad = GOOD.replace("level = \"MUST\"", "level = \"MUSTN'T\"");
        let errors = parse_scenario("demo.toml", &bad).expect_err("bad level");
        assert_eq!(errors.first().map(|e| e.line), Some(4));
        let bad = GOOD.replace("title = \"demo\"", "title = ");
        let errors = parse_scenario("demo.toml", &bad).expect_err("bad toml");
        assert_eq!(errors.first().map(|e| e.line), Some(3));
    }
}

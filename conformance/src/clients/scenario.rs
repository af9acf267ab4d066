//! Client scenarios: the runner plays the server. Same file header as the broker scenarios
//! (id, title, level, versions, statements, tags, requires; parsed by the shared parser),
//! with steps of the server role: drive the client through its driver, accept its
//! connections, answer or withhold, send any packet, and expect packets and driver events
//! with the shared matcher. See `conformance/CLIENT-DRIVERS.md` and `SCENARIOS.md`.

use mqttkit_codec::PacketType;
use serde_json::{Value as Json, json};

use crate::matcher::{CLOSED, PacketPattern, ValuePattern, parse_value_pattern};
use crate::observed::MALFORMED;
use crate::outgoing::{IntSpec, OutgoingPacket, PropertySpec, parse_raw};
use crate::scenario::parse::{self, Fields, StepParser};
use crate::scenario::{LoadError, Scenario};
use crate::version::Version;

/// Seconds to wait for a client packet, a connection or a driver event (before
/// `--time-scale`). Longer than the broker side's 3 s: client libraries run timers and
/// threads of their own.
pub const DEFAULT_TIMEOUT: f64 = 5.0;
/// Seconds to wait for the driver's answer to a command.
pub const DRIVER_REPLY_TIMEOUT: f64 = 10.0;

/// Packets a client sends, with the fields a pattern may name.
pub const CLIENT_PACKETS: &[(&str, &[&str])] = &[
    (
        "CONNECT",
        &[
            "protocol_version",
            "client_id",
            "clean_start",
            "keep_alive",
            "username",
            "password",
            "will",
            "will_topic",
            "will_payload",
            "will_qos",
            "will_retain",
            "will_will_delay_interval",
            "will_message_expiry_interval",
            "will_content_type",
            "will_response_topic",
            "will_correlation_data",
            "will_payload_format_indicator",
            "will_user_property",
            "size",
        ],
    ),
    ("PUBLISH", &["topic", "qos", "retain", "dup", "packet_id", "payload", "size"]),
    ("PUBACK", &["packet_id", "reason_code", "size"]),
    ("PUBREC", &["packet_id", "reason_code", "size"]),
    ("PUBREL", &["packet_id", "reason_code", "size"]),
    ("PUBCOMP", &["packet_id", "reason_code", "size"]),
    ("SUBSCRIBE", &["packet_id", "filters", "qos", "no_local", "retain_as_published", "retain_handling", "size"]),
    ("UNSUBSCRIBE", &["packet_id", "filters", "size"]),
    ("PINGREQ", &["size"]),
    ("DISCONNECT", &["reason_code", "size"]),
    ("AUTH", &["reason_code", "size"]),
    (MALFORMED, &[]),
    (CLOSED, &[]),
];

/// Events a driver reports, with their fields.
pub const DRIVER_EVENTS: &[(&str, &[&str])] = &[
    ("CONNECTED", &["session_present", "assigned_client_id"]),
    ("CONNECTION_LOST", &["reason", "reason_code"]),
    ("MESSAGE", &["topic", "qos", "retain", "dup", "payload"]),
    ("PUBLISHED", &["reason_code", "command"]),
    ("SUBSCRIBED", &["reason_codes", "command"]),
    ("UNSUBSCRIBED", &["reason_codes", "command"]),
    ("DISCONNECTED", &["command"]),
    ("ERROR", &["message", "command"]),
];

/// A client scenario: the shared header (with no broker steps) and server-role steps.
#[derive(Debug, Clone)]
pub struct ClientScenario {
    /// Id, title, level, versions, statements, tags, requires, source.
    pub meta: Scenario,
    /// Steps, shortcuts expanded.
    pub steps: Vec<ServerStep>,
}

/// One step of the server role.
#[derive(Debug, Clone)]
pub struct ServerStep {
    /// Line of its `[[step]]` in the file.
    pub line: usize,
    /// Versions it applies to (`None`: all of the scenario's).
    pub versions: Option<Vec<Version>>,
    /// Printed with a failure of this step.
    pub note: Option<String>,
    /// What to do.
    pub action: ServerAction,
    /// Whether a failure of this step is the scenario's subject (fail) or a precondition
    /// the client may legitimately not meet (inconclusive).
    pub precondition: bool,
}

/// A packet the runner sends as the server.
#[derive(Debug, Clone)]
pub enum ServerPacket {
    /// CONNACK.
    ConnAck {
        /// Session Present.
        session_present: bool,
        /// Reason code (3.1.1 return code).
        reason_code: u8,
        /// 5.0 properties.
        properties: Vec<PropertySpec>,
    },
    /// SUBACK or UNSUBACK.
    Ack {
        /// Which.
        kind: PacketType,
        /// Packet id (usually the captured `{sub}`).
        packet_id: IntSpec,
        /// Reason codes (3.1.1 UNSUBACK: none).
        reason_codes: Vec<u8>,
        /// 5.0 properties.
        properties: Vec<PropertySpec>,
    },
    /// PINGRESP.
    PingResp,
    /// PUBLISH, PUBACK…PUBCOMP, DISCONNECT, AUTH or raw bytes (the broker side's types).
    Common(OutgoingPacket),
}

/// What a server-role step does.
#[derive(Debug, Clone)]
pub enum ServerAction {
    /// Send a command to the driver (a JSON template; strings may hold `{variables}`).
    Drive {
        /// The command.
        command: Json,
        /// Whether the library refusing it (an `error` answer) is acceptable: the scenario
        /// goes on and checks the wire. Otherwise a refusal is inconclusive.
        may_fail: bool,
        /// How many times, and seconds between.
        repeat: u32,
        /// Seconds between repeats.
        interval: f64,
    },
    /// Wait for the client's next connection.
    Accept {
        /// Seconds.
        timeout: f64,
    },
    /// Expect client packets (the shared expectation: in order or any order).
    Expect {
        /// Each entry: alternatives for one packet.
        packets: Vec<Vec<PacketPattern>>,
        /// Any order.
        in_any_order: bool,
        /// Seconds.
        timeout: f64,
        /// Acknowledge matched QoS 1/2 PUBLISH (PUBACK, or PUBREC then PUBCOMP on PUBREL).
        ack: bool,
        /// Packets passed over while waiting (another scenario's subject, e.g. PUBLISH
        /// packets beyond a quota while the subject is the SUBSCRIBE).
        ignore: Vec<PacketPattern>,
    },
    /// Expect driver events, in order or any order (events of other kinds in between are
    /// passed over and left for later steps).
    ExpectEvent {
        /// Each entry: alternatives for one event.
        events: Vec<Vec<PacketPattern>>,
        /// Any order.
        in_any_order: bool,
        /// Seconds.
        timeout: f64,
    },
    /// No driver event matching these patterns during a window.
    ExpectNoEvent {
        /// Forbidden events.
        events: Vec<PacketPattern>,
        /// Seconds.
        window: f64,
    },
    /// No packet (other than PINGREQ) and no close during a window.
    ExpectNothing {
        /// Seconds.
        window: f64,
    },
    /// No packet matching these patterns during a window; others are tolerated (and
    /// acknowledged with `ack`), a close ends the window early.
    ExpectNone {
        /// Forbidden packets.
        packets: Vec<PacketPattern>,
        /// Seconds.
        window: f64,
        /// Acknowledge tolerated QoS 1/2 PUBLISH packets.
        ack: bool,
    },
    /// The client closes the connection.
    ExpectClosed {
        /// Seconds.
        timeout: f64,
        /// Packets tolerated before the close (a DISCONNECT always is).
        allow: Vec<PacketPattern>,
        /// 5.0: the reason codes acceptable in a DISCONNECT before the close.
        disconnect_reason: Option<ValuePattern>,
    },
    /// Every gap between the client's packets on this connection, from its CONNECT until
    /// now, is within the keep alive (with the documented tolerance).
    ExpectGaps {
        /// The Keep Alive in force, seconds.
        keep_alive: f64,
    },
    /// Send a packet.
    Send {
        /// The packet.
        packet: ServerPacket,
        /// How many times.
        repeat: u32,
        /// Seconds between repeats.
        interval: f64,
    },
    /// Close the connection without DISCONNECT.
    Close,
    /// Sleep (scaled); the connection keeps being read and pings answered.
    Wait {
        /// Seconds.
        seconds: f64,
    },
    /// The named variables (captured values) are pairwise different, e.g. packet ids of
    /// packets in flight at the same time.
    Distinct {
        /// Variable names.
        names: Vec<String>,
    },
    /// The SUBSCRIBE / UNSUBSCRIBE of a shortcut: the filters asked for, in any order (an
    /// API may take them as a set), each with its QoS; answered with a SUBACK / UNSUBACK
    /// whose codes follow the packet's order. The packet id is captured as `{sub}`.
    Exchange {
        /// `SUBSCRIBE` or `UNSUBSCRIBE`, with any extra fields to check.
        pattern: PacketPattern,
        /// (filter template, requested QoS for SUBSCRIBE, reason code to answer).
        requested: Vec<(String, Option<u8>, u8)>,
        /// Seconds.
        timeout: f64,
    },
    /// Forget captured variables, so that the next capture binds them afresh (each
    /// `publish` shortcut captures its own `{pid}`).
    Forget {
        /// Variable names.
        names: Vec<String>,
    },
    /// Change the automatic answers.
    Auto {
        /// Answer PINGREQ with PINGRESP.
        pingresp: Option<bool>,
    },
}

const ACTIONS: &[&str] = &[
    "connect",
    "drive",
    "accept",
    "expect",
    "expect_event",
    "expect_no_event",
    "expect_nothing",
    "expect_none",
    "expect_closed",
    "expect_gaps",
    "send",
    "close",
    "wait",
    "auto",
    "distinct",
    "publish",
    "subscribe",
    "unsubscribe",
    "deliver",
    "disconnect",
];

/// Parse one client scenario file.
pub fn parse_client_scenario(file: &str, text: &str) -> Result<ClientScenario, Vec<LoadError>> {
    let mut parser = StepParser::default();
    let (meta, steps) =
        parse::parse_document(file, text, |table, line, versions| parse_step(&mut parser, table, line, versions))?;
    Ok(ClientScenario { meta, steps: steps.into_iter().flatten().collect() })
}

fn client_pattern(value: &toml::Value) -> Result<PacketPattern, String> {
    match value {
        toml::Value::Table(t) => PacketPattern::parse_among(t, CLIENT_PACKETS, "a packet type a client sends"),
        other => Err(format!("a packet pattern must be a table like {{ type = \"PUBLISH\" }}, not `{other}`")),
    }
}

/// `check = { .. }` / `message = { .. }`: extra fields for a shortcut's own pattern, whose
/// type is implied.
fn partial(
    value: &toml::Value,
    kind: &str,
    single: fn(&toml::Value) -> Result<PacketPattern, String>,
) -> Result<PacketPattern, String> {
    let mut value = value.clone();
    if let toml::Value::Table(t) = &mut value {
        t.entry("type").or_insert_with(|| toml::Value::String(kind.to_owned()));
    }
    single(&value)
}

fn event_pattern(value: &toml::Value) -> Result<PacketPattern, String> {
    match value {
        toml::Value::Table(t) => PacketPattern::parse_among(t, DRIVER_EVENTS, "a driver event"),
        other => Err(format!("an event pattern must be a table like {{ type = \"message\" }}, not `{other}`")),
    }
}

/// `{..}` (one), `[{..}, {..}]` (a sequence), each entry possibly `{ any_of = [..] }`.
fn sequence(
    value: &toml::Value,
    single: fn(&toml::Value) -> Result<PacketPattern, String>,
) -> Result<Vec<Vec<PacketPattern>>, String> {
    let entry = |value: &toml::Value| -> Result<Vec<PacketPattern>, String> {
        match value {
            toml::Value::Table(t) if t.len() == 1 && t.contains_key("any_of") => match t.get("any_of") {
                Some(toml::Value::Array(items)) => items.iter().map(single).collect(),
                _ => Err("`any_of` must be a list of patterns".into()),
            },
            other => Ok(vec![single(other)?]),
        }
    };
    let list = match value {
        toml::Value::Array(items) => items.iter().map(entry).collect::<Result<Vec<_>, _>>()?,
        other => vec![entry(other)?],
    };
    if list.is_empty() {
        return Err("expect at least one pattern".into());
    }
    Ok(list)
}

fn flat(
    value: &toml::Value,
    single: fn(&toml::Value) -> Result<PacketPattern, String>,
) -> Result<Vec<PacketPattern>, String> {
    match value {
        toml::Value::Array(items) => items.iter().map(single).collect(),
        other => Ok(vec![single(other)?]),
    }
}

/// Convert a TOML value to JSON (strings stay templates, expanded when the step runs).
fn to_json(value: &toml::Value) -> Json {
    match value {
        toml::Value::String(s) => json!(s),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => json!(d.to_string()),
        toml::Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        toml::Value::Table(t) => Json::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// Keys each driver command takes (besides `cmd`), checked when the file is loaded.
fn command_keys(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "connect" => &[
            "client_id",
            "clean_start",
            "session_expiry",
            "keep_alive",
            "ping_timeout",
            "username",
            "password",
            "will",
            "receive_maximum",
            "maximum_packet_size",
            "topic_alias_maximum",
            "topic_aliases",
            "auto_reconnect",
            "properties",
        ],
        "publish" => &["topic", "topic_size", "qos", "retain", "payload", "payload_hex", "payload_size", "properties"],
        "subscribe" => &["filters", "qos", "properties"],
        "unsubscribe" => &["filters", "properties"],
        "disconnect" => &["reason_code", "properties"],
        _ => return None,
    })
}

/// Build a driver command from a table of arguments: unknown keys refused, `payload_size`
/// turned into a payload, subscribe filters into `{filter, qos, …}` objects, and a
/// connect's client id defaulting to the run's `{prefix}`.
pub fn driver_command(name: &str, table: &toml::Table) -> Result<Json, String> {
    let keys = command_keys(name).ok_or_else(|| {
        format!("unknown driver command `{name}` (connect, publish, subscribe, unsubscribe, disconnect)")
    })?;
    if let Some(unknown) = table.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(format!(
            "`{unknown}` is not an argument of the driver command `{name}`; arguments: {}",
            keys.join(", ")
        ));
    }
    let mut command = serde_json::Map::new();
    command.insert("cmd".into(), json!(name));
    for (key, value) in table {
        match (key.as_str(), value) {
            ("payload_size", toml::Value::Integer(n)) => {
                let n = usize::try_from(*n).map_err(|_| "`payload_size` must be positive")?;
                command.insert("payload".into(), json!("x".repeat(n)));
            }
            ("topic_size", toml::Value::Integer(n)) => {
                let n = usize::try_from(*n).map_err(|_| "`topic_size` must be positive")?;
                command.insert("topic".into(), json!("t".repeat(n)));
            }
            ("filters", toml::Value::Array(items)) if name == "subscribe" => {
                let default_qos = table.get("qos").and_then(toml::Value::as_integer).unwrap_or(0);
                let filters = items
                    .iter()
                    .map(|item| match item {
                        toml::Value::String(f) => Ok(json!({"filter": f, "qos": default_qos})),
                        toml::Value::Table(t) => {
                            let mut object = to_json(item);
                            if !t.contains_key("qos") {
                                object["qos"] = json!(default_qos);
                            }
                            Ok(object)
                        }
                        other => Err(format!("a filter must be a string or a table, not `{other}`")),
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                command.insert("filters".into(), Json::Array(filters));
            }
            ("qos", _) if name == "subscribe" => {}
            _ => {
                command.insert(key.clone(), to_json(value));
            }
        }
    }
    if name == "connect" && !command.contains_key("client_id") {
        command.insert("client_id".into(), json!("{prefix}"));
    }
    if matches!(name, "subscribe" | "unsubscribe") && !command.contains_key("filters") {
        return Err(format!("`{name}` needs `filters`"));
    }
    if name == "publish" && !command.contains_key("topic") {
        return Err("`publish` needs `topic`".into());
    }
    Ok(command.into())
}

fn table_of<'a>(value: Option<&'a toml::Value>, key: &str) -> Result<&'a toml::Table, String> {
    match value {
        Some(toml::Value::Table(t)) => Ok(t),
        _ => Err(format!("`{key}` must be a table of arguments, e.g. {key} = {{ qos = 1 }}")),
    }
}

/// Parse one `[[step]]` table into one or more steps (shortcuts expand).
fn parse_step(
    parser: &mut StepParser,
    table: &toml::Table,
    line: usize,
    versions: &[Version],
) -> Result<Vec<ServerStep>, String> {
    let present: Vec<&str> = ACTIONS.iter().copied().filter(|a| table.contains_key(*a)).collect();
    let action = match present.as_slice() {
        [one] => *one,
        [] => return Err(format!("a step needs one action key: {}", ACTIONS.join(", "))),
        many => return Err(format!("a step has one action, this one has {}", many.join(" and "))),
    };
    let mut fields = Fields::new(table);
    let _ = fields.get(action);
    let step_versions = parse::step_versions(&mut fields, versions)?;
    let note = fields.string("note")?;
    let precondition = fields.boolean("precondition", false)?;
    let make = |action: ServerAction, precondition_: bool| ServerStep {
        line,
        versions: step_versions.clone(),
        note: note.clone(),
        action,
        precondition: precondition || precondition_,
    };
    let subject = |action| make(action, false);
    let timeout_default = DEFAULT_TIMEOUT;
    let steps = match action {
        "connect" => {
            let args = table_of(fields.get("connect"), "connect")?;
            let command = driver_command("connect", args)?;
            let timeout = fields.seconds("timeout", timeout_default)?;
            let check = match fields.get("check") {
                Some(value) => Some(partial(value, "CONNECT", client_pattern)?),
                None => None,
            };
            let connack = match fields.get("connack") {
                Some(toml::Value::Boolean(false)) => None,
                None => Some(connack(&toml::Table::new())?),
                Some(toml::Value::Table(t)) => Some(connack(t)?),
                Some(_) => {
                    return Err(
                        "`connack` must be a table { reason_code, session_present, properties } or false".into()
                    );
                }
            };
            let wait_connected = fields.boolean("connected", true)?;
            let mut connect = PacketPattern::of_kind("CONNECT");
            if let Some(check) = check {
                connect.fields.extend(check.fields);
                connect.properties.extend(check.properties);
            }
            let accepted = connack.as_ref().is_some_and(|c| matches!(c, ServerPacket::ConnAck { reason_code: 0, .. }));
            let mut steps = vec![
                make(ServerAction::Drive { command, may_fail: false, repeat: 1, interval: 0.0 }, true),
                make(ServerAction::Accept { timeout }, true),
                subject(ServerAction::Expect {
                    packets: vec![vec![connect]],
                    in_any_order: false,
                    timeout,
                    ack: false,
                    ignore: Vec::new(),
                }),
            ];
            if let Some(connack) = connack {
                steps.push(subject(ServerAction::Send { packet: connack, repeat: 1, interval: 0.0 }));
            }
            if accepted && wait_connected {
                steps.push(make(
                    ServerAction::ExpectEvent {
                        events: vec![vec![PacketPattern::of_kind("CONNECTED")]],
                        in_any_order: false,
                        timeout,
                    },
                    true,
                ));
            }
            steps
        }
        "drive" => {
            let name = fields.string("drive")?.ok_or("`drive` names a command: drive = \"publish\"")?;
            let keys = command_keys(&name).ok_or_else(|| format!("unknown driver command `{name}`"))?;
            let mut args = toml::Table::new();
            for key in keys {
                if let Some(value) = fields.get(key) {
                    args.insert((*key).to_owned(), value.clone());
                }
            }
            let command = driver_command(&name, &args)?;
            let may_fail = fields.boolean("may_fail", false)?;
            let repeat = fields.integer("repeat", 10_000)?.map_or(1, |n| n as u32);
            let interval = fields.seconds("interval", 0.0)?;
            vec![make(ServerAction::Drive { command, may_fail, repeat, interval }, false)]
        }
        "accept" => vec![subject(ServerAction::Accept { timeout: fields.seconds("timeout", timeout_default)? })],
        "expect" => {
            let packets = sequence(fields.get("expect").ok_or("missing `expect`")?, client_pattern)?;
            let in_any_order = fields.boolean("in_any_order", false)?;
            let timeout = fields.seconds("timeout", timeout_default)?;
            let ack = fields.boolean("ack", false)?;
            let ignore = match fields.get("ignore") {
                None => Vec::new(),
                Some(value) => flat(value, client_pattern)?,
            };
            vec![subject(ServerAction::Expect { packets, in_any_order, timeout, ack, ignore })]
        }
        "expect_event" => {
            let events = sequence(fields.get("expect_event").ok_or("missing `expect_event`")?, event_pattern)?;
            let in_any_order = fields.boolean("in_any_order", false)?;
            let timeout = fields.seconds("timeout", timeout_default)?;
            vec![subject(ServerAction::ExpectEvent { events, in_any_order, timeout })]
        }
        "expect_no_event" => {
            let events = flat(fields.get("expect_no_event").ok_or("missing `expect_no_event`")?, event_pattern)?;
            vec![subject(ServerAction::ExpectNoEvent { events, window: fields.seconds("for", 1.0)? })]
        }
        "expect_nothing" => {
            vec![subject(ServerAction::ExpectNothing { window: fields.seconds("expect_nothing", 1.0)? })]
        }
        "expect_none" => {
            let packets = flat(fields.get("expect_none").ok_or("missing `expect_none`")?, client_pattern)?;
            let window = fields.seconds("for", 1.0)?;
            let ack = fields.boolean("ack", true)?;
            vec![subject(ServerAction::ExpectNone { packets, window, ack })]
        }
        "expect_closed" => {
            let timeout = fields.seconds("timeout", timeout_default)?;
            let allow = match fields.get("allow") {
                None => Vec::new(),
                Some(value) => flat(value, client_pattern)?,
            };
            let disconnect_reason = fields.get("disconnect_reason").map(parse_value_pattern).transpose()?;
            if !matches!(fields.get("expect_closed"), Some(toml::Value::Boolean(true))) {
                return Err("write `expect_closed = true`".into());
            }
            vec![subject(ServerAction::ExpectClosed { timeout, allow, disconnect_reason })]
        }
        "expect_gaps" => vec![subject(ServerAction::ExpectGaps { keep_alive: fields.seconds("expect_gaps", 0.0)? })],
        "send" => {
            let packet = match fields.get("send") {
                Some(toml::Value::Table(t)) => server_packet(parser, t)?,
                Some(toml::Value::String(raw)) => ServerPacket::Common(OutgoingPacket::Raw(parse_raw(raw)?)),
                _ => return Err("`send` is a packet table { type = \"PUBLISH\", .. } or raw hex \"30 {rl} ..\"".into()),
            };
            let repeat = fields.integer("repeat", 10_000)?.map_or(1, |n| n as u32);
            let interval = fields.seconds("interval", 0.0)?;
            vec![subject(ServerAction::Send { packet, repeat, interval })]
        }
        "close" => {
            fields.get("close");
            vec![subject(ServerAction::Close)]
        }
        "wait" => vec![subject(ServerAction::Wait { seconds: fields.seconds("wait", 0.0)? })],
        "auto" => {
            let t = table_of(fields.get("auto"), "auto")?;
            let mut auto = Fields::new(t);
            let pingresp = auto.get("pingresp").and_then(toml::Value::as_bool);
            auto.finish("`auto` (keys: pingresp)")?;
            vec![subject(ServerAction::Auto { pingresp })]
        }
        "distinct" => {
            let names = parse::string_list(fields.get("distinct")).map_err(|_| "`distinct` lists variable names")?;
            if names.len() < 2 {
                return Err("`distinct` needs at least two variable names".into());
            }
            vec![subject(ServerAction::Distinct { names })]
        }
        "publish" => publish_shortcut(&mut fields, &make)?,
        "subscribe" => subscribe_shortcut(&mut fields, &make, "subscribe")?,
        "unsubscribe" => subscribe_shortcut(&mut fields, &make, "unsubscribe")?,
        "deliver" => deliver_shortcut(parser, &mut fields, &make)?,
        "disconnect" => {
            let args = table_of(fields.get("disconnect"), "disconnect")?;
            let command = driver_command("disconnect", args)?;
            let timeout = fields.seconds("timeout", timeout_default)?;
            let mut disconnect = PacketPattern::of_kind("DISCONNECT");
            if let Some(code) = args.get("reason_code").and_then(toml::Value::as_integer) {
                disconnect = disconnect.with_field("reason_code", ValuePattern::Int(code.unsigned_abs()));
            }
            // A library that closes without DISCONNECT leaves nothing to check: the
            // DISCONNECT is a precondition.
            vec![
                make(ServerAction::Drive { command, may_fail: false, repeat: 1, interval: 0.0 }, false),
                make(
                    ServerAction::Expect {
                        packets: vec![vec![disconnect]],
                        in_any_order: false,
                        timeout,
                        ack: false,
                        ignore: Vec::new(),
                    },
                    true,
                ),
                subject(ServerAction::ExpectClosed { timeout, allow: Vec::new(), disconnect_reason: None }),
            ]
        }
        other => return Err(format!("unknown action `{other}`")),
    };
    fields.finish(&format!("`{action}`"))?;
    Ok(steps)
}

/// A CONNACK from `{ reason_code, session_present, properties }`.
fn connack(table: &toml::Table) -> Result<ServerPacket, String> {
    let mut fields = Fields::new(table);
    let packet = ServerPacket::ConnAck {
        session_present: fields.boolean("session_present", false)?,
        reason_code: fields.integer("reason_code", 255)?.unwrap_or(0) as u8,
        properties: parse::property_specs(fields.get("properties"))?,
    };
    fields.finish("a CONNACK")?;
    Ok(packet)
}

/// `send = { type = .. }`: CONNACK, SUBACK, UNSUBACK, PINGRESP here; the rest as the
/// broker side writes them (the codec's unchecked encoder: invalid values go out as
/// written).
fn server_packet(parser: &mut StepParser, table: &toml::Table) -> Result<ServerPacket, String> {
    let kind = table.get("type").and_then(toml::Value::as_str).unwrap_or_default().to_ascii_uppercase();
    match kind.as_str() {
        "CONNACK" => {
            let mut rest = table.clone();
            rest.remove("type");
            connack(&rest)
        }
        "SUBACK" | "UNSUBACK" => {
            let mut fields = Fields::new(table);
            let _ = fields.get("type");
            let packet_id = fields.int_spec("packet_id")?.ok_or("`packet_id` is required (e.g. \"{sub}\")")?;
            let reason_codes = match fields.get("reason_codes") {
                None => Vec::new(),
                Some(toml::Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_integer().and_then(|v| u8::try_from(v).ok()).ok_or("reason codes are 0..=255"))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err("`reason_codes` must be a list".into()),
            };
            let properties = parse::property_specs(fields.get("properties"))?;
            fields.finish(&format!("a {kind}"))?;
            let kind = if kind == "SUBACK" { PacketType::SubAck } else { PacketType::UnsubAck };
            Ok(ServerPacket::Ack { kind, packet_id, reason_codes, properties })
        }
        "PINGRESP" => {
            if table.len() > 1 {
                return Err("PINGRESP has no fields".into());
            }
            Ok(ServerPacket::PingResp)
        }
        _ => Ok(ServerPacket::Common(parser.outgoing("server", table)?)),
    }
}

/// `publish = { topic, qos, retain, payload, properties }`: drive the client to publish,
/// expect its PUBLISH (topic, QoS, RETAIN, payload, DUP 0), complete the QoS flow and
/// expect the driver's `published`. `check` adds to the PUBLISH pattern; `flow = false`
/// leaves the acknowledgements to later steps (the packet id is captured as `{pid}`).
fn publish_shortcut(
    fields: &mut Fields<'_>,
    make: &impl Fn(ServerAction, bool) -> ServerStep,
) -> Result<Vec<ServerStep>, String> {
    let args = table_of(fields.get("publish"), "publish")?;
    let command = driver_command("publish", args)?;
    let timeout = fields.seconds("timeout", DEFAULT_TIMEOUT)?;
    let flow = fields.boolean("flow", true)?;
    let capture = fields.string("capture")?.unwrap_or_else(|| "pid".into());
    let qos = args.get("qos").and_then(toml::Value::as_integer).unwrap_or(0).unsigned_abs();
    let mut publish = PacketPattern::of_kind("PUBLISH")
        .with_field("qos", ValuePattern::Int(qos))
        .with_field("dup", ValuePattern::Bool(false))
        .with_field("retain", ValuePattern::Bool(args.get("retain").and_then(toml::Value::as_bool).unwrap_or(false)));
    if let Some(topic) = args.get("topic").and_then(toml::Value::as_str) {
        publish = publish.with_field("topic", ValuePattern::Text(topic.to_owned()));
    }
    if let Some(Json::String(payload)) = command.get("payload") {
        publish = publish.with_field("payload", ValuePattern::Text(payload.clone()));
    }
    if qos > 0 {
        publish = publish.with_field("packet_id", ValuePattern::Capture(capture.clone()));
    }
    if let Some(check) = fields.get("check") {
        let check = partial(check, "PUBLISH", client_pattern)?;
        publish.fields.extend(check.fields);
        publish.properties.extend(check.properties);
    }
    let subject = |action| make(action, false);
    let mut steps = vec![
        make(ServerAction::Forget { names: vec![capture.clone()] }, false),
        make(ServerAction::Drive { command, may_fail: false, repeat: 1, interval: 0.0 }, false),
        subject(ServerAction::Expect {
            packets: vec![vec![publish]],
            in_any_order: false,
            timeout,
            ack: false,
            ignore: Vec::new(),
        }),
    ];
    if flow && qos > 0 {
        let id = IntSpec::Template(format!("{{{capture}}}"));
        let response = |kind| {
            ServerPacket::Common(OutgoingPacket::PublishResponse {
                kind,
                packet_id: id.clone(),
                reason_code: 0,
                properties: Vec::new(),
            })
        };
        if qos == 1 {
            steps.push(subject(ServerAction::Send { packet: response(PacketType::PubAck), repeat: 1, interval: 0.0 }));
        } else {
            steps.push(subject(ServerAction::Send { packet: response(PacketType::PubRec), repeat: 1, interval: 0.0 }));
            let pubrel =
                PacketPattern::of_kind("PUBREL").with_field("packet_id", ValuePattern::Text(format!("{{{capture}}}")));
            steps.push(subject(ServerAction::Expect {
                packets: vec![vec![pubrel]],
                in_any_order: false,
                timeout,
                ack: false,
                ignore: Vec::new(),
            }));
            steps.push(subject(ServerAction::Send { packet: response(PacketType::PubComp), repeat: 1, interval: 0.0 }));
        }
    }
    if flow {
        steps.push(make(
            ServerAction::ExpectEvent {
                events: vec![vec![PacketPattern::of_kind("PUBLISHED")]],
                in_any_order: false,
                timeout,
            },
            true,
        ));
    }
    Ok(steps)
}

/// `subscribe = { filters, qos, properties }` / `unsubscribe = { filters }`: drive it,
/// expect the SUBSCRIBE / UNSUBSCRIBE with those filters (its packet id captured as
/// `{sub}`), answer with a SUBACK granting what was asked (or `suback = [codes]`) / an
/// UNSUBACK, and expect the driver's `subscribed` / `unsubscribed`.
fn subscribe_shortcut(
    fields: &mut Fields<'_>,
    make: &impl Fn(ServerAction, bool) -> ServerStep,
    name: &str,
) -> Result<Vec<ServerStep>, String> {
    let args = table_of(fields.get(if name == "subscribe" { "subscribe" } else { "unsubscribe" }), name)?;
    let command = driver_command(name, args)?;
    let timeout = fields.seconds("timeout", DEFAULT_TIMEOUT)?;
    let filters = command.get("filters").and_then(Json::as_array).cloned().unwrap_or_default();
    let kind = if name == "subscribe" { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
    let mut pattern = PacketPattern::of_kind(kind);
    if let Some(check) = fields.get("check") {
        let check = partial(check, kind, client_pattern)?;
        pattern.fields.extend(check.fields);
        pattern.properties.extend(check.properties);
    }
    let granted: Vec<u8> = filters.iter().map(|f| f.get("qos").and_then(Json::as_u64).unwrap_or(0) as u8).collect();
    let codes = match fields.get("suback") {
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|i| i.as_integer().and_then(|v| u8::try_from(v).ok()).ok_or("SUBACK codes are 0..=255"))
            .collect::<Result<Vec<u8>, _>>()?,
        Some(_) => return Err("`suback` must be a list of reason codes".into()),
        None if name == "subscribe" => granted.clone(),
        // UNSUBACK: 5.0 Success for each filter; the encoder leaves them out in 3.1.1.
        None => vec![0; filters.len()],
    };
    if codes.len() != filters.len() {
        return Err(format!("`suback` has {} codes for {} filters", codes.len(), filters.len()));
    }
    let requested = filters
        .iter()
        .zip(granted)
        .zip(codes)
        .map(|((f, qos), code)| {
            let filter = f.get("filter").and_then(Json::as_str).or(f.as_str()).unwrap_or_default().to_owned();
            (filter, (name == "subscribe").then_some(qos), code)
        })
        .collect();
    let event = if name == "subscribe" { "SUBSCRIBED" } else { "UNSUBSCRIBED" };
    Ok(vec![
        make(ServerAction::Forget { names: vec!["sub".into()] }, false),
        make(ServerAction::Drive { command, may_fail: false, repeat: 1, interval: 0.0 }, false),
        make(ServerAction::Exchange { pattern, requested, timeout }, false),
        make(
            ServerAction::ExpectEvent {
                events: vec![vec![PacketPattern::of_kind(event)]],
                in_any_order: false,
                timeout,
            },
            true,
        ),
    ])
}

/// `deliver = { topic, qos, payload, retain, dup, packet_id, properties }`: send a PUBLISH
/// to the client, expect its acknowledgement (PUBACK; or PUBREC, then PUBREL → PUBCOMP)
/// with the same packet id, and expect the driver's `message` with that topic, QoS and
/// payload (`message = {pattern}` adds to it; `message = false` expects none).
fn deliver_shortcut(
    parser: &mut StepParser,
    fields: &mut Fields<'_>,
    make: &impl Fn(ServerAction, bool) -> ServerStep,
) -> Result<Vec<ServerStep>, String> {
    let mut table = table_of(fields.get("deliver"), "deliver")?.clone();
    table.insert("type".into(), toml::Value::String("PUBLISH".into()));
    let packet = parser.outgoing("server", &table)?;
    let timeout = fields.seconds("timeout", DEFAULT_TIMEOUT)?;
    let OutgoingPacket::Publish { topic, payload, qos, packet_id, .. } = &packet else {
        return Err("`deliver` sends a PUBLISH".into());
    };
    let id_pattern = match packet_id {
        Some(IntSpec::Literal(v)) => ValuePattern::Int(*v),
        Some(IntSpec::Template(t)) => ValuePattern::Text(t.clone()),
        None => ValuePattern::Absent,
    };
    let subject = |action| make(action, false);
    let mut steps =
        vec![subject(ServerAction::Send { packet: ServerPacket::Common(packet.clone()), repeat: 1, interval: 0.0 })];
    let expect = |kind: &str| {
        subject(ServerAction::Expect {
            packets: vec![vec![PacketPattern::of_kind(kind).with_field("packet_id", id_pattern.clone())]],
            in_any_order: false,
            timeout,
            ack: false,
            ignore: Vec::new(),
        })
    };
    match qos {
        1 => steps.push(expect("PUBACK")),
        2 => {
            steps.push(expect("PUBREC"));
            let id = packet_id.clone().ok_or("QoS 2 needs a packet id")?;
            steps.push(subject(ServerAction::Send {
                packet: ServerPacket::Common(OutgoingPacket::PublishResponse {
                    kind: PacketType::PubRel,
                    packet_id: id,
                    reason_code: 0,
                    properties: Vec::new(),
                }),
                repeat: 1,
                interval: 0.0,
            }));
            steps.push(expect("PUBCOMP"));
        }
        _ => {}
    }
    match fields.get("message") {
        Some(toml::Value::Boolean(false)) => {}
        extra => {
            let mut message = PacketPattern::of_kind("MESSAGE")
                .with_field("topic", ValuePattern::Text(topic.clone()))
                .with_field("qos", ValuePattern::Int(u64::from(*qos)));
            match payload {
                crate::outgoing::BytesSpec::Text(text) => {
                    message = message.with_field("payload", ValuePattern::Text(text.clone()));
                }
                crate::outgoing::BytesSpec::Hex(bytes) => {
                    message = message.with_field("payload", ValuePattern::Hex(bytes.clone()));
                }
                crate::outgoing::BytesSpec::Repeat { byte, len } => {
                    message = message.with_field("payload", ValuePattern::Hex(vec![*byte; *len]));
                }
            }
            if let Some(extra) = extra {
                let extra = partial(extra, "MESSAGE", event_pattern)?;
                message.fields.extend(extra.fields);
                message.properties.extend(extra.properties);
            }
            steps.push(subject(ServerAction::ExpectEvent {
                events: vec![vec![message]],
                in_any_order: false,
                timeout,
            }));
        }
    }
    Ok(steps)
}

/// The built-in client scenarios (`conformance/client-scenarios/**`).
static BUILT_IN: include_dir::Dir<'_> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/client-scenarios");

/// Parse a set of (path, text) files.
pub fn parse_files(files: impl Iterator<Item = (String, String)>) -> Result<Vec<ClientScenario>, Vec<LoadError>> {
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in files {
        match parse_client_scenario(&file, &text) {
            Ok(scenario) => scenarios.push(scenario),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(scenarios) } else { Err(errors) }
}

/// The built-in client scenarios.
pub fn built_in() -> Result<Vec<ClientScenario>, Vec<LoadError>> {
    let mut files = Vec::new();
    crate::scenario::collect_embedded(&BUILT_IN, &mut files);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    parse_files(files.into_iter().map(|(path, text)| (format!("client-scenarios/{path}"), text)))
}

/// Built-in scenarios plus those in `extra_dirs`, checked: unique ids, statements in the
/// catalogue, and every statement cited binds the client (or both sides).
pub fn load(
    catalogue: &crate::catalogue::Catalogue,
    extra_dirs: &[std::path::PathBuf],
) -> Result<Vec<ClientScenario>, Vec<LoadError>> {
    let mut scenarios = built_in()?;
    for dir in extra_dirs {
        scenarios.extend(parse_files(crate::scenario::read_tree(dir)?.into_iter())?);
    }
    let metas: Vec<Scenario> = scenarios.iter().map(|s| s.meta.clone()).collect();
    let mut errors = crate::scenario::check(&metas, catalogue);
    for scenario in &scenarios {
        for (version, ids) in &scenario.meta.statements {
            for id in ids {
                if let Some(statement) = catalogue.get(*version, id) {
                    if statement.binds == "server" {
                        errors.push(LoadError {
                            file: scenario.meta.source.clone(),
                            line: 1,
                            message: format!("statement `{id}` ({version}) binds the server only, not a client"),
                        });
                    }
                }
            }
        }
    }
    if errors.is_empty() { Ok(scenarios) } else { Err(errors) }
}

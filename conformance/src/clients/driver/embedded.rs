//! The embedded driver: the kit's own reference client (`mqttkit-client`) in the runner's
//! process, speaking the driver protocol over channels, so the client suite runs with
//! nothing installed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqttkit_client::{
    Client, ConnectionEvent, LostReason, Options, ProtocolVersion, Publication, PublishProperties, QoS, ReasonCode,
    RequestProperties, RetainHandling, Subscription, Will,
};
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, watch};

use super::{Driver, DriverIo};
use crate::observed::{Value, hex};

/// The embedded mqttkit-client driver.
pub fn embedded_driver() -> Driver {
    Driver::InProcess { name: "mqttkit-client (embedded)".into(), start: Arc::new(start) }
}

fn start(_url: String, io: DriverIo) {
    tokio::spawn(run(io));
}

type Events = mpsc::UnboundedSender<Json>;

/// The client handle once `connect` succeeded (`None` before, and for ever after a failed
/// first connection).
type Handle = watch::Receiver<Option<Result<Client, String>>>;

async fn run(mut io: DriverIo) {
    let events = io.events.clone();
    let _ = events.send(json!({
        "event": "hello",
        "library": "mqttkit-client",
        "library_version": env!("CARGO_PKG_VERSION"),
        "versions": ["3.1.1", "5.0"],
        "capabilities": ["disconnect-reason-codes"],
    }));
    let (handle_tx, handle_rx) = watch::channel(None);
    let mut handle_tx = Some(handle_tx);
    // Every task holding the client: aborted when the run ends, which drops the client and
    // so ends its connection (and any reconnection attempts).
    let mut tasks = tokio::task::JoinSet::new();
    let (requests, requests_rx) = mpsc::unbounded_channel();
    tasks.spawn(perform(requests_rx, handle_rx, events.clone()));
    while let Some(command) = io.commands.recv().await {
        let id = command.get("id").cloned().unwrap_or(Json::Null);
        let name = command.get("cmd").and_then(Json::as_str).unwrap_or_default().to_owned();
        let reply = |kind: &str, extra: Json| {
            let mut message = json!({"event": kind, "id": id});
            if let (Some(object), Json::Object(more)) = (message.as_object_mut(), extra) {
                object.extend(more);
            }
            let _ = events.send(message);
        };
        match name.as_str() {
            "quit" => break,
            "plan" => reply("ack", Json::Null),
            "connect" => match (options(&command, &events), handle_tx.take()) {
                (Ok(options), Some(sender)) => {
                    reply("ack", Json::Null);
                    tasks.spawn(connect(options, sender, events.clone()));
                }
                (Ok(_), None) => {
                    reply("unsupported", json!({"reason": "one connect per client (it reconnects by itself)"}))
                }
                (Err(why), sender) => {
                    handle_tx = sender;
                    reply("error", json!({"message": why}));
                }
            },
            "publish" | "subscribe" | "unsubscribe" | "disconnect" => match request(&name, &command) {
                Ok(request) => {
                    reply("ack", Json::Null);
                    let _ = requests.send((request, id));
                }
                Err(why) => reply("error", json!({"message": why})),
            },
            other => reply("unsupported", json!({"reason": format!("unknown command `{other}`")})),
        }
    }
    tasks.abort_all();
}

fn string(command: &Json, key: &str) -> Option<String> {
    command.get(key).and_then(Json::as_str).map(str::to_owned)
}

fn number(command: &Json, key: &str) -> Option<u64> {
    command.get(key).and_then(Json::as_u64)
}

fn qos(value: Option<u64>) -> Result<QoS, String> {
    QoS::from_u8(u8::try_from(value.unwrap_or(0)).unwrap_or(3)).ok_or_else(|| format!("QoS {value:?} is not 0, 1 or 2"))
}

/// `payload` (text) or `payload_hex`.
fn payload(object: &Json) -> Result<Bytes, String> {
    match (string(object, "payload"), string(object, "payload_hex")) {
        (_, Some(h)) => crate::matcher::parse_hex(&h).map(Bytes::from),
        (Some(text), None) => Ok(Bytes::from(text)),
        (None, None) => Ok(Bytes::new()),
    }
}

fn user_properties(properties: Option<&Json>) -> Vec<(String, String)> {
    properties
        .and_then(|p| p.get("user_property"))
        .and_then(Json::as_array)
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|pair| match pair.as_array().map(Vec::as_slice) {
                    Some([Json::String(k), Json::String(v)]) => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn publish_properties(properties: Option<&Json>) -> Result<PublishProperties, String> {
    let Some(p) = properties else { return Ok(PublishProperties::default()) };
    Ok(PublishProperties {
        payload_format_utf8: number(p, "payload_format_indicator").map(|v| v == 1),
        message_expiry_interval: number(p, "message_expiry_interval").and_then(|v| u32::try_from(v).ok()),
        content_type: string(p, "content_type"),
        response_topic: string(p, "response_topic"),
        correlation_data: string(p, "correlation_data")
            .map(|h| crate::matcher::parse_hex(&h).map(Bytes::from))
            .transpose()?,
        user_properties: user_properties(Some(p)),
    })
}

/// Options from a `connect` command.
fn options(command: &Json, events: &Events) -> Result<Options, String> {
    let url = string(command, "url").ok_or("`connect` needs `url`")?;
    let version = match string(command, "version").as_deref() {
        Some("5.0") => ProtocolVersion::V5,
        Some("3.1.1") | None => ProtocolVersion::V3_1_1,
        Some(other) => return Err(format!("unknown version {other}")),
    };
    let mut options = Options::new(url).version(version).backoff(Duration::from_millis(500), Duration::from_secs(2));
    if let Some(id) = string(command, "client_id") {
        options = options.client_id(id);
    }
    if let Some(clean) = command.get("clean_start").and_then(Json::as_bool) {
        options = options.clean_start(clean);
    }
    // 5.0-only options are ignored under 3.1.1 (the scenarios give them for both).
    let v5 = version == ProtocolVersion::V5;
    if let Some(expiry) = number(command, "session_expiry").filter(|_| v5) {
        options = options.session_expiry_interval(u32::try_from(expiry).unwrap_or(u32::MAX));
    }
    if let Some(keep_alive) = number(command, "keep_alive") {
        options = options.keep_alive(Duration::from_secs(keep_alive));
    }
    if let Some(timeout) = command.get("ping_timeout").and_then(Json::as_f64) {
        options = options.ping_timeout(Duration::try_from_secs_f64(timeout).map_err(|e| e.to_string())?);
    }
    if let Some(username) = string(command, "username") {
        options.username = Some(username);
    }
    if let Some(password) = string(command, "password") {
        options.password = Some(Bytes::from(password));
    }
    if let Some(on) = command.get("auto_reconnect").and_then(Json::as_bool) {
        options = options.auto_reconnect(on);
    }
    if let Some(will) = command.get("will") {
        let topic = string(will, "topic").ok_or("a will needs `topic`")?;
        let mut value =
            Will::new(topic, payload(will)?, qos(number(will, "qos"))?, will.get("retain") == Some(&json!(true)));
        if v5 {
            value.delay_interval = will
                .get("properties")
                .and_then(|p| number(p, "will_delay_interval"))
                .and_then(|v| u32::try_from(v).ok());
            value.properties = publish_properties(will.get("properties"))?;
        }
        options = options.will(value);
    }
    if v5 {
        let field16 = |key| number(command, key).map(|v| u16::try_from(v).unwrap_or(u16::MAX));
        options.properties.receive_maximum = field16("receive_maximum");
        options.properties.topic_alias_maximum = field16("topic_alias_maximum");
        options.properties.maximum_packet_size =
            number(command, "maximum_packet_size").map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        options.properties.user_properties = user_properties(command.get("properties"));
    }
    if v5 && command.get("topic_aliases") == Some(&json!(true)) {
        options = options.topic_aliases(true);
    }
    let events = events.clone();
    Ok(options.on_event(move |event| {
        let message = match event {
            ConnectionEvent::Connected(connected) => json!({
                "event": "connected",
                "session_present": connected.session_present,
                "assigned_client_id": connected.assigned_client_id,
            }),
            ConnectionEvent::ConnectionLost { reason } => {
                let mut message = json!({"event": "connection_lost", "reason": reason.to_string()});
                let code = match reason {
                    LostReason::ServerDisconnect { code, .. } | LostReason::Refused { code, .. } => Some(code.0),
                    _ => None,
                };
                if let (Some(code), Some(object)) = (code, message.as_object_mut()) {
                    object.insert("reason_code".into(), json!(code));
                }
                message
            }
            _ => return,
        };
        let _ = events.send(message);
    }))
}

async fn connect(options: Options, handle: watch::Sender<Option<Result<Client, String>>>, events: Events) {
    match Client::connect(options).await {
        Ok(client) => {
            let mut messages = client.messages();
            handle.send_replace(Some(Ok(client)));
            while let Some(message) = messages.recv().await {
                let mut properties = serde_json::Map::new();
                for property in message.properties().iter() {
                    let (name, value) = crate::properties::describe(&property);
                    let value = json_of(&value);
                    if matches!(name, "user_property" | "subscription_identifier") {
                        if let Json::Array(items) = properties.entry(name).or_insert_with(|| json!([])) {
                            items.push(value);
                        }
                    } else {
                        properties.insert(name.to_owned(), value);
                    }
                }
                let _ = events.send(json!({
                    "event": "message",
                    "topic": message.topic(),
                    "qos": message.qos().as_u8(),
                    "retain": message.retain(),
                    "dup": message.dup(),
                    "payload_hex": hex(message.payload()),
                    "properties": properties,
                }));
            }
        }
        Err(e) => {
            handle.send_replace(Some(Err(e.to_string())));
        }
    }
}

fn json_of(value: &Value) -> Json {
    match value {
        Value::Int(v) => json!(v),
        Value::Bool(v) => json!(v),
        Value::Str(v) => json!(v),
        Value::Bytes(v) => json!(hex(v)),
        Value::List(items) => Json::Array(items.iter().map(json_of).collect()),
    }
}

/// A request to the client, checked when the command arrives.
enum Request {
    Publish(Publication),
    Subscribe(Vec<Subscription>, RequestProperties),
    Unsubscribe(Vec<String>, RequestProperties),
    Disconnect(ReasonCode, Option<u32>),
}

fn request_properties(command: &Json) -> RequestProperties {
    let properties = command.get("properties");
    RequestProperties {
        subscription_identifier: properties
            .and_then(|p| number(p, "subscription_identifier"))
            .and_then(|v| u32::try_from(v).ok()),
        user_properties: user_properties(properties),
    }
}

fn request(name: &str, command: &Json) -> Result<Request, String> {
    Ok(match name {
        "publish" => {
            let topic = string(command, "topic").ok_or("`publish` needs `topic`")?;
            let retain = command.get("retain") == Some(&json!(true));
            let publication = Publication::new(topic, qos(number(command, "qos"))?, retain, payload(command)?)
                .with_properties(publish_properties(command.get("properties"))?);
            Request::Publish(publication)
        }
        "subscribe" => {
            let filters = command.get("filters").and_then(Json::as_array).ok_or("`subscribe` needs `filters`")?;
            let subscriptions = filters
                .iter()
                .map(|f| {
                    let filter = string(f, "filter").ok_or("a filter needs `filter`")?;
                    let handling = match number(f, "retain_handling").unwrap_or(0) {
                        0 => RetainHandling::SendAtSubscribe,
                        1 => RetainHandling::SendIfNew,
                        _ => RetainHandling::DoNotSend,
                    };
                    Ok(Subscription::new(filter, qos(number(f, "qos"))?)
                        .no_local(f.get("no_local") == Some(&json!(true)))
                        .retain_as_published(f.get("retain_as_published") == Some(&json!(true)))
                        .retain_handling(handling))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Request::Subscribe(subscriptions, request_properties(command))
        }
        "unsubscribe" => {
            let filters = command
                .get("filters")
                .and_then(Json::as_array)
                .ok_or("`unsubscribe` needs `filters`")?
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect();
            Request::Unsubscribe(filters, request_properties(command))
        }
        _ => {
            let code = ReasonCode(u8::try_from(number(command, "reason_code").unwrap_or(0)).unwrap_or(0));
            let expiry = command
                .get("properties")
                .and_then(|p| number(p, "session_expiry_interval"))
                .and_then(|v| u32::try_from(v).ok());
            Request::Disconnect(code, expiry)
        }
    })
}

/// Carry requests out in the order they came: each is handed to the client in turn (so
/// publications keep their order), and its completion is awaited in a task of its own.
async fn perform(mut requests: mpsc::UnboundedReceiver<(Request, Json)>, mut handle: Handle, events: Events) {
    let client = match handle.wait_for(Option::is_some).await.map(|h| h.clone()) {
        Ok(Some(Ok(client))) => Ok(client),
        Ok(Some(Err(why))) => Err(format!("not connected: {why}")),
        _ => Err("not connected".to_owned()),
    };
    let mut completions = tokio::task::JoinSet::new();
    while let Some((request, id)) = requests.recv().await {
        let client = match &client {
            Ok(client) => client.clone(),
            Err(why) => {
                let _ = events.send(json!({"event": "error", "id": id, "message": why}));
                continue;
            }
        };
        let events = events.clone();
        let codes = |codes: Vec<ReasonCode>| Json::Array(codes.iter().map(|c| json!(c.0)).collect());
        match request {
            Request::Publish(publication) => match client.start_publish(publication).await {
                Ok(token) => {
                    completions.spawn(async move {
                        let message = match token.await {
                            Ok(code) => json!({"event": "published", "id": id, "reason_code": code.0}),
                            Err(e) => json!({"event": "error", "id": id, "message": e.to_string()}),
                        };
                        let _ = events.send(message);
                    });
                }
                Err(e) => {
                    let _ = events.send(json!({"event": "error", "id": id, "message": e.to_string()}));
                }
            },
            Request::Subscribe(subscriptions, properties) => {
                completions.spawn(async move {
                    let message = match client.subscribe_with(subscriptions, properties).await {
                        Ok(granted) => json!({"event": "subscribed", "id": id, "reason_codes": codes(granted)}),
                        Err(e) => json!({"event": "error", "id": id, "message": e.to_string()}),
                    };
                    let _ = events.send(message);
                });
            }
            Request::Unsubscribe(filters, properties) => {
                completions.spawn(async move {
                    let message = match client.unsubscribe_with(filters, properties).await {
                        Ok(answer) => json!({"event": "unsubscribed", "id": id, "reason_codes": codes(answer)}),
                        Err(e) => json!({"event": "error", "id": id, "message": e.to_string()}),
                    };
                    let _ = events.send(message);
                });
            }
            Request::Disconnect(code, expiry) => {
                completions.spawn(async move {
                    client.disconnect_with(Duration::ZERO, code, expiry).await;
                    let _ = events.send(json!({"event": "disconnected", "id": id}));
                });
            }
        }
    }
}

//! mqttkit-conformance driver for rumqttc (crates.io), MQTT 3.1.1 (`rumqttc`) and 5.0
//! (`rumqttc::v5`).
//!
//! Commands arrive as JSON lines on stdin; what the library tells its application goes out
//! as JSON lines on stdout (conformance/CLIENT-DRIVERS.md). rumqttc reports progress as
//! events of its event loop: completions are matched to commands by the packet ids its
//! `Outgoing` events announce, in the order the requests were handed over.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

type Out = mpsc::UnboundedSender<Value>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

fn payload(c: &Value) -> Vec<u8> {
    match (c.get("payload_hex").and_then(Value::as_str), c.get("payload").and_then(Value::as_str)) {
        (Some(h), _) => unhex(h),
        (None, Some(p)) => p.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

fn num(c: &Value, key: &str) -> Option<u64> {
    c.get(key).and_then(Value::as_u64)
}

fn text(c: &Value, key: &str) -> Option<String> {
    c.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn pairs(c: Option<&Value>) -> Vec<(String, String)> {
    c.and_then(|p| p.get("user_property"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|p| Some((p.get(0)?.as_str()?.to_owned(), p.get(1)?.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Command ids waiting for rumqttc's `Outgoing` event, and then for the acknowledgement.
#[derive(Default)]
struct Pending {
    publishes: VecDeque<Value>,
    subscribes: VecDeque<Value>,
    unsubscribes: VecDeque<Value>,
    by_pkid: HashMap<(u8, u16), Value>,
    disconnect: Option<Value>,
}

type Shared = Arc<Mutex<Pending>>;

const PUB: u8 = 0;
const SUB: u8 = 1;
const UNSUB: u8 = 2;

impl Pending {
    /// An `Outgoing` packet of a kind: the oldest command of that kind gets its pkid (a
    /// re-send keeps its command).
    fn sent(&mut self, kind: u8, pkid: u16, out: &Out, event: &str) {
        if pkid != 0 && self.by_pkid.contains_key(&(kind, pkid)) {
            return;
        }
        let queue = match kind {
            PUB => &mut self.publishes,
            SUB => &mut self.subscribes,
            _ => &mut self.unsubscribes,
        };
        let Some(id) = queue.pop_front() else { return };
        if pkid == 0 {
            let _ = out.send(json!({"event": event, "id": id}));
        } else {
            self.by_pkid.insert((kind, pkid), id);
        }
    }

    fn done(&mut self, kind: u8, pkid: u16, out: &Out, mut message: Value) {
        if let Some(id) = self.by_pkid.remove(&(kind, pkid)) {
            message["id"] = id;
            let _ = out.send(message);
        }
    }
}

/// The two protocol versions' clients behind one face.
enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

fn qos4(q: u64) -> rumqttc::QoS {
    match q {
        1 => rumqttc::QoS::AtLeastOnce,
        2 => rumqttc::QoS::ExactlyOnce,
        _ => rumqttc::QoS::AtMostOnce,
    }
}

fn qos5(q: u64) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS;
    match q {
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtMostOnce,
    }
}

fn address(c: &Value) -> (String, u16) {
    let url = text(c, "url").unwrap_or_default();
    let rest = url.split("://").nth(1).unwrap_or_default().to_owned();
    let (host, port) = rest.rsplit_once(':').unwrap_or((&rest, "1883"));
    (host.to_owned(), port.parse().unwrap_or(1883))
}

fn connect_v4(c: &Value, out: Out, shared: Shared) -> Result<Client, String> {
    let (host, port) = address(c);
    let mut options = rumqttc::MqttOptions::new(text(c, "client_id").unwrap_or_default(), host, port);
    if let Some(ka) = num(c, "keep_alive") {
        options.set_keep_alive(Duration::from_secs(ka));
    }
    if let Some(clean) = c.get("clean_start").and_then(Value::as_bool) {
        options.set_clean_session(clean);
    }
    if let Some(user) = text(c, "username") {
        options.set_credentials(user, text(c, "password").unwrap_or_default());
    }
    if let Some(will) = c.get("will") {
        let retain = will.get("retain").and_then(Value::as_bool).unwrap_or(false);
        let topic = text(will, "topic").unwrap_or_default();
        options.set_last_will(rumqttc::LastWill::new(topic, payload(will), qos4(num(will, "qos").unwrap_or(0)), retain));
    }
    options.set_request_channel_capacity(1000);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 1000);
    let reconnect = c.get("auto_reconnect").and_then(Value::as_bool).unwrap_or(true);
    tokio::spawn(async move {
        use rumqttc::{Event, Incoming, Outgoing};
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    let _ = out.send(json!({"event": "connected", "session_present": ack.session_present}));
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let _ = out.send(json!({"event": "message", "topic": p.topic, "qos": p.qos as u8,
                        "retain": p.retain, "dup": p.dup, "payload_hex": hex(&p.payload)}));
                }
                Ok(Event::Incoming(Incoming::PubAck(a))) => {
                    shared.lock().unwrap().done(PUB, a.pkid, &out, json!({"event": "published"}))
                }
                Ok(Event::Incoming(Incoming::PubComp(a))) => {
                    shared.lock().unwrap().done(PUB, a.pkid, &out, json!({"event": "published"}))
                }
                Ok(Event::Incoming(Incoming::SubAck(s))) => {
                    let codes: Vec<u8> = s
                        .return_codes
                        .iter()
                        .map(|c| match c {
                            rumqttc::SubscribeReasonCode::Success(q) => *q as u8,
                            rumqttc::SubscribeReasonCode::Failure => 0x80,
                        })
                        .collect();
                    shared.lock().unwrap().done(SUB, s.pkid, &out, json!({"event": "subscribed", "reason_codes": codes}))
                }
                Ok(Event::Incoming(Incoming::UnsubAck(u))) => {
                    shared.lock().unwrap().done(UNSUB, u.pkid, &out, json!({"event": "unsubscribed"}))
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => shared.lock().unwrap().sent(PUB, pkid, &out, "published"),
                Ok(Event::Outgoing(Outgoing::Subscribe(pkid))) => shared.lock().unwrap().sent(SUB, pkid, &out, "subscribed"),
                Ok(Event::Outgoing(Outgoing::Unsubscribe(pkid))) => {
                    shared.lock().unwrap().sent(UNSUB, pkid, &out, "unsubscribed")
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    if let Some(id) = shared.lock().unwrap().disconnect.take() {
                        let _ = out.send(json!({"event": "disconnected", "id": id}));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let mut message = json!({"event": "connection_lost", "reason": e.to_string()});
                    if let rumqttc::ConnectionError::ConnectionRefused(code) = &e {
                        message["reason_code"] = json!(*code as u8);
                    }
                    let _ = out.send(message);
                    if !reconnect {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    Ok(Client::V4(client))
}

fn connect_v5(c: &Value, out: Out, shared: Shared) -> Result<Client, String> {
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::{Event, MqttOptions};
    let (host, port) = address(c);
    let mut options = MqttOptions::new(text(c, "client_id").unwrap_or_default(), host, port);
    if let Some(ka) = num(c, "keep_alive") {
        // rumqttc::v5::MqttOptions::set_keep_alive panics below 5 s (an API limit, not a
        // protocol one): the scenario cannot be driven.
        if ka != 0 && ka < 5 {
            return Err(format!("unsupported: rumqttc v5 refuses keep alives under 5 s ({ka} s asked)"));
        }
        options.set_keep_alive(Duration::from_secs(ka));
    }
    if let Some(clean) = c.get("clean_start").and_then(Value::as_bool) {
        options.set_clean_start(clean);
    }
    if let Some(user) = text(c, "username") {
        options.set_credentials(user, text(c, "password").unwrap_or_default());
    }
    if let Some(will) = c.get("will") {
        if will.get("properties").is_some() {
            return Err("unsupported: will properties".into());
        }
        let retain = will.get("retain").and_then(Value::as_bool).unwrap_or(false);
        let topic = text(will, "topic").unwrap_or_default();
        let last_will = rumqttc::v5::mqttbytes::v5::LastWill::new(
            topic,
            payload(will),
            qos5(num(will, "qos").unwrap_or(0)),
            retain,
            None,
        );
        options.set_last_will(last_will);
    }
    options.set_session_expiry_interval(num(c, "session_expiry").map(|v| v as u32));
    if let Some(v) = num(c, "receive_maximum") {
        options.set_receive_maximum(Some(v as u16));
    }
    if let Some(v) = num(c, "maximum_packet_size") {
        options.set_max_packet_size(Some(v as u32));
    }
    if let Some(v) = num(c, "topic_alias_maximum") {
        options.set_topic_alias_max(Some(v as u16));
    }
    let user = pairs(c.get("properties"));
    if !user.is_empty() {
        options.set_user_properties(user);
    }
    options.set_request_channel_capacity(1000);
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 1000);
    let reconnect = c.get("auto_reconnect").and_then(Value::as_bool).unwrap_or(true);
    tokio::spawn(async move {
        use rumqttc::Outgoing;
        let describe = |props: &Option<PublishProperties>| {
            let mut out = serde_json::Map::new();
            if let Some(p) = props {
                if let Some(v) = p.payload_format_indicator {
                    out.insert("payload_format_indicator".into(), json!(v));
                }
                if let Some(v) = p.message_expiry_interval {
                    out.insert("message_expiry_interval".into(), json!(v));
                }
                if let Some(v) = p.topic_alias {
                    out.insert("topic_alias".into(), json!(v));
                }
                if let Some(v) = &p.response_topic {
                    out.insert("response_topic".into(), json!(v));
                }
                if let Some(v) = &p.correlation_data {
                    out.insert("correlation_data".into(), json!(hex(v)));
                }
                if let Some(v) = &p.content_type {
                    out.insert("content_type".into(), json!(v));
                }
                if !p.user_properties.is_empty() {
                    out.insert("user_property".into(), json!(p.user_properties));
                }
                if !p.subscription_identifiers.is_empty() {
                    out.insert("subscription_identifier".into(), json!(p.subscription_identifiers));
                }
            }
            Value::Object(out)
        };
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    let assigned = ack.properties.as_ref().and_then(|p| p.assigned_client_identifier.clone());
                    let _ = out.send(json!({"event": "connected", "session_present": ack.session_present,
                        "assigned_client_id": assigned}));
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = out.send(json!({"event": "message", "topic": String::from_utf8_lossy(&p.topic),
                        "qos": p.qos as u8, "retain": p.retain, "dup": p.dup, "payload_hex": hex(&p.payload),
                        "properties": describe(&p.properties)}));
                }
                Ok(Event::Incoming(Packet::PubAck(a))) => {
                    shared.lock().unwrap().done(PUB, a.pkid, &out, json!({"event": "published"}))
                }
                Ok(Event::Incoming(Packet::PubComp(a))) => {
                    shared.lock().unwrap().done(PUB, a.pkid, &out, json!({"event": "published"}))
                }
                Ok(Event::Incoming(Packet::SubAck(s))) => {
                    use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode;
                    let codes: Vec<u8> = s
                        .return_codes
                        .iter()
                        .map(|c| match c {
                            SubscribeReasonCode::Success(q) => *q as u8,
                            _ => 0x80,
                        })
                        .collect();
                    shared.lock().unwrap().done(SUB, s.pkid, &out, json!({"event": "subscribed", "reason_codes": codes}))
                }
                Ok(Event::Incoming(Packet::UnsubAck(u))) => {
                    shared.lock().unwrap().done(UNSUB, u.pkid, &out, json!({"event": "unsubscribed"}))
                }
                Ok(Event::Incoming(Packet::Disconnect(d))) => {
                    let _ = out.send(json!({"event": "connection_lost",
                        "reason": format!("server sent DISCONNECT {:?}", d.reason_code)}));
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => shared.lock().unwrap().sent(PUB, pkid, &out, "published"),
                Ok(Event::Outgoing(Outgoing::Subscribe(pkid))) => shared.lock().unwrap().sent(SUB, pkid, &out, "subscribed"),
                Ok(Event::Outgoing(Outgoing::Unsubscribe(pkid))) => {
                    shared.lock().unwrap().sent(UNSUB, pkid, &out, "unsubscribed")
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    if let Some(id) = shared.lock().unwrap().disconnect.take() {
                        let _ = out.send(json!({"event": "disconnected", "id": id}));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = out.send(json!({"event": "connection_lost", "reason": e.to_string()}));
                    if !reconnect {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    Ok(Client::V5(client))
}

async fn publish(client: &Client, c: &Value) -> Result<(), String> {
    let topic = text(c, "topic").unwrap_or_default();
    let retain = c.get("retain").and_then(Value::as_bool).unwrap_or(false);
    let qos = num(c, "qos").unwrap_or(0);
    match client {
        Client::V4(client) => {
            client.publish(topic, qos4(qos), retain, payload(c)).await.map_err(|e| e.to_string())
        }
        Client::V5(client) => {
            let p = c.get("properties");
            let properties = rumqttc::v5::mqttbytes::v5::PublishProperties {
                payload_format_indicator: p.and_then(|p| num(p, "payload_format_indicator")).map(|v| v as u8),
                message_expiry_interval: p.and_then(|p| num(p, "message_expiry_interval")).map(|v| v as u32),
                topic_alias: None,
                response_topic: p.and_then(|p| text(p, "response_topic")),
                correlation_data: p.and_then(|p| text(p, "correlation_data")).map(|h| unhex(&h).into()),
                user_properties: pairs(p),
                subscription_identifiers: Vec::new(),
                content_type: p.and_then(|p| text(p, "content_type")),
            };
            client
                .publish_with_properties(topic, qos5(qos), retain, payload(c), properties)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

async fn subscribe(client: &Client, c: &Value) -> Result<(), String> {
    let filters = c.get("filters").and_then(Value::as_array).cloned().unwrap_or_default();
    match client {
        Client::V4(client) => {
            let list: Vec<rumqttc::SubscribeFilter> = filters
                .iter()
                .map(|f| rumqttc::SubscribeFilter::new(text(f, "filter").unwrap_or_default(), qos4(num(f, "qos").unwrap_or(0))))
                .collect();
            client.subscribe_many(list).await.map_err(|e| e.to_string())
        }
        Client::V5(client) => {
            use rumqttc::v5::mqttbytes::v5::{Filter, RetainForwardRule, SubscribeProperties};
            let list: Vec<Filter> = filters
                .iter()
                .map(|f| {
                    let mut filter = Filter::new(text(f, "filter").unwrap_or_default(), qos5(num(f, "qos").unwrap_or(0)));
                    filter.nolocal = f.get("no_local").and_then(Value::as_bool).unwrap_or(false);
                    filter.preserve_retain = f.get("retain_as_published").and_then(Value::as_bool).unwrap_or(false);
                    filter.retain_forward_rule = match num(f, "retain_handling").unwrap_or(0) {
                        1 => RetainForwardRule::OnNewSubscribe,
                        2 => RetainForwardRule::Never,
                        _ => RetainForwardRule::OnEverySubscribe,
                    };
                    filter
                })
                .collect();
            let p = c.get("properties");
            let properties = SubscribeProperties {
                id: p.and_then(|p| num(p, "subscription_identifier")).map(|v| v as usize),
                user_properties: pairs(p),
            };
            client.subscribe_many_with_properties(list, properties).await.map_err(|e| e.to_string())
        }
    }
}

async fn unsubscribe(client: &Client, c: &Value) -> Result<(), String> {
    let filters: Vec<String> = c
        .get("filters")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if filters.len() != 1 {
        return Err(format!("unsupported: rumqttc unsubscribes from one filter at a time ({} given)", filters.len()));
    }
    let filter = filters.into_iter().next().unwrap_or_default();
    match client {
        Client::V4(client) => client.unsubscribe(filter).await.map_err(|e| e.to_string()),
        Client::V5(client) => client.unsubscribe(filter).await.map_err(|e| e.to_string()),
    }
}

#[tokio::main]
async fn main() {
    let (out, mut rx) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(message) = rx.recv().await {
            let mut line = message.to_string();
            line.push('\n');
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
        }
    });
    let _ = out.send(json!({"event": "hello", "library": "rumqttc", "library_version": "0.25.1",
        "versions": ["3.1.1", "5.0"], "capabilities": []}));
    let shared: Shared = Arc::default();
    let mut client: Option<Client> = None;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(c) = serde_json::from_str::<Value>(&line) else { continue };
        let id = c.get("id").cloned().unwrap_or(Value::Null);
        let name = text(&c, "cmd").unwrap_or_default();
        if name == "quit" {
            break;
        }
        let result: Result<(), String> = match (name.as_str(), &client) {
            ("plan", _) => Ok(()),
            ("connect", None) => {
                // rumqttc refuses some option combinations by panicking (an empty client id
                // with clean session off): that is the library refusing the command.
                let (out, shared, command) = (out.clone(), Arc::clone(&shared), c.clone());
                let connected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    if command.get("version").and_then(Value::as_str) == Some("5.0") {
                        connect_v5(&command, out, shared)
                    } else {
                        connect_v4(&command, out, shared)
                    }
                }))
                .unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(format!("rumqttc panicked: {why}"))
                });
                connected.map(|made| client = Some(made))
            }
            ("connect", Some(_)) => Err("unsupported: one connect per client".into()),
            (_, None) => Err("not connected (no connect command yet)".into()),
            ("publish", Some(cl)) => {
                shared.lock().unwrap().publishes.push_back(id.clone());
                publish(cl, &c).await
            }
            ("subscribe", Some(cl)) => {
                shared.lock().unwrap().subscribes.push_back(id.clone());
                subscribe(cl, &c).await
            }
            ("unsubscribe", Some(cl)) => {
                shared.lock().unwrap().unsubscribes.push_back(id.clone());
                unsubscribe(cl, &c).await
            }
            ("disconnect", Some(_)) if num(&c, "reason_code").unwrap_or(0) != 0 => {
                Err("unsupported: rumqttc's disconnect() takes no reason code".into())
            }
            ("disconnect", Some(cl)) => {
                shared.lock().unwrap().disconnect = Some(id.clone());
                match cl {
                    Client::V4(cl) => cl.disconnect().await.map_err(|e| e.to_string()),
                    Client::V5(cl) => cl.disconnect().await.map_err(|e| e.to_string()),
                }
            }
            (other, _) => Err(format!("unsupported: unknown command {other}")),
        };
        let reply = match result {
            Ok(()) => json!({"event": "ack", "id": id}),
            Err(why) => match why.strip_prefix("unsupported: ") {
                Some(reason) => json!({"event": "unsupported", "id": id, "reason": reason}),
                None => {
                    // A refused request must not be matched to a later packet.
                    let mut guard = shared.lock().unwrap();
                    let pending = &mut *guard;
                    for queue in [&mut pending.publishes, &mut pending.subscribes, &mut pending.unsubscribes] {
                        if queue.back() == Some(&id) {
                            queue.pop_back();
                        }
                    }
                    json!({"event": "error", "id": id, "message": why})
                }
            },
        };
        let _ = out.send(reply);
    }
    drop(out);
    let _ = tokio::time::timeout(Duration::from_millis(200), writer).await;
    std::process::exit(0);
}

//! A behaviour-injecting MQTT proxy in front of the real reference broker, on 127.0.0.1:
//! each test gives it one way of behaving that some real broker has (speaking only 3.1.1,
//! dying after a few connections, pushing retained messages to every new connection, one
//! message in flight, refusing `$` publishes, requiring credentials, rewriting SUBSCRIBE,
//! SUBACK and CONNACK), so that the runner's verdicts on that behaviour can be checked
//! against what the standard allows.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mqttkit_codec::{PROTOCOL_MAX_PACKET_SIZE, Status, parse_fixed_header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What to do with one frame (or at one moment).
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes to the broker.
    ToBroker(Vec<u8>),
    /// Send these bytes to the client.
    ToClient(Vec<u8>),
    /// Close both sides.
    Close,
}

/// Per-connection state a behaviour may keep.
#[derive(Debug, Default)]
pub struct Conn {
    /// Protocol level from the CONNECT (4 or 5), 0 before it.
    pub level: u8,
    /// Packet id of the QoS 1/2 PUBLISH to the client not yet acknowledged.
    pub outstanding: Option<u16>,
    /// PUBLISH frames to the client held back.
    pub held: std::collections::VecDeque<Vec<u8>>,
    /// Packet ids of client requests a behaviour waits to see answered.
    pub watched: Vec<u16>,
}

/// How the proxy behaves; every method defaults to a transparent proxy.
pub trait Behaviour: Send + Sync + 'static {
    /// Whether the `index`-th connection (from 0) is served at all.
    fn serve(&self, _index: usize) -> bool {
        true
    }
    /// A frame from the client.
    fn on_client_frame(&self, _conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        vec![Step::ToBroker(frame.to_vec())]
    }
    /// A frame from the broker.
    fn on_broker_frame(&self, _conn: &mut Conn, frame: &[u8]) -> Vec<Step> {
        vec![Step::ToClient(frame.to_vec())]
    }
}

/// A running proxy.
pub struct Proxy {
    /// `mqtt://127.0.0.1:PORT`.
    pub url: String,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
}

/// Start a proxy to `broker` (host:port) with `behaviour`.
pub async fn start(broker: std::net::SocketAddr, behaviour: impl Behaviour) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("mqtt://{}", listener.local_addr().expect("addr"));
    let behaviour = Arc::new(behaviour);
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let index = counter.fetch_add(1, Ordering::SeqCst);
            let behaviour = Arc::clone(&behaviour);
            tokio::spawn(async move {
                if behaviour.serve(index) {
                    if let Ok(broker) = TcpStream::connect(broker).await {
                        relay(client, broker, behaviour).await;
                    }
                } else {
                    swallow(client).await;
                }
            });
        }
    });
    Proxy { url, accepted }
}

/// Accept bytes and never answer (a broker whose core is dead but whose socket is open).
async fn swallow(mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Split complete frames off the front of `buffer`.
pub fn frames(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Ok(Status::Complete(header)) = parse_fixed_header(buffer, None, PROTOCOL_MAX_PACKET_SIZE) {
        if buffer.len() < header.frame_len() {
            break;
        }
        let rest = buffer.split_off(header.frame_len());
        out.push(std::mem::replace(buffer, rest));
    }
    out
}

/// Offset of the variable header in a frame.
pub fn body_start(frame: &[u8]) -> usize {
    let mut i = 1;
    while frame.get(i).is_some_and(|b| b & 0x80 != 0) {
        i += 1;
    }
    i + 1
}

/// `(qos, topic, packet id)` of a PUBLISH frame.
pub fn publish_fields(frame: &[u8]) -> (u8, String, Option<u16>) {
    let qos = (frame[0] >> 1) & 3;
    let body = &frame[body_start(frame)..];
    let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let topic = String::from_utf8_lossy(&body[2..2 + len]).into_owned();
    let id = (qos > 0).then(|| u16::from_be_bytes([body[2 + len], body[3 + len]]));
    (qos, topic, id)
}

/// Packet id of an acknowledgement frame.
pub fn ack_id(frame: &[u8]) -> u16 {
    let body = &frame[body_start(frame)..];
    u16::from_be_bytes([body[0], body[1]])
}

/// Read a Variable Byte Integer at `at`: `(value, bytes used)`.
fn varint(bytes: &[u8], at: usize) -> (usize, usize) {
    let (mut value, mut shift, mut used) = (0usize, 0, 0);
    while let Some(byte) = bytes.get(at + used) {
        value |= usize::from(byte & 0x7f) << shift;
        used += 1;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    (value, used)
}

/// Encode a Variable Byte Integer.
fn encode_varint(mut value: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = u8::try_from(value % 128).unwrap();
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            break;
        }
    }
}

/// A frame with this first byte and body (Remaining Length computed).
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    encode_varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// Packet id of a SUBSCRIBE frame, and each filter with the offset (in the frame) of its
/// subscription options byte.
pub fn subscribe_filters(frame: &[u8], level: u8) -> (u16, Vec<(String, usize)>) {
    let start = body_start(frame);
    let id = u16::from_be_bytes([frame[start], frame[start + 1]]);
    let mut at = start + 2;
    if level == 5 {
        let (len, used) = varint(frame, at);
        at += used + len;
    }
    let mut filters = Vec::new();
    while at + 2 <= frame.len() {
        let len = usize::from(u16::from_be_bytes([frame[at], frame[at + 1]]));
        let Some(filter) = frame.get(at + 2..at + 2 + len) else { break };
        filters.push((String::from_utf8_lossy(filter).into_owned(), at + 2 + len));
        at += 3 + len;
    }
    (id, filters)
}

/// Remember the packet id of a SUBSCRIBE frame whose filters satisfy `watch`.
pub fn watch_subscribe(conn: &mut Conn, frame: &[u8], watch: impl Fn(&[(String, usize)]) -> bool) {
    if frame[0] == 0x82 {
        let (id, filters) = subscribe_filters(frame, conn.level);
        if watch(&filters) {
            conn.watched.push(id);
        }
    }
}

/// Whether `frame` is the SUBACK of a watched SUBSCRIBE (it is then no longer watched).
pub fn is_watched_suback(conn: &mut Conn, frame: &[u8]) -> bool {
    if frame[0] != 0x90 {
        return false;
    }
    let id = ack_id(frame);
    let watched = conn.watched.contains(&id);
    conn.watched.retain(|w| *w != id);
    watched
}

/// Offset (in the frame) of the first reason code of a SUBACK frame.
pub fn suback_codes_start(frame: &[u8], level: u8) -> usize {
    let start = body_start(frame) + 2;
    if level == 5 {
        let (len, used) = varint(frame, start);
        start + used + len
    } else {
        start
    }
}

/// A 5.0 CONNACK frame with `property` (identifier and value bytes) added to its properties.
pub fn connack_with_property(frame: &[u8], property: &[u8]) -> Vec<u8> {
    let body = &frame[body_start(frame)..];
    let (len, used) = varint(body, 2);
    let mut new_body = body[..2].to_vec();
    encode_varint(len + property.len(), &mut new_body);
    new_body.extend_from_slice(&body[2 + used..]);
    new_body.extend_from_slice(property);
    self::frame(frame[0], &new_body)
}

/// Payload of a PUBLISH frame.
pub fn publish_payload(frame: &[u8], level: u8) -> &[u8] {
    let body = &frame[body_start(frame)..];
    let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let mut at = 2 + len + if (frame[0] >> 1) & 3 > 0 { 2 } else { 0 };
    if level == 5 {
        let (props, used) = varint(body, at);
        at += used + props;
    }
    &body[at..]
}

/// Keep Alive of a CONNECT frame.
pub fn connect_keep_alive(frame: &[u8]) -> u16 {
    let body = &frame[body_start(frame)..];
    let name_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    u16::from_be_bytes([body[4 + name_len], body[5 + name_len]])
}

/// Protocol level and connect flags of a CONNECT frame.
pub fn connect_level_and_flags(frame: &[u8]) -> (u8, u8) {
    let body = &frame[body_start(frame)..];
    let name_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    (body[2 + name_len], body[3 + name_len])
}

/// A QoS 0 PUBLISH frame, with the empty property list in 5.0.
pub fn publish_frame(level: u8, topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&u16::try_from(topic.len()).unwrap().to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    frame(0x30 | u8::from(retain), &body)
}

async fn relay(client: TcpStream, broker: TcpStream, behaviour: Arc<dyn Behaviour>) {
    let conn = Arc::new(Mutex::new(Conn::default()));
    let closed = Arc::new(AtomicBool::new(false));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = broker.into_split();
    let (to_client, mut client_out) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    let (to_broker, mut broker_out) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    let apply = {
        let (to_client, to_broker, closed) = (to_client.clone(), to_broker.clone(), Arc::clone(&closed));
        move |steps: Vec<Step>| {
            for step in steps {
                match step {
                    Step::ToBroker(bytes) => drop(to_broker.send(Some(bytes))),
                    Step::ToClient(bytes) => drop(to_client.send(Some(bytes))),
                    Step::Close => {
                        closed.store(true, Ordering::SeqCst);
                        let _ = to_client.send(None);
                        let _ = to_broker.send(None);
                    }
                }
            }
        }
    };
    let client_writer = tokio::spawn(async move {
        while let Some(Some(bytes)) = client_out.recv().await {
            if client_write.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    });
    let broker_writer = tokio::spawn(async move {
        while let Some(Some(bytes)) = broker_out.recv().await {
            if broker_write.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = broker_write.shutdown().await;
    });
    let upstream = {
        let (behaviour, conn, apply, to_broker) =
            (Arc::clone(&behaviour), Arc::clone(&conn), apply.clone(), to_broker.clone());
        tokio::spawn(async move {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = client_read.read(&mut chunk).await {
                buffer.extend_from_slice(&chunk[..n]);
                for frame in frames(&mut buffer) {
                    if frame[0] == 0x10 {
                        conn.lock().unwrap().level = connect_level_and_flags(&frame).0;
                    }
                    let steps = behaviour.on_client_frame(&mut conn.lock().unwrap(), &frame);
                    apply(steps);
                }
                // Bytes that are not a frame (a malformed header) go to the broker as they are:
                // its reaction is what the scenario checks.
                if parse_fixed_header(&buffer, None, PROTOCOL_MAX_PACKET_SIZE).is_err() {
                    let _ = to_broker.send(Some(std::mem::take(&mut buffer)));
                }
            }
            // Anything left that is not a whole frame (malformed input) goes through as is.
            if !buffer.is_empty() {
                let _ = to_broker.send(Some(buffer));
            }
            let _ = to_broker.send(None);
        })
    };
    let downstream = {
        let (conn, apply) = (Arc::clone(&conn), apply.clone());
        tokio::spawn(async move {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = broker_read.read(&mut chunk).await {
                buffer.extend_from_slice(&chunk[..n]);
                for frame in frames(&mut buffer) {
                    let steps = behaviour.on_broker_frame(&mut conn.lock().unwrap(), &frame);
                    apply(steps);
                }
            }
            let _ = to_client.send(None);
        })
    };
    let _ = tokio::join!(client_writer, broker_writer);
    upstream.abort();
    downstream.abort();
}

//! A behaviour-injecting MQTT proxy in front of the real reference broker, on 127.0.0.1:
//! each test gives it one way of behaving that some real broker has (speaking only 3.1.1,
//! dying after a few connections, pushing retained messages to every new connection, one
//! message in flight, refusing `$` publishes, requiring credentials), so that the runner's
//! verdicts on that behaviour can be checked against what the standard allows.

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
    let mut frame = vec![0x30 | u8::from(retain)];
    let mut len = body.len();
    loop {
        let mut byte = u8::try_from(len % 128).unwrap();
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        frame.push(byte);
        if len == 0 {
            break;
        }
    }
    frame.extend_from_slice(&body);
    frame
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

//! The runner's side of a client's connection: it listens on an ephemeral 127.0.0.1 port,
//! reads what the client sends (the protocol version taken from its CONNECT), answers
//! PINGREQ at once unless told to withhold PINGRESP, and writes what the scenario sends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mqttkit_codec::{PROTOCOL_MAX_PACKET_SIZE, Packet, ProtocolVersion, Status, parse_fixed_header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::Trace;
use crate::observed::{Observed, Value};
use crate::outcome::Direction;
use crate::version::Version;

/// PINGRESP, the same in every version.
const PINGRESP: [u8; 2] = [0xD0, 0x00];

/// Something that happened on a connection.
#[derive(Debug, Clone)]
pub enum ConnEvent {
    /// A packet from the client (possibly `MALFORMED`), and when it arrived.
    Packet(Observed, Instant),
    /// The connection ended (closed by the client, or reset).
    Closed(String),
}

/// Answers the runner gives without a scenario step.
#[derive(Debug)]
pub struct AutoAnswers {
    /// Answer PINGREQ with PINGRESP.
    pub pingresp: AtomicBool,
}

impl Default for AutoAnswers {
    fn default() -> Self {
        Self { pingresp: AtomicBool::new(true) }
    }
}

/// Accepts the client's connections for one scenario run.
#[derive(Debug)]
pub struct Listener {
    /// `mqtt://127.0.0.1:PORT`.
    pub url: String,
    accepted: mpsc::UnboundedReceiver<ServerConnection>,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Listen on an ephemeral port of 127.0.0.1.
    pub async fn bind(trace: Trace, auto: Arc<AutoAnswers>, version: Version) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("mqtt://{}", listener.local_addr()?);
        let (sender, accepted) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut count = 0usize;
            while let Ok((stream, peer)) = listener.accept().await {
                count += 1;
                let name = format!("conn{count}");
                trace.record(&name, Direction::Event, format!("accepted a connection from {peer}"), &[]);
                let connection = ServerConnection::new(stream, name, trace.clone(), Arc::clone(&auto), version);
                if sender.send(connection).is_err() {
                    return;
                }
            }
        });
        Ok(Self { url, accepted, task })
    }

    /// The next connection the client opened, before `deadline`.
    pub async fn accept(&mut self, deadline: tokio::time::Instant) -> Option<ServerConnection> {
        tokio::time::timeout_at(deadline, self.accepted.recv()).await.ok().flatten()
    }
}

/// One accepted connection.
#[derive(Debug)]
pub struct ServerConnection {
    /// Its name in the trace (`conn1`, `conn2`, …).
    pub name: String,
    writer: Arc<tokio::sync::Mutex<Option<OwnedWriteHalf>>>,
    events: mpsc::UnboundedReceiver<ConnEvent>,
    reader: JoinHandle<()>,
    closed: Option<String>,
    /// When each packet of the client arrived, with its type.
    pub log: Arc<Mutex<Vec<(Instant, String)>>>,
    /// Bytes are encoded for this version (the scenario's).
    pub version: Version,
    trace: Trace,
}

impl Drop for ServerConnection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl ServerConnection {
    fn new(stream: TcpStream, name: String, trace: Trace, auto: Arc<AutoAnswers>, version: Version) -> Self {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(Some(write)));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sender, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(ReadLoop {
            read,
            writer: Arc::clone(&writer),
            events: sender,
            name: name.clone(),
            trace: trace.clone(),
            auto,
            log: Arc::clone(&log),
        }));
        Self { name, writer, events, reader, closed: None, log, version, trace }
    }

    /// Write bytes (recorded in the trace, decoded for the scenario's version).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let summary = crate::client::decode_frame(bytes, self.version).to_string();
        self.trace.record(&self.name, Direction::Sent, summary, bytes);
        write(&self.writer, bytes).await.map_err(|e| {
            let message = format!("send failed: {e}");
            self.trace.record(&self.name, Direction::Event, message.clone(), &[]);
            message
        })
    }

    /// The next event before `deadline`; `None` on timeout. Once closed, keeps returning
    /// the close.
    pub async fn next_event(&mut self, deadline: tokio::time::Instant) -> Option<ConnEvent> {
        if let Some(how) = &self.closed {
            return Some(ConnEvent::Closed(how.clone()));
        }
        match tokio::time::timeout_at(deadline, self.events.recv()).await {
            Err(_) => None,
            Ok(Some(ConnEvent::Closed(how))) => {
                self.closed = Some(how.clone());
                Some(ConnEvent::Closed(how))
            }
            Ok(Some(event)) => Some(event),
            Ok(None) => {
                let how = "the reader stopped".to_owned();
                self.closed = Some(how.clone());
                Some(ConnEvent::Closed(how))
            }
        }
    }

    /// Whether the client has closed it.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Close it abruptly (no DISCONNECT).
    pub async fn close(&mut self) {
        self.reader.abort();
        if let Some(mut writer) = self.writer.lock().await.take() {
            let _ = writer.shutdown().await;
        }
        self.closed.get_or_insert_with(|| "closed by the runner".to_owned());
        self.trace.record(&self.name, Direction::Event, "closed by the runner (no DISCONNECT)".into(), &[]);
    }
}

async fn write(writer: &tokio::sync::Mutex<Option<OwnedWriteHalf>>, bytes: &[u8]) -> std::io::Result<()> {
    let mut guard = writer.lock().await;
    let writer = guard.as_mut().ok_or_else(|| std::io::Error::other("the runner closed this connection"))?;
    writer.write_all(bytes).await?;
    writer.flush().await
}

struct ReadLoop {
    read: tokio::net::tcp::OwnedReadHalf,
    writer: Arc<tokio::sync::Mutex<Option<OwnedWriteHalf>>>,
    events: mpsc::UnboundedSender<ConnEvent>,
    name: String,
    trace: Trace,
    auto: Arc<AutoAnswers>,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
}

/// Decode one frame from the client: a CONNECT carries its own version; anything else is
/// decoded under the version of the CONNECT before it (and refused before any CONNECT).
fn decode_client_frame(frame: &[u8], version: Option<ProtocolVersion>) -> Observed {
    let header = match parse_fixed_header(frame, version, PROTOCOL_MAX_PACKET_SIZE) {
        Ok(Status::Complete(header)) if header.frame_len() == frame.len() => header,
        Ok(_) => return Observed::malformed("length does not match the bytes".into()),
        Err(e) => return Observed::malformed(e.to_string()),
    };
    let body = frame.get(header.header_len..).unwrap_or_default();
    match Packet::decode(header.first_byte, body, version) {
        Ok(packet) => {
            let packet_version = match &packet {
                Packet::Connect(connect) => connect.version,
                _ => version.unwrap_or(ProtocolVersion::V3_1_1),
            };
            let label = if packet_version == ProtocolVersion::V5 { Version::V5 } else { Version::V3_1_1 };
            Observed::from_packet(&packet, label)
        }
        Err(e) => Observed::malformed(e.to_string()),
    }
}

async fn read_loop(mut state: ReadLoop) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut version: Option<ProtocolVersion> = None;
    let mut stream_dead = false;
    loop {
        let read = match state.read.read(&mut chunk).await {
            Ok(0) => {
                let how = if buffer.is_empty() || stream_dead {
                    "closed by the client".to_owned()
                } else {
                    format!("closed by the client with {} bytes of an incomplete packet", buffer.len())
                };
                state.trace.record(&state.name, Direction::Event, how.clone(), &[]);
                let _ = state.events.send(ConnEvent::Closed(how));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let how = format!("connection error: {e}");
                state.trace.record(&state.name, Direction::Event, how.clone(), &[]);
                let _ = state.events.send(ConnEvent::Closed(how));
                return;
            }
        };
        let bytes = chunk.get(..read).unwrap_or_default();
        if stream_dead {
            state.trace.record(
                &state.name,
                Direction::Received,
                "bytes after a malformed packet (ignored)".into(),
                bytes,
            );
            continue;
        }
        buffer.extend_from_slice(bytes);
        loop {
            match parse_fixed_header(&buffer, version, PROTOCOL_MAX_PACKET_SIZE) {
                Ok(Status::Complete(header)) if buffer.len() >= header.frame_len() => {
                    let rest = buffer.split_off(header.frame_len());
                    let frame = std::mem::replace(&mut buffer, rest);
                    let now = Instant::now();
                    let mut observed = decode_client_frame(&frame, version);
                    observed.field("size", Value::Int(frame.len() as u64));
                    if observed.kind == "CONNECT" {
                        version = Some(match observed.text("protocol_version") {
                            Some("5.0") => ProtocolVersion::V5,
                            Some("3.1") => ProtocolVersion::V3_1,
                            _ => ProtocolVersion::V3_1_1,
                        });
                    }
                    state.trace.record(&state.name, Direction::Received, observed.to_string(), &frame);
                    state
                        .log
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((now, observed.kind.clone()));
                    if observed.kind == "PINGREQ" && state.auto.pingresp.load(Ordering::Relaxed) {
                        state.trace.record(&state.name, Direction::Sent, "PINGRESP (automatic)".into(), &PINGRESP);
                        let _ = write(&state.writer, &PINGRESP).await;
                    }
                    let malformed = observed.kind == crate::observed::MALFORMED;
                    let _ = state.events.send(ConnEvent::Packet(observed, now));
                    if malformed {
                        stream_dead = true;
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    let observed = Observed::malformed(e.to_string());
                    state.trace.record(&state.name, Direction::Received, observed.to_string(), &buffer);
                    let _ = state.events.send(ConnEvent::Packet(observed, Instant::now()));
                    buffer.clear();
                    stream_dead = true;
                    break;
                }
            }
        }
    }
}

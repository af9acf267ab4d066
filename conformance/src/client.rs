//! One raw, codec-level client connection: bytes out exactly as the scenario wrote them,
//! packets in through a reader task, everything recorded in the scenario's trace.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use mqttkit_codec::{PROTOCOL_MAX_PACKET_SIZE, Packet, Status, parse_fixed_header};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::observed::{Observed, spaced_hex};
use crate::outcome::{Direction, TraceEntry};
use crate::transport::{Connector, Reader, Writer};
use crate::version::Version;

/// The packet trace of one scenario run, shared by its connections.
#[derive(Debug, Clone)]
pub struct Trace {
    start: Instant,
    entries: Arc<Mutex<Vec<TraceEntry>>>,
}

impl Default for Trace {
    fn default() -> Self {
        Self { start: Instant::now(), entries: Arc::default() }
    }
}

impl Trace {
    /// Record one entry.
    pub fn record(&self, client: &str, direction: Direction, summary: String, bytes: &[u8]) {
        let entry = TraceEntry {
            at_ms: u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
            client: client.to_owned(),
            direction,
            summary,
            hex: spaced_hex(bytes),
        };
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(entry);
    }

    /// Everything recorded so far.
    pub fn entries(&self) -> Vec<TraceEntry> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Something that happened on a connection.
#[derive(Debug, Clone)]
pub enum Event {
    /// A packet arrived (possibly `MALFORMED`).
    Packet(Observed),
    /// The connection ended, with how.
    Closed(String),
    /// The transport under the MQTT conversation failed (e.g. a TLS alert such as a
    /// rejected client certificate): a runner or network error, not the broker's MQTT answer.
    TransportFailed(String),
}

/// Decode a frame of `version` for display and matching.
pub fn decode_frame(frame: &[u8], version: Version) -> Observed {
    // A server that does not speak 5.0 answers a 5.0 CONNECT in the 3.1.1 form, which has no
    // property length: not a malformed packet but a refusal in the older format.
    if let ([0x20, 0x02, flags, code], true) = (frame, version.is_v5()) {
        return Observed::connack_in_v3_form(*flags, *code);
    }
    match parse_fixed_header(frame, Some(version.protocol()), PROTOCOL_MAX_PACKET_SIZE) {
        Ok(Status::Complete(header)) if header.frame_len() == frame.len() => {
            let body = frame.get(header.header_len..).unwrap_or_default();
            match Packet::decode(header.first_byte, body, Some(version.protocol())) {
                Ok(packet) => Observed::from_packet(&packet, version),
                Err(e) => Observed::malformed(e.to_string()),
            }
        }
        Ok(Status::Complete(_)) => Observed::malformed("length does not match the bytes".into()),
        Ok(Status::Incomplete { .. }) => Observed::malformed("incomplete packet".into()),
        Err(e) => Observed::malformed(e.to_string()),
    }
}

/// The Topic Alias mappings the server set up on one connection (5.0 §3.3.2.3.4): a PUBLISH
/// with a Topic Name and a Topic Alias sets the mapping, one with an empty Topic Name uses it.
/// Resolved PUBLISHes carry the topic (and `topic_from_alias = true`), so that matching and
/// cross-talk see the topic the server meant.
#[derive(Debug, Default)]
struct TopicAliases {
    topics: std::collections::HashMap<u64, String>,
}

impl TopicAliases {
    fn resolve(&mut self, packet: &mut Observed) {
        let (Some(alias), Some(topic)) = (packet.int_property("topic_alias"), packet.text("topic")) else { return };
        if !topic.is_empty() {
            self.topics.insert(alias, topic.to_owned());
        } else if let Some(mapped) = self.topics.get(&alias) {
            packet.fields.insert("topic".into(), crate::observed::Value::Str(mapped.clone()));
            packet.fields.insert("topic_from_alias".into(), crate::observed::Value::Bool(true));
        }
    }
}

/// A live connection.
#[derive(Debug)]
pub struct Connection {
    name: String,
    version: Version,
    writer: Option<Writer>,
    events: mpsc::UnboundedReceiver<Event>,
    reader: JoinHandle<()>,
    closed: Option<Event>,
    last_received: Option<Observed>,
    trace: Trace,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Open the network connection.
    pub async fn open(connector: &Connector, name: &str, version: Version, trace: Trace) -> std::io::Result<Self> {
        let (reader, writer) = connector.connect().await?;
        trace.record(name, Direction::Event, format!("connected to {}", connector.address()), &[]);
        let (sender, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(reader, sender, name.to_owned(), version, trace.clone()));
        Ok(Self {
            name: name.to_owned(),
            version,
            writer: Some(writer),
            events,
            reader,
            closed: None,
            last_received: None,
            trace,
        })
    }

    /// Send bytes; a failure is recorded and returned (the broker may have closed).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let summary = decode_frame(bytes, self.version).to_string();
        self.trace.record(&self.name, Direction::Sent, summary, bytes);
        let Some(writer) = self.writer.as_mut() else {
            return Err("the connection is already closed".into());
        };
        if let Err(e) = writer.write(bytes).await {
            let message = format!("send failed: {e}");
            self.trace.record(&self.name, Direction::Event, message.clone(), &[]);
            return Err(message);
        }
        Ok(())
    }

    /// The next event before `deadline`; `None` on timeout. After the connection closed
    /// (or its transport failed), keeps returning that same event.
    pub async fn next_event(&mut self, deadline: tokio::time::Instant) -> Option<Event> {
        if let Some(end) = &self.closed {
            return Some(end.clone());
        }
        match tokio::time::timeout_at(deadline, self.events.recv()).await {
            Err(_) => None,
            Ok(Some(Event::Packet(packet))) => {
                self.last_received = Some(packet.clone());
                Some(Event::Packet(packet))
            }
            Ok(Some(end)) => {
                self.closed = Some(end.clone());
                Some(end)
            }
            Ok(None) => {
                let end = Event::Closed("the reader stopped".to_owned());
                self.closed = Some(end.clone());
                Some(end)
            }
        }
    }

    /// The last packet received on this connection.
    pub fn last_received(&self) -> Option<Observed> {
        self.last_received.clone()
    }

    /// Whether the broker has been seen to close the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Close the sending side cleanly (after a DISCONNECT) and stop reading.
    pub async fn close(mut self) {
        if let Some(mut writer) = self.writer.take() {
            writer.shutdown().await;
        }
        self.trace.record(&self.name, Direction::Event, "closed by runner".into(), &[]);
    }

    /// Drop the connection without DISCONNECT.
    pub fn abort(mut self) {
        self.writer = None;
        self.reader.abort();
        self.trace.record(&self.name, Direction::Event, "dropped by runner (no DISCONNECT)".into(), &[]);
    }
}

async fn read_loop(
    mut reader: Reader,
    events: mpsc::UnboundedSender<Event>,
    name: String,
    version: Version,
    trace: Trace,
) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut stream_dead = false;
    let mut aliases = TopicAliases::default();
    loop {
        let chunk = match reader.read().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                let how = if buffer.is_empty() {
                    "closed by broker".to_owned()
                } else {
                    format!("closed by broker with {} bytes of an incomplete packet", buffer.len())
                };
                trace.record(&name, Direction::Event, how.clone(), &buffer);
                let _ = events.send(Event::Closed(how));
                return;
            }
            Err(e) => {
                let (how, event): (String, fn(String) -> Event) = if crate::transport::tls_failure(&e).is_some() {
                    (format!("TLS failure: {e}"), Event::TransportFailed)
                } else {
                    (format!("connection error: {e}"), Event::Closed)
                };
                trace.record(&name, Direction::Event, how.clone(), &[]);
                let _ = events.send(event(how));
                return;
            }
        };
        if stream_dead {
            trace.record(&name, Direction::Received, "bytes after a malformed packet (ignored)".into(), &chunk);
            continue;
        }
        buffer.extend_from_slice(&chunk);
        loop {
            match parse_fixed_header(&buffer, Some(version.protocol()), PROTOCOL_MAX_PACKET_SIZE) {
                Ok(Status::Complete(header)) if buffer.len() >= header.frame_len() => {
                    let rest = buffer.split_off(header.frame_len());
                    let frame = std::mem::replace(&mut buffer, rest);
                    let mut observed = decode_frame(&frame, version);
                    aliases.resolve(&mut observed);
                    trace.record(&name, Direction::Received, observed.to_string(), &frame);
                    let _ = events.send(Event::Packet(observed));
                }
                Ok(_) => break,
                Err(e) => {
                    let observed = Observed::malformed(e.to_string());
                    trace.record(&name, Direction::Received, observed.to_string(), &buffer);
                    let _ = events.send(Event::Packet(observed));
                    buffer.clear();
                    stream_dead = true;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::Value;

    fn publish(topic: &str, alias: u64) -> Observed {
        let mut packet = Observed::malformed(String::new());
        packet.kind = "PUBLISH".into();
        packet.error = None;
        packet.fields.insert("topic".into(), Value::Str(topic.into()));
        packet.properties.insert("topic_alias".into(), Value::Int(alias));
        packet
    }

    #[test]
    fn a_publish_with_an_empty_topic_gets_the_topic_its_alias_maps_to() {
        let mut aliases = TopicAliases::default();
        let mut first = publish("p/a", 1);
        aliases.resolve(&mut first);
        assert_eq!(first.text("topic"), Some("p/a"));
        assert!(!first.fields.contains_key("topic_from_alias"));
        let mut second = publish("", 1);
        aliases.resolve(&mut second);
        assert_eq!(second.text("topic"), Some("p/a"));
        assert_eq!(second.fields.get("topic_from_alias"), Some(&Value::Bool(true)));
        let mut unknown = publish("", 2);
        aliases.resolve(&mut unknown);
        assert_eq!(unknown.text("topic"), Some(""), "an unknown alias is left for the scenario to judge");
    }
}

//! What applications send and receive: topics, publications, received messages,
//! subscriptions, and connection events.

use core::fmt;
use core::hash::{Hash, Hasher};
use std::time::Duration;

use bytes::Bytes;
use mqttkit_codec::{
    PacketType, Properties, Property, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
};

/// A topic name held as shared bytes, so that publishing to the same topic again costs a
/// reference count, not an allocation. Checked when it is sent.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Topic(Bytes);

impl Topic {
    /// A topic copied from `text`.
    pub fn copy_from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// The topic.
    pub fn as_str(&self) -> &str {
        // Only ever built from `str` (or from a validated wire string).
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the topic is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Wrap bytes already checked to be a UTF-8 string (a topic off the wire).
    pub(crate) fn from_checked(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl Hash for Topic {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl From<&'static str> for Topic {
    fn from(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for Topic {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&String> for Topic {
    fn from(text: &String) -> Self {
        Self::copy_from(text)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Topic {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Topic {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// 5.0 PUBLISH properties an application sets (§3.3.2.3). Topic Alias is chosen by the
/// client ([`crate::Options::topic_aliases`]); a client never sends Subscription
/// Identifiers \[MQTT-5.0: 3.3.4-6\].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// Payload Format Indicator: `Some(true)` for UTF-8 text.
    pub payload_format_utf8: Option<bool>,
    /// Message Expiry Interval, seconds.
    pub message_expiry_interval: Option<u32>,
    /// Content Type.
    pub content_type: Option<String>,
    /// Response Topic.
    pub response_topic: Option<String>,
    /// Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// User Properties, in order.
    pub user_properties: Vec<(String, String)>,
}

impl PublishProperties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Append the properties' wire form (unchecked: the packet's encoder checks the block).
    pub(crate) fn write(&self, buf: &mut Vec<u8>) {
        if let Some(utf8) = self.payload_format_utf8 {
            Property::PayloadFormatIndicator(u8::from(utf8)).encode(buf);
        }
        if let Some(v) = self.message_expiry_interval {
            Property::MessageExpiryInterval(v).encode(buf);
        }
        if let Some(v) = &self.content_type {
            Property::ContentType(v).encode(buf);
        }
        if let Some(v) = &self.response_topic {
            Property::ResponseTopic(v).encode(buf);
        }
        if let Some(v) = &self.correlation_data {
            Property::CorrelationData(v).encode(buf);
        }
        for (k, v) in &self.user_properties {
            Property::UserProperty(k, v).encode(buf);
        }
    }
}

/// An application message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Topic Name.
    pub topic: Topic,
    /// QoS.
    pub qos: QoS,
    /// RETAIN.
    pub retain: bool,
    /// Payload (shared: the client keeps a reference, never a copy, until acknowledged).
    pub payload: Bytes,
    /// 5.0 properties (boxed: most publications have none).
    pub properties: Option<Box<PublishProperties>>,
}

impl Publication {
    /// A publication without properties.
    pub fn new(topic: impl Into<Topic>, qos: QoS, retain: bool, payload: impl Into<Bytes>) -> Self {
        Self { topic: topic.into(), qos, retain, payload: payload.into(), properties: None }
    }

    /// With 5.0 properties.
    #[must_use]
    pub fn with_properties(mut self, properties: PublishProperties) -> Self {
        self.properties = (!properties.is_empty()).then(|| Box::new(properties));
        self
    }
}

/// A message received from the server.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub(crate) topic: Topic,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) dup: bool,
    pub(crate) packet_id: Option<u16>,
    /// The validated 5.0 property block (Topic Alias included), empty before 5.0.
    pub(crate) properties: Bytes,
}

impl Message {
    /// The topic (resolved from a Topic Alias when the server used one).
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }

    /// The topic as shared bytes.
    pub fn topic_bytes(&self) -> &Topic {
        &self.topic
    }

    /// The payload (a slice of the received packet: no copy).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// QoS of the delivery.
    pub fn qos(&self) -> QoS {
        self.qos
    }

    /// RETAIN flag.
    pub fn retain(&self) -> bool {
        self.retain
    }

    /// DUP flag.
    pub fn dup(&self) -> bool {
        self.dup
    }

    /// Packet Identifier (QoS 1 and 2).
    pub fn packet_id(&self) -> Option<u16> {
        self.packet_id
    }

    /// The 5.0 properties as the codec's view (empty before 5.0).
    pub fn properties(&self) -> Properties<'_> {
        // Validated when the PUBLISH was decoded.
        Properties::from_raw_unchecked(&self.properties)
    }

    /// User Properties, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties().user_properties()
    }

    /// Subscription Identifiers, in order.
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = u32> + '_ {
        self.properties().subscription_identifiers()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("dup", &self.dup)
            .field("payload_len", &self.payload.len())
            .field("properties", &self.properties())
            .finish()
    }
}

/// A topic filter with its subscription options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic Filter.
    pub filter: String,
    /// QoS, and the 5.0 options No Local, Retain As Published and Retain Handling.
    pub options: SubscriptionOptions,
}

impl Subscription {
    /// A subscription at `qos` with default options.
    pub fn new(filter: impl Into<String>, qos: QoS) -> Self {
        Self { filter: filter.into(), options: SubscriptionOptions::qos(qos) }
    }

    /// 5.0 No Local.
    #[must_use]
    pub fn no_local(mut self, on: bool) -> Self {
        self.options.no_local = on;
        self
    }

    /// 5.0 Retain As Published.
    #[must_use]
    pub fn retain_as_published(mut self, on: bool) -> Self {
        self.options.retain_as_published = on;
        self
    }

    /// 5.0 Retain Handling.
    #[must_use]
    pub fn retain_handling(mut self, handling: RetainHandling) -> Self {
        self.options.retain_handling = handling;
        self
    }
}

impl<S: Into<String>> From<(S, QoS)> for Subscription {
    fn from((filter, qos): (S, QoS)) -> Self {
        Self::new(filter, qos)
    }
}

/// 5.0 SUBSCRIBE / UNSUBSCRIBE properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestProperties {
    /// Subscription Identifier (SUBSCRIBE only; 1 to 268,435,455).
    pub subscription_identifier: Option<u32>,
    /// User Properties, in order.
    pub user_properties: Vec<(String, String)>,
}

impl RequestProperties {
    pub(crate) fn write(&self, buf: &mut Vec<u8>) {
        if let Some(id) = self.subscription_identifier {
            Property::SubscriptionIdentifier(id).encode(buf);
        }
        for (k, v) in &self.user_properties {
            Property::UserProperty(k, v).encode(buf);
        }
    }
}

/// What the server granted in CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// Session Present.
    pub session_present: bool,
    /// 5.0 Assigned Client Identifier (the server chose the id).
    pub assigned_client_id: Option<String>,
    /// The Keep Alive in force (the 5.0 Server Keep Alive when the server sent one).
    pub keep_alive: Duration,
    /// 5.0 Receive Maximum of the server (65,535 when absent or before 5.0).
    pub receive_maximum: u16,
    /// 5.0 Maximum Packet Size of the server.
    pub maximum_packet_size: Option<u32>,
    /// 5.0 Topic Alias Maximum of the server.
    pub topic_alias_maximum: u16,
    /// 5.0 Maximum QoS.
    pub maximum_qos: QoS,
    /// 5.0 Retain Available.
    pub retain_available: bool,
    /// 5.0 Response Information.
    pub response_information: Option<String>,
    /// 5.0 Reason String.
    pub reason_string: Option<String>,
    /// Which of [`crate::Options::servers`] this connection goes to.
    pub server: usize,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// No PINGRESP within the ping timeout.
    PingTimeout,
    /// No CONNACK within the connect timeout.
    ConnectTimeout,
    /// The transport could not be opened (TCP, TLS or WebSocket).
    TransportFailed(String),
    /// The server closed the connection (or the transport failed while open).
    TransportClosed(String),
    /// The server refused the connection with this CONNACK code.
    Refused {
        /// The CONNACK reason code (3.1.1 return code).
        code: ReasonCode,
        /// 5.0 Reason String.
        reason_string: Option<String>,
    },
    /// The server sent DISCONNECT (5.0; a 3.1.1 server just closes).
    ServerDisconnect {
        /// The DISCONNECT reason code.
        code: ReasonCode,
        /// Reason String.
        reason_string: Option<String>,
        /// Server Reference (another server to use).
        server_reference: Option<String>,
    },
    /// The server broke the protocol (malformed packet or protocol error); in 5.0 the
    /// client sent DISCONNECT with this reason code before closing.
    ProtocolError {
        /// What was wrong, citing the statement.
        error: String,
        /// The reason code sent (or that would be sent, before 5.0).
        code: ReasonCode,
    },
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PingTimeout => f.write_str("ping timeout"),
            Self::ConnectTimeout => f.write_str("connect timeout (no CONNACK)"),
            Self::TransportFailed(e) => write!(f, "could not connect: {e}"),
            Self::TransportClosed(e) => write!(f, "connection closed: {e}"),
            Self::Refused { code, reason_string } => {
                write!(f, "connection refused: {}", describe_connack(*code))?;
                if let Some(reason) = reason_string {
                    write!(f, " ({reason})")?;
                }
                Ok(())
            }
            Self::ServerDisconnect { code, reason_string, server_reference } => {
                write!(f, "server sent DISCONNECT {}", code.display(PacketType::Disconnect, ProtocolVersion::V5))?;
                if let Some(reason) = reason_string {
                    write!(f, ": {reason}")?;
                }
                if let Some(server) = server_reference {
                    write!(f, " (use {server})")?;
                }
                Ok(())
            }
            Self::ProtocolError { error, code } => write!(
                f,
                "protocol error from server: {error} (reason {})",
                code.display(PacketType::Disconnect, ProtocolVersion::V5)
            ),
        }
    }
}

/// A CONNACK refusal in hex and the standard's words: `0x05 (Connection Refused, not
/// authorized)` (3.1.1 return codes 1–5), `0x87 (Not authorized)` (5.0).
pub fn describe_connack(code: ReasonCode) -> String {
    let version = if code.0 <= 0x05 { ProtocolVersion::V3_1_1 } else { ProtocolVersion::V5 };
    code.display(PacketType::ConnAck, version).to_string()
}

/// Why a client stopped for good.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application disconnected.
    Disconnected,
    /// The connection failed and no further attempt is made (auto-reconnect off, first
    /// connection without retry, or a refusal that retrying cannot fix).
    Failed(LostReason),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected => f.write_str("disconnected"),
            Self::Failed(reason) => reason.fmt(f),
        }
    }
}

/// Connection events, for [`crate::Options::on_event`] and [`crate::Client::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// CONNACK accepted the connection.
    Connected(Connected),
    /// An established connection (or an attempt) ended.
    ConnectionLost {
        /// Why.
        reason: LostReason,
    },
    /// The next attempt starts after `delay`.
    Reconnecting {
        /// Attempt number since the last successful connection (1 = first retry).
        attempt: u32,
        /// Back-off delay before it.
        delay: Duration,
    },
    /// The client stopped; no further events follow.
    Closed(CloseReason),
}

//! Errors, one small enum per layer: options (misuse at construction), publish and
//! request outcomes (protocol), and connecting (I/O and refusal).

use core::fmt;

use mqttkit_codec::{EncodeError, PacketType, ProtocolVersion, QoS, ReasonCode};

use crate::message::{CloseReason, LostReason};

/// The options cannot make a valid CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    /// No broker URL.
    NoServer,
    /// A broker URL (or its TLS material) is unusable.
    Server(String),
    /// Keep Alive above 65,535 s.
    KeepAliveTooLong,
    /// 3.1.1: "If the Client supplies a zero-byte ClientId, the Client MUST also set
    /// CleanSession to 1" \[MQTT-3.1.1: 3.1.3-7\].
    EmptyClientIdWithSession,
    /// A 5.0-only option (properties, session expiry, will delay) with an older version.
    V5Only(&'static str),
    /// The CONNECT the options describe is invalid (e.g. a will topic with a wildcard).
    Invalid(EncodeError),
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoServer => f.write_str("no broker URL given"),
            Self::Server(e) => write!(f, "broker address: {e}"),
            Self::KeepAliveTooLong => f.write_str("keep alive above 65535 seconds"),
            Self::EmptyClientIdWithSession => {
                f.write_str("an empty client id needs clean session [MQTT-3.1.1: 3.1.3-7]")
            }
            Self::V5Only(what) => write!(f, "{what} needs MQTT 5.0"),
            Self::Invalid(e) => write!(f, "invalid CONNECT: {e}"),
        }
    }
}

impl std::error::Error for OptionsError {}

/// A publication failed (small and `Copy`: completing one allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The packet would be invalid (topic, properties, field lengths).
    Invalid(EncodeError),
    /// Properties with a version before 5.0.
    PropertiesNeedV5,
    /// Above the server's Maximum QoS \[MQTT-5.0: 3.2.2-11\].
    QoSNotSupported {
        /// The server's Maximum QoS.
        maximum: QoS,
    },
    /// RETAIN while the server's Retain Available is 0 \[MQTT-5.0: 3.2.2-14\].
    RetainNotSupported,
    /// Larger than the server's Maximum Packet Size \[MQTT-5.0: 3.2.2-15\].
    PacketTooLarge {
        /// Encoded size.
        size: usize,
        /// The server's limit.
        limit: usize,
    },
    /// PUBACK / PUBREC with a reason code of 0x80 or more.
    Rejected(ReasonCode),
    /// The client was disconnected or closed before the handshake completed.
    Closed,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "invalid PUBLISH: {e}"),
            Self::PropertiesNeedV5 => f.write_str("PUBLISH properties need MQTT 5.0"),
            Self::QoSNotSupported { maximum } => {
                write!(f, "QoS above the server's Maximum QoS {} [MQTT-5.0: 3.2.2-11]", maximum.as_u8())
            }
            Self::RetainNotSupported => f.write_str("the server does not support retain [MQTT-5.0: 3.2.2-14]"),
            Self::PacketTooLarge { size, limit } => write!(
                f,
                "PUBLISH of {size} bytes exceeds the server's Maximum Packet Size {limit} [MQTT-5.0: 3.2.2-15]"
            ),
            Self::Rejected(code) => {
                write!(f, "rejected by the server: {}", code.display(PacketType::PubAck, ProtocolVersion::V5))
            }
            Self::Closed => f.write_str("client closed before the handshake completed"),
        }
    }
}

impl std::error::Error for PublishError {}

/// A SUBSCRIBE or UNSUBSCRIBE failed before the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The packet would be invalid (filters, options, properties).
    Invalid(EncodeError),
    /// No topic filter.
    Empty,
    /// Properties, or options other than QoS, with a version before 5.0.
    NeedsV5,
    /// Larger than the server's Maximum Packet Size \[MQTT-5.0: 3.2.2-15\].
    PacketTooLarge {
        /// Encoded size.
        size: usize,
        /// The server's limit.
        limit: usize,
    },
    /// The client was disconnected or closed before the answer came.
    Closed,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "invalid request: {e}"),
            Self::Empty => f.write_str("no topic filter given"),
            Self::NeedsV5 => f.write_str("subscription options other than QoS and properties need MQTT 5.0"),
            Self::PacketTooLarge { size, limit } => {
                write!(f, "{size} bytes exceed the server's Maximum Packet Size {limit} [MQTT-5.0: 3.2.2-15]")
            }
            Self::Closed => f.write_str("client closed before the server answered"),
        }
    }
}

impl std::error::Error for RequestError {}

/// [`crate::Client::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The options are unusable.
    Options(OptionsError),
    /// The first connection failed (and [`crate::Options::connect_retry`] is off).
    Failed(LostReason),
}

impl ConnectError {
    /// The CONNACK code when the server refused the connection.
    pub fn refusal(&self) -> Option<ReasonCode> {
        match self {
            Self::Failed(LostReason::Refused { code, .. }) => Some(*code),
            _ => None,
        }
    }
}

impl From<CloseReason> for ConnectError {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::Failed(reason) => Self::Failed(reason),
            CloseReason::Disconnected => Self::Failed(LostReason::TransportClosed("disconnected".into())),
        }
    }
}

impl From<OptionsError> for ConnectError {
    fn from(e: OptionsError) -> Self {
        Self::Options(e)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Options(e) => e.fmt(f),
            Self::Failed(reason) => reason.fmt(f),
        }
    }
}

impl std::error::Error for ConnectError {}

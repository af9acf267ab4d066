//! Error types, one per layer:
//!
//! * [`FrameError`]: the fixed header cannot be framed (bad remaining length, too large);
//! * [`DecodeError`]: the bytes of one packet break a rule of the standard;
//! * [`StreamError`]: what a streaming decoder reports; every variant means the
//!   connection is dead and the receiver must close it;
//! * [`EncodeError`]: the caller asked the encoder for something the standard forbids.
//!
//! Every decode error names the normative statement(s) it enforces and maps to the
//! MQTT 5.0 reason code a receiver sends in DISCONNECT (or CONNACK) before closing.

use core::fmt;

use crate::packet::PacketType;
use crate::property::PropertyId;
use crate::reason::ReasonCode;

/// The bytes of one packet break a rule of the standard.
///
/// Each variant's documentation quotes the statement ids it enforces; [`Self::statements`]
/// returns them and `Display` prints them as `[MQTT-x.y.z-n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Packet type 0, or 15 before 5.0, is reserved (§2.2.1 / §2.1.2). Malformed.
    ReservedPacketType(u8),
    /// Reserved fixed-header flag bits are not as listed in Table 2.2
    /// (\[MQTT-2.2.2-1\], \[MQTT-2.2.2-2\], \[MQTT-2.1.3-1\], \[MQTT-3.6.1-1\],
    /// \[MQTT-3.8.1-1\], \[MQTT-3.10.1-1\], \[MQTT-3.14.1-1\], \[MQTT-3.15.1-1\]).
    InvalidFlags {
        /// The packet type.
        packet_type: PacketType,
        /// The four flag bits received.
        flags: u8,
    },
    /// A PUBLISH with both QoS bits set (\[MQTT-3.3.1-4\]).
    InvalidQoS,
    /// A QoS 0 PUBLISH with DUP set (\[MQTT-3.3.1-2\]).
    DupWithQoS0,
    /// The packet ended before a field did (§2.2.3 / §4.13: Malformed Packet).
    Truncated,
    /// Bytes remain after the last field of the packet (§2.2.3 / §4.13: Malformed Packet).
    TrailingBytes,
    /// A Variable Byte Integer is longer than 4 bytes or not minimally encoded
    /// (\[MQTT-1.5.5-1\]).
    InvalidVarInt,
    /// A string is not well-formed UTF-8 or encodes a surrogate
    /// (\[MQTT-1.5.3-1\], \[MQTT-1.5.4-1\]).
    InvalidUtf8,
    /// A string contains U+0000 (\[MQTT-1.5.3-2\], \[MQTT-1.5.4-2\], \[MQTT-4.7.3-2\]).
    NullCharacter,
    /// A packet identifier that must be non-zero is zero (\[MQTT-2.3.1-1\], \[MQTT-2.2.1-3\]).
    ZeroPacketId,
    /// CONNECT's protocol name is not `MQTT` (or `MQIsdp` with level 3) (\[MQTT-3.1.2-1\]).
    InvalidProtocolName,
    /// CONNECT's protocol level is not 3, 4 or 5 (\[MQTT-3.1.2-2\]).
    UnsupportedProtocolLevel(u8),
    /// CONNECT's reserved flag is not zero (\[MQTT-3.1.2-3\]).
    ConnectReservedFlag,
    /// Will QoS or Will Retain set without the Will Flag
    /// (\[MQTT-3.1.2-11\], \[MQTT-3.1.2-13\], \[MQTT-3.1.2-15\]).
    WillFlagsWithoutWill,
    /// Will QoS 3 (\[MQTT-3.1.2-14\], 5.0 \[MQTT-3.1.2-12\]).
    InvalidWillQoS,
    /// Password flag set without the User Name flag, before 5.0 (\[MQTT-3.1.2-22\]).
    PasswordWithoutUsername,
    /// CONNACK's reserved acknowledge flags are not zero (\[MQTT-3.2.2-1\]).
    ConnAckReservedFlags,
    /// CONNACK with Session Present and a non-zero code (\[MQTT-3.2.2-4\], \[MQTT-3.2.2-6\]).
    SessionPresentOnRefusal,
    /// A topic name contains `+` or `#` (\[MQTT-3.3.2-2\], \[MQTT-4.7.1-1\], \[MQTT-4.7.0-1\]).
    WildcardInTopicName,
    /// A topic name or filter is empty (\[MQTT-4.7.3-1\]); in 5.0 an empty PUBLISH topic
    /// is allowed only with a Topic Alias (§3.3.2.1).
    EmptyTopic,
    /// A topic filter misuses `#` or `+`
    /// (\[MQTT-4.7.1-2\], \[MQTT-4.7.1-3\]; 5.0 \[MQTT-4.7.1-1\], \[MQTT-4.7.1-2\]).
    InvalidTopicFilter,
    /// A shared subscription filter `$share/{ShareName}/{filter}` is ill-formed
    /// (\[MQTT-4.8.2-1\], \[MQTT-4.8.2-2\]).
    InvalidSharedSubscription,
    /// No Local set on a shared subscription (\[MQTT-3.8.3-4\]).
    NoLocalOnSharedSubscription,
    /// Reserved bits of a subscription options byte are set
    /// (\[MQTT-3.8.3-5\], 3.1.1 \[MQTT-3-8.3-4\]).
    SubscriptionOptionsReserved,
    /// Requested QoS 3 in a subscription (\[MQTT-3-8.3-4\] / §3.8.3.1).
    InvalidSubscriptionQoS,
    /// Retain Handling 3 (§3.8.3.1: Protocol Error).
    InvalidRetainHandling,
    /// SUBSCRIBE with no topic filter (\[MQTT-3.8.3-3\], 5.0 \[MQTT-3.8.3-2\]).
    EmptySubscribe,
    /// UNSUBSCRIBE with no topic filter (\[MQTT-3.10.3-2\]).
    EmptyUnsubscribe,
    /// SUBACK / UNSUBACK with no reason code (§3.9.3, §3.11.3: one per filter).
    EmptyAckPayload,
    /// A reason or return code that this packet type may not carry
    /// (\[MQTT-3.2.2-8\], \[MQTT-3.4.2-1\], \[MQTT-3.5.2-1\], \[MQTT-3.6.2-1\], \[MQTT-3.7.2-1\],
    /// \[MQTT-3.9.3-2\], \[MQTT-3.11.3-2\], \[MQTT-3.14.2-1\], \[MQTT-3.15.2-1\]).
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The code received.
        code: u8,
    },
    /// A property identifier that the standard does not define (§2.2.2.2).
    UnknownProperty(u8),
    /// A property this packet may not carry (§2.2.2.2, Table 2-4).
    PropertyNotAllowed {
        /// The property.
        property: PropertyId,
        /// The packet (or Will Properties, reported as CONNECT).
        packet_type: PacketType,
    },
    /// A property that may appear once appears twice (§3.x.2.2: Protocol Error).
    DuplicateProperty(PropertyId),
    /// A property value out of its range (e.g. Receive Maximum 0, Maximum QoS 2,
    /// Subscription Identifier 0) (§3.x.2.2: Protocol Error).
    InvalidPropertyValue(PropertyId),
    /// Authentication Data without Authentication Method, or an AUTH with properties
    /// but no method (§3.1.2.11.10, §3.15.2.2.2: Protocol Error).
    MissingAuthenticationMethod,
    /// A packet that the stream's protocol version does not define (AUTH before 5.0), or
    /// a non-CONNECT packet before the version is known (\[MQTT-3.1.0-1\]).
    UnexpectedPacket(PacketType),
}

impl DecodeError {
    /// The normative statements this error enforces (ids as in the standards' Appendix B).
    pub const fn statements(&self) -> &'static [&'static str] {
        use DecodeError as E;
        match self {
            E::ReservedPacketType(_) => &["MQTT-2.2.2-1"],
            E::InvalidFlags { packet_type, .. } => match packet_type {
                PacketType::PubRel => &["MQTT-3.6.1-1"],
                PacketType::Subscribe => &["MQTT-3.8.1-1"],
                PacketType::Unsubscribe => &["MQTT-3.10.1-1"],
                PacketType::Disconnect => &["MQTT-3.14.1-1"],
                PacketType::Auth => &["MQTT-3.15.1-1"],
                _ => &["MQTT-2.2.2-2", "MQTT-2.1.3-1"],
            },
            E::InvalidQoS => &["MQTT-3.3.1-4"],
            E::DupWithQoS0 => &["MQTT-3.3.1-2"],
            E::Truncated | E::TrailingBytes => &[],
            E::InvalidVarInt => &["MQTT-1.5.5-1"],
            E::InvalidUtf8 => &["MQTT-1.5.3-1", "MQTT-1.5.4-1"],
            E::NullCharacter => &["MQTT-1.5.3-2", "MQTT-1.5.4-2"],
            E::ZeroPacketId => &["MQTT-2.3.1-1", "MQTT-2.2.1-3"],
            E::InvalidProtocolName => &["MQTT-3.1.2-1"],
            E::UnsupportedProtocolLevel(_) => &["MQTT-3.1.2-2"],
            E::ConnectReservedFlag => &["MQTT-3.1.2-3"],
            E::WillFlagsWithoutWill => &["MQTT-3.1.2-11", "MQTT-3.1.2-13", "MQTT-3.1.2-15"],
            E::InvalidWillQoS => &["MQTT-3.1.2-14", "MQTT-3.1.2-12"],
            E::PasswordWithoutUsername => &["MQTT-3.1.2-22"],
            E::ConnAckReservedFlags => &["MQTT-3.2.2-1"],
            E::SessionPresentOnRefusal => &["MQTT-3.2.2-4", "MQTT-3.2.2-6"],
            E::WildcardInTopicName => &["MQTT-3.3.2-2", "MQTT-4.7.1-1", "MQTT-4.7.0-1"],
            E::EmptyTopic => &["MQTT-4.7.3-1"],
            E::InvalidTopicFilter => &["MQTT-4.7.1-2", "MQTT-4.7.1-3", "MQTT-4.7.1-1"],
            E::InvalidSharedSubscription => &["MQTT-4.8.2-1", "MQTT-4.8.2-2"],
            E::NoLocalOnSharedSubscription => &["MQTT-3.8.3-4"],
            E::SubscriptionOptionsReserved => &["MQTT-3.8.3-5", "MQTT-3-8.3-4"],
            E::InvalidSubscriptionQoS => &["MQTT-3-8.3-4"],
            E::InvalidRetainHandling => &[],
            E::EmptySubscribe => &["MQTT-3.8.3-3", "MQTT-3.8.3-2"],
            E::EmptyUnsubscribe => &["MQTT-3.10.3-2"],
            E::EmptyAckPayload => &["MQTT-3.9.3-1", "MQTT-3.11.3-1"],
            E::InvalidReasonCode { packet_type, .. } => match packet_type {
                PacketType::ConnAck => &["MQTT-3.2.2-8"],
                PacketType::PubAck => &["MQTT-3.4.2-1"],
                PacketType::PubRec => &["MQTT-3.5.2-1"],
                PacketType::PubRel => &["MQTT-3.6.2-1"],
                PacketType::PubComp => &["MQTT-3.7.2-1"],
                PacketType::SubAck => &["MQTT-3.9.3-2"],
                PacketType::UnsubAck => &["MQTT-3.11.3-2"],
                PacketType::Disconnect => &["MQTT-3.14.2-1"],
                PacketType::Auth => &["MQTT-3.15.2-1"],
                _ => &[],
            },
            E::UnknownProperty(_)
            | E::PropertyNotAllowed { .. }
            | E::DuplicateProperty(_)
            | E::InvalidPropertyValue(_)
            | E::MissingAuthenticationMethod => &[],
            E::UnexpectedPacket(_) => &["MQTT-3.1.0-1"],
        }
    }

    /// The section of the standard that defines the rule, for errors without a numbered
    /// statement (and as extra context for the others).
    pub const fn section(&self) -> &'static str {
        use DecodeError as E;
        match self {
            E::ReservedPacketType(_) | E::InvalidFlags { .. } => "2.1",
            E::InvalidQoS | E::DupWithQoS0 => "3.3.1",
            E::Truncated | E::TrailingBytes => "4.13",
            E::InvalidVarInt => "1.5.5",
            E::InvalidUtf8 | E::NullCharacter => "1.5.4",
            E::ZeroPacketId => "2.2.1",
            E::InvalidProtocolName | E::UnsupportedProtocolLevel(_) | E::ConnectReservedFlag => "3.1.2",
            E::WillFlagsWithoutWill | E::InvalidWillQoS | E::PasswordWithoutUsername => "3.1.2",
            E::ConnAckReservedFlags | E::SessionPresentOnRefusal => "3.2.2",
            E::WildcardInTopicName | E::EmptyTopic | E::InvalidTopicFilter => "4.7",
            E::InvalidSharedSubscription => "4.8.2",
            E::NoLocalOnSharedSubscription
            | E::SubscriptionOptionsReserved
            | E::InvalidSubscriptionQoS
            | E::InvalidRetainHandling
            | E::EmptySubscribe => "3.8.3",
            E::EmptyUnsubscribe => "3.10.3",
            E::EmptyAckPayload => "3.9.3",
            E::InvalidReasonCode { .. } => "2.4",
            E::UnknownProperty(_)
            | E::PropertyNotAllowed { .. }
            | E::DuplicateProperty(_)
            | E::InvalidPropertyValue(_) => "2.2.2",
            E::MissingAuthenticationMethod => "4.12",
            E::UnexpectedPacket(_) => "3.1.0",
        }
    }

    /// The reason code a 5.0 receiver sends (in DISCONNECT, or CONNACK while connecting)
    /// before closing the connection.
    pub const fn reason_code(&self) -> ReasonCode {
        use DecodeError as E;
        match self {
            E::ReservedPacketType(_)
            | E::InvalidFlags { .. }
            | E::InvalidQoS
            | E::DupWithQoS0
            | E::Truncated
            | E::TrailingBytes
            | E::InvalidVarInt
            | E::InvalidUtf8
            | E::NullCharacter
            | E::ConnectReservedFlag
            | E::WillFlagsWithoutWill
            | E::InvalidWillQoS
            | E::PasswordWithoutUsername
            | E::ConnAckReservedFlags
            | E::SubscriptionOptionsReserved
            | E::InvalidSubscriptionQoS
            | E::UnknownProperty(_) => ReasonCode::MALFORMED_PACKET,
            E::InvalidProtocolName | E::UnsupportedProtocolLevel(_) => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            E::WildcardInTopicName => ReasonCode::TOPIC_NAME_INVALID,
            E::InvalidTopicFilter | E::InvalidSharedSubscription => ReasonCode::TOPIC_FILTER_INVALID,
            E::ZeroPacketId
            | E::SessionPresentOnRefusal
            | E::EmptyTopic
            | E::NoLocalOnSharedSubscription
            | E::InvalidRetainHandling
            | E::EmptySubscribe
            | E::EmptyUnsubscribe
            | E::EmptyAckPayload
            | E::InvalidReasonCode { .. }
            | E::PropertyNotAllowed { .. }
            | E::DuplicateProperty(_)
            | E::InvalidPropertyValue(_)
            | E::MissingAuthenticationMethod
            | E::UnexpectedPacket(_) => ReasonCode::PROTOCOL_ERROR,
        }
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError as E;
        match self {
            E::ReservedPacketType(t) => write!(f, "reserved packet type {t}"),
            E::InvalidFlags { packet_type, flags } => {
                write!(f, "invalid fixed-header flags {flags:#06b} for {packet_type}")
            }
            E::InvalidQoS => f.write_str("PUBLISH with QoS 3"),
            E::DupWithQoS0 => f.write_str("QoS 0 PUBLISH with DUP set"),
            E::Truncated => f.write_str("packet ends inside a field"),
            E::TrailingBytes => f.write_str("bytes remain after the last field"),
            E::InvalidVarInt => f.write_str("variable byte integer longer than 4 bytes or not minimally encoded"),
            E::InvalidUtf8 => f.write_str("string is not well-formed UTF-8"),
            E::NullCharacter => f.write_str("string contains U+0000"),
            E::ZeroPacketId => f.write_str("packet identifier 0"),
            E::InvalidProtocolName => f.write_str("protocol name is not MQTT (or MQIsdp for 3.1)"),
            E::UnsupportedProtocolLevel(l) => write!(f, "unsupported protocol level {l}"),
            E::ConnectReservedFlag => f.write_str("CONNECT reserved flag is set"),
            E::WillFlagsWithoutWill => f.write_str("Will QoS or Will Retain set without Will Flag"),
            E::InvalidWillQoS => f.write_str("Will QoS 3"),
            E::PasswordWithoutUsername => f.write_str("password flag set without user name flag"),
            E::ConnAckReservedFlags => f.write_str("CONNACK reserved flags are set"),
            E::SessionPresentOnRefusal => f.write_str("CONNACK sets Session Present with a non-zero code"),
            E::WildcardInTopicName => f.write_str("topic name contains a wildcard"),
            E::EmptyTopic => f.write_str("empty topic"),
            E::InvalidTopicFilter => f.write_str("topic filter misuses a wildcard"),
            E::InvalidSharedSubscription => f.write_str("ill-formed shared subscription filter"),
            E::NoLocalOnSharedSubscription => f.write_str("No Local set on a shared subscription"),
            E::SubscriptionOptionsReserved => f.write_str("subscription options reserved bits set"),
            E::InvalidSubscriptionQoS => f.write_str("subscription requests QoS 3"),
            E::InvalidRetainHandling => f.write_str("Retain Handling 3"),
            E::EmptySubscribe => f.write_str("SUBSCRIBE without topic filters"),
            E::EmptyUnsubscribe => f.write_str("UNSUBSCRIBE without topic filters"),
            E::EmptyAckPayload => f.write_str("acknowledgement without reason codes"),
            E::InvalidReasonCode { packet_type, code } => {
                write!(f, "reason code {code:#04x} is not allowed in {packet_type}")
            }
            E::UnknownProperty(id) => write!(f, "unknown property identifier {id:#04x}"),
            E::PropertyNotAllowed { property, packet_type } => {
                write!(f, "property {property} is not allowed in {packet_type}")
            }
            E::DuplicateProperty(p) => write!(f, "property {p} appears more than once"),
            E::InvalidPropertyValue(p) => write!(f, "property {p} has a value out of range"),
            E::MissingAuthenticationMethod => f.write_str("authentication without a method"),
            E::UnexpectedPacket(t) => write!(f, "unexpected {t} packet"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f)?;
        let statements = self.statements();
        if statements.is_empty() {
            write!(f, " [MQTT §{}]", self.section())
        } else {
            for id in statements {
                write!(f, " [{id}]")?;
            }
            Ok(())
        }
    }
}

impl core::error::Error for DecodeError {}

/// The fixed header cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The Remaining Length is longer than 4 bytes or not minimally encoded
    /// (\[MQTT-1.5.5-1\], §2.2.3). Malformed Packet.
    InvalidRemainingLength,
    /// The packet is larger than the receiver's maximum packet size (§3.1.2.11.4,
    /// §3.2.2.3.6). Reason code 0x95 Packet too large.
    PacketTooLarge {
        /// The whole packet's size as announced by its fixed header.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
}

impl FrameError {
    /// The reason code a 5.0 receiver sends before closing.
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::InvalidRemainingLength => ReasonCode::MALFORMED_PACKET,
            Self::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRemainingLength => {
                f.write_str("remaining length longer than 4 bytes or not minimally encoded [MQTT-1.5.5-1]")
            }
            Self::PacketTooLarge { size, limit } => {
                write!(f, "packet of {size} bytes exceeds the maximum packet size of {limit} bytes [MQTT §3.1.2.11.4]")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// What a streaming decoder reports. Every variant means the byte stream can no longer be
/// trusted: the receiver must close the network connection (after a DISCONNECT with
/// [`StreamError::reason_code`] in 5.0). The decoder never skips ahead to a later frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The fixed header could not be framed.
    Frame(FrameError),
    /// A complete frame was not a valid packet.
    Packet(DecodeError),
    /// An earlier error already ended this stream; nothing more is decoded from it.
    Dead,
}

impl StreamError {
    /// The reason code a 5.0 receiver sends before closing.
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Frame(e) => e.reason_code(),
            Self::Packet(e) => e.reason_code(),
            Self::Dead => ReasonCode::UNSPECIFIED_ERROR,
        }
    }
}

impl From<FrameError> for StreamError {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}

impl From<DecodeError> for StreamError {
    fn from(e: DecodeError) -> Self {
        Self::Packet(e)
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => write!(f, "{e}; the connection must be closed"),
            Self::Packet(e) => write!(f, "{e}; the connection must be closed"),
            Self::Dead => f.write_str("stream already failed; the connection must be closed"),
        }
    }
}

impl core::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Frame(e) => Some(e),
            Self::Packet(e) => Some(e),
            Self::Dead => None,
        }
    }
}

/// A value given to a constructor (`TopicName::new`, `PropertiesBuf::push`, …) breaks a
/// rule of the standard. Separate from [`EncodeError`]: nothing is being encoded yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// A string or binary field longer than 65,535 bytes (§1.5.4, §1.5.6).
    TooLong {
        /// The length given.
        len: usize,
    },
    /// The value breaks the rule the decoder enforces with this error (its statements
    /// and reason code apply).
    Rule(DecodeError),
}

impl From<DecodeError> for ValidationError {
    fn from(e: DecodeError) -> Self {
        Self::Rule(e)
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => write!(f, "field of {len} bytes is longer than 65535 bytes [MQTT §1.5.4]"),
            Self::Rule(e) => write!(f, "invalid value: {e}"),
        }
    }
}

impl core::error::Error for ValidationError {}

impl From<ValidationError> for EncodeError {
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::TooLong { .. } => Self::FieldTooLong,
            ValidationError::Rule(e) => Self::Invalid(e),
        }
    }
}

/// The caller asked the encoder for a packet the standard forbids (misuse, not wire data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value would break the rule that the decoder enforces with this error.
    Invalid(DecodeError),
    /// A string or binary field is longer than 65,535 bytes (§1.5.4, §1.5.6).
    FieldTooLong,
    /// The packet's remaining length would exceed 268,435,455 (§2.2.3).
    PacketTooLarge,
    /// The packet type does not exist in the version asked for (AUTH before 5.0).
    NotInVersion(PacketType),
    /// Properties were built for another packet type than the one encoded.
    PropertiesForOtherPacket,
    /// Properties or a non-success reason code given to a packet of a version before 5.0.
    V5FieldInOlderVersion,
}

impl From<DecodeError> for EncodeError {
    fn from(e: DecodeError) -> Self {
        Self::Invalid(e)
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "refusing to encode an invalid packet: {e}"),
            Self::FieldTooLong => f.write_str("string or binary field longer than 65535 bytes"),
            Self::PacketTooLarge => f.write_str("remaining length would exceed 268435455"),
            Self::NotInVersion(t) => write!(f, "{t} does not exist before MQTT 5.0"),
            Self::PropertiesForOtherPacket => f.write_str("properties were built for another packet type"),
            Self::V5FieldInOlderVersion => f.write_str("properties or reason codes cannot be sent before MQTT 5.0"),
        }
    }
}

impl core::error::Error for EncodeError {}

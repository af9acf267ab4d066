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
use crate::version::ProtocolVersion;

/// The bytes of one packet break a rule of the standard.
///
/// Each variant's documentation quotes the statement ids it enforces;
/// [`Self::statements`] returns those of one version and `Display` prints them in the
/// convention of the whole crate: `[MQTT-x.y.z-n]` when the id names this rule in both
/// 3.1.1 and 5.0, `[MQTT-3.1.1: x.y.z-n]` or `[MQTT-5.0: x.y.z-n]` when it belongs to one
/// version only (the same number can name another rule in the other standard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Packet type 0, or 15 before 5.0, is reserved (§2.2.1 / §2.1.2). Malformed.
    ReservedPacketType(u8),
    /// Reserved fixed-header flag bits are not as listed in Table 2.2
    /// (\[MQTT-3.1.1: 2.2.2-1\], \[MQTT-3.1.1: 2.2.2-2\], \[MQTT-5.0: 2.1.3-1\],
    /// \[MQTT-3.6.1-1\], \[MQTT-3.8.1-1\], \[MQTT-3.10.1-1\], \[MQTT-3.14.1-1\],
    /// \[MQTT-5.0: 3.15.1-1\]).
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
    /// (\[MQTT-5.0: 1.5.5-1\]; 3.1.1 §2.2.3).
    InvalidVarInt,
    /// A string is not well-formed UTF-8 or encodes a surrogate
    /// (\[MQTT-3.1.1: 1.5.3-1\], \[MQTT-5.0: 1.5.4-1\]).
    InvalidUtf8,
    /// A string contains U+0000 (\[MQTT-3.1.1: 1.5.3-2\], \[MQTT-5.0: 1.5.4-2\], \[MQTT-4.7.3-2\]).
    NullCharacter,
    /// A packet identifier that must be non-zero is zero (\[MQTT-3.1.1: 2.3.1-1\], \[MQTT-5.0: 2.2.1-3\]).
    ZeroPacketId,
    /// CONNECT's protocol name is not `MQTT` (or `MQIsdp` with level 3) (\[MQTT-3.1.2-1\]).
    InvalidProtocolName,
    /// CONNECT's protocol level is not 3, 4 or 5 (\[MQTT-3.1.2-2\]).
    UnsupportedProtocolLevel(u8),
    /// CONNECT's reserved flag is not zero (\[MQTT-3.1.2-3\]).
    ConnectReservedFlag,
    /// Will QoS or Will Retain set without the Will Flag
    /// (\[MQTT-3.1.2-11\], \[MQTT-3.1.2-13\], \[MQTT-3.1.1: 3.1.2-15\]).
    WillFlagsWithoutWill,
    /// Will QoS 3 (\[MQTT-3.1.1: 3.1.2-14\], \[MQTT-5.0: 3.1.2-12\]).
    InvalidWillQoS,
    /// Password flag set without the User Name flag, before 5.0 (\[MQTT-3.1.1: 3.1.2-22\]).
    PasswordWithoutUsername,
    /// CONNACK's reserved acknowledge flags are not zero (\[MQTT-5.0: 3.2.2-1\]).
    ConnAckReservedFlags,
    /// CONNACK with Session Present and a non-zero code (\[MQTT-3.1.1: 3.2.2-4\], \[MQTT-5.0: 3.2.2-6\]).
    SessionPresentOnRefusal,
    /// A topic name contains `+` or `#` (\[MQTT-3.3.2-2\], \[MQTT-3.1.1: 4.7.1-1\], \[MQTT-5.0: 4.7.0-1\]).
    WildcardInTopicName,
    /// A topic name or filter is empty (\[MQTT-4.7.3-1\]); in 5.0 an empty PUBLISH topic
    /// is allowed only with a Topic Alias (§3.3.2.1).
    EmptyTopic,
    /// A topic filter misuses `#` or `+`
    /// (\[MQTT-3.1.1: 4.7.1-2\], \[MQTT-3.1.1: 4.7.1-3\], \[MQTT-5.0: 4.7.1-1\],
    /// \[MQTT-5.0: 4.7.1-2\]).
    InvalidTopicFilter,
    /// A shared subscription filter `$share/{ShareName}/{filter}` is ill-formed
    /// (\[MQTT-5.0: 4.8.2-1\], \[MQTT-5.0: 4.8.2-2\]).
    InvalidSharedSubscription,
    /// No Local set on a shared subscription (\[MQTT-5.0: 3.8.3-4\]).
    NoLocalOnSharedSubscription,
    /// Reserved bits of a subscription options byte are set
    /// (\[MQTT-3.1.1: 3-8.3-4\], \[MQTT-5.0: 3.8.3-5\]).
    SubscriptionOptionsReserved,
    /// Requested QoS 3 in a subscription (\[MQTT-3.1.1: 3-8.3-4\]; 5.0 §3.8.3.1).
    InvalidSubscriptionQoS,
    /// Retain Handling 3 (§3.8.3.1: Protocol Error).
    InvalidRetainHandling,
    /// SUBSCRIBE with no topic filter (\[MQTT-3.1.1: 3.8.3-3\], \[MQTT-5.0: 3.8.3-2\]).
    EmptySubscribe,
    /// UNSUBSCRIBE with no topic filter (\[MQTT-3.10.3-2\]).
    EmptyUnsubscribe,
    /// SUBACK / UNSUBACK with no reason code (§3.9.3, §3.11.3: one per filter).
    EmptyAckPayload,
    /// A reason or return code that this packet type may not carry
    /// (\[MQTT-3.9.3-2\]; \[MQTT-5.0: 3.2.2-8\], \[MQTT-5.0: 3.4.2-1\], \[MQTT-5.0: 3.5.2-1\],
    /// \[MQTT-5.0: 3.6.2-1\], \[MQTT-5.0: 3.7.2-1\], \[MQTT-5.0: 3.11.3-2\],
    /// \[MQTT-5.0: 3.14.2-1\], \[MQTT-5.0: 3.15.2-1\]; 3.1.1 CONNACK: Table 3.1).
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
    /// The normative statements this error enforces in `version`: ids as printed in that
    /// standard (Appendix B of 5.0, the conformance section of 3.1.1), so the same id can
    /// name different rules in the two versions. MQTT 3.1 numbers no statements: empty.
    pub const fn statements(&self, version: ProtocolVersion) -> &'static [&'static str] {
        match version {
            ProtocolVersion::V3_1 => &[],
            ProtocolVersion::V3_1_1 => self.statements_v3_1_1(),
            ProtocolVersion::V5 => self.statements_v5(),
        }
    }

    const fn statements_v3_1_1(&self) -> &'static [&'static str] {
        use DecodeError as E;
        match self {
            E::InvalidFlags { packet_type, .. } => match packet_type {
                PacketType::PubRel => &["MQTT-3.6.1-1"],
                PacketType::Subscribe => &["MQTT-3.8.1-1"],
                PacketType::Unsubscribe => &["MQTT-3.10.1-1"],
                PacketType::Disconnect => &["MQTT-3.14.1-1"],
                _ => &["MQTT-2.2.2-1", "MQTT-2.2.2-2"],
            },
            E::InvalidQoS => &["MQTT-3.3.1-4"],
            E::DupWithQoS0 => &["MQTT-3.3.1-2"],
            E::InvalidUtf8 => &["MQTT-1.5.3-1"],
            E::NullCharacter => &["MQTT-1.5.3-2"],
            E::ZeroPacketId => &["MQTT-2.3.1-1"],
            E::InvalidProtocolName => &["MQTT-3.1.2-1"],
            E::UnsupportedProtocolLevel(_) => &["MQTT-3.1.2-2"],
            E::ConnectReservedFlag => &["MQTT-3.1.2-3"],
            E::WillFlagsWithoutWill => &["MQTT-3.1.2-11", "MQTT-3.1.2-13", "MQTT-3.1.2-15"],
            E::InvalidWillQoS => &["MQTT-3.1.2-14"],
            E::PasswordWithoutUsername => &["MQTT-3.1.2-22"],
            E::SessionPresentOnRefusal => &["MQTT-3.2.2-4"],
            E::WildcardInTopicName => &["MQTT-3.3.2-2", "MQTT-4.7.1-1"],
            E::EmptyTopic => &["MQTT-4.7.3-1"],
            E::InvalidTopicFilter => &["MQTT-4.7.1-2", "MQTT-4.7.1-3"],
            E::SubscriptionOptionsReserved | E::InvalidSubscriptionQoS => &["MQTT-3-8.3-4"],
            E::EmptySubscribe => &["MQTT-3.8.3-3"],
            E::EmptyUnsubscribe => &["MQTT-3.10.3-2"],
            E::InvalidReasonCode { packet_type: PacketType::SubAck, .. } => &["MQTT-3.9.3-2"],
            E::UnexpectedPacket(_) => &["MQTT-3.1.0-1"],
            // No numbered statement in 3.1.1 (see `section`), or a 5.0-only rule.
            _ => &[],
        }
    }

    const fn statements_v5(&self) -> &'static [&'static str] {
        use DecodeError as E;
        match self {
            E::InvalidFlags { packet_type, .. } => match packet_type {
                PacketType::PubRel => &["MQTT-3.6.1-1"],
                PacketType::Subscribe => &["MQTT-3.8.1-1"],
                PacketType::Unsubscribe => &["MQTT-3.10.1-1"],
                PacketType::Disconnect => &["MQTT-3.14.1-1"],
                PacketType::Auth => &["MQTT-3.15.1-1"],
                _ => &["MQTT-2.1.3-1"],
            },
            E::InvalidQoS => &["MQTT-3.3.1-4"],
            E::DupWithQoS0 => &["MQTT-3.3.1-2"],
            E::InvalidVarInt => &["MQTT-1.5.5-1"],
            E::InvalidUtf8 => &["MQTT-1.5.4-1"],
            E::NullCharacter => &["MQTT-1.5.4-2"],
            E::ZeroPacketId => &["MQTT-2.2.1-3"],
            E::InvalidProtocolName => &["MQTT-3.1.2-1"],
            E::UnsupportedProtocolLevel(_) => &["MQTT-3.1.2-2"],
            E::ConnectReservedFlag => &["MQTT-3.1.2-3"],
            E::WillFlagsWithoutWill => &["MQTT-3.1.2-11", "MQTT-3.1.2-13"],
            E::InvalidWillQoS => &["MQTT-3.1.2-12"],
            E::ConnAckReservedFlags => &["MQTT-3.2.2-1"],
            E::SessionPresentOnRefusal => &["MQTT-3.2.2-6"],
            E::WildcardInTopicName => &["MQTT-3.3.2-2", "MQTT-4.7.0-1"],
            E::EmptyTopic => &["MQTT-4.7.3-1"],
            E::InvalidTopicFilter => &["MQTT-4.7.1-1", "MQTT-4.7.1-2"],
            E::InvalidSharedSubscription => &["MQTT-4.8.2-1", "MQTT-4.8.2-2"],
            E::NoLocalOnSharedSubscription => &["MQTT-3.8.3-4"],
            E::SubscriptionOptionsReserved => &["MQTT-3.8.3-5"],
            E::EmptySubscribe => &["MQTT-3.8.3-2"],
            E::EmptyUnsubscribe => &["MQTT-3.10.3-2"],
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
            E::UnexpectedPacket(_) => &["MQTT-3.1.0-1"],
            // No numbered statement in 5.0 (see `section`), or a 3.1.1-only rule.
            _ => &[],
        }
    }

    /// The section of `version`'s standard that defines the rule, for errors without a
    /// numbered statement (and as extra context for the others).
    pub const fn section(&self, version: ProtocolVersion) -> &'static str {
        use DecodeError as E;
        let v5 = version.is_v5();
        match self {
            E::ReservedPacketType(_) | E::InvalidFlags { .. } => "2.1",
            E::InvalidQoS | E::DupWithQoS0 => "3.3.1",
            E::Truncated | E::TrailingBytes if v5 => "4.13",
            E::Truncated | E::TrailingBytes => "2.2.3",
            E::InvalidVarInt if v5 => "1.5.5",
            E::InvalidVarInt => "2.2.3",
            E::InvalidUtf8 | E::NullCharacter if v5 => "1.5.4",
            E::InvalidUtf8 | E::NullCharacter => "1.5.3",
            E::ZeroPacketId if v5 => "2.2.1",
            E::ZeroPacketId => "2.3.1",
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
            E::InvalidReasonCode { .. } if v5 => "2.4",
            E::InvalidReasonCode { .. } => "3.2.2.3",
            E::UnknownProperty(_)
            | E::PropertyNotAllowed { .. }
            | E::DuplicateProperty(_)
            | E::InvalidPropertyValue(_) => "2.2.2",
            E::MissingAuthenticationMethod => "4.12",
            E::UnexpectedPacket(_) => "3.1.0",
        }
    }

    /// `Display` for an error met on a connection of a known version: only that
    /// version's statements (or its section), in the convention of [`Self::statements`].
    pub const fn in_version(self, version: ProtocolVersion) -> InVersion {
        InVersion { error: self, version }
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

/// Cite statement ids: `[MQTT-x.y.z-n]` for an id that names this rule in both 3.1.1 and
/// 5.0, `[MQTT-3.1.1: x.y.z-n]` / `[MQTT-5.0: x.y.z-n]` for an id of one version only.
/// The codec's comments follow the same convention.
fn cite(f: &mut fmt::Formatter<'_>, ids: &[&str], version: &str, other: &[&str], skip_shared: bool) -> fmt::Result {
    for id in ids {
        match id.strip_prefix("MQTT-") {
            Some(number) if !other.contains(id) => write!(f, " [MQTT-{version}: {number}]")?,
            _ if skip_shared => {}
            _ => write!(f, " [{id}]")?,
        }
    }
    Ok(())
}

/// Prints the description and the statements of both 3.1.1 and 5.0 (an id shared by both
/// once), or the sections when neither numbers the rule.
impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f)?;
        let (v3, v5) = (self.statements(ProtocolVersion::V3_1_1), self.statements(ProtocolVersion::V5));
        cite(f, v3, "3.1.1", v5, false)?;
        cite(f, v5, "5.0", v3, true)?;
        if v3.is_empty() && v5.is_empty() {
            let (s3, s5) = (self.section(ProtocolVersion::V3_1_1), self.section(ProtocolVersion::V5));
            if s3 == s5 {
                write!(f, " [MQTT §{s5}]")?;
            } else {
                write!(f, " [MQTT-3.1.1 §{s3}] [MQTT-5.0 §{s5}]")?;
            }
        }
        Ok(())
    }
}

/// [`DecodeError::in_version`]: an error with the version of the connection it was met on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InVersion {
    error: DecodeError,
    version: ProtocolVersion,
}

impl fmt::Display for InVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.describe(f)?;
        let ids = self.error.statements(self.version);
        if ids.is_empty() {
            return write!(f, " [MQTT-{} §{}]", self.version, self.error.section(self.version));
        }
        let other = match self.version {
            ProtocolVersion::V5 => self.error.statements(ProtocolVersion::V3_1_1),
            _ => self.error.statements(ProtocolVersion::V5),
        };
        cite(f, ids, if self.version.is_v5() { "5.0" } else { "3.1.1" }, other, false)
    }
}

impl core::error::Error for DecodeError {}

/// The fixed header cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The Remaining Length is longer than 4 bytes or not minimally encoded
    /// (\[MQTT-5.0: 1.5.5-1\], 3.1.1 §2.2.3). Malformed Packet.
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
                f.write_str("remaining length longer than 4 bytes or not minimally encoded [MQTT-5.0: 1.5.5-1]")
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
    /// The connection's protocol version is not known yet (no CONNECT sent or received),
    /// so the packet's layout is not known either.
    UnknownVersion,
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
            Self::UnknownVersion => {
                f.write_str("the protocol version is not known yet: send or receive a CONNECT first")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every variant, with every packet type where the ids depend on it.
    fn every_error() -> Vec<DecodeError> {
        use DecodeError as E;
        let mut errors = vec![
            E::ReservedPacketType(0),
            E::InvalidQoS,
            E::DupWithQoS0,
            E::Truncated,
            E::TrailingBytes,
            E::InvalidVarInt,
            E::InvalidUtf8,
            E::NullCharacter,
            E::ZeroPacketId,
            E::InvalidProtocolName,
            E::UnsupportedProtocolLevel(6),
            E::ConnectReservedFlag,
            E::WillFlagsWithoutWill,
            E::InvalidWillQoS,
            E::PasswordWithoutUsername,
            E::ConnAckReservedFlags,
            E::SessionPresentOnRefusal,
            E::WildcardInTopicName,
            E::EmptyTopic,
            E::InvalidTopicFilter,
            E::InvalidSharedSubscription,
            E::NoLocalOnSharedSubscription,
            E::SubscriptionOptionsReserved,
            E::InvalidSubscriptionQoS,
            E::InvalidRetainHandling,
            E::EmptySubscribe,
            E::EmptyUnsubscribe,
            E::EmptyAckPayload,
            E::UnknownProperty(0x04),
            E::PropertyNotAllowed { property: PropertyId::TOPIC_ALIAS, packet_type: PacketType::Connect },
            E::DuplicateProperty(PropertyId::CONTENT_TYPE),
            E::InvalidPropertyValue(PropertyId::RECEIVE_MAXIMUM),
            E::MissingAuthenticationMethod,
        ];
        for packet_type in PacketType::ALL {
            errors.push(E::InvalidFlags { packet_type, flags: 0x0F });
            errors.push(E::InvalidReasonCode { packet_type, code: 0xFF });
            errors.push(E::UnexpectedPacket(packet_type));
        }
        // A new variant must be added above: this match does not compile without it.
        for error in &errors {
            match error {
                E::ReservedPacketType(_)
                | E::InvalidFlags { .. }
                | E::InvalidQoS
                | E::DupWithQoS0
                | E::Truncated
                | E::TrailingBytes
                | E::InvalidVarInt
                | E::InvalidUtf8
                | E::NullCharacter
                | E::ZeroPacketId
                | E::InvalidProtocolName
                | E::UnsupportedProtocolLevel(_)
                | E::ConnectReservedFlag
                | E::WillFlagsWithoutWill
                | E::InvalidWillQoS
                | E::PasswordWithoutUsername
                | E::ConnAckReservedFlags
                | E::SessionPresentOnRefusal
                | E::WildcardInTopicName
                | E::EmptyTopic
                | E::InvalidTopicFilter
                | E::InvalidSharedSubscription
                | E::NoLocalOnSharedSubscription
                | E::SubscriptionOptionsReserved
                | E::InvalidSubscriptionQoS
                | E::InvalidRetainHandling
                | E::EmptySubscribe
                | E::EmptyUnsubscribe
                | E::EmptyAckPayload
                | E::InvalidReasonCode { .. }
                | E::UnknownProperty(_)
                | E::PropertyNotAllowed { .. }
                | E::DuplicateProperty(_)
                | E::InvalidPropertyValue(_)
                | E::MissingAuthenticationMethod
                | E::UnexpectedPacket(_) => {}
            }
        }
        errors
    }

    /// The ids of the project's own catalogue of `version` (conformance/catalogue/).
    fn catalogue(version: &str) -> BTreeSet<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../conformance/catalogue/v{version}.toml"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ids: BTreeSet<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("id = \"")?.strip_suffix('"').map(str::to_owned))
            .collect();
        assert!(ids.len() > 100, "{}: only {} ids", path.display(), ids.len());
        ids
    }

    /// Every citation in the codec's sources: (file, qualifier, id), the qualifier being
    /// `None` for `[MQTT-x.y.z-n]`, `Some("5.0")` for `[MQTT-5.0: x.y.z-n]`.
    fn cited_in_sources() -> Vec<(String, Option<String>, String)> {
        fn walk(dir: &Path, out: &mut Vec<(String, Option<String>, String)>) {
            for entry in std::fs::read_dir(dir).expect("source directory") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(&path, out);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source file");
                for (_, rest) in text.match_indices("[MQTT-").map(|(i, _)| ((), &text[i + 6..])) {
                    let Some(end) = rest.find(['\\', ']']) else { continue };
                    let inner = &rest[..end];
                    let (qualifier, number) = match inner.split_once(": ") {
                        Some((version, number)) => (Some(version.to_owned()), number),
                        None => (None, inner),
                    };
                    // `[MQTT-x.y.z-n]` ids start with a digit; skip `[MQTT-{version} §…]`.
                    if number.starts_with(|c: char| c.is_ascii_digit()) && !number.contains(['{', '§', ' ']) {
                        out.push((path.display().to_string(), qualifier, format!("MQTT-{number}")));
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        out
    }

    #[test]
    fn every_statement_the_errors_cite_is_in_its_versions_catalogue() {
        for (version, name) in [(ProtocolVersion::V3_1_1, "3.1.1"), (ProtocolVersion::V5, "5.0")] {
            let catalogue = catalogue(name);
            for error in every_error() {
                for id in error.statements(version) {
                    assert!(catalogue.contains(*id), "{error:?} cites {id}, which MQTT {name} does not number");
                }
            }
        }
        for error in every_error() {
            assert!(error.statements(ProtocolVersion::V3_1).is_empty(), "3.1 numbers no statements");
        }
    }

    #[test]
    fn every_citation_in_the_sources_is_in_its_versions_catalogue() {
        let (v3, v5) = (catalogue("3.1.1"), catalogue("5.0"));
        let cited = cited_in_sources();
        assert!(cited.len() > 100, "found only {} citations", cited.len());
        for (file, qualifier, id) in cited {
            match qualifier.as_deref() {
                None => assert!(
                    v3.contains(&id) && v5.contains(&id),
                    "{file}: [{id}] must be in both catalogues, or say its version ([MQTT-5.0: …])"
                ),
                Some("3.1.1") => assert!(v3.contains(&id), "{file}: {id} is not a 3.1.1 statement"),
                Some("5.0") => assert!(v5.contains(&id), "{file}: {id} is not a 5.0 statement"),
                Some(other) => panic!("{file}: unknown version {other} in a citation of {id}"),
            }
        }
    }

    #[test]
    fn cites_the_rule_of_each_version() {
        // The same number names different rules: 3.1.1 "Will QoS MUST NOT be 3" is
        // MQTT-3.1.2-14, which in 5.0 is about publishing a non-retained will.
        assert_eq!(DecodeError::InvalidWillQoS.statements(ProtocolVersion::V3_1_1), ["MQTT-3.1.2-14"]);
        assert_eq!(DecodeError::InvalidWillQoS.statements(ProtocolVersion::V5), ["MQTT-3.1.2-12"]);
        assert_eq!(DecodeError::InvalidWillQoS.to_string(), "Will QoS 3 [MQTT-3.1.1: 3.1.2-14] [MQTT-5.0: 3.1.2-12]");
        assert_eq!(
            DecodeError::InvalidWillQoS.in_version(ProtocolVersion::V5).to_string(),
            "Will QoS 3 [MQTT-5.0: 3.1.2-12]"
        );
        assert_eq!(DecodeError::InvalidQoS.to_string(), "PUBLISH with QoS 3 [MQTT-3.3.1-4]");
        // 5.0's MQTT-2.2.2-1 is the Property Length rule, not reserved packet types.
        assert!(DecodeError::ReservedPacketType(0).statements(ProtocolVersion::V5).is_empty());
        // SUBACK/UNSUBACK ordering rules say nothing about an empty payload.
        assert!(DecodeError::EmptyAckPayload.statements(ProtocolVersion::V5).is_empty());
        assert!(DecodeError::EmptyAckPayload.statements(ProtocolVersion::V3_1_1).is_empty());
        assert_eq!(
            DecodeError::Truncated.to_string(),
            "packet ends inside a field [MQTT-3.1.1 §2.2.3] [MQTT-5.0 §4.13]"
        );
    }
}

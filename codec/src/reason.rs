//! Reason codes (5.0 §2.4) and 3.1.1 return codes: an open code space kept as a newtype
//! so that reserved values survive a round trip through [`crate::raw`].

use core::fmt;

use crate::packet::PacketType;
use crate::version::ProtocolVersion;

/// A one-byte reason code (5.0 §2.4), or a 3.1.1 CONNACK return code / SUBACK return code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ReasonCode(pub u8);

macro_rules! reason_codes {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        impl ReasonCode {
            $(#[doc = $text] pub const $name: Self = Self($value);)*

            /// The 5.0 name of this code in Table 2-6 (0x00 has three: see [`Self::name`]).
            const fn v5_name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    SUCCESS = 0x00, "Success";
    GRANTED_QOS_1 = 0x01, "Granted QoS 1";
    GRANTED_QOS_2 = 0x02, "Granted QoS 2";
    DISCONNECT_WITH_WILL_MESSAGE = 0x04, "Disconnect with Will Message";
    NO_MATCHING_SUBSCRIBERS = 0x10, "No matching subscribers";
    NO_SUBSCRIPTION_EXISTED = 0x11, "No subscription existed";
    CONTINUE_AUTHENTICATION = 0x18, "Continue authentication";
    RE_AUTHENTICATE = 0x19, "Re-authenticate";
    UNSPECIFIED_ERROR = 0x80, "Unspecified error";
    MALFORMED_PACKET = 0x81, "Malformed Packet";
    PROTOCOL_ERROR = 0x82, "Protocol Error";
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83, "Implementation specific error";
    UNSUPPORTED_PROTOCOL_VERSION = 0x84, "Unsupported Protocol Version";
    CLIENT_IDENTIFIER_NOT_VALID = 0x85, "Client Identifier not valid";
    BAD_USER_NAME_OR_PASSWORD = 0x86, "Bad User Name or Password";
    NOT_AUTHORIZED = 0x87, "Not authorized";
    SERVER_UNAVAILABLE = 0x88, "Server unavailable";
    SERVER_BUSY = 0x89, "Server busy";
    BANNED = 0x8A, "Banned";
    SERVER_SHUTTING_DOWN = 0x8B, "Server shutting down";
    BAD_AUTHENTICATION_METHOD = 0x8C, "Bad authentication method";
    KEEP_ALIVE_TIMEOUT = 0x8D, "Keep Alive timeout";
    SESSION_TAKEN_OVER = 0x8E, "Session taken over";
    TOPIC_FILTER_INVALID = 0x8F, "Topic Filter invalid";
    TOPIC_NAME_INVALID = 0x90, "Topic Name invalid";
    PACKET_IDENTIFIER_IN_USE = 0x91, "Packet Identifier in use";
    PACKET_IDENTIFIER_NOT_FOUND = 0x92, "Packet Identifier not found";
    RECEIVE_MAXIMUM_EXCEEDED = 0x93, "Receive Maximum exceeded";
    TOPIC_ALIAS_INVALID = 0x94, "Topic Alias invalid";
    PACKET_TOO_LARGE = 0x95, "Packet too large";
    MESSAGE_RATE_TOO_HIGH = 0x96, "Message rate too high";
    QUOTA_EXCEEDED = 0x97, "Quota exceeded";
    ADMINISTRATIVE_ACTION = 0x98, "Administrative action";
    PAYLOAD_FORMAT_INVALID = 0x99, "Payload format invalid";
    RETAIN_NOT_SUPPORTED = 0x9A, "Retain not supported";
    QOS_NOT_SUPPORTED = 0x9B, "QoS not supported";
    USE_ANOTHER_SERVER = 0x9C, "Use another server";
    SERVER_MOVED = 0x9D, "Server moved";
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E, "Shared Subscriptions not supported";
    CONNECTION_RATE_EXCEEDED = 0x9F, "Connection rate exceeded";
    MAXIMUM_CONNECT_TIME = 0xA0, "Maximum connect time";
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "Subscription Identifiers not supported";
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2, "Wildcard Subscriptions not supported";
}

/// 3.1 / 3.1.1 CONNACK return codes (§3.2.2.3 of 3.1.1).
impl ReasonCode {
    /// 3.1.1 return code 0x01: unacceptable protocol version.
    pub const V3_UNACCEPTABLE_PROTOCOL_VERSION: Self = Self(0x01);
    /// 3.1.1 return code 0x02: identifier rejected.
    pub const V3_IDENTIFIER_REJECTED: Self = Self(0x02);
    /// 3.1.1 return code 0x03: server unavailable.
    pub const V3_SERVER_UNAVAILABLE: Self = Self(0x03);
    /// 3.1.1 return code 0x04: bad user name or password.
    pub const V3_BAD_USER_NAME_OR_PASSWORD: Self = Self(0x04);
    /// 3.1.1 return code 0x05: not authorized.
    pub const V3_NOT_AUTHORIZED: Self = Self(0x05);
    /// 3.1.1 SUBACK return code 0x80: failure.
    pub const V3_SUBSCRIBE_FAILURE: Self = Self(0x80);

    /// Whether this code reports an error (0x80 and above, §2.4).
    pub const fn is_error(self) -> bool {
        self.0 >= 0x80
    }

    /// The 3.1.1 CONNACK return code closest to this 5.0 CONNACK reason code.
    pub const fn to_v3_connack(self) -> Self {
        match self.0 {
            0x00..=0x05 => self,
            0x84 => Self::V3_UNACCEPTABLE_PROTOCOL_VERSION,
            0x85 => Self::V3_IDENTIFIER_REJECTED,
            0x86 | 0x8C => Self::V3_BAD_USER_NAME_OR_PASSWORD,
            0x87 | 0x8A => Self::V3_NOT_AUTHORIZED,
            _ => Self::V3_SERVER_UNAVAILABLE,
        }
    }

    /// Whether `packet_type` may carry this code under `version` (Table 2-6 and each
    /// packet's reason code table; 3.1.1 Table 3.1 and §3.9.3).
    pub fn is_valid_for(self, packet_type: PacketType, version: ProtocolVersion) -> bool {
        let code = self.0;
        if !version.is_v5() {
            return match packet_type {
                PacketType::ConnAck => code <= 0x05,
                PacketType::SubAck => matches!(code, 0x00 | 0x01 | 0x02 | 0x80),
                _ => code == 0x00,
            };
        }
        let allowed: &[u8] = match packet_type {
            PacketType::ConnAck => &[
                0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99,
                0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
            ],
            PacketType::PubAck | PacketType::PubRec => &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
            PacketType::PubRel | PacketType::PubComp => &[0x00, 0x92],
            PacketType::SubAck => &[0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2],
            PacketType::UnsubAck => &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91],
            PacketType::Disconnect => &[
                0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
                0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
            ],
            PacketType::Auth => &[0x00, 0x18, 0x19],
            _ => &[0x00],
        };
        allowed.contains(&code)
    }
}

/// The number only: the same value has different names in different packets and versions
/// (0x04 is "Disconnect with Will Message" in a 5.0 DISCONNECT, "Connection Refused, bad
/// user name or password" in a 3.1.1 CONNACK). [`ReasonCode::display`] names it.
impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReasonCode({:#04x})", self.0)
    }
}

/// The number only (`0x87`); see [`ReasonCode::display`] for the name in context.
impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}

impl ReasonCode {
    /// The name the standard gives this code in `packet_type` under `version` (5.0
    /// Table 2-6, 3.1.1 Table 3.1 and §3.9.3), or `None` if that packet cannot carry it
    /// (before 5.0 only CONNACK and SUBACK carry codes).
    ///
    /// ```
    /// use mqttkit_codec::{PacketType, ProtocolVersion, ReasonCode};
    ///
    /// let code = ReasonCode(0x04);
    /// assert_eq!(code.name(PacketType::Disconnect, ProtocolVersion::V5), Some("Disconnect with Will Message"));
    /// assert_eq!(
    ///     code.name(PacketType::ConnAck, ProtocolVersion::V3_1_1),
    ///     Some("Connection Refused, bad user name or password")
    /// );
    /// assert_eq!(code.name(PacketType::ConnAck, ProtocolVersion::V5), None);
    /// assert_eq!(ReasonCode::SUCCESS.name(PacketType::SubAck, ProtocolVersion::V5), Some("Granted QoS 0"));
    /// ```
    pub fn name(self, packet_type: PacketType, version: ProtocolVersion) -> Option<&'static str> {
        if !self.is_valid_for(packet_type, version) {
            return None;
        }
        if !version.is_v5() {
            return match (packet_type, self.0) {
                (PacketType::ConnAck, 0x00) => Some("Connection Accepted"),
                (PacketType::ConnAck, 0x01) => Some("Connection Refused, unacceptable protocol version"),
                (PacketType::ConnAck, 0x02) => Some("Connection Refused, identifier rejected"),
                (PacketType::ConnAck, 0x03) => Some("Connection Refused, Server unavailable"),
                (PacketType::ConnAck, 0x04) => Some("Connection Refused, bad user name or password"),
                (PacketType::ConnAck, 0x05) => Some("Connection Refused, not authorized"),
                (PacketType::SubAck, 0x00) => Some("Success - Maximum QoS 0"),
                (PacketType::SubAck, 0x01) => Some("Success - Maximum QoS 1"),
                (PacketType::SubAck, 0x02) => Some("Success - Maximum QoS 2"),
                (PacketType::SubAck, 0x80) => Some("Failure"),
                _ => None,
            };
        }
        match (packet_type, self.0) {
            (PacketType::Disconnect, 0x00) => Some("Normal disconnection"),
            (PacketType::SubAck, 0x00) => Some("Granted QoS 0"),
            _ => self.v5_name(),
        }
    }

    /// `Display` with the name in context: `0x87 (Not authorized)`, or the number alone
    /// when the packet cannot carry the code.
    pub const fn display(self, packet_type: PacketType, version: ProtocolVersion) -> NamedReasonCode {
        NamedReasonCode { code: self, packet_type, version }
    }
}

/// [`ReasonCode::display`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedReasonCode {
    code: ReasonCode,
    packet_type: PacketType,
    version: ProtocolVersion,
}

impl fmt::Display for NamedReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code.name(self.packet_type, self.version) {
            Some(name) => write!(f, "{:#04x} ({name})", self.code.0),
            None => write!(f, "{:#04x}", self.code.0),
        }
    }
}

impl From<u8> for ReasonCode {
    fn from(value: u8) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_depend_on_packet_and_version() {
        let refused = crate::ConnAck::new(false, ReasonCode(0x04));
        assert!(!format!("{refused:?}").contains("Will"), "{refused:?}");
        assert_eq!(
            ReasonCode(0x04).display(PacketType::ConnAck, ProtocolVersion::V3_1_1).to_string(),
            "0x04 (Connection Refused, bad user name or password)"
        );
        assert_eq!(ReasonCode(0x80).name(PacketType::SubAck, ProtocolVersion::V3_1_1), Some("Failure"));
        assert_eq!(ReasonCode(0x80).name(PacketType::SubAck, ProtocolVersion::V5), Some("Unspecified error"));
        assert_eq!(ReasonCode::SUCCESS.name(PacketType::Disconnect, ProtocolVersion::V5), Some("Normal disconnection"));
        assert_eq!(ReasonCode::SUCCESS.name(PacketType::PubAck, ProtocolVersion::V3_1_1), None);
        assert_eq!(ReasonCode(0x10).display(PacketType::PubRel, ProtocolVersion::V5).to_string(), "0x10");
    }

    #[test]
    fn every_valid_code_has_a_name() {
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            for packet_type in [PacketType::ConnAck, PacketType::SubAck] {
                for code in 0..=u8::MAX {
                    let code = ReasonCode(code);
                    assert_eq!(code.is_valid_for(packet_type, version), code.name(packet_type, version).is_some());
                }
            }
        }
        for packet_type in PacketType::all_in(ProtocolVersion::V5) {
            for code in 0..=u8::MAX {
                let code = ReasonCode(code);
                if code.is_valid_for(*packet_type, ProtocolVersion::V5) {
                    assert!(code.name(*packet_type, ProtocolVersion::V5).is_some(), "{code:?} in {packet_type}");
                }
            }
        }
    }
}

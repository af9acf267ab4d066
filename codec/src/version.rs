//! Protocol versions and the small enumerations shared by many packets.

use core::fmt;
use core::num::NonZeroU16;

/// A packet identifier: never zero (\[MQTT-3.1.1: 2.3.1-1\], \[MQTT-5.0: 2.2.1-3\]).
pub type PacketId = NonZeroU16;

/// The protocol level carried in CONNECT (§3.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte.
    pub const fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
            Self::V5 => 5,
        }
    }

    /// The protocol name this level is carried with.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Self::V3_1 => "MQIsdp",
            Self::V3_1_1 | Self::V5 => "MQTT",
        }
    }

    /// The version with this level byte, if any.
    pub const fn from_level(level: u8) -> Option<Self> {
        match level {
            3 => Some(Self::V3_1),
            4 => Some(Self::V3_1_1),
            5 => Some(Self::V5),
            _ => None,
        }
    }

    /// Whether packets of this version carry properties and reason codes.
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }

    /// All versions, oldest first.
    pub const ALL: [Self; 3] = [Self::V3_1, Self::V3_1_1, Self::V5];
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V3_1 => "3.1",
            Self::V3_1_1 => "3.1.1",
            Self::V5 => "5.0",
        })
    }
}

/// Quality of service (§4.3). The value 3 is not representable: it is malformed
/// on the wire (\[MQTT-3.3.1-4\]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum QoS {
    /// QoS 0.
    #[default]
    AtMostOnce = 0,
    /// QoS 1.
    AtLeastOnce = 1,
    /// QoS 2.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS with this numeric value, if it is 0, 1 or 2.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }

    /// The numeric value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Retain Handling subscription option (5.0 §3.8.3.1); the value 3 is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send retained messages only if the subscription did not already exist.
    SendIfNew = 1,
    /// 2: do not send retained messages.
    DoNotSend = 2,
}

impl RetainHandling {
    /// The option with this numeric value, if it is 0, 1 or 2.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::SendAtSubscribe),
            1 => Some(Self::SendIfNew),
            2 => Some(Self::DoNotSend),
            _ => None,
        }
    }
}

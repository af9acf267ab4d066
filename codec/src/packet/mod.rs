//! Control packets (§2, §3): one module per packet type, each with its type, `decode`,
//! `encoded_len` and `encode` side by side.
//!
//! Decoding works on one complete frame: the fixed header's first byte and the exact
//! remaining-length slice, parsed with complete parsers; anything left over is an error.

use core::fmt;

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::property::{Properties, PropertyContext};
use crate::version::ProtocolVersion;
use crate::wire;

mod auth;
mod connack;
mod connect;
mod disconnect;
mod filters;
mod publish;
mod publish_response;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use filters::{
    SubscribeFilters, SubscribeFiltersBuf, TopicFilterIter, TopicFilters, TopicFiltersBuf, UnsubscribeFilters,
    UnsubscribeFiltersBuf,
};
pub use publish::{Publish, PublishQoS};
pub use publish_response::PublishResponse;
pub use suback::{ReasonCodes, SubAck};
pub use subscribe::{Subscribe, SubscriptionOptions};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;

/// MQTT control packet types (§2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum PacketType {
    /// 1
    Connect = 1,
    /// 2
    ConnAck = 2,
    /// 3
    Publish = 3,
    /// 4
    PubAck = 4,
    /// 5
    PubRec = 5,
    /// 6
    PubRel = 6,
    /// 7
    PubComp = 7,
    /// 8
    Subscribe = 8,
    /// 9
    SubAck = 9,
    /// 10
    Unsubscribe = 10,
    /// 11
    UnsubAck = 11,
    /// 12
    PingReq = 12,
    /// 13
    PingResp = 13,
    /// 14
    Disconnect = 14,
    /// 15, MQTT 5.0 only.
    Auth = 15,
}

impl PacketType {
    /// The packet type in the high nibble of a fixed header's first byte, if defined for
    /// `version` (AUTH exists only in 5.0; `None` means "not known yet" and allows it).
    #[inline]
    pub const fn from_first_byte(byte: u8, version: Option<ProtocolVersion>) -> Result<Self, DecodeError> {
        Ok(match byte >> 4 {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            15 if !matches!(version, Some(ProtocolVersion::V3_1 | ProtocolVersion::V3_1_1)) => Self::Auth,
            other => return Err(DecodeError::ReservedPacketType(other)),
        })
    }

    /// The fixed-header flags this type must carry (Table 2.2); PUBLISH's are variable.
    pub const fn required_flags(self) -> Option<u8> {
        match self {
            Self::Publish => None,
            // "Bits 3,2,1 and 0 of the Fixed Header in the PUBREL packet are reserved and
            // MUST be set to 0,0,1 and 0 respectively" [MQTT-3.6.1-1]; likewise SUBSCRIBE
            // [MQTT-3.8.1-1] and UNSUBSCRIBE [MQTT-3.10.1-1].
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }

    /// Check the first byte of a fixed header: the type exists and reserved flags are
    /// as listed in Table 2.2 (\[MQTT-3.1.1: 2.2.2-1\], \[MQTT-3.1.1: 2.2.2-2\],
    /// \[MQTT-5.0: 2.1.3-1\]).
    ///
    /// MQTT 3.1 has no such rule: its DUP, QoS and RETAIN flags are "not used" outside
    /// PUBLISH, except that PUBREL, SUBSCRIBE and UNSUBSCRIBE "use QoS level 1" (and may be
    /// retried with DUP set). On a 3.1 stream only that QoS is checked. A CONNECT's flags
    /// are checked once its protocol level says which version it is
    /// ([`Connect::decode_with_flags`]) while the stream's version is unknown.
    #[inline]
    pub const fn check_first_byte(byte: u8, version: Option<ProtocolVersion>) -> Result<Self, DecodeError> {
        let packet_type = match Self::from_first_byte(byte, version) {
            Ok(t) => t,
            Err(e) => return Err(e),
        };
        let flags = byte & 0x0F;
        match (packet_type.required_flags(), version) {
            (None, _) => Ok(packet_type),
            (Some(required), _) if required == flags => Ok(packet_type),
            // The first CONNECT of a stream carries the version to check it with.
            (Some(_), None) if matches!(packet_type, Self::Connect) => Ok(packet_type),
            (Some(0b0010), Some(ProtocolVersion::V3_1)) if (flags >> 1) & 0b11 == 1 => Ok(packet_type),
            (Some(0), Some(ProtocolVersion::V3_1)) => Ok(packet_type),
            _ => Err(DecodeError::InvalidFlags { packet_type, flags }),
        }
    }

    /// Every packet type, in type-number order (AUTH, 5.0 only, last).
    pub const ALL: [Self; 15] = [
        Self::Connect,
        Self::ConnAck,
        Self::Publish,
        Self::PubAck,
        Self::PubRec,
        Self::PubRel,
        Self::PubComp,
        Self::Subscribe,
        Self::SubAck,
        Self::Unsubscribe,
        Self::UnsubAck,
        Self::PingReq,
        Self::PingResp,
        Self::Disconnect,
        Self::Auth,
    ];

    /// The packet types that exist in `version` (AUTH only in 5.0).
    pub fn all_in(version: ProtocolVersion) -> &'static [Self] {
        match Self::ALL.split_last() {
            Some((_auth, before_auth)) if !version.is_v5() => before_auth,
            _ => &Self::ALL,
        }
    }

    /// The name used in the standard.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::ConnAck => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubAck => "PUBACK",
            Self::PubRec => "PUBREC",
            Self::PubRel => "PUBREL",
            Self::PubComp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubAck => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubAck => "UNSUBACK",
            Self::PingReq => "PINGREQ",
            Self::PingResp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded control packet, borrowing from the bytes it was decoded from.
///
/// Every packet type documents how to build it; PINGREQ and PINGRESP have no fields:
///
/// ```
/// use mqttkit_codec::{decode_packet, Packet, ProtocolVersion, Status};
///
/// let version = ProtocolVersion::V3_1_1;
/// let packet = Packet::PingReq;
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT (§3.1).
    Connect(Connect<'a>),
    /// CONNACK (§3.2).
    ConnAck(ConnAck<'a>),
    /// PUBLISH (§3.3).
    Publish(Publish<'a>),
    /// PUBACK (§3.4).
    PubAck(PublishResponse<'a>),
    /// PUBREC (§3.5).
    PubRec(PublishResponse<'a>),
    /// PUBREL (§3.6).
    PubRel(PublishResponse<'a>),
    /// PUBCOMP (§3.7).
    PubComp(PublishResponse<'a>),
    /// SUBSCRIBE (§3.8).
    Subscribe(Subscribe<'a>),
    /// SUBACK (§3.9).
    SubAck(SubAck<'a>),
    /// UNSUBSCRIBE (§3.10).
    Unsubscribe(Unsubscribe<'a>),
    /// UNSUBACK (§3.11).
    UnsubAck(UnsubAck<'a>),
    /// PINGREQ (§3.12): no variable header, no payload.
    PingReq,
    /// PINGRESP (§3.13): no variable header, no payload.
    PingResp,
    /// DISCONNECT (§3.14).
    Disconnect(Disconnect<'a>),
    /// AUTH (5.0 §3.15).
    Auth(Auth<'a>),
}

impl<'a> Packet<'a> {
    /// The packet's type.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// Decode one packet from its fixed header's first byte and its exact body (the
    /// remaining-length slice). CONNECT carries its own version; every other packet is
    /// decoded under `version`, and is refused while the version is unknown (`None`):
    /// "the first packet sent from the Client to the Server MUST be a CONNECT packet"
    /// \[MQTT-3.1.0-1\].
    pub fn decode(first_byte: u8, body: &'a [u8], version: Option<ProtocolVersion>) -> Result<Self, DecodeError> {
        let packet_type = PacketType::check_first_byte(first_byte, version)?;
        Self::decode_checked(packet_type, first_byte & 0x0F, body, version)
    }

    /// [`Self::decode`] once the first byte is checked (`frame::decode_packet` has done
    /// that while reading the fixed header).
    #[inline]
    pub(crate) fn decode_checked(
        packet_type: PacketType,
        flags: u8,
        body: &'a [u8],
        version: Option<ProtocolVersion>,
    ) -> Result<Self, DecodeError> {
        if packet_type == PacketType::Connect {
            return Connect::decode_with_flags(flags, body).map(Self::Connect);
        }
        let Some(version) = version else {
            return Err(DecodeError::UnexpectedPacket(packet_type));
        };
        Ok(match packet_type {
            PacketType::Connect => return Connect::decode(body).map(Self::Connect),
            PacketType::ConnAck => Self::ConnAck(ConnAck::decode(body, version)?),
            PacketType::Publish => Self::Publish(Publish::decode(flags, body, version)?),
            PacketType::PubAck => Self::PubAck(PublishResponse::decode(packet_type, body, version)?),
            PacketType::PubRec => Self::PubRec(PublishResponse::decode(packet_type, body, version)?),
            PacketType::PubRel => Self::PubRel(PublishResponse::decode(packet_type, body, version)?),
            PacketType::PubComp => Self::PubComp(PublishResponse::decode(packet_type, body, version)?),
            PacketType::Subscribe => Self::Subscribe(Subscribe::decode(body, version)?),
            PacketType::SubAck => Self::SubAck(SubAck::decode(body, version)?),
            PacketType::Unsubscribe => Self::Unsubscribe(Unsubscribe::decode(body, version)?),
            PacketType::UnsubAck => Self::UnsubAck(UnsubAck::decode(body, version)?),
            PacketType::PingReq => {
                wire::expect_end(body)?;
                Self::PingReq
            }
            PacketType::PingResp => {
                wire::expect_end(body)?;
                Self::PingResp
            }
            PacketType::Disconnect => Self::Disconnect(Disconnect::decode(body, version)?),
            PacketType::Auth => Self::Auth(Auth::decode(body, version)?),
        })
    }

    /// The first byte of the fixed header (type and flags).
    pub fn first_byte(&self) -> u8 {
        let flags = match self {
            Self::Publish(p) => p.flags(),
            other => other.packet_type().required_flags().unwrap_or(0),
        };
        ((self.packet_type() as u8) << 4) | flags
    }

    /// The remaining length: bytes after the fixed header. CONNECT always uses its own
    /// [`Connect::version`].
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        match self {
            Self::Connect(p) => p.remaining_len(),
            Self::ConnAck(p) => p.remaining_len(version),
            Self::Publish(p) => p.remaining_len(version),
            Self::PubAck(p) | Self::PubRec(p) | Self::PubRel(p) | Self::PubComp(p) => p.remaining_len(version),
            Self::Subscribe(p) => p.remaining_len(version),
            Self::SubAck(p) => p.remaining_len(version),
            Self::Unsubscribe(p) => p.remaining_len(version),
            Self::UnsubAck(p) => p.remaining_len(version),
            Self::PingReq | Self::PingResp => 0,
            Self::Disconnect(p) => p.remaining_len(version),
            Self::Auth(p) => p.remaining_len(),
        }
    }

    /// The whole packet's size on the wire (fixed header included).
    pub fn encoded_len(&self, version: ProtocolVersion) -> usize {
        let remaining = self.remaining_len(version);
        wire::sum([1, wire::var_int_len(u32::try_from(remaining).unwrap_or(u32::MAX)), remaining])
    }

    /// Check that the packet is valid for `version`: everything the decoder would check
    /// that the field types do not already guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        self.validate_len(version).map(drop)
    }

    /// [`Self::validate`], returning the remaining length it computed.
    fn validate_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        match self {
            Self::Connect(p) => p.validate(),
            Self::ConnAck(p) => p.validate(version),
            Self::Publish(p) => p.validate(version),
            Self::PubAck(p) => p.validate(PacketType::PubAck, version),
            Self::PubRec(p) => p.validate(PacketType::PubRec, version),
            Self::PubRel(p) => p.validate(PacketType::PubRel, version),
            Self::PubComp(p) => p.validate(PacketType::PubComp, version),
            Self::Subscribe(p) => p.validate(version),
            Self::SubAck(p) => p.validate(version),
            Self::Unsubscribe(p) => p.validate(version),
            Self::UnsubAck(p) => p.validate(version),
            Self::PingReq | Self::PingResp => Ok(()),
            Self::Disconnect(p) => p.validate(version),
            Self::Auth(p) => p.validate(version),
        }?;
        let remaining = self.remaining_len(version);
        if remaining > wire::VAR_INT_MAX as usize {
            return Err(EncodeError::PacketTooLarge);
        }
        Ok(remaining)
    }

    /// Validate and encode the whole packet into `buf`, with no intermediate buffer.
    pub fn encode(&self, version: ProtocolVersion, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        // The most frequent packets are validated, sized and written in one place each.
        match self {
            Self::Publish(p) => {
                let payload = p.encode_vectored(version, buf)?;
                buf.put_slice(payload);
                Ok(())
            }
            Self::PubAck(p) => p.encode(PacketType::PubAck, version, buf),
            Self::PubRec(p) => p.encode(PacketType::PubRec, version, buf),
            Self::PubRel(p) => p.encode(PacketType::PubRel, version, buf),
            Self::PubComp(p) => p.encode(PacketType::PubComp, version, buf),
            // CONNECT carries its own version.
            Self::Connect(p) => p.encode(buf),
            _ => self.encode_other(version, buf),
        }
    }

    /// [`Self::encode`] of the less frequent packets.
    #[inline(never)]
    fn encode_other(&self, version: ProtocolVersion, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        let remaining = self.validate_len(version)?;
        self.encode_head(version, remaining, buf);
        Ok(())
    }

    /// Validate and encode everything but a PUBLISH payload into `head`, and return the
    /// payload (borrowed, not copied) to be written after it — for vectored writes of large
    /// messages. For other packets the returned slice is empty.
    #[inline]
    pub fn encode_vectored(&self, version: ProtocolVersion, head: &mut impl BufMut) -> Result<&'a [u8], EncodeError> {
        // One dispatch for the most frequent packets: validate, size and write in one place.
        match self {
            Self::Publish(p) => return p.encode_vectored(version, head),
            Self::PubAck(p) => return p.encode(PacketType::PubAck, version, head).map(|()| &[][..]),
            Self::PubRec(p) => return p.encode(PacketType::PubRec, version, head).map(|()| &[][..]),
            Self::PubRel(p) => return p.encode(PacketType::PubRel, version, head).map(|()| &[][..]),
            Self::PubComp(p) => return p.encode(PacketType::PubComp, version, head).map(|()| &[][..]),
            _ => {}
        }
        let remaining = self.validate_len(version)?;
        Ok(self.encode_head(version, remaining, head))
    }

    /// Encode without any validation: the explicitly named path for building deliberately
    /// invalid packets (reserved reason codes, wildcards in topic names, …), as the
    /// conformance runner needs. Byte-level corruption is done with [`crate::raw`].
    pub fn encode_unchecked(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        let payload = self.encode_head_unchecked(version, buf);
        buf.put_slice(payload);
    }

    fn encode_head_unchecked(&self, version: ProtocolVersion, buf: &mut impl BufMut) -> &'a [u8] {
        self.encode_head(version, self.remaining_len(version), buf)
    }

    fn encode_head(&self, version: ProtocolVersion, remaining: usize, buf: &mut impl BufMut) -> &'a [u8] {
        buf.put_u8(self.first_byte());
        wire::put_var_int(buf, u32::try_from(remaining).unwrap_or(u32::MAX).min(wire::VAR_INT_MAX));
        match self {
            Self::Connect(p) => p.encode_body(buf),
            Self::ConnAck(p) => p.encode_body(version, buf),
            Self::Publish(p) => return p.encode_head(version, buf),
            Self::PubAck(p) | Self::PubRec(p) | Self::PubRel(p) | Self::PubComp(p) => p.encode_body(version, buf),
            Self::Subscribe(p) => p.encode_body(version, buf),
            Self::SubAck(p) => p.encode_body(version, buf),
            Self::Unsubscribe(p) => p.encode_body(version, buf),
            Self::UnsubAck(p) => p.encode_body(version, buf),
            Self::PingReq | Self::PingResp => {}
            Self::Disconnect(p) => p.encode_body(version, buf),
            Self::Auth(p) => p.encode_body(buf),
        }
        &[]
    }
}

/// A property block in 5.0, nothing before.
#[inline]
pub(crate) fn v5_properties(
    input: &[u8],
    version: ProtocolVersion,
    context: PropertyContext,
) -> Result<(Properties<'_>, &[u8]), DecodeError> {
    if version.is_v5() { Properties::split(input, context) } else { Ok((Properties::EMPTY, input)) }
}

/// Encoded length of a 5.0 property block, or 0 before 5.0.
#[inline]
pub(crate) fn properties_len(props: &Properties<'_>, version: ProtocolVersion) -> usize {
    if version.is_v5() { props.encoded_len() } else { 0 }
}

/// Properties can only be sent in 5.0.
pub(crate) fn check_no_properties(props: &Properties<'_>, version: ProtocolVersion) -> Result<(), EncodeError> {
    if !version.is_v5() && !props.is_empty() {
        return Err(EncodeError::V5FieldInOlderVersion);
    }
    Ok(())
}

/// Check a property block built by the caller for `context`.
#[inline]
pub(crate) fn check_properties(
    props: &Properties<'_>,
    context: PropertyContext,
    version: ProtocolVersion,
) -> Result<(), EncodeError> {
    // An empty block is valid in every packet of every version.
    if props.is_empty() {
        return Ok(());
    }
    check_no_properties(props, version)?;
    props.check_context(context).map_err(|_| EncodeError::PropertiesForOtherPacket)
}

/// Check a reason code the caller chose for `packet_type`.
#[inline]
pub(crate) fn check_reason_code(
    code: crate::reason::ReasonCode,
    packet_type: PacketType,
    version: ProtocolVersion,
) -> Result<(), EncodeError> {
    // Success (0x00) is valid for every packet type in every version.
    if code.0 == 0 || code.is_valid_for(packet_type, version) {
        Ok(())
    } else {
        Err(EncodeError::Invalid(DecodeError::InvalidReasonCode { packet_type, code: code.0 }))
    }
}

//! SUBACK: subscribe acknowledgement (3.1.1 §3.9, 5.0 §3.9).

use core::fmt;

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::{PacketType, check_properties, properties_len, v5_properties};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use crate::version::{PacketId, ProtocolVersion};
use crate::wire;

/// A validated, non-empty list of one-byte reason codes (SUBACK and 5.0 UNSUBACK payloads).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReasonCodes<'a> {
    raw: &'a [u8],
}

impl<'a> ReasonCodes<'a> {
    /// Check that `raw` is a non-empty list of codes `packet_type` may carry.
    pub fn parse(raw: &'a [u8], packet_type: PacketType, version: ProtocolVersion) -> Result<Self, DecodeError> {
        // One reason code per topic filter (§3.9.3, §3.11.3); there is at least one filter.
        if raw.is_empty() {
            return Err(DecodeError::EmptyAckPayload);
        }
        // "SUBACK return codes other than 0x00, 0x01, 0x02 and 0x80 are reserved and MUST
        // NOT be used" [MQTT-3.9.3-2] (5.0: "one of the Subscribe Reason Code values");
        // UNSUBACK [MQTT-5.0: 3.11.3-2].
        if let Some(&code) = raw.iter().find(|&&c| !ReasonCode(c).is_valid_for(packet_type, version)) {
            return Err(DecodeError::InvalidReasonCode { packet_type, code });
        }
        Ok(Self { raw })
    }

    /// Wrap raw bytes without checking them: for deliberately malformed packets.
    pub const fn from_raw_unchecked(raw: &'a [u8]) -> Self {
        Self { raw }
    }

    /// The raw codes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The number of codes.
    pub const fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the list is empty (only possible for unchecked lists).
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The codes, in order.
    pub fn iter(&self) -> impl Iterator<Item = ReasonCode> + use<'a> {
        self.raw.iter().map(|&c| ReasonCode(c))
    }
}

impl fmt::Debug for ReasonCodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// SUBACK.
///
/// ```
/// use mqttkit_codec::{decode_packet, Packet, PacketId, PacketType, ProtocolVersion, ReasonCodes, Status, SubAck};
///
/// let version = ProtocolVersion::V3_1_1;
/// let codes = ReasonCodes::parse(&[0x01, 0x80], PacketType::SubAck, version)?;
/// let packet = Packet::SubAck(SubAck::new(PacketId::new(1).ok_or("zero")?, codes));
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck<'a> {
    /// The SUBSCRIBE's packet identifier.
    pub packet_id: PacketId,
    /// 5.0 properties; empty before 5.0.
    pub properties: Properties<'a>,
    /// One code per requested filter, in order.
    pub reason_codes: ReasonCodes<'a>,
}

impl<'a> SubAck<'a> {
    /// A SUBACK without properties.
    pub const fn new(packet_id: PacketId, reason_codes: ReasonCodes<'a>) -> Self {
        Self { packet_id, properties: Properties::EMPTY, reason_codes }
    }

    /// Decode a SUBACK body.
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, input) = wire::split_packet_id(body)?;
        let (properties, input) = v5_properties(input, version, PropertyContext::SubAck)?;
        let reason_codes = ReasonCodes::parse(input, PacketType::SubAck, version)?;
        Ok(Self { packet_id, properties, reason_codes })
    }

    /// Bytes after the fixed header.
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        wire::sum([2, properties_len(&self.properties, version), self.reason_codes.len()])
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_properties(&self.properties, PropertyContext::SubAck, version)?;
        ReasonCodes::parse(self.reason_codes.raw, PacketType::SubAck, version)?;
        Ok(())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf);
        }
        buf.put_slice(self.reason_codes.raw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3_1_1, V5};

    #[test]
    fn decodes_v311_suback() {
        let s = SubAck::decode(&[0, 7, 0, 1, 2, 0x80], V3_1_1).expect("valid");
        assert_eq!(s.reason_codes.as_bytes(), [0, 1, 2, 0x80]);
    }

    #[test]
    fn decodes_v5_suback() {
        let s = SubAck::decode(&[0, 7, 0, 0x8F, 0xA2], V5).expect("valid");
        assert_eq!(
            s.reason_codes.iter().collect::<Vec<_>>(),
            [ReasonCode::TOPIC_FILTER_INVALID, ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED]
        );
    }

    #[test]
    fn rejects_reserved_return_code() {
        assert_eq!(
            SubAck::decode(&[0, 7, 0x8F], V3_1_1),
            Err(DecodeError::InvalidReasonCode { packet_type: PacketType::SubAck, code: 0x8F })
        );
    }

    #[test]
    fn rejects_empty_payload() {
        assert_eq!(SubAck::decode(&[0, 7], V3_1_1), Err(DecodeError::EmptyAckPayload));
    }
}

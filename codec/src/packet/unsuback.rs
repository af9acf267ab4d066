//! UNSUBACK: unsubscribe acknowledgement (3.1.1 §3.11, 5.0 §3.11).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::suback::ReasonCodes;
use crate::packet::{PacketType, check_properties};
use crate::property::{Properties, PropertyContext};
use crate::version::{PacketId, ProtocolVersion};
use crate::wire;

/// UNSUBACK. Before 5.0 it carries only the packet identifier.
///
/// ```
/// use mqttkit_codec::{decode_packet, Packet, PacketId, PacketType, ProtocolVersion, ReasonCodes, Status, UnsubAck};
///
/// let version = ProtocolVersion::V5;
/// let codes = ReasonCodes::parse(&[0x00, 0x11], PacketType::UnsubAck, version)?;
/// let packet = Packet::UnsubAck(UnsubAck::new(PacketId::new(2).ok_or("zero")?, codes));
/// // Before 5.0: UnsubAck::v3(packet_id).
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck<'a> {
    /// The UNSUBSCRIBE's packet identifier.
    pub packet_id: PacketId,
    /// 5.0 properties; empty before 5.0.
    pub properties: Properties<'a>,
    /// 5.0: one code per filter, in order. Before 5.0: empty.
    pub reason_codes: ReasonCodes<'a>,
}

impl<'a> UnsubAck<'a> {
    /// A 3.1.1 UNSUBACK: just the packet identifier.
    pub const fn v3(packet_id: PacketId) -> Self {
        Self { packet_id, properties: Properties::EMPTY, reason_codes: ReasonCodes::from_raw_unchecked(&[]) }
    }

    /// A 5.0 UNSUBACK without properties.
    pub const fn new(packet_id: PacketId, reason_codes: ReasonCodes<'a>) -> Self {
        Self { packet_id, properties: Properties::EMPTY, reason_codes }
    }

    /// Decode an UNSUBACK body.
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, input) = wire::split_packet_id(body)?;
        if !version.is_v5() {
            wire::expect_end(input)?;
            return Ok(Self {
                packet_id,
                properties: Properties::EMPTY,
                reason_codes: ReasonCodes::from_raw_unchecked(&[]),
            });
        }
        let (properties, input) = Properties::split(input, PropertyContext::UnsubAck)?;
        let reason_codes = ReasonCodes::parse(input, PacketType::UnsubAck, version)?;
        Ok(Self { packet_id, properties, reason_codes })
    }

    /// Bytes after the fixed header.
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() { wire::sum([2, self.properties.encoded_len(), self.reason_codes.len()]) } else { 2 }
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_properties(&self.properties, PropertyContext::UnsubAck, version)?;
        if version.is_v5() {
            ReasonCodes::parse(self.reason_codes.as_bytes(), PacketType::UnsubAck, version)?;
        } else if !self.reason_codes.is_empty() {
            return Err(EncodeError::V5FieldInOlderVersion);
        }
        Ok(())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf);
            buf.put_slice(self.reason_codes.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3_1_1, V5};

    #[test]
    fn decodes_unsuback() {
        assert!(UnsubAck::decode(&[0, 9], V3_1_1).expect("valid").reason_codes.is_empty());
        let u = UnsubAck::decode(&[0, 9, 0, 0x00, 0x11], V5).expect("valid");
        assert_eq!(u.reason_codes.as_bytes(), [0x00, 0x11]);
    }

    #[test]
    fn rejects_extra_bytes_before_v5() {
        assert_eq!(UnsubAck::decode(&[0, 9, 0], V3_1_1), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn rejects_missing_reason_codes_in_v5() {
        assert_eq!(UnsubAck::decode(&[0, 9, 0], V5), Err(DecodeError::EmptyAckPayload));
        assert_eq!(
            UnsubAck::decode(&[0, 9, 0, 0x02], V5),
            Err(DecodeError::InvalidReasonCode { packet_type: PacketType::UnsubAck, code: 2 })
        );
    }
}

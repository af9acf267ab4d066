//! PUBACK, PUBREC, PUBREL and PUBCOMP (3.1.1 §3.4–§3.7, 5.0 §3.4–§3.7): the four QoS 1/2
//! acknowledgements share one layout (packet identifier, 5.0 reason code and properties),
//! so they share one type; [`crate::Packet`] tells them apart.

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::{PacketType, check_properties, check_reason_code};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use crate::version::{PacketId, ProtocolVersion};
use crate::wire;

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
///
/// ```
/// use mqttkit_codec::{decode_packet, Packet, PacketId, ProtocolVersion, PublishResponse, ReasonCode, Status};
///
/// let version = ProtocolVersion::V5;
/// let mut pubrec = PublishResponse::new(PacketId::new(7).ok_or("zero")?);
/// pubrec.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
/// let packet = Packet::PubRec(pubrec); // PubAck, PubRel and PubComp are built alike
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishResponse<'a> {
    /// The identifier of the PUBLISH (or PUBREL) acknowledged.
    pub packet_id: PacketId,
    /// 5.0 reason code; `SUCCESS` before 5.0.
    pub reason_code: ReasonCode,
    /// 5.0 properties; empty before 5.0.
    pub properties: Properties<'a>,
}

fn context(packet_type: PacketType) -> PropertyContext {
    match packet_type {
        PacketType::PubRec => PropertyContext::PubRec,
        PacketType::PubRel => PropertyContext::PubRel,
        PacketType::PubComp => PropertyContext::PubComp,
        _ => PropertyContext::PubAck,
    }
}

impl<'a> PublishResponse<'a> {
    /// A successful acknowledgement.
    pub const fn new(packet_id: PacketId) -> Self {
        Self { packet_id, reason_code: ReasonCode::SUCCESS, properties: Properties::EMPTY }
    }

    /// Decode the body of a `packet_type` acknowledgement.
    ///
    /// In 5.0 the short forms are accepted: "The Reason Code and Property Length can be
    /// omitted if the Reason Code is 0x00 (Success) and there are no Properties. In this
    /// case the PUBACK has a Remaining Length of 2" (§3.4.2.1), and "If the Remaining
    /// Length is less than 4 there is no Property Length and the value of 0 is used"
    /// (§3.4.2.2).
    pub fn decode(packet_type: PacketType, body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, input) = wire::split_packet_id(body)?;
        if !version.is_v5() || input.is_empty() {
            wire::expect_end(input)?;
            return Ok(Self::new(packet_id));
        }
        let (code, input) = wire::split_u8(input)?;
        let reason_code = ReasonCode(code);
        // "The Client or Server sending the PUBACK packet MUST use one of the PUBACK
        // Reason Codes" [MQTT-5.0: 3.4.2-1] (and [MQTT-5.0: 3.5.2-1], [MQTT-5.0: 3.6.2-1],
        // [MQTT-5.0: 3.7.2-1]).
        if !reason_code.is_valid_for(packet_type, version) {
            return Err(DecodeError::InvalidReasonCode { packet_type, code });
        }
        let (input, properties) = if input.is_empty() {
            (input, Properties::EMPTY)
        } else {
            Properties::split(input, context(packet_type)).map(|(p, rest)| (rest, p))?
        };
        wire::expect_end(input)?;
        Ok(Self { packet_id, reason_code, properties })
    }

    /// Bytes after the fixed header: the shortest form that carries the fields.
    #[inline]
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        if !version.is_v5() || (self.reason_code == ReasonCode::SUCCESS && self.properties.is_empty()) {
            2
        } else if self.properties.is_empty() {
            3
        } else {
            self.properties.encoded_len().saturating_add(3)
        }
    }

    /// Check what the field types do not guarantee.
    #[inline]
    pub fn validate(&self, packet_type: PacketType, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_reason_code(self.reason_code, packet_type, version)?;
        check_properties(&self.properties, context(packet_type), version)
    }

    /// Validate and write the whole packet: the short forms in one or two stores.
    #[inline(always)]
    pub(crate) fn encode(
        &self,
        packet_type: PacketType,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        self.validate(packet_type, version)?;
        let first_byte = ((packet_type as u8) << 4) | packet_type.required_flags().unwrap_or(0);
        let [hi, lo] = self.packet_id.get().to_be_bytes();
        match self.remaining_len(version) {
            // Fixed-size writes compile to plain stores (a `put_slice` of 4 or 5 bytes
            // would become one `memcpy` call of variable length).
            2 => buf.put_u32(u32::from_be_bytes([first_byte, 2, hi, lo])),
            3 => {
                buf.put_u32(u32::from_be_bytes([first_byte, 3, hi, lo]));
                buf.put_u8(self.reason_code.0);
            }
            len => {
                let len = u32::try_from(len).ok().filter(|&len| len <= wire::VAR_INT_MAX);
                wire::put_fixed_header(buf, first_byte, len.ok_or(EncodeError::PacketTooLarge)?, [hi, lo]);
                buf.put_u8(self.reason_code.0);
                self.properties.encode(buf);
            }
        }
        Ok(())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        match self.remaining_len(version) {
            2 => {}
            3 => buf.put_u8(self.reason_code.0),
            _ => {
                buf.put_u8(self.reason_code.0);
                self.properties.encode(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3_1_1, V5};

    #[test]
    fn decodes_every_v5_length() {
        for (body, code, reason) in [
            (&[0, 1][..], 0x00, None),
            (&[0, 1, 0x10], 0x10, None),
            (&[0, 1, 0x10, 0], 0x10, None),
            (&[0, 1, 0x80, 4, 0x1F, 0, 1, b'r'], 0x80, Some("r")),
        ] {
            let p = PublishResponse::decode(PacketType::PubAck, body, V5).expect("valid");
            assert_eq!((p.packet_id.get(), p.reason_code.0, p.properties.reason_string()), (1, code, reason));
        }
    }

    #[test]
    fn rejects_v3_with_extra_bytes() {
        assert_eq!(PublishResponse::decode(PacketType::PubAck, &[0, 1, 0], V3_1_1), Err(DecodeError::TrailingBytes));
        assert_eq!(PublishResponse::decode(PacketType::PubAck, &[0], V3_1_1), Err(DecodeError::Truncated));
    }

    #[test]
    fn rejects_zero_packet_id() {
        assert_eq!(PublishResponse::decode(PacketType::PubRec, &[0, 0], V3_1_1), Err(DecodeError::ZeroPacketId));
    }

    #[test]
    fn rejects_reason_code_of_other_packet() {
        assert_eq!(
            PublishResponse::decode(PacketType::PubRel, &[0, 1, 0x10], V5),
            Err(DecodeError::InvalidReasonCode { packet_type: PacketType::PubRel, code: 0x10 })
        );
        assert!(PublishResponse::decode(PacketType::PubComp, &[0, 1, 0x92], V5).is_ok());
    }

    #[test]
    fn encodes_shortest_form() {
        let mut p = PublishResponse::new(PacketId::MIN);
        assert_eq!(p.remaining_len(V5), 2);
        p.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
        assert_eq!(p.remaining_len(V5), 3);
        assert_eq!(p.remaining_len(V3_1_1), 2);
    }
}

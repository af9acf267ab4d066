//! CONNACK: acknowledge connection request (3.1.1 §3.2, 5.0 §3.2).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::{PacketType, check_properties, check_reason_code, properties_len, v5_properties};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use crate::version::ProtocolVersion;
use crate::wire;

/// CONNACK. Before 5.0 `code` holds the Connect Return code (0x00–0x05).
///
/// ```
/// use mqttkit_codec::{decode_packet, ConnAck, Packet, ProtocolVersion, ReasonCode, Status};
///
/// let version = ProtocolVersion::V3_1_1;
/// let packet = Packet::ConnAck(ConnAck::new(false, ReasonCode::V3_NOT_AUTHORIZED));
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck<'a> {
    /// Session Present.
    pub session_present: bool,
    /// Connect Reason Code (5.0) or Connect Return code (3.1.1).
    pub code: ReasonCode,
    /// 5.0 CONNACK properties; empty before 5.0.
    pub properties: Properties<'a>,
}

impl<'a> ConnAck<'a> {
    /// A CONNACK without properties.
    pub const fn new(session_present: bool, code: ReasonCode) -> Self {
        Self { session_present, code, properties: Properties::EMPTY }
    }

    /// Decode a CONNACK body.
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (flags, input) = wire::split_u8(body)?;
        // "Bits 7-1 are reserved and MUST be set to 0" [MQTT-5.0: 3.2.2-1] (3.1.1 §3.2.2.1).
        if flags & 0xFE != 0 {
            return Err(DecodeError::ConnAckReservedFlags);
        }
        let (code, input) = wire::split_u8(input)?;
        let code = ReasonCode(code);
        // "The Server sending the CONNACK packet MUST use one of the Connect Reason Code
        // values" [MQTT-5.0: 3.2.2-8]; 3.1.1 Table 3.1 lists 0x00–0x05.
        if !code.is_valid_for(PacketType::ConnAck, version) {
            return Err(DecodeError::InvalidReasonCode { packet_type: PacketType::ConnAck, code: code.0 });
        }
        let session_present = flags & 0x01 != 0;
        // "If a server sends a CONNACK packet containing a non-zero return code it MUST
        // set Session Present to 0" [MQTT-3.1.1: 3.2.2-4] [MQTT-5.0: 3.2.2-6].
        if session_present && code != ReasonCode::SUCCESS {
            return Err(DecodeError::SessionPresentOnRefusal);
        }
        let (properties, input) = v5_properties(input, version, PropertyContext::ConnAck)?;
        wire::expect_end(input)?;
        Ok(Self { session_present, code, properties })
    }

    /// Bytes after the fixed header.
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        wire::sum([2, properties_len(&self.properties, version)])
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_reason_code(self.code, PacketType::ConnAck, version)?;
        if self.session_present && self.code != ReasonCode::SUCCESS {
            return Err(DecodeError::SessionPresentOnRefusal.into());
        }
        check_properties(&self.properties, PropertyContext::ConnAck, version)
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u8(u8::from(self.session_present));
        buf.put_u8(self.code.0);
        if version.is_v5() {
            self.properties.encode(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3_1_1, V5};

    #[test]
    fn decodes_v311_connack() {
        let c = ConnAck::decode(&[0x01, 0x00], V3_1_1).expect("valid");
        assert!(c.session_present);
        assert_eq!(c.code, ReasonCode::SUCCESS);
    }

    #[test]
    fn decodes_v5_connack_with_properties() {
        let c = ConnAck::decode(&[0x00, 0x00, 3, 0x21, 0, 10], V5).expect("valid");
        assert_eq!(c.properties.receive_maximum(), Some(10));
    }

    #[test]
    fn rejects_reserved_flags() {
        assert_eq!(ConnAck::decode(&[0x02, 0x00], V3_1_1), Err(DecodeError::ConnAckReservedFlags));
    }

    #[test]
    fn rejects_session_present_with_refusal() {
        assert_eq!(ConnAck::decode(&[0x01, 0x05], V3_1_1), Err(DecodeError::SessionPresentOnRefusal));
    }

    #[test]
    fn rejects_unknown_return_code() {
        assert_eq!(
            ConnAck::decode(&[0x00, 0x06], V3_1_1),
            Err(DecodeError::InvalidReasonCode { packet_type: PacketType::ConnAck, code: 6 })
        );
        assert_eq!(
            ConnAck::decode(&[0x00, 0x01, 0], V5),
            Err(DecodeError::InvalidReasonCode { packet_type: PacketType::ConnAck, code: 1 })
        );
    }

    #[test]
    fn rejects_missing_property_length_in_v5() {
        assert_eq!(ConnAck::decode(&[0x00, 0x00], V5), Err(DecodeError::Truncated));
    }

    #[test]
    fn rejects_trailing_bytes() {
        assert_eq!(ConnAck::decode(&[0x00, 0x00, 0x00], V3_1_1), Err(DecodeError::TrailingBytes));
    }
}

//! DISCONNECT: disconnect notification (3.1.1 §3.14, 5.0 §3.14).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::{PacketType, check_properties, check_reason_code};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use crate::version::ProtocolVersion;
use crate::wire;

/// DISCONNECT. Before 5.0 it has no body.
///
/// ```
/// use mqttkit_codec::{decode_packet, Disconnect, Packet, ProtocolVersion, ReasonCode, Status};
///
/// let version = ProtocolVersion::V5;
/// let packet = Packet::Disconnect(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE));
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect<'a> {
    /// 5.0 reason code; `SUCCESS` (normal disconnection) before 5.0.
    pub reason_code: ReasonCode,
    /// 5.0 properties; empty before 5.0.
    pub properties: Properties<'a>,
}

impl<'a> Disconnect<'a> {
    /// A DISCONNECT with this reason code and no properties.
    pub const fn new(reason_code: ReasonCode) -> Self {
        Self { reason_code, properties: Properties::EMPTY }
    }

    /// Decode a DISCONNECT body. In 5.0 "The Reason Code and Property Length can be
    /// omitted if the Reason Code is 0x00 (Normal disconnecton) and there are no
    /// Properties. In this case the DISCONNECT has a Remaining Length of 0" (§3.14.2.1),
    /// and "If the Remaining Length is less than 2, a value of 0 is used" for the Property
    /// Length (§3.14.2.2).
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (reason_code, properties) = decode_reason_and_properties(body, version, PacketType::Disconnect)?;
        Ok(Self { reason_code, properties })
    }

    /// Bytes after the fixed header: the shortest form that carries the fields.
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        reason_and_properties_len(self.reason_code, &self.properties, version)
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_reason_code(self.reason_code, PacketType::Disconnect, version)?;
        check_properties(&self.properties, PropertyContext::Disconnect, version)
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        encode_reason_and_properties(self.reason_code, &self.properties, version, buf);
    }
}

/// The body shared by DISCONNECT and AUTH: an optional reason code and optional
/// properties, both omitted for a plain success.
pub(crate) fn decode_reason_and_properties(
    body: &[u8],
    version: ProtocolVersion,
    packet_type: PacketType,
) -> Result<(ReasonCode, Properties<'_>), DecodeError> {
    if !version.is_v5() {
        // 3.1.1: "The DISCONNECT Packet has no variable header" (§3.14.2) and no payload
        // (§3.14.3).
        wire::expect_end(body)?;
        return Ok((ReasonCode::SUCCESS, Properties::EMPTY));
    }
    let Some((&code, rest)) = body.split_first() else {
        return Ok((ReasonCode::SUCCESS, Properties::EMPTY));
    };
    let reason_code = ReasonCode(code);
    // "The Client or Server sending the DISCONNECT packet MUST use one of the DISCONNECT
    // Reason Codes" [MQTT-5.0: 3.14.2-1]; AUTH: [MQTT-5.0: 3.15.2-1].
    if !reason_code.is_valid_for(packet_type, version) {
        return Err(DecodeError::InvalidReasonCode { packet_type, code });
    }
    if rest.is_empty() {
        return Ok((reason_code, Properties::EMPTY));
    }
    let context = if packet_type == PacketType::Auth { PropertyContext::Auth } else { PropertyContext::Disconnect };
    let (properties, rest) = Properties::split(rest, context)?;
    wire::expect_end(rest)?;
    Ok((reason_code, properties))
}

pub(crate) fn reason_and_properties_len(
    code: ReasonCode,
    properties: &Properties<'_>,
    version: ProtocolVersion,
) -> usize {
    if !version.is_v5() || (code == ReasonCode::SUCCESS && properties.is_empty()) {
        0
    } else if properties.is_empty() {
        1
    } else {
        properties.encoded_len().saturating_add(1)
    }
}

pub(crate) fn encode_reason_and_properties(
    code: ReasonCode,
    properties: &Properties<'_>,
    version: ProtocolVersion,
    buf: &mut impl BufMut,
) {
    match reason_and_properties_len(code, properties, version) {
        0 => {}
        1 => buf.put_u8(code.0),
        _ => {
            buf.put_u8(code.0);
            properties.encode(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3_1_1, V5};

    #[test]
    fn decodes_every_v5_length() {
        assert_eq!(Disconnect::decode(&[], V5).expect("valid").reason_code, ReasonCode::SUCCESS);
        assert_eq!(
            Disconnect::decode(&[0x04], V5).expect("valid").reason_code,
            ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
        );
        let d = Disconnect::decode(&[0x8E, 5, 0x11, 0, 0, 0, 9], V5).expect("valid");
        assert_eq!(d.properties.session_expiry_interval(), Some(9));
    }

    #[test]
    fn rejects_body_before_v5() {
        assert_eq!(Disconnect::decode(&[0], V3_1_1), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn rejects_invalid_reason_code() {
        assert_eq!(
            Disconnect::decode(&[0x01], V5),
            Err(DecodeError::InvalidReasonCode { packet_type: PacketType::Disconnect, code: 1 })
        );
    }

    #[test]
    fn rejects_property_length_beyond_body() {
        assert_eq!(Disconnect::decode(&[0x00, 5, 0x11], V5), Err(DecodeError::Truncated));
    }
}

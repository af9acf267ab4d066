//! AUTH: authentication exchange (5.0 §3.15; no such packet before 5.0).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::disconnect::{
    decode_reason_and_properties, encode_reason_and_properties, reason_and_properties_len,
};
use crate::packet::{PacketType, check_properties, check_reason_code};
use crate::property::{Properties, PropertyContext};
use crate::reason::ReasonCode;
use crate::version::ProtocolVersion;

/// AUTH.
///
/// ```
/// use mqttkit_codec::{decode_packet, Auth, Packet, PropertiesBuf, Property, PropertyContext};
/// use mqttkit_codec::{ProtocolVersion, ReasonCode, Status};
///
/// let version = ProtocolVersion::V5; // AUTH exists in 5.0 only
/// let mut props = PropertiesBuf::new();
/// props.push(Property::AuthenticationMethod("SCRAM-SHA-1"))?;
/// props.push(Property::AuthenticationData(b"client-first"))?;
/// let auth = Auth { reason_code: ReasonCode::CONTINUE_AUTHENTICATION, properties: props.properties(PropertyContext::Auth)? };
/// let packet = Packet::Auth(auth);
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth<'a> {
    /// 0x00 Success, 0x18 Continue authentication or 0x19 Re-authenticate.
    pub reason_code: ReasonCode,
    /// Properties; when present they must include the Authentication Method.
    pub properties: Properties<'a>,
}

impl<'a> Auth<'a> {
    /// Decode an AUTH body. A Remaining Length of 0 means Success without properties
    /// (§3.15.2.1); a single byte is a reason code without properties.
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        if !version.is_v5() {
            return Err(DecodeError::ReservedPacketType(PacketType::Auth as u8));
        }
        let (reason_code, properties) = decode_reason_and_properties(body, version, PacketType::Auth)?;
        let auth = Self { reason_code, properties };
        auth.check_method()?;
        Ok(auth)
    }

    /// "It is a Protocol Error to omit the Authentication Method" (§3.15.2.2.2) once the
    /// packet carries properties.
    fn check_method(&self) -> Result<(), DecodeError> {
        if !self.properties.is_empty() && self.properties.authentication_method().is_none() {
            return Err(DecodeError::MissingAuthenticationMethod);
        }
        Ok(())
    }

    /// Bytes after the fixed header: the shortest form that carries the fields.
    pub fn remaining_len(&self) -> usize {
        reason_and_properties_len(self.reason_code, &self.properties, ProtocolVersion::V5)
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        if !version.is_v5() {
            return Err(EncodeError::NotInVersion(PacketType::Auth));
        }
        check_reason_code(self.reason_code, PacketType::Auth, version)?;
        check_properties(&self.properties, PropertyContext::Auth, version)?;
        Ok(self.check_method()?)
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        encode_reason_and_properties(self.reason_code, &self.properties, ProtocolVersion::V5, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::V5;

    #[test]
    fn decodes_short_forms() {
        assert_eq!(Auth::decode(&[], V5).expect("valid").reason_code, ReasonCode::SUCCESS);
        assert_eq!(Auth::decode(&[0x18], V5).expect("valid").reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
    }

    #[test]
    fn decodes_auth_with_method() {
        let a = Auth::decode(&[0x18, 6, 0x15, 0, 3, b'a', b'b', b'c'], V5).expect("valid");
        assert_eq!(a.properties.authentication_method(), Some("abc"));
    }

    #[test]
    fn rejects_properties_without_method() {
        assert_eq!(Auth::decode(&[0x18, 4, 0x1F, 0, 1, b'r'], V5), Err(DecodeError::MissingAuthenticationMethod));
    }

    #[test]
    fn rejects_invalid_reason_code() {
        assert_eq!(
            Auth::decode(&[0x80], V5),
            Err(DecodeError::InvalidReasonCode { packet_type: PacketType::Auth, code: 0x80 })
        );
    }
}

//! UNSUBSCRIBE: unsubscribe request (3.1.1 §3.10, 5.0 §3.10).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::filters::UnsubscribeFilters;
use crate::packet::{check_properties, properties_len, v5_properties};
use crate::property::{Properties, PropertyContext};
use crate::version::{PacketId, ProtocolVersion};
use crate::wire;

/// UNSUBSCRIBE.
///
/// ```
/// use mqttkit_codec::{decode_packet, Packet, PacketId, ProtocolVersion, Status, TopicFilter, Unsubscribe};
/// use mqttkit_codec::UnsubscribeFiltersBuf;
///
/// let version = ProtocolVersion::V3_1_1;
/// let mut filters = UnsubscribeFiltersBuf::new();
/// filters.push(TopicFilter::new("sensors/#")?);
/// let packet = Packet::Unsubscribe(Unsubscribe::new(PacketId::new(2).ok_or("zero")?, filters.filters(version)?));
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// 5.0 properties; empty before 5.0.
    pub properties: Properties<'a>,
    /// Topic filters.
    pub filters: UnsubscribeFilters<'a>,
}

impl<'a> Unsubscribe<'a> {
    /// An UNSUBSCRIBE without properties.
    pub const fn new(packet_id: PacketId, filters: UnsubscribeFilters<'a>) -> Self {
        Self { packet_id, properties: Properties::EMPTY, filters }
    }

    /// Decode an UNSUBSCRIBE body.
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, input) = wire::split_packet_id(body)?;
        let (properties, input) = v5_properties(input, version, PropertyContext::Unsubscribe)?;
        let filters = UnsubscribeFilters::parse(input, version)?;
        Ok(Self { packet_id, properties, filters })
    }

    /// Bytes after the fixed header.
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        wire::sum([2, properties_len(&self.properties, version), self.filters.as_bytes().len()])
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_properties(&self.properties, PropertyContext::Unsubscribe, version)?;
        if !self.filters.is_checked_for(version) {
            UnsubscribeFilters::parse(self.filters.as_bytes(), version)?;
        }
        Ok(())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf);
        }
        buf.put_slice(self.filters.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3_1_1, V5};

    #[test]
    fn decodes_unsubscribe() {
        let u = Unsubscribe::decode(&[0, 2, 0, 1, b'a', 0, 3, b'b', b'/', b'#'], V3_1_1).expect("valid");
        assert_eq!(u.filters.iter().map(|f| f.as_str()).collect::<Vec<_>>(), ["a", "b/#"]);
        let u = Unsubscribe::decode(&[0, 2, 0, 0, 1, b'a'], V5).expect("valid");
        assert_eq!(u.filters.iter().count(), 1);
    }

    #[test]
    fn rejects_empty_payload() {
        assert_eq!(Unsubscribe::decode(&[0, 2], V3_1_1), Err(DecodeError::EmptyUnsubscribe));
    }

    #[test]
    fn rejects_invalid_filter() {
        assert_eq!(Unsubscribe::decode(&[0, 2, 0, 2, b'#', b'a'], V3_1_1), Err(DecodeError::InvalidTopicFilter));
    }
}

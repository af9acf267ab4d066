//! SUBSCRIBE: subscribe request (3.1.1 §3.8, 5.0 §3.8).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::filters::SubscribeFilters;
use crate::packet::{check_properties, properties_len, v5_properties};
use crate::property::{Properties, PropertyContext};
use crate::version::{PacketId, ProtocolVersion, QoS, RetainHandling};
use crate::wire;

/// Subscription Options (5.0 §3.8.3.1); before 5.0 only the requested QoS exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local (5.0).
    pub no_local: bool,
    /// Retain As Published (5.0).
    pub retain_as_published: bool,
    /// Retain Handling (5.0).
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with this QoS and 5.0 defaults.
    pub const fn qos(qos: QoS) -> Self {
        Self { qos, no_local: false, retain_as_published: false, retain_handling: RetainHandling::SendAtSubscribe }
    }

    /// The options byte.
    pub const fn to_byte(self) -> u8 {
        self.qos.as_u8()
            | (self.no_local as u8) << 2
            | (self.retain_as_published as u8) << 3
            | (self.retain_handling as u8) << 4
    }

    /// Read an options byte that was checked before (any version: 3.1.1's is 5.0's with
    /// the upper bits zero).
    #[inline]
    pub(crate) const fn from_checked_byte(byte: u8) -> Self {
        let qos = match byte & 0b11 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            _ => RetainHandling::DoNotSend,
        };
        Self { qos, no_local: byte & 0b100 != 0, retain_as_published: byte & 0b1000 != 0, retain_handling }
    }

    /// Read an options byte under `version`'s rules.
    pub fn from_byte(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        // 3.1.1: "The upper 6 bits of the Requested QoS byte are not used in the current
        // version of the protocol. They are reserved for future use. The Server MUST treat
        // a SUBSCRIBE packet as malformed and close the Network Connection if any of
        // Reserved bits in the payload are non-zero" [MQTT-3.1.1: 3-8.3-4]; 5.0 keeps bits 6 and
        // 7 reserved [MQTT-5.0: 3.8.3-5].
        let reserved = if version.is_v5() { 0b1100_0000 } else { 0b1111_1100 };
        if byte & reserved != 0 {
            return Err(DecodeError::SubscriptionOptionsReserved);
        }
        let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::InvalidSubscriptionQoS)?;
        // "It is a Protocol Error to send a Retain Handling value of 3" (§3.8.3.1).
        let retain_handling = RetainHandling::from_u8((byte >> 4) & 0b11).ok_or(DecodeError::InvalidRetainHandling)?;
        Ok(Self { qos, no_local: byte & 0b100 != 0, retain_as_published: byte & 0b1000 != 0, retain_handling })
    }
}

/// SUBSCRIBE.
///
/// ```
/// use mqttkit_codec::{decode_packet, Packet, PacketId, ProtocolVersion, QoS, Status, Subscribe};
/// use mqttkit_codec::{SubscribeFiltersBuf, SubscriptionOptions, TopicFilter};
///
/// let version = ProtocolVersion::V5;
/// let mut filters = SubscribeFiltersBuf::new();
/// filters.push(TopicFilter::new("sensors/+/temp")?, SubscriptionOptions::qos(QoS::AtLeastOnce));
/// filters.push(TopicFilter::new("$share/g/alerts/#")?, SubscriptionOptions::qos(QoS::AtMostOnce));
/// let subscribe = Subscribe::new(PacketId::new(1).ok_or("zero")?, filters.filters(version)?);
/// let packet = Packet::Subscribe(subscribe);
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// 5.0 properties (Subscription Identifier, User Property); empty before 5.0.
    pub properties: Properties<'a>,
    /// Topic filters with their options.
    pub filters: SubscribeFilters<'a>,
}

impl<'a> Subscribe<'a> {
    /// A SUBSCRIBE without properties.
    pub const fn new(packet_id: PacketId, filters: SubscribeFilters<'a>) -> Self {
        Self { packet_id, properties: Properties::EMPTY, filters }
    }

    /// Decode a SUBSCRIBE body.
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, input) = wire::split_packet_id(body)?;
        let (properties, input) = v5_properties(input, version, PropertyContext::Subscribe)?;
        let filters = SubscribeFilters::parse(input, version)?;
        Ok(Self { packet_id, properties, filters })
    }

    /// Bytes after the fixed header.
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        wire::sum([2, properties_len(&self.properties, version), self.filters.as_bytes().len()])
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_properties(&self.properties, PropertyContext::Subscribe, version)?;
        if !self.filters.is_checked_for(version) {
            SubscribeFilters::parse(self.filters.as_bytes(), version)?;
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
    fn decodes_v311_subscribe() {
        let s = Subscribe::decode(&[0, 10, 0, 3, b'a', b'/', b'#', 1, 0, 1, b'+', 2], V3_1_1).expect("valid");
        let filters: Vec<_> = s.filters.iter().map(|(f, o)| (f.as_str(), o.qos)).collect();
        assert_eq!(filters, [("a/#", QoS::AtLeastOnce), ("+", QoS::ExactlyOnce)]);
    }

    #[test]
    fn decodes_v5_options() {
        let s = Subscribe::decode(&[0, 1, 2, 0x0B, 7, 0, 1, b'a', 0b0010_1110], V5).expect("valid");
        let (_, o) = s.filters.iter().next().expect("one filter");
        assert_eq!(
            o,
            SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend
            }
        );
        assert_eq!(s.properties.subscription_identifiers().collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn rejects_empty_payload() {
        assert_eq!(Subscribe::decode(&[0, 1], V3_1_1), Err(DecodeError::EmptySubscribe));
        assert_eq!(Subscribe::decode(&[0, 1, 0], V5), Err(DecodeError::EmptySubscribe));
    }

    #[test]
    fn rejects_reserved_option_bits() {
        assert_eq!(
            Subscribe::decode(&[0, 1, 0, 1, b'a', 0b0000_0100], V3_1_1),
            Err(DecodeError::SubscriptionOptionsReserved)
        );
        assert_eq!(
            Subscribe::decode(&[0, 1, 0, 0, 1, b'a', 0b0100_0000], V5),
            Err(DecodeError::SubscriptionOptionsReserved)
        );
    }

    #[test]
    fn rejects_qos_3_and_retain_handling_3() {
        assert_eq!(Subscribe::decode(&[0, 1, 0, 1, b'a', 3], V3_1_1), Err(DecodeError::InvalidSubscriptionQoS));
        assert_eq!(Subscribe::decode(&[0, 1, 0, 0, 1, b'a', 0b0011_0000], V5), Err(DecodeError::InvalidRetainHandling));
    }

    #[test]
    fn rejects_no_local_on_shared_subscription() {
        let body = [0, 1, 0, 0, 11, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'a', b'b', 0b100];
        assert_eq!(Subscribe::decode(&body, V5), Err(DecodeError::NoLocalOnSharedSubscription));
    }

    #[test]
    fn rejects_bad_filters() {
        assert_eq!(Subscribe::decode(&[0, 1, 0, 2, b'a', b'#', 0], V3_1_1), Err(DecodeError::InvalidTopicFilter));
        assert_eq!(Subscribe::decode(&[0, 1, 0, 0, 0], V3_1_1), Err(DecodeError::EmptyTopic));
        assert_eq!(Subscribe::decode(&[0, 1, 0, 1, b'a'], V3_1_1), Err(DecodeError::Truncated));
    }

    #[test]
    fn rejects_filter_whose_utf8_only_works_across_its_length_prefix() {
        // Length 0x00C3 then a filter starting with the continuation byte 0xA9: the payload
        // as a whole reads as valid UTF-8 ("é"), the filter alone does not.
        let mut body = vec![0, 1, 0x00, 0xC3, 0xA9];
        body.extend(std::iter::repeat_n(b'a', 194));
        body.push(0);
        assert_eq!(Subscribe::decode(&body, V3_1_1), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn rejects_zero_packet_id() {
        assert_eq!(Subscribe::decode(&[0, 0, 0, 1, b'a', 0], V3_1_1), Err(DecodeError::ZeroPacketId));
    }
}

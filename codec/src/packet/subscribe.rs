//! SUBSCRIBE: subscribe request (3.1.1 §3.8, 5.0 §3.8).

use core::fmt;

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::connect::v5_properties;
use crate::packet::{check_properties, checked_bit, properties_len};
use crate::property::{Properties, PropertyContext};
use crate::topic::TopicFilter;
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

    /// Read an options byte under `version`'s rules.
    pub fn from_byte(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        // 3.1.1: "The upper 6 bits of the Requested QoS byte are not used in the current
        // version of the protocol. They are reserved for future use. The Server MUST treat
        // a SUBSCRIBE packet as malformed and close the Network Connection if any of
        // Reserved bits in the payload are non-zero" [MQTT-3-8.3-4]; 5.0 keeps bits 6 and
        // 7 reserved [MQTT-3.8.3-5].
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

/// The validated topic filter list of a SUBSCRIBE, iterated lazily from the raw bytes.
///
/// Equality compares the bytes.
#[derive(Clone, Copy)]
pub struct SubscribeFilters<'a> {
    raw: &'a [u8],
    /// The rule sets the bytes were checked against ([`checked_bit`]), so that encoding
    /// a decoded or built list does not check it again.
    checked: u8,
}

impl PartialEq for SubscribeFilters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for SubscribeFilters<'_> {}

impl core::hash::Hash for SubscribeFilters<'_> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<'a> SubscribeFilters<'a> {
    /// Check a raw payload (at least one filter/options pair) under `version`'s rules.
    pub fn parse(raw: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        // "The Payload MUST contain at least one Topic Filter and Subscription Options
        // pair" [MQTT-3.8.3-2] / [MQTT-3.8.3-3].
        if raw.is_empty() {
            return Err(DecodeError::EmptySubscribe);
        }
        let mut pairs = SubscribeFilterIter::new(raw);
        while let Some((filter, options)) = pairs.read()? {
            let options = SubscriptionOptions::from_byte(options, version)?;
            let filter = TopicFilter::parse(filter)?;
            if version.is_v5() {
                filter.check_shared()?;
                // "It is a Protocol Error to set the No Local bit to 1 on a Shared
                // Subscription" [MQTT-3.8.3-4].
                if options.no_local && filter.shared().is_some() {
                    return Err(DecodeError::NoLocalOnSharedSubscription);
                }
            }
        }
        Ok(Self { raw, checked: checked_bit(version) })
    }

    /// Wrap raw bytes without checking them: for deliberately malformed packets.
    pub const fn from_raw_unchecked(raw: &'a [u8]) -> Self {
        Self { raw, checked: 0 }
    }

    /// The raw payload.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The filters and their options, in order.
    pub fn iter(&self) -> SubscribeFilterIter<'a> {
        SubscribeFilterIter::new(self.raw)
    }
}

impl fmt::Debug for SubscribeFilters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for SubscribeFilters<'a> {
    type Item = (TopicFilter<'a>, SubscriptionOptions);
    type IntoIter = SubscribeFilterIter<'a>;
    fn into_iter(self) -> SubscribeFilterIter<'a> {
        self.iter()
    }
}

/// Iterator over [`SubscribeFilters`].
///
/// When the whole list is valid UTF-8 — always the case for ASCII filters shorter than
/// 128 bytes — it is validated once, here, and every filter is a sub-slice of it
/// (`str::get`, O(1)); otherwise each filter is validated on its own.
#[derive(Debug, Clone)]
pub struct SubscribeFilterIter<'a> {
    raw: &'a [u8],
    text: Option<&'a str>,
    pos: usize,
}

impl<'a> SubscribeFilterIter<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Self { raw, text: core::str::from_utf8(raw).ok(), pos: 0 }
    }

    /// The next filter (UTF-8 checked; U+0000 is the caller's to check) and options
    /// byte, `None` at the end.
    fn read(&mut self) -> Result<Option<(&'a str, u8)>, DecodeError> {
        let rest = self.raw.get(self.pos..).unwrap_or_default();
        let [hi, lo, ..] = *rest else {
            return if rest.is_empty() { Ok(None) } else { Err(DecodeError::Truncated) };
        };
        let start = self.pos.saturating_add(2);
        let end = start.saturating_add(usize::from(u16::from_be_bytes([hi, lo])));
        let bytes = self.raw.get(start..end).ok_or(DecodeError::Truncated)?;
        let filter = match self.text.and_then(|text| text.get(start..end)) {
            Some(filter) => filter,
            None => core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?,
        };
        let options = *self.raw.get(end).ok_or(DecodeError::Truncated)?;
        self.pos = end.saturating_add(1);
        Ok(Some((filter, options)))
    }
}

impl<'a> Iterator for SubscribeFilterIter<'a> {
    type Item = (TopicFilter<'a>, SubscriptionOptions);

    fn next(&mut self) -> Option<Self::Item> {
        match self.read() {
            Ok(Some((filter, options))) => {
                // The payload was checked on decode; read it under the 5.0 layout, which
                // gives 3.1.1's options byte the same meaning.
                let options = SubscriptionOptions::from_byte(options, ProtocolVersion::V5).unwrap_or_default();
                Some((TopicFilter::new_unchecked(filter), options))
            }
            _ => {
                self.pos = self.raw.len();
                None
            }
        }
    }
}

/// An owned filter list for building SUBSCRIBE packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeFiltersBuf {
    buf: Vec<u8>,
}

impl SubscribeFiltersBuf {
    /// An empty list.
    pub const fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// Append a filter with its options.
    pub fn push(&mut self, filter: TopicFilter<'_>, options: SubscriptionOptions) -> &mut Self {
        wire::put_field(&mut self.buf, filter.as_bytes());
        self.buf.put_u8(options.to_byte());
        self
    }

    /// Check the list for `version` and borrow it.
    pub fn filters(&self, version: ProtocolVersion) -> Result<SubscribeFilters<'_>, EncodeError> {
        Ok(SubscribeFilters::parse(&self.buf, version)?)
    }
}

/// SUBSCRIBE.
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
    /// Decode a SUBSCRIBE body.
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (input, packet_id) = wire::finish(wire::packet_id(body))?;
        let (input, properties) = wire::finish(v5_properties(input, version, PropertyContext::Subscribe))?;
        let filters = SubscribeFilters::parse(input, version)?;
        Ok(Self { packet_id, properties, filters })
    }

    /// Bytes after the fixed header.
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        wire::sum([2, properties_len(&self.properties, version), self.filters.raw.len()])
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_properties(&self.properties, PropertyContext::Subscribe, version)?;
        if self.filters.checked & checked_bit(version) == 0 {
            SubscribeFilters::parse(self.filters.raw, version)?;
        }
        Ok(())
    }

    pub(crate) fn encode_body(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf);
        }
        buf.put_slice(self.filters.raw);
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

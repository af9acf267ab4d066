//! UNSUBSCRIBE: unsubscribe request (3.1.1 §3.10, 5.0 §3.10).

use core::fmt;

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::connect::v5_properties;
use crate::packet::{check_properties, checked_bit, properties_len};
use crate::property::{Properties, PropertyContext};
use crate::topic::TopicFilter;
use crate::version::{PacketId, ProtocolVersion};
use crate::wire;

/// The validated topic filter list of an UNSUBSCRIBE, iterated lazily.
///
/// Equality compares the bytes.
#[derive(Clone, Copy)]
pub struct UnsubscribeFilters<'a> {
    raw: &'a [u8],
    /// The rule sets the bytes were checked against ([`checked_bit`]), so that encoding
    /// a decoded or built list does not check it again.
    checked: u8,
}

impl PartialEq for UnsubscribeFilters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for UnsubscribeFilters<'_> {}

impl core::hash::Hash for UnsubscribeFilters<'_> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<'a> UnsubscribeFilters<'a> {
    /// Check a raw payload: at least one well-formed topic filter.
    pub fn parse(raw: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        // "The Payload of an UNSUBSCRIBE packet MUST contain at least one Topic Filter"
        // [MQTT-3.10.3-2].
        if raw.is_empty() {
            return Err(DecodeError::EmptyUnsubscribe);
        }
        let mut rest = raw;
        while !rest.is_empty() {
            // "The Topic Filters in an UNSUBSCRIBE packet MUST be UTF-8 Encoded Strings"
            // [MQTT-3.10.3-1].
            let (next, filter) = wire::finish(wire::string(rest))?;
            rest = next;
            let filter = TopicFilter::from_wire(filter)?;
            if version.is_v5() {
                filter.check_shared()?;
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

    /// The filters, in order.
    pub fn iter(&self) -> UnsubscribeFilterIter<'a> {
        UnsubscribeFilterIter { rest: self.raw }
    }
}

impl fmt::Debug for UnsubscribeFilters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for UnsubscribeFilters<'a> {
    type Item = TopicFilter<'a>;
    type IntoIter = UnsubscribeFilterIter<'a>;
    fn into_iter(self) -> UnsubscribeFilterIter<'a> {
        self.iter()
    }
}

/// Iterator over [`UnsubscribeFilters`].
#[derive(Debug, Clone)]
pub struct UnsubscribeFilterIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for UnsubscribeFilterIter<'a> {
    type Item = TopicFilter<'a>;

    fn next(&mut self) -> Option<TopicFilter<'a>> {
        match wire::checked_string(self.rest) {
            Ok((rest, filter)) => {
                self.rest = rest;
                Some(TopicFilter::new_unchecked(filter))
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// An owned filter list for building UNSUBSCRIBE packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsubscribeFiltersBuf {
    buf: Vec<u8>,
}

impl UnsubscribeFiltersBuf {
    /// An empty list.
    pub const fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// Append a filter.
    pub fn push(&mut self, filter: TopicFilter<'_>) -> &mut Self {
        wire::put_field(&mut self.buf, filter.as_bytes());
        self
    }

    /// Check the list for `version` and borrow it.
    pub fn filters(&self, version: ProtocolVersion) -> Result<UnsubscribeFilters<'_>, EncodeError> {
        Ok(UnsubscribeFilters::parse(&self.buf, version)?)
    }
}

/// UNSUBSCRIBE.
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
    /// Decode an UNSUBSCRIBE body.
    pub fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (input, packet_id) = wire::finish(wire::packet_id(body))?;
        let (input, properties) = wire::finish(v5_properties(input, version, PropertyContext::Unsubscribe))?;
        let filters = UnsubscribeFilters::parse(input, version)?;
        Ok(Self { packet_id, properties, filters })
    }

    /// Bytes after the fixed header.
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        wire::sum([2, properties_len(&self.properties, version), self.filters.raw.len()])
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        check_properties(&self.properties, PropertyContext::Unsubscribe, version)?;
        if self.filters.checked & checked_bit(version) == 0 {
            UnsubscribeFilters::parse(self.filters.raw, version)?;
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

//! The topic filter lists of SUBSCRIBE (a filter and an options byte per entry, §3.8.3)
//! and UNSUBSCRIBE (filters only, §3.10.3): one generic list, checked once when it is
//! decoded or built, then iterated lazily from its bytes without checking them again.

use core::fmt;

use bytes::BufMut;

use crate::error::{DecodeError, ValidationError};
use crate::packet::SubscriptionOptions;
use crate::topic::TopicFilter;
use crate::version::ProtocolVersion;
use crate::wire::{self, Block, BlockReader};

/// A checked, non-empty topic filter list borrowed from a packet. `OPTIONS`: whether each
/// filter is followed by a Subscription Options byte (SUBSCRIBE) or not (UNSUBSCRIBE).
///
/// Equality compares the bytes.
#[derive(Clone, Copy)]
pub struct TopicFilters<'a, const OPTIONS: bool> {
    /// The bytes, with the rule sets they were checked against ([`checked_bit`]), so
    /// that encoding a decoded or built list does not check it again.
    block: Block<'a>,
}

/// The filter list of a SUBSCRIBE: `(filter, options)` pairs.
pub type SubscribeFilters<'a> = TopicFilters<'a, true>;
/// The filter list of an UNSUBSCRIBE.
pub type UnsubscribeFilters<'a> = TopicFilters<'a, false>;

/// The rule set a list was checked against: 3.1 and 3.1.1 share one, 5.0 has its own.
pub(crate) const fn checked_bit(version: ProtocolVersion) -> u16 {
    if version.is_v5() { 2 } else { 1 }
}

impl<'a, const OPTIONS: bool> TopicFilters<'a, OPTIONS> {
    /// Check a raw payload (at least one entry) under `version`'s rules.
    pub fn parse(raw: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        // "The Payload MUST contain at least one Topic Filter and Subscription Options
        // pair" [MQTT-5.0: 3.8.3-2] [MQTT-3.1.1: 3.8.3-3]; "The Payload of an UNSUBSCRIBE packet
        // MUST contain at least one Topic Filter" [MQTT-3.10.3-2].
        if raw.is_empty() {
            return Err(if OPTIONS { DecodeError::EmptySubscribe } else { DecodeError::EmptyUnsubscribe });
        }
        let block = Block::new(raw, checked_bit(version));
        let mut reader = block.reader();
        while !reader.is_empty() {
            // "The Topic Filters MUST be a UTF-8 Encoded String" [MQTT-3.8.3-1] /
            // [MQTT-3.10.3-1].
            let filter = reader.utf8_field()?;
            let options = if OPTIONS { Some(SubscriptionOptions::from_byte(reader.u8()?, version)?) } else { None };
            let filter = TopicFilter::parse(filter)?;
            if version.is_v5() {
                filter.check_shared()?;
                // "It is a Protocol Error to set the No Local bit to 1 on a Shared
                // Subscription" [MQTT-5.0: 3.8.3-4].
                if options.is_some_and(|o| o.no_local) && filter.shared().is_some() {
                    return Err(DecodeError::NoLocalOnSharedSubscription);
                }
            }
        }
        Ok(Self { block })
    }

    /// Wrap raw bytes without checking them: for deliberately malformed packets.
    pub const fn from_raw_unchecked(raw: &'a [u8]) -> Self {
        Self { block: Block::Bytes(raw, 0) }
    }

    /// Whether the list was checked under `version`'s rules.
    pub(crate) const fn is_checked_for(&self, version: ProtocolVersion) -> bool {
        self.block.meta() & checked_bit(version) != 0
    }

    /// The raw payload.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.block.bytes()
    }

    /// The entries, in order.
    pub fn iter(&self) -> TopicFilterIter<'a, OPTIONS> {
        TopicFilterIter { reader: self.block.reader() }
    }
}

impl<const OPTIONS: bool> PartialEq for TopicFilters<'_, OPTIONS> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const OPTIONS: bool> Eq for TopicFilters<'_, OPTIONS> {}

impl<const OPTIONS: bool> core::hash::Hash for TopicFilters<'_, OPTIONS> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl<'a, const OPTIONS: bool> fmt::Debug for TopicFilters<'a, OPTIONS>
where
    TopicFilterIter<'a, OPTIONS>: Iterator<Item: fmt::Debug>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, const OPTIONS: bool> IntoIterator for TopicFilters<'a, OPTIONS>
where
    TopicFilterIter<'a, OPTIONS>: Iterator,
{
    type Item = <TopicFilterIter<'a, OPTIONS> as Iterator>::Item;
    type IntoIter = TopicFilterIter<'a, OPTIONS>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over [`TopicFilters`]: `(TopicFilter, SubscriptionOptions)` for SUBSCRIBE,
/// `TopicFilter` for UNSUBSCRIBE. Every filter is a sub-slice of a list validated once.
#[derive(Clone)]
pub struct TopicFilterIter<'a, const OPTIONS: bool> {
    reader: BlockReader<'a>,
}

impl<'a, const OPTIONS: bool> TopicFilterIter<'a, OPTIONS> {
    /// The next filter and options byte (0 without options); `None` at the end, or at
    /// the first entry an unchecked list cannot give.
    fn read(&mut self) -> Option<(TopicFilter<'a>, u8)> {
        let entry = self.reader.utf8_field().and_then(|filter| {
            let options = if OPTIONS { self.reader.u8()? } else { 0 };
            Ok((TopicFilter::new_unchecked(filter), options))
        });
        if entry.is_err() {
            self.reader.stop();
        }
        entry.ok()
    }
}

impl<'a> Iterator for TopicFilterIter<'a, true> {
    type Item = (TopicFilter<'a>, SubscriptionOptions);

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        // The list was checked when it was decoded or built (an unchecked list reads as
        // well as it can: QoS 3 as 2, Retain Handling 3 as 2, reserved bits ignored).
        self.read().map(|(filter, options)| (filter, SubscriptionOptions::from_checked_byte(options)))
    }
}

impl<'a> Iterator for TopicFilterIter<'a, false> {
    type Item = TopicFilter<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        self.read().map(|(filter, _)| filter)
    }
}

impl<const OPTIONS: bool> fmt::Debug for TopicFilterIter<'_, OPTIONS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicFilterIter").finish_non_exhaustive()
    }
}

/// An owned filter list for building SUBSCRIBE (`OPTIONS = true`) or UNSUBSCRIBE packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicFiltersBuf<const OPTIONS: bool> {
    buf: Vec<u8>,
}

/// An owned SUBSCRIBE filter list.
pub type SubscribeFiltersBuf = TopicFiltersBuf<true>;
/// An owned UNSUBSCRIBE filter list.
pub type UnsubscribeFiltersBuf = TopicFiltersBuf<false>;

impl<const OPTIONS: bool> TopicFiltersBuf<OPTIONS> {
    /// An empty list.
    pub const fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// Check the list for `version` and borrow it.
    pub fn filters(&self, version: ProtocolVersion) -> Result<TopicFilters<'_, OPTIONS>, ValidationError> {
        Ok(TopicFilters::parse(&self.buf, version)?)
    }
}

impl TopicFiltersBuf<true> {
    /// Append a filter with its options.
    pub fn push(&mut self, filter: TopicFilter<'_>, options: SubscriptionOptions) -> &mut Self {
        wire::put_field(&mut self.buf, filter.as_bytes());
        self.buf.put_u8(options.to_byte());
        self
    }
}

impl TopicFiltersBuf<false> {
    /// Append a filter.
    pub fn push(&mut self, filter: TopicFilter<'_>) -> &mut Self {
        wire::put_field(&mut self.buf, filter.as_bytes());
        self
    }
}

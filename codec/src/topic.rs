//! Validated strings: [`MqttStr`] (any UTF-8 Encoded String), [`TopicName`] and
//! [`TopicFilter`] (§4.7). Each can only be built by checking it, so a packet that holds
//! them needs no re-validation when it is encoded; the `new_unchecked` constructors are
//! the explicitly named way to build deliberately invalid packets.

use core::fmt;
use core::ops::Deref;

use crate::error::{DecodeError, ValidationError};
use crate::wire;

/// A UTF-8 Encoded String (§1.5.4): at most 65,535 bytes and no U+0000
/// (\[MQTT-3.1.1: 1.5.3-2\], \[MQTT-5.0: 1.5.4-2\]); Rust's `str` already excludes ill-formed UTF-8 and surrogates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MqttStr<'a>(&'a str);

impl<'a> MqttStr<'a> {
    /// Check `text` and wrap it.
    pub fn new(text: &'a str) -> Result<Self, ValidationError> {
        check_len(text)?;
        Ok(Self::parse(text)?)
    }

    /// Check a string that came off the wire (its length already fits).
    pub(crate) fn parse(text: &'a str) -> Result<Self, DecodeError> {
        if wire::has_nul(text.as_bytes()) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(Self(text))
    }

    /// Wrap `text` without checking it: for building deliberately malformed packets.
    pub const fn new_unchecked(text: &'a str) -> Self {
        Self(text)
    }

    /// The string.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }
}

/// A topic name (§4.7): a UTF-8 Encoded String without `+` or `#`
/// (\[MQTT-3.3.2-2\], \[MQTT-3.1.1: 4.7.1-1\], \[MQTT-5.0: 4.7.0-1\]). It may be empty only in a 5.0 PUBLISH that
/// carries a Topic Alias; the packet checks that.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicName<'a>(&'a str);

impl<'a> TopicName<'a> {
    /// Check `text` and wrap it.
    pub fn new(text: &'a str) -> Result<Self, ValidationError> {
        check_len(text)?;
        Ok(Self::parse(text)?)
    }

    /// Check a string whose length already fits.
    #[inline]
    pub(crate) fn parse(text: &'a str) -> Result<Self, DecodeError> {
        // "The wildcard characters can be used in Topic Filters, but MUST NOT be used
        // within a Topic Name" [MQTT-3.1.1: 4.7.1-1] [MQTT-5.0: 4.7.0-1]; one branch-free pass for
        // U+0000 and both wildcards.
        let bytes = text.as_bytes();
        let special = wire::scan_words(bytes, |word| {
            wire::has_zero_byte(word)
                | wire::has_zero_byte(word ^ wire::splat(b'+'))
                | wire::has_zero_byte(word ^ wire::splat(b'#'))
        });
        if special != 0 {
            if wire::has_nul(bytes) {
                return Err(DecodeError::NullCharacter);
            }
            return Err(DecodeError::WildcardInTopicName);
        }
        Ok(Self(text))
    }

    /// Check a string field's bytes as they came off the wire: UTF-8, then U+0000 and
    /// wildcards in one pass.
    #[inline]
    pub(crate) fn from_bytes(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Self::parse(crate::wire::utf8(bytes)?)
    }

    /// Wrap `text` without checking it: for building deliberately malformed packets.
    pub const fn new_unchecked(text: &'a str) -> Self {
        Self(text)
    }

    /// The topic.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }
}

/// A topic filter (§4.7): non-empty, `#` only as the whole last level, `+` only as a
/// whole level. In 5.0 a filter starting with `$share/` must be a well-formed shared
/// subscription (§4.8.2); that check needs the version and is made by the packet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicFilter<'a>(&'a str);

impl<'a> TopicFilter<'a> {
    /// Check `text` and wrap it.
    pub fn new(text: &'a str) -> Result<Self, ValidationError> {
        check_len(text)?;
        Ok(Self::parse(text)?)
    }

    /// Check a string whose length already fits.
    #[inline]
    pub(crate) fn parse(text: &'a str) -> Result<Self, DecodeError> {
        check_filter(text)?;
        Ok(Self(text))
    }

    /// Wrap `text` without checking it: for building deliberately malformed packets.
    pub const fn new_unchecked(text: &'a str) -> Self {
        Self(text)
    }

    /// The filter.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// For `$share/{ShareName}/{filter}`, the share name and the filter (5.0 §4.8.2).
    /// Whether it is a shared subscription at all depends on the version (5.0 only).
    pub fn shared(&self) -> Option<SharedSubscription<'a>> {
        SharedSubscription::split(self.0)
    }

    /// The ShareName of a `$share/{ShareName}/{filter}` filter.
    pub fn share_name(&self) -> Option<&'a str> {
        self.shared().map(|shared| shared.share_name)
    }

    /// Check the 5.0 shared-subscription form: "The ShareName MUST NOT contain the
    /// characters "/", "+" or "#", but MUST be followed by a "/" character. This "/"
    /// character MUST be followed by a Topic Filter" \[MQTT-5.0: 4.8.2-1\],
    /// \[MQTT-5.0: 4.8.2-2\].
    pub fn check_shared(&self) -> Result<(), DecodeError> {
        if !self.0.starts_with(SharedSubscription::PREFIX) {
            return Ok(());
        }
        match self.shared() {
            Some(SharedSubscription { share_name, filter })
                if !share_name.is_empty()
                    && !share_name.contains(['+', '#'])
                    && !filter.is_empty()
                    && check_filter(filter).is_ok() =>
            {
                Ok(())
            }
            _ => Err(DecodeError::InvalidSharedSubscription),
        }
    }

    /// Whether this filter matches `topic` (§4.7): `+` matches one level, `#` the parent
    /// and any number of levels, and a filter starting with a wildcard does not match a
    /// topic starting with `$` \[MQTT-4.7.2-1\]. Shared subscriptions match with their
    /// inner filter.
    pub fn matches(&self, topic: &str) -> bool {
        let filter = self.shared().map_or(self.0, |shared| shared.filter);
        filter_matches(filter, topic)
    }
}

/// A 5.0 shared subscription `$share/{ShareName}/{filter}` (§4.8.2), split in two. The
/// broker and the conformance runner use this instead of parsing the prefix themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SharedSubscription<'a> {
    /// The ShareName.
    pub share_name: &'a str,
    /// The topic filter after it.
    pub filter: &'a str,
}

impl<'a> SharedSubscription<'a> {
    /// The prefix that makes a 5.0 filter shared.
    pub const PREFIX: &'static str = "$share/";

    /// Split `$share/{ShareName}/{filter}` at the first `/` after the prefix; `None` for
    /// any other filter. Nothing is checked: filters that came off the wire were checked
    /// by the decoder ([`TopicFilter::check_shared`]).
    pub fn split(filter: &'a str) -> Option<Self> {
        let (share_name, filter) = filter.strip_prefix(Self::PREFIX)?.split_once('/')?;
        Some(Self { share_name, filter })
    }
}

fn check_len(text: &str) -> Result<(), ValidationError> {
    wire::check_len(text.len())
}

/// Match a plain (non-shared) filter against a topic name (§4.7).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        match filter_level {
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            level => {
                if topic_levels.next() != Some(level) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

/// "The multi-level wildcard character MUST be specified either on its own or following a
/// topic level separator. In either case it MUST be the last character specified in the
/// Topic Filter" \[MQTT-3.1.1: 4.7.1-2\] \[MQTT-5.0: 4.7.1-1\]; "Where it is used, it MUST occupy an entire level of
/// the filter" \[MQTT-3.1.1: 4.7.1-3\] \[MQTT-5.0: 4.7.1-2\]; "All Topic Names and Topic Filters MUST be at least one
/// character long" \[MQTT-4.7.3-1\].
#[inline]
fn check_filter(text: &str) -> Result<(), DecodeError> {
    if text.is_empty() {
        return Err(DecodeError::EmptyTopic);
    }
    // One pass, a word at a time, for U+0000 \[MQTT-4.7.3-2\] (reported first, as for any
    // string) and wildcards; only wildcards are looked at byte by byte. A wildcard must be
    // alone in its level (the bytes either side are '/' or the ends), and '#' must also be
    // the last byte.
    let bytes = text.as_bytes();
    let len = bytes.len();
    let last = len.saturating_sub(1);
    let (mut nul, mut misplaced) = (0u64, false);
    let mut start = 0usize;
    loop {
        // Whole words, then the last 8 bytes (overlapping: looking twice is harmless), or
        // the whole string padded when it is shorter than a word.
        let start_of_word = if start.saturating_add(8) <= len { start } else { len.saturating_sub(8) };
        let word = wire::le_word(bytes.get(start_of_word..).unwrap_or_default().get(..8.min(len)).unwrap_or_default());
        nul |= wire::has_zero_byte(word);
        let mut found = wire::has_zero_byte(word ^ wire::splat(b'+')) | wire::has_zero_byte(word ^ wire::splat(b'#'));
        while found != 0 {
            // The lowest flagged lane is exact; higher ones are checked against the byte.
            let i = start_of_word.saturating_add((found.trailing_zeros() / 8) as usize);
            found &= found.wrapping_sub(1);
            let b = bytes.get(i).copied().unwrap_or_default();
            if b == b'+' || b == b'#' {
                let starts_level = i == 0 || bytes.get(i.wrapping_sub(1)) == Some(&b'/');
                let ends_level = i == last || bytes.get(i.saturating_add(1)) == Some(&b'/');
                misplaced |= !starts_level || !ends_level || (b == b'#' && i != last);
            }
        }
        start = start_of_word.saturating_add(8);
        if start >= len {
            break;
        }
    }
    if nul != 0 {
        return Err(DecodeError::NullCharacter);
    }
    if misplaced {
        return Err(DecodeError::InvalidTopicFilter);
    }
    Ok(())
}

macro_rules! str_newtype_impls {
    ($($ty:ident),*) => {$(
        impl Deref for $ty<'_> {
            type Target = str;
            fn deref(&self) -> &str {
                self.0
            }
        }
        impl AsRef<str> for $ty<'_> {
            fn as_ref(&self) -> &str {
                self.0
            }
        }
        impl fmt::Debug for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.0, f)
            }
        }
        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl PartialEq<str> for $ty<'_> {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $ty<'_> {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    )*};
}

str_newtype_impls!(MqttStr, TopicName, TopicFilter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_spec_filter_examples() {
        for f in ["sport/tennis/player1/#", "sport/#", "#", "+", "+/tennis/#", "sport/+/player1", "/+", "+/+", "a//b"] {
            assert!(TopicFilter::new(f).is_ok(), "{f}");
        }
    }

    #[test]
    fn rejects_spec_filter_counterexamples() {
        for f in ["sport/tennis#", "sport/tennis/#/ranking", "sport+", "a/b+/c", "#/a", "a/#b"] {
            assert_eq!(TopicFilter::parse(f), Err(DecodeError::InvalidTopicFilter), "{f}");
        }
        assert_eq!(TopicFilter::parse(""), Err(DecodeError::EmptyTopic));
        // Wildcards and U+0000 in every position of words, tails and short strings.
        for f in ["aaaaaaaaaa+b", "aaaaaaaa#/", "aaaaaaaaaaaaaaa#a", "+a", "a+", "aaaaaaa+a/aaaaaaaa"] {
            assert_eq!(TopicFilter::parse(f), Err(DecodeError::InvalidTopicFilter), "{f}");
        }
        for f in ["aaaaaaaaa/+", "aaaaaaaaaaaaaa/#", "+/aaaaaaaaaaaaaa/+/#", "aaaaaaa/+/aaaaaaa"] {
            assert!(TopicFilter::parse(f).is_ok(), "{f}");
        }
        for f in ["a\0", "aaaaaaaaaaa+a\0", "\0aaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaa\0"] {
            assert_eq!(TopicFilter::parse(f), Err(DecodeError::NullCharacter), "{f:?}");
        }
    }

    #[test]
    fn matches_like_section_4_7() {
        let m = filter_matches;
        assert!(m("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(m("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
        assert!(m("sport/#", "sport"));
        assert!(m("sport/+", "sport/"));
        assert!(!m("sport/+", "sport"));
        assert!(m("+/+", "/finance"));
        assert!(m("/+", "/finance"));
        assert!(!m("+", "/finance"));
        assert!(!m("#", "$SYS/uptime"));
        assert!(!m("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(m("$SYS/#", "$SYS/monitor/Clients"));
        assert!(m("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(!m("a/b", "a/b/c"));
    }

    #[test]
    fn checks_shared_subscriptions() {
        assert!(TopicFilter::new("$share/g/a/#").expect("valid").check_shared().is_ok());
        for f in ["$share/g", "$share//a", "$share/g/"] {
            let filter = TopicFilter::new(f).expect("valid as a plain filter");
            assert_eq!(filter.check_shared(), Err(DecodeError::InvalidSharedSubscription), "{f}");
        }
        assert!(TopicFilter::new("$share/g/a").expect("valid").matches("a"));
        let shared = TopicFilter::new("$share/g/a/#").expect("valid");
        assert_eq!(shared.shared(), Some(SharedSubscription { share_name: "g", filter: "a/#" }));
        assert_eq!(shared.share_name(), Some("g"));
        assert_eq!(SharedSubscription::split("$SYS/x"), None);
    }

    #[test]
    fn rejects_wildcards_in_topic_names() {
        assert_eq!(TopicName::parse("a/+"), Err(DecodeError::WildcardInTopicName));
        assert_eq!(TopicName::parse("a#"), Err(DecodeError::WildcardInTopicName));
        assert_eq!(TopicName::parse("a\0"), Err(DecodeError::NullCharacter));
    }
}

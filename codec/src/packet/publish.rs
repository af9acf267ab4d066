//! PUBLISH: publish message (3.1.1 §3.3, 5.0 §3.3).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::{PacketType, check_properties, properties_len};
use crate::property::{Properties, PropertyContext};
use crate::topic::TopicName;
use crate::version::{PacketId, ProtocolVersion, QoS};
use crate::wire;

/// The QoS of a PUBLISH with its packet identifier: QoS 1 and 2 carry one, QoS 0 none
/// ("A PUBLISH packet MUST NOT contain a Packet Identifier if its QoS value is set to 0"
/// \[MQTT-3.1.1: 2.3.1-5\] \[MQTT-5.0: 2.2.1-2\]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum PublishQoS {
    /// QoS 0.
    AtMostOnce,
    /// QoS 1 with its packet identifier.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet identifier.
    ExactlyOnce(PacketId),
}

impl PublishQoS {
    /// The QoS level.
    pub const fn qos(self) -> QoS {
        match self {
            Self::AtMostOnce => QoS::AtMostOnce,
            Self::AtLeastOnce(_) => QoS::AtLeastOnce,
            Self::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, for QoS 1 and 2.
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            Self::AtMostOnce => None,
            Self::AtLeastOnce(id) | Self::ExactlyOnce(id) => Some(id),
        }
    }

    /// Build from a QoS and an identifier (ignored for QoS 0).
    pub const fn new(qos: QoS, packet_id: PacketId) -> Self {
        match qos {
            QoS::AtMostOnce => Self::AtMostOnce,
            QoS::AtLeastOnce => Self::AtLeastOnce(packet_id),
            QoS::ExactlyOnce => Self::ExactlyOnce(packet_id),
        }
    }
}

/// PUBLISH. The payload is borrowed, never copied.
///
/// ```
/// use mqttkit_codec::{decode_packet, Packet, PacketId, ProtocolVersion, Publish, PublishQoS, Status, TopicName};
///
/// let version = ProtocolVersion::V3_1_1;
/// let id = PacketId::new(7).ok_or("zero")?;
/// let mut publish = Publish::new(TopicName::new("a/b")?, PublishQoS::ExactlyOnce(id), b"21.5");
/// publish.retain = true;
/// let packet = Packet::Publish(publish);
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish<'a> {
    /// DUP: this is a re-delivery (only with QoS 1 and 2).
    pub dup: bool,
    /// QoS and packet identifier.
    pub qos: PublishQoS,
    /// RETAIN.
    pub retain: bool,
    /// Topic Name; empty only in 5.0 with a Topic Alias.
    pub topic: TopicName<'a>,
    /// 5.0 PUBLISH properties; empty before 5.0.
    pub properties: Properties<'a>,
    /// Application Message.
    pub payload: &'a [u8],
}

const DUP: u8 = 0b1000;
const RETAIN: u8 = 0b0001;

impl<'a> Publish<'a> {
    /// A PUBLISH without DUP, RETAIN or properties.
    pub const fn new(topic: TopicName<'a>, qos: PublishQoS, payload: &'a [u8]) -> Self {
        Self { dup: false, qos, retain: false, topic, properties: Properties::EMPTY, payload }
    }

    /// Decode a PUBLISH from its fixed-header flags and body.
    #[inline(always)]
    pub fn decode(flags: u8, body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let dup = flags & DUP != 0;
        let (qos, rest) = match (flags >> 1) & 0b11 {
            // "The DUP flag MUST be set to 0 for all QoS 0 messages" [MQTT-3.3.1-2].
            0 if dup => return Err(DecodeError::DupWithQoS0),
            0 => (QoS::AtMostOnce, body),
            // "A PUBLISH Packet MUST NOT have both QoS bits set to 1" [MQTT-3.3.1-4].
            3 => return Err(DecodeError::InvalidQoS),
            qos => (if qos == 1 { QoS::AtLeastOnce } else { QoS::ExactlyOnce }, body),
        };
        // "The Topic Name MUST be present as the first field in the PUBLISH packet
        // Variable Header. It MUST be a UTF-8 Encoded String" [MQTT-3.3.2-1]; it "MUST
        // NOT contain wildcard characters" [MQTT-3.3.2-2].
        let (topic, rest) = wire::split_binary(rest)?;
        let topic = TopicName::from_bytes(topic)?;
        let (qos, rest) = match qos {
            QoS::AtMostOnce => (PublishQoS::AtMostOnce, rest),
            QoS::AtLeastOnce => {
                let (id, rest) = wire::split_packet_id(rest)?;
                (PublishQoS::AtLeastOnce(id), rest)
            }
            QoS::ExactlyOnce => {
                let (id, rest) = wire::split_packet_id(rest)?;
                (PublishQoS::ExactlyOnce(id), rest)
            }
        };
        let (properties, payload) = if version.is_v5() {
            Properties::split(rest, PropertyContext::Publish)?
        } else {
            (Properties::EMPTY, rest)
        };
        let publish = Self { dup, qos, retain: flags & RETAIN != 0, topic, properties, payload };
        if publish.topic.is_empty() {
            publish.check_topic(version)?;
        }
        Ok(publish)
    }

    /// An empty topic: "All Topic Names and Topic Filters MUST be at least one character long"
    /// \[MQTT-4.7.3-1\]; in 5.0 "It is a Protocol Error if the Topic Name is zero length
    /// and there is no Topic Alias" (§3.3.2.1).
    #[cold]
    fn check_topic(&self, version: ProtocolVersion) -> Result<(), DecodeError> {
        if self.topic.is_empty() && !(version.is_v5() && self.properties.topic_alias().is_some()) {
            return Err(DecodeError::EmptyTopic);
        }
        Ok(())
    }

    /// The fixed-header flags.
    pub fn flags(&self) -> u8 {
        let mut flags = self.qos.qos().as_u8() << 1;
        if self.dup {
            flags |= DUP;
        }
        if self.retain {
            flags |= RETAIN;
        }
        flags
    }

    /// Bytes after the fixed header.
    #[inline]
    pub fn remaining_len(&self, version: ProtocolVersion) -> usize {
        let id_len = if self.qos.packet_id().is_some() { 2 } else { 0 };
        wire::sum([
            wire::field_len(self.topic.as_bytes()),
            id_len,
            properties_len(&self.properties, version),
            self.payload.len(),
        ])
    }

    /// Check what the field types do not guarantee.
    #[inline]
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        if self.dup && self.qos == PublishQoS::AtMostOnce {
            return Err(DecodeError::DupWithQoS0.into());
        }
        if self.topic.is_empty() {
            self.check_topic(version)?;
        }
        check_properties(&self.properties, PropertyContext::Publish, version)
    }

    /// Validate and write everything but the payload (fixed header included), and
    /// return the payload: PUBLISH is the most frequent packet, so it is written in a
    /// few `put_slice`s with nothing computed twice.
    #[inline]
    pub(crate) fn encode_vectored(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<&'a [u8], EncodeError> {
        self.validate(version)?;
        let remaining = u32::try_from(self.remaining_len(version))
            .ok()
            .filter(|&len| len <= wire::VAR_INT_MAX)
            .ok_or(EncodeError::PacketTooLarge)?;
        let first_byte = ((PacketType::Publish as u8) << 4) | self.flags();
        let topic = self.topic.as_bytes();
        wire::put_fixed_header(buf, first_byte, remaining, wire::field_prefix(topic));
        buf.put_slice(topic);
        self.encode_after_topic(version, buf);
        Ok(self.payload)
    }

    /// Write the variable header and return the payload, which the caller writes (or
    /// sends as a separate buffer).
    pub(crate) fn encode_head(&self, version: ProtocolVersion, buf: &mut impl BufMut) -> &'a [u8] {
        wire::put_field(buf, self.topic.as_bytes());
        self.encode_after_topic(version, buf);
        self.payload
    }

    /// The packet identifier and the 5.0 properties.
    #[inline]
    fn encode_after_topic(&self, version: ProtocolVersion, buf: &mut impl BufMut) {
        match (self.qos.packet_id(), version.is_v5() && self.properties.is_empty()) {
            (Some(id), true) => {
                buf.put_u16(id.get());
                buf.put_u8(0);
            }
            (Some(id), false) => {
                buf.put_u16(id.get());
                if version.is_v5() {
                    self.properties.encode(buf);
                }
            }
            (None, true) => buf.put_u8(0),
            (None, false) if version.is_v5() => self.properties.encode(buf),
            (None, false) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3_1_1, V5};

    #[test]
    fn decodes_qos0_publish() {
        let p = Publish::decode(0b0001, &[0, 3, b'a', b'/', b'b', b'h', b'i'], V3_1_1).expect("valid");
        assert_eq!((p.topic.as_str(), p.qos, p.retain, p.payload), ("a/b", PublishQoS::AtMostOnce, true, &b"hi"[..]));
    }

    #[test]
    fn decodes_qos2_publish_with_properties() {
        let body = [0, 1, b't', 0x12, 0x34, 2, 0x01, 1, b'x'];
        let p = Publish::decode(0b1100, &body, V5).expect("valid");
        assert_eq!(p.qos.packet_id().map(|id| id.get()), Some(0x1234));
        assert!(p.dup);
        assert_eq!(p.properties.payload_format_indicator(), Some(1));
        assert_eq!(p.payload, b"x");
    }

    #[test]
    fn decodes_empty_topic_with_alias_in_v5() {
        let p = Publish::decode(0, &[0, 0, 3, 0x23, 0, 1], V5).expect("valid");
        assert_eq!(p.properties.topic_alias(), Some(1));
    }

    #[test]
    fn rejects_qos_3() {
        assert_eq!(Publish::decode(0b0110, &[0, 1, b't', 0, 1], V3_1_1), Err(DecodeError::InvalidQoS));
    }

    #[test]
    fn rejects_dup_on_qos0() {
        assert_eq!(Publish::decode(0b1000, &[0, 1, b't'], V3_1_1), Err(DecodeError::DupWithQoS0));
    }

    #[test]
    fn rejects_zero_packet_id() {
        assert_eq!(Publish::decode(0b0010, &[0, 1, b't', 0, 0], V3_1_1), Err(DecodeError::ZeroPacketId));
    }

    #[test]
    fn rejects_wildcard_topic() {
        assert_eq!(Publish::decode(0, &[0, 3, b'a', b'/', b'+'], V3_1_1), Err(DecodeError::WildcardInTopicName));
        assert_eq!(Publish::decode(0, &[0, 1, b'#'], V5), Err(DecodeError::WildcardInTopicName));
    }

    #[test]
    fn rejects_empty_topic() {
        assert_eq!(Publish::decode(0, &[0, 0], V3_1_1), Err(DecodeError::EmptyTopic));
        assert_eq!(Publish::decode(0, &[0, 0, 0], V5), Err(DecodeError::EmptyTopic));
    }

    #[test]
    fn rejects_subscribe_only_property() {
        // Subscription Identifier is allowed in PUBLISH; Session Expiry Interval is not.
        assert!(Publish::decode(0, &[0, 1, b't', 2, 0x0B, 5], V5).is_ok());
        assert!(matches!(
            Publish::decode(0, &[0, 1, b't', 5, 0x11, 0, 0, 0, 1], V5),
            Err(DecodeError::PropertyNotAllowed { .. })
        ));
    }

    #[test]
    fn rejects_truncated_topic() {
        assert_eq!(Publish::decode(0, &[0, 5, b'a'], V3_1_1), Err(DecodeError::Truncated));
    }
}

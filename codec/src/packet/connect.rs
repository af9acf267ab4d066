//! CONNECT: client request to connect to the server (3.1.1 §3.1, 5.0 §3.1).

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::packet::{PacketType, check_properties, properties_len};
use crate::property::{Properties, PropertyContext};
use crate::topic::{MqttStr, TopicName};
use crate::version::{ProtocolVersion, QoS};
use crate::wire::{self, Block};

/// CONNECT. The protocol version is part of the packet: it is what a connection's decoder
/// learns the version from.
///
/// ```
/// use mqttkit_codec::{decode_packet, Connect, MqttStr, Packet, Property, PropertiesBuf, PropertyContext};
/// use mqttkit_codec::{ProtocolVersion, QoS, Status, TopicName, Will};
///
/// let version = ProtocolVersion::V5;
/// let mut props = PropertiesBuf::new();
/// props.push(Property::SessionExpiryInterval(3600))?;
/// let mut connect = Connect::new(version, MqttStr::new("sensor-7")?, false, 30);
/// connect.properties = props.properties(PropertyContext::Connect)?;
/// let mut will = Will::new(TopicName::new("sensors/7/status")?, b"offline");
/// will.qos = QoS::AtLeastOnce;
/// connect.will = Some(will);
/// connect.username = Some(MqttStr::new("user")?);
/// connect.password = Some(b"secret");
/// let packet = Packet::Connect(connect);
/// let mut wire = Vec::new();
/// packet.encode(version, &mut wire)?;
/// let Status::Complete((decoded, used)) = decode_packet(&wire, Some(version), 1024)? else { unreachable!() };
/// assert_eq!((decoded, used), (packet, wire.len()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Protocol name and level (§3.1.2.1, §3.1.2.2).
    pub version: ProtocolVersion,
    /// The "bridge" bit: protocol level 0x83 or 0x84 (3.1 or 3.1.1 with bit 7 set), as
    /// mosquitto bridges send it to say they are a bridge, not a client.
    pub bridge: bool,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    /// Keep Alive, seconds.
    pub keep_alive: u16,
    /// 5.0 CONNECT properties; empty before 5.0.
    pub properties: Properties<'a>,
    /// Client Identifier; may be empty.
    pub client_id: MqttStr<'a>,
    /// Will message, when the Will Flag is set.
    pub will: Option<Will<'a>>,
    /// User Name.
    pub username: Option<MqttStr<'a>>,
    /// Password.
    pub password: Option<&'a [u8]>,
}

/// The Will message of a CONNECT (§3.1.2.5–§3.1.2.7, §3.1.3.2–§3.1.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will<'a> {
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// 5.0 Will Properties; empty before 5.0.
    pub properties: Properties<'a>,
    /// Will Topic: a non-empty topic name.
    pub topic: TopicName<'a>,
    /// Will Payload.
    pub payload: &'a [u8],
}

impl<'a> Will<'a> {
    /// A QoS 0, non-retained will without properties.
    pub const fn new(topic: TopicName<'a>, payload: &'a [u8]) -> Self {
        Self { qos: QoS::AtMostOnce, retain: false, properties: Properties::EMPTY, topic, payload }
    }
}

const USERNAME: u8 = 0x80;
const PASSWORD: u8 = 0x40;
const WILL_RETAIN: u8 = 0x20;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_FLAG: u8 = 0x04;
const CLEAN_START: u8 = 0x02;
const RESERVED: u8 = 0x01;

impl<'a> Connect<'a> {
    /// A CONNECT with no will, credentials or properties.
    pub fn new(version: ProtocolVersion, client_id: MqttStr<'a>, clean_start: bool, keep_alive: u16) -> Self {
        Self {
            version,
            bridge: false,
            clean_start,
            keep_alive,
            properties: Properties::EMPTY,
            client_id,
            will: None,
            username: None,
            password: None,
        }
    }

    /// The protocol version a CONNECT body announces, read from its protocol name and
    /// level alone — so that a server can answer a CONNECT that fails validation in the
    /// client's own version (e.g. a 5.0 CONNACK 0x81 or a 3.1.1 return code).
    pub fn peek_version(body: &[u8]) -> Option<ProtocolVersion> {
        let (name, input) = wire::split_binary(body).ok()?;
        let (level, _) = wire::split_u8(input).ok()?;
        read_version(name, level).ok().map(|(version, _)| version)
    }

    /// Decode a CONNECT body (fixed-header flags 0).
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        Self::decode_with_flags(0, body)
    }

    /// Decode a CONNECT from its fixed-header flags and body. 3.1 has no rule on either
    /// reserved bit: they are accepted and ignored there (as mosquitto does).
    #[inline]
    pub fn decode_with_flags(header_flags: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        let (name, rest) = wire::split_binary(body)?;
        let (level, rest) = wire::split_u8(rest)?;
        let (version, bridge) = read_version(name, level)?;
        let v3_1 = version == ProtocolVersion::V3_1;
        // "Where a flag bit is marked as "Reserved" [...] it MUST be set to the value
        // listed" [MQTT-3.1.1: 2.2.2-1] [MQTT-5.0: 2.1.3-1]; 3.1: "not used".
        if header_flags != 0 && !v3_1 {
            return Err(DecodeError::InvalidFlags { packet_type: PacketType::Connect, flags: header_flags });
        }
        let (flags, rest) = wire::split_u8(rest)?;
        // "The Server MUST validate that the reserved flag in the CONNECT packet is set to
        // 0" [MQTT-3.1.2-3]; 3.1 only calls the bit "Reserved".
        if flags & RESERVED != 0 && !v3_1 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let will_flag = flags & WILL_FLAG != 0;
        let will_qos = (flags >> WILL_QOS_SHIFT) & 0b11;
        let will_retain = flags & WILL_RETAIN != 0;
        // "If the Will Flag is set to 0, then the Will QoS MUST be set to 0"
        // [MQTT-3.1.1: 3.1.2-13] [MQTT-5.0: 3.1.2-11] and "Will Retain MUST be set to 0"
        // [MQTT-3.1.1: 3.1.2-15] [MQTT-5.0: 3.1.2-13].
        if !will_flag && (will_qos != 0 || will_retain) {
            return Err(DecodeError::WillFlagsWithoutWill);
        }
        // Will QoS "MUST NOT be 3 (0x03)" [MQTT-3.1.1: 3.1.2-14]; "can be 0 (0x00), 1 (0x01),
        // or 2 (0x02)" [MQTT-5.0: 3.1.2-12].
        let Some(will_qos) = QoS::from_u8(will_qos) else {
            return Err(DecodeError::InvalidWillQoS);
        };
        let has_username = flags & USERNAME != 0;
        let has_password = flags & PASSWORD != 0;
        // "If the User Name Flag is set to 0, the Password Flag MUST be set to 0"
        // [MQTT-3.1.1: 3.1.2-22] (dropped in 5.0).
        if !version.is_v5() && has_password && !has_username {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let (keep_alive, rest) = wire::split_u16(rest)?;
        let (properties, payload) = if version.is_v5() {
            Properties::split(rest, PropertyContext::Connect)?
        } else {
            (Properties::EMPTY, rest)
        };
        // The payload's strings are read from one block validated as UTF-8 at once.
        let mut payload = Block::new(payload, 0).reader();
        // "The ClientID MUST be present and is the first field in the CONNECT packet
        // Payload" [MQTT-3.1.3-3]; "The ClientID MUST be a UTF-8 Encoded String"
        // [MQTT-3.1.3-4].
        let client_id = MqttStr::new_unchecked(payload.string()?);
        let will = if will_flag {
            let properties = if version.is_v5() {
                let len = payload.var_int()?;
                Properties::parse(payload.bytes(len as usize)?, PropertyContext::Will)?
            } else {
                Properties::EMPTY
            };
            // "The Will Topic MUST be a UTF-8 Encoded String" [MQTT-3.1.1: 3.1.3-10]
            // [MQTT-5.0: 3.1.3-11]; it is the
            // topic the will is published to, so it is a non-empty topic name.
            let topic = TopicName::parse(payload.utf8_field()?)?;
            if topic.is_empty() {
                return Err(DecodeError::EmptyTopic);
            }
            let payload = payload.binary()?;
            Some(Will { qos: will_qos, retain: will_retain, properties, topic, payload })
        } else {
            None
        };
        // "If the User Name Flag is set to 1, a User Name MUST be present in the Payload"
        // [MQTT-3.1.1: 3.1.2-19] [MQTT-5.0: 3.1.2-17]; it "MUST be a UTF-8 Encoded String"
        // [MQTT-3.1.1: 3.1.3-11] [MQTT-5.0: 3.1.3-12].
        let username = if has_username { Some(MqttStr::new_unchecked(payload.string()?)) } else { None };
        // "If the Password Flag is set to 1, a Password MUST be present" [MQTT-3.1.1: 3.1.2-21]
        // [MQTT-5.0: 3.1.2-19].
        let password = if has_password { Some(payload.binary()?) } else { None };
        if !payload.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Self {
            version,
            bridge,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    /// The protocol level byte, with the bridge bit.
    const fn level(&self) -> u8 {
        if self.bridge { self.version.level() | 0x80 } else { self.version.level() }
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        if let Some(will) = &self.will {
            flags |= WILL_FLAG | (will.qos.as_u8() << WILL_QOS_SHIFT);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.clean_start {
            flags |= CLEAN_START;
        }
        flags
    }

    /// Bytes after the fixed header.
    pub fn remaining_len(&self) -> usize {
        let v = self.version;
        let will = self.will.as_ref().map_or(0, |will| {
            wire::sum([
                properties_len(&will.properties, v),
                wire::field_len(will.topic.as_bytes()),
                wire::field_len(will.payload),
            ])
        });
        wire::sum([
            wire::field_len(v.protocol_name().as_bytes()),
            4, // level, flags, keep alive
            properties_len(&self.properties, v),
            wire::field_len(self.client_id.as_bytes()),
            will,
            self.username.map_or(0, |name| wire::field_len(name.as_bytes())),
            self.password.map_or(0, wire::field_len),
        ])
    }

    /// Check what the field types do not guarantee.
    pub fn validate(&self) -> Result<(), EncodeError> {
        if self.bridge && self.version.is_v5() {
            return Err(DecodeError::UnsupportedProtocolLevel(self.level()).into());
        }
        check_properties(&self.properties, PropertyContext::Connect, self.version)?;
        if !self.version.is_v5() && self.password.is_some() && self.username.is_none() {
            return Err(DecodeError::PasswordWithoutUsername.into());
        }
        if let Some(will) = &self.will {
            check_properties(&will.properties, PropertyContext::Will, self.version)?;
            if will.topic.is_empty() {
                return Err(DecodeError::EmptyTopic.into());
            }
            wire::check_field(will.payload)?;
        }
        if let Some(password) = self.password {
            wire::check_field(password)?;
        }
        Ok(())
    }

    /// Validate and write the whole packet (fixed header included) with nothing computed
    /// twice: the fixed header and the protocol name's length in one store.
    #[inline]
    pub(crate) fn encode(&self, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        self.validate()?;
        let remaining = u32::try_from(self.remaining_len())
            .ok()
            .filter(|&len| len <= wire::VAR_INT_MAX)
            .ok_or(EncodeError::PacketTooLarge)?;
        let name_len = if self.version == ProtocolVersion::V3_1 { 6 } else { 4 };
        wire::put_fixed_header(buf, (PacketType::Connect as u8) << 4, remaining, [0, name_len]);
        self.encode_after_name_len(buf);
        Ok(())
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        let name_len = if self.version == ProtocolVersion::V3_1 { 6 } else { 4 };
        buf.put_u16(name_len);
        self.encode_after_name_len(buf);
    }

    /// Everything after the protocol name's length prefix.
    #[inline]
    fn encode_after_name_len(&self, buf: &mut impl BufMut) {
        let v = self.version;
        // Protocol name, level, flags and keep alive: fixed-size writes (plain stores).
        let (level, flags) = (self.level(), self.flags());
        if v == ProtocolVersion::V3_1 {
            buf.put_u64(u64::from_be_bytes([b'M', b'Q', b'I', b's', b'd', b'p', level, flags]));
            buf.put_u16(self.keep_alive);
        } else {
            let [hi, lo] = self.keep_alive.to_be_bytes();
            buf.put_u64(u64::from_be_bytes([b'M', b'Q', b'T', b'T', level, flags, hi, lo]));
        }
        if v.is_v5() {
            self.properties.encode(buf);
        }
        wire::put_field(buf, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v.is_v5() {
                will.properties.encode(buf);
            }
            wire::put_field(buf, will.topic.as_bytes());
            wire::put_field(buf, will.payload);
        }
        if let Some(name) = &self.username {
            wire::put_field(buf, name.as_bytes());
        }
        if let Some(password) = self.password {
            wire::put_field(buf, password);
        }
    }
}

/// The version (and bridge bit) a protocol name and level announce.
#[inline]
fn read_version(name: &[u8], level: u8) -> Result<(ProtocolVersion, bool), DecodeError> {
    // mosquitto bridges set bit 7 of a 3.1 or 3.1.1 level ("try_private").
    let (level_bits, bridge) = match level {
        0x83 | 0x84 => (level & 0x7F, true),
        _ => (level, false),
    };
    // "The protocol name MUST be the UTF-8 String "MQTT"" [MQTT-3.1.2-1]; 3.1 used
    // "MQIsdp" with level 3.
    match (name, ProtocolVersion::from_level(level_bits)) {
        (b"MQTT", Some(v @ (ProtocolVersion::V3_1_1 | ProtocolVersion::V5))) => Ok((v, bridge)),
        (b"MQIsdp", Some(ProtocolVersion::V3_1)) => Ok((ProtocolVersion::V3_1, bridge)),
        (b"MQTT" | b"MQIsdp", _) => Err(DecodeError::UnsupportedProtocolLevel(level)),
        _ => Err(DecodeError::InvalidProtocolName),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use crate::property::PropertyId;

    fn decode(bytes: &[u8]) -> Result<Packet<'_>, DecodeError> {
        let (first, body) = bytes.split_first().expect("non-empty");
        Packet::decode(*first, body.get(1..).expect("one-byte remaining length"), None)
    }

    /// 3.1.1 CONNECT, client id "c", clean session, keep alive 60.
    const V311_MINIMAL: &[u8] = &[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'c'];

    #[test]
    fn decodes_minimal_v311_connect() {
        let Ok(Packet::Connect(c)) = decode(V311_MINIMAL) else { panic!("not a CONNECT") };
        assert_eq!(c.version, ProtocolVersion::V3_1_1);
        assert!(c.clean_start);
        assert_eq!(c.keep_alive, 60);
        assert_eq!(c.client_id, "c");
        assert!(c.will.is_none() && c.username.is_none() && c.password.is_none());
    }

    #[test]
    fn decodes_v31_mqisdp_connect() {
        let bytes = [0x10, 15, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 10, 0, 1, b'x'];
        let Ok(Packet::Connect(c)) = decode(&bytes) else { panic!("not a CONNECT") };
        assert_eq!(c.version, ProtocolVersion::V3_1);
    }

    #[test]
    fn decodes_v5_connect_with_will_and_credentials() {
        let bytes = [
            0x10,
            39,
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            5,
            0b1110_1110,
            0,
            30, // header, flags: user, pass, will retain, will qos 1, will, clean
            5,
            0x11,
            0,
            0,
            0,
            10, // session expiry 10
            0,
            2,
            b'i',
            b'd', // client id
            5,
            0x18,
            0,
            0,
            0,
            5, // will delay 5
            0,
            1,
            b'w',
            0,
            2,
            b'h',
            b'i', // will topic and payload
            0,
            1,
            b'u',
            0,
            1,
            b'p',
        ];
        let Ok(Packet::Connect(c)) = decode(&bytes) else { panic!("not a CONNECT: {:?}", decode(&bytes)) };
        assert_eq!(c.properties.session_expiry_interval(), Some(10));
        let will = c.will.expect("will");
        assert_eq!(
            (will.qos, will.retain, will.topic.as_str(), will.payload),
            (QoS::AtLeastOnce, true, "w", &b"hi"[..])
        );
        assert_eq!(will.properties.will_delay_interval(), Some(5));
        assert_eq!((c.username.map(|u| u.as_str()), c.password), (Some("u"), Some(&b"p"[..])));
    }

    fn with_flags(flags: u8) -> Vec<u8> {
        let mut bytes = V311_MINIMAL.to_vec();
        bytes[9] = flags;
        bytes
    }

    #[test]
    fn peeks_version_of_invalid_connect() {
        let mut bytes = with_flags(0x03);
        assert_eq!(Connect::peek_version(&bytes[2..]), Some(ProtocolVersion::V3_1_1));
        bytes[8] = 7;
        assert_eq!(Connect::peek_version(&bytes[2..]), None);
        assert_eq!(Connect::peek_version(&[0, 4, b'M']), None);
    }

    #[test]
    fn rejects_reserved_flag() {
        assert_eq!(decode(&with_flags(0x03)), Err(DecodeError::ConnectReservedFlag));
    }

    #[test]
    fn rejects_will_qos_or_retain_without_will_flag() {
        assert_eq!(decode(&with_flags(0x02 | 0x08)), Err(DecodeError::WillFlagsWithoutWill));
        assert_eq!(decode(&with_flags(0x02 | 0x20)), Err(DecodeError::WillFlagsWithoutWill));
    }

    #[test]
    fn rejects_will_qos_3() {
        assert_eq!(decode(&with_flags(0x02 | 0x04 | 0x18)), Err(DecodeError::InvalidWillQoS));
    }

    #[test]
    fn rejects_password_without_username_before_v5() {
        assert_eq!(decode(&with_flags(0x42)), Err(DecodeError::PasswordWithoutUsername));
    }

    #[test]
    fn rejects_missing_username_field() {
        assert_eq!(decode(&with_flags(0x82)), Err(DecodeError::Truncated));
    }

    #[test]
    fn rejects_bad_protocol_name_and_level() {
        let mut bytes = V311_MINIMAL.to_vec();
        bytes[4] = b'X';
        assert_eq!(decode(&bytes), Err(DecodeError::InvalidProtocolName));
        let mut bytes = V311_MINIMAL.to_vec();
        bytes[8] = 6;
        assert_eq!(decode(&bytes), Err(DecodeError::UnsupportedProtocolLevel(6)));
        assert_eq!(DecodeError::UnsupportedProtocolLevel(6).reason_code().0, 0x84);
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = V311_MINIMAL.to_vec();
        bytes[1] += 1;
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn rejects_will_topic_with_wildcard() {
        let bytes = [0x10, 19, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x06, 0, 60, 0, 1, b'c', 0, 1, b'#', 0, 1, b'x'];
        assert_eq!(decode(&bytes), Err(DecodeError::WildcardInTopicName));
    }

    #[test]
    fn rejects_connack_only_property_in_connect() {
        let bytes = [0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 3, 0x13, 0, 5, 0, 0];
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::PropertyNotAllowed {
                property: PropertyId::SERVER_KEEP_ALIVE,
                packet_type: crate::packet::PacketType::Connect
            })
        );
    }
}

//! Spec byte vectors shared by the integration tests: one valid, canonical encoding of
//! every control packet for 3.1.1 and 5.0 (built by hand from the standards' layouts).

#![allow(dead_code)]

use mqttkit_codec::ProtocolVersion;

/// (name, version, bytes). Each is canonical: the encoder reproduces it exactly.
pub const VECTORS: &[(&str, ProtocolVersion, &[u8])] = &[
    // ---- 3.1.1 ----
    ("connect", ProtocolVersion::V3_1_1, &[0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'c']),
    (
        "connect-will-credentials",
        ProtocolVersion::V3_1_1,
        &[
            0x10, 0x1A, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xEE, 0, 60, 0, 1, b'c', 0, 1, b'w', 0, 2, b'h', b'i', 0, 1,
            b'u', 0, 1, b'p',
        ],
    ),
    (
        "connect-3.1",
        ProtocolVersion::V3_1,
        &[0x10, 0x0F, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 10, 0, 1, b'x'],
    ),
    ("connack", ProtocolVersion::V3_1_1, &[0x20, 0x02, 0x01, 0x00]),
    ("connack-refused", ProtocolVersion::V3_1_1, &[0x20, 0x02, 0x00, 0x05]),
    ("publish-qos0", ProtocolVersion::V3_1_1, &[0x30, 0x05, 0, 1, b't', b'h', b'i']),
    ("publish-qos1-retain", ProtocolVersion::V3_1_1, &[0x33, 0x07, 0, 1, b't', 0, 1, b'h', b'i']),
    ("publish-qos2-dup", ProtocolVersion::V3_1_1, &[0x3C, 0x05, 0, 1, b't', 0xFF, 0xFF]),
    ("publish-bom", ProtocolVersion::V3_1_1, &[0x30, 0x05, 0, 3, 0xEF, 0xBB, 0xBF]),
    ("puback", ProtocolVersion::V3_1_1, &[0x40, 0x02, 0, 1]),
    ("pubrec", ProtocolVersion::V3_1_1, &[0x50, 0x02, 0, 1]),
    ("pubrel", ProtocolVersion::V3_1_1, &[0x62, 0x02, 0, 1]),
    ("pubcomp", ProtocolVersion::V3_1_1, &[0x70, 0x02, 0, 1]),
    ("subscribe", ProtocolVersion::V3_1_1, &[0x82, 0x0C, 0, 1, 0, 1, b'a', 1, 0, 3, b'b', b'/', b'#', 2]),
    ("suback", ProtocolVersion::V3_1_1, &[0x90, 0x04, 0, 1, 1, 0x80]),
    ("unsubscribe", ProtocolVersion::V3_1_1, &[0xA2, 0x05, 0, 1, 0, 1, b'a']),
    ("unsuback", ProtocolVersion::V3_1_1, &[0xB0, 0x02, 0, 1]),
    ("pingreq", ProtocolVersion::V3_1_1, &[0xC0, 0x00]),
    ("pingresp", ProtocolVersion::V3_1_1, &[0xD0, 0x00]),
    ("disconnect", ProtocolVersion::V3_1_1, &[0xE0, 0x00]),
    // ---- 5.0 ----
    ("v5-connect", ProtocolVersion::V5, &[0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 1, b'c']),
    (
        "v5-connect-props-will",
        ProtocolVersion::V5,
        &[
            0x10, 0x27, 0, 4, b'M', b'Q', b'T', b'T', 5, 0xEE, 0, 30, 5, 0x11, 0, 0, 0, 10, 0, 2, b'i', b'd', 5, 0x18,
            0, 0, 0, 5, 0, 1, b'w', 0, 2, b'h', b'i', 0, 1, b'u', 0, 1, b'p',
        ],
    ),
    (
        "v5-connect-password-only",
        ProtocolVersion::V5,
        &[0x10, 0x10, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x42, 0, 0, 0, 0, 0, 0, 1, b'p'],
    ),
    ("v5-connack", ProtocolVersion::V5, &[0x20, 0x03, 0x00, 0x00, 0x00]),
    (
        "v5-connack-props",
        ProtocolVersion::V5,
        &[0x20, 0x0D, 0x00, 0x00, 0x0A, 0x21, 0, 10, 0x22, 0, 5, 0x25, 0x01, 0x24, 0x01],
    ),
    ("v5-connack-refused", ProtocolVersion::V5, &[0x20, 0x03, 0x00, 0x87, 0x00]),
    ("v5-publish-qos0", ProtocolVersion::V5, &[0x30, 0x06, 0, 1, b't', 0, b'h', b'i']),
    (
        "v5-publish-props",
        ProtocolVersion::V5,
        &[
            0x32, 0x19, 0, 1, b't', 0, 7, 0x12, 0x02, 0, 0, 0, 60, 0x03, 0, 1, b'j', 0x26, 0, 1, b'k', 0, 1, b'v',
            0x0B, 0x05, b'x',
        ],
    ),
    ("v5-publish-alias", ProtocolVersion::V5, &[0x30, 0x06, 0, 0, 3, 0x23, 0, 1]),
    ("v5-puback", ProtocolVersion::V5, &[0x40, 0x02, 0, 1]),
    ("v5-puback-reason", ProtocolVersion::V5, &[0x40, 0x03, 0, 1, 0x10]),
    ("v5-pubrec-props", ProtocolVersion::V5, &[0x50, 0x08, 0, 1, 0x80, 4, 0x1F, 0, 1, b'r']),
    ("v5-pubrel", ProtocolVersion::V5, &[0x62, 0x03, 0, 1, 0x92]),
    ("v5-pubcomp", ProtocolVersion::V5, &[0x70, 0x02, 0, 1]),
    ("v5-subscribe", ProtocolVersion::V5, &[0x82, 0x09, 0, 1, 2, 0x0B, 0x07, 0, 1, b'a', 0b0010_1110]),
    (
        "v5-subscribe-shared",
        ProtocolVersion::V5,
        &[0x82, 0x11, 0, 1, 0, 0, 11, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'a', b'b', 0x01],
    ),
    ("v5-suback", ProtocolVersion::V5, &[0x90, 0x05, 0, 1, 0, 0x02, 0xA2]),
    ("v5-unsubscribe", ProtocolVersion::V5, &[0xA2, 0x06, 0, 1, 0, 0, 1, b'a']),
    ("v5-unsuback", ProtocolVersion::V5, &[0xB0, 0x05, 0, 1, 0, 0x00, 0x11]),
    ("v5-pingreq", ProtocolVersion::V5, &[0xC0, 0x00]),
    ("v5-disconnect", ProtocolVersion::V5, &[0xE0, 0x00]),
    ("v5-disconnect-will", ProtocolVersion::V5, &[0xE0, 0x01, 0x04]),
    ("v5-disconnect-props", ProtocolVersion::V5, &[0xE0, 0x07, 0x8E, 5, 0x11, 0, 0, 0, 9]),
    ("v5-auth", ProtocolVersion::V5, &[0xF0, 0x00]),
    ("v5-auth-continue", ProtocolVersion::V5, &[0xF0, 0x08, 0x18, 6, 0x15, 0, 3, b'a', b'b', b'c']),
];

/// Frames that are valid but not canonical (the encoder writes a shorter form).
pub const NON_CANONICAL: &[(&str, ProtocolVersion, &[u8])] = &[
    ("v5-puback-explicit-success", ProtocolVersion::V5, &[0x40, 0x03, 0, 1, 0x00]),
    ("v5-puback-empty-properties", ProtocolVersion::V5, &[0x40, 0x04, 0, 1, 0x10, 0x00]),
    ("v5-disconnect-explicit-success", ProtocolVersion::V5, &[0xE0, 0x02, 0x00, 0x00]),
    ("v5-auth-one-byte", ProtocolVersion::V5, &[0xF0, 0x01, 0x00]),
];

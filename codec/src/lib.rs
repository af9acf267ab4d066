//! # mqttkit-codec
//!
//! A zero-copy, strict codec for every MQTT control packet of versions 3.1, 3.1.1 and
//! 5.0, with hand-written complete readers (no parser-combinator layer) and SIMD UTF-8
//! validation behind a safe API (`simdutf8`).
//!
//! * **Zero-copy decoding.** A [`Packet`] borrows from the input: strings are validated
//!   `&str`, payloads and binary data `&[u8]`, and 5.0 properties and subscription lists
//!   are iterators over bytes that were validated once. Decoding allocates nothing.
//! * **Strict.** Every rule a receiver can check on one packet is enforced; each
//!   [`DecodeError`] names the normative statement it enforces (`[MQTT-x.y.z-n]`) and the
//!   reason code a 5.0 receiver sends before closing ([`DecodeError::reason_code`]).
//! * **Streaming.** [`StreamDecoder`] and [`decode_packet`] report an incomplete packet as
//!   "need more bytes", check the maximum packet size from the fixed header before
//!   buffering the body, and never resynchronise after a malformed frame.
//! * **Encoding** into any [`bytes::BufMut`] with an exact [`Packet::encoded_len`], and a
//!   vectored form ([`Packet::encode_vectored`]) that leaves large payloads uncopied. The
//!   normal encoder refuses what the decoder would reject; [`Packet::encode_unchecked`] and
//!   [`raw::RawPacket`] build deliberately invalid packets.
//!
//! ```
//! use mqttkit_codec::{
//!     Packet, Publish, PublishQoS, PacketId, ProtocolVersion, StreamDecoder, TopicName,
//! };
//!
//! // Encode a QoS 1 PUBLISH for an MQTT 3.1.1 connection.
//! let topic = TopicName::new("sensors/temperature")?;
//! let id = PacketId::new(7).expect("non-zero");
//! let publish = Packet::Publish(Publish::new(topic, PublishQoS::AtLeastOnce(id), b"21.5"));
//! let mut wire = Vec::new();
//! publish.encode(ProtocolVersion::V3_1_1, &mut wire)?;
//! assert_eq!(wire.len(), publish.encoded_len(ProtocolVersion::V3_1_1));
//!
//! // Decode it from a stream that arrives in two pieces.
//! let mut decoder = StreamDecoder::with_version(ProtocolVersion::V3_1_1);
//! decoder.feed(&wire[..5]);
//! assert!(decoder.next_packet()?.is_none()); // incomplete: need more bytes
//! decoder.feed(&wire[5..]);
//! match decoder.next_packet()? {
//!     Some(Packet::Publish(p)) => {
//!         assert_eq!(p.topic, "sensors/temperature");
//!         assert_eq!(p.payload, b"21.5");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Statement ids
//!
//! The same statement number can name different rules in MQTT 3.1.1 and 5.0 (3.1.1's
//! MQTT-3.1.2-14 forbids Will QoS 3; 5.0's is about publishing a non-retained will), so
//! every citation says which standard it belongs to where that matters:
//!
//! * `[MQTT-x.y.z-n]`: this id names the rule in both 3.1.1 and 5.0;
//! * `[MQTT-3.1.1: x.y.z-n]`, `[MQTT-5.0: x.y.z-n]`: an id of that version only.
//!
//! [`DecodeError::statements`] takes the version; `Display` prints both versions' ids in
//! this convention, [`DecodeError::in_version`] one version's. MQTT 3.1 numbers no
//! statements. The codec's comments use the same convention, and a test checks every id
//! against the project's catalogue of that version (`conformance/catalogue/`).
//!
//! Rules that need connection or session state (packet identifiers in use, topic alias
//! ranges, Receive Maximum, who may send which packet) are left to the layer that holds
//! that state, such as the `mqttkit-broker` crate.

#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::unwrap_used))]
#![warn(missing_docs)]

#[cfg(feature = "arbitrary")]
mod arbitrary_impls;
mod error;
mod frame;
#[cfg(feature = "__fuzzing")]
#[doc(hidden)]
pub mod fuzz_targets;
mod owned;
mod packet;
mod property;
pub mod raw;
mod reason;
mod stream;
mod topic;
mod version;
mod wire;

#[cfg(feature = "tokio-codec")]
mod tokio_codec;
#[cfg(feature = "tokio-codec")]
pub use tokio_codec::{CodecError, MqttCodec};

#[cfg(feature = "arbitrary")]
pub use arbitrary_impls::ArbitraryPacket;
pub use error::{DecodeError, EncodeError, FrameError, InVersion, StreamError, ValidationError};
pub use frame::{
    DEFAULT_MAX_PACKET_SIZE, DecoderConfig, FixedHeader, MAX_RESERVE, PROTOCOL_MAX_PACKET_SIZE, Status, decode_packet,
    parse_fixed_header,
};
pub use owned::OwnedPacket;
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PacketType, Publish, PublishQoS, PublishResponse, ReasonCodes, SubAck,
    Subscribe, SubscribeFilters, SubscribeFiltersBuf, SubscriptionOptions, TopicFilterIter, TopicFilters,
    TopicFiltersBuf, UnsubAck, Unsubscribe, UnsubscribeFilters, UnsubscribeFiltersBuf, Will,
};
pub use property::{Properties, PropertiesBuf, Property, PropertyContext, PropertyId, PropertyIter, ValueType};
pub use reason::{NamedReasonCode, ReasonCode};
pub use stream::StreamDecoder;
pub use topic::{MqttStr, SharedSubscription, TopicFilter, TopicName, filter_matches};
pub use version::{PacketId, ProtocolVersion, QoS, RetainHandling};
pub use wire::{VAR_INT_MAX, read_var_int, var_int_len};

/// The root README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

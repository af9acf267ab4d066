//! The core allocates nothing per message once warmed up: publishing (QoS 0, 1, 2 with
//! their acknowledgements) and receiving (QoS 0, 1), counted by a global allocator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit_client::core::{Core, Event};
use mqttkit_client::{Options, ProtocolVersion, Publication, QoS};

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

fn connected(version: ProtocolVersion) -> (Core, Instant) {
    let now = Instant::now();
    let options = Options::new("mqtt://127.0.0.1:1883").version(version).client_id("alloc").keep_alive(Duration::ZERO);
    let mut core = Core::new(options, now).unwrap();
    core.connect(now);
    core.transport_opened(now);
    let connack: &[u8] = if version.is_v5() { &[0x20, 3, 0, 0, 0] } else { &[0x20, 2, 0, 0] };
    core.handle_bytes(connack, now);
    assert!(core.is_connected());
    drain(&mut core);
    (core, now)
}

fn drain(core: &mut Core) -> usize {
    let mut sent = 0;
    while let Some(bytes) = core.poll_transmit() {
        sent += bytes.len();
    }
    while core.poll_event().is_some() {}
    sent
}

/// One publication and its acknowledgements, as the server would send them.
fn publish_round(core: &mut Core, now: Instant, qos: QoS, id: u16, payload: &Bytes) {
    let p = Publication { topic: "bench/topic".into(), qos, retain: false, payload: payload.clone(), properties: None };
    core.publish(p, Some(u64::from(id)), now).unwrap();
    let [hi, lo] = id.to_be_bytes();
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => core.handle_bytes(&[0x40, 2, hi, lo], now),
        QoS::ExactlyOnce => {
            core.handle_bytes(&[0x50, 2, hi, lo], now);
            core.handle_bytes(&[0x70, 2, hi, lo], now);
        }
    }
    let sent = drain(core);
    assert!(sent > 0);
}

fn count(f: impl FnOnce()) -> u64 {
    let before = counting_alloc::allocations();
    f();
    counting_alloc::allocations() - before
}

#[test]
fn publishing_allocates_nothing_per_message() {
    let payload = Bytes::from_static(&[7; 256]);
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let (mut core, now) = connected(version);
            // Warm up: buffers and maps reach their working size.
            for n in 0..1000u16 {
                publish_round(&mut core, now, qos, n % 1000 + 1, &payload);
            }
            let allocations = count(|| {
                for n in 0..10_000u32 {
                    // The core assigns identifiers in turn: 1001, 1002, …
                    let id = u16::try_from((1000 + n) % 65_535 + 1).unwrap();
                    publish_round(&mut core, now, qos, id, &payload);
                }
            });
            assert_eq!(allocations, 0, "{version} QoS {}: allocations for 10,000 publications", qos.as_u8());
        }
    }
}

#[test]
fn receiving_allocates_nothing_per_message() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let (mut core, now) = connected(version);
        // PUBLISH QoS 1, topic "t", id 1, payload "hello" (5.0: empty property block).
        let frame: &[u8] = if version.is_v5() {
            &[0x32, 11, 0, 1, b't', 0, 1, 0, b'h', b'e', b'l', b'l', b'o']
        } else {
            &[0x32, 10, 0, 1, b't', 0, 1, b'h', b'e', b'l', b'l', b'o']
        };
        let round = |core: &mut Core| {
            core.handle_bytes(frame, now);
            let mut messages = 0;
            while let Some(event) = core.poll_event() {
                if let Event::Message(m) = event {
                    assert_eq!(&m.payload()[..], b"hello");
                    messages += 1;
                }
            }
            assert_eq!(messages, 1);
            while core.poll_transmit().is_some() {}
        };
        for _ in 0..1000 {
            round(&mut core);
        }
        let allocations = count(|| {
            for _ in 0..10_000 {
                round(&mut core);
            }
        });
        assert_eq!(allocations, 0, "{version}: allocations for 10,000 received messages");
    }
}

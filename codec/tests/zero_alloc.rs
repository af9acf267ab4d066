//! Layer 3: decoding performs no heap allocation, for every packet type, proven with a
//! counting global allocator. Kept in its own test binary, with one test, so no other
//! test thread allocates while it measures.

#![allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{NON_CANONICAL, VECTORS};
use mqttkit_codec::{PROTOCOL_MAX_PACKET_SIZE, Packet, Status, StreamDecoder, decode_packet};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards to the system allocator; only counts calls on this thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Touch every field so lazy iterators run too.
fn consume(packet: &Packet<'_>) -> usize {
    let mut n = 0;
    match packet {
        Packet::Connect(c) => {
            n += c.properties.iter().count() + c.client_id.len();
            if let Some(w) = &c.will {
                n += w.properties.iter().count() + w.topic.len() + w.payload.len();
            }
        }
        Packet::ConnAck(c) => n += c.properties.iter().count(),
        Packet::Publish(p) => n += p.properties.iter().count() + p.topic.len() + p.payload.len(),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            n += r.properties.iter().count()
        }
        Packet::Subscribe(s) => {
            n += s.filters.iter().map(|(f, _)| f.len()).sum::<usize>() + s.properties.iter().count()
        }
        Packet::SubAck(s) => n += s.reason_codes.iter().count(),
        Packet::Unsubscribe(u) => n += u.filters.iter().map(|f| f.len()).sum::<usize>(),
        Packet::UnsubAck(u) => n += u.reason_codes.iter().count(),
        Packet::Disconnect(d) => n += d.properties.iter().count(),
        Packet::Auth(a) => n += a.properties.iter().count(),
        Packet::PingReq | Packet::PingResp => n += 1,
    }
    n
}

#[test]
fn decoding_allocates_nothing() {
    // Warm up anything lazily initialised by the test harness on this thread.
    let _ = allocations();
    let mut touched = 0;
    for &(name, version, bytes) in VECTORS.iter().chain(NON_CANONICAL) {
        let before = allocations();
        let Ok(Status::Complete((packet, _))) = decode_packet(bytes, Some(version), PROTOCOL_MAX_PACKET_SIZE) else {
            panic!("{name} did not decode");
        };
        touched += consume(&packet);
        let after = allocations();
        assert_eq!(after - before, 0, "{name}: decoding allocated");
    }
    assert!(touched > 0);

    // The streaming decoder too, once its buffer holds the bytes.
    let mut stream = Vec::new();
    for &(_, version, bytes) in VECTORS {
        if version == mqttkit_codec::ProtocolVersion::V5 {
            stream.extend_from_slice(bytes);
        }
    }
    let mut decoder = StreamDecoder::with_version(mqttkit_codec::ProtocolVersion::V5);
    decoder.feed(&stream);
    let before = allocations();
    let mut count = 0;
    while let Some(packet) = decoder.next_packet().expect("valid") {
        count += consume(&packet);
    }
    assert_eq!(allocations() - before, 0, "StreamDecoder::next_packet allocated");
    assert!(count > 0);
    // The counter works: a Vec allocates.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 16]);
    assert_eq!(allocations() - before, 1);
    drop(v);
}

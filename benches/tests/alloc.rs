//! The counting allocator works when installed, and (informational, with
//! `--nocapture`) how many allocation calls each peer makes per decode and
//! per encode of every sample it supports; mqttkit's must be zero.

use mqttkit_benches::alloc_counter::{self, CountingAlloc};
use mqttkit_benches::{peers, samples};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[test]
fn counts_this_threads_allocations() {
    assert!(alloc_counter::is_installed());
    let (v, s) = alloc_counter::measure(|| {
        let mut v: Vec<u64> = Vec::with_capacity(4); // 1 alloc
        v.extend(0..100); // at least one realloc
        v
    });
    assert_eq!(s.allocs, 1);
    assert!(s.reallocs >= 1);
    assert!(s.bytes >= 800);
    assert_eq!(s.deallocs, 0);
    let ((), s) = alloc_counter::measure(|| drop(v));
    assert_eq!((s.allocs, s.deallocs), (0, 1));
    // Other threads do not show up in this thread's counters...
    let before_global = alloc_counter::global();
    let ((), s) = alloc_counter::measure(|| {
        std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 64]))).join().unwrap();
    });
    // ...(spawning itself allocates on this thread, the vec is on the other one).
    assert!(alloc_counter::global().since(before_global).allocs > s.allocs);
    assert_eq!(alloc_counter::allocs_per_op(10, || Box::new(1u8)), 1.0);
}

#[test]
fn allocations_per_packet() {
    for peer in peers::all() {
        eprintln!("== {}", peer.name);
        for s in samples::all() {
            let Some(case) = peer.case(s.class) else { continue };
            if peers::known_rejection(peer.name, s.name).is_some() {
                continue;
            }
            let (r, d) = (case.decode_allocs)(s.bytes);
            r.unwrap();
            let per = d.per_op(s.expect.packets);
            let enc = case.encode_allocs.map(|f| {
                let (r, e) = f(s.bytes);
                r.unwrap();
                e.per_op(1)
            });
            if peer.name == "mqttkit" {
                // The codec's promise: no allocation to decode or to encode
                // (into a buffer with room).
                assert_eq!(per, 0.0, "mqttkit decode of {} allocates", s.name);
                assert_eq!(enc.unwrap_or(0.0), 0.0, "mqttkit encode of {} allocates", s.name);
            }
            let enc = enc.map_or("-".to_string(), |e| format!("{e:.2}"));
            eprintln!("   {:<18} decode {per:>5.2}  encode {enc:>5} allocs/packet", s.name);
        }
    }
}

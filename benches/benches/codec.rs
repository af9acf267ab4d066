//! Codec benchmarks: mqttkit-codec vs. other Rust MQTT codecs, same bytes.
//!
//! ```text
//! cargo bench -p mqttkit-benches --bench codec            # default peers
//! cargo bench -p mqttkit-benches --bench codec --features peer-ntex
//! cargo run -p mqttkit-benches --release --bin bench-report   # -> benches/RESULTS.md
//! ```
//!
//! One criterion group per direction and sample — `decode/<sample>` and
//! `encode/<sample>` — holding the memcpy baseline, mqttkit and every peer
//! that supports the sample's class, all on the same bytes. Every benchmark
//! follows one pattern:
//!
//! * the input is one of `samples::all()` — never bytes produced by a codec;
//! * `Throughput::Bytes(sample length)`, so results compare across sizes (the
//!   report divides by the packets per sample for the per-packet time);
//! * decode: the peer's input is built by `peer::input()` outside the timed
//!   region. Borrowing decoders (mqttkit, mqttrs, mqtt-format) read the same
//!   input in every iteration; owned-buffer decoders (rumqttc, rmqtt-codec,
//!   ntex-mqtt) consume it, so they get a fresh one per iteration from the
//!   untimed setup of `iter_batched_ref`, in cache-sized batches (see
//!   [`batch_size`]); every stream decoder gets a fresh input too. The routine is `black_box(peer::decode_<sample class>(black_box(input)))`
//!   and the returned `Check` is asserted equal to `sample.expect` inside the
//!   timed loop — a decoder cannot be optimised away or silently fail;
//! * encode: a prepared packet (`peer::prepare_<class>`, untimed) is encoded
//!   into an output from `peer::output()`, reset with `peer::reset_output` in
//!   every iteration; the length written is asserted and the output passed
//!   through `black_box`. `mqttkit_vectored` (64 KiB PUBLISH only) is
//!   `Packet::encode_vectored`: header into the output, payload borrowed;
//! * `memcpy` copies the sample into a preallocated buffer (decode and encode);
//! * (peer, sample) pairs in `peers::KNOWN_REJECTIONS` are skipped.
//!
//! Timings run on the system allocator. Allocation counts come from the
//! report generator (`src/bin/bench-report.rs`), which installs
//! `alloc_counter::CountingAlloc` and runs every case once more, so the
//! counting does not distort timings.
//!
//! Measurement is kept short (warm-up 0.5 s, 1.5 s, 30 samples) so that the
//! whole suite runs in about 5 minutes on a 2-core machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mqttkit_benches::peers::{self, memcpy};
use mqttkit_benches::samples::{self, Class, Sample};

/// Inputs per timed batch for decoders that consume their input: enough to
/// amortise the timer read (~25 ns) to well under 1 ns per small packet, few
/// enough that the batch (at most ~1 MiB) stays in cache. Criterion's
/// `SmallInput` would batch millions of inputs (tens of MB), and the cache
/// misses would dominate the time of a 4-byte PUBACK.
fn batch_size(s: &Sample) -> BatchSize {
    if s.class.is_stream() {
        BatchSize::NumIterations(1)
    } else {
        BatchSize::NumIterations(((1 << 20) / s.bytes.len().max(1)).clamp(1, 256) as u64)
    }
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// `decode/<sample>` with `peer::$decode`. A decoder that only reads its
/// input decodes the same input in every iteration (`iter`); one that consumes
/// it gets a fresh one per iteration, built untimed (`iter_batched_ref`), as
/// do all stream decoders.
macro_rules! dec {
    ($g:ident, $s:ident, $peer:ident, $decode:ident) => {
        if peers::known_rejection(stringify!($peer), $s.name).is_none() {
            use peers::$peer as peer;
            if peer::DECODE_CONSUMES_INPUT || $s.class.is_stream() {
                $g.bench_function(stringify!($peer), |b| {
                    b.iter_batched_ref(
                        || peer::input($s.bytes),
                        |input| {
                            let check = black_box(peer::$decode(black_box(input))).unwrap();
                            assert_eq!(check, $s.expect);
                        },
                        batch_size(&$s),
                    )
                });
            } else {
                let mut input = peer::input($s.bytes);
                $g.bench_function(stringify!($peer), |b| {
                    b.iter(|| {
                        let check = black_box(peer::$decode(black_box(&mut input))).unwrap();
                        assert_eq!(check, $s.expect);
                    })
                });
            }
        }
    };
}

/// `encode/<sample>` with `peer::$prepare` (untimed) and `peer::$encode`.
macro_rules! enc {
    ($g:ident, $s:ident, $peer:ident, $prepare:ident, $encode:ident) => {
        if peers::known_rejection(stringify!($peer), $s.name).is_none() {
            use peers::$peer as peer;
            let p = peer::$prepare($s.bytes).unwrap();
            let mut out = peer::output();
            // Length of this peer's encoding (some peers choose another valid
            // form, e.g. a long PUBACK; tests/sanity.rs checks they round-trip).
            let want = peer::$encode(&p, &mut out).unwrap();
            $g.bench_function(stringify!($peer), |b| {
                b.iter(|| {
                    peer::reset_output(&mut out);
                    let n = peer::$encode(black_box(&p), &mut out).unwrap();
                    assert_eq!(n, want);
                    black_box(&mut out);
                })
            });
        }
    };
}

/// Invoke `$m!(g, s, <peer>, args...)` for mqttkit and every enabled peer with
/// 3.1.1 support.
macro_rules! v4_peers {
    ($m:ident, $g:ident, $s:ident, $($f:ident),+) => {
        $m!($g, $s, mqttkit, $($f),+);
        #[cfg(feature = "peer-rumqttc")]
        $m!($g, $s, rumqttc, $($f),+);
        #[cfg(feature = "peer-rmqtt")]
        $m!($g, $s, rmqtt, $($f),+);
        #[cfg(feature = "peer-mqttrs")]
        $m!($g, $s, mqttrs, $($f),+);
        #[cfg(feature = "peer-mqtt-format")]
        $m!($g, $s, mqtt_format, $($f),+);
        #[cfg(feature = "peer-ntex")]
        $m!($g, $s, ntex, $($f),+);
    };
}

/// Same for 5.0 (mqttrs and mqtt-format are 3.1.1 only).
macro_rules! v5_peers {
    ($m:ident, $g:ident, $s:ident, $($f:ident),+) => {
        $m!($g, $s, mqttkit, $($f),+);
        #[cfg(feature = "peer-rumqttc")]
        $m!($g, $s, rumqttc, $($f),+);
        #[cfg(feature = "peer-rmqtt")]
        $m!($g, $s, rmqtt, $($f),+);
        #[cfg(feature = "peer-ntex")]
        $m!($g, $s, ntex, $($f),+);
    };
}

fn group<'a>(c: &'a mut Criterion, direction: &str, s: &Sample) -> Group<'a> {
    let mut g = c.benchmark_group(format!("{direction}/{}", s.name));
    g.throughput(Throughput::Bytes(s.bytes.len() as u64));
    g
}

/// The physical reference: copy the sample into a preallocated buffer.
fn memcpy_baseline(g: &mut Group<'_>, s: &Sample) {
    let mut out = memcpy::output();
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            let n = memcpy::copy(black_box(s.bytes), &mut out);
            assert_eq!(n, s.bytes.len());
            black_box(&mut out);
        })
    });
}

fn decode(c: &mut Criterion) {
    for s in samples::all() {
        let mut g = group(c, "decode", &s);
        memcpy_baseline(&mut g, &s);
        match s.class {
            Class::PublishV4 => {
                v4_peers!(dec, g, s, decode_publish_v4);
            }
            Class::ConnectV4 => {
                v4_peers!(dec, g, s, decode_connect_v4);
            }
            Class::SubscribeV4 => {
                v4_peers!(dec, g, s, decode_subscribe_v4);
            }
            Class::PubackV4 => {
                v4_peers!(dec, g, s, decode_puback_v4);
            }
            Class::StreamV4 => {
                v4_peers!(dec, g, s, decode_stream_v4);
            }
            Class::PublishV5 => {
                v5_peers!(dec, g, s, decode_publish_v5);
            }
            Class::ConnectV5 => {
                v5_peers!(dec, g, s, decode_connect_v5);
            }
            Class::SubscribeV5 => {
                v5_peers!(dec, g, s, decode_subscribe_v5);
            }
            Class::PubackV5 => {
                v5_peers!(dec, g, s, decode_puback_v5);
            }
            Class::StreamV5 => {
                v5_peers!(dec, g, s, decode_stream_v5);
            }
        }
        g.finish();
    }
}

fn encode(c: &mut Criterion) {
    for s in samples::all() {
        if s.class.is_stream() {
            continue;
        }
        let mut g = group(c, "encode", &s);
        memcpy_baseline(&mut g, &s);
        match s.class {
            Class::PublishV4 => {
                v4_peers!(enc, g, s, prepare_publish_v4, encode_publish_v4);
            }
            Class::ConnectV4 => {
                v4_peers!(enc, g, s, prepare_connect_v4, encode_connect_v4);
            }
            Class::SubscribeV4 => {
                v4_peers!(enc, g, s, prepare_subscribe_v4, encode_subscribe_v4);
            }
            Class::PubackV4 => {
                v4_peers!(enc, g, s, prepare_puback_v4, encode_puback_v4);
            }
            Class::PublishV5 => {
                v5_peers!(enc, g, s, prepare_publish_v5, encode_publish_v5);
            }
            Class::ConnectV5 => {
                v5_peers!(enc, g, s, prepare_connect_v5, encode_connect_v5);
            }
            Class::SubscribeV5 => {
                v5_peers!(enc, g, s, prepare_subscribe_v5, encode_subscribe_v5);
            }
            Class::PubackV5 => {
                v5_peers!(enc, g, s, prepare_puback_v5, encode_puback_v5);
            }
            Class::StreamV4 | Class::StreamV5 => unreachable!(),
        }
        if s.name == "publish_v4_64k" {
            encode_vectored(&mut g, &s);
        }
        g.finish();
    }
}

/// `Packet::encode_vectored`: the header is written, the payload is returned
/// borrowed for a `writev` next to it (what a large PUBLISH is sent with).
fn encode_vectored(g: &mut Group<'_>, s: &Sample) {
    use peers::mqttkit as peer;
    let p = peer::prepare_publish_v4(s.bytes).unwrap();
    let mut head = peer::output();
    g.bench_function("mqttkit_vectored", |b| {
        b.iter(|| {
            peer::reset_output(&mut head);
            let (n, payload) = peer::encode_vectored_publish_v4(black_box(&p), &mut head).unwrap();
            assert_eq!(n + payload.len(), s.bytes.len());
            black_box((&mut head, payload));
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode, encode
}
criterion_main!(benches);

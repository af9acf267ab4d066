//! Run one adapter call in a loop, for a profiler. perf does not work on
//! every machine; callgrind does, and its instruction counts do not depend on
//! the machine's load:
//!
//! ```text
//! cargo build -p mqttkit-benches --profile bench --example profile
//! P=target/release/examples/profile
//! valgrind --tool=callgrind $P decode mqttkit publish_v4_31b 100000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -60
//! # instructions per call: only inside the measured call (or benches/callgrind.sh)
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='*measured_call*' \
//!     $P decode mqttrs puback_v4 20000
//! ```
//!
//! Arguments: `decode|encode`, codec (`mqttkit`, `mqttkit_vectored` for
//! encode, or a peer enabled by features), sample name (see
//! `samples::all()`), iterations. As in the benchmark, the input of a
//! borrowing decoder and every prepared packet and output are built once; a
//! consuming decoder (and every stream decoder) gets a fresh input per
//! iteration. `--baseline` runs the same loop, input building included,
//! without the codec call.
//!
//! Note: valgrind replaces `memcpy` with a simple loop, so instruction counts
//! of large copies (64 KiB payloads) are not representative.

use std::hint::black_box;

use mqttkit_benches::peers;
use mqttkit_benches::samples::{self, Class, Sample};

macro_rules! run_dec {
    ($peer:ident, $f:ident, $s:ident, $n:ident, $baseline:ident) => {{
        use peers::$peer as peer;
        let fresh = peer::DECODE_CONSUMES_INPUT || $s.class.is_stream();
        let mut input = peer::input($s.bytes);
        for _ in 0..$n {
            if fresh {
                input = peer::input($s.bytes);
            }
            if !$baseline {
                assert_eq!(measured_call(|| peer::$f(black_box(&mut input))).unwrap(), $s.expect);
            }
            black_box(&mut input);
        }
    }};
}

macro_rules! run_enc {
    ($peer:ident, $prepare:ident, $encode:ident, $s:ident, $n:ident, $baseline:ident) => {{
        use peers::$peer as peer;
        let p = peer::$prepare($s.bytes).unwrap();
        let mut out = peer::output();
        for _ in 0..$n {
            peer::reset_output(&mut out);
            if !$baseline {
                black_box(measured_call(|| peer::$encode(black_box(&p), &mut out)).unwrap());
            }
            black_box(&mut out);
        }
    }};
}

/// The codec call being measured, never inlined, so that callgrind can count exactly its
/// instructions (`--toggle-collect='*measured_call*'`, see `benches/callgrind.sh`).
#[inline(never)]
fn measured_call<R>(call: impl FnOnce() -> R) -> R {
    call()
}

/// Decode dispatch for a peer: `[Class => decode_fn, ...]`.
macro_rules! dec {
    ($peer:ident, $s:ident, $n:ident, $b:ident, [$($c:ident => $f:ident),*]) => {
        match $s.class {
            $(Class::$c => run_dec!($peer, $f, $s, $n, $b),)*
            #[allow(unreachable_patterns)]
            _ => panic!("{} does not decode {}", stringify!($peer), $s.name),
        }
    };
}

/// Encode dispatch for a peer: `[Class => prepare_fn, encode_fn; ...]`.
macro_rules! enc {
    ($peer:ident, $s:ident, $n:ident, $b:ident, [$($c:ident => $p:ident, $f:ident);*]) => {
        match $s.class {
            $(Class::$c => run_enc!($peer, $p, $f, $s, $n, $b),)*
            #[allow(unreachable_patterns)]
            _ => panic!("{} does not encode {}", stringify!($peer), $s.name),
        }
    };
}

#[allow(unused_macros)] // unused without the 3.1.1-only peers
macro_rules! v4_dec {
    ($peer:ident, $s:ident, $n:ident, $b:ident) => {
        dec!($peer, $s, $n, $b, [
            PublishV4 => decode_publish_v4, ConnectV4 => decode_connect_v4, SubscribeV4 => decode_subscribe_v4,
            PubackV4 => decode_puback_v4, StreamV4 => decode_stream_v4
        ])
    };
}
macro_rules! all_dec {
    ($peer:ident, $s:ident, $n:ident, $b:ident) => {
        dec!($peer, $s, $n, $b, [
            PublishV4 => decode_publish_v4, ConnectV4 => decode_connect_v4, SubscribeV4 => decode_subscribe_v4,
            PubackV4 => decode_puback_v4, StreamV4 => decode_stream_v4,
            PublishV5 => decode_publish_v5, ConnectV5 => decode_connect_v5, SubscribeV5 => decode_subscribe_v5,
            PubackV5 => decode_puback_v5, StreamV5 => decode_stream_v5
        ])
    };
}
#[allow(unused_macros)]
macro_rules! v4_enc {
    ($peer:ident, $s:ident, $n:ident, $b:ident) => {
        enc!($peer, $s, $n, $b, [
            PublishV4 => prepare_publish_v4, encode_publish_v4; ConnectV4 => prepare_connect_v4, encode_connect_v4;
            SubscribeV4 => prepare_subscribe_v4, encode_subscribe_v4; PubackV4 => prepare_puback_v4, encode_puback_v4
        ])
    };
}
macro_rules! all_enc {
    ($peer:ident, $s:ident, $n:ident, $b:ident) => {
        enc!($peer, $s, $n, $b, [
            PublishV4 => prepare_publish_v4, encode_publish_v4; ConnectV4 => prepare_connect_v4, encode_connect_v4;
            SubscribeV4 => prepare_subscribe_v4, encode_subscribe_v4; PubackV4 => prepare_puback_v4, encode_puback_v4;
            PublishV5 => prepare_publish_v5, encode_publish_v5; ConnectV5 => prepare_connect_v5, encode_connect_v5;
            SubscribeV5 => prepare_subscribe_v5, encode_subscribe_v5; PubackV5 => prepare_puback_v5, encode_puback_v5
        ])
    };
}

fn decode(peer: &str, s: Sample, n: u64, b: bool) {
    match peer {
        "mqttkit" => all_dec!(mqttkit, s, n, b),
        #[cfg(feature = "peer-rumqttc")]
        "rumqttc" => all_dec!(rumqttc, s, n, b),
        #[cfg(feature = "peer-rmqtt")]
        "rmqtt" => all_dec!(rmqtt, s, n, b),
        #[cfg(feature = "peer-ntex")]
        "ntex" => all_dec!(ntex, s, n, b),
        #[cfg(feature = "peer-mqttrs")]
        "mqttrs" => v4_dec!(mqttrs, s, n, b),
        #[cfg(feature = "peer-mqtt-format")]
        "mqtt_format" => v4_dec!(mqtt_format, s, n, b),
        other => panic!("unknown or disabled codec {other}"),
    }
}

fn encode(peer: &str, s: Sample, n: u64, b: bool) {
    match peer {
        "mqttkit" => all_enc!(mqttkit, s, n, b),
        "mqttkit_vectored" => enc!(mqttkit, s, n, b, [
            PublishV4 => prepare_publish_v4, encode_vectored_publish_v4;
            PublishV5 => prepare_publish_v5, encode_vectored_publish_v5
        ]),
        #[cfg(feature = "peer-rumqttc")]
        "rumqttc" => all_enc!(rumqttc, s, n, b),
        #[cfg(feature = "peer-rmqtt")]
        "rmqtt" => all_enc!(rmqtt, s, n, b),
        #[cfg(feature = "peer-ntex")]
        "ntex" => all_enc!(ntex, s, n, b),
        #[cfg(feature = "peer-mqttrs")]
        "mqttrs" => v4_enc!(mqttrs, s, n, b),
        #[cfg(feature = "peer-mqtt-format")]
        "mqtt_format" => v4_enc!(mqtt_format, s, n, b),
        other => panic!("unknown or disabled codec {other}"),
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let baseline = args.iter().any(|a| a == "--baseline");
    args.retain(|a| a != "--baseline");
    let [dir, peer, sample, iters] = &args[..] else {
        eprintln!("usage: profile [--baseline] decode|encode <codec> <sample> <iterations>");
        std::process::exit(2);
    };
    let n: u64 = iters.parse().expect("iterations");
    let s = samples::by_name(sample);
    match dir.as_str() {
        "decode" => decode(peer, s, n, baseline),
        "encode" => encode(peer, s, n, baseline),
        _ => panic!("decode or encode"),
    }
}

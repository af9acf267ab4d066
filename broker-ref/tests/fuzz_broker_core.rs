//! Replays the `broker_core` fuzz corpus (`fuzz/corpus/broker_core/`) and a few hundred
//! pseudo-random inputs (fixed seed) through `mqttkit_broker::fuzzing::run_ops`, so the
//! invariants of the fuzz target are exercised by `cargo test` on stable.

use std::path::PathBuf;

use mqttkit_broker::fuzzing::run_ops;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/broker_core")
}

#[test]
fn replay_corpus() {
    let dir = std::fs::read_dir(corpus_dir()).unwrap_or_else(|e| panic!("corpus {}: {e}", corpus_dir().display()));
    let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", corpus_dir().display());
    for file in &files {
        let data = std::fs::read(file).unwrap();
        run_ops(&data);
    }
    eprintln!("replayed {} corpus files", files.len());
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn pseudo_random_inputs() {
    let mut rng = Rng(0x6d71_7474_6b69_7421);
    for _ in 0..400 {
        let len = 16 + (rng.next() % 1500) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(path) = std::env::var_os("MQTTKIT_FUZZ_DUMP") {
            // Keep the input being run, to replay a failure with `replay_file`.
            std::fs::write(path, &data).unwrap();
        }
        run_ops(&data);
    }
}

/// Run one input (e.g. a crash artifact) with an optional trace:
/// `MQTTKIT_FUZZ_REPLAY=path [MQTTKIT_FUZZ_TRACE=1] cargo test -p mqttkit-broker --test
/// fuzz_broker_core replay_file -- --ignored --nocapture`.
#[test]
#[ignore = "needs MQTTKIT_FUZZ_REPLAY=<input file>; see the doc comment"]
fn replay_file() {
    let path = std::env::var_os("MQTTKIT_FUZZ_REPLAY").expect("set MQTTKIT_FUZZ_REPLAY to the input to replay");
    run_ops(&std::fs::read(path).unwrap());
}

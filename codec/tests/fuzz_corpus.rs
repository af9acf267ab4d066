//! Replays the committed fuzz seed corpora (`fuzz/corpus/<target>/`) through the fuzz
//! target bodies on stable Rust, as part of plain `cargo test`. Every file goes through
//! every target (each accepts arbitrary bytes), not only its own.
//!
//! To replay other inputs too — a corpus grown by `cargo fuzz run`, or crash artifacts —
//! point `MQTTKIT_FUZZ_REPLAY` at a directory (relative to the repository root) laid out
//! like `fuzz/corpus` (one sub-directory per target) or like `fuzz/artifacts`:
//!
//! ```text
//! MQTTKIT_FUZZ_REPLAY=fuzz/corpus-grown cargo test -p mqttkit-codec --test fuzz_corpus
//! ```

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use mqttkit_codec::fuzz_targets;

/// A fuzz target: its name (and corpus directory) and its body.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 3] = [
    ("decode", fuzz_targets::decode),
    ("roundtrip", fuzz_targets::roundtrip),
    ("stream_split", fuzz_targets::stream_split),
];

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("directory entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn seed_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let files = files_in(&dir);
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

fn replay(body: fn(&[u8]), target: &str, files: &[PathBuf]) {
    let mut failures = Vec::new();
    for file in files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if panic::catch_unwind(|| body(&data)).is_err() {
            failures.push(file.display().to_string());
        }
    }
    assert!(failures.is_empty(), "target {target} panicked on: {failures:#?}");
}

fn replay_all_seeds_through(target: &str) {
    let (_, body) = TARGETS.into_iter().find(|(name, _)| *name == target).expect("known target");
    for (corpus, _) in TARGETS {
        replay(body, target, &seed_files(corpus));
    }
    if let Some(extra) = std::env::var_os("MQTTKIT_FUZZ_REPLAY") {
        // Relative to the repository root (tests run in codec/).
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(extra);
        assert!(root.is_dir(), "MQTTKIT_FUZZ_REPLAY: no directory {}", root.display());
        let files = files_in(&root.join(target));
        println!("replaying {} extra inputs for {target}", files.len());
        replay(body, target, &files);
    }
}

#[test]
fn decode_replays_seed_corpora() {
    replay_all_seeds_through("decode");
}

#[test]
fn roundtrip_replays_seed_corpora() {
    replay_all_seeds_through("roundtrip");
}

#[test]
fn stream_split_replays_seed_corpora() {
    replay_all_seeds_through("stream_split");
}

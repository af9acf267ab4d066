#![no_main]
// Body: mqttkit_codec::fuzz_targets::stream_split (replayed on stable by codec/tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqttkit_codec::fuzz_targets::stream_split(data));

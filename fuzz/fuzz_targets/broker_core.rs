#![no_main]
// Body: mqttkit_broker::fuzzing::run_ops (replayed on stable by broker-ref/tests/fuzz_broker_core.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqttkit_broker::fuzzing::run_ops(data));

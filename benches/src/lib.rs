//! Benchmark support crate: hand-built MQTT sample packets, per-peer adapters
//! (other Rust MQTT codecs) and an allocation counter.
//!
//! Every adapter decodes the *same bytes* from [`samples`] and returns a
//! [`Check`] that proves the decode really happened; the benchmark loop compares
//! it with the sample's expected `Check` on every iteration.

pub mod alloc_counter;
pub mod check;
pub mod peers;
pub mod samples;

pub use check::Check;

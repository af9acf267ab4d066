//! # mqttkit-client
//!
//! The reference MQTT client of mqttkit, for MQTT 3.1, 3.1.1 and 5.0, built on
//! `mqttkit-codec` (every packet from the server is fully validated).
//!
//! * [`core`]: a sans-IO, deterministic client state machine (no sockets, no clock: every
//!   call takes `now`; outputs are bytes to send, the next deadline, and events).
//! * [`Client`]: a tokio front end: `Client::connect(options).await`, then `publish`,
//!   `subscribe`, `unsubscribe`, a message stream, connection events, `disconnect`.
//! * [`transport`]: `mqtt://`, `mqtts://` (rustls), `ws://`, `wss://`.
//! * [`bench`]: a broker load generator on the core (`mqttkit bench`).

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]

pub mod bench;
pub mod core;
mod error;
mod message;
mod net;
mod options;
pub mod transport;

pub use crate::error::{ConnectError, OptionsError, PublishError, RequestError};
pub use crate::message::{
    CloseReason, Connected, ConnectionEvent, LostReason, Message, Publication, PublishProperties, RequestProperties,
    Subscription, Topic, describe_connack,
};
pub use crate::net::{Client, Events, Messages, PublishToken};
pub use crate::options::{Backoff, ConnectProperties, EventHandler, Options, Will};
pub use mqttkit_codec::{ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionOptions};

/// The README's examples, compiled as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    /// The first Rust block of `text` after `heading`.
    fn rust_block<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
        let section = text.get(text.find(heading)?..)?;
        let start = section.find("```rust")?;
        let body = section.get(start..)?;
        let body = body.get(body.find('\n')? + 1..)?;
        body.get(..body.find("```")?)
    }

    /// The root README shows the client's quick start as `ignore` (the codec runs that
    /// README's blocks as its own doctests, without this crate); this crate's README holds
    /// the same code, compiled.
    #[test]
    fn root_readme_quick_start_is_the_compiled_one() {
        let root = include_str!("../../README.md");
        let ours = include_str!("../README.md");
        let shown = rust_block(root, "## The client").expect("a Rust block in the root README");
        let compiled = rust_block(ours, "## Quick start").expect("a Rust block in the client README");
        assert_eq!(shown, compiled);
    }
}

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

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]

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

//! # mqttkit-broker
//!
//! The reference MQTT broker of mqttkit, for MQTT 3.1, 3.1.1 and 5.0.
//!
//! * [`core`]: a sans-IO, deterministic protocol state machine (no sockets, no clock:
//!   every call takes `now`), in the style of `quinn-proto`.
//! * [`net`]: a tokio front end on one thread: a task per connection reads into a
//!   shared buffer, hands the bytes to the core and writes what the core queued with
//!   vectored writes.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mqttkit_broker::{Broker, Config};
//! let config = Config { listen: "127.0.0.1:0".into(), ..Config::default() };
//! let broker = Broker::start(config).await?;
//! println!("listening on {}", broker.local_addr());
//! broker.shutdown().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod core;
#[cfg(any(test, feature = "_test-support"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod listeners;
pub mod log;
pub mod net;
pub mod persist;
#[cfg(any(test, feature = "_test-support"))]
#[doc(hidden)]
pub mod testing;

pub use crate::config::Config;
pub use crate::net::{Broker, BrokerHandle};

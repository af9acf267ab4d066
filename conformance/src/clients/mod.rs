//! The client role: the runner plays the broker and checks MQTT client libraries.
//!
//! `mqttkit-conformance client [DRIVER]` listens on an ephemeral 127.0.0.1 port for each
//! scenario run, starts the client under test through a driver ([`driver`]: the embedded
//! mqttkit-client by default, or a program speaking JSON lines), plays the server's part
//! from a client scenario ([`scenario`], `conformance/client-scenarios/`), and checks what
//! the client sends (the shared matcher over [`crate::observed::Observed`]) and what the
//! library reports to its application. Verdicts, reports and the statement catalogue are
//! the broker side's; coverage counts the statements that bind a client and that a server
//! can observe ([`coverage`]).

pub mod cli;
pub mod connection;
pub mod coverage;
pub mod driver;
pub mod engine;
pub mod scenario;
mod steps;

pub use cli::ClientArgs;
pub use driver::{Driver, DriverIo, embedded_driver};
pub use engine::{ClientConfig, run};
pub use scenario::{ClientScenario, load};

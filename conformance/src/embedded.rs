//! The boundary to the in-process reference broker (`mqttkit-broker`), started when no
//! broker address is given.
//!
//! It listens on `127.0.0.1:0`; the guard returned keeps it running for the whole run.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;

/// A running in-process broker; dropping it stops the broker.
pub struct EmbeddedBroker {
    /// Where it listens (an ephemeral port on 127.0.0.1).
    pub address: SocketAddr,
    /// Keeps the broker alive; its `Drop` shuts the broker down.
    pub guard: Box<dyn Any + Send>,
    /// Name and version for reports.
    pub description: String,
    /// A topic its ACL refuses to publish to (for scenarios that need one).
    pub refused_topic: String,
}

/// The topic the embedded broker's ACL refuses publishes on.
pub const REFUSED_TOPIC: &str = "mqttkit-conformance/refused";

/// The configuration the embedded broker runs with: defaults, an ephemeral 127.0.0.1 port,
/// and [`REFUSED_TOPIC`] denied for publishing.
pub fn embedded_config() -> mqttkit_broker::Config {
    let mut config = mqttkit_broker::Config { listen: "127.0.0.1:0".into(), ..mqttkit_broker::Config::default() };
    config.acl.deny_publish.push(format!("{REFUSED_TOPIC}/#"));
    config
}

impl fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("address", &self.address)
            .field("description", &self.description)
            .finish()
    }
}

/// Why the embedded broker is not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddedError {
    /// This build has no embedded broker.
    NotAvailable(String),
    /// It exists but failed to start.
    Failed(String),
}

impl fmt::Display for EmbeddedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAvailable(why) => write!(f, "the embedded reference broker is not available: {why}"),
            Self::Failed(why) => write!(f, "the embedded reference broker failed to start: {why}"),
        }
    }
}

/// Start the reference broker in-process on an ephemeral 127.0.0.1 port. The returned
/// guard owns the broker; dropping it stops the broker.
pub async fn start_embedded() -> Result<EmbeddedBroker, EmbeddedError> {
    let handle =
        mqttkit_broker::Broker::start(embedded_config()).await.map_err(|e| EmbeddedError::Failed(e.to_string()))?;
    Ok(EmbeddedBroker {
        address: handle.local_addr(),
        guard: Box::new(handle),
        description: format!("mqttkit-broker {} (embedded)", env!("CARGO_PKG_VERSION")),
        refused_topic: REFUSED_TOPIC.into(),
    })
}

//! Connection options, with the names and defaults of paho.mqtt.golang where it has them.
//!
//! One [`Options`] value configures both layers: the sans-IO [`crate::core::Core`] reads
//! the protocol fields and ignores the transport ones (`servers`, `tls`), which the tokio
//! front end ([`crate::Client`]) uses to open connections.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqttkit_codec::{ProtocolVersion, QoS};

use crate::message::{ConnectionEvent, PublishProperties, Topic};
use crate::transport::TlsOptions;

/// The Will message (§3.1.2.5): published by the server when the connection ends without
/// a normal DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Will Topic.
    pub topic: Topic,
    /// Will Payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// 5.0 Will Delay Interval, seconds.
    pub delay_interval: Option<u32>,
    /// 5.0 Will Properties shared with PUBLISH (payload format, expiry, content type,
    /// response topic, correlation data, user properties).
    pub properties: PublishProperties,
}

impl Will {
    /// A will with no properties.
    pub fn new(topic: impl Into<Topic>, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            delay_interval: None,
            properties: PublishProperties::default(),
        }
    }
}

/// 5.0 CONNECT properties (§3.1.2.11) other than the session expiry interval, which is
/// [`Options::session_expiry_interval`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// Receive Maximum: QoS 1/2 publications the server may have unacknowledged towards
    /// us (default 65,535).
    pub receive_maximum: Option<u16>,
    /// Maximum Packet Size we accept. Also the limit the decoder enforces (default: the
    /// protocol's 268,435,460 bytes).
    pub maximum_packet_size: Option<u32>,
    /// Topic Alias Maximum: aliases the server may use towards us (default 0: none).
    pub topic_alias_maximum: Option<u16>,
    /// Request Response Information.
    pub request_response_information: Option<bool>,
    /// Request Problem Information.
    pub request_problem_information: Option<bool>,
    /// User Properties, in order.
    pub user_properties: Vec<(String, String)>,
}

/// Capped exponential back-off between reconnection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first attempt after a failure.
    pub initial: Duration,
    /// Upper bound of the delay (it doubles after every failed attempt).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(120) }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << shift).min(self.max)
    }
}

/// A callback for connection events (paho's on-connect / connection-lost handlers).
pub type EventHandler = Arc<dyn Fn(&ConnectionEvent) + Send + Sync>;

/// Everything a client needs to connect. Build with [`Options::new`] and the chained
/// setters; all fields are public.
#[derive(Clone)]
pub struct Options {
    /// Broker URLs (`mqtt://`, `mqtts://`, `ws://`, `wss://`, or bare `host:port`), tried
    /// in turn when connecting and reconnecting.
    pub servers: Vec<String>,
    /// TLS settings for `mqtts://` and `wss://`.
    pub tls: TlsOptions,
    /// Protocol version (default 3.1.1, like paho.mqtt.golang and mosquitto_pub).
    pub version: ProtocolVersion,
    /// Client Identifier; empty asks the server to assign one (5.0 reports it in
    /// [`crate::Connected::assigned_client_id`]).
    pub client_id: String,
    /// Clean Start (3.1.1: Clean Session). Default true.
    pub clean_start: bool,
    /// 5.0 Session Expiry Interval, seconds (absent means 0: the session ends with the
    /// connection).
    pub session_expiry_interval: Option<u32>,
    /// Keep Alive (whole seconds, at most 65,535; zero turns keep-alive off). Default 60 s.
    pub keep_alive: Duration,
    /// How long to wait for PINGRESP before declaring the connection lost. Default 10 s.
    pub ping_timeout: Duration,
    /// Bound on opening the transport and on waiting for CONNACK. Default 30 s.
    pub connect_timeout: Duration,
    /// User Name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// Will message.
    pub will: Option<Will>,
    /// 5.0 CONNECT properties.
    pub properties: ConnectProperties,
    /// Reconnect (with [`Self::backoff`]) after an established connection is lost.
    /// Default true.
    pub auto_reconnect: bool,
    /// Retry the first connection with back-off instead of failing
    /// [`crate::Client::connect`]. Default false.
    pub connect_retry: bool,
    /// Back-off between attempts.
    pub backoff: Backoff,
    /// After reconnecting without a session on the server, subscribe again to every
    /// filter subscribed so far. Default true.
    pub resubscribe: bool,
    /// Most QoS 1/2 publications in flight at once, below the server's Receive Maximum
    /// (which 3.1.1 servers cannot announce). Default 65,535: only the server's limit.
    pub max_inflight: u16,
    /// 5.0: replace repeated topic names by Topic Aliases, up to the server's Topic Alias
    /// Maximum. Default false.
    pub topic_aliases: bool,
    /// Messages buffered between the connection and [`crate::Messages`] (back-pressure:
    /// the connection stops reading while it is full). Default 1024.
    pub message_buffer: usize,
    /// Requests (publish, subscribe, …) buffered towards the connection. Default 1024.
    pub request_buffer: usize,
    /// Publications the core holds before it stops taking new ones (waiting for
    /// acknowledgements or a connection); callers then wait. Default 10,000.
    pub max_queued: usize,
    /// Called on every connection event (connected, lost, reconnecting, closed).
    pub on_event: Option<EventHandler>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("servers", &self.servers)
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("session_expiry_interval", &self.session_expiry_interval)
            .field("keep_alive", &self.keep_alive)
            .field("ping_timeout", &self.ping_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("will", &self.will)
            .field("properties", &self.properties)
            .field("auto_reconnect", &self.auto_reconnect)
            .field("connect_retry", &self.connect_retry)
            .field("backoff", &self.backoff)
            .field("resubscribe", &self.resubscribe)
            .field("max_inflight", &self.max_inflight)
            .field("topic_aliases", &self.topic_aliases)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            tls: TlsOptions::default(),
            version: ProtocolVersion::V3_1_1,
            client_id: String::new(),
            clean_start: true,
            session_expiry_interval: None,
            keep_alive: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            username: None,
            password: None,
            will: None,
            properties: ConnectProperties::default(),
            auto_reconnect: true,
            connect_retry: false,
            backoff: Backoff::default(),
            resubscribe: true,
            max_inflight: u16::MAX,
            topic_aliases: false,
            message_buffer: 1024,
            request_buffer: 1024,
            max_queued: 10_000,
            on_event: None,
        }
    }
}

impl Options {
    /// Options for one broker URL, everything else default.
    pub fn new(server: impl Into<String>) -> Self {
        Self { servers: vec![server.into()], ..Self::default() }
    }

    /// Add another broker URL (tried after the previous ones).
    #[must_use]
    pub fn server(mut self, url: impl Into<String>) -> Self {
        self.servers.push(url.into());
        self
    }

    /// Protocol version.
    #[must_use]
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// Client Identifier (empty: server-assigned).
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Clean Start / Clean Session.
    #[must_use]
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.clean_start = clean;
        self
    }

    /// 5.0 Session Expiry Interval in seconds.
    #[must_use]
    pub fn session_expiry_interval(mut self, seconds: u32) -> Self {
        self.session_expiry_interval = Some(seconds);
        self
    }

    /// Keep Alive.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Ping timeout.
    #[must_use]
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// Connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// User name and password.
    #[must_use]
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<Bytes>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Will message.
    #[must_use]
    pub fn will(mut self, will: Will) -> Self {
        self.will = Some(will);
        self
    }

    /// TLS settings.
    #[must_use]
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Automatic reconnection after a lost connection.
    #[must_use]
    pub fn auto_reconnect(mut self, on: bool) -> Self {
        self.auto_reconnect = on;
        self
    }

    /// Retry the first connection instead of failing.
    #[must_use]
    pub fn connect_retry(mut self, on: bool) -> Self {
        self.connect_retry = on;
        self
    }

    /// Back-off between attempts.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff { initial, max };
        self
    }

    /// Most QoS 1/2 publications in flight at once.
    #[must_use]
    pub fn max_inflight(mut self, max: u16) -> Self {
        self.max_inflight = max;
        self
    }

    /// Messages buffered towards [`crate::Messages`].
    #[must_use]
    pub fn message_buffer(mut self, messages: usize) -> Self {
        self.message_buffer = messages;
        self
    }

    /// Use outgoing Topic Aliases (5.0).
    #[must_use]
    pub fn topic_aliases(mut self, on: bool) -> Self {
        self.topic_aliases = on;
        self
    }

    /// Call `handler` on every connection event.
    #[must_use]
    pub fn on_event(mut self, handler: impl Fn(&ConnectionEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(handler));
        self
    }

    /// Keep Alive in whole seconds as sent in CONNECT.
    pub(crate) fn keep_alive_secs(&self) -> Result<u16, crate::OptionsError> {
        u16::try_from(self.keep_alive.as_secs()).map_err(|_| crate::OptionsError::KeepAliveTooLong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        let delays: Vec<_> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(1000), Duration::from_secs(1));
    }
}

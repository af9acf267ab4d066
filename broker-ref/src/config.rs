//! Broker configuration (TOML file, every field optional with a default).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Limits and features of the broker. Every field has a default, so a config file only
/// lists what it changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (the binary's `--listen` overrides it).
    pub listen: String,
    /// Maximum simultaneous connections; further clients get CONNACK "Server unavailable" /
    /// 0x97 "Quota exceeded" and are closed.
    pub max_connections: usize,
    /// Largest packet accepted from a client, fixed header included (advertised as
    /// Maximum Packet Size in 5.0).
    pub max_packet_size: u32,
    /// Our Receive Maximum: QoS 2 PUBLISH packets a client may have unreleased at once.
    pub receive_maximum: u16,
    /// Outgoing QoS 1/2 window of 3.1 / 3.1.1 clients, which have no Receive Maximum
    /// (default 65,535, like a 5.0 client that sends none, whose window the standard sets
    /// to 65,535). What waits for the socket is bounded by `max_outbound_bytes`; a small
    /// window makes a subscriber wait for its acknowledgements' round trip.
    pub max_inflight: u16,
    /// Messages queued per session (offline, or online beyond the in-flight window).
    /// When full, newly arriving messages for that session are dropped (drop-newest).
    pub max_queued_messages: usize,
    /// Longest accepted topic name / filter in bytes.
    pub max_topic_length: usize,
    /// Most levels in a topic name / filter.
    pub max_topic_levels: usize,
    /// Seconds a new connection has to send CONNECT.
    pub connect_timeout_secs: u64,
    /// Server Keep Alive sent to 5.0 clients in CONNACK, seconds: when set, it replaces the
    /// client's Keep Alive for both sides (0 disables keep-alive checking) [MQTT-3.2.2-21].
    /// Unset: the client's value is used [MQTT-3.2.2-22]. 3.1 / 3.1.1 clients always use
    /// their own value (the protocol cannot tell them another one).
    pub server_keep_alive: Option<u16>,
    /// Topic Alias Maximum advertised to 5.0 clients (0 disables aliases).
    pub topic_alias_maximum: u16,
    /// Highest QoS accepted in PUBLISH (advertised as Maximum QoS when below 2).
    pub maximum_qos: u8,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Upper bound on a 5.0 session expiry interval, seconds.
    pub max_session_expiry_secs: u32,
    /// Prefix of the Response Information returned when a client requests it
    /// (the client id is appended). Empty: never return Response Information.
    pub response_information: String,
    /// Interval of the `$SYS` publications in seconds (0 disables them).
    pub sys_interval_secs: u64,
    /// Bytes waiting to be written to one connection above which it is "full": new QoS 0
    /// messages for it are dropped (and counted), QoS 1/2 messages wait in its session
    /// queue, and the broker stops reading from it until it drains.
    pub max_outbound_bytes: usize,
    /// Seconds a connection with bytes waiting may accept none before it is closed as a
    /// slow consumer (a client that keeps reading, however slowly, is never closed).
    pub write_timeout_secs: u64,
    /// Allow clients without a user name (only relevant with a password file).
    pub allow_anonymous: bool,
    /// Optional password file: one `user:password` per line, `#` comments.
    pub password_file: Option<String>,
    /// Inline users (user name → password), merged with the password file.
    pub users: BTreeMap<String, String>,
    /// Access control.
    pub acl: AclConfig,
}

/// Deny lists, checked against every client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AclConfig {
    /// Topic filters nobody may publish to (PUBACK/PUBREC 0x87, message dropped).
    pub deny_publish: Vec<String>,
    /// Topic filters nobody may subscribe to (SUBACK 0x87 / 0x80); messages on matching
    /// topics are also never delivered to wildcard subscriptions.
    pub deny_subscribe: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:1883".into(),
            max_connections: 10_000,
            max_packet_size: 1024 * 1024,
            receive_maximum: 100,
            max_inflight: u16::MAX,
            max_queued_messages: 1000,
            max_topic_length: 1024,
            max_topic_levels: 32,
            connect_timeout_secs: 10,
            server_keep_alive: None,
            topic_alias_maximum: 10,
            maximum_qos: 2,
            retain_available: true,
            max_session_expiry_secs: u32::MAX,
            response_information: "response/".into(),
            sys_interval_secs: 10,
            max_outbound_bytes: 1024 * 1024,
            write_timeout_secs: 30,
            allow_anonymous: true,
            password_file: None,
            users: BTreeMap::new(),
            acl: AclConfig::default(),
        }
    }
}

/// A configuration file could not be used.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parse a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("invalid config: {e}")))
    }

    /// Read a TOML file, then the password file it names (if any).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let mut config = Self::from_toml(&text)?;
        config.load_password_file()?;
        Ok(config)
    }

    /// Merge the password file into `users`.
    pub fn load_password_file(&mut self) -> Result<(), ConfigError> {
        let Some(file) = &self.password_file else { return Ok(()) };
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError(format!("{file}: {e}")))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (user, pass) =
                line.split_once(':').ok_or_else(|| ConfigError(format!("{file}: expected user:password")))?;
            self.users.insert(user.to_owned(), pass.to_owned());
        }
        Ok(())
    }

    /// Whether user names/passwords are checked.
    pub fn auth_enabled(&self) -> bool {
        !self.users.is_empty() || self.password_file.is_some()
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs.max(1))
    }

    /// The decoder limit: at least the smallest useful packet.
    pub(crate) fn max_packet_size_usize(&self) -> usize {
        usize::try_from(self.max_packet_size.max(16)).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toml_with_defaults() {
        let c = Config::from_toml(
            r#"
            max_connections = 5
            [acl]
            deny_publish = ["secret/#"]
            [users]
            alice = "pw"
            "#,
        )
        .unwrap();
        assert_eq!(c.max_connections, 5);
        assert_eq!(c.receive_maximum, Config::default().receive_maximum);
        assert_eq!(c.acl.deny_publish, ["secret/#"]);
        assert!(c.auth_enabled());
        assert!(Config::from_toml("bogus = 1").is_err());
    }

    #[test]
    fn reads_password_file() {
        let dir = std::env::temp_dir().join(format!("mqttkit-broker-pw-{}", std::process::id()));
        std::fs::write(&dir, "# users\nbob:secret\n").unwrap();
        let mut c = Config { password_file: Some(dir.display().to_string()), ..Config::default() };
        c.load_password_file().unwrap();
        assert_eq!(c.users.get("bob").map(String::as_str), Some("secret"));
        let _ = std::fs::remove_file(dir);
    }
}

//! Broker configuration (TOML file, every field optional with a default).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::admin::AdminConfig;
use crate::auth::{AclFile, PasswordHash, password};
use crate::listeners::{ListenerConfig, Transport};

/// Limits and features of the broker. Every field has a default, so a config file only
/// lists what it changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the plain MQTT listener used when no `[[listener]]` is configured (the
    /// binary's `--listen` overrides it).
    pub listen: String,
    /// Listeners (`[[listener]]` tables): MQTT over TCP, TLS, WebSocket or WebSocket over
    /// TLS. Empty: one plain MQTT listener on `listen`.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
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
    /// Use it to impose one keep alive on every 5.0 client; use `max_keepalive` to cap.
    pub server_keep_alive: Option<u16>,
    /// Largest keep alive accepted from 5.0 clients, seconds: a client asking for more, or
    /// for 0 (no keep alive), is sent this value as Server Keep Alive and held to it; one
    /// asking for less keeps its own (no Server Keep Alive is sent). 3.1 / 3.1.1 clients
    /// keep their own value. Like mosquitto's `max_keepalive`.
    pub max_keepalive: Option<u16>,
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
    /// Optional password file: `user:HASH` lines as written by `mqttkit-broker passwd`
    /// (or `mosquitto_passwd`), `#` comments. Plain-text passwords are refused.
    pub password_file: Option<String>,
    /// Inline users (user name → password hash, as in the password file), merged with the
    /// password file.
    pub users: BTreeMap<String, String>,
    /// Global deny lists.
    pub acl: AclConfig,
    /// Optional ACL file in mosquitto's `acl_file` format (per user and per client id,
    /// read / write / readwrite / deny). With one, everything it does not grant is refused.
    pub acl_file: Option<String>,
    /// The parsed ACL file (read by [`Config::load_files`]).
    #[serde(skip)]
    pub acl_rules: Option<Arc<AclFile>>,
    /// Publish `$SYS/broker/clients/list` (client ids, peer addresses, subscriptions).
    /// Off by default: it tells any client that may read `$SYS` who else is connected and
    /// from where; the management API has the same list behind its credentials.
    pub sys_client_list: bool,
    /// File of the persistent store (retained messages, persistent sessions with their
    /// queued and in-flight messages, pending wills). Unset: nothing survives a restart.
    pub persistence: Option<String>,
    /// The management API and dashboard (`[admin]`); off unless the table is present.
    pub admin: Option<AdminConfig>,
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
            max_keepalive: None,
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
            acl_file: None,
            acl_rules: None,
            sys_client_list: false,
            persistence: None,
            admin: None,
            listeners: Vec::new(),
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

    /// Read a TOML file, then the files it names (password and ACL files), and check it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let mut config = Self::from_toml(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))?;
        config.load_files()?;
        Ok(config)
    }

    /// Merge the password file into `users`, read the ACL file, and check the
    /// configuration. Errors name the file and line at fault.
    pub fn load_files(&mut self) -> Result<(), ConfigError> {
        if let Some(file) = &self.password_file {
            let text = std::fs::read_to_string(file).map_err(|e| ConfigError(format!("{file}: {e}")))?;
            let users = password::parse_password_file(&text).map_err(|e| ConfigError(format!("{file}: {e}")))?;
            for (user, hash) in users {
                self.users.insert(user, hash.to_string());
            }
        }
        if let Some(file) = &self.acl_file
            && self.acl_rules.is_none()
        {
            let text = std::fs::read_to_string(file).map_err(|e| ConfigError(format!("{file}: {e}")))?;
            let rules = AclFile::parse(&text).map_err(|e| ConfigError(format!("{file}: {e}")))?;
            self.acl_rules = Some(Arc::new(rules));
        }
        self.validate()
    }

    /// Check what serde cannot: hashes, keep-alive settings, listeners, the admin section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (user, hash) in &self.users {
            PasswordHash::parse(hash).map_err(|e| {
                ConfigError(format!(
                    "user {user:?}: {e}; plain-text passwords are not accepted: use `mqttkit-broker passwd`"
                ))
            })?;
        }
        if self.server_keep_alive.is_some() && self.max_keepalive.is_some() {
            return Err(ConfigError(
                "set either server_keep_alive (one keep alive for every 5.0 client) or max_keepalive (a cap), not both"
                    .into(),
            ));
        }
        if self.max_keepalive == Some(0) {
            return Err(ConfigError("max_keepalive must be at least 1 second".into()));
        }
        for (i, listener) in self.listeners.iter().enumerate() {
            listener
                .validate()
                .map_err(|e| ConfigError(format!("[[listener]] #{} ({}): {e}", i + 1, listener.bind)))?;
        }
        if let Some(admin) = &self.admin {
            admin.validate().map_err(|e| ConfigError(format!("[admin]: {e}")))?;
        }
        Ok(())
    }

    /// The listeners to open: the `[[listener]]` tables, or one plain MQTT listener on
    /// `listen`.
    pub fn effective_listeners(&self) -> Vec<ListenerConfig> {
        if self.listeners.is_empty() { vec![ListenerConfig::plain(&self.listen)] } else { self.listeners.clone() }
    }

    /// Point the first plain MQTT listener at `address` (the binary's `--listen`), adding
    /// one if there is none.
    pub fn override_listen(&mut self, address: String) {
        if let Some(listener) = self.listeners.iter_mut().find(|l| l.protocol == Transport::Mqtt) {
            listener.bind.clone_from(&address);
        } else if !self.listeners.is_empty() {
            self.listeners.insert(0, ListenerConfig::plain(&address));
        }
        self.listen = address;
    }

    /// Whether user names and passwords are checked.
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
            alice = "$7$101$xvmwqhqRZZXM7Us0$QVRUtfRIh92RIG/aGmy/d26PQOpzTrrs6enq9xy5dlTI6SwJMaLkgOCDEMwYg1sAWFdsYQskOni/bg/iSKWdig=="
            "#,
        )
        .unwrap();
        assert_eq!(c.max_connections, 5);
        assert_eq!(c.receive_maximum, Config::default().receive_maximum);
        assert_eq!(c.acl.deny_publish, ["secret/#"]);
        assert!(c.auth_enabled());
        c.validate().unwrap();
        assert!(Config::from_toml("bogus = 1").is_err());
        let plain = Config::from_toml("[users]\nalice = \"pw\"").unwrap();
        assert!(plain.validate().unwrap_err().0.contains("plain-text"));
        let both = Config::from_toml("server_keep_alive = 10\nmax_keepalive = 20").unwrap();
        assert!(both.validate().is_err());
    }

    #[test]
    fn reads_password_and_acl_files_naming_them_in_errors() {
        let dir = std::env::temp_dir().join(format!("mqttkit-broker-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (passwords, acl) = (dir.join("passwords"), dir.join("acl"));
        let hash = PasswordHash::new(b"secret", 10).unwrap();
        std::fs::write(&passwords, format!("# users\nbob:{hash}\n")).unwrap();
        std::fs::write(&acl, "user bob\ntopic readwrite bob/#\n").unwrap();
        let mut c = Config {
            password_file: Some(passwords.display().to_string()),
            acl_file: Some(acl.display().to_string()),
            ..Config::default()
        };
        c.load_files().unwrap();
        assert_eq!(c.users.get("bob"), Some(&hash.to_string()));
        assert!(c.acl_rules.is_some());

        std::fs::write(&passwords, "bob:secret\n").unwrap();
        let mut c = Config { password_file: Some(passwords.display().to_string()), ..Config::default() };
        let err = c.load_files().unwrap_err().0;
        assert!(err.contains(&passwords.display().to_string()) && err.contains("line 1"), "{err}");
        let mut c = Config { acl_file: Some(dir.join("missing").display().to_string()), ..Config::default() };
        assert!(c.load_files().unwrap_err().0.contains("missing"));
        let _ = std::fs::remove_dir_all(dir);
    }
}

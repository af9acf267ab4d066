//! Options every subcommand shares: where and how to connect (mosquitto_pub/sub names,
//! with MQTTX-style long aliases), turned into [`Options`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mqttkit_client::transport::TlsOptions;
use mqttkit_client::{ConnectionEvent, Options, ProtocolVersion, QoS, Will};

use super::Exit;
use super::properties::V5Properties;

/// Connection options.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Broker host.
    #[arg(short = 'h', long, visible_alias = "hostname", default_value = "localhost")]
    pub host: String,
    /// Broker port [default: 1883, or 8883 with TLS options].
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Broker URL instead of -h/-p: mqtt://, mqtts://, ws://, wss://
    /// (`mqtt://[user[:password]@]host[:port][/topic]`; the path is the topic for mqtt(s)).
    #[arg(short = 'L', long = "url")]
    pub url: Option<String>,
    /// Protocol version: 3.1, 3.1.1 or 5 (also mqttv31, mqttv311, mqttv5).
    #[arg(short = 'V', long = "protocol-version", visible_alias = "mqtt-version", default_value = "3.1.1", value_parser = parse_version)]
    pub version: ProtocolVersion,
    /// Client identifier [default: mqttkit_<command>_<pid>; empty with -V 5 lets the broker assign one].
    #[arg(short = 'i', long = "id", visible_alias = "client-id")]
    pub id: Option<String>,
    /// Client identifier prefix (the process id is appended).
    #[arg(short = 'I', long = "id-prefix")]
    pub id_prefix: Option<String>,
    /// Keep alive in seconds (0: off).
    #[arg(short = 'k', long, default_value_t = 60)]
    pub keepalive: u16,
    /// Seconds without PINGRESP after a PINGREQ before the connection counts as lost.
    #[arg(long, default_value_t = 10.0)]
    pub ping_timeout: f64,
    /// Seconds to open the connection and get CONNACK.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// User name.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw", visible_alias = "password")]
    pub password: Option<String>,
    /// Keep the session (clean session / clean start off; with -V 5 the session never
    /// expires unless -x says otherwise).
    #[arg(short = 'c', long = "disable-clean-session")]
    pub keep_session: bool,
    /// 5.0 Session Expiry Interval in seconds (-1: never).
    #[arg(short = 'x', long = "session-expiry-interval", allow_negative_numbers = true)]
    pub session_expiry: Option<i64>,
    /// Will topic.
    #[arg(long)]
    pub will_topic: Option<String>,
    /// Will payload.
    #[arg(long, requires = "will_topic")]
    pub will_payload: Option<String>,
    /// Will QoS.
    #[arg(long, requires = "will_topic", default_value = "0", value_parser = parse_qos)]
    pub will_qos: QoS,
    /// Retain the will.
    #[arg(long, requires = "will_topic")]
    pub will_retain: bool,
    /// CA certificates (PEM) to trust instead of the built-in roots.
    #[arg(long, visible_alias = "ca")]
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any server certificate (never in production).
    #[arg(long)]
    pub insecure: bool,
    /// 5.0 properties: `-D COMMAND NAME VALUE` (user-property takes two values), e.g.
    /// `-D publish content-type text/plain`, `-D connect user-property k v`.
    /// Commands: connect, publish, subscribe, unsubscribe, disconnect, will.
    #[arg(short = 'D', long = "property", num_args = 3..=4, value_names = ["COMMAND", "NAME", "VALUE"], action = clap::ArgAction::Append)]
    pub properties: Vec<String>,
    /// Print connection events (connected, lost, reconnecting) on stderr.
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Print no error messages.
    #[arg(long)]
    pub quiet: bool,
}

pub fn parse_version(text: &str) -> Result<ProtocolVersion, String> {
    match text {
        "3.1" | "31" | "mqttv31" => Ok(ProtocolVersion::V3_1),
        "3.1.1" | "311" | "mqttv311" | "4" => Ok(ProtocolVersion::V3_1_1),
        "5" | "5.0" | "mqttv5" => Ok(ProtocolVersion::V5),
        other => Err(format!("unknown protocol version `{other}` (use 3.1, 3.1.1 or 5)")),
    }
}

pub fn parse_qos(text: &str) -> Result<QoS, String> {
    text.parse::<u8>().ok().and_then(QoS::from_u8).ok_or_else(|| format!("QoS must be 0, 1 or 2, not `{text}`"))
}

fn seconds(value: f64, what: &str) -> Result<Duration, Exit> {
    Duration::try_from_secs_f64(value).map_err(|_| Exit::usage(format!("{what} must be a number of seconds ≥ 0")))
}

/// The parts of `mqtt://user:password@host:port/topic`.
#[derive(Debug, Default, PartialEq, Eq)]
struct UrlParts {
    server: String,
    username: Option<String>,
    password: Option<String>,
    topic: Option<String>,
}

fn split_url(url: &str) -> UrlParts {
    let Some((scheme, rest)) = url.split_once("://") else {
        return UrlParts { server: url.to_owned(), ..UrlParts::default() };
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let (username, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((user, pass)) => (Some(user.to_owned()), (!pass.is_empty()).then(|| pass.to_owned())),
        None => (None, None),
    };
    // For mqtt(s) the path names the topic (mosquitto's -L); for ws(s) it is the
    // WebSocket path.
    let websocket = scheme.starts_with("ws");
    let topic = path.strip_prefix('/').filter(|t| !t.is_empty() && !websocket).map(str::to_owned);
    let server = if websocket { format!("{scheme}://{host}{path}") } else { format!("{scheme}://{host}") };
    UrlParts { server, username, password, topic }
}

impl ConnectArgs {
    fn tls(&self) -> TlsOptions {
        TlsOptions {
            cafile: self.cafile.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            insecure: self.insecure,
        }
    }

    fn uses_tls(&self) -> bool {
        self.cafile.is_some() || self.cert.is_some() || self.insecure
    }

    /// Options for `command` (`pub` / `sub`), the topic the URL names if any, and the
    /// `-D` properties.
    pub fn options(&self, command: &str) -> Result<(Options, Option<String>, V5Properties), Exit> {
        let props = V5Properties::parse(&self.properties)?;
        if !self.properties.is_empty() && !self.version.is_v5() {
            return Err(Exit::usage("-D needs -V 5"));
        }
        let (options, topic) = self.options_with(command, &props)?;
        Ok((options, topic, props))
    }

    fn options_with(&self, command: &str, props: &V5Properties) -> Result<(Options, Option<String>), Exit> {
        let (server, url_user, url_password, url_topic) = match &self.url {
            Some(url) => {
                let parts = split_url(url);
                (parts.server, parts.username, parts.password, parts.topic)
            }
            None => {
                let scheme = if self.uses_tls() { "mqtts" } else { "mqtt" };
                let port = self.port.unwrap_or(if self.uses_tls() { 8883 } else { 1883 });
                let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
                (format!("{scheme}://{host}:{port}"), None, None, None)
            }
        };
        let version = self.version;
        let client_id = match (&self.id, &self.id_prefix) {
            (Some(id), _) => id.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
            (None, None) => format!("mqttkit_{command}_{}", std::process::id()),
        };
        let mut options = Options::new(server)
            .version(version)
            .client_id(client_id)
            .tls(self.tls())
            .keep_alive(Duration::from_secs(u64::from(self.keepalive)))
            .ping_timeout(seconds(self.ping_timeout, "--ping-timeout")?)
            .connect_timeout(seconds(self.connect_timeout, "--connect-timeout")?)
            .clean_start(!self.keep_session)
            // A command-line run reports failures instead of retrying forever.
            .auto_reconnect(false);
        options.username = self.username.clone().or(url_user);
        options.password = self.password.clone().or(url_password).map(Into::into);
        if version.is_v5() {
            options.session_expiry_interval = match (self.session_expiry, self.keep_session) {
                (Some(-1), _) | (None, true) => Some(u32::MAX),
                (Some(secs), _) => {
                    Some(u32::try_from(secs).map_err(|_| Exit::usage("-x must be -1 or 0 to 4294967295"))?)
                }
                (None, false) => None,
            };
            options.properties = props.connect.clone();
            if let Some(expiry) = props.connect_session_expiry {
                options.session_expiry_interval = Some(expiry);
            }
            options.topic_aliases = props.topic_aliases;
        } else if self.session_expiry.is_some() {
            return Err(Exit::usage("-x needs -V 5"));
        }
        if let Some(topic) = &self.will_topic {
            let mut will = Will::new(
                topic.clone(),
                self.will_payload.clone().unwrap_or_default(),
                self.will_qos,
                self.will_retain,
            );
            will.delay_interval = props.will_delay;
            will.properties = props.will.clone();
            options = options.will(will);
        }
        if self.debug {
            options = options.on_event(|event: &ConnectionEvent| eprintln!("mqttkit: {}", describe_event(event)));
        }
        Ok((options, url_topic))
    }
}

/// One line per connection event, for `-d`.
pub fn describe_event(event: &ConnectionEvent) -> String {
    match event {
        ConnectionEvent::Connected(c) => {
            let mut line = format!("connected (session present: {})", c.session_present);
            if let Some(id) = &c.assigned_client_id {
                line.push_str(&format!(", assigned client id {id}"));
            }
            line
        }
        ConnectionEvent::ConnectionLost { reason } => format!("connection lost: {reason}"),
        ConnectionEvent::Reconnecting { attempt, delay } => {
            format!("reconnecting in {:.1} s (attempt {attempt})", delay.as_secs_f64())
        }
        ConnectionEvent::Closed(reason) => format!("closed: {reason}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_mosquitto_urls() {
        let parts = split_url("mqtt://alice:secret@127.0.0.1:1884/a/b");
        assert_eq!(parts.server, "mqtt://127.0.0.1:1884");
        assert_eq!((parts.username.as_deref(), parts.password.as_deref()), (Some("alice"), Some("secret")));
        assert_eq!(parts.topic.as_deref(), Some("a/b"));
        let parts = split_url("ws://127.0.0.1:8080/mqtt");
        assert_eq!((parts.server.as_str(), parts.topic), ("ws://127.0.0.1:8080/mqtt", None));
        assert_eq!(split_url("127.0.0.1:1883").server, "127.0.0.1:1883");
    }

    #[test]
    fn parses_versions_and_qos() {
        assert_eq!(parse_version("mqttv5"), Ok(ProtocolVersion::V5));
        assert_eq!(parse_version("311"), Ok(ProtocolVersion::V3_1_1));
        assert!(parse_version("6").is_err());
        assert!(parse_qos("3").is_err());
    }
}

//! Listeners: MQTT over TCP (`mqtt`), TLS (`mqtts`), WebSocket (`ws`) and WebSocket over
//! TLS (`wss`), several per broker (`[[listener]]` in the configuration).
//!
//! Every listener hands the broker a byte stream ([`ByteStream`]) and where it came from
//! ([`Origin`]); the TLS and WebSocket handshakes run in a task of their own, bounded by
//! the connect timeout, so a slow or silent peer holds up nobody. The core never knows
//! which transport a connection uses, except for the user name a client certificate may
//! give it.

mod tls;
mod ws;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tracing::{debug, warn};

/// A connection's bytes, whatever the transport.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> ByteStream for T {}

/// A boxed connection stream.
pub type BoxedStream = Box<dyn ByteStream>;

/// The transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// MQTT over TCP (conventionally port 1883).
    Mqtt,
    /// MQTT over TLS (8883).
    Mqtts,
    /// MQTT over WebSocket (8083 as EMQX; path `/mqtt`).
    Ws,
    /// MQTT over WebSocket over TLS (8084 as EMQX).
    Wss,
}

impl Transport {
    /// The URL scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Mqtts => "mqtts",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    fn tls(self) -> bool {
        matches!(self, Self::Mqtts | Self::Wss)
    }

    fn websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[listener]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `mqtt`, `mqtts`, `ws` or `wss`.
    pub protocol: Transport,
    /// Address and port, e.g. `"127.0.0.1:8883"` (`0.0.0.0:8883` for every interface).
    pub bind: String,
    /// TLS: the server's certificate chain (PEM).
    pub cert_file: Option<String>,
    /// TLS: the server's private key (PEM).
    pub key_file: Option<String>,
    /// TLS: CA certificates (PEM) client certificates are verified against. Without it no
    /// client certificate is asked for.
    pub ca_file: Option<String>,
    /// TLS with `ca_file`: refuse clients without a valid certificate (otherwise one is
    /// optional, but verified when presented).
    #[serde(default)]
    pub require_certificate: bool,
    /// TLS: the client certificate's subject (`CN=…,O=…`) is the client's user name, and
    /// no password is asked for (mosquitto's `use_subject_as_username`).
    #[serde(default)]
    pub use_subject_as_username: bool,
    /// TLS: the client certificate's Common Name is the client's user name (mosquitto's
    /// `use_identity_as_username`).
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// WebSocket: the HTTP path clients connect to.
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_path() -> String {
    "/mqtt".into()
}

impl ListenerConfig {
    /// A plain MQTT listener on `bind`.
    pub fn plain(bind: &str) -> Self {
        Self {
            protocol: Transport::Mqtt,
            bind: bind.to_owned(),
            cert_file: None,
            key_file: None,
            ca_file: None,
            require_certificate: false,
            use_subject_as_username: false,
            use_identity_as_username: false,
            path: default_path(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        let tls_key = |set: bool, key: &str| {
            if set && !self.protocol.tls() {
                Err(format!("`{key}` only applies to mqtts and wss listeners"))
            } else {
                Ok(())
            }
        };
        tls_key(self.cert_file.is_some() || self.key_file.is_some(), "cert_file/key_file")?;
        tls_key(self.ca_file.is_some(), "ca_file")?;
        tls_key(self.use_subject_as_username || self.use_identity_as_username, "use_*_as_username")?;
        if self.protocol.tls() && (self.cert_file.is_none() || self.key_file.is_none()) {
            return Err("a TLS listener needs cert_file and key_file".into());
        }
        if (self.require_certificate || self.use_subject_as_username || self.use_identity_as_username)
            && self.ca_file.is_none()
        {
            return Err("client certificates need ca_file (the CA they are verified against)".into());
        }
        if self.use_subject_as_username && self.use_identity_as_username {
            return Err("use_subject_as_username and use_identity_as_username exclude each other".into());
        }
        if !self.path.starts_with('/') {
            return Err(format!("path {:?} must start with /", self.path));
        }
        Ok(())
    }
}

/// Where a connection came from, for the core and the logs.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The listener's transport.
    pub transport: Transport,
    /// The user name given by the client's certificate (with `use_*_as_username`).
    pub certificate_user: Option<Arc<str>>,
}

/// A listener bound to its address, ready to accept.
pub struct BoundListener {
    /// Its configuration.
    pub config: ListenerConfig,
    /// The address it listens on (the port chosen when 0 was asked for).
    pub local_addr: SocketAddr,
    socket: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl BoundListener {
    /// Bind the address and load the TLS material; errors name the address or the file.
    pub fn bind(config: &ListenerConfig) -> io::Result<Self> {
        let tls = if config.protocol.tls() {
            let server = tls::server_config(config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Some(tokio_rustls::TlsAcceptor::from(server))
        } else {
            None
        };
        let socket = std::net::TcpListener::bind(&config.bind).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {} ({} listener): {e}", config.bind, config.protocol))
        })?;
        socket.set_nonblocking(true)?;
        let local_addr = socket.local_addr()?;
        Ok(Self { config: config.clone(), local_addr, socket, tls })
    }
}

impl fmt::Debug for BoundListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundListener").field("config", &self.config).field("local_addr", &self.local_addr).finish()
    }
}

/// What the front end does with an accepted connection.
pub type Register = Rc<dyn Fn(BoxedStream, SocketAddr, Origin)>;

/// Accept connections for ever, handing each to `register` once its handshakes are done
/// (at most `handshake_timeout` each).
pub async fn accept_loop(bound: BoundListener, register: Register, handshake_timeout: Duration) {
    let BoundListener { config, socket, tls, .. } = bound;
    let listener = match TcpListener::from_std(socket) {
        Ok(listener) => listener,
        Err(e) => {
            warn!(bind = %config.bind, error = %e, "listener unusable");
            return;
        }
    };
    let config = Rc::new(config);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors or the like: wait rather than spin.
                warn!(error = %e, bind = %config.bind, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if config.protocol == Transport::Mqtt {
            register(Box::new(stream), peer, Origin { transport: Transport::Mqtt, certificate_user: None });
            continue;
        }
        let (config, tls, register) = (config.clone(), tls.clone(), register.clone());
        tokio::task::spawn_local(async move {
            match tokio::time::timeout(handshake_timeout, handshake(&config, tls, stream)).await {
                Ok(Ok((stream, certificate_user))) => {
                    register(stream, peer, Origin { transport: config.protocol, certificate_user });
                }
                Ok(Err(e)) => debug!(%peer, transport = %config.protocol, error = %e, "handshake failed"),
                Err(_) => debug!(%peer, transport = %config.protocol, "handshake timed out"),
            }
        });
    }
}

/// The TLS and WebSocket handshakes of one connection: its stream and the user name its
/// certificate gives.
async fn handshake(
    config: &ListenerConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tcp: tokio::net::TcpStream,
) -> io::Result<(BoxedStream, Option<Arc<str>>)> {
    let (stream, user): (BoxedStream, Option<Arc<str>>) = match tls {
        Some(acceptor) => {
            let stream = acceptor.accept(tcp).await?;
            let user = tls::certificate_user(config, stream.get_ref().1.peer_certificates());
            if (config.use_subject_as_username || config.use_identity_as_username) && user.is_none() {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "no client certificate to name the user"));
            }
            (Box::new(stream), user)
        }
        None => (Box::new(tcp), None),
    };
    if config.protocol.websocket() {
        let ws = ws::accept(stream, &config.path).await?;
        return Ok((Box::new(ws), user));
    }
    Ok((stream, user))
}

//! Broker addresses and the byte transports to them: TCP, TLS (rustls), WebSocket and
//! secure WebSocket (subprotocol `mqtt`).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// How to reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `mqtt://`
    Tcp,
    /// `mqtts://`
    Tls,
    /// `ws://`
    Ws,
    /// `wss://`
    Wss,
}

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Scheme.
    pub scheme: Scheme,
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// WebSocket path.
    pub path: String,
}

impl Address {
    /// Parse `mqtt://host:port`, `mqtts://…`, `ws://host:port/path`, `wss://…`; a bare
    /// `host:port` means `mqtt://`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = match text.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => (Scheme::Tcp, rest),
            Some(("mqtts" | "ssl" | "tls", rest)) => (Scheme::Tls, rest),
            Some(("ws", rest)) => (Scheme::Ws, rest),
            Some(("wss", rest)) => (Scheme::Wss, rest),
            Some((other, _)) => return Err(format!("unknown scheme `{other}://` (use mqtt, mqtts, ws or wss)")),
            None => (Scheme::Tcp, text),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let default_port = match scheme {
            Scheme::Tcp => 1883,
            Scheme::Tls => 8883,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        };
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or("unclosed `[` in IPv6 address")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("bad port `{p}`"))?,
                None => default_port,
            };
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), port.parse().map_err(|_| format!("bad port `{port}`"))?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in `{text}`"));
        }
        if matches!(scheme, Scheme::Tcp | Scheme::Tls) && !matches!(path, "" | "/") {
            return Err(format!(
                "`{text}` has a path (`{path}`), which only ws:// and wss:// use; mqtt:// and mqtts:// take HOST:PORT"
            ));
        }
        let path = if path.is_empty() { "/mqtt".to_owned() } else { path.to_owned() };
        Ok(Self { scheme, host, port, path })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.scheme {
            Scheme::Tcp => write!(f, "mqtt://{host}:{}", self.port),
            Scheme::Tls => write!(f, "mqtts://{host}:{}", self.port),
            Scheme::Ws => write!(f, "ws://{host}:{}{}", self.port, self.path),
            Scheme::Wss => write!(f, "wss://{host}:{}{}", self.port, self.path),
        }
    }
}

/// TLS settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// CA certificates (PEM) to trust instead of the built-in web roots.
    pub cafile: Option<PathBuf>,
    /// Client certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    pub key: Option<PathBuf>,
    /// Accept any server certificate.
    pub insecure: bool,
}

/// Default bound on opening a connection (TCP connect plus TLS and WebSocket handshakes).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on closing the sending direction (a WebSocket close waits for the peer's Close).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything needed to open connections to one broker.
#[derive(Clone)]
pub struct Connector {
    address: Address,
    tls: Option<Arc<rustls::ClientConfig>>,
    handshake_timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// Any byte stream a connection can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}
/// A boxed byte stream.
pub type BoxedIo = Box<dyn Io>;

impl Connector {
    /// Prepare connections to `address` (loading TLS material now, so errors show early).
    pub fn new(address: Address, tls: &TlsOptions) -> Result<Self, String> {
        let tls = match address.scheme {
            Scheme::Tls | Scheme::Wss => Some(Arc::new(tls_config(tls)?)),
            Scheme::Tcp | Scheme::Ws => None,
        };
        Ok(Self { address, tls, handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT })
    }

    /// Bound opening a connection (TCP connect plus TLS and WebSocket handshakes) by
    /// `timeout` instead of [`DEFAULT_HANDSHAKE_TIMEOUT`].
    #[must_use]
    pub const fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The address.
    pub const fn address(&self) -> &Address {
        &self.address
    }

    /// Open one connection; a peer that does not complete the handshakes within the
    /// handshake timeout yields a `TimedOut` error.
    pub async fn connect(&self) -> io::Result<(Reader, Writer)> {
        match tokio::time::timeout(self.handshake_timeout, self.open()).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connecting to {} did not complete within {:.1} s",
                    self.address,
                    self.handshake_timeout.as_secs_f64()
                ),
            )),
        }
    }

    async fn open(&self) -> io::Result<(Reader, Writer)> {
        let tcp = TcpStream::connect((self.address.host.as_str(), self.address.port)).await?;
        tcp.set_nodelay(true)?;
        let stream: BoxedIo = match &self.tls {
            Some(config) => {
                let name = ServerName::try_from(self.address.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                Box::new(connector.connect(name, tcp).await?)
            }
            None => Box::new(tcp),
        };
        match self.address.scheme {
            Scheme::Tcp | Scheme::Tls => {
                let (read, write) = tokio::io::split(stream);
                Ok((Reader::Stream(read), Writer::Stream(write)))
            }
            Scheme::Ws | Scheme::Wss => {
                // `Address`'s display brackets IPv6 hosts, as a URL needs.
                let mut request = self.address.to_string().into_client_request().map_err(io::Error::other)?;
                // "The Client MUST include "mqtt" in the list of WebSocket Sub Protocols it
                // offers" [MQTT-3.1.1: 6.0.0-3] [MQTT-5.0: 6.0.0-3].
                request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
                let (ws, _response) =
                    tokio_tungstenite::client_async(request, stream).await.map_err(io::Error::other)?;
                let (sink, stream) = ws.split();
                Ok((Reader::WebSocket(stream), Writer::WebSocket(sink)))
            }
        }
    }
}

/// The receiving half of a connection.
pub enum Reader {
    /// TCP or TLS.
    Stream(ReadHalf<BoxedIo>),
    /// WebSocket.
    WebSocket(SplitStream<WebSocketStream<BoxedIo>>),
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reader")
    }
}

impl Reader {
    /// Append the next bytes to `buf` (no allocation beyond growing it); `Ok(0)` when the
    /// peer closed the connection. Cancel-safe: nothing is lost if the future is dropped.
    pub async fn read_buf(&mut self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        match self {
            Self::Stream(read) => {
                buf.reserve(16 * 1024);
                read.read_buf(buf).await
            }
            Self::WebSocket(stream) => loop {
                let bytes = match stream.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(0),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(io::Error::other(e)),
                };
                // An empty message is not the end of the stream.
                if !bytes.is_empty() {
                    buf.extend_from_slice(&bytes);
                    return Ok(bytes.len());
                }
            },
        }
    }

    /// The next bytes; `Ok(None)` when the peer closed the connection.
    pub async fn read(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self {
            Self::Stream(read) => {
                let mut buf = vec![0u8; 16 * 1024];
                let n = read.read(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some(buf))
            }
            Self::WebSocket(stream) => loop {
                match stream.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(None),
                    Some(Ok(Message::Binary(bytes))) => return Ok(Some(bytes.to_vec())),
                    Some(Ok(Message::Text(text))) => return Ok(Some(text.as_bytes().to_vec())),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(io::Error::other(e)),
                }
            },
        }
    }
}

/// The sending half of a connection.
pub enum Writer {
    /// TCP or TLS.
    Stream(WriteHalf<BoxedIo>),
    /// WebSocket.
    WebSocket(SplitSink<WebSocketStream<BoxedIo>, Message>),
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Send bytes (one WebSocket binary message per call).
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Stream(write) => {
                write.write_all(bytes).await?;
                write.flush().await
            }
            Self::WebSocket(sink) => sink.send(Message::binary(bytes.to_vec())).await.map_err(io::Error::other),
        }
    }

    /// Close the sending direction without waiting for the peer: a WebSocket Close frame
    /// is sent but the peer's answer is not awaited (an MQTT client closes the connection
    /// right after DISCONNECT). Bounded in time.
    pub async fn close_now(&mut self) {
        let close = async {
            match self {
                Self::Stream(write) => {
                    let _ = write.shutdown().await;
                }
                Self::WebSocket(sink) => {
                    let _ = sink.send(Message::Close(None)).await;
                }
            }
        };
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, close).await;
    }

    /// Close the sending direction, bounded in time: a WebSocket close flushes a Close
    /// frame and then waits for the peer's, which a peer may never send.
    pub async fn shutdown(&mut self) {
        let close = async {
            match self {
                Self::Stream(write) => {
                    let _ = write.shutdown().await;
                }
                Self::WebSocket(sink) => {
                    let _ = sink.close().await;
                }
            }
        };
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, close).await;
    }
}

/// The TLS error behind `error`, if it is one: a fatal alert from the peer (e.g. a
/// rejected client certificate, which TLS 1.3 reports only after the client finished its
/// handshake), a certificate problem or corrupt records. Such a failure belongs to the
/// transport, not to the MQTT conversation over it. Looks through WebSocket errors.
pub fn tls_failure(error: &io::Error) -> Option<&rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = error.get_ref().map(|e| e as _);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = if let Some(io) = e.downcast_ref::<io::Error>() {
            io.get_ref().map(|e| e as _)
        } else if let Some(tokio_tungstenite::tungstenite::Error::Io(io)) =
            e.downcast_ref::<tokio_tungstenite::tungstenite::Error>()
        {
            io.get_ref().map(|e| e as _)
        } else {
            e.source()
        };
    }
    None
}

fn tls_config(options: &TlsOptions) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if options.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { provider }))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &options.cafile {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("--cafile {}: {e}", path.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("--cafile {}: {e}", path.display()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("--cafile {}: no usable certificate", path.display()));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("--cert {}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--cert {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--key {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate: {e}"))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err("--cert and --key go together".into()),
    }
}

/// `--insecure`: accepts any server certificate (signatures are still checked).
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let a = Address::parse("mqtt://127.0.0.1:1884").expect("valid");
        assert_eq!((a.scheme, a.host.as_str(), a.port), (Scheme::Tcp, "127.0.0.1", 1884));
        let a = Address::parse("wss://example.org/ws").expect("valid");
        assert_eq!((a.scheme, a.port, a.path.as_str()), (Scheme::Wss, 443, "/ws"));
        let a = Address::parse("mqtts://[::1]").expect("valid");
        assert_eq!((a.host.as_str(), a.port), ("::1", 8883));
        assert!(Address::parse("http://x").is_err());
    }

    #[test]
    fn websocket_urls_bracket_ipv6_hosts() {
        let a = Address::parse("ws://[::1]:8080").expect("valid");
        let request = a.to_string().into_client_request().expect("a valid WebSocket URL");
        assert_eq!(request.uri().to_string(), "ws://[::1]:8080/mqtt");
        let a = Address::parse("wss://127.0.0.1:8443/x").expect("valid");
        assert_eq!(a.to_string().into_client_request().expect("valid").uri().to_string(), "wss://127.0.0.1:8443/x");
    }

    #[test]
    fn finds_tls_errors_through_wrappers() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let direct = io::Error::new(io::ErrorKind::InvalidData, alert.clone());
        assert_eq!(tls_failure(&direct), Some(&alert));
        let ws = io::Error::other(tokio_tungstenite::tungstenite::Error::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            alert.clone(),
        )));
        assert_eq!(tls_failure(&ws), Some(&alert));
        assert_eq!(tls_failure(&io::Error::from(io::ErrorKind::ConnectionReset)), None);
        assert_eq!(tls_failure(&io::Error::other("plain")), None);
    }
}

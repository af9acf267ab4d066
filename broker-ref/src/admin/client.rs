//! A small HTTP client for the management API: what `mqttkit-broker status`, `clients`
//! and `disconnect` use (and the tests).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `Authorization: Bearer TOKEN`.
    Token(String),
    /// Basic authentication.
    Basic(String, String),
}

/// Send `method path` to the API at `addr`; the status and the body. Errors name the
/// address.
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    credentials: &Credentials,
) -> Result<(StatusCode, String), String> {
    let work = async {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("{e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let authorization = match credentials {
            Credentials::Token(token) => format!("Bearer {token}"),
            Credentials::Basic(user, password) => format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, addr.to_string())
            .header(header::AUTHORIZATION, authorization)
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    match tokio::time::timeout(Duration::from_secs(10), work).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(format!("management API at {addr}: {e}")),
        Err(_) => Err(format!("management API at {addr}: no answer within 10 s")),
    }
}

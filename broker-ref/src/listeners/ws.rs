//! MQTT over WebSocket (5.0 §6, 3.1.1 §6): the handshake (path, subprotocol `mqtt`) and
//! a byte stream over binary frames.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use super::BoxedStream;

/// Subprotocols accepted, in order of preference: "mqtt" (3.1.1 and 5.0) and "mqttv3.1"
/// (MQTT 3.1 clients).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Complete the WebSocket handshake on `stream`: the request must be for `path` and offer
/// the `mqtt` subprotocol.
// The refusal type is tungstenite's.
#[allow(clippy::result_large_err)]
pub(super) async fn accept(stream: BoxedStream, path: &str) -> io::Result<WsStream> {
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        if request.uri().path() != path {
            return Err(refusal(StatusCode::NOT_FOUND, format!("MQTT is served on {path}")));
        }
        let offered: Vec<&str> = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(str::trim))
            .collect();
        // "The WebSocket Subprotocol name selected and returned by the Server MUST be
        // "mqtt"" [MQTT-3.1.1: 6.0.0-4] [MQTT-5.0: 6.0.0-4]; a client must offer it
        // [MQTT-3.1.1: 6.0.0-3] [MQTT-5.0: 6.0.0-3].
        let Some(chosen) = SUBPROTOCOLS.iter().find(|p| offered.contains(p)) else {
            return Err(refusal(StatusCode::BAD_REQUEST, "the subprotocol \"mqtt\" is required".into()));
        };
        response.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(chosen));
        Ok(response)
    };
    let ws = tokio_tungstenite::accept_hdr_async(stream, callback).await.map_err(io::Error::other)?;
    Ok(WsStream { ws, read: Bytes::new() })
}

fn refusal(status: StatusCode, text: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text));
    *response.status_mut() = status;
    response
}

/// The bytes carried by a WebSocket connection's binary frames.
pub(super) struct WsStream {
    ws: WebSocketStream<BoxedStream>,
    /// What is left of the last frame received.
    read: Bytes,
}

impl AsyncRead for WsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.read.is_empty() {
                let n = self.read.len().min(buf.remaining());
                buf.put_slice(&self.read[..n]);
                self.read.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.read = Bytes::from(data),
                // Pings are answered by tungstenite itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // "MQTT Control Packets MUST be sent in WebSocket binary data frames. If
                // any other type of data frame is received the recipient MUST close the
                // Network Connection" [MQTT-3.1.1: 6.0.0-1] [MQTT-5.0: 6.0.0-1].
                Some(Ok(Message::Text(_) | Message::Frame(_))) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "WebSocket text frame")));
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

impl WsStream {
    /// Send `data` as one binary frame (once the socket can take a frame), and start
    /// flushing it.
    fn send(&mut self, cx: &mut Context<'_>, data: Vec<u8>) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io::Error::other)?;
        let len = data.len();
        Pin::new(&mut self.ws).start_send(Message::Binary(data)).map_err(io::Error::other)?;
        // What the socket does not take now is written by `poll_flush`, which the front
        // end calls until it completes.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.ws).poll_flush(cx) {
            return Poll::Ready(Err(io::Error::other(e)));
        }
        Poll::Ready(Ok(len))
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.send(cx, buf.to_vec())
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // One frame for everything offered.
        let mut frame = Vec::with_capacity(bufs.iter().map(|b| b.len()).sum());
        for buf in bufs {
            frame.extend_from_slice(buf);
        }
        self.send(cx, frame)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(io::Error::other)
    }
}

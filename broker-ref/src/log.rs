//! Log lines for operators, like mosquitto's: one INFO line per client connect, refusal and
//! disconnect, with the client id, user, peer address, transport, protocol, keep alive and
//! session settings; reasons in hex and in words, named as the client's protocol version
//! names them. Passwords are never logged.
//!
//! The core calls these (through `tracing`, which is observation, not I/O); the binary
//! chooses where they go ([`init`]).

use std::io::IsTerminal;
use std::net::SocketAddr;

use mqttkit_codec::{PacketType, ProtocolVersion, ReasonCode};
use tracing::{debug, info};

use crate::core::CloseReason;

/// Install the log subscriber: `RUST_LOG` (default `info`) to standard error, coloured
/// only when standard error is a terminal and `NO_COLOR` is unset.
pub fn init() {
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// What the core knows of a client when it logs about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientLog<'a> {
    pub client_id: &'a str,
    pub user: Option<&'a str>,
    pub peer: SocketAddr,
    pub transport: &'a str,
    pub version: ProtocolVersion,
}

/// A CONNECT was accepted.
pub(crate) fn connected(c: ClientLog<'_>, keep_alive: u16, clean_start: bool, session_expiry: u32, present: bool) {
    info!(
        client_id = c.client_id,
        user = c.user.unwrap_or("-"),
        peer = %c.peer,
        transport = c.transport,
        protocol = %c.version,
        keep_alive,
        clean_start,
        session_expiry = %expiry(session_expiry),
        session_present = present,
        "client connected"
    );
}

/// A CONNECT was refused with `code` (as sent in CONNACK).
pub(crate) fn refused(c: ClientLog<'_>, code: ReasonCode) {
    info!(
        client_id = c.client_id,
        user = c.user.unwrap_or("-"),
        peer = %c.peer,
        transport = c.transport,
        protocol = %c.version,
        reason = %code.display(PacketType::ConnAck, c.version),
        "connection refused"
    );
}

/// A client's connection ended.
pub(crate) fn disconnected(c: ClientLog<'_>, reason: &str) {
    info!(
        client_id = c.client_id,
        user = c.user.unwrap_or("-"),
        peer = %c.peer,
        transport = c.transport,
        protocol = %c.version,
        reason,
        "client disconnected"
    );
}

/// A connection that never completed CONNECT ended.
pub(crate) fn closed_before_connect(peer: SocketAddr, transport: &str, reason: &str) {
    debug!(%peer, transport, reason, "connection closed before CONNECT");
}

fn expiry(seconds: u32) -> String {
    match seconds {
        0 => "0 (ends with the connection)".into(),
        u32::MAX => "never".into(),
        s => format!("{s} s"),
    }
}

/// Why a connection ended, in hex and words as `version` names the code (a 3.1.1 client
/// gets no reason code on a server-side close: the words alone then).
pub(crate) fn close_reason(reason: &CloseReason, version: ProtocolVersion) -> String {
    let code = |code: ReasonCode, packet: PacketType| {
        if version.is_v5() {
            format!("{}", code.display(packet, version))
        } else {
            // The code is the 5.0 one; a 3.1.1 client is only closed.
            let words = code.name(PacketType::Disconnect, ProtocolVersion::V5).unwrap_or("error");
            format!("{} (closed without a reason code: MQTT {version})", words.to_lowercase())
        }
    };
    match reason {
        CloseReason::ClientDisconnect => "client sent DISCONNECT".into(),
        CloseReason::ConnectRefused(c) => format!("CONNECT refused: {}", c.display(PacketType::ConnAck, version)),
        CloseReason::ProtocolError(c) => format!("protocol error: {}", code(*c, PacketType::Disconnect)),
        CloseReason::KeepAliveTimeout => code(ReasonCode::KEEP_ALIVE_TIMEOUT, PacketType::Disconnect),
        CloseReason::ConnectTimeout => "no CONNECT within the connect timeout".into(),
        CloseReason::SessionTakenOver => code(ReasonCode::SESSION_TAKEN_OVER, PacketType::Disconnect),
        CloseReason::SlowConsumer => "slow consumer: nothing could be written for the write timeout".into(),
        CloseReason::ServerShutdown => code(ReasonCode::SERVER_SHUTTING_DOWN, PacketType::Disconnect),
        CloseReason::Administrative => code(ReasonCode::ADMINISTRATIVE_ACTION, PacketType::Disconnect),
    }
}

/// A DISCONNECT from the client, with its reason code in 5.0.
pub(crate) fn client_disconnect_reason(code: ReasonCode, version: ProtocolVersion) -> String {
    if version.is_v5() {
        format!("client sent DISCONNECT {}", code.display(PacketType::Disconnect, version))
    } else {
        "client sent DISCONNECT".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_named_for_the_version() {
        let v3 = ProtocolVersion::V3_1_1;
        let v5 = ProtocolVersion::V5;
        let refused = close_reason(&CloseReason::ConnectRefused(ReasonCode(0x04)), v3);
        assert_eq!(refused, "CONNECT refused: 0x04 (Connection Refused, bad user name or password)");
        assert!(!refused.contains("Will"));
        assert_eq!(close_reason(&CloseReason::SessionTakenOver, v5), "0x8e (Session taken over)");
        assert_eq!(
            close_reason(&CloseReason::KeepAliveTimeout, v3),
            "keep alive timeout (closed without a reason code: MQTT 3.1.1)"
        );
        assert_eq!(
            client_disconnect_reason(ReasonCode(0x04), v5),
            "client sent DISCONNECT 0x04 (Disconnect with Will Message)"
        );
    }
}

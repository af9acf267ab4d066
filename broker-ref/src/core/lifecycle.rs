//! The end of connections and sessions: DISCONNECT from the client, closing, wills
//! (§3.1.2.5), session end and expiry, broker shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use mqttkit_codec::{Disconnect, ReasonCode};

use super::session::NEVER_EXPIRES;
use super::timers::{release_if_empty, release_if_empty_map};
use super::will::WillMessage;
use super::{CloseReason, ConnId, Core, Output, add, secs};

impl Core {
    pub(super) fn handle_disconnect(&mut self, id: ConnId, disconnect: &Disconnect<'_>, now: Instant) {
        let Some(version) = self.conns.get(&id).map(|c| c.version) else { return };
        self.log_close(id, &crate::log::client_disconnect_reason(disconnect.reason_code, version));
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.version.is_v5() {
            if let Some(expiry) = disconnect.properties.session_expiry_interval() {
                // "If the Session Expiry Interval in the CONNECT packet was zero, then it is
                // a Protocol Error to set a non-zero Session Expiry Interval in the
                // DISCONNECT packet sent by the Client" (§3.14.2.2.2).
                if conn.connect_expiry == 0 && expiry != 0 {
                    self.protocol_error(id, ReasonCode::PROTOCOL_ERROR, now);
                    return;
                }
                let expiry = expiry.min(self.config.max_session_expiry_secs);
                if let Some(session) = conn.client_id.as_ref().and_then(|c| self.sessions.get_mut(c)) {
                    session.expiry_interval = expiry;
                }
            }
            // "On receipt of DISCONNECT with a Reason Code of 0x00 (Success) the Server MUST
            // discard any Will Message associated with the current Connection without
            // publishing it" [MQTT-3.14.4-3]; 0x04 asks for the will to be published.
            let publish_will = disconnect.reason_code == ReasonCode::DISCONNECT_WITH_WILL_MESSAGE;
            if !publish_will {
                conn.will = None;
            }
            self.close(id, CloseReason::ClientDisconnect, publish_will, now);
        } else {
            // 3.1.1: "On receipt of DISCONNECT the Server MUST discard any Will Message
            // associated with the current connection without publishing it" [MQTT-3.14.4-3].
            conn.will = None;
            self.close(id, CloseReason::ClientDisconnect, false, now);
        }
    }

    /// Log why a connection ends (an accepted client at INFO).
    pub(super) fn log_close(&self, id: ConnId, reason: &str) {
        let Some(conn) = self.conns.get(&id) else { return };
        match &conn.client_id {
            Some(client_id) => crate::log::disconnected(
                crate::log::ClientLog {
                    client_id,
                    user: conn.user.as_deref(),
                    peer: conn.peer,
                    transport: conn.transport,
                    version: conn.version,
                },
                reason,
            ),
            None => crate::log::closed_before_connect(conn.peer, conn.transport, reason),
        }
    }

    /// Emit Close (with the bytes still queued for the connection) and forget the
    /// connection.
    pub(super) fn close(&mut self, id: ConnId, reason: CloseReason, publish_will: bool, now: Instant) {
        let Some(conn) = self.conns.get(&id) else { return };
        // Refusals were logged with the CONNECT; a client DISCONNECT by its handler.
        if !matches!(reason, CloseReason::ClientDisconnect | CloseReason::ConnectRefused(_)) {
            let text = crate::log::close_reason(&reason, conn.version);
            self.log_close(id, &text);
        }
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let unsent = Self::take_unsent(conn.out.take());
        self.emit_close(Output::Close { id, reason, unsent });
        self.drop_conn(id, publish_will, now);
    }

    /// Forget a connection: detach its session (start expiry) and handle its will.
    pub(super) fn drop_conn(&mut self, id: ConnId, publish_will: bool, now: Instant) {
        let Some(conn) = self.conns.remove(&id) else { return };
        if self.conns.is_empty() {
            self.conns = BTreeMap::new();
        }
        if let Some(at) = conn.deadline {
            self.conn_timers.remove(&(at, id));
            release_if_empty(&mut self.conn_timers);
        }
        let Some(client) = conn.client_id else { return };
        let Some(session) = self.sessions.get(&client) else { return };
        if session.conn != Some(id) {
            return;
        }
        let relevant = session.expiry_interval > 0 || conn.will.is_some();
        self.touch_client(&client, relevant);
        let Some(session) = self.sessions.get_mut(&client) else { return };
        session.conn = None;
        let expiry = session.expiry_interval;
        // "The Client and Server MUST store the Session State after the Network
        // Connection is closed if the Session Expiry Interval is greater than 0"
        // [MQTT-3.1.2-23]; with 0 the session ends with the connection.
        // (With 0 nothing is scheduled: the session ends below.)
        if expiry != 0 {
            let expires_at = match expiry {
                NEVER_EXPIRES => None,
                // An interval too large for the clock means "never".
                e => now.checked_add(secs(u64::from(e))),
            };
            self.set_session_expiry(&client, expires_at);
        }
        if let (true, Some(will)) = (publish_will, conn.will.map(|will| *will)) {
            // "The Will Message MUST be published after the Network Connection is
            // subsequently closed and either the Will Delay Interval has elapsed or the
            // Session ends, whichever happens first" [MQTT-3.1.2-8].
            if will.delay == 0 || expiry == 0 {
                self.publish_will(client.clone(), will, now);
            } else {
                let delay = secs(u64::from(will.delay.min(expiry)));
                self.wills.schedule(client.clone(), add(now, delay), will);
            }
        }
        if expiry == 0 {
            self.end_session(&client, now);
        }
    }

    pub(super) fn publish_will(&mut self, client: Arc<str>, will: WillMessage, now: Instant) {
        let msg = Arc::new(will.into_message(client, now));
        self.route(msg, now);
    }

    /// A session ends: its pending will is published, its state discarded.
    pub(super) fn end_session(&mut self, client: &Arc<str>, now: Instant) {
        if let Some(will) = self.wills.take(client) {
            self.publish_will(client.clone(), will, now);
        }
        self.remove_session(client);
    }

    pub(super) fn remove_session(&mut self, client: &Arc<str>) {
        self.touch(client);
        let Some(session) = self.sessions.remove(client) else { return };
        release_if_empty_map(&mut self.sessions);
        if let Some(at) = session.expires_at {
            self.session_timers.remove(&(at, client.clone()));
            release_if_empty(&mut self.session_timers);
        }
        // Found by the `broker_core` fuzzer: recomputing shared-ness from the session's
        // *current* version left a stale `$share/...` subscription behind when the session
        // had been resumed under another version. Each filter keeps the form it was
        // subscribed with.
        for filter in session.subscriptions.keys() {
            self.subs.remove(filter, client);
        }
    }

    /// An operator disconnects the client `client_id`: DISCONNECT 0x98 (Administrative
    /// action) in 5.0, then the connection is closed and its will published, as for any
    /// close the client did not ask for. `false` if the client is not connected.
    pub fn disconnect_client(&mut self, client_id: &str, now: Instant) -> bool {
        let Some(id) = self.sessions.get(client_id).and_then(|s| s.conn) else { return false };
        self.server_disconnect(id, ReasonCode::ADMINISTRATIVE_ACTION);
        self.close(id, CloseReason::Administrative, true, now);
        true
    }

    /// Shut down: DISCONNECT 0x8B to every 5.0 client, close every connection. Sessions
    /// stay in memory (and in the persistent store, when there is one).
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.server_disconnect(id, ReasonCode::SERVER_SHUTTING_DOWN);
            self.close(id, CloseReason::ServerShutdown, false, now);
        }
    }
}

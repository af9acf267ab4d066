//! Timers: the ordered deadline indexes (connect timeout and keep alive per connection,
//! expiry of disconnected sessions, delayed wills, `$SYS`), and what happens when each
//! falls due.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit_codec::{QoS, ReasonCode};

use super::connection::{Conn, ConnState};
use super::message::Message;
use super::sys::{self, ClientInfo};
use super::{CloseReason, ConnId, Core, add, secs};

impl Core {
    /// The earliest instant at which [`Self::handle_timeout`] has something to do.
    /// O(1): every kind of deadline is kept in an ordered index.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conn_timers.first().map(|(at, _)| *at);
        let sessions = self.session_timers.first().map(|(at, _)| *at);
        [conns, sessions, self.wills.next_deadline(), self.next_sys].into_iter().flatten().min()
    }

    /// Register a connection's deadline exactly, for when it may have moved earlier (a new
    /// connection, CONNECT accepted, a write that stalls). Deadlines that only move later
    /// (every packet received restarts keep alive, every write restarts the write timeout)
    /// are not re-registered each time: the earlier entry falls due, and
    /// [`Self::handle_timeout`] registers the real deadline then. So the index holds, per
    /// connection, at most one instant, never later than its real deadline.
    pub(super) fn reschedule_conn(&mut self, id: ConnId) {
        let (connect_timeout, write_timeout) = (self.config.connect_timeout(), self.config.write_timeout());
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let deadline = conn_deadline(conn, connect_timeout, write_timeout);
        if deadline == conn.deadline {
            return;
        }
        if let Some(old) = conn.deadline {
            self.conn_timers.remove(&(old, id));
            release_if_empty(&mut self.conn_timers);
        }
        if let Some(at) = deadline {
            self.conn_timers.insert((at, id));
        }
        conn.deadline = deadline;
    }

    /// Set when a (disconnected) session expires, keeping the index in step.
    pub(super) fn set_session_expiry(&mut self, client: &Arc<str>, at: Option<Instant>) {
        let Some(session) = self.sessions.get_mut(client) else { return };
        if session.expires_at == at {
            return;
        }
        if let Some(old) = session.expires_at {
            self.session_timers.remove(&(old, client.clone()));
            release_if_empty(&mut self.session_timers);
        }
        if let Some(at) = at {
            self.session_timers.insert((at, client.clone()));
        }
        session.expires_at = at;
    }

    /// Run everything due at `now`: connect and keep-alive timeouts, delayed wills,
    /// session expiry, `$SYS` publication.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each index is consumed from its earliest entry: O(log n) per expired deadline,
        // nothing for the ones still pending. Handling a deadline never schedules another
        // one at or before `now`, so the loops end.
        let (connect_timeout, write_timeout) = (self.config.connect_timeout(), self.config.write_timeout());
        while let Some(&(at, id)) = self.conn_timers.first()
            && at <= now
        {
            self.conn_timers.remove(&(at, id));
            release_if_empty(&mut self.conn_timers);
            let Some(conn) = self.conns.get_mut(&id) else { continue };
            conn.deadline = None;
            match conn_deadline(conn, connect_timeout, write_timeout) {
                None => {}
                // Moved later since it was registered: register where it is now.
                Some(due) if due > now => {
                    conn.deadline = Some(due);
                    self.conn_timers.insert((due, id));
                }
                Some(_) if conn.stalled_since.is_some_and(|t| add(t, write_timeout) <= now) => {
                    // Bytes waiting and none written for the write timeout: a client that
                    // stopped reading. Closed like a network failure (the will is sent).
                    self.close(id, CloseReason::SlowConsumer, true, now);
                }
                Some(_) if conn.state == ConnState::Active => {
                    // "If the Keep Alive value is non-zero and the Server does not receive
                    // an MQTT Control Packet from the Client within one and a half times
                    // the Keep Alive time period, it MUST close the Network Connection"
                    // [MQTT-3.1.2-22] (3.1.1 [MQTT-3.1.2-24]); the will is published.
                    self.server_disconnect(id, ReasonCode::KEEP_ALIVE_TIMEOUT);
                    self.close(id, CloseReason::KeepAliveTimeout, true, now);
                }
                Some(_) => self.close(id, CloseReason::ConnectTimeout, false, now),
            }
        }
        for (client, will) in self.wills.take_due(now) {
            self.touch_client(&client, false);
            // "The Server MUST NOT send the Will Message" once reconnected [MQTT-3.1.3-9]:
            // reconnection removed it from the pending list.
            self.publish_will(client, will, now);
        }
        while let Some((at, client)) = self.session_timers.first().cloned()
            && at <= now
        {
            self.session_timers.remove(&(at, client.clone()));
            release_if_empty(&mut self.session_timers);
            let Some(session) = self.sessions.get_mut(&client) else { continue };
            session.expires_at = None;
            if session.conn.is_none() {
                // "The Server MUST discard the Session State when the Network Connection is
                // closed and the Session Expiry Interval has passed" [MQTT-4.1.0-2].
                self.end_session(&client, now);
            }
        }
        if let Some(at) = self.next_sys
            && at <= now
        {
            self.publish_sys(now);
            self.next_sys = Some(add(now, secs(self.config.sys_interval_secs.max(1))));
        }
    }

    fn publish_sys(&mut self, now: Instant) {
        // The client list tells whoever may read `$SYS` who is connected and from where:
        // only with `sys_client_list` (the management API has it behind credentials).
        let clients = self.config.sys_client_list.then(|| self.sys_client_list());
        let snapshot = sys::Snapshot {
            stats: self.stats.clone(),
            started: self.started,
            clients_connected: self.sessions.values().filter(|s| s.conn.is_some()).count(),
            clients_total: self.sessions.len(),
            subscriptions: self.subs.len(),
            retained: self.retained.len(),
            clients,
        };
        for (topic, payload) in sys::topics(&snapshot, now) {
            let msg = Arc::new(Message::new(&topic, Bytes::from(payload), QoS::AtMostOnce, true));
            self.route(msg, now);
        }
    }

    fn sys_client_list(&self) -> Vec<ClientInfo> {
        let mut clients: Vec<ClientInfo> = self
            .sessions
            .values()
            .map(|s| ClientInfo {
                client_id: s.client_id.to_string(),
                connected: s.conn.is_some(),
                peer: s.conn.and_then(|c| self.conns.get(&c)).map(|c| c.peer.to_string()),
                protocol: s.version.to_string(),
                keep_alive: s.conn.and_then(|c| self.conns.get(&c)).map(|c| c.keep_alive),
                subscriptions: s.subscriptions.keys().map(|f| f.as_str().to_owned()).collect(),
                queued: s.queued(),
            })
            .collect();
        // Sessions are hashed: the list is sorted for a stable output.
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        clients
    }
}

/// An emptied ordered index keeps its last node; drop it. Otherwise a node allocated
/// while many connections came and went stays above their freed memory, which the
/// allocator can then not give back to the system.
pub(super) fn release_if_empty<T: Ord>(set: &mut BTreeSet<T>) {
    if set.is_empty() {
        *set = BTreeSet::new();
    }
}

/// An emptied hash map gives its table back. (Not shrunk while some entries remain:
/// the smaller table would be a new allocation made late, above the memory of the
/// connections that went, keeping the allocator from returning it.)
pub(super) fn release_if_empty_map<K, V>(map: &mut HashMap<K, V>) {
    if map.is_empty() && map.capacity() > 0 {
        *map = HashMap::new();
    }
}

/// When a connection has to be looked at: the connect timeout before CONNECT, then keep
/// alive, and the write timeout while its bytes are not being written.
pub(super) fn conn_deadline(conn: &Conn, connect_timeout: Duration, write_timeout: Duration) -> Option<Instant> {
    let protocol = match conn.state {
        ConnState::AwaitConnect => Some(add(conn.last_rx, connect_timeout)),
        ConnState::Active => keep_alive_deadline(conn),
    };
    let stalled = conn.stalled_since.map(|since| add(since, write_timeout));
    match (protocol, stalled) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub(super) fn keep_alive_deadline(conn: &Conn) -> Option<Instant> {
    (conn.keep_alive > 0).then(|| add(conn.last_rx, Duration::from_millis(u64::from(conn.keep_alive) * 1500)))
}

//! The sans-IO broker: a deterministic state machine with no sockets and no clock.
//!
//! Inputs: [`Core::connection_opened`], [`Core::handle_bytes`] (or
//! [`Core::handle_packet`]), [`Core::connection_closed`], [`Core::handle_timeout`].
//! Outputs: [`Core::poll_output`] (connections with bytes to write — taken with
//! [`Core::transmit`] and acknowledged with [`Core::transmitted`] — and connections to
//! close) and [`Core::poll_timeout`] (the next deadline). Every call takes `now`.
//!
//! The `impl Core` blocks are split by concern:
//!
//! | module | what it handles |
//! |---|---|
//! | [`connection`] | opening, framing incoming bytes, dispatching packets, protocol errors |
//! | [`connect`] | CONNECT: refusals, client ids, session takeover and resumption, CONNACK |
//! | [`publish`] | incoming PUBLISH (aliases, limits, ACL) and its acknowledgements |
//! | [`delivery`] | routing a message to sessions, the in-flight window, acks from subscribers |
//! | [`subscribe`] | SUBSCRIBE / UNSUBSCRIBE |
//! | [`lifecycle`] | DISCONNECT, closing, wills, session end, shutdown |
//! | [`timers`] | deadline indexes, keep-alive / connect timeouts, expiry, `$SYS` |
//! | [`outputs`] | encoding packets and queuing them for the I/O layer |

mod connect;
mod connection;
mod delivery;
mod durable;
mod inflight;
mod inspect;
mod lifecycle;
mod message;
mod outputs;
mod publish;
mod restore;
mod retained;
mod session;
mod subscribe;
mod subscriptions;
mod sys;
mod timers;
mod will;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqttkit_codec::ReasonCode;

pub use self::connection::Traffic;
pub use self::inspect::{ClientDetail, RetainedDetail};
pub use self::message::{Delivery, Message};
pub use self::outputs::Output;
pub use self::subscriptions::{SubOptions, SubscriptionFilter};
pub use self::sys::{ClientInfo, Stats, VERSION};

use self::connection::Conn;
use self::retained::RetainedStore;
use self::session::Session;
use self::subscriptions::Subscriptions;
use self::will::PendingWills;
use crate::config::Config;

/// Identifies one network connection (chosen by the caller, unique while open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl From<u64> for ConnId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

/// Why the core closes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// CONNECT was refused with this CONNACK code.
    ConnectRefused(ReasonCode),
    /// Malformed packet or protocol error (the 5.0 reason code).
    ProtocolError(ReasonCode),
    /// No packet within 1.5 × Keep Alive.
    KeepAliveTimeout,
    /// No CONNECT within the connect timeout.
    ConnectTimeout,
    /// Another connection took the session over.
    SessionTakenOver,
    /// Bytes were waiting and the connection accepted none for the write timeout (or the
    /// I/O layer asked, [`Core::disconnect_slow_consumer`]).
    SlowConsumer,
    /// The broker is shutting down.
    ServerShutdown,
    /// An operator disconnected the client ([`Core::disconnect_client`]).
    Administrative,
}

/// The broker state machine.
#[derive(Debug)]
pub struct Core {
    config: Arc<Config>,
    /// Checks user names and passwords.
    auth: crate::auth::Authenticator,
    /// Boxed: the maps stay small, and a connection's state is one allocation.
    conns: BTreeMap<ConnId, Box<Conn>>,
    /// Connect-timeout and keep-alive deadlines, one entry per connection that has one
    /// (mirrors `Conn::deadline`).
    conn_timers: BTreeSet<(Instant, ConnId)>,
    /// By client id. A hash map: it is looked up for every delivery and acknowledgement,
    /// and client ids often share long prefixes.
    sessions: HashMap<Arc<str>, Box<Session>>,
    /// Expiry deadlines of disconnected sessions (mirrors `Session::expires_at`).
    session_timers: BTreeSet<(Instant, Arc<str>)>,
    subs: Subscriptions,
    retained: RetainedStore,
    wills: PendingWills,
    outputs: VecDeque<Output>,
    stats: Stats,
    started: Instant,
    next_sys: Option<Instant>,
    next_assigned_id: u64,
    /// With persistence: what changed and what waits for the store.
    durable: Option<Box<durable::Durability>>,
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `now + d`, or `now` if that does not fit the clock.
fn add(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

impl Core {
    /// A broker with this configuration, started at `now`.
    pub fn new(config: Config, now: Instant) -> Self {
        let next_sys = (config.sys_interval_secs > 0).then_some(now);
        let users = config
            .users
            .iter()
            .filter_map(|(user, hash)| Some((user.clone(), crate::auth::PasswordHash::parse(hash).ok()?)))
            .collect();
        let auth = crate::auth::Authenticator::new(users, config.auth_enabled(), config.allow_anonymous);
        let config_persistent = config.persistence.is_some();
        Self {
            config: Arc::new(config),
            auth,
            conns: BTreeMap::new(),
            conn_timers: BTreeSet::new(),
            sessions: HashMap::new(),
            session_timers: BTreeSet::new(),
            subs: Subscriptions::default(),
            retained: RetainedStore::default(),
            wills: PendingWills::default(),
            outputs: VecDeque::new(),
            stats: Stats::default(),
            started: now,
            next_sys,
            next_assigned_id: 0,
            durable: config_persistent.then(Box::default),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Number of sessions (connected or not).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// The client id of the session attached to connection `id`.
    fn client_of(&self, id: ConnId) -> Option<Arc<str>> {
        self.conns.get(&id).and_then(|c| c.client_id.clone())
    }
}

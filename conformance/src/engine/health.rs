//! Is the broker still there? A liveness check (connect, CONNECT, any CONNACK) runs after
//! every scenario that did not pass; the first failed check records which scenarios were in
//! flight, so a broker that dies is reported once — not as dozens of unrelated failures.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{RunConfig, scaled};
use crate::client::{Connection, Event, Trace};
use crate::outcome::BrokerStopped;
use crate::outgoing::{BytesSpec, ConnectSpec, OutgoingPacket};
use crate::template::Variables;
use crate::version::Version;

/// Scenario runs in flight and whether the broker was seen to stop.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// The broker answered at least once in this run: only then can it be said to stop.
    answered: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    in_flight: BTreeMap<u64, String>,
    stopped: Option<BrokerStopped>,
}

impl Health {
    /// A fresh tracker; `answered` if the broker is known to have answered a CONNECT (the
    /// probe's).
    pub fn new(answered: bool) -> Self {
        Self { started: Instant::now(), answered: AtomicBool::new(answered), state: Mutex::new(State::default()) }
    }

    /// The broker answered (a scenario passed).
    pub fn answered(&self) {
        self.answered.store(true, Ordering::Relaxed);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A scenario run (`key`, shown as `label`) starts.
    pub fn begin(&self, key: u64, label: String) {
        self.state().in_flight.insert(key, label);
    }

    /// A scenario run ends.
    pub fn end(&self, key: u64) {
        self.state().in_flight.remove(&key);
    }

    /// Whether, and when, the broker was seen to stop.
    pub fn stopped(&self) -> Option<BrokerStopped> {
        self.state().stopped.clone()
    }

    /// Check that the broker still answers a CONNECT after the run `label` did not pass.
    /// Returns the record of the stop if it does not (now or earlier).
    pub async fn check(&self, config: &RunConfig, version: Version, label: &str) -> Option<BrokerStopped> {
        if let Some(stopped) = self.stopped() {
            return Some(stopped);
        }
        // A broker never seen answering was unreachable from the start, not stopped: each
        // run reports its own error.
        if !self.answered.load(Ordering::Relaxed) {
            return None;
        }
        let mut last_error = String::new();
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(scaled(0.5, config.time_scale)).await;
            }
            match answers_connect(config, version).await {
                Ok(()) => {
                    self.answered();
                    return None;
                }
                Err(e) => last_error = e,
            }
        }
        let mut state = self.state();
        if state.stopped.is_none() {
            let mut during: Vec<String> = state.in_flight.values().cloned().collect();
            if !during.iter().any(|l| l == label) {
                during.push(label.to_owned());
            }
            state.stopped = Some(BrokerStopped {
                noticed_by: label.to_owned(),
                during,
                at_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                evidence: last_error,
            });
        }
        state.stopped.clone()
    }
}

/// Open a connection, send a plain CONNECT and wait for any CONNACK (a refusal is an answer
/// too). `Err` says what happened instead.
pub async fn answers_connect(config: &RunConfig, version: Version) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + scaled(3.0, config.time_scale).max(Duration::from_secs(1));
    let mut connection = Connection::open(&config.connector, "liveness", version, Trace::default())
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let spec = ConnectSpec {
        username: config.username.clone(),
        password: config.password.clone().map(BytesSpec::Text),
        ..ConnectSpec::default()
    };
    let client_id = format!("mqlive{}", super::run_tag());
    let (bytes, _) = OutgoingPacket::Connect(spec).encode(version, &Variables::default(), &client_id)?;
    connection.send(&bytes).await?;
    let answer = match connection.next_event(deadline).await {
        Some(Event::Packet(packet)) if packet.kind == "CONNACK" => Ok(()),
        Some(Event::Packet(packet)) => Err(format!("answered CONNECT with {packet}")),
        Some(Event::Closed(how) | Event::TransportFailed(how)) => Err(format!("CONNECT answered by a close ({how})")),
        None => Err("no CONNACK within 3 s".to_owned()),
    };
    if answer.is_ok() {
        if let Ok((bytes, _)) = (OutgoingPacket::Disconnect { reason_code: 0, properties: Vec::new() }).encode(
            version,
            &Variables::default(),
            "",
        ) {
            let _ = connection.send(&bytes).await;
        }
        connection.close().await;
    }
    answer
}

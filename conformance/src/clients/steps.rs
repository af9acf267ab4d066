//! One client scenario run: the runner's listener, the driver, and each server-role step.
//!
//! Verdicts are taken on typed packets and driver events. A timeout is a failure (or
//! inconclusive for a precondition), never a pass; a driver answering `unsupported` makes
//! the run a skip; a driver that hangs, crashes or garbles its output makes it an error; a
//! library refusing a command the scenario needed makes it inconclusive.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mqttkit_codec::{ConnAck, Packet, PacketId, PacketType, Properties, ReasonCode, ReasonCodes, SubAck, UnsubAck};
use serde_json::{Value as Json, json};

use super::connection::{AutoAnswers, ConnEvent, Listener, ServerConnection};
use super::driver::{DriverFailure, DriverSession, Reply};
use super::scenario::{ClientScenario, DRIVER_REPLY_TIMEOUT, ServerAction, ServerPacket, ServerStep};
use crate::client::Trace;
use crate::matcher::{PacketPattern, ValuePattern, match_value};
use crate::observed::Observed;
use crate::outcome::{Direction, Outcome, OutcomeKind};
use crate::outgoing::{IntSpec, OutgoingPacket, encode_properties};
use crate::template::Variables;
use crate::version::Version;

/// A keep-alive gap counts as too long above `keep_alive × GAP_FACTOR + GAP_SLACK ×
/// time-scale` seconds: timer-driven clients check their keep alive every quarter of it,
/// and loopback plus scheduling adds noise.
pub const GAP_FACTOR: f64 = 1.25;
/// See [`GAP_FACTOR`].
pub const GAP_SLACK: f64 = 0.3;

/// Why a step did not succeed.
pub(crate) struct StepFailure {
    pub kind: OutcomeKind,
    pub reason: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl StepFailure {
    fn fail(reason: impl Into<String>, expected: Option<String>, actual: Option<String>) -> Self {
        Self { kind: OutcomeKind::Fail, reason: reason.into(), expected, actual }
    }

    fn with(kind: OutcomeKind, reason: impl Into<String>) -> Self {
        Self { kind, reason: reason.into(), expected: None, actual: None }
    }
}

impl From<DriverFailure> for StepFailure {
    fn from(failure: DriverFailure) -> Self {
        Self::with(OutcomeKind::Error, failure.to_string())
    }
}

/// What the next client packet turned out to be.
enum Next {
    Packet(Observed),
    Closed(String),
    Timeout,
}

/// The state of one run.
pub(crate) struct ClientRun<'a> {
    pub scenario: &'a ClientScenario,
    pub version: Version,
    pub time_scale: f64,
    pub vars: Variables,
    pub trace: Trace,
    pub listener: Listener,
    pub driver: DriverSession,
    pub auto: Arc<AutoAnswers>,
    pub current: Option<ServerConnection>,
    pub earlier: Vec<ServerConnection>,
    /// QoS 2 packet ids acknowledged with `ack = true`, whose PUBREL gets a PUBCOMP.
    pub awaiting_pubrel: BTreeSet<u64>,
}

impl ClientRun<'_> {
    pub async fn execute(&mut self) -> Outcome {
        for (index, step) in self.scenario.steps.iter().enumerate() {
            if step.versions.as_ref().is_some_and(|versions| !versions.contains(&self.version)) {
                continue;
            }
            if let Err(mut failure) = self.step(step).await {
                if step.precondition && failure.kind == OutcomeKind::Fail {
                    failure.kind = OutcomeKind::Inconclusive;
                    failure.reason =
                        format!("a precondition of the scenario was not met, so it cannot tell: {}", failure.reason);
                }
                let mut reason = failure.reason;
                if let Some(note) = &step.note {
                    reason = format!("{reason} — {note}");
                }
                return Outcome {
                    kind: failure.kind,
                    reason: Some(reason),
                    expected: failure.expected,
                    actual: failure.actual,
                    step: Some(index + 1),
                    line: Some(step.line),
                };
            }
        }
        Outcome::pass()
    }

    fn seconds(&self, seconds: f64) -> Duration {
        crate::engine::scaled(seconds, self.time_scale)
    }

    fn deadline(&self, seconds: f64) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.seconds(seconds)
    }

    fn note(&self, text: String) {
        self.trace.record("runner", Direction::Event, text, &[]);
    }

    fn connection(&mut self) -> Result<&mut ServerConnection, StepFailure> {
        self.current.as_mut().ok_or_else(|| {
            StepFailure::with(
                OutcomeKind::Error,
                "no connection yet: the scenario needs an `accept` or `connect` step first",
            )
        })
    }

    async fn step(&mut self, step: &ServerStep) -> Result<(), StepFailure> {
        match &step.action {
            ServerAction::Drive { command, may_fail, repeat, interval } => {
                for round in 0..*repeat {
                    if round > 0 {
                        tokio::time::sleep(self.seconds(*interval)).await;
                    }
                    self.drive(command, *may_fail).await?;
                }
                Ok(())
            }
            ServerAction::Accept { timeout } => {
                let deadline = self.deadline(*timeout);
                match self.listener.accept(deadline).await {
                    Some(connection) => {
                        if let Some(previous) = self.current.replace(connection) {
                            self.earlier.push(previous);
                        }
                        Ok(())
                    }
                    None => Err(StepFailure::fail(
                        format!(
                            "the client did not open a connection within {:.1} s",
                            self.seconds(*timeout).as_secs_f64()
                        ),
                        Some("a new connection".into()),
                        Some("none (timeout)".into()),
                    )),
                }
            }
            ServerAction::Expect { packets, in_any_order, timeout, ack, ignore } => {
                self.expect(packets, *in_any_order, *timeout, *ack, ignore).await.map(|_| ())
            }
            ServerAction::ExpectEvent { events, in_any_order, timeout } => {
                self.expect_events(events, *in_any_order, *timeout).await
            }
            ServerAction::ExpectNoEvent { events, window } => self.expect_no_event(events, *window).await,
            ServerAction::ExpectNothing { window } => {
                let deadline = self.deadline(*window);
                let waited = self.seconds(*window).as_secs_f64();
                match self.next_packet(deadline, &[]).await? {
                    Next::Timeout => Ok(()),
                    Next::Packet(packet) => Err(StepFailure::fail(
                        "the client sent a packet where none was expected",
                        Some(format!("nothing for {waited:.1} s")),
                        Some(packet.to_string()),
                    )),
                    Next::Closed(how) => Err(StepFailure::fail(
                        "the client closed the connection where nothing was expected",
                        Some(format!("nothing for {waited:.1} s, connection open")),
                        Some(how),
                    )),
                }
            }
            ServerAction::ExpectNone { packets, window, ack } => self.expect_none(packets, *window, *ack).await,
            ServerAction::ExpectClosed { timeout, allow, disconnect_reason } => {
                self.expect_closed(*timeout, allow, disconnect_reason.as_ref()).await
            }
            ServerAction::ExpectGaps { keep_alive } => self.expect_gaps(*keep_alive),
            ServerAction::Send { packet, repeat, interval } => {
                for round in 0..*repeat {
                    if round > 0 {
                        tokio::time::sleep(self.seconds(*interval)).await;
                    }
                    let bytes = self.encode(packet)?;
                    // A failed write is in the trace; the next expectation sees the close.
                    let _ = self.connection()?.send(&bytes).await;
                }
                Ok(())
            }
            ServerAction::Close => {
                self.connection()?.close().await;
                Ok(())
            }
            ServerAction::Wait { seconds } => {
                tokio::time::sleep(self.seconds(*seconds)).await;
                Ok(())
            }
            ServerAction::Distinct { names } => {
                let values: Vec<(&String, Option<&str>)> = names.iter().map(|n| (n, self.vars.get(n))).collect();
                if let Some((name, _)) = values.iter().find(|(_, v)| v.is_none()) {
                    return Err(StepFailure::with(OutcomeKind::Error, format!("`{{{name}}}` was never captured")));
                }
                let described: Vec<String> =
                    values.iter().map(|(n, v)| format!("{n}={}", v.unwrap_or_default())).collect();
                let mut seen = BTreeSet::new();
                if values.iter().all(|(_, v)| seen.insert(*v)) {
                    Ok(())
                } else {
                    Err(StepFailure::fail(
                        "values that must differ are equal",
                        Some(format!("{} pairwise different", names.join(", "))),
                        Some(described.join(", ")),
                    ))
                }
            }
            ServerAction::Exchange { pattern, requested, timeout } => self.exchange(pattern, requested, *timeout).await,
            ServerAction::Forget { names } => {
                for name in names {
                    self.vars.unset(name);
                }
                Ok(())
            }
            ServerAction::Auto { pingresp } => {
                if let Some(on) = pingresp {
                    self.auto.pingresp.store(*on, Ordering::Relaxed);
                    self.note(format!("automatic PINGRESP {}", if *on { "on" } else { "off (withheld)" }));
                }
                Ok(())
            }
        }
    }

    /// Expand a command template and hand it to the driver.
    async fn drive(&mut self, command: &Json, may_fail: bool) -> Result<(), StepFailure> {
        let mut command = expand_json(command, &self.vars).map_err(|e| StepFailure::with(OutcomeKind::Error, e))?;
        let name = command.get("cmd").and_then(Json::as_str).unwrap_or_default().to_owned();
        if name == "connect" {
            command["url"] = json!(self.listener.url);
            command["version"] = json!(self.version.label());
        }
        let timeout = self.seconds(DRIVER_REPLY_TIMEOUT);
        match self.driver.command(command, timeout).await? {
            (_, Reply::Ack) => Ok(()),
            (_, Reply::Unsupported(why)) => {
                Err(StepFailure::with(OutcomeKind::Skip, format!("the driver cannot do this `{name}`: {why}")))
            }
            (_, Reply::Error(why)) if may_fail => {
                self.note(format!("the library refused `{name}` (allowed here): {why}"));
                Ok(())
            }
            (_, Reply::Error(why)) => Err(StepFailure::with(
                OutcomeKind::Inconclusive,
                format!(
                    "the library refused the `{name}` command ({why}), so the scenario cannot check what it is about"
                ),
            )),
        }
    }

    /// The next packet of the current connection, answering PUBREL of flows acknowledged
    /// with `ack = true` and passing over PINGREQ unless `patterns` ask for one.
    async fn next_packet(
        &mut self,
        deadline: tokio::time::Instant,
        patterns: &[&PacketPattern],
    ) -> Result<Next, StepFailure> {
        let wants_ping = patterns.iter().any(|p| p.kinds.iter().any(|k| k == "PINGREQ"));
        loop {
            let event = self.connection()?.next_event(deadline).await;
            let packet = match event {
                None => return Ok(Next::Timeout),
                Some(ConnEvent::Closed(how)) => return Ok(Next::Closed(how)),
                Some(ConnEvent::Packet(packet, _)) => packet,
            };
            if packet.kind == "PINGREQ" && !wants_ping {
                continue;
            }
            if let ("PUBREL", Some(id)) = (packet.kind.as_str(), packet.int("packet_id")) {
                if self.awaiting_pubrel.remove(&id) {
                    self.respond(PacketType::PubComp, id).await?;
                    continue;
                }
            }
            return Ok(Next::Packet(packet));
        }
    }

    async fn respond(&mut self, kind: PacketType, packet_id: u64) -> Result<(), StepFailure> {
        let packet = ServerPacket::Common(OutgoingPacket::PublishResponse {
            kind,
            packet_id: IntSpec::Literal(packet_id),
            reason_code: 0,
            properties: Vec::new(),
        });
        let bytes = self.encode(&packet)?;
        let _ = self.connection()?.send(&bytes).await;
        Ok(())
    }

    /// Acknowledge a QoS 1 / 2 PUBLISH (PUBACK; PUBREC, with PUBCOMP on its PUBREL).
    async fn acknowledge(&mut self, packet: &Observed) -> Result<(), StepFailure> {
        if packet.kind != "PUBLISH" {
            return Ok(());
        }
        match (packet.int("qos"), packet.int("packet_id")) {
            (Some(1), Some(id)) => self.respond(PacketType::PubAck, id).await,
            (Some(2), Some(id)) => {
                self.awaiting_pubrel.insert(id);
                self.respond(PacketType::PubRec, id).await
            }
            _ => Ok(()),
        }
    }

    async fn expect(
        &mut self,
        packets: &[Vec<PacketPattern>],
        in_any_order: bool,
        timeout: f64,
        ack: bool,
        ignore: &[PacketPattern],
    ) -> Result<Vec<Observed>, StepFailure> {
        let deadline = self.deadline(timeout);
        let mut remaining: Vec<&Vec<PacketPattern>> = packets.iter().collect();
        let mut received = Vec::new();
        while !remaining.is_empty() {
            let candidates: Vec<usize> = if in_any_order { (0..remaining.len()).collect() } else { vec![0] };
            let describe = |entry: &Vec<PacketPattern>, vars: &Variables| {
                entry.iter().map(|p| p.describe(vars)).collect::<Vec<_>>().join("  OR  ")
            };
            let expected = candidates
                .iter()
                .filter_map(|i| remaining.get(*i))
                .map(|e| describe(e, &self.vars))
                .collect::<Vec<_>>()
                .join("; ");
            let wanted: Vec<&PacketPattern> =
                candidates.iter().filter_map(|i| remaining.get(*i)).flat_map(|e| e.iter()).collect();
            let packet = match self.next_packet(deadline, &wanted).await? {
                Next::Packet(packet) => packet,
                Next::Timeout => {
                    return Err(StepFailure::fail(
                        format!("nothing arrived from the client within {:.1} s", self.seconds(timeout).as_secs_f64()),
                        Some(expected),
                        Some("nothing (timeout)".into()),
                    ));
                }
                Next::Closed(how) => {
                    let closed = Observed::closed(&how);
                    if wanted.iter().any(|p| p.matches(&closed, &mut self.vars.clone()).is_ok()) {
                        received.push(closed);
                        return Ok(received);
                    }
                    return Err(StepFailure::fail(
                        "the client closed the connection before the expected packet arrived",
                        Some(expected),
                        Some(how),
                    ));
                }
            };
            if ignore.iter().any(|p| p.matches(&packet, &mut self.vars.clone()).is_ok()) {
                self.note(format!("passed over (not this step's subject): {packet}"));
                continue;
            }
            let mut matched = None;
            let mut mismatches = Vec::new();
            'search: for index in candidates {
                let Some(alternatives) = remaining.get(index) else { continue };
                for pattern in alternatives.iter() {
                    match pattern.matches(&packet, &mut self.vars) {
                        Ok(()) => {
                            matched = Some(index);
                            break 'search;
                        }
                        Err(why) => mismatches.push(why),
                    }
                }
            }
            let Some(index) = matched else {
                mismatches.dedup();
                return Err(StepFailure::fail(
                    format!("the client sent an unexpected packet: {}", mismatches.join("; ")),
                    Some(expected),
                    Some(packet.to_string()),
                ));
            };
            remaining.remove(index);
            if ack {
                self.acknowledge(&packet).await?;
            }
            received.push(packet);
        }
        Ok(received)
    }

    /// Driver events, in order (or any order): events of other kinds are passed over and
    /// left for later steps; an event of an expected kind that matches no alternative fails.
    /// A shortcut's SUBSCRIBE / UNSUBSCRIBE: the filters asked for in any order, each with
    /// its QoS; the answer's codes follow the packet's order.
    async fn exchange(
        &mut self,
        pattern: &PacketPattern,
        requested: &[(String, Option<u8>, u8)],
        timeout: f64,
    ) -> Result<(), StepFailure> {
        let received = self.expect(&[vec![pattern.clone()]], false, timeout, false, &[]).await?;
        let Some(packet) = received.first() else { return Ok(()) };
        let list = |name: &str| match packet.fields.get(name) {
            Some(crate::observed::Value::List(items)) => items.clone(),
            _ => Vec::new(),
        };
        let filters = list("filters");
        let qos = list("qos");
        let mut wanted: Vec<(String, Option<u8>, u8)> = requested
            .iter()
            .map(|(f, q, c)| Ok((self.vars.expand(f)?, *q, *c)))
            .collect::<Result<_, String>>()
            .map_err(|e| StepFailure::with(OutcomeKind::Error, e))?;
        let describe_wanted = wanted
            .iter()
            .map(|(f, q, _)| q.map_or_else(|| f.clone(), |q| format!("{f} (QoS {q})")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut codes = Vec::new();
        for (index, filter) in filters.iter().enumerate() {
            let crate::observed::Value::Str(filter) = filter else { continue };
            let asked = match qos.get(index) {
                Some(crate::observed::Value::Int(q)) => u8::try_from(*q).ok(),
                _ => None,
            };
            let found = wanted.iter().position(|(f, q, _)| f == filter && (q.is_none() || *q == asked));
            match found {
                Some(position) => codes.push(wanted.remove(position).2),
                None => {
                    return Err(StepFailure::fail(
                        format!("the {} does not carry the filters asked for", pattern.kinds.join("/")),
                        Some(format!("the filters {describe_wanted}, in any order")),
                        Some(packet.to_string()),
                    ));
                }
            }
        }
        if !wanted.is_empty() {
            return Err(StepFailure::fail(
                format!("the {} leaves out filters asked for", pattern.kinds.join("/")),
                Some(format!("the filters {describe_wanted}, in any order")),
                Some(packet.to_string()),
            ));
        }
        let packet_id = packet.int("packet_id").unwrap_or_default();
        self.vars.set("sub", packet_id.to_string());
        let kind =
            if pattern.kinds.iter().any(|k| k == "SUBSCRIBE") { PacketType::SubAck } else { PacketType::UnsubAck };
        let answer = ServerPacket::Ack {
            kind,
            packet_id: IntSpec::Literal(packet_id),
            reason_codes: codes,
            properties: Vec::new(),
        };
        let bytes = self.encode(&answer)?;
        let _ = self.connection()?.send(&bytes).await;
        Ok(())
    }

    async fn expect_events(
        &mut self,
        events: &[Vec<PacketPattern>],
        in_any_order: bool,
        timeout: f64,
    ) -> Result<(), StepFailure> {
        let deadline = self.deadline(timeout);
        let mut remaining: Vec<&Vec<PacketPattern>> = events.iter().collect();
        let mut passed_over = Vec::new();
        let result = loop {
            if remaining.is_empty() {
                break Ok(());
            }
            let candidates: Vec<usize> = if in_any_order { (0..remaining.len()).collect() } else { vec![0] };
            let expected = candidates
                .iter()
                .filter_map(|i| remaining.get(*i))
                .map(|e| e.iter().map(|p| p.describe(&self.vars)).collect::<Vec<_>>().join("  OR  "))
                .collect::<Vec<_>>()
                .join("; ");
            let event = match self.driver.next_event(deadline).await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    break Err(StepFailure::fail(
                        format!(
                            "the driver reported no such event within {:.1} s",
                            self.seconds(timeout).as_secs_f64()
                        ),
                        Some(expected),
                        Some("nothing (timeout)".into()),
                    ));
                }
                Err(failure) => break Err(failure.into()),
            };
            let relevant: Vec<usize> = candidates
                .into_iter()
                .filter(|i| remaining.get(*i).is_some_and(|e| e.iter().any(|p| p.kinds.contains(&event.kind))))
                .collect();
            if relevant.is_empty() {
                passed_over.push(event);
                continue;
            }
            let mut mismatches = Vec::new();
            let matched = relevant.into_iter().find(|i| {
                remaining.get(*i).is_some_and(|alternatives| {
                    alternatives.iter().any(|p| match p.matches(&event, &mut self.vars) {
                        Ok(()) => true,
                        Err(why) => {
                            mismatches.push(why);
                            false
                        }
                    })
                })
            });
            match matched {
                Some(index) => {
                    remaining.remove(index);
                }
                None => {
                    break Err(StepFailure::fail(
                        format!("the library reported something else: {}", mismatches.join("; ")),
                        Some(expected),
                        Some(event.to_string()),
                    ));
                }
            }
        };
        self.driver.requeue(passed_over);
        result
    }

    async fn expect_no_event(&mut self, events: &[PacketPattern], window: f64) -> Result<(), StepFailure> {
        let deadline = self.deadline(window);
        while let Some(event) = self.driver.next_event(deadline).await? {
            if let Some(pattern) = events.iter().find(|p| p.matches(&event, &mut self.vars.clone()).is_ok()) {
                return Err(StepFailure::fail(
                    "the library reported an event it must not",
                    Some(format!(
                        "no {} for {:.1} s",
                        pattern.describe(&self.vars),
                        self.seconds(window).as_secs_f64()
                    )),
                    Some(event.to_string()),
                ));
            }
        }
        Ok(())
    }

    async fn expect_none(&mut self, packets: &[PacketPattern], window: f64, ack: bool) -> Result<(), StepFailure> {
        let deadline = self.deadline(window);
        // Before any connection (e.g. the library may refuse to connect at all), whatever
        // connection comes within the window is the one watched.
        if self.current.is_none() {
            match self.listener.accept(deadline).await {
                Some(connection) => self.current = Some(connection),
                None => return Ok(()),
            }
        }
        let wanted: Vec<&PacketPattern> = packets.iter().collect();
        loop {
            match self.next_packet(deadline, &wanted).await? {
                Next::Timeout | Next::Closed(_) => return Ok(()),
                Next::Packet(packet) => {
                    if let Some(pattern) = packets.iter().find(|p| p.matches(&packet, &mut self.vars.clone()).is_ok()) {
                        return Err(StepFailure::fail(
                            "the client sent a packet it must not",
                            Some(format!("no {}", pattern.describe(&self.vars))),
                            Some(packet.to_string()),
                        ));
                    }
                    if ack {
                        self.acknowledge(&packet).await?;
                    }
                }
            }
        }
    }

    async fn expect_closed(
        &mut self,
        timeout: f64,
        allow: &[PacketPattern],
        disconnect_reason: Option<&ValuePattern>,
    ) -> Result<(), StepFailure> {
        let deadline = self.deadline(timeout);
        let expected = match disconnect_reason {
            Some(reason) if self.version.is_v5() => format!(
                "the client closes the connection (a DISCONNECT before it, if any, with reason {})",
                crate::matcher::describe_value(reason, &self.vars)
            ),
            _ => "the client closes the connection".to_owned(),
        };
        let wanted: Vec<&PacketPattern> = allow.iter().collect();
        loop {
            match self.next_packet(deadline, &wanted).await? {
                Next::Closed(_) => return Ok(()),
                Next::Timeout => {
                    return Err(StepFailure::fail(
                        format!("the connection was still open after {:.1} s", self.seconds(timeout).as_secs_f64()),
                        Some(expected),
                        Some("connection still open (timeout)".into()),
                    ));
                }
                Next::Packet(packet) if packet.kind == "DISCONNECT" => {
                    if let (Some(reason), true) = (disconnect_reason, self.version.is_v5()) {
                        let mut scratch = self.vars.clone();
                        if let Err(why) = match_value(reason, packet.fields.get("reason_code"), &mut scratch) {
                            return Err(StepFailure::fail(
                                format!("DISCONNECT with an unexpected reason code: {why}"),
                                Some(expected),
                                Some(packet.to_string()),
                            ));
                        }
                    }
                }
                Next::Packet(packet) => {
                    if !allow.iter().any(|p| p.matches(&packet, &mut self.vars.clone()).is_ok()) {
                        return Err(StepFailure::fail(
                            "expected the client to close the connection, but it sent a packet",
                            Some(expected),
                            Some(packet.to_string()),
                        ));
                    }
                }
            }
        }
    }

    /// Every gap between the client's packets on this connection, from its CONNECT to
    /// now, within the keep alive (with [`GAP_FACTOR`] and [`GAP_SLACK`]).
    fn expect_gaps(&mut self, keep_alive: f64) -> Result<(), StepFailure> {
        let limit = keep_alive * GAP_FACTOR + GAP_SLACK * self.time_scale;
        let connection = self.connection()?;
        let log = connection.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let closed = connection.is_closed();
        let Some(start) = log.iter().position(|(_, kind)| kind == "CONNECT") else {
            return Err(StepFailure::fail("no CONNECT on this connection", None, None));
        };
        let mut times: Vec<(Instant, &str)> = log.iter().skip(start).map(|(t, k)| (*t, k.as_str())).collect();
        if !closed {
            times.push((Instant::now(), "now"));
        }
        let mut worst: Option<(f64, &str, &str)> = None;
        for pair in times.windows(2) {
            if let [(a, from), (b, to)] = pair {
                let gap = b.duration_since(*a).as_secs_f64();
                if worst.is_none_or(|(w, _, _)| gap > w) {
                    worst = Some((gap, from, to));
                }
            }
        }
        let pings = log.iter().skip(start).filter(|(_, k)| k == "PINGREQ").count();
        match worst {
            Some((gap, from, to)) if gap > limit => Err(StepFailure::fail(
                format!(
                    "the client sent nothing for {gap:.2} s (after its {from}, until {to}) with a keep alive of \
                     {keep_alive} s; {pings} PINGREQ on this connection"
                ),
                Some(format!(
                    "a packet at least every {keep_alive} s (allowing up to {limit:.2} s: × {GAP_FACTOR} + {:.2} s)",
                    GAP_SLACK * self.time_scale
                )),
                Some(format!("a gap of {gap:.2} s")),
            )),
            _ => {
                self.note(format!(
                    "keep alive {keep_alive} s: longest gap {:.2} s (limit {limit:.2} s), {pings} PINGREQ",
                    worst.map_or(0.0, |w| w.0)
                ));
                Ok(())
            }
        }
    }

    /// Bytes for a server packet under the scenario's version.
    fn encode(&self, packet: &ServerPacket) -> Result<Vec<u8>, StepFailure> {
        let error = |e: String| StepFailure::with(OutcomeKind::Error, format!("cannot build the packet: {e}"));
        let version = self.version.protocol();
        let mut out = Vec::new();
        match packet {
            ServerPacket::ConnAck { session_present, reason_code, properties } => {
                let props = encode_properties(properties, &self.vars).map_err(error)?;
                let connack = ConnAck {
                    session_present: *session_present,
                    code: ReasonCode(*reason_code),
                    properties: Properties::from_raw_unchecked(&props),
                };
                Packet::ConnAck(connack).encode_unchecked(version, &mut out);
            }
            ServerPacket::Ack { kind, packet_id, reason_codes, properties } => {
                let props = encode_properties(properties, &self.vars).map_err(error)?;
                let id = packet_id.resolve(&self.vars).map_err(error)?;
                let id = u16::try_from(id)
                    .ok()
                    .and_then(PacketId::new)
                    .ok_or_else(|| error(format!("packet id {id} is not in 1..=65535")))?;
                // A 3.1.1 UNSUBACK has no payload.
                let reason_codes: &[u8] =
                    if *kind == PacketType::UnsubAck && !self.version.is_v5() { &[] } else { reason_codes };
                let codes = ReasonCodes::from_raw_unchecked(reason_codes);
                let properties = Properties::from_raw_unchecked(&props);
                let packet = if *kind == PacketType::SubAck {
                    Packet::SubAck(SubAck { packet_id: id, properties, reason_codes: codes })
                } else {
                    Packet::UnsubAck(UnsubAck { packet_id: id, properties, reason_codes: codes })
                };
                packet.encode_unchecked(version, &mut out);
            }
            ServerPacket::PingResp => Packet::PingResp.encode_unchecked(version, &mut out),
            ServerPacket::Common(packet) => {
                out = packet.encode(self.version, &self.vars, "").map_err(error)?.0;
            }
        }
        Ok(out)
    }
}

/// Expand `{variables}` in every string of a JSON template.
pub(crate) fn expand_json(value: &Json, vars: &Variables) -> Result<Json, String> {
    Ok(match value {
        Json::String(s) => Json::String(vars.expand(s)?),
        Json::Array(items) => Json::Array(items.iter().map(|i| expand_json(i, vars)).collect::<Result<_, _>>()?),
        Json::Object(map) => Json::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), expand_json(v, vars)?))).collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

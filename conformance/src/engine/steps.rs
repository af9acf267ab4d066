//! One scenario run: its connections, and each step executed against the broker.
//!
//! Decisions here are taken on typed packets ([`Observed`]) and connection events, never on
//! rendered text. Three rules keep verdicts honest on brokers the scenarios were not written
//! on:
//! * a PUBLISH that belongs to another scenario run (no run prefix in its topic) is
//!   *cross-talk*: acknowledged, shown in the trace, never matched against expectations; if
//!   no client of the run subscribed to a matching filter it is also recorded as an
//!   unsolicited delivery [MQTT-3.3.2-3];
//! * a CONNACK refusing for authorisation (5.0 0x86 / 0x87, 3.1.1 4 / 5) or a DISCONNECT
//!   0x87 makes the run inconclusive: the broker never got to the scenario's subject;
//! * a refusal the standard allows in answer to a shortcut (a PUBLISH refused with a reason
//!   code, a SUBACK refusing a filter or granting a lower QoS) makes the run inconclusive,
//!   or a skip when the reason code says a capability is missing.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use mqttkit_codec::{PacketType, TopicFilter};

use super::capabilities::{Capabilities, capability_refused};
use super::findings::{Finding, FindingKind};
use super::{RunConfig, RunFacts, scaled};
use crate::client::{Connection, Event, Trace};
use crate::matcher::{PacketPattern, ValuePattern, match_value};
use crate::observed::{Observed, describe_code};
use crate::outcome::{Outcome, OutcomeKind};
use crate::outgoing::{BytesSpec, ConnectSpec, IntSpec, OutgoingPacket, PropertyValueSpec};
use crate::scenario::{Action, Expectation, Purpose, Scenario, Step};
use crate::template::Variables;
use crate::version::Version;

pub(super) struct ClientState {
    connection: Connection,
    /// QoS 2 packet ids we sent PUBREC for and whose PUBREL we answer automatically.
    awaiting_pubrel: BTreeSet<u64>,
    /// The CONNACK this connection received (limits the server announced).
    connack: Option<Observed>,
    /// QoS 1/2 deliveries the scenario received and has not acknowledged: packet id → QoS.
    unacked: std::collections::BTreeMap<u64, u64>,
    /// The broker sent a DISCONNECT on this connection: the connection is over for it.
    disconnected: bool,
}

impl ClientState {
    /// Drop the connection without DISCONNECT.
    pub fn abort(self) {
        self.connection.abort();
    }
}

/// Session Expiry Interval (MQTT 5.0 §3.1.2.11.2).
const SESSION_EXPIRY_INTERVAL: u8 = 0x11;

/// Why a step did not succeed.
pub(super) struct StepFailure {
    pub kind: OutcomeKind,
    pub reason: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl StepFailure {
    fn fail(reason: impl Into<String>, expected: Option<String>, actual: Option<String>) -> Self {
        Self { kind: OutcomeKind::Fail, reason: reason.into(), expected, actual }
    }

    fn error(reason: impl Into<String>) -> Self {
        Self { kind: OutcomeKind::Error, reason: reason.into(), expected: None, actual: None }
    }

    fn with_kind(kind: OutcomeKind, reason: impl Into<String>, packet: &Observed) -> Self {
        Self { kind, reason: reason.into(), expected: None, actual: Some(packet.to_string()) }
    }
}

/// What `next_packet` found.
enum Next {
    Packet(Observed),
    Closed(String),
    Timeout,
}

pub(super) struct ScenarioRun<'a> {
    pub scenario: &'a Scenario,
    pub version: Version,
    pub config: &'a RunConfig,
    pub capabilities: Capabilities,
    pub prefix: String,
    pub vars: Variables,
    pub trace: Trace,
    pub clients: HashMap<String, ClientState>,
    pub facts: RunFacts,
    /// Topic filters any client of this run subscribed to (expanded).
    pub subscribed: Vec<String>,
    /// A SUBSCRIBE went out as raw bytes, so `subscribed` may be incomplete.
    pub subscriptions_unknown: bool,
    /// Deliveries no client of the run asked for.
    pub findings: Vec<Finding>,
    /// A lower QoS than requested was granted: a later failure is then a skip.
    pub downgrade: Option<String>,
}

impl ScenarioRun<'_> {
    pub async fn execute(&mut self) -> Outcome {
        for (index, step) in self.scenario.steps.iter().enumerate() {
            if step.versions.as_ref().is_some_and(|versions| !versions.contains(&self.version)) {
                continue;
            }
            if let Err(mut failure) = self.step(step).await {
                if let (OutcomeKind::Fail, Some(downgrade)) = (failure.kind, &self.downgrade) {
                    failure.kind = OutcomeKind::Skip;
                    failure.reason = format!("needs the QoS it subscribed with: {downgrade}; then {}", failure.reason);
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
        scaled(seconds, self.config.time_scale)
    }

    fn client(&mut self, name: &str) -> Result<&mut ClientState, StepFailure> {
        self.clients.get_mut(name).ok_or_else(|| {
            StepFailure::error(format!("client `{name}` is not connected (add a `connect` or `open` step first)"))
        })
    }

    async fn open(&mut self, name: &str) -> Result<(), StepFailure> {
        if self.clients.contains_key(name) {
            return Ok(());
        }
        let connection = Connection::open(&self.config.connector, name, self.version, self.trace.clone())
            .await
            .map_err(|e| StepFailure::error(format!("could not open a connection for `{name}`: {e}")))?;
        self.clients.insert(
            name.to_owned(),
            ClientState {
                connection,
                awaiting_pubrel: BTreeSet::new(),
                connack: None,
                unacked: std::collections::BTreeMap::new(),
                disconnected: false,
            },
        );
        Ok(())
    }

    /// The run's credentials go into every CONNECT that names none, unless the scenario is
    /// about the credential fields themselves (tag `credentials`).
    fn with_credentials(&self, connect: &ConnectSpec) -> ConnectSpec {
        let mut connect = connect.clone();
        if connect.username.is_none() && connect.password.is_none() && !self.scenario.has_tag("credentials") {
            connect.username.clone_from(&self.config.username);
            connect.password = self.config.password.clone().map(BytesSpec::Text);
        }
        connect
    }

    async fn send(&mut self, name: &str, packet: &OutgoingPacket, deliberate: bool) -> Result<(), StepFailure> {
        let packet = match packet {
            OutgoingPacket::Connect(connect) => OutgoingPacket::Connect(self.with_credentials(connect)),
            other => other.clone(),
        };
        let default_client_id = format!("{}{name}", self.prefix);
        let (bytes, facts) = packet
            .encode(self.version, &self.vars, &default_client_id)
            .map_err(|e| StepFailure::error(format!("cannot build the packet: {e}")))?;
        self.facts.absorb(facts);
        match &packet {
            OutgoingPacket::Subscribe { filters, .. } => {
                for filter in filters {
                    if let Ok(expanded) = self.vars.expand(&filter.filter) {
                        self.subscribed.push(expanded);
                    }
                }
            }
            OutgoingPacket::Raw(_) if bytes.first().is_some_and(|b| b >> 4 == 8) => self.subscriptions_unknown = true,
            _ => {}
        }
        let acknowledged = match &packet {
            OutgoingPacket::PublishResponse { kind: PacketType::PubAck | PacketType::PubRec, packet_id, .. } => {
                packet_id.resolve(&self.vars).ok()
            }
            _ => None,
        };
        let state = self.client(name)?;
        if let Some(id) = acknowledged {
            state.unacked.remove(&id);
        }
        // [MQTT-5.0: 3.1.2-24] the server discards packets above its Maximum Packet Size: an
        // ordinary packet that large cannot be checked on this broker.
        if !deliberate {
            if let Some(limit) = state.connack.as_ref().and_then(|c| c.int_property("maximum_packet_size")) {
                if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
                    return Err(StepFailure {
                        kind: OutcomeKind::Skip,
                        reason: format!("needs a {}-byte packet: CONNACK Maximum Packet Size = {limit}", bytes.len()),
                        expected: None,
                        actual: None,
                    });
                }
            }
        }
        // A failed send is recorded in the trace; the next expectation reports the close.
        let _ = state.connection.send(&bytes).await;
        Ok(())
    }

    /// The next packet of this run, answering PUBRELs of QoS 2 flows this runner
    /// acknowledged and setting cross-talk aside.
    async fn next_packet(&mut self, name: &str, deadline: tokio::time::Instant) -> Result<Next, StepFailure> {
        loop {
            let state = self.client(name)?;
            let packet = match state.connection.next_event(deadline).await {
                None => return Ok(Next::Timeout),
                Some(Event::Closed(how)) => return Ok(Next::Closed(how)),
                Some(Event::TransportFailed(how)) => {
                    return Err(StepFailure::error(format!("`{name}`: the transport failed: {how}")));
                }
                Some(Event::Packet(packet)) => packet,
            };
            if state.disconnected {
                // Anything after the broker's own DISCONNECT is a deviation of its own
                // [MQTT-5.0: 3.14.4-1], reported once for the run, not against this scenario.
                self.findings.push(Finding {
                    kind: FindingKind::AfterDisconnect,
                    version: self.version,
                    scenario: format!("{} [{}]", self.scenario.id, self.version),
                    client: name.to_owned(),
                    packet: packet.to_string(),
                });
                return Ok(Next::Closed("the broker sent more bytes after its DISCONNECT".into()));
            }
            if packet.kind == "DISCONNECT" {
                state.disconnected = true;
            }
            let pending_pubrel = match (packet.kind.as_str(), packet.int("packet_id")) {
                ("PUBREL", Some(id)) if state.awaiting_pubrel.remove(&id) => Some(id),
                _ => None,
            };
            if let Some(id) = pending_pubrel {
                self.send_response(name, PacketType::PubComp, id).await?;
                continue;
            }
            if self.is_cross_talk(&packet) {
                self.set_aside(name, &packet).await?;
                continue;
            }
            if let Some(why) = packet.refusal_outside_subject() {
                if !packet.is_authorisation_refusal() || !self.scenario.has_tag("auth-refusal") {
                    return Err(StepFailure::with_kind(
                        OutcomeKind::Inconclusive,
                        format!("`{name}`: {why}, so the scenario cannot tell what it checks: {packet}"),
                        &packet,
                    ));
                }
            }
            return Ok(Next::Packet(packet));
        }
    }

    /// A PUBLISH whose topic carries no prefix of this run, and is not a `$` topic (those
    /// come from the broker itself and are what the `$` scenarios check).
    fn is_cross_talk(&self, packet: &Observed) -> bool {
        packet.kind == "PUBLISH"
            && packet.text("topic").is_some_and(|topic| {
                !topic.contains(&self.prefix) && (!topic.starts_with('$') || !self.could_have_asked_for(topic))
            })
    }

    /// Whether a filter of this run would match `topic` if `$` were an ordinary character: a
    /// `$` topic is this run's business (e.g. [MQTT-4.7.2-1]) only then; otherwise nobody here
    /// asked for it.
    fn could_have_asked_for(&self, topic: &str) -> bool {
        let plain = topic.replacen('$', "_", 1);
        self.subscriptions_unknown || self.subscribed_to(topic) || self.subscribed_to(&plain)
    }

    /// Whether a filter any client of this run subscribed to matches `topic`.
    fn subscribed_to(&self, topic: &str) -> bool {
        self.subscribed.iter().any(|filter| TopicFilter::new_unchecked(filter).matches(topic))
    }

    /// Acknowledge a cross-talk PUBLISH (so the broker's window stays open) and record it.
    async fn set_aside(&mut self, name: &str, packet: &Observed) -> Result<(), StepFailure> {
        let topic = packet.text("topic").unwrap_or_default().to_owned();
        let solicited = self.subscriptions_unknown || self.subscribed_to(&topic);
        let note = if solicited {
            "cross-talk: a PUBLISH of another scenario run on a filter this run subscribed to (ignored)"
        } else {
            "cross-talk: a PUBLISH of another scenario run on a topic no client of this run subscribed to"
        };
        self.trace.record(name, crate::outcome::Direction::Event, format!("{note}: {packet}"), &[]);
        if !solicited {
            self.findings.push(Finding {
                kind: FindingKind::UnsolicitedPublish,
                version: self.version,
                scenario: format!("{} [{}]", self.scenario.id, self.version),
                client: name.to_owned(),
                packet: packet.to_string(),
            });
        }
        self.acknowledge(name, packet).await
    }

    async fn send_response(&mut self, name: &str, kind: PacketType, packet_id: u64) -> Result<(), StepFailure> {
        let packet = OutgoingPacket::PublishResponse {
            kind,
            packet_id: IntSpec::Literal(packet_id),
            reason_code: 0,
            properties: Vec::new(),
        };
        self.send(name, &packet, false).await
    }

    async fn step(&mut self, step: &Step) -> Result<(), StepFailure> {
        match &step.action {
            Action::Open { client } => self.open(client).await,
            Action::Connect { client, connect, connack, timeout } => {
                self.connect(client, connect, connack.as_ref(), *timeout).await
            }
            Action::Send { client, packet, deliberate } => self.send(client, packet, *deliberate).await,
            Action::Expect { client, expectation, timeout, ack, purpose } => {
                let received = match self.expect(client, expectation, *timeout, *ack, purpose).await {
                    Err(mut failure) if *purpose == Purpose::Precondition && failure.kind == OutcomeKind::Fail => {
                        failure.kind = OutcomeKind::Inconclusive;
                        failure.reason = format!(
                            "a precondition the standard lets the broker withhold was not met, so the scenario \
                             cannot tell: {}",
                            failure.reason
                        );
                        return Err(failure);
                    }
                    other => other?,
                };
                self.check_grant(purpose, &received)
            }
            Action::ExpectNothing { client, window } => {
                let deadline = tokio::time::Instant::now() + self.seconds(*window);
                match self.next_packet(client, deadline).await? {
                    Next::Timeout => Ok(()),
                    Next::Packet(packet) => Err(StepFailure::fail(
                        format!("`{client}` received a packet where none was expected"),
                        Some(format!("nothing for {:.1} s", self.seconds(*window).as_secs_f64())),
                        Some(packet.to_string()),
                    )),
                    Next::Closed(how) => Err(StepFailure::fail(
                        format!("`{client}`'s connection closed where nothing was expected"),
                        Some(format!("nothing for {:.1} s, connection open", self.seconds(*window).as_secs_f64())),
                        Some(how),
                    )),
                }
            }
            Action::ExpectClosed { client, disconnect_reason, allow, timeout } => {
                self.expect_closed(client, disconnect_reason.as_ref(), allow, *timeout).await
            }
            Action::Wait { seconds } => {
                tokio::time::sleep(self.seconds(*seconds)).await;
                Ok(())
            }
            Action::Disconnect { client, packet } => {
                self.send(client, packet, true).await?;
                if let Some(state) = self.clients.remove(client) {
                    state.connection.close().await;
                }
                Ok(())
            }
            Action::Drop { client } => {
                let state = self.clients.remove(client).ok_or_else(|| {
                    StepFailure::error(format!("client `{client}` is not connected, so it cannot be dropped"))
                })?;
                state.connection.abort();
                Ok(())
            }
        }
    }

    async fn connect(
        &mut self,
        client: &str,
        connect: &ConnectSpec,
        connack: Option<&Expectation>,
        timeout: f64,
    ) -> Result<(), StepFailure> {
        self.open(client).await?;
        self.send(client, &OutgoingPacket::Connect(connect.clone()), true).await?;
        let default_connack;
        let expectation = match connack {
            Some(expectation) => expectation,
            None => {
                default_connack = Expectation::one_of(vec![
                    PacketPattern::of_kind("CONNACK").with_field("reason_code", ValuePattern::Int(0)),
                ]);
                &default_connack
            }
        };
        let received = match self.expect(client, expectation, timeout, false, &Purpose::Subject).await {
            Ok(received) => received,
            Err(mut failure) if connack.is_none() && failure.kind == OutcomeKind::Fail => {
                // A plain CONNECT refused is a precondition not met, not the subject.
                if let Some(refusal) = self.last_received(client).filter(|p| p.kind == "CONNACK") {
                    failure.kind = OutcomeKind::Inconclusive;
                    failure.reason = format!("the broker refused a plain CONNECT: {refusal}");
                }
                return Err(failure);
            }
            Err(failure) => return Err(failure),
        };
        if let Some(connack) = received.first().filter(|p| p.kind == "CONNACK") {
            self.capabilities.learn_from_connack(connack);
            // A server may override the Session Expiry Interval in CONNACK (5.0 §3.2.2.3.2); 0 means it
            // keeps no session after the connection, whatever the client asked for.
            let asked = connect.properties.iter().any(|p| {
                p.id == SESSION_EXPIRY_INTERVAL
                    && matches!(&p.value, PropertyValueSpec::Int(IntSpec::Literal(v)) if *v > 0)
            });
            if asked && connack.int_property("session_expiry_interval") == Some(0) {
                self.capabilities.lack(
                    "persistent-sessions",
                    "CONNACK Session Expiry Interval = 0 where the client asked for more".into(),
                );
            }
            if let Ok(state) = self.client(client) {
                state.connack = Some(connack.clone());
            }
            let needed = self.scenario.required_capabilities(self.version);
            if let Some((capability, why)) = self.capabilities.missing(&needed) {
                return Err(StepFailure {
                    kind: OutcomeKind::Skip,
                    reason: format!("needs `{capability}`: {why}"),
                    expected: None,
                    actual: Some(connack.to_string()),
                });
            }
        }
        Ok(())
    }

    /// The last packet the trace shows `client` received (for explaining a failure).
    fn last_received(&self, client: &str) -> Option<Observed> {
        self.clients.get(client).and_then(|state| state.connection.last_received())
    }

    async fn expect(
        &mut self,
        client: &str,
        expectation: &Expectation,
        timeout: f64,
        ack: bool,
        purpose: &Purpose,
    ) -> Result<Vec<Observed>, StepFailure> {
        let deadline = tokio::time::Instant::now() + self.seconds(timeout);
        let describe = |run: &Self, entry: &[PacketPattern]| {
            entry.iter().map(|p| p.describe(&run.vars)).collect::<Vec<_>>().join("  OR  ")
        };
        let mut remaining: Vec<&Vec<PacketPattern>> = expectation.packets.iter().collect();
        let mut received = Vec::new();
        let mut hold_deadline = expectation.ack_held_after.map(|s| tokio::time::Instant::now() + self.seconds(s));
        while !remaining.is_empty() {
            let expected_text = if expectation.in_any_order {
                remaining.iter().map(|e| describe(self, e)).collect::<Vec<_>>().join("; ")
            } else {
                remaining.first().map(|e| describe(self, e)).unwrap_or_default()
            };
            let wait_until = hold_deadline.map_or(deadline, |hold| hold.min(deadline));
            let packet = match self.next_packet(client, wait_until).await? {
                Next::Packet(packet) => packet,
                Next::Timeout if wait_until < deadline => {
                    hold_deadline = None;
                    self.acknowledge_held(client).await?;
                    continue;
                }
                Next::Timeout => {
                    return Err(StepFailure::fail(
                        format!("`{client}`: nothing arrived within {:.1} s", self.seconds(timeout).as_secs_f64()),
                        Some(expected_text),
                        Some("nothing (timeout)".into()),
                    ));
                }
                Next::Closed(how) => {
                    let closed = Observed::closed(&how);
                    let accepts_close = remaining.iter().enumerate().any(|(i, alternatives)| {
                        (expectation.in_any_order || i == 0)
                            && alternatives.iter().any(|p| p.matches(&closed, &mut self.vars.clone()).is_ok())
                    });
                    if accepts_close {
                        received.push(closed);
                        return Ok(received);
                    }
                    if *purpose == Purpose::PublishFlow {
                        return Err(StepFailure {
                            kind: OutcomeKind::Inconclusive,
                            reason: format!(
                                "`{client}`: the broker closed the connection instead of acknowledging a PUBLISH \
                                 (a server may close a connection whose PUBLISH it does not authorise); cannot tell"
                            ),
                            expected: Some(expected_text),
                            actual: Some(how),
                        });
                    }
                    return Err(StepFailure::fail(
                        format!("`{client}`: the connection closed before the expected packet arrived"),
                        Some(expected_text),
                        Some(how),
                    ));
                }
            };
            let candidates: Vec<usize> =
                if expectation.in_any_order { (0..remaining.len()).collect() } else { vec![0] };
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
                if let Some(failure) = refusal_allowed(purpose, &packet, &self.vars) {
                    return Err(failure);
                }
                mismatches.dedup();
                return Err(StepFailure::fail(
                    format!("`{client}` received an unexpected packet: {}", mismatches.join("; ")),
                    Some(expected_text),
                    Some(packet.to_string()),
                ));
            };
            remaining.remove(index);
            if ack {
                self.acknowledge(client, &packet).await?;
            } else if let (Some(qos @ 1..), Some(id)) = (packet.int("qos"), packet.int("packet_id")) {
                self.client(client)?.unacked.insert(id, qos);
            }
            received.push(packet);
        }
        Ok(received)
    }

    /// After a default SUBACK matched: a lower QoS granted than asked for is allowed
    /// [MQTT-3.1.1: 3.8.4-6] [MQTT-5.0: 3.8.4-7]. It is remembered: if the scenario then
    /// fails, it is a skip (it needed that QoS), not a failure.
    fn check_grant(&mut self, purpose: &Purpose, received: &[Observed]) -> Result<(), StepFailure> {
        let Purpose::Suback { filters } = purpose else { return Ok(()) };
        let Some(suback) = received.first() else { return Ok(()) };
        for ((filter, requested), granted) in filters.iter().zip(suback.reason_codes()) {
            if granted < u64::from(*requested) && self.downgrade.is_none() {
                let filter = self.vars.expand(filter).unwrap_or_else(|_| filter.clone());
                self.downgrade = Some(format!(
                    "the broker granted QoS {granted} for `{filter}` where QoS {requested} was requested (allowed)"
                ));
            }
        }
        Ok(())
    }

    /// Acknowledge every QoS 1/2 delivery `client` received and left unacknowledged: the
    /// broker may be holding the next one until then.
    async fn acknowledge_held(&mut self, client: &str) -> Result<(), StepFailure> {
        let held = std::mem::take(&mut self.client(client)?.unacked);
        if held.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = held.keys().map(u64::to_string).collect();
        self.trace.record(
            client,
            crate::outcome::Direction::Event,
            format!(
                "nothing new arrived: acknowledging the held deliveries {} (a broker may hold the next delivery until \
                 then)",
                ids.join(", ")
            ),
            &[],
        );
        for (id, qos) in held {
            if qos == 2 {
                self.client(client)?.awaiting_pubrel.insert(id);
                self.send_response(client, PacketType::PubRec, id).await?;
            } else {
                self.send_response(client, PacketType::PubAck, id).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn acknowledge(&mut self, client: &str, packet: &Observed) -> Result<(), StepFailure> {
        if packet.kind != "PUBLISH" {
            return Ok(());
        }
        let (Some(qos), Some(id)) = (packet.int("qos"), packet.int("packet_id")) else {
            return Ok(());
        };
        match qos {
            1 => self.send_response(client, PacketType::PubAck, id).await,
            2 => {
                self.client(client)?.awaiting_pubrel.insert(id);
                self.send_response(client, PacketType::PubRec, id).await
            }
            _ => Ok(()),
        }
    }

    async fn expect_closed(
        &mut self,
        client: &str,
        disconnect_reason: Option<&ValuePattern>,
        allow: &[PacketPattern],
        timeout: f64,
    ) -> Result<(), StepFailure> {
        let deadline = tokio::time::Instant::now() + self.seconds(timeout);
        let expected = match disconnect_reason {
            Some(reason) if self.version.is_v5() => format!(
                "the broker closes the connection (a DISCONNECT before it, if any, with reason {})",
                crate::matcher::describe_value(reason, &self.vars)
            ),
            _ => "the broker closes the connection".to_owned(),
        };
        loop {
            match self.next_packet(client, deadline).await? {
                Next::Closed(_) => return Ok(()),
                Next::Timeout => {
                    return Err(StepFailure::fail(
                        format!(
                            "`{client}`: the connection was still open after {:.1} s",
                            self.seconds(timeout).as_secs_f64()
                        ),
                        Some(expected),
                        Some("connection still open (timeout)".into()),
                    ));
                }
                Next::Packet(packet) if packet.kind == "DISCONNECT" && self.version.is_v5() => {
                    if let Some(reason) = disconnect_reason {
                        let mut scratch = self.vars.clone();
                        if let Err(why) = match_value(reason, packet.fields.get("reason_code"), &mut scratch) {
                            return Err(StepFailure::fail(
                                format!("`{client}`: DISCONNECT with an unexpected reason code: {why}"),
                                Some(expected),
                                Some(packet.to_string()),
                            ));
                        }
                    }
                }
                Next::Packet(packet) => {
                    let mut scratch = self.vars.clone();
                    if !allow.iter().any(|p| p.matches(&packet, &mut scratch).is_ok()) {
                        return Err(StepFailure::fail(
                            format!("`{client}`: expected the connection to be closed, but a packet arrived"),
                            Some(expected),
                            Some(packet.to_string()),
                        ));
                    }
                }
            }
        }
    }
}

/// A packet that did not match, but is a reaction the standard allows to the shortcut
/// this expectation answers (or a reason code saying a capability is missing): the run is
/// then a skip or inconclusive, not a failure.
fn refusal_allowed(purpose: &Purpose, packet: &Observed, vars: &Variables) -> Option<StepFailure> {
    let skip = |capability: &str, evidence: String| {
        StepFailure::with_kind(OutcomeKind::Skip, format!("needs `{capability}`: {evidence}"), packet)
    };
    let codes: Vec<u64> = match packet.kind.as_str() {
        "SUBACK" | "UNSUBACK" => packet.reason_codes(),
        _ => packet.int("reason_code").into_iter().collect(),
    };
    for code in &codes {
        if let Some((capability, evidence)) = capability_refused(&packet.kind, *code) {
            return Some(skip(capability, evidence));
        }
    }
    match (purpose, packet.kind.as_str()) {
        (Purpose::PublishFlow, "PUBACK" | "PUBREC" | "PUBCOMP") if codes.iter().any(|c| *c >= 0x80) => {
            Some(StepFailure::with_kind(
                OutcomeKind::Inconclusive,
                format!(
                    "the broker refused the PUBLISH ({}); a server may refuse any PUBLISH, so the scenario cannot tell",
                    describe_code(&packet.kind, packet.version, codes.first().copied().unwrap_or_default())
                ),
                packet,
            ))
        }
        (Purpose::Unsuback, "UNSUBACK") if codes.iter().any(|c| *c >= 0x80) => Some(StepFailure::with_kind(
            OutcomeKind::Inconclusive,
            format!(
                "the broker refused the UNSUBSCRIBE ({}); a server may refuse it, so the scenario cannot tell",
                describe_code("UNSUBACK", packet.version, codes.iter().copied().find(|c| *c >= 0x80).unwrap_or(0x80))
            ),
            packet,
        )),
        (Purpose::Suback { filters }, "SUBACK") => {
            let refused = filters.iter().zip(&codes).find(|(_, code)| **code >= 0x80)?;
            let filter = vars.expand(&refused.0.0).unwrap_or_else(|_| refused.0.0.clone());
            Some(StepFailure::with_kind(
                OutcomeKind::Inconclusive,
                format!(
                    "the broker refused the subscription to `{filter}` ({}); a server may refuse any subscription, \
                     so the scenario cannot tell",
                    describe_code("SUBACK", packet.version, *refused.1)
                ),
                packet,
            ))
        }
        _ => None,
    }
}

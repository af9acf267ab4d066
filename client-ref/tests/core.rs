//! The sans-IO core driven in memory on a simulated clock: a scripted server decodes what
//! the client sends (with the codec's validation) and answers with encoded packets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit_client::core::{Core, Event, State};
use mqttkit_client::{
    CloseReason, ConnectionEvent, LostReason, Options, Publication, PublishError, RequestProperties, Subscription,
};
use mqttkit_codec::{
    ConnAck, Disconnect, Packet, PacketId, Properties, PropertiesBuf, Property, PropertyContext, ProtocolVersion,
    Publish, PublishQoS, PublishResponse, QoS, ReasonCode, ReasonCodes, StreamDecoder, SubAck, TopicName,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// A core, a simulated clock and the server's side of the wire.
struct Harness {
    core: Core,
    t0: Instant,
    now: Instant,
    version: ProtocolVersion,
    server: StreamDecoder,
    events: Vec<Event>,
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// A one-line description of a packet the client sent.
fn describe(p: &Packet<'_>) -> String {
    match p {
        Packet::Connect(c) => format!("CONNECT clean={} ka={}", u8::from(c.clean_start), c.keep_alive),
        Packet::Publish(p) => format!(
            "PUBLISH {} q{} id={} dup={} r={} {:?}",
            p.topic,
            p.qos.qos().as_u8(),
            p.qos.packet_id().map_or(0, |i| i.get()),
            u8::from(p.dup),
            u8::from(p.retain),
            String::from_utf8_lossy(p.payload)
        ),
        Packet::PubAck(r) => format!("PUBACK {}", r.packet_id),
        Packet::PubRec(r) => format!("PUBREC {}", r.packet_id),
        Packet::PubRel(r) => format!("PUBREL {}", r.packet_id),
        Packet::PubComp(r) => format!("PUBCOMP {} {:#04x}", r.packet_id, r.reason_code.0),
        Packet::Subscribe(s) => format!("SUBSCRIBE {}", s.packet_id),
        Packet::Unsubscribe(u) => format!("UNSUBSCRIBE {}", u.packet_id),
        Packet::PingReq => "PINGREQ".into(),
        Packet::Disconnect(d) => format!("DISCONNECT {:#04x}", d.reason_code.0),
        other => format!("{:?}", other.packet_type()),
    }
}

impl Harness {
    fn new(options: Options) -> Self {
        let t0 = Instant::now();
        let version = options.version;
        let mut core = Core::new(options, t0).expect("valid options");
        core.connect(t0);
        Self { core, t0, now: t0, version, server: StreamDecoder::with_version(version), events: Vec::new() }
    }

    fn options(version: ProtocolVersion) -> Options {
        Options::new("mqtt://127.0.0.1:1883")
            .version(version)
            .client_id("c")
            .keep_alive(Duration::from_secs(10))
            .ping_timeout(Duration::from_secs(2))
            .backoff(Duration::from_secs(1), Duration::from_secs(8))
    }

    /// Open the transport (the core asked for it) and return what the client sent.
    fn open(&mut self) -> Vec<String> {
        self.collect();
        assert_eq!(self.core.state(), State::Opening);
        self.server = StreamDecoder::with_version(self.version);
        self.core.transport_opened(self.now);
        self.sent()
    }

    /// Open and accept with this CONNACK.
    fn connect_with(&mut self, connack: ConnAck<'_>) -> Vec<String> {
        let sent = self.open();
        assert!(sent[0].starts_with("CONNECT"), "{sent:?}");
        self.send(&Packet::ConnAck(connack));
        assert!(self.core.is_connected(), "{:?}", self.take_events());
        self.sent()
    }

    fn connect(&mut self) -> Vec<String> {
        self.connect_with(ConnAck::new(false, ReasonCode::SUCCESS))
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
    }

    /// Run the clock to the next deadline.
    fn run_to_deadline(&mut self) -> Duration {
        let at = self.core.poll_timeout().expect("a deadline");
        assert!(at >= self.now, "deadline in the past");
        self.now = at;
        self.core.handle_timeout(self.now);
        at - self.t0
    }

    fn send(&mut self, packet: &Packet<'_>) {
        let mut buf = Vec::new();
        packet.encode(self.version, &mut buf).unwrap();
        self.core.handle_bytes(&buf, self.now);
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.core.handle_bytes(bytes, self.now);
    }

    /// Everything the client transmitted since the last call, decoded.
    fn sent(&mut self) -> Vec<String> {
        while let Some(bytes) = self.core.poll_transmit() {
            self.server.feed(&bytes);
        }
        let mut out = Vec::new();
        while let Some(p) = self.server.next_packet().expect("the client sends valid packets") {
            out.push(describe(&p));
        }
        out
    }

    fn collect(&mut self) {
        while let Some(e) = self.core.poll_event() {
            self.events.push(e);
        }
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.collect();
        std::mem::take(&mut self.events)
    }

    fn publish(&mut self, topic: &'static str, qos: QoS, payload: &'static str, tag: u64) {
        self.core.publish(Publication::new(topic, qos, false, payload), Some(tag), self.now).unwrap();
    }

    fn ack(&mut self, kind: fn(PublishResponse<'static>) -> Packet<'static>, n: u16) {
        self.send(&kind(PublishResponse::new(id(n))));
    }

    fn published(&mut self) -> Vec<(u64, Result<ReasonCode, PublishError>)> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Published { tag, result } => Some((tag, result)),
                _ => None,
            })
            .collect()
    }

    fn messages(&mut self) -> Vec<String> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(format!("{} {}", m.topic(), String::from_utf8_lossy(m.payload()))),
                _ => None,
            })
            .collect()
    }

    fn connection_events(&mut self) -> Vec<ConnectionEvent> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Connection(c) => Some(c),
                _ => None,
            })
            .collect()
    }
}

fn connack_with(props: &PropertiesBuf, session_present: bool) -> ConnAck<'_> {
    let mut ack = ConnAck::new(session_present, ReasonCode::SUCCESS);
    ack.properties = props.properties(PropertyContext::ConnAck).unwrap();
    ack
}

fn props(list: &[Property<'_>]) -> PropertiesBuf {
    let mut buf = PropertiesBuf::new();
    for p in list {
        buf.push(*p).unwrap();
    }
    buf
}

fn server_publish(topic: &str, qos: PublishQoS, payload: &'static [u8]) -> Packet<'static> {
    let topic: &'static str = Box::leak(topic.to_owned().into_boxed_str());
    Packet::Publish(Publish::new(TopicName::new(topic).unwrap(), qos, payload))
}

#[test]
fn sends_connect_first_and_reports_the_connection() {
    let mut h = Harness::new(Harness::options(V311));
    assert!(matches!(h.take_events()[..], [Event::OpenTransport { server: 0 }]));
    assert_eq!(h.open(), ["CONNECT clean=1 ka=10"]);
    h.send(&Packet::ConnAck(ConnAck::new(false, ReasonCode::SUCCESS)));
    let events = h.connection_events();
    let [ConnectionEvent::Connected(info)] = &events[..] else { panic!("{events:?}") };
    assert!(!info.session_present);
    assert_eq!(info.keep_alive, Duration::from_secs(10));
}

#[test]
fn pings_when_idle_for_the_keep_alive_interval() {
    for version in [V311, V5] {
        let mut h = Harness::new(Harness::options(version));
        h.connect();
        assert_eq!(h.run_to_deadline(), Duration::from_secs(10));
        assert_eq!(h.sent(), ["PINGREQ"]);
        h.advance(Duration::from_secs(1));
        h.send(&Packet::PingResp);
        // The next ping is one interval after the PINGREQ (the last packet sent).
        assert_eq!(h.run_to_deadline(), Duration::from_secs(20));
        assert_eq!(h.sent(), ["PINGREQ"]);
        h.send(&Packet::PingResp);
        // Traffic in both directions postpones the ping.
        h.advance(Duration::from_secs(5));
        h.publish("t", QoS::AtLeastOnce, "x", 1);
        h.ack(Packet::PubAck, 1);
        assert_eq!(h.sent(), ["PUBLISH t q1 id=1 dup=0 r=0 \"x\""]);
        assert_eq!(h.run_to_deadline(), Duration::from_secs(35));
        assert_eq!(h.sent(), ["PINGREQ"]);
    }
}

#[test]
fn uses_the_server_keep_alive() {
    let mut h = Harness::new(Harness::options(V5));
    let p = props(&[Property::ServerKeepAlive(3)]);
    h.connect_with(connack_with(&p, false));
    assert_eq!(h.core.keep_alive(), Duration::from_secs(3));
    assert_eq!(h.run_to_deadline(), Duration::from_secs(3));
    assert_eq!(h.sent(), ["PINGREQ"]);
}

#[test]
fn keep_alive_zero_sends_no_ping() {
    let mut h = Harness::new(Harness::options(V311).keep_alive(Duration::ZERO));
    h.connect();
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn ping_timeout_loses_the_connection_and_backs_off() {
    let mut h = Harness::new(Harness::options(V311));
    h.connect();
    h.take_events();
    assert_eq!(h.run_to_deadline(), Duration::from_secs(10));
    assert_eq!(h.sent(), ["PINGREQ"]);
    // No PINGRESP: lost after the ping timeout.
    assert_eq!(h.run_to_deadline(), Duration::from_secs(12));
    let events = h.take_events();
    assert!(matches!(events[0], Event::CloseTransport), "{events:?}");
    assert_eq!(
        events[1..],
        [
            Event::Connection(ConnectionEvent::ConnectionLost { reason: LostReason::PingTimeout }),
            Event::Connection(ConnectionEvent::Reconnecting { attempt: 1, delay: Duration::from_secs(1) }),
        ]
    );
    assert_eq!(h.run_to_deadline(), Duration::from_secs(13));
    assert!(matches!(h.take_events()[..], [Event::OpenTransport { .. }]));
}

#[test]
fn reconnects_with_capped_exponential_backoff() {
    let mut h = Harness::new(Harness::options(V311).server("mqtt://127.0.0.1:1884").connect_retry(true));
    let mut delays = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..6 {
        for e in h.take_events() {
            if let Event::OpenTransport { server } = e {
                servers.push(server);
            }
        }
        let before = h.now;
        h.core.transport_failed(h.now, "connection refused");
        h.run_to_deadline();
        delays.push((h.now - before).as_secs());
    }
    assert_eq!(delays, [1, 2, 4, 8, 8, 8]);
    // Servers are tried in turn.
    assert_eq!(servers, [0, 1, 0, 1, 0, 1]);
    // A success resets the back-off.
    h.connect();
    h.core.transport_closed(h.now, "reset");
    let lost = h.connection_events();
    assert!(lost.contains(&ConnectionEvent::Reconnecting { attempt: 1, delay: Duration::from_secs(1) }), "{lost:?}");
}

#[test]
fn first_connection_failure_without_retry_closes() {
    let mut h = Harness::new(Harness::options(V311));
    h.take_events();
    h.core.transport_failed(h.now, "connection refused");
    let events = h.connection_events();
    assert_eq!(
        events.last(),
        Some(&ConnectionEvent::Closed(CloseReason::Failed(LostReason::TransportFailed("connection refused".into()))))
    );
    assert_eq!(h.core.state(), State::Closed);
}

#[test]
fn connect_timeout_without_connack() {
    let mut h = Harness::new(Harness::options(V311).connect_timeout(Duration::from_secs(5)).connect_retry(true));
    h.open();
    assert_eq!(h.run_to_deadline(), Duration::from_secs(5));
    let events = h.connection_events();
    assert_eq!(events[0], ConnectionEvent::ConnectionLost { reason: LostReason::ConnectTimeout });
}

#[test]
fn refusal_is_reported_with_its_code_and_not_retried() {
    let mut h = Harness::new(Harness::options(V5).connect_retry(true));
    h.open();
    h.send(&Packet::ConnAck(ConnAck::new(false, ReasonCode::BAD_USER_NAME_OR_PASSWORD)));
    let events = h.connection_events();
    let refused = LostReason::Refused { code: ReasonCode::BAD_USER_NAME_OR_PASSWORD, reason_string: None };
    assert_eq!(events.last(), Some(&ConnectionEvent::Closed(CloseReason::Failed(refused))));
    assert_eq!(
        LostReason::Refused { code: ReasonCode(0x05), reason_string: None }.to_string(),
        "connection refused: 0x05 (Connection Refused, not authorized)"
    );
}

#[test]
fn receive_maximum_bounds_publications_in_flight() {
    let mut h = Harness::new(Harness::options(V5));
    let p = props(&[Property::ReceiveMaximum(2)]);
    h.connect_with(connack_with(&p, false));
    for (n, qos) in [(1, QoS::AtLeastOnce), (2, QoS::ExactlyOnce), (3, QoS::AtLeastOnce), (4, QoS::AtMostOnce)] {
        h.publish("t", qos, ["a", "b", "c", "d"][n - 1], n as u64);
    }
    // Two in flight; the third QoS 1 and the QoS 0 behind it wait, in order.
    assert_eq!(h.sent(), ["PUBLISH t q1 id=1 dup=0 r=0 \"a\"", "PUBLISH t q2 id=2 dup=0 r=0 \"b\""]);
    assert_eq!((h.core.in_flight(), h.core.queued()), (2, 2));
    // Other packets are not held back [MQTT-5.0: 3.3.4-8].
    h.core.subscribe(vec![Subscription::new("s", QoS::AtMostOnce)], RequestProperties::default(), 9, h.now).unwrap();
    assert_eq!(h.sent(), ["SUBSCRIBE 3"]);
    // PUBREC does not free the slot of a QoS 2 publication; PUBCOMP does.
    h.ack(Packet::PubRec, 2);
    assert_eq!(h.sent(), ["PUBREL 2"]);
    h.ack(Packet::PubComp, 2);
    assert_eq!(h.sent(), ["PUBLISH t q1 id=4 dup=0 r=0 \"c\"", "PUBLISH t q0 id=0 dup=0 r=0 \"d\""]);
    assert_eq!(h.published(), [(2, Ok(ReasonCode::SUCCESS)), (4, Ok(ReasonCode::SUCCESS))]);
    // A PUBACK with an error code frees the slot and fails that publication.
    let mut rejected = PublishResponse::new(id(1));
    rejected.reason_code = ReasonCode::NOT_AUTHORIZED;
    h.send(&Packet::PubAck(rejected));
    assert_eq!(h.published(), [(1, Err(PublishError::Rejected(ReasonCode::NOT_AUTHORIZED)))]);
}

#[test]
fn resends_unacknowledged_publications_in_order_with_dup_on_reconnect() {
    for version in [V311, V5] {
        let mut h = Harness::new(Harness::options(version).clean_start(false));
        h.connect();
        h.publish("t", QoS::AtLeastOnce, "1", 1);
        h.publish("t", QoS::ExactlyOnce, "2", 2);
        h.publish("t", QoS::AtLeastOnce, "3", 3);
        h.publish("t", QoS::ExactlyOnce, "4", 4);
        h.sent();
        h.ack(Packet::PubRec, 2); // 2 is now waiting for PUBCOMP
        h.ack(Packet::PubAck, 3); // 3 is done
        assert_eq!(h.sent(), ["PUBREL 2"]);
        h.core.transport_closed(h.now, "reset by peer");
        // A new publication while disconnected waits behind the re-sends.
        h.publish("t", QoS::AtLeastOnce, "5", 5);
        h.run_to_deadline();
        let sent = h.connect_with(ConnAck::new(true, ReasonCode::SUCCESS));
        assert_eq!(
            sent,
            [
                "PUBLISH t q1 id=1 dup=1 r=0 \"1\"",
                "PUBREL 2",
                "PUBLISH t q2 id=4 dup=1 r=0 \"4\"",
                "PUBLISH t q1 id=5 dup=0 r=0 \"5\"",
            ],
            "{version}"
        );
        h.ack(Packet::PubAck, 1);
        h.ack(Packet::PubComp, 2);
        h.ack(Packet::PubRec, 4);
        h.ack(Packet::PubComp, 4);
        h.ack(Packet::PubAck, 5);
        let done: Vec<u64> = h.published().into_iter().map(|(tag, r)| tag + 10 * u64::from(r.is_err())).collect();
        assert_eq!(done, [3, 1, 2, 4, 5]);
    }
}

#[test]
fn without_a_session_unacknowledged_publications_are_sent_as_new_messages() {
    let mut h = Harness::new(Harness::options(V311).clean_start(false));
    h.connect();
    h.publish("t", QoS::AtLeastOnce, "1", 1);
    h.publish("t", QoS::ExactlyOnce, "2", 2);
    h.publish("t", QoS::ExactlyOnce, "3", 3);
    h.sent();
    h.ack(Packet::PubRec, 3);
    h.sent();
    h.core.transport_closed(h.now, "reset");
    h.run_to_deadline();
    h.take_events();
    // The server lost the session: DUP=0, new identifiers; 3 was already accepted.
    let sent = h.connect_with(ConnAck::new(false, ReasonCode::SUCCESS));
    assert_eq!(sent, ["PUBLISH t q1 id=4 dup=0 r=0 \"1\"", "PUBLISH t q2 id=5 dup=0 r=0 \"2\""]);
    assert_eq!(h.published(), [(3, Ok(ReasonCode::SUCCESS))]);
}

#[test]
fn qos2_is_delivered_exactly_once_when_the_server_resends() {
    let mut h = Harness::new(Harness::options(V5).clean_start(false).session_expiry_interval(60));
    h.connect();
    let first = server_publish("q", PublishQoS::ExactlyOnce(id(7)), b"once");
    h.send(&first);
    assert_eq!(h.sent(), ["PUBREC 7"]);
    assert_eq!(h.messages(), ["q once"]);
    // The server re-sends (DUP) before PUBREL: acknowledged again, not delivered again.
    let Packet::Publish(mut again) = first.clone() else { unreachable!() };
    again.dup = true;
    h.send(&Packet::Publish(again.clone()));
    assert_eq!(h.sent(), ["PUBREC 7"]);
    assert!(h.messages().is_empty());
    // Across a reconnection with the session kept, still not delivered again.
    h.core.transport_closed(h.now, "reset");
    h.run_to_deadline();
    h.connect_with(ConnAck::new(true, ReasonCode::SUCCESS));
    h.send(&Packet::Publish(again));
    assert_eq!(h.sent(), ["PUBREC 7"]);
    assert!(h.messages().is_empty());
    h.ack(Packet::PubRel, 7);
    assert_eq!(h.sent(), ["PUBCOMP 7 0x00"]);
    // After PUBCOMP the identifier carries a new message [MQTT-5.0: 4.3.3-12].
    h.send(&server_publish("q", PublishQoS::ExactlyOnce(id(7)), b"twice"));
    assert_eq!(h.messages(), ["q twice"]);
    // A PUBREL for an unknown identifier gets PUBCOMP 0x92.
    h.ack(Packet::PubRel, 8);
    assert_eq!(h.sent(), ["PUBREC 7", "PUBCOMP 8 0x92"]);
}

#[test]
fn qos1_is_acknowledged_in_order() {
    let mut h = Harness::new(Harness::options(V311));
    h.connect();
    for n in [5, 3, 9] {
        h.send(&server_publish("a/b", PublishQoS::AtLeastOnce(id(n)), b"m"));
    }
    assert_eq!(h.sent(), ["PUBACK 5", "PUBACK 3", "PUBACK 9"]);
    assert_eq!(h.messages().len(), 3);
}

#[test]
fn malformed_packet_closes_with_the_codecs_reason_code() {
    let mut h = Harness::new(Harness::options(V5));
    h.connect();
    h.take_events();
    // PUBLISH with QoS 3.
    h.send_raw(&[0x36, 0x06, 0, 1, b't', 0, 1, 0]);
    assert_eq!(h.sent(), ["DISCONNECT 0x81"]);
    let events = h.take_events();
    assert!(matches!(events[0], Event::CloseTransport));
    let Event::Connection(ConnectionEvent::ConnectionLost { reason: LostReason::ProtocolError { error, code } }) =
        &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*code, ReasonCode::MALFORMED_PACKET);
    assert!(error.contains("MQTT-3.3.1-4"), "{error}");
    // 3.1.1: closed without DISCONNECT.
    let mut h = Harness::new(Harness::options(V311));
    h.connect();
    h.send_raw(&[0x36, 0x05, 0, 1, b't', 0, 1]);
    assert!(h.sent().is_empty());
    assert!(h.take_events().iter().any(|e| matches!(e, Event::CloseTransport)));
}

#[test]
fn protocol_errors_close_the_connection() {
    // A packet before CONNACK.
    let mut h = Harness::new(Harness::options(V5));
    h.open();
    h.send(&Packet::PingResp);
    assert_eq!(h.sent(), ["DISCONNECT 0x82"]);
    // Session Present after a clean start [MQTT-5.0: 3.2.2-4].
    let mut h = Harness::new(Harness::options(V5));
    h.open();
    h.send(&Packet::ConnAck(ConnAck::new(true, ReasonCode::SUCCESS)));
    assert_eq!(h.sent(), ["DISCONNECT 0x82"]);
    // A packet above our Maximum Packet Size: 0x95.
    let mut options = Harness::options(V5);
    options.properties.maximum_packet_size = Some(64);
    let mut h = Harness::new(options);
    h.connect();
    h.send(&server_publish("t", PublishQoS::AtMostOnce, &[0; 100]));
    assert_eq!(h.sent(), ["DISCONNECT 0x95"]);
    // A Topic Alias we never allowed: 0x94.
    let mut h = Harness::new(Harness::options(V5));
    h.connect();
    let alias = props(&[Property::TopicAlias(1)]);
    let mut p = Publish::new(TopicName::new("t").unwrap(), PublishQoS::AtMostOnce, b"x");
    p.properties = alias.properties(PropertyContext::Publish).unwrap();
    h.send(&Packet::Publish(p));
    assert_eq!(h.sent(), ["DISCONNECT 0x94"]);
    // A SUBACK with the wrong number of codes.
    let mut h = Harness::new(Harness::options(V311));
    h.connect();
    h.take_events();
    let subs = vec![Subscription::new("a", QoS::AtMostOnce), Subscription::new("b", QoS::AtMostOnce)];
    h.core.subscribe(subs, RequestProperties::default(), 1, h.now).unwrap();
    h.sent();
    h.send(&Packet::SubAck(SubAck::new(
        id(1),
        ReasonCodes::parse(&[0], mqttkit_codec::PacketType::SubAck, V311).unwrap(),
    )));
    let events = h.connection_events();
    assert!(
        matches!(&events[0], ConnectionEvent::ConnectionLost { reason: LostReason::ProtocolError { error, .. } } if error.contains("MQTT-3.1.1: 3.8.4-5")),
        "{events:?}"
    );
}

#[test]
fn incoming_topic_aliases_are_resolved() {
    let mut options = Harness::options(V5);
    options.properties.topic_alias_maximum = Some(2);
    let mut h = Harness::new(options);
    h.connect();
    let alias = props(&[Property::TopicAlias(2)]);
    let mut p = Publish::new(TopicName::new("long/topic").unwrap(), PublishQoS::AtMostOnce, b"1");
    p.properties = alias.properties(PropertyContext::Publish).unwrap();
    h.send(&Packet::Publish(p.clone()));
    p.topic = TopicName::new("").unwrap();
    p.payload = b"2";
    h.send(&Packet::Publish(p));
    assert_eq!(h.messages(), ["long/topic 1", "long/topic 2"]);
}

#[test]
fn outgoing_topic_aliases_stay_within_the_server_maximum() {
    let mut h = Harness::new(Harness::options(V5).topic_aliases(true));
    let p = props(&[Property::TopicAliasMaximum(1)]);
    h.connect_with(connack_with(&p, false));
    h.publish("a", QoS::AtMostOnce, "1", 1);
    h.publish("a", QoS::AtMostOnce, "2", 2);
    h.publish("b", QoS::AtMostOnce, "3", 3);
    // `describe` shows the (empty) topic; the alias property is checked by decoding.
    assert_eq!(
        h.sent(),
        ["PUBLISH a q0 id=0 dup=0 r=0 \"1\"", "PUBLISH  q0 id=0 dup=0 r=0 \"2\"", "PUBLISH b q0 id=0 dup=0 r=0 \"3\""]
    );
    // Without a Topic Alias Maximum from the server, no alias at all [MQTT-5.0: 3.2.2-18].
    let mut h = Harness::new(Harness::options(V5).topic_aliases(true));
    h.connect();
    h.publish("a", QoS::AtMostOnce, "1", 1);
    h.publish("a", QoS::AtMostOnce, "2", 2);
    assert_eq!(h.sent(), ["PUBLISH a q0 id=0 dup=0 r=0 \"1\"", "PUBLISH a q0 id=0 dup=0 r=0 \"2\""]);
}

#[test]
fn server_limits_are_enforced_before_sending() {
    let mut h = Harness::new(Harness::options(V5));
    let p = props(&[Property::MaximumQoS(1), Property::RetainAvailable(0), Property::MaximumPacketSize(30)]);
    h.connect_with(connack_with(&p, false));
    let now = h.now;
    let r = h.core.publish(Publication::new("t", QoS::ExactlyOnce, false, "x"), Some(1), now);
    assert_eq!(r, Err(PublishError::QoSNotSupported { maximum: QoS::AtLeastOnce }));
    let r = h.core.publish(Publication::new("t", QoS::AtMostOnce, true, "x"), Some(2), now);
    assert_eq!(r, Err(PublishError::RetainNotSupported));
    h.core.publish(Publication::new("t", QoS::AtMostOnce, false, vec![0u8; 40]), Some(3), now).unwrap();
    assert_eq!(h.published(), [(3, Err(PublishError::PacketTooLarge { size: 46, limit: 30 }))]);
    assert!(h.sent().is_empty());
    // Invalid topics never reach the wire.
    let r = h.core.publish(Publication::new("a/+", QoS::AtMostOnce, false, "x"), Some(4), now);
    assert!(matches!(r, Err(PublishError::Invalid(_))), "{r:?}");
}

#[test]
fn server_disconnect_reason_reaches_the_application() {
    let mut h = Harness::new(Harness::options(V5));
    h.connect();
    h.take_events();
    let reason = props(&[Property::ReasonString("bye")]);
    let mut d = Disconnect::new(ReasonCode::SESSION_TAKEN_OVER);
    d.properties = reason.properties(PropertyContext::Disconnect).unwrap();
    h.send(&Packet::Disconnect(d));
    let events = h.connection_events();
    assert_eq!(
        events[0],
        ConnectionEvent::ConnectionLost {
            reason: LostReason::ServerDisconnect {
                code: ReasonCode::SESSION_TAKEN_OVER,
                reason_string: Some("bye".into()),
                server_reference: None
            }
        }
    );
    assert!(matches!(events[1], ConnectionEvent::Reconnecting { attempt: 1, .. }));
}

#[test]
fn disconnect_quiesces_until_acknowledged() {
    let mut h = Harness::new(Harness::options(V5));
    h.connect();
    h.take_events();
    h.publish("t", QoS::AtLeastOnce, "x", 1);
    h.sent();
    h.core.disconnect(h.now, Duration::from_millis(250), ReasonCode::SUCCESS, None);
    assert!(h.sent().is_empty());
    let now = h.now;
    assert_eq!(
        h.core.publish(Publication::new("t", QoS::AtMostOnce, false, "y"), None, now),
        Err(PublishError::Closed)
    );
    h.ack(Packet::PubAck, 1);
    assert_eq!(h.sent(), ["DISCONNECT 0x00"]);
    assert_eq!(h.connection_events(), [ConnectionEvent::Closed(CloseReason::Disconnected)]);
    // The quiesce time bounds the wait.
    let mut h = Harness::new(Harness::options(V311));
    h.connect();
    h.publish("t", QoS::AtLeastOnce, "x", 1);
    h.sent();
    h.core.disconnect(h.now, Duration::from_millis(250), ReasonCode::SUCCESS, None);
    assert_eq!(h.run_to_deadline(), Duration::from_millis(250));
    assert_eq!(h.sent(), ["DISCONNECT 0x00"]);
    assert_eq!(h.published(), [(1, Err(PublishError::Closed))]);
}

#[test]
fn resubscribes_when_the_server_lost_the_session() {
    let mut h = Harness::new(Harness::options(V311));
    h.connect();
    h.core.subscribe(vec![Subscription::new("a/#", QoS::AtLeastOnce)], RequestProperties::default(), 1, h.now).unwrap();
    assert_eq!(h.sent(), ["SUBSCRIBE 1"]);
    let codes = ReasonCodes::parse(&[1], mqttkit_codec::PacketType::SubAck, V311).unwrap();
    h.send(&Packet::SubAck(SubAck::new(id(1), codes)));
    h.core.transport_closed(h.now, "reset");
    h.run_to_deadline();
    assert_eq!(h.connect(), ["SUBSCRIBE 2"]);
}

#[test]
fn assigned_client_identifier_is_reported_and_reused() {
    let mut h = Harness::new(Harness::options(V5).client_id(""));
    let p = props(&[Property::AssignedClientIdentifier("auto-1")]);
    h.connect_with(connack_with(&p, false));
    let events = h.connection_events();
    let ConnectionEvent::Connected(info) = &events[0] else { panic!() };
    assert_eq!(info.assigned_client_id.as_deref(), Some("auto-1"));
    assert_eq!(h.core.client_id(), "auto-1");
}

#[test]
fn invalid_options_are_refused() {
    let bad = Harness::options(V311).client_id("").clean_start(false);
    assert!(Core::new(bad, Instant::now()).is_err());
    let bad = Harness::options(V311).session_expiry_interval(5);
    assert!(Core::new(bad, Instant::now()).is_err());
    let bad = Harness::options(V311).will(mqttkit_client::Will::new("a/#", "x", QoS::AtMostOnce, false));
    assert!(Core::new(bad, Instant::now()).is_err());
    let _unused: Properties<'_> = Properties::EMPTY;
    let _unused = Bytes::new();
}

use super::*;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mqttkit_codec::{Connect, MqttStr, Property, PropertyContext, TopicName, Will};

use crate::config::Config;
use crate::core::timers::conn_deadline;
use crate::core::{CloseReason, ConnId, Core};
use crate::testing::{Event, Harness, decode_all, props};

/// The deadline indexes summarise the state: every connection with a deadline has one
/// registered entry, never later than the deadline (keep alive and the write timeout only
/// move later, and are re-registered when the earlier entry falls due); session expiry is
/// registered exactly; `poll_timeout` is the earliest registered instant.
fn assert_timer_index(core: &Core) {
    let (connect_timeout, write_timeout) = (core.config.connect_timeout(), core.config.write_timeout());
    let mut scan: Vec<Instant> = Vec::new();
    for (id, conn) in &core.conns {
        let expected = conn_deadline(conn, connect_timeout, write_timeout);
        if let Some(due) = expected {
            let registered = conn.deadline.unwrap_or_else(|| panic!("{id:?}: no deadline registered"));
            assert!(registered <= due, "{id:?}: registered {registered:?} after the deadline {due:?}");
        }
        if let Some(at) = conn.deadline {
            assert!(core.conn_timers.contains(&(at, *id)));
            scan.push(at);
        }
    }
    assert_eq!(core.conn_timers.len(), core.conns.values().filter(|c| c.deadline.is_some()).count());
    for (client, session) in &core.sessions {
        if let Some(at) = session.expires_at {
            assert!(session.conn.is_none());
            assert!(core.session_timers.contains(&(at, client.clone())));
            scan.push(at);
        }
    }
    assert_eq!(core.session_timers.len(), core.sessions.values().filter(|s| s.expires_at.is_some()).count());
    let _ = core.wills.len();
    scan.extend(core.wills.next_deadline());
    scan.extend(core.next_sys);
    assert_eq!(core.poll_timeout(), scan.into_iter().min());
}

#[test]
fn five_thousand_connections_timers_fire_exactly() {
    // Correctness (not speed) of the deadline indexes: 5,000 connections with different
    // keep-alives, pings, session expiry and will delays; every close and every will
    // happens at exactly the modelled instant.
    const N: u64 = 5_000;
    let mut h = Harness::new(Config { sys_interval_secs: 0, max_connections: 10_000, ..Config::default() });
    let t0 = h.now;
    let s = Duration::from_secs;
    h.connect(0, V5, "watcher", true);
    h.subscribe(0, "will/#", q(QoS::AtMostOnce));
    let mut expect_close: BTreeMap<u64, (Instant, CloseReason)> = BTreeMap::new();
    let mut expect_will: BTreeMap<String, Instant> = BTreeMap::new();
    let mut pings: std::collections::BTreeSet<(Instant, u64)> = std::collections::BTreeSet::new();
    for i in 1..=N {
        h.open(i);
        if i % 5 == 0 {
            expect_close.insert(i, (t0 + s(10), CloseReason::ConnectTimeout));
            continue;
        }
        let ka = 1 + (i % 37);
        let expiry = if i % 3 == 0 { 0 } else { (i % 11) + 1 };
        let delay = i % 7;
        let client = format!("c{i}");
        let topic = format!("will/{i}");
        let connect_props = props(&[Property::SessionExpiryInterval(expiry as u32)]);
        let will_props = props(&[Property::WillDelayInterval(delay as u32)]);
        let mut c = Connect::new(V5, MqttStr::new(&client).unwrap(), true, ka as u16);
        c.properties = connect_props.properties(PropertyContext::Connect).unwrap();
        c.will = Some(Will {
            qos: QoS::AtMostOnce,
            retain: false,
            properties: will_props.properties(PropertyContext::Will).unwrap(),
            topic: TopicName::new(&topic).unwrap(),
            payload: b"x",
        });
        let ack = h.connect_with(i, c);
        assert_eq!(connack_code(&ack), (false, ReasonCode::SUCCESS));
        let close_at = if i % 2 == 0 {
            pings.insert((t0 + s(ka), i));
            t0 + s(ka) + Duration::from_millis(ka * 1500)
        } else {
            t0 + Duration::from_millis(ka * 1500)
        };
        expect_close.insert(i, (close_at, CloseReason::KeepAliveTimeout));
        let will_delay = if delay > 0 && expiry > 0 { delay.min(expiry) } else { 0 };
        expect_will.insert(topic, close_at + s(will_delay));
    }
    let _ = h.events();
    assert_timer_index(&h.core);

    let end = t0 + s(200);
    let mut closed_at: BTreeMap<u64, (Instant, CloseReason)> = BTreeMap::new();
    let mut wills_at: BTreeMap<String, Instant> = BTreeMap::new();
    let mut steps = 0u32;
    loop {
        let next_ping = pings.first().map(|p| p.0);
        let Some(next) = [h.core.poll_timeout(), next_ping].into_iter().flatten().min() else { break };
        if next > end {
            break;
        }
        h.now = next;
        while let Some(&(at, id)) = pings.first()
            && at == next
        {
            pings.remove(&(at, id));
            h.send(id, &Packet::PingReq);
            assert_eq!(kinds(&h.take(id)), [PacketType::PingResp]);
        }
        h.core.handle_timeout(next);
        for (id, event) in h.events() {
            match event {
                Event::Closed(reason) => assert!(closed_at.insert(id.0, (next, reason)).is_none()),
                Event::Bytes(bytes) if id == ConnId(0) => {
                    for packet in decode_all(bytes, V5) {
                        let Packet::Publish(p) = packet.packet() else { panic!("{packet:?}") };
                        assert!(wills_at.insert(p.topic.to_string(), next).is_none());
                    }
                }
                // DISCONNECT 0x8D before a keep-alive close.
                Event::Bytes(_) => {}
            }
        }
        steps += 1;
        if steps.is_multiple_of(50) {
            assert_timer_index(&h.core);
        }
    }
    assert_eq!(closed_at.len(), expect_close.len());
    assert_eq!(closed_at, expect_close);
    assert_eq!(wills_at, expect_will);
    assert_eq!(h.core.connection_count(), 1);
    assert_eq!(h.core.session_count(), 1, "every other session expired");
    assert_eq!(h.core.poll_timeout(), None);
    assert_timer_index(&h.core);
}

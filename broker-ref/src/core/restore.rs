//! Starting from what the persistent store held: retained messages, persistent sessions
//! (subscriptions, in-flight and queued messages, incoming QoS 2 ids), wills. Deadlines
//! are wall-clock times: what expired while the broker was down is dropped (messages) or
//! ends now (sessions, publishing their wills); connections open when the broker stopped
//! count as closed at the restart, so their wills follow (after their delay).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mqttkit_codec::{PacketId, ProtocolVersion, QoS, RetainHandling, TopicFilter};

use super::durable::Clock;
use super::inflight::{Inflight, OutState};
use super::message::{Delivery, Message};
use super::session::{Flow, NEVER_EXPIRES, Session};
use super::subscriptions::{SubOptions, SubscriptionFilter};
use super::will::WillMessage;
use super::{Core, add, secs};
use crate::persist::model::{DeliveryRecord, EntryState, MessageRecord, SessionRecord, Snapshot, WillRecord};

impl Core {
    /// Load what the store held, at `now` (`wall_ms`: the wall clock then, milliseconds
    /// since the Unix epoch). Call once, before any connection. Returns how many
    /// sessions and retained messages were restored.
    pub fn restore(&mut self, snapshot: Snapshot, now: Instant, wall_ms: u64) -> (usize, usize) {
        let clock = Clock { now, wall_ms };
        let mut retained = 0;
        for record in snapshot.retained {
            if let Some(msg) = message(record, clock) {
                self.retained.restore(Arc::new(msg));
                retained += 1;
            }
        }
        let mut sessions = 0;
        let mut ended = Vec::new();
        let mut wills = Vec::new();
        let mut entries: HashMap<String, Vec<(u64, EntryState, DeliveryRecord)>> = HashMap::new();
        for (client, seq, state, delivery) in snapshot.entries {
            entries.entry(client).or_default().push((seq, state, delivery));
        }
        for (client_id, record) in snapshot.clients {
            let messages = entries.remove(&client_id).unwrap_or_default();
            let client: Arc<str> = Arc::from(client_id.as_str());
            // Its record is rewritten at the first batch (the restart changed it).
            self.restored_record(&client, record.clone());
            self.touch_client(&client, true);
            if let Some(session) = record.session {
                match self.restore_session(&client, session, messages, clock) {
                    Some(expired) if expired => ended.push(client.clone()),
                    Some(_) => sessions += 1,
                    None => {}
                }
            }
            if let Some(will) = record.will {
                wills.push((client, will));
            }
        }
        for (client, record) in wills {
            let due_at = record.due_at_ms;
            let will = will_message(record);
            let due = match due_at {
                Some(due) => clock.to_instant(due),
                // Its connection ended with the restart: the Will Delay counts from now,
                // but the will goes with the session if that ends first [MQTT-5.0: 3.1.2-8].
                None => {
                    let expiry = self.sessions.get(&client).map_or(0, |s| s.expiry_interval);
                    add(now, secs(u64::from(will.delay.min(expiry))))
                }
            };
            if due <= now {
                self.publish_will(client, will, now);
            } else {
                self.wills.schedule(client, due, will);
            }
        }
        for client in ended {
            // "The Server MUST discard the Session State when the Network Connection is
            // closed and the Session Expiry Interval has passed" [MQTT-5.0: 4.1.0-2].
            self.end_session(&client, now);
        }
        (sessions, retained)
    }

    /// Rebuild one session and its messages (in number order); `Some(true)` if it
    /// expired while the broker was down, `None` if the record is unusable.
    fn restore_session(
        &mut self,
        client: &Arc<str>,
        record: SessionRecord,
        messages: Vec<(u64, EntryState, DeliveryRecord)>,
        clock: Clock,
    ) -> Option<bool> {
        let version = ProtocolVersion::from_level(record.protocol_level)?;
        let mut session = Session::new(client.clone(), version);
        session.user = record.user.map(Arc::from);
        session.expiry_interval = record.expiry_interval;
        session.last_packet_id = record.last_packet_id;
        session.next_seq =
            record.next_seq.max(messages.iter().map(|(seq, _, _)| seq.saturating_add(1)).max().unwrap_or(1));
        let expires_at = match (record.expires_at_ms, record.expiry_interval) {
            (_, NEVER_EXPIRES) => None,
            (Some(at), _) => Some(clock.to_instant(at)),
            // Connected when the broker stopped: the interval counts from the restart.
            (None, interval) => clock.now.checked_add(secs(u64::from(interval))),
        };
        let expired = expires_at.is_some_and(|at| at <= clock.now);
        for sub in record.subscriptions {
            let Ok(filter) = TopicFilter::new(&sub.filter) else { continue };
            let filter = SubscriptionFilter::new(filter, if sub.shared { ProtocolVersion::V5 } else { version });
            let opts = SubOptions {
                qos: QoS::from_u8(sub.qos).unwrap_or(QoS::AtMostOnce),
                no_local: sub.no_local,
                retain_as_published: sub.retain_as_published,
                retain_handling: RetainHandling::from_u8(sub.retain_handling).unwrap_or_default(),
                sub_id: sub.sub_id,
            };
            self.subs.insert(&filter, client, opts);
            session.subscriptions.insert(filter, opts);
        }
        let mut flow = Flow { inflight: Inflight::after(record.last_packet_id), ..Flow::default() };
        // Every stored message is noted as stored, also those dropped here (expired): the
        // first batch deletes them.
        let mut stored = BTreeMap::new();
        for (seq, state, record) in messages {
            stored.insert(seq, state);
            let (pid, out_state) = match state {
                EntryState::Queued => (None, None),
                EntryState::Qos1Sent(pid) => (PacketId::new(pid), Some(OutState::Qos1Sent)),
                EntryState::Qos2Sent(pid) => (PacketId::new(pid), Some(OutState::Qos2Sent)),
                EntryState::Released(pid) => (PacketId::new(pid), Some(OutState::Released)),
            };
            let delivery = delivery(record, clock).map(|mut d| {
                d.seq = seq;
                d
            });
            match (delivery, pid, out_state) {
                (Some(d), None, None) => flow.queue.push_back(d),
                (Some(d), Some(pid), Some(out)) => flow.inflight.push(pid, out, d),
                // A PUBREL only needs its identifier; an expired PUBLISH is not sent again.
                (None, Some(pid), Some(OutState::Released)) => {
                    let msg = Arc::new(Message::new("-", Bytes::new(), QoS::ExactlyOnce, false));
                    let d = Delivery { msg, qos: QoS::ExactlyOnce, retain: false, sub_ids: Vec::new(), seq };
                    flow.inflight.push(pid, OutState::Released, d);
                }
                _ => {}
            }
        }
        self.restored_entries(client, stored);
        flow.incoming_qos2 = record.incoming_qos2.into_iter().collect();
        session.flow = Some(Box::new(flow));
        session.release_idle_flow();
        self.sessions.insert(client.clone(), Box::new(session));
        if !expired {
            self.set_session_expiry(client, expires_at);
        }
        Some(expired)
    }
}

/// A stored message, unless it expired.
fn message(record: MessageRecord, clock: Clock) -> Option<Message> {
    let expires_at = match record.expires_at_ms {
        Some(at) if at <= clock.wall_ms => return None,
        Some(at) => Some(clock.to_instant(at)),
        None => None,
    };
    Some(Message {
        topic: Arc::from(record.topic),
        payload: Bytes::from(record.payload),
        qos: QoS::from_u8(record.qos)?,
        retain: record.retain,
        props: Bytes::from(record.props),
        expires_at,
        publisher: record.publisher.map(Arc::from),
    })
}

fn delivery(record: DeliveryRecord, clock: Clock) -> Option<Delivery> {
    Some(Delivery {
        msg: Arc::new(message(record.message, clock)?),
        qos: QoS::from_u8(record.qos)?,
        retain: record.retain,
        sub_ids: record.sub_ids,
        seq: 0,
    })
}

fn will_message(record: WillRecord) -> WillMessage {
    WillMessage {
        topic: Arc::from(record.topic),
        payload: Bytes::from(record.payload),
        qos: QoS::from_u8(record.qos).unwrap_or(QoS::AtMostOnce),
        retain: record.retain,
        props: Bytes::from(record.props),
        expiry: record.expiry,
        delay: record.delay,
    }
}

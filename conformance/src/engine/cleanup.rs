//! Cleanup after a scenario run: only what the run itself created.

use std::collections::BTreeSet;

use super::{RunConfig, scaled};
use crate::client::{Connection, Trace};
use crate::outgoing::{ConnectSpec, IntSpec, OutgoingPacket, SentFacts};
use crate::template::Variables;
use crate::version::Version;

/// What the run created that it must clean up.
#[derive(Debug, Default)]
pub(super) struct RunFacts {
    retained_topics: BTreeSet<String>,
    persistent_client_ids: BTreeSet<String>,
}

impl RunFacts {
    pub(super) fn absorb(&mut self, facts: SentFacts) {
        self.retained_topics.extend(facts.retained_topics);
        self.persistent_client_ids.extend(facts.persistent_client_id);
    }
}

/// Remove what the scenario left behind: persistent sessions of its own client ids, and
/// retained messages on topics it published retained to. Nothing else is ever touched.
pub(super) async fn cleanup(config: &RunConfig, version: Version, prefix: &str, facts: &RunFacts) {
    let trace = Trace::default();
    let mut vars = Variables::default();
    vars.set("prefix", prefix);
    let deadline = || tokio::time::Instant::now() + scaled(2.0, config.time_scale);
    let credentials = ConnectSpec {
        username: config.username.clone(),
        password: config.password.clone().map(crate::outgoing::BytesSpec::Text),
        ..ConnectSpec::default()
    };
    let disconnect = OutgoingPacket::Disconnect { reason_code: 0, properties: Vec::new() };
    for client_id in &facts.persistent_client_ids {
        let Ok(mut connection) = Connection::open(&config.connector, "cleanup", version, trace.clone()).await else {
            return;
        };
        let connect =
            OutgoingPacket::Connect(ConnectSpec { client_id: Some(client_id.clone()), ..credentials.clone() });
        if let Ok((bytes, _)) = connect.encode(version, &vars, client_id) {
            let _ = connection.send(&bytes).await;
            let _ = connection.next_event(deadline()).await;
        }
        if let Ok((bytes, _)) = disconnect.encode(version, &vars, "") {
            let _ = connection.send(&bytes).await;
        }
        connection.close().await;
    }
    if facts.retained_topics.is_empty() {
        return;
    }
    let Ok(mut connection) = Connection::open(&config.connector, "cleanup", version, trace.clone()).await else {
        return;
    };
    let client_id = format!("{prefix}cln");
    let Ok((bytes, _)) = OutgoingPacket::Connect(credentials).encode(version, &vars, &client_id) else { return };
    let _ = connection.send(&bytes).await;
    let _ = connection.next_event(deadline()).await;
    for (i, topic) in facts.retained_topics.iter().enumerate() {
        let clear = OutgoingPacket::Publish {
            topic: topic.replace('{', "{{").replace('}', "}}"),
            payload: crate::outgoing::BytesSpec::Text(String::new()),
            qos: 1,
            retain: true,
            dup: false,
            packet_id: Some(IntSpec::Literal(u64::try_from(i).unwrap_or(0).saturating_add(1))),
            properties: Vec::new(),
        };
        if let Ok((bytes, _)) = clear.encode(version, &vars, "") {
            let _ = connection.send(&bytes).await;
            let _ = connection.next_event(deadline()).await;
        }
    }
    if let Ok((bytes, _)) = disconnect.encode(version, &vars, "") {
        let _ = connection.send(&bytes).await;
    }
    connection.close().await;
}

//! The two functions of a typical paho.mqtt.golang program, in Rust:
//!
//! * `push(topic, qos, retain, payload)`: connect (keep alive 60 s, ping timeout 1 s,
//!   on-connect and connection-lost reporting), publish and wait for the QoS handshake,
//!   disconnect with a 250 ms quiesce;
//! * `subscription(topic, qos, is_sub, handler)`: subscribe with a message handler, or
//!   unsubscribe.
//!
//! ```sh
//! cargo run -p mqttkit-client --example push_subscribe -- mqtt://127.0.0.1:1883 [3.1.1|5]
//! ```

use std::error::Error;
use std::time::Duration;

use mqttkit_client::{Client, ConnectionEvent, Message, Options, ProtocolVersion, QoS, ReasonCode, RequestError};

/// paho's options: broker, client id, keep alive, ping timeout, on-connect and
/// connection-lost handlers.
pub fn options(broker: &str, client_id: &str, version: ProtocolVersion) -> Options {
    let id = client_id.to_owned();
    Options::new(broker)
        .version(version)
        .client_id(client_id)
        .keep_alive(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(1))
        .on_event(move |event| match event {
            ConnectionEvent::Connected(c) => println!("[{id}] connected (session present: {})", c.session_present),
            ConnectionEvent::ConnectionLost { reason } => println!("[{id}] connection lost: {reason}"),
            _ => {}
        })
}

/// Connect, publish, wait for the QoS handshake, disconnect with a 250 ms quiesce.
pub async fn push(
    broker: &str,
    version: ProtocolVersion,
    topic: &str,
    qos: QoS,
    retain: bool,
    payload: &[u8],
) -> Result<ReasonCode, Box<dyn Error>> {
    let client = Client::connect(options(broker, "push", version)).await?;
    let code = client.publish(topic.to_owned(), qos, retain, payload.to_vec()).await?;
    client.disconnect(Duration::from_millis(250)).await;
    Ok(code)
}

/// Subscribe with a message handler (`is_sub`), or unsubscribe. Returns the SUBACK /
/// UNSUBACK reason codes.
pub async fn subscription(
    client: &Client,
    topic: &str,
    qos: QoS,
    is_sub: bool,
    mut handler: impl FnMut(Message) + Send + 'static,
) -> Result<Vec<ReasonCode>, RequestError> {
    if !is_sub {
        return client.unsubscribe([topic]).await;
    }
    let mut messages = client.messages();
    let codes = client.subscribe([(topic, qos)]).await?;
    tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            handler(message);
        }
    });
    Ok(codes)
}

/// What one run saw.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    /// PUBACK / PUBCOMP reason codes of the pushes.
    pub pushed: Vec<ReasonCode>,
    /// SUBACK, then UNSUBACK codes.
    pub subscribed: Vec<ReasonCode>,
    pub unsubscribed: Vec<ReasonCode>,
    /// `(topic, payload, retain)` of the messages the handler got.
    pub received: Vec<(String, String, bool)>,
}

/// Push a retained status, subscribe (receiving it), push a reading, unsubscribe, and
/// clear the retained status.
pub async fn run(broker: &str, version: ProtocolVersion) -> Result<Report, Box<dyn Error>> {
    let status = "mqttkit/example/status";
    let mut pushed = vec![push(broker, version, status, QoS::AtLeastOnce, true, b"online").await?];

    let subscriber = Client::connect(options(broker, "subscription", version)).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = move |m: Message| {
        println!("[subscription] {} {:?}", m.topic(), String::from_utf8_lossy(m.payload()));
        let _ = tx.send((m.topic().to_owned(), String::from_utf8_lossy(m.payload()).into_owned(), m.retain()));
    };
    let subscribed = subscription(&subscriber, "mqttkit/example/#", QoS::ExactlyOnce, true, handler).await?;
    pushed.push(push(broker, version, "mqttkit/example/data", QoS::ExactlyOnce, false, b"42").await?);
    let mut received = Vec::new();
    while received.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        received.push(next.map_err(|_| "no message within 10 s")?.ok_or("handler stopped")?);
    }
    let unsubscribed = subscription(&subscriber, "mqttkit/example/#", QoS::AtMostOnce, false, drop).await?;
    subscriber.disconnect(Duration::from_millis(250)).await;

    pushed.push(push(broker, version, status, QoS::AtLeastOnce, true, b"").await?);
    Ok(Report { pushed, subscribed, unsubscribed, received })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let broker = args.next().unwrap_or_else(|| "mqtt://127.0.0.1:1883".to_owned());
    let version = match args.next().as_deref() {
        Some("5" | "5.0") => ProtocolVersion::V5,
        _ => ProtocolVersion::V3_1_1,
    };
    let report = run(&broker, version).await?;
    println!("{report:#?}");
    Ok(())
}

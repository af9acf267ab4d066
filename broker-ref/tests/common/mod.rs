//! A minimal raw MQTT client over TCP built on the codec, for integration tests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mqttkit_broker::{Broker, BrokerHandle, Config};
use mqttkit_codec::{
    Connect, MqttStr, OwnedPacket, Packet, PacketId, Properties, ProtocolVersion, Publish, PublishQoS, QoS,
    StreamDecoder, Subscribe, SubscribeFiltersBuf, SubscriptionOptions, TopicFilter, TopicName, Will,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub async fn start(config: Config) -> BrokerHandle {
    Broker::start(Config { listen: "127.0.0.1:0".into(), ..config }).await.unwrap()
}

pub fn test_config() -> Config {
    Config { sys_interval_secs: 0, ..Config::default() }
}

#[derive(Debug)]
pub struct Client {
    pub stream: TcpStream,
    pub decoder: StreamDecoder,
    pub version: ProtocolVersion,
}

impl Client {
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self { stream, decoder: StreamDecoder::with_version(version), version }
    }

    /// Connect with a small receive buffer (no autotuning: a client that stops reading
    /// fills it quickly) and a will on `will_topic`; return the CONNACK.
    pub async fn connect_small_buffer(
        addr: SocketAddr,
        version: ProtocolVersion,
        id: &str,
        will_topic: &str,
    ) -> (Self, OwnedPacket) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let mut c = Self { stream, decoder: StreamDecoder::with_version(version), version };
        let mut connect = Connect::new(version, MqttStr::new(id).unwrap(), true, 30);
        connect.will = Some(Will {
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::EMPTY,
            topic: TopicName::new(will_topic).unwrap(),
            payload: b"gone",
        });
        c.send(&Packet::Connect(connect)).await;
        let ack = c.recv().await.expect("CONNACK");
        (c, ack)
    }

    /// Connect and return the CONNACK.
    pub async fn connect(addr: SocketAddr, version: ProtocolVersion, id: &str, clean: bool) -> (Self, OwnedPacket) {
        let mut c = Self::open(addr, version).await;
        c.send(&Packet::Connect(Connect::new(version, MqttStr::new(id).unwrap(), clean, 30))).await;
        let ack = c.recv().await.expect("CONNACK");
        (c, ack)
    }

    pub async fn send(&mut self, packet: &Packet<'_>) {
        let mut buf = Vec::new();
        packet.encode(self.version, &mut buf).unwrap();
        self.stream.write_all(&buf).await.unwrap();
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let mut f = SubscribeFiltersBuf::new();
        f.push(TopicFilter::new(filter).unwrap(), SubscriptionOptions::qos(qos));
        let sub = Subscribe {
            packet_id: PacketId::new(1).unwrap(),
            properties: Properties::EMPTY,
            filters: f.filters(self.version).unwrap(),
        };
        self.send(&Packet::Subscribe(sub)).await;
        let ack = self.recv().await.expect("SUBACK");
        assert!(matches!(ack.packet(), Packet::SubAck(_)));
    }

    pub async fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, id: u16) {
        let q = match qos {
            QoS::AtMostOnce => PublishQoS::AtMostOnce,
            q => PublishQoS::new(q, PacketId::new(id).unwrap()),
        };
        self.send(&Packet::Publish(Publish::new(TopicName::new(topic).unwrap(), q, payload))).await;
    }

    /// The next packet, or `None` on EOF. Panics after 10 s.
    pub async fn recv(&mut self) -> Option<OwnedPacket> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match self.decoder.next_packet() {
                    Ok(Some(p)) => return Some(OwnedPacket::from_packet(&p, self.version).unwrap()),
                    Ok(None) => {}
                    Err(e) => panic!("client decode error: {e}"),
                }
                let n = self.stream.read_buf(self.decoder.read_buffer()).await.ok()?;
                if n == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("timed out waiting for a packet")
    }
}

/// The `mqttkit-broker` binary run as a process of its own, its standard error in a file.
pub struct BrokerProcess {
    pub child: std::process::Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl BrokerProcess {
    /// Start the binary with `config` (TOML; the plain listener comes from `--listen`) in
    /// `dir`, and wait until it accepts connections on `port`.
    pub fn start(dir: &std::path::Path, name: &str, config: &str, port: u16) -> Self {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mqttkit-broker"))
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start mqttkit-broker");
        let mut broker = Self { child, port, log };
        broker.wait_ready();
        broker
    }

    fn wait_ready(&mut self) {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mqttkit-broker exited ({status}) during start-up:\n{}", self.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mqttkit-broker did not listen on {}:\n{}", self.port, self.log());
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Wait (at most 10 s) until its log contains `text`; the log.
    pub fn wait_log(&self, text: &str) -> String {
        let started = std::time::Instant::now();
        loop {
            let log = self.log();
            if log.contains(text) || started.elapsed() > Duration::from_secs(10) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

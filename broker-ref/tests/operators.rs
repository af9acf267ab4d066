//! What an operator sees, with real sockets on 127.0.0.1: the management API (credentials,
//! clients, subscriptions, retained messages, disconnecting a client, Prometheus metrics),
//! TLS client certificates naming users, and the `mqttkit-broker` binary's commands, log
//! lines and errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BrokerProcess, Client, free_port};
use mqttkit_broker::Config;
use mqttkit_broker::admin::client::{Credentials, call};
use mqttkit_broker::admin::model;
use mqttkit_broker::auth::PasswordHash;
use mqttkit_broker::listeners::Transport;
use mqttkit_codec::{
    Connect, Disconnect, MqttStr, OwnedPacket, Packet, Properties, ProtocolVersion, QoS, ReasonCode, StreamDecoder,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const TOKEN: &str = "operator-test-token-0123456789";
const V5: ProtocolVersion = ProtocolVersion::V5;
const V3: ProtocolVersion = ProtocolVersion::V3_1_1;

fn hash(password: &str) -> String {
    PasswordHash::new(password.as_bytes(), 10).unwrap().to_string()
}

/// Open a connection and send CONNECT with `user`/`password`; the connection and CONNACK.
async fn login(
    addr: SocketAddr,
    version: ProtocolVersion,
    id: &str,
    keep_alive: u16,
    user: Option<(&str, &str)>,
) -> (Client, OwnedPacket) {
    let mut c = Client::open(addr, version).await;
    let mut connect = Connect::new(version, MqttStr::new(id).unwrap(), true, keep_alive);
    if let Some((user, password)) = user {
        connect.username = Some(MqttStr::new(user).unwrap());
        connect.password = Some(password.as_bytes());
    }
    c.send(&Packet::Connect(connect)).await;
    let ack = c.recv().await.expect("CONNACK");
    (c, ack)
}

fn connack_code(ack: &OwnedPacket) -> ReasonCode {
    match ack.packet() {
        Packet::ConnAck(c) => c.code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// One HTTP/1.1 request over a plain socket (optionally without any credentials); the
/// whole response, headers included.
async fn raw_http(addr: SocketAddr, method: &str, path: &str, authorization: Option<&str>) -> String {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(10), work).await.expect("the API answers within 10 s")
}

async fn api(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let method = method.parse().unwrap();
    let (status, body) = call(addr, method, path, &Credentials::Token(TOKEN.into())).await.unwrap();
    (status.as_u16(), body)
}

async fn clients(addr: SocketAddr) -> Vec<model::Client> {
    let (status, body) = api(addr, "GET", "/api/v1/clients").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_needs_credentials_lists_clients_and_acts_on_them() {
    let config = Config::from_toml(&format!(
        "sys_interval_secs = 0\n[users]\nalice = \"{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\
         username = \"admin\"\npassword = \"{}\"\n",
        hash("alice-pw"),
        hash("admin-pw"),
    ))
    .unwrap();
    let broker = common::start(config).await;
    let (addr, admin) = (broker.local_addr(), broker.admin_addr().expect("admin API"));
    assert!(admin.ip().is_loopback());

    // No credentials, a wrong token, a wrong password: 401 with a Basic challenge.
    let none = raw_http(admin, "GET", "/api/v1/clients", None).await;
    assert!(none.starts_with("HTTP/1.1 401"), "{none}");
    assert!(none.to_ascii_lowercase().contains("www-authenticate: basic"), "{none}");
    for auth in ["Bearer not-the-token-at-all-0000", "Basic YWRtaW46d3Jvbmc="] {
        let refused = raw_http(admin, "GET", "/api/v1/status", Some(auth)).await;
        assert!(refused.starts_with("HTTP/1.1 401"), "{auth}: {refused}");
    }
    let metrics = raw_http(admin, "GET", "/metrics", None).await;
    assert!(metrics.starts_with("HTTP/1.1 401"), "{metrics}");

    let (mut a, ack) = login(addr, V5, "api-a", 45, Some(("alice", "alice-pw"))).await;
    assert_eq!(connack_code(&ack), ReasonCode::SUCCESS);
    a.subscribe("sensors/+/temp", QoS::AtLeastOnce).await;
    let (mut b, ack) = login(addr, V3, "api-b", 30, None).await;
    assert_eq!(connack_code(&ack), ReasonCode::SUCCESS);
    b.subscribe("alerts/#", QoS::AtMostOnce).await;

    // Status, with basic authentication.
    let (status, body) =
        call(admin, "GET".parse().unwrap(), "/api/v1/status", &Credentials::Basic("admin".into(), "admin-pw".into()))
            .await
            .unwrap();
    assert_eq!(status.as_u16(), 200, "{body}");
    let s: model::Status = serde_json::from_str(&body).unwrap();
    assert_eq!((s.connections, s.sessions, s.subscriptions), (2, 2, 2), "{s:?}");
    assert!(s.listeners.iter().any(|l| l.transport == "mqtt" && l.address == addr.to_string()), "{s:?}");
    assert_eq!(s.version, mqttkit_broker::core::VERSION);

    // Clients: id, user, peer, protocol, keep alive, subscriptions.
    let list = clients(admin).await;
    let find = |id: &str| list.iter().find(|c| c.client_id == id).unwrap_or_else(|| panic!("{id} in {list:?}"));
    let ca = find("api-a");
    assert!(ca.connected && ca.connected_since.is_some());
    assert_eq!(ca.user.as_deref(), Some("alice"));
    assert_eq!(ca.peer.as_deref(), Some(a.stream.local_addr().unwrap().to_string().as_str()));
    assert_eq!(ca.transport.as_deref(), Some("mqtt"));
    assert!(ca.protocol.contains('5'), "{ca:?}");
    assert_eq!(ca.keep_alive, Some(45));
    assert_eq!(ca.subscriptions.len(), 1);
    assert_eq!((ca.subscriptions[0].filter.as_str(), ca.subscriptions[0].qos), ("sensors/+/temp", 1));
    let cb = find("api-b");
    assert_eq!(cb.user, None);
    assert_eq!(cb.peer.as_deref(), Some(b.stream.local_addr().unwrap().to_string().as_str()));
    assert!(cb.protocol.contains("3.1.1"), "{cb:?}");
    assert_eq!(cb.keep_alive, Some(30));
    assert_eq!(cb.subscriptions.iter().map(|s| s.filter.as_str()).collect::<Vec<_>>(), ["alerts/#"]);
    let (status, one) = api(admin, "GET", "/api/v1/clients/api-b").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<model::Client>(&one).unwrap().client_id, "api-b");
    assert_eq!(api(admin, "GET", "/api/v1/clients/nobody").await.0, 404);
    let (_, subs) = api(admin, "GET", "/api/v1/subscriptions").await;
    let subs: Vec<model::Subscription> = serde_json::from_str(&subs).unwrap();
    assert!(subs.iter().any(|s| s.client_id.as_deref() == Some("api-b") && s.filter == "alerts/#"), "{subs:?}");

    // Retained messages: listed, deleted.
    b.send(&Packet::Publish({
        let mut p = mqttkit_codec::Publish::new(
            mqttkit_codec::TopicName::new("state/door").unwrap(),
            mqttkit_codec::PublishQoS::new(QoS::AtLeastOnce, mqttkit_codec::PacketId::new(7).unwrap()),
            b"open",
        );
        p.retain = true;
        p
    }))
    .await;
    assert!(matches!(b.recv().await.map(|p| matches!(p.packet(), Packet::PubAck(_))), Some(true)));
    let (_, retained) = api(admin, "GET", "/api/v1/retained").await;
    let retained: Vec<model::Retained> = serde_json::from_str(&retained).unwrap();
    let door = retained.iter().find(|r| r.topic == "state/door").unwrap_or_else(|| panic!("{retained:?}"));
    assert_eq!((door.payload.as_str(), door.encoding.as_str(), door.qos), ("open", "utf-8", 1));
    assert_eq!(api(admin, "DELETE", "/api/v1/retained/state/door").await.0, 204);
    let (_, retained) = api(admin, "GET", "/api/v1/retained").await;
    assert!(!retained.contains("state/door"), "{retained}");
    assert_eq!(api(admin, "DELETE", "/api/v1/retained/state/door").await.0, 404);

    // Prometheus text format.
    let metrics = raw_http(admin, "GET", "/metrics", Some(&format!("Bearer {TOKEN}"))).await;
    let (head, body) = metrics.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    assert!(body.contains("# TYPE mqttkit_clients_connected gauge\nmqttkit_clients_connected 2\n"), "{body}");
    assert!(body.contains("\nmqttkit_subscriptions 2\n"), "{body}");
    for line in body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        assert!(name.starts_with("mqttkit_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "value of {line:?}");
    }

    // Disconnect a client: a 5.0 client gets DISCONNECT 0x98, then the connection closes.
    assert_eq!(api(admin, "DELETE", "/api/v1/clients/api-a").await.0, 204);
    let disconnect = a.recv().await.expect("DISCONNECT before the close");
    match disconnect.packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason_code, ReasonCode::ADMINISTRATIVE_ACTION),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    assert!(a.recv().await.is_none(), "the connection is closed");
    assert!(clients(admin).await.iter().all(|c| c.client_id != "api-a" || !c.connected));
    // A 3.1.1 client is closed without a packet.
    assert_eq!(api(admin, "DELETE", "/api/v1/clients/api-b").await.0, 204);
    assert!(b.recv().await.is_none());
    assert_eq!(api(admin, "DELETE", "/api/v1/clients/api-b").await.0, 404);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_client_list_is_not_published_unless_configured() {
    for list in [false, true] {
        let broker = common::start(Config { sys_interval_secs: 1, sys_client_list: list, ..Config::default() }).await;
        let addr = broker.local_addr();
        let (mut c, _) = login(addr, V5, "sys-reader", 30, None).await;
        c.subscribe("$SYS/#", QoS::AtMostOnce).await;
        let peer = c.stream.local_addr().unwrap().to_string();
        // Read two publication rounds (the uptime topic comes once per round).
        let mut topics = Vec::new();
        let mut rounds = 0;
        while rounds < 2 {
            let p = c.recv().await.expect("$SYS publications");
            if let Packet::Publish(p) = p.packet() {
                rounds += usize::from(p.topic.as_str() == "$SYS/broker/uptime");
                let payload = String::from_utf8_lossy(p.payload).into_owned();
                topics.push((p.topic.as_str().to_owned(), payload));
            }
        }
        let listed = topics.iter().any(|(t, _)| t == "$SYS/broker/clients/list");
        let peer_seen = topics.iter().any(|(_, payload)| payload.contains(&peer));
        assert_eq!(listed, list, "sys_client_list = {list}: {topics:?}");
        assert_eq!(peer_seen, list, "sys_client_list = {list}: {topics:?}");
        broker.shutdown().await;
    }
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate (CN
/// `mqttkit-test-client`, O `mqttkit`) signed by it, written to `dir`.
struct Pki {
    ca: rcgen::Certificate,
    client_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    client_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn generate_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "mqttkit test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "mqttkit-test-client");
    params.distinguished_name.push(DnType::OrganizationName, "mqttkit");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    Pki {
        client_chain: vec![client.der().clone()],
        client_key: rustls::pki_types::PrivateKeyDer::Pkcs8(client_key.serialize_der().into()),
        ca,
    }
}

/// A TLS connection to `addr`, with the client certificate when `with_cert`; `None` when
/// the handshake fails.
async fn tls_connect(
    pki: &Pki,
    addr: SocketAddr,
    with_cert: bool,
) -> Option<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        builder.with_client_auth_cert(pki.client_chain.clone(), pki.client_key.clone_key()).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp)).await.expect("handshake ends").ok()
}

/// Send CONNECT over any stream; the first packet back, or `None` if the connection ends
/// (or fails) first.
async fn connect_over<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, id: &str) -> Option<OwnedPacket> {
    let mut bytes = Vec::new();
    Packet::Connect(Connect::new(V5, MqttStr::new(id).unwrap(), true, 30)).encode(V5, &mut bytes).unwrap();
    let mut decoder = StreamDecoder::with_version(V5);
    let work = async {
        stream.write_all(&bytes).await.ok()?;
        loop {
            if let Ok(Some(p)) = decoder.next_packet() {
                return Some(OwnedPacket::from_packet(&p, V5).unwrap());
            }
            if stream.read_buf(decoder.read_buffer()).await.ok()? == 0 {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), work).await.expect("an answer or a close within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_is_verified_and_its_subject_is_the_user_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate_pki(dir.path());
    let p = |name: &str| dir.path().join(name).display().to_string();
    // Passwords are required on this broker, but a certificate user needs none.
    let config = Config::from_toml(&format!(
        "sys_interval_secs = 0\nallow_anonymous = false\n[users]\nalice = \"{}\"\n\
         [[listener]]\nprotocol = \"mqtts\"\nbind = \"127.0.0.1:0\"\ncert_file = {:?}\nkey_file = {:?}\n\
         ca_file = {:?}\nrequire_certificate = true\nuse_subject_as_username = true\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n",
        hash("alice-pw"),
        p("server.pem"),
        p("server.key"),
        p("ca.pem"),
    ))
    .unwrap();
    let broker = mqttkit_broker::Broker::start(config).await.unwrap();
    let addr = broker.listener_addr(Transport::Mqtts).unwrap();
    let admin = broker.admin_addr().unwrap();

    let mut with_cert = tls_connect(&pki, addr, true).await.expect("handshake with a CA-signed certificate");
    let ack = connect_over(&mut with_cert, "cert-client").await.expect("CONNACK");
    assert_eq!(connack_code(&ack), ReasonCode::SUCCESS);
    let list = clients(admin).await;
    let c = list.iter().find(|c| c.client_id == "cert-client").unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(c.user.as_deref(), Some("CN=mqttkit-test-client, O=mqttkit"), "{c:?}");
    assert_eq!(c.transport.as_deref(), Some("mqtts"));

    // Without a certificate: no MQTT session (the handshake or the first read fails).
    if let Some(mut without) = tls_connect(&pki, addr, false).await {
        assert!(connect_over(&mut without, "no-cert").await.is_none(), "a client without certificate got an answer");
    }
    assert!(clients(admin).await.iter().all(|c| c.client_id != "no-cert"));
    broker.shutdown().await;
}

/// Run the broker binary with `args`, at most 20 s.
fn run_binary(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqttkit-broker"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("mqttkit-broker {args:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_status_clients_and_log_lines_of_a_running_broker() {
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwords");
    let out = run_binary(&["passwd", "-c", "-b", "s3cret-Pass", passwords.to_str().unwrap(), "alice"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = std::fs::read_to_string(&passwords).unwrap();
    assert!(file.starts_with("alice:$7$"), "{file}");
    assert_eq!(file.lines().count(), 1, "{file}");
    assert!(!file.contains("s3cret-Pass"), "the plain password is in the file");

    let (port, admin_port) = (free_port(), free_port());
    let config = format!(
        "sys_interval_secs = 0\nallow_anonymous = false\npassword_file = {:?}\n\
         [admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken = \"{TOKEN}\"\n",
        passwords.display().to_string()
    );
    let broker = BrokerProcess::start(dir.path(), "cli", &config, port);
    let config_file = dir.path().join("cli.toml");
    let config_arg = config_file.to_str().unwrap();

    // A wrong password: 3.1.1 return code 4, logged by name, the password not logged.
    let (_refused, ack) = login(broker.addr(), V3, "cli-refused", 30, Some(("alice", "wrong-Guess"))).await;
    assert_eq!(connack_code(&ack), ReasonCode(4));
    let log = broker.wait_log("cli-refused");
    let line = log.lines().find(|l| l.contains("cli-refused")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("INFO") && line.contains("bad user name or password"), "{line}");
    assert!(!line.contains("Will"), "{line}");

    // The password from `passwd` logs in.
    let (mut c, ack) = login(broker.addr(), V5, "cli-client", 25, Some(("alice", "s3cret-Pass"))).await;
    assert_eq!(connack_code(&ack), ReasonCode::SUCCESS);
    c.subscribe("cli/topic", QoS::AtLeastOnce).await;
    let peer = c.stream.local_addr().unwrap().to_string();
    let log = broker.wait_log("cli-client");
    let line = log
        .lines()
        .find(|l| l.contains("client connected") && l.contains("cli-client"))
        .unwrap_or_else(|| panic!("no connect line in {log}"));
    let peer_field = format!("peer={peer}");
    for part in ["INFO", "client_id=\"cli-client\"", "user=\"alice\"", &peer_field, "protocol=5.0", "keep_alive=25"] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }

    let out = run_binary(&["status", "--config", config_arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("is running"), "{stdout}");
    assert!(stdout.contains(&format!("mqtt 127.0.0.1:{port}")), "{stdout}");
    assert!(stdout.contains("1 connections"), "{stdout}");
    let out = run_binary(&["clients", "--config", config_arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row = stdout.lines().find(|l| l.starts_with("cli-client")).unwrap_or_else(|| panic!("{stdout}"));
    for part in ["alice", peer.as_str(), " 25 ", "cli/topic (QoS 1)"] {
        assert!(row.contains(part), "{part:?} not in {row}");
    }
    let out = run_binary(&["clients", "--api", &format!("127.0.0.1:{admin_port}"), "--token", "wrong-token-000000"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{admin_port}")) && stderr.contains("401"), "{stderr}");

    // The client leaves with a reason code: logged in hex and words.
    c.send(&Packet::Disconnect(Disconnect { reason_code: ReasonCode(0x04), properties: Properties::EMPTY })).await;
    assert!(c.recv().await.is_none());
    let log = broker.wait_log("client disconnected");
    let line = log
        .lines()
        .find(|l| l.contains("client disconnected") && l.contains("cli-client"))
        .unwrap_or_else(|| panic!("no disconnect line in {log}"));
    assert!(line.contains("0x04 (Disconnect with Will Message)"), "{line}");
    assert!(!log.contains("wrong-Guess") && !log.contains("s3cret-Pass"), "a password was logged:\n{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escape codes in a log that is not a terminal:\n{log}");
    drop(broker);
}

#[test]
fn errors_name_the_address_or_file_at_fault_and_help_lists_the_keys() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = holder.local_addr().unwrap().to_string();
    let out = run_binary(&["--listen", &busy]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&busy), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape codes in a log that is not a terminal: {stderr:?}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-broker.toml");
    let out = run_binary(&["--config", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(missing.to_str().unwrap()), "{}", text(&out.stderr));

    let config = dir.path().join("broker.toml");
    let passwords = dir.path().join("no-such-passwords");
    std::fs::write(&config, format!("password_file = {:?}\n", passwords.display().to_string())).unwrap();
    let out = run_binary(&["--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(passwords.to_str().unwrap()), "{}", text(&out.stderr));

    std::fs::write(&config, "max_conections = 5\n").unwrap();
    let out = run_binary(&["--config", config.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(config.to_str().unwrap()) && stderr.contains("max_conections"), "{stderr}");

    let api = format!("127.0.0.1:{}", free_port());
    let out = run_binary(&["status", "--api", &api, "--token", TOKEN]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&api), "{}", text(&out.stderr));

    let out = run_binary(&["--help"]);
    let help = text(&out.stdout);
    for key in ["RUST_LOG", "[[listener]]", "persistence", "[admin]", "max_keepalive", "server_keep_alive"] {
        assert!(help.contains(key), "{key} not in --help:\n{help}");
    }
    drop(holder);
}

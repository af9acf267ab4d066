//! The transports (`mqtt://`, `mqtts://`, `ws://`, `wss://`) against the embedded reference
//! broker and against a real mosquitto, each with one listener per transport, TLS material
//! generated here with `rcgen`. The mosquitto run is skipped (with a reason) when
//! `mosquitto` is not installed, unless `MQTTKIT_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mqttkit_conformance::engine::RunConfig;
use mqttkit_conformance::probe;
use mqttkit_conformance::profile::Profile;
use mqttkit_conformance::transport::{Address, Connector, TlsOptions};
use mqttkit_conformance::{OutcomeKind, ScenarioResult, Version, embedded};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

/// Scenarios run over every transport: a plain connect, a broker-side close, QoS 1 and 2
/// flows and a retained message.
const SCENARIOS: [&str; 5] = [
    "connect.accepted-clean",
    "connect.second-connect",
    "qos.qos1-delivery",
    "qos.qos2-flow",
    "retain.delivered-on-subscribe",
];

struct Mosquitto {
    child: Child,
    stderr: PathBuf,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mosquitto {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Files written for mosquitto (dir 0755, files 0644: it may drop to user `mosquitto`).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write file");
        set_mode(&path, 0o644);
        path
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) {}

/// A test CA, a server certificate (SAN 127.0.0.1 and localhost) and a client certificate
/// signed by it, plus a second, unrelated CA.
fn generate_pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    set_mode(dir.path(), 0o755);
    let pki = Pki { dir };

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.distinguished_name.push(DnType::CommonName, "mqttkit test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    pki.write("ca.pem", &ca.pem());

    let server_key = KeyPair::generate().expect("server key");
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server params");
    server_params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server_params.signed_by(&server_key, &ca, &ca_key).expect("server certificate");
    pki.write("server.pem", &server.pem());
    pki.write("server.key", &server_key.serialize_pem());

    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params.distinguished_name.push(DnType::CommonName, "mqttkit-test-client");
    client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.clone().signed_by(&client_key, &ca, &ca_key).expect("client certificate");
    pki.write("client.pem", &client.pem());
    pki.write("client.key", &client_key.serialize_pem());

    // A client certificate from a CA the broker does not trust.
    let rogue_ca_key = KeyPair::generate().expect("rogue CA key");
    let mut rogue_ca_params = CertificateParams::new(Vec::<String>::new()).expect("rogue CA params");
    rogue_ca_params.distinguished_name.push(DnType::CommonName, "rogue CA");
    rogue_ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    rogue_ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let rogue_ca = rogue_ca_params.self_signed(&rogue_ca_key).expect("rogue CA certificate");
    let rogue = client_params.signed_by(&client_key, &rogue_ca, &rogue_ca_key).expect("rogue client certificate");
    pki.write("rogue-client.pem", &rogue.pem());
    pki
}

#[derive(Debug, Clone, Copy)]
struct Ports {
    plain: u16,
    tls: u16,
    ws: u16,
    wss: u16,
    mtls: u16,
}

fn free_ports() -> Ports {
    // Hold all five at once so they are distinct, then release them for mosquitto.
    let listeners: Vec<_> =
        (0..5).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port")).collect();
    let port = |i: usize| listeners[i].local_addr().expect("addr").port();
    Ports { plain: port(0), tls: port(1), ws: port(2), wss: port(3), mtls: port(4) }
}

fn start_mosquitto(pki: &Pki, ports: Ports) -> Option<Mosquitto> {
    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("server.pem"), pki.path("server.key"));
    let tls = format!("cafile {}\ncertfile {}\nkeyfile {}\n", ca.display(), cert.display(), key.display());
    let mut conf = String::from("log_dest stderr\nlog_type error\nlog_type warning\nallow_anonymous true\n");
    writeln!(conf, "listener {} 127.0.0.1", ports.plain).unwrap();
    writeln!(conf, "listener {} 127.0.0.1\n{tls}", ports.tls).unwrap();
    writeln!(conf, "listener {} 127.0.0.1\nprotocol websockets", ports.ws).unwrap();
    writeln!(conf, "listener {} 127.0.0.1\nprotocol websockets\n{tls}", ports.wss).unwrap();
    writeln!(conf, "listener {} 127.0.0.1\n{tls}require_certificate true", ports.mtls).unwrap();
    let conf_path = pki.write("mosquitto.conf", &conf);
    let stderr = pki.path("mosquitto.log");
    let log = std::fs::File::create(&stderr).expect("log file");
    let child = Command::new("mosquitto").arg("-c").arg(&conf_path).stdout(Stdio::null()).stderr(log).spawn();
    let mut mosquitto = match child {
        Ok(child) => Mosquitto { child, stderr },
        Err(e) => {
            if std::env::var("MQTTKIT_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("MQTTKIT_REQUIRE_PEERS=1 but mosquitto cannot be started: {e}");
            }
            eprintln!("skipping: mosquitto is not available ({e})");
            return None;
        }
    };
    let all = [ports.plain, ports.tls, ports.ws, ports.wss, ports.mtls];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(status)) = mosquitto.child.try_wait() {
            panic!("mosquitto exited ({status}) during start-up:\n{conf}\n{}", mosquitto.log());
        }
        if all.iter().all(|port| std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok()) {
            return Some(mosquitto);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("mosquitto did not open all listeners {all:?}:\n{conf}\n{}", mosquitto.log());
}

fn profile() -> Profile {
    Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("brokers/mosquitto.toml")).expect("mosquitto profile")
}

fn config(address: &str, tls: &TlsOptions) -> RunConfig {
    config_with(address, tls, profile())
}

fn config_with(address: &str, tls: &TlsOptions, profile: Profile) -> RunConfig {
    let connector = Connector::new(Address::parse(address).expect("address"), tls).expect("connector");
    RunConfig {
        connector,
        jobs: 4,
        time_scale: 1.0,
        max_duration: Duration::from_secs(20),
        username: None,
        password: None,
        profile,
        confirm: 1,
    }
}

fn selected(ids: &[&str]) -> Vec<mqttkit_conformance::Scenario> {
    let scenarios: Vec<_> = common::built_in().into_iter().filter(|s| ids.contains(&s.id.as_str())).collect();
    assert_eq!(scenarios.len(), ids.len(), "every selected scenario exists");
    scenarios
}

async fn run(ids: &[&str], address: &str, tls: &TlsOptions, profile: &Profile) -> Vec<ScenarioResult> {
    common::run(selected(ids), config_with(address, tls, profile.clone()), Duration::from_secs(25)).await
}

fn assert_all(results: &[ScenarioResult], kind: OutcomeKind, what: &str, log: &dyn Fn() -> String) {
    assert!(!results.is_empty(), "{what}: nothing ran");
    assert!(
        results.iter().all(|r| r.outcome.kind == kind),
        "{what}: expected every result to be `{kind}`:\n{}\nbroker log:\n{}",
        common::summary(results),
        log()
    );
}

fn with_ca(pki: &Pki) -> TlsOptions {
    TlsOptions { cafile: Some(pki.path("ca.pem")), ..TlsOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_passes_against_mosquitto_and_bad_tls_is_an_error() {
    let pki = generate_pki();
    let ports = free_ports();
    let Some(mosquitto) = start_mosquitto(&pki, ports) else { return };
    check_transports(&pki, ports, &profile(), &|| mosquitto.log()).await;
}

/// The embedded reference broker with `[[listener]]`s for every transport (the mutual-TLS
/// one also names users by their certificate's subject): the same scenarios pass over each,
/// and the same bad TLS set-ups fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_passes_against_the_embedded_broker_and_bad_tls_is_an_error() {
    let pki = generate_pki();
    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("server.pem"), pki.path("server.key"));
    let tls = format!("cert_file = {:?}\nkey_file = {:?}\n", cert.display().to_string(), key.display().to_string());
    let mut toml = String::new();
    for protocol in ["mqtt", "mqtts", "ws", "wss"] {
        write!(toml, "[[listener]]\nprotocol = {protocol:?}\nbind = \"127.0.0.1:0\"\n").unwrap();
        if matches!(protocol, "mqtts" | "wss") {
            toml.push_str(&tls);
        }
    }
    write!(
        toml,
        "[[listener]]\nprotocol = \"mqtts\"\nbind = \"127.0.0.1:0\"\n{tls}ca_file = {:?}\n\
         require_certificate = true\nuse_subject_as_username = true\n",
        ca.display().to_string()
    )
    .unwrap();
    let mut config = mqttkit_broker::Config::from_toml(&toml).expect("listener config");
    config.acl = embedded::embedded_config().acl;
    config.sys_interval_secs = 0;
    let broker = mqttkit_broker::Broker::start(config).await.expect("broker starts");
    let port = |i: usize| broker.listeners()[i].1.port();
    let ports = Ports { plain: port(0), tls: port(1), ws: port(2), wss: port(3), mtls: port(4) };
    let profile = Profile { refused_topic: Some(embedded::REFUSED_TOPIC.into()), ..Profile::default() };
    check_transports(&pki, ports, &profile, &|| "(embedded broker: see the test's output)".to_owned()).await;
    broker.shutdown().await;
}

/// Every transport passes the scenarios; untrusted certificates and mismatched transports
/// are errors, and the probe calls them unreachable.
async fn check_transports(pki: &Pki, ports: Ports, profile: &Profile, log: &dyn Fn() -> String) {
    let insecure = TlsOptions { insecure: true, ..TlsOptions::default() };
    let client_cert =
        TlsOptions { cert: Some(pki.path("client.pem")), key: Some(pki.path("client.key")), ..with_ca(pki) };
    let rogue_cert = TlsOptions { cert: Some(pki.path("rogue-client.pem")), ..client_cert.clone() };

    let passing = [
        ("mqtt://", format!("mqtt://127.0.0.1:{}", ports.plain), TlsOptions::default()),
        ("mqtts:// --cafile", format!("mqtts://127.0.0.1:{}", ports.tls), with_ca(pki)),
        ("mqtts:// --cafile (localhost)", format!("mqtts://localhost:{}", ports.tls), with_ca(pki)),
        ("mqtts:// --insecure", format!("mqtts://127.0.0.1:{}", ports.tls), insecure.clone()),
        ("ws://", format!("ws://127.0.0.1:{}", ports.ws), TlsOptions::default()),
        ("ws:// explicit path", format!("ws://127.0.0.1:{}/mqtt", ports.ws), TlsOptions::default()),
        ("wss:// --cafile", format!("wss://127.0.0.1:{}", ports.wss), with_ca(pki)),
        ("wss:// --insecure", format!("wss://127.0.0.1:{}", ports.wss), insecure),
        ("mqtts:// --cert/--key", format!("mqtts://127.0.0.1:{}", ports.mtls), client_cert),
    ];
    let failing = [
        // Untrusted server certificate (only the built-in web roots are trusted).
        ("mqtts:// without CA", format!("mqtts://127.0.0.1:{}", ports.tls), TlsOptions::default()),
        ("wss:// without CA", format!("wss://127.0.0.1:{}", ports.wss), TlsOptions::default()),
        // The broker requires a client certificate.
        ("mqtts:// no client cert", format!("mqtts://127.0.0.1:{}", ports.mtls), with_ca(pki)),
        ("mqtts:// untrusted client cert", format!("mqtts://127.0.0.1:{}", ports.mtls), rogue_cert),
        // TLS spoken to a plain listener, and plain MQTT to a TLS listener.
        ("mqtts:// to plain listener", format!("mqtts://127.0.0.1:{}", ports.plain), with_ca(pki)),
        ("wss:// to ws listener", format!("wss://127.0.0.1:{}", ports.ws), with_ca(pki)),
    ];

    for (what, address, tls) in &passing {
        let results = run(&SCENARIOS, address, tls, profile).await;
        assert_eq!(results.len(), SCENARIOS.len() * 2, "{what}: both versions ran");
        assert_all(&results, OutcomeKind::Pass, what, log);
    }
    for (what, address, tls) in &failing {
        let results = run(&SCENARIOS[..3], address, tls, profile).await;
        assert_all(&results, OutcomeKind::Error, what, log);
        for r in &results {
            let reason = r.outcome.reason.as_deref().unwrap_or_default();
            assert!(
                reason.contains("could not open a connection") || reason.contains("the transport failed"),
                "{what}: {reason}"
            );
        }
        // The CLI's probe reports such a broker as unreachable instead of running scenarios.
        let config = config_with(address, tls, profile.clone());
        let probe = tokio::time::timeout(Duration::from_secs(10), probe::probe(&config, &[Version::V5]))
            .await
            .expect("the probe is bounded");
        assert!(probe.problem.as_ref().is_some_and(|p| p.not_mqtt), "{what}: probe {probe:?}");
    }
}

/// A peer that accepts TCP connections and never says anything: neither the TLS nor the
/// WebSocket handshake completes. Opening a connection must give up (the probe used to
/// wait forever), and scenarios must end as `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_times_out_the_handshake_on_every_secure_or_websocket_transport() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    for address in
        [format!("mqtts://127.0.0.1:{port}"), format!("ws://127.0.0.1:{port}"), format!("wss://127.0.0.1:{port}")]
    {
        let tls = TlsOptions { insecure: true, ..TlsOptions::default() };
        let mut config = config(&address, &tls);
        config.connector = config.connector.clone().with_handshake_timeout(Duration::from_millis(300));
        // Bounded only to catch a hang: the handshake timeout is what ends it.
        let probe = tokio::time::timeout(Duration::from_secs(5), probe::probe(&config, &[Version::V3_1_1]))
            .await
            .expect("the probe is bounded by the handshake timeout");
        let error = probe.problem.map(|p| p.message).expect("a silent peer is unreachable");
        assert!(error.contains("did not complete within"), "{address}: {error}");

        let results = common::run(selected(&SCENARIOS[..1]), config, Duration::from_secs(10)).await;
        for r in &results {
            assert_eq!(r.outcome.kind, OutcomeKind::Error, "{address}: {}", common::summary(&results));
        }
    }
    server.abort();
}

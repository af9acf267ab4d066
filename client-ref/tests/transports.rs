//! The client over every transport against a real mosquitto: `ws://`, `mqtts://` (CA
//! file, client certificate, insecure) and `wss://`, with certificates made here by
//! `rcgen`. Skipped with a printed reason when mosquitto is missing, unless
//! `MQTTKIT_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use mqttkit_client::transport::TlsOptions;
use mqttkit_client::{Client, Options, ProtocolVersion, QoS};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

use common::{Mosquitto, bounded};

/// A CA, and a server (127.0.0.1) and client certificate it signed, as PEM files in `dir`
/// (readable by mosquitto, which drops to its own user).
fn pki(dir: &std::path::Path) -> [PathBuf; 5] {
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    // OpenSSL (mosquitto) finds the issuer of a client certificate by name.
    ca.distinguished_name.push(DnType::CommonName, "mqttkit-client test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = ca.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "mqttkit-client test");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        (params.signed_by(&key, &ca, &ca_key).unwrap().pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf(vec!["127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth);
    [
        write("ca.pem", ca.pem()),
        write("server.pem", server),
        write("server.key", server_key),
        write("client.pem", client),
        write("client.key", client_key),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_carries_a_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, server, server_key, client_cert, client_key] = pki(dir.path());
    let ports: Vec<u16> = (0..4).map(|_| common::free_port()).collect();
    let tls = format!("cafile {}\ncertfile {}\nkeyfile {}", ca.display(), server.display(), server_key.display());
    let config = format!(
        "listener {} 127.0.0.1\nprotocol websockets\n\
         listener {} 127.0.0.1\n{tls}\n\
         listener {} 127.0.0.1\nprotocol websockets\n{tls}\n\
         listener {} 127.0.0.1\n{tls}\nrequire_certificate true",
        ports[0], ports[1], ports[2], ports[3]
    );
    let Some(_mosquitto) = Mosquitto::start(&config) else { return };
    for port in &ports {
        common::wait_listening(*port);
    }
    let trust = TlsOptions { cafile: Some(ca.clone()), ..TlsOptions::default() };
    let cases = [
        ("ws", format!("ws://127.0.0.1:{}/mqtt", ports[0]), TlsOptions::default()),
        ("mqtts", format!("mqtts://127.0.0.1:{}", ports[1]), trust.clone()),
        (
            "mqtts insecure",
            format!("mqtts://127.0.0.1:{}", ports[1]),
            TlsOptions { insecure: true, ..TlsOptions::default() },
        ),
        ("wss", format!("wss://127.0.0.1:{}/mqtt", ports[2]), trust.clone()),
        (
            "mqtts client certificate",
            format!("mqtts://127.0.0.1:{}", ports[3]),
            TlsOptions { cert: Some(client_cert), key: Some(client_key), ..trust.clone() },
        ),
    ];
    for (name, url, tls) in cases {
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let options = Options::new(url.clone()).version(version).client_id("transport").tls(tls.clone());
            let client = bounded(name, Client::connect(options)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut messages = client.messages();
            client.subscribe([("transport/#", QoS::AtLeastOnce)]).await.unwrap();
            // Larger than one read (mosquitto's WebSocket listener takes about 0.1 s per
            // 4 KiB received, so not much larger).
            let payload = vec![b'p'; 20_000];
            client.publish("transport/x", QoS::AtLeastOnce, false, payload.clone()).await.unwrap();
            let m = bounded(name, messages.recv()).await.unwrap();
            assert_eq!(m.payload().len(), payload.len(), "{name} {version}");
            client.disconnect(Duration::from_millis(250)).await;
        }
    }
    // Without the CA, the server certificate is refused.
    let url = format!("mqtts://127.0.0.1:{}", ports[1]);
    let refused = Client::connect(Options::new(url)).await.unwrap_err();
    assert!(refused.to_string().contains("could not connect"), "{refused}");
}

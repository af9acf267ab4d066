//! The probe: before any scenario, one CONNECT per protocol version tells whether the target
//! is an MQTT broker at all, which versions it speaks, and whether it wants credentials.
//!
//! It reads raw bytes rather than packets so that it can name what answered instead: an
//! HTTP server, a TLS server addressed as `mqtt://`, a port that resets. A 4-byte CONNACK
//! on a 5.0 connection is the 3.1.1 form — what a server that does not speak 5.0 must
//! answer [MQTT-3.1.1: 3.1.2-2] — not garbage.

use std::time::Duration;

use mqttkit_codec::{PROTOCOL_MAX_PACKET_SIZE, Status, parse_fixed_header};

use crate::client::decode_frame;
use crate::engine::{RunConfig, scaled};
use crate::observed::{Observed, describe_code, spaced_hex};
use crate::outcome::{Support, VersionSupport};
use crate::outgoing::{BytesSpec, ConnectSpec, OutgoingPacket};
use crate::template::Variables;
use crate::transport::Scheme;
use crate::version::Version;

/// What one version's probe saw.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A CONNACK (in either form), with its bytes.
    Connack(Observed, Vec<u8>),
    /// Another MQTT packet a server may send instead (a 5.0 DISCONNECT).
    Disconnect(Observed, Vec<u8>),
    /// Bytes that are not an MQTT answer to CONNECT.
    Foreign(Vec<u8>),
    /// The connection closed (or was reset) without an answer.
    Closed(String),
    /// Nothing within the time limit.
    Silent,
    /// The connection could not be opened (refused, no route, TLS handshake failed): what
    /// happened, and whether it was the TLS handshake.
    Unreachable(String, bool),
}

/// What the probe found about the target.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Per version (both are always probed), with the user's selection marked.
    pub versions: Vec<VersionSupport>,
    /// The CONNACK of each version that accepted the CONNECT (capabilities).
    pub connacks: Vec<(Version, Observed)>,
    /// Why no scenario can run at all, if so.
    pub problem: Option<Problem>,
}

/// A reason to stop before any scenario.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// What is wrong.
    pub message: String,
    /// Whether the target is unreachable or not an MQTT broker (exit 3), rather than an MQTT
    /// broker that cannot be checked with these settings (exit 5).
    pub not_mqtt: bool,
}

/// Probe both versions.
pub async fn probe(config: &RunConfig, selected: &[Version]) -> ProbeReport {
    let mut answers = Vec::new();
    for version in Version::ALL {
        answers.push((version, probe_version(config, version).await));
    }
    classify(config, selected, &answers)
}

/// Send one CONNECT of `version` and read what comes back.
pub async fn probe_version(config: &RunConfig, version: Version) -> Answer {
    let limit = scaled(5.0, config.time_scale).max(Duration::from_secs(1));
    let (mut reader, mut writer) = match config.connector.connect().await {
        Ok(pair) => pair,
        // Accepted, then reset: something listens there, but not an MQTT broker.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => {
            return Answer::Closed(format!("reset the connection ({e})"));
        }
        Err(e) => return Answer::Unreachable(e.to_string(), crate::transport::tls_failure(&e).is_some()),
    };
    let spec = ConnectSpec {
        username: config.username.clone(),
        password: config.password.clone().map(BytesSpec::Text),
        ..ConnectSpec::default()
    };
    let client_id = format!("mqprobe{}", crate::engine::run_tag());
    let Ok((connect, _)) = OutgoingPacket::Connect(spec).encode(version, &Variables::default(), &client_id) else {
        return Answer::Unreachable("cannot encode the probe CONNECT".into(), false);
    };
    if let Err(e) = writer.write(&connect).await {
        return Answer::Closed(format!("the CONNECT could not be sent: {e}"));
    }
    let deadline = tokio::time::Instant::now() + limit;
    let mut buffer: Vec<u8> = Vec::new();
    let answer = loop {
        if let Some(answer) = complete_answer(&buffer, version) {
            break answer;
        }
        match tokio::time::timeout_at(deadline, reader.read()).await {
            Err(_) if buffer.is_empty() => break Answer::Silent,
            Err(_) => break Answer::Foreign(buffer),
            Ok(Ok(Some(chunk))) => buffer.extend_from_slice(&chunk),
            Ok(Ok(None)) if buffer.is_empty() => break Answer::Closed("closed the connection".into()),
            Ok(Ok(None)) => break Answer::Foreign(buffer),
            Ok(Err(e)) if buffer.is_empty() => break Answer::Closed(e.to_string()),
            Ok(Err(_)) => break Answer::Foreign(buffer),
        }
    };
    if matches!(answer, Answer::Connack(ref c, _) if c.int("reason_code") == Some(0) && !c.is_v3_form_connack()) {
        if let Ok((bytes, _)) = (OutgoingPacket::Disconnect { reason_code: 0, properties: Vec::new() }).encode(
            version,
            &Variables::default(),
            "",
        ) {
            let _ = writer.write(&bytes).await;
        }
    }
    writer.shutdown().await;
    answer
}

/// The answer, once `buffer` holds enough to tell.
fn complete_answer(buffer: &[u8], version: Version) -> Option<Answer> {
    let first = *buffer.first()?;
    if !matches!(first, 0x20 | 0xE0) {
        // Not a packet a server sends in answer to CONNECT: wait for a few bytes so that
        // the evidence says what it is (e.g. `HTTP/1.1 400`), then stop.
        return (buffer.len() >= 16).then(|| Answer::Foreign(buffer.to_vec()));
    }
    match parse_fixed_header(buffer, Some(version.protocol()), PROTOCOL_MAX_PACKET_SIZE) {
        Ok(Status::Complete(header)) if buffer.len() >= header.frame_len() => {
            let frame = buffer.get(..header.frame_len())?.to_vec();
            let observed = decode_frame(&frame, version);
            Some(match observed.kind.as_str() {
                "CONNACK" => Answer::Connack(observed, frame),
                "DISCONNECT" => Answer::Disconnect(observed, frame),
                _ => Answer::Foreign(frame),
            })
        }
        Ok(_) => None,
        Err(_) => Some(Answer::Foreign(buffer.to_vec())),
    }
}

/// What a non-MQTT answer looks like, with a hint (and whether it has one).
fn foreign(bytes: &[u8], scheme: Scheme) -> (String, bool) {
    let head = bytes.get(..bytes.len().min(16)).unwrap_or_default();
    if bytes.starts_with(b"HTTP/") {
        let line = String::from_utf8_lossy(bytes).lines().next().unwrap_or_default().to_owned();
        let hint = match scheme {
            Scheme::Tcp | Scheme::Tls => "; if it serves MQTT over WebSocket, use ws://HOST:PORT/mqtt",
            Scheme::Ws | Scheme::Wss => "",
        };
        return (format!("an HTTP server answered (`{line}`), not an MQTT broker{hint}"), !hint.is_empty());
    }
    if matches!(bytes, [0x15 | 0x16, 0x03, ..]) {
        let hint = if scheme == Scheme::Tcp { "; if it is an MQTT-over-TLS port, use mqtts://" } else { "" };
        return (
            format!("a TLS server answered the plain MQTT CONNECT (`{}`){hint}", spaced_hex(head)),
            !hint.is_empty(),
        );
    }
    (format!("the answer is not MQTT (`{}`)", spaced_hex(head)), false)
}

fn classify(config: &RunConfig, selected: &[Version], answers: &[(Version, Answer)]) -> ProbeReport {
    let scheme = config.connector.address().scheme;
    let mut versions = Vec::new();
    let mut connacks = Vec::new();
    let mut speaks_mqtt = false;
    let mut not_mqtt_evidence = Vec::new();
    let mut hinted = false;
    for (version, answer) in answers {
        let (support, evidence) = match answer {
            Answer::Connack(connack, bytes) => {
                speaks_mqtt = true;
                let (support, meaning) = connack_support(connack);
                if support == Support::Supported {
                    connacks.push((*version, connack.clone()));
                }
                (support, format!("answered `{}` ({meaning})", spaced_hex(bytes)))
            }
            Answer::Disconnect(disconnect, bytes) => {
                speaks_mqtt = true;
                let code = disconnect.int("reason_code").unwrap_or_default();
                let support = match code {
                    0x84 => Support::Unsupported,
                    0x86 | 0x87 => Support::NeedsCredentials,
                    _ => Support::Refused,
                };
                let name = describe_code("DISCONNECT", Some(*version), code);
                (support, format!("answered CONNECT with DISCONNECT {name} (`{}`)", spaced_hex(bytes)))
            }
            Answer::Foreign(bytes) => {
                let (text, hint) = foreign(bytes, scheme);
                hinted |= hint;
                not_mqtt_evidence.push(format!("{version}: {text}"));
                (Support::Unsupported, text)
            }
            Answer::Closed(how) => {
                not_mqtt_evidence.push(format!("{version}: {how} without a CONNACK"));
                (Support::Unsupported, format!("{how} without answering the CONNECT"))
            }
            Answer::Silent => {
                not_mqtt_evidence.push(format!("{version}: no answer"));
                (Support::Unsupported, "no answer to the CONNECT within 5 s".to_owned())
            }
            Answer::Unreachable(why, tls_failed) => {
                let address = config.connector.address();
                let hint = if *tls_failed {
                    "; the TLS handshake failed (if the port is plain MQTT, use mqtt:// or ws://)"
                } else {
                    ""
                };
                return ProbeReport {
                    versions: Vec::new(),
                    connacks: Vec::new(),
                    problem: Some(Problem { message: format!("cannot reach {address}: {why}{hint}"), not_mqtt: true }),
                };
            }
        };
        versions.push(VersionSupport { version: *version, selected: selected.contains(version), support, evidence });
    }
    let problem = if !speaks_mqtt {
        let mut message = format!(
            "{} is not answering as an MQTT broker ({})",
            config.connector.address(),
            not_mqtt_evidence.join("; ")
        );
        if scheme == Scheme::Tcp && !hinted {
            message.push_str("; if the port expects TLS, use mqtts://");
        }
        Some(Problem { message, not_mqtt: true })
    } else {
        selection_problem(&versions)
    };
    ProbeReport { versions, connacks, problem }
}

/// Why none of the selected versions can be checked, if so.
fn selection_problem(versions: &[VersionSupport]) -> Option<Problem> {
    let selected: Vec<&VersionSupport> = versions.iter().filter(|v| v.selected).collect();
    if selected.iter().any(|v| v.support == Support::Supported) {
        return None;
    }
    let message = if let Some(v) = selected.iter().find(|v| v.support == Support::NeedsCredentials) {
        format!(
            "the broker refused the CONNECT for want of credentials or rights (MQTT {}: {}); give them with \
             --username and --password (or mqtt://USER:PASS@HOST:PORT)",
            v.version, v.evidence
        )
    } else {
        selected
            .iter()
            .map(|v| match v.support {
                Support::Unsupported => format!("the broker does not support MQTT {}: {}", v.version, v.evidence),
                _ => format!("the broker refused an MQTT {} CONNECT: {}", v.version, v.evidence),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    Some(Problem { message, not_mqtt: false })
}

/// Whether a CONNACK accepts the version, and its meaning in words.
fn connack_support(connack: &Observed) -> (Support, String) {
    if connack.is_v3_form_connack() {
        let code = connack.int("return_code").unwrap_or_default();
        let name = describe_code("CONNACK", Some(Version::V3_1_1), code);
        let support = match code {
            4 | 5 => Support::NeedsCredentials,
            2 | 3 => Support::Refused,
            _ => Support::Unsupported,
        };
        return (support, format!("a 3.1.1-form CONNACK, return code {name}"));
    }
    let code = connack.int("reason_code").unwrap_or_default();
    let name = describe_code("CONNACK", connack.version, code);
    let support = match (connack.version, code) {
        (_, 0) => Support::Supported,
        (Some(Version::V3_1_1), 1) | (Some(Version::V5), 0x84) => Support::Unsupported,
        (Some(Version::V3_1_1), 4 | 5) | (Some(Version::V5), 0x86 | 0x87) => Support::NeedsCredentials,
        _ => Support::Refused,
    };
    (support, format!("CONNACK {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_four_byte_connack_on_a_5_0_connection_is_the_3_1_1_refusal() {
        let Some(Answer::Connack(connack, _)) = complete_answer(&[0x20, 0x02, 0x00, 0x01], Version::V5) else {
            panic!("not a CONNACK");
        };
        assert!(connack.is_v3_form_connack());
        assert_eq!(connack_support(&connack).0, Support::Unsupported);
        assert_eq!(connack.int("reason_code"), Some(0x84));
    }

    #[test]
    fn http_and_tls_answers_are_named() {
        let http = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        let Some(Answer::Foreign(bytes)) = complete_answer(http, Version::V3_1_1) else { panic!("foreign") };
        assert!(foreign(&bytes, Scheme::Tcp).0.contains("HTTP server"));
        let alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let Some(Answer::Foreign(bytes)) = complete_answer(&alert, Version::V3_1_1) else { panic!("foreign") };
        assert!(foreign(&bytes, Scheme::Tcp).0.contains("mqtts://"));
    }

    #[test]
    fn incomplete_connack_waits_for_more() {
        assert!(complete_answer(&[0x20], Version::V5).is_none());
        assert!(complete_answer(&[0x20, 0x03, 0x00], Version::V5).is_none());
    }
}

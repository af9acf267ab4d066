//! Synthetic run reports for the report-format tests: the real built-in scenarios and
//! statement catalogue, with outcomes, traces and attempts chosen deterministically so a run
//! can have hundreds of failures, long traces and text no broker should be trusted with.

use mqttkit_conformance::catalogue::Catalogue;
use mqttkit_conformance::outcome::{
    Attempt, Direction, Outcome, OutcomeKind, RunReport, Support, TraceEntry, VersionSupport,
};
use mqttkit_conformance::{Version, engine, reports};

/// Text a hostile broker could put in a reason or a trace.
pub const HOSTILE: &str = "<script>alert('x')</script> | `a` & \"b\" </pre></details>";

/// A small deterministic generator (xorshift), so no two runs of a test differ.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hex(rng: &mut Rng, len: u64) -> String {
    (0..len).map(|_| format!("{:02x}", rng.below(256))).collect::<Vec<_>>().join(" ")
}

fn trace(rng: &mut Rng, entries: u64) -> Vec<TraceEntry> {
    (0..entries)
        .map(|i| {
            let (direction, summary, bytes) = match rng.below(4) {
                0 => (Direction::Event, "connected to mqtt://127.0.0.1:1883".to_owned(), 0),
                1 => (
                    Direction::Sent,
                    format!("PUBLISH qos=1 retain=false packet_id={i} topic=\"mqq1ar01zac/t/{i}\" payload=\"hello\""),
                    20 + rng.below(40),
                ),
                2 => (
                    Direction::Received,
                    format!("PUBACK packet_id={i} reason_code=0x00 Success properties={{user_property: [(\"k\", \"v{i}\")]}}"),
                    4 + rng.below(8),
                ),
                _ => (Direction::Received, format!("SUBACK packet_id={i} reason_codes=[0x01]"), 5),
            };
            // A few packets are large (a PUBLISH with a big payload).
            let bytes = if rng.below(40) == 0 { 600 } else { bytes };
            TraceEntry {
                at_ms: i * 7,
                client: ["c", "sub", "pub"][(i % 3) as usize].to_owned(),
                direction,
                summary,
                hex: hex(rng, bytes),
            }
        })
        .collect()
}

fn failed(rng: &mut Rng, n: usize) -> Outcome {
    let reason = if n == 7 {
        format!("`c` received an unexpected packet: {HOSTILE}")
    } else {
        match rng.below(4) {
            0 => "`c`: the connection was still open after 3.0 s".to_owned(),
            1 => "`c` received an unexpected packet: QoS 2 instead of 0; reason code 0x87 Not authorized instead of 0x00 Success".to_owned(),
            2 => "`sub`: nothing arrived within 2.5 s".to_owned(),
            _ => "`c`: expected the connection to be closed, but a packet arrived\n(second line of the reason)".to_owned(),
        }
    };
    Outcome {
        kind: OutcomeKind::Fail,
        reason: Some(reason),
        expected: Some("PUBLISH qos=0 topic=\"mqq1ar01zac/t\" payload=\"hello\" retain=false (any packet id)".into()),
        actual: Some(format!("PUBLISH qos=2 topic=\"mqq1ar01zac/t\" payload=\"hello\" retain=false packet_id={n}")),
        step: Some(3),
        line: Some(21),
    }
}

/// A run over every built-in scenario under both versions with about `fail_percent`% of
/// the runs failing, some skipped, inconclusive (with attempts), errors and deviations.
/// With `v5_unsupported`, every 5.0 run is a skip with the probe's evidence.
pub fn report(fail_percent: u64, v5_unsupported: bool) -> RunReport {
    let catalogue = Catalogue::embedded().expect("catalogue");
    let scenarios = mqttkit_conformance::scenario::built_in().expect("built-in scenarios");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut results = Vec::new();
    for scenario in &scenarios {
        for &version in &scenario.versions {
            let n = results.len();
            let roll = rng.below(100);
            let longest = if rng.below(10) == 0 { 120 } else { 30 };
            let trace_len = 3 + rng.below(longest);
            let mut attempts = Vec::new();
            let outcome = if v5_unsupported && version == Version::V5 {
                Outcome::new(
                    OutcomeKind::Skip,
                    "the broker does not support MQTT 5.0: answered `20 02 00 01` (3.1.1-form CONNACK 0x01)",
                )
            } else if roll < fail_percent {
                let outcome = failed(&mut rng, n);
                if n % 5 == 0 {
                    attempts = vec![
                        Attempt { alone: false, outcome: outcome.clone(), trace: trace(&mut rng, trace_len) },
                        Attempt { alone: true, outcome: outcome.clone(), trace: trace(&mut rng, trace_len) },
                    ];
                }
                outcome
            } else {
                match roll % 10 {
                    0 => Outcome::new(OutcomeKind::Skip, "needs `retain`: Retain Available 0 in the CONNACK"),
                    1 => Outcome::new(
                        OutcomeKind::Skip,
                        "needs `refused-topic`: the broker profile names no `refused_topic`",
                    ),
                    2 => {
                        let first = failed(&mut rng, n);
                        attempts = vec![
                            Attempt { alone: false, outcome: first, trace: trace(&mut rng, trace_len) },
                            Attempt { alone: true, outcome: Outcome::pass(), trace: trace(&mut rng, trace_len) },
                        ];
                        Outcome::new(
                            OutcomeKind::Inconclusive,
                            "failed alongside other scenarios, passed alone (1 of 1 solo attempts)",
                        )
                    }
                    3 => Outcome::new(OutcomeKind::Error, "broker unreachable since retain.qos-kept [5.0]"),
                    4 => Outcome::new(
                        OutcomeKind::KnownDeviation,
                        "profile: keeps the connection open (evidence: `e0 00`)",
                    ),
                    _ => Outcome::pass(),
                }
            };
            // As the runner does, a re-checked result keeps its first attempt's trace.
            let trace = match attempts.first() {
                Some(first) => first.trace.clone(),
                None if outcome.kind == OutcomeKind::Skip => Vec::new(),
                None => trace(&mut rng, trace_len),
            };
            let mut result = engine::skipped(scenario, version, outcome);
            result.duration_ms = rng.below(3000);
            result.trace = trace;
            result.attempts = attempts;
            results.push(result);
        }
    }
    let coverage = reports::coverage(&catalogue, &scenarios, &results, &Version::ALL);
    let v5 = if v5_unsupported {
        VersionSupport {
            version: Version::V5,
            selected: true,
            support: Support::Unsupported,
            evidence: "answered `20 02 00 01` (3.1.1-form CONNACK 0x01 unacceptable protocol version)".into(),
        }
    } else {
        VersionSupport {
            version: Version::V5,
            selected: true,
            support: Support::Supported,
            evidence: "answered `20 09 00 00 06 22 00 0a 21 00 14` (CONNACK 0x00 Success)".into(),
        }
    };
    RunReport {
        runner: "mqttkit-conformance 0.1.0".into(),
        target: format!("mqtt://127.0.0.1:1883 {HOSTILE}"),
        profile: Some(format!("synthetic {HOSTILE}")),
        started_unix: 1_733_000_000,
        duration_ms: 73_412,
        time_scale: 1.0,
        versions: vec![
            VersionSupport {
                version: Version::V3_1_1,
                selected: true,
                support: Support::Supported,
                evidence: "answered `20 02 00 00` (CONNACK 0x00 Connection Accepted)".into(),
            },
            v5,
        ],
        problem: None,
        broker_stopped: None,
        interrupted: false,
        results,
        coverage,
    }
}

/// How many results have `kind`.
pub fn count(report: &RunReport, kind: OutcomeKind) -> usize {
    report.results.iter().filter(|r| r.outcome.kind == kind).count()
}

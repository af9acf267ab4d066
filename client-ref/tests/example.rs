//! Runs `examples/push_subscribe.rs` (the Push / Subscription pattern) against the
//! reference broker and mosquitto, in 3.1.1 and 5.0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../examples/push_subscribe.rs"]
#[allow(dead_code)]
mod push_subscribe;

use mqttkit_client::{ProtocolVersion, ReasonCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_subscription_against_both_brokers() {
    for (name, url, _guard) in common::brokers().await {
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let report = common::bounded("the example", push_subscribe::run(&url, version))
                .await
                .unwrap_or_else(|e| panic!("{name} {version}: {e}"));
            let ok = |code: &ReasonCode| !code.is_error();
            assert!(report.pushed.iter().all(ok), "{name} {version}: {report:?}");
            assert_eq!(report.subscribed, [ReasonCode::GRANTED_QOS_2], "{name} {version}");
            assert_eq!(report.unsubscribed, [ReasonCode::SUCCESS], "{name} {version}");
            assert_eq!(
                report.received,
                [
                    ("mqttkit/example/status".to_owned(), "online".to_owned(), true),
                    ("mqttkit/example/data".to_owned(), "42".to_owned(), false),
                ],
                "{name} {version}"
            );
        }
    }
}

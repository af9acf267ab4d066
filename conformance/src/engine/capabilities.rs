//! What the broker can do: from the profile, from every CONNACK the runner receives, and
//! from refusals the standard allows (SUBACK 0x9E / 0xA1 / 0xA2, a lower QoS granted).

use std::collections::BTreeMap;

use crate::observed::Observed;
use crate::profile::Profile;

/// Capabilities a broker lacks, each with the evidence.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    lacking: BTreeMap<String, String>,
}

impl Capabilities {
    /// From the profile.
    pub fn from_profile(profile: &Profile) -> Self {
        let mut caps = Self::default();
        for capability in &profile.unsupported {
            caps.lack(capability, "the broker profile lists it as unsupported".into());
        }
        if profile.refused_topic.is_none() {
            caps.lack("refused-topic", "the broker profile names no `refused_topic`".into());
        }
        caps
    }

    /// Record a missing capability (the first evidence is kept).
    pub fn lack(&mut self, capability: &str, why: String) {
        self.lacking.entry(capability.to_owned()).or_insert(why);
    }

    /// Add what a 5.0 CONNACK's properties say is missing [MQTT-5.0: 3.2.2.3]. An absent
    /// property means the default: Retain / Wildcard / Subscription Identifier / Shared
    /// Subscription Available 1, Maximum QoS 2, Topic Alias Maximum 0.
    pub fn learn_from_connack(&mut self, connack: &Observed) {
        if connack.is_v3_form_connack() || connack.version.is_some_and(|v| !v.is_v5()) {
            return;
        }
        let property = |name: &str| connack.int_property(name);
        if property("retain_available") == Some(0) {
            self.lack("retain", "CONNACK Retain Available = 0".into());
        }
        match property("maximum_qos") {
            Some(0) => {
                self.lack("qos1", "CONNACK Maximum QoS = 0".into());
                self.lack("qos2", "CONNACK Maximum QoS = 0".into());
            }
            Some(1) => self.lack("qos2", "CONNACK Maximum QoS = 1".into()),
            _ => {}
        }
        if property("wildcard_subscription_available") == Some(0) {
            self.lack("wildcard-subscriptions", "CONNACK Wildcard Subscription Available = 0".into());
        }
        if property("subscription_identifier_available") == Some(0) {
            self.lack("subscription-identifiers", "CONNACK Subscription Identifier Available = 0".into());
        }
        if property("shared_subscription_available") == Some(0) {
            self.lack("shared-subscriptions", "CONNACK Shared Subscription Available = 0".into());
        }
        match property("topic_alias_maximum") {
            None => self.lack("topic-alias", "CONNACK has no Topic Alias Maximum, so it is 0".into()),
            Some(0) => self.lack("topic-alias", "CONNACK Topic Alias Maximum = 0".into()),
            Some(_) => {}
        }
    }

    /// The first required capability that is missing, with the reason.
    pub fn missing<'a>(&'a self, required: &'a [String]) -> Option<(&'a str, &'a str)> {
        required.iter().find_map(|c| self.lacking.get(c).map(|why| (c.as_str(), why.as_str())))
    }

    /// Whether `capability` is known to be missing.
    pub fn lacks(&self, capability: &str) -> bool {
        self.lacking.contains_key(capability)
    }
}

/// A reason code that says the broker lacks a feature (5.0 SUBACK, PUBACK or DISCONNECT):
/// the capability and the evidence.
pub fn capability_refused(kind: &str, code: u64) -> Option<(&'static str, String)> {
    let capability = match code {
        0x9A => "retain",
        0x9B => "qos2",
        0x9E => "shared-subscriptions",
        0xA1 => "subscription-identifiers",
        0xA2 => "wildcard-subscriptions",
        _ => return None,
    };
    Some((capability, format!("{kind} {}", crate::observed::describe_code(kind, None, code))))
}

//! Subscriptions: the typed filter a session subscribed with, and one topic tree holding
//! every subscription — ordinary ones per client, shared ones (5.0 §4.8.2) per group with
//! round-robin selection — at the node of their topic filter.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use mqttkit_codec::{ProtocolVersion, QoS, RetainHandling, SharedSubscription, TopicFilter};

/// Options of one subscription as granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOptions {
    /// Granted maximum QoS.
    pub qos: QoS,
    /// No Local (5.0).
    pub no_local: bool,
    /// Retain As Published (5.0).
    pub retain_as_published: bool,
    /// Retain Handling (5.0).
    pub retain_handling: RetainHandling,
    /// Subscription Identifier (5.0).
    pub sub_id: Option<u32>,
}

/// A topic filter as a session subscribed to it, parsed once: the text as sent and, for a
/// 5.0 shared subscription `$share/{ShareName}/{filter}` (§4.8.2), where the share name
/// ends. Whether `$share/...` is shared depends on the version of the SUBSCRIBE (3.1.1 has
/// no shared subscriptions), so it is decided here, once, and kept with the subscription
/// even if the session is later resumed with another version.
///
/// Two filters are equal (and ordered) by their text alone: a session holds at most one
/// subscription per filter text, and UNSUBSCRIBE compares filters character by character
/// [MQTT-3.10.4-1], so a session's subscriptions can be looked up by `&str`.
#[derive(Debug, Clone)]
pub struct SubscriptionFilter {
    text: Arc<str>,
    /// For a shared subscription, the byte length of `$share/{ShareName}`.
    share_end: Option<usize>,
}

impl SubscriptionFilter {
    /// The filter of a SUBSCRIBE or UNSUBSCRIBE of `version` (the codec has checked its
    /// syntax, shared form included).
    pub fn new(filter: TopicFilter<'_>, version: ProtocolVersion) -> Self {
        let share_end = if version.is_v5() {
            filter.shared().map(|shared| SharedSubscription::PREFIX.len() + shared.share_name.len())
        } else {
            None
        };
        Self { text: Arc::from(filter.as_str()), share_end }
    }

    /// The filter as the client sent it (`$share/{ShareName}/` included).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The share name of a shared subscription.
    pub fn share_name(&self) -> Option<&str> {
        self.share_end.and_then(|end| self.text.get(SharedSubscription::PREFIX.len()..end))
    }

    /// Whether this is a shared subscription.
    pub fn is_shared(&self) -> bool {
        self.share_end.is_some()
    }

    /// The topic filter matched against topic names: without `$share/{ShareName}/`.
    pub fn topic_filter(&self) -> &str {
        match self.share_end {
            Some(end) => self.text.get(end.saturating_add(1)..).unwrap_or_default(),
            None => &self.text,
        }
    }
}

impl PartialEq for SubscriptionFilter {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SubscriptionFilter {}

impl PartialOrd for SubscriptionFilter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SubscriptionFilter {
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl Hash for SubscriptionFilter {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl Borrow<str> for SubscriptionFilter {
    fn borrow(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<Box<str>, Node>,
    subscribers: BTreeMap<Arc<str>, SubOptions>,
    /// Shared subscriptions on this node's filter, by share name.
    groups: BTreeMap<Arc<str>, SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty() && self.groups.is_empty()
    }
}

/// A shared subscription group: `$share/{group}/{filter}`.
#[derive(Debug, Default)]
struct SharedGroup {
    members: BTreeMap<Arc<str>, SubOptions>,
    /// Index of the member that receives the next message.
    next: usize,
}

impl SharedGroup {
    /// Choose one member round robin among those for which `eligible` holds (e.g.
    /// connected), falling back to the next one in turn.
    fn pick(&mut self, eligible: &impl Fn(&str) -> bool) -> Option<Match> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.next % n;
        let members: Vec<(&Arc<str>, &SubOptions)> = self.members.iter().collect();
        let chosen = (0..n)
            .map(|i| start.saturating_add(i) % n)
            .find(|&i| members.get(i).is_some_and(|(c, _)| eligible(c)))
            .unwrap_or(start);
        let picked = members.get(chosen).map(|(client, opts)| ((*client).clone(), **opts));
        self.next = chosen.saturating_add(1) % n;
        picked
    }
}

/// All subscriptions of all sessions.
#[derive(Debug, Default)]
pub struct Subscriptions {
    root: Node,
    count: usize,
}

/// A subscription chosen for a message: the client and its options.
pub type Match = (Arc<str>, SubOptions);

impl Subscriptions {
    /// Add or replace a subscription; returns whether it already existed.
    pub fn insert(&mut self, filter: &SubscriptionFilter, client: &Arc<str>, opts: SubOptions) -> bool {
        let mut node = &mut self.root;
        for level in filter.topic_filter().split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let members = match filter.share_name() {
            Some(group) => &mut node.groups.entry(group.into()).or_default().members,
            None => &mut node.subscribers,
        };
        let existed = members.insert(client.clone(), opts).is_some();
        if !existed {
            self.count = self.count.saturating_add(1);
        }
        existed
    }

    /// Remove a subscription; returns whether it existed.
    pub fn remove(&mut self, filter: &SubscriptionFilter, client: &str) -> bool {
        let levels: Vec<&str> = filter.topic_filter().split('/').collect();
        let removed = remove_in(&mut self.root, &levels, filter.share_name(), client);
        if removed {
            self.count = self.count.saturating_sub(1);
        }
        removed
    }

    /// Number of subscriptions (shared members included).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The subscriptions matching `topic` (§4.7): every non-shared one (one entry per
    /// subscription) into `matched`, and for each matching shared group one member chosen
    /// round robin among those for which `eligible` holds into `shared`.
    pub fn matches(
        &mut self,
        topic: &str,
        eligible: impl Fn(&str) -> bool,
        matched: &mut Vec<Match>,
        shared: &mut Vec<Match>,
    ) {
        let levels: Vec<&str> = topic.split('/').collect();
        let mut out = Collector { eligible, matched, shared };
        walk(&mut self.root, &levels, 0, topic.starts_with('$'), &mut out);
    }
}

fn remove_in(node: &mut Node, levels: &[&str], group: Option<&str>, client: &str) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return match group {
            None => node.subscribers.remove(client).is_some(),
            Some(group) => {
                let removed = node.groups.get_mut(group).is_some_and(|g| g.members.remove(client).is_some());
                if node.groups.get(group).is_some_and(|g| g.members.is_empty()) {
                    node.groups.remove(group);
                }
                removed
            }
        };
    };
    let Some(child) = node.children.get_mut(*first) else { return false };
    let removed = remove_in(child, rest, group, client);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

struct Collector<'a, F> {
    eligible: F,
    matched: &'a mut Vec<Match>,
    shared: &'a mut Vec<Match>,
}

impl<F: Fn(&str) -> bool> Collector<'_, F> {
    fn node(&mut self, node: &mut Node) {
        self.matched.extend(node.subscribers.iter().map(|(c, o)| (c.clone(), *o)));
        for group in node.groups.values_mut() {
            if let Some(picked) = group.pick(&self.eligible) {
                self.shared.push(picked);
            }
        }
    }
}

fn walk<F: Fn(&str) -> bool>(node: &mut Node, levels: &[&str], depth: usize, dollar: bool, out: &mut Collector<'_, F>) {
    // "The Server MUST NOT match Topic Filters starting with a wildcard character (# or +)
    // with Topic Names beginning with a $ character" [MQTT-4.7.2-1].
    let wildcards_allowed = !(dollar && depth == 0);
    if wildcards_allowed && let Some(hash) = node.children.get_mut("#") {
        // "#" matches the parent level and any number of child levels.
        out.node(hash);
    }
    let Some((level, rest)) = levels.split_first() else {
        out.node(node);
        return;
    };
    if let Some(child) = node.children.get_mut(*level) {
        walk(child, rest, depth.saturating_add(1), dollar, out);
    }
    if wildcards_allowed && let Some(plus) = node.children.get_mut("+") {
        walk(plus, rest, depth.saturating_add(1), dollar, out);
    }
}

#[cfg(test)]
mod tests {
    use mqttkit_codec::filter_matches;

    use super::*;

    fn opts() -> SubOptions {
        SubOptions {
            qos: QoS::AtMostOnce,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
            sub_id: None,
        }
    }

    fn filter(text: &str) -> SubscriptionFilter {
        SubscriptionFilter::new(TopicFilter::new(text).unwrap(), ProtocolVersion::V5)
    }

    fn clients(s: &mut Subscriptions, topic: &str) -> Vec<String> {
        let (mut matched, mut shared) = (Vec::new(), Vec::new());
        s.matches(topic, |_| true, &mut matched, &mut shared);
        let mut v: Vec<String> = matched.into_iter().map(|(c, _)| c.to_string()).collect();
        v.sort();
        v
    }

    fn picks(s: &mut Subscriptions, topic: &str, eligible: impl Fn(&str) -> bool) -> Vec<String> {
        let (mut matched, mut shared) = (Vec::new(), Vec::new());
        s.matches(topic, eligible, &mut matched, &mut shared);
        shared.into_iter().map(|(c, _)| c.to_string()).collect()
    }

    #[test]
    fn tree_agrees_with_filter_matches() {
        let filters =
            ["sport/tennis/player1/#", "sport/#", "#", "+", "+/+", "/+", "sport/+", "$SYS/#", "$SYS/+", "a/b"];
        let topics =
            ["sport/tennis/player1", "sport", "sport/", "/finance", "finance", "$SYS/x", "a/b", "a/b/c", "$SYS"];
        let mut s = Subscriptions::default();
        for f in filters {
            s.insert(&filter(f), &Arc::from(f), opts());
        }
        for t in topics {
            let mut expected: Vec<String> =
                filters.iter().filter(|f| filter_matches(f, t)).map(|f| (*f).to_owned()).collect();
            expected.sort();
            assert_eq!(clients(&mut s, t), expected, "topic {t}");
        }
        for f in filters {
            assert!(s.remove(&filter(f), f));
        }
        assert!(s.is_empty());
        assert!(s.root.is_empty());
    }

    #[test]
    fn shared_round_robin() {
        let mut s = Subscriptions::default();
        for c in ["a", "b", "c"] {
            s.insert(&filter("$share/g/t/#"), &Arc::from(c), opts());
        }
        let got: Vec<String> = (0..6).flat_map(|_| picks(&mut s, "t/1", |_| true)).collect();
        assert_eq!(got, ["a", "b", "c", "a", "b", "c"]);
        let got: Vec<String> = (0..3).flat_map(|_| picks(&mut s, "t/1", |c| c != "b")).collect();
        assert_eq!(got, ["a", "c", "a"]);
        assert!(picks(&mut s, "u", |_| true).is_empty());
        for c in ["a", "b", "c"] {
            assert!(s.remove(&filter("$share/g/t/#"), c));
        }
        assert!(s.root.is_empty());
    }

    #[test]
    fn shared_form_depends_on_version() {
        let text = TopicFilter::new("$share/g/a/+").unwrap();
        let v5 = SubscriptionFilter::new(text, ProtocolVersion::V5);
        assert_eq!((v5.share_name(), v5.topic_filter(), v5.as_str()), (Some("g"), "a/+", "$share/g/a/+"));
        let v3 = SubscriptionFilter::new(text, ProtocolVersion::V3_1_1);
        assert_eq!((v3.share_name(), v3.topic_filter()), (None, "$share/g/a/+"));
        // The same subscription of a session, whatever the version it was made with.
        assert_eq!(v3, v5);
        let mut s = Subscriptions::default();
        s.insert(&v5, &Arc::from("c"), opts());
        assert!(!s.remove(&v3, "c"), "a 3.1.1 filter is not the shared subscription");
        assert!(s.remove(&v5, "c"));
    }
}

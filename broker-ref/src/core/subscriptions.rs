//! Subscriptions: a topic tree for ordinary subscriptions and a table of shared
//! subscription groups (5.0 §4.8.2) with round-robin selection.

use std::collections::BTreeMap;
use std::sync::Arc;

use mqttkit_codec::{QoS, RetainHandling, filter_matches};

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

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<String, Node>,
    subscribers: BTreeMap<Arc<str>, SubOptions>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty()
    }
}

/// A shared subscription group: `$share/{group}/{filter}`.
#[derive(Debug, Default)]
struct SharedGroup {
    members: BTreeMap<Arc<str>, SubOptions>,
    /// Index of the member that receives the next message.
    next: usize,
}

/// All subscriptions of all sessions.
#[derive(Debug, Default)]
pub struct Subscriptions {
    root: Node,
    /// (filter, group) → group.
    shared: BTreeMap<(String, String), SharedGroup>,
    count: usize,
}

/// A non-shared match.
pub type Match = (Arc<str>, SubOptions);

impl Subscriptions {
    /// Add or replace a subscription; returns whether it already existed.
    pub fn insert(&mut self, filter: &str, share: Option<&str>, client: &Arc<str>, opts: SubOptions) -> bool {
        let existed = match share {
            Some(group) => self
                .shared
                .entry((filter.to_owned(), group.to_owned()))
                .or_default()
                .members
                .insert(client.clone(), opts)
                .is_some(),
            None => {
                let mut node = &mut self.root;
                for level in filter.split('/') {
                    node = node.children.entry(level.to_owned()).or_default();
                }
                node.subscribers.insert(client.clone(), opts).is_some()
            }
        };
        if !existed {
            self.count = self.count.saturating_add(1);
        }
        existed
    }

    /// Remove a subscription; returns whether it existed.
    pub fn remove(&mut self, filter: &str, share: Option<&str>, client: &str) -> bool {
        let removed = match share {
            Some(group) => {
                let key = (filter.to_owned(), group.to_owned());
                let removed = self.shared.get_mut(&key).is_some_and(|g| g.members.remove(client).is_some());
                if self.shared.get(&key).is_some_and(|g| g.members.is_empty()) {
                    self.shared.remove(&key);
                }
                removed
            }
            None => {
                let levels: Vec<&str> = filter.split('/').collect();
                remove_in(&mut self.root, &levels, client)
            }
        };
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

    /// Every non-shared subscription matching `topic` (§4.7), one entry per subscription.
    pub fn matches(&self, topic: &str) -> Vec<Match> {
        let levels: Vec<&str> = topic.split('/').collect();
        let mut out = Vec::new();
        walk(&self.root, &levels, 0, topic.starts_with('$'), &mut out);
        out
    }

    /// For each shared group matching `topic`, choose one member round robin among those
    /// for which `eligible` holds (e.g. connected), falling back to any member.
    pub fn pick_shared(&mut self, topic: &str, eligible: impl Fn(&str) -> bool) -> Vec<Match> {
        let mut out = Vec::new();
        for ((filter, _), group) in &mut self.shared {
            if !filter_matches(filter, topic) || group.members.is_empty() {
                continue;
            }
            let members: Vec<(&Arc<str>, &SubOptions)> = group.members.iter().collect();
            let n = members.len();
            let start = group.next % n;
            let chosen = (0..n)
                .map(|i| (start.saturating_add(i)) % n)
                .find(|&i| members.get(i).is_some_and(|(c, _)| eligible(c)))
                .unwrap_or(start);
            if let Some((client, opts)) = members.get(chosen) {
                out.push(((*client).clone(), **opts));
            }
            group.next = chosen.saturating_add(1) % n;
        }
        out
    }
}

fn remove_in(node: &mut Node, levels: &[&str], client: &str) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return node.subscribers.remove(client).is_some();
    };
    let Some(child) = node.children.get_mut(*first) else { return false };
    let removed = remove_in(child, rest, client);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

fn walk(node: &Node, levels: &[&str], depth: usize, dollar: bool, out: &mut Vec<Match>) {
    // "The Server MUST NOT match Topic Filters starting with a wildcard character (# or +)
    // with Topic Names beginning with a $ character" [MQTT-4.7.2-1].
    let wildcards_allowed = !(dollar && depth == 0);
    if wildcards_allowed && let Some(hash) = node.children.get("#") {
        // "#" matches the parent level and any number of child levels.
        out.extend(hash.subscribers.iter().map(|(c, o)| (c.clone(), *o)));
    }
    let Some((level, rest)) = levels.split_first() else {
        out.extend(node.subscribers.iter().map(|(c, o)| (c.clone(), *o)));
        return;
    };
    if let Some(child) = node.children.get(*level) {
        walk(child, rest, depth.saturating_add(1), dollar, out);
    }
    if wildcards_allowed && let Some(plus) = node.children.get("+") {
        walk(plus, rest, depth.saturating_add(1), dollar, out);
    }
}

#[cfg(test)]
mod tests {
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

    fn clients(s: &Subscriptions, topic: &str) -> Vec<String> {
        let mut v: Vec<String> = s.matches(topic).into_iter().map(|(c, _)| c.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn tree_agrees_with_filter_matches() {
        let filters =
            ["sport/tennis/player1/#", "sport/#", "#", "+", "+/+", "/+", "sport/+", "$SYS/#", "$SYS/+", "a/b"];
        let topics =
            ["sport/tennis/player1", "sport", "sport/", "/finance", "finance", "$SYS/x", "a/b", "a/b/c", "$SYS"];
        let mut s = Subscriptions::default();
        for f in filters {
            s.insert(f, None, &Arc::from(f), opts());
        }
        for t in topics {
            let mut expected: Vec<String> =
                filters.iter().filter(|f| filter_matches(f, t)).map(|f| (*f).to_owned()).collect();
            expected.sort();
            assert_eq!(clients(&s, t), expected, "topic {t}");
        }
        for f in filters {
            assert!(s.remove(f, None, f));
        }
        assert!(s.is_empty());
        assert!(s.root.is_empty());
    }

    #[test]
    fn shared_round_robin() {
        let mut s = Subscriptions::default();
        for c in ["a", "b", "c"] {
            s.insert("t/#", Some("g"), &Arc::from(c), opts());
        }
        let picks: Vec<String> = (0..6).map(|_| s.pick_shared("t/1", |_| true)[0].0.to_string()).collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);
        let picks: Vec<String> = (0..3).map(|_| s.pick_shared("t/1", |c| c != "b")[0].0.to_string()).collect();
        assert_eq!(picks, ["a", "c", "a"]);
    }
}

//! Access control lists in mosquitto's `acl_file` format:
//!
//! ```text
//! # Before any `user` line: rules for clients without a user name.
//! topic read public/#
//! user alice                      # rules for user alice
//! topic readwrite alice/#
//! topic deny alice/secret/#
//! pattern readwrite clients/%c/#  # every client: %c its client id, %u its user name
//! pattern read users/%u/#
//! ```
//!
//! `topic [read|write|readwrite|deny] TOPIC` (access defaults to `readwrite`),
//! `pattern [ACCESS] TOPIC` with `%u` / `%c`, `user NAME`. Once an ACL file is in force,
//! everything it does not grant is refused: `write` lets a client publish to matching
//! topics, `read` lets it subscribe to filters the rule covers and receive messages on
//! matching topics, `deny` refuses both and overrides any grant (a subscription whose
//! filter lies inside a denied one is refused; one that merely overlaps it is granted, and
//! the denied topics are not delivered). A pattern using `%u` never applies to a client
//! without a user name.

use std::fmt;

/// What a client wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Subscribe to a filter, or receive a message on a topic.
    Read,
    /// Publish to a topic (a will included).
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Right {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Right {
    fn grants(self, access: Access) -> bool {
        matches!((self, access), (Self::ReadWrite, _) | (Self::Read, Access::Read) | (Self::Write, Access::Write))
    }
}

#[derive(Debug, Clone)]
struct Rule {
    right: Right,
    topic: String,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct AclFile {
    anonymous: Vec<Rule>,
    users: Vec<(String, Vec<Rule>)>,
    patterns: Vec<Rule>,
}

/// A line of an ACL file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for AclError {}

impl AclFile {
    /// Parse the text of an ACL file.
    pub fn parse(text: &str) -> Result<Self, AclError> {
        let mut acl = Self::default();
        let mut current_user: Option<usize> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: String| AclError { line: index + 1, message };
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(error("`user` needs a user name".into()));
                    }
                    acl.users.push((rest.to_owned(), Vec::new()));
                    current_user = Some(acl.users.len() - 1);
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(rest).map_err(error)?;
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some((_, rules)) = current_user.and_then(|i| acl.users.get_mut(i)) {
                        rules.push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => return Err(error(format!("unknown keyword {other:?} (expected topic, pattern or user)"))),
            }
        }
        Ok(acl)
    }

    /// Whether a client (its user name, if any, and client id) may read or write
    /// `topic_or_filter`: for [`Access::Read`] of a filter, whether a rule covers every
    /// topic the filter matches.
    pub fn allows(&self, user: Option<&str>, client_id: &str, topic_or_filter: &str, access: Access) -> bool {
        let own: &[Rule] = match user {
            None => &self.anonymous,
            Some(user) => self.users.iter().find(|(u, _)| u == user).map_or(&[], |(_, rules)| rules),
        };
        let patterns = self.patterns.iter().filter_map(|rule| {
            let topic = expand(&rule.topic, user, client_id)?;
            Some(Rule { right: rule.right, topic })
        });
        let mut granted = false;
        for rule in own.iter().cloned().chain(patterns) {
            if rule.right == Right::Deny {
                // A deny rule refuses every topic it matches and every filter inside it.
                if covers(&rule.topic, topic_or_filter) {
                    return false;
                }
            } else if rule.right.grants(access) && covers(&rule.topic, topic_or_filter) {
                granted = true;
            }
        }
        granted
    }
}

fn parse_rule(rest: &str) -> Result<Rule, String> {
    let (first, topic) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let (right, topic) = match first {
        "read" => (Right::Read, topic.trim()),
        "write" => (Right::Write, topic.trim()),
        "readwrite" => (Right::ReadWrite, topic.trim()),
        "deny" => (Right::Deny, topic.trim()),
        // No access word: the whole rest is the topic.
        _ => (Right::ReadWrite, rest),
    };
    if topic.is_empty() {
        return Err("a rule needs a topic".into());
    }
    Ok(Rule { right, topic: topic.to_owned() })
}

/// `%u` and `%c` replaced; `None` if the pattern needs a user name the client has not
/// (or an identity containing wildcard characters, which would widen the rule).
fn expand(pattern: &str, user: Option<&str>, client_id: &str) -> Option<String> {
    let unsafe_level = |s: &str| s.contains(['+', '#', '/']);
    if pattern.contains("%u") {
        let user = user?;
        if unsafe_level(user) {
            return None;
        }
    }
    if pattern.contains("%c") && unsafe_level(client_id) {
        return None;
    }
    Some(pattern.replace("%u", user.unwrap_or_default()).replace("%c", client_id))
}

/// Whether every topic matched by `filter` (or the topic itself) is matched by `rule`.
fn covers(rule: &str, filter: &str) -> bool {
    // `$` topics are never matched by a rule starting with a wildcard (§4.7.2).
    if filter.starts_with('$') && rule.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    for rule_level in rule.split('/') {
        let Some(level) = filter_levels.next() else {
            // The rule is longer: only `a/#` also matches `a` itself.
            return rule_level == "#";
        };
        match rule_level {
            "#" => return true,
            "+" if level != "#" => {}
            _ if level == rule_level && level != "+" && level != "#" => {}
            _ => return false,
        }
    }
    filter_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic write shared/in

user bob
topic bob/#

pattern read users/%u/#
pattern readwrite clients/%c/#
";

    #[test]
    fn user_sections_and_anonymous_rules() {
        let acl = AclFile::parse(FILE).unwrap();
        use Access::*;
        assert!(acl.allows(None, "c", "public/x", Read));
        assert!(!acl.allows(None, "c", "public/x", Write));
        assert!(!acl.allows(None, "c", "alice/x", Read));
        assert!(acl.allows(Some("alice"), "c", "alice/x", Write));
        assert!(acl.allows(Some("alice"), "c", "alice/#", Read));
        assert!(!acl.allows(Some("alice"), "c", "alice/secret/k", Read), "deny overrides");
        assert!(!acl.allows(Some("alice"), "c", "alice/secret/#", Read), "a filter inside a denied one");
        assert!(acl.allows(Some("alice"), "c", "alice/+/k", Read), "overlapping: delivery filters");
        assert!(acl.allows(Some("alice"), "c", "shared/in", Write));
        assert!(!acl.allows(Some("alice"), "c", "shared/in", Read));
        assert!(!acl.allows(Some("alice"), "c", "public/x", Read), "anonymous rules are not alice's");
        assert!(acl.allows(Some("bob"), "c", "bob/a/b", Write), "no access word: readwrite");
        assert!(!acl.allows(Some("carol"), "c", "bob/a", Read));
    }

    #[test]
    fn patterns_substitute_user_and_client_id() {
        let acl = AclFile::parse(FILE).unwrap();
        use Access::*;
        assert!(acl.allows(Some("carol"), "dev1", "users/carol/inbox", Read));
        assert!(!acl.allows(Some("carol"), "dev1", "users/dave/inbox", Read));
        assert!(!acl.allows(None, "dev1", "users//inbox", Read), "%u needs a user name");
        assert!(acl.allows(None, "dev1", "clients/dev1/x", Write));
        assert!(!acl.allows(None, "dev2", "clients/dev1/x", Write));
        assert!(!acl.allows(None, "+", "clients/x/y", Write), "a wildcard client id widens nothing");
    }

    #[test]
    fn filters_must_be_covered() {
        assert!(covers("a/#", "a"));
        assert!(covers("a/#", "a/+/c"));
        assert!(covers("a/+", "a/b"));
        assert!(covers("a/+", "a/+"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("#", "$SYS/x"));
        assert!(covers("$SYS/#", "$SYS/broker/uptime"));
    }

    #[test]
    fn errors_name_the_line() {
        let err = AclFile::parse("topic read a\nfoo bar\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(AclFile::parse("user\n").is_err());
        assert!(AclFile::parse("topic read\n").is_err());
    }
}

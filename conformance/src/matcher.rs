//! Patterns over received packets: field values, sets of acceptable values, ranges,
//! captures, and properties that are required, forbidden or optional.
//!
//! Patterns are written in scenario files as TOML tables, e.g.
//! `{ type = "SUBACK", reason_codes = [[0, 1]] }`; see `SCENARIOS.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::observed::{MALFORMED, Observed, Value};
use crate::properties;
use crate::template::Variables;

/// A pattern over one value.
#[derive(Debug, Clone, PartialEq)]
pub enum ValuePattern {
    /// Equal to this integer.
    Int(u64),
    /// Equal to this flag.
    Bool(bool),
    /// Equal to this text (a template; for binary fields, its UTF-8 bytes).
    Text(String),
    /// Equal to these bytes.
    Hex(Vec<u8>),
    /// Bind the value to a variable (or, if bound, require equality with it).
    Capture(String),
    /// A TOML array: element-wise for list values, "one of" for scalar values.
    Array(Vec<ValuePattern>),
    /// Any of these.
    AnyOf(Vec<ValuePattern>),
    /// Within `[min, max]`.
    Range {
        /// Lower bound.
        min: Option<u64>,
        /// Upper bound.
        max: Option<u64>,
    },
    /// Not matching the inner pattern.
    Not(Box<ValuePattern>),
    /// The field or property must be absent.
    Absent,
    /// Present, with any value.
    Present,
    /// May be absent; if present, must match.
    Optional(Box<ValuePattern>),
    /// A list value of exactly this length, any elements.
    Len(usize),
}

/// A pattern over one packet.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketPattern {
    /// Acceptable packet type names.
    pub kinds: Vec<String>,
    /// Field patterns.
    pub fields: BTreeMap<String, ValuePattern>,
    /// Property patterns.
    pub properties: BTreeMap<String, ValuePattern>,
}

/// Packet types a broker can send, with the fields a pattern may name.
const FIELDS_BY_KIND: &[(&str, &[&str])] = &[
    ("CONNACK", &["session_present", "reason_code"]),
    ("PUBLISH", &["topic", "qos", "retain", "dup", "packet_id", "payload", "topic_from_alias"]),
    ("PUBACK", &["packet_id", "reason_code"]),
    ("PUBREC", &["packet_id", "reason_code"]),
    ("PUBREL", &["packet_id", "reason_code"]),
    ("PUBCOMP", &["packet_id", "reason_code"]),
    ("SUBACK", &["packet_id", "reason_codes"]),
    ("UNSUBACK", &["packet_id", "reason_codes"]),
    ("PINGRESP", &[]),
    ("DISCONNECT", &["reason_code"]),
    ("AUTH", &["reason_code"]),
    (MALFORMED, &[]),
    (CLOSED, &[]),
];

/// Pseudo packet type matching the broker closing the connection (for "a SUBACK
/// refusing the filter, or the connection closed" alternatives).
pub const CLOSED: &str = "CLOSED";

/// Parse a value pattern from TOML.
pub fn parse_value_pattern(value: &toml::Value) -> Result<ValuePattern, String> {
    Ok(match value {
        toml::Value::Integer(i) => {
            ValuePattern::Int(u64::try_from(*i).map_err(|_| format!("negative value {i} cannot match anything"))?)
        }
        toml::Value::Boolean(b) => ValuePattern::Bool(*b),
        toml::Value::String(s) => match s.strip_prefix('?') {
            Some(name) if !name.is_empty() => ValuePattern::Capture(name.to_owned()),
            _ => ValuePattern::Text(s.clone()),
        },
        toml::Value::Array(items) => {
            ValuePattern::Array(items.iter().map(parse_value_pattern).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => parse_table_pattern(table)?,
        other => return Err(format!("unsupported pattern value `{other}`")),
    })
}

fn parse_table_pattern(table: &toml::Table) -> Result<ValuePattern, String> {
    let keys: Vec<&str> = table.keys().map(String::as_str).collect();
    let as_u64 = |key: &str| -> Result<Option<u64>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => u64::try_from(*i).map(Some).map_err(|_| format!("`{key}` must be >= 0")),
            Some(other) => Err(format!("`{key}` must be an integer, not `{other}`")),
        }
    };
    match keys.as_slice() {
        ["any_of"] => match table.get("any_of") {
            Some(toml::Value::Array(items)) => {
                Ok(ValuePattern::AnyOf(items.iter().map(parse_value_pattern).collect::<Result<_, _>>()?))
            }
            _ => Err("`any_of` must be an array".into()),
        },
        ["absent"] => Ok(ValuePattern::Absent),
        ["present"] => Ok(ValuePattern::Present),
        ["hex"] => match table.get("hex") {
            Some(toml::Value::String(text)) => Ok(ValuePattern::Hex(parse_hex(text)?)),
            _ => Err("`hex` must be a string of hex digits".into()),
        },
        ["not"] => Ok(ValuePattern::Not(Box::new(parse_value_pattern(table.get("not").ok_or("missing `not`")?)?))),
        ["optional"] => Ok(ValuePattern::Optional(Box::new(parse_value_pattern(
            table.get("optional").ok_or("missing `optional`")?,
        )?))),
        ["len"] => Ok(ValuePattern::Len(as_u64("len")?.unwrap_or_default() as usize)),
        ["max"] | ["min"] | ["max", "min"] | ["min", "max"] => {
            Ok(ValuePattern::Range { min: as_u64("min")?, max: as_u64("max")? })
        }
        _ => Err(format!(
            "unknown pattern table with keys {keys:?}; expected one of any_of, absent, present, hex, not, optional, len, min/max"
        )),
    }
}

/// Parse hex digits, ignoring whitespace.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in `{text}`"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s: String = pair.iter().collect();
            u8::from_str_radix(&s, 16).map_err(|_| format!("`{s}` is not a hex byte in `{text}`"))
        })
        .collect()
}

impl PacketPattern {
    /// Parse a packet pattern table (`type` plus fields plus optional `properties`) over
    /// packets a server sends.
    pub fn parse(table: &toml::Table) -> Result<Self, String> {
        Self::parse_among(table, FIELDS_BY_KIND, "a packet type a server sends")
    }

    /// Parse a pattern whose `type` must be one of `kinds` (name, fields it may name);
    /// `what` names the set in errors ("a packet type a client sends").
    pub fn parse_among(table: &toml::Table, kinds_table: &[(&str, &[&str])], what: &str) -> Result<Self, String> {
        let kinds = match table.get("type") {
            Some(toml::Value::String(kind)) => vec![kind.to_ascii_uppercase()],
            Some(toml::Value::Array(kinds)) => kinds
                .iter()
                .map(|k| {
                    k.as_str().map(str::to_ascii_uppercase).ok_or_else(|| "`type` entries must be strings".to_owned())
                })
                .collect::<Result<_, _>>()?,
            _ => return Err("a packet pattern needs `type = \"PUBLISH\"` (or a list of types)".into()),
        };
        let mut allowed: Vec<&str> = Vec::new();
        for kind in &kinds {
            let fields = kinds_table
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(kind))
                .map(|(_, fields)| *fields)
                .ok_or_else(|| format!("`{kind}` is not {what}"))?;
            allowed.extend(fields);
        }
        let mut fields = BTreeMap::new();
        let mut props = BTreeMap::new();
        for (key, value) in table {
            match key.as_str() {
                "type" => {}
                "properties" => {
                    let toml::Value::Table(prop_table) = value else {
                        return Err("`properties` must be a table of property patterns".into());
                    };
                    for (name, pattern) in prop_table {
                        if properties::by_name(name).is_none() {
                            return Err(format!("unknown property `{name}`"));
                        }
                        props.insert(name.clone(), parse_value_pattern(pattern).map_err(|e| format!("{name}: {e}"))?);
                    }
                }
                field if allowed.contains(&field) => {
                    fields.insert(key.clone(), parse_value_pattern(value).map_err(|e| format!("{key}: {e}"))?);
                }
                other => {
                    return Err(format!(
                        "`{other}` is not a field of {}; fields: {}",
                        kinds.join("/"),
                        allowed.join(", ")
                    ));
                }
            }
        }
        Ok(Self { kinds, fields, properties: props })
    }

    /// A pattern for one packet type with no other constraint.
    pub fn of_kind(kind: &str) -> Self {
        Self { kinds: vec![kind.to_owned()], fields: BTreeMap::new(), properties: BTreeMap::new() }
    }

    /// Add a field constraint.
    pub fn with_field(mut self, name: &str, pattern: ValuePattern) -> Self {
        self.fields.insert(name.to_owned(), pattern);
        self
    }

    /// Match `observed`, binding captures into `vars` only if the whole packet matches. On
    /// a mismatch, every differing field is named, the most significant first (packet type,
    /// QoS, topic, payload, flags, then packet ids, reason codes and properties), so that the
    /// reason points at the real problem: "QoS 2 instead of 0", not a packet id.
    pub fn matches(&self, observed: &Observed, vars: &mut Variables) -> Result<(), String> {
        if !self.kinds.contains(&observed.kind) {
            return Err(format!("{} instead of {}", describe_kind(observed), self.kinds.join(" or ")));
        }
        let mut scratch = vars.clone();
        let mut mismatches = Vec::new();
        let mut fields: Vec<(&String, &ValuePattern)> = self.fields.iter().collect();
        fields.sort_by_key(|(name, _)| significance(name));
        for (name, pattern) in fields {
            if let Err(why) = match_value(pattern, observed.fields.get(name), &mut scratch) {
                mismatches.push(field_mismatch(name, pattern, observed, why, vars));
            }
        }
        for (name, pattern) in &self.properties {
            if let Err(why) = match_value(pattern, observed.properties.get(name), &mut scratch) {
                mismatches.push(format!("property {name}: {why}"));
            }
        }
        if mismatches.is_empty() {
            *vars = scratch;
            Ok(())
        } else {
            Err(mismatches.join("; "))
        }
    }

    /// Human-readable form with variables expanded where possible.
    pub fn describe(&self, vars: &Variables) -> String {
        let mut out = self.kinds.join("|");
        for (name, pattern) in &self.fields {
            let _ = write!(out, " {name}={}", describe_value(pattern, vars));
        }
        if !self.properties.is_empty() {
            out.push_str(" {");
            for (i, (name, pattern)) in self.properties.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{name}: {}", describe_value(pattern, vars));
            }
            out.push('}');
        }
        out
    }
}

/// Fields in the order a reader cares about them.
fn significance(field: &str) -> usize {
    const ORDER: &[&str] =
        &["qos", "topic", "payload", "retain", "dup", "session_present", "reason_code", "reason_codes", "packet_id"];
    ORDER.iter().position(|f| *f == field).unwrap_or(ORDER.len())
}

fn describe_kind(observed: &Observed) -> String {
    match &observed.error {
        Some(error) if observed.kind == MALFORMED || observed.kind == CLOSED => format!("{} ({error})", observed.kind),
        _ => observed.kind.clone(),
    }
}

/// One field's mismatch in words: "QoS 2 instead of 0", "topic \"a\" instead of \"b\"".
fn field_mismatch(name: &str, pattern: &ValuePattern, observed: &Observed, why: String, vars: &Variables) -> String {
    let got = observed.fields.get(name);
    let label = match name {
        "qos" => "QoS",
        "retain" => "RETAIN",
        "dup" => "DUP",
        other => other,
    };
    let code = |v: u64| crate::observed::describe_code(&observed.kind, observed.version, v);
    match (pattern, got) {
        (ValuePattern::Int(expected), Some(Value::Int(got))) if name == "reason_code" => {
            format!("reason code {} instead of {}", code(*got), code(*expected))
        }
        (ValuePattern::Int(expected), Some(Value::Int(got))) => format!("{label} {got} instead of {expected}"),
        (ValuePattern::Bool(expected), Some(Value::Bool(got))) => {
            format!("{label} {} instead of {}", u8::from(*got), u8::from(*expected))
        }
        (ValuePattern::Int(expected), Some(Value::Bool(got))) => {
            format!("{label} {} instead of {expected}", u8::from(*got))
        }
        (ValuePattern::Text(_), Some(got @ (Value::Str(_) | Value::Bytes(_)))) => {
            format!("{label} {got} instead of {}", describe_value(pattern, vars))
        }
        _ => format!("{label}: {why}"),
    }
}

/// Human-readable form of a value pattern.
pub fn describe_value(pattern: &ValuePattern, vars: &Variables) -> String {
    match pattern {
        ValuePattern::Int(v) => v.to_string(),
        ValuePattern::Bool(v) => v.to_string(),
        ValuePattern::Text(t) => format!("{:?}", vars.expand(t).unwrap_or_else(|_| t.clone())),
        ValuePattern::Hex(bytes) => format!("0x{}", crate::observed::hex(bytes)),
        ValuePattern::Capture(name) => match vars.get(name) {
            Some(value) => value.to_owned(),
            None => format!("?{name}"),
        },
        ValuePattern::Array(items) => {
            format!("[{}]", items.iter().map(|p| describe_value(p, vars)).collect::<Vec<_>>().join(", "))
        }
        ValuePattern::AnyOf(items) => {
            format!("any of [{}]", items.iter().map(|p| describe_value(p, vars)).collect::<Vec<_>>().join(", "))
        }
        ValuePattern::Range { min, max } => match (min, max) {
            (Some(min), Some(max)) => format!("{min}..={max}"),
            (Some(min), None) => format!("≥ {min}"),
            (None, Some(max)) => format!("≤ {max}"),
            (None, None) => "any value".to_owned(),
        },
        ValuePattern::Not(inner) => format!("not {}", describe_value(inner, vars)),
        ValuePattern::Absent => "absent".into(),
        ValuePattern::Present => "present".into(),
        ValuePattern::Optional(inner) => format!("absent or {}", describe_value(inner, vars)),
        ValuePattern::Len(n) => format!("{n} entries"),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Int(v) => v.to_string(),
        Value::Bool(v) => v.to_string(),
        Value::Str(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::List(_) => value.to_string(),
    }
}

/// Match one (possibly absent) value.
pub fn match_value(pattern: &ValuePattern, value: Option<&Value>, vars: &mut Variables) -> Result<(), String> {
    let Some(value) = value else {
        return match pattern {
            ValuePattern::Absent | ValuePattern::Optional(_) => Ok(()),
            ValuePattern::Not(inner) if !matches!(**inner, ValuePattern::Absent) => Ok(()),
            _ => Err(format!("absent, expected {}", describe_value(pattern, vars))),
        };
    };
    let mismatch = || format!("got {value}, expected {}", describe_value(pattern, vars));
    match (pattern, value) {
        (ValuePattern::Absent, _) => Err(format!("got {value}, expected it absent")),
        (ValuePattern::Present, _) => Ok(()),
        (ValuePattern::Optional(inner), _) => match_value(inner, Some(value), vars),
        (ValuePattern::Int(expected), Value::Int(got)) if expected == got => Ok(()),
        (ValuePattern::Int(expected), Value::Bool(got)) if (*expected != 0) == *got && *expected <= 1 => Ok(()),
        (ValuePattern::Bool(expected), Value::Bool(got)) if expected == got => Ok(()),
        (ValuePattern::Bool(expected), Value::Int(got)) if u64::from(*expected) == *got => Ok(()),
        (ValuePattern::Text(template), _) => {
            let expected = vars.expand(template)?;
            let equal = match value {
                Value::Str(s) => *s == expected,
                Value::Bytes(b) => b.as_slice() == expected.as_bytes(),
                Value::Int(v) => v.to_string() == expected,
                _ => false,
            };
            if equal { Ok(()) } else { Err(mismatch()) }
        }
        (ValuePattern::Hex(expected), Value::Bytes(got)) if expected == got => Ok(()),
        (ValuePattern::Hex(expected), Value::Str(got)) if expected.as_slice() == got.as_bytes() => Ok(()),
        (ValuePattern::Capture(name), _) => {
            let text = scalar_text(value);
            match vars.get(name) {
                Some(bound) if bound != text => {
                    Err(format!("got {value}, expected {bound} (the value captured as `{name}`)"))
                }
                Some(_) => Ok(()),
                None => {
                    vars.set(name.clone(), text);
                    Ok(())
                }
            }
        }
        (ValuePattern::Array(items), Value::List(got)) => {
            if items.len() != got.len() {
                return Err(mismatch());
            }
            for (i, (item, got)) in items.iter().zip(got).enumerate() {
                match_value(item, Some(got), vars).map_err(|e| format!("[{i}]: {e}"))?;
            }
            Ok(())
        }
        (ValuePattern::Array(alternatives) | ValuePattern::AnyOf(alternatives), _) => {
            for alternative in alternatives {
                let mut scratch = vars.clone();
                if match_value(alternative, Some(value), &mut scratch).is_ok() {
                    *vars = scratch;
                    return Ok(());
                }
            }
            Err(mismatch())
        }
        (ValuePattern::Range { min, max }, Value::Int(got)) => {
            if min.is_none_or(|m| *got >= m) && max.is_none_or(|m| *got <= m) { Ok(()) } else { Err(mismatch()) }
        }
        (ValuePattern::Not(inner), _) => {
            let mut scratch = vars.clone();
            match match_value(inner, Some(value), &mut scratch) {
                Ok(()) => Err(mismatch()),
                Err(_) => Ok(()),
            }
        }
        (ValuePattern::Len(n), Value::List(items)) if items.len() == *n => Ok(()),
        _ => Err(mismatch()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> PacketPattern {
        let table: toml::Table = toml::from_str(text).expect("valid toml");
        PacketPattern::parse(&table).expect("valid pattern")
    }

    fn suback(codes: &[u64]) -> Observed {
        let mut observed = Observed::malformed(String::new());
        observed.kind = "SUBACK".into();
        observed.error = None;
        observed.fields.insert("packet_id".into(), Value::Int(7));
        observed.fields.insert("reason_codes".into(), Value::List(codes.iter().map(|c| Value::Int(*c)).collect()));
        observed
    }

    #[test]
    fn list_fields_match_element_wise_with_sets() {
        let p = pattern("type = \"SUBACK\"\nreason_codes = [[0, 128], 1]");
        let mut vars = Variables::default();
        assert!(p.matches(&suback(&[128, 1]), &mut vars).is_ok());
        assert!(p.matches(&suback(&[2, 1]), &mut vars).is_err());
        assert!(p.matches(&suback(&[0]), &mut vars).is_err());
    }

    #[test]
    fn captures_bind_and_then_constrain() {
        let p = pattern("type = \"SUBACK\"\npacket_id = \"?pid\"");
        let mut vars = Variables::default();
        assert!(p.matches(&suback(&[0]), &mut vars).is_ok());
        assert_eq!(vars.get("pid"), Some("7"));
        let mut other = suback(&[0]);
        other.fields.insert("packet_id".into(), Value::Int(8));
        assert!(p.matches(&other, &mut vars).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let table: toml::Table = toml::from_str("type = \"PUBLISH\"\ntopik = \"a\"").expect("toml");
        let error = PacketPattern::parse(&table).expect_err("typo");
        assert!(error.contains("topik"), "{error}");
    }
}

//! How `sub` prints a message: the payload, `-v` (topic and payload), `-F` with
//! mosquitto_sub's `%` codes, or `--json` (one JSON object per line).

use std::fmt::Write as _;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use mqttkit_client::Message;
use mqttkit_codec::Property;
use serde_json::{Map, Value, json};

/// The output format chosen on the command line.
#[derive(Debug, Clone)]
pub enum Format {
    /// The payload only.
    Payload,
    /// `topic payload`.
    Verbose,
    /// A `-F` template.
    Template(String),
    /// One JSON object per message.
    Json,
}

/// Write `message` and, unless `no_newline`, an end of line.
pub fn write(format: &Format, message: &Message, no_newline: bool, out: &mut impl Write) -> std::io::Result<()> {
    match format {
        Format::Payload => out.write_all(message.payload())?,
        Format::Verbose => {
            out.write_all(message.topic().as_bytes())?;
            out.write_all(b" ")?;
            out.write_all(message.payload())?;
        }
        Format::Template(template) => {
            render(template, message, out)?;
            // A template says itself where lines end.
            return Ok(());
        }
        Format::Json => out.write_all(json_line(message).as_bytes())?,
    }
    if !no_newline {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One JSON object: `tst` (ISO 8601 receive time), `topic`, `qos`, `retain`, `dup`,
/// `payloadlen`, `payload` (text) or `payload_hex` (not UTF-8), and the 5.0 `properties`
/// when there are any.
pub fn json_line(message: &Message) -> String {
    let mut object = Map::new();
    object.insert("tst".into(), Value::String(iso_time(SystemTime::now())));
    object.insert("topic".into(), Value::String(message.topic().to_owned()));
    object.insert("qos".into(), json!(message.qos().as_u8()));
    object.insert("retain".into(), json!(message.retain()));
    object.insert("dup".into(), json!(message.dup()));
    object.insert("payloadlen".into(), json!(message.payload().len()));
    match std::str::from_utf8(message.payload()) {
        Ok(text) => object.insert("payload".into(), Value::String(text.to_owned())),
        Err(_) => object.insert("payload_hex".into(), Value::String(hex(message.payload(), false))),
    };
    let properties = properties_json(message);
    if !properties.is_empty() {
        object.insert("properties".into(), Value::Object(properties));
    }
    Value::Object(object).to_string()
}

fn properties_json(message: &Message) -> Map<String, Value> {
    let mut map = Map::new();
    let mut users = Vec::new();
    let mut sub_ids = Vec::new();
    for property in message.properties() {
        match property {
            Property::UserProperty(k, v) => users.push(json!([k, v])),
            Property::SubscriptionIdentifier(id) => sub_ids.push(json!(id)),
            Property::CorrelationData(data) => {
                map.insert("correlation_data".into(), Value::String(String::from_utf8_lossy(data).into_owned()));
            }
            other => {
                let key = other.id().key().unwrap_or("unknown").to_owned();
                let value = match other {
                    Property::ContentType(s) | Property::ResponseTopic(s) => json!(s),
                    Property::PayloadFormatIndicator(v) => json!(v),
                    Property::MessageExpiryInterval(v) => json!(v),
                    Property::TopicAlias(v) => json!(v),
                    _ => Value::Null,
                };
                map.insert(key, value);
            }
        }
    }
    if !users.is_empty() {
        map.insert("user_properties".into(), Value::Array(users));
    }
    if !sub_ids.is_empty() {
        map.insert("subscription_identifiers".into(), Value::Array(sub_ids));
    }
    map
}

fn hex(bytes: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = if upper { write!(s, "{b:02X}") } else { write!(s, "{b:02x}") };
    }
    s
}

/// A `-F` template: `%t` topic, `%p` payload, `%q` QoS, `%r` retain, `%m` packet id,
/// `%l` payload length, `%x`/`%X` payload in hex, `%j` JSON, `%I` ISO 8601 time, `%U`
/// Unix time, `%C` content type, `%D` correlation data, `%E` message expiry, `%F`
/// payload format, `%P` user properties, `%R` response topic, `%S` subscription
/// identifiers, `%A` topic alias, `%%`; escapes `\n`, `\t`, `\\`, `\0`, `\e`.
pub fn render(template: &str, m: &Message, out: &mut impl Write) -> std::io::Result<()> {
    let props = m.properties();
    let mut chars = template.chars();
    let mut text = String::new();
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let Some(code) = chars.next() else {
                    text.push('%');
                    break;
                };
                match code {
                    'p' => {
                        out.write_all(text.as_bytes())?;
                        text.clear();
                        out.write_all(m.payload())?;
                    }
                    't' => text.push_str(m.topic()),
                    'q' => text.push_str(&m.qos().as_u8().to_string()),
                    'r' => text.push(if m.retain() { '1' } else { '0' }),
                    'm' => text.push_str(&m.packet_id().unwrap_or(0).to_string()),
                    'l' => text.push_str(&m.payload().len().to_string()),
                    'x' => text.push_str(&hex(m.payload(), false)),
                    'X' => text.push_str(&hex(m.payload(), true)),
                    'j' => text.push_str(&json_line(m)),
                    'I' => text.push_str(&iso_time(SystemTime::now())),
                    'U' => {
                        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                        let _ = write!(text, "{}.{:09}", d.as_secs(), d.subsec_nanos());
                    }
                    'C' => text.push_str(props.content_type().unwrap_or_default()),
                    'D' => text.push_str(&String::from_utf8_lossy(props.correlation_data().unwrap_or_default())),
                    'E' => text.push_str(&props.message_expiry_interval().map(|e| e.to_string()).unwrap_or_default()),
                    'F' => {
                        text.push_str(&props.payload_format_indicator().map(|f| f.to_string()).unwrap_or_default());
                    }
                    'P' => {
                        let users: Vec<String> = props.user_properties().map(|(k, v)| format!("{k}:{v}")).collect();
                        text.push_str(&users.join(" "));
                    }
                    'R' => text.push_str(props.response_topic().unwrap_or_default()),
                    'S' => {
                        let ids: Vec<String> = props.subscription_identifiers().map(|i| i.to_string()).collect();
                        text.push_str(&ids.join(","));
                    }
                    'A' => text.push_str(&props.topic_alias().map(|a| a.to_string()).unwrap_or_default()),
                    '%' => text.push('%'),
                    other => {
                        text.push('%');
                        text.push(other);
                    }
                }
            }
            '\\' => match chars.next() {
                Some('n') => text.push('\n'),
                Some('t') => text.push('\t'),
                Some('\\') => text.push('\\'),
                Some('0') => text.push('\0'),
                Some('e') => text.push('\u{1b}'),
                Some(other) => {
                    text.push('\\');
                    text.push(other);
                }
                None => text.push('\\'),
            },
            other => text.push(other),
        }
    }
    out.write_all(text.as_bytes())
}

/// `2026-11-26T18:17:03.123456Z`: RFC 3339, UTC.
pub fn iso_time(t: SystemTime) -> String {
    time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_iso_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(42);
        assert_eq!(iso_time(t), "2023-11-14T22:13:20.000042Z");
        assert_eq!(iso_time(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn hex_both_cases() {
        assert_eq!(hex(&[0xAB, 0x01], false), "ab01");
        assert_eq!(hex(&[0xAB, 0x01], true), "AB01");
    }
}

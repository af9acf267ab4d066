//! `-D COMMAND NAME VALUE`: 5.0 properties with mosquitto's names.

use mqttkit_client::{ConnectProperties, PublishProperties, RequestProperties};

use super::Exit;

/// Every property given with `-D`, sorted by the packet it goes in.
#[derive(Debug, Clone, Default)]
pub struct V5Properties {
    pub connect: ConnectProperties,
    pub connect_session_expiry: Option<u32>,
    pub publish: PublishProperties,
    pub subscribe: RequestProperties,
    pub unsubscribe: RequestProperties,
    pub disconnect_session_expiry: Option<u32>,
    pub will: PublishProperties,
    pub will_delay: Option<u32>,
    /// `-D publish topic-alias N`: use topic aliases (the client picks the numbers).
    pub topic_aliases: bool,
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, Exit> {
    value.parse().map_err(|_| Exit::usage(format!("-D {name}: `{value}` is not a valid number")))
}

fn flag(name: &str, value: &str) -> Result<bool, Exit> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(Exit::usage(format!("-D {name}: use 0 or 1, not `{value}`"))),
    }
}

/// Properties shared by PUBLISH and the will.
fn message_property(p: &mut PublishProperties, name: &str, value: &str) -> Result<bool, Exit> {
    match name {
        "payload-format-indicator" => p.payload_format_utf8 = Some(flag(name, value)?),
        "message-expiry-interval" => p.message_expiry_interval = Some(number(name, value)?),
        "content-type" => p.content_type = Some(value.to_owned()),
        "response-topic" => p.response_topic = Some(value.to_owned()),
        "correlation-data" => p.correlation_data = Some(value.to_owned().into()),
        _ => return Ok(false),
    }
    Ok(true)
}

impl V5Properties {
    /// Parse the flat `-D` values (groups of 3, or 4 for user-property).
    pub fn parse(values: &[String]) -> Result<Self, Exit> {
        let mut props = Self::default();
        let mut rest = values;
        while let [command, name, value, tail @ ..] = rest {
            let (user_value, tail) = match (name.as_str(), tail) {
                ("user-property", [v, tail @ ..]) => (Some(v), tail),
                ("user-property", []) => return Err(Exit::usage("-D COMMAND user-property needs a name and a value")),
                _ => (None, tail),
            };
            rest = tail;
            props.add(command, name, value, user_value)?;
        }
        if !rest.is_empty() {
            return Err(Exit::usage("-D needs COMMAND NAME VALUE"));
        }
        Ok(props)
    }

    fn add(&mut self, command: &str, name: &str, value: &str, user_value: Option<&String>) -> Result<(), Exit> {
        let unknown = || Exit::usage(format!("-D {command} {name}: not a property of {command}"));
        let user = |list: &mut Vec<(String, String)>| {
            if let Some(v) = user_value {
                list.push((value.to_owned(), v.clone()));
            }
        };
        match command {
            "connect" => match name {
                "user-property" => user(&mut self.connect.user_properties),
                "session-expiry-interval" => self.connect_session_expiry = Some(number(name, value)?),
                "receive-maximum" => self.connect.receive_maximum = Some(number(name, value)?),
                "maximum-packet-size" => self.connect.maximum_packet_size = Some(number(name, value)?),
                "topic-alias-maximum" => self.connect.topic_alias_maximum = Some(number(name, value)?),
                "request-response-information" => {
                    self.connect.request_response_information = Some(flag(name, value)?);
                }
                "request-problem-information" => self.connect.request_problem_information = Some(flag(name, value)?),
                _ => return Err(unknown()),
            },
            "publish" => match name {
                "user-property" => user(&mut self.publish.user_properties),
                "topic-alias" => self.topic_aliases = number::<u16>(name, value)? > 0,
                _ if message_property(&mut self.publish, name, value)? => {}
                _ => return Err(unknown()),
            },
            "will" => match name {
                "user-property" => user(&mut self.will.user_properties),
                "will-delay-interval" => self.will_delay = Some(number(name, value)?),
                _ if message_property(&mut self.will, name, value)? => {}
                _ => return Err(unknown()),
            },
            "subscribe" => match name {
                "user-property" => user(&mut self.subscribe.user_properties),
                "subscription-identifier" => self.subscribe.subscription_identifier = Some(number(name, value)?),
                _ => return Err(unknown()),
            },
            "unsubscribe" => match name {
                "user-property" => user(&mut self.unsubscribe.user_properties),
                _ => return Err(unknown()),
            },
            "disconnect" => match name {
                "session-expiry-interval" => self.disconnect_session_expiry = Some(number(name, value)?),
                _ => return Err(unknown()),
            },
            other => {
                return Err(Exit::usage(format!(
                    "-D {other}: unknown command (connect, publish, subscribe, unsubscribe, disconnect, will)"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_groups_of_three_and_four() {
        let p = V5Properties::parse(&args(&[
            "publish",
            "user-property",
            "k",
            "v",
            "publish",
            "content-type",
            "text/plain",
            "connect",
            "session-expiry-interval",
            "60",
            "subscribe",
            "subscription-identifier",
            "7",
        ]))
        .expect("valid");
        assert_eq!(p.publish.user_properties, [("k".to_owned(), "v".to_owned())]);
        assert_eq!(p.publish.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.connect_session_expiry, Some(60));
        assert_eq!(p.subscribe.subscription_identifier, Some(7));
    }

    #[test]
    fn rejects_unknown_commands_and_names() {
        assert!(V5Properties::parse(&args(&["publish", "receive-maximum", "5"])).is_err());
        assert!(V5Properties::parse(&args(&["bogus", "content-type", "x"])).is_err());
        assert!(V5Properties::parse(&args(&["connect", "receive-maximum", "x"])).is_err());
        assert!(V5Properties::parse(&args(&["publish", "user-property", "k"])).is_err());
    }
}

//! `mqttkit`: command-line MQTT client.

fn main() {}

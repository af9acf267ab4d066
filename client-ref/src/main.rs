//! `mqttkit`: a command-line MQTT client (`mqttkit pub`, `mqttkit sub`) in the manner of
//! mosquitto_pub / mosquitto_sub. `mqttkit --help` lists the options and exit statuses.

#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

//! `mqttkit-broker [--config FILE] [--listen ADDR]`, and the operator's commands:
//! `passwd`, `status`, `clients`, `disconnect`.

#![forbid(unsafe_code)]

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mqttkit_broker::net::Bound;
use mqttkit_broker::{Config, net};
use tracing::{error, info};

/// What `--help` says after the options: the configuration keys and the log filter.
const CONFIG_HELP: &str = "\
Configuration (TOML, --config FILE; every key optional; see mqttkit-broker.example.toml
and the README's operators section):
  listen                  plain MQTT listener when no [[listener]] is given (127.0.0.1:1883)
  [[listener]]            protocol = mqtt|mqtts|ws|wss, bind, cert_file, key_file, ca_file,
                          require_certificate, use_subject_as_username,
                          use_identity_as_username, path (WebSocket, /mqtt)
  persistence             store file: retained messages, sessions, wills survive restarts
  [admin]                 management API and dashboard: listen (127.0.0.1:18083), token,
                          username + password (hash from `passwd --print`)
  password_file, [users]  user:HASH (mqttkit-broker passwd / mosquitto_passwd)
  allow_anonymous         clients without user name (true)
  acl_file                mosquitto acl_file format (topic/pattern/user, %u %c)
  [acl] deny_publish, deny_subscribe   global deny lists
  max_keepalive           cap on 5.0 keep alive (Server Keep Alive when exceeded or 0)
  server_keep_alive       one keep alive imposed on every 5.0 client
  max_connections, max_packet_size, receive_maximum, max_inflight, max_queued_messages,
  max_topic_length, max_topic_levels, connect_timeout_secs, topic_alias_maximum,
  maximum_qos, retain_available, max_session_expiry_secs, response_information,
  sys_interval_secs, sys_client_list, max_outbound_bytes, write_timeout_secs

Logs: standard error, filtered by RUST_LOG (default info; e.g.
RUST_LOG=mqttkit_broker=debug). One line per client connect, refusal and disconnect.

Commands for a running broker (its management API, [admin] in the same config):
  mqttkit-broker status --config FILE      mqttkit-broker clients --config FILE";

/// The mqttkit reference MQTT broker (3.1, 3.1.1 and 5.0).
#[derive(Debug, Parser)]
#[command(version, about, after_help = CONFIG_HELP)]
struct Args {
    /// Address of the plain MQTT listener (overrides the config file's).
    #[arg(long)]
    listen: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add or change a user's password in a password file (like mosquitto_passwd).
    Passwd(cli::PasswdArgs),
    /// The running broker's status, from its management API (like `emqx_ctl status`).
    Status(cli::ApiArgs),
    /// The running broker's clients, from its management API (like `emqx_ctl clients list`).
    Clients(cli::ApiArgs),
    /// Disconnect a client of the running broker (5.0: DISCONNECT 0x98).
    Disconnect(cli::DisconnectArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Some(Command::Passwd(passwd)) => return cli::passwd(&passwd),
        Some(Command::Status(api)) => return cli::status(args.config.as_deref(), &api),
        Some(Command::Clients(api)) => return cli::clients(args.config.as_deref(), &api),
        Some(Command::Disconnect(d)) => return cli::disconnect(args.config.as_deref(), &d),
        None => {}
    }
    mqttkit_broker::log::init();
    let mut config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                error!("{e}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.override_listen(listen);
    }
    if let Err(e) = config.load_files() {
        error!("{e}");
        return ExitCode::FAILURE;
    }
    // The broker runs on this thread (one thread, see `net`).
    let bound = match Bound::bind(&config) {
        Ok(bound) => bound,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        wait_for_signal().await;
        info!("signal received, shutting down");
    };
    match net::serve(bound, config, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("cannot run the broker: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

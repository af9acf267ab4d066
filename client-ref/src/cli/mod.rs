//! The `mqttkit` command line: one module per subcommand (`pub`, `sub`, `bench`), sharing the
//! connection options ([`connection`]), `-D` properties ([`properties`]) and exit codes.

mod bench;
mod connection;
mod format;
mod properties;
mod publish;
mod subscribe;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mqttkit_client::{ConnectError, LostReason};

/// Exit statuses, documented in `--help` and the README.
pub const EXIT_CODES: &str = "\
Exit status:
  0    success (sub: also after Ctrl-C, -C COUNT messages, or -E)
  1    failure after connecting: a publication or subscription refused, the connection lost
  2    bad command line or input (unknown option, invalid topic, unreadable file)
  3    the broker could not be reached (TCP, TLS or WebSocket failure, connect timeout)
  4    the broker refused the connection (CONNACK reason code printed in hex and words)
  27   sub: -W timeout expired first (as mosquitto_sub)
  130  pub: interrupted by Ctrl-C before every message was sent (it still disconnects cleanly)";

/// A command-line MQTT client in the manner of mosquitto_pub / mosquitto_sub.
#[derive(Debug, Parser)]
#[command(name = "mqttkit", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish messages (like mosquitto_pub).
    Pub(publish::PubArgs),
    /// Subscribe and print messages (like mosquitto_sub).
    Sub(subscribe::SubArgs),
    /// Load a broker with many connections and measure it (conn, pub, sub, p2p, fan-out, fan-in).
    Bench(bench::BenchArgs),
}

/// How the program ends: a status and, for failures, what to print.
#[derive(Debug)]
pub struct Exit {
    code: u8,
    message: Option<String>,
}

impl Exit {
    pub fn code(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: Some(message.into()) }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::code(2, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::code(1, message)
    }

    /// The status for a failed first connection.
    pub fn connect(error: ConnectError) -> Self {
        match &error {
            ConnectError::Options(_) => Self::usage(error.to_string()),
            ConnectError::Failed(LostReason::Refused { .. }) => Self::code(4, error.to_string()),
            ConnectError::Failed(LostReason::TransportFailed(_) | LostReason::ConnectTimeout) => {
                Self::code(3, error.to_string())
            }
            _ => Self::failed(error.to_string()),
        }
    }
}

/// Ctrl-C, listened for from the moment it is made: a signal that arrives before the
/// first `recv` is kept (and never kills the process instead of a clean disconnect).
pub struct Interrupt {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            Self { signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok() }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Wait for Ctrl-C.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            signal.recv().await;
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Run the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mqttkit: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (result, quiet) = match cli.command {
        Command::Pub(args) => {
            let quiet = args.conn.quiet;
            (runtime.block_on(publish::run(args)), quiet)
        }
        Command::Sub(args) => {
            let quiet = args.conn.quiet;
            (runtime.block_on(subscribe::run(args)), quiet)
        }
        // Its own runtime: one thread or `--threads`.
        Command::Bench(args) => {
            let quiet = args.quiet();
            (bench::run(args), quiet)
        }
    };
    // A blocking read of stdin (pub -l) may still be waiting: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => {
            if let (Some(message), false) = (&exit.message, quiet) {
                eprintln!("mqttkit: {message}");
            }
            ExitCode::from(exit.code)
        }
    }
}

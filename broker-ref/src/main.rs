//! `mqttkit-broker --listen 127.0.0.1:1883 [--config FILE]`

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mqttkit_broker::{Config, net};
use tracing::{error, info};

/// The mqttkit reference MQTT broker (3.1, 3.1.1 and 5.0).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (overrides the config file).
    #[arg(long)]
    listen: Option<String>,
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
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
        config.listen = listen;
    }
    // The broker runs on this thread (one thread, see `net`).
    let listener = match net::bind(&config.listen) {
        Ok(listener) => listener,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        wait_for_signal().await;
        info!("signal received, shutting down");
    };
    match net::serve(listener, config, shutdown) {
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

//! `mqttkit-conformance`: see `--help` (brokers) and `mqttkit-conformance client --help`
//! (client libraries).

#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `client` as the first argument selects the client mode (its own options).
    let client_mode = argv.get(1).is_some_and(|first| first == "client");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(mqttkit_conformance::cli::EXIT_USAGE);
        }
    };
    let code = if client_mode {
        argv.remove(1);
        let args = mqttkit_conformance::clients::ClientArgs::parse_from(argv);
        runtime.block_on(mqttkit_conformance::clients::cli::main_with(args))
    } else {
        let args = mqttkit_conformance::cli::Args::parse_from(argv);
        runtime.block_on(mqttkit_conformance::cli::main_with(args))
    };
    std::process::exit(code);
}

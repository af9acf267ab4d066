//! `mqttkit-conformance`: see `--help`.

#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let args = mqttkit_conformance::cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(mqttkit_conformance::cli::EXIT_USAGE);
        }
    };
    let code = runtime.block_on(mqttkit_conformance::cli::main_with(args));
    std::process::exit(code);
}

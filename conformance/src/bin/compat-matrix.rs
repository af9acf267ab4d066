//! `compat-matrix`: the compatibility matrix of several brokers' conformance runs. See `--help`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use clap::Parser;
use mqttkit_conformance::reports::matrix::{self, Column, Input};

const AFTER_HELP: &str = "\
Each NAME=FILE.json is one broker: NAME is the column heading (it may contain spaces, not `=`),
FILE.json the report written by `mqttkit-conformance … --report json=FILE.json`. Columns keep
the order of the arguments. When FILE.html exists next to FILE.json (the same run's
`--report html=…`), the broker's name and every cell link into it.

Outputs:
  --html FILE      one self-contained page: per broker its target, profile, the protocol versions
                   it supports (with the probe's evidence), verdict and counts; then per version a
                   table of statements × brokers, each cell the worst outcome of the scenario runs
                   citing that statement on that broker (fail, known-deviation, error,
                   inconclusive, skip, pass), the runs in its tooltip.
  --markdown FILE  a table for a README: per broker and version, the count of pass, fail, skip,
                   known deviation, inconclusive and error runs, and the observable statements
                   checked. Printed on stdout when neither --html nor --markdown is given.

Example (as conformance/compat.sh runs it):
  compat-matrix --html target/conformance/compat.html --markdown target/conformance/compat.md \\
      'mqttkit-broker=target/conformance/embedded.json' 'mosquitto 2.0.11=target/conformance/mosquitto.json'

Exit status: 0 written; 2 bad arguments, or a file that cannot be read or written.";

/// Write the compatibility matrix (statements × brokers) of several conformance runs.
#[derive(Debug, Parser)]
#[command(name = "compat-matrix", version, after_help = AFTER_HELP)]
struct Args {
    /// Write the HTML matrix to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the Markdown table to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// The brokers' JSON reports, as NAME=FILE.json.
    #[arg(value_name = "NAME=FILE.json", required = true)]
    reports: Vec<Input>,
}

fn main() {
    std::process::exit(match run(Args::parse()) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    });
}

fn run(args: Args) -> Result<(), String> {
    let page_dir = args.html.as_deref().map(|path| {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let _ = std::fs::create_dir_all(dir);
        dir.to_path_buf()
    });
    let mut columns = Vec::new();
    for input in &args.reports {
        let report = matrix::load(&input.path)?;
        let sibling = input.path.with_extension("html");
        let report_href =
            page_dir.as_deref().filter(|_| sibling.is_file()).and_then(|d| matrix::relative_href(d, &sibling));
        columns.push(Column { name: input.name.clone(), report, report_href });
    }
    let write = |path: &Path, text: String| {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
        Ok::<(), String>(())
    };
    if let Some(path) = &args.html {
        write(path, matrix::html(&columns))?;
    }
    if let Some(path) = &args.markdown {
        write(path, matrix::markdown(&columns))?;
    }
    if args.html.is_none() && args.markdown.is_none() {
        print!("{}", matrix::markdown(&columns));
    }
    Ok(())
}

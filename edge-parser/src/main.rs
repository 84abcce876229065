//! `edge-parser`: reads ingress access logs and reports rate and latency per router or route.
//!
//! The binary is glue: flags are parsed in `cli`, the work is done by the `vantage_edge`
//! library. Errors are printed with their causes and exit with 2 (see `--help`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::Cli::parse().run() {
        Ok(code) => code,
        Err(error) => {
            // Messages name paths and values from the command line and the inputs.
            let message = format!("{error:#}");
            eprintln!(
                "edge-parser: error: {}",
                vantage_edge::export::terminal_safe(&message)
            );
            ExitCode::from(2)
        }
    }
}

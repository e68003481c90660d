//! `smartticket`: the one binary. It parses arguments, builds settings, calls a library
//! and maps the outcome to an exit code. Nothing here decides business rules.
//!
//! Exit codes: 0 success; 1 the operation failed; 2 bad usage or configuration;
//! 3 the database is unavailable.
#![forbid(unsafe_code)]
// The binary is where output to the terminal belongs; libraries never print.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod commands;
mod config;
mod logging;
mod secrets;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Cli::parse();
    let config = match args.config() {
        Ok(config) => config,
        Err(error) => {
            report(&error);
            return ExitCode::from(2);
        }
    };
    if let Err(error) = logging::init(&config.log, args.verbose) {
        report(&error);
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            report(&error.into());
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(args.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::from(exit_code_for(&error))
        }
    }
}

/// Prints the error chain to stderr, one cause per line.
#[allow(clippy::print_stderr)]
fn report(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

fn exit_code_for(error: &anyhow::Error) -> u8 {
    let store = error.chain().find_map(|e| e.downcast_ref::<smartticket_store::StoreError>());
    match store {
        Some(e) if e.is_unavailable() => 3,
        Some(smartticket_store::StoreError::Config(_)) => 2,
        _ if error.chain().any(|e| e.downcast_ref::<commands::UsageError>().is_some()) => 2,
        _ => 1,
    }
}

//! `cargo fidius`: a thin entry point; each command lives in
//! `commands/<name>.rs`.
#![forbid(unsafe_code)]

mod commands;
mod shell;

use std::process::ExitCode;

use clap::Parser;

/// Parsed as `cargo fidius …` (cargo passes `fidius` as the first argument).
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", version, styles = clap::builder::Styles::styled())]
enum Cli {
    /// Work with fidius plugins.
    #[command(subcommand, version)]
    Fidius(commands::Command),
}

fn main() -> ExitCode {
    let Cli::Fidius(command) = Cli::parse();
    match command.exec() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            shell::error(&e);
            ExitCode::from(commands::exit_code(&e))
        }
    }
}

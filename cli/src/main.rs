//! `flowwatch`: the one binary of flowwatch.
//!
//! Layout:
//! - `main.rs`: the command line (clap) and dispatch.
//! - [`replay`]: `flowwatch replay`, the traffic CSV in, the tick CSV out.
//! - [`calendar`]: `flowwatch calendar`, built-in holidays as JSON.

mod calendar;
mod replay;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// flowwatch: an outage monitor for the flows of a telecom mediation system.
#[derive(Parser)]
#[command(name = "flowwatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluates every tick of every enabled flow in [from, to) with the live detection code and
    /// writes the tick CSV.
    Replay(replay::Args),
    /// Prints a country's built-in national holidays of a year as JSON for the configuration.
    Calendar {
        /// Country code: AT, CZ, DE or NL.
        country: String,
        /// The year.
        year: i32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => replay::run(&args),
        Command::Calendar { country, year } => calendar::run(&country, year),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowwatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

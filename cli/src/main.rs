//! `flowwatch`: the one binary of flowwatch.
//!
//! Layout:
//! - `main.rs`: the command line (clap) and dispatch.
//! - [`run`]: `flowwatch run`, every role in one process on the embedded store.
//! - [`gateway`]: `flowwatch gateway`, the gateway of a cluster on its own (shared store,
//!   JetStream ingest, alarms from NATS).
//! - [`cluster`]: `flowwatch coordinator`, `flowwatch worker` (the cluster's services) and
//!   `flowwatch admin cluster | drain`.
//! - [`serve`]: the flag groups several roles share (the APIs of `run` and `gateway`, every
//!   role's `--start-time`, `--partitions`), serving a gateway, NATS, signals.
//! - [`replay`]: `flowwatch replay`, the traffic CSV in, the tick CSV out.
//! - [`calendar`]: `flowwatch calendar`, built-in holidays as JSON.
//! - [`import`]: `flowwatch import`, a traffic file streamed into a running flowwatch.
//! - [`telemetry`]: logs, and traces over OTLP when an endpoint is configured.
//! - [`settings`]: the settings file (TOML), layered under the environment and the flags.

mod calendar;
mod cluster;
mod demo;
mod gateway;
mod import;
mod replay;
mod run;
mod serve;
mod settings;
mod telemetry;

/// mimalloc instead of glibc's malloc: ingest allocates and frees millions of small values a
/// second across threads, where glibc spent a fifth of the time (ingest benchmark profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// flowwatch: an outage monitor for the flows of a telecom mediation system.
#[derive(Parser)]
#[command(name = "flowwatch", version, about)]
struct Cli {
    /// A settings file (TOML): a table per subcommand whose keys are its flags, e.g.
    /// `[run]` `http = "0.0.0.0:8080"`. The environment and the flags override it. Given
    /// before the subcommand.
    #[arg(long, env = "FLOWWATCH_SETTINGS", value_name = "FILE")]
    settings: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every service in one process on the embedded store: ingest, evaluation, alarms
    /// and the HTTP API.
    Run(run::Args),
    /// Runs the gateway of a cluster on its own: the HTTP and gRPC APIs on a shared store,
    /// ingest to the JetStream partitions the workers consume, status changes from the alarms
    /// they publish.
    Gateway(gateway::Args),
    /// Runs a coordinator of a cluster: places the flows' partitions on the live workers and
    /// sends each its plan; several may run, one leads (a lease in NATS JetStream KV).
    Coordinator(cluster::CoordinatorArgs),
    /// Runs a worker of a cluster: evaluates the flows of the partitions its plan gives it,
    /// consuming them from JetStream, on the shared store.
    Worker(cluster::WorkerArgs),
    /// Administers a cluster through its coordinators.
    #[command(subcommand)]
    Admin(cluster::Admin),
    /// Evaluates every tick of every enabled flow in [from, to) with the live detection code and
    /// writes the tick CSV.
    Replay(replay::Args),
    /// Streams a traffic file (CSV or NDJSON) into a running flowwatch over its HTTP API, in
    /// parts, with progress; prints the counts and every refused line as FILE:LINE: message.
    Import(import::Args),
    /// Prints a country's built-in national holidays of a year as JSON for the configuration.
    Calendar {
        /// Country code: AT, CZ, DE or NL.
        country: String,
        /// The year.
        year: i32,
    },
}

fn main() -> ExitCode {
    let command = serve::role_env(Cli::command());
    let args = match settings::layer(&command, std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("flowwatch: {}", one_line(&e));
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::from_arg_matches(&command.get_matches_from(args)).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Run(args) => service("run", run::run(args)),
        Command::Gateway(args) => service("gateway", gateway::run(args)),
        Command::Coordinator(args) => service("coordinator", cluster::coordinator(args)),
        Command::Worker(args) => service("worker", cluster::worker(args)),
        Command::Admin(command) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(cluster::admin(command))),
        Command::Replay(args) => replay::run(&args),
        Command::Import(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(import::run(args))),
        Command::Calendar { country, year } => calendar::run(&country, year),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowwatch: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line (`a: b: c`), each said once: a storage error's message
/// already holds its driver's error, which is also its source.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Runs a service `role` on a multi-threaded runtime, with its logs and traces
/// ([`telemetry`]).
fn service(role: &str, run: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let telemetry = telemetry::init(role)?;
        let result = run.await;
        telemetry.shutdown().await;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message says its source too (as storage errors do).
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "postgres: cannot connect to db:5432: {}", self.0)
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = anyhow::Error::new(Outer(io)).context("cannot open the store (--storage)");
        assert_eq!(
            one_line(&e),
            "cannot open the store (--storage): postgres: cannot connect to db:5432: refused"
        );
        assert_eq!(
            format!("{e:#}").matches("refused").count(),
            2,
            "what it avoids"
        );
    }
}

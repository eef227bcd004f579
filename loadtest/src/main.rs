//! `flowwatch-loadtest`: generates data sets (later also drives load against a running system).

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use flowwatch_loadtest::generator::{Dataset, Spec};

/// flowwatch's load test tool.
#[derive(Parser)]
#[command(name = "flowwatch-loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a traffic CSV, its configuration document and the labels of its injected outages.
    Generate {
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First day (YYYY-MM-DD).
        #[arg(long, default_value = "2016-09-01")]
        start: NaiveDate,
        /// Number of days.
        #[arg(long, default_value_t = 120)]
        days: u32,
        /// Number of flows.
        #[arg(long, default_value_t = 40)]
        flows: usize,
        /// Minutes between files of every non-daily flow (default: each LoB's own).
        #[arg(long)]
        batch_minutes: Option<u32>,
        /// Adds the São Paulo and Lord Howe zones.
        #[arg(long)]
        unusual_zones: bool,
        /// Injected outages per flow and 30 days.
        #[arg(long, default_value_t = 0.5)]
        outages_per_flow_month: f64,
        /// Output directory: traffic.csv, config.json, outages.json.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Generate {
            seed,
            start,
            days,
            flows,
            batch_minutes,
            unusual_zones,
            outages_per_flow_month,
            out,
        } => {
            let spec = Spec {
                seed,
                start,
                days,
                flows,
                batch_minutes,
                unusual_zones,
                outages_per_flow_month,
            };
            let data = Dataset::generate(&spec);
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let records = data.write_csv(File::create(out.join("traffic.csv"))?)?;
            std::fs::write(
                out.join("config.json"),
                serde_json::to_string_pretty(data.config())?,
            )?;
            std::fs::write(
                out.join("outages.json"),
                serde_json::to_string_pretty(data.outages())?,
            )?;
            eprintln!(
                "wrote {} records of {} flows ({} outages) to {}",
                records,
                data.flow_count(),
                data.outages().len(),
                out.display()
            );
            Ok(())
        }
    }
}

//! `flowwatch-loadtest`: generates data sets and drives load against flowwatch.

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use flowwatch_core::time::parse_rfc3339;
use flowwatch_generator::{Dataset, Realism, Spec};
use flowwatch_loadtest::drive::{self, IngestLoad};

/// The allocator of the `flowwatch` binary, so the in-process worker measures as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// At least this many minutes between files.
        #[arg(long, default_value_t = 0)]
        min_batch_minutes: u32,
        /// Adds the São Paulo and Lord Howe zones.
        #[arg(long)]
        unusual_zones: bool,
        /// Injected outages per flow and 30 days.
        #[arg(long, default_value_t = 0.5)]
        outages_per_flow_month: f64,
        /// Adds the shapes of real traffic: noisy small flows, late files, unlisted
        /// holiday-like days, day-to-day level, long drops.
        #[arg(long)]
        realistic: bool,
        /// Output directory: traffic.csv, config.json, outages.json, unlisted-days.json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Detection quality: realistic data sets of several seeds, each replayed under the seed
    /// and the adaptive detector and scored against its labels, side by side.
    Quality {
        #[command(flatten)]
        sets: DataSets,
        #[command(flatten)]
        out: Out,
    },
    /// Incidents: the same data sets' status changes grouped into incidents; flow alarm
    /// messages against incident messages, per kind of outage and on unlisted days.
    Incidents {
        #[command(flatten)]
        sets: DataSets,
        #[command(flatten)]
        out: Out,
    },
    /// Suggested calendars: the same data sets' daily traffic; the missing days and the
    /// independent weekdays suggested against those the generator made.
    Suggestions {
        #[command(flatten)]
        sets: DataSets,
        #[command(flatten)]
        out: Out,
    },
    /// Ingests synthetic records over HTTP as fast as a running flowwatch takes them.
    IngestHttp {
        #[command(flatten)]
        server: drive::Server,
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        out: Out,
    },
    /// Ingests synthetic records over gRPC (`Ingest`, one call a batch) as fast as a running
    /// flowwatch takes them (`--url` is its gRPC address, e.g. its HTTP port).
    IngestGrpc {
        #[command(flatten)]
        server: drive::Server,
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        out: Out,
    },
    /// Ingests synthetic records through JetStream partitions into a worker in this process.
    IngestJetstream {
        /// A NATS server with JetStream and an empty FLOWWATCH_INGEST stream.
        #[arg(long)]
        nats_url: String,
        /// Partitions (one durable consumer each).
        #[arg(long, default_value_t = flowwatch_worker::ingest::DEFAULT_PARTITIONS)]
        partitions: u32,
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        out: Out,
    },
    /// Kafka ingest in one process: the load produced to a fresh topic, then read by
    /// flowwatch's Kafka reader into a supervisor on an embedded store.
    IngestKafka {
        /// Kafka brokers, `host:port[,…]` (e.g. tansu from deploy/local/kafka-broker.sh).
        #[arg(long)]
        brokers: String,
        /// A topic that does not exist yet.
        #[arg(long, default_value = "flowwatch-load")]
        topic: String,
        /// Partitions of the topic (one reader each).
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// The messages' form.
        #[arg(long, value_enum, default_value = "seed")]
        format: flowwatch_loadtest::kafka::Format,
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        out: Out,
    },
    /// Steady live load on a flowwatch with 1-minute ticks: its CPU share and memory per flow.
    Steady {
        #[command(flatten)]
        server: drive::Server,
        /// The flowwatch process, measured through /proc.
        #[arg(long)]
        pid: u32,
        /// Flows.
        #[arg(long, default_value_t = 100_000)]
        flows: usize,
        /// Minutes measured, after a warm-up (every flow's actor started, then a minute).
        #[arg(long, default_value_t = 5)]
        minutes: u64,
        /// Seconds between rounds of one record per flow.
        #[arg(long, default_value_t = 10)]
        every: u64,
        #[command(flatten)]
        out: Out,
    },
    /// The read API under load: 28 days of a flow's ticks, the dashboard, then many clients
    /// at once (the server's clock some hours into a day; history is loaded first).
    Api {
        #[command(flatten)]
        server: drive::Server,
        #[command(flatten)]
        load: flowwatch_loadtest::api::ApiLoad,
        #[command(flatten)]
        out: Out,
    },
    /// Time from tick end + grace to the alarm on NATS, for flows that all go silent at once.
    Alarms {
        /// The flowwatch (configured with 1-minute ticks, publishing to NATS).
        #[command(flatten)]
        server: drive::Server,
        /// The NATS server flowwatch publishes to.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// Flows.
        #[arg(long, default_value_t = 1000)]
        flows: usize,
        /// Days of history loaded first.
        #[arg(long, default_value_t = 4)]
        history_days: u64,
        /// The configured graceSeconds.
        #[arg(long, default_value_t = 5)]
        grace: i64,
        #[command(flatten)]
        out: Out,
    },
    /// Starts a coordinator and worker processes on a shared store: every flow registered
    /// and running, one worker killed, then a cold start; times and memory per worker.
    Cluster {
        #[command(flatten)]
        load: flowwatch_loadtest::cluster::ClusterLoad,
        #[command(flatten)]
        out: Out,
    },
    /// Scores detection against the labelled outages of `generate`: event recall, detection
    /// delay and false alarms per flow-month, from a tick CSV or a running flowwatch's API.
    Score {
        /// The labels: `outages.json` of `generate`.
        #[arg(long)]
        outages: PathBuf,
        /// A tick CSV (SPEC §6), e.g. from `flowwatch replay`.
        #[arg(long, required_unless_present = "url", conflicts_with = "url")]
        ticks: Option<PathBuf>,
        /// A running flowwatch to read the ticks from instead (`http://host:port`).
        #[arg(long, requires_all = ["from", "to"])]
        url: Option<String>,
        /// Its API key (a visitor's, read-only, will do).
        #[arg(long, env = "FLOWWATCH_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// With `--url`: the first local day of ticks (YYYY-MM-DD).
        #[arg(long, requires = "url")]
        from: Option<NaiveDate>,
        /// With `--url`: the first local day not read.
        #[arg(long, requires = "url")]
        to: Option<NaiveDate>,
        /// Writes an SVG histogram of the detection delays here.
        #[arg(long)]
        plot: Option<PathBuf>,
        #[command(flatten)]
        out: Out,
    },
}

/// Synthetic ingest load.
#[derive(clap::Args)]
struct Load {
    /// Flows.
    #[arg(long, default_value_t = 10_000)]
    flows: usize,
    /// Records in all.
    #[arg(long, default_value_t = 5_000_000)]
    records: usize,
    /// Records per request (or published batch).
    #[arg(long, default_value_t = 100_000)]
    batch: usize,
    /// Concurrent connections (or publishers).
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Time of the first record (RFC 3339).
    #[arg(long, default_value = "2017-01-02T00:00:00Z")]
    start: String,
    /// Records a second to send at (default: as fast as the server takes them).
    #[arg(long)]
    rate: Option<f64>,
    /// Writes an SVG chart of the records per second over the run here.
    #[arg(long)]
    plot: Option<PathBuf>,
}

impl Load {
    /// Writes an ingest result to `out`, and its `timeline` (`[second, records]`) as a line
    /// chart to `--plot`.
    fn report(&self, out: &Out, result: serde_json::Value) -> Result<()> {
        out.write(&result)?;
        let Some(path) = &self.plot else {
            return Ok(());
        };
        let points: Vec<(f64, f64)> = result["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
            .collect();
        let title = format!(
            "{}: records stored per second",
            result["scenario"].as_str().unwrap_or("ingest")
        );
        let chart = flowwatch_loadtest::svg::Chart {
            title: &title,
            x_label: "seconds into the run",
            y_label: "records / s",
        };
        std::fs::write(path, chart.line(&points))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    fn load(&self) -> Result<IngestLoad> {
        anyhow::ensure!(self.flows > 0, "--flows must be positive");
        Ok(IngestLoad {
            flows: self.flows,
            records: self.records,
            batch: self.batch,
            connections: self.connections,
            start: parse_rfc3339(&self.start).map_err(|e| anyhow::anyhow!("--start: {e}"))?,
            rate: self.rate,
        })
    }
}

/// The realistic data sets of `quality` and `incidents`.
#[derive(clap::Args)]
struct DataSets {
    /// Generator seeds, one data set each.
    #[arg(long, value_delimiter = ',', default_value = "7,8,9")]
    seeds: Vec<u64>,
    /// Flows of each data set.
    #[arg(long, default_value_t = 200)]
    flows: usize,
    /// Days of each data set.
    #[arg(long, default_value_t = 120)]
    days: u32,
    /// First day (YYYY-MM-DD).
    #[arg(long, default_value = "2016-09-01")]
    start: NaiveDate,
    /// Days of history before the scored ones.
    #[arg(long, default_value_t = 30)]
    warm_up_days: u32,
}

impl DataSets {
    fn quality(self) -> Result<flowwatch_loadtest::quality::Quality> {
        let DataSets {
            seeds,
            flows,
            days,
            start,
            warm_up_days,
        } = self;
        if warm_up_days >= days {
            anyhow::bail!("--warm-up-days {warm_up_days} leaves none of --days {days} to score");
        }
        Ok(flowwatch_loadtest::quality::Quality {
            seeds,
            flows,
            days,
            start,
            warm_up_days,
        })
    }
}

/// Where a scenario's result goes.
#[derive(clap::Args)]
struct Out {
    /// Writes the result as JSON here too (and a Markdown summary next to it, `.md`).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Out {
    fn write(&self, result: &serde_json::Value) -> Result<()> {
        self.write_with_notes(result, "")
    }

    /// As [`Out::write`], `notes` (Markdown) after the summary.
    fn write_with_notes(&self, result: &serde_json::Value, notes: &str) -> Result<()> {
        self.write_markdown(result, summary(result) + notes)
    }

    /// The result as JSON and `markdown` as its summary.
    fn write_markdown(&self, result: &serde_json::Value, summary: String) -> Result<()> {
        let text = serde_json::to_string_pretty(result)?;
        println!("{text}");
        eprint!("{summary}");
        if let Some(path) = &self.out {
            std::fs::write(path, format!("{text}\n"))
                .with_context(|| format!("cannot write {}", path.display()))?;
            std::fs::write(path.with_extension("md"), summary)?;
        }
        Ok(())
    }
}

/// A Markdown table of a result's figures (nested objects flattened with dots).
fn summary(result: &serde_json::Value) -> String {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            serde_json::Value::Number(n) => {
                let text = match n.as_f64() {
                    Some(f) if n.is_f64() => format!("{f:.3}"),
                    _ => n.to_string(),
                };
                out.push((prefix.to_owned(), text));
            }
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut rows = Vec::new();
    flatten("", result, &mut rows);
    let mut out = String::from("| figure | value |\n| --- | --- |\n");
    for (k, v) in rows {
        out.push_str(&format!("| {k} | {v} |\n"));
    }
    out
}

fn main() -> Result<()> {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("no tokio runtime")
    };
    match Cli::parse().command {
        Command::IngestHttp { server, load, out } => load.report(
            &out,
            runtime()?.block_on(drive::ingest(&server, false, load.load()?))?,
        ),
        Command::IngestGrpc { server, load, out } => load.report(
            &out,
            runtime()?.block_on(drive::ingest(&server, true, load.load()?))?,
        ),
        Command::IngestJetstream {
            nats_url,
            partitions,
            load,
            out,
        } => load.report(
            &out,
            runtime()?.block_on(drive::ingest_jetstream(&nats_url, partitions, load.load()?))?,
        ),
        Command::IngestKafka {
            brokers,
            topic,
            partitions,
            format,
            load,
            out,
        } => load.report(
            &out,
            runtime()?.block_on(flowwatch_loadtest::kafka::ingest_kafka(
                &brokers,
                &topic,
                partitions,
                format,
                load.load()?,
            ))?,
        ),
        Command::Steady {
            server,
            pid,
            flows,
            minutes,
            every,
            out,
        } => out.write(&runtime()?.block_on(drive::steady(&server, pid, flows, minutes, every))?),
        Command::Alarms {
            server,
            nats_url,
            flows,
            history_days,
            grace,
            out,
        } => out.write(&runtime()?.block_on(drive::alarm_latency(
            &server,
            &nats_url,
            flows,
            history_days,
            grace,
        ))?),
        Command::Score {
            outages,
            ticks,
            url,
            api_key,
            from,
            to,
            plot,
            out,
        } => {
            use flowwatch_loadtest::score;
            let labels = score::read_labels(&outages)?;
            let report = match (ticks, url, from.zip(to)) {
                (Some(ticks), ..) => score::score_file(labels, &ticks)?,
                (None, Some(url), Some((from, to))) => {
                    let key = api_key.context("--url needs --api-key or FLOWWATCH_API_KEY")?;
                    runtime()?.block_on(score::score_api(labels, &url, &key, from, to))?
                }
                _ => anyhow::bail!("give --ticks FILE, or --url URL with --from and --to"),
            };
            out.write_with_notes(&report.to_json(), &report.markdown())?;
            if let Some(path) = plot {
                std::fs::write(&path, report.delay_plot())
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(())
        }
        Command::Quality { sets, out } => {
            use flowwatch_loadtest::quality;
            let q = sets.quality()?;
            let scores = quality::run(&q)?;
            out.write_markdown(
                &quality::to_json(&q, &scores),
                quality::markdown(&q, &scores),
            )
        }
        Command::Incidents { sets, out } => {
            use flowwatch_loadtest::incidents;
            let q = sets.quality()?;
            let m = incidents::run(&q)?;
            out.write_markdown(&incidents::to_json(&q, &m), incidents::markdown(&q, &m))
        }
        Command::Suggestions { sets, out } => {
            use flowwatch_loadtest::suggestions;
            let q = sets.quality()?;
            let m = suggestions::run(&q)?;
            out.write_markdown(&suggestions::to_json(&q, &m), suggestions::markdown(&q, &m))
        }
        Command::Cluster { load, out } => {
            out.write(&runtime()?.block_on(flowwatch_loadtest::cluster::cluster(load))?)
        }
        Command::Api { server, load, out } => {
            out.write(&runtime()?.block_on(flowwatch_loadtest::api::api(&server, load))?)
        }
        Command::Generate {
            seed,
            start,
            days,
            flows,
            batch_minutes,
            min_batch_minutes,
            unusual_zones,
            outages_per_flow_month,
            realistic,
            out,
        } => {
            let spec = Spec {
                seed,
                start,
                days,
                flows,
                batch_minutes,
                min_batch_minutes,
                unusual_zones,
                outages_per_flow_month,
                realism: if realistic {
                    Realism::realistic()
                } else {
                    Realism::default()
                },
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
            std::fs::write(
                out.join("unlisted-days.json"),
                serde_json::to_string_pretty(&data.unlisted_days())?,
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

//! `flowwatch run`: every role in one process on the embedded store.
//!
//! The worker's supervisor (its mailbox is the ingest queue), the alarm relay (to NATS with
//! `--nats-url`, else to the log) and the gateway's HTTP and gRPC APIs (on one address). SIGINT
//! or SIGTERM stops taking requests, lets those in flight finish (each answers once its records
//! are stored), publishes what the outbox holds, and exits.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use flowwatch_gateway::Gateway;
use flowwatch_ports::AlarmSink;
use flowwatch_storage::Store;
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_worker::WorkerSettings;
use flowwatch_worker::alarms::{LogSink, NatsSink};
use flowwatch_worker::evaluation::{Evaluation, EvaluationArgs};
use serde::Serialize;

use crate::serve::{ApiArgs, KafkaArgs, OpsArgs, configuration};

/// `flowwatch run` flags (each also `FLOWWATCH_RUN__<FLAG>`).
#[derive(clap::Args, Debug, Serialize)]
pub struct Args {
    /// Where the embedded store keeps its data.
    #[arg(
        long,
        env = "FLOWWATCH_RUN__DATA_DIR",
        default_value = "flowwatch-data"
    )]
    data_dir: PathBuf,
    /// The HTTP and gRPC APIs, authentication, the clock.
    #[command(flatten)]
    #[serde(flatten)]
    api: ApiArgs,
    /// Traffic read from Kafka.
    #[command(flatten)]
    #[serde(flatten)]
    kafka: KafkaArgs,
    /// The operators' mail when alarms cannot be published.
    #[command(flatten)]
    #[serde(flatten)]
    ops: OpsArgs,
    /// NATS server for alarms (left out: alarms go to the log).
    #[arg(long, env = "FLOWWATCH_RUN__NATS_URL")]
    nats_url: Option<String>,
    /// A configuration document (JSON, SPEC §5) to apply at start (saved as a new version
    /// when it differs from the stored one).
    #[arg(long, env = "FLOWWATCH_RUN__CONFIG")]
    config: Option<PathBuf>,
    /// A status change of a tick older than this many seconds is a revision, never alarmed.
    #[arg(long, env = "FLOWWATCH_RUN__ALARM_WINDOW", default_value_t = 86_400)]
    alarm_window: i64,
    /// Fill the store with realistic demo traffic (weeks of history, then live) for a system
    /// that lives at once; its configuration is saved when none is stored.
    #[arg(long, env = "FLOWWATCH_RUN__DEMO")]
    demo: bool,
    /// How many flows the demo has.
    #[arg(long, env = "FLOWWATCH_RUN__DEMO_FLOWS", default_value_t = 4500)]
    demo_flows: usize,
    /// Print the effective settings as JSON and exit.
    #[arg(long)]
    #[serde(skip)]
    dump_config: bool,
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(args: Args) -> Result<()> {
    if args.dump_config {
        println!("{}", serde_json::to_string_pretty(&args)?);
        return Ok(());
    }
    let clock = args.api.clock.start();
    if args.alarm_window < 0 {
        bail!("--alarm-window must not be negative");
    }
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&args.data_dir)
            .await
            .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?,
    );
    args.api.ensure_root(store.as_ref()).await?;
    let demo = match args.demo {
        true => {
            let data = crate::demo::dataset(args.demo_flows, crate::demo::today(clock.now()));
            let pending = crate::demo::prepare(store.as_ref(), &data, clock.now()).await?;
            Some((data, pending))
        }
        false => None,
    };
    let in_force = configuration(store.as_ref(), args.config.as_ref()).await?;
    let nats = match &args.nats_url {
        Some(url) => Some(crate::serve::nats(url).await?),
        None => None,
    };
    let (config, saved) = tokio::sync::watch::channel(in_force);
    let evaluation = Evaluation::start(EvaluationArgs {
        config: saved,
        store: store.clone(),
        clock,
        settings: WorkerSettings {
            alarm_window: args.alarm_window,
            ..WorkerSettings::default()
        },
        sink: match nats.clone() {
            Some(client) => Arc::new(NatsSink::new(client)) as Arc<dyn AlarmSink>,
            None => Arc::new(LogSink),
        },
        ownership: None,
        ops_email: args.ops.parsed(),
    })
    .await?;
    let gateway = Arc::new(Gateway {
        ingest: evaluation.ingest(),
        config,
        store: store.clone(),
        status: evaluation.status(),
        nats,
        kafka: Default::default(),
        coordinators: None,
        clock,
        max_body: args.api.max_body(),
        auth: args.api.auth(),
        ui: args.api.web_ui(),
        stopping: tokio::sync::watch::channel(false).0,
    });
    if let Some((data, pending)) = demo {
        let g = gateway.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::demo::feed(g, data, pending).await {
                tracing::error!("demo traffic stopped: {e:#}");
            }
        });
    }
    args.kafka.start(&gateway, evaluation.ingest());
    args.api.serve(gateway).await?;

    tracing::info!("stopping: requests finished, evaluating what they brought, flushing alarms");
    Ok(evaluation.stop().await?)
}

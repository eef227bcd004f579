//! `flowwatch gateway`: the gateway of a cluster as its own process.
//!
//! The HTTP and gRPC APIs on a shared store (`--storage`), with no worker in the process:
//! - ingest is published to the JetStream ingest stream (`flowwatch.ingest.<partition>`) that
//!   the workers consume; a request is answered once JetStream has acknowledged its records;
//! - the live views' status changes are the alarms the workers publish on NATS
//!   (`flowwatch.alarms.>`, SPEC §8);
//! - the configuration in force is the newest stored version, whichever gateway saved it
//!   (looked for every [`FOLLOW_EVERY`]); a save through this gateway is in force here at once;
//! - `GET /api/v1/cluster` is the view of the leader among the coordinators of `--coordinator`
//!   (without it: `"clustered": false`).
//!
//! Several gateways may serve one store. Users, keys, the audit log and the configuration live
//! in the store; the failed-login limit is per process. SIGINT or SIGTERM stops taking
//! requests and lets those in flight finish.

use std::sync::Arc;

use anyhow::{Context, Result};
use flowwatch_core::event::ALARM_SUBJECT;
use flowwatch_gateway::Gateway;
use flowwatch_gateway::status::ClusterStatus;
use flowwatch_ports::in_force::{FOLLOW_EVERY, follow};
use flowwatch_proto::cluster::Coordinators;
use flowwatch_storage::redact_uri;
use flowwatch_worker::ingest::JetStreamIngest;
use serde::Serialize;

use crate::serve::{ApiArgs, KafkaArgs, PartitionArgs, configuration};

/// `flowwatch gateway` flags (each also `FLOWWATCH_GATEWAY__<FLAG>`).
#[derive(clap::Args, Debug, Serialize)]
pub struct Args {
    /// The shared store: `postgres://user@host:5432/db`, `scylla://host:9042/keyspace` or
    /// `embedded:///path` (one process only).
    #[arg(long, env = "FLOWWATCH_GATEWAY__STORAGE")]
    #[serde(serialize_with = "redacted")]
    storage: String,
    /// The NATS server (with JetStream): ingest goes to its ingest stream, alarms come from it.
    #[arg(long, env = "FLOWWATCH_GATEWAY__NATS_URL")]
    nats_url: String,
    /// How many partitions ingest is published to.
    #[command(flatten)]
    #[serde(flatten)]
    partitioning: PartitionArgs,
    /// The coordinators' gRPC addresses, comma-separated (`http://host:7070,http://host2:7070`):
    /// `GET /api/v1/cluster` answers the leader's view of the cluster. Ingest needs none (it
    /// goes to the partitions, whoever consumes them).
    #[arg(
        long,
        env = "FLOWWATCH_GATEWAY__COORDINATOR",
        value_delimiter = ',',
        value_parser = crate::cluster::coordinator_address
    )]
    coordinator: Vec<String>,
    /// Traffic read from Kafka, published to the ingest partitions.
    #[command(flatten)]
    #[serde(flatten)]
    kafka: KafkaArgs,
    /// The HTTP and gRPC APIs, authentication, the clock.
    #[command(flatten)]
    #[serde(flatten)]
    api: ApiArgs,
    /// Print the effective settings as JSON and exit.
    #[arg(long)]
    #[serde(skip)]
    dump_config: bool,
}

/// A storage URI without its password, for `--dump-config`.
pub fn redacted<S: serde::Serializer>(uri: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_uri(uri))
}

/// As [`redacted`], for an optional URI.
pub fn redacted_option<S: serde::Serializer>(
    uri: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match uri {
        Some(uri) => redacted(uri, s),
        None => s.serialize_none(),
    }
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(args: Args) -> Result<()> {
    if args.dump_config {
        println!("{}", serde_json::to_string_pretty(&args)?);
        return Ok(());
    }
    let clock = args.api.clock.start();
    let storage = redact_uri(&args.storage);
    let store = flowwatch_storage::open(&args.storage)
        .await
        .with_context(|| format!("cannot open the store {storage} (--storage)"))?;
    args.api.ensure_root(store.as_ref()).await?;
    let in_force = configuration(store.as_ref(), None).await?;

    // Reconnects (and resubscribing) are async-nats's job; a server away at start is waited
    // for until the ingest stream's JetStream request below times out (then the gateway exits).
    let nats = crate::serve::nats(&args.nats_url).await?;
    let alarms = nats
        .subscribe(format!("{ALARM_SUBJECT}.>"))
        .await
        .with_context(|| format!("cannot subscribe to alarms on {}", args.nats_url))?;
    let ingest = JetStreamIngest::new(nats.clone(), args.partitioning.partitions)
        .await
        .with_context(|| format!("NATS {}", args.nats_url))?;
    let coordinators =
        || (!args.coordinator.is_empty()).then(|| Coordinators::new(args.coordinator.clone()));
    let status = Arc::new(ClusterStatus::new(coordinators()));
    let following = status.clone();
    tokio::spawn(async move { following.follow_alarms(alarms).await });

    let ingest = Arc::new(ingest.with_store(store.clone()));
    let gateway = Arc::new(Gateway {
        ingest: ingest.clone(),
        config: tokio::sync::watch::channel(in_force).0,
        store,
        status,
        nats: Some(nats),
        kafka: Default::default(),
        coordinators: coordinators(),
        clock,
        max_body: args.api.max_body(),
        auth: args.api.auth(),
        ui: args.api.web_ui(),
        stopping: tokio::sync::watch::channel(false).0,
    });
    let g = gateway.clone();
    tokio::spawn(follow(
        gateway.store.clone(),
        gateway.config.clone(),
        FOLLOW_EVERY,
        async move { g.stopped().await },
    ));
    tracing::info!(
        storage,
        partitions = args.partitioning.partitions,
        coordinators = args.coordinator.join(","),
        "gateway on NATS {}",
        args.nats_url
    );
    args.kafka.start(&gateway, ingest);
    args.api.serve(gateway).await
}

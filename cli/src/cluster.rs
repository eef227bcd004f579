//! The cluster's own services and their administration:
//! - `flowwatch coordinator`: places the flows' partitions on the workers
//!   (`flowwatch_coordinator::run`); several may run, one leads (a NATS JetStream KV lease);
//! - `flowwatch worker`: runs the flows of the partitions its plan gives it
//!   (`flowwatch_worker::service::run`) on the shared store;
//! - `flowwatch admin cluster | drain`: the members, epochs and placement as the leader sees
//!   them; moving every partition off a worker before maintenance.
//!
//! Each server prints `listening on http://ADDR` as the first line of standard output once
//! bound (tests and scripts read the address from it, with `--grpc 127.0.0.1:0`), serves gRPC,
//! health, reflection and `GET /metrics` on that address, and stops on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use flowwatch_core::time::utc_string;
use flowwatch_proto::cluster::{self, Leader, view_json};
use flowwatch_proto::pb;
use flowwatch_storage::redact_uri;
use flowwatch_worker::cluster::AgentSettings;
use flowwatch_worker::service::ServiceSettings;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::serve::{
    ClockArgs, KafkaArgs, OpsArgs, PartitionArgs, configuration, listen, nats, shutdown_signal,
};

/// `flowwatch coordinator` flags (each also `FLOWWATCH_COORDINATOR__<FLAG>`).
#[derive(clap::Args, Debug, Serialize)]
pub struct CoordinatorArgs {
    /// The NATS server (with JetStream and KV: 2.10 or later): the leader lease lives there.
    #[arg(long, env = "FLOWWATCH_COORDINATOR__NATS_URL")]
    nats_url: String,
    /// The cluster's shared store (optional): the leader then counts the registered flows
    /// (`flowwatch_coordinator_flows_registered`). Placement needs no store.
    #[arg(long, env = "FLOWWATCH_COORDINATOR__STORAGE")]
    #[serde(serialize_with = "crate::gateway::redacted_option")]
    storage: Option<String>,
    /// Where the gRPC service (and `/metrics`) listens.
    #[arg(
        long,
        env = "FLOWWATCH_COORDINATOR__GRPC",
        default_value = "127.0.0.1:7070"
    )]
    grpc: SocketAddr,
    /// The address workers and the other coordinators reach this one at (default: the bound
    /// `--grpc` address).
    #[arg(long, env = "FLOWWATCH_COORDINATOR__ADVERTISE")]
    advertise: Option<String>,
    /// This coordinator's name (default: its advertised address).
    #[arg(long, env = "FLOWWATCH_COORDINATOR__NAME")]
    name: Option<String>,
    /// How many partitions flows are hashed into.
    #[command(flatten)]
    #[serde(flatten)]
    partitioning: PartitionArgs,
    /// A worker silent this many milliseconds is dead; its partitions go elsewhere.
    #[arg(
        long,
        env = "FLOWWATCH_COORDINATOR__DEAD_AFTER_MS",
        default_value_t = 5_000
    )]
    dead_after_ms: u64,
    /// A plan runs this many milliseconds without an answered heartbeat (below
    /// `--dead-after-ms`: a worker stops its flows before they can go elsewhere).
    #[arg(long, env = "FLOWWATCH_COORDINATOR__LEASE_MS", default_value_t = 4_000)]
    lease_ms: u64,
    /// The leader lease's time to live in milliseconds: a standby leads about this long after
    /// the leader died (below `--lease-ms`: the workers' leases outlast a change of leader).
    #[arg(
        long,
        env = "FLOWWATCH_COORDINATOR__LEADER_TTL_MS",
        default_value_t = 2_000
    )]
    leader_ttl_ms: u64,
    /// The clock (the coordinator's decisions run on elapsed time, not on the wall clock: it
    /// is taken and shown, as every role takes it).
    #[command(flatten)]
    #[serde(flatten)]
    clock: ClockArgs,
    /// Print the effective settings as JSON and exit.
    #[arg(long)]
    #[serde(skip)]
    dump_config: bool,
}

/// `flowwatch worker` flags (each also `FLOWWATCH_WORKER__<FLAG>`).
#[derive(clap::Args, Debug, Serialize)]
pub struct WorkerArgs {
    /// The shared store: `postgres://user@host:5432/db` or `scylla://host:9042/keyspace`.
    #[arg(long, env = "FLOWWATCH_WORKER__STORAGE")]
    #[serde(serialize_with = "crate::gateway::redacted")]
    storage: String,
    /// The NATS server (with JetStream): ingest partitions come from it, alarms go to it.
    #[arg(long, env = "FLOWWATCH_WORKER__NATS_URL")]
    nats_url: String,
    /// The coordinators' gRPC addresses, comma-separated (`http://host:7070,http://host2:7070`).
    #[arg(
        long,
        env = "FLOWWATCH_WORKER__COORDINATOR",
        value_delimiter = ',',
        required = true,
        value_parser = coordinator_address
    )]
    coordinator: Vec<String>,
    /// Where the gRPC service (plans; `/metrics`) listens.
    #[arg(long, env = "FLOWWATCH_WORKER__GRPC", default_value = "127.0.0.1:7171")]
    grpc: SocketAddr,
    /// The address the coordinators reach this worker at (default: the bound `--grpc`
    /// address).
    #[arg(long, env = "FLOWWATCH_WORKER__ADVERTISE")]
    advertise: Option<String>,
    /// This worker's name, unique in the cluster and the same across restarts (default: its
    /// advertised address).
    #[arg(long, env = "FLOWWATCH_WORKER__NAME")]
    name: Option<String>,
    /// How often it heartbeats, in milliseconds.
    #[arg(long, env = "FLOWWATCH_WORKER__HEARTBEAT_MS", default_value_t = 500)]
    heartbeat_ms: u64,
    /// A status change of a tick older than this many seconds is a revision, never alarmed.
    #[arg(long, env = "FLOWWATCH_WORKER__ALARM_WINDOW", default_value_t = 86_400)]
    alarm_window: i64,
    /// The clock the flows are evaluated by.
    #[command(flatten)]
    #[serde(flatten)]
    clock: ClockArgs,
    /// Traffic read from Kafka, published to the ingest partitions.
    #[command(flatten)]
    #[serde(flatten)]
    kafka: KafkaArgs,
    /// The operators' mail when alarms cannot be published.
    #[command(flatten)]
    #[serde(flatten)]
    ops: OpsArgs,
    /// Print the effective settings as JSON and exit.
    #[arg(long)]
    #[serde(skip)]
    dump_config: bool,
}

/// Binds `at` (`--grpc`, the address printed) and returns the listener and the advertised
/// URL.
async fn bind(
    at: SocketAddr,
    advertise: &Option<String>,
) -> Result<(tokio::net::TcpListener, String)> {
    let (listener, addr) = listen(at, "--grpc").await?;
    Ok((
        listener,
        advertise.clone().unwrap_or(format!("http://{addr}")),
    ))
}

/// A token cancelled by SIGINT or SIGTERM.
fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        t.cancel();
    });
    token
}

/// Runs a coordinator until SIGINT or SIGTERM.
pub async fn coordinator(args: CoordinatorArgs) -> Result<()> {
    if args.dump_config {
        println!("{}", serde_json::to_string_pretty(&args)?);
        return Ok(());
    }
    if args.lease_ms >= args.dead_after_ms {
        bail!(
            "--lease-ms ({}) must be below --dead-after-ms ({})",
            args.lease_ms,
            args.dead_after_ms
        );
    }
    if args.leader_ttl_ms >= args.lease_ms {
        bail!(
            "--leader-ttl-ms ({}) must be below --lease-ms ({})",
            args.leader_ttl_ms,
            args.lease_ms
        );
    }
    let registry =
        match &args.storage {
            Some(uri) => Some(flowwatch_storage::open(uri).await.with_context(|| {
                format!("cannot open the store {} (--storage)", redact_uri(uri))
            })?),
            None => None,
        };
    let client = nats(&args.nats_url).await?;
    let (listener, address) = bind(args.grpc, &args.advertise).await?;
    let mut settings = flowwatch_coordinator::Settings::new(
        args.name.clone().unwrap_or(address.clone()),
        address,
        args.partitioning.partitions,
    );
    settings.timing = flowwatch_coordinator::Timing {
        dead_after: args.dead_after_ms,
        lease: args.lease_ms,
    };
    settings.leader_ttl = Duration::from_millis(args.leader_ttl_ms);
    // Placement, leases and deaths are measured in elapsed time: nothing here reads the wall
    // clock, so the shifted one is only said.
    tracing::info!(
        clock = %utc_string(args.clock.start().now()),
        partitions = settings.partitions,
        "coordinator {}",
        settings.name
    );
    flowwatch_coordinator::run(settings, client, registry, listener, on_signal())
        .await
        .with_context(|| format!("coordinator on NATS {}", args.nats_url))
}

/// Runs a worker until SIGINT or SIGTERM.
pub async fn worker(args: WorkerArgs) -> Result<()> {
    if args.dump_config {
        println!("{}", serde_json::to_string_pretty(&args)?);
        return Ok(());
    }
    if args.alarm_window < 0 {
        bail!("--alarm-window must not be negative");
    }
    let clock = args.clock.start();
    let storage = redact_uri(&args.storage);
    let store = flowwatch_storage::open(&args.storage)
        .await
        .with_context(|| format!("cannot open the store {storage} (--storage)"))?;
    let in_force = configuration(store.as_ref(), None).await?;
    let client = nats(&args.nats_url).await?;
    let (listener, address) = bind(args.grpc, &args.advertise).await?;
    let settings = ServiceSettings {
        agent: AgentSettings {
            name: args.name.clone().unwrap_or(address.clone()),
            address,
            coordinators: args.coordinator.clone(),
            heartbeat_every: Duration::from_millis(args.heartbeat_ms.max(10)),
            ack_wait: Duration::from_secs(30),
        },
        alarm_window: args.alarm_window,
        clock,
        kafka: args.kafka.source(),
        ops_email: args.ops.parsed(),
    };
    flowwatch_worker::service::run(settings, store, in_force, client, listener, on_signal())
        .await
        .map_err(|e| anyhow!("worker: {e}"))
}

/// The coordinators an admin command asks.
#[derive(clap::Args, Debug)]
pub struct Coordinators {
    /// The coordinators' gRPC addresses, comma-separated (the leader is found).
    #[arg(
        long,
        env = "FLOWWATCH_ADMIN__COORDINATOR",
        value_delimiter = ',',
        required = true,
        value_parser = coordinator_address
    )]
    coordinator: Vec<String>,
}

impl Coordinators {
    /// The leading coordinator: a client of it and its view.
    async fn leader(&self) -> Result<Leader> {
        Ok(cluster::Coordinators::new(self.coordinator.clone())
            .leader()
            .await?)
    }
}

/// A coordinator's gRPC address as `--coordinator` takes it: `http://host:port` (or
/// `https://`).
pub fn coordinator_address(address: &str) -> Result<String, String> {
    let expected = "expected http://host:port";
    let uri: tonic::transport::Uri = address
        .parse()
        .map_err(|e| format!("not an address ({e}): {expected}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(address.to_owned()),
        _ => Err(expected.to_owned()),
    }
}

/// `flowwatch admin` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Admin {
    /// Shows the members, their plans' epochs and partitions, their load, and what moves, as
    /// the leading coordinator sees them.
    Cluster {
        #[command(flatten)]
        coordinators: Coordinators,
        /// Print the view as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Moves every partition off a worker (before maintenance) and waits until it runs none;
    /// `--undo` lets it take partitions again.
    Drain {
        /// The worker's name (as `flowwatch admin cluster` lists it).
        worker: String,
        #[command(flatten)]
        coordinators: Coordinators,
        /// Let the worker take partitions again.
        #[arg(long)]
        undo: bool,
        /// Return at once instead of waiting until the worker runs no partition.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

/// Runs an admin command.
pub async fn admin(command: Admin) -> Result<()> {
    match command {
        Admin::Cluster { coordinators, json } => {
            let view = coordinators.leader().await?.view;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&view_json(&view))?),
                false => print!("{}", view_text(&view)),
            }
            Ok(())
        }
        Admin::Drain {
            worker,
            coordinators,
            undo,
            no_wait,
            timeout,
        } => {
            let mut client = coordinators.leader().await?.client;
            client
                .drain(pb::DrainRequest {
                    worker: worker.clone(),
                    undo,
                })
                .await
                .map_err(|s| anyhow!("{}", s.message()))?;
            if undo || no_wait {
                eprintln!(
                    "{worker}: {}",
                    if undo {
                        "takes partitions again"
                    } else {
                        "draining"
                    }
                );
                return Ok(());
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
            loop {
                let view = client.cluster(pb::ClusterRequest {}).await?.into_inner();
                let Some(m) = view.members.iter().find(|m| m.worker == worker) else {
                    bail!("{worker} left the cluster while it was drained");
                };
                let runs = m.partitions.len();
                // Drained once it runs nothing and another worker runs each of its partitions
                // (a revoked partition is given on the leader's next step).
                let waiting = view
                    .owners
                    .iter()
                    .filter(|o| o.is_empty() || **o == worker)
                    .count();
                if runs == 0 && m.applied_epoch >= m.plan_epoch && waiting == 0 {
                    eprintln!("{worker}: drained (runs no partition; the others run them)");
                    return Ok(());
                }
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "{worker} not drained after {timeout} s: it runs {runs} partitions, \
                         {waiting} wait for another worker"
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// The cluster view as a table.
fn view_text(v: &pb::ClusterView) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "leader {} ({}), epoch {}, {} partitions, {} moving",
        v.coordinator,
        v.leader_address,
        epoch(v.epoch),
        v.partition_count,
        v.moving.len()
    );
    let _ = writeln!(
        out,
        "{:<28} {:<9} {:>10} {:>10} {:>5} {:>9} {:>9} {:>9}  partitions",
        "WORKER", "STATE", "PLAN", "RUNS", "PARTS", "FLOWS", "MEMORY", "HEARTBEAT"
    );
    for m in &v.members {
        let load = m.load.unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<28} {:<9} {:>10} {:>10} {:>5} {:>9} {:>8}M {:>7}ms  {}",
            m.worker,
            m.state,
            epoch(m.plan_epoch),
            epoch(m.applied_epoch),
            m.partitions.len(),
            load.flows,
            load.memory_bytes >> 20,
            m.last_heartbeat_millis,
            ranges(&m.partitions)
        );
    }
    out
}

/// An epoch as `term.n` (a leader's term, and its plans' count).
fn epoch(e: u64) -> String {
    format!("{}.{}", e >> 32, e & 0xffff_ffff)
}

/// `0-3,7,9-10`.
fn ranges(partitions: &[u32]) -> String {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(match start == end {
            true => start.to_string(),
            false => format!("{start}-{end}"),
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_addresses_are_urls_with_a_host() {
        for ok in [
            "http://127.0.0.1:7070",
            "https://coordinator-0.coordinator:7070",
        ] {
            assert_eq!(coordinator_address(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "127.0.0.1:7070",
            "coordinator",
            "ftp://host:21",
            "http://",
            "",
        ] {
            let e = coordinator_address(bad).unwrap_err();
            assert!(e.ends_with("expected http://host:port"), "{bad}: {e}");
        }
    }

    #[test]
    fn partitions_print_as_ranges_and_epochs_as_term_and_count() {
        assert_eq!(ranges(&[9, 0, 1, 2, 3, 7, 10]), "0-3,7,9-10");
        assert_eq!(ranges(&[]), "");
        assert_eq!(epoch((5 << 32) + 3), "5.3");
    }
}

//! The cluster benchmark: one coordinator and `workers` worker processes (the `flowwatch`
//! binary, as deployed) on a shared store and NATS, `flows` flows at the default 1-hour ticks.
//!
//! 1. *register*: one record per flow is published to the ingest partitions; until every
//!    flow's actor runs on the worker of its partition;
//! 2. *failover*: one worker is killed (`SIGKILL`); until the coordinator has placed its
//!    partitions on the others and they run every flow again;
//! 3. *cold start*: every process stops (`SIGTERM`), a new coordinator and the workers start
//!    again; until the partitions are placed and every registered flow runs.
//!
//! After each phase, every worker's resident and peak memory (`/proc`). The flow counts are
//! the workers' own, as their heartbeats report them to the leader (`Coordinator.Cluster`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use anyhow::{Context, Result, bail, ensure};
use flowwatch_core::time::{Instant, utc_string};
use flowwatch_proto::pb;
use flowwatch_proto::pb::coordinator_client::CoordinatorClient;
use serde_json::{Value, json};

use crate::drive::{Flows, Pace, process_memory, publish_all};

/// What the benchmark runs.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterLoad {
    /// The `flowwatch` binary (default: the one next to this program).
    #[arg(long)]
    pub flowwatch: Option<PathBuf>,
    /// The shared store, empty (`postgres://root@127.0.0.1:5432/bench`).
    #[arg(long)]
    pub storage: String,
    /// A NATS server with JetStream and KV (2.10 or later) whose ingest stream is empty.
    #[arg(long)]
    pub nats_url: String,
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Flows.
    #[arg(long, default_value_t = 1_000_000)]
    pub flows: usize,
    /// Ingest partitions.
    #[arg(long, default_value_t = flowwatch_worker::ingest::DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// Records per published batch.
    #[arg(long, default_value_t = 20_000)]
    pub batch: usize,
    /// Concurrent publishers.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    /// The workers' clock and the records' time (RFC 3339): just after local midnight, so
    /// a new flow has no earlier tick of its first day to evaluate.
    #[arg(long, default_value = "2026-11-23T23:00:30Z")]
    pub start: String,
    /// Longest a phase may take, in seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Where the processes' logs go (default: a temporary directory, kept on failure).
    #[arg(long)]
    pub logs: Option<PathBuf>,
}

/// A `flowwatch` process; killed when dropped.
struct Proc {
    name: String,
    child: Child,
    url: String,
}

impl Proc {
    /// Starts `flowwatch <args>` with `--grpc 127.0.0.1:0`, its log in `logs/<name>.log`;
    /// returns once it printed the address it listens on.
    fn start(bin: &PathBuf, logs: &std::path::Path, name: &str, args: &[&str]) -> Result<Proc> {
        let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
        let mut child = Command::new(bin)
            .args(args)
            .args(["--grpc", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("{name} did not start (see {}/{name}.log)", logs.display());
        };
        Ok(Proc {
            name: name.to_owned(),
            url: addr.to_owned(),
            child,
        })
    }

    /// Resident and peak memory, in bytes.
    fn memory(&self) -> Result<(u64, u64)> {
        process_memory(self.child.id())
    }

    /// Sends `SIGTERM`.
    fn signal(&self) -> Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        Ok(())
    }

    /// `SIGTERM`, and waits for the exit.
    fn terminate(&mut self) -> Result<()> {
        self.signal()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes and how to start more.
struct Cluster {
    bin: PathBuf,
    logs: PathBuf,
    load: ClusterLoad,
    /// The workers' clock starts at `load.start` when the first of them started.
    origin: (WallInstant, Instant),
    coordinator: Option<Proc>,
    /// One channel per coordinator, polled every 100 ms.
    channels: flowwatch_proto::client::Channels,
    workers: Vec<Proc>,
    /// Process starts, for log names.
    starts: usize,
}

impl Cluster {
    fn start_coordinator(&mut self) -> Result<()> {
        self.starts += 1;
        let partitions = self.load.partitions.to_string();
        let args = [
            "coordinator",
            "--nats-url",
            &self.load.nats_url,
            "--partitions",
            &partitions,
        ];
        let name = format!("coordinator-{}", self.starts);
        self.coordinator = Some(Proc::start(&self.bin, &self.logs, &name, &args)?);
        Ok(())
    }

    /// Starts worker `w1`… with the clock running on from `origin`.
    fn start_worker(&mut self, i: usize) -> Result<()> {
        self.starts += 1;
        let name = format!("w{i}");
        let coordinator = &self.coordinator.as_ref().context("no coordinator")?.url;
        let clock = utc_string(self.origin.1 + self.origin.0.elapsed().as_secs() as Instant);
        let args = [
            "worker",
            "--storage",
            &self.load.storage,
            "--nats-url",
            &self.load.nats_url,
            "--coordinator",
            coordinator,
            "--name",
            &name,
            "--start-time",
            &clock,
        ];
        let log = format!("{name}-{}", self.starts);
        let mut w = Proc::start(&self.bin, &self.logs, &log, &args)?;
        w.name = name;
        self.workers.push(w);
        Ok(())
    }

    /// The leader's view.
    async fn view(&self) -> Result<pb::ClusterView> {
        let url = &self.coordinator.as_ref().context("no coordinator")?.url;
        let channel = self.channels.get(url)?;
        Ok(CoordinatorClient::new(channel)
            .cluster(pb::ClusterRequest {})
            .await?
            .into_inner())
    }

    /// Polls the view every 100 ms until `done` holds; the seconds since `since`, and the
    /// view then.
    async fn until(
        &self,
        since: WallInstant,
        what: &str,
        done: impl Fn(&pb::ClusterView) -> bool,
    ) -> Result<(f64, pb::ClusterView)> {
        loop {
            if let Ok(v) = self.view().await
                && done(&v)
            {
                return Ok((since.elapsed().as_secs_f64(), v));
            }
            ensure!(
                since.elapsed() < Duration::from_secs(self.load.timeout),
                "{what}: not within {} s (logs in {})",
                self.load.timeout,
                self.logs.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Each running worker's flows and memory.
    fn members(&self, view: &pb::ClusterView) -> Result<Value> {
        let mut out = serde_json::Map::new();
        for w in &self.workers {
            let (rss, peak) = w.memory()?;
            let m = view.members.iter().find(|m| m.worker == w.name);
            let flows = m.and_then(|m| m.load).map_or(0, |l| l.flows);
            out.insert(
                w.name.clone(),
                json!({
                    "flows": flows,
                    "partitions": m.map_or(0, |m| m.partitions.len()),
                    "residentMiB": mib(rss), "peakMiB": mib(peak),
                    "residentBytesPerFlow": rss.checked_div(flows).unwrap_or(0),
                }),
            );
        }
        Ok(Value::Object(out))
    }
}

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

/// Every partition placed on one of `workers` live workers, each running its plan.
fn placed(v: &pb::ClusterView, workers: usize) -> bool {
    let live: Vec<&pb::Member> = v.members.iter().filter(|m| m.state == "live").collect();
    live.len() == workers
        && v.moving.is_empty()
        && v.owners.len() == v.partition_count as usize
        && v.owners.iter().all(|o| live.iter().any(|m| &m.worker == o))
        && live.iter().all(|m| m.applied_epoch >= m.plan_epoch)
}

/// Flows running on live workers.
fn running(v: &pb::ClusterView) -> u64 {
    v.members
        .iter()
        .filter(|m| m.state == "live")
        .filter_map(|m| m.load)
        .map(|l| l.flows)
        .sum()
}

/// Runs the three phases; their figures.
pub async fn cluster(load: ClusterLoad) -> Result<Value> {
    let start = flowwatch_core::time::parse_rfc3339(&load.start)
        .map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    ensure!(load.workers >= 2, "--workers: at least 2 (one is killed)");
    let bin = match &load.flowwatch {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("flowwatch"),
    };
    let store = flowwatch_storage::open(&load.storage)
        .await
        .with_context(|| format!("cannot open {}", load.storage))?;
    ensure!(
        store.flows().await?.is_empty(),
        "the store {} holds flows: give an empty one",
        flowwatch_storage::redact_uri(&load.storage)
    );
    let client = async_nats::connect(&load.nats_url)
        .await
        .with_context(|| format!("cannot connect to {}", load.nats_url))?;
    let publisher = Arc::new(
        flowwatch_worker::ingest::JetStreamIngest::new(client.clone(), load.partitions)
            .await
            .map_err(anyhow::Error::msg)?,
    );
    ensure!(
        crate::drive::ingest_stream_messages(&client).await? == 0,
        "the ingest stream on {} is not empty: use a fresh nats-server",
        load.nats_url
    );
    let (logs, temporary) = match &load.logs {
        Some(l) => (l.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("flowwatch-cluster-")
                .tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    std::fs::create_dir_all(&logs)?;
    let n = load.workers;
    let total = load.flows as u64;
    let mut c = Cluster {
        bin,
        logs,
        load: load.clone(),
        origin: (WallInstant::now(), start),
        coordinator: None,
        channels: flowwatch_proto::client::Channels::new("coordinator", Duration::from_secs(10)),
        workers: Vec::new(),
        starts: 0,
    };

    c.start_coordinator()?;
    let t = WallInstant::now();
    for i in 1..=n {
        c.start_worker(i)?;
    }
    let (joined, _) = c.until(t, "workers joining", |v| placed(v, n)).await?;

    // 1. Register: one record per flow, at the workers' clock.
    let flows = Flows(load.flows);
    let at = start + c.origin.0.elapsed().as_secs() as Instant;
    let batches: Vec<_> = (0..load.flows)
        .step_by(load.batch)
        .map(|from| flows.records(at, from, (from + load.batch).min(load.flows), 1000))
        .collect();
    let t = WallInstant::now();
    let publishing = publish_all(
        publisher,
        batches,
        load.publishers,
        Pace::new(None, load.batch),
    );
    for p in publishing {
        p.await??;
    }
    let published = t.elapsed().as_secs_f64();
    let (registered, view) = c
        .until(t, "every flow running", |v| running(v) >= total)
        .await?;
    let register = json!({
        "publishSeconds": published, "runningSeconds": registered,
        "flowsPerSecond": total as f64 / registered,
        "workers": c.members(&view)?,
    });

    // 2. Failover: the last worker dies.
    let victim = c.workers.pop().context("no worker")?;
    let lost = view
        .members
        .iter()
        .find(|m| m.worker == victim.name)
        .and_then(|m| m.load)
        .map_or(0, |l| l.flows);
    let t = WallInstant::now();
    drop(victim); // SIGKILL
    let (placed_after, _) = c.until(t, "failover placed", |v| placed(v, n - 1)).await?;
    let (moved, view) = c
        .until(t, "failover running", |v| {
            placed(v, n - 1) && running(v) >= total
        })
        .await?;
    let failover = json!({
        "flowsMoved": lost, "placedSeconds": placed_after, "runningSeconds": moved,
        "workers": c.members(&view)?,
    });

    // 3. Cold start: everything stops (the coordinator first, so that nothing moves while the
    // workers stop; the workers at once), a new coordinator and every worker start.
    let t = WallInstant::now();
    c.coordinator
        .as_mut()
        .context("no coordinator")?
        .terminate()?;
    for w in &c.workers {
        w.signal()?;
    }
    for w in &mut c.workers {
        w.child.wait()?;
    }
    c.workers.clear();
    let stopped = t.elapsed().as_secs_f64();
    c.start_coordinator()?;
    let t = WallInstant::now();
    for i in 1..=n {
        c.start_worker(i)?;
    }
    let (cold_placed, _) = c.until(t, "cold start placed", |v| placed(v, n)).await?;
    let (cold_running, view) = c
        .until(t, "cold start running", |v| {
            placed(v, n) && running(v) >= total
        })
        .await?;
    let cold = json!({
        "stopSeconds": stopped, "placedSeconds": cold_placed, "runningSeconds": cold_running,
        "workers": c.members(&view)?,
    });
    drop(c);
    drop(temporary);
    Ok(json!({
        "scenario": "cluster",
        "flows": total, "workers": n, "partitions": load.partitions,
        "joinSeconds": joined,
        "register": register, "failover": failover, "coldStart": cold,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(worker: &str, state: &str, plan: u64, applied: u64, flows: u64) -> pb::Member {
        pb::Member {
            worker: worker.into(),
            state: state.into(),
            plan_epoch: plan,
            applied_epoch: applied,
            load: Some(pb::WorkerLoad {
                flows,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn placed_needs_every_partition_on_a_live_worker_running_its_plan() {
        let mut v = pb::ClusterView {
            partition_count: 2,
            owners: vec!["a".into(), "b".into()],
            members: vec![member("a", "live", 3, 3, 10), member("b", "live", 3, 3, 5)],
            ..Default::default()
        };
        assert!(placed(&v, 2));
        assert_eq!(running(&v), 15);
        assert!(!placed(&v, 3));
        v.members[1].applied_epoch = 2;
        assert!(!placed(&v, 2), "b still runs an older plan");
        v.members[1].applied_epoch = 3;
        v.members[1].state = "dead".into();
        assert!(
            !placed(&v, 2) && !placed(&v, 1),
            "a partition on a dead worker"
        );
        assert_eq!(running(&v), 10, "a dead worker's flows do not count");
        v.owners[1] = "a".into();
        assert!(placed(&v, 1));
    }
}

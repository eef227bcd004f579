//! A worker in a cluster: the plan it was given, the lease it runs it under, the partition
//! consumers and flow actors that follow from them, and the heartbeats to the coordinator.
//!
//! - Heartbeats go every `heartbeat_every` to the leading coordinator (a standby's answer says
//!   where the leader is; an unreachable one is passed over). The leader's answer carries the
//!   worker's plan and renews its lease: the plan may run until `lease` after the heartbeat was
//!   *sent*, so the worker stops before the coordinator, counting from when it *received* the
//!   heartbeat, declares it dead.
//! - A plan (from a heartbeat's answer, or pushed by `Worker.ApplyPlan`) with a lower epoch
//!   than the one held is ignored.
//! - One task reconciles what runs with what should: the plan's partitions while the lease
//!   lasts, none once it ran out. Partitions leaving stop their consumer (after the batch it
//!   holds) and their flow actors (after the message each handles: their ticks are stored);
//!   then the new ones' consumers start, and once they stored the backlog, their flows. The
//!   epoch ticks are written with is the plan's.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use flowwatch_proto::client::Channels;
use flowwatch_proto::pb;
use flowwatch_proto::pb::coordinator_client::CoordinatorClient;
use flowwatch_storage::Store;
use ractor::ActorRef;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Clock;
use crate::actors::flow_supervisor::SupervisorMsg;
use crate::alarms::RelayStatus;
use crate::ingest::PartitionConsumer;
use crate::metrics::METRICS;
use crate::settings::Epoch;
use crate::supervision::Ownership;

/// How a worker takes part in a cluster.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Its name, unique in the cluster.
    pub name: String,
    /// Where its gRPC server is reached (`http://host:port`).
    pub address: String,
    /// The coordinators' gRPC addresses (any order; the leader is found).
    pub coordinators: Vec<String>,
    /// How often it heartbeats.
    pub heartbeat_every: Duration,
    /// How long JetStream waits for an ingest message's acknowledgement.
    pub ack_wait: Duration,
}

/// A plan held by the worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Held {
    epoch: u64,
    count: u32,
    partitions: BTreeSet<u32>,
}

/// What the worker runs now (what its heartbeats say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    /// The epoch of the plan it runs.
    pub epoch: u64,
    /// The partitions it runs.
    pub partitions: BTreeSet<u32>,
    /// How many partitions the cluster's flows hash into (0 before the first plan).
    pub count: u32,
}

/// A worker's part in the cluster.
pub struct Agent {
    settings: AgentSettings,
    supervisor: ActorRef<SupervisorMsg>,
    store: Arc<dyn Store>,
    js: jetstream::Context,
    epoch: Epoch,
    clock: Clock,
    /// The relay's counters, reported in heartbeats.
    relay: Arc<RelayStatus>,
    /// The newest plan taken, and until when it may run.
    plan: Mutex<(Held, Option<Instant>)>,
    wake: Notify,
    running: watch::Sender<Running>,
    coordinators: Channels,
}

/// How long a heartbeat may take.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long new partitions' consumers may take to store their backlog before the flows start.
const BACKLOG_WAIT: Duration = Duration::from_secs(10);
/// How often the reconciler looks at the lease even when nothing changed.
const LEASE_CHECK: Duration = Duration::from_millis(100);

impl Agent {
    /// An agent for `supervisor`, whose ticks carry `epoch`.
    pub fn new(
        settings: AgentSettings,
        supervisor: ActorRef<SupervisorMsg>,
        store: Arc<dyn Store>,
        nats: async_nats::Client,
        epoch: Epoch,
        clock: Clock,
        relay: Arc<RelayStatus>,
    ) -> Arc<Agent> {
        Arc::new(Agent {
            settings,
            clock,
            relay,
            supervisor,
            store,
            js: jetstream::new(nats),
            epoch,
            plan: Mutex::new((Held::default(), None)),
            wake: Notify::new(),
            running: watch::channel(Running::default()).0,
            coordinators: Channels::new("coordinator", HEARTBEAT_TIMEOUT),
        })
    }

    /// What runs now.
    pub fn running(&self) -> watch::Receiver<Running> {
        self.running.subscribe()
    }

    /// Takes `plan` unless it is older than the one held; with `lease_from`, renews the lease
    /// from that instant (the leader's answer to a heartbeat sent then). Returns whether the
    /// plan was taken.
    fn take(&self, plan: &pb::Plan, lease_from: Option<Instant>) -> bool {
        let mut held = self.plan.lock().expect("no panic holds the plan lock");
        if plan.epoch < held.0.epoch {
            return false;
        }
        held.0 = Held {
            epoch: plan.epoch,
            count: plan.partition_count,
            partitions: plan.partitions.iter().copied().collect(),
        };
        if let Some(from) = lease_from {
            held.1 = Some(from + Duration::from_millis(plan.lease_millis));
        }
        drop(held);
        self.wake.notify_one();
        true
    }

    /// A plan pushed by the coordinator: taken (it does not renew the lease), then answered
    /// once it runs (or, if that takes longer than the caller waits, with what runs by then).
    pub async fn apply(&self, plan: pb::Plan) -> pb::PlanReply {
        let mut running = self.running();
        if self.take(&plan, None) {
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                running.wait_for(|r| r.epoch >= plan.epoch),
            )
            .await;
        }
        let r = running.borrow().clone();
        pb::PlanReply {
            epoch: r.epoch,
            partitions: r.partitions.into_iter().collect(),
        }
    }

    /// What should run now: the plan while its lease lasts, else nothing (same epoch).
    fn target(&self) -> Held {
        let held = self.plan.lock().expect("no panic holds the plan lock");
        match held.1 {
            Some(until) if Instant::now() < until => held.0.clone(),
            _ => Held {
                partitions: BTreeSet::new(),
                ..held.0.clone()
            },
        }
    }

    /// Keeps what runs on what should, until `shutdown`; then stops every partition.
    pub async fn reconcile(self: Arc<Self>, shutdown: CancellationToken) {
        let mut consumers: HashMap<u32, (CancellationToken, JoinHandle<()>)> = HashMap::new();
        let mut now = Held::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(LEASE_CHECK) => {}
            }
            let target = self.target();
            if target == now {
                continue;
            }
            if target.partitions.is_empty()
                && !now.partitions.is_empty()
                && target.epoch == now.epoch
            {
                tracing::warn!(
                    epoch = target.epoch,
                    "the lease ran out (no coordinator answered): stopping every flow"
                );
            }
            match self.change(&mut consumers, &now, &target).await {
                Ok(flows) => {
                    tracing::info!(
                        epoch = target.epoch,
                        partitions = target.partitions.len(),
                        flows,
                        "plan running"
                    );
                    self.running.send_replace(Running {
                        epoch: target.epoch,
                        partitions: target.partitions.clone(),
                        count: target.count,
                    });
                    now = target;
                }
                Err(why) => {
                    tracing::warn!("plan not applied, retrying: {why}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let stop = Held {
            partitions: BTreeSet::new(),
            ..now.clone()
        };
        if let Err(why) = self.change(&mut consumers, &now, &stop).await {
            tracing::warn!("flows not stopped cleanly: {why}");
        }
    }

    /// Goes from running `from` to running `to`; the number of flows running after.
    async fn change(
        &self,
        consumers: &mut HashMap<u32, (CancellationToken, JoinHandle<()>)>,
        from: &Held,
        to: &Held,
    ) -> crate::Result<usize> {
        // Consumers of the partitions leaving finish their batch and stop.
        let leaving: Vec<_> = from
            .partitions
            .difference(&to.partitions)
            .filter_map(|p| consumers.remove(p))
            .collect();
        for (stop, _) in &leaving {
            stop.cancel();
        }
        for (_, task) in leaving {
            let _ = task.await;
        }
        // The new partitions' backlog (traffic that waited while nobody owned them) is stored
        // before their flows start: they then evaluate the ticks due with all of it, instead
        // of alarming on missing traffic and revising later.
        let mut backlog = Vec::new();
        for &p in to.partitions.difference(&from.partitions) {
            let stop = CancellationToken::new();
            let consumer = PartitionConsumer {
                js: self.js.clone(),
                partition: p,
                supervisor: self.supervisor.clone(),
                store: self.store.clone(),
                ack_wait: self.settings.ack_wait,
            };
            let (tell, caught_up) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(consumer.run_telling(stop.clone(), Some(tell)));
            consumers.insert(p, (stop, task));
            backlog.push(caught_up);
        }
        let caught_up = futures_util::future::join_all(backlog);
        if tokio::time::timeout(BACKLOG_WAIT, caught_up).await.is_err() {
            tracing::warn!(
                "the new partitions' backlog is not stored yet: their flows start anyway"
            );
        }
        self.epoch.set(to.epoch);
        let ownership = Ownership {
            count: to.count,
            partitions: to.partitions.iter().copied().collect(),
        };
        let flows = match self
            .supervisor
            .call(|r| SupervisorMsg::Own(Some(ownership), r), None)
            .await
        {
            Ok(ractor::rpc::CallResult::Success(result)) => {
                result.map_err(crate::Error::store("read the flow registry"))?
            }
            Ok(other) => {
                let why = format!("no answer: {other:?}");
                return Err(crate::Error::actor("the supervisor", why));
            }
            Err(e) => return Err(crate::Error::actor("the supervisor", e)),
        };
        Ok(flows)
    }

    fn heartbeat_request(&self) -> pb::HeartbeatRequest {
        let running = self.running.borrow().clone();
        let newest = METRICS.newest_record.get();
        let relay = self.relay.health();
        // The worker's clock: records are stamped in its time (`--start-time` shifts it).
        let now = self.clock.now();
        pb::HeartbeatRequest {
            worker: self.settings.name.clone(),
            address: self.settings.address.clone(),
            epoch: running.epoch,
            partitions: running.partitions.into_iter().collect(),
            load: Some(pb::WorkerLoad {
                // Live: a flow's actor starts on its first record too, not only with a plan.
                flows: METRICS.flows.get().max(0) as u64,
                ingest_lag_seconds: match newest {
                    n if n > 0 => now.saturating_sub(n).max(0) as u64,
                    _ => 0,
                },
                memory_bytes: resident_memory(),
                ticks: METRICS.ticks.get(),
                last_evaluation: METRICS.last_evaluation.get(),
                actor_failures: METRICS.actor_failures.get(),
                ingest_records: METRICS.ingest_records.get(),
                ingest_batches: METRICS.ingest_batches.get(),
                ingest_refused: METRICS.ingest_refused.get(),
                newest_record: newest,
                alarms_published: relay.published,
                alarm_failures: relay.failures,
                relay_healthy: relay.healthy,
            }),
        }
    }

    /// One heartbeat: to the leader as last known, else each coordinator in turn (and where a
    /// standby says the leader is). Whether a leader answered.
    async fn heartbeat(&self, leader: &mut Option<String>) -> bool {
        let request = self.heartbeat_request();
        let mut tried = Vec::new();
        let mut candidates: Vec<String> = leader.iter().cloned().collect();
        candidates.extend(self.settings.coordinators.iter().cloned());
        while let Some(address) = candidates.first().cloned() {
            candidates.remove(0);
            if tried.contains(&address) {
                continue;
            }
            tried.push(address.clone());
            let asked = Instant::now();
            let reply = match self.coordinators.get(&address) {
                Ok(channel) => {
                    CoordinatorClient::new(channel)
                        .heartbeat(request.clone())
                        .await
                }
                Err(why) => {
                    tracing::warn!("{why}");
                    continue;
                }
            };
            match reply.map(|r| r.into_inner()) {
                Ok(pb::HeartbeatReply {
                    leader: true,
                    plan: Some(plan),
                    ..
                }) => {
                    *leader = Some(address);
                    self.take(&plan, Some(asked));
                    return true;
                }
                Ok(reply) => {
                    if !reply.leader_address.is_empty() {
                        candidates.insert(0, reply.leader_address);
                    }
                }
                Err(status) => {
                    tracing::debug!(address, "coordinator did not answer: {}", status.message());
                }
            }
        }
        *leader = None;
        false
    }

    /// Heartbeats every `heartbeat_every` until `shutdown`.
    pub async fn heartbeats(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(self.settings.heartbeat_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leader = None;
        let mut answered = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let now = self.heartbeat(&mut leader).await;
            if now != answered {
                match now {
                    true => tracing::info!(leader = leader.as_deref(), "a coordinator leads"),
                    false => tracing::warn!(
                        "no coordinator leads: keeping the plan while its lease lasts"
                    ),
                }
                answered = now;
            }
        }
    }
}

/// The resident memory of this process in bytes (0 where `/proc` is not there).
fn resident_memory() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

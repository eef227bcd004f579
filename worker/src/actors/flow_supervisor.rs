//! The flow supervisor: one per worker. It keeps its own map of flow → actor (never ractor's
//! global registry), stores each ingested batch in one atomic write (so a batch is stored
//! whole or not at all, and a marked batch once), then hands the records to the flow actors,
//! spawning a linked one on a flow's first record. An actor that fails is restarted after a
//! pause, rebuilt from storage, catching up the ticks it missed.
//!
//! The supervisor is the only writer of its flows' traffic. It stores a batch while the actors
//! still take the one before (the two overlap), so storage may hold records an actor has not
//! been handed yet. An actor must therefore never read storage on its own while that can be
//! so: one that takes a late record turns stale and says so; the supervisor hands it the next
//! batch's records, then tells it to rebuild ([`FlowMsg::Rebuild`]) and waits for that before
//! it stores more. Actors that start or are reconfigured read storage only while the
//! supervisor waits for them too. An actor thus never counts a record twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use flowwatch_core::config::Config;
use flowwatch_core::detection::Status;
use flowwatch_core::record::{Batch, unknown_country};
use flowwatch_core::time::{Instant, local_day};
use flowwatch_core::{FlowId, FlowMap};
use flowwatch_ports::IngestOutcome;
use flowwatch_storage::{Event, FlowBuckets, FlowEntry, IngestMark, Store};
use futures_util::StreamExt;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::broadcast;

use super::flow_actor::{FlowActor, FlowArgs, FlowMsg};
use crate::metrics::METRICS;
use crate::tick_writer::TickWriter;
use crate::{Clock, WorkerSettings};

/// The supervisor actor.
pub struct FlowSupervisor;

/// What the supervisor starts from.
pub struct SupervisorArgs {
    /// The configuration document.
    pub config: Arc<Config>,
    /// Where everything is kept.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Clock,
    /// Worker settings.
    pub settings: Arc<WorkerSettings>,
    /// Where alarms go.
    pub alarms: broadcast::Sender<Event>,
    /// The partitions whose flows this supervisor runs (`None`: every flow, one worker
    /// alone). Changed by [`SupervisorMsg::Own`].
    pub ownership: Option<Ownership>,
}

/// The partitions of the flows a worker of a cluster runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// How many partitions flows are hashed into ([`FlowId::partition`]).
    pub count: u32,
    /// The partitions run here.
    pub partitions: HashSet<u32>,
}

impl Ownership {
    /// Whether `flow` is run here.
    pub fn owns(&self, flow: &FlowId) -> bool {
        self.partitions.contains(&flow.partition(self.count))
    }
}

/// The supervisor's state.
pub struct SupervisorState {
    args: SupervisorArgs,
    flows: FlowMap<ActorRef<FlowMsg>>,
    by_actor: HashMap<ActorId, FlowId>,
    first_seen: FlowMap<Instant>,
    ticks: TickWriter,
    /// The actors still taking the last delivered batch (its number, and when done the stale
    /// ones).
    taking: Option<(u64, tokio::task::JoinHandle<Vec<ActorRef<FlowMsg>>>)>,
    /// Batches delivered.
    delivered: u64,
}

/// How long a failed flow actor waits before it is started again.
const RESTART_PAUSE: Duration = Duration::from_secs(1);
/// Flow actors started at once: each reads storage while it starts, so starting them one by
/// one leaves the machine idle (100 000 flows took 80 s).
const STARTS_AT_ONCE: usize = 32;

/// Messages of the supervisor.
pub enum SupervisorMsg {
    /// Records to store and evaluate, with the batch's mark for exactly-once ingest; replies
    /// once the accepted ones are stored (an error: nothing of the batch was stored).
    Ingest(
        Batch,
        Option<IngestMark>,
        RpcReplyPort<Result<IngestOutcome, flowwatch_storage::Error>>,
    ),
    /// A flow's current status, if it has an actor.
    Status(FlowId, RpcReplyPort<Option<Status>>),
    /// A new configuration document: flows whose settings or calendar changed get them (from
    /// their next tick), disabled flows stop, enabled ones start. Replies when every actor
    /// has been told.
    Reconfigure(Arc<Config>, RpcReplyPort<()>),
    /// Starts the actor of a flow whose actor failed (sent after a pause).
    Restart(FlowId),
    /// The actors took delivered batch number `n`: if it is still the last, its stale ones
    /// are rebuilt (so no flow stays stale while no batch comes).
    Settle(u64),
    /// Runs the flows of these partitions from now on: the actors of the others stop (each
    /// after the message it is handling: its ticks are stored), those of the new ones start,
    /// caught up from storage (when partitions come, the flow registry is read again: their
    /// previous owner may have registered flows). Replies with the number of flows running, or an error when storage
    /// could not be read (then nothing changed).
    Own(
        Option<Ownership>,
        RpcReplyPort<Result<usize, flowwatch_storage::Error>>,
    ),
}

/// Starts `flow`'s actor again after a pause (its rebuild failed, or it did).
fn restart_later(myself: &ActorRef<SupervisorMsg>, flow: FlowId) {
    ractor::time::send_after(RESTART_PAUSE, myself.get_cell(), move || {
        SupervisorMsg::Restart(flow)
    });
}

impl SupervisorState {
    /// Every known flow run here (a snapshot: starting actors changes the maps).
    fn known(&self) -> Vec<FlowId> {
        self.first_seen
            .keys()
            .filter(|f| self.owned(f))
            .cloned()
            .collect()
    }

    /// Whether `flow` is run here.
    fn owned(&self, flow: &FlowId) -> bool {
        self.args.ownership.as_ref().is_none_or(|o| o.owns(flow))
    }

    /// Keeps when registered flows were first seen, those run here only: the registry holds
    /// every flow of the cluster (a worker of four would hold four times its own).
    fn remember(&mut self, registered: Vec<FlowEntry>) {
        for f in registered {
            if self.owned(&f.flow) {
                let seen = self.first_seen.entry(f.flow).or_insert(f.first_seen);
                *seen = (*seen).min(f.first_seen);
            }
        }
    }

    /// Runs the flows of `ownership` (see [`SupervisorMsg::Own`]).
    async fn own(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        ownership: Option<Ownership>,
    ) -> Result<usize, flowwatch_storage::Error> {
        // Only partitions coming here can bring flows this supervisor has not seen (registered
        // by their previous owner): the registry, every flow of the cluster, is read then only.
        let gains = match (&self.args.ownership, &ownership) {
            (Some(old), Some(new)) => {
                old.count != new.count || !new.partitions.is_subset(&old.partitions)
            }
            (Some(_), None) => true,
            (None, _) => false,
        };
        let registered = match gains {
            true => self.args.store.flows().await?,
            false => Vec::new(),
        };
        self.args.ownership = ownership;
        let owned = self.args.ownership.clone();
        self.first_seen
            .retain(|f, _| owned.as_ref().is_none_or(|o| o.owns(f)));
        self.remember(registered);
        let leaving: Vec<(FlowId, ActorRef<FlowMsg>)> = self
            .flows
            .iter()
            .filter(|(flow, _)| !self.owned(flow))
            .map(|(f, a)| (f.clone(), a.clone()))
            .collect();
        for (flow, actor) in &leaving {
            self.flows.remove(flow);
            self.by_actor.remove(&actor.get_id());
            METRICS.flows.add(-1);
        }
        let stopping = leaving
            .iter()
            .map(|(_, a)| a.stop_and_wait(Some("its partition moved".into()), None));
        futures_util::future::join_all(stopping).await;
        let config = &self.args.config;
        let starting = self
            .known()
            .into_iter()
            .filter(|f| !self.flows.contains_key(f) && config.flow_config(f).0.enabled)
            .collect();
        self.start(myself, starting).await;
        Ok(self.flows.len())
    }

    async fn reconfigure(&mut self, myself: &ActorRef<SupervisorMsg>, config: Arc<Config>) {
        let old = std::mem::replace(&mut self.args.config, config);
        let new = self.args.config.clone();
        // Whose zone, holidays or lazy days changed: once per country, not once per flow.
        fn entry<'c>(
            c: &'c Config,
            code: &str,
        ) -> Option<(&'c Option<String>, &'c Vec<String>, &'c Vec<String>)> {
            c.document()
                .countries
                .get(code)
                .map(|e| (&e.timezone, &e.holidays, &e.lazy_days))
        }
        let codes: HashSet<&String> = old
            .document()
            .countries
            .keys()
            .chain(new.document().countries.keys())
            .collect();
        let calendars_changed: HashSet<String> = codes
            .into_iter()
            .filter(|c| entry(&old, c) != entry(&new, c))
            .cloned()
            .collect();
        let mut enabled = Vec::new();
        for flow in self.known() {
            let cfg = new.flow_config(&flow).0;
            let changed =
                cfg != old.flow_config(&flow).0 || calendars_changed.contains(&flow.country);
            match (self.flows.get(&flow).cloned(), cfg.enabled) {
                (Some(actor), false) => {
                    self.flows.remove(&flow);
                    self.by_actor.remove(&actor.get_id());
                    METRICS.flows.add(-1);
                    actor.stop(Some("flow disabled".into()));
                }
                (Some(actor), true) if changed => {
                    if let Some(calendar) = new.calendar(&flow.country) {
                        // Waited for: the actor rebuilds from storage, which must not change
                        // under it.
                        let calendar = Arc::new(calendar.clone());
                        let _ = actor
                            .call(|r| FlowMsg::Reconfigure(cfg, calendar, r), None)
                            .await;
                    }
                }
                // Enabled again (or its country got a zone): started, caught up from storage.
                (None, true) => enabled.push(flow),
                _ => {}
            }
        }
        self.start(myself, enabled).await;
    }

    /// Starts the actors of registered flows, several at once: each rebuilds from storage and
    /// catches up. A flow of a country without a zone is not started (it cannot be evaluated;
    /// its traffic stays stored); one whose start failed (storage away) is tried again later.
    async fn start(&mut self, myself: &ActorRef<SupervisorMsg>, flows: Vec<FlowId>) {
        let a = &self.args;
        let starting: Vec<FlowArgs> = flows
            .into_iter()
            .filter_map(|flow| {
                let calendar = a.config.calendar(&flow.country)?;
                let first_seen = self.first_seen.get(&flow).copied().unwrap_or(Instant::MAX);
                Some(FlowArgs {
                    config: a.config.flow_config(&flow).0,
                    calendar: Arc::new(calendar.clone()),
                    store: a.store.clone(),
                    clock: a.clock,
                    settings: a.settings.clone(),
                    first_day: local_day(calendar.tz(), first_seen),
                    alarms: a.alarms.clone(),
                    ticks: self.ticks.clone(),
                    flow,
                })
            })
            .collect();
        let supervisor = myself.get_cell();
        let mut started = futures_util::stream::iter(starting)
            .map(|args| {
                let flow = args.flow.clone();
                let supervisor = supervisor.clone();
                async move {
                    (
                        flow,
                        Actor::spawn_linked(None, FlowActor, args, supervisor).await,
                    )
                }
            })
            .buffer_unordered(STARTS_AT_ONCE);
        while let Some((flow, result)) = started.next().await {
            match result {
                Ok((actor, _)) => {
                    self.by_actor.insert(actor.get_id(), flow.clone());
                    self.flows.insert(flow, actor);
                    METRICS.flows.add(1);
                }
                // Refused because this supervisor is stopping: nothing to restart.
                Err(_) if !ractor::ACTIVE_STATES.contains(&myself.get_status()) => {}
                Err(e) => {
                    tracing::warn!(%flow, "flow actor did not start: {e}");
                    restart_later(myself, flow);
                }
            }
        }
    }

    /// Stores a batch in one atomic write. Returns the outcome and, per flow to evaluate, its
    /// records (empty when the batch was a repeat).
    async fn store(
        &mut self,
        batch: Batch,
        mark: Option<IngestMark>,
    ) -> Result<(IngestOutcome, Vec<(FlowId, Vec<(Instant, u64)>)>), flowwatch_storage::Error> {
        let mut by_flow = batch.into_flows();
        let mut out = IngestOutcome::default();
        let mut batch = Vec::with_capacity(by_flow.len());
        let mut new_flows = Vec::new();
        let mut newest = Instant::MIN;
        // A flow of a country without a zone has no days, no ticks: it is refused.
        by_flow.retain(|(flow, records)| {
            if self.args.config.calendar(&flow.country).is_none() {
                let why = unknown_country(&flow.country);
                out.refused.push((flow.clone(), records.len() as u64, why));
                METRICS.ingest_refused.add(records.len() as u64);
                return false;
            }
            out.accepted += records.len() as u64;
            batch.push(FlowBuckets::of_records(flow.clone(), records));
            let earliest = records.iter().map(|r| r.0).min().unwrap_or(Instant::MAX);
            newest = records.iter().map(|r| r.0).fold(newest, Instant::max);
            match self.first_seen.get(flow) {
                Some(&seen) if seen <= earliest => {}
                _ => new_flows.push(FlowEntry {
                    flow: flow.clone(),
                    first_seen: earliest,
                    partition: 0,
                }),
            }
            true
        });
        // Registered first: a flow with stored traffic is always known (a restart finds it).
        if !new_flows.is_empty() {
            self.args.store.register_flows(new_flows.clone()).await?;
        }
        self.remember(new_flows);
        let store = &self.args.store;
        if batch.is_empty() {
            return Ok((out, Vec::new()));
        }
        if !store.add_buckets(batch, mark).await? {
            // The batch's mark was already applied: nothing is stored again.
            METRICS.ingest_repeats.add(1);
            return Ok((out, Vec::new()));
        }
        METRICS.ingest_batches.add(1);
        METRICS.ingest_records.add(out.accepted);
        METRICS.newest_record.raise(newest);
        // Disabled flows keep their traffic for when they are enabled, but are not evaluated.
        // (A flow with an actor is enabled: a reconfiguration stops the disabled ones.)
        let config = &self.args.config;
        by_flow.retain(|(flow, _)| {
            self.flows.contains_key(flow) || config.flow_config(flow).0.enabled
        });
        Ok((out, by_flow))
    }

    /// Waits until the actors took the last delivered batch; returns the stale ones.
    async fn taken(&mut self) -> Vec<ActorRef<FlowMsg>> {
        match self.taking.take() {
            Some((_, task)) => task.await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Rebuilds stale actors from storage and waits until they are done. Called only when
    /// storage holds exactly what they were handed.
    async fn rebuild(stale: Vec<ActorRef<FlowMsg>>) {
        let mut done = Vec::with_capacity(stale.len());
        for actor in stale {
            let (tx, rx) = ractor::concurrency::oneshot();
            if actor.send_message(FlowMsg::Rebuild(tx.into())).is_ok() {
                done.push(rx);
            }
        }
        // A failed rebuild stops the actor; supervision restarts it from storage.
        for rx in done {
            let _ = rx.await;
        }
    }

    /// Waits until the actors took the last delivered batch and rebuilds the stale ones: for
    /// when no batch follows (storage then holds exactly what they were handed).
    async fn settle(&mut self) {
        let stale = self.taken().await;
        Self::rebuild(stale).await;
    }

    /// Hands a stored batch to its flow actors (started if needed). The actors still taking the
    /// batch before are awaited first: those it left stale get this batch's records, then
    /// rebuild (storage now holds exactly what they were handed). The actors take this batch
    /// while the supervisor goes on; [`SupervisorMsg::Settle`] comes when they are done.
    async fn deliver(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        deliveries: Vec<(FlowId, Vec<(Instant, u64)>)>,
    ) {
        let stale = self.taken().await;
        let rebuilding: HashSet<ActorId> = stale.iter().map(|a| a.get_id()).collect();
        // Every message is sent first, then the replies are awaited in order: the actors work
        // meanwhile. (Polling 100 000 calls through `join_all` cost more than the work.)
        let mut replies = Vec::with_capacity(deliveries.len());
        let mut new = Vec::new();
        for (flow, records) in deliveries {
            let Some(actor) = self.flows.get(&flow) else {
                // A new actor rebuilds from storage, which holds these records already.
                if self.owned(&flow) {
                    new.push(flow);
                }
                continue;
            };
            let (tx, rx) = ractor::concurrency::oneshot();
            if actor
                .send_message(FlowMsg::Records(records, tx.into()))
                .is_ok()
                && !rebuilding.contains(&actor.get_id())
            {
                replies.push((actor.clone(), rx));
            }
        }
        self.start(myself, new).await;
        Self::rebuild(stale).await;
        let supervisor = myself.clone();
        self.delivered += 1;
        let n = self.delivered;
        let task = tokio::spawn(async move {
            let mut stale = Vec::new();
            // An actor that fails here (its reply port dropped) is restarted by supervision,
            // rebuilt from storage.
            for (actor, rx) in replies {
                if let Ok(Some(_)) = rx.await {
                    stale.push(actor);
                }
            }
            let _ = supervisor.send_message(SupervisorMsg::Settle(n));
            stale
        });
        self.taking = Some((n, task));
    }
}

impl Actor for FlowSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        // A worker of a cluster starts owning nothing: its plan brings the registry read.
        let registered = match &args.ownership {
            Some(o) if o.partitions.is_empty() => Vec::new(),
            _ => args.store.flows().await?,
        };
        let mut state = SupervisorState {
            ticks: TickWriter::start(args.store.clone()),
            taking: None,
            delivered: 0,
            args,
            flows: FlowMap::default(),
            by_actor: HashMap::new(),
            first_seen: FlowMap::default(),
        };
        state.remember(registered);
        Ok(state)
    }

    /// Starts an actor for every known, enabled flow: each catches up the ticks that were due
    /// while nobody evaluated it (silence included).
    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let enabled = state
            .known()
            .into_iter()
            .filter(|flow| state.args.config.flow_config(flow).0.enabled)
            .collect();
        state.start(&myself, enabled).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Ingest(records, mark, reply) => match state.store(records, mark).await {
                Ok((outcome, deliveries)) => {
                    let _ = reply.send(Ok(outcome));
                    state.deliver(&myself, deliveries).await;
                }
                Err(why) => {
                    let _ = reply.send(Err(why));
                }
            },
            SupervisorMsg::Restart(flow) => {
                let enabled = state.args.config.flow_config(&flow).0.enabled;
                if enabled
                    && state.owned(&flow)
                    && !state.flows.contains_key(&flow)
                    && state.first_seen.contains_key(&flow)
                {
                    // On failure `start` tries again later.
                    state.start(&myself, vec![flow]).await;
                }
            }
            SupervisorMsg::Settle(n) => {
                // A later batch settles its predecessors when it is delivered.
                if state.taking.as_ref().is_some_and(|t| t.0 == n) {
                    state.settle().await;
                }
            }
            SupervisorMsg::Reconfigure(config, reply) => {
                // Actors rebuild on a new configuration: they first take what they were handed.
                state.settle().await;
                state.reconfigure(&myself, config).await;
                let _ = reply.send(());
            }
            SupervisorMsg::Own(ownership, reply) => {
                // The leaving actors first take what they were handed.
                state.settle().await;
                let _ = reply.send(state.own(&myself, ownership).await);
            }
            SupervisorMsg::Status(flow, reply) => {
                let status = match state.flows.get(&flow) {
                    Some(a) => match a.call(FlowMsg::Status, None).await {
                        Ok(ractor::rpc::CallResult::Success(s)) => Some(s),
                        _ => None,
                    },
                    None => None,
                };
                let _ = reply.send(status);
            }
        }
        Ok(())
    }

    /// A drained supervisor stops with every batch taken: stale flows are rebuilt first.
    async fn post_stop(
        &self,
        _: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.settle().await;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (id, failed) = match &event {
            SupervisionEvent::ActorTerminated(cell, ..) => (cell.get_id(), false),
            SupervisionEvent::ActorFailed(cell, _) => (cell.get_id(), true),
            _ => return Ok(()),
        };
        if let Some(flow) = state.by_actor.remove(&id) {
            state.flows.remove(&flow);
            METRICS.flows.add(-1);
            if failed {
                METRICS.actor_failures.add(1);
                // Typically storage was away: the actor is started again, rebuilt from storage.
                restart_later(&myself, flow);
            }
        }
        Ok(())
    }
}

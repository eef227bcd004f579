//! The flow supervisor: one per worker, a thin shell around [`Supervision`], the protocol's
//! pure state machine (read its module documentation: batches, stale actors, rebuilds). It
//! feeds the machine its messages, the actors' replies and supervision events, and carries out
//! the machine's commands: it stores each ingested batch in one atomic write (so a batch is
//! stored whole or not at all, and a marked batch once), hands the records to the flow actors,
//! spawns linked ones, tells them to rebuild, reconfigure or stop. It keeps the actors in the
//! machine's map of flow → actor, never in ractor's global registry.
//!
//! The configuration in force is followed on its watch channel: a version published is put
//! in force before the next batch is stored (a configuration saved over HTTP applies to the
//! very next ingest), and also when no batch comes (a listener tells the supervisor).

use std::sync::Arc;
use std::time::Duration;

use flowwatch_core::FlowId;
use flowwatch_core::config::Config;
use flowwatch_core::detection::Status;
use flowwatch_core::record::Batch;
use flowwatch_core::time::Instant;
use flowwatch_ports::{InForce, IngestOutcome};
use flowwatch_storage::{Event, FlowBuckets, FlowEntry, IngestMark, Store};
use futures_util::StreamExt;
use ractor::concurrency::OneshotReceiver;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::{broadcast, watch};

use super::flow_actor::{FlowActor, FlowArgs, FlowMsg};
use crate::metrics::METRICS;
use crate::supervision::{Command, FlowStart, Ownership, Records, Supervision, Wait};
use crate::tick_writer::TickWriter;
use crate::{Clock, WorkerSettings};

/// The supervisor actor.
pub struct FlowSupervisor;

/// What the supervisor starts from.
pub struct SupervisorArgs {
    /// The configuration in force, followed: every version published is put in force (see
    /// the module documentation); [`fixed`] for one that never changes.
    pub config: watch::Receiver<InForce>,
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

/// A configuration in force that never changes (tests, load drivers).
pub fn fixed(config: Config) -> watch::Receiver<InForce> {
    watch::channel(InForce {
        version: 0,
        config: Arc::new(config),
    })
    .1
}

/// A flow actor as the machine knows it.
type Flow = ActorRef<FlowMsg>;

/// The supervisor's state.
pub struct SupervisorState {
    machine: Supervision<Flow>,
    saved: watch::Receiver<InForce>,
    store: Arc<dyn Store>,
    clock: Clock,
    settings: Arc<WorkerSettings>,
    alarms: broadcast::Sender<Event>,
    ticks: TickWriter,
    /// The replies to the last delivered batch: its number, and the task that gathers the
    /// stale actors (it sends [`SupervisorMsg::Settle`] when done).
    taking: Option<(u64, tokio::task::JoinHandle<Vec<Flow>>)>,
    /// Flow actors counted in the `flows` gauge.
    counted: usize,
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
    /// Puts the newest configuration published in force if it is not yet: flows whose
    /// settings or calendar changed get them (from their next tick), disabled flows stop,
    /// enabled ones start. Replies when every actor has been told.
    Reconfigure(RpcReplyPort<()>),
    /// Starts the actor of a flow whose actor failed (sent after a pause).
    Restart(FlowId),
    /// The actors took delivered batch number `n`: if it is still the last, its stale ones
    /// are rebuilt (so no flow stays stale while no batch comes).
    Settle(u64),
    /// Runs the flows of these partitions from now on: the actors of the others stop (each
    /// after the message it is handling: its ticks are stored), those of the new ones start,
    /// caught up from storage (when partitions come, the flow registry is read again: their
    /// previous owner may have registered flows). Replies with the number of flows running,
    /// or an error when storage could not be read (then nothing changed).
    Own(
        Option<Ownership>,
        RpcReplyPort<Result<usize, flowwatch_storage::Error>>,
    ),
}

impl SupervisorState {
    /// Carries out the machine's commands, feeding it their answers, until it is ready for
    /// the next message.
    async fn run(&mut self, myself: &ActorRef<SupervisorMsg>) {
        loop {
            let commands = self.machine.commands();
            if commands.is_empty() {
                match self.machine.wait() {
                    Wait::Taken(n) => {
                        let stale = match self.taking.take() {
                            Some((batch, task)) if batch == n => task.await.unwrap_or_default(),
                            // Cannot be: every delivered batch has its task.
                            _ => Vec::new(),
                        };
                        self.machine.taken(n, stale);
                        continue;
                    }
                    // Every answer is fed while its command is carried out.
                    Wait::Ready | Wait::Answers => break,
                }
            }
            for command in commands {
                self.carry_out(myself, command).await;
            }
        }
        let running = self.machine.running();
        METRICS.flows.add(running as i64 - self.counted as i64);
        self.counted = running;
    }

    async fn carry_out(&mut self, myself: &ActorRef<SupervisorMsg>, command: Command<Flow>) {
        match command {
            Command::Deliver { batch, deliveries } => {
                // Every message is sent first, then the replies are awaited in order, in a
                // task: the actors work and the supervisor stores the next batch meanwhile.
                // (Polling 100 000 calls through `join_all` cost more than the work.)
                let mut replies = Vec::with_capacity(deliveries.len());
                for d in deliveries {
                    let (tx, rx) = ractor::concurrency::oneshot();
                    let sent = d.actor.send_message(FlowMsg::Records(d.records, tx.into()));
                    if sent.is_ok() && d.answer {
                        replies.push((d.actor, rx));
                    }
                }
                let supervisor = myself.clone();
                let task = tokio::spawn(async move {
                    let mut stale = Vec::new();
                    // An actor that fails here (its reply port dropped) is restarted by
                    // supervision, rebuilt from storage.
                    for (actor, rx) in replies {
                        if let Ok(Some(_)) = rx.await {
                            stale.push(actor);
                        }
                    }
                    let _ = supervisor.send_message(SupervisorMsg::Settle(batch));
                    stale
                });
                self.taking = Some((batch, task));
            }
            Command::Start(starts) => self.start(myself, starts).await,
            Command::Rebuild(actors) => {
                let asked = actors.iter().map(|a| ask(a, FlowMsg::Rebuild));
                self.await_answers(asked.collect()).await;
            }
            Command::Reconfigure(changes) => {
                let asked = changes
                    .into_iter()
                    .map(|c| ask(&c.actor, |r| FlowMsg::Reconfigure(c.config, c.calendar, r)));
                self.await_answers(asked.collect()).await;
            }
            Command::Stop(actors) => {
                for actor in actors {
                    actor.stop(Some("flow disabled".into()));
                }
            }
            Command::Leave(actors) => {
                let stopping = actors
                    .iter()
                    .map(|a| a.stop_and_wait(Some("its partition moved".into()), None));
                futures_util::future::join_all(stopping).await;
                for _ in actors {
                    self.machine.answered();
                }
            }
            Command::RestartLater(flow) => {
                ractor::time::send_after(RESTART_PAUSE, myself.get_cell(), move || {
                    SupervisorMsg::Restart(flow)
                });
            }
        }
    }

    /// Waits for the answers to messages sent (a failed rebuild stops the actor: supervision
    /// restarts it from storage); one not sent is answered at once.
    async fn await_answers(&mut self, asked: Vec<Option<OneshotReceiver<()>>>) {
        let mut waiting = Vec::with_capacity(asked.len());
        for a in asked {
            match a {
                Some(rx) => waiting.push(rx),
                None => self.machine.answered(),
            }
        }
        for rx in waiting {
            let _ = rx.await;
            self.machine.answered();
        }
    }

    /// Starts flow actors, several at once: each rebuilds from storage and catches up. One
    /// that does not start (storage away) is tried again later.
    async fn start(&mut self, myself: &ActorRef<SupervisorMsg>, starts: Vec<FlowStart>) {
        let supervisor = myself.get_cell();
        let args = starts.into_iter().map(|s| FlowArgs {
            flow: s.flow,
            config: s.config,
            calendar: s.calendar,
            first_day: s.first_day,
            store: self.store.clone(),
            clock: self.clock,
            settings: self.settings.clone(),
            alarms: self.alarms.clone(),
            ticks: self.ticks.clone(),
        });
        let mut started = futures_util::stream::iter(args.collect::<Vec<_>>())
            .map(|args| {
                let flow = args.flow.clone();
                let supervisor = supervisor.clone();
                async move {
                    let spawned = Actor::spawn_linked(None, FlowActor, args, supervisor).await;
                    (flow, spawned)
                }
            })
            .buffer_unordered(STARTS_AT_ONCE);
        while let Some((flow, result)) = started.next().await {
            match result {
                Ok((actor, _)) => self.machine.started(flow, actor),
                Err(e) => {
                    // Refused because this supervisor is stopping: its restart goes nowhere.
                    if ractor::ACTIVE_STATES.contains(&myself.get_status()) {
                        tracing::warn!(%flow, "flow actor did not start: {e}");
                    }
                    self.machine.start_failed(flow);
                }
            }
        }
    }

    /// Puts the newest configuration published in force, if it is not yet.
    async fn follow_config(&mut self, myself: &ActorRef<SupervisorMsg>) {
        if self.saved.has_changed().unwrap_or(false) {
            let config = self.saved.borrow_and_update().config.clone();
            self.machine.reconfigure(config);
            self.run(myself).await;
        }
    }

    /// Stores a batch in one atomic write (its new flows registered first). Returns the
    /// outcome and the records stored per flow (none when the batch was a repeat).
    async fn store(
        &mut self,
        batch: Batch,
        mark: Option<IngestMark>,
    ) -> Result<(IngestOutcome, Vec<(FlowId, Records)>), flowwatch_storage::Error> {
        let admission = self.machine.admit(batch);
        let (outcome, flows) = (admission.outcome, admission.flows);
        let refused: u64 = outcome.refused.iter().map(|r| r.1).sum();
        METRICS.ingest_refused.add(refused);
        if !admission.register.is_empty() {
            let entries = admission
                .register
                .iter()
                .map(|(flow, first_seen)| FlowEntry {
                    flow: flow.clone(),
                    first_seen: *first_seen,
                    partition: 0,
                });
            self.store.register_flows(entries.collect()).await?;
        }
        self.machine.remember(admission.register);
        if flows.is_empty() && mark.is_none() {
            return Ok((outcome, Vec::new()));
        }
        let buckets = flows
            .iter()
            .map(|(flow, records)| FlowBuckets::of_records(flow.clone(), records))
            .collect();
        if !self.store.add_buckets(buckets, mark).await? {
            // The batch's mark was already applied: nothing is stored again.
            METRICS.ingest_repeats.add(1);
            return Ok((outcome, Vec::new()));
        }
        let newest = flows
            .iter()
            .flat_map(|(_, records)| records.iter().map(|r| r.0))
            .fold(Instant::MIN, Instant::max);
        METRICS.ingest_batches.add(1);
        METRICS.ingest_records.add(outcome.accepted);
        METRICS.newest_record.raise(newest);
        Ok((outcome, flows))
    }
}

/// Sends `actor` the message `msg` builds around a reply port; the reply's receiver, or
/// `None` when the actor is gone.
fn ask(actor: &Flow, msg: impl FnOnce(RpcReplyPort<()>) -> FlowMsg) -> Option<OneshotReceiver<()>> {
    let (tx, rx) = ractor::concurrency::oneshot();
    actor.send_message(msg(tx.into())).ok().map(|()| rx)
}

/// Tells `supervisor` whenever a new configuration is published on `saved` (a batch that
/// comes first takes it itself). Ends when the sender or the supervisor is gone.
async fn listen(mut saved: watch::Receiver<InForce>, supervisor: ActorRef<SupervisorMsg>) {
    while saved.changed().await.is_ok() {
        saved.borrow_and_update();
        if let Err(e) = supervisor.call(SupervisorMsg::Reconfigure, None).await {
            if !ractor::ACTIVE_STATES.contains(&supervisor.get_status()) {
                return; // stopping: the next start reads the saved configuration
            }
            tracing::error!("the worker did not take the new configuration: {e}");
        }
    }
}

impl Actor for FlowSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _: ActorRef<SupervisorMsg>,
        mut args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let config = args.config.borrow_and_update().config.clone();
        let mut machine = Supervision::new(config, args.ownership);
        // A worker of a cluster starts owning nothing: its plan brings the registry read.
        if !machine.owns_nothing() {
            let registered = args.store.flows().await?;
            machine.remember(registered.into_iter().map(|f| (f.flow, f.first_seen)));
        }
        Ok(SupervisorState {
            machine,
            saved: args.config,
            ticks: TickWriter::start(args.store.clone()),
            store: args.store,
            clock: args.clock,
            settings: args.settings,
            alarms: args.alarms,
            taking: None,
            counted: 0,
        })
    }

    /// Starts an actor for every known, enabled flow: each catches up the ticks that were due
    /// while nobody evaluated it (silence included). Then follows the configuration.
    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.machine.start_known();
        state.run(&myself).await;
        tokio::spawn(listen(state.saved.clone(), myself));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Ingest(records, mark, reply) => {
                // A configuration saved before this batch was sent applies to it.
                state.follow_config(&myself).await;
                match state.store(records, mark).await {
                    Ok((outcome, stored)) => {
                        let _ = reply.send(Ok(outcome));
                        state.machine.stored(stored);
                    }
                    Err(why) => {
                        let _ = reply.send(Err(why));
                    }
                }
            }
            SupervisorMsg::Restart(flow) => state.machine.restart(flow),
            SupervisorMsg::Settle(n) => state.machine.settle(Some(n)),
            SupervisorMsg::Reconfigure(reply) => {
                state.follow_config(&myself).await;
                let _ = reply.send(());
            }
            SupervisorMsg::Own(ownership, reply) => {
                let registered = match state.machine.gains(&ownership) {
                    true => match state.store.flows().await {
                        Ok(flows) => flows.into_iter().map(|f| (f.flow, f.first_seen)).collect(),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            return Ok(());
                        }
                    },
                    false => Vec::new(),
                };
                state.machine.own(ownership, registered);
                state.run(&myself).await;
                let _ = reply.send(Ok(state.machine.running()));
            }
            SupervisorMsg::Status(flow, reply) => {
                let status = match state.machine.actor(&flow) {
                    Some(a) => match a.call(FlowMsg::Status, None).await {
                        Ok(ractor::rpc::CallResult::Success(s)) => Some(s),
                        _ => None,
                    },
                    None => None,
                };
                let _ = reply.send(status);
            }
        }
        state.run(&myself).await;
        Ok(())
    }

    /// A drained supervisor stops with every batch taken: stale flows are rebuilt first.
    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.machine.settle(None);
        state.run(&myself).await;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failed) = match event {
            SupervisionEvent::ActorTerminated(cell, ..) => (cell, false),
            SupervisionEvent::ActorFailed(cell, _) => (cell, true),
            _ => return Ok(()),
        };
        let running = state.machine.running();
        state.machine.gone(&Flow::from(cell), failed);
        if failed && state.machine.running() < running {
            METRICS.actor_failures.add(1);
        }
        state.run(&myself).await;
        Ok(())
    }
}

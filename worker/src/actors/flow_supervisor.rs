//! The flow supervisor: one per worker. It keeps its own map of flow → actor (never ractor's
//! global registry), spawns a linked flow actor on a flow's first record, routes records, and
//! forgets an actor that died (the next record respawns it, rebuilt from storage).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use flowwatch_core::FlowId;
use flowwatch_core::config::Config;
use flowwatch_core::detection::Status;
use flowwatch_core::record::{Record, unknown_country};
use flowwatch_core::time::{Instant, local_day};
use flowwatch_storage::{Event, FlowEntry, Store};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::broadcast;

use super::flow_actor::{FlowActor, FlowArgs, FlowMsg, store_records};
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
}

/// The supervisor's state.
pub struct SupervisorState {
    args: SupervisorArgs,
    flows: HashMap<FlowId, ActorRef<FlowMsg>>,
    by_actor: HashMap<ActorId, FlowId>,
    first_seen: HashMap<FlowId, Instant>,
}

/// How an ingest went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Records stored.
    pub accepted: u64,
    /// Records refused, with the reason (e.g. a country without a zone).
    pub refused: Vec<(FlowId, String)>,
}

/// Messages of the supervisor.
pub enum SupervisorMsg {
    /// Records to store and evaluate; replies once the accepted ones are stored.
    Ingest(Vec<Record>, RpcReplyPort<IngestOutcome>),
    /// A flow's current status, if it has an actor.
    Status(FlowId, RpcReplyPort<Option<Status>>),
    /// A new configuration document: flows whose settings or calendar changed get them (from
    /// their next tick), disabled flows stop, enabled ones start. Replies when every actor
    /// has been told.
    Reconfigure(Arc<Config>, RpcReplyPort<()>),
}

impl SupervisorState {
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
        let known: Vec<(FlowId, Instant)> = self
            .first_seen
            .iter()
            .map(|(f, &t)| (f.clone(), t))
            .collect();
        for (flow, first_seen) in known {
            let cfg = new.flow_config(&flow).0;
            let changed =
                cfg != old.flow_config(&flow).0 || calendars_changed.contains(&flow.country);
            match (self.flows.get(&flow).cloned(), cfg.enabled) {
                (Some(actor), false) => {
                    self.flows.remove(&flow);
                    self.by_actor.remove(&actor.get_id());
                    actor.stop(Some("flow disabled".into()));
                }
                (Some(actor), true) if changed => {
                    if let Some(calendar) = new.calendar(&flow.country) {
                        let _ = actor
                            .send_message(FlowMsg::Reconfigure(cfg, Arc::new(calendar.clone())));
                    }
                }
                (None, true) => {
                    // Enabled again (or its country got a zone): start it, caught up from storage.
                    let _ = self.spawn(myself, &flow, first_seen, Vec::new()).await;
                }
                _ => {}
            }
        }
    }

    /// Starts the actor of `flow` (first seen at `earliest`), storing `initial` records
    /// before its first evaluation.
    async fn spawn(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        flow: &FlowId,
        earliest: Instant,
        initial: Vec<(Instant, u64)>,
    ) -> Result<ActorRef<FlowMsg>, String> {
        let a = &self.args;
        let calendar = a
            .config
            .calendar(&flow.country)
            .ok_or_else(|| unknown_country(&flow.country))?;
        let first_seen = self
            .first_seen
            .get(flow)
            .map_or(earliest, |&t| t.min(earliest));
        a.store
            .register_flows(vec![FlowEntry {
                flow: flow.clone(),
                first_seen,
                partition: 0,
            }])
            .await
            .map_err(|e| e.to_string())?;
        self.first_seen.insert(flow.clone(), first_seen);
        let args = FlowArgs {
            flow: flow.clone(),
            config: a.config.flow_config(flow).0,
            calendar: Arc::new(calendar.clone()),
            store: a.store.clone(),
            clock: a.clock,
            settings: a.settings.clone(),
            first_day: local_day(calendar.tz(), first_seen),
            alarms: a.alarms.clone(),
            initial,
        };
        let (actor, _) = Actor::spawn_linked(None, FlowActor, args, myself.get_cell())
            .await
            .map_err(|e| e.to_string())?;
        self.by_actor.insert(actor.get_id(), flow.clone());
        self.flows.insert(flow.clone(), actor.clone());
        Ok(actor)
    }

    async fn ingest(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        records: Vec<Record>,
    ) -> IngestOutcome {
        let mut by_flow: BTreeMap<FlowId, Vec<(Instant, u64)>> = BTreeMap::new();
        for r in records {
            by_flow.entry(r.flow).or_default().push((r.time, r.bytes));
        }
        let mut out = IngestOutcome::default();
        for (flow, records) in by_flow {
            let n = records.len() as u64;
            let result = if self.args.config.flow_config(&flow).0.enabled {
                match self.flows.get(&flow) {
                    Some(actor) => match actor
                        .call(|reply| FlowMsg::Records(records, reply), None)
                        .await
                    {
                        Ok(ractor::rpc::CallResult::Success(r)) => r,
                        Ok(other) => Err(format!("flow actor did not answer: {other:?}")),
                        Err(e) => Err(format!("flow actor unreachable: {e}")),
                    },
                    None => {
                        let earliest = records
                            .iter()
                            .map(|r| r.0)
                            .min()
                            .expect("a flow has records here");
                        self.spawn(myself, &flow, earliest, records)
                            .await
                            .map(|_| ())
                    }
                }
            } else {
                // A disabled flow is not evaluated, but its traffic is kept for when it is enabled.
                store_records(self.args.store.as_ref(), &flow, &records)
                    .await
                    .map_err(|e| e.to_string())
            };
            match result {
                Ok(()) => out.accepted += n,
                Err(why) => out.refused.push((flow, why)),
            }
        }
        out
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
        let first_seen = args
            .store
            .flows()
            .await?
            .into_iter()
            .map(|f| (f.flow, f.first_seen))
            .collect();
        Ok(SupervisorState {
            args,
            flows: HashMap::new(),
            by_actor: HashMap::new(),
            first_seen,
        })
    }

    /// Starts an actor for every known, enabled flow: each catches up the ticks that were due
    /// while nobody evaluated it (silence included).
    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let known: Vec<(FlowId, Instant)> = state
            .first_seen
            .iter()
            .map(|(f, &t)| (f.clone(), t))
            .collect();
        for (flow, first_seen) in known {
            if state.args.config.flow_config(&flow).0.enabled {
                // A flow of a country without a zone cannot be evaluated; it stays stored.
                let _ = state.spawn(&myself, &flow, first_seen, Vec::new()).await;
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Ingest(records, reply) => {
                let outcome = state.ingest(&myself, records).await;
                let _ = reply.send(outcome);
            }
            SupervisorMsg::Reconfigure(config, reply) => {
                state.reconfigure(&myself, config).await;
                let _ = reply.send(());
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

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let dead = match &event {
            SupervisionEvent::ActorTerminated(cell, ..)
            | SupervisionEvent::ActorFailed(cell, _) => Some(cell.get_id()),
            _ => None,
        };
        if let Some(id) = dead
            && let Some(flow) = state.by_actor.remove(&id)
        {
            state.flows.remove(&flow);
        }
        Ok(())
    }
}

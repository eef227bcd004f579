//! The flow supervisor's protocol as a pure state machine: which flow actor is handed which
//! stored records, when a stale actor rebuilds, which actors start and stop, and when the
//! supervisor may take its next message. No actors, storage or clock: the supervisor
//! ([`crate::actors::flow_supervisor`]) tells it what happened and carries out the
//! [`Command`]s it gives, so every rule is tested here, over arbitrary interleavings of
//! batches, replies, failures, reconfigurations and ownership changes (`supervision/tests.rs`).
//!
//! Rules:
//! - The supervisor is the only writer of its flows' traffic. It stores batch N+1 while the
//!   actors still take batch N (the two overlap: ingest does not wait for 100 000 actors), so
//!   storage may hold records an actor has not been handed yet. An actor must therefore never
//!   read storage while that can be so.
//! - An actor that takes a late record turns *stale* and says so in its reply. Before batch
//!   N+1 is handed out, every reply to batch N is in ([`Wait::Taken`]); the stale actors get
//!   batch N+1's records first, then [`Command::Rebuild`], and the supervisor waits for the
//!   rebuilds ([`Wait::Answers`]) before it stores anything more: storage then holds exactly
//!   what they were handed. An actor thus never counts a record twice, and misses none.
//! - A flow without an actor gets no records: its new actor starts from storage, which holds
//!   them already. Actors start only while nothing stored waits to be handed out.
//! - A settle (no batch follows), a reconfiguration and an ownership change first wait for
//!   the last batch's replies and rebuild the stale actors; actors that rebuild for new
//!   settings, stop or start do so only then, while the supervisor waits for them.
//! - A flow whose country has no zone is refused (it has no days, no ticks); a disabled flow
//!   keeps its traffic stored but has no actor. An actor that fails, or does not start, is
//!   started again after a pause, from storage.
//!
//! Every input is a method; `A` is the shell's handle of a flow actor (an `ActorRef` in the
//! supervisor, a number in the tests).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use flowwatch_core::calendar::CountryCalendar;
use flowwatch_core::config::{Config, FlowConfig};
use flowwatch_core::record::{Batch, unknown_country};
use flowwatch_core::time::{EpochDay, Instant, local_day};
use flowwatch_core::{FlowId, FlowMap};
use flowwatch_ports::IngestOutcome;

/// Records of one flow: (time, bytes).
pub type Records = Vec<(Instant, u64)>;

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

/// What the machine waits for before the supervisor may take its next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Nothing: the next message.
    Ready,
    /// Every reply to delivered batch number `n` ([`Supervision::taken`]).
    Taken(u64),
    /// The answers to the commands given ([`Supervision::started`],
    /// [`Supervision::start_failed`], [`Supervision::answered`]).
    Answers,
}

/// What a batch brings, decided before it is stored.
#[derive(Debug, Default)]
pub struct Admission {
    /// The answer to the ingest once the batch is stored: accepted and refused records.
    pub outcome: IngestOutcome,
    /// Flows to register before the batch is stored (new, or seen earlier than known), with
    /// their first record; [`Supervision::remember`] them once registered.
    pub register: Vec<(FlowId, Instant)>,
    /// The accepted records, per flow, to store in one write.
    pub flows: Vec<(FlowId, Records)>,
}

/// Stored records handed to a flow actor.
#[derive(Debug)]
pub struct Delivery<A> {
    /// The flow's actor.
    pub actor: A,
    /// Its records of the batch.
    pub records: Records,
    /// Whether its reply counts for [`Supervision::taken`] (not when the actor rebuilds
    /// right after: the rebuild is waited for instead).
    pub answer: bool,
}

/// A flow actor to start: it reads its traffic and ticks from storage and catches up.
#[derive(Debug)]
pub struct FlowStart {
    /// The flow.
    pub flow: FlowId,
    /// Its effective configuration.
    pub config: FlowConfig,
    /// Its country's calendar.
    pub calendar: Arc<CountryCalendar>,
    /// The local day of its first record.
    pub first_day: EpochDay,
}

/// New settings or calendar for a running flow actor: it rebuilds from storage.
#[derive(Debug)]
pub struct FlowChange<A> {
    /// The flow's actor.
    pub actor: A,
    /// Its effective configuration.
    pub config: FlowConfig,
    /// Its country's calendar.
    pub calendar: Arc<CountryCalendar>,
}

/// What the supervisor carries out, in the order given.
#[derive(Debug)]
pub enum Command<A> {
    /// Hand each actor its records of delivered batch number `batch`; the replies that count
    /// come back together through [`Supervision::taken`] (the supervisor goes on meanwhile).
    Deliver {
        /// The batch's number.
        batch: u64,
        /// Per actor, its records.
        deliveries: Vec<Delivery<A>>,
    },
    /// Start these flows' actors; each answers [`Supervision::started`] or
    /// [`Supervision::start_failed`].
    Start(Vec<FlowStart>),
    /// Tell these stale actors to rebuild from storage; each answers
    /// [`Supervision::answered`] (also when it is gone).
    Rebuild(Vec<A>),
    /// Give these actors new settings; each rebuilds and answers [`Supervision::answered`].
    Reconfigure(Vec<FlowChange<A>>),
    /// Stop these actors (their flows were disabled); nothing to answer.
    Stop(Vec<A>),
    /// Stop these actors after their current message (their partitions moved); each answers
    /// [`Supervision::answered`] once stopped.
    Leave(Vec<A>),
    /// Call [`Supervision::restart`] for this flow after a pause.
    RestartLater(FlowId),
}

/// What waits for the actors to take the last batch.
#[derive(Debug)]
enum Job {
    /// A stored batch to hand out.
    Deliver(Vec<(FlowId, Records)>),
    /// No batch follows: the stale actors rebuild.
    Settle,
    /// A new configuration document.
    Reconfigure(Arc<Config>),
    /// New partitions, with the flow registry when they bring flows.
    Own(Option<Ownership>, Vec<(FlowId, Instant)>),
}

/// The last delivered batch.
#[derive(Debug)]
struct Taking<A> {
    batch: u64,
    /// Once every reply is in: the actors it left stale.
    stale: Option<Vec<A>>,
}

/// One supervisor's flows and its protocol; see the module documentation.
#[derive(Debug)]
pub struct Supervision<A> {
    config: Arc<Config>,
    /// The partitions run here (`None`: every flow).
    ownership: Option<Ownership>,
    /// Every known flow run here, with its first record.
    first_seen: FlowMap<Instant>,
    /// The running actors.
    actors: FlowMap<A>,
    flow_of: HashMap<A, FlowId>,
    /// Batches delivered.
    batch: u64,
    taking: Option<Taking<A>>,
    /// The job under way, waiting for the last batch to be taken or for answers.
    job: Option<Job>,
    /// Answers outstanding to the commands given.
    answers: usize,
    commands: Vec<Command<A>>,
}

impl<A: Clone + Eq + Hash> Supervision<A> {
    /// A supervisor's machine with no flow known yet, running the flows of `ownership`
    /// (`None`: every flow).
    pub fn new(config: Arc<Config>, ownership: Option<Ownership>) -> Supervision<A> {
        Supervision {
            config,
            ownership,
            first_seen: FlowMap::default(),
            actors: FlowMap::default(),
            flow_of: HashMap::new(),
            batch: 0,
            taking: None,
            job: None,
            answers: 0,
            commands: Vec::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Whether no partition is run here (a worker of a cluster before its first plan): the
    /// flow registry, every flow of the cluster, need not be read.
    pub fn owns_nothing(&self) -> bool {
        self.ownership
            .as_ref()
            .is_some_and(|o| o.partitions.is_empty())
    }

    /// The actor of `flow`, if it runs.
    pub fn actor(&self, flow: &FlowId) -> Option<&A> {
        self.actors.get(flow)
    }

    /// How many flow actors run.
    pub fn running(&self) -> usize {
        self.actors.len()
    }

    /// What the machine waits for.
    pub fn wait(&self) -> Wait {
        if self.answers > 0 {
            return Wait::Answers;
        }
        match (&self.job, &self.taking) {
            (Some(_), Some(Taking { batch, stale: None })) => Wait::Taken(*batch),
            _ => Wait::Ready,
        }
    }

    /// The commands given since last asked, in order.
    pub fn commands(&mut self) -> Vec<Command<A>> {
        std::mem::take(&mut self.commands)
    }

    /// Keeps when registered flows were first seen, those run here only: the registry holds
    /// every flow of the cluster (a worker of four would hold four times its own).
    pub fn remember(&mut self, registered: impl IntoIterator<Item = (FlowId, Instant)>) {
        for (flow, first_seen) in registered {
            if self.owned(&flow) {
                let seen = self.first_seen.entry(flow).or_insert(first_seen);
                *seen = (*seen).min(first_seen);
            }
        }
    }

    /// Starts an actor for every known, enabled flow (the supervisor starts): each catches up
    /// the ticks that were due while nobody evaluated it.
    pub fn start_known(&mut self) {
        let enabled = self
            .known()
            .into_iter()
            .filter(|flow| self.config.flow_config(flow).0.enabled)
            .collect();
        self.start(enabled);
    }

    /// What a batch brings, with the configuration in force: a flow of a country without a
    /// zone is refused; the others are accepted, and those not known from this early are to
    /// be registered first (a flow with stored traffic is always known: a restart finds it).
    pub fn admit(&self, batch: Batch) -> Admission {
        let mut admission = Admission::default();
        for (flow, records) in batch.into_flows() {
            let count = records.len() as u64;
            if self.config.calendar(&flow.country).is_none() {
                let why = unknown_country(&flow.country);
                admission.outcome.refused.push((flow, count, why));
                continue;
            }
            admission.outcome.accepted += count;
            let earliest = records.iter().map(|r| r.0).min().unwrap_or(Instant::MAX);
            match self.first_seen.get(&flow) {
                Some(&seen) if seen <= earliest => {}
                _ => admission.register.push((flow.clone(), earliest)),
            }
            admission.flows.push((flow, records));
        }
        admission
    }

    /// A batch was stored (`flows`: its records; none when it was a repeat or all refused):
    /// hands it out once the actors took the one before.
    pub fn stored(&mut self, mut flows: Vec<(FlowId, Records)>) {
        // Disabled flows keep their traffic for when they are enabled, but are not evaluated.
        // (A flow with an actor is enabled: a reconfiguration stops the disabled ones.)
        let config = &self.config;
        let actors = &self.actors;
        flows.retain(|(flow, _)| actors.contains_key(flow) || config.flow_config(flow).0.enabled);
        self.begin(Job::Deliver(flows));
    }

    /// Every reply to delivered batch number `batch` is in; `stale`: the actors that turned
    /// stale (an actor that failed meanwhile is not: it restarts from storage).
    pub fn taken(&mut self, batch: u64, stale: Vec<A>) {
        if let Some(t) = &mut self.taking
            && t.batch == batch
            && t.stale.is_none()
        {
            t.stale = Some(stale);
            self.advance();
        }
    }

    /// No batch follows: once the actors took the last one, the stale ones rebuild (so no
    /// flow stays stale while no batch comes). `batch`: only if it is still the last one
    /// delivered (a later batch settles its predecessors); `None`: in any case (stopping).
    pub fn settle(&mut self, batch: Option<u64>) {
        let last = self.taking.as_ref().map(|t| t.batch);
        if batch.is_none() || batch == last {
            self.begin(Job::Settle);
        }
    }

    /// A new configuration document: flows whose settings or calendar changed get them (from
    /// their next tick, rebuilt from storage), disabled flows stop, enabled ones start.
    pub fn reconfigure(&mut self, config: Arc<Config>) {
        self.begin(Job::Reconfigure(config));
    }

    /// Whether running the flows of `ownership` can bring flows not known here (registered by
    /// the partitions' previous owner): then the registry is read for [`Supervision::own`].
    pub fn gains(&self, ownership: &Option<Ownership>) -> bool {
        match (&self.ownership, ownership) {
            (Some(old), Some(new)) => {
                old.count != new.count || !new.partitions.is_subset(&old.partitions)
            }
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Runs the flows of `ownership` from now on (`registered`: the flow registry when
    /// [`Supervision::gains`] says so): the actors of the others leave (each after its
    /// message: its ticks are stored), those of the new ones start, caught up from storage.
    pub fn own(&mut self, ownership: Option<Ownership>, registered: Vec<(FlowId, Instant)>) {
        self.begin(Job::Own(ownership, registered));
    }

    /// Starts `flow`'s actor again (after a pause) if it is still to run and has none.
    pub fn restart(&mut self, flow: FlowId) {
        if self.config.flow_config(&flow).0.enabled
            && self.owned(&flow)
            && !self.actors.contains_key(&flow)
            && self.first_seen.contains_key(&flow)
        {
            self.start(vec![flow]);
        }
    }

    /// `flow`'s actor started.
    pub fn started(&mut self, flow: FlowId, actor: A) {
        self.flow_of.insert(actor.clone(), flow.clone());
        self.actors.insert(flow, actor);
        self.answer();
    }

    /// `flow`'s actor did not start (storage away): it is tried again after a pause.
    pub fn start_failed(&mut self, flow: FlowId) {
        self.commands.push(Command::RestartLater(flow));
        self.answer();
    }

    /// An actor answered a rebuild, a reconfiguration or a leave (or is gone).
    pub fn answered(&mut self) {
        self.answer();
    }

    /// An actor stopped (`failed`: on an error; then it is started again after a pause,
    /// rebuilt from storage). One this machine stopped itself is no longer known.
    pub fn gone(&mut self, actor: &A, failed: bool) {
        if let Some(flow) = self.flow_of.remove(actor) {
            self.actors.remove(&flow);
            if failed {
                // Typically storage was away.
                self.commands.push(Command::RestartLater(flow));
            }
        }
    }

    /// Whether `flow` is run here.
    fn owned(&self, flow: &FlowId) -> bool {
        self.ownership.as_ref().is_none_or(|o| o.owns(flow))
    }

    /// Every known flow run here (a snapshot).
    fn known(&self) -> Vec<FlowId> {
        self.first_seen
            .keys()
            .filter(|f| self.owned(f))
            .cloned()
            .collect()
    }

    fn begin(&mut self, job: Job) {
        debug_assert!(
            self.job.is_none() && self.answers == 0,
            "a message taken while the last one is under way"
        );
        self.job = Some(job);
        self.advance();
    }

    fn answer(&mut self) {
        self.answers = self.answers.saturating_sub(1);
        self.advance();
    }

    /// Moves the job under way on as far as it can without an answer.
    fn advance(&mut self) {
        while self.answers == 0 {
            let Some(job) = self.job.take() else { return };
            // Every job starts once the actors took the last batch.
            let stale = match self.taking.take() {
                Some(Taking {
                    stale: Some(stale), ..
                }) => stale,
                None => Vec::new(),
                taking @ Some(_) => {
                    self.taking = taking;
                    self.job = Some(job);
                    return;
                }
            };
            match job {
                Job::Deliver(flows) => self.deliver(flows, stale),
                Job::Settle => self.rebuild(stale),
                // The others change what actors read from storage: it must hold exactly what
                // they were handed.
                job if stale.is_empty() => self.apply(job),
                job => {
                    self.rebuild(stale);
                    self.job = Some(job);
                }
            }
        }
    }

    /// Hands a stored batch out: the actors left stale by the batch before get its records,
    /// then rebuild (storage now holds exactly what they were handed).
    fn deliver(&mut self, flows: Vec<(FlowId, Records)>, stale: Vec<A>) {
        let rebuilding: HashSet<A> = stale.iter().cloned().collect();
        let mut deliveries = Vec::with_capacity(flows.len());
        let mut new = Vec::new();
        for (flow, records) in flows {
            match self.actors.get(&flow) {
                Some(actor) => deliveries.push(Delivery {
                    answer: !rebuilding.contains(actor),
                    actor: actor.clone(),
                    records,
                }),
                // A new actor reads storage, which holds these records already.
                None if self.owned(&flow) => new.push(flow),
                None => {}
            }
        }
        self.batch += 1;
        self.taking = Some(Taking {
            batch: self.batch,
            stale: None,
        });
        self.commands.push(Command::Deliver {
            batch: self.batch,
            deliveries,
        });
        self.start(new);
        self.rebuild(stale);
    }

    fn rebuild(&mut self, stale: Vec<A>) {
        if !stale.is_empty() {
            self.answers += stale.len();
            self.commands.push(Command::Rebuild(stale));
        }
    }

    /// Starts the actors of `flows`. A flow of a country without a zone is not started (it
    /// cannot be evaluated; its traffic stays stored).
    fn start(&mut self, flows: Vec<FlowId>) {
        let config = &self.config;
        let first_seen = &self.first_seen;
        let starts: Vec<FlowStart> = flows
            .into_iter()
            .filter_map(|flow| {
                let calendar = config.calendar(&flow.country)?;
                let seen = first_seen.get(&flow).copied().unwrap_or(Instant::MAX);
                Some(FlowStart {
                    config: config.flow_config(&flow).0,
                    calendar: Arc::new(calendar.clone()),
                    first_day: local_day(calendar.tz(), seen),
                    flow,
                })
            })
            .collect();
        if !starts.is_empty() {
            self.answers += starts.len();
            self.commands.push(Command::Start(starts));
        }
    }

    /// Stops the actor of `flow` (the machine forgets it: its end is not a failure).
    fn forget(&mut self, flow: &FlowId) -> Option<A> {
        let actor = self.actors.remove(flow)?;
        self.flow_of.remove(&actor);
        Some(actor)
    }

    /// A reconfiguration or an ownership change, once storage holds what the actors took.
    fn apply(&mut self, job: Job) {
        match job {
            Job::Reconfigure(config) => self.apply_config(config),
            Job::Own(ownership, registered) => self.apply_ownership(ownership, registered),
            Job::Deliver(_) | Job::Settle => unreachable!("applied in `advance`"),
        }
    }

    fn apply_config(&mut self, config: Arc<Config>) {
        let old = std::mem::replace(&mut self.config, config);
        let new = self.config.clone();
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
        let calendars_changed: HashSet<&String> = codes
            .into_iter()
            .filter(|c| entry(&old, c) != entry(&new, c))
            .collect();
        let (mut stop, mut change, mut enabled) = (Vec::new(), Vec::new(), Vec::new());
        for flow in self.known() {
            let cfg = new.flow_config(&flow).0;
            let changed =
                cfg != old.flow_config(&flow).0 || calendars_changed.contains(&flow.country);
            match (self.actors.contains_key(&flow), cfg.enabled) {
                (true, false) => stop.extend(self.forget(&flow)),
                (true, true) if changed => {
                    if let Some(calendar) = new.calendar(&flow.country) {
                        change.push(FlowChange {
                            actor: self.actors[&flow].clone(),
                            config: cfg,
                            calendar: Arc::new(calendar.clone()),
                        });
                    }
                }
                // Enabled again (or its country got a zone): started, caught up from storage.
                (false, true) => enabled.push(flow),
                _ => {}
            }
        }
        if !stop.is_empty() {
            self.commands.push(Command::Stop(stop));
        }
        if !change.is_empty() {
            self.answers += change.len();
            self.commands.push(Command::Reconfigure(change));
        }
        self.start(enabled);
    }

    fn apply_ownership(
        &mut self,
        ownership: Option<Ownership>,
        registered: Vec<(FlowId, Instant)>,
    ) {
        self.ownership = ownership;
        let owned = self.ownership.clone();
        self.first_seen
            .retain(|f, _| owned.as_ref().is_none_or(|o| o.owns(f)));
        self.remember(registered);
        let leaving: Vec<FlowId> = self
            .actors
            .keys()
            .filter(|flow| !self.owned(flow))
            .cloned()
            .collect();
        let leaving: Vec<A> = leaving.iter().filter_map(|f| self.forget(f)).collect();
        if !leaving.is_empty() {
            self.answers += leaving.len();
            self.commands.push(Command::Leave(leaving));
        }
        let config = &self.config;
        let starting = self
            .known()
            .into_iter()
            .filter(|f| !self.actors.contains_key(f) && config.flow_config(f).0.enabled)
            .collect();
        self.start(starting);
    }
}

#[cfg(test)]
mod tests;

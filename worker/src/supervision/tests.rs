//! The supervisor's protocol: a few rules by example, then a property test over arbitrary
//! interleavings of batches, replies, failures, reconfigurations and ownership changes, with a
//! simulated storage and simulated flow actors.

use flowwatch_core::FlowKind;
use flowwatch_core::record::Record;

use super::*;

/// 2017-02-06T00:00:00Z: records are numbered from here, one second apart.
const T0: Instant = 1_486_339_200;

fn flow(country: &str, lob: &str, name: &str) -> FlowId {
    FlowId::new(country, lob, FlowKind::Input, name).expect("a valid flow id")
}

fn config(json: &str) -> Arc<Config> {
    Arc::new(Config::from_json(json).expect("a valid configuration"))
}

fn batch(records: &[(&FlowId, Instant)]) -> Batch {
    records
        .iter()
        .map(|&(flow, time)| Record {
            time,
            flow: flow.clone(),
            bytes: 1,
        })
        .collect()
}

/// A machine running `flow` with actor 1.
fn running(flow: &FlowId) -> Supervision<u32> {
    let mut m = Supervision::new(config("{}"), None);
    m.remember([(flow.clone(), T0)]);
    m.start_known();
    assert!(matches!(&m.commands()[..], [Command::Start(s)] if s[0].flow == *flow));
    assert_eq!(m.wait(), Wait::Answers);
    m.started(flow.clone(), 1);
    assert_eq!(m.wait(), Wait::Ready);
    m
}

#[test]
fn a_stale_actor_takes_the_next_batch_then_rebuilds_before_more_is_stored() {
    let f = flow("CZ", "GSM", "A");
    let mut m = running(&f);
    m.stored(vec![(f.clone(), vec![(T0, 1)])]);
    assert!(matches!(
        &m.commands()[..],
        [Command::Deliver { batch: 1, deliveries }] if deliveries[0].answer
    ));
    assert_eq!(m.wait(), Wait::Ready, "the next batch is stored meanwhile");

    m.stored(vec![(f.clone(), vec![(T0 + 1, 1)])]);
    assert!(
        m.commands().is_empty(),
        "not handed out before batch 1 is taken"
    );
    assert_eq!(m.wait(), Wait::Taken(1));
    m.taken(1, vec![1]); // it took a late record
    match &m.commands()[..] {
        [
            Command::Deliver {
                batch: 2,
                deliveries,
            },
            Command::Rebuild(stale),
        ] => {
            assert!(!deliveries[0].answer, "its rebuild is waited for instead");
            assert_eq!(stale, &[1]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        m.wait(),
        Wait::Answers,
        "nothing is stored until it rebuilt"
    );
    m.answered();
    assert_eq!(m.wait(), Wait::Ready);
}

#[test]
fn a_reconfiguration_waits_for_the_last_batch_and_the_rebuilds() {
    let f = flow("CZ", "GSM", "A");
    let mut m = running(&f);
    m.stored(vec![(f.clone(), vec![(T0, 1)])]);
    m.commands();
    m.reconfigure(config(r#"{"defaults":{"granularity":"2h"}}"#));
    assert_eq!(m.wait(), Wait::Taken(1));
    m.taken(1, vec![1]);
    assert!(matches!(&m.commands()[..], [Command::Rebuild(_)]));
    m.answered();
    // Storage holds exactly what the actor was handed: it rebuilds with its new settings.
    match &m.commands()[..] {
        [Command::Reconfigure(changes)] => {
            assert_eq!(changes[0].actor, 1);
            assert_eq!(changes[0].config.granularity.to_string(), "2h");
        }
        other => panic!("{other:?}"),
    }
    m.answered();
    assert_eq!(m.wait(), Wait::Ready);
}

#[test]
fn a_flow_without_a_zone_is_refused_and_a_new_flow_starts_from_storage() {
    let (cz, pl) = (flow("CZ", "GSM", "A"), flow("PL", "GSM", "A"));
    let mut m: Supervision<u32> = Supervision::new(config("{}"), None);
    let a = m.admit(batch(&[(&cz, T0 + 5), (&pl, T0), (&cz, T0)]));
    assert_eq!(a.outcome.accepted, 2);
    assert_eq!(a.outcome.refused[0].0, pl);
    assert_eq!(a.register, [(cz.clone(), T0)]);
    m.remember(a.register);
    m.stored(a.flows);
    // Nothing is handed to it: its new actor reads the records from storage.
    match &m.commands()[..] {
        [Command::Deliver { deliveries, .. }, Command::Start(starts)] => {
            assert!(deliveries.is_empty());
            assert_eq!(starts[0].flow, cz);
        }
        other => panic!("{other:?}"),
    }
    m.started(cz.clone(), 7);
    assert_eq!(m.actor(&cz), Some(&7));
    let again = m.admit(batch(&[(&cz, T0 + 9)]));
    assert!(again.register.is_empty(), "known from earlier");

    // A failed actor is started again after a pause, if its flow still runs here.
    m.gone(&7, true);
    assert!(matches!(&m.commands()[..], [Command::RestartLater(f)] if *f == cz));
    m.restart(cz.clone());
    assert!(matches!(&m.commands()[..], [Command::Start(_)]));
}

#[test]
fn partitions_that_leave_stop_their_actors_after_the_last_batch_is_taken() {
    let f = flow("CZ", "GSM", "A");
    let mut m = running(&f);
    m.stored(vec![(f.clone(), vec![(T0, 1)])]);
    m.commands();
    let elsewhere = Some(Ownership {
        count: 2,
        partitions: [1 - f.partition(2)].into(),
    });
    assert!(
        !m.gains(&elsewhere),
        "from every flow to some: none it does not know"
    );
    m.own(elsewhere, Vec::new());
    assert_eq!(m.wait(), Wait::Taken(1));
    m.taken(1, Vec::new());
    assert!(matches!(&m.commands()[..], [Command::Leave(a)] if a == &[1]));
    assert_eq!(m.running(), 0);
    m.answered();
    assert_eq!(m.wait(), Wait::Ready);
    m.gone(&1, false);
    assert!(m.commands().is_empty(), "a stop it asked for is no failure");
}

mod properties {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    use proptest::prelude::*;

    use super::*;

    /// CZ has a built-in zone, PL only in some configurations.
    fn flows() -> Vec<FlowId> {
        let mut out = Vec::new();
        for country in ["CZ", "PL"] {
            for lob in ["GSM", "SMS"] {
                for name in ["A", "B"] {
                    out.push(flow(country, lob, name));
                }
            }
        }
        out
    }

    /// What the simulation switches between: zones, disabled LoBs, changed settings and
    /// calendars.
    fn configs() -> Vec<Arc<Config>> {
        [
            "{}",
            r#"{"countries":{"PL":{"timezone":"Europe/Warsaw"}}}"#,
            r#"{"countries":{"PL":{"timezone":"Europe/Warsaw"},
                "CZ":{"lobs":{"GSM":{"config":{"enabled":false}}}}}}"#,
            r#"{"defaults":{"granularity":"2h"},"countries":{"PL":{"timezone":"Europe/Warsaw",
                "lobs":{"SMS":{"config":{"enabled":false}}}}}}"#,
            r#"{"countries":{"CZ":{"holidays":["2017-02-07"]}}}"#,
        ]
        .map(config)
        .into()
    }

    const PARTITIONS: u32 = 4;

    fn ownership(bits: Option<u8>) -> Option<Ownership> {
        bits.map(|b| Ownership {
            count: PARTITIONS,
            partitions: (0..PARTITIONS).filter(|p| b & (1 << p) != 0).collect(),
        })
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A batch: `per_flow` records for each flow whose bit is set in `flows`, late where
        /// the bit is set in `late` too; `fail`: 0 registering fails, 1 storing fails.
        Ingest {
            flows: u8,
            per_flow: usize,
            late: u8,
            fail: u8,
        },
        /// An earlier batch sent again, with its mark.
        Repeat(usize),
        Reconfigure(usize),
        /// Run the flows of these partitions (bits; `None`: every flow).
        Own(Option<u8>),
        /// An actor handles its next message.
        Step(usize),
        /// The supervisor moves on: its next message, or what it waits for.
        Sup,
        /// The replies to the last batch reach the machine as soon as they are all in.
        FeedTaken,
        /// An actor fails (before it started: it does not start).
        Fail(usize),
        /// A restart's pause ends.
        Timer,
        /// An actor's timer fires: it evaluates the ticks due.
        Evaluate(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), 1usize..3, any::<u8>(), any::<u8>(), 0u8..12).prop_map(
                |(flows, per_flow, a, b, fail)| Op::Ingest { flows, per_flow, late: a & b, fail }
            ),
            1 => any::<usize>().prop_map(Op::Repeat),
            1 => any::<usize>().prop_map(Op::Reconfigure),
            1 => any::<Option<u8>>().prop_map(Op::Own),
            12 => any::<usize>().prop_map(Op::Step),
            8 => Just(Op::Sup),
            2 => Just(Op::FeedTaken),
            1 => any::<usize>().prop_map(Op::Fail),
            1 => Just(Op::Timer),
            2 => any::<usize>().prop_map(Op::Evaluate),
        ]
    }

    /// A message in a simulated actor's mailbox.
    #[derive(Debug)]
    enum Msg {
        /// Its start: it reads storage.
        Begin,
        Records {
            batch: u64,
            records: Records,
            answer: bool,
        },
        Rebuild,
        Reconfigure,
        Evaluate,
    }

    /// A simulated flow actor: it counts what it is handed, turns stale on a late record and
    /// reads storage on a start or a rebuild.
    #[derive(Debug)]
    struct Actor {
        flow: FlowId,
        /// The records it counts (by time: every record's time is its own).
        view: BTreeSet<Instant>,
        stale: bool,
        mailbox: VecDeque<Msg>,
    }

    /// A message in the supervisor's mailbox.
    #[derive(Debug)]
    enum SupMsg {
        Ingest(usize),
        Reconfigure(usize),
        Own(Option<Ownership>),
        Restart(FlowId),
        Settle(u64),
        Gone(u32, bool),
    }

    struct Sent {
        batch: Batch,
        mark: u64,
        fail: u8,
    }

    struct Sim {
        machine: Supervision<u32>,
        configs: Vec<Arc<Config>>,
        /// The partitions the machine was told to run.
        ownership: Option<Ownership>,
        storage: BTreeMap<FlowId, BTreeSet<Instant>>,
        registry: BTreeMap<FlowId, Instant>,
        marks: BTreeSet<u64>,
        late: BTreeSet<Instant>,
        sent: Vec<Sent>,
        next_time: Instant,
        actors: BTreeMap<u32, Actor>,
        next_actor: u32,
        mailbox: VecDeque<SupMsg>,
        timers: VecDeque<FlowId>,
        /// Stored records not handed out yet.
        undelivered: BTreeMap<FlowId, BTreeSet<Instant>>,
        /// Per delivered batch: replies outstanding, stale actors.
        replies: BTreeMap<u64, (usize, Vec<u32>)>,
        /// A batch stored, the machine not told yet.
        storing: Option<Vec<(FlowId, Records)>>,
        rng: u64,
        failures: bool,
    }

    impl Sim {
        /// A supervisor starting on a store where the flows of `history` (bits) have traffic.
        fn new(history: u8, owned: Option<u8>, seed: u64) -> Sim {
            let mut sim = Sim {
                machine: Supervision::new(configs()[0].clone(), ownership(owned)),
                configs: configs(),
                ownership: ownership(owned),
                storage: BTreeMap::new(),
                registry: BTreeMap::new(),
                marks: BTreeSet::new(),
                late: BTreeSet::new(),
                sent: Vec::new(),
                next_time: T0,
                actors: BTreeMap::new(),
                next_actor: 0,
                mailbox: VecDeque::new(),
                timers: VecDeque::new(),
                undelivered: BTreeMap::new(),
                replies: BTreeMap::new(),
                storing: None,
                rng: seed,
                failures: true,
            };
            for (i, f) in flows().into_iter().enumerate() {
                if history & (1 << i) != 0 {
                    let t = T0 - 1000 + i as Instant;
                    sim.registry.insert(f.clone(), t);
                    sim.storage.entry(f).or_default().insert(t);
                }
            }
            if !sim.machine.owns_nothing() {
                let registered = sim.registry.iter().map(|(f, t)| (f.clone(), *t));
                sim.machine.remember(registered.collect::<Vec<_>>());
            }
            sim.machine.start_known();
            sim.execute();
            sim
        }

        /// Whether something fails now (`n` in `d`), while failures are on.
        fn coin(&mut self, n: u64, d: u64) -> bool {
            self.rng = self
                .rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.failures && (self.rng >> 33) % d < n
        }

        fn apply(&mut self, op: Op) {
            match op {
                Op::Ingest {
                    flows: bits,
                    per_flow,
                    late,
                    fail,
                } => {
                    let mut records = Vec::new();
                    for (i, f) in flows().into_iter().enumerate() {
                        for _ in 0..per_flow * usize::from(bits & (1 << i) != 0) {
                            let time = self.next_time;
                            self.next_time += 1;
                            if late & (1 << i) != 0 {
                                self.late.insert(time);
                            }
                            records.push(Record {
                                time,
                                flow: f.clone(),
                                bytes: 1,
                            });
                        }
                    }
                    let mark = self.sent.len() as u64;
                    let batch = records.into_iter().collect();
                    self.sent.push(Sent { batch, mark, fail });
                    self.mailbox.push_back(SupMsg::Ingest(self.sent.len() - 1));
                }
                Op::Repeat(i) if !self.sent.is_empty() => {
                    let i = i % self.sent.len();
                    self.mailbox.push_back(SupMsg::Ingest(i));
                }
                Op::Repeat(_) => {}
                Op::Reconfigure(i) => {
                    let i = i % self.configs.len();
                    self.mailbox.push_back(SupMsg::Reconfigure(i));
                }
                Op::Own(bits) => self.mailbox.push_back(SupMsg::Own(ownership(bits))),
                Op::Step(i) => {
                    if let Some(id) = self.nth_actor(i) {
                        self.step(id);
                    }
                }
                Op::Sup => self.sup(),
                Op::FeedTaken => self.feed_taken(),
                Op::Fail(i) => {
                    if let Some(id) = self.nth_actor(i) {
                        self.kill(id, true);
                        self.execute();
                    }
                }
                Op::Timer => {
                    if let Some(flow) = self.timers.pop_front() {
                        self.mailbox.push_back(SupMsg::Restart(flow));
                    }
                }
                Op::Evaluate(i) => {
                    if let Some(id) = self.nth_actor(i) {
                        let actor = self.actors.get_mut(&id).expect("alive");
                        actor.mailbox.push_back(Msg::Evaluate);
                    }
                }
            }
            self.check_quiet();
        }

        fn nth_actor(&self, i: usize) -> Option<u32> {
            let n = self.actors.len();
            (n > 0).then(|| *self.actors.keys().nth(i % n).expect("in range"))
        }

        /// Carries out the machine's commands, as the supervisor does.
        fn execute(&mut self) {
            loop {
                let commands = self.machine.commands();
                if commands.is_empty() {
                    return;
                }
                for c in commands {
                    self.carry_out(c);
                }
            }
        }

        fn carry_out(&mut self, command: Command<u32>) {
            match command {
                Command::Deliver { batch, deliveries } => {
                    // What was stored is handed out now, or read by the actors that start.
                    self.undelivered.clear();
                    let mut answers = 0;
                    for d in deliveries {
                        if let Some(actor) = self.actors.get_mut(&d.actor) {
                            answers += usize::from(d.answer);
                            actor.mailbox.push_back(Msg::Records {
                                batch,
                                records: d.records,
                                answer: d.answer,
                            });
                        }
                    }
                    self.replies.insert(batch, (answers, Vec::new()));
                    if answers == 0 {
                        self.mailbox.push_back(SupMsg::Settle(batch));
                    }
                }
                Command::Start(starts) => {
                    for s in starts {
                        let actor = Actor {
                            flow: s.flow,
                            view: BTreeSet::new(),
                            stale: false,
                            mailbox: VecDeque::from([Msg::Begin]),
                        };
                        self.actors.insert(self.next_actor, actor);
                        self.next_actor += 1;
                    }
                }
                Command::Rebuild(actors) => {
                    for id in actors {
                        match self.actors.get_mut(&id) {
                            Some(actor) => actor.mailbox.push_back(Msg::Rebuild),
                            None => self.machine.answered(),
                        }
                    }
                }
                Command::Reconfigure(changes) => {
                    for c in changes {
                        match self.actors.get_mut(&c.actor) {
                            Some(actor) => actor.mailbox.push_back(Msg::Reconfigure),
                            None => self.machine.answered(),
                        }
                    }
                }
                Command::Stop(actors) => {
                    for id in actors {
                        self.kill(id, false);
                    }
                }
                Command::Leave(actors) => {
                    for id in actors {
                        self.kill(id, false);
                        self.machine.answered();
                    }
                }
                Command::RestartLater(flow) => self.timers.push_back(flow),
            }
        }

        /// An actor ends: every reply it owes is dropped (none says stale); the supervisor
        /// hears of it, unless it never started.
        fn kill(&mut self, id: u32, failed: bool) {
            let Some(actor) = self.actors.remove(&id) else {
                return;
            };
            // One the machine stops (disabled, or its partition moved) took what it was
            // handed first: its ticks are stored.
            let handed = actor
                .mailbox
                .iter()
                .any(|m| matches!(m, Msg::Records { .. }));
            assert!(
                failed || !handed,
                "actor {id} of {} stopped before it took its records",
                actor.flow
            );
            let mut started = true;
            for m in actor.mailbox {
                match m {
                    Msg::Begin => {
                        started = false;
                        self.machine.start_failed(actor.flow.clone());
                    }
                    Msg::Records {
                        batch,
                        answer: true,
                        ..
                    } => self.reply(batch, None),
                    Msg::Rebuild | Msg::Reconfigure => self.machine.answered(),
                    Msg::Records { .. } | Msg::Evaluate => {}
                }
            }
            if started {
                self.mailbox.push_back(SupMsg::Gone(id, failed));
            }
        }

        fn reply(&mut self, batch: u64, stale: Option<u32>) {
            let r = self.replies.get_mut(&batch).expect("a delivered batch");
            r.0 -= 1;
            r.1.extend(stale);
            if r.0 == 0 {
                self.mailbox.push_back(SupMsg::Settle(batch));
            }
        }

        /// The last batch's replies, if they are all in.
        fn feed_taken(&mut self) {
            if let Some((&batch, (0, stale))) = self.replies.last_key_value() {
                let stale = stale.clone();
                self.machine.taken(batch, stale);
                self.execute();
            }
        }

        fn sup(&mut self) {
            if let Some(flows) = self.storing.take() {
                self.machine.stored(flows);
                return self.execute();
            }
            match self.machine.wait() {
                Wait::Taken(_) => self.feed_taken(),
                Wait::Answers => {}
                Wait::Ready => {
                    if let Some(msg) = self.mailbox.pop_front() {
                        self.handle(msg);
                        self.execute();
                    }
                }
            }
        }

        fn handle(&mut self, msg: SupMsg) {
            match msg {
                SupMsg::Ingest(i) => self.ingest(i),
                SupMsg::Reconfigure(i) => self.machine.reconfigure(self.configs[i].clone()),
                SupMsg::Own(ownership) => {
                    let registered = match self.machine.gains(&ownership) {
                        // The registry could not be read: nothing changes.
                        true if self.coin(1, 8) => return,
                        true => self.registry.iter().map(|(f, t)| (f.clone(), *t)).collect(),
                        false => Vec::new(),
                    };
                    self.ownership = ownership.clone();
                    self.machine.own(ownership, registered);
                }
                SupMsg::Restart(flow) => self.machine.restart(flow),
                SupMsg::Settle(n) => self.machine.settle(Some(n)),
                SupMsg::Gone(id, failed) => self.machine.gone(&id, failed),
            }
        }

        /// The supervisor's store: register, then one atomic write (a repeated mark: none).
        fn ingest(&mut self, i: usize) {
            let Sent { batch, mark, fail } = &self.sent[i];
            let (mark, fail) = (*mark, *fail);
            let admission = self.machine.admit(batch.clone());
            for (flow, ..) in &admission.outcome.refused {
                let config = self.machine.config();
                assert!(config.calendar(&flow.country).is_none(), "{flow} refused");
            }
            if !admission.register.is_empty() {
                if fail == 0 {
                    return;
                }
                for (flow, t) in &admission.register {
                    let seen = self.registry.entry(flow.clone()).or_insert(*t);
                    *seen = (*seen).min(*t);
                }
            }
            self.machine.remember(admission.register);
            if admission.flows.is_empty() {
                self.storing = Some(Vec::new());
                return;
            }
            if fail == 1 {
                return;
            }
            if !self.marks.insert(mark) {
                self.storing = Some(Vec::new());
                return;
            }
            for (flow, records) in &admission.flows {
                for &(t, _) in records {
                    let stored = self.storage.entry(flow.clone()).or_default();
                    assert!(stored.insert(t), "record {t} of {flow} stored twice");
                    self.undelivered.entry(flow.clone()).or_default().insert(t);
                }
            }
            self.storing = Some(admission.flows);
        }

        /// Actor `id` handles its next message.
        fn step(&mut self, id: u32) {
            // Whether storage is away for its start or rebuild.
            let fails = self.coin(1, 7);
            let actor = self.actors.get_mut(&id).expect("alive");
            let Some(msg) = actor.mailbox.pop_front() else {
                return;
            };
            let flow = actor.flow.clone();
            match msg {
                Msg::Begin if fails => {
                    // Storage away: it does not start.
                    self.actors.remove(&id);
                    self.machine.start_failed(flow);
                }
                Msg::Begin => {
                    self.read_storage(id);
                    self.machine.started(flow, id);
                }
                Msg::Records {
                    batch,
                    records,
                    answer,
                } => {
                    for (t, _) in records {
                        match self.late.contains(&t) {
                            true => actor.stale = true,
                            false => assert!(
                                actor.view.insert(t),
                                "actor {id} of {flow} counted record {t} twice"
                            ),
                        }
                    }
                    let stale = actor.stale;
                    if !stale {
                        self.evaluate(id);
                    }
                    if answer {
                        self.reply(batch, stale.then_some(id));
                    }
                }
                Msg::Rebuild | Msg::Reconfigure if fails => {
                    // Storage away: it fails (its reply dropped), supervision restarts it.
                    self.kill(id, true);
                    self.machine.answered();
                }
                Msg::Rebuild => {
                    if actor.stale {
                        self.read_storage(id);
                        self.evaluate(id);
                    }
                    self.machine.answered();
                }
                Msg::Reconfigure => {
                    self.read_storage(id);
                    self.evaluate(id);
                    self.machine.answered();
                }
                Msg::Evaluate => {
                    if !actor.stale {
                        self.evaluate(id);
                    }
                }
            }
            self.execute();
        }

        /// Actor `id` takes its flow's traffic from storage: never while storage holds
        /// records it has not been handed and will be.
        fn read_storage(&mut self, id: u32) {
            let actor = self.actors.get_mut(&id).expect("alive");
            let flow = &actor.flow;
            let waiting = self.undelivered.get(flow).filter(|u| !u.is_empty());
            assert!(
                waiting.is_none(),
                "actor {id} of {flow} reads storage before {waiting:?} are handed out"
            );
            for m in &actor.mailbox {
                if let Msg::Records { records, .. } = m {
                    assert!(
                        records.is_empty(),
                        "actor {id} of {flow} reads storage, then is handed {records:?} again"
                    );
                }
            }
            actor.view = self.storage.get(flow).cloned().unwrap_or_default();
            actor.stale = false;
        }

        /// Actor `id` evaluates the ticks due: whatever storage holds of its flow, it has
        /// counted or will be handed (no tick is evaluated on traffic it will never see).
        fn evaluate(&self, id: u32) {
            let actor = &self.actors[&id];
            let mut coming: BTreeSet<Instant> = actor.view.clone();
            for m in &actor.mailbox {
                if let Msg::Records { records, .. } = m {
                    coming.extend(records.iter().map(|r| r.0));
                }
            }
            coming.extend(self.undelivered.get(&actor.flow).into_iter().flatten());
            let stored = self.storage.get(&actor.flow).cloned().unwrap_or_default();
            let missing: Vec<_> = stored.difference(&coming).collect();
            assert!(
                missing.is_empty(),
                "actor {id} of {} evaluates without {missing:?}, which it will never be handed",
                actor.flow
            );
        }

        /// Whenever nothing is under way, every running actor counts exactly what storage
        /// holds of its flow.
        fn check_quiet(&self) -> bool {
            let quiet = self.storing.is_none()
                && self.machine.wait() == Wait::Ready
                && self
                    .actors
                    .values()
                    .all(|a| !a.stale && a.mailbox.iter().all(|m| matches!(m, Msg::Evaluate)));
            if quiet {
                for (id, actor) in &self.actors {
                    let stored = self.storage.get(&actor.flow).cloned().unwrap_or_default();
                    assert_eq!(actor.view, stored, "actor {id} of {}", actor.flow);
                }
            }
            quiet
        }

        /// Lets everything finish, without failures.
        fn quiesce(&mut self) {
            self.failures = false;
            for _ in 0..100_000 {
                let busy = self.actors.iter().find(|(_, a)| !a.mailbox.is_empty());
                if let Some(id) = busy.map(|(id, _)| *id) {
                    self.step(id);
                } else if self.storing.is_some()
                    || matches!(self.machine.wait(), Wait::Taken(_))
                    || (self.machine.wait() == Wait::Ready && !self.mailbox.is_empty())
                {
                    self.sup();
                } else if let Some(flow) = self.timers.pop_front() {
                    self.mailbox.push_back(SupMsg::Restart(flow));
                } else {
                    return;
                }
            }
            panic!("the protocol does not come to rest");
        }

        /// Once at rest: every flow with traffic that is to run here runs, nothing else does,
        /// and each counts exactly what storage holds of it.
        fn check_rest(&self) {
            assert_eq!(self.machine.wait(), Wait::Ready, "an answer never came");
            assert!(self.check_quiet(), "not at rest");
            let config = self.machine.config();
            let owned = |f: &FlowId| self.ownership.as_ref().is_none_or(|o| o.owns(f));
            let enabled = |f: &FlowId| config.flow_config(f).0.enabled;
            // (A flow registered by a batch whose write then failed has no traffic: it may
            // or may not run until traffic comes.)
            for flow in self
                .registry
                .keys()
                .filter(|f| self.storage.contains_key(f))
            {
                if owned(flow) && enabled(flow) && config.calendar(&flow.country).is_some() {
                    let actor = self.machine.actor(flow);
                    assert!(
                        actor.is_some_and(|id| self.actors.contains_key(id)),
                        "{flow} does not run"
                    );
                }
            }
            for (id, actor) in &self.actors {
                let flow = &actor.flow;
                assert_eq!(self.machine.actor(flow), Some(id), "{flow}: a stray actor");
                assert!(owned(flow) && enabled(flow), "{flow} runs, but not here");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever arrives, fails, moves or changes, and in whatever order the actors work:
        /// no record is counted twice, no actor reads storage while it holds records the actor
        /// will still be handed, none evaluates without a record it will never see, and once
        /// at rest every running actor counts exactly what storage holds.
        #[test]
        fn no_record_is_counted_twice_or_lost(
            history in any::<u8>(),
            owned in any::<Option<u8>>(),
            ops in prop::collection::vec(op(), 1..200),
            seed in any::<u64>(),
        ) {
            let mut sim = Sim::new(history, owned, seed);
            for op in ops {
                sim.apply(op);
            }
            sim.quiesce();
            sim.check_rest();
        }
    }
}

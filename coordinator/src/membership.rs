//! The leading coordinator's view of the cluster and every decision it makes: who is alive,
//! who owns which partition, when a partition may move, the epochs. Pure (time is a number of
//! milliseconds the caller passes in), so every rule is tested here; the service only feeds it
//! heartbeats and the clock, and sends the plans it computes.
//!
//! Rules:
//! - A worker is a member from its first heartbeat; one silent for `dead_after` is dead and
//!   leaves. Its lease (shorter than `dead_after`, counted from before it asked) has run out by
//!   then, so it stopped its flows: its partitions are free at once.
//! - A partition moves from a live worker in two steps: first a plan without it (the
//!   *revocation*, at epoch `e`); once the worker says it runs an epoch `≥ e` (it stopped the
//!   partition's flows and consumer), or it is dead, the partition is free; a later step gives
//!   it to its new owner. No two workers run a partition at once.
//! - Where partitions belong is [`flowwatch_core::placement::place`] over the live members
//!   that are not draining, keeping owners where they may stay.
//! - A new leader knows nothing: for `dead_after` it only collects heartbeats and adopts what
//!   each worker says it runs (renewing their leases, so evaluation never stops), then plans.
//!   Its epochs start at `term << 32` (the term grows with every leadership), above every epoch
//!   of earlier leaders.

use std::collections::{BTreeMap, BTreeSet};

use flowwatch_core::placement::place;

/// Milliseconds on the coordinator's monotonic clock.
pub type Millis = u64;

/// The timing of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A worker silent this long is dead.
    pub dead_after: Millis,
    /// How long a plan runs without another answer from the leader (shorter than
    /// `dead_after`).
    pub lease: Millis,
}

/// What a worker says in a heartbeat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Its name.
    pub worker: String,
    /// Its gRPC address.
    pub address: String,
    /// The epoch it runs.
    pub epoch: u64,
    /// The partitions it runs.
    pub partitions: Vec<u32>,
    /// Its load and counters (passed on to the cluster view as they came; no decision reads
    /// them).
    pub load: flowwatch_proto::pb::WorkerLoad,
}

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Its last heartbeat.
    pub report: Report,
    /// When it came.
    pub seen: Millis,
    /// Being drained: it gets no partitions.
    pub draining: bool,
    /// The epoch of the last plan made for it.
    pub plan_epoch: u64,
}

/// A worker's whole plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Its epoch.
    pub epoch: u64,
    /// The partitions.
    pub partitions: Vec<u32>,
}

/// A partition being taken from a worker: free once that worker runs `epoch` or is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Revocation {
    from: String,
    epoch: u64,
}

/// The cluster as the leader sees it.
#[derive(Debug, Clone)]
pub struct Cluster {
    partitions: u32,
    term: u64,
    timing: Timing,
    /// The newest epoch planned.
    epoch: u64,
    members: BTreeMap<String, Member>,
    /// The owner of each partition in the plans (a revoked one has none).
    owners: Vec<Option<String>>,
    revoking: BTreeMap<u32, Revocation>,
    /// Until when a new leader only collects heartbeats.
    settling_until: Millis,
}

impl Cluster {
    /// A leader's empty view, taking over at `now` in leadership `term` (≥ 1).
    pub fn new(partitions: u32, timing: Timing, term: u64, now: Millis) -> Cluster {
        Cluster {
            partitions,
            term,
            timing,
            epoch: term << 32,
            members: BTreeMap::new(),
            owners: vec![None; partitions as usize],
            revoking: BTreeMap::new(),
            settling_until: now + timing.dead_after,
        }
    }

    /// The leadership term this view belongs to.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The newest epoch planned.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The members by name.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// Each partition's owner in the plans.
    pub fn owners(&self) -> &[Option<String>] {
        &self.owners
    }

    /// Partitions taken from a worker that has not confirmed yet.
    pub fn moving(&self) -> Vec<u32> {
        self.revoking.keys().copied().collect()
    }

    /// Whether a new leader is still collecting heartbeats.
    pub fn settling(&self, now: Millis) -> bool {
        now < self.settling_until
    }

    /// Takes a heartbeat; returns the worker's plan (which renews its lease).
    pub fn heartbeat(&mut self, report: Report, now: Millis) -> Plan {
        let name = report.worker.clone();
        if self.settling(now) {
            // Adopt what it runs: a partition nobody else claimed, in its plan.
            self.epoch = self.epoch.max(report.epoch);
            for &p in &report.partitions {
                if let Some(slot @ None) = self.owners.get_mut(p as usize) {
                    *slot = Some(name.clone());
                }
            }
        }
        let member = self.members.entry(name.clone()).or_insert(Member {
            report: Report::default(),
            seen: now,
            draining: false,
            plan_epoch: report.epoch,
        });
        member.report = report;
        member.seen = now;
        self.plan(&name)
    }

    /// A worker's answer to a plan: what it runs now.
    pub fn confirm(&mut self, worker: &str, epoch: u64, partitions: Vec<u32>) {
        if let Some(m) = self.members.get_mut(worker)
            && epoch >= m.report.epoch
        {
            m.report.epoch = epoch;
            m.report.partitions = partitions;
        }
    }

    /// The plan of `worker` as it stands.
    pub fn plan(&self, worker: &str) -> Plan {
        let partitions = (0..self.partitions)
            .filter(|&p| self.owners[p as usize].as_deref() == Some(worker))
            .collect();
        let epoch = self
            .members
            .get(worker)
            .map_or(self.epoch, |m| m.plan_epoch);
        Plan { epoch, partitions }
    }

    /// Marks a worker draining (or not); `false` when it is not a member.
    pub fn drain(&mut self, worker: &str, draining: bool) -> bool {
        match self.members.get_mut(worker) {
            Some(m) => {
                m.draining = draining;
                true
            }
            None => false,
        }
    }

    /// Moves the cluster one step on at `now`: the dead leave, confirmed revocations free
    /// their partitions, free partitions go to their owners, partitions that must move are
    /// revoked. Returns the workers whose plans changed (each then has the new epoch).
    pub fn step(&mut self, now: Millis) -> Vec<String> {
        if self.settling(now) {
            return Vec::new();
        }
        let dead: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| now.saturating_sub(m.seen) > self.timing.dead_after)
            .map(|(n, _)| n.clone())
            .collect();
        for name in &dead {
            self.members.remove(name);
            for owner in &mut self.owners {
                if owner.as_deref() == Some(name) {
                    *owner = None;
                }
            }
        }
        let members = &self.members;
        self.revoking.retain(|_, r| {
            members
                .get(&r.from)
                .is_some_and(|m| m.report.epoch < r.epoch)
        });

        let eligible = self.eligible();
        // A partition being revoked still counts as its old owner's: placement then keeps
        // wanting it elsewhere, and no third worker is chosen meanwhile.
        let mut current = self.owners.clone();
        for (&p, r) in &self.revoking {
            current[p as usize] = Some(r.from.clone());
        }
        let target = place(self.partitions, &eligible, &current);

        let next = self.epoch + 1;
        let mut changed = BTreeSet::new();
        for p in 0..self.partitions {
            let i = p as usize;
            if self.revoking.contains_key(&p) || target[i] == self.owners[i] {
                continue;
            }
            match self.owners[i].take() {
                // Taken from a live worker: free once it confirms.
                Some(from) => {
                    self.revoking.insert(
                        p,
                        Revocation {
                            from: from.clone(),
                            epoch: next,
                        },
                    );
                    changed.insert(from);
                }
                // Free: given.
                None => {
                    if let Some(to) = &target[i] {
                        changed.insert(to.clone());
                    }
                    self.owners[i] = target[i].clone();
                }
            }
        }
        if !changed.is_empty() {
            self.epoch = next;
            for name in &changed {
                if let Some(m) = self.members.get_mut(name) {
                    m.plan_epoch = next;
                }
            }
        }
        changed.into_iter().collect()
    }

    /// Whether every partition is where placement wants it and nothing moves.
    #[cfg(test)]
    fn balanced(&self) -> bool {
        self.revoking.is_empty()
            && place(self.partitions, &self.eligible(), &self.owners) == self.owners
    }

    /// The members that may own partitions.
    fn eligible(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, m)| !m.draining)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        dead_after: 5_000,
        lease: 4_000,
    };

    fn report(worker: &str, plan: &Plan) -> Report {
        Report {
            worker: worker.into(),
            address: format!("http://{worker}"),
            epoch: plan.epoch,
            partitions: plan.partitions.clone(),
            ..Report::default()
        }
    }

    /// A cluster past its settling time with `workers` that have applied their plans.
    struct Sim {
        cluster: Cluster,
        now: Millis,
        /// What each worker runs (its applied plan).
        running: BTreeMap<String, Plan>,
    }

    impl Sim {
        fn new(partitions: u32, workers: &[&str]) -> Sim {
            let mut sim = Sim {
                cluster: Cluster::new(partitions, TIMING, 1, 0),
                now: 0,
                running: BTreeMap::new(),
            };
            for w in workers {
                sim.running.insert(
                    w.to_string(),
                    Plan {
                        epoch: 0,
                        partitions: vec![],
                    },
                );
            }
            sim.beat_all();
            sim.now = TIMING.dead_after;
            sim.settle();
            sim
        }

        /// Every running worker heartbeats and applies its answer.
        fn beat_all(&mut self) {
            let names: Vec<String> = self.running.keys().cloned().collect();
            for w in names {
                let plan = self
                    .cluster
                    .heartbeat(report(&w, &self.running[&w]), self.now);
                self.apply(&w, plan);
            }
        }

        fn apply(&mut self, worker: &str, plan: Plan) {
            let running = self.running.get_mut(worker).unwrap();
            if plan.epoch >= running.epoch {
                *running = plan;
            }
            self.check_single_owner();
        }

        /// Steps and heartbeats until nothing changes.
        fn settle(&mut self) {
            for _ in 0..20 {
                self.now += 100;
                self.cluster.step(self.now);
                self.beat_all();
                if self.cluster.balanced() {
                    return;
                }
            }
            panic!("no balance: {:?}", self.cluster);
        }

        fn check_single_owner(&self) {
            let mut seen = BTreeMap::new();
            for (w, plan) in &self.running {
                for p in &plan.partitions {
                    if let Some(other) = seen.insert(*p, w) {
                        panic!("partition {p} runs on {other} and {w}");
                    }
                }
            }
        }

        fn counts(&self) -> Vec<usize> {
            self.running.values().map(|p| p.partitions.len()).collect()
        }
    }

    #[test]
    fn a_new_cluster_spreads_partitions_evenly() {
        let sim = Sim::new(64, &["a", "b", "c"]);
        let mut counts = sim.counts();
        counts.sort();
        assert_eq!(counts, [21, 21, 22]);
        assert!(sim.cluster.epoch() > 1 << 32);
    }

    #[test]
    fn nothing_is_planned_while_a_new_leader_settles() {
        let mut c = Cluster::new(8, TIMING, 3, 1_000);
        let plan = c.heartbeat(
            Report {
                worker: "a".into(),
                epoch: 7,
                partitions: vec![1, 2],
                ..Report::default()
            },
            1_000,
        );
        // The worker's own plan is confirmed (its lease renewed), nothing else happens.
        assert_eq!(plan.partitions, [1, 2]);
        assert_eq!(plan.epoch, 7);
        assert!(c.step(5_999).is_empty());
        assert_eq!(c.step(6_000), ["a"]);
        assert_eq!(c.plan("a").partitions.len(), 8);
        assert!(
            c.plan("a").epoch > 3 << 32,
            "above every earlier leader's epoch"
        );
    }

    #[test]
    fn a_joining_worker_gets_partitions_only_after_their_owner_let_go() {
        let mut sim = Sim::new(12, &["a", "b"]);
        sim.running.insert(
            "c".into(),
            Plan {
                epoch: 0,
                partitions: vec![],
            },
        );
        let before = sim.running.clone();
        // c's first heartbeat: revocations go to a and b; c gets nothing yet.
        sim.beat_all();
        sim.now += 100;
        let changed = sim.cluster.step(sim.now);
        assert_eq!(changed, ["a", "b"]);
        assert_eq!(sim.cluster.moving().len(), 4);
        assert!(sim.cluster.plan("c").partitions.is_empty());
        // Until a and b confirm, c gets nothing, however often the leader steps.
        for _ in 0..3 {
            sim.now += 100;
            assert!(sim.cluster.step(sim.now).is_empty());
        }
        sim.settle();
        assert_eq!(sim.counts(), [4, 4, 4]);
        // Only c's quota moved: a and b kept the rest.
        for w in ["a", "b"] {
            let kept = before[w]
                .partitions
                .iter()
                .filter(|p| sim.running[w].partitions.contains(p));
            assert_eq!(kept.count(), 4, "{w}");
        }
    }

    #[test]
    fn a_dead_workers_partitions_go_to_the_others_once_it_is_dead() {
        let mut sim = Sim::new(12, &["a", "b", "c"]);
        let lost = sim.running.remove("c").unwrap();
        // Silent, but not yet dead: its partitions stay its own.
        sim.now += TIMING.dead_after;
        sim.beat_all();
        sim.cluster.step(sim.now);
        assert_eq!(sim.cluster.plan("c").partitions, lost.partitions);
        sim.now += 1;
        sim.beat_all();
        let changed = sim.cluster.step(sim.now);
        assert_eq!(changed, ["a", "b"], "given at once: its lease has run out");
        sim.beat_all();
        assert!(sim.cluster.balanced());
        assert_eq!(sim.counts(), [6, 6]);
        assert!(!sim.cluster.members().contains_key("c"));
    }

    #[test]
    fn a_drained_worker_ends_with_nothing_and_can_come_back() {
        let mut sim = Sim::new(9, &["a", "b", "c"]);
        assert!(sim.cluster.drain("b", true));
        sim.settle();
        assert!(sim.running["b"].partitions.is_empty());
        assert_eq!(sim.counts(), [5, 0, 4]);
        assert!(!sim.cluster.drain("zz", true), "unknown worker");
        assert!(sim.cluster.drain("b", false));
        sim.settle();
        assert_eq!(sim.counts(), [3, 3, 3]);
    }

    #[test]
    fn a_revocation_the_worker_never_confirms_frees_the_partition_once_it_is_dead() {
        let mut sim = Sim::new(4, &["a", "b"]);
        sim.cluster.drain("a", true);
        sim.now += 100;
        assert_eq!(sim.cluster.step(sim.now), ["a"]);
        // a stops answering before it applied the revocation.
        let a = sim.running.remove("a").unwrap();
        sim.now += TIMING.dead_after + 1;
        sim.beat_all();
        sim.cluster.step(sim.now);
        sim.beat_all();
        assert_eq!(sim.running["b"].partitions.len(), 4);
        assert_eq!(a.partitions.len(), 2);
    }

    #[test]
    fn epochs_only_grow_and_every_changed_plan_carries_the_newest() {
        let mut sim = Sim::new(16, &["a", "b"]);
        let mut last = sim.cluster.epoch();
        for w in ["c", "d"] {
            sim.running.insert(
                w.into(),
                Plan {
                    epoch: 0,
                    partitions: vec![],
                },
            );
            sim.settle();
            assert!(sim.cluster.epoch() > last);
            last = sim.cluster.epoch();
        }
        assert_eq!(sim.counts(), [4, 4, 4, 4]);
        let newest = sim.running.values().map(|p| p.epoch).max().unwrap();
        assert_eq!(newest, sim.cluster.epoch());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const TIMING: Timing = Timing {
        dead_after: 5_000,
        lease: 4_000,
    };

    #[derive(Debug, Clone)]
    enum Op {
        /// Time passes (ms); each answering worker heartbeats with probability 0.7.
        Wait(u64),
        Join,
        /// A worker stops answering (dead, or cut off: it runs its plan until its lease ends).
        Silence(usize),
        /// A silent worker answers again.
        Revive(usize),
        Drain(usize, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (50u64..2_000).prop_map(Op::Wait),
            1 => Just(Op::Join),
            1 => (0usize..8).prop_map(Op::Silence),
            1 => (0usize..8).prop_map(Op::Revive),
            1 => (0usize..8, any::<bool>()).prop_map(|(w, d)| Op::Drain(w, d)),
        ]
    }

    struct Worker {
        name: String,
        answers: bool,
        running: Plan,
        lease_until: Millis,
    }

    proptest! {
        /// Whatever joins, dies, comes back or is drained, and whenever heartbeats come, no
        /// partition ever runs on two workers; once every live worker answers for a while,
        /// every partition runs somewhere and the placement is balanced.
        #[test]
        fn no_partition_ever_runs_twice(ops in prop::collection::vec(op(), 1..120), seed in any::<u64>()) {
            let mut rng = seed;
            let mut coin = move || {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (rng >> 33) % 10 < 7
            };
            let mut now: Millis = 0;
            let mut cluster = Cluster::new(16, TIMING, 1, now);
            let mut workers: Vec<Worker> = Vec::new();
            let beat = |w: &mut Worker, cluster: &mut Cluster, now: Millis| {
                let report = Report {
                    worker: w.name.clone(),
                    epoch: w.running.epoch,
                    partitions: w.running.partitions.clone(),
                    ..Report::default()
                };
                let plan = cluster.heartbeat(report, now);
                if plan.epoch >= w.running.epoch {
                    w.running = plan;
                }
                w.lease_until = now + TIMING.lease;
            };
            for op in ops {
                match op {
                    Op::Wait(ms) => {
                        now += ms;
                        for w in workers.iter_mut() {
                            if w.answers && coin() {
                                beat(w, &mut cluster, now);
                            }
                            if now >= w.lease_until {
                                w.running.partitions.clear();
                            }
                        }
                        cluster.step(now);
                    }
                    Op::Join => workers.push(Worker {
                        name: format!("w{}", workers.len()),
                        answers: true,
                        running: Plan { epoch: 0, partitions: vec![] },
                        lease_until: 0,
                    }),
                    Op::Silence(i) => if let Some(w) = workers.get_mut(i) { w.answers = false },
                    Op::Revive(i) => if let Some(w) = workers.get_mut(i) { w.answers = true },
                    Op::Drain(i, d) => if let Some(w) = workers.get(i) { cluster.drain(&w.name, d); },
                }
                let mut owner = BTreeMap::new();
                for w in &workers {
                    for p in &w.running.partitions {
                        if let Some(other) = owner.insert(*p, &w.name) {
                            prop_assert!(false, "partition {} runs on {} and {}", p, other, w.name);
                        }
                    }
                }
            }
            // Everyone answering comes to a balanced placement.
            let live = workers.iter().filter(|w| w.answers).count();
            let eligible = workers.iter().filter(|w| w.answers && !cluster.members().get(&w.name).is_some_and(|m| m.draining)).count();
            for _ in 0..40 {
                now += 500;
                for w in workers.iter_mut() {
                    if w.answers {
                        beat(w, &mut cluster, now);
                    } else if now >= w.lease_until {
                        w.running.partitions.clear();
                    }
                }
                cluster.step(now);
            }
            prop_assert_eq!(cluster.members().len(), live);
            if eligible > 0 {
                prop_assert!(cluster.balanced(), "{:?}", cluster);
                let running: usize = workers.iter().map(|w| w.running.partitions.len()).sum();
                prop_assert_eq!(running, 16);
            }
        }
    }
}

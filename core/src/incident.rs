//! Incidents (SPEC §11, issue 21): flows that leave `OK` together because of one cause, as one
//! incident — an input and its forwards in the same or the next tick (root: the input); most
//! of a LoB's or a country's inputs at once (root: the LoB, the country). A flow that leaves
//! `OK` on its own is an incident of its own.
//!
//! [`Incidents`] is fed every status change ([`Incidents::observe`], any order) and decides
//! once the tick after a change has ended ([`Incidents::settle`]): then it knows which flows
//! left together. An open incident takes in the flows its root covers that leave later: an
//! input's, its forwards leaving in the same or the next tick; a LoB's or a country's, its
//! flows leaving while `min_inputs` of its inputs are down. It ends when all its flows are
//! back to `OK` (or `N_A`). Deterministic: the same changes give the same incidents, however
//! often they are settled.

use std::collections::{BTreeSet, HashMap};

use crate::detection::Status;
use crate::id::{FlowId, FlowKind};
use crate::time::{Instant, utc_string};

/// What an incident is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Root {
    /// One flow: an input (with its forwards), or a forward alone.
    Flow(FlowId),
    /// Most of a line of business.
    Lob {
        /// Country code.
        country: String,
        /// Line of business.
        lob: String,
    },
    /// Most of a country.
    Country {
        /// Country code.
        country: String,
    },
}

impl Root {
    /// Whether a flow's leaving `OK` belongs to an incident of this root.
    pub fn covers(&self, flow: &FlowId) -> bool {
        match self {
            Root::Flow(root) => {
                root == flow
                    || (root.kind == FlowKind::Input
                        && flow.country == root.country
                        && flow.lob == root.lob
                        && flow.input_name() == Some(root.name.as_str()))
            }
            Root::Lob { country, lob } => flow.country == *country && flow.lob == *lob,
            Root::Country { country } => flow.country == *country,
        }
    }

    /// The country it is in.
    pub fn country(&self) -> &str {
        match self {
            Root::Flow(f) => &f.country,
            Root::Lob { country, .. } | Root::Country { country } => country,
        }
    }

    fn name(&self) -> String {
        match self {
            Root::Flow(f) => f.to_string(),
            Root::Lob { country, lob } => format!("{country}/{lob}"),
            Root::Country { country } => country.clone(),
        }
    }
}

/// One incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// `<root>@<start>`: stable for the same changes.
    pub id: String,
    /// What it is about.
    pub root: Root,
    /// Its flows (those that left `OK` in it).
    pub flows: BTreeSet<FlowId>,
    /// Start of the first tick that left `OK`.
    pub start: Instant,
    /// Start of the tick that brought its last flow back, once it has ended.
    pub end: Option<Instant>,
    /// The worst status any of its flows reached.
    pub worst: Status,
}

/// A change of one flow's status, as the incidents need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The flow.
    pub flow: FlowId,
    /// Start of the tick that changed it.
    pub start: Instant,
    /// Its end.
    pub end: Instant,
    /// Status before.
    pub previous: Status,
    /// Status after.
    pub new: Status,
}

/// What settling told: incidents opened (one message each) and ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A new incident, with the flows that left `OK` together.
    Opened(Incident),
    /// An incident whose flows are all back.
    Ended(Incident),
    /// An incident taken into a LoB- or country-wide one (`into`, its id) that opened a tick
    /// later: its flows are that one's now.
    Absorbed {
        /// The incident as it was.
        incident: Incident,
        /// The id of the incident that took it in.
        into: String,
    },
}

/// The longest tick a cluster's window and its decision wait for.
const MAX_TICK: Instant = 3600;

/// When most of a LoB or a country counts: more than `share` of its inputs have a flow not
/// `OK` (an input and its forwards count once: one input failing with many forwards is not
/// "most of the LoB"), and at least `min_inputs` of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Majority {
    /// Share of the inputs (0–1) that must be down together.
    pub share: f64,
    /// The fewest inputs that make a LoB- or country-wide incident.
    pub min_inputs: usize,
}

impl Default for Majority {
    fn default() -> Majority {
        Majority {
            share: 0.5,
            min_inputs: 4,
        }
    }
}

/// The input a flow counts under: itself, or a forward's input.
fn unit(f: &FlowId) -> (&str, &str, &str) {
    (&f.country, &f.lob, f.input_name().unwrap_or(&f.name))
}

/// A change that left `OK`, and the worst status its flow reached in the same cluster.
type Leaver<'c> = (&'c Change, Status);

/// Incidents of a set of flows; see the module documentation.
#[derive(Debug, Clone)]
pub struct Incidents {
    majority: Majority,
    /// Inputs per LoB and per country.
    lobs: HashMap<(String, String), usize>,
    countries: HashMap<String, usize>,
    /// The flows in `WARNING` or `OUTAGE` now.
    down: BTreeSet<FlowId>,
    /// Open incidents, oldest first.
    open: Vec<Incident>,
    /// Changes not settled yet.
    pending: Vec<Change>,
}

impl Incidents {
    /// Incidents of `flows` (every flow evaluated: what "most of a LoB" counts).
    pub fn new(majority: Majority, flows: impl IntoIterator<Item = FlowId>) -> Incidents {
        let mut i = Incidents {
            majority,
            lobs: HashMap::new(),
            countries: HashMap::new(),
            down: BTreeSet::new(),
            open: Vec::new(),
            pending: Vec::new(),
        };
        let flows: Vec<FlowId> = flows.into_iter().collect();
        let units: BTreeSet<(&str, &str, &str)> = flows.iter().map(unit).collect();
        for (country, lob, _) in units {
            *i.lobs.entry((country.into(), lob.into())).or_default() += 1;
            *i.countries.entry(country.into()).or_default() += 1;
        }
        i
    }

    /// The open incidents, oldest first.
    pub fn open(&self) -> &[Incident] {
        &self.open
    }

    /// Takes a status change; it counts at the next [`Incidents::settle`] after the tick that
    /// follows it has ended.
    pub fn observe(&mut self, change: Change) {
        // N_A ↔ OK (a daily flow between its days) moves nothing here; kept, such a change of
        // a long tick would hold every later one until it is decided.
        if change.previous.is_alarm() || change.new.is_alarm() {
            self.pending.push(change);
        }
    }

    /// Decides the changes whose next tick has ended by `now`, oldest first: a cluster is the
    /// changes that start within one tick of its first (flows that left together), decided
    /// once that next tick has ended; later changes wait.
    pub fn settle(&mut self, now: Instant) -> Vec<Update> {
        self.pending
            .sort_by(|a, b| (a.start, &a.flow).cmp(&(b.start, &b.flow)));
        let mut out = Vec::new();
        while let Some(first) = self.pending.first() {
            // Ticks longer than an hour count as one: a change is decided at most an hour after
            // its tick, and a cluster spans at most two hours (a four-hour or a daily flow's
            // change held every later change, of every flow, for that long). A forward leaving
            // in its input's next long tick still joins the input's open incident.
            let tick = (first.end - first.start).min(MAX_TICK);
            let horizon = first.end.saturating_add(tick);
            if horizon > now {
                break;
            }
            let window = first.start.saturating_add(2 * tick);
            let n = self.pending.iter().take_while(|c| c.start < window).count();
            let cluster: Vec<Change> = self.pending.drain(..n).collect();
            self.cluster(&cluster, &mut out);
        }
        out
    }

    fn cluster(&mut self, changes: &[Change], out: &mut Vec<Update>) {
        // The flows that left `OK`, with the worst status each reached in the cluster.
        let mut leavers: Vec<Leaver<'_>> = Vec::new();
        for c in changes {
            match (c.previous.is_alarm(), c.new.is_alarm()) {
                (false, true) => {
                    self.down.insert(c.flow.clone());
                    leavers.push((c, c.new));
                }
                (true, true) => {
                    self.down.insert(c.flow.clone());
                    if let Some(l) = leavers.iter_mut().find(|l| l.0.flow == c.flow) {
                        l.1 = l.1.max(c.new);
                    }
                    if let Some(i) = self.open.iter_mut().find(|i| i.flows.contains(&c.flow)) {
                        i.worst = i.worst.max(c.new);
                    }
                }
                (true, false) => {
                    self.down.remove(&c.flow);
                    self.recovered(c, out);
                }
                (false, false) => {}
            }
        }
        // Into an open incident that covers it: an input's (or a flow's) when it leaves in the
        // same or the next tick as the incident began; a LoB's or a country's while at least
        // `min_inputs` of its inputs are down.
        let lasting: Vec<bool> = (self.open.iter())
            .map(|i| !matches!(i.root, Root::Flow(_)) && self.lasts(&i.root))
            .collect();
        leavers.retain(|(c, worst)| {
            let found = (self.open.iter_mut().zip(&lasting)).find(|(i, lasts)| {
                let joins = match i.root {
                    Root::Flow(_) => c.start < i.start.saturating_add(2 * (c.end - c.start)),
                    _ => **lasts,
                };
                joins && i.root.covers(&c.flow)
            });
            let Some((i, _)) = found else {
                return true;
            };
            i.flows.insert(c.flow.clone());
            i.worst = i.worst.max(*worst);
            false
        });
        // Most of a country, then of a LoB, at once (taking in the incidents of its flows
        // opened within the tick before).
        let since = changes.first().map_or(0, |c| c.start - (c.end - c.start));
        let countries: BTreeSet<String> =
            leavers.iter().map(|l| l.0.flow.country.clone()).collect();
        for country in countries {
            let down = self.inputs_down(|f| f.country == country);
            if self.most(down, self.countries.get(&country)) {
                let root = Root::Country { country };
                self.open_with(root, &mut leavers, since, out);
            }
        }
        let lobs: BTreeSet<(String, String)> = leavers
            .iter()
            .map(|l| (l.0.flow.country.clone(), l.0.flow.lob.clone()))
            .collect();
        for (country, lob) in lobs {
            let down = self.inputs_down(|f| f.country == country && f.lob == lob);
            if self.most(down, self.lobs.get(&(country.clone(), lob.clone()))) {
                self.open_with(Root::Lob { country, lob }, &mut leavers, since, out);
            }
        }
        // Each input with its forwards; then each forward left alone.
        let inputs: Vec<FlowId> = (leavers.iter())
            .filter(|l| l.0.flow.kind == FlowKind::Input)
            .map(|l| l.0.flow.clone())
            .collect();
        for input in inputs {
            self.open_with(Root::Flow(input), &mut leavers, since, out);
        }
        while let Some((c, _)) = leavers.first() {
            let root = Root::Flow(c.flow.clone());
            self.open_with(root, &mut leavers, since, out);
        }
    }

    /// How many inputs have a flow down among the flows `within`.
    fn inputs_down(&self, within: impl Fn(&FlowId) -> bool) -> usize {
        let units: BTreeSet<(&str, &str, &str)> =
            self.down.iter().filter(|f| within(f)).map(unit).collect();
        units.len()
    }

    /// Whether the cause of a LoB's or a country's incident lasts: at least `min_inputs` of its
    /// inputs down.
    fn lasts(&self, root: &Root) -> bool {
        self.inputs_down(|f| root.covers(f)) >= self.majority.min_inputs
    }

    fn most(&self, down: usize, of: Option<&usize>) -> bool {
        let of = of.copied().unwrap_or(0);
        down >= self.majority.min_inputs && down as f64 > self.majority.share * of as f64
    }

    /// Opens an incident of `root` with the leavers it covers (taken out of `leavers`) and the
    /// open incidents within it that started at `since` or later (a LoB going down over two
    /// ticks is one incident).
    fn open_with(
        &mut self,
        root: Root,
        leavers: &mut Vec<Leaver<'_>>,
        since: Instant,
        out: &mut Vec<Update>,
    ) {
        let (mine, rest): (Vec<Leaver<'_>>, Vec<Leaver<'_>>) =
            leavers.iter().partition(|l| root.covers(&l.0.flow));
        *leavers = rest;
        let Some(start) = mine.iter().map(|l| l.0.start).min() else {
            return;
        };
        let mut flows: BTreeSet<FlowId> = mine.iter().map(|l| l.0.flow.clone()).collect();
        let mut worst = mine.iter().map(|l| l.1).max().unwrap_or(Status::Warning);
        let mut first = start;
        let mut inside = Vec::new();
        if !matches!(root, Root::Flow(_)) {
            let others;
            (inside, others) = std::mem::take(&mut self.open)
                .into_iter()
                .partition(|i| i.start >= since && i.flows.iter().all(|f| root.covers(f)));
            self.open = others;
            for i in &inside {
                flows.extend(i.flows.iter().cloned());
                worst = worst.max(i.worst);
                first = first.min(i.start);
            }
        }
        let id = format!("{}@{}", root.name(), utc_string(first));
        for incident in inside {
            let into = id.clone();
            out.push(Update::Absorbed { incident, into });
        }
        let incident = Incident {
            id,
            flows,
            worst,
            root,
            start: first,
            end: None,
        };
        out.push(Update::Opened(incident.clone()));
        self.open.push(incident);
    }

    /// Ends the incidents of `c`'s flow (it may be in more than one: it left again after its
    /// first incident's tick) whose flows are none of them down any more.
    fn recovered(&mut self, c: &Change, out: &mut Vec<Update>) {
        let down = &self.down;
        let (ended, open): (Vec<Incident>, Vec<Incident>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|i| i.flows.contains(&c.flow) && !i.flows.iter().any(|f| down.contains(f)));
        self.open = open;
        for mut i in ended {
            i.end = Some(c.start);
            out.push(Update::Ended(i));
        }
    }
}

#[cfg(test)]
mod tests;

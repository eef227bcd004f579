//! Backtests: what two configurations would have done with the same traffic (SPEC §10,
//! `flowwatch replay --compare` and the gateway's comparison) — per flow, the `OUTAGE` and
//! `WARNING` episodes and the status changes each raises.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::detection::Status;
use crate::id::FlowId;

/// What one configuration raised on one flow (or on all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Episodes {
    /// Runs of consecutive `OUTAGE` ticks.
    pub outage: u64,
    /// Runs of consecutive `WARNING` ticks.
    pub warning: u64,
    /// Ticks whose status differs from the tick before (the first tick's from `N_A`, as a
    /// live flow's first evaluation is an event): the alarms a subscriber would receive.
    pub changes: u64,
}

impl Episodes {
    fn add(&mut self, other: &Episodes) {
        self.outage += other.outage;
        self.warning += other.warning;
        self.changes += other.changes;
    }
}

/// Counts the episodes of one flow from its ticks' statuses in time order.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    last: Status,
    episodes: Episodes,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            last: Status::NotAvailable,
            episodes: Episodes::default(),
        }
    }
}

impl Tally {
    /// The next tick's status.
    pub fn push(&mut self, status: Status) {
        if status != self.last {
            self.episodes.changes += 1;
            match status {
                Status::Outage => self.episodes.outage += 1,
                Status::Warning => self.episodes.warning += 1,
                Status::Ok | Status::NotAvailable => {}
            }
        }
        self.last = status;
    }

    /// The counts so far.
    pub fn episodes(&self) -> Episodes {
        self.episodes
    }
}

/// One flow under both configurations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowComparison {
    /// The flow.
    pub flow: FlowId,
    /// Under the current configuration (zero where it does not evaluate the flow).
    pub current: Episodes,
    /// Under the candidate.
    pub candidate: Episodes,
}

impl FlowComparison {
    /// How much the two differ: the sum of the counts' absolute differences.
    pub fn distance(&self) -> u64 {
        let (a, b) = (&self.current, &self.candidate);
        a.outage.abs_diff(b.outage) + a.warning.abs_diff(b.warning) + a.changes.abs_diff(b.changes)
    }
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// Flows the current configuration evaluates.
    pub current_flows: u64,
    /// Flows the candidate evaluates.
    pub candidate_flows: u64,
    /// All flows under the current configuration.
    pub current: Episodes,
    /// All flows under the candidate.
    pub candidate: Episodes,
    /// The flows whose counts differ most, most first (ties by flow), those that differ only.
    pub flows: Vec<FlowComparison>,
}

/// Compares per-flow counts (`current`, `candidate`), keeping the `top` flows that differ
/// most.
pub fn compare(
    current: &BTreeMap<FlowId, Episodes>,
    candidate: &BTreeMap<FlowId, Episodes>,
    top: usize,
) -> Comparison {
    let mut all = Comparison {
        current_flows: current.len() as u64,
        candidate_flows: candidate.len() as u64,
        current: Episodes::default(),
        candidate: Episodes::default(),
        flows: Vec::new(),
    };
    current.values().for_each(|e| all.current.add(e));
    candidate.values().for_each(|e| all.candidate.add(e));
    let flows: std::collections::BTreeSet<&FlowId> =
        current.keys().chain(candidate.keys()).collect();
    let mut differ: Vec<FlowComparison> = flows
        .into_iter()
        .map(|f| FlowComparison {
            flow: f.clone(),
            current: current.get(f).copied().unwrap_or_default(),
            candidate: candidate.get(f).copied().unwrap_or_default(),
        })
        .filter(|c| c.distance() > 0)
        .collect();
    // Stable: among equal distances the flows stay in their order.
    differ.sort_by_key(|c| std::cmp::Reverse(c.distance()));
    differ.truncate(top);
    all.flows = differ;
    all
}

/// The comparison as text: a table of the totals, then one of the flows that differ most.
pub fn render(c: &Comparison) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let row = |out: &mut String, what: &str, a: u64, b: u64| {
        let change = if a == 0 {
            String::new()
        } else {
            format!("{:+.1} %", (b as f64 - a as f64) / a as f64 * 100.0)
        };
        writeln!(out, "| {what} | {a} | {b} | {change} |").expect("a String");
    };
    out.push_str("| | current | candidate | change |\n| --- | --- | --- | --- |\n");
    row(
        &mut out,
        "flows evaluated",
        c.current_flows,
        c.candidate_flows,
    );
    row(
        &mut out,
        "OUTAGE episodes",
        c.current.outage,
        c.candidate.outage,
    );
    row(
        &mut out,
        "WARNING episodes",
        c.current.warning,
        c.candidate.warning,
    );
    row(
        &mut out,
        "status changes",
        c.current.changes,
        c.candidate.changes,
    );
    if c.flows.is_empty() {
        out.push_str("\nNo flow's counts differ.\n");
        return out;
    }
    writeln!(
        out,
        "\nThe {} flows whose counts differ most (current → candidate):\n\n\
         | flow | OUTAGE episodes | WARNING episodes | status changes |\n| --- | --- | --- | --- |",
        c.flows.len()
    )
    .expect("a String");
    for f in &c.flows {
        let (a, b) = (&f.current, &f.candidate);
        writeln!(
            out,
            "| {} | {} → {} | {} → {} | {} → {} |",
            f.flow, a.outage, b.outage, a.warning, b.warning, a.changes, b.changes
        )
        .expect("a String");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlowKind;

    fn flow(name: &str) -> FlowId {
        FlowId::new("CZ", "GSM", FlowKind::Input, name).unwrap()
    }

    fn tally(statuses: &str) -> Episodes {
        let mut t = Tally::default();
        for s in statuses.split_whitespace() {
            t.push(Status::parse(s).unwrap());
        }
        t.episodes()
    }

    #[test]
    fn episodes_are_runs_and_changes_are_transitions() {
        let e = tally("N_A OK WARNING OUTAGE OUTAGE OK OUTAGE WARNING WARNING OK");
        assert_eq!(
            e,
            Episodes {
                outage: 2,
                warning: 2,
                changes: 7,
            }
        );
        assert_eq!(tally("OUTAGE OUTAGE").outage, 1);
        assert_eq!(
            tally("OUTAGE").changes,
            1,
            "the first evaluation is a change"
        );
    }

    #[test]
    fn the_flows_that_differ_most_come_first_and_equal_ones_are_left_out() {
        let current = BTreeMap::from([
            (flow("A"), tally("OK OUTAGE OK")),
            (flow("B"), tally("OK WARNING OK WARNING OK OUTAGE OK")),
            (flow("C"), tally("OK")),
        ]);
        let candidate = BTreeMap::from([
            (flow("A"), tally("OK OUTAGE OK")),
            (flow("B"), tally("OK")),
            (flow("D"), tally("OK WARNING OK")),
        ]);
        let c = compare(&current, &candidate, 20);
        assert_eq!((c.current_flows, c.candidate_flows), (3, 3));
        assert_eq!(c.current.outage, 2);
        assert_eq!(c.candidate.outage, 1);
        let order: Vec<&str> = c.flows.iter().map(|f| &*f.flow.name).collect();
        // B: 1 + 2 + 6 apart; D: 0 + 1 + 3 (absent from current); C: 1 change; A: equal.
        assert_eq!(order, ["B", "D", "C"]);
        assert_eq!(compare(&current, &candidate, 1).flows.len(), 1);
        let text = render(&c);
        assert!(
            text.contains("| OUTAGE episodes | 2 | 1 | -50.0 % |"),
            "{text}"
        );
        assert!(
            text.contains("| CZ/GSM/input/B | 1 → 0 | 2 → 0 | 7 → 1 |"),
            "{text}"
        );
    }
}

//! Incidents: an input with its forwards, a LoB, a country, a forward alone; ends; the same
//! incidents however often they are settled.

use super::*;
use proptest::prelude::*;

const T0: Instant = 1_486_540_800; // 2017-02-08T08:00:00Z
const HOUR: Instant = 3600;

fn input(lob: &str, name: &str) -> FlowId {
    FlowId::new("CZ", lob, FlowKind::Input, name).unwrap()
}

fn forward(lob: &str, input: &str, to: &str) -> FlowId {
    FlowId::new("CZ", lob, FlowKind::Forward, &format!("{input}:{to}")).unwrap()
}

/// CZ: GSM with inputs A (forwards BILL, FOX, FRAUD), B, C, D; SMS with inputs S1…S4; DE: one
/// input. 12 flows.
fn flows() -> Vec<FlowId> {
    let mut f = vec![input("GSM", "A")];
    f.extend(["BILL", "FOX", "FRAUD"].map(|to| forward("GSM", "A", to)));
    f.extend(["B", "C", "D"].map(|n| input("GSM", n)));
    f.extend(["S1", "S2", "S3", "S4"].map(|n| input("SMS", n)));
    f.push(FlowId::new("DE", "GSM", FlowKind::Input, "X").unwrap());
    f
}

/// `flow` changed from `from` to `to` in the hour starting at `T0 + hour` hours.
fn change(flow: &FlowId, hour: i64, from: Status, to: Status) -> Change {
    Change {
        flow: flow.clone(),
        start: T0 + hour * HOUR,
        end: T0 + (hour + 1) * HOUR,
        previous: from,
        new: to,
    }
}

fn down(flow: &FlowId, hour: i64) -> Change {
    change(flow, hour, Status::Ok, Status::Outage)
}

fn up(flow: &FlowId, hour: i64) -> Change {
    change(flow, hour, Status::Outage, Status::Ok)
}

fn opened(updates: &[Update]) -> Vec<&Incident> {
    updates
        .iter()
        .filter_map(|u| match u {
            Update::Opened(i) => Some(i),
            _ => None,
        })
        .collect()
}

#[test]
fn an_input_and_its_forwards_are_one_incident_until_all_are_back() {
    let mut inc = Incidents::new(Majority::default(), flows());
    let a = input("GSM", "A");
    inc.observe(down(&a, 0));
    inc.observe(down(&forward("GSM", "A", "BILL"), 0));
    inc.observe(down(&forward("GSM", "A", "FOX"), 1));
    // Not decided until the tick after the first change has ended.
    assert!(inc.settle(T0 + 2 * HOUR - 1).is_empty());
    let updates = inc.settle(T0 + 3 * HOUR);
    let o = opened(&updates);
    assert_eq!(o.len(), 1, "{updates:?}");
    assert_eq!(o[0].root, Root::Flow(a.clone()));
    assert_eq!(o[0].id, "CZ/GSM/input/A@2017-02-08T08:00:00Z");
    assert_eq!(o[0].flows.len(), 3);
    // The third forward, hours later, is a cause of its own, even with its input still down.
    let fraud = forward("GSM", "A", "FRAUD");
    inc.observe(down(&fraud, 4));
    let o = inc.settle(T0 + 6 * HOUR);
    assert_eq!(opened(&o)[0].root, Root::Flow(fraud.clone()), "{o:?}");
    // The input's incident ends when the last of its flows is back.
    inc.observe(up(&a, 6));
    inc.observe(up(&forward("GSM", "A", "BILL"), 6));
    assert!(inc.settle(T0 + 8 * HOUR).is_empty());
    inc.observe(up(&forward("GSM", "A", "FOX"), 7));
    let updates = inc.settle(T0 + 9 * HOUR);
    let Some(Update::Ended(ended)) = updates.first() else {
        panic!("{updates:?}");
    };
    assert_eq!(ended.id, "CZ/GSM/input/A@2017-02-08T08:00:00Z");
    assert_eq!(ended.end, Some(T0 + 7 * HOUR));
    assert_eq!(ended.worst, Status::Outage);
    assert_eq!(inc.open().len(), 1, "FRAUD's is still open");
}

#[test]
fn a_forward_leaving_hours_after_its_input_is_another_incident() {
    let mut inc = Incidents::new(Majority::default(), flows());
    let (a, bill, fox) = (
        input("GSM", "A"),
        forward("GSM", "A", "BILL"),
        forward("GSM", "A", "FOX"),
    );
    inc.observe(down(&a, 0));
    inc.observe(down(&bill, 0));
    inc.observe(up(&a, 2));
    // BILL still down keeps the incident open, but FOX leaves hours later: a new cause.
    inc.observe(down(&fox, 5));
    let updates = inc.settle(T0 + 10 * HOUR);
    let roots: Vec<&Root> = opened(&updates).iter().map(|i| &i.root).collect();
    assert_eq!(roots, [&Root::Flow(a), &Root::Flow(fox)]);
}

#[test]
fn a_forward_alone_and_inputs_apart_are_incidents_of_their_own() {
    let mut inc = Incidents::new(Majority::default(), flows());
    inc.observe(down(&forward("GSM", "A", "FOX"), 0));
    inc.observe(down(&input("GSM", "B"), 0));
    inc.observe(down(&input("SMS", "S1"), 3));
    let updates = inc.settle(T0 + 10 * HOUR);
    let roots: Vec<&Root> = opened(&updates).iter().map(|i| &i.root).collect();
    assert_eq!(
        roots,
        [
            &Root::Flow(input("GSM", "B")),
            &Root::Flow(forward("GSM", "A", "FOX")),
            &Root::Flow(input("SMS", "S1")),
        ]
    );
}

#[test]
fn most_of_a_lob_at_once_is_one_incident_of_the_lob() {
    let mut inc = Incidents::new(Majority::default(), flows());
    // Four of SMS's four inputs within two ticks.
    for (name, hour) in [("S1", 0), ("S2", 0), ("S3", 1), ("S4", 1)] {
        inc.observe(down(&input("SMS", name), hour));
    }
    let updates = inc.settle(T0 + 3 * HOUR);
    let o = opened(&updates);
    assert_eq!(o.len(), 1, "{updates:?}");
    assert_eq!(
        o[0].root,
        Root::Lob {
            country: "CZ".into(),
            lob: "SMS".into()
        }
    );
    assert_eq!(o[0].flows.len(), 4);
    // Back; then three of GSM's seven flows are not most of it.
    for name in ["S1", "S2", "S3", "S4"] {
        inc.observe(up(&input("SMS", name), 4));
    }
    for name in ["B", "C", "D"] {
        inc.observe(down(&input("GSM", name), 5));
    }
    assert_eq!(opened(&inc.settle(T0 + 8 * HOUR)).len(), 3);
}

#[test]
fn a_lob_going_down_over_two_settles_takes_in_the_first_incidents() {
    let mut inc = Incidents::new(Majority::default(), flows());
    inc.observe(down(&input("SMS", "S1"), 0));
    inc.observe(down(&input("SMS", "S2"), 0));
    assert_eq!(opened(&inc.settle(T0 + 2 * HOUR)).len(), 2);
    inc.observe(down(&input("SMS", "S3"), 1));
    inc.observe(down(&input("SMS", "S4"), 1));
    let updates = inc.settle(T0 + 3 * HOUR);
    let absorbed = updates
        .iter()
        .filter(
            |u| matches!(u, Update::Absorbed { into, .. } if into == "CZ/SMS@2017-02-08T08:00:00Z"),
        )
        .count();
    assert_eq!(absorbed, 2, "{updates:?}");
    assert_eq!(inc.open().len(), 1);
    assert_eq!(inc.open()[0].flows.len(), 4);
}

#[test]
fn most_of_a_country_is_one_incident_of_the_country() {
    let mut inc = Incidents::new(Majority::default(), flows());
    let mut all = flows();
    all.retain(|f| f.country == "CZ");
    for f in all.iter().take(9) {
        inc.observe(down(f, 0));
    }
    let updates = inc.settle(T0 + 2 * HOUR);
    let o = opened(&updates);
    assert_eq!(o.len(), 1, "{updates:?}");
    assert_eq!(
        o[0].root,
        Root::Country {
            country: "CZ".into()
        }
    );
    assert_eq!(o[0].flows.len(), 9);
}

#[test]
fn the_worst_status_is_kept() {
    let mut inc = Incidents::new(Majority::default(), flows());
    let b = input("GSM", "B");
    inc.observe(change(&b, 0, Status::Ok, Status::Warning));
    inc.observe(change(&b, 1, Status::Warning, Status::Outage));
    inc.observe(change(&b, 2, Status::Outage, Status::Warning));
    inc.settle(T0 + 5 * HOUR);
    assert_eq!(inc.open()[0].worst, Status::Outage);
}

proptest! {
    /// Settling after every tick or once at the end gives the same incidents.
    #[test]
    fn the_same_changes_give_the_same_incidents(
        changes in proptest::collection::vec((0usize..12, 0i64..12, any::<bool>()), 0..40),
    ) {
        let all = flows();
        let mut state: HashMap<FlowId, bool> = HashMap::new();
        let mut feed = Vec::new();
        let mut sorted = changes.clone();
        sorted.sort_by_key(|c| c.1);
        for (f, hour, go_down) in sorted {
            let flow = &all[f];
            let is_down = state.get(flow).copied().unwrap_or(false);
            if go_down != is_down {
                state.insert(flow.clone(), go_down);
                feed.push(if go_down { down(flow, hour) } else { up(flow, hour) });
            }
        }
        let run = |every: bool| {
            let mut inc = Incidents::new(Majority::default(), all.clone());
            let mut updates = Vec::new();
            for c in &feed {
                inc.observe(c.clone());
                if every {
                    updates.extend(inc.settle(c.start));
                }
            }
            updates.extend(inc.settle(T0 + 100 * HOUR));
            (updates, inc.open().to_vec())
        };
        let (once, open_once) = run(false);
        let (often, open_often) = run(true);
        prop_assert_eq!(once, often);
        prop_assert_eq!(open_once, open_often);
    }
}

#[test]
fn a_flow_in_two_incidents_ends_both_when_all_are_back() {
    let mut inc = Incidents::new(Majority::default(), flows());
    let (a, bill) = (input("GSM", "A"), forward("GSM", "A", "BILL"));
    inc.observe(down(&a, 0));
    inc.observe(down(&bill, 0));
    inc.observe(up(&a, 2));
    // A leaves again hours later while BILL still holds the first incident open.
    inc.observe(down(&a, 5));
    assert_eq!(opened(&inc.settle(T0 + 7 * HOUR)).len(), 2);
    inc.observe(up(&bill, 8));
    inc.observe(up(&a, 9));
    let updates = inc.settle(T0 + 11 * HOUR);
    let ended = updates
        .iter()
        .filter(|u| matches!(u, Update::Ended(_)))
        .count();
    assert_eq!(ended, 2, "{updates:?}");
    assert!(inc.open().is_empty());
}

/// Regression: a daily flow's change (N_A → OK between its days, or an outage of yesterday)
/// held every later change of every flow until a day after its own day had ended; the demo's
/// incidents view stayed empty for hours.
#[test]
fn a_daily_flows_change_does_not_hold_the_hourly_ones() {
    let mut inc = Incidents::new(Majority::default(), flows());
    let day = |flow: &FlowId, from: Status, to: Status| Change {
        flow: flow.clone(),
        start: T0 - 9 * HOUR,
        end: T0 + 15 * HOUR,
        previous: from,
        new: to,
    };
    inc.observe(day(&input("SMS", "S1"), Status::NotAvailable, Status::Ok));
    inc.observe(day(&input("SMS", "S2"), Status::Ok, Status::Outage));
    inc.observe(down(&input("GSM", "B"), 17));
    // An hour after the daily tick ended, and the hour after B's change: both decided.
    let updates = inc.settle(T0 + 19 * HOUR);
    let roots: Vec<&Root> = opened(&updates).iter().map(|i| &i.root).collect();
    assert_eq!(
        roots,
        [
            &Root::Flow(input("SMS", "S2")),
            &Root::Flow(input("GSM", "B"))
        ]
    );
}

/// Regression: a four-hour flow's change held an hourly flow's change of the hours after it
/// until four hours after its tick (the UI's incidents test, with the demo's four-hour flows).
#[test]
fn a_long_ticks_change_holds_the_others_an_hour_at_most() {
    let mut inc = Incidents::new(Majority::default(), flows());
    inc.observe(Change {
        end: T0 + 4 * HOUR,
        ..down(&input("SMS", "S1"), 0)
    });
    inc.observe(down(&input("GSM", "B"), 2));
    // Both decided an hour after S1's tick ended, not four.
    let updates = inc.settle(T0 + 5 * HOUR);
    let roots: Vec<&Root> = opened(&updates).iter().map(|i| &i.root).collect();
    assert_eq!(
        roots,
        [
            &Root::Flow(input("SMS", "S1")),
            &Root::Flow(input("GSM", "B"))
        ]
    );
}

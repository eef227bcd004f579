//! Incidents on the generator (`flowwatch-loadtest incidents`, issue 21): the realistic data
//! sets of [`crate::quality`], replayed under their document with each detector, their flows'
//! status changes grouped into incidents by [`flowwatch_core::incident`]; how many messages
//! each kind of outage (and each unlisted holiday-like day) makes as flow alarms — one per
//! status change, what `flowwatch.alarms.>` carries — and as incidents.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use flowwatch_core::FlowId;
use flowwatch_core::config::Config;
use flowwatch_core::detection::Status;
use flowwatch_core::incident::{Change, Incident, Incidents, Majority, Root, Update};
use flowwatch_core::replay::Window;
use flowwatch_core::time::{Instant, parse_rfc3339};
use flowwatch_generator::Dataset;
use serde_json::{Value, json};

use crate::quality::{DETECTORS, FlowRecords, Quality, dataset, records, replay_all, under};
use crate::score::parse_labels;

/// Messages of one kind of event (an outage kind, or unlisted days).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Tally {
    /// Events of the kind.
    pub events: u64,
    /// Flow alarm messages (status changes of the flows it touched, within it).
    pub alarms: u64,
    /// Incidents opened within it that hold one of those flows.
    pub incidents: u64,
}

/// The measurement over every seed: per kind, and in total (every status change against
/// every incident message: opened, ended, taken in).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Measured {
    /// Per outage kind, and `unlistedDay`.
    pub by_kind: BTreeMap<String, Tally>,
    /// Status changes of every flow (flow alarm messages).
    pub changes: u64,
    /// Incident messages.
    pub incident_messages: u64,
}

/// Measures every seed of `q`, under each of [`DETECTORS`].
pub fn run(q: &Quality) -> Result<[Measured; 2]> {
    let mut m: [Measured; 2] = Default::default();
    for &seed in &q.seeds {
        let (data, window) = dataset(q, seed);
        let records = records(&data, q);
        for (detector, m) in DETECTORS.iter().zip(m.iter_mut()) {
            measure(&data, &under(&data, detector)?, &records, window, m)?;
        }
    }
    Ok(m)
}

fn measure(
    data: &Dataset,
    config: &Config,
    records: &[FlowRecords],
    window: Window,
    m: &mut Measured,
) -> Result<()> {
    let ticks = replay_all(config, records, window);
    let mut by_flow: HashMap<FlowId, Vec<Change>> = HashMap::new();
    let mut incidents = Incidents::new(
        Majority::default(),
        data.flow_shapes().map(|(f, _)| f.clone()),
    );
    for ((flow, _), ticks) in records.iter().zip(ticks) {
        let mut previous = Status::NotAvailable;
        let mut changes = Vec::new();
        for t in ticks {
            if t.status != previous {
                changes.push(Change {
                    flow: flow.clone(),
                    start: t.start,
                    end: t.end,
                    previous,
                    new: t.status,
                });
                previous = t.status;
            }
        }
        m.changes += changes.len() as u64;
        for c in &changes {
            incidents.observe(c.clone());
        }
        by_flow.insert(flow.clone(), changes);
    }
    // One settle decides every change in order: the same incidents as settling as they come.
    let updates = incidents.settle(Instant::MAX);
    m.incident_messages += updates.len() as u64;
    let opened: Vec<Incident> = (updates.into_iter())
        .filter_map(|u| match u {
            Update::Opened(i) => Some(i),
            _ => None,
        })
        .collect();
    // Each labelled outage: its flow and, for an input, its forwards.
    let labels = parse_labels(&serde_json::to_string(data.outages())?, "labels")?;
    let flows: Vec<&FlowId> = by_flow.keys().collect();
    let within = |root: Root| -> BTreeSet<&FlowId> {
        flows.iter().copied().filter(|f| root.covers(f)).collect()
    };
    for l in &labels {
        let touched = within(Root::Flow(l.flow.clone()));
        tally(m, &l.kind, &touched, (l.start, l.end), &by_flow, &opened);
    }
    for day in data.unlisted_days() {
        let span = (parse_rfc3339(&day.start)?, parse_rfc3339(&day.end)?);
        let touched = within(Root::Country {
            country: day.country,
        });
        tally(m, "unlistedDay", &touched, span, &by_flow, &opened);
    }
    Ok(())
}

/// Adds one event's messages: the status changes of `touched` in the ticks that overlap `span`
/// (or the hour after it, when recoveries land), and the incidents opened with one of those
/// changes that hold one of them.
fn tally(
    m: &mut Measured,
    kind: &str,
    touched: &BTreeSet<&FlowId>,
    (start, end): (Instant, Instant),
    by_flow: &HashMap<FlowId, Vec<Change>>,
    opened: &[Incident],
) {
    let until = end + 3600;
    let t = m.by_kind.entry(kind.to_owned()).or_default();
    t.events += 1;
    // The first tick of the event may start before it.
    let mut first = until;
    for f in touched {
        for c in by_flow[*f]
            .iter()
            .filter(|c| c.end > start && c.start < until)
        {
            t.alarms += 1;
            first = first.min(c.start);
        }
    }
    t.incidents += opened
        .iter()
        .filter(|i| i.start >= first && i.start < until)
        .filter(|i| i.flows.iter().any(|f| touched.contains(f)))
        .count() as u64;
}

/// The result as JSON.
pub fn to_json(q: &Quality, m: &[Measured; 2]) -> Value {
    let per: serde_json::Map<String, Value> = (DETECTORS.iter())
        .zip(m)
        .map(|(d, m)| ((*d).to_owned(), detector_json(m)))
        .collect();
    json!({
        "scenario": "incidents",
        "seeds": q.seeds,
        "flows": q.flows,
        "days": q.days,
        "start": q.start.to_string(),
        "warmUpDays": q.warm_up_days,
        "detectors": per,
    })
}

fn detector_json(m: &Measured) -> Value {
    let kinds: serde_json::Map<String, Value> = m
        .by_kind
        .iter()
        .map(|(kind, t)| {
            let v = json!({
                "events": t.events,
                "flowAlarmMessages": t.alarms,
                "incidents": t.incidents,
            });
            (kind.clone(), v)
        })
        .collect();
    json!({
        "statusChanges": m.changes,
        "incidentMessages": m.incident_messages,
        "byKind": kinds,
    })
}

/// The result as Markdown: a table per detector.
pub fn markdown(q: &Quality, m: &[Measured; 2]) -> String {
    let mut out = format!(
        "## Incidents: flow alarms vs incidents\n\n{} seeds × {} flows × {} days from {} \
         (the first {} days are history only), realistic shapes, the generated document \
         under each detector.\n",
        q.seeds.len(),
        q.flows,
        q.days,
        q.start,
        q.warm_up_days,
    );
    for (detector, m) in DETECTORS.iter().zip(m) {
        out.push_str(&format!(
            "\n### {detector}\n\nEvery status change: {} flow alarm messages; {} incident \
             messages (opened, ended, taken in).\n\n\
             | event | events | flow alarm messages | per event | incidents opened | per event |\n\
             | --- | --- | --- | --- | --- | --- |\n",
            m.changes, m.incident_messages,
        ));
        for (kind, t) in &m.by_kind {
            let per = |n: u64| n as f64 / t.events.max(1) as f64;
            out.push_str(&format!(
                "| {kind} | {} | {} | {:.1} | {} | {:.1} |\n",
                t.events,
                t.alarms,
                per(t.alarms),
                t.incidents,
                per(t.incidents),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// A small run: an input's stop makes more flow alarms than incidents, and a country's
    /// unlisted day far more.
    #[test]
    fn incidents_gather_the_alarms_of_one_cause() {
        let q = Quality {
            seeds: vec![3],
            flows: 40,
            days: 50,
            start: NaiveDate::from_ymd_opt(2016, 11, 1).unwrap(),
            warm_up_days: 21,
        };
        let both = run(&q).unwrap();
        let m = &both[1];
        let stop = m.by_kind["stop"];
        assert!(stop.events > 0, "{m:?}");
        assert!(stop.incidents < stop.alarms, "{stop:?}");
        assert!(m.incident_messages < m.changes, "{m:?}");
        assert_eq!(
            both[0].by_kind["stop"].events, stop.events,
            "the same labels"
        );
        let md = markdown(&q, &both);
        assert!(
            md.contains("### adaptive") && md.contains("| stop |"),
            "{md}"
        );
        let j = to_json(&q, &both);
        assert_eq!(
            j["detectors"]["adaptive"]["byKind"]["stop"]["events"],
            stop.events
        );
    }
}

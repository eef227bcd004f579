//! The detection quality report (`flowwatch-loadtest quality`): the generator's data sets with
//! the shapes of real traffic ([`Realism::realistic`]) for several seeds, each replayed under
//! the seed detector and under the adaptive one (the same document with `"detector":
//! "adaptive"` in its defaults), scored against their labels and set side by side — recall,
//! delays, false alarms per flow-month, per outage kind and per shape of traffic, and the
//! false alarms on unlisted holiday-like days.
//!
//! Everything runs in process: the records go from the generator to
//! [`flowwatch_core::replay::replay_flow`] (what `flowwatch replay` runs), the ticks to the
//! [`Scorer`].

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use chrono::{Days, NaiveDate};
use flowwatch_core::FlowId;
use flowwatch_core::config::Config;
use flowwatch_core::replay::{Window, replay_flow};
use flowwatch_core::time::{Instant, epoch_day, parse_rfc3339};
use flowwatch_generator::{Dataset, Realism, Spec};
use serde_json::{Value, json};

use crate::score::report::{MONTH, quantile, ratio};
use crate::score::{
    GroupFigures, KindFigures, Label, Report, Scorer, Tick, parse_labels, pretty_duration,
};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Quality {
    /// Generator seeds, one data set each.
    pub seeds: Vec<u64>,
    /// Flows of each data set.
    pub flows: usize,
    /// Days of each data set.
    pub days: u32,
    /// First day.
    pub start: NaiveDate,
    /// Days of history before the scored ones.
    pub warm_up_days: u32,
}

/// The two detectors compared.
pub const DETECTORS: [&str; 2] = ["seed", "adaptive"];

/// One data set's scores, one per detector of [`DETECTORS`].
pub struct SeedScores {
    /// The generator seed.
    pub seed: u64,
    /// The labels.
    pub labels: Vec<Label>,
    /// Per detector.
    pub reports: [Report; 2],
}

/// Generates, replays and scores every seed of `q`.
pub fn run(q: &Quality) -> Result<Vec<SeedScores>> {
    q.seeds.iter().map(|&seed| score_seed(q, seed)).collect()
}

/// The realistic data set of `seed` under `q`, and the window of its scored days.
pub(crate) fn dataset(q: &Quality, seed: u64) -> (Dataset, Window) {
    let spec = Spec {
        seed,
        start: q.start,
        days: q.days,
        flows: q.flows,
        realism: Realism::realistic(),
        ..Spec::default()
    };
    let first = epoch_day(q.start);
    let window = Window {
        from: Some(first + q.warm_up_days as i32),
        to: Some(first + q.days as i32),
    };
    (Dataset::generate(&spec), window)
}

/// The data set's generated document with `"detector": detector` in its defaults.
pub(crate) fn under(data: &Dataset, detector: &str) -> Result<Config> {
    let mut document = data.config().clone();
    document["defaults"]["detector"] = json!(detector);
    Config::from_json(&document.to_string())
        .with_context(|| format!("the generated document under {detector}"))
}

fn score_seed(q: &Quality, seed: u64) -> Result<SeedScores> {
    let (data, window) = dataset(q, seed);
    let labels = parse_labels(&serde_json::to_string(data.outages())?, "labels")?;
    let groups: HashMap<FlowId, String> = data
        .flow_shapes()
        .map(|(id, shape)| (id.clone(), shape.name().to_owned()))
        .collect();
    let mut context: HashMap<String, Vec<(Instant, Instant)>> = HashMap::new();
    for day in data.unlisted_days() {
        let (start, end) = (parse_rfc3339(&day.start)?, parse_rfc3339(&day.end)?);
        context.entry(day.country).or_default().push((start, end));
    }
    let records = records(&data, q);
    let mut reports = Vec::new();
    for detector in DETECTORS {
        let config = under(&data, detector)?;
        let scorer = Scorer::new(labels.clone())
            .with_groups(groups.clone())
            .with_context_days(context.clone());
        reports.push(score(&config, &records, window, scorer)?);
    }
    let reports: [Report; 2] = reports.try_into().expect("one report per detector");
    Ok(SeedScores {
        seed,
        labels,
        reports,
    })
}

/// A flow and its records `(time, bytes)`.
pub(crate) type FlowRecords = (FlowId, Vec<(Instant, u64)>);

/// Every record of the data set, by flow (sorted by id), in time order.
pub(crate) fn records(data: &Dataset, q: &Quality) -> Vec<FlowRecords> {
    let mut by_flow: BTreeMap<FlowId, Vec<(Instant, u64)>> = BTreeMap::new();
    for n in 0..u64::from(q.days) {
        let date = q.start + Days::new(n);
        for (flow, mut records) in data.day_traffic(date, Instant::MAX, 86_400).arrived {
            by_flow.entry(flow).or_default().append(&mut records);
        }
    }
    by_flow.into_iter().collect()
}

/// Replays every flow under `config` (on every core) and scores its ticks.
fn score(
    config: &Config,
    records: &[FlowRecords],
    window: Window,
    mut scorer: Scorer,
) -> Result<Report> {
    let ticks = replay_all(config, records, window);
    for ((flow, _), ticks) in records.iter().zip(ticks) {
        if ticks.is_empty() {
            continue;
        }
        scorer.begin_flow(flow.clone())?;
        for t in ticks {
            scorer.tick(t)?;
        }
    }
    Ok(scorer.finish())
}

/// Every flow of `records` replayed under `config` within `window`, on every core: each
/// flow's ticks, in the order of `records`.
pub(crate) fn replay_all(
    config: &Config,
    records: &[FlowRecords],
    window: Window,
) -> Vec<Vec<Tick>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut ticks: Vec<Vec<Tick>> = vec![Vec::new(); records.len()];
    std::thread::scope(|scope| {
        let mut lanes: Vec<Vec<(&FlowRecords, &mut Vec<Tick>)>> =
            (0..threads).map(|_| Vec::new()).collect();
        for (i, pair) in records.iter().zip(ticks.iter_mut()).enumerate() {
            lanes[i % threads].push(pair);
        }
        for lane in lanes {
            scope.spawn(move || {
                for ((flow, records), out) in lane {
                    let rated = replay_flow(config, flow, records.iter().copied(), window);
                    *out = rated
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(start, end, e)| Tick {
                            start,
                            end,
                            status: e.status,
                        })
                        .collect();
                }
            });
        }
    });
    ticks
}

/// The figures of one detector over one or more data sets.
#[derive(Debug, Default, Clone)]
struct Figures {
    evaluated: u64,
    delays: Vec<i64>,
    false_alarms: u64,
    on_context_days: u64,
    flow_seconds: i64,
    by_kind: BTreeMap<String, KindFigures>,
    by_group: BTreeMap<String, GroupFigures>,
}

impl Figures {
    fn add(&mut self, r: &Report) {
        self.evaluated += r.evaluated;
        self.delays.extend(&r.delays);
        self.delays.sort_unstable();
        self.false_alarms += r.false_alarms;
        self.on_context_days += r.false_on_context_days;
        self.flow_seconds += r.flow_seconds;
        for (kind, k) in &r.by_kind {
            let e = self.by_kind.entry(kind.clone()).or_default();
            e.events += k.events;
            e.evaluated += k.evaluated;
            e.delays.extend(&k.delays);
            e.delays.sort_unstable();
        }
        for (group, g) in &r.by_group {
            let e = self.by_group.entry(group.clone()).or_default();
            e.false_alarms += g.false_alarms;
            e.flow_seconds += g.flow_seconds;
        }
    }

    /// One report's figures.
    fn of(r: &Report) -> Figures {
        let mut f = Figures::default();
        f.add(r);
        f
    }

    fn recall(&self) -> Option<f64> {
        ratio(self.delays.len() as f64, self.evaluated as f64)
    }

    fn per_flow_month(&self) -> Option<f64> {
        GroupFigures {
            flow_seconds: self.flow_seconds,
            false_alarms: self.false_alarms,
        }
        .per_flow_month()
    }

    fn to_json(&self) -> Value {
        let kinds: serde_json::Map<String, Value> = self
            .by_kind
            .iter()
            .map(|(kind, k)| {
                let v = json!({
                    "evaluated": k.evaluated,
                    "detected": k.delays.len(),
                    "recall": ratio(k.delays.len() as f64, k.evaluated as f64),
                    "delayP50Seconds": quantile(&k.delays, 0.5),
                });
                (kind.clone(), v)
            })
            .collect();
        let groups: serde_json::Map<String, Value> = self
            .by_group
            .iter()
            .map(|(group, g)| {
                let v = json!({
                    "falseAlarms": g.false_alarms,
                    "flowMonths": g.flow_seconds as f64 / MONTH as f64,
                    "perFlowMonth": g.per_flow_month(),
                });
                (group.clone(), v)
            })
            .collect();
        json!({
            "evaluated": self.evaluated,
            "detected": self.delays.len(),
            "recall": self.recall(),
            "delayP50Seconds": quantile(&self.delays, 0.5),
            "delayP90Seconds": quantile(&self.delays, 0.9),
            "falseAlarms": self.false_alarms,
            "falseAlarmsOnUnlistedDays": self.on_context_days,
            "flowMonths": self.flow_seconds as f64 / MONTH as f64,
            "falseAlarmsPerFlowMonth": self.per_flow_month(),
            "byKind": kinds,
            "byShape": groups,
        })
    }
}

/// Each data set's figures per detector, and the totals over all of them.
fn figures(scores: &[SeedScores]) -> (Vec<[Figures; 2]>, [Figures; 2]) {
    let mut all: [Figures; 2] = Default::default();
    let per_seed = scores
        .iter()
        .map(|s| {
            for (total, r) in all.iter_mut().zip(&s.reports) {
                total.add(r);
            }
            [Figures::of(&s.reports[0]), Figures::of(&s.reports[1])]
        })
        .collect();
    (per_seed, all)
}

/// How much later the adaptive detector finds the events both find, in ticks of the tick
/// that found it under the seed detector: the median, and how many are later by more than
/// one tick.
fn paired_delay(scores: &[SeedScores]) -> (Option<f64>, usize, usize) {
    let mut diffs: Vec<f64> = Vec::new();
    for s in scores {
        let [seed, adaptive] = &s.reports;
        for (a, b) in seed.detections.iter().zip(&adaptive.detections) {
            if let (Some((d0, tick)), Some((d1, _))) = (a, b) {
                diffs.push((d1 - d0) as f64 / *tick as f64);
            }
        }
    }
    diffs.sort_by(f64::total_cmp);
    let median = (!diffs.is_empty()).then(|| diffs[diffs.len() / 2]);
    let later = diffs.iter().filter(|&&d| d > 1.0).count();
    (median, later, diffs.len())
}

/// The verdicts of issue 20 over all seeds: recall within one point, at most a fifth of the
/// false alarms, median delay at most one tick longer.
fn verdicts(all: &[Figures; 2], scores: &[SeedScores]) -> Value {
    let [seed, adaptive] = all;
    let recall_points = match (seed.recall(), adaptive.recall()) {
        (Some(s), Some(a)) => Some((a - s) * 100.0),
        _ => None,
    };
    let false_ratio = ratio(adaptive.false_alarms as f64, seed.false_alarms as f64);
    let (median_ticks, later, both) = paired_delay(scores);
    json!({
        "recallPoints": recall_points,
        "recallWithinOnePoint": recall_points.map(|p| p >= -1.0),
        "falseAlarmRatio": false_ratio,
        "falseAlarmsAtMostAFifth": false_ratio.map(|r| r <= 0.2),
        "pairedDelayMedianTicks": median_ticks,
        "detectedByBoth": both,
        "laterByMoreThanOneTick": later,
        "medianDelayAtMostOneTickLonger": median_ticks.map(|m| m <= 1.0),
    })
}

/// The result as JSON.
pub fn to_json(q: &Quality, scores: &[SeedScores]) -> Value {
    let (per_seed, all) = figures(scores);
    let seeds: Vec<Value> = scores
        .iter()
        .zip(&per_seed)
        .map(|(s, f)| {
            let per: serde_json::Map<String, Value> = (DETECTORS.iter())
                .zip(f)
                .map(|(detector, f)| ((*detector).to_owned(), f.to_json()))
                .collect();
            json!({ "seed": s.seed, "labels": s.labels.len(), "detectors": per })
        })
        .collect();
    json!({
        "scenario": "quality",
        "flows": q.flows,
        "days": q.days,
        "start": q.start.to_string(),
        "warmUpDays": q.warm_up_days,
        "seeds": seeds,
        "total": { "seed": all[0].to_json(), "adaptive": all[1].to_json() },
        "verdicts": verdicts(&all, scores),
    })
}

/// The result as Markdown: a table per seed and in total, then per outage kind and per shape
/// of traffic over all seeds.
pub fn markdown(q: &Quality, scores: &[SeedScores]) -> String {
    let pct = |v: Option<f64>| v.map_or("–".to_owned(), |r| format!("{:.1} %", r * 100.0));
    let pretty = |v: Option<i64>| v.map_or("–".to_owned(), pretty_duration);
    let rate = |v: Option<f64>| v.map_or("–".to_owned(), |r| format!("{r:.3}"));
    let mut out = format!(
        "## Detection quality: seed vs adaptive\n\n{} seeds × {} flows × {} days from {} \
         (the first {} days are history only), realistic shapes.\n\n\
         | data set | detector | recall | delay p50 | delay p90 | false episodes | per flow-month | on unlisted days |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        q.seeds.len(),
        q.flows,
        q.days,
        q.start,
        q.warm_up_days
    );
    let (per_seed, all) = figures(scores);
    let mut row = |name: &str, detector: &str, f: &Figures| {
        out.push_str(&format!(
            "| {name} | {detector} | {} of {} = {} | {} | {} | {} | {} | {} |\n",
            f.delays.len(),
            f.evaluated,
            pct(f.recall()),
            pretty(quantile(&f.delays, 0.5)),
            pretty(quantile(&f.delays, 0.9)),
            f.false_alarms,
            rate(f.per_flow_month()),
            f.on_context_days,
        ));
    };
    for (s, f) in scores.iter().zip(&per_seed) {
        for (detector, f) in DETECTORS.iter().zip(f) {
            row(&format!("seed {}", s.seed), detector, f);
        }
    }
    for (i, detector) in DETECTORS.iter().enumerate() {
        row("all", detector, &all[i]);
    }
    let [seed, adaptive] = &all;
    out.push_str(
        "\n### By outage kind (all seeds)\n\n| kind | evaluated | recall seed | recall adaptive | delay p50 seed | delay p50 adaptive |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for (kind, k) in &seed.by_kind {
        let d1 = adaptive
            .by_kind
            .get(kind)
            .map_or(&[][..], |k| &k.delays[..]);
        let evaluated = k.evaluated as f64;
        out.push_str(&format!(
            "| {kind} | {} | {} | {} | {} | {} |\n",
            k.evaluated,
            pct(ratio(k.delays.len() as f64, evaluated)),
            pct(ratio(d1.len() as f64, evaluated)),
            pretty(quantile(&k.delays, 0.5)),
            pretty(quantile(d1, 0.5)),
        ));
    }
    out.push_str(
        "\n### False OUTAGE episodes by shape of traffic (all seeds)\n\n| shape | flow-months | seed | adaptive | seed per flow-month | adaptive per flow-month |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for (group, g0) in &seed.by_group {
        let g1 = GroupFigures {
            false_alarms: adaptive.by_group.get(group).map_or(0, |g| g.false_alarms),
            ..*g0
        };
        out.push_str(&format!(
            "| {group} | {:.1} | {} | {} | {} | {} |\n",
            g0.flow_seconds as f64 / MONTH as f64,
            g0.false_alarms,
            g1.false_alarms,
            rate(g0.per_flow_month()),
            rate(g1.per_flow_month()),
        ));
    }
    let v = verdicts(&all, scores);
    out.push_str(&format!(
        "\nAdaptive vs seed: recall {:+.1} points; {} of the false episodes; events found by \
         both: median delay {:+.2} ticks, {} of {} later by more than one tick.\n",
        v["recallPoints"].as_f64().unwrap_or(f64::NAN),
        pct(v["falseAlarmRatio"].as_f64()),
        v["pairedDelayMedianTicks"].as_f64().unwrap_or(f64::NAN),
        v["laterByMoreThanOneTick"],
        v["detectedByBoth"],
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small run: both detectors are scored on the same labels, the figures add up, and the
    /// report names every kind and shape it found.
    #[test]
    fn a_small_quality_run_compares_both_detectors() {
        let q = Quality {
            seeds: vec![3],
            flows: 24,
            days: 50,
            start: NaiveDate::from_ymd_opt(2016, 11, 1).unwrap(),
            warm_up_days: 21,
        };
        let scores = run(&q).unwrap();
        let [seed, adaptive] = &scores[0].reports;
        assert_eq!(seed.events, adaptive.events);
        assert_eq!(seed.evaluated, adaptive.evaluated);
        assert!(seed.evaluated > 0, "some outages are scored");
        assert_eq!(seed.detections.len(), scores[0].labels.len());
        let shapes: u64 = seed.by_group.values().map(|g| g.false_alarms).sum();
        assert_eq!(shapes, seed.false_alarms, "every flow has a shape");
        assert!(seed.by_group.contains_key("noisy"), "{:?}", seed.by_group);
        let json = to_json(&q, &scores);
        assert_eq!(json["seeds"][0]["seed"], 3);
        for d in DETECTORS {
            assert!(json["total"][d]["recall"].as_f64().is_some(), "{json}");
        }
        let text = markdown(&q, &scores);
        for kind in seed.by_kind.keys() {
            assert!(text.contains(&format!("| {kind} |")), "{kind} in {text}");
        }
        assert!(text.contains("| noisy |"), "{text}");
    }
}

//! The figures of a scoring: recall, delays, false alarms per flow-month, as JSON, as Markdown
//! and as an SVG histogram of the delays.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::svg::Chart;

/// Seconds in the month of "flow-months".
pub(crate) const MONTH: i64 = 30 * 86_400;

/// Upper bounds (seconds, inclusive) of the bins of the delay histogram, and their labels; a
/// last bin takes the rest.
const BINS: [(i64, &str); 7] = [
    (900, "≤15 min"),
    (1800, "≤30 min"),
    (3600, "≤1 h"),
    (7200, "≤2 h"),
    (4 * 3600, "≤4 h"),
    (12 * 3600, "≤12 h"),
    (86_400, "≤1 d"),
];

/// The figures of one label kind.
#[derive(Debug, Default, Clone)]
pub struct KindFigures {
    /// Labels of the kind.
    pub events: u64,
    /// Of them, evaluated.
    pub evaluated: u64,
    /// Delays of the detected ones (seconds, ascending).
    pub delays: Vec<i64>,
}

/// The false alarms of a group of flows ([`crate::score::Scorer::with_groups`]).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct GroupFigures {
    /// Σ over its flows of (last tick end − first tick start), seconds.
    pub flow_seconds: i64,
    /// Its false alarms.
    pub false_alarms: u64,
}

impl GroupFigures {
    /// False alarms per flow-month, `None` without ticks.
    pub fn per_flow_month(&self) -> Option<f64> {
        ratio(
            self.false_alarms as f64,
            self.flow_seconds as f64 / MONTH as f64,
        )
    }
}

/// The result of a scoring.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Labels.
    pub events: u64,
    /// Labels whose flow has a non-`N_A` tick overlapping the window.
    pub evaluated: u64,
    /// Detection delays (seconds, ascending), one per detected event.
    pub delays: Vec<i64>,
    /// Delays counting `WARNING` too, one per warned event.
    pub warned_delays: Vec<i64>,
    /// Per label kind.
    pub by_kind: BTreeMap<String, KindFigures>,
    /// Episodes of `OUTAGE` that no label explains.
    pub false_alarms: u64,
    /// Σ over flows of (last tick end − first tick start), seconds.
    pub flow_seconds: i64,
    /// Flows with at least one tick.
    pub flows: u64,
    /// Ticks read.
    pub ticks: u64,
    /// Of them, `OUTAGE`.
    pub outage_ticks: u64,
    /// False alarms and flow-months per group of flows.
    pub by_group: BTreeMap<String, GroupFigures>,
    /// False alarms that overlap a context day of their country.
    pub false_on_context_days: u64,
    /// Per label, in the labels' order: the detection delay and the length of the tick that
    /// detected it, if detected (evaluated or not).
    pub detections: Vec<Option<(i64, i64)>>,
}

/// `part / whole`, `None` when `whole` is 0.
pub(crate) fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

/// The nearest-rank `q`-quantile of ascending `sorted`.
pub(crate) fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    let n = sorted.len();
    let i = ((n as f64 * q).ceil() as usize).clamp(1, n.max(1)) - 1;
    sorted.get(i).copied()
}

/// Seconds as hours and minutes: `45 s`, `12 min`, `2 h 5 min`, `1 d 3 h`.
pub fn pretty_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", (s + 30) / 60),
        3600..86_400 => {
            let m = (s + 30) / 60;
            match m % 60 {
                0 => format!("{} h", m / 60),
                r => format!("{} h {r} min", m / 60),
            }
        }
        _ => {
            let h = (s + 1800) / 3600;
            match h % 24 {
                0 => format!("{} d", h / 24),
                r => format!("{} d {r} h", h / 24),
            }
        }
    }
}

impl Report {
    /// Detected events.
    pub fn detected(&self) -> u64 {
        self.delays.len() as u64
    }

    /// Flow-months of ticks.
    pub fn flow_months(&self) -> f64 {
        self.flow_seconds as f64 / MONTH as f64
    }

    /// Detected delays per histogram bin (`≤15 min` … `≤1 d`, then `>1 d`).
    pub fn histogram(&self) -> Vec<(String, u64)> {
        let mut counts = vec![0u64; BINS.len() + 1];
        for &d in &self.delays {
            let bin = BINS.iter().position(|b| d <= b.0).unwrap_or(BINS.len());
            counts[bin] += 1;
        }
        BINS.iter()
            .map(|b| b.1.to_owned())
            .chain([">1 d".to_owned()])
            .zip(counts)
            .collect()
    }

    /// The figures as JSON (what `--out` keeps).
    pub fn to_json(&self) -> Value {
        let delays = |d: &[i64]| {
            if d.is_empty() {
                return Value::Null;
            }
            json!({
                "p50": quantile(d, 0.5), "p90": quantile(d, 0.9),
                "p99": quantile(d, 0.99), "max": d.last(),
            })
        };
        let by_kind: serde_json::Map<String, Value> = self
            .by_kind
            .iter()
            .map(|(kind, k)| {
                let figures = json!({
                    "events": k.events,
                    "evaluated": k.evaluated,
                    "detected": k.delays.len(),
                    "recall": ratio(k.delays.len() as f64, k.evaluated as f64),
                    "delayP50Seconds": quantile(&k.delays, 0.5),
                });
                (kind.clone(), figures)
            })
            .collect();
        let histogram: Vec<Value> = self
            .histogram()
            .into_iter()
            .map(|(bin, count)| json!({"bin": bin, "count": count}))
            .collect();
        let by_group: serde_json::Map<String, Value> = self
            .by_group
            .iter()
            .map(|(group, g)| {
                let figures = json!({
                    "falseAlarms": g.false_alarms,
                    "flowMonths": g.flow_seconds as f64 / MONTH as f64,
                    "perFlowMonth": g.per_flow_month(),
                });
                (group.clone(), figures)
            })
            .collect();
        let evaluated = self.evaluated as f64;
        json!({
            "scenario": "score",
            "events": self.events,
            "evaluatedEvents": self.evaluated,
            "notEvaluatedEvents": self.events - self.evaluated,
            "detected": self.detected(),
            "recall": ratio(self.detected() as f64, evaluated),
            "warned": self.warned_delays.len(),
            "warnedRecall": ratio(self.warned_delays.len() as f64, evaluated),
            "delaySeconds": delays(&self.delays),
            "warnedDelaySeconds": delays(&self.warned_delays),
            "byKind": by_kind,
            "falseAlarms": self.false_alarms,
            "flowMonths": self.flow_months(),
            "falseAlarmsPerFlowMonth": ratio(self.false_alarms as f64, self.flow_months()),
            "falseAlarmsByGroup": by_group,
            "falseAlarmsOnContextDays": self.false_on_context_days,
            "flows": self.flows,
            "ticks": self.ticks,
            "outageTicks": self.outage_ticks,
            "delayHistogram": histogram,
        })
    }

    /// Markdown to go after the figures' table: delays as hours and minutes, the label kinds,
    /// the histogram and the definitions.
    pub fn markdown(&self) -> String {
        let pretty = |v: Option<i64>| v.map_or("–".to_owned(), pretty_duration);
        let percent =
            |v: Option<f64>| v.map_or("–".to_owned(), |r| format!("{:.1} %", r * 100.0));
        let mut out = String::from(
            "\n### Detection delay\n\n| counting | events | recall | p50 | p90 | p99 | max |\n\
             | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for (name, d) in [
            ("OUTAGE", &self.delays),
            ("WARNING or OUTAGE", &self.warned_delays),
        ] {
            out.push_str(&format!(
                "| {name} | {} of {} | {} | {} | {} | {} | {} |\n",
                d.len(),
                self.evaluated,
                percent(ratio(d.len() as f64, self.evaluated as f64)),
                pretty(quantile(d, 0.5)),
                pretty(quantile(d, 0.9)),
                pretty(quantile(d, 0.99)),
                pretty(d.last().copied()),
            ));
        }
        out.push_str(
            "\n### By outage kind\n\n| kind | events | evaluated | detected | recall | delay p50 |\n\
             | --- | --- | --- | --- | --- | --- |\n",
        );
        for (kind, k) in &self.by_kind {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                kind.replace('|', "\\|"),
                k.events,
                k.evaluated,
                k.delays.len(),
                percent(ratio(k.delays.len() as f64, k.evaluated as f64)),
                pretty(quantile(&k.delays, 0.5)),
            ));
        }
        out.push_str("\n### Delays of detected events\n\n| delay | events |\n| --- | --- |\n");
        for (bin, count) in self.histogram() {
            out.push_str(&format!("| {bin} | {count} |\n"));
        }
        out.push_str(&format!(
            "\n{} false alarms over {:.2} flow-months ({} per flow-month); {} flows, {} ticks, \
             {} OUTAGE ticks.\n",
            self.false_alarms,
            self.flow_months(),
            ratio(self.false_alarms as f64, self.flow_months())
                .map_or("–".to_owned(), |r| format!("{r:.3}")),
            self.flows,
            self.ticks,
            self.outage_ticks,
        ));
        out.push_str(DEFINITIONS);
        out
    }

    /// An SVG histogram of the detection delays.
    pub fn delay_plot(&self) -> String {
        let bars: Vec<(String, f64)> = self
            .histogram()
            .into_iter()
            .map(|(bin, count)| (bin, count as f64))
            .collect();
        let title = format!(
            "Detection delay ({} of {} evaluated events detected)",
            self.detected(),
            self.evaluated
        );
        Chart {
            title: &title,
            x_label: "delay from outage start to the end of the first OUTAGE tick",
            y_label: "events",
        }
        .bars(&bars)
    }
}

/// The definitions, for the Markdown summary.
const DEFINITIONS: &str = "
### Definitions

- *Event*: a labelled outage `[start, end)`. *Evaluated*: its flow has a non-N_A tick \
overlapping the window; the others (flow disabled, absent, out of range) are left out of recall.
- *Detected*: a tick of the flow with status OUTAGE overlaps the window; *delay* = the first \
such tick's end − start. *Warned*: the same with WARNING or OUTAGE.
- *False alarm*: a run of consecutive OUTAGE ticks of a flow overlapping no label window of \
the flow or, for a forward, of its input, each window extended by one tick (recovery margin).
- *Flow-months*: Σ over flows of (last tick end − first tick start) / 30 days.
";

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;

    #[test]
    fn quantiles_histogram_and_durations() {
        let d: Vec<i64> = (1..=10).collect();
        assert_eq!(quantile(&d, 0.5), Some(5));
        assert_eq!(quantile(&d, 0.9), Some(9));
        assert_eq!(quantile(&d, 0.99), Some(10));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(pretty_duration(45), "45 s");
        assert_eq!(pretty_duration(12 * 60), "12 min");
        assert_eq!(pretty_duration(2 * HOUR + 300), "2 h 5 min");
        assert_eq!(pretty_duration(3 * HOUR), "3 h");
        assert_eq!(pretty_duration(27 * HOUR), "1 d 3 h");
        let r = Report {
            delays: vec![900, 901, 3600, 90_000, 90_000],
            ..Report::default()
        };
        let h: Vec<u64> = r.histogram().into_iter().map(|b| b.1).collect();
        assert_eq!(h, vec![1, 1, 1, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn the_delay_plot_is_well_formed_and_shows_the_counts() {
        let r = Report {
            delays: vec![600, 700, 800, 5000, 100_000],
            evaluated: 7,
            ..Report::default()
        };
        let svg = r.delay_plot();
        crate::svg::tests::check_xml(&svg).unwrap();
        assert!(
            svg.contains(">3</text>") && svg.contains(">1</text>"),
            "{svg}"
        );
        assert!(svg.contains("≤15 min") && svg.contains("&gt;1 d"), "{svg}");
        assert!(svg.contains("5 of 7 evaluated events detected"), "{svg}");
        assert!(r.markdown().contains("### Definitions"));
    }
}

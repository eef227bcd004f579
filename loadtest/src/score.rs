//! The detection scorer: how well a run of the detection found the labelled outages of a
//! generated data set — event recall, detection delay and false alarms per flow-month — from
//! a tick CSV (SPEC §6, e.g. `flowwatch replay`'s) or from a running flowwatch's API.
//!
//! Definitions:
//! - **Labels** are `outages.json` of `flowwatch-loadtest generate`: each a flow, a window
//!   `[start, end)` and a kind (an opaque string). A forward `INPUT:TARGET` is also explained
//!   by the labels of its input `INPUT` of the same country and LoB (an input's outage reaches
//!   its forwards): those explain its alarms, but are not its events.
//! - An **event** is a label. It is **evaluated** if its flow has a tick other than `N_A`
//!   overlapping its window; events of flows without such a tick (disabled, absent, out of the
//!   ticks' range) are *not evaluated* and left out of recall.
//! - An evaluated event is **detected** if a tick of its flow with status `OUTAGE` overlaps its
//!   window; its **delay** is that first tick's end minus the window's start (the earliest
//!   moment the system can know). **Warned** counts `WARNING` as well as `OUTAGE`.
//!   Recall = detected / evaluated events.
//! - An **episode** is a maximal run of consecutive ticks of one flow (in the input's order)
//!   with status `OUTAGE`. It is a **false alarm** if it overlaps no window of its flow's labels
//!   (its own and, for a forward, its input's), each window extended after its end by the
//!   longest tick of the episode (a recovery margin).
//! - **Flow-months** = Σ over the flows of the ticks (last tick end − first tick start) / 30 days.
//!
//! The tick CSV is read line by line (it may be hundreds of MB); only the current flow's state
//! is kept, and the flows must come one after the other, each in time order (as `flowwatch
//! replay` writes them).
//!
//! Layout: this file reads the labels and the tick CSV and scores ticks ([`Scorer`]);
//! `report` holds the figures ([`Report`]: JSON, Markdown, the SVG histogram); `api` reads
//! the ticks of a running flowwatch ([`score_api`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use flowwatch_core::detection::Status;
use flowwatch_core::tick_csv::HEADER;
use flowwatch_core::time::{Instant, parse_rfc3339};
use flowwatch_core::{FlowId, FlowKind};
use serde::Deserialize;

mod api;
pub(crate) mod report;

pub use api::score_api;
pub use report::{GroupFigures, KindFigures, Report, pretty_duration};

/// One labelled outage.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// The flow.
    pub flow: FlowId,
    /// Start of the window.
    pub start: Instant,
    /// End of the window (excluded).
    pub end: Instant,
    /// Its shape (`stop`, `partialDrop`, …), taken as it is.
    pub kind: String,
}

/// A label as `outages.json` holds it; other fields are ignored.
#[derive(Deserialize)]
struct RawLabel {
    flow: FlowId,
    start: String,
    end: String,
    kind: String,
}

/// Reads the labels of `outages.json`.
pub fn read_labels(path: &Path) -> Result<Vec<Label>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_labels(&text, &path.display().to_string())
}

/// Parses labels (a JSON array); errors name `name`.
pub fn parse_labels(text: &str, name: &str) -> Result<Vec<Label>> {
    let raw: Vec<RawLabel> = serde_json::from_str(text).map_err(|e| anyhow!("{name}: {e}"))?;
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |what: &str, e: &dyn std::fmt::Display| {
                anyhow!("{name}: label {i} ({}): {what}: {e}", r.flow)
            };
            let start = parse_rfc3339(&r.start).map_err(|e| at("start", &e))?;
            let end = parse_rfc3339(&r.end).map_err(|e| at("end", &e))?;
            if end <= start {
                let why = format!("{} is not after start {}", r.end, r.start);
                return Err(at("end", &why));
            }
            Ok(Label {
                flow: r.flow,
                start,
                end,
                kind: r.kind,
            })
        })
        .collect()
}

/// One evaluated tick of a flow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    /// Real start.
    pub start: Instant,
    /// Real end (excluded).
    pub end: Instant,
    /// Its status.
    pub status: Status,
}

/// What became of one event.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    evaluated: bool,
    /// Delay to the first overlapping `OUTAGE` tick's end, and that tick's length.
    detected: Option<(i64, i64)>,
    /// Delay to the first overlapping `WARNING` or `OUTAGE` tick's end.
    warned: Option<i64>,
}

/// A run of `OUTAGE` ticks.
#[derive(Debug, Clone, Copy)]
struct Episode {
    start: Instant,
    end: Instant,
    longest_tick: i64,
}

/// The flow being read.
struct Current {
    flow: FlowId,
    /// Its events (indices into the labels).
    own: Vec<usize>,
    /// The windows that explain its alarms: its own and its input's.
    windows: Vec<(Instant, Instant)>,
    /// First tick start, last tick start, last tick end.
    span: Option<(Instant, Instant, Instant)>,
    episode: Option<Episode>,
    /// Its group ([`Scorer::with_groups`]).
    group: Option<String>,
    /// Its country's context days ([`Scorer::with_context_days`]).
    context: Vec<(Instant, Instant)>,
}

/// Scores ticks against labels, one flow at a time: [`Scorer::begin_flow`], then the flow's
/// ticks in time order with [`Scorer::tick`], then the next flow; [`Scorer::finish`] gives the
/// report.
pub struct Scorer {
    labels: Vec<Label>,
    by_flow: HashMap<FlowId, Vec<usize>>,
    outcomes: Vec<Outcome>,
    seen: HashSet<FlowId>,
    current: Option<Current>,
    flows: u64,
    ticks: u64,
    outage_ticks: u64,
    false_alarms: u64,
    flow_seconds: i64,
    groups: HashMap<FlowId, String>,
    by_group: BTreeMap<String, GroupFigures>,
    context_days: HashMap<String, Vec<(Instant, Instant)>>,
    false_on_context_days: u64,
}

impl Scorer {
    /// A scorer of `labels`.
    pub fn new(labels: Vec<Label>) -> Scorer {
        let mut by_flow: HashMap<FlowId, Vec<usize>> = HashMap::new();
        for (i, l) in labels.iter().enumerate() {
            by_flow.entry(l.flow.clone()).or_default().push(i);
        }
        Scorer {
            outcomes: vec![Outcome::default(); labels.len()],
            labels,
            by_flow,
            seen: HashSet::new(),
            current: None,
            flows: 0,
            ticks: 0,
            outage_ticks: 0,
            false_alarms: 0,
            flow_seconds: 0,
            groups: HashMap::new(),
            by_group: BTreeMap::new(),
            context_days: HashMap::new(),
            false_on_context_days: 0,
        }
    }

    /// Also counts false alarms and flow-months per group of flows (e.g. the shape of their
    /// traffic); flows not in `groups` are in no group.
    pub fn with_groups(mut self, groups: HashMap<FlowId, String>) -> Scorer {
        self.groups = groups;
        self
    }

    /// Also counts the false alarms that overlap a context day of their flow's country
    /// (`[start, end)` by country code: days known to be unusual, such as unlisted holidays).
    pub fn with_context_days(mut self, days: HashMap<String, Vec<(Instant, Instant)>>) -> Scorer {
        self.context_days = days;
        self
    }

    /// The flow whose ticks come next; ends the previous one. A flow may come only once.
    pub fn begin_flow(&mut self, flow: FlowId) -> Result<()> {
        self.end_flow();
        if !self.seen.insert(flow.clone()) {
            bail!(
                "ticks of {flow} come again after other flows: ticks must be ordered by flow then time"
            );
        }
        let own = self.by_flow.get(&flow).cloned().unwrap_or_default();
        let input = flow.input_name().and_then(|name| {
            let id = FlowId::new(&flow.country, &flow.lob, FlowKind::Input, name).ok()?;
            self.by_flow.get(&id)
        });
        let windows = own
            .iter()
            .chain(input.into_iter().flatten())
            .map(|&i| (self.labels[i].start, self.labels[i].end))
            .collect();
        self.current = Some(Current {
            group: self.groups.get(&flow).cloned(),
            context: self
                .context_days
                .get(&flow.country)
                .cloned()
                .unwrap_or_default(),
            flow,
            own,
            windows,
            span: None,
            episode: None,
        });
        Ok(())
    }

    /// The current flow's next tick.
    pub fn tick(&mut self, t: Tick) -> Result<()> {
        let Some(c) = self.current.as_mut() else {
            bail!("a tick before any flow");
        };
        if t.end <= t.start {
            bail!("tick_end is not after tick_start");
        }
        c.span = match c.span {
            None => Some((t.start, t.start, t.end)),
            Some((_, last, _)) if t.start < last => {
                bail!(
                    "a tick of {} starts before the one above it: ticks must be ordered by flow then time",
                    c.flow
                );
            }
            Some((first, _, end)) => Some((first, t.start, end.max(t.end))),
        };
        self.ticks += 1;
        for &i in &c.own {
            let l = &self.labels[i];
            if t.start >= l.end || t.end <= l.start {
                continue;
            }
            let o = &mut self.outcomes[i];
            let delay = t.end - l.start;
            o.evaluated |= t.status != Status::NotAvailable;
            if t.status == Status::Outage {
                o.detected.get_or_insert((delay, t.end - t.start));
            }
            if t.status.is_alarm() {
                o.warned.get_or_insert(delay);
            }
        }
        if t.status == Status::Outage {
            self.outage_ticks += 1;
            let e = c.episode.get_or_insert(Episode {
                start: t.start,
                end: t.end,
                longest_tick: 0,
            });
            e.end = t.end;
            e.longest_tick = e.longest_tick.max(t.end - t.start);
        } else if let Some(e) = c.episode.take() {
            self.close(e);
        }
        Ok(())
    }

    /// Counts the current flow's episode `e` if no label explains it.
    fn close(&mut self, e: Episode) {
        let Some(c) = self.current.as_ref() else {
            return;
        };
        if !unexplained(&c.windows, e) {
            return;
        }
        self.false_alarms += 1;
        if let Some(g) = &c.group {
            self.by_group.entry(g.clone()).or_default().false_alarms += 1;
        }
        if c.context.iter().any(|&(s, end)| e.start < end && e.end > s) {
            self.false_on_context_days += 1;
        }
    }

    /// Ends the current flow: closes its episode and counts its span.
    fn end_flow(&mut self) {
        if let Some(e) = self.current.as_mut().and_then(|c| c.episode.take()) {
            self.close(e);
        }
        let Some(c) = self.current.take() else {
            return;
        };
        if let Some((first, _, end)) = c.span {
            self.flows += 1;
            self.flow_seconds += end - first;
            if let Some(g) = c.group {
                self.by_group.entry(g).or_default().flow_seconds += end - first;
            }
        }
    }

    /// The report.
    pub fn finish(mut self) -> Report {
        self.end_flow();
        let mut r = Report {
            events: self.labels.len() as u64,
            evaluated: 0,
            delays: Vec::new(),
            warned_delays: Vec::new(),
            by_kind: BTreeMap::new(),
            false_alarms: self.false_alarms,
            flow_seconds: self.flow_seconds,
            flows: self.flows,
            ticks: self.ticks,
            outage_ticks: self.outage_ticks,
            by_group: std::mem::take(&mut self.by_group),
            false_on_context_days: self.false_on_context_days,
            detections: self.outcomes.iter().map(|o| o.detected).collect(),
        };
        for (l, o) in self.labels.iter().zip(&self.outcomes) {
            let k = r.by_kind.entry(l.kind.clone()).or_default();
            k.events += 1;
            if !o.evaluated {
                continue;
            }
            r.evaluated += 1;
            k.evaluated += 1;
            if let Some((d, _)) = o.detected {
                r.delays.push(d);
                k.delays.push(d);
            }
            r.warned_delays.extend(o.warned);
        }
        r.delays.sort_unstable();
        r.warned_delays.sort_unstable();
        for k in r.by_kind.values_mut() {
            k.delays.sort_unstable();
        }
        r
    }
}

/// Whether episode `e` overlaps none of `windows`, each extended after its end by the
/// episode's longest tick.
fn unexplained(windows: &[(Instant, Instant)], e: Episode) -> bool {
    !windows
        .iter()
        .any(|&(start, end)| e.start < end + e.longest_tick && e.end > start)
}

/// Number of columns of the tick CSV.
/// Columns of SPEC §6's tick CSV; a file may carry more after them (SPEC §10).
const COLUMNS: usize = 13;

/// One data line: its flow's parts and the tick.
fn parse_line(line: &str, columns: usize) -> Result<(Vec<Cow<'_, str>>, FlowKind, Tick)> {
    let mut fields = Vec::with_capacity(columns);
    flowwatch_core::csv::split_fields(line, &mut fields)?;
    if fields.len() != columns {
        bail!("expected {columns} fields, found {}", fields.len());
    }
    let kind = FlowKind::parse(&fields[2])
        .ok_or_else(|| anyhow!("invalid kind \"{}\": expected input or forward", fields[2]))?;
    let time = |i: usize, name: &str| parse_rfc3339(&fields[i]).map_err(|e| anyhow!("{name}: {e}"));
    let start = time(4, "tick_start")?;
    let end = time(5, "tick_end")?;
    fields[6]
        .parse::<u64>()
        .map_err(|_| anyhow!("invalid actual \"{}\"", fields[6]))?;
    let status = Status::parse(&fields[12]).ok_or_else(|| {
        anyhow!(
            "invalid status \"{}\": expected OK, WARNING, OUTAGE or N_A",
            fields[12]
        )
    })?;
    Ok((fields, kind, Tick { start, end, status }))
}

/// Scores the tick CSV read from `input` (named `name` in errors, with the line number).
pub fn score_ticks(labels: Vec<Label>, mut input: impl BufRead, name: &str) -> Result<Report> {
    let mut scorer = Scorer::new(labels);
    let mut line = String::new();
    let mut current: Option<FlowId> = None;
    let mut number = 0u64;
    let mut columns = COLUMNS;
    loop {
        line.clear();
        number += 1;
        let at = |why: &dyn std::fmt::Display| anyhow!("{name}:{number}: {why}");
        if input.read_line(&mut line).map_err(|e| at(&e))? == 0 {
            if number == 1 {
                bail!("{name}: empty, expected the header {HEADER}");
            }
            break;
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if number == 1 {
            let header = text.trim_start_matches('\u{feff}');
            if header != HEADER && !header.starts_with(&format!("{HEADER},")) {
                return Err(at(&format!("expected the header {HEADER}")));
            }
            columns = header.split(',').count();
            continue;
        }
        if text.is_empty() {
            continue;
        }
        let (fields, kind, tick) = parse_line(text, columns).map_err(|e| at(&e))?;
        let same = current.as_ref().is_some_and(|f| {
            f.kind == kind && f.country == fields[0] && f.lob == fields[1] && f.name == fields[3]
        });
        if !same {
            let flow = FlowId::new(&fields[0], &fields[1], kind, &fields[3]).map_err(|e| at(&e))?;
            scorer.begin_flow(flow.clone()).map_err(|e| at(&e))?;
            current = Some(flow);
        }
        scorer.tick(tick).map_err(|e| at(&e))?;
    }
    Ok(scorer.finish())
}

/// Scores the tick CSV at `path`.
pub fn score_file(labels: Vec<Label>, path: &Path) -> Result<Report> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let input = std::io::BufReader::with_capacity(1 << 20, file);
    score_ticks(labels, input, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowwatch_core::time::utc_string;
    use serde_json::{Value, json};

    /// 2017-02-01T00:00:00Z, the start of every test's ticks.
    pub(super) const T0: Instant = 1_485_907_200;
    pub(super) const HOUR: i64 = 3600;

    /// Rows of `flow` (`country,lob,kind,name`), one tick of `step` seconds per character of
    /// `statuses` from [`T0`]: `O` OK, `W` WARNING, `X` OUTAGE, `N` N_A.
    pub(super) fn rows(flow: &str, statuses: &str, step: i64) -> String {
        let mut out = String::new();
        for (i, c) in statuses.chars().enumerate() {
            let start = T0 + i as i64 * step;
            let (start, end) = (utc_string(start), utc_string(start + step));
            let tail = match c {
                'O' => "100,100,100,1,1,1,OK",
                'W' => "100,100,100,0.7,0.7,0.7,WARNING",
                'X' => "0,100,100,0,0,0,OUTAGE",
                'N' => "100,,,,,,N_A",
                _ => panic!("status {c}"),
            };
            out.push_str(&format!("{flow},{start},{end},{tail}\n"));
        }
        out
    }

    /// `outages.json` text: `(flow, start, end, kind)`, times in seconds after [`T0`].
    pub(super) fn labels(items: &[(&str, i64, i64, &str)]) -> String {
        let items: Vec<Value> = items
            .iter()
            .map(|&(flow, start, end, kind)| {
                let p: Vec<&str> = flow.split(',').collect();
                json!({
                    "flow": {"country": p[0], "lob": p[1], "kind": p[2], "name": p[3]},
                    "start": utc_string(T0 + start), "end": utc_string(T0 + end), "kind": kind,
                })
            })
            .collect();
        Value::Array(items).to_string()
    }

    /// Scores `csv` (header added) against `outages` (as [`labels`] writes it).
    pub(super) fn score(outages: &str, csv: &str) -> Result<Report> {
        let labels = parse_labels(outages, "outages.json")?;
        let text = format!("{HEADER}\n{csv}");
        score_ticks(labels, text.as_bytes(), "ticks.csv")
    }

    pub(super) const A: &str = "CZ,GSM,input,A";
    pub(super) const B: &str = "CZ,GSM,input,B";

    #[test]
    fn detected_with_the_delay_to_the_first_outage_ticks_end() {
        let outages = labels(&[(A, 3 * HOUR + 1800, 7 * HOUR, "stop")]);
        let r = score(&outages, &rows(A, "OOOOWXXOOO", HOUR)).unwrap();
        assert_eq!((r.events, r.evaluated, r.detected()), (1, 1, 1));
        // The first OUTAGE tick is [5 h, 6 h): 6 h − 3.5 h. The WARNING ends at 5 h.
        assert_eq!(r.delays, vec![9000]);
        assert_eq!(r.warned_delays, vec![5400]);
        assert_eq!(r.false_alarms, 0);
        assert_eq!((r.flows, r.ticks, r.outage_ticks), (1, 10, 2));
        let j = r.to_json();
        assert_eq!(j["recall"], 1.0);
        assert_eq!(j["delaySeconds"]["p50"], 9000);
        assert_eq!(j["byKind"]["stop"]["delayP50Seconds"], 9000);
        assert!(
            r.markdown()
                .contains("| OUTAGE | 1 of 1 | 100.0 % | 2 h 30 min |")
        );
    }

    #[test]
    fn a_missed_event_counts_against_recall() {
        let outages = labels(&[
            (A, 2 * HOUR, 4 * HOUR, "stop"),
            (B, 2 * HOUR, 4 * HOUR, "partialDrop"),
        ]);
        let csv = rows(A, "OOXXOO", HOUR) + &rows(B, "OOOOOO", HOUR);
        let r = score(&outages, &csv).unwrap();
        assert_eq!((r.events, r.evaluated, r.detected()), (2, 2, 1));
        let j = r.to_json();
        assert_eq!(j["recall"], 0.5);
        assert_eq!(j["byKind"]["partialDrop"]["detected"], 0);
        assert_eq!(j["byKind"]["partialDrop"]["recall"], 0.0);
        assert_eq!(j["byKind"]["stop"]["recall"], 1.0);
    }

    #[test]
    fn events_without_an_evaluated_tick_are_not_evaluated() {
        let outages = labels(&[
            (A, HOUR, 2 * HOUR, "stop"),
            // B's ticks over its window are all N_A.
            (B, HOUR, 3 * HOUR, "stop"),
            // C has no ticks at all (disabled, or not in the data).
            ("CZ,GSM,input,C", HOUR, 2 * HOUR, "stop"),
            // After A's last tick.
            (A, 10 * HOUR, 11 * HOUR, "nightStop"),
        ]);
        let csv = rows(A, "OXOO", HOUR) + &rows(B, "ONNOX", HOUR);
        let r = score(&outages, &csv).unwrap();
        assert_eq!((r.events, r.evaluated, r.detected()), (4, 1, 1));
        let j = r.to_json();
        assert_eq!(j["notEvaluatedEvents"], 3);
        assert_eq!(j["recall"], 1.0);
        assert_eq!(j["byKind"]["nightStop"]["evaluated"], 0);
        assert_eq!(j["byKind"]["nightStop"]["recall"], Value::Null);
        // B's OUTAGE at 4 h is after its window and the one-tick margin: a false alarm.
        assert_eq!(r.false_alarms, 1);
    }

    #[test]
    fn a_forwards_alarm_during_its_inputs_outage_is_not_a_false_alarm() {
        let outages = labels(&[(A, 2 * HOUR, 4 * HOUR, "stop")]);
        let csv = rows(A, "OOOOOO", HOUR)
            + &rows("CZ,GSM,forward,A:CZ-FOX", "OOXXOO", HOUR)
            // Another input's forward, and A's namesake in another LoB: no label of theirs.
            + &rows("CZ,GSM,forward,B:CZ-FOX", "OOXXOO", HOUR)
            + &rows("CZ,SMS,forward,A:CZ-FOX", "OOXXOO", HOUR);
        let r = score(&outages, &csv).unwrap();
        assert_eq!(r.false_alarms, 2);
        // The input's outage is the input's event only: the forward's alarm does not detect it.
        assert_eq!((r.events, r.evaluated, r.detected()), (1, 1, 0));
    }

    #[test]
    fn an_episode_outside_every_window_is_a_false_alarm() {
        let outages = labels(&[(A, 20 * HOUR, 21 * HOUR, "stop")]);
        // Episodes: [0, 2), [5, 6), [8, 10); N_A splits [11, 12) from [13, 14).
        let csv = rows(A, "XXOOOXOOXXOXNX", HOUR);
        let r = score(&outages, &csv).unwrap();
        assert_eq!(r.false_alarms, 5);
        assert_eq!(r.outage_ticks, 7);
        // The label is out of the ticks' range: not evaluated.
        assert_eq!(r.evaluated, 0);
        let none = score("[]", &rows(B, "OXO", HOUR)).unwrap();
        assert_eq!(none.false_alarms, 1);
    }

    #[test]
    fn the_recovery_margin_is_one_tick_of_the_episode() {
        let quarter = 900;
        let outages = labels(&[
            (A, 0, 3 * HOUR, "stop"),
            (B, 0, 3 * HOUR, "stop"),
            ("CZ,DATA,input,C", 0, 3 * quarter, "stop"),
            ("CZ,DATA,input,D", 0, 3 * quarter, "stop"),
        ]);
        let csv = rows(A, "OOOXO", HOUR) // starts at the window's end: within one tick
            + &rows(B, "OOOOX", HOUR) // one tick after: outside
            + &rows("CZ,DATA,input,C", "OOOXO", quarter)
            + &rows("CZ,DATA,input,D", "OOOOX", quarter);
        let r = score(&outages, &csv).unwrap();
        assert_eq!(r.false_alarms, 2);
        // An episode within the margin explains an alarm but does not detect the event.
        assert_eq!(r.detected(), 0);
    }

    #[test]
    fn flow_months_sum_each_flows_span() {
        let daily = format!("X{}", "O".repeat(29));
        let hourly = format!("X{}X", "O".repeat(358));
        let csv = rows("CZ,BATCH,input,A", &daily, 86_400) + &rows(B, &hourly, HOUR);
        let r = score("[]", &csv).unwrap();
        assert_eq!(r.flow_seconds, 30 * 86_400 + 15 * 86_400);
        assert_eq!(r.flow_months(), 1.5);
        let j = r.to_json();
        assert_eq!(j["falseAlarms"], 3);
        assert_eq!(j["flowMonths"], 1.5);
        assert_eq!(j["falseAlarmsPerFlowMonth"], 2.0);
        assert_eq!(
            (j["flows"].as_u64(), j["ticks"].as_u64()),
            (Some(2), Some(390))
        );
        let empty = score("[]", "").unwrap().to_json();
        assert_eq!(empty["falseAlarmsPerFlowMonth"], Value::Null);
        assert_eq!(empty["recall"], Value::Null);
    }

    #[test]
    fn warned_recall_counts_warnings_as_well() {
        let outages = labels(&[(A, 2 * HOUR, 4 * HOUR, "moderateDrop")]);
        let r = score(&outages, &rows(A, "OOWWOO", HOUR)).unwrap();
        let j = r.to_json();
        assert_eq!(
            (j["recall"].as_f64(), j["warnedRecall"].as_f64()),
            (Some(0.0), Some(1.0))
        );
        assert_eq!(j["warnedDelaySeconds"]["p50"], 3600);
        assert_eq!(j["delaySeconds"], Value::Null);
        assert_eq!(r.false_alarms, 0, "warnings are not alarms");
    }

    #[test]
    fn malformed_lines_are_reported_with_file_and_line() {
        let good = rows(A, "OO", HOUR);
        let err = |csv: String| score("[]", &csv).unwrap_err().to_string();
        let e = err(format!("{good}CZ,GSM,input,A,2017-02-01T02:00:00Z\n"));
        assert_eq!(e, "ticks.csv:4: expected 13 fields, found 5");
        let e = err(good.replace("T01:00:00Z,2017", "T01:00:00,2017"));
        assert!(
            e.starts_with("ticks.csv:3: tick_start: invalid time"),
            "{e}"
        );
        let e = err(good.replace("OK\n", "FINE\n"));
        assert!(e.starts_with("ticks.csv:2: invalid status \"FINE\""), "{e}");
        let e = err(good.replace("input", "output"));
        assert!(e.starts_with("ticks.csv:2: invalid kind \"output\""), "{e}");
        let e = err(good.replace(",100,100,100,", ",-1,100,100,"));
        assert!(e.starts_with("ticks.csv:2: invalid actual \"-1\""), "{e}");
        let e = err(good.replace("CZ,GSM", "CZ,\"GSM"));
        assert_eq!(e, "ticks.csv:2: unterminated quoted field");
        let e = err(good.replace("T02:00:00Z", "T01:00:00Z"));
        assert_eq!(e, "ticks.csv:3: tick_end is not after tick_start");
        let e = err(format!("{good}{}", rows(B, "O", HOUR)) + &rows(A, "O", HOUR));
        assert!(
            e.starts_with("ticks.csv:5: ticks of CZ/GSM/input/A come again"),
            "{e}"
        );
        let e = err(rows(A, "OO", HOUR)
            .lines()
            .rev()
            .collect::<Vec<_>>()
            .join("\n"));
        assert!(
            e.starts_with("ticks.csv:3: a tick of CZ/GSM/input/A starts before"),
            "{e}"
        );
        let e =
            err("CZ,GSM,forward,A,2017-02-01T00:00:00Z,2017-02-01T01:00:00Z,1,,,,,,N_A\n".into());
        assert!(e.starts_with("ticks.csv:2: invalid forward name"), "{e}");
        let labels = Vec::new();
        let e = score_ticks(labels, &b"time,country\n"[..], "t.csv").unwrap_err();
        assert!(
            e.to_string().starts_with("t.csv:1: expected the header"),
            "{e}"
        );
        let e = score_ticks(Vec::new(), &b""[..], "t.csv").unwrap_err();
        assert!(e.to_string().starts_with("t.csv: empty"), "{e}");
        // Quoted fields, CRLF line ends and a blank last line are fine.
        let quoted = format!(
            "{HEADER}\r\n{}\r\n\r\n",
            rows("CZ,\"G,SM\",input,\"A \"\"1\"\"\"", "X", HOUR).trim_end()
        );
        let r = score_ticks(Vec::new(), quoted.as_bytes(), "t.csv").unwrap();
        assert_eq!((r.flows, r.ticks, r.false_alarms), (1, 1, 1));
    }

    #[test]
    fn labels_are_read_leniently_and_bad_ones_named() {
        let text = r#"[{"flow": {"country": "CZ", "lob": "GSM", "kind": "forward", "name": "A:T"},
            "start": "2017-02-01T00:00:00Z", "end": "2017-02-01T01:00:00+01:00",
            "kind": "movedTraffic", "to": {"country": "CZ"}, "share": 0.5}]"#;
        let l = parse_labels(text, "outages.json").unwrap_err().to_string();
        assert!(
            l.starts_with("outages.json: label 0 (CZ/GSM/forward/A:T): end:"),
            "{l}"
        );
        let text = text.replace("T01:00:00+01:00", "T02:00:00+01:00");
        let l = parse_labels(&text, "outages.json").unwrap();
        assert_eq!(l[0].kind, "movedTraffic");
        assert_eq!((l[0].start, l[0].end), (T0, T0 + HOUR));
        let e = parse_labels(r#"[{"flow": 1}]"#, "outages.json")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("outages.json: invalid type"), "{e}");
        assert!(e.contains("line 1 column"), "{e}");
        let e = parse_labels(&text.replace("\"start\"", "\"begin\""), "o.json").unwrap_err();
        assert!(
            e.to_string().starts_with("o.json: missing field `start`"),
            "{e}"
        );
        let e = parse_labels(&text.replace("2017-02-01T00", "yesterday"), "o.json").unwrap_err();
        assert!(
            e.to_string().contains("start: invalid time \"yesterday"),
            "{e}"
        );
    }

    #[test]
    fn a_generated_and_replayed_data_set_scores_sensibly() {
        use flowwatch_core::config::Config;
        use flowwatch_core::replay::{Replay, Window};
        use flowwatch_core::tick_csv::RowWriter;
        use flowwatch_generator::{Dataset, Spec};
        use std::io::Write;

        let spec = Spec {
            days: 35,
            flows: 10,
            outages_per_flow_month: 3.0,
            ..Spec::default()
        };
        let data = Dataset::generate(&spec);
        let config = Config::from_json(&data.config().to_string()).unwrap();
        let mut traffic = Vec::new();
        data.write_csv(&mut traffic).unwrap();
        let mut replay = Replay::new(&config);
        for line in String::from_utf8(traffic).unwrap().lines().skip(1) {
            replay.add_csv_line(line).unwrap();
        }
        let mut ticks = tempfile::NamedTempFile::new().unwrap();
        let mut text = format!("{HEADER}\n");
        for flow in replay.into_flows() {
            let writer = RowWriter::new(&flow.id);
            flow.run(Window::default(), |start, end, e| {
                writer.write(&mut text, start, end, e)
            });
        }
        ticks.write_all(text.as_bytes()).unwrap();
        let outages = serde_json::to_string(data.outages()).unwrap();
        let labels = parse_labels(&outages, "outages.json").unwrap();
        let r = score_file(labels, ticks.path()).unwrap();
        assert_eq!(r.events as usize, data.outages().len());
        assert!(r.events > 0 && r.flows > 0 && r.ticks > 0);
        assert!(r.evaluated > 0 && r.evaluated <= r.events);
        // Stops of evaluated flows are found; a detection comes after the outage starts.
        assert!(r.detected() > 0, "{:#}", r.to_json());
        assert!(r.delays.iter().all(|&d| d > 0));
        // The days of a flow's ticks: about 35 days each, the first days N_A but counted.
        let months = r.flow_months() / r.flows as f64;
        assert!((0.9..1.3).contains(&months), "{months} months per flow");
        crate::svg::tests::check_xml(&r.delay_plot()).unwrap();
    }
}

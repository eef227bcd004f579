//! Evaluates every flow over a range of local days from a set of records — the engine of
//! `flowwatch replay` and of the gateway's simulation. It drives the same [`FlowHistory`] the
//! live flow actors keep, day by day, so its output is the live detection's.

use crate::InputError;
use crate::calendar::CountryCalendar;
use crate::config::{Config, FlowConfig};
use crate::detection::{DetectionParams, FlowHistory, TickEvaluation, first_influencing_day};
use crate::id::FlowId;
use crate::record::{Batch, Record, RecordRef, unknown_country};
use crate::tick::DayTicks;
use crate::time::{EpochDay, Instant, local_day, local_midnight};

/// Records of many flows, gathered for evaluation. Records may come in any order; they are
/// summed per tick, never replaced.
pub struct Replay<'c> {
    config: &'c Config,
    batch: Batch,
}

impl<'c> Replay<'c> {
    /// An empty replay under `config`.
    pub fn new(config: &'c Config) -> Replay<'c> {
        Replay {
            config,
            batch: Batch::default(),
        }
    }

    /// Refuses a flow whose country has no zone.
    fn known(&self) -> impl Fn(&FlowId) -> Result<(), InputError> + 'c {
        let config = self.config;
        move |flow| match config.calendar(&flow.country) {
            Some(_) => Ok(()),
            None => Err(unknown_country(&flow.country)),
        }
    }

    /// Adds a record; refused (with the reason) if its country has no zone.
    pub fn add(&mut self, r: &RecordRef<'_>) -> Result<(), InputError> {
        let known = self.known();
        self.batch.add(r, known)
    }

    /// Adds an owned record.
    pub fn add_record(&mut self, r: Record) -> Result<(), InputError> {
        let known = self.known();
        self.batch.add_record(r, known)
    }

    /// Adds one data line of the traffic CSV; refused with the reason.
    pub fn add_csv_line(&mut self, line: &str) -> Result<(), InputError> {
        let known = self.known();
        self.batch.add_csv_line(line, known)
    }

    /// Takes over the records of `other` (gathered on another thread under the same config).
    pub fn merge(&mut self, other: Replay<'c>) {
        self.batch.extend(other.batch);
    }

    /// The flows to evaluate, ordered by id; disabled flows are left out (they have no ticks).
    pub fn into_flows(self) -> Vec<FlowReplay<'c>> {
        let config = self.config;
        let latest = self.batch.records().map(|r| r.1).max().unwrap_or(0);
        let mut flows: Vec<FlowReplay<'c>> = self
            .batch
            .into_flows()
            .into_iter()
            .filter_map(|(id, records)| {
                let (cfg, _) = config.flow_config(&id);
                let calendar = config.calendar(&id.country).expect("checked when added");
                cfg.enabled.then_some(FlowReplay {
                    id,
                    config: cfg,
                    calendar,
                    records,
                    latest,
                    first_day: None,
                })
            })
            .collect();
        flows.sort_by(|a, b| a.id.cmp(&b.id));
        flows
    }
}

/// One flow's records, ready to evaluate.
pub struct FlowReplay<'c> {
    /// The flow.
    pub id: FlowId,
    /// Its effective configuration.
    pub config: FlowConfig,
    calendar: &'c CountryCalendar,
    records: Vec<(Instant, u64)>,
    latest: Instant,
    /// The flow's first local day, when the records may start later (see [`replay_flow_since`]).
    first_day: Option<EpochDay>,
}

/// Which local days to report: `[from, to)`; `None` means from the flow's first day, and to
/// the day after the latest record of the whole replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// First local day reported.
    pub from: Option<EpochDay>,
    /// First local day not reported.
    pub to: Option<EpochDay>,
}

impl FlowReplay<'_> {
    /// Evaluates every tick that can bear on the window, from the flow's first day or the
    /// window's [`first_influencing_day`] (whichever is later) to the window's end, in time
    /// order, and passes those of days within the window to `emit` with their real start and
    /// end. Days before that cannot change a tick of the window, so they are not evaluated.
    pub fn run(mut self, window: Window, mut emit: impl FnMut(Instant, Instant, &TickEvaluation)) {
        let tz = self.calendar.tz();
        // Nearly always already in order: the sort then costs one pass.
        self.records.sort_unstable_by_key(|r| r.0);
        let earliest = self.records.first().map(|r| local_day(tz, r.0));
        let Some(first_day) = earliest.into_iter().chain(self.first_day).min() else {
            return;
        };
        let to = window.to.unwrap_or_else(|| local_day(tz, self.latest) + 1);
        let from = window.from.unwrap_or(first_day);
        let begin = first_influencing_day(&self.config, from).max(first_day);
        let g = self.config.granularity;
        let mut history = FlowHistory::new(DetectionParams::from(&self.config), first_day);
        let mut actuals = vec![0u64; g.ticks_per_day()];
        let start = local_midnight(tz, begin);
        let mut next = self.records.partition_point(|r| r.0 < start);
        for day in begin..to {
            let ticks = DayTicks::new(tz, day, g);
            actuals.fill(0);
            let end = ticks.day_end();
            // Records before the day's start cannot remain: days are walked from the first.
            while let Some(&(t, bytes)) = self.records.get(next) {
                if t >= end {
                    break;
                }
                let i = ticks
                    .locate(t)
                    .expect("records before the day were consumed");
                actuals[i] += bytes;
                next += 1;
            }
            let kind = self.calendar.day_kind(day);
            let report = day >= from;
            history.evaluate_day(ticks, kind, &actuals, |start, end, e| {
                if report {
                    emit(start, end, &e);
                }
            });
        }
    }
}

/// Replays one flow from its records (time, bytes): its ticks in the window, with their real
/// start and end — the simulation of a flow over stored traffic. `None` for a country without
/// a zone; no ticks for a disabled flow.
pub fn replay_flow(
    config: &Config,
    flow: &FlowId,
    records: impl IntoIterator<Item = (Instant, u64)>,
    window: Window,
) -> Option<Vec<(Instant, Instant, TickEvaluation)>> {
    replay_flow_since(config, flow, None, records, window)
}

/// [`replay_flow`] from records that need only cover the days from the window's
/// [`first_influencing_day`] on, for a flow whose first local day is `first_day` (the day of
/// its earliest record ever; `None`: that of the earliest record given) — none at all when the
/// flow has been silent since. What a simulation or a backtest over stored traffic reads,
/// however long the flow's history.
pub fn replay_flow_since(
    config: &Config,
    flow: &FlowId,
    first_day: Option<EpochDay>,
    records: impl IntoIterator<Item = (Instant, u64)>,
    window: Window,
) -> Option<Vec<(Instant, Instant, TickEvaluation)>> {
    let calendar = config.calendar(&flow.country)?;
    let (cfg, _) = config.flow_config(flow);
    let mut out = Vec::new();
    if cfg.enabled {
        let records: Vec<(Instant, u64)> = records.into_iter().collect();
        let f = FlowReplay {
            id: flow.clone(),
            config: cfg,
            calendar,
            latest: records.iter().map(|r| r.0).max().unwrap_or(0),
            records,
            first_day,
        };
        f.run(window, |start, end, e| out.push((start, end, *e)));
    }
    Some(out)
}

//! Live evaluation of one flow: what a flow actor decides, as pure code.
//!
//! A [`LiveFlow`] takes records as they arrive ([`LiveFlow::add`]) and a clock
//! ([`LiveFlow::advance`]): every tick whose end plus the grace has passed is evaluated, in
//! order, catching up any it missed, whether or not records came (silence is the outage to
//! catch). A change of status is an [`Transition`] with a stable id.
//!
//! A record for a tick already evaluated is *late*: `add` says so, and the owner rebuilds the
//! flow from stored traffic with [`LiveFlow::rebuild`], which re-evaluates from the first
//! affected tick so that the stored ticks always equal what replay computes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::calendar::CountryCalendar;
use crate::config::FlowConfig;
use crate::detection::{
    DetectionParams, FlowHistory, Status, TickEvaluation, first_influencing_day,
};
use crate::id::FlowId;
use crate::tick::{DayTicks, Granularity};
use crate::time::{EpochDay, Instant, local_day, utc_string};

/// One evaluated tick of a live flow.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveTick {
    /// Real start.
    pub start: Instant,
    /// Real end.
    pub end: Instant,
    /// The evaluation.
    pub eval: TickEvaluation,
    /// The status change this tick caused, if any.
    pub transition: Option<Transition>,
}

/// A change of a flow's status at a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Stable for the same flow, tick and transition: `country/lob/kind/name@tick:PREV>NEW`.
    pub id: String,
    /// Status before.
    pub previous: Status,
    /// Status after.
    pub new: Status,
}

/// The stable id of a transition (SPEC §8: consumers drop repeats by it).
pub fn transition_id(flow: &FlowId, tick_start: Instant, previous: Status, new: Status) -> String {
    format!(
        "{flow}@{}:{}>{}",
        utc_string(tick_start),
        previous.as_str(),
        new.as_str()
    )
}

/// What [`LiveFlow::add`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Counted in a tick still to be evaluated.
    Pending,
    /// Its tick, starting at `tick_start`, was already evaluated: rebuild from there.
    Late {
        /// Start of the first tick to evaluate again.
        tick_start: Instant,
    },
    /// Before the flow's first day: the flow's first day moves, rebuild from the record's day.
    BeforeFirstDay,
}

/// The day being evaluated.
#[derive(Debug, Clone)]
struct OpenDay {
    ticks: DayTicks,
    actuals: Vec<u64>,
    /// Index of the next tick to evaluate.
    next: usize,
}

/// One flow evaluated live; see the module documentation.
#[derive(Debug, Clone)]
pub struct LiveFlow {
    flow: FlowId,
    granularity: Granularity,
    calendar: Arc<CountryCalendar>,
    history: FlowHistory,
    day: OpenDay,
    /// Records not yet in an evaluated tick, by second.
    pending: BTreeMap<Instant, u64>,
    status: Status,
}

impl LiveFlow {
    /// A flow whose first day (the local day of its earliest record) is `first_day`, evaluated
    /// from the first tick of `start` (`>= first_day`) on, with no status yet (`N_A`).
    pub fn new(
        flow: FlowId,
        config: &FlowConfig,
        calendar: Arc<CountryCalendar>,
        first_day: EpochDay,
        start: EpochDay,
    ) -> LiveFlow {
        let start = start.max(first_day);
        let granularity = config.granularity;
        let mut history = FlowHistory::new(DetectionParams::from(config), first_day);
        let ticks = DayTicks::new(calendar.tz(), start, granularity);
        history.start_day(ticks.clone(), calendar.day_kind(start));
        let n = ticks.len();
        LiveFlow {
            flow,
            granularity,
            calendar,
            history,
            day: OpenDay {
                ticks,
                actuals: vec![0; n],
                next: 0,
            },
            pending: BTreeMap::new(),
            status: Status::NotAvailable,
        }
    }

    /// The flow.
    pub fn flow(&self) -> &FlowId {
        &self.flow
    }

    /// The current status (of the last evaluated tick).
    pub fn status(&self) -> Status {
        self.status
    }

    /// Start of the next tick to evaluate: everything before it is evaluated.
    pub fn watermark(&self) -> Instant {
        self.next_tick().0
    }

    /// When the next tick is due: its end plus `grace`.
    pub fn next_due(&self, grace: i64) -> Instant {
        let (_, end, i) = self.next_tick();
        if i < self.day.ticks.len() {
            return end + grace;
        }
        // The open day is over: the first existing tick of a following day.
        let mut day = self.day.ticks.day() + 1;
        loop {
            let ticks = DayTicks::new(self.calendar.tz(), day, self.granularity);
            if let Some(i) = (0..ticks.len()).find(|&i| ticks.exists(i)) {
                return ticks.end(i) + grace;
            }
            day += 1;
        }
    }

    /// The flow's first day.
    pub fn first_day(&self) -> EpochDay {
        self.history.first_day()
    }

    /// The next tick to evaluate: its start, end and index in the open day.
    fn next_tick(&self) -> (Instant, Instant, usize) {
        let t = &self.day.ticks;
        let mut i = self.day.next;
        // Skip ticks that do not exist (inside a spring gap).
        while i < t.len() && !t.exists(i) {
            i += 1;
        }
        if i < t.len() {
            (t.start(i), t.end(i), i)
        } else {
            (t.day_end(), t.day_end(), i)
        }
    }

    /// Takes a record of `bytes` at `time`.
    pub fn add(&mut self, time: Instant, bytes: u64) -> Added {
        if time < self.watermark() {
            if local_day(self.calendar.tz(), time) < self.history.first_day() {
                return Added::BeforeFirstDay;
            }
            let day = local_day(self.calendar.tz(), time);
            let ticks = DayTicks::new(self.calendar.tz(), day, self.granularity);
            let i = ticks
                .locate(time)
                .expect("an instant lies in its local day");
            return Added::Late {
                tick_start: ticks.start(i),
            };
        }
        *self.pending.entry(time).or_insert(0) += bytes;
        Added::Pending
    }

    /// Evaluates every tick with `end + grace <= now`, in order, and returns them.
    pub fn advance(&mut self, now: Instant, grace: i64) -> Vec<LiveTick> {
        let mut out = Vec::new();
        loop {
            let (start, end, i) = self.next_tick();
            if i == self.day.ticks.len() {
                // The day is over: file it and open the next.
                let day = self.day.ticks.day() + 1;
                self.history.end_day(&self.day.actuals);
                let ticks = DayTicks::new(self.calendar.tz(), day, self.granularity);
                self.history
                    .start_day(ticks.clone(), self.calendar.day_kind(day));
                let n = ticks.len();
                self.day = OpenDay {
                    ticks,
                    actuals: vec![0; n],
                    next: 0,
                };
                continue;
            }
            if end + grace > now {
                return out;
            }
            let actual: u64 = self.pending.range(start..end).map(|(_, b)| b).sum();
            self.pending = self.pending.split_off(&end);
            self.day.actuals[i] = actual;
            self.day.next = i + 1;
            let eval = self.history.evaluate(i, actual);
            let transition = (eval.status != self.status).then(|| Transition {
                id: transition_id(&self.flow, start, self.status, eval.status),
                previous: self.status,
                new: eval.status,
            });
            self.status = eval.status;
            out.push(LiveTick {
                start,
                end,
                eval,
                transition,
            });
        }
    }

    /// The first local day a rebuild for ticks from `from` must evaluate (and read traffic
    /// from): [`first_influencing_day`] of `from`'s day, not before the flow's first day.
    pub fn rebuild_start(
        config: &FlowConfig,
        calendar: &CountryCalendar,
        first_day: EpochDay,
        from: Instant,
    ) -> EpochDay {
        first_influencing_day(config, local_day(calendar.tz(), from)).max(first_day)
    }

    /// A flow rebuilt from its stored `records` (time, bytes; any order, covering at least
    /// [`LiveFlow::rebuild_start`]'s day to `now`) and evaluated up to `now`, for a late
    /// record or a start (process start, a flow moved here, a changed configuration). Returns
    /// the flow and its ticks starting at or after `from`: the ticks to store again.
    #[allow(clippy::too_many_arguments)]
    pub fn rebuild(
        flow: FlowId,
        config: &FlowConfig,
        calendar: Arc<CountryCalendar>,
        first_day: EpochDay,
        records: impl IntoIterator<Item = (Instant, u64)>,
        from: Instant,
        now: Instant,
        grace: i64,
    ) -> (LiveFlow, Vec<LiveTick>) {
        let start = LiveFlow::rebuild_start(config, &calendar, first_day, from);
        let mut live = LiveFlow::new(flow, config, calendar, first_day, start);
        let start_at = live.watermark();
        for (t, b) in records {
            if t >= start_at {
                live.add(t, b);
            }
        }
        let ticks = live
            .advance(now, grace)
            .into_iter()
            .filter(|t| t.start >= from)
            .collect();
        (live, ticks)
    }
}

#[cfg(test)]
mod tests;

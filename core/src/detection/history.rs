//! One flow's rolling history: the only state detection needs between days.
//!
//! The history of a day D is, per profile, the `medianDays` most recent qualifying days within
//! `lookbackDays` (SPEC §3). Days only ever get added at the front, so for any future day the
//! days it can use are among the `medianDays` most recent qualifying days of each profile today:
//! that is all [`FlowHistory`] keeps. With the defaults and two profiles that is 10 days of
//! rates, ~9 KiB at 15-minute ticks, whatever the lookback.

use crate::calendar::DayKind;
use crate::config::Detector;
use crate::detection::adaptive::{self, Evidence};
use crate::detection::{
    Band, DetectionParams, Profile, Status, TickEvaluation, assess, median, profile,
};
use crate::tick::DayTicks;
use crate::time::{EpochDay, Instant};

/// A past day kept for its rates (stored in [`FlowHistory::rates`] at the same position).
#[derive(Debug, Clone, Copy)]
struct PastDay {
    day: EpochDay,
    profile: Profile,
}

/// The expectation of every tick of the day being evaluated.
#[derive(Debug, Clone)]
pub struct DayPlan {
    ticks: DayTicks,
    kind: DayKind,
    /// `lazyDayDecrease` on a lazy work day, else 1.
    lazy: f64,
    /// Median rate per tick index; NaN for `N_A` (or a tick that does not exist).
    expected_raw: Vec<f64>,
    day_average: f64,
    /// The adaptive detector's spread per tick index (empty in the seed mode).
    spread: Vec<f64>,
    /// The adaptive detector's grain, in rates ([`adaptive::grain`]; 0 in the seed mode).
    grain: f64,
}

impl DayPlan {
    /// The day's ticks.
    pub fn ticks(&self) -> &DayTicks {
        &self.ticks
    }

    /// `dayAverage(D)`; NaN when no tick of the day has an expectation.
    pub fn day_average(&self) -> f64 {
        self.day_average
    }

    /// `expected_raw(i)`, if tick `i` has an expectation.
    pub fn expected_raw(&self, i: usize) -> Option<f64> {
        let v = self.expected_raw[i];
        (!v.is_nan()).then_some(v)
    }

    /// The adaptive detector's spread of tick `i`, if it has one.
    pub fn spread(&self, i: usize) -> Option<f64> {
        self.spread.get(i).copied().filter(|v| !v.is_nan())
    }
}

/// The rolling history of one flow; see the module documentation.
#[derive(Debug, Clone)]
pub struct FlowHistory {
    params: DetectionParams,
    first_day: EpochDay,
    /// Retained days, newest first.
    days: Vec<PastDay>,
    /// Their rates, `a / f` per tick index (NaN where the tick did not exist), day after day
    /// in the order of `days`: one allocation per flow keeps planning a day cache-friendly.
    rates: Vec<f64>,
    /// Tick indexes per day (the stride of `rates`).
    width: usize,
    /// The last ended day's plan buffers, reused by the next `start_day`.
    spare: (Vec<f64>, Vec<f64>),
    /// Difference of the previous existing tick; `+∞` when it was `N_A` or absent.
    previous: f64,
    /// The adaptive detector's state after the previous existing tick.
    evidence: Evidence,
    plan: Option<DayPlan>,
}

impl FlowHistory {
    /// An empty history for a flow whose first day (the local day of its earliest record) is
    /// `first_day`.
    pub fn new(params: DetectionParams, first_day: EpochDay) -> FlowHistory {
        FlowHistory {
            params,
            first_day,
            days: Vec::new(),
            rates: Vec::new(),
            width: 0,
            spare: Default::default(),
            previous: f64::INFINITY,
            evidence: Evidence::default(),
            plan: None,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &DetectionParams {
        &self.params
    }

    /// The flow's first day.
    pub fn first_day(&self) -> EpochDay {
        self.first_day
    }

    /// The plan of the day being evaluated, if any.
    pub fn plan(&self) -> Option<&DayPlan> {
        self.plan.as_ref()
    }

    /// Starts evaluating the day of `ticks`: computes every tick's expectation from the history
    /// and `dayAverage`. Days must be started and ended in order, each once.
    pub fn start_day(&mut self, ticks: DayTicks, kind: DayKind) {
        let day = ticks.day();
        let p = &self.params;
        let this_profile = profile(kind.weekday_class, p.independent_days);
        let oldest = day - p.lookback_days as EpochDay;
        let lazy = if kind.lazy_factor_applies() {
            p.lazy_day_decrease
        } else {
            1.0
        };
        // The history's rates, newest first; on the stack for any usual `medianDays`.
        const STACK: usize = 32;
        let mut on_stack: [&[f64]; STACK] = [&[]; STACK];
        let mut on_heap: Vec<&[f64]> = Vec::new();
        let mut count = 0;
        let width = self.width;
        for (k, d) in self.days.iter().enumerate() {
            if count == p.median_days as usize {
                break;
            }
            if d.profile == this_profile && d.day >= oldest && d.day < day {
                let rates = &self.rates[k * width..(k + 1) * width];
                if count < STACK {
                    on_stack[count] = rates;
                } else {
                    if on_heap.is_empty() {
                        on_heap.extend_from_slice(&on_stack);
                    }
                    on_heap.push(rates);
                }
                count += 1;
            }
        }
        let history: &[&[f64]] = if count <= STACK {
            &on_stack[..count]
        } else {
            &on_heap
        };
        let (mut expected_raw, mut spread) = std::mem::take(&mut self.spare);
        expected_raw.clear();
        expected_raw.resize(ticks.len(), f64::NAN);
        let mut scratch = [0f64; STACK];
        let mut scratch_heap = Vec::new();
        for (i, slot) in expected_raw.iter_mut().enumerate() {
            if !ticks.exists(i) {
                continue;
            }
            let rates: &mut [f64] = if history.len() <= STACK {
                let mut n = 0;
                for r in history.iter().map(|h| h[i]).filter(|r| !r.is_nan()) {
                    scratch[n] = r;
                    n += 1;
                }
                &mut scratch[..n]
            } else {
                scratch_heap.clear();
                scratch_heap.extend(history.iter().map(|h| h[i]).filter(|r| !r.is_nan()));
                &mut scratch_heap
            };
            if rates.len() < p.min_history_days as usize || rates.is_empty() {
                continue;
            }
            *slot = median(rates);
        }
        spread.clear();
        let grain = if p.detector == Detector::Adaptive {
            adaptive::plan_day(history, p, &mut expected_raw, &mut spread)
        } else {
            0.0
        };
        let (mut sum, mut count) = (0.0, 0u32);
        for m in expected_raw.iter().filter(|m| !m.is_nan()) {
            sum += m * lazy;
            count += 1;
        }
        let day_average = if count > 0 {
            sum / count as f64
        } else {
            f64::NAN
        };
        self.plan = Some(DayPlan {
            ticks,
            kind,
            lazy,
            expected_raw,
            day_average,
            spread,
            grain,
        });
    }

    /// Evaluates tick `i` of the started day with its `actual` bytes, and remembers its
    /// difference for the next tick. `i` must be a tick that exists, evaluated in order.
    pub fn evaluate(&mut self, i: usize, actual: u64) -> TickEvaluation {
        let plan = self.plan.as_ref().expect("start_day before evaluate");
        debug_assert!(plan.ticks.exists(i), "tick {i} does not exist");
        let raw = plan.expected_raw[i];
        if raw.is_nan() {
            self.previous = f64::INFINITY;
            self.evidence = Evidence::default();
            return TickEvaluation {
                index: i,
                actual,
                status: Status::NotAvailable,
                values: None,
            };
        }
        let p = &self.params;
        let (mut status, mut values) = assess(
            p,
            raw,
            plan.ticks.factor(i),
            plan.lazy,
            plan.day_average,
            actual,
            self.previous,
        );
        self.previous = values.difference;
        if p.detector == Detector::Adaptive {
            // The floor is slack, not a higher expectation: a tick carrying what is expected
            // is never short, however small (the seed mode's day difference does the same).
            let floor = values.expected.max(p.minimal_expectation);
            let slack = floor - values.expected;
            let x = (actual as f64 + slack) / floor;
            // How many events (calls, files) the tick should hold, as far as the grain tells.
            let grain = plan.grain * plan.ticks.factor(i);
            let events = if grain > 0.0 {
                floor / grain
            } else {
                f64::INFINITY
            };
            let band = self
                .evidence
                .rate(x, plan.spread[i], events, p, plan.ticks.len());
            status = self.evidence.status();
            values.difference = x;
            let bytes = |ratio: f64| (ratio * floor - slack).max(0.0);
            values.band = Some(Band {
                lower: bytes(band.lower),
                outage_below: bytes(band.outage_below),
                ..band
            });
        }
        TickEvaluation {
            index: i,
            actual,
            status,
            values: Some(values),
        }
    }

    /// Ends the started day: files its traffic (`actuals` per tick index) as history if the day
    /// qualifies, and forgets days no future day can use.
    pub fn end_day(&mut self, actuals: &[u64]) {
        let mut plan = self.plan.take().expect("start_day before end_day");
        // Keep the plan's buffers for the next day: planning runs for every flow every midnight.
        self.spare = (
            std::mem::take(&mut plan.expected_raw),
            std::mem::take(&mut plan.spread),
        );
        let day = plan.ticks.day();
        debug_assert_eq!(actuals.len(), plan.ticks.len());
        if plan.kind.lazy || day < self.first_day {
            return;
        }
        let n = plan.ticks.len();
        if self.width != n {
            // A new tick grid: the old rates cannot be compared (a granularity change rebuilds
            // the history from stored traffic anyway).
            self.days.clear();
            self.rates.clear();
            self.width = n;
        }
        let profile = profile(plan.kind.weekday_class, self.params.independent_days);
        let at = self.days.partition_point(|d| d.day > day);
        self.days.insert(at, PastDay { day, profile });
        let rates = (0..n).map(|i| {
            if plan.ticks.exists(i) {
                actuals[i] as f64 / plan.ticks.factor(i)
            } else {
                f64::NAN
            }
        });
        self.rates.splice(at * n..at * n, rates);
        // A future day D > `day` looks back to D − lookback > day − lookback.
        let oldest_useful = day + 1 - self.params.lookback_days as EpochDay;
        let median_days = self.params.median_days as usize;
        let mut seen = [0usize; 9];
        let mut kept = 0;
        for k in 0..self.days.len() {
            let d = self.days[k];
            let n_seen = &mut seen[d.profile as usize];
            *n_seen += 1;
            if d.day >= oldest_useful && *n_seen <= median_days {
                if kept != k {
                    self.days[kept] = d;
                    self.rates.copy_within(k * n..(k + 1) * n, kept * n);
                }
                kept += 1;
            }
        }
        self.days.truncate(kept);
        self.rates.truncate(kept * n);
        // Plan buffer reuse aside, keep no slack: memory per flow is what a worker scales by.
        self.rates.shrink_to(kept * n + n);
    }

    /// Evaluates a whole day: starts it, evaluates every existing tick (`actuals` per index)
    /// and ends it. `emit` receives each tick's real start and end and its evaluation.
    pub fn evaluate_day(
        &mut self,
        ticks: DayTicks,
        kind: DayKind,
        actuals: &[u64],
        mut emit: impl FnMut(Instant, Instant, TickEvaluation),
    ) {
        self.start_day(ticks, kind);
        for (i, &actual) in actuals.iter().enumerate() {
            let t = &self.plan.as_ref().expect("started above").ticks;
            if !t.exists(i) {
                continue;
            }
            let (start, end) = (t.start(i), t.end(i));
            let e = self.evaluate(i, actual);
            emit(start, end, e);
        }
        self.end_day(actuals);
    }

    /// Bytes this history holds on the heap (retained rates and the day plan), for memory
    /// reports.
    pub fn heap_bytes(&self) -> usize {
        let days =
            self.days.capacity() * std::mem::size_of::<PastDay>() + self.rates.capacity() * 8;
        let plan = self
            .plan
            .as_ref()
            .map_or(0, |p| (p.expected_raw.capacity() + p.spread.capacity()) * 8)
            + (self.spare.0.capacity() + self.spare.1.capacity()) * 8;
        days + plan
    }

    /// How many past days are retained.
    pub fn retained_days(&self) -> usize {
        self.days.len()
    }
}

//! One flow's rolling history: the only state detection needs between days.
//!
//! The history of a day D is, per profile, the `medianDays` most recent qualifying days within
//! `lookbackDays` (SPEC §3). Days only ever get added at the front, so for any future day the
//! days it can use are among the `medianDays` most recent qualifying days of each profile today:
//! that is all [`FlowHistory`] keeps. With the defaults and two profiles that is 10 days of
//! rates, ~8 KiB at 15-minute ticks, whatever the lookback.

use crate::calendar::DayKind;
use crate::detection::{DetectionParams, Profile, Status, TickEvaluation, assess, median, profile};
use crate::tick::DayTicks;
use crate::time::{EpochDay, Instant};

/// A past day kept for its rates.
#[derive(Debug, Clone)]
struct PastDay {
    day: EpochDay,
    profile: Profile,
    /// `a / f` per tick index; NaN where the tick did not exist.
    rates: Box<[f64]>,
}

/// The expectation of every tick of the day being evaluated.
#[derive(Debug, Clone)]
pub struct DayPlan {
    ticks: DayTicks,
    kind: DayKind,
    /// `lazyDayDecrease` on a lazy work day, else 1.
    lazy: f64,
    /// Median rate per tick index; NaN for `N_A` (or a tick that does not exist).
    expected_raw: Box<[f64]>,
    day_average: f64,
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
}

/// The rolling history of one flow; see the module documentation.
#[derive(Debug, Clone)]
pub struct FlowHistory {
    params: DetectionParams,
    first_day: EpochDay,
    /// Retained days, newest first.
    days: Vec<PastDay>,
    /// Difference of the previous existing tick; `+∞` when it was `N_A` or absent.
    previous: f64,
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
            previous: f64::INFINITY,
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
        let history: Vec<&PastDay> = self
            .days
            .iter()
            .filter(|d| d.profile == this_profile && d.day >= oldest && d.day < day)
            .take(p.median_days as usize)
            .collect();
        let lazy = if kind.lazy_factor_applies() {
            p.lazy_day_decrease
        } else {
            1.0
        };
        let n = ticks.len();
        let mut expected_raw = vec![f64::NAN; n].into_boxed_slice();
        let mut rates = Vec::with_capacity(history.len());
        let (mut sum, mut count) = (0.0, 0u32);
        for (i, slot) in expected_raw.iter_mut().enumerate() {
            if !ticks.exists(i) {
                continue;
            }
            rates.clear();
            rates.extend(history.iter().map(|d| d.rates[i]).filter(|r| !r.is_nan()));
            if rates.len() < p.min_history_days as usize || rates.is_empty() {
                continue;
            }
            let m = median(&mut rates);
            *slot = m;
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
            return TickEvaluation {
                index: i,
                actual,
                status: Status::NotAvailable,
                values: None,
            };
        }
        let (status, values) = assess(
            &self.params,
            raw,
            plan.ticks.factor(i),
            plan.lazy,
            plan.day_average,
            actual,
            self.previous,
        );
        self.previous = values.difference;
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
        let plan = self.plan.take().expect("start_day before end_day");
        let day = plan.ticks.day();
        debug_assert_eq!(actuals.len(), plan.ticks.len());
        if plan.kind.lazy || day < self.first_day {
            return;
        }
        let rates: Box<[f64]> = (0..plan.ticks.len())
            .map(|i| {
                if plan.ticks.exists(i) {
                    actuals[i] as f64 / plan.ticks.factor(i)
                } else {
                    f64::NAN
                }
            })
            .collect();
        let profile = profile(plan.kind.weekday_class, self.params.independent_days);
        let at = self.days.partition_point(|d| d.day > day);
        self.days.insert(
            at,
            PastDay {
                day,
                profile,
                rates,
            },
        );
        // A future day D > `day` looks back to D − lookback > day − lookback.
        let oldest_useful = day + 1 - self.params.lookback_days as EpochDay;
        let median_days = self.params.median_days as usize;
        let mut seen = [0usize; 9];
        self.days.retain(|d| {
            let n = &mut seen[d.profile as usize];
            *n += 1;
            d.day >= oldest_useful && *n <= median_days
        });
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
        let days = self.days.capacity() * std::mem::size_of::<PastDay>()
            + self.days.iter().map(|d| d.rates.len() * 8).sum::<usize>();
        let plan = self.plan.as_ref().map_or(0, |p| p.expected_raw.len() * 8);
        days + plan
    }

    /// How many past days are retained.
    pub fn retained_days(&self) -> usize {
        self.days.len()
    }
}

//! Expected traffic, differences and statuses (SPEC §3–4). `README.md` beside this file
//! explains the algorithm with a worked example.
//!
//! The unit of work is a local day: [`FlowHistory::start_day`] computes the day's expectation of
//! every tick from the similar past days it retains (a [`DayPlan`]), [`FlowHistory::evaluate`]
//! rates one closed tick against it, and [`FlowHistory::end_day`] files the day's traffic as
//! history. A long-lived flow actor keeps one `FlowHistory`; replay and simulation drive the
//! same calls day by day.

pub mod adaptive;
mod history;

pub use history::{DayPlan, FlowHistory};

use serde::{Deserialize, Serialize};

use crate::config::{Detector, DifferenceMode, FlowConfig};
use crate::time::EpochDay;

/// The status of an evaluated tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    /// Traffic as expected.
    #[serde(rename = "OK")]
    Ok,
    /// Below the soft level once: suspicious.
    #[serde(rename = "WARNING")]
    Warning,
    /// Below the hard level, or below the soft level twice in a row.
    #[serde(rename = "OUTAGE")]
    Outage,
    /// Not enough history to expect anything.
    #[serde(rename = "N_A")]
    NotAvailable,
}

impl Status {
    /// `OK`, `WARNING`, `OUTAGE` or `N_A`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Outage => "OUTAGE",
            Status::NotAvailable => "N_A",
        }
    }

    /// `WARNING` or `OUTAGE`: what a person is alarmed about.
    pub fn is_alarm(self) -> bool {
        matches!(self, Status::Warning | Status::Outage)
    }

    /// Parses the spelling of [`Status::as_str`].
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "OK" => Some(Status::Ok),
            "WARNING" => Some(Status::Warning),
            "OUTAGE" => Some(Status::Outage),
            "N_A" => Some(Status::NotAvailable),
            _ => None,
        }
    }
}

/// The part of a flow's configuration that detection reads, in a compact form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionParams {
    /// `softAlarmLevel`.
    pub soft_alarm_level: f64,
    /// `hardAlarmLevel`.
    pub hard_alarm_level: f64,
    /// `difference`.
    pub difference: DifferenceMode,
    /// `independentDays` as a bit mask (bit `w` = weekday `w`).
    pub independent_days: u8,
    /// `minimalExpectation`.
    pub minimal_expectation: f64,
    /// `lazyDayDecrease`.
    pub lazy_day_decrease: f64,
    /// `medianDays`.
    pub median_days: u32,
    /// `lookbackDays`.
    pub lookback_days: u32,
    /// `minHistoryDays`.
    pub min_history_days: u32,
    /// `detector`.
    pub detector: Detector,
}

impl From<&FlowConfig> for DetectionParams {
    fn from(c: &FlowConfig) -> Self {
        DetectionParams {
            soft_alarm_level: c.soft_alarm_level,
            hard_alarm_level: c.hard_alarm_level,
            difference: c.difference,
            independent_days: c.independent_days.iter().fold(0, |m, &d| m | 1 << d),
            minimal_expectation: c.minimal_expectation,
            lazy_day_decrease: c.lazy_day_decrease,
            median_days: c.median_days,
            lookback_days: c.lookback_days,
            min_history_days: c.min_history_days,
            detector: c.detector,
        }
    }
}

/// A day's profile: `0..=6` for an independent weekday (`day-N`), [`WEEKEND`] or [`WORKDAY`].
pub type Profile = u8;
/// The `weekend` profile.
pub const WEEKEND: Profile = 7;
/// The `workday` profile.
pub const WORKDAY: Profile = 8;

/// The profile of a day whose weekday class (holidays count as Sunday) is `e`.
pub fn profile(e: u8, independent_days: u8) -> Profile {
    if independent_days & (1 << e) != 0 {
        e
    } else if e >= 5 {
        WEEKEND
    } else {
        WORKDAY
    }
}

/// The profile's name as SPEC §3 writes it: `day-4`, `weekend`, `workday`.
pub fn profile_name(p: Profile) -> String {
    match p {
        WEEKEND => "weekend".into(),
        WORKDAY => "workday".into(),
        d => format!("day-{d}"),
    }
}

/// The median of `values` (even count: the mean of the two middle values); sorts them.
/// `values` must be non-empty and free of NaN.
pub fn median(values: &mut [f64]) -> f64 {
    // Insertion sort: a handful of values, already partly ordered day to day.
    for i in 1..values.len() {
        let mut j = i;
        while j > 0 && values[j - 1] > values[j] {
            values.swap(j - 1, j);
            j -= 1;
        }
    }
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The numbers of a tick that has an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickValues {
    /// `expected(i) = expected_raw(i) · f · lazy` (before the `minimalExpectation` floor).
    pub expected: f64,
    /// `dayAverage(D)`.
    pub day_average: f64,
    /// `a / ê`.
    pub tick_difference: f64,
    /// `1 + (a − ê) / dayAverage`, or the tick difference when `dayAverage` is 0.
    pub day_difference: f64,
    /// The difference the status is decided on (the adaptive detector: `tickDifference`).
    pub difference: f64,
    /// The adaptive detector's band and evidence; `None` in the seed mode.
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    pub band: Option<Band>,
}

/// What the adaptive detector decided a tick on, in the tick's own terms: below `lower` the
/// tick is not `OK`, below `outageBelow` it is `OUTAGE` (both in bytes, given the evidence the
/// ticks before it left), `evidence` is what it leaves for the next tick and `spread` the
/// flow's variability at this tick (a log ratio). See `detection/adaptive.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Band {
    /// Bytes below which the tick is `WARNING` or `OUTAGE`.
    pub lower: f64,
    /// Bytes below which the tick is `OUTAGE`.
    pub outage_below: f64,
    /// Evidence after the tick, in spreads.
    pub evidence: f64,
    /// The flow's spread at this tick.
    pub spread: f64,
}

/// One evaluated tick.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickEvaluation {
    /// The tick's index in its day.
    pub index: usize,
    /// Bytes that passed in the tick.
    pub actual: u64,
    /// The status.
    pub status: Status,
    /// The numbers; `None` for `N_A`.
    pub values: Option<TickValues>,
}

/// Rates a tick whose raw expectation is known (SPEC §4). `factor` is the tick's duration factor,
/// `lazy` the lazy-day factor, `previous` the difference of the previous existing tick
/// (`+∞` when it was `N_A` or absent).
pub fn assess(
    params: &DetectionParams,
    expected_raw: f64,
    factor: f64,
    lazy: f64,
    day_average: f64,
    actual: u64,
    previous: f64,
) -> (Status, TickValues) {
    let a = actual as f64;
    let expected = expected_raw * factor * lazy;
    let floor = expected.max(params.minimal_expectation);
    let tick_difference = a / floor;
    let day_difference = if day_average > 0.0 {
        1.0 + (a - floor) / day_average
    } else {
        tick_difference
    };
    let difference = match params.difference {
        DifferenceMode::Tick => tick_difference,
        DifferenceMode::Day if a < 0.1 * floor => tick_difference,
        DifferenceMode::Day => tick_difference.max(day_difference),
    };
    let status = status_of(
        difference,
        previous,
        params.soft_alarm_level,
        params.hard_alarm_level,
    );
    (
        status,
        TickValues {
            expected,
            day_average,
            tick_difference,
            day_difference,
            difference,
            band: None,
        },
    )
}

/// The first local day whose traffic can change a tick of local day `day` or later under
/// `config`: a day's history lies within its `lookbackDays`, and the ticks before it carry
/// state — the seed mode's previous difference (the day before), the adaptive detector's
/// evidence ([`adaptive::rebuild_days`]). A replay or a rebuild for ticks from `day` on reads
/// and evaluates from there.
pub fn first_influencing_day(config: &FlowConfig, day: EpochDay) -> EpochDay {
    let carried = match config.detector {
        Detector::Seed => 1,
        Detector::Adaptive => adaptive::rebuild_days(config.granularity.ticks_per_day()),
    };
    day - config.lookback_days as EpochDay - carried
}

/// The status rule of SPEC §4.
pub fn status_of(difference: f64, previous: f64, soft: f64, hard: f64) -> Status {
    if difference >= soft {
        Status::Ok
    } else if difference < hard || previous < soft {
        Status::Outage
    } else {
        Status::Warning
    }
}

#[cfg(test)]
mod tests;

//! Suggested calendars on the generator (`flowwatch-loadtest suggestions`, issue 21): the
//! realistic data sets of [`crate::quality`], each flow's traffic per local day, and what
//! [`flowwatch_core::suggest`] suggests against what the generator knows: the low days no
//! calendar lists (unlisted holiday-like days, Christmas where it is no holiday) and the
//! weekdays of each LoB that differ from the rest of their profile.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use flowwatch_core::config::Config;
use flowwatch_core::suggest::{Country, DIFFERS, daily_totals};
use flowwatch_core::time::{EpochDay, epoch_day};
use serde_json::{Value, json};

use crate::quality::{Quality, dataset, records};

/// Suggestions against the truth, summed over the seeds.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Measured {
    /// Days suggested, of them truly unlisted low days, and the unlisted low days.
    pub days: Counts,
    /// Of the days suggested as holidays, those the generator made as low as a Sunday or
    /// lower (a factor at most 0.6).
    pub holidays: (u64, u64),
    /// LoB weekdays suggested (for a whole LoB), of them true, and the true ones.
    pub weekdays: Counts,
    /// Weekdays suggested for single flows, and of them of a true LoB weekday.
    pub flow_weekdays: (u64, u64),
}

/// Suggested, right, and to find.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counts {
    /// Suggestions made.
    pub suggested: u64,
    /// Of them, right.
    pub right: u64,
    /// What there was to find.
    pub truth: u64,
}

impl Counts {
    fn precision(&self) -> f64 {
        self.right as f64 / self.suggested.max(1) as f64
    }

    fn recall(&self) -> f64 {
        self.right as f64 / self.truth.max(1) as f64
    }
}

/// Measures every seed of `q`.
pub fn run(q: &Quality) -> Result<Measured> {
    let mut m = Measured::default();
    for &seed in &q.seeds {
        let (data, _) = dataset(q, seed);
        let config = Config::from_json(&data.config().to_string())?;
        let mut by_country: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (flow, records) in records(&data, q) {
            let tz = config
                .calendar(&flow.country)
                .expect("generated countries have calendars")
                .tz();
            let totals = daily_totals(tz, records);
            by_country
                .entry(flow.country.clone())
                .or_default()
                .push((flow, totals));
        }
        let first = epoch_day(q.start);
        let days = first + 1..first + q.days as EpochDay - 1;
        let unlisted = data.unlisted_days();
        let lob_truth: BTreeSet<(String, u8)> =
            data.independent_weekdays(DIFFERS).into_iter().collect();
        for (code, flows) in by_country {
            let country = Country::of(&config, &code, flows);
            let truth: BTreeMap<EpochDay, f64> = (unlisted.iter())
                .filter(|u| u.country == code)
                .map(|u| (day(&u.date), u.factor))
                .filter(|(d, _)| !country.holidays.contains(d) && !country.lazy_days.contains(d))
                .filter(|(d, _)| days.contains(d))
                .collect();
            let found = country.missing_days(days.clone());
            m.days.suggested += found.len() as u64;
            m.days.right += found.iter().filter(|s| truth.contains_key(&s.day)).count() as u64;
            m.days.truth += truth.len() as u64;
            for s in found
                .iter()
                .filter(|s| s.kind == flowwatch_core::suggest::DayKind::Holiday)
            {
                m.holidays.0 += 1;
                m.holidays.1 += u64::from(truth.get(&s.day).is_some_and(|f| *f <= 0.6));
            }
            let lobs: BTreeSet<&str> = country.flows.iter().map(|f| f.flow.lob.as_str()).collect();
            let weekdays = country.independent_weekdays(days.clone());
            for s in &weekdays {
                let right = lob_truth.contains(&(s.lob.clone(), s.weekday));
                if s.flow.is_none() {
                    m.weekdays.suggested += 1;
                    m.weekdays.right += u64::from(right);
                } else {
                    m.flow_weekdays.0 += 1;
                    m.flow_weekdays.1 += u64::from(right);
                }
            }
            m.weekdays.truth += lob_truth
                .iter()
                .filter(|(l, _)| lobs.contains(l.as_str()))
                .count() as u64;
        }
    }
    Ok(m)
}

fn day(date: &str) -> EpochDay {
    epoch_day(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("generated dates"))
}

/// The measurement as JSON.
pub fn to_json(q: &Quality, m: &Measured) -> Value {
    let counts = |c: &Counts| {
        json!({"suggested": c.suggested, "right": c.right, "truth": c.truth,
               "precision": c.precision(), "recall": c.recall()})
    };
    json!({
        "scenario": "suggestions",
        "seeds": q.seeds,
        "flows": q.flows,
        "days": q.days,
        "start": q.start.to_string(),
        "missingDays": counts(&m.days),
        "holidaysAsLowAsSundays": {"suggested": m.holidays.0, "right": m.holidays.1},
        "lobWeekdays": counts(&m.weekdays),
        "flowWeekdays": {"suggested": m.flow_weekdays.0, "ofATrueLobWeekday": m.flow_weekdays.1},
    })
}

/// The measurement as a table for `docs/benchmarks.md`.
pub fn markdown(q: &Quality, m: &Measured) -> String {
    let pct = |x: f64| format!("{:.1} %", 100.0 * x);
    format!(
        "## Suggested calendars\n\n{} seeds × {} flows × {} days from {}, realistic shapes, \
         the generated document.\n\n\
         | suggestion | suggested | right | to find | precision | recall |\n\
         | --- | --- | --- | --- | --- | --- |\n\
         | missing days (lazy days, holidays) | {} | {} | {} | {} | {} |\n\
         | independent weekdays of a LoB | {} | {} | {} | {} | {} |\n\n\
         Of the days suggested as holidays, {} of {} were made at 60 % or less. Weekdays \
         suggested for single flows: {} ({} of a LoB weekday that differs).\n",
        q.seeds.len(),
        q.flows,
        q.days,
        q.start,
        m.days.suggested,
        m.days.right,
        m.days.truth,
        pct(m.days.precision()),
        pct(m.days.recall()),
        m.weekdays.suggested,
        m.weekdays.right,
        m.weekdays.truth,
        pct(m.weekdays.precision()),
        pct(m.weekdays.recall()),
        m.holidays.1,
        m.holidays.0,
        m.flow_weekdays.0,
        m.flow_weekdays.1,
    )
}

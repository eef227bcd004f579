//! Suggested calendars: from each flow's traffic per local day, the days a country's calendar
//! seems to miss (a lazy day or a holiday: most of its flows clearly below their similar days)
//! and the weekdays a LoB (or a flow) should compare only with themselves (`independentDays`:
//! a weekday that differs from the others of its profile week after week). Each suggestion
//! carries its evidence: the figures and the days compared.
//!
//! Pure: the gateway feeds it stored ticks, the load test the generator's traffic.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::FlowId;
use crate::time::{EpochDay, weekday};

/// Below this share of its similar days a flow's day is clearly low.
pub const LOW: f64 = 0.85;
/// A weekday differs when its ratio to its peers is beyond this factor (either way).
pub const DIFFERS: f64 = 1.15;
/// The share of weeks (and of a LoB's flows) that must agree.
pub const CONSISTENT: f64 = 0.8;
/// How far on each side similar days are looked for.
const REACH: EpochDay = 28;
/// The fewest similar days a ratio needs, and the fewest weeks a weekday needs.
const FEWEST: usize = 3;

/// One flow's traffic: bytes per whole local day.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowDays {
    /// The flow.
    pub flow: FlowId,
    /// Its configured `independentDays`.
    pub independent: Vec<u8>,
    /// Bytes per local day, days wholly covered only.
    pub totals: BTreeMap<EpochDay, f64>,
}

/// A country's calendar and its flows' traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Country {
    /// Its code.
    pub code: String,
    /// Listed holidays.
    pub holidays: HashSet<EpochDay>,
    /// Listed lazy days.
    pub lazy_days: HashSet<EpochDay>,
    /// Its flows.
    pub flows: Vec<FlowDays>,
}

/// What a missing day looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A work day as low as a Sunday.
    Holiday,
    /// Lower than its similar days, above a Sunday.
    LazyDay,
}

/// A day the calendar seems to miss.
#[derive(Debug, Clone, PartialEq)]
pub struct DaySuggestion {
    /// The day.
    pub day: EpochDay,
    /// Holiday or lazy day.
    pub kind: DayKind,
    /// Flows with a ratio that day.
    pub flows: usize,
    /// Of them, clearly low (below [`LOW`]).
    pub low: usize,
    /// The median of the flows' ratios to their similar days.
    pub ratio: f64,
    /// The median of the flows' ratios to the nearby Sundays.
    pub sunday_ratio: Option<f64>,
    /// The country's bytes that day, and the median of its similar days' (the flows with a
    /// ratio).
    pub bytes: f64,
    /// The median bytes of the similar days.
    pub usual_bytes: f64,
    /// The similar days compared (those of the day's profile, listed nowhere).
    pub compared: Vec<EpochDay>,
}

/// A weekday to compare only with itself.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekdaySuggestion {
    /// The LoB.
    pub lob: String,
    /// The flow, when only it (not most of its LoB) shows it.
    pub flow: Option<FlowId>,
    /// Monday = 0.
    pub weekday: u8,
    /// The weekdays it was compared with (the rest of its profile).
    pub peers: Vec<u8>,
    /// Median ratio of its traffic to its peers' in the same week.
    pub ratio: f64,
    /// Weeks compared, and of them those beyond [`DIFFERS`] the same way (for a LoB: summed
    /// over its flows that agree).
    pub weeks: usize,
    /// See `weeks`.
    pub consistent: usize,
    /// Flows that agree, and flows with enough weeks.
    pub flows: usize,
    /// See `flows`.
    pub of: usize,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The profile of `day` for a flow with `independent` days (SPEC §3; holidays are Sundays).
fn profile(w: u8, independent: &[u8]) -> u8 {
    match w {
        _ if independent.contains(&w) => 10 + w,
        5 | 6 => 1,
        _ => 0,
    }
}

/// Bytes per local day in `tz` of `amounts` (time, bytes), leaving out the first and the last
/// day (partly covered, as far as anyone knows).
pub fn daily_totals(
    tz: chrono_tz::Tz,
    amounts: impl IntoIterator<Item = (crate::time::Instant, u64)>,
) -> BTreeMap<EpochDay, f64> {
    let mut totals: BTreeMap<EpochDay, f64> = BTreeMap::new();
    for (t, bytes) in amounts {
        *totals.entry(crate::time::local_day(tz, t)).or_default() += bytes as f64;
    }
    totals.pop_first();
    totals.pop_last();
    totals
}

impl Country {
    /// Country `code` of `config` (its listed days, each flow's `independentDays`) with its
    /// flows' daily totals; a country without a calendar lists no day.
    pub fn of(
        config: &crate::config::Config,
        code: &str,
        flows: impl IntoIterator<Item = (FlowId, BTreeMap<EpochDay, f64>)>,
    ) -> Country {
        let calendar = config.calendar(code);
        Country {
            code: code.to_owned(),
            holidays: calendar.into_iter().flat_map(|c| c.holidays()).collect(),
            lazy_days: calendar.into_iter().flat_map(|c| c.lazy_days()).collect(),
            flows: (flows.into_iter())
                .map(|(flow, totals)| FlowDays {
                    independent: config.flow_config(&flow).0.independent_days,
                    flow,
                    totals,
                })
                .collect(),
        }
    }

    fn listed(&self, day: EpochDay) -> bool {
        self.holidays.contains(&day) || self.lazy_days.contains(&day)
    }

    /// The days within [`REACH`] of `day` (not itself, none listed) whose weekday `same` takes.
    fn near(&self, day: EpochDay, same: impl Fn(u8) -> bool) -> Vec<EpochDay> {
        (day - REACH..=day + REACH)
            .filter(|&d| d != day && !self.listed(d) && same(weekday(d)))
            .collect()
    }

    /// Days in `days` the calendar seems to miss, oldest first.
    pub fn missing_days(&self, days: std::ops::Range<EpochDay>) -> Vec<DaySuggestion> {
        let mut out = Vec::new();
        for day in days.filter(|&d| !self.listed(d)) {
            let w = weekday(day);
            let sundays = self.near(day, |x| x == 6);
            let (mut ratios, mut sunday_ratios) = (Vec::new(), Vec::new());
            let (mut bytes, mut usual) = (0.0, 0.0);
            for f in &self.flows {
                let Some(&total) = f.totals.get(&day) else {
                    continue;
                };
                let p = profile(w, &f.independent);
                let similar = self.near(day, |x| profile(x, &f.independent) == p);
                let mut seen: Vec<f64> = similar
                    .iter()
                    .filter_map(|d| f.totals.get(d).copied())
                    .collect();
                if seen.len() < FEWEST {
                    continue;
                }
                let Some(m) = median(&mut seen).filter(|m| *m > 0.0) else {
                    continue;
                };
                ratios.push(total / m);
                bytes += total;
                usual += m;
                let mut on_sundays: Vec<f64> = sundays
                    .iter()
                    .filter_map(|d| f.totals.get(d).copied())
                    .collect();
                if let Some(s) = median(&mut on_sundays).filter(|s| *s > 0.0) {
                    sunday_ratios.push(total / s);
                }
            }
            let n = ratios.len();
            let low = ratios.iter().filter(|r| **r < LOW).count();
            if n < FEWEST || low * 2 <= n {
                continue;
            }
            let ratio = median(&mut ratios).expect("flows with a ratio");
            if ratio >= LOW {
                continue;
            }
            let sunday_ratio = median(&mut sunday_ratios);
            let kind = match sunday_ratio {
                Some(s) if w < 5 && s <= 1.25 => DayKind::Holiday,
                _ => DayKind::LazyDay,
            };
            out.push(DaySuggestion {
                day,
                kind,
                flows: n,
                low,
                ratio,
                sunday_ratio,
                bytes,
                usual_bytes: usual,
                compared: self.near(day, |x| profile(x, &[]) == profile(w, &[])),
            });
        }
        out
    }

    /// Weekdays that differ from the rest of their profile week after week in `days`: for a
    /// LoB when at least [`CONSISTENT`] of its flows agree, else for each flow that does.
    /// Of a weekend that differs, Sunday is suggested (making it independent leaves Saturday
    /// its own profile too).
    pub fn independent_weekdays(&self, days: std::ops::Range<EpochDay>) -> Vec<WeekdaySuggestion> {
        let mut by_lob: BTreeMap<&str, Vec<&FlowDays>> = BTreeMap::new();
        for f in &self.flows {
            by_lob.entry(&f.flow.lob).or_default().push(f);
        }
        let mut out = Vec::new();
        for (lob, flows) in by_lob {
            for w in [0u8, 1, 2, 3, 4, 6] {
                let mut agreeing = Vec::new();
                let mut counted = 0;
                let mut direction = [0usize; 2];
                for f in &flows {
                    if f.independent.contains(&w) {
                        continue;
                    }
                    let Some(r) = self.weekday_ratios(f, w, days.clone()) else {
                        continue;
                    };
                    counted += 1;
                    if let Some((up, ratio, weeks, consistent)) = r {
                        direction[usize::from(up)] += 1;
                        agreeing.push((*f, up, ratio, weeks, consistent));
                    }
                }
                if counted == 0 {
                    continue;
                }
                let up = direction[1] >= direction[0];
                agreeing.retain(|a| a.1 == up);
                let peers: Vec<u8> = match w {
                    5 | 6 => vec![11 - w],
                    _ => (0..5).filter(|&p| p != w).collect(),
                };
                if agreeing.len() as f64 >= CONSISTENT * counted as f64 {
                    let mut ratios: Vec<f64> = agreeing.iter().map(|a| a.2).collect();
                    out.push(WeekdaySuggestion {
                        lob: lob.to_owned(),
                        flow: None,
                        weekday: w,
                        peers,
                        ratio: median(&mut ratios).expect("agreeing flows"),
                        weeks: agreeing.iter().map(|a| a.3).sum(),
                        consistent: agreeing.iter().map(|a| a.4).sum(),
                        flows: agreeing.len(),
                        of: counted,
                    });
                } else {
                    for (f, _, ratio, weeks, consistent) in agreeing {
                        out.push(WeekdaySuggestion {
                            lob: lob.to_owned(),
                            flow: Some(f.flow.clone()),
                            weekday: w,
                            peers: peers.clone(),
                            ratio,
                            weeks,
                            consistent,
                            flows: 1,
                            of: 1,
                        });
                    }
                }
            }
        }
        out
    }

    /// For one flow and weekday `w`: `None` with too few weeks; else whether it differs
    /// consistently: `(up, median ratio, weeks, weeks beyond the factor that way)`.
    #[allow(clippy::type_complexity)]
    fn weekday_ratios(
        &self,
        f: &FlowDays,
        w: u8,
        days: std::ops::Range<EpochDay>,
    ) -> Option<Option<(bool, f64, usize, usize)>> {
        let class = profile(w, &[]);
        let peers: BTreeSet<u8> = (0..7u8)
            .filter(|&p| p != w && profile(p, &[]) == class && !f.independent.contains(&p))
            .collect();
        if peers.is_empty() {
            return None;
        }
        let mut ratios = Vec::new();
        for day in days.filter(|&d| weekday(d) == w && !self.listed(d)) {
            let Some(&total) = f.totals.get(&day) else {
                continue;
            };
            // The peers of the same week (Monday to Sunday).
            let monday = day - EpochDay::from(w);
            let mut same_week: Vec<f64> = (monday..monday + 7)
                .filter(|&d| peers.contains(&weekday(d)) && !self.listed(d))
                .filter_map(|d| f.totals.get(&d).copied())
                .collect();
            if let Some(m) = median(&mut same_week).filter(|m| *m > 0.0) {
                ratios.push(total / m);
            }
        }
        if ratios.len() < FEWEST {
            return None;
        }
        let weeks = ratios.len();
        let higher = ratios.iter().filter(|r| **r > DIFFERS).count();
        let lower = ratios.iter().filter(|r| **r < 1.0 / DIFFERS).count();
        let (up, consistent) = if higher >= lower {
            (true, higher)
        } else {
            (false, lower)
        };
        let ratio = median(&mut ratios).expect("weeks");
        Some(
            (consistent as f64 >= CONSISTENT * weeks as f64)
                .then_some((up, ratio, weeks, consistent)),
        )
    }
}

#[cfg(test)]
mod tests;

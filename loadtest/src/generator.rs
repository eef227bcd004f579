//! A deterministic generator of mediation traffic with labelled outages.
//!
//! Countries (CZ, DE, AT, NL in their zones, optionally two zones with unusual DST: São Paulo,
//! which moved its clocks at midnight, and Lord Howe, which moves them by 30 minutes) have lines
//! of business with their own weekly shape; each input fans out to forwards. Traffic follows a
//! diurnal curve (nights down to 1 % of the peak), the weekday (holidays as Sundays, lazy days
//! at 70 %, Christmas low), a slow trend and noise, and arrives in batches (files) every few
//! minutes or once a day, some of them late. Injected outages are labelled so a scorer can
//! measure detection. The configuration document that goes with the data is generated too.

use std::io::{self, Write};

use chrono::{Datelike, NaiveDate, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use flowwatch_core::calendar::CountryCalendar;
use flowwatch_core::calendar::holidays::national_holidays;
use flowwatch_core::record::{Batch, Record};
use flowwatch_core::time::{
    EpochDay, Instant, epoch_day, local_day, local_midnight, utc_string, weekday,
};
use flowwatch_core::{FlowId, FlowKind};
use serde::Serialize;
use serde_json::{Value, json};

use crate::rng::Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Seed: the same spec gives the same bytes.
    pub seed: u64,
    /// First local day of traffic.
    pub start: NaiveDate,
    /// Number of days.
    pub days: u32,
    /// How many flows (inputs and forwards together), approximately.
    pub flows: usize,
    /// Minutes between files of every non-daily flow; `None`: each LoB's own cadence.
    pub batch_minutes: Option<u32>,
    /// Adds São Paulo (`BR`) and Lord Howe (`LH`) zones.
    pub unusual_zones: bool,
    /// Injected outages per flow and 30 days.
    pub outages_per_flow_month: f64,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            seed: 1,
            start: NaiveDate::from_ymd_opt(2016, 9, 1).expect("valid date"),
            days: 120,
            flows: 40,
            batch_minutes: None,
            unusual_zones: false,
            outages_per_flow_month: 0.5,
        }
    }
}

/// The weekly and daily shape of a line of business.
struct LobShape {
    name: &'static str,
    saturday: f64,
    sunday: f64,
    friday: f64,
    night: f64,
    bytes_per_hour: f64,
    batch_minutes: &'static [u32],
    daily: bool,
    config: fn() -> Value,
}

const LOBS: &[LobShape] = &[
    LobShape {
        name: "GSM",
        saturday: 0.55,
        sunday: 0.45,
        friday: 1.0,
        night: 0.04,
        bytes_per_hour: 2e8,
        batch_minutes: &[5, 10, 15],
        daily: false,
        config: || json!({}),
    },
    LobShape {
        name: "SMS",
        saturday: 0.7,
        sunday: 0.6,
        friday: 1.05,
        night: 0.02,
        bytes_per_hour: 2e7,
        batch_minutes: &[2, 5],
        daily: false,
        config: || json!({"granularity": "30m"}),
    },
    LobShape {
        name: "DATA",
        saturday: 0.92,
        sunday: 0.9,
        friday: 1.0,
        night: 0.2,
        bytes_per_hour: 5e8,
        batch_minutes: &[5, 15],
        daily: false,
        config: || json!({"granularity": "15m"}),
    },
    LobShape {
        name: "VOIP",
        saturday: 0.1,
        sunday: 0.03,
        friday: 0.8,
        night: 0.01,
        bytes_per_hour: 5e7,
        batch_minutes: &[15, 30],
        daily: false,
        config: || json!({"granularity": "2h", "independentDays": [4, 6]}),
    },
    LobShape {
        name: "PSMS",
        saturday: 0.85,
        sunday: 0.8,
        friday: 1.3,
        night: 0.05,
        bytes_per_hour: 1e6,
        batch_minutes: &[30, 60],
        daily: false,
        config: || json!({"difference": "tick", "softAlarmLevel": 0.7, "hardAlarmLevel": 0.4}),
    },
    LobShape {
        name: "BATCH",
        saturday: 0.9,
        sunday: 0.9,
        friday: 1.0,
        night: 1.0,
        bytes_per_hour: 3e7,
        batch_minutes: &[1440],
        daily: true,
        config: || json!({"granularity": "1d"}),
    },
];

/// The shape of an injected outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutageKind {
    /// Traffic stops.
    Stop,
    /// Traffic drops to 30 %.
    PartialDrop,
    /// Traffic drops to 60 %.
    ModerateDrop,
    /// Traffic stops at night only (00:00–06:00 local).
    NightStop,
    /// Traffic declines linearly to 20 % over the outage.
    SlowDecline,
}

/// One labelled outage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outage {
    /// The flow (a forward's outage leaves its input alone; an input's reaches its forwards).
    pub flow: FlowId,
    /// RFC 3339 start.
    pub start: String,
    /// RFC 3339 end.
    pub end: String,
    /// Shape.
    pub kind: OutageKind,
    #[serde(skip)]
    start_t: Instant,
    #[serde(skip)]
    end_t: Instant,
}

impl Outage {
    /// Factor applied to traffic at `t` (local hour `hour`).
    fn factor(&self, t: Instant, hour: f64) -> f64 {
        if t < self.start_t || t >= self.end_t {
            return 1.0;
        }
        match self.kind {
            OutageKind::Stop => 0.0,
            OutageKind::PartialDrop => 0.3,
            OutageKind::ModerateDrop => 0.6,
            OutageKind::NightStop if hour < 6.0 => 0.0,
            OutageKind::NightStop => 1.0,
            OutageKind::SlowDecline => {
                1.0 - 0.8 * (t - self.start_t) as f64 / (self.end_t - self.start_t) as f64
            }
        }
    }
}

/// A generated flow.
struct Flow {
    id: FlowId,
    country: usize,
    lob: usize,
    /// For a forward: index of its input in `flows`, and its share of the input's bytes.
    input: Option<(usize, f64)>,
    scale: f64,
    trend: f64,
    batch_seconds: i64,
    phase: i64,
}

struct Country {
    code: &'static str,
    tz: Tz,
    calendar: CountryCalendar,
    holidays: Vec<String>,
    lazy_days: Vec<String>,
}

/// A generated data set: flows, labelled outages and the configuration document.
pub struct Dataset {
    spec: Spec,
    countries: Vec<Country>,
    flows: Vec<Flow>,
    outages: Vec<Outage>,
    config: Value,
}

impl Dataset {
    /// Generates the flows, outages and configuration of `spec` (the records are produced by
    /// [`Dataset::write_csv`]).
    pub fn generate(spec: &Spec) -> Dataset {
        let mut rng = Rng::new(spec.seed);
        let first = epoch_day(spec.start);
        let last = first + spec.days as EpochDay;
        let mut countries: Vec<Country> = ["CZ", "DE", "AT", "NL"]
            .iter()
            .map(|&code| {
                national_country(
                    code,
                    spec.start.year(),
                    flowwatch_core::time::date_of(last).year(),
                )
            })
            .collect();
        if spec.unusual_zones {
            for (code, tz) in [
                ("BR", chrono_tz::America::Sao_Paulo),
                ("LH", chrono_tz::Australia::Lord_Howe),
            ] {
                countries.push(Country {
                    code,
                    tz,
                    calendar: CountryCalendar::new(tz, [], []),
                    holidays: vec![],
                    lazy_days: vec![],
                });
            }
        }
        let mut flows: Vec<Flow> = Vec::new();
        let mut serial = 0usize;
        // Round-robin over countries, each round the next LoB of each (staggered by country), so
        // every country and LoB appears even in a small data set.
        'fill: for round in 0.. {
            for (ci, country) in countries.iter().enumerate() {
                // The unusual zones carry GSM and 15-minute DATA only.
                let li = if ci >= 4 {
                    [0, 2][(round + ci) % 2]
                } else {
                    (round + ci) % LOBS.len()
                };
                let lob = &LOBS[li];
                if flows.len() >= spec.flows.max(1) {
                    break 'fill;
                }
                serial += 1;
                let input_name = format!(
                    "{}{}{:02}",
                    country.code,
                    &lob.name[..lob.name.len().min(3)],
                    serial
                );
                let batch = spec.batch_minutes.unwrap_or(*rng.pick(lob.batch_minutes));
                let batch_seconds = if lob.daily { 86_400 } else { batch as i64 * 60 };
                let input = Flow {
                    id: FlowId::new(country.code, lob.name, FlowKind::Input, &input_name)
                        .expect("valid id"),
                    country: ci,
                    lob: li,
                    input: None,
                    scale: rng.range(0.2, 3.0),
                    trend: rng.range(-0.1, 0.25),
                    batch_seconds,
                    phase: if lob.daily {
                        3 * 3600
                    } else {
                        (rng.unit() * batch_seconds as f64) as i64
                    },
                };
                let input_index = flows.len();
                flows.push(input);
                let forwards = 1 + rng.below(3);
                for k in 0..forwards {
                    if flows.len() >= spec.flows.max(1) {
                        break 'fill;
                    }
                    let target = ["FOX", "BILL", "FRAUD", "DWH"][k % 4];
                    let name = format!("{input_name}:{}-{target}", country.code);
                    flows.push(Flow {
                        id: FlowId::new(country.code, lob.name, FlowKind::Forward, &name)
                            .expect("valid id"),
                        country: ci,
                        lob: li,
                        input: Some((input_index, rng.range(0.1, 1.0))),
                        scale: 1.0,
                        trend: 0.0,
                        batch_seconds,
                        phase: 0,
                    });
                }
            }
        }
        let outages = plan_outages(spec, &countries, &flows, &mut rng);
        let config = build_config(&countries, &flows, &mut rng);
        Dataset {
            spec: spec.clone(),
            countries,
            flows,
            outages,
            config,
        }
    }

    /// The configuration document (SPEC §5) for the data.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The injected outages.
    pub fn outages(&self) -> &[Outage] {
        &self.outages
    }

    /// How many flows.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Writes the traffic CSV (SPEC §6), roughly in arrival order (some files late, some times
    /// with a local offset or a fraction); returns the number of records.
    pub fn write_csv(&self, out: impl Write) -> io::Result<u64> {
        let records = self.arrivals();
        let mut out = io::BufWriter::with_capacity(1 << 20, out);
        writeln!(out, "{}", flowwatch_core::record::CSV_HEADER)?;
        let mut line = String::with_capacity(128);
        for &(_, t, fi, bytes, style) in &records {
            let flow = &self.flows[fi as usize];
            line.clear();
            write_time(&mut line, t, style, self.countries[flow.country].tz);
            use std::fmt::Write as _;
            let id = &flow.id;
            writeln!(
                line,
                ",{},{},{},{},{bytes}",
                id.country, id.lob, id.kind, id.name
            )
            .expect("String write");
            out.write_all(line.as_bytes())?;
        }
        out.flush()?;
        Ok(records.len() as u64)
    }

    /// The records in arrival order, as `(arrival, record)` batches: each batch the records
    /// that arrive in one `every`-second step (what a live feed sends at once).
    pub fn batches(&self, every: Instant) -> Vec<(Instant, Batch)> {
        let mut out: Vec<(Instant, Batch)> = Vec::new();
        for (arrival, t, fi, bytes, _) in self.arrivals() {
            let step = arrival.div_euclid(every.max(1)) * every.max(1);
            if out.last().is_none_or(|(s, _)| *s != step) {
                out.push((step, Batch::default()));
            }
            let (_, batch) = out.last_mut().expect("pushed above");
            let record = Record {
                time: t,
                flow: self.flows[fi as usize].id.clone(),
                bytes,
            };
            batch
                .add_record(record, |_| Ok(()))
                .expect("every flow is accepted");
        }
        out
    }

    /// `(arrival, time, flow index, bytes, time style)` of every record, by arrival.
    fn arrivals(&self) -> Vec<(Instant, Instant, u32, u64, u8)> {
        let mut rng = Rng::new(self.spec.seed ^ 0xC5A);
        let first = epoch_day(self.spec.start);
        let last = first + self.spec.days as EpochDay;
        // (arrival, time, flow, bytes, style)
        let mut records: Vec<(Instant, Instant, u32, u64, u8)> = Vec::new();
        let mut input_batches: Vec<Vec<(Instant, f64)>> = vec![Vec::new(); self.flows.len()];
        for (fi, flow) in self.flows.iter().enumerate() {
            let country = &self.countries[flow.country];
            let lob = &LOBS[flow.lob];
            let start = local_midnight(country.tz, first);
            let end = local_midnight(country.tz, last);
            let own_outages: Vec<&Outage> =
                self.outages.iter().filter(|o| o.flow == flow.id).collect();
            let emit = |rng: &mut Rng, t: Instant, bytes: f64, records: &mut Vec<_>| {
                if bytes >= 1.0 {
                    let late = if rng.chance(0.005) {
                        rng.range(600.0, 6.0 * 3600.0) as i64
                    } else {
                        0
                    };
                    let style = rng.below(20) as u8;
                    records.push((t + late, t, fi as u32, bytes.round() as u64, style));
                }
            };
            match flow.input {
                None => {
                    let mut t = start + flow.phase;
                    while t < end {
                        let jitter = if lob.daily {
                            rng.range(0.0, 1800.0) as i64
                        } else {
                            (rng.range(-0.1, 0.1) * flow.batch_seconds as f64) as i64
                        };
                        let at = (t + jitter).clamp(start, end - 1);
                        let (hour, day) = local_hour(country.tz, at);
                        let mut bytes = if lob.daily {
                            lob.bytes_per_hour * 24.0 * self.day_factor(country, lob, day)
                        } else {
                            self.rate(country, lob, hour, day) * flow.batch_seconds as f64 / 3600.0
                        };
                        bytes *= flow.scale * (1.0 + flow.trend * (day - first) as f64 / 365.0);
                        bytes *= (1.0 + 0.06 * rng.noise()).max(0.0);
                        let f: f64 = own_outages.iter().map(|o| o.factor(at, hour)).product();
                        input_batches[fi].push((at, bytes * f));
                        emit(&mut rng, at, bytes * f, &mut records);
                        t += flow.batch_seconds;
                    }
                }
                Some((input, share)) => {
                    let batches = std::mem::take(&mut input_batches[input]);
                    for &(at, bytes) in &batches {
                        let delay = rng.range(2.0, 90.0) as i64;
                        let t = at + delay;
                        if t >= end {
                            continue;
                        }
                        let (hour, _) = local_hour(country.tz, t);
                        let f: f64 = own_outages.iter().map(|o| o.factor(t, hour)).product();
                        let noise = (1.0 + 0.02 * rng.noise()).max(0.0);
                        emit(&mut rng, t, bytes * share * noise * f, &mut records);
                    }
                    input_batches[input] = batches;
                }
            }
        }
        records.sort_unstable_by_key(|r| (r.0, r.2));
        records
    }

    fn day_factor(&self, country: &Country, lob: &LobShape, day: EpochDay) -> f64 {
        let kind = country.calendar.day_kind(day);
        let mut f = match kind.weekday_class {
            4 => lob.friday,
            5 => lob.saturday,
            6 => lob.sunday,
            _ => 1.0,
        };
        if kind.lazy_factor_applies() {
            f *= 0.7;
        }
        let date = flowwatch_core::time::date_of(day);
        if date.month() == 12 && (24..=26).contains(&date.day()) {
            f *= 0.6;
        }
        f
    }

    /// Bytes per hour at local `hour` of `day`.
    fn rate(&self, country: &Country, lob: &LobShape, hour: f64, day: EpochDay) -> f64 {
        let bump = if (6.0..24.0).contains(&hour) {
            (std::f64::consts::PI * (hour - 6.0) / 18.0)
                .sin()
                .max(0.0)
                .powf(1.2)
        } else {
            0.0
        };
        let diurnal = lob.night + (1.0 - lob.night) * bump;
        lob.bytes_per_hour * diurnal * self.day_factor(country, lob, day)
    }
}

fn local_hour(tz: Tz, t: Instant) -> (f64, EpochDay) {
    let dt = tz
        .timestamp_opt(t, 0)
        .single()
        .expect("an instant has one local time");
    (
        dt.hour() as f64 + dt.minute() as f64 / 60.0,
        local_day(tz, t),
    )
}

/// Mostly `Z`; one time in ten with the zone's local offset, one in twenty with milliseconds.
fn write_time(out: &mut String, t: Instant, style: u8, tz: Tz) {
    match style {
        0 | 1 => {
            let dt = tz
                .timestamp_opt(t, 0)
                .single()
                .expect("an instant has one local time");
            let off = dt.offset().fix().local_minus_utc();
            let (sign, off) = if off < 0 { ('-', -off) } else { ('+', off) };
            use std::fmt::Write as _;
            write!(
                out,
                "{}{sign}{:02}:{:02}",
                dt.format("%Y-%m-%dT%H:%M:%S"),
                off / 3600,
                off / 60 % 60
            )
            .expect("String write");
        }
        2 => {
            let s = utc_string(t);
            out.push_str(&s[..s.len() - 1]);
            out.push_str(".250Z");
        }
        _ => out.push_str(&utc_string(t)),
    }
}

fn national_country(code: &'static str, from_year: i32, to_year: i32) -> Country {
    let tz = flowwatch_core::calendar::default_timezone(code).expect("built-in country");
    let holidays: Vec<NaiveDate> = (from_year..=to_year)
        .flat_map(|y| national_holidays(code, y).expect("built-in country"))
        .map(|h| h.date)
        .collect();
    // Lazy days: work days between Christmas and New Year, and bridge days between a holiday
    // and a weekend.
    let mut lazy = Vec::new();
    for y in from_year..=to_year {
        let mut d = NaiveDate::from_ymd_opt(y, 12, 27).expect("valid date");
        while d.day() <= 31 && d.month() == 12 {
            let w = weekday(epoch_day(d));
            if w < 5 && !holidays.contains(&d) {
                lazy.push(d);
            }
            d = d.succ_opt().expect("valid date");
        }
    }
    for h in &holidays {
        let hd = epoch_day(*h);
        for bridge in [hd + 1, hd - 1] {
            let w = weekday(bridge);
            let next_to_weekend = (w == 4 && bridge == hd + 1) || (w == 0 && bridge == hd - 1);
            let b = flowwatch_core::time::date_of(bridge);
            if next_to_weekend && !holidays.contains(&b) && !lazy.contains(&b) {
                lazy.push(b);
            }
        }
    }
    lazy.sort();
    let calendar = CountryCalendar::new(
        tz,
        holidays.iter().map(|d| epoch_day(*d)),
        lazy.iter().map(|d| epoch_day(*d)),
    );
    Country {
        code,
        tz,
        calendar,
        holidays: holidays.iter().map(|d| d.to_string()).collect(),
        lazy_days: lazy.iter().map(|d| d.to_string()).collect(),
    }
}

fn plan_outages(spec: &Spec, countries: &[Country], flows: &[Flow], rng: &mut Rng) -> Vec<Outage> {
    let mut outages = Vec::new();
    let warm_up = 21.min(spec.days as i64 / 2);
    let span = spec.days as i64 - warm_up;
    if span <= 1 {
        return outages;
    }
    for flow in flows {
        let expected = spec.outages_per_flow_month * spec.days as f64 / 30.0;
        let mut count = expected.floor() as usize;
        if rng.chance(expected.fract()) {
            count += 1;
        }
        let tz = countries[flow.country].tz;
        for _ in 0..count {
            let kind = if flow.input.is_some() {
                *rng.pick(&[OutageKind::Stop, OutageKind::PartialDrop])
            } else {
                *rng.pick(&[
                    OutageKind::Stop,
                    OutageKind::PartialDrop,
                    OutageKind::ModerateDrop,
                    OutageKind::NightStop,
                    OutageKind::SlowDecline,
                ])
            };
            let day = epoch_day(spec.start)
                + warm_up as EpochDay
                + rng.below(span as usize - 1) as EpochDay;
            let start = local_midnight(tz, day) + (rng.unit() * 86_400.0) as i64;
            let hours = match kind {
                OutageKind::NightStop => 24.0 * (1 + rng.below(3)) as f64,
                OutageKind::SlowDecline => 24.0 * rng.range(2.0, 6.0),
                _ if LOBS[flow.lob].daily => 24.0 * (1 + rng.below(2)) as f64,
                _ => rng.range(1.0, 30.0),
            };
            let end = start + (hours * 3600.0) as i64;
            outages.push(Outage {
                flow: flow.id.clone(),
                start: utc_string(start),
                end: utc_string(end),
                kind,
                start_t: start,
                end_t: end,
            });
        }
    }
    outages
}

/// The document: every country with its holidays and lazy days, every LoB with its shape's
/// settings; most flows listed (some with their own settings, one disabled), some left for
/// discovery.
fn build_config(countries: &[Country], flows: &[Flow], rng: &mut Rng) -> Value {
    let mut doc = json!({ "defaults": { "granularity": "1h" }, "countries": {} });
    for (ci, c) in countries.iter().enumerate() {
        let mut entry = json!({ "holidays": c.holidays, "lazyDays": c.lazy_days, "lobs": {} });
        if ci >= 4 {
            entry["timezone"] = json!(c.tz.name());
        }
        doc["countries"][c.code] = entry;
    }
    let mut special = 0;
    for f in flows {
        let c = countries[f.country].code;
        let lob = &LOBS[f.lob];
        let lobs = &mut doc["countries"][c]["lobs"];
        if lobs.get(lob.name).is_none() {
            lobs[lob.name] = json!({ "config": (lob.config)(), "inputs": {}, "forwards": {} });
        }
        if rng.chance(0.2) {
            continue; // discovered from the data
        }
        let mut own = json!({});
        special += 1;
        match special % 11 {
            3 => own = json!({ "minimalExpectation": 500000 }),
            5 => own = json!({ "medianDays": 3, "lookbackDays": 21, "minHistoryDays": 2 }),
            7 => own = json!({ "difference": "tick" }),
            9 if f.input.is_some() => own = json!({ "enabled": false }),
            10 => own = json!({ "lazyDayDecrease": 0.5, "softAlarmLevel": 0.9 }),
            _ => {}
        }
        let section = if f.input.is_some() {
            "forwards"
        } else {
            "inputs"
        };
        lobs[lob.name][section][&f.id.name] = json!({ "config": own });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowwatch_core::config::Config;
    use flowwatch_core::record::{check_csv_header, parse_csv_line};

    fn small() -> Spec {
        Spec {
            days: 40,
            flows: 30,
            unusual_zones: true,
            ..Spec::default()
        }
    }

    #[test]
    fn batches_hold_every_record_in_arrival_steps() {
        let data = Dataset::generate(&Spec { days: 3, ..small() });
        let n = data.write_csv(std::io::sink()).unwrap();
        let batches = data.batches(60);
        assert_eq!(batches.iter().map(|(_, b)| b.len() as u64).sum::<u64>(), n);
        assert!(
            batches.windows(2).all(|w| w[0].0 < w[1].0),
            "one batch a step, in order"
        );
        assert!(batches.iter().all(|(step, _)| step % 60 == 0));
        // A record arrives at or after its time (late files), never before.
        for (step, batch) in &batches {
            assert!(batch.records().all(|(_, t, _)| t < step + 60));
        }
    }

    #[test]
    fn deterministic_valid_and_configured() {
        let spec = small();
        let a = Dataset::generate(&spec);
        let mut csv_a = Vec::new();
        let n = a.write_csv(&mut csv_a).unwrap();
        let mut csv_b = Vec::new();
        Dataset::generate(&spec).write_csv(&mut csv_b).unwrap();
        assert_eq!(csv_a, csv_b, "same seed, same bytes");
        assert_eq!(a.flow_count(), 30);
        let text = String::from_utf8(csv_a).unwrap();
        let mut lines = text.lines();
        check_csv_header(lines.next().unwrap()).unwrap();
        let mut count = 0;
        for line in lines {
            parse_csv_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            count += 1;
        }
        assert_eq!(count, n);
        Config::from_json(&a.config().to_string()).expect("the generated config is valid");
    }

    #[test]
    fn weekends_are_quieter_for_gsm_and_outages_are_labelled() {
        let spec = Spec {
            days: 28,
            flows: 2,
            outages_per_flow_month: 0.0,
            ..Spec::default()
        };
        let d = Dataset::generate(&spec);
        assert!(d.outages().is_empty());
        let mut csv = Vec::new();
        d.write_csv(&mut csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        let mut per_weekday = [0f64; 7];
        for line in text.lines().skip(1) {
            let r = parse_csv_line(line).unwrap();
            if r.kind == FlowKind::Input {
                let day = local_day(chrono_tz::Europe::Prague, r.time);
                per_weekday[weekday(day) as usize] += r.bytes as f64;
            }
        }
        let workday = per_weekday[1];
        let sunday = per_weekday[6];
        assert!(
            (sunday / workday - 0.45).abs() < 0.1,
            "GSM Sunday at ~45 %: {}",
            sunday / workday
        );
        let with = Dataset::generate(&Spec {
            outages_per_flow_month: 3.0,
            days: 60,
            ..spec
        });
        assert!(!with.outages().is_empty());
        for o in with.outages() {
            assert!(o.start < o.end);
        }
    }
}

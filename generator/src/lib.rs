//! `flowwatch-generator`: a deterministic generator of mediation traffic with labelled
//! outages, for the demo of `flowwatch run --demo`, the agreement tests and the load tests
//! (`flowwatch-loadtest`). Pure like `flowwatch-core`: no I/O but the writer it is given, no
//! async runtime.
//!
//! Countries (CZ, DE, AT, NL in their zones, optionally two zones with unusual DST: São Paulo,
//! which moved its clocks at midnight, and Lord Howe, which moves them by 30 minutes) have lines
//! of business with their own weekly shape; each input fans out to forwards. Traffic follows a
//! diurnal curve (nights down to 1 % of the peak), the weekday (holidays as Sundays, lazy days
//! at 70 %, Christmas low), a slow trend and noise, and arrives in batches (files) every few
//! minutes or once a day, some of them late. Injected outages are labelled so a scorer can
//! measure detection. The configuration document that goes with the data is generated too.
//!
//! Layout:
//! - `lib.rs`: [`Spec`] (what to generate), [`Dataset`] (the flows, their outages, any day's
//!   traffic alone: [`Dataset::day_traffic`]), the configuration document.
//! - [`rng`]: the small seeded random number generator it uses (one stream per flow and day).
//! - `tests.rs`: its tests.

pub mod realism;
pub mod rng;

use std::io::{self, Write};

use chrono::{Datelike, NaiveDate, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use flowwatch_core::calendar::CountryCalendar;
use flowwatch_core::calendar::holidays::national_holidays;
use flowwatch_core::record::{Batch, Record};
use flowwatch_core::tick::Granularity;
use flowwatch_core::time::{
    EpochDay, Instant, epoch_day, local_day, local_midnight, utc_string, weekday,
};
use flowwatch_core::{FlowId, FlowKind};
use serde::Serialize;
use serde_json::{Value, json};

use crate::realism::Traits;
use crate::rng::Rng;

pub use crate::realism::{FlowShape, Realism};

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
    /// At least this many minutes between files (a data set of fewer, larger files).
    pub min_batch_minutes: u32,
    /// Adds São Paulo (`BR`) and Lord Howe (`LH`) zones.
    pub unusual_zones: bool,
    /// Injected outages per flow and 30 days.
    pub outages_per_flow_month: f64,
    /// Shapes of real traffic to add (none by default).
    pub realism: Realism,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            seed: 1,
            start: NaiveDate::from_ymd_opt(2016, 9, 1).expect("valid date"),
            days: 120,
            flows: 40,
            batch_minutes: None,
            min_batch_minutes: 0,
            unusual_zones: false,
            outages_per_flow_month: 0.5,
            realism: Realism::default(),
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
        batch_minutes: &[1, 3],
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
        config: || json!({"granularity": "4h", "difference": "tick", "softAlarmLevel": 0.7, "hardAlarmLevel": 0.4}),
    },
    LobShape {
        name: "MMS",
        saturday: 0.75,
        sunday: 0.65,
        friday: 1.1,
        night: 0.03,
        bytes_per_hour: 5e6,
        batch_minutes: &[10, 20],
        daily: false,
        config: || json!({}),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
    /// Traffic at 35 % for three to ten days ([`Realism::long_drops_per_flow_month`]).
    LongDrop,
    /// Traffic moves to another input of the same country and LoB (`to`): a switch re-routed
    /// to another mediation input. The flow stops; the other carries both.
    MovedTraffic,
    /// A forward stops while its input carries on (the target system refuses its files).
    ForwardStop,
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
    /// Where the traffic went ([`OutageKind::MovedTraffic`]): its rise there is not an outage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<FlowId>,
    #[serde(skip)]
    start_t: Instant,
    #[serde(skip)]
    end_t: Instant,
    /// The factor of `to`'s traffic while it carries both: 1 + the moved flow's scale / its own.
    #[serde(skip)]
    gain: f64,
}

impl Outage {
    /// Factor applied to `flow`'s traffic at `t` (local hour `hour`).
    fn factor(&self, flow: &FlowId, t: Instant, hour: f64) -> f64 {
        if t < self.start_t || t >= self.end_t {
            return 1.0;
        }
        if self.to.as_ref() == Some(flow) {
            return self.gain;
        }
        match self.kind {
            OutageKind::Stop | OutageKind::MovedTraffic | OutageKind::ForwardStop => 0.0,
            OutageKind::PartialDrop => 0.3,
            OutageKind::ModerateDrop => 0.6,
            OutageKind::LongDrop => 0.35,
            OutageKind::NightStop if hour < 6.0 => 0.0,
            OutageKind::NightStop => 1.0,
            OutageKind::SlowDecline => {
                1.0 - 0.8 * (t - self.start_t) as f64 / (self.end_t - self.start_t) as f64
            }
        }
    }
}

/// A day on which every flow of a country is low, listed in no calendar: not an outage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlistedDay {
    /// The country.
    pub country: String,
    /// Its local date.
    pub date: String,
    /// RFC 3339 start (local midnight).
    pub start: String,
    /// RFC 3339 end.
    pub end: String,
    /// The factor of every flow's traffic.
    pub factor: f64,
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
    /// Its shape under [`Spec::realism`] (a forward's are its input's).
    traits: Traits,
}

/// One record and when it arrives.
struct Arrival {
    arrival: Instant,
    time: Instant,
    flow: u32,
    bytes: u64,
    /// How its time is written (see [`write_time`]).
    style: u8,
}

struct Country {
    code: &'static str,
    tz: Tz,
    calendar: CountryCalendar,
    holidays: Vec<String>,
    lazy_days: Vec<String>,
    /// Unlisted holiday-like days and their factors, in order.
    unlisted: Vec<(EpochDay, f64)>,
}

/// Flows generated together by [`Dataset::write_csv`].
const FLOWS_A_PART: usize = 100_000;

/// One day's records, split at a moment (see [`Dataset::day_traffic`]).
pub struct DayTraffic {
    /// The records that arrived by then, by flow: `(time, bytes)` in arrival order.
    pub arrived: Vec<(FlowId, Vec<(Instant, u64)>)>,
    /// The rest, in batches by arrival step.
    pub later: Vec<(Instant, Batch)>,
}

/// A generated data set: flows, labelled outages and the configuration document.
pub struct Dataset {
    spec: Spec,
    countries: Vec<Country>,
    flows: Vec<Flow>,
    outages: Vec<Outage>,
    /// Per flow, the outages that change its traffic (its own, and moves to it).
    by_flow: Vec<Vec<usize>>,
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
                    unlisted: vec![],
                });
            }
        }
        for (ci, c) in countries.iter_mut().enumerate() {
            // Work days that are neither holidays, lazy days nor Christmas.
            let listed = |d| {
                let k = c.calendar.day_kind(d);
                k.holiday || k.lazy || k.weekday_class >= 5 || christmas(d)
            };
            c.unlisted = realism::unlisted_days(&spec.realism, spec.seed, ci, first..last, listed);
        }
        let mut flows: Vec<Flow> = Vec::new();
        let mut serial = 0usize;
        // Round-robin over countries, CZ (the home market) three times a round, each turn the
        // country's next LoB (staggered by country), so every country and LoB appears even in a
        // small data set.
        let mut turns: Vec<usize> = vec![0, 1, 0, 2, 0, 3];
        turns.extend(4..countries.len());
        let mut next_lob: Vec<usize> = (0..countries.len()).collect();
        'fill: loop {
            for &ci in &turns {
                let country = &countries[ci];
                // The unusual zones carry GSM and 15-minute DATA only.
                let li = if ci >= 4 {
                    [0, 2][next_lob[ci] % 2]
                } else {
                    next_lob[ci] % LOBS.len()
                };
                next_lob[ci] += 1;
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
                let batch = spec
                    .batch_minutes
                    .unwrap_or(*rng.pick(lob.batch_minutes))
                    .max(spec.min_batch_minutes);
                let batch_seconds = if lob.daily { 86_400 } else { batch as i64 * 60 };
                let traits = Traits::draw(&spec.realism, spec.seed, flows.len(), lob.daily);
                let input = Flow {
                    traits,
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
                        traits,
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
        let mut by_flow = vec![Vec::new(); flows.len()];
        let index: std::collections::HashMap<&FlowId, usize> =
            flows.iter().enumerate().map(|(n, f)| (&f.id, n)).collect();
        for (n, o) in outages.iter().enumerate() {
            for f in std::iter::once(&o.flow).chain(&o.to) {
                by_flow[index[f]].push(n);
            }
        }
        Dataset {
            spec: spec.clone(),
            countries,
            flows,
            outages,
            by_flow,
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

    /// Every flow and the shape of its traffic (a forward's is its input's).
    pub fn flow_shapes(&self) -> impl Iterator<Item = (&FlowId, FlowShape)> {
        self.flows.iter().map(|f| (&f.id, f.traits.shape))
    }

    /// The low days no calendar lists, by country: December 24–26 (at 60 %) and the
    /// unlisted holiday-like days of [`Realism::unlisted_days_per_month`].
    pub fn unlisted_days(&self) -> Vec<UnlistedDay> {
        self.countries
            .iter()
            .flat_map(|c| {
                let mut days: Vec<(EpochDay, f64)> = self
                    .day_range()
                    .filter(|&d| christmas(d))
                    .map(|d| (d, 0.6))
                    .chain(c.unlisted.iter().copied())
                    .collect();
                days.sort_by_key(|&(d, _)| d);
                days.into_iter().map(|(day, factor)| UnlistedDay {
                    country: c.code.to_string(),
                    date: flowwatch_core::time::date_of(day).to_string(),
                    start: utc_string(local_midnight(c.tz, day)),
                    end: utc_string(local_midnight(c.tz, day + 1)),
                    factor,
                })
            })
            .collect()
    }

    /// The weekdays of each LoB of the data set whose traffic differs from the rest of their
    /// profile (SPEC §3) by more than `factor` either way, and that its configuration does not
    /// already make independent: Friday against Monday–Thursday, Sunday against Saturday.
    pub fn independent_weekdays(&self, factor: f64) -> Vec<(String, u8)> {
        let lobs: std::collections::BTreeSet<&str> =
            self.flows.iter().map(|f| f.id.lob.as_str()).collect();
        let differs = |ratio: f64| ratio.ln().abs() > factor.ln();
        let mut out = Vec::new();
        for shape in LOBS.iter().filter(|s| lobs.contains(s.name)) {
            let configured = (shape.config)()["independentDays"].clone();
            let taken = |w: u8| configured.as_array().is_some_and(|a| a.contains(&json!(w)));
            for (w, ratio) in [(4, shape.friday), (6, shape.sunday / shape.saturday)] {
                if differs(ratio) && !taken(w) {
                    out.push((shape.name.to_owned(), w));
                }
            }
        }
        out
    }

    /// The local days of the data set (each flow's in its own country's zone).
    fn day_range(&self) -> std::ops::Range<EpochDay> {
        let first = epoch_day(self.spec.start);
        first..first + self.spec.days as EpochDay
    }

    /// Writes the traffic CSV (SPEC §6), a day at a time in arrival order (some files late,
    /// some times with a local offset or a fraction); returns the number of records. Memory
    /// holds one day's records of [`FLOWS_A_PART`] flows: a larger data set is written a part
    /// of its flows at a time, each part of a day in arrival order.
    pub fn write_csv(&self, out: impl Write) -> io::Result<u64> {
        let mut out = io::BufWriter::with_capacity(1 << 20, out);
        writeln!(out, "{}", flowwatch_core::record::CSV_HEADER)?;
        let mut line = String::with_capacity(128);
        let mut written = 0;
        let parts = self.parts(FLOWS_A_PART);
        for (day, part) in self
            .day_range()
            .flat_map(|d| parts.iter().map(move |p| (d, p.clone())))
        {
            let records = self.day_arrivals_of(day, part);
            for a in &records {
                let flow = &self.flows[a.flow as usize];
                line.clear();
                write_time(&mut line, a.time, a.style, self.countries[flow.country].tz);
                use std::fmt::Write as _;
                let id = &flow.id;
                writeln!(
                    line,
                    ",{},{},{},{},{}",
                    id.country, id.lob, id.kind, id.name, a.bytes
                )
                .expect("String write");
                out.write_all(line.as_bytes())?;
            }
            written += records.len() as u64;
        }
        out.flush()?;
        Ok(written)
    }

    /// The records of the local day `date` (each flow's own country's day): those that arrived
    /// by `arrived_by` by flow (each flow's in arrival order; what a system running since
    /// before `date` would hold then), the rest as batches by arrival, each the records that
    /// arrive in one `every`-second step (what a live feed sends at once). A day after the
    /// data set's last is generated as well (the flows, trends and outages go on); the same day
    /// always gives the same records.
    pub fn day_traffic(&self, date: NaiveDate, arrived_by: Instant, every: Instant) -> DayTraffic {
        let every = every.max(1);
        let mut by_flow: Vec<Vec<(Instant, u64)>> = vec![Vec::new(); self.flows.len()];
        let mut later: Vec<(Instant, Batch)> = Vec::new();
        for a in self.day_arrivals(epoch_day(date)) {
            if a.arrival <= arrived_by {
                by_flow[a.flow as usize].push((a.time, a.bytes));
                continue;
            }
            let step = a.arrival.div_euclid(every) * every;
            if later.last().is_none_or(|(s, _)| *s != step) {
                later.push((step, Batch::default()));
            }
            let (_, batch) = later.last_mut().expect("pushed above");
            let record = Record {
                time: a.time,
                flow: self.flows[a.flow as usize].id.clone(),
                bytes: a.bytes,
            };
            batch
                .add_record(record, |_| Ok(()))
                .expect("every flow is accepted");
        }
        let arrived = by_flow
            .into_iter()
            .enumerate()
            .filter(|(_, records)| !records.is_empty())
            .map(|(fi, records)| (self.flows[fi].id.clone(), records))
            .collect();
        DayTraffic { arrived, later }
    }

    /// The random numbers of one flow and day: any day is generated alone, and alike.
    fn rng_of(&self, flow: usize, day: EpochDay) -> Rng {
        Rng::keyed(
            self.spec.seed ^ 0xC5A,
            ((flow as u64) << 32) | u64::from(day as u32),
        )
    }

    /// Every record of local day `day`, by arrival.
    fn day_arrivals(&self, day: EpochDay) -> Vec<Arrival> {
        self.day_arrivals_of(day, 0..self.flows.len())
    }

    /// The flows in parts of about `size`, each starting at an input (its forwards follow
    /// it), so a day of a million flows is generated a part at a time.
    fn parts(&self, size: usize) -> Vec<std::ops::Range<usize>> {
        let mut parts = Vec::new();
        let mut from = 0;
        for (fi, flow) in self.flows.iter().enumerate() {
            if fi - from >= size && flow.input.is_none() {
                parts.push(from..fi);
                from = fi;
            }
        }
        parts.push(from..self.flows.len());
        parts
    }

    /// The records of local day `day` of the flows `flows` (starting at an input), by arrival.
    fn day_arrivals_of(&self, day: EpochDay, flows: std::ops::Range<usize>) -> Vec<Arrival> {
        let mut records: Vec<Arrival> = Vec::new();
        // An input's files of the day, `(time, bytes)`, for its forwards.
        let mut input_files: Vec<(Instant, f64)> = Vec::new();
        let first = epoch_day(self.spec.start);
        for (fi, flow) in self
            .flows
            .iter()
            .enumerate()
            .skip(flows.start)
            .take(flows.len())
        {
            let mut rng = self.rng_of(fi, day);
            let country = &self.countries[flow.country];
            let lob = &LOBS[flow.lob];
            let start = local_midnight(country.tz, day);
            let end = local_midnight(country.tz, day + 1);
            let factor = |t: Instant, hour: f64| -> f64 {
                self.by_flow[fi]
                    .iter()
                    .map(|&o| self.outages[o].factor(&flow.id, t, hour))
                    .product()
            };
            let mut emit = |rng: &mut Rng, t: Instant, bytes: f64| {
                // Drawn for every file, sent or not: an outage changes no other file.
                let late = rng.chance(0.005);
                let delay = rng.range(600.0, 6.0 * 3600.0) as Instant;
                let style = rng.below(20) as u8;
                if bytes >= 1.0 {
                    records.push(Arrival {
                        arrival: t + if late { delay } else { 0 },
                        time: t,
                        flow: fi as u32,
                        bytes: bytes.round() as u64,
                        style,
                    });
                }
            };
            match flow.input {
                None => {
                    input_files.clear();
                    let level = realism::day_level(&self.spec.realism, self.spec.seed, fi, day);
                    let mut t = start + flow.phase;
                    while t < end {
                        let jitter = if lob.daily {
                            rng.range(0.0, 1800.0) as Instant
                        } else {
                            (rng.range(-0.1, 0.1) * flow.batch_seconds as f64) as Instant
                        };
                        let noise = (1.0 + 0.06 * rng.noise()).max(0.0);
                        let mut at = t + jitter;
                        if flow.traits.shape == FlowShape::Late && rng.chance(0.15) {
                            // Held back one or two periods, stamped when sent.
                            at += flow.batch_seconds * (1 + rng.below(2)) as Instant;
                        }
                        let at = at.clamp(start, end - 1);
                        let (hour, _) = local_hour(country.tz, at);
                        let mut bytes = if lob.daily {
                            lob.bytes_per_hour * 24.0 * self.day_factor(country, lob, day)
                        } else {
                            self.rate(country, lob, hour, day) * flow.batch_seconds as f64 / 3600.0
                        };
                        bytes *= flow.scale * (1.0 + flow.trend * (day - first) as f64 / 365.0);
                        bytes *= level * noise * factor(at, hour);
                        if flow.traits.shape == FlowShape::Noisy {
                            // A Poisson count of calls, from its own stream (the draws it
                            // takes depend on the count).
                            let per_call =
                                lob.bytes_per_hour * flow.scale / flow.traits.peak_calls_per_hour;
                            let mut calls = Rng::keyed(rng.next_u64(), 0);
                            bytes =
                                realism::poisson(&mut calls, bytes / per_call) as f64 * per_call;
                        }
                        input_files.push((at, bytes));
                        emit(&mut rng, at, bytes);
                        t += flow.batch_seconds;
                    }
                }
                Some((_, share)) => {
                    // Forwards follow their input in `flows`: `input_files` are its input's.
                    for &(at, bytes) in &input_files {
                        let t = at + rng.range(2.0, 90.0) as Instant;
                        let noise = (1.0 + 0.02 * rng.noise()).max(0.0);
                        if t >= end {
                            continue;
                        }
                        let (hour, _) = local_hour(country.tz, t);
                        emit(&mut rng, t, bytes * share * noise * factor(t, hour));
                    }
                }
            }
        }
        records.sort_unstable_by_key(|r| (r.arrival, r.flow));
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
        if christmas(day) {
            f *= 0.6;
        }
        if let Ok(i) = country.unlisted.binary_search_by_key(&day, |&(d, _)| d) {
            f *= country.unlisted[i].1;
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

/// December 24–26: low everywhere, listed nowhere.
fn christmas(day: EpochDay) -> bool {
    let date = flowwatch_core::time::date_of(day);
    date.month() == 12 && (24..=26).contains(&date.day())
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
        unlisted: Vec::new(),
    }
}

fn plan_outages(spec: &Spec, countries: &[Country], flows: &[Flow], rng: &mut Rng) -> Vec<Outage> {
    let mut outages = Vec::new();
    let warm_up = 21.min(spec.days as i64 / 2);
    let span = spec.days as i64 - warm_up;
    if span <= 1 {
        return outages;
    }
    for (fi, flow) in flows.iter().enumerate() {
        let expected = spec.outages_per_flow_month * spec.days as f64 / 30.0;
        let mut count = expected.floor() as usize;
        if rng.chance(expected.fract()) {
            count += 1;
        }
        let tz = countries[flow.country].tz;
        // Another input of the same country and LoB, to move traffic to.
        let sibling = flows
            .iter()
            .enumerate()
            .find(|(n, f)| {
                *n != fi && f.input.is_none() && f.country == flow.country && f.lob == flow.lob
            })
            .map(|(_, f)| f);
        for _ in 0..count {
            let kind = if flow.input.is_some() {
                *rng.pick(&[
                    OutageKind::ForwardStop,
                    OutageKind::ForwardStop,
                    OutageKind::PartialDrop,
                ])
            } else {
                *rng.pick(&[
                    OutageKind::Stop,
                    OutageKind::PartialDrop,
                    OutageKind::ModerateDrop,
                    OutageKind::NightStop,
                    OutageKind::SlowDecline,
                    OutageKind::MovedTraffic,
                ])
            };
            let (kind, to) = match (kind, sibling) {
                (OutageKind::MovedTraffic, Some(to)) => (kind, Some(to)),
                (OutageKind::MovedTraffic, None) => (OutageKind::Stop, None),
                _ => (kind, None),
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
                to: to.map(|f| f.id.clone()),
                start_t: start,
                end_t: end,
                gain: to.map_or(1.0, |to| 1.0 + flow.scale / to.scale),
            });
        }
        // Long drops, from their own stream: the plain data set's outages stay what they were.
        let per_month = spec.realism.long_drops_per_flow_month;
        if per_month > 0.0 && flow.input.is_none() && !LOBS[flow.lob].daily {
            let mut rng = Rng::keyed(spec.seed ^ 0x10D, fi as u64);
            let expected = per_month * spec.days as f64 / 30.0;
            let count = expected.floor() as usize + usize::from(rng.chance(expected.fract()));
            for _ in 0..count {
                let day = epoch_day(spec.start)
                    + warm_up as EpochDay
                    + rng.below(span as usize - 1) as EpochDay;
                let start = local_midnight(tz, day) + (rng.unit() * 86_400.0) as i64;
                let end = start + (rng.range(3.0, 10.0) * 86_400.0) as i64;
                outages.push(Outage {
                    flow: flow.id.clone(),
                    start: utc_string(start),
                    end: utc_string(end),
                    kind: OutageKind::LongDrop,
                    to: None,
                    start_t: start,
                    end_t: end,
                    gain: 1.0,
                });
            }
        }
    }
    outages
}

/// Tick lengths a generated flow may get, in seconds.
const TICKS: [i64; 10] = [
    900, 1800, 3600, 7200, 10_800, 14_400, 21_600, 28_800, 43_200, 86_400,
];

/// The tick length a LoB's `config` sets, in seconds (default 1 h).
fn granularity_seconds(config: &Value) -> i64 {
    let g = config["granularity"].as_str().map(Granularity::parse);
    i64::from(
        g.unwrap_or(Ok(Granularity::HOUR))
            .expect("the LoBs' own granularities")
            .seconds(),
    )
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
        // A flow's tick holds four of its files at least: with fewer, a file that comes a
        // minute late empties a tick (an operator configures batchy flows coarser).
        let lob_tick = granularity_seconds(&lobs[lob.name]["config"]);
        let tick = match TICKS
            .iter()
            .find(|&&t| t >= (4 * f.batch_seconds).min(86_400))
        {
            Some(&t) if f.input.is_none() && t > lob_tick => Some(t),
            _ => None,
        };
        if rng.chance(0.2) && tick.is_none() {
            continue; // discovered from the data
        }
        let mut own = json!({});
        special += 1;
        match special % 11 {
            // A floor of a fifth of its quietest (night) tick: what an operator would set.
            3 => {
                let per_hour = match f.input {
                    None => f.scale * lob.bytes_per_hour,
                    Some((input, share)) => flows[input].scale * lob.bytes_per_hour * share,
                };
                let night_tick = per_hour * lob.night * tick.unwrap_or(lob_tick) as f64 / 3600.0;
                own = json!({ "minimalExpectation": (night_tick / 5.0).round().max(1.0) });
            }
            5 => own = json!({ "medianDays": 3, "lookbackDays": 21, "minHistoryDays": 2 }),
            7 => own = json!({ "difference": "tick" }),
            9 if f.input.is_some() => own = json!({ "enabled": false }),
            10 => own = json!({ "lazyDayDecrease": 0.5, "softAlarmLevel": 0.9 }),
            _ => {}
        }
        if let Some(t) = tick {
            own["granularity"] = json!(Granularity::from_seconds(t as u32).expect("divides a day"));
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
mod tests;

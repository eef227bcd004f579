//! Granularity and the ticks of one local day (SPEC §2).
//!
//! Tick `i` of local day D covers local wall-clock `[i·g, (i+1)·g)` after local midnight; its real
//! interval is `[utc(start), utc(end))` with [`local_to_utc`]. On most days that is simply
//! `midnight + i·g`; on a day with a DST transition each bound is mapped on its own, so a tick may
//! be longer, shorter or empty (an empty tick does not exist).

use crate::InputError;
use std::fmt;

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{EpochDay, Instant, date_of, local_midnight, local_to_utc};

/// Seconds in a (nominal) day.
pub const DAY_SECONDS: u32 = 86_400;

/// A tick length in whole seconds that divides a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Granularity(u32);

impl Granularity {
    /// One hour, the built-in default.
    pub const HOUR: Granularity = Granularity(3600);

    /// A granularity of `seconds`, which must divide 86 400.
    pub fn from_seconds(seconds: u32) -> Result<Granularity, InputError> {
        if seconds == 0 || !DAY_SECONDS.is_multiple_of(seconds) {
            return Err(InputError::NotADivisor(seconds));
        }
        Ok(Granularity(seconds))
    }

    /// Parses `"30s"`, `"15m"`, `"2h"`, `"1d"`, or a bare number of minutes (`"15"`).
    pub fn parse(s: &str) -> Result<Granularity, InputError> {
        let invalid = |why| InputError::Granularity {
            input: s.to_owned(),
            why,
        };
        let bad = || invalid(r#"expected e.g. "30s", "15m", "2h", "1d" or minutes"#);
        let (num, unit) = match s.as_bytes().last() {
            Some(b's') => (&s[..s.len() - 1], 1),
            Some(b'm') => (&s[..s.len() - 1], 60),
            Some(b'h') => (&s[..s.len() - 1], 3600),
            Some(b'd') => (&s[..s.len() - 1], 86_400),
            Some(c) if c.is_ascii_digit() => (s, 60),
            _ => return Err(bad()),
        };
        if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        let seconds = n.checked_mul(unit).filter(|&v| v <= DAY_SECONDS as u64);
        match seconds {
            Some(v) => {
                Granularity::from_seconds(v as u32).map_err(|_| invalid("must divide one day"))
            }
            None => Err(invalid("must divide one day")),
        }
    }

    /// The tick length in seconds.
    pub fn seconds(self) -> u32 {
        self.0
    }

    /// Ticks in a local day: `86400 / g`.
    pub fn ticks_per_day(self) -> usize {
        (DAY_SECONDS / self.0) as usize
    }
}

impl fmt::Display for Granularity {
    /// The largest whole unit: `30s`, `15m`, `2h`, `1d`, `90m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s.is_multiple_of(3600) {
            write!(f, "{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl Serialize for Granularity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Granularity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Minutes(u64),
            Text(String),
        }
        let text = match Repr::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "invalid granularity: expected a string like \"15m\" or a whole number of minutes",
            )
        })? {
            Repr::Minutes(m) => m.to_string(),
            Repr::Text(t) => t,
        };
        Granularity::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The ticks of one local day of one zone at one granularity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTicks {
    day: EpochDay,
    granularity: Granularity,
    bounds: Bounds,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Bounds {
    /// No transition: tick `i` starts at `start + i·g`.
    Regular { start: Instant },
    /// A DST day: `n + 1` mapped bounds; tick `i` is `[b[i], b[i+1])`.
    Mapped(Box<[Instant]>),
}

impl DayTicks {
    /// Computes the ticks of local `day` in `tz`.
    pub fn new(tz: Tz, day: EpochDay, granularity: Granularity) -> DayTicks {
        let start = local_midnight(tz, day);
        let end = local_midnight(tz, day + 1);
        let regular = end - start == DAY_SECONDS as i64
            && offset_at(tz, start) == offset_at(tz, end - 1)
            && offset_at(tz, start) == offset_at(tz, start + (DAY_SECONDS as i64) / 2);
        let bounds = if regular {
            Bounds::Regular { start }
        } else {
            let n = granularity.ticks_per_day();
            let g = granularity.seconds();
            let date = date_of(day);
            let mut b = Vec::with_capacity(n + 1);
            for i in 0..n {
                let secs = i as u32 * g;
                let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, 0)
                    .expect("tick start within a day");
                b.push(local_to_utc(tz, date.and_time(time)));
            }
            b.push(end);
            Bounds::Mapped(b.into_boxed_slice())
        };
        DayTicks {
            day,
            granularity,
            bounds,
        }
    }

    /// The local day.
    pub fn day(&self) -> EpochDay {
        self.day
    }

    /// The granularity.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// Tick indexes of the day, existing or not: `86400 / g`.
    pub fn len(&self) -> usize {
        self.granularity.ticks_per_day()
    }

    /// Never true: a day has at least one tick index.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The real start of tick `i`.
    pub fn start(&self, i: usize) -> Instant {
        match &self.bounds {
            Bounds::Regular { start } => start + (i as i64) * self.granularity.seconds() as i64,
            Bounds::Mapped(b) => b[i],
        }
    }

    /// The real end of tick `i`.
    pub fn end(&self, i: usize) -> Instant {
        self.start(i + 1)
    }

    /// The real duration `d` of tick `i` in seconds.
    pub fn duration(&self, i: usize) -> i64 {
        self.end(i) - self.start(i)
    }

    /// Whether tick `i` exists (`d > 0`).
    pub fn exists(&self, i: usize) -> bool {
        self.duration(i) > 0
    }

    /// The duration factor `f = d / g` of tick `i`.
    pub fn factor(&self, i: usize) -> f64 {
        self.duration(i) as f64 / self.granularity.seconds() as f64
    }

    /// Whether the day has a DST transition (its ticks are mapped one by one).
    pub fn is_transition_day(&self) -> bool {
        matches!(self.bounds, Bounds::Mapped(_))
    }

    /// The real start of the day.
    pub fn day_start(&self) -> Instant {
        self.start(0)
    }

    /// The real end of the day (the start of the next one).
    pub fn day_end(&self) -> Instant {
        self.start(self.len())
    }

    /// The tick holding instant `t`, if `t` falls within this day.
    pub fn locate(&self, t: Instant) -> Option<usize> {
        if t < self.day_start() || t >= self.day_end() {
            return None;
        }
        Some(match &self.bounds {
            Bounds::Regular { start } => ((t - start) / self.granularity.seconds() as i64) as usize,
            // The last bound <= t: with empty ticks the non-empty one after them.
            Bounds::Mapped(b) => b.partition_point(|&x| x <= t) - 1,
        })
    }
}

fn offset_at(tz: Tz, t: Instant) -> i32 {
    use chrono::{Offset, TimeZone};
    let utc = chrono::DateTime::from_timestamp(t, 0).expect("instant within chrono's range");
    tz.offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{epoch_day, local_day, parse_rfc3339, utc_string};
    use chrono::NaiveDate;
    use chrono_tz::Europe::{Amsterdam, Berlin, Prague, Vienna};
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> EpochDay {
        epoch_day(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    fn t(s: &str) -> Instant {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn granularity_parsing() {
        assert_eq!(Granularity::parse("30s").unwrap().seconds(), 30);
        assert_eq!(Granularity::parse("15m").unwrap().seconds(), 900);
        assert_eq!(Granularity::parse("2h").unwrap().seconds(), 7200);
        assert_eq!(Granularity::parse("1d").unwrap().seconds(), 86_400);
        assert_eq!(Granularity::parse("90").unwrap().seconds(), 5400);
        for bad in [
            "7m",
            "0s",
            "2d",
            "",
            "m",
            "1.5h",
            "-1h",
            "15x",
            "99999999999999999999m",
        ] {
            assert!(Granularity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Granularity::parse("7m").unwrap_err().to_string(),
            "invalid granularity \"7m\": must divide one day"
        );
        let g: Granularity = serde_json::from_str("15").unwrap();
        assert_eq!(g.seconds(), 900);
        assert_eq!(
            serde_json::to_string(&Granularity::parse("120m").unwrap()).unwrap(),
            "\"2h\""
        );
        assert_eq!(Granularity::parse("90m").unwrap().to_string(), "90m");
    }

    #[test]
    fn regular_day() {
        let d = DayTicks::new(Prague, day(2017, 2, 1), Granularity::HOUR);
        assert!(!d.is_transition_day());
        assert_eq!(d.len(), 24);
        assert_eq!(utc_string(d.start(0)), "2017-01-31T23:00:00Z");
        assert_eq!(utc_string(d.end(23)), "2017-02-01T23:00:00Z");
        assert_eq!(d.locate(t("2017-02-01T08:15:03Z")), Some(9));
        assert_eq!(d.locate(t("2017-01-31T22:59:59Z")), None);
        assert_eq!(d.locate(t("2017-02-01T23:00:00Z")), None);
    }

    #[test]
    fn spring_forward_15_minute_ticks() {
        // 2017-03-26 in Prague: 02:00 → 03:00. Ticks 8..11 (02:00–03:00) lie in the gap.
        let d = DayTicks::new(Prague, day(2017, 3, 26), Granularity::parse("15m").unwrap());
        assert_eq!(d.len(), 96);
        for i in 8..12 {
            assert!(!d.exists(i), "tick {i} is in the gap");
        }
        assert_eq!(d.duration(7), 900);
        assert_eq!(utc_string(d.start(7)), "2017-03-26T00:45:00Z");
        assert_eq!(utc_string(d.start(12)), "2017-03-26T01:00:00Z");
        assert_eq!(d.locate(t("2017-03-26T00:59:59Z")), Some(7));
        assert_eq!(d.locate(t("2017-03-26T01:00:00Z")), Some(12));
        assert_eq!((0..96).map(|i| d.duration(i)).sum::<i64>(), 23 * 3600);
    }

    #[test]
    fn spring_forward_2_hour_ticks() {
        // Tick 1 (02:00–04:00) really lasts one hour: f = 0.5.
        let d = DayTicks::new(Prague, day(2017, 3, 26), Granularity::parse("2h").unwrap());
        assert_eq!(d.duration(0), 7200);
        assert_eq!(d.duration(1), 3600);
        assert_eq!(d.factor(1), 0.5);
        assert_eq!(utc_string(d.start(1)), "2017-03-26T01:00:00Z");
        assert_eq!(utc_string(d.start(2)), "2017-03-26T02:00:00Z");
    }

    #[test]
    fn autumn_fold_1_hour_ticks() {
        // 2016-10-30 in Prague: 03:00 → 02:00. Tick 2 holds both 02:00 hours: f = 2.
        let d = DayTicks::new(Prague, day(2016, 10, 30), Granularity::HOUR);
        assert_eq!(d.duration(1), 3600);
        assert_eq!(d.duration(2), 7200);
        assert_eq!(d.factor(2), 2.0);
        assert_eq!(utc_string(d.start(2)), "2016-10-30T00:00:00Z");
        assert_eq!(utc_string(d.end(2)), "2016-10-30T02:00:00Z");
        // The second 02:30 (01:30Z) is in tick 2 too.
        assert_eq!(d.locate(t("2016-10-30T01:30:00Z")), Some(2));
    }

    #[test]
    fn autumn_fold_15_minute_ticks() {
        // Ticks 8..11 (02:00–03:00) start at the earlier instants; tick 11 runs to 03:00 CET.
        let d = DayTicks::new(
            Prague,
            day(2016, 10, 30),
            Granularity::parse("15m").unwrap(),
        );
        assert_eq!(d.duration(10), 900);
        assert_eq!(d.duration(11), 900 + 3600);
        assert_eq!(d.factor(11), 5.0);
    }

    #[test]
    fn one_day_ticks() {
        let g = Granularity::parse("1d").unwrap();
        assert_eq!(
            DayTicks::new(Prague, day(2017, 3, 26), g).duration(0),
            23 * 3600
        );
        assert_eq!(
            DayTicks::new(Prague, day(2016, 10, 30), g).duration(0),
            25 * 3600
        );
        assert_eq!(
            DayTicks::new(Prague, day(2017, 3, 27), g).duration(0),
            24 * 3600
        );
    }

    #[test]
    fn half_hour_shift_of_lord_howe() {
        // Lord Howe moves by 30 minutes; with 1-hour ticks one tick is half as long.
        let tz = chrono_tz::Australia::Lord_Howe;
        let d = DayTicks::new(tz, day(2016, 10, 2), Granularity::HOUR);
        assert_eq!((0..24).map(|i| d.duration(i)).sum::<i64>(), 86_400 - 1800);
        assert_eq!((0..24).filter(|&i| d.duration(i) == 1800).count(), 1);
    }

    const ZONES: [Tz; 4] = [Prague, Berlin, Vienna, Amsterdam];
    const GRANULARITIES: [u32; 10] = [10, 30, 60, 300, 900, 1800, 3600, 7200, 28_800, 86_400];

    /// Ticks tile the day: no overlap, no gap, Σ d = day length; every instant of the day is
    /// located in the tick that contains it.
    fn check_tiling(tz: Tz, day: EpochDay, g: Granularity) {
        let d = DayTicks::new(tz, day, g);
        let length = local_midnight(tz, day + 1) - local_midnight(tz, day);
        assert_eq!(d.day_start(), local_midnight(tz, day));
        assert_eq!(d.day_end(), local_midnight(tz, day + 1));
        let mut total = 0;
        for i in 0..d.len() {
            assert!(d.duration(i) >= 0, "{tz} {day} tick {i} negative");
            assert_eq!(d.end(i), d.start(i + 1));
            total += d.duration(i);
        }
        assert_eq!(total, length);
        for probe in [d.day_start(), d.day_start() + length / 3, d.day_end() - 1] {
            let i = d.locate(probe).expect("inside the day");
            assert!(d.start(i) <= probe && probe < d.end(i));
            assert_eq!(local_day(tz, probe), day);
        }
    }

    #[test]
    fn every_transition_2016_to_2030_tiles() {
        // Every day of every year around each transition, every granularity.
        for tz in ZONES {
            for year in 2016..=2030 {
                let mut transitions = 0;
                let first = day(year, 1, 1);
                let last = day(year, 12, 31);
                for dd in first..=last {
                    let len = local_midnight(tz, dd + 1) - local_midnight(tz, dd);
                    if len != 86_400 {
                        transitions += 1;
                        for &g in &GRANULARITIES {
                            check_tiling(tz, dd, Granularity::from_seconds(g).unwrap());
                        }
                    }
                }
                assert_eq!(transitions, 2, "{tz} {year}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_day_tiles(
            zone in 0usize..4,
            dd in day(2016, 1, 1)..day(2031, 1, 1),
            gi in 0usize..GRANULARITIES.len(),
        ) {
            check_tiling(ZONES[zone], dd, Granularity::from_seconds(GRANULARITIES[gi]).unwrap());
        }

        #[test]
        fn divisors_parse_and_print(g in 1u32..=86_400) {
            let parsed = Granularity::from_seconds(g);
            prop_assert_eq!(parsed.is_ok(), 86_400 % g == 0);
            if let Ok(gr) = parsed {
                prop_assert_eq!(Granularity::parse(&gr.to_string()).unwrap(), gr);
            }
        }
    }
}

//! Status rules, the median, golden scenarios computed by hand, and the rolling history checked
//! against a literal walk-back of SPEC §3.

use super::*;
use crate::calendar::CountryCalendar;
use crate::config::Config;
use crate::id::{FlowId, FlowKind};
use crate::record::Record;
use crate::replay::{Replay, Window};
use crate::tick::{DayTicks, Granularity};
use crate::time::{EpochDay, date_of, epoch_day, utc_string};
use chrono::NaiveDate;
use proptest::prelude::*;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn status_rules() {
    let (soft, hard) = (0.8, 0.5);
    assert_eq!(status_of(0.8, 0.0, soft, hard), Status::Ok, "at soft is OK");
    assert_eq!(status_of(1.7, 0.0, soft, hard), Status::Ok);
    assert_eq!(
        status_of(0.49, f64::INFINITY, soft, hard),
        Status::Outage,
        "below hard at once"
    );
    assert_eq!(
        status_of(0.5, f64::INFINITY, soft, hard),
        Status::Warning,
        "at hard after N_A"
    );
    assert_eq!(
        status_of(0.7, 0.9, soft, hard),
        Status::Warning,
        "previous was fine"
    );
    assert_eq!(
        status_of(0.7, 0.8, soft, hard),
        Status::Warning,
        "previous at soft counts as fine"
    );
    assert_eq!(
        status_of(0.7, 0.79, soft, hard),
        Status::Outage,
        "second suspicious tick"
    );
}

#[test]
fn medians() {
    assert_eq!(median(&mut [3.0]), 3.0);
    assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(median(&mut [0.0, 10.0]), 5.0);
}

#[test]
fn profiles() {
    let friday_sunday = (1 << 4) | (1 << 6);
    assert_eq!(profile(4, friday_sunday), 4);
    assert_eq!(profile(6, friday_sunday), 6);
    assert_eq!(profile(5, friday_sunday), WEEKEND);
    assert_eq!(profile(3, friday_sunday), WORKDAY);
    assert_eq!(profile_name(4), "day-4");
    assert_eq!(profile_name(WEEKEND), "weekend");
}

/// One emitted tick of a scenario.
#[derive(Debug)]
struct Row {
    day: NaiveDate,
    start: String,
    end: String,
    e: TickEvaluation,
}

impl Row {
    fn v(&self) -> TickValues {
        self.e
            .values
            .unwrap_or_else(|| panic!("tick {} has no values", self.start))
    }
}

/// Replays one CZ flow `GSM/input/A` with one record at the start of every existing tick of
/// `days` days from `first`; `traffic(date, tick, real seconds)` gives its bytes.
fn scenario(
    config: &str,
    first: &str,
    days: i32,
    traffic: impl Fn(NaiveDate, usize, i64) -> u64,
) -> Vec<Row> {
    let config = Config::from_json(config).unwrap();
    let flow = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
    let (cfg, _) = config.flow_config(&flow);
    let tz = config.calendar("CZ").unwrap().tz();
    let mut replay = Replay::new(&config);
    let first = epoch_day(d(first));
    for day in first..first + days {
        let ticks = DayTicks::new(tz, day, cfg.granularity);
        for i in 0..ticks.len() {
            if ticks.exists(i) {
                let bytes = traffic(date_of(day), i, ticks.duration(i));
                let record = Record {
                    time: ticks.start(i),
                    flow: flow.clone(),
                    bytes,
                };
                replay.add_record(record).unwrap();
            }
        }
    }
    let mut rows = Vec::new();
    for f in replay.into_flows() {
        let window = Window {
            from: None,
            to: Some(first + days),
        };
        f.run(window, |start, end, e| {
            rows.push(Row {
                day: date_of(crate::time::local_day(tz, start)),
                start: utc_string(start),
                end: utc_string(end),
                e: *e,
            })
        });
    }
    rows
}

fn rows_of<'a>(rows: &'a [Row], day: &str) -> Vec<&'a Row> {
    rows.iter().filter(|r| r.day == d(day)).collect()
}

fn one<'a>(rows: &'a [Row], day: &str) -> &'a Row {
    let r = rows_of(rows, day);
    assert_eq!(r.len(), 1, "{day}");
    r[0]
}

/// Workdays 1000, Fridays 800, weekends 100, daily ticks.
fn weekly(date: NaiveDate) -> u64 {
    use chrono::Datelike;
    match date.weekday().num_days_from_monday() {
        4 => 800,
        5 | 6 => 100,
        _ => 1000,
    }
}

#[test]
fn warm_up_is_n_a_then_previous_is_infinite() {
    // 2017-01-02 is a Monday. Workdays need 3 earlier workdays, weekends 3 weekend days.
    let rows = scenario(
        r#"{"defaults":{"granularity":"1d"}}"#,
        "2017-01-02",
        21,
        |date, _, _| weekly(date),
    );
    let status = |day: &str| one(&rows, day).e.status;
    for day in [
        "2017-01-02",
        "2017-01-03",
        "2017-01-04",
        "2017-01-07",
        "2017-01-08",
        "2017-01-14",
    ] {
        assert_eq!(status(day), Status::NotAvailable, "{day}");
    }
    assert_eq!(status("2017-01-05"), Status::Ok, "Thursday has Mon–Wed");
    // Friday (800) against the workday median 1000: 0.8 is just OK.
    assert_eq!(one(&rows, "2017-01-06").v().difference, 0.8);
    assert_eq!(status("2017-01-06"), Status::Ok);
    assert_eq!(status("2017-01-15"), Status::Ok, "third weekend day");
    assert_eq!(one(&rows, "2017-01-15").v().expected, 100.0);
}

#[test]
fn independent_friday_is_compared_with_fridays_only() {
    let cfg = r#"{"defaults":{"granularity":"1d","independentDays":[4]}}"#;
    let rows = scenario(cfg, "2017-01-02", 35, |date, _, _| weekly(date));
    // Fridays 6, 13, 20 lack three earlier Fridays; the 27th has them.
    for day in ["2017-01-06", "2017-01-13", "2017-01-20"] {
        assert_eq!(one(&rows, day).e.status, Status::NotAvailable, "{day}");
    }
    let fri = one(&rows, "2017-01-27").v();
    assert_eq!(fri.expected, 800.0);
    assert_eq!(fri.difference, 1.0);
    // A Monday's workday history skips the independent Friday: all 1000.
    assert_eq!(one(&rows, "2017-01-30").v().expected, 1000.0);
    // Weekend days are weekend, whatever Friday does.
    assert_eq!(one(&rows, "2017-01-28").v().expected, 100.0);
}

#[test]
fn holiday_on_a_wednesday_is_a_sunday() {
    // 2017-02-15 is a Wednesday holiday with weekend traffic; medianDays 2 makes the effect on
    // Thursday visible.
    let cfg = r#"{"defaults":{"granularity":"1d","medianDays":2,"minHistoryDays":2},
        "countries":{"CZ":{"holidays":["2017-02-15"]}}}"#;
    let rows = scenario(cfg, "2017-01-30", 21, |date, _, _| {
        if date == d("2017-02-15") {
            100
        } else {
            weekly(date)
        }
    });
    let wed = one(&rows, "2017-02-15");
    assert_eq!(wed.v().expected, 100.0, "weekend median");
    assert_eq!(wed.e.status, Status::Ok);
    // Thursday's two workdays are Tuesday and Monday (1000, 1000), not the holiday.
    assert_eq!(one(&rows, "2017-02-16").v().expected, 1000.0);
    // Saturday's weekend history is the holiday and the last Sunday.
    assert_eq!(one(&rows, "2017-02-18").v().expected, 100.0);
}

#[test]
fn lazy_day_expects_less_and_is_no_history() {
    let cfg = r#"{"defaults":{"granularity":"1d","medianDays":1,"minHistoryDays":1},
        "countries":{"CZ":{"lazyDays":["2017-02-16"]}}}"#;
    let rows = scenario(cfg, "2017-02-06", 12, |date, _, _| {
        if date == d("2017-02-16") { 300 } else { 1000 }
    });
    let lazy = one(&rows, "2017-02-16").v();
    assert!((lazy.expected - 700.0).abs() < 1e-9, "1000 · 0.7");
    assert!((lazy.day_average - 700.0).abs() < 1e-9);
    assert_eq!(
        one(&rows, "2017-02-16").e.status,
        Status::Outage,
        "300 / 700 < 0.5"
    );
    // Friday's one-day history is Wednesday, not the lazy Thursday.
    assert_eq!(one(&rows, "2017-02-17").v().expected, 1000.0);
}

/// 1000 bytes per real hour, whatever the tick.
fn constant_rate(_: NaiveDate, _: usize, seconds: i64) -> u64 {
    (seconds * 1000 / 3600) as u64
}

#[test]
fn spring_forward_with_15_minute_ticks() {
    let rows = scenario(
        r#"{"defaults":{"granularity":"15m"}}"#,
        "2017-03-13",
        14,
        constant_rate,
    );
    let day = rows_of(&rows, "2017-03-26");
    assert_eq!(day.len(), 92, "four ticks lie in the gap");
    assert!(day.iter().all(|r| r.e.status == Status::Ok));
    assert!(day.iter().all(|r| r.v().expected == 250.0));
    assert_eq!(day[7].end, "2017-03-26T01:00:00Z");
    assert_eq!(
        day[8].start, "2017-03-26T01:00:00Z",
        "03:00 local follows 01:45"
    );
}

#[test]
fn spring_forward_with_2_hour_ticks() {
    let rows = scenario(
        r#"{"defaults":{"granularity":"2h"}}"#,
        "2017-03-13",
        21,
        constant_rate,
    );
    let gap = &rows_of(&rows, "2017-03-26")[1];
    assert_eq!(
        (gap.start.as_str(), gap.end.as_str()),
        ("2017-03-26T01:00:00Z", "2017-03-26T02:00:00Z")
    );
    assert_eq!(gap.e.actual, 1000);
    assert_eq!(gap.v().expected, 1000.0, "rate 2000 per 2 h · f 0.5");
    assert_eq!(gap.v().day_average, 2000.0, "no factor in the day average");
    // The next Sunday reads the short tick as a rate: 1000 / 0.5.
    assert_eq!(rows_of(&rows, "2017-04-02")[1].v().expected, 2000.0);
}

#[test]
fn autumn_fold_with_1_hour_ticks() {
    let rows = scenario(
        r#"{"defaults":{"granularity":"1h"}}"#,
        "2016-10-17",
        14,
        constant_rate,
    );
    let day = rows_of(&rows, "2016-10-30");
    assert_eq!(day.len(), 24);
    let fold = day[2];
    assert_eq!(
        (fold.start.as_str(), fold.end.as_str()),
        ("2016-10-30T00:00:00Z", "2016-10-30T02:00:00Z")
    );
    assert_eq!(fold.e.actual, 2000);
    assert_eq!(fold.v().expected, 2000.0);
    assert_eq!(fold.v().tick_difference, 1.0);
}

/// Nights (00:00–06:00) carry 10 bytes an hour, days 1000; on 2017-02-15 03:00 carries 5.
fn diurnal(date: NaiveDate, i: usize, _: i64) -> u64 {
    match (date == d("2017-02-15"), i) {
        (true, 3) => 5,
        (_, 0..=5) => 10,
        _ => 1000,
    }
}

#[test]
fn night_drop_is_calm_by_day_difference_and_loud_by_tick_difference() {
    let day_mode = scenario(
        r#"{"defaults":{"difference":"day"}}"#,
        "2017-02-01",
        15,
        diurnal,
    );
    let tick_mode = scenario(
        r#"{"defaults":{"difference":"tick"}}"#,
        "2017-02-01",
        15,
        diurnal,
    );
    let by_day = rows_of(&day_mode, "2017-02-15")[3].v();
    let by_tick = rows_of(&tick_mode, "2017-02-15")[3];
    // dayAverage = (6·10 + 18·1000) / 24 = 752.5; dayDifference = 1 + (5 − 10) / 752.5.
    assert_eq!(by_day.day_average, 752.5);
    assert!((by_day.day_difference - (1.0 - 5.0 / 752.5)).abs() < 1e-12);
    assert_eq!(by_day.difference, by_day.day_difference);
    assert_eq!(rows_of(&day_mode, "2017-02-15")[3].e.status, Status::Ok);
    assert_eq!(by_tick.v().difference, 0.5);
    assert_eq!(
        by_tick.e.status,
        Status::Warning,
        "0.5 is not below hard 0.5"
    );
}

#[test]
fn almost_empty_tick_uses_tick_difference_even_in_day_mode() {
    let rows = scenario(
        r#"{"defaults":{"difference":"day"}}"#,
        "2017-02-01",
        15,
        |date, i, _| {
            if date == d("2017-02-15") && i == 12 {
                90
            } else {
                1000
            }
        },
    );
    // 90 < 0.1 · 1000: the day difference would hide a real stop.
    let v = rows_of(&rows, "2017-02-15")[12].v();
    assert_eq!(v.difference, 0.09);
    assert_eq!(rows_of(&rows, "2017-02-15")[12].e.status, Status::Outage);
}

#[test]
fn minimal_expectation_floors_the_divisor_not_the_column() {
    let cfg = r#"{"defaults":{"granularity":"1d","difference":"tick","minimalExpectation":100}}"#;
    // The day before carries 100 (1.0 against the floor), so the previous tick is fine.
    let rows = scenario(cfg, "2017-02-06", 10, |date, _, _| {
        match date.to_string().as_str() {
            "2017-02-14" => 100,
            "2017-02-15" => 60,
            _ => 20,
        }
    });
    let v = one(&rows, "2017-02-15").v();
    assert_eq!(v.expected, 20.0);
    assert_eq!(v.tick_difference, 0.6, "60 / max(20, 100)");
    assert_eq!(one(&rows, "2017-02-15").e.status, Status::Warning);
}

#[test]
fn second_suspicious_tick_is_an_outage_across_midnight() {
    // Daily ticks: Wednesday and Thursday at 0.7 of normal.
    let rows = scenario(
        r#"{"defaults":{"granularity":"1d"}}"#,
        "2017-01-30",
        18,
        |date, _, _| {
            if date == d("2017-02-15") || date == d("2017-02-16") {
                700
            } else {
                1000
            }
        },
    );
    assert_eq!(one(&rows, "2017-02-15").e.status, Status::Warning);
    assert_eq!(one(&rows, "2017-02-16").e.status, Status::Outage);
}

// ---- The rolling history equals a literal reading of SPEC §3 ----

/// Expected raw of every tick of `day`, by walking back over all days as SPEC §3 says.
fn literal_expected_raw(
    p: &DetectionParams,
    cal: &CountryCalendar,
    g: Granularity,
    first_day: EpochDay,
    day: EpochDay,
    actuals: &dyn Fn(EpochDay, usize) -> u64,
) -> Vec<f64> {
    let prof = |dd| profile(cal.day_kind(dd).weekday_class, p.independent_days);
    let mut history = Vec::new();
    for back in 1..=p.lookback_days as i32 {
        let dd = day - back;
        if history.len() == p.median_days as usize {
            break;
        }
        if dd >= first_day && !cal.day_kind(dd).lazy && prof(dd) == prof(day) {
            history.push(dd);
        }
    }
    let ticks = DayTicks::new(cal.tz(), day, g);
    (0..ticks.len())
        .map(|i| {
            let mut rates: Vec<f64> = history
                .iter()
                .filter_map(|&h| {
                    let t = DayTicks::new(cal.tz(), h, g);
                    t.exists(i).then(|| actuals(h, i) as f64 / t.factor(i))
                })
                .collect();
            if !ticks.exists(i) || rates.len() < p.min_history_days as usize {
                f64::NAN
            } else {
                median(&mut rates)
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn rolling_history_equals_literal_walk_back(
        seed in any::<u64>(),
        median_days in 1u32..7,
        lookback_days in 1u32..40,
        independent in 0u8..128,
        special in proptest::collection::vec((0i32..90, any::<bool>()), 0..25),
        gi in 0usize..3,
    ) {
        let min_history = 1 + (seed % median_days as u64) as u32;
        let g = Granularity::from_seconds([3600, 7200, 86_400][gi]).unwrap();
        let start = epoch_day(d("2017-01-20"));
        let holidays: Vec<_> = special.iter().filter(|s| s.1).map(|s| start + s.0).collect();
        let lazy: Vec<_> = special.iter().filter(|s| !s.1).map(|s| start + s.0).collect();
        let cal = CountryCalendar::new(chrono_tz::Europe::Prague, holidays, lazy);
        let p = DetectionParams {
            soft_alarm_level: 0.8,
            hard_alarm_level: 0.5,
            difference: crate::config::DifferenceMode::Day,
            independent_days: independent,
            minimal_expectation: 1.0,
            lazy_day_decrease: 0.7,
            median_days,
            lookback_days,
            min_history_days: min_history,
            detector: crate::config::Detector::Seed,
        };
        let actuals = |day: EpochDay, i: usize| -> u64 {
            let x = (day as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64) ^ seed;
            (x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 40) % 10_000
        };
        let mut h = FlowHistory::new(p, start);
        for day in start..start + 90 {
            let ticks = DayTicks::new(cal.tz(), day, g);
            h.start_day(ticks.clone(), cal.day_kind(day));
            let expected = literal_expected_raw(&p, &cal, g, start, day, &actuals);
            let plan = h.plan().unwrap();
            for (i, want) in expected.iter().enumerate() {
                let got = plan.expected_raw(i);
                prop_assert_eq!(got.is_some(), !want.is_nan(), "day {} tick {}", day, i);
                if let Some(got) = got {
                    prop_assert_eq!(got, *want, "day {} tick {}", day, i);
                }
            }
            let a: Vec<u64> = (0..ticks.len()).map(|i| actuals(day, i)).collect();
            h.end_day(&a);
        }
    }
}

#[test]
fn history_memory_stays_small() {
    for detector in ["seed", "adaptive"] {
        history_memory_stays_small_with(detector);
    }
}

fn history_memory_stays_small_with(detector: &str) {
    // 15-minute ticks, 56-day lookback, every weekday independent (the most profiles).
    let cfg = Config::from_json(&format!(
        r#"{{"defaults":{{"granularity":"15m","independentDays":[0,1,2,3,4,5,6],"detector":"{detector}"}}}}"#
    ))
    .unwrap();
    let flow = FlowId::new("CZ", "G", FlowKind::Input, "A").unwrap();
    let (c, _) = cfg.flow_config(&flow);
    let cal = cfg.calendar("CZ").unwrap();
    let start = epoch_day(d("2017-01-01"));
    let mut h = FlowHistory::new(DetectionParams::from(&c), start);
    let actuals = vec![7u64; 96];
    for day in start..start + 120 {
        h.evaluate_day(
            DayTicks::new(cal.tz(), day, c.granularity),
            cal.day_kind(day),
            &actuals,
            |_, _, _| {},
        );
    }
    assert_eq!(h.retained_days(), 35, "5 days of each of 7 profiles");
    h.start_day(
        DayTicks::new(cal.tz(), start + 120, c.granularity),
        cal.day_kind(start + 120),
    );
    assert!(
        h.heap_bytes() <= 32 * 1024,
        "{detector}: {} bytes",
        h.heap_bytes()
    );
}

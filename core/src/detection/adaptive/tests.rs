//! The adaptive detector: what it alarms on and what it does not, the band it reports, and
//! the history it learns from. `detection/README.md` quotes `the_worked_example`.

use super::*;
use crate::calendar::CountryCalendar;
use crate::config::{Detector, DifferenceMode};
use crate::detection::{FlowHistory, TickEvaluation};
use crate::tick::{DayTicks, Granularity};
use crate::time::{EpochDay, epoch_day};
use chrono::NaiveDate;
use proptest::prelude::*;

fn params(detector: Detector) -> DetectionParams {
    DetectionParams {
        soft_alarm_level: 0.8,
        hard_alarm_level: 0.5,
        difference: DifferenceMode::Tick,
        independent_days: 0,
        minimal_expectation: 1.0,
        lazy_day_decrease: 0.7,
        median_days: 5,
        lookback_days: 56,
        min_history_days: 3,
        detector,
    }
}

/// A flow with hourly ticks, all days workdays with no holidays (weekends included, every
/// weekday independent would need weeks): `days` of history from `traffic(day, tick)`, then
/// the evaluation of one more day whose ticks are `today`.
fn run(
    detector: Detector,
    days: i32,
    traffic: impl Fn(i32, usize) -> u64,
    today: &[u64],
) -> Vec<TickEvaluation> {
    let cal = CountryCalendar::new(chrono_tz::Europe::Prague, vec![], vec![]);
    let g = Granularity::HOUR;
    // 2017-01-02 is a Monday: ten weeks of days, the history's weekends are filed too.
    let start: EpochDay = epoch_day(NaiveDate::from_ymd_opt(2017, 1, 2).unwrap());
    let mut p = params(detector);
    p.independent_days = 0x7f; // each weekday its own profile: history = the same weekday
    let mut h = FlowHistory::new(p, start);
    for k in 0..days * 7 {
        let day = start + k;
        let a: Vec<u64> = (0..24).map(|i| traffic(k / 7, i)).collect();
        h.evaluate_day(
            DayTicks::new(cal.tz(), day, g),
            cal.day_kind(day),
            &a,
            |_, _, _| {},
        );
    }
    let day = start + days * 7;
    let mut out = Vec::new();
    h.evaluate_day(
        DayTicks::new(cal.tz(), day, g),
        cal.day_kind(day),
        today,
        |_, _, e| out.push(e),
    );
    out
}

/// 1000 bytes a tick, ±2 %.
fn steady(week: i32, i: usize) -> u64 {
    1000 + ((week as usize * 7 + i * 13) % 41) as u64 - 20
}

/// 1000 bytes a tick on average, but a tick holds one to three files: 330–1670.
fn noisy(week: i32, i: usize) -> u64 {
    [330, 1000, 1670, 670, 1330][(week as usize * 3 + i * 7) % 5]
}

fn statuses(e: &[TickEvaluation]) -> Vec<&'static str> {
    e.iter().map(|e| e.status.as_str()).collect()
}

fn day_with(ticks: &[(usize, u64)]) -> Vec<u64> {
    let mut a = vec![1000u64; 24];
    for &(i, v) in ticks {
        a[i] = v;
    }
    a
}

#[test]
fn a_steady_flows_drop_below_the_hard_level_is_an_outage_at_once() {
    let today = day_with(&[(10, 400)]);
    for detector in [Detector::Seed, Detector::Adaptive] {
        let e = run(detector, 6, steady, &today);
        assert_eq!(e[10].status, Status::Outage, "{detector:?}");
        assert_eq!(e[11].status, Status::Ok, "{detector:?}");
    }
}

#[test]
fn a_noisy_flows_single_low_tick_is_no_outage() {
    // A tick at 40 %: the seed mode sees an outage, the adaptive detector a tick that holds one
    // file of its usual two or three.
    let today = day_with(&[(10, 400)]);
    assert_eq!(
        run(Detector::Seed, 6, noisy, &today)[10].status,
        Status::Outage
    );
    let e = run(Detector::Adaptive, 6, noisy, &today);
    assert_ne!(e[10].status, Status::Outage);
    let band = e[10].values.unwrap().band.unwrap();
    assert!(band.spread > 0.3, "a noisy flow's band is wide: {band:?}");
    // Its traffic gone: its ticks stray as if they held a file or two of ~1 000 bytes (its
    // grain), so one empty tick is nothing unusual; it warns at the second and is an outage
    // at the fourth.
    let e = run(
        Detector::Adaptive,
        6,
        noisy,
        &day_with(&[(10, 0), (11, 0), (12, 0), (13, 0)]),
    );
    assert_eq!(statuses(&e[10..14]), ["OK", "WARNING", "WARNING", "OUTAGE"]);
}

/// splitmix64: a deterministic stream for the tests' Poisson counts.
struct Stream(u64);

impl Stream {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson count of mean `mean` (Knuth's method: small means only).
    fn poisson(&mut self, mean: f64) -> u64 {
        let (limit, mut k, mut p) = ((-mean).exp(), 0, 1.0);
        loop {
            p *= self.uniform();
            if p < limit {
                return k;
            }
            k += 1;
        }
    }
}

/// Calls a tick of a small flow: four at night, forty by day.
fn calls(i: usize) -> f64 {
    if (7..21).contains(&i) { 40.0 } else { 4.0 }
}

/// A call is 1 000 bytes.
const CALL: u64 = 1000;

#[test]
fn the_grain_is_a_counted_flows_bytes_per_call_and_nothing_else_has_one() {
    let mut rng = Stream(11);
    for n in [3, 5, 8] {
        let days: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                (0..48)
                    .map(|i| (rng.poisson(calls(i / 2)) * CALL) as f64)
                    .collect()
            })
            .collect();
        let g = grain_of(&days, 48);
        assert!(
            (0.5..1.5).contains(&(g / CALL as f64)),
            "{n} days: grain {g} for calls of {CALL} bytes"
        );
    }
    // A large flow that strays by a few per cent: its grain is a sliver of its quietest tick.
    let days: Vec<Vec<f64>> = (0..5)
        .map(|d| {
            (0..48)
                .map(|i| calls(i / 2) * 1e6 * (1.0 + 0.03 * ((d * 7 + i * 3) % 5) as f64 - 0.06))
                .collect()
        })
        .collect();
    assert!(grain_of(&days, 48) < 0.01 * 4e6);
    // Too few ticks a day to tell counts from levels (a daily flow): no grain.
    assert_eq!(grain_of(&days, GRAIN_TICKS - 1), 0.0);
}

/// The grain of `days` of history, over their first `ticks` ticks.
fn grain_of(days: &[Vec<f64>], ticks: usize) -> f64 {
    let history: Vec<&[f64]> = days.iter().map(|d| &d[..ticks]).collect();
    let medians: Vec<f64> = (0..ticks)
        .map(|i| median(&mut days.iter().map(|d| d[i]).collect::<Vec<_>>()))
        .collect();
    grain(&history, &medians)
}

#[test]
fn a_few_calls_missing_is_no_outage_but_a_run_of_empty_ticks_is() {
    let traffic = |week: i32, i: usize| {
        let mut rng = Stream(week as u64 * 100 + i as u64);
        rng.poisson(calls(i)) * CALL
    };
    // 02:00 carries no call of its usual four (one tick in fifty does): unusual, no outage.
    let mut today: Vec<u64> = (0..24).map(|i| calls(i) as u64 * CALL).collect();
    today[2] = 0;
    assert_eq!(
        run(Detector::Seed, 6, traffic, &today)[2].status,
        Status::Outage
    );
    let e = run(Detector::Adaptive, 6, traffic, &today);
    assert_ne!(e[2].status, Status::Outage, "{:?}", e[2]);
    // Nothing from 01:00 to 04:00: an outage.
    today[1..5].fill(0);
    let e = run(Detector::Adaptive, 6, traffic, &today);
    assert!(
        statuses(&e[1..5]).contains(&"OUTAGE"),
        "{:?}",
        statuses(&e[1..5])
    );
    // By day a tick holds forty calls: an empty one is an outage at once, as in the seed mode.
    today[1..5].fill(4 * CALL);
    today[10] = 0;
    assert_eq!(
        run(Detector::Adaptive, 6, traffic, &today)[10].status,
        Status::Outage
    );
}

#[test]
fn a_shallow_drop_alarms_once_it_persists_and_recovers_when_traffic_does() {
    // 60 % for four hours on a steady flow: a warning, then an outage; back to 100 %: OK.
    let today = day_with(&[(10, 600), (11, 600), (12, 600), (13, 600)]);
    let e = run(Detector::Adaptive, 6, steady, &today);
    assert_eq!(
        statuses(&e[9..15]),
        ["OK", "WARNING", "OUTAGE", "OUTAGE", "OUTAGE", "OK"]
    );
    // 75 % (above the warning bound of a first tick) never alarms.
    let today = day_with(&[(10, 750)]);
    assert_eq!(
        run(Detector::Adaptive, 6, steady, &today)[10].status,
        Status::Ok
    );
}

#[test]
fn an_outage_holds_while_traffic_stays_below_the_soft_level_with_evidence() {
    // An hour gone, then 79 % (below soft, a deficit within the allowance: the evidence
    // drains): OUTAGE while the evidence lasts, then OK; at 85 % it would have ended at once.
    let mut today = day_with(&[(10, 0)]);
    today[11..].fill(790);
    let e = run(Detector::Adaptive, 6, steady, &today);
    let s = statuses(&e);
    assert_eq!(s[10], "OUTAGE");
    let end = (11..24)
        .find(|&i| s[i] != "OUTAGE")
        .expect("the outage ends");
    assert_eq!(s[end], "OK");
    assert!(end >= 14, "held for a while: {s:?}");
    let held = e[end - 1].values.unwrap().band.unwrap();
    assert!(held.evidence < OUTAGE && held.evidence >= WARN, "{held:?}");
    let today = day_with(&[(10, 0), (11, 850)]);
    assert_eq!(
        statuses(&run(Detector::Adaptive, 6, steady, &today)[10..12]),
        ["OUTAGE", "OK"]
    );
}

#[test]
fn a_past_outage_neither_lowers_the_expectation_nor_widens_the_band() {
    // Last week's same weekday was gone from 08:00 to 14:00.
    let traffic = |week: i32, i: usize| {
        if week == 5 && (8..14).contains(&i) {
            0
        } else {
            steady(week, i)
        }
    };
    let today = day_with(&[]);
    let with = run(Detector::Adaptive, 6, traffic, &today);
    let without = run(
        Detector::Adaptive,
        6,
        |w, i| if w == 5 { steady(4, i) } else { steady(w, i) },
        &today,
    );
    for i in 8..14 {
        let (a, b) = (with[i].values.unwrap(), without[i].values.unwrap());
        assert!((a.expected - 1000.0).abs() < 25.0, "tick {i}: {a:?}");
        assert_eq!(a.band.unwrap().spread, min_spread(0.8, 0.5), "tick {i}");
        assert_eq!(b.band.unwrap().spread, min_spread(0.8, 0.5), "tick {i}");
    }
    // The seed mode's median keeps the outage day too (one of five): the expectation holds,
    // but the adaptive detector's spread would not have without dropping it.
    let seed = run(Detector::Seed, 6, traffic, &today);
    assert!((seed[10].values.unwrap().expected - 1000.0).abs() < 25.0);
}

#[test]
fn a_tiny_expectation_under_the_floor_is_not_short() {
    // 3 bytes expected, `minimalExpectation` 1 000: a tick of 0 lacks 3 bytes of a floor of
    // 1 000 — ratio 0.997, OK (the seed mode's tick difference would say 0).
    let mut p = params(Detector::Adaptive);
    p.minimal_expectation = 1000.0;
    let mut ev = Evidence::default();
    let x = (0.0 + (1000.0 - 3.0)) / 1000.0;
    ev.rate(x, 0.2, f64::INFINITY, &p, 24);
    assert_eq!(ev.status(), Status::Ok);
}

/// Feeds `xs` and returns the evidence.
fn fed(xs: &[(f64, f64)], events: f64, p: &DetectionParams, per_day: usize) -> Evidence {
    let mut ev = Evidence::default();
    for &(x, sigma) in xs {
        ev.rate(x, sigma, events, p, per_day);
    }
    ev
}

proptest! {
    /// The band is exact: just under `lower` a tick is not OK, just over it OK; just under
    /// `outageBelow` it is OUTAGE, just over it not.
    #[test]
    fn the_band_is_where_the_status_changes(
        history in proptest::collection::vec((0.0f64..1.3, 0.05f64..0.8), 0..20),
        sigma in 0.05f64..0.8,
        per_day in 1usize..100,
        soft in 0.6f64..0.95,
        hard_share in 0.3f64..1.0,
        events in prop_oneof![Just(f64::INFINITY), 0.3f64..2.0 * FEW_EVENTS],
    ) {
        let mut p = params(Detector::Adaptive);
        p.soft_alarm_level = soft;
        p.hard_alarm_level = soft * hard_share;
        let sigma = sigma.max(min_spread(p.soft_alarm_level, p.hard_alarm_level));
        let before = fed(&history, events, &p, per_day);
        let at = |x: f64| {
            let mut ev = before;
            let band = ev.rate(x, sigma, events, &p, per_day);
            (ev.status(), band)
        };
        let (_, band) = at(1.0);
        let eps = 1e-9;
        if band.lower > RATIO_FLOOR + eps {
            prop_assert_ne!(at(band.lower - eps).0, Status::Ok, "{:?}", band);
        }
        prop_assert_eq!(at(band.lower + eps).0, Status::Ok, "{:?}", band);
        if band.outage_below > RATIO_FLOOR + eps {
            prop_assert_eq!(at(band.outage_below - eps).0, Status::Outage, "{:?}", band);
        }
        prop_assert_ne!(at(band.outage_below + eps).0, Status::Outage, "{:?}", band);
    }
}

/// The example of `detection/README.md`: a flow that carried exactly 1 000 bytes an hour on
/// its similar days drops to 600 for two hours, then gives 850 and 1 000.
#[test]
fn the_worked_example() {
    let mut today = day_with(&[(10, 600), (11, 600), (12, 850)]);
    today[13] = 1000;
    let e = run(Detector::Adaptive, 6, |_, _| 1000, &today);
    let row = |i: usize| {
        let v = e[i].values.unwrap();
        let b = v.band.unwrap();
        (
            e[i].status.as_str(),
            v.expected,
            b.spread,
            b.lower,
            b.outage_below,
            b.evidence,
        )
    };
    let close = |got: f64, want: f64| assert!((got - want).abs() < 0.05, "{got} ≠ {want}");
    let sigma = (0.8f64 / 0.5).ln() / 4.5;
    close(sigma, 0.1044);
    for (i, (status, lower, outage_below, evidence)) in [
        (10, ("WARNING", 616.2, 500.0, 2.254)),
        (11, ("OUTAGE", 779.7, 632.7, 4.509)),
        (12, ("OK", 800.0, 800.0, 3.429)),
        (13, ("OK", 800.0, 800.0, 0.0)),
    ] {
        let (s, expected, spread, l, o, ev) = row(i);
        assert_eq!(s, status, "tick {i}");
        close(expected, 1000.0);
        close(spread, sigma);
        close(l, lower);
        close(o, outage_below);
        close(ev, evidence);
    }
    // The seed mode says the same of this steady flow.
    let seed = run(Detector::Seed, 6, |_, _| 1000, &today);
    assert_eq!(statuses(&seed[10..14]), ["WARNING", "OUTAGE", "OK", "OK"]);
}

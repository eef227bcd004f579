//! Live evaluation equals replay, whatever the arrival order; silence is evaluated; grace.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::config::{Config, Detector};
use crate::id::FlowKind;
use crate::replay::Window;
use crate::time::{epoch_day, local_midnight, parse_rfc3339};
use chrono::NaiveDate;
use proptest::prelude::*;

const GRACE: i64 = 120;

fn day(s: &str) -> EpochDay {
    epoch_day(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

struct Setup {
    flow: FlowId,
    cfg: FlowConfig,
    calendar: Arc<CountryCalendar>,
}

fn setup(config: &str) -> Setup {
    let config = Config::from_json(config).unwrap();
    let flow = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
    let (cfg, _) = config.flow_config(&flow);
    Setup {
        calendar: Arc::new(config.calendar("CZ").unwrap().clone()),
        flow,
        cfg,
    }
}

/// Traffic of `days` days from `first`: a file every 10 minutes (diurnal, weekly, an outage on
/// day 20, silence in the last day), jittered by a seed.
fn traffic(s: &Setup, first: EpochDay, days: i32, seed: u64) -> Vec<(Instant, u64)> {
    let tz = s.calendar.tz();
    let mut out = Vec::new();
    let mut x = seed | 1;
    let start = local_midnight(tz, first);
    let end = local_midnight(tz, first + days - 1);
    let mut t = start + (seed % 600) as i64;
    while t < end {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let hour = (t - start).rem_euclid(86_400) / 3600;
        let weekday = crate::time::weekday(local_day(tz, t));
        let base = if (7..22).contains(&hour) {
            100_000
        } else {
            5_000
        };
        let base = if weekday >= 5 { base / 3 } else { base };
        let outage = local_day(tz, t) == first + 20 && (10..16).contains(&hour);
        if !outage {
            out.push((t, base + x % 20_000));
        }
        t += 600;
    }
    out
}

/// Replay's ticks of the flow, by start.
fn replayed(
    s: &Setup,
    config: &str,
    records: &[(Instant, u64)],
    to: EpochDay,
) -> BTreeMap<Instant, TickEvaluation> {
    let config = Config::from_json(config).unwrap();
    let window = Window {
        from: None,
        to: Some(to),
    };
    let ticks =
        crate::replay::replay_flow(&config, &s.flow, records.iter().copied(), window).unwrap();
    ticks.into_iter().map(|(start, _, e)| (start, e)).collect()
}

/// Seed and adaptive detectors; lookbacks shorter than the traffic, so that a rebuild starts
/// after the flow's first day and only what it reads decides the ticks.
const CONFIGS: [&str; 5] = [
    r#"{"defaults":{"granularity":"1h"}}"#,
    r#"{"defaults":{"granularity":"15m","difference":"tick","independentDays":[4]}}"#,
    r#"{"defaults":{"granularity":"2h","medianDays":3,"lookbackDays":14,"minHistoryDays":2},
        "countries":{"CZ":{"holidays":["2017-03-08"],"lazyDays":["2017-03-10"]}}}"#,
    r#"{"defaults":{"granularity":"1h","detector":"adaptive","lookbackDays":9,"medianDays":3,"minHistoryDays":2}}"#,
    r#"{"defaults":{"granularity":"15m","detector":"adaptive","lookbackDays":8,"independentDays":[4]},
        "countries":{"CZ":{"holidays":["2017-03-08"],"lazyDays":["2017-03-10"]}}}"#,
];

#[test]
fn in_order_with_an_accelerated_clock_equals_replay() {
    for config in CONFIGS {
        let s = setup(config);
        // 2017-03-01 … 04-05: the spring DST change is inside.
        let first = day("2017-03-01");
        let days = 36;
        let records = traffic(&s, first, days, 7);
        let mut live = LiveFlow::new(s.flow.clone(), &s.cfg, s.calendar.clone(), first, first);
        let mut stored = BTreeMap::new();
        for &(t, b) in &records {
            for tick in live.advance(t, GRACE) {
                stored.insert(tick.start, tick.eval);
            }
            assert_eq!(live.add(t, b), Added::Pending);
        }
        let end = local_midnight(s.calendar.tz(), first + days);
        for tick in live.advance(end + GRACE, GRACE) {
            stored.insert(tick.start, tick.eval);
        }
        let expected = replayed(&s, config, &records, first + days);
        assert_eq!(stored.len(), expected.len(), "{config}");
        assert_eq!(stored, expected, "{config}");
        // The silent last day was evaluated as time passed: outages (the adaptive detector may
        // first warn of a night tick of a noisy flow).
        let last = stored
            .range(local_midnight(s.calendar.tz(), first + days - 1)..)
            .map(|(_, e)| e.status)
            .skip(if s.cfg.detector == Detector::Adaptive {
                2
            } else {
                0
            });
        assert!(
            last.clone().all(|st| st == Status::Outage),
            "{config}: silence is an outage"
        );
    }
}

/// The owner of a flow as the worker will be: it stores every record, evaluates as the clock
/// moves, and when a batch holds late records rebuilds once from the stored records.
/// `batches`: (arrival time, records) in arrival order.
fn run_owner(
    s: &Setup,
    batches: &[(Instant, Vec<(Instant, u64)>)],
    end: Instant,
) -> (BTreeMap<Instant, TickEvaluation>, usize) {
    let mut stored_records: Vec<(Instant, u64)> = Vec::new();
    let mut ticks: BTreeMap<Instant, TickEvaluation> = BTreeMap::new();
    let tz = s.calendar.tz();
    let mut live: Option<LiveFlow> = None;
    let mut first_day = EpochDay::MAX;
    let mut rebuilds = 0;
    for (now, batch) in batches {
        let mut rebuild_from: Option<Instant> = None;
        for &(t, b) in batch {
            stored_records.push((t, b));
            let l = live.get_or_insert_with(|| {
                first_day = local_day(tz, t);
                LiveFlow::new(
                    s.flow.clone(),
                    &s.cfg,
                    s.calendar.clone(),
                    first_day,
                    first_day,
                )
            });
            let from = match l.add(t, b) {
                Added::Pending => continue,
                Added::Late { tick_start } => tick_start,
                Added::BeforeFirstDay => {
                    first_day = first_day.min(local_day(tz, t));
                    local_midnight(tz, first_day)
                }
            };
            rebuild_from = Some(rebuild_from.map_or(from, |r| r.min(from)));
        }
        if let Some(from) = rebuild_from {
            rebuilds += 1;
            let (rebuilt, again) = LiveFlow::rebuild(
                s.flow.clone(),
                &s.cfg,
                s.calendar.clone(),
                first_day,
                stored_records.iter().copied(),
                from,
                *now,
                GRACE,
            );
            ticks.retain(|&start, _| start < from);
            ticks.extend(again.into_iter().map(|t| (t.start, t.eval)));
            live = Some(rebuilt);
        }
        for tick in live
            .as_mut()
            .expect("a batch was added")
            .advance(*now, GRACE)
        {
            ticks.insert(tick.start, tick.eval);
        }
    }
    for tick in live
        .as_mut()
        .expect("records arrived")
        .advance(end + GRACE, GRACE)
    {
        ticks.insert(tick.start, tick.eval);
    }
    ticks.retain(|&start, _| start < end);
    (ticks, rebuilds)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    /// Records arrive in minute batches; some spans of files arrive hours or days late (one
    /// of them may hold the earliest records). The stored ticks end up exactly as replay
    /// computes them on all the records.
    #[test]
    fn any_arrival_order_ends_equal_to_replay(seed in any::<u64>(), config in 0usize..CONFIGS.len(), bursts in 1usize..6) {
        let config = CONFIGS[config];
        let s = setup(config);
        let first = day("2017-03-01");
        let days = 30;
        let records = traffic(&s, first, days, seed);
        let span = records.last().unwrap().0 - records[0].0;
        let mut x = seed | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Late spans: (start, length, delay).
        let late: Vec<(Instant, i64, i64)> = (0..bursts)
            .map(|k| {
                let start = if k == 0 && seed % 3 == 0 { records[0].0 } else { records[0].0 + (next() % span as u64) as i64 };
                // Delays beyond the longest tick (2 h) plus grace: every span is late.
                (start, 3600 + (next() % (6 * 3600)) as i64, 3 * 3600 + (next() % (3 * 86_400)) as i64)
            })
            .collect();
        let mut arrivals: BTreeMap<Instant, Vec<(Instant, u64)>> = BTreeMap::new();
        for &(t, b) in &records {
            let delay = late.iter().find(|l| t >= l.0 && t < l.0 + l.1).map_or(30, |l| l.2);
            // Batches close on the minute.
            arrivals.entry((t + delay).div_euclid(60) * 60 + 60).or_default().push((t, b));
        }
        let batches: Vec<(Instant, Vec<(Instant, u64)>)> = arrivals.into_iter().collect();
        let end = local_midnight(s.calendar.tz(), first + days);
        let (live, rebuilds) = run_owner(&s, &batches, end);
        prop_assert!(rebuilds >= 1, "late data made the owner rebuild");
        let expected = replayed(&s, config, &records, first + days);
        prop_assert_eq!(live.len(), expected.len());
        for (start, e) in &expected {
            prop_assert_eq!(live.get(start), Some(e), "tick {}", utc_string(*start));
        }
    }
}

#[test]
fn a_tick_waits_for_its_grace_and_silence_is_evaluated() {
    let s = setup(r#"{"defaults":{"granularity":"1h","minHistoryDays":1,"medianDays":1}}"#);
    let first = day("2017-02-06");
    let t0 = local_midnight(s.calendar.tz(), first);
    let mut live = LiveFlow::new(s.flow.clone(), &s.cfg, s.calendar.clone(), first, first);
    live.add(t0 + 10, 1000);
    assert!(
        live.advance(t0 + 3600 + GRACE - 1, GRACE).is_empty(),
        "not before end + grace"
    );
    let ticks = live.advance(t0 + 3600 + GRACE, GRACE);
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0].eval.actual, 1000);
    assert_eq!(
        ticks[0].eval.status,
        Status::NotAvailable,
        "no history on the first day"
    );
    // Nothing arrives for a day and a half: every tick is evaluated anyway.
    let ticks = live.advance(t0 + 36 * 3600 + GRACE, GRACE);
    assert_eq!(ticks.len(), 35);
    assert!(ticks.iter().all(|t| t.eval.actual == 0));
    assert_eq!(live.watermark(), t0 + 36 * 3600);
    assert_eq!(live.next_due(GRACE), t0 + 37 * 3600 + GRACE);
    assert_eq!(live.add(t0 + 5, 1), Added::Late { tick_start: t0 });
    assert_eq!(live.add(t0 - 5, 1), Added::BeforeFirstDay);
    assert_eq!(live.add(t0 + 36 * 3600, 1), Added::Pending);
    live.advance(t0 + 48 * 3600 + GRACE, GRACE);
    assert_eq!(
        live.next_due(GRACE),
        t0 + 49 * 3600 + GRACE,
        "across midnight"
    );
}

#[test]
fn transitions_have_stable_ids() {
    let s = setup(r#"{"defaults":{"granularity":"1d","minHistoryDays":1,"medianDays":3}}"#);
    let first = day("2017-02-06");
    let tz = s.calendar.tz();
    let mut live = LiveFlow::new(s.flow.clone(), &s.cfg, s.calendar.clone(), first, first);
    // Mon 1000, Tue 1000 (OK), Wed 700 (WARNING), Thu 700 (OUTAGE: second suspicious day).
    for (d, bytes) in [(0, 1000), (1, 1000), (2, 700), (3, 700)] {
        live.add(local_midnight(tz, first + d) + 60, bytes);
    }
    let ticks = live.advance(local_midnight(tz, first + 4) + GRACE, GRACE);
    let changes: Vec<&Transition> = ticks.iter().filter_map(|t| t.transition.as_ref()).collect();
    assert_eq!(changes.len(), 3, "{ticks:?}");
    assert_eq!(
        (changes[0].previous, changes[0].new),
        (Status::NotAvailable, Status::Ok)
    );
    assert_eq!(
        (changes[1].previous, changes[1].new),
        (Status::Ok, Status::Warning)
    );
    assert_eq!(
        (changes[2].previous, changes[2].new),
        (Status::Warning, Status::Outage)
    );
    assert_eq!(
        changes[2].id,
        "CZ/GSM/input/A@2017-02-08T23:00:00Z:WARNING>OUTAGE"
    );
    assert_eq!(
        changes[2].id,
        transition_id(
            &s.flow,
            parse_rfc3339("2017-02-08T23:00:00Z").unwrap(),
            Status::Warning,
            Status::Outage
        )
    );
    assert_eq!(live.status(), Status::Outage);
}

/// Noisy traffic with drops: a file every 10 minutes whose size varies by a factor of up to
/// five, days at 60–140 %, and every few hours a span of one hour to three days at 0–60 % —
/// evidence that builds, holds and clears across days.
fn rough_traffic(s: &Setup, first: EpochDay, days: i32, seed: u64) -> Vec<(Instant, u64)> {
    let tz = s.calendar.tz();
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = local_midnight(tz, first);
    let end = local_midnight(tz, first + days);
    let (mut drop_end, mut next_drop, mut level) = (start, start + 86_400 * 8, 1.0);
    let mut out = Vec::new();
    let mut t = start;
    while t < end {
        if t >= next_drop {
            drop_end = t + 3600 * (1 + (next() % 72) as i64);
            level = [0.0, 0.3, 0.6][(next() % 3) as usize];
            next_drop = drop_end + 3600 * (2 + (next() % 30) as i64);
        }
        let day = (t - start).div_euclid(86_400) as u64;
        let daily = 0.6 + ((day.wrapping_mul(0x9E37_79B9) ^ seed) % 80) as f64 / 100.0;
        let factor = daily * if t < drop_end { level } else { 1.0 };
        let size = 20_000.0 + (next() % 80_000) as f64;
        let bytes = (size * factor) as u64;
        if bytes > 0 {
            out.push((t, bytes));
        }
        t += 600;
    }
    out
}

/// What a tick's status depends on lies within `LiveFlow::rebuild_start`: a flow rebuilt for
/// any tick, from nothing older than that, rates the tick as replay does (over all the data).
#[test]
fn a_rebuild_for_any_tick_rates_it_as_replay_does() {
    for config in [
        // Lookbacks so short that a day's oldest similar day lies at their very end.
        r#"{"defaults":{"granularity":"1h","detector":"adaptive","lookbackDays":4,"medianDays":4,"minHistoryDays":2}}"#,
        r#"{"defaults":{"granularity":"4h","detector":"adaptive","lookbackDays":4,"medianDays":4,"minHistoryDays":2}}"#,
        r#"{"defaults":{"granularity":"1d","detector":"adaptive","lookbackDays":4,"medianDays":4,"minHistoryDays":2}}"#,
    ] {
        let s = setup(config);
        let first = day("2017-03-01");
        let days = 40;
        let records = rough_traffic(&s, first, days, 11);
        let expected = replayed(&s, config, &records, first + days);
        let (mut outages, mut held) = (0, 0);
        for (&start, e) in expected.range(local_midnight(s.calendar.tz(), first + 8)..) {
            let (_, ticks) = LiveFlow::rebuild(
                s.flow.clone(),
                &s.cfg,
                s.calendar.clone(),
                first,
                records.iter().copied(),
                start,
                start + 86_400 + GRACE,
                GRACE,
            );
            let rebuilt = ticks.first().expect("the tick is evaluated");
            assert_eq!(rebuilt.start, start);
            assert_eq!(&rebuilt.eval, e, "{config} at {}", utc_string(start));
            outages += usize::from(e.status == Status::Outage);
            held += usize::from(e.values.and_then(|v| v.band).is_some_and(|b| {
                e.status == Status::Outage && b.evidence < crate::detection::adaptive::OUTAGE
            }));
        }
        assert!(outages > 0, "{config}: the drops raise outages");
        assert!(
            held > 0 || s.cfg.granularity.ticks_per_day() == 1,
            "{config}: some outage ticks are held"
        );
    }
}

/// A replay of a window evaluates from the window's `first_influencing_day` only, and agrees
/// with a replay from the flow's first day; so does one that is given only the records from
/// there on and the flow's first day (what the gateway's simulation and backtest read).
#[test]
fn a_windowed_replay_reads_only_what_bears_on_the_window() {
    for config in CONFIGS {
        let s = setup(config);
        let first = day("2017-03-01");
        let days = 36;
        let records = traffic(&s, first, days, 11);
        let full = replayed(&s, config, &records, first + days);
        let doc = Config::from_json(config).unwrap();
        let tz = s.calendar.tz();
        for from in [first + 1, first + 12, first + 21, first + 30] {
            let window = Window {
                from: Some(from),
                to: Some(first + days),
            };
            let want: BTreeMap<Instant, TickEvaluation> = full
                .range(local_midnight(tz, from)..)
                .map(|(t, e)| (*t, *e))
                .collect();
            let got =
                |records: &[(Instant, u64)], first_day| -> BTreeMap<Instant, TickEvaluation> {
                    crate::replay::replay_flow_since(
                        &doc,
                        &s.flow,
                        first_day,
                        records.iter().copied(),
                        window,
                    )
                    .unwrap()
                    .into_iter()
                    .map(|(start, _, e)| (start, e))
                    .collect()
                };
            assert_eq!(
                got(&records, None),
                want,
                "{config}, from day {}",
                from - first
            );
            let read_from = local_midnight(tz, first_influencing_day(&s.cfg, from));
            let late: Vec<(Instant, u64)> = records
                .iter()
                .copied()
                .filter(|r| r.0 >= read_from)
                .collect();
            assert_eq!(
                got(&late, Some(first)),
                want,
                "{config}, records from {read_from}, window from day {}",
                from - first
            );
        }
    }
}

/// A flow silent since before its window's `first_influencing_day`: the replay given no
/// records but the flow's first day rates the window's ticks as a replay from the first day
/// does (as the live flow evaluates silence).
#[test]
fn a_replay_of_a_window_long_after_the_flow_fell_silent_still_rates_it() {
    for config in CONFIGS {
        let s = setup(config);
        let first = day("2017-03-01");
        let records = traffic(&s, first, 20, 3);
        let doc = Config::from_json(config).unwrap();
        let from = first + 20 + s.cfg.lookback_days as EpochDay + 10;
        let window = Window {
            from: Some(from),
            to: Some(from + 2),
        };
        let rated = |records: &[(Instant, u64)], first_day| {
            crate::replay::replay_flow_since(
                &doc,
                &s.flow,
                first_day,
                records.iter().copied(),
                window,
            )
            .unwrap()
        };
        let full = rated(&records, None);
        assert!(!full.is_empty(), "{config}");
        assert_eq!(rated(&[], Some(first)), full, "{config}");
    }
}

//! Detection cost: evaluating one tick for 100 000 flows from their in-memory histories, and
//! planning a new day (the medians of every tick) for one flow; the seed mode, and the same
//! for the adaptive detector (SPEC §10) where it differs.
//!
//! `cargo bench -p flowwatch-core --bench detection`

use chrono::NaiveDate;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flowwatch_core::config::Config;
use flowwatch_core::detection::{DetectionParams, FlowHistory};
use flowwatch_core::tick::DayTicks;
use flowwatch_core::time::epoch_day;
use flowwatch_core::{FlowId, FlowKind};
use std::hint::black_box;

const FLOWS: usize = 100_000;

/// A history trained on 60 days of diurnal traffic under `detector`, with `day` started.
fn trained(granularity: &str, detector: &str) -> (FlowHistory, Config, i32) {
    let cfg = Config::from_json(&format!(
        r#"{{"defaults":{{"granularity":"{granularity}","detector":"{detector}"}}}}"#
    ))
    .expect("valid config");
    let flow = FlowId::new("CZ", "GSM", FlowKind::Input, "A").expect("valid id");
    let (c, _) = cfg.flow_config(&flow);
    let cal = cfg.calendar("CZ").expect("built-in").clone();
    let start = epoch_day(NaiveDate::from_ymd_opt(2017, 1, 2).expect("valid date"));
    let mut h = FlowHistory::new(DetectionParams::from(&c), start);
    let n = c.granularity.ticks_per_day();
    for day in start..start + 60 {
        let actuals: Vec<u64> = (0..n)
            .map(|i| 1_000_000 + (i * 7919 + day as usize * 104_729) as u64 % 300_000)
            .collect();
        h.evaluate_day(
            DayTicks::new(cal.tz(), day, c.granularity),
            cal.day_kind(day),
            &actuals,
            |_, _, _| {},
        );
    }
    let day = start + 60;
    h.start_day(
        DayTicks::new(cal.tz(), day, c.granularity),
        cal.day_kind(day),
    );
    (h, cfg, day)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("detection");
    group.sample_size(20);
    for detector in ["seed", "adaptive"] {
        let mode = if detector == "seed" {
            String::new()
        } else {
            format!(" ({detector})")
        };
        let (one, _, _) = trained("1h", detector);
        let mut flows: Vec<FlowHistory> = vec![one; FLOWS];
        group.bench_function(format!("evaluate one tick of 100k flows{mode}"), |b| {
            let mut k = 0u64;
            b.iter(|| {
                k += 1;
                for (j, h) in flows.iter_mut().enumerate() {
                    black_box(h.evaluate(12, 900_000 + (j as u64 ^ k) % 200_000));
                }
            })
        });
        // The first tick of a day also plans the day (the medians of every tick); the day's
        // tick grid is computed once and shared, as a worker does for all flows of a zone.
        let (_, cfg, day) = trained("1h", detector);
        let cal = cfg.calendar("CZ").expect("built-in").clone();
        let grid = DayTicks::new(cal.tz(), day + 1, flowwatch_core::tick::Granularity::HOUR);
        let kind = cal.day_kind(day + 1);
        group.bench_function(
            format!("first tick of a new day of 100k flows (plan + evaluate, 1h){mode}"),
            |b| {
                b.iter(|| {
                    for (j, h) in flows.iter_mut().enumerate() {
                        h.start_day(grid.clone(), kind);
                        black_box(h.evaluate(0, 900_000 + j as u64 % 200_000));
                    }
                })
            },
        );
        drop(flows);
        for g in ["1h", "15m"] {
            let (h, cfg, day) = trained(g, detector);
            let cal = cfg.calendar("CZ").expect("built-in").clone();
            let granularity = cfg
                .flow_config(&FlowId::new("CZ", "G", FlowKind::Input, "A").expect("id"))
                .0
                .granularity;
            let grid = DayTicks::new(cal.tz(), day, granularity);
            group.bench_function(format!("plan a day of one flow ({g} ticks){mode}"), |b| {
                b.iter_batched_ref(
                    || h.clone(),
                    |h| h.start_day(grid.clone(), cal.day_kind(day)),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Memory of one flow's rolling history, measured by counting the allocator's live bytes
//! while 10 000 trained histories are alive.
//!
//! `cargo bench -p flowwatch-core --bench history_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use flowwatch_core::config::Config;
use flowwatch_core::detection::{DetectionParams, FlowHistory};
use flowwatch_core::tick::DayTicks;
use flowwatch_core::time::epoch_day;
use flowwatch_core::{FlowId, FlowKind};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout as asked.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: allocated above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const FLOWS: usize = 10_000;

fn measure(label: &str, json: &str) {
    let cfg = Config::from_json(json).expect("valid config");
    let (c, _) =
        cfg.flow_config(&FlowId::new("CZ", "GSM", FlowKind::Input, "A").expect("valid id"));
    let cal = cfg.calendar("CZ").expect("built-in").clone();
    let start = epoch_day(NaiveDate::from_ymd_opt(2017, 1, 2).expect("valid date"));
    let n = c.granularity.ticks_per_day();
    let before = LIVE.load(Ordering::Relaxed);
    let mut flows = Vec::with_capacity(FLOWS);
    for f in 0..FLOWS {
        let mut h = FlowHistory::new(DetectionParams::from(&c), start);
        // 70 days: more than the 56-day lookback.
        for day in start..start + 70 {
            let actuals: Vec<u64> = (0..n).map(|i| (i * 31 + f + day as usize) as u64).collect();
            h.evaluate_day(
                DayTicks::new(cal.tz(), day, c.granularity),
                cal.day_kind(day),
                &actuals,
                |_, _, _| {},
            );
        }
        h.start_day(
            DayTicks::new(cal.tz(), start + 70, c.granularity),
            cal.day_kind(start + 70),
        );
        flows.push(h);
    }
    let live = LIVE.load(Ordering::Relaxed) - before;
    let per_flow = live as f64 / FLOWS as f64;
    println!(
        "{label}: {:.0} bytes per flow ({:.1} KiB; {} retained days; struct {} B + heap {} B)",
        per_flow,
        per_flow / 1024.0,
        flows[0].retained_days(),
        std::mem::size_of::<FlowHistory>(),
        flows[0].heap_bytes()
    );
    drop(flows);
}

fn main() {
    measure(
        "15m ticks, 56-day lookback, defaults",
        r#"{"defaults":{"granularity":"15m"}}"#,
    );
    measure(
        "15m ticks, 56-day lookback, all 7 days independent",
        r#"{"defaults":{"granularity":"15m","independentDays":[0,1,2,3,4,5,6]}}"#,
    );
    measure("1h ticks, defaults", r#"{"defaults":{"granularity":"1h"}}"#);
    measure("1m ticks, defaults", r#"{"defaults":{"granularity":"1m"}}"#);
}

//! The live pipeline stores exactly the ticks `flowwatch replay` gives on the same traffic:
//! the generator's realistic data set (zones with unusual DST, holidays, batchy and late files,
//! injected outages) fed to the flow actors in arrival order with an accelerated clock, and
//! imported in random order over HTTP into a running `flowwatch run` whose clock stands after
//! the data.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use common::{Run, assert_same_ticks, replay_rows, stored_rows};
use flowwatch_core::FlowId;
use flowwatch_core::config::Config;
use flowwatch_core::record::{Record, parse_csv_line};
use flowwatch_core::time::{Instant, epoch_day, local_midnight, utc_string};
use flowwatch_generator::rng::Rng;
use flowwatch_generator::{Dataset, Realism, Spec};
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::{Store, TickStore};
use flowwatch_worker::actors::flow_supervisor::{
    FlowSupervisor, SupervisorArgs, SupervisorMsg, fixed,
};
use flowwatch_worker::{Clock, WorkerSettings};
use ractor::Actor;
use tokio::sync::broadcast;

/// The generated traffic and configuration, as files and parsed.
struct Data {
    traffic: PathBuf,
    config_file: PathBuf,
    config: Config,
    /// The CSV's lines without the header, in file (arrival) order.
    lines: Vec<String>,
    first_day: NaiveDate,
    /// The day after the last day of traffic.
    end_day: NaiveDate,
}

impl Data {
    fn generate(dir: &Path) -> Data {
        let spec = Spec {
            seed: 4500,
            start: NaiveDate::from_ymd_opt(2016, 10, 3).unwrap(),
            days: 45,
            flows: 24,
            batch_minutes: None,
            min_batch_minutes: 0,
            unusual_zones: true,
            outages_per_flow_month: 2.0,
            realism: Realism::default(),
        };
        let data = Dataset::generate(&spec);
        let mut csv = Vec::new();
        data.write_csv(&mut csv).unwrap();
        let traffic = dir.join("traffic.csv");
        let config_file = dir.join("config.json");
        std::fs::write(&traffic, &csv).unwrap();
        std::fs::write(&config_file, data.config().to_string()).unwrap();
        let lines = String::from_utf8(csv)
            .unwrap()
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect();
        Data {
            traffic,
            config_file,
            config: Config::from_json(&data.config().to_string()).unwrap(),
            lines,
            first_day: spec.start,
            end_day: spec.start + Days::new(spec.days.into()),
        }
    }

    /// Where replay's window ends for a flow: midnight of the end day in its country.
    fn cutoff(&self, flow: &FlowId) -> Instant {
        let tz = self.config.calendar(&flow.country).unwrap().tz();
        local_midnight(tz, epoch_day(self.end_day))
    }

    /// The latest cutoff of all countries.
    fn last_cutoff(&self) -> Instant {
        self.config
            .document()
            .countries
            .keys()
            .map(|c| {
                local_midnight(
                    self.config.calendar(c).unwrap().tz(),
                    epoch_day(self.end_day),
                )
            })
            .max()
            .unwrap()
    }

    fn replayed(&self) -> common::TickRows {
        let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        let rows = replay_rows(
            &self.traffic,
            &self.config_file,
            &day(self.first_day),
            &day(self.end_day),
        );
        assert!(
            rows.len() > 40_000,
            "a realistic tick count: {}",
            rows.len()
        );
        for status in ["OK", "WARNING", "OUTAGE", "N_A"] {
            assert!(
                rows.values().any(|r| r.ends_with(status)),
                "no {status} tick in the data set"
            );
        }
        rows
    }

    async fn stored(&self, store: &dyn Store) -> common::TickRows {
        stored_rows(store, |flow, start| start < self.cutoff(flow)).await
    }
}

#[tokio::test(start_paused = true)]
async fn fed_in_arrival_order_with_an_accelerated_clock() {
    let dir = tempfile::tempdir().unwrap();
    let data = Data::generate(dir.path());
    let records: Vec<Record> = data
        .lines
        .iter()
        .map(|l| parse_csv_line(l).unwrap().to_record())
        .collect();

    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(dir.path().join("store")).await.unwrap());
    let first = records.iter().map(|r| r.time).min().unwrap();
    // tokio's paused clock jumps to the next timer whenever the actors are idle: days pass in
    // seconds, and every tick is evaluated by its timer at end + grace, as in production.
    let clock = Clock::starting_at(first - first.rem_euclid(3600));
    let (alarms, mut heard) = broadcast::channel(1 << 16);
    let args = SupervisorArgs {
        config: fixed(data.config.clone()),
        store: store.clone(),
        clock,
        settings: Arc::new(WorkerSettings::default()),
        alarms,
        ownership: None,
    };
    let (supervisor, _) = Actor::spawn(None, FlowSupervisor, args).await.unwrap();
    let ingest = async |chunk: Vec<Record>| {
        let n = chunk.len() as u64;
        let batch = chunk.into_iter().collect();
        let outcome = supervisor
            .call(|r| SupervisorMsg::Ingest(batch, None, r), None)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(outcome.accepted, n);
    };

    // An hour's files arrive while the clock is in that hour (the file order is the arrival
    // order: a late file comes with the hour it arrived in).
    let mut hour_end = clock.now() + 3600;
    let mut chunk = Vec::new();
    for r in records {
        if r.time >= hour_end {
            ingest(std::mem::take(&mut chunk)).await;
            while r.time >= hour_end {
                tokio::time::sleep(clock.until(hour_end)).await;
                hour_end += 3600;
            }
        }
        chunk.push(r);
    }
    ingest(chunk).await;
    tokio::time::sleep(clock.until(data.last_cutoff() + 3600)).await;
    // Every actor has done what it was due to do before it answers.
    for entry in store.flows().await.unwrap() {
        supervisor
            .call(|r| SupervisorMsg::Status(entry.flow.clone(), r), None)
            .await
            .unwrap();
    }

    let mut alarmed = 0;
    while heard.try_recv().is_ok() {
        alarmed += 1;
    }
    assert!(
        alarmed > 10,
        "outages are alarmed as they happen: {alarmed}"
    );
    assert_same_ticks(
        "arrival order, accelerated clock",
        &data.stored(store.as_ref()).await,
        &data.replayed(),
    );
    supervisor.stop(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_in_random_order_into_a_running_system() {
    let dir = tempfile::tempdir().unwrap();
    let data = Data::generate(dir.path());
    let store_dir = dir.path().join("store");
    // The clock stands a day after the data: all of it is history, imported at once.
    let now = utc_string(data.last_cutoff() + 86_400);
    let config = data.config_file.to_str().unwrap();
    let run = Run::start(&store_dir, &["--start-time", &now, "--config", config]);

    let mut lines = data.lines.clone();
    let mut rng = Rng::new(7);
    for i in (1..lines.len()).rev() {
        lines.swap(i, rng.below(i + 1));
    }
    for chunk in lines.chunks(lines.len() / 12 + 1) {
        let body = format!(
            "{}\n{}\n",
            flowwatch_core::record::CSV_HEADER,
            chunk.join("\n")
        );
        let r = run.ingest(&body);
        assert_eq!(r["accepted"], chunk.len(), "{r}");
    }
    // A clean shutdown evaluates what the batches taken brought before it exits.
    run.terminate();

    let store = EmbeddedStore::open(&store_dir).await.unwrap();
    let events = store
        .query_events(flowwatch_storage::EventQuery {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .events;
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e.revision || e.tick_time >= data.last_cutoff()),
        "importing history raises no alarm"
    );
    assert_same_ticks(
        "random-order import, shifted clock",
        &data.stored(&store).await,
        &data.replayed(),
    );
}

//! `flowwatch run --demo`: a living mediation system at once. The traffic generator
//! (`flowwatch_generator`) makes `--demo-flows` flows of CZ, DE, AT and NL with their
//! lines of business, shapes, holidays, batchy arrivals and labelled outages. On a fresh store
//! the demo saves its configuration and writes [`HISTORY_DAYS`] days of history up to the clock
//! straight into the store before the worker starts (so each flow evaluates its history once, as
//! after a restart, instead of re-evaluating it with every late batch); then it sends each
//! record through the ingest path when the clock reaches its arrival, generating a day at a
//! time (any day of the data set is generated alone).

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{Duration as Days, NaiveDate};
use flowwatch_core::FlowId;
use flowwatch_core::record::Batch;
use flowwatch_core::time::{Instant, date_of};
use flowwatch_gateway::Gateway;
use flowwatch_generator::{Dataset, DayTraffic, Realism, Spec};
use flowwatch_storage::{FlowBuckets, FlowEntry, Store};
use tokio::task::JoinHandle;

/// Days of history before today: three of every weekday, what a flow comparing Fridays only
/// (`independentDays`) needs for its `minHistoryDays` (3).
pub const HISTORY_DAYS: i64 = 21;
/// The data set's seed.
const SEED: u64 = 2017;
/// Seconds between live sends.
const EVERY: Instant = 5;

/// The demo's data set: `flows` flows from [`HISTORY_DAYS`] before `today` on, outages
/// planned for a year (any later day is generated alike, with no new outage).
pub fn dataset(flows: usize, today: NaiveDate) -> Arc<Dataset> {
    Arc::new(Dataset::generate(&Spec {
        seed: SEED,
        start: today - Days::days(HISTORY_DAYS),
        days: HISTORY_DAYS as u32 + 366,
        flows,
        batch_minutes: None,
        // Files every 15 minutes or less often: a quarter of the records of the LoBs' own
        // cadences (SMS every 2 minutes), so weeks of history load in seconds.
        min_batch_minutes: 15,
        unusual_zones: false,
        outages_per_flow_month: 0.2,
        realism: Realism::default(),
    }))
}

/// Records by arrival, in batches of [`EVERY`] seconds.
type Pending = VecDeque<(Instant, Batch)>;

/// The UTC date of `now`.
pub fn today(now: Instant) -> NaiveDate {
    date_of(now.div_euclid(86_400) as i32)
}

/// One local day's traffic split at `arrived_by`, generating off the runtime's threads.
fn generate(data: &Arc<Dataset>, date: NaiveDate, arrived_by: Instant) -> JoinHandle<DayTraffic> {
    let data = data.clone();
    tokio::task::spawn_blocking(move || data.day_traffic(date, arrived_by, EVERY))
}

/// On a fresh store: saves the demo's configuration (unless one is stored) and writes the
/// history up to `now`, generating each next day while the store writes the one before. The
/// records still to arrive are returned for [`feed`]; on a store with flows already, nothing
/// is written and the feed starts with today's arrivals after `now`.
pub async fn prepare(store: &dyn Store, data: &Arc<Dataset>, now: Instant) -> Result<Pending> {
    let today = today(now);
    if store.config_latest().await?.is_none() {
        store.config_put(0, data.config().clone(), "demo").await?;
        tracing::info!(flows = data.flow_count(), "demo: configuration saved");
    }
    let fresh = store.flows().await?.is_empty();
    let started = std::time::Instant::now();
    let mut records = 0;
    let mut date = today - Days::days(if fresh { HISTORY_DAYS } else { 0 });
    let mut next = generate(data, date, now);
    let mut late: Vec<(Instant, Batch)> = Vec::new();
    loop {
        let day = (&mut next).await.context("the demo generator failed")?;
        if date < today {
            next = generate(data, date + Days::days(1), now);
        }
        late.extend(day.later);
        if fresh {
            records += day.arrived.iter().map(|(_, r)| r.len()).sum::<usize>();
            write(store, day.arrived).await?;
        }
        if date == today {
            if fresh {
                tracing::info!(
                    records,
                    seconds = started.elapsed().as_secs_f64(),
                    "demo: history written"
                );
            }
            // Files of earlier days still late join today's, by arrival.
            late.sort_by_key(|(at, _)| *at);
            return Ok(late.into());
        }
        date += Days::days(1);
    }
}

/// Stores the records of `flows` as the ingest path would (registry first, then the traffic).
async fn write(store: &dyn Store, flows: Vec<(FlowId, Vec<(Instant, u64)>)>) -> Result<()> {
    let mut entries = Vec::new();
    let mut buckets = Vec::new();
    for (flow, records) in flows {
        let first_seen = records.iter().map(|r| r.0).min().unwrap_or(Instant::MAX);
        entries.push(FlowEntry {
            flow: flow.clone(),
            first_seen,
            partition: 0,
        });
        buckets.push(FlowBuckets::of_records(flow, &records));
    }
    store.register_flows(entries).await?;
    store.add_buckets(buckets, None).await?;
    Ok(())
}

/// Sends the `pending` records, then each next day's, as the clock reaches their arrival,
/// until the server stops.
pub async fn feed(gateway: Arc<Gateway>, data: Arc<Dataset>, mut pending: Pending) -> Result<()> {
    let mut date = today(gateway.clock.now()) + Days::days(1);
    loop {
        if pending.is_empty() {
            pending = generate(&data, date, Instant::MIN)
                .await
                .context("the demo generator failed")?
                .later
                .into();
            date += Days::days(1);
        }
        let now = gateway.clock.now();
        let mut due = Batch::default();
        while pending.front().is_some_and(|(at, _)| *at <= now) {
            due.extend(pending.pop_front().expect("checked above").1);
        }
        if !due.is_empty() {
            gateway
                .ingest
                .submit(due)
                .await
                .context("the worker did not take the demo traffic")?;
        }
        tokio::select! {
            _ = gateway.stopped() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_secs(EVERY as u64)) => {}
        }
    }
}

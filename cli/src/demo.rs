//! `flowwatch run --demo`: a living mediation system at once. The load test's generator
//! (`flowwatch_loadtest::generator`) makes `--demo-flows` flows of CZ, DE, AT and NL with their
//! lines of business, shapes, holidays, batchy arrivals and labelled outages. On a fresh store
//! the demo saves its configuration and writes [`HISTORY_DAYS`] days of history up to the clock
//! straight into the store before the worker starts (so each flow evaluates its history once, as
//! after a restart, instead of re-evaluating it with every late batch); then it sends each
//! record through the ingest path when the clock reaches its arrival, a day's data set at a time
//! (the same seed gives the same flows every day).

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{Duration as Days, NaiveDate};
use flowwatch_core::record::Batch;
use flowwatch_core::time::{Instant, date_of};
use flowwatch_gateway::Gateway;
use flowwatch_loadtest::generator::{Dataset, Spec};
use flowwatch_storage::{Bucket, FlowBuckets, FlowEntry, Store};

/// Days of history before today.
pub const HISTORY_DAYS: i64 = 22;
/// The data set's seed.
const SEED: u64 = 2017;
/// Seconds between live sends.
const EVERY: Instant = 5;

/// The data set of one (local) day.
fn day(flows: usize, date: NaiveDate) -> Dataset {
    Dataset::generate(&Spec {
        seed: SEED,
        start: date,
        days: 1,
        flows,
        batch_minutes: None,
        unusual_zones: false,
        outages_per_flow_month: 0.2,
    })
}

/// Today's data set as batches by arrival.
type Pending = VecDeque<(Instant, Batch)>;

fn today(now: Instant) -> NaiveDate {
    date_of(now.div_euclid(86_400) as i32)
}

/// On a fresh store: saves the demo's configuration (unless one is stored) and writes the
/// history up to `now`. The records of today still to arrive are returned for [`feed`]; on a
/// store with flows already, nothing is written and the feed starts with today's arrivals
/// after `now`.
pub async fn prepare(store: &dyn Store, flows: usize, now: Instant) -> Result<Pending> {
    let today = today(now);
    if store.config_latest().await?.is_none() {
        let document = day(flows, today).config().clone();
        store.config_put(0, document, "demo").await?;
        tracing::info!(flows, "demo: configuration saved");
    }
    let fresh = store.flows().await?.is_empty();
    let started = std::time::Instant::now();
    let mut records = 0;
    let mut date = today - Days::days(if fresh { HISTORY_DAYS } else { 0 });
    loop {
        let dataset = tokio::task::spawn_blocking(move || day(flows, date))
            .await
            .context("the demo generator failed")?;
        let mut pending: Pending = dataset.batches(EVERY).into();
        let mut arrived = Batch::default();
        while pending.front().is_some_and(|(at, _)| *at <= now) {
            arrived.extend(pending.pop_front().expect("checked above").1);
        }
        if fresh {
            records += arrived.len();
            write(store, arrived).await?;
        }
        if date == today {
            if fresh {
                tracing::info!(
                    records,
                    seconds = started.elapsed().as_secs_f64(),
                    "demo: history written"
                );
            }
            return Ok(pending);
        }
        date += Days::days(1);
    }
}

/// Stores `batch` as the ingest path would (registry first, then the traffic).
async fn write(store: &dyn Store, batch: Batch) -> Result<()> {
    let mut entries = Vec::new();
    let mut buckets = Vec::new();
    for (flow, records) in batch.into_flows() {
        let first_seen = records.iter().map(|r| r.0).min().unwrap_or(Instant::MAX);
        entries.push(FlowEntry {
            flow: flow.clone(),
            first_seen,
            partition: 0,
        });
        buckets.push(FlowBuckets {
            flow,
            buckets: records
                .into_iter()
                .map(|(second, bytes)| Bucket {
                    second,
                    bytes,
                    records: 1,
                })
                .collect(),
        });
    }
    store.register_flows(entries).await?;
    store.add_buckets(buckets, None).await?;
    Ok(())
}

/// Sends today's `pending` records, then each next day's, as the clock reaches their
/// arrival, until the server stops.
pub async fn feed(gateway: Arc<Gateway>, flows: usize, mut pending: Pending) -> Result<()> {
    let mut date = today(gateway.clock.now()) + Days::days(1);
    loop {
        if pending.is_empty() {
            let dataset = tokio::task::spawn_blocking(move || day(flows, date))
                .await
                .context("the demo generator failed")?;
            pending = dataset.batches(EVERY).into();
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
                .ingest(due)
                .await
                .map_err(anyhow::Error::msg)
                .context("the worker did not take the demo traffic")?;
        }
        tokio::select! {
            _ = gateway.stopped() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_secs(EVERY as u64)) => {}
        }
    }
}

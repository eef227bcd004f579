//! Which days hold data, per series (`traffic`, `ticks`): per flow (`flow_days`, what a read of
//! a time range asks first), per day (`day_flows`, 16 buckets, what retention deletes) and per
//! series (`series_days`). A day is indexed before its first row is written, once per process
//! (a cache remembers it), so the tick path writes the index once a day per flow, not with
//! every row; a crash in between leaves an indexed day without rows, which reads skip.

use std::sync::Mutex;

use super::*;

/// Days a partition-key `IN` may name: ScyllaDB refuses more by default
/// (`max_partition_key_restrictions_per_query`).
pub(super) const DAYS_PER_READ: usize = 100;

/// Index entries remembered before the cache starts again (about 100 bytes each).
const CACHED: usize = 1 << 20;

/// The UTC day of `t`, clamped to what the `day int` columns hold (a range to
/// `Instant::MAX` ends at the last day, not at a wrapped one).
pub(super) fn day(t: Instant) -> i32 {
    t.div_euclid(86_400)
        .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The statements of the day index.
pub(super) struct DayIndex {
    flow_day: Prepared,
    day_flow: Prepared,
    series_day: Prepared,
    flow_days: Prepared,
    series_days: Prepared,
    day_flows: Prepared,
    flow_day_delete: Prepared,
    day_flows_delete: Prepared,
    series_day_delete: Prepared,
    /// What this process indexed.
    indexed: Mutex<Indexed>,
}

/// The `(series, day)`s this process indexed, per flow: looked up on every write without
/// copying the flow.
#[derive(Default)]
struct Indexed {
    days: HashMap<FlowId, HashSet<(&'static str, i32)>>,
    len: usize,
}

impl Indexed {
    fn has(&self, series: &'static str, flow: &FlowId, d: i32) -> bool {
        self.days
            .get(flow)
            .is_some_and(|days| days.contains(&(series, d)))
    }

    fn add(&mut self, series: &'static str, flow: FlowId, d: i32) {
        if self.len >= CACHED {
            *self = Indexed::default();
        }
        if self.days.entry(flow).or_default().insert((series, d)) {
            self.len += 1;
        }
    }

    fn remove(&mut self, series: &'static str, flow: &FlowId, d: i32) {
        if let Some(days) = self.days.get_mut(flow)
            && days.remove(&(series, d))
        {
            self.len -= 1;
        }
    }
}

impl DayIndex {
    pub(super) async fn prepare(cql: &dyn Cql) -> Result<DayIndex> {
        Ok(DayIndex {
            flow_day: cql.prepare("INSERT INTO flow_days (country, lob, kind, name, series, day) VALUES (?, ?, ?, ?, ?, ?)").await?,
            day_flow: cql.prepare("INSERT INTO day_flows (series, day, bucket, country, lob, kind, name) VALUES (?, ?, ?, ?, ?, ?, ?)").await?,
            series_day: cql.prepare("INSERT INTO series_days (series, day) VALUES (?, ?)").await?,
            flow_days: cql.prepare(format!("SELECT day FROM flow_days WHERE {FLOW_KEY} AND series = ? AND day >= ? AND day <= ?").as_str()).await?,
            series_days: cql.prepare("SELECT day FROM series_days WHERE series = ? AND day <= ?").await?,
            day_flows: cql.prepare("SELECT country, lob, kind, name FROM day_flows WHERE series = ? AND day = ? AND bucket = ?").await?,
            flow_day_delete: cql.prepare(format!("DELETE FROM flow_days WHERE {FLOW_KEY} AND series = ? AND day = ?").as_str()).await?,
            day_flows_delete: cql.prepare("DELETE FROM day_flows WHERE series = ? AND day = ? AND bucket = ?").await?,
            series_day_delete: cql.prepare("DELETE FROM series_days WHERE series = ? AND day = ?").await?,
            indexed: Mutex::default(),
        })
    }
}

fn flow_key(f: &FlowId) -> (&str, &str, &str, &str) {
    (&f.country, &f.lob, f.kind.as_str(), &f.name)
}

impl ScyllaStore {
    /// Indexes the `(flow, day)`s of `series` this process has not indexed yet.
    pub(super) async fn index_days(
        &self,
        series: &'static str,
        days: impl IntoIterator<Item = (&FlowId, i32)>,
    ) -> Result<()> {
        let ix = &self.st.days;
        let new: Vec<(FlowId, i32)> = {
            let indexed = ix.indexed.lock().expect("day index cache");
            let mut new: Vec<(FlowId, i32)> = days
                .into_iter()
                .filter(|(f, d)| !indexed.has(series, f, *d))
                .map(|(f, d)| (f.clone(), d))
                .collect();
            new.sort_unstable();
            new.dedup();
            new
        };
        if new.is_empty() {
            return Ok(());
        }
        let mut statements = Vec::with_capacity(new.len() * 2);
        let series_days: BTreeSet<i32> = new.iter().map(|(_, d)| *d).collect();
        for d in series_days {
            statements.push((ix.series_day, (series, d).bind()));
        }
        for (f, d) in &new {
            let (c, l, k, n) = flow_key(f);
            statements.push((ix.flow_day, (c, l, k, n, series, *d).bind()));
            let bucket = bucket(f);
            statements.push((ix.day_flow, (series, *d, bucket, c, l, k, n).bind()));
        }
        self.write_all(vec![statements]).await?;
        let mut indexed = ix.indexed.lock().expect("day index cache");
        for (f, d) in new {
            indexed.add(series, f, d);
        }
        Ok(())
    }

    /// The days of `series` holding data of `flow` in `[from, to]`, ascending.
    pub(super) async fn days_of(
        &self,
        series: &str,
        flow: &FlowId,
        from: i32,
        to: i32,
    ) -> Result<Vec<i32>> {
        let (c, l, k, n) = flow_key(flow);
        let rows: Vec<(i32,)> = self
            .rows(&self.st.days.flow_days, (c, l, k, n, series, from, to))
            .await?;
        Ok(rows.into_iter().map(|(d,)| d).collect())
    }

    /// Every `(day, flow)` of `series` up to `last_day`.
    pub(super) async fn indexed_before(
        &self,
        series: &str,
        last_day: i32,
    ) -> Result<Vec<(i32, FlowId)>> {
        let ix = &self.st.days;
        let days: Vec<(i32,)> = self.rows(&ix.series_days, (series, last_day)).await?;
        let mut out = Vec::new();
        for (d,) in days {
            let buckets = (0..BUCKETS).map(|b| self.rows(&ix.day_flows, (series, d, b)));
            let buckets: Vec<Vec<(String, String, String, String)>> = try_join_all(buckets).await?;
            for (c, l, k, n) in buckets.into_iter().flatten() {
                out.push((d, flow_of(c, l, &k, n)?));
            }
        }
        Ok(out)
    }

    /// Drops the entry of `flow`'s `day` of `series` from the per-flow index.
    pub(super) async fn unindex(&self, series: &'static str, flow: &FlowId, d: i32) -> Result<()> {
        let (c, l, k, n) = flow_key(flow);
        self.exec(&self.st.days.flow_day_delete, (c, l, k, n, series, d))
            .await?;
        self.st
            .days
            .indexed
            .lock()
            .expect("day index cache")
            .remove(series, flow, d);
        Ok(())
    }

    /// Drops a whole day of `series` from the index (its data is gone for every flow).
    pub(super) async fn unindex_day(&self, series: &str, d: i32) -> Result<()> {
        let ix = &self.st.days;
        for b in 0..BUCKETS {
            self.exec(&ix.day_flows_delete, (series, d, b)).await?;
        }
        self.exec(&ix.series_day_delete, (series, d)).await?;
        Ok(())
    }

    /// Runs groups of writes (a partition's, where the caller groups them so) as unlogged
    /// batches of at most [`STATEMENTS_PER_BATCH`] statements, [`CONCURRENT_WRITES`] at a time.
    pub(super) async fn write_all(&self, groups: Vec<Vec<(Prepared, Values)>>) -> Result<()> {
        let mut batches = Vec::new();
        for group in groups {
            let mut statements = group.into_iter().peekable();
            while statements.peek().is_some() {
                let batch: Vec<_> = statements.by_ref().take(STATEMENTS_PER_BATCH).collect();
                batches.push(batch);
            }
        }
        bounded(batches.into_iter().map(|b| self.cql.batch(b)).collect()).await?;
        Ok(())
    }
}

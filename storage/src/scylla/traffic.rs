//! Traffic in ScyllaDB (`traffic`, partitioned by flow and UTC day; each batch's contribution
//! to a second is a row of its own, summed when read), ingest positions and retention.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::days::{DAYS_PER_READ, day};
use super::*;

/// The statements of traffic and ingest positions.
pub(super) struct TrafficStatements {
    insert: Prepared,
    read: Prepared,
    position_get: Prepared,
    position_set: Prepared,
}

impl TrafficStatements {
    pub(super) async fn prepare(cql: &dyn Cql) -> Result<TrafficStatements> {
        Ok(TrafficStatements {
            insert: cql.prepare("INSERT INTO traffic (country, lob, kind, name, day, second, part, bytes, records) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)").await?,
            read: cql.prepare(&format!("SELECT second, bytes, records FROM traffic WHERE {FLOW_KEY} AND day IN ? AND second >= ? AND second < ?")).await?,
            position_get: cql.prepare("SELECT position FROM ingest_positions WHERE source = ?").await?,
            // The position is the write's timestamp: of two writers, the later position wins,
            // whatever the order they arrive in (it never moves back).
            position_set: cql.prepare("UPDATE ingest_positions USING TIMESTAMP ? SET position = ? WHERE source = ?").await?,
        })
    }
}

/// What names an unmarked batch's rows: a random prefix per process and a counter.
pub(super) struct PartIds {
    prefix: u64,
    next: AtomicU64,
}

impl PartIds {
    pub(super) fn new() -> PartIds {
        PartIds {
            prefix: RandomState::new().hash_one(std::process::id()),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("~{:016x}.{n}", self.prefix)
    }
}

/// A day list as the `IN ?` of a read binds it.
fn day_list(days: &[i32]) -> CqlValue {
    CqlValue::List(days.iter().map(|d| CqlValue::Int(*d)).collect())
}

impl ScyllaStore {
    /// The rows of `flow`'s days in `series` (`traffic` or `ticks`) with `from <= time < to`:
    /// the day index first, then [`DAYS_PER_READ`] days a read.
    pub(super) async fn series_rows<R: FromRow>(
        &self,
        series: &str,
        read: &Prepared,
        flow: &FlowId,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<R>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let days = self.days_of(series, flow, day(from), day(to - 1)).await?;
        let mut out = Vec::new();
        let f = flow;
        for chunk in days.chunks(DAYS_PER_READ) {
            let values = (&f.country, &f.lob, f.kind.as_str(), &f.name)
                .bind()
                .into_iter()
                .chain([Some(day_list(chunk))])
                .chain((from, to).bind())
                .collect::<Values>();
            out.extend(self.rows::<R>(read, values).await?);
        }
        Ok(out)
    }
}

#[async_trait]
impl crate::TrafficStore for ScyllaStore {
    /// Plain inserts, a row per (flow, second, batch): a marked batch's rows are named by its
    /// source and position, so a batch delivered again after a crash (its position not yet
    /// written) writes the same rows again and counts once; the position is written last.
    async fn add_buckets(&self, batch: Vec<FlowBuckets>, mark: Option<IngestMark>) -> Result<bool> {
        if let Some(mark) = &mark
            && self
                .ingest_position(&mark.source)
                .await?
                .is_some_and(|p| p >= mark.position)
        {
            return Ok(false);
        }
        let mut partitions: BTreeMap<(&FlowId, i32), BTreeMap<Instant, (u64, u64)>> =
            BTreeMap::new();
        for fb in &batch {
            for b in &fb.buckets {
                let sum = partitions
                    .entry((&fb.flow, day(b.second)))
                    .or_default()
                    .entry(b.second)
                    .or_default();
                sum.0 += b.bytes;
                sum.1 += b.records;
            }
        }
        self.index_days("traffic", partitions.keys().map(|(f, d)| (*f, *d)))
            .await?;
        let part = match &mark {
            Some(m) => format!("{}@{}", m.source, m.position),
            None => self.parts.next(),
        };
        let mut groups = Vec::with_capacity(partitions.len());
        for ((f, d), sums) in partitions {
            let mut group = Vec::with_capacity(sums.len());
            for (second, (bytes, records)) in sums {
                let key = (&f.country, &f.lob, f.kind.as_str(), &f.name, d, second);
                let values = key
                    .bind()
                    .into_iter()
                    .chain((&part, to_i64(bytes, "bytes")?, to_i64(records, "records")?).bind())
                    .collect();
                group.push((self.st.traffic.insert, values));
            }
            groups.push(group);
        }
        self.write_all(groups).await?;
        if let Some(mark) = &mark {
            let position = to_i64(mark.position, "ingest position")?;
            self.exec(
                &self.st.traffic.position_set,
                (position, position, &mark.source),
            )
            .await?;
        }
        Ok(true)
    }

    async fn ingest_position(&self, source: &str) -> Result<Option<u64>> {
        let rows: Vec<(i64,)> = self.rows(&self.st.traffic.position_get, (source,)).await?;
        Ok(rows.first().map(|r| r.0 as u64))
    }

    async fn read_buckets(&self, flow: &FlowId, from: Instant, to: Instant) -> Result<Vec<Bucket>> {
        let rows: Vec<(i64, i64, i64)> = self
            .series_rows("traffic", &self.st.traffic.read, flow, from, to)
            .await?;
        let mut sums: BTreeMap<Instant, (u64, u64)> = BTreeMap::new();
        for (second, bytes, records) in rows {
            let sum = sums.entry(second).or_default();
            sum.0 += bytes as u64;
            sum.1 += records as u64;
        }
        Ok(sums
            .into_iter()
            .map(|(second, (bytes, records))| Bucket {
                second,
                bytes,
                records,
            })
            .collect())
    }

    /// On ScyllaDB, retention is the keyspace's TTL (`ttl_days`); this deletes on demand:
    /// whole (flow, day) partitions before the cut's day, a range of the cut's day.
    async fn expire(&self, series: Series, before: Instant) -> Result<u64> {
        match series {
            Series::Traffic => {
                let x = &self.st.traffic_expiry;
                self.expire_series("traffic", x, before).await
            }
            Series::Ticks => {
                self.expire_series("ticks", &self.st.tick_expiry, before)
                    .await
            }
            Series::Events => self.expire_events(before).await,
        }
    }
}

/// The statements retention runs on one time series.
pub(super) struct Expiry {
    times: Prepared,
    partition: Prepared,
    range: Prepared,
}

impl Expiry {
    pub(super) async fn prepare(cql: &dyn Cql, table: &str, column: &str) -> Result<Expiry> {
        let key = format!("{FLOW_KEY} AND day = ?");
        Ok(Expiry {
            times: cql
                .prepare(&format!(
                    "SELECT {column} FROM {table} WHERE {key} AND {column} < ?"
                ))
                .await?,
            partition: cql
                .prepare(&format!("DELETE FROM {table} WHERE {key}"))
                .await?,
            range: cql
                .prepare(&format!("DELETE FROM {table} WHERE {key} AND {column} < ?"))
                .await?,
        })
    }
}

impl ScyllaStore {
    /// Deletes `series`' rows before `before` with its statements `x`.
    async fn expire_series(
        &self,
        series: &'static str,
        x: &Expiry,
        before: Instant,
    ) -> Result<u64> {
        let cut = day(before);
        let mut removed = 0u64;
        let mut whole_days = BTreeSet::new();
        for (d, f) in self.indexed_before(series, cut).await? {
            let key = (&f.country, &f.lob, f.kind.as_str(), &f.name, d);
            let times: Vec<(i64,)> = self
                .rows(&x.times, (key.0, key.1, key.2, key.3, key.4, before))
                .await?;
            let distinct: BTreeSet<i64> = times.into_iter().map(|(t,)| t).collect();
            removed += distinct.len() as u64;
            if d < cut {
                self.exec(&x.partition, key).await?;
                self.unindex(series, &f, d).await?;
                whole_days.insert(d);
            } else if !distinct.is_empty() {
                self.exec(&x.range, (key.0, key.1, key.2, key.3, key.4, before))
                    .await?;
            }
        }
        for d in whole_days {
            self.unindex_day(series, d).await?;
        }
        Ok(removed)
    }
}

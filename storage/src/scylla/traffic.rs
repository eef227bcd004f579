//! Traffic in ScyllaDB (`traffic`, partitioned by flow and UTC day), the days each series
//! holds (`series_days`, what retention walks), ingest positions and retention.

use async_trait::async_trait;

use super::*;

impl ScyllaStore {
    /// The buckets of one (flow, day) partition with `from <= second < to`.
    async fn day_buckets(
        &self,
        flow: &FlowId,
        d: i32,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<Bucket>> {
        let key = (&flow.country, &flow.lob, flow.kind.as_str(), &flow.name);
        let rows: Vec<(i64, i64, i64)> = self
            .rows(
                &self.st.read_buckets,
                (key.0, key.1, key.2, key.3, d, from, to),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(second, bytes, records)| Bucket {
                second,
                bytes: bytes as u64,
                records: records as u64,
            })
            .collect())
    }

    pub(super) async fn mark_day(&self, series: &str, flow: &FlowId, d: i32) -> Result<()> {
        self.exec(
            &self.st.mark_day,
            (
                series,
                d,
                &flow.country,
                &flow.lob,
                flow.kind.as_str(),
                &flow.name,
            ),
        )
        .await?;
        Ok(())
    }

    /// The `(day, flow)` partitions of `series` before `before_day` (inclusive when `inclusive`).
    async fn days_of(&self, series: &str, last_day: i32) -> Result<Vec<(i32, FlowId)>> {
        let rows: Vec<(i32, String, String, String, String)> = self
            .session
            .query_iter(
                "SELECT day, country, lob, kind, name FROM series_days WHERE series = ? AND day <= ?",
                (series, last_day),
            )
            .await
            .map_err(scylla_err)?
            .rows_stream::<(i32, String, String, String, String)>()
            .map_err(scylla_err)?
            .try_collect()
            .await
            .map_err(scylla_err)?;
        rows.into_iter()
            .map(|(d, c, l, k, n)| Ok((d, flow_of(c, l, &k, n)?)))
            .collect()
    }
}

#[async_trait]
impl crate::TrafficStore for ScyllaStore {
    /// Read-add-write per (flow, day) partition: only a flow's owner writes its traffic, so
    /// the read cannot race. With a mark, the position is written after the traffic (no
    /// multi-partition atomicity here): a crash between the two counts that one batch twice
    /// when it is delivered again, rather than losing it.
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
        let writes = partitions
            .into_iter()
            .map(|((flow, d), mut sums)| async move {
                let (lo, hi) = match (sums.keys().next(), sums.keys().next_back()) {
                    (Some(&lo), Some(&hi)) => (lo, hi + 1),
                    _ => return Ok(()),
                };
                for b in self.day_buckets(flow, d, lo, hi).await? {
                    if let Some(sum) = sums.get_mut(&b.second) {
                        sum.0 += b.bytes;
                        sum.1 += b.records;
                    }
                }
                self.mark_day("traffic", flow, d).await?;
                let mut cql = Batch::new(BatchType::Unlogged);
                let mut values = Vec::with_capacity(sums.len());
                for (second, (bytes, records)) in sums {
                    cql.append_statement(self.st.insert_bucket.clone());
                    values.push((
                        flow.country.as_str(),
                        flow.lob.as_str(),
                        flow.kind.as_str(),
                        flow.name.as_str(),
                        d,
                        second,
                        to_i64(bytes, "bytes")?,
                        to_i64(records, "records")?,
                    ));
                }
                cql.set_consistency(
                    self.st
                        .insert_bucket
                        .get_consistency()
                        .unwrap_or(Consistency::LocalQuorum),
                );
                self.session.batch(&cql, values).await.map_err(scylla_err)?;
                Ok::<_, Error>(())
            });
        try_join_all(writes).await?;
        if let Some(mark) = &mark {
            self.exec(
                &self.st.position_set,
                (to_i64(mark.position, "ingest position")?, &mark.source),
            )
            .await?;
        }
        Ok(true)
    }

    async fn ingest_position(&self, source: &str) -> Result<Option<u64>> {
        let rows: Vec<(i64,)> = self.rows(&self.st.position_get, (source,)).await?;
        Ok(rows.first().map(|r| r.0 as u64))
    }

    async fn read_buckets(&self, flow: &FlowId, from: Instant, to: Instant) -> Result<Vec<Bucket>> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for d in day(from)..=day(to - 1) {
            out.extend(self.day_buckets(flow, d, from, to).await?);
        }
        Ok(out)
    }

    async fn expire(&self, series: Series, before: Instant) -> Result<u64> {
        let cut = day(before);
        let mut removed = 0u64;
        match series {
            Series::Traffic | Series::Ticks => {
                let (name, table, column) = match series {
                    Series::Traffic => ("traffic", "traffic", "second"),
                    _ => ("ticks", "ticks", "start"),
                };
                for (d, flow) in self.days_of(name, cut).await? {
                    let key = (&flow.country, &flow.lob, flow.kind.as_str(), &flow.name, d);
                    let count: Vec<(i64,)> = all_rows(
                        self.session
                            .query_iter(
                                format!("SELECT COUNT(*) FROM {table} WHERE country = ? AND lob = ? AND kind = ? AND name = ? AND day = ? AND {column} < ?"),
                                (key.0, key.1, key.2, key.3, key.4, before),
                            )
                            .await,
                    )
                    .await?;
                    removed += count.first().map_or(0, |c| c.0 as u64);
                    self.session
                        .query_unpaged(
                            format!("DELETE FROM {table} WHERE country = ? AND lob = ? AND kind = ? AND name = ? AND day = ? AND {column} < ?"),
                            (key.0, key.1, key.2, key.3, key.4, before),
                        )
                        .await
                        .map_err(scylla_err)?;
                    if d < cut {
                        self.session
                            .query_unpaged(
                                "DELETE FROM series_days WHERE series = ? AND day = ? AND country = ? AND lob = ? AND kind = ? AND name = ?",
                                (name, d, key.0, key.1, key.2, key.3),
                            )
                            .await
                            .map_err(scylla_err)?;
                    }
                }
            }
            Series::Events => {
                let days: Vec<(i32,)> = self.rows(&self.st.event_days, ()).await?;
                for (d,) in days.into_iter().filter(|(d,)| *d <= cut) {
                    let rows: Vec<(i64, String, String, String, i8, String)> = self
                        .rows(&self.st.events_of_day, (d, Instant::MIN, before))
                        .await?;
                    for (time, id, ..) in &rows {
                        self.session
                            .query_unpaged(
                                "DELETE FROM events WHERE day = ? AND time = ? AND id = ?",
                                (d, *time, id),
                            )
                            .await
                            .map_err(scylla_err)?;
                        self.session
                            .query_unpaged("DELETE FROM event_ids WHERE id = ?", (id,))
                            .await
                            .map_err(scylla_err)?;
                        self.exec(&self.st.outbox_delete, (*time, id)).await?;
                    }
                    removed += rows.len() as u64;
                    if d < cut {
                        self.session
                            .query_unpaged("DELETE FROM event_days WHERE k = 0 AND day = ?", (d,))
                            .await
                            .map_err(scylla_err)?;
                    }
                }
            }
        }
        Ok(removed)
    }
}

//! Traffic (`traffic`, keyed by flow id and second), ingest positions and retention in
//! PostgreSQL.

use async_trait::async_trait;

use super::*;

/// Flows per statement when deleting along the primary key.
const EXPIRE_FLOWS: usize = 1000;

#[async_trait]
impl crate::TrafficStore for PostgresStore {
    async fn add_buckets(&self, batch: Vec<FlowBuckets>, mark: Option<IngestMark>) -> Result<bool> {
        let mut c = self.client().await;
        let flows: Vec<&FlowId> = batch.iter().map(|b| &b.flow).collect();
        let ids = self.flow_ids(&c, &flows, true).await?;
        // One row per key (an upsert may not touch a row twice), in key order (concurrent
        // writers lock rows in the same order and cannot deadlock).
        let mut rows: BTreeMap<(i64, i64), (u64, u64)> = BTreeMap::new();
        for fb in &batch {
            let id = ids[&fb.flow];
            for b in &fb.buckets {
                let r = rows.entry((id, b.second)).or_default();
                r.0 += b.bytes;
                r.1 += b.records;
            }
        }
        let (mut f, mut s, mut by, mut re) = (vec![], vec![], vec![], vec![]);
        for ((id, second), (bytes, records)) in rows {
            f.push(id);
            s.push(second);
            by.push(to_i64(bytes, "bytes")?);
            re.push(to_i64(records, "records")?);
        }
        let tx = c.transaction().await.map_err(pg)?;
        if let Some(mark) = &mark {
            let position = to_i64(mark.position, "ingest position")?;
            // Moves the position only forward; no row back means the batch was applied.
            let moved = tx
                .execute(
                    "INSERT INTO ingest_positions (source, position) VALUES ($1, $2)
                     ON CONFLICT (source) DO UPDATE SET position = EXCLUDED.position
                     WHERE ingest_positions.position < EXCLUDED.position",
                    &[&mark.source, &position],
                )
                .await
                .map_err(pg)?;
            if moved == 0 {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT INTO traffic (flow_id, second, bytes, records)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
             ON CONFLICT (flow_id, second) DO UPDATE
             SET bytes = traffic.bytes + EXCLUDED.bytes, records = traffic.records + EXCLUDED.records",
            &[&f, &s, &by, &re],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(true)
    }

    async fn ingest_position(&self, source: &str) -> Result<Option<u64>> {
        let c = self.client().await;
        let row = c
            .query_opt(
                "SELECT position FROM ingest_positions WHERE source = $1",
                &[&source],
            )
            .await
            .map_err(pg)?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    async fn read_buckets(&self, flow: &FlowId, from: Instant, to: Instant) -> Result<Vec<Bucket>> {
        let c = self.client().await;
        let Some(&id) = self.flow_ids(&c, &[flow], false).await?.get(flow) else {
            return Ok(vec![]);
        };
        let rows = c
            .query(
                "SELECT second, bytes, records FROM traffic WHERE flow_id = $1 AND second >= $2 AND second < $3 ORDER BY second",
                &[&id, &from, &to],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| Bucket {
                second: r.get(0),
                bytes: r.get::<_, i64>(1) as u64,
                records: r.get::<_, i64>(2) as u64,
            })
            .collect())
    }

    async fn expire(&self, series: Series, before: Instant) -> Result<u64> {
        let c = self.client().await;
        let (table, column) = match series {
            Series::Traffic => ("traffic", "second"),
            Series::Ticks => ("ticks", "start"),
            Series::Events => {
                let n = c
                    .execute("DELETE FROM events WHERE time < $1", &[&before])
                    .await
                    .map_err(pg)?;
                return Ok(n);
            }
        };
        let ids: Vec<i64> = c
            .query("SELECT id FROM flow_ids ORDER BY id", &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let sql = format!("DELETE FROM {table} WHERE flow_id = ANY($1) AND {column} < $2");
        let mut removed = 0;
        for chunk in ids.chunks(EXPIRE_FLOWS) {
            removed += c.execute(&sql, &[&chunk, &before]).await.map_err(pg)?;
        }
        Ok(removed)
    }
}

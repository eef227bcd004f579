//! The PostgreSQL backend (`postgres://…`): for mid-size operators and the shared store of the
//! cluster tests.
//!
//! The schema lives in `storage/schema/postgres/`; it is applied at start under an advisory
//! lock, and a database migrated by a newer flowwatch is refused. Flows get a compact numeric
//! id (`flow_ids`) that every time series is keyed by: `(flow_id, time)` primary keys make a
//! flow's range one index range scan. Batches go in as one `UNNEST` statement each; ticks carry
//! the writer's epoch and the upsert refuses a lower one in its `WHERE`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

use crate::error::{Error, Result};
use crate::keys::{decode_cursor, status_code, status_from};
use crate::model::*;
use crate::{Store, to_i64};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 3;

const MIGRATIONS: [&str; 3] = [
    include_str!("../schema/postgres/0001_init.sql"),
    include_str!("../schema/postgres/0002_outbox_ingest.sql"),
    include_str!("../schema/postgres/0003_keys_audit.sql"),
];

/// Connections kept open.
const CONNECTIONS: usize = 4;

/// Flows per statement when deleting along the primary key.
const EXPIRE_FLOWS: usize = 1000;

/// A PostgreSQL store.
pub struct PostgresStore {
    connections: Vec<Mutex<Client>>,
    next: AtomicUsize,
    ids: StdMutex<HashMap<FlowId, i64>>,
}

fn pg(e: tokio_postgres::Error) -> Error {
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                source = inner.source();
            }
            s
        }
    };
    Error::Backend {
        backend: "postgres",
        detail,
    }
}

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        place: "postgres".into(),
        detail: detail.to_string(),
    }
}

impl PostgresStore {
    /// Connects to `uri` (`postgres://user@host:port/db`) and migrates the schema.
    pub async fn connect(uri: &str) -> Result<PostgresStore> {
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let (client, connection) = tokio_postgres::connect(uri, NoTls).await.map_err(pg)?;
            tokio::spawn(async move {
                // Ends when the client is dropped or the server goes away; queries then fail.
                let _ = connection.await;
            });
            connections.push(Mutex::new(client));
        }
        let store = PostgresStore {
            connections,
            next: AtomicUsize::new(0),
            ids: StdMutex::new(HashMap::new()),
        };
        store.migrate(uri).await?;
        Ok(store)
    }

    async fn client(&self) -> tokio::sync::MutexGuard<'_, Client> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[i].lock().await
    }

    async fn migrate(&self, uri: &str) -> Result<()> {
        let mut c = self.client().await;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock(7423001)", &[])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS flowwatch_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        )
        .await
        .map_err(pg)?;
        let row = tx
            .query_opt(
                "SELECT value FROM flowwatch_meta WHERE key = 'schema_version'",
                &[],
            )
            .await
            .map_err(pg)?;
        let found: u32 = match row {
            None => 0,
            Some(r) => r
                .get::<_, String>(0)
                .parse()
                .map_err(|_| corrupt("schema_version is not a number"))?,
        };
        if found > SCHEMA_VERSION {
            let place = format!("database {}", uri.rsplit('/').next().unwrap_or(uri));
            return Err(Error::SchemaVersion {
                place,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for sql in &MIGRATIONS[found as usize..] {
            tx.batch_execute(sql).await.map_err(pg)?;
        }
        tx.execute(
            "INSERT INTO flowwatch_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&SCHEMA_VERSION.to_string()],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    /// The ids of `flows`, creating the missing ones when `create`.
    async fn flow_ids(
        &self,
        c: &Client,
        flows: &[&FlowId],
        create: bool,
    ) -> Result<HashMap<FlowId, i64>> {
        let mut out = HashMap::new();
        let mut missing: Vec<&FlowId> = Vec::new();
        {
            let cache = self.ids.lock().unwrap_or_else(|p| p.into_inner());
            for f in flows {
                match cache.get(*f) {
                    Some(&id) => {
                        out.insert((*f).clone(), id);
                    }
                    None => missing.push(f),
                }
            }
        }
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(out);
        }
        let cols = |f: fn(&FlowId) -> &str| missing.iter().map(|m| f(m)).collect::<Vec<&str>>();
        let (country, lob, kind, name) = (
            cols(|f| &f.country),
            cols(|f| &f.lob),
            cols(|f| f.kind.as_str()),
            cols(|f| &f.name),
        );
        if create {
            c.execute(
                "INSERT INTO flow_ids (country, lob, kind, name)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
                 ON CONFLICT DO NOTHING",
                &[&country, &lob, &kind, &name],
            )
            .await
            .map_err(pg)?;
        }
        let rows = c
            .query(
                "SELECT f.id, f.country, f.lob, f.kind, f.name FROM flow_ids f
                 JOIN UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u(country, lob, kind, name)
                   USING (country, lob, kind, name)",
                &[&country, &lob, &kind, &name],
            )
            .await
            .map_err(pg)?;
        let mut cache = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        for r in rows {
            let flow = flow_of(&r, 1)?;
            cache.insert(flow.clone(), r.get(0));
            out.insert(flow, r.get(0));
        }
        Ok(out)
    }
}

/// The flow in columns `at..at + 4` (country, lob, kind, name).
fn flow_of(r: &Row, at: usize) -> Result<FlowId> {
    let kind: &str = r.get(at + 2);
    Ok(FlowId {
        country: r.get(at),
        lob: r.get(at + 1),
        kind: FlowKind::parse(kind)
            .ok_or_else(|| corrupt(format!("unknown flow kind \"{kind}\"")))?,
        name: r.get(at + 3),
    })
}

const TICK_COLUMNS: &str = "start, \"end\", actual, status, expected, day_average, tick_difference, day_difference, difference, evaluated_at, epoch";

/// A tick from `TICK_COLUMNS` starting at column `at`.
fn tick_of(flow: FlowId, r: &Row, at: usize) -> Result<StoredTick> {
    let status: i16 = r.get(at + 3);
    let expected: Option<f64> = r.get(at + 4);
    let values = expected.map(|expected| flowwatch_core::detection::TickValues {
        expected,
        day_average: r.get::<_, Option<f64>>(at + 5).unwrap_or(f64::NAN),
        tick_difference: r.get::<_, Option<f64>>(at + 6).unwrap_or(f64::NAN),
        day_difference: r.get::<_, Option<f64>>(at + 7).unwrap_or(f64::NAN),
        difference: r.get::<_, Option<f64>>(at + 8).unwrap_or(f64::NAN),
    });
    Ok(StoredTick {
        flow,
        start: r.get(at),
        end: r.get(at + 1),
        actual: r.get::<_, i64>(at + 2) as u64,
        status: status_from(status as u8)
            .ok_or_else(|| corrupt(format!("unknown status {status}")))?,
        values,
        evaluated_at: r.get(at + 9),
        epoch: r.get::<_, i64>(at + 10) as u64,
    })
}

/// Columns of ticks as arrays for `UNNEST`.
struct TickArrays {
    flow_id: Vec<i64>,
    start: Vec<i64>,
    end: Vec<i64>,
    actual: Vec<i64>,
    status: Vec<i16>,
    values: [Vec<Option<f64>>; 5],
    evaluated_at: Vec<i64>,
    epoch: Vec<i64>,
}

impl TickArrays {
    fn new(ticks: &[(i64, &StoredTick)]) -> Result<TickArrays> {
        let mut a = TickArrays {
            flow_id: vec![],
            start: vec![],
            end: vec![],
            actual: vec![],
            status: vec![],
            values: Default::default(),
            evaluated_at: vec![],
            epoch: vec![],
        };
        for (id, t) in ticks {
            a.flow_id.push(*id);
            a.start.push(t.start);
            a.end.push(t.end);
            a.actual.push(to_i64(t.actual, "actual")?);
            a.status.push(status_code(t.status) as i16);
            let v = t.values.map(|v| {
                [
                    v.expected,
                    v.day_average,
                    v.tick_difference,
                    v.day_difference,
                    v.difference,
                ]
            });
            for (k, column) in a.values.iter_mut().enumerate() {
                column.push(v.map(|v| v[k]));
            }
            a.evaluated_at.push(t.evaluated_at);
            a.epoch.push(to_i64(t.epoch, "epoch")?);
        }
        Ok(a)
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 12] {
        [
            &self.flow_id,
            &self.start,
            &self.end,
            &self.actual,
            &self.status,
            &self.values[0],
            &self.values[1],
            &self.values[2],
            &self.values[3],
            &self.values[4],
            &self.evaluated_at,
            &self.epoch,
        ]
    }
}

const UNNEST_TICKS: &str = "SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::smallint[],
    $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::bigint[], $12::bigint[])";

const SET_TICK: &str = "\"end\" = EXCLUDED.\"end\", actual = EXCLUDED.actual, status = EXCLUDED.status,
    expected = EXCLUDED.expected, day_average = EXCLUDED.day_average, tick_difference = EXCLUDED.tick_difference,
    day_difference = EXCLUDED.day_difference, difference = EXCLUDED.difference,
    evaluated_at = EXCLUDED.evaluated_at, epoch = EXCLUDED.epoch";

fn user_of(r: &Row) -> Result<User> {
    let role: &str = r.get(1);
    Ok(User {
        name: r.get(0),
        role: Role::parse(role).ok_or_else(|| corrupt(format!("unknown role \"{role}\"")))?,
        password_hash: r.get(2),
    })
}

fn key_of(r: &Row) -> Result<ApiKey> {
    let kind: &str = r.get(2);
    Ok(ApiKey {
        hash: r.get(0),
        user: r.get(1),
        kind: KeyKind::parse(kind)
            .ok_or_else(|| corrupt(format!("unknown key kind \"{kind}\"")))?,
        created_at: r.get(3),
        expires_at: r.get(4),
    })
}

const KEY_COLUMNS: &str = "hash, name, kind, created_at, expires_at";

fn config_of(r: &Row) -> ConfigVersion {
    ConfigVersion {
        version: r.get::<_, i64>(0) as u64,
        document: r.get(1),
        saved_at: r.get(2),
        author: r.get(3),
    }
}

const ORDER_BY_FLOW: &str = "ORDER BY f.country COLLATE \"C\", f.lob COLLATE \"C\", f.kind COLLATE \"C\", f.name COLLATE \"C\"";

#[async_trait]
impl Store for PostgresStore {
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

    async fn write_ticks(&self, ticks: Vec<StoredTick>) -> Result<WriteOutcome> {
        let mut c = self.client().await;
        let flows: Vec<&FlowId> = ticks.iter().map(|t| &t.flow).collect();
        let ids = self.flow_ids(&c, &flows, true).await?;
        // One row per (flow, start): the last of the batch wins.
        let mut by_key: HashMap<(i64, i64), &StoredTick> = HashMap::new();
        for t in &ticks {
            by_key.insert((ids[&t.flow], t.start), t);
        }
        let unique: Vec<(i64, &StoredTick)> =
            by_key.into_iter().map(|((id, _), t)| (id, t)).collect();
        let arrays = TickArrays::new(&unique)?;
        let tx = c.transaction().await.map_err(pg)?;
        let written = tx
            .query(
                &format!(
                    "INSERT INTO ticks (flow_id, {TICK_COLUMNS}) {UNNEST_TICKS}
                     ON CONFLICT (flow_id, start) DO UPDATE SET {SET_TICK} WHERE ticks.epoch <= EXCLUDED.epoch
                     RETURNING flow_id, start"
                ),
                &arrays.params(),
            )
            .await
            .map_err(pg)?;
        // Each flow's latest written tick moves its status forward.
        let mut latest: HashMap<i64, i64> = HashMap::new();
        for r in &written {
            let (id, start): (i64, i64) = (r.get(0), r.get(1));
            let e = latest.entry(id).or_insert(start);
            *e = (*e).max(start);
        }
        let newest: Vec<(i64, &StoredTick)> = unique
            .iter()
            .filter(|(id, t)| latest.get(id) == Some(&t.start))
            .copied()
            .collect();
        let arrays = TickArrays::new(&newest)?;
        tx.execute(
            &format!(
                "INSERT INTO flow_status (flow_id, {TICK_COLUMNS}) {UNNEST_TICKS}
                 ON CONFLICT (flow_id) DO UPDATE SET start = EXCLUDED.start, {SET_TICK}
                 WHERE flow_status.start <= EXCLUDED.start"
            ),
            &arrays.params(),
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        let written = written.len() as u64;
        Ok(WriteOutcome {
            written,
            stale: ticks.len() as u64 - written.min(ticks.len() as u64),
        })
    }

    async fn read_ticks(
        &self,
        flow: &FlowId,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<StoredTick>> {
        let c = self.client().await;
        let Some(&id) = self.flow_ids(&c, &[flow], false).await?.get(flow) else {
            return Ok(vec![]);
        };
        let rows = c
            .query(
                &format!("SELECT {TICK_COLUMNS} FROM ticks WHERE flow_id = $1 AND start >= $2 AND start < $3 ORDER BY start"),
                &[&id, &from, &to],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(|r| tick_of(flow.clone(), r, 0)).collect()
    }

    async fn latest_statuses(&self) -> Result<Vec<StoredTick>> {
        let c = self.client().await;
        let rows = c
            .query(
                &format!(
                    "SELECT f.country, f.lob, f.kind, f.name, {} FROM flow_status s JOIN flow_ids f ON f.id = s.flow_id {ORDER_BY_FLOW}",
                    TICK_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
                ),
                &[],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(|r| tick_of(flow_of(r, 0)?, r, 4)).collect()
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<()> {
        let c = self.client().await;
        let mut seen = std::collections::HashSet::new();
        let (mut id, mut time, mut country, mut lob, mut status, mut body, mut alarm) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for e in &events {
            if !seen.insert(e.id.as_str()) {
                continue;
            }
            id.push(e.id.as_str());
            time.push(e.time);
            country.push(e.flow.country.as_str());
            lob.push(e.flow.lob.as_str());
            status.push(status_code(e.new_status) as i16);
            body.push(serde_json::to_value(e).expect("events serialize"));
            alarm.push(!e.revision);
        }
        // New events only (a repeated id is left as it is); of those, the alarms are queued.
        c.execute(
            "WITH input AS (
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[],
                                      $5::smallint[], $6::jsonb[], $7::bool[])
                 WITH ORDINALITY AS u(i, t, c, l, s, b, a, n)
             ), new AS (
                 INSERT INTO events (id, time, country, lob, new_status, body)
                 SELECT i, t, c, l, s, b FROM input ORDER BY n
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id
             )
             INSERT INTO outbox (id)
             SELECT input.i FROM input JOIN new ON new.id = input.i WHERE input.a",
            &[&id, &time, &country, &lob, &status, &body, &alarm],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<Event>> {
        let c = self.client().await;
        let rows = c
            .query(
                "SELECT e.body FROM outbox o JOIN events e USING (id) ORDER BY e.time, e.id LIMIT $1",
                &[&(limit as i64)],
            )
            .await
            .map_err(pg)?;
        rows.into_iter()
            .map(|r| {
                serde_json::from_value(r.get::<_, serde_json::Value>(0))
                    .map_err(|e| corrupt(format!("event body: {e}")))
            })
            .collect()
    }

    async fn outbox_done(&self, ids: Vec<String>) -> Result<()> {
        let c = self.client().await;
        c.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn outbox_len(&self) -> Result<u64> {
        let c = self.client().await;
        let row = c
            .query_one("SELECT count(*) FROM outbox", &[])
            .await
            .map_err(pg)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn query_events(&self, q: EventQuery) -> Result<EventPage> {
        let limit = q.limit.max(1);
        let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let (cursor_time, cursor_id) = match &cursor {
            Some((t, id)) => (Some(*t), Some(id.as_str())),
            None => (None, None),
        };
        let statuses: Vec<i16> = q.statuses.iter().map(|s| status_code(*s) as i16).collect();
        let c = self.client().await;
        let rows = c
            .query(
                "SELECT body FROM events
                 WHERE time >= $1 AND time < $2
                   AND ($3::text IS NULL OR country = $3) AND ($4::text IS NULL OR lob = $4)
                   AND (cardinality($5::smallint[]) = 0 OR new_status = ANY($5))
                   AND ($6::bigint IS NULL OR time < $6 OR (time = $6 AND id COLLATE \"C\" < $7))
                 ORDER BY time DESC, id COLLATE \"C\" DESC
                 LIMIT $8",
                &[
                    &q.from.unwrap_or(Instant::MIN),
                    &q.to.unwrap_or(Instant::MAX),
                    &q.country,
                    &q.lob,
                    &statuses,
                    &cursor_time,
                    &cursor_id,
                    &(limit as i64 + 1),
                ],
            )
            .await
            .map_err(pg)?;
        let events: Vec<Event> = rows
            .iter()
            .map(|r| serde_json::from_value(r.get(0)).map_err(corrupt))
            .collect::<Result<_>>()?;
        Ok(EventPage::from_overfetch(events, limit))
    }

    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()> {
        let c = self.client().await;
        let refs: Vec<&FlowId> = flows.iter().map(|f| &f.flow).collect();
        let ids = self.flow_ids(&c, &refs, true).await?;
        let mut merged: HashMap<i64, (i64, i32)> = HashMap::new();
        for f in &flows {
            let e = merged
                .entry(ids[&f.flow])
                .or_insert((f.first_seen, f.partition as i32));
            e.0 = e.0.min(f.first_seen);
        }
        let (mut id, mut seen, mut part) = (vec![], vec![], vec![]);
        for (k, (s, p)) in merged {
            id.push(k);
            seen.push(s);
            part.push(p);
        }
        c.execute(
            "INSERT INTO flow_registry (flow_id, first_seen, partition)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::int[])
             ON CONFLICT (flow_id) DO UPDATE SET first_seen = LEAST(flow_registry.first_seen, EXCLUDED.first_seen)",
            &[&id, &seen, &part],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn flows(&self) -> Result<Vec<FlowEntry>> {
        let c = self.client().await;
        let rows = c
            .query(
                &format!(
                    "SELECT f.country, f.lob, f.kind, f.name, r.first_seen, r.partition
                     FROM flow_registry r JOIN flow_ids f ON f.id = r.flow_id {ORDER_BY_FLOW}"
                ),
                &[],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                Ok(FlowEntry {
                    flow: flow_of(r, 0)?,
                    first_seen: r.get(4),
                    partition: r.get::<_, i32>(5) as u32,
                })
            })
            .collect()
    }

    async fn flow_count(&self) -> Result<u64> {
        let c = self.client().await;
        let row = c
            .query_one("SELECT count(*) FROM flow_registry", &[])
            .await
            .map_err(pg)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn config_latest(&self) -> Result<Option<ConfigVersion>> {
        let c = self.client().await;
        let row = c
            .query_opt("SELECT version, document, saved_at, author FROM config_versions ORDER BY version DESC LIMIT 1", &[])
            .await
            .map_err(pg)?;
        Ok(row.as_ref().map(config_of))
    }

    async fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>> {
        let c = self.client().await;
        let Ok(v) = i64::try_from(version) else {
            return Ok(None);
        };
        let row = c
            .query_opt("SELECT version, document, saved_at, author FROM config_versions WHERE version = $1", &[&v])
            .await
            .map_err(pg)?;
        Ok(row.as_ref().map(config_of))
    }

    async fn config_put(
        &self,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> Result<ConfigVersion> {
        let mut c = self.client().await;
        let tx = c.transaction().await.map_err(pg)?;
        // Two editors serialise here; the loser sees the winner's version.
        tx.batch_execute("LOCK TABLE config_versions IN EXCLUSIVE MODE")
            .await
            .map_err(pg)?;
        let current: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM config_versions", &[])
            .await
            .map_err(pg)?
            .get(0);
        let saved = ConfigVersion::successor(current as u64, expected, document, author)?;
        tx.execute(
            "INSERT INTO config_versions (version, document, saved_at, author) VALUES ($1, $2, $3, $4)",
            &[&(saved.version as i64), &saved.document, &saved.saved_at, &saved.author],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(saved)
    }

    async fn put_user(&self, user: User) -> Result<()> {
        let c = self.client().await;
        c.execute(
            "INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash",
            &[&user.name, &user.role.as_str(), &user.password_hash],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn user(&self, name: &str) -> Result<Option<User>> {
        let c = self.client().await;
        let row = c
            .query_opt(
                "SELECT name, role, password_hash FROM users WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(pg)?;
        row.as_ref().map(user_of).transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        let c = self.client().await;
        let rows = c
            .query(
                "SELECT name, role, password_hash FROM users ORDER BY name COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(user_of).collect()
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        let c = self.client().await;
        // Its keys go with it (ON DELETE CASCADE).
        Ok(c.execute("DELETE FROM users WHERE name = $1", &[&name])
            .await
            .map_err(pg)?
            > 0)
    }

    async fn put_api_key(&self, key: ApiKey) -> Result<()> {
        let c = self.client().await;
        let inserted = c
            .execute(
                "INSERT INTO api_keys (hash, name, kind, created_at, expires_at)
                 SELECT $1, name, $3, $4, $5 FROM users WHERE name = $2
                 ON CONFLICT (hash) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
                   created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at",
                &[
                    &key.hash,
                    &key.user,
                    &key.kind.as_str(),
                    &key.created_at,
                    &key.expires_at,
                ],
            )
            .await
            .map_err(pg)?;
        if inserted == 0 {
            return Err(Error::Invalid {
                what: format!("API key of unknown user {:?}", key.user),
            });
        }
        Ok(())
    }

    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let c = self.client().await;
        let row = c
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"),
                &[&hash],
            )
            .await
            .map_err(pg)?;
        row.as_ref().map(key_of).transpose()
    }

    async fn api_keys(&self, user: &str) -> Result<Vec<ApiKey>> {
        let c = self.client().await;
        let rows = c
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE name = $1 ORDER BY created_at, hash"
                ),
                &[&user],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(key_of).collect()
    }

    async fn delete_api_key(&self, hash: &str) -> Result<bool> {
        let c = self.client().await;
        Ok(c.execute("DELETE FROM api_keys WHERE hash = $1", &[&hash])
            .await
            .map_err(pg)?
            > 0)
    }

    async fn audit_append(&self, entry: AuditEntry) -> Result<()> {
        let c = self.client().await;
        c.execute(
            "INSERT INTO audit_log (at, id, who, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&entry.at, &entry.id, &entry.user, &entry.action, &entry.target, &entry.detail],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn audit(&self, before: Option<(i64, String)>, limit: usize) -> Result<Vec<AuditEntry>> {
        let c = self.client().await;
        let (at, id) = before.unwrap_or((i64::MAX, String::new()));
        let rows = c
            .query(
                "SELECT at, id, who, action, target, detail FROM audit_log
                 WHERE (at, id) < ($1, $2) ORDER BY at DESC, id DESC LIMIT $3",
                &[&at, &id, &to_i64(limit as u64, "limit")?],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at: r.get(0),
                id: r.get(1),
                user: r.get(2),
                action: r.get(3),
                target: r.get(4),
                detail: r.get(5),
            })
            .collect())
    }
}

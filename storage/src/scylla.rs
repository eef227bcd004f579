//! The ScyllaDB backend (`scylla://host:9042[,host2:9042]/keyspace?consistency=LOCAL_QUORUM&rf=3&ttl_days=90`),
//! for large clusters: a million flows, sub-minute ticks.
//!
//! Schema: `storage/schema/scylla/` (CQL), applied at start; a keyspace marked with a newer
//! schema version is refused. Time series are partitioned by `(flow, UTC day)` and clustered by
//! time, compacted in daily windows (TWCS) with an optional table TTL for retention. Every
//! statement is prepared, at the configured consistency; the driver routes each to a replica of
//! its partition (token-aware), and a bucket batch is split into one unlogged batch per
//! partition. Writes that must not race (tick epochs, a flow's latest status, config versions,
//! event ids, first-seen times) are lightweight transactions.
//!
//! Atomicity is per partition: a bucket batch that spans flows can fail half-way; it is
//! idempotent, so the caller retries it. Verified only by compiling: no ScyllaDB node can run
//! on the project's machines; `storage/tests/scylla.rs` runs the conformance suite against one
//! whenever `FLOWWATCH_SCYLLA_URI` is set.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use flowwatch_core::detection::TickValues;
use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};
use futures_util::TryStreamExt;
use futures_util::future::try_join_all;
use scylla::SerializeRow;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::response::query_result::QueryResult;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use crate::error::{Error, Result};
use crate::keys::{decode_cursor, status_code, status_from};
use crate::model::*;
use crate::{Store, to_i64};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 3;

const SCHEMA: [&str; 3] = [
    include_str!("../schema/scylla/0001_init.cql"),
    include_str!("../schema/scylla/0002_outbox_ingest.cql"),
    include_str!("../schema/scylla/0003_keys_audit.cql"),
];

/// Shards of the `flow_status` and `flows` tables.
const SHARDS: i32 = 16;

fn scylla_err(e: impl std::fmt::Display) -> Error {
    Error::Backend {
        backend: "scylla",
        detail: e.to_string(),
    }
}

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        place: "scylla".into(),
        detail: detail.to_string(),
    }
}

/// What a `scylla://` URI says.
#[derive(Debug, Clone, PartialEq)]
pub struct ScyllaUri {
    /// `host:port` of the contact points.
    pub nodes: Vec<String>,
    /// The keyspace.
    pub keyspace: String,
    /// Consistency of every statement (default `LOCAL_QUORUM`).
    pub consistency: Consistency,
    /// Replication factor used if the keyspace has to be created (default 1).
    pub replication_factor: u32,
    /// Table TTL of traffic and ticks, in days (0: none).
    pub ttl_days: u32,
}

impl ScyllaUri {
    /// Parses `scylla://host:9042[,host:9042…]/keyspace[?consistency=…&rf=…&ttl_days=…]`.
    pub fn parse(uri: &str) -> Result<ScyllaUri> {
        let invalid = |why: String| Error::InvalidUri {
            uri: crate::redact_uri(uri),
            why,
        };
        let rest = uri
            .strip_prefix("scylla://")
            .ok_or_else(|| invalid("expected scylla://host:9042/keyspace".into()))?;
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hosts, keyspace) = main
            .split_once('/')
            .ok_or_else(|| invalid("missing /keyspace after the hosts".into()))?;
        let nodes: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if nodes.is_empty() {
            return Err(invalid("no host".into()));
        }
        let valid_name = !keyspace.is_empty()
            && keyspace.len() <= 48
            && keyspace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && keyspace
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        if !valid_name {
            return Err(invalid(format!(
                "invalid keyspace \"{keyspace}\": letters, digits and _ only, starting with a letter, at most 48"
            )));
        }
        let mut parsed = ScyllaUri {
            nodes,
            keyspace: keyspace.to_owned(),
            consistency: Consistency::LocalQuorum,
            replication_factor: 1,
            ttl_days: 0,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("invalid parameter \"{pair}\"")))?;
            let number = || {
                v.parse::<u32>()
                    .map_err(|_| invalid(format!("invalid {k} \"{v}\": expected a whole number")))
            };
            match k {
                "consistency" => {
                    parsed.consistency = match v.to_ascii_uppercase().as_str() {
                        "ONE" => Consistency::One,
                        "TWO" => Consistency::Two,
                        "THREE" => Consistency::Three,
                        "QUORUM" => Consistency::Quorum,
                        "ALL" => Consistency::All,
                        "LOCAL_QUORUM" => Consistency::LocalQuorum,
                        "EACH_QUORUM" => Consistency::EachQuorum,
                        "LOCAL_ONE" => Consistency::LocalOne,
                        _ => return Err(invalid(format!("unknown consistency \"{v}\""))),
                    }
                }
                "rf" => parsed.replication_factor = number()?.max(1),
                "ttl_days" => parsed.ttl_days = number()?,
                _ => {
                    return Err(invalid(format!(
                        "unknown parameter \"{k}\": expected consistency, rf or ttl_days"
                    )));
                }
            }
        }
        Ok(parsed)
    }
}

/// The CQL statements of a schema file (split at `;` ending a line; `--` comments dropped).
pub fn schema_statements(cql: &str) -> Vec<String> {
    let text: String = cql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(";\n")
        .map(str::trim)
        .map(|s| s.trim_end_matches(';').trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A stable shard of a flow (FNV-1a), for the sharded tables.
fn shard(flow: &FlowId) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [&flow.country, &flow.lob, flow.kind.as_str(), &flow.name] {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % SHARDS as u64) as i32
}

fn day(t: Instant) -> i32 {
    t.div_euclid(86_400) as i32
}

/// Whether a lightweight transaction was applied (`[applied]` is its first column).
fn applied(r: QueryResult) -> Result<bool> {
    let rows = r.into_rows_result().map_err(scylla_err)?;
    let first: Option<Row> = rows.maybe_first_row::<Row>().map_err(scylla_err)?;
    match first.and_then(|row| row.columns.into_iter().next().flatten()) {
        Some(CqlValue::Boolean(b)) => Ok(b),
        other => Err(corrupt(format!(
            "lightweight transaction without [applied]: {other:?}"
        ))),
    }
}

#[derive(SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
struct TickRow<'a> {
    start: i64,
    end: i64,
    actual: i64,
    status: i8,
    expected: Option<f64>,
    day_average: Option<f64>,
    tick_difference: Option<f64>,
    day_difference: Option<f64>,
    difference: Option<f64>,
    evaluated_at: i64,
    epoch: i64,
    country: &'a str,
    lob: &'a str,
    kind: &'a str,
    name: &'a str,
    key: i32,
}

impl<'a> TickRow<'a> {
    /// The values of `INSERT … ({TICK_SELECT}, flow, key)`; `key` is the day (ticks) or the
    /// shard (status).
    fn new(t: &'a StoredTick, key: i32) -> Result<TickRow<'a>> {
        let v = t.values;
        Ok(TickRow {
            start: t.start,
            end: t.end,
            actual: to_i64(t.actual, "actual")?,
            status: status_code(t.status) as i8,
            expected: v.map(|v| v.expected),
            day_average: v.map(|v| v.day_average),
            tick_difference: v.map(|v| v.tick_difference),
            day_difference: v.map(|v| v.day_difference),
            difference: v.map(|v| v.difference),
            evaluated_at: t.evaluated_at,
            epoch: to_i64(t.epoch, "epoch")?,
            country: &t.flow.country,
            lob: &t.flow.lob,
            kind: t.flow.kind.as_str(),
            name: &t.flow.name,
            key,
        })
    }
}

type TickColumns = (
    i64,
    i64,
    i64,
    i8,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    i64,
);

fn tick_of(flow: FlowId, c: TickColumns) -> Result<StoredTick> {
    let (
        start,
        end,
        actual,
        status,
        expected,
        day_average,
        tick_difference,
        day_difference,
        difference,
        evaluated_at,
        epoch,
    ) = c;
    Ok(StoredTick {
        flow,
        start,
        end,
        actual: actual as u64,
        status: status_from(status as u8)
            .ok_or_else(|| corrupt(format!("unknown status {status}")))?,
        values: expected.map(|expected| TickValues {
            expected,
            day_average: day_average.unwrap_or(f64::NAN),
            tick_difference: tick_difference.unwrap_or(f64::NAN),
            day_difference: day_difference.unwrap_or(f64::NAN),
            difference: difference.unwrap_or(f64::NAN),
        }),
        evaluated_at,
        epoch: epoch as u64,
    })
}

fn flow_of(country: String, lob: String, kind: &str, name: String) -> Result<FlowId> {
    let kind =
        FlowKind::parse(kind).ok_or_else(|| corrupt(format!("unknown flow kind \"{kind}\"")))?;
    Ok(FlowId {
        country,
        lob,
        kind,
        name,
    })
}

const TICK_SET: &str = "\"end\" = ?, actual = ?, status = ?, expected = ?, day_average = ?, tick_difference = ?, \
     day_difference = ?, difference = ?, evaluated_at = ?, epoch = ?";
const TICK_SELECT: &str = "start, \"end\", actual, status, expected, day_average, tick_difference, day_difference, difference, evaluated_at, epoch";

/// Prepared statements.
struct Statements {
    insert_bucket: PreparedStatement,
    read_buckets: PreparedStatement,
    mark_day: PreparedStatement,
    tick_insert: PreparedStatement,
    tick_update: PreparedStatement,
    status_insert: PreparedStatement,
    status_update: PreparedStatement,
    read_ticks: PreparedStatement,
    read_status: PreparedStatement,
    event_id: PreparedStatement,
    event_insert: PreparedStatement,
    event_day: PreparedStatement,
    event_days: PreparedStatement,
    events_of_day: PreparedStatement,
    flow_insert: PreparedStatement,
    flow_lower: PreparedStatement,
    flows_of_shard: PreparedStatement,
    config_latest: PreparedStatement,
    config_version: PreparedStatement,
    config_insert: PreparedStatement,
    user_upsert: PreparedStatement,
    user_get: PreparedStatement,
    user_delete: PreparedStatement,
    users_all: PreparedStatement,
    key_insert: PreparedStatement,
    key_get: PreparedStatement,
    key_delete: PreparedStatement,
    user_key_insert: PreparedStatement,
    user_keys: PreparedStatement,
    user_key_delete: PreparedStatement,
    user_keys_delete: PreparedStatement,
    audit_insert: PreparedStatement,
    audit_page: PreparedStatement,
    event_time: PreparedStatement,
    event_body: PreparedStatement,
    outbox_insert: PreparedStatement,
    outbox_scan: PreparedStatement,
    outbox_delete: PreparedStatement,
    outbox_count: PreparedStatement,
    position_get: PreparedStatement,
    position_set: PreparedStatement,
}

/// A ScyllaDB store.
pub struct ScyllaStore {
    session: Session,
    st: Statements,
}

impl ScyllaStore {
    /// Connects, creates the keyspace if needed (SimpleStrategy with the URI's `rf`; create it
    /// yourself for NetworkTopologyStrategy) and applies the schema.
    pub async fn connect(uri: &str) -> Result<ScyllaStore> {
        let cfg = ScyllaUri::parse(uri)?;
        let session = SessionBuilder::new()
            .known_nodes(&cfg.nodes)
            .build()
            .await
            .map_err(scylla_err)?;
        let run = |cql: String| {
            let session = &session;
            async move { session.query_unpaged(cql, ()).await.map_err(scylla_err) }
        };
        run(format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
            cfg.keyspace, cfg.replication_factor
        ))
        .await?;
        session
            .use_keyspace(&cfg.keyspace, false)
            .await
            .map_err(scylla_err)?;
        run("CREATE TABLE IF NOT EXISTS flowwatch_meta (key text PRIMARY KEY, value text)".into())
            .await?;
        let found = session
            .query_unpaged(
                "SELECT value FROM flowwatch_meta WHERE key = 'schema_version'",
                (),
            )
            .await
            .map_err(scylla_err)?
            .into_rows_result()
            .map_err(scylla_err)?
            .maybe_first_row::<(String,)>()
            .map_err(scylla_err)?;
        let found: u32 = match found {
            None => 0,
            Some((v,)) => v
                .parse()
                .map_err(|_| corrupt("schema_version is not a number"))?,
        };
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaVersion {
                place: format!("keyspace {}", cfg.keyspace),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // Every statement is idempotent (IF NOT EXISTS): applying all versions is safe.
        for statement in SCHEMA.iter().flat_map(|s| schema_statements(s)) {
            run(statement).await?;
        }
        let ttl = cfg.ttl_days as u64 * 86_400;
        for table in ["traffic", "ticks"] {
            run(format!(
                "ALTER TABLE {table} WITH default_time_to_live = {ttl}"
            ))
            .await?;
        }
        run(format!(
            "INSERT INTO flowwatch_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')"
        ))
        .await?;
        let st = Statements::prepare(&session, cfg.consistency).await?;
        Ok(ScyllaStore { session, st })
    }

    async fn exec(
        &self,
        ps: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<QueryResult> {
        self.session
            .execute_unpaged(ps, values)
            .await
            .map_err(scylla_err)
    }

    async fn rows<R>(
        &self,
        ps: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<R>>
    where
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + Send + 'static,
    {
        self.session
            .execute_iter(ps.clone(), values)
            .await
            .map_err(scylla_err)?
            .rows_stream::<R>()
            .map_err(scylla_err)?
            .try_collect()
            .await
            .map_err(scylla_err)
    }

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

    async fn mark_day(&self, series: &str, flow: &FlowId, d: i32) -> Result<()> {
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

impl Statements {
    async fn prepare(session: &Session, consistency: Consistency) -> Result<Statements> {
        let p = |cql: String| async move {
            let mut ps = session.prepare(cql).await.map_err(scylla_err)?;
            ps.set_consistency(consistency);
            Ok::<_, Error>(ps)
        };
        let flow_key = "country = ? AND lob = ? AND kind = ? AND name = ?";
        Ok(Statements {
            insert_bucket: p("INSERT INTO traffic (country, lob, kind, name, day, second, bytes, records) VALUES (?, ?, ?, ?, ?, ?, ?, ?)".into()).await?,
            read_buckets: p(format!("SELECT second, bytes, records FROM traffic WHERE {flow_key} AND day = ? AND second >= ? AND second < ?")).await?,
            mark_day: p("INSERT INTO series_days (series, day, country, lob, kind, name) VALUES (?, ?, ?, ?, ?, ?)".into()).await?,
            tick_insert: p(format!(
                "INSERT INTO ticks ({TICK_SELECT}, country, lob, kind, name, day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            )).await?,
            tick_update: p(format!("UPDATE ticks SET {TICK_SET} WHERE start = ? AND {flow_key} AND day = ? IF epoch <= ?")).await?,
            status_insert: p(format!(
                "INSERT INTO flow_status ({TICK_SELECT}, country, lob, kind, name, shard) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            )).await?,
            status_update: p(format!("UPDATE flow_status SET start = ?, {TICK_SET} WHERE {flow_key} AND shard = ? IF start <= ?")).await?,
            read_ticks: p(format!("SELECT {TICK_SELECT} FROM ticks WHERE {flow_key} AND day = ? AND start >= ? AND start < ?")).await?,
            read_status: p(format!("SELECT country, lob, kind, name, {TICK_SELECT} FROM flow_status WHERE shard = ?")).await?,
            event_id: p("INSERT INTO event_ids (id, time) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            event_insert: p("INSERT INTO events (day, time, id, country, lob, new_status, body) VALUES (?, ?, ?, ?, ?, ?, ?)".into()).await?,
            event_day: p("INSERT INTO event_days (k, day) VALUES (0, ?)".into()).await?,
            event_days: p("SELECT day FROM event_days WHERE k = 0".into()).await?,
            events_of_day: p("SELECT time, id, country, lob, new_status, body FROM events WHERE day = ? AND time >= ? AND time < ?".into()).await?,
            flow_insert: p("INSERT INTO flows (shard, country, lob, kind, name, first_seen, partition) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS".into()).await?,
            flow_lower: p(format!("UPDATE flows SET first_seen = ? WHERE shard = ? AND {flow_key} IF first_seen > ?")).await?,
            flows_of_shard: p("SELECT country, lob, kind, name, first_seen, partition FROM flows WHERE shard = ?".into()).await?,
            config_latest: p("SELECT version, document, saved_at, author FROM config_versions WHERE k = 0 LIMIT 1".into()).await?,
            config_version: p("SELECT version, document, saved_at, author FROM config_versions WHERE k = 0 AND version = ?".into()).await?,
            config_insert: p("INSERT INTO config_versions (k, version, document, saved_at, author) VALUES (0, ?, ?, ?, ?) IF NOT EXISTS".into()).await?,
            user_upsert: p("INSERT INTO users (name, role, password_hash) VALUES (?, ?, ?)".into()).await?,
            user_get: p("SELECT name, role, password_hash FROM users WHERE name = ?".into()).await?,
            user_delete: p("DELETE FROM users WHERE name = ?".into()).await?,
            users_all: p("SELECT name, role, password_hash FROM users".into()).await?,
            key_insert: p("INSERT INTO keys (hash, name, kind, created_at, expires_at) VALUES (?, ?, ?, ?, ?)".into()).await?,
            key_get: p("SELECT hash, name, kind, created_at, expires_at FROM keys WHERE hash = ?".into()).await?,
            key_delete: p("DELETE FROM keys WHERE hash = ?".into()).await?,
            user_key_insert: p("INSERT INTO keys_by_user (name, hash) VALUES (?, ?)".into()).await?,
            user_keys: p("SELECT hash FROM keys_by_user WHERE name = ?".into()).await?,
            user_key_delete: p("DELETE FROM keys_by_user WHERE name = ? AND hash = ?".into()).await?,
            user_keys_delete: p("DELETE FROM keys_by_user WHERE name = ?".into()).await?,
            audit_insert: p("INSERT INTO audit_log (k, at, id, who, action, target, detail) VALUES (0, ?, ?, ?, ?, ?, ?)".into()).await?,
            audit_page: p("SELECT at, id, who, action, target, detail FROM audit_log WHERE k = 0 AND (at, id) < (?, ?) LIMIT ?".into()).await?,
            event_time: p("SELECT time FROM event_ids WHERE id = ?".into()).await?,
            event_body: p("SELECT body FROM events WHERE day = ? AND time = ? AND id = ?".into()).await?,
            outbox_insert: p("INSERT INTO outbox (k, time, id) VALUES (0, ?, ?)".into()).await?,
            outbox_scan: p("SELECT time, id FROM outbox WHERE k = 0 LIMIT ?".into()).await?,
            outbox_delete: p("DELETE FROM outbox WHERE k = 0 AND time = ? AND id = ?".into()).await?,
            outbox_count: p("SELECT count(*) FROM outbox WHERE k = 0".into()).await?,
            position_get: p("SELECT position FROM ingest_positions WHERE source = ?".into()).await?,
            position_set: p("UPDATE ingest_positions SET position = ? WHERE source = ?".into()).await?,
        })
    }
}

type UserColumns = (String, String, Option<String>);

fn user_of((name, role, password_hash): UserColumns) -> Result<User> {
    Ok(User {
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("unknown role \"{role}\"")))?,
        name,
        password_hash,
    })
}

type KeyColumns = (String, String, String, i64, Option<i64>);

fn key_of((hash, user, kind, created_at, expires_at): KeyColumns) -> Result<ApiKey> {
    Ok(ApiKey {
        kind: KeyKind::parse(&kind)
            .ok_or_else(|| corrupt(format!("unknown key kind \"{kind}\"")))?,
        hash,
        user,
        created_at,
        expires_at,
    })
}

fn config_of(
    (version, document, saved_at, author): (i64, String, i64, String),
) -> Result<ConfigVersion> {
    Ok(ConfigVersion {
        version: version as u64,
        document: serde_json::from_str(&document).map_err(corrupt)?,
        saved_at,
        author,
    })
}

#[async_trait]
impl Store for ScyllaStore {
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
                    let count: Vec<(i64,)> = self
                        .session
                        .query_iter(
                            format!("SELECT COUNT(*) FROM {table} WHERE country = ? AND lob = ? AND kind = ? AND name = ? AND day = ? AND {column} < ?"),
                            (key.0, key.1, key.2, key.3, key.4, before),
                        )
                        .await
                        .map_err(scylla_err)?
                        .rows_stream::<(i64,)>()
                        .map_err(scylla_err)?
                        .try_collect()
                        .await
                        .map_err(scylla_err)?;
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

    async fn write_ticks(&self, ticks: Vec<StoredTick>) -> Result<WriteOutcome> {
        let mut out = WriteOutcome::default();
        let mut latest: HashMap<&FlowId, &StoredTick> = HashMap::new();
        for t in &ticks {
            let d = day(t.start);
            self.mark_day("ticks", &t.flow, d).await?;
            let row = TickRow::new(t, d)?;
            let inserted = applied(self.exec(&self.st.tick_insert, &row).await?)?;
            // Not inserted: the tick exists; overwrite it unless a higher epoch wrote it.
            let written = inserted
                || applied(
                    self.exec(&self.st.tick_update, TickUpdate::new(&row, row.epoch))
                        .await?,
                )?;
            if written {
                out.written += 1;
                let e = latest.entry(&t.flow).or_insert(t);
                if t.start > e.start {
                    *e = t;
                }
            } else {
                out.stale += 1;
            }
        }
        for (flow, t) in latest {
            let row = TickRow::new(t, shard(flow))?;
            if !applied(self.exec(&self.st.status_insert, &row).await?)? {
                // Not applied when a later tick is already the status: nothing to do then.
                applied(
                    self.exec(&self.st.status_update, StatusUpdate::new(&row, row.start))
                        .await?,
                )?;
            }
        }
        Ok(out)
    }

    async fn read_ticks(
        &self,
        flow: &FlowId,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<StoredTick>> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for d in day(from)..=day(to - 1) {
            let rows: Vec<TickColumns> = self
                .rows(
                    &self.st.read_ticks,
                    (
                        &flow.country,
                        &flow.lob,
                        flow.kind.as_str(),
                        &flow.name,
                        d,
                        from,
                        to,
                    ),
                )
                .await?;
            for c in rows {
                out.push(tick_of(flow.clone(), c)?);
            }
        }
        Ok(out)
    }

    async fn latest_statuses(&self) -> Result<Vec<StoredTick>> {
        let shards = (0..SHARDS).map(|s| self.rows::<StatusColumns>(&self.st.read_status, (s,)));
        let mut out = Vec::new();
        for rows in try_join_all(shards).await? {
            for (country, lob, kind, name, cols) in rows.into_iter().map(split_status) {
                out.push(tick_of(flow_of(country, lob, &kind, name)?, cols)?);
            }
        }
        out.sort_unstable_by(|a, b| a.flow.cmp(&b.flow));
        Ok(out)
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<()> {
        for e in &events {
            // The id is claimed first: a repeat (or a concurrent writer of it) stops here.
            if !applied(self.exec(&self.st.event_id, (&e.id, e.time)).await?)? {
                continue;
            }
            let body = serde_json::to_string(e).expect("events serialize");
            let d = day(e.time);
            self.exec(
                &self.st.event_insert,
                (
                    d,
                    e.time,
                    &e.id,
                    &e.flow.country,
                    &e.flow.lob,
                    status_code(e.new_status) as i8,
                    body,
                ),
            )
            .await?;
            self.exec(&self.st.event_day, (d,)).await?;
            if !e.revision {
                self.exec(&self.st.outbox_insert, (e.time, &e.id)).await?;
            }
        }
        Ok(())
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<Event>> {
        let queued: Vec<(i64, String)> = self
            .rows(&self.st.outbox_scan, (limit.min(i32::MAX as usize) as i32,))
            .await?;
        let mut out = Vec::with_capacity(queued.len());
        for (time, id) in queued {
            let body: Vec<(String,)> = self
                .rows(&self.st.event_body, (day(time), time, &id))
                .await?;
            if let Some((body,)) = body.into_iter().next() {
                out.push(serde_json::from_str(&body).map_err(corrupt)?);
            }
        }
        Ok(out)
    }

    async fn outbox_done(&self, ids: Vec<String>) -> Result<()> {
        for id in &ids {
            let time: Vec<(i64,)> = self.rows(&self.st.event_time, (id,)).await?;
            if let Some((time,)) = time.first() {
                self.exec(&self.st.outbox_delete, (*time, id)).await?;
            }
        }
        Ok(())
    }

    async fn outbox_len(&self) -> Result<u64> {
        let rows: Vec<(i64,)> = self.rows(&self.st.outbox_count, ()).await?;
        Ok(rows.first().map_or(0, |r| r.0 as u64))
    }

    async fn query_events(&self, q: EventQuery) -> Result<EventPage> {
        let limit = q.limit.max(1);
        let from = q.from.unwrap_or(Instant::MIN);
        let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let upper = match &cursor {
            Some((t, _)) => t.saturating_add(1),
            None => q.to.unwrap_or(Instant::MAX),
        };
        let statuses: Vec<u8> = q.statuses.iter().map(|s| status_code(*s)).collect();
        let mut days: Vec<(i32,)> = self.rows(&self.st.event_days, ()).await?;
        days.sort_unstable_by(|a, b| b.cmp(a));
        let mut events: Vec<Event> = Vec::new();
        'days: for (d,) in days {
            if d > day(upper.saturating_sub(1)) || d < day(from) {
                continue;
            }
            let mut rows: Vec<(i64, String, String, String, i8, String)> =
                self.rows(&self.st.events_of_day, (d, from, upper)).await?;
            rows.sort_unstable_by(|a, b| (b.0, b.1.as_bytes()).cmp(&(a.0, a.1.as_bytes())));
            for (time, id, country, lob, status, body) in rows {
                if let Some((ct, cid)) = &cursor
                    && (time, id.as_bytes()) >= (*ct, cid.as_bytes())
                {
                    continue;
                }
                if q.country.as_ref().is_some_and(|c| *c != country)
                    || q.lob.as_ref().is_some_and(|l| *l != lob)
                    || (!statuses.is_empty() && !statuses.contains(&(status as u8)))
                {
                    continue;
                }
                events.push(serde_json::from_str(&body).map_err(corrupt)?);
                if events.len() > limit {
                    break 'days;
                }
            }
        }
        Ok(EventPage::from_overfetch(events, limit))
    }

    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()> {
        for f in &flows {
            let s = shard(&f.flow);
            let (c, l, k, n) = (
                &f.flow.country,
                &f.flow.lob,
                f.flow.kind.as_str(),
                &f.flow.name,
            );
            if !applied(
                self.exec(
                    &self.st.flow_insert,
                    (s, c, l, k, n, f.first_seen, f.partition as i32),
                )
                .await?,
            )? {
                applied(
                    self.exec(
                        &self.st.flow_lower,
                        (f.first_seen, s, c, l, k, n, f.first_seen),
                    )
                    .await?,
                )?;
            }
        }
        Ok(())
    }

    async fn flows(&self) -> Result<Vec<FlowEntry>> {
        let shards = (0..SHARDS).map(|s| {
            self.rows::<(String, String, String, String, i64, i32)>(&self.st.flows_of_shard, (s,))
        });
        let mut out = Vec::new();
        for rows in try_join_all(shards).await? {
            for (c, l, k, n, first_seen, partition) in rows {
                out.push(FlowEntry {
                    flow: flow_of(c, l, &k, n)?,
                    first_seen,
                    partition: partition as u32,
                });
            }
        }
        out.sort_unstable_by(|a, b| a.flow.cmp(&b.flow));
        Ok(out)
    }

    async fn config_latest(&self) -> Result<Option<ConfigVersion>> {
        let rows: Vec<(i64, String, i64, String)> = self.rows(&self.st.config_latest, ()).await?;
        rows.into_iter().next().map(config_of).transpose()
    }

    async fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>> {
        let Ok(v) = i64::try_from(version) else {
            return Ok(None);
        };
        let rows: Vec<(i64, String, i64, String)> =
            self.rows(&self.st.config_version, (v,)).await?;
        rows.into_iter().next().map(config_of).transpose()
    }

    async fn config_put(
        &self,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> Result<ConfigVersion> {
        let current = self.config_latest().await?.map_or(0, |c| c.version);
        let saved = ConfigVersion::successor(current, expected, document, author)?;
        let text = serde_json::to_string(&saved.document).expect("JSON serializes");
        // Versions are consecutive: of two editors of `expected`, one inserts `expected + 1`.
        if !applied(
            self.exec(
                &self.st.config_insert,
                (saved.version as i64, text, saved.saved_at, &saved.author),
            )
            .await?,
        )? {
            let current = self.config_latest().await?.map_or(0, |c| c.version);
            return Err(Error::Conflict { expected, current });
        }
        Ok(saved)
    }

    async fn put_user(&self, user: User) -> Result<()> {
        self.exec(
            &self.st.user_upsert,
            (&user.name, user.role.as_str(), &user.password_hash),
        )
        .await?;
        Ok(())
    }

    async fn user(&self, name: &str) -> Result<Option<User>> {
        let rows: Vec<UserColumns> = self.rows(&self.st.user_get, (name,)).await?;
        rows.into_iter().next().map(user_of).transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserColumns> = self.rows(&self.st.users_all, ()).await?;
        let mut users: Vec<User> = rows.into_iter().map(user_of).collect::<Result<_>>()?;
        users.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        if self.user(name).await?.is_none() {
            return Ok(false);
        }
        let hashes: Vec<(String,)> = self.rows(&self.st.user_keys, (name,)).await?;
        for (hash,) in hashes {
            self.exec(&self.st.key_delete, (hash,)).await?;
        }
        self.exec(&self.st.user_keys_delete, (name,)).await?;
        self.exec(&self.st.user_delete, (name,)).await?;
        Ok(true)
    }

    async fn put_api_key(&self, key: ApiKey) -> Result<()> {
        if self.user(&key.user).await?.is_none() {
            return Err(Error::Invalid {
                what: format!("API key of unknown user {:?}", key.user),
            });
        }
        self.exec(&self.st.user_key_insert, (&key.user, &key.hash))
            .await?;
        self.exec(
            &self.st.key_insert,
            (
                &key.hash,
                &key.user,
                key.kind.as_str(),
                key.created_at,
                key.expires_at,
            ),
        )
        .await?;
        Ok(())
    }

    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let rows: Vec<KeyColumns> = self.rows(&self.st.key_get, (hash,)).await?;
        rows.into_iter().next().map(key_of).transpose()
    }

    async fn api_keys(&self, user: &str) -> Result<Vec<ApiKey>> {
        let hashes: Vec<(String,)> = self.rows(&self.st.user_keys, (user,)).await?;
        let mut keys = Vec::with_capacity(hashes.len());
        for (hash,) in hashes {
            keys.extend(self.api_key(&hash).await?);
        }
        keys.sort_by(|a, b| (a.created_at, &a.hash).cmp(&(b.created_at, &b.hash)));
        Ok(keys)
    }

    async fn delete_api_key(&self, hash: &str) -> Result<bool> {
        let Some(key) = self.api_key(hash).await? else {
            return Ok(false);
        };
        self.exec(&self.st.key_delete, (hash,)).await?;
        self.exec(&self.st.user_key_delete, (&key.user, hash))
            .await?;
        Ok(true)
    }

    async fn audit_append(&self, entry: AuditEntry) -> Result<()> {
        self.exec(
            &self.st.audit_insert,
            (
                entry.at,
                &entry.id,
                &entry.user,
                &entry.action,
                &entry.target,
                entry.detail.to_string(),
            ),
        )
        .await?;
        Ok(())
    }

    async fn audit(&self, before: Option<(i64, String)>, limit: usize) -> Result<Vec<AuditEntry>> {
        let (at, id) = before.unwrap_or((i64::MAX, String::new()));
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows: Vec<(i64, String, String, String, String, String)> =
            self.rows(&self.st.audit_page, (at, id, limit)).await?;
        rows.into_iter()
            .map(|(at, id, user, action, target, detail)| {
                Ok(AuditEntry {
                    detail: serde_json::from_str(&detail).map_err(corrupt)?,
                    at,
                    id,
                    user,
                    action,
                    target,
                })
            })
            .collect()
    }
}

type StatusColumns = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i8,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    i64,
);

fn split_status(r: StatusColumns) -> (String, String, String, String, TickColumns) {
    let (country, lob, kind, name, a, b, c, d, e, f, g, h, i, j, k) = r;
    (country, lob, kind, name, (a, b, c, d, e, f, g, h, i, j, k))
}

/// `UPDATE ticks SET … WHERE start, flow, day IF epoch <= ?`, bound in that order.
#[derive(SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
struct TickUpdate<'a> {
    end: i64,
    actual: i64,
    status: i8,
    expected: Option<f64>,
    day_average: Option<f64>,
    tick_difference: Option<f64>,
    day_difference: Option<f64>,
    difference: Option<f64>,
    evaluated_at: i64,
    epoch: i64,
    start: i64,
    country: &'a str,
    lob: &'a str,
    kind: &'a str,
    name: &'a str,
    day: i32,
    min_epoch: i64,
}

/// `UPDATE flow_status SET start, … WHERE flow, shard IF start <= ?`, bound in that order.
#[derive(SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
struct StatusUpdate<'a> {
    start: i64,
    end: i64,
    actual: i64,
    status: i8,
    expected: Option<f64>,
    day_average: Option<f64>,
    tick_difference: Option<f64>,
    day_difference: Option<f64>,
    difference: Option<f64>,
    evaluated_at: i64,
    epoch: i64,
    country: &'a str,
    lob: &'a str,
    kind: &'a str,
    name: &'a str,
    shard: i32,
    max_start: i64,
}

impl<'a> TickUpdate<'a> {
    fn new(r: &TickRow<'a>, min_epoch: i64) -> Self {
        TickUpdate {
            end: r.end,
            actual: r.actual,
            status: r.status,
            expected: r.expected,
            day_average: r.day_average,
            tick_difference: r.tick_difference,
            day_difference: r.day_difference,
            difference: r.difference,
            evaluated_at: r.evaluated_at,
            epoch: r.epoch,
            start: r.start,
            country: r.country,
            lob: r.lob,
            kind: r.kind,
            name: r.name,
            day: r.key,
            min_epoch,
        }
    }
}

impl<'a> StatusUpdate<'a> {
    fn new(r: &TickRow<'a>, max_start: i64) -> Self {
        StatusUpdate {
            start: r.start,
            end: r.end,
            actual: r.actual,
            status: r.status,
            expected: r.expected,
            day_average: r.day_average,
            tick_difference: r.tick_difference,
            day_difference: r.day_difference,
            difference: r.difference,
            evaluated_at: r.evaluated_at,
            epoch: r.epoch,
            country: r.country,
            lob: r.lob,
            kind: r.kind,
            name: r.name,
            shard: r.key,
            max_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let u = ScyllaUri::parse(
            "scylla://10.0.0.1:9042,10.0.0.2:9042/flowwatch?consistency=quorum&rf=3&ttl_days=90",
        )
        .unwrap();
        assert_eq!(u.nodes, ["10.0.0.1:9042", "10.0.0.2:9042"]);
        assert_eq!(u.keyspace, "flowwatch");
        assert_eq!(u.consistency, Consistency::Quorum);
        assert_eq!((u.replication_factor, u.ttl_days), (3, 90));
        let d = ScyllaUri::parse("scylla://localhost:9042/fw").unwrap();
        assert_eq!(d.consistency, Consistency::LocalQuorum);
        for (bad, why) in [
            ("scylla://h:9042", "missing /keyspace"),
            ("scylla:///ks", "no host"),
            ("scylla://h/ks-1", "invalid keyspace"),
            ("scylla://h/ks?consistency=most", "unknown consistency"),
            ("scylla://h/ks?rf=x", "invalid rf"),
            ("scylla://h/ks?foo=1", "unknown parameter"),
        ] {
            let e = ScyllaUri::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn schema_file_splits_into_statements() {
        let s: Vec<String> = SCHEMA.iter().flat_map(|s| schema_statements(s)).collect();
        assert_eq!(s.len(), 16);
        assert!(
            s.iter()
                .all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS")),
            "{s:?}"
        );
        assert!(s.iter().all(|s| !s.contains("--") && !s.ends_with(';')));
        // Balanced parentheses: a split inside a statement would break them.
        assert!(
            s.iter()
                .all(|s| s.matches('(').count() == s.matches(')').count())
        );
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let f = |n: &str| FlowId::new("CZ", "GSM", FlowKind::Input, n).unwrap();
        assert_eq!(shard(&f("A")), shard(&f("A")));
        let used: std::collections::HashSet<i32> =
            (0..200).map(|i| shard(&f(&format!("F{i}")))).collect();
        assert_eq!(used.len(), SHARDS as usize);
    }
}

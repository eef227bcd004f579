//! The ScyllaDB backend (`scylla://host:9042,host2:9042/keyspace?consistency=LOCAL_QUORUM&rf=3&ttl_days=90`),
//! for large clusters: a million flows, sub-minute ticks.
//!
//! Schema: `storage/schema/scylla/` (CQL), applied at start; a keyspace marked with a newer
//! schema version is refused, and one marked older gets the columns added since (`ALTER TABLE
//! … ADD`, each only where its table lacks it). Time series are partitioned by `(flow, UTC day)` and clustered by
//! time, compacted in daily windows (TWCS) with an optional table TTL for retention. Every
//! statement is prepared, at the configured consistency; the driver routes each to a replica of
//! its partition (token-aware), and a bucket batch is split into one unlogged batch per
//! partition. Writes that must not race (tick epochs, a flow's latest status, config versions,
//! event ids, first-seen times) are lightweight transactions. The registry and the latest
//! statuses are spread over 16 shards clustered by (country, lob, kind, name): a country's or
//! a LoB's flows are one clustering slice of each shard, one flow a single row.
//!
//! Atomicity is per partition: a bucket batch that spans flows can fail half-way; it is
//! idempotent, so the caller retries it. No ScyllaDB node can run on the project's machines:
//! the tick statements are checked against the tables the schema files describe with the
//! driver's own type checks (`ticks.rs` tests), the rest only compiles;
//! `storage/tests/scylla.rs` runs the conformance suite against a node whenever
//! `FLOWWATCH_SCYLLA_URI` is set.
//!
//! Layout: this file parses the URI, connects, applies the schema and prepares every
//! statement; each concern's trait is implemented in its own file: [`traffic`] (and
//! retention), [`ticks`] (statuses, events, outbox), [`registry`], [`config`], [`access`]
//! (users, keys, audit), [`operator`] (silences, acknowledgements), [`channels`] (notification
//! channels, their delivery queue).

mod access;
mod channels;
mod config;
pub mod cql;
mod operator;
mod registry;
mod ticks;
mod traffic;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};
use futures_util::TryStreamExt;
use futures_util::future::try_join_all;
use scylla::SerializeRow;
use scylla::client::pager::QueryPager;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::PagerExecutionError;
use scylla::response::query_result::QueryResult;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use crate::error::{Error, Result};
use crate::keys::{decode_cursor, status_code, status_from};
use crate::model::*;
use crate::to_i64;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 6;

/// The tables of every version (`CREATE TABLE IF NOT EXISTS`: applying all is safe).
const SCHEMA: [&str; 5] = [
    include_str!("../schema/scylla/0001_init.cql"),
    include_str!("../schema/scylla/0002_outbox_ingest.cql"),
    include_str!("../schema/scylla/0003_keys_audit.cql"),
    include_str!("../schema/scylla/0005_operator.cql"),
    include_str!("../schema/scylla/0006_channels.cql"),
];

/// Columns added to existing tables, by the version that added them (`ALTER TABLE … ADD`):
/// applied to a keyspace marked older, each only where its table lacks the column.
const UPGRADES: [(u32, &str); 1] = [(4, include_str!("../schema/scylla/0004_band.cql"))];

/// Shards of the `flow_status` and `flows` tables.
const SHARDS: i32 = 16;

/// How long opening a connection to a node, and resolving its name, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn scylla_err(e: impl Into<crate::error::Source>) -> Error {
    Error::backend("scylla", e)
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
                        "EACH_QUORUM" => {
                            return Err(invalid(
                                "consistency EACH_QUORUM is refused by ScyllaDB for reads, and every statement here uses one level: use LOCAL_QUORUM (one data centre's quorum) or QUORUM".into(),
                            ));
                        }
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

/// The `(table, column)` an upgrade statement `ALTER TABLE <table> ADD <column> <type>` adds.
fn added_column(statement: &str) -> Option<(&str, &str)> {
    match statement.split_whitespace().collect::<Vec<_>>()[..] {
        ["ALTER", "TABLE", table, "ADD", column, _type] => Some((table, column)),
        _ => None,
    }
}

/// The upgrade statements of the versions after `found`, as `(table, column, statement)`.
fn upgrades_after(found: u32) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for (_, cql) in UPGRADES.iter().filter(|(version, _)| *version > found) {
        for statement in schema_statements(cql) {
            let (table, column) = added_column(&statement)
                .ok_or_else(|| corrupt(format!("upgrade statement \"{statement}\" is not ALTER TABLE <table> ADD <column> <type>")))?;
            out.push((table.to_owned(), column.to_owned(), statement.clone()));
        }
    }
    Ok(out)
}

/// What brings a keyspace marked with schema version `found` to [`SCHEMA_VERSION`]: the
/// upgrade statements after `found` whose column `has(table, column)` says is missing.
fn pending_upgrades(found: u32, has: impl Fn(&str, &str) -> bool) -> Result<Vec<String>> {
    Ok(upgrades_after(found)?
        .into_iter()
        .filter(|(table, column, _)| !has(table, column))
        .map(|(_, _, statement)| statement)
        .collect())
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

/// Every row a paged query answers.
async fn all_rows<R>(pager: std::result::Result<QueryPager, PagerExecutionError>) -> Result<Vec<R>>
where
    R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + Send + 'static,
{
    pager
        .map_err(scylla_err)?
        .rows_stream::<R>()
        .map_err(scylla_err)?
        .try_collect()
        .await
        .map_err(scylla_err)
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

/// A tick's columns besides its flow, start and key, in the order `TickRow` binds them.
const TICK_VALUES: &str = "\"end\", actual, status, expected, day_average, tick_difference, day_difference, \
     difference, evaluated_at, epoch, band_lower, band_outage_below, band_evidence, band_spread";

/// The key of a flow's rows, in the order `TickRow` binds it.
const FLOW_KEY: &str = "country = ? AND lob = ? AND kind = ? AND name = ?";

/// The statements that write and read ticks and statuses, bound by `TickRow`, `TickUpdate`
/// and read as `TickColumns` (in `ticks.rs`).
struct TickStatements {
    insert: String,
    update: String,
    status_insert: String,
    status_update: String,
    read: String,
    statuses: String,
}

impl TickStatements {
    fn new() -> TickStatements {
        let set: Vec<String> = TICK_VALUES
            .split(", ")
            .map(|c| format!("{c} = ?"))
            .collect();
        let set = set.join(", ");
        let insert = |table: &str, key: &str| {
            let columns = format!("{TICK_VALUES}, start, country, lob, kind, name, {key}");
            let markers = vec!["?"; columns.split(", ").count()].join(", ");
            format!("INSERT INTO {table} ({columns}) VALUES ({markers}) IF NOT EXISTS")
        };
        let select = format!("SELECT country, lob, kind, name, start, {TICK_VALUES}");
        TickStatements {
            insert: insert("ticks", "day"),
            update: format!(
                "UPDATE ticks SET {set} WHERE start = ? AND {FLOW_KEY} AND day = ? IF epoch <= ?"
            ),
            status_insert: insert("flow_status", "shard"),
            status_update: format!(
                "UPDATE flow_status SET {set}, start = ? WHERE {FLOW_KEY} AND shard = ? IF start <= ?"
            ),
            read: format!(
                "{select} FROM ticks WHERE {FLOW_KEY} AND day = ? AND start >= ? AND start < ?"
            ),
            statuses: format!("{select} FROM flow_status"),
        }
    }
}

/// The registry's columns.
const FLOWS: &str = "SELECT country, lob, kind, name, first_seen, partition FROM flows";

/// The reads of a table sharded by flow and clustered by (country, lob, kind, name): one
/// shard whole, or its slice of a country or of a LoB (clustering prefixes: no filtering).
struct Sharded {
    all: PreparedStatement,
    country: PreparedStatement,
    lob: PreparedStatement,
}

impl Sharded {
    async fn prepare<F, P>(p: &P, select: &str) -> Result<Sharded>
    where
        P: Fn(String) -> F,
        F: std::future::Future<Output = Result<PreparedStatement>>,
    {
        Ok(Sharded {
            all: p(format!("{select} WHERE shard = ?")).await?,
            country: p(format!("{select} WHERE shard = ? AND country = ?")).await?,
            lob: p(format!(
                "{select} WHERE shard = ? AND country = ? AND lob = ?"
            ))
            .await?,
        })
    }
}

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
    statuses: Sharded,
    event_id: PreparedStatement,
    event_insert: PreparedStatement,
    event_day: PreparedStatement,
    event_days: PreparedStatement,
    events_of_day: PreparedStatement,
    flow_insert: PreparedStatement,
    flow_lower: PreparedStatement,
    flows: Sharded,
    flow_get: PreparedStatement,
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
    silence_put: PreparedStatement,
    silence_get: PreparedStatement,
    silences_all: PreparedStatement,
    event_body_set: PreparedStatement,
    flow_ack_put: PreparedStatement,
    flow_ack_delete: PreparedStatement,
    flow_acks_all: PreparedStatement,
    published_get: PreparedStatement,
    published_put: PreparedStatement,
    channels: channels::ChannelStatements,
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
        ScyllaStore::connect_to(&ScyllaUri::parse(uri)?).await
    }

    /// Connects to the nodes `cfg` names, creates the keyspace if needed and applies the
    /// schema. Nodes that cannot be reached within 5 s (or names that do not resolve) are an
    /// [`Error::Connect`] naming them.
    pub async fn connect_to(cfg: &ScyllaUri) -> Result<ScyllaStore> {
        let session = SessionBuilder::new()
            .known_nodes(&cfg.nodes)
            .connection_timeout(CONNECT_TIMEOUT)
            .hostname_resolution_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .await
            .map_err(|e| Error::connect("scylla", cfg.nodes.join(","), e))?;
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
        if found < SCHEMA_VERSION {
            let mut present = HashSet::new();
            let tables: BTreeSet<String> = upgrades_after(found)?
                .into_iter()
                .map(|(table, _, _)| table)
                .collect();
            for table in tables {
                let columns: Vec<(String,)> = all_rows(
                    session
                        .query_iter(
                            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
                            (cfg.keyspace.to_ascii_lowercase(), &table),
                        )
                        .await,
                )
                .await?;
                present.extend(columns.into_iter().map(|(c,)| (table.clone(), c)));
            }
            let has = |t: &str, c: &str| present.contains(&(t.to_owned(), c.to_owned()));
            for statement in pending_upgrades(found, has)? {
                run(statement).await?;
            }
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

    /// The rows of every shard of `table` (all, or those of `scope`), read in parallel.
    async fn sharded<R>(&self, table: &Sharded, scope: Option<Scope<'_>>) -> Result<Vec<R>>
    where
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + Send + 'static,
    {
        let shards = (0..SHARDS).map(|s| async move {
            match scope {
                None => self.rows(&table.all, (s,)).await,
                Some(Scope { country, lob: None }) => self.rows(&table.country, (s, country)).await,
                Some(Scope {
                    country,
                    lob: Some(lob),
                }) => self.rows(&table.lob, (s, country, lob)).await,
            }
        });
        Ok(try_join_all(shards).await?.into_iter().flatten().collect())
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
        all_rows(self.session.execute_iter(ps.clone(), values).await).await
    }
}

impl Statements {
    async fn prepare(session: &Session, consistency: Consistency) -> Result<Statements> {
        let p = |cql: String| async move {
            let mut ps = session.prepare(cql).await.map_err(scylla_err)?;
            ps.set_consistency(consistency);
            Ok::<_, Error>(ps)
        };
        let ticks = TickStatements::new();
        Ok(Statements {
            insert_bucket: p("INSERT INTO traffic (country, lob, kind, name, day, second, bytes, records) VALUES (?, ?, ?, ?, ?, ?, ?, ?)".into()).await?,
            read_buckets: p(format!("SELECT second, bytes, records FROM traffic WHERE {FLOW_KEY} AND day = ? AND second >= ? AND second < ?")).await?,
            mark_day: p("INSERT INTO series_days (series, day, country, lob, kind, name) VALUES (?, ?, ?, ?, ?, ?)".into()).await?,
            tick_insert: p(ticks.insert).await?,
            tick_update: p(ticks.update).await?,
            status_insert: p(ticks.status_insert).await?,
            status_update: p(ticks.status_update).await?,
            read_ticks: p(ticks.read).await?,
            statuses: Sharded::prepare(&p, &ticks.statuses).await?,
            event_id: p("INSERT INTO event_ids (id, time) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            event_insert: p("INSERT INTO events (day, time, id, country, lob, new_status, body) VALUES (?, ?, ?, ?, ?, ?, ?)".into()).await?,
            event_day: p("INSERT INTO event_days (k, day) VALUES (0, ?)".into()).await?,
            event_days: p("SELECT day FROM event_days WHERE k = 0".into()).await?,
            events_of_day: p("SELECT time, id, country, lob, new_status, body FROM events WHERE day = ? AND time >= ? AND time < ?".into()).await?,
            flow_insert: p("INSERT INTO flows (shard, country, lob, kind, name, first_seen, partition) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS".into()).await?,
            flow_lower: p(format!("UPDATE flows SET first_seen = ? WHERE shard = ? AND {FLOW_KEY} IF first_seen > ?")).await?,
            flows: Sharded::prepare(&p, FLOWS).await?,
            flow_get: p(format!("{FLOWS} WHERE shard = ? AND {FLOW_KEY}")).await?,
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
            silence_put: p("INSERT INTO silences (k, id, body) VALUES (0, ?, ?)".into()).await?,
            silence_get: p("SELECT body FROM silences WHERE k = 0 AND id = ?".into()).await?,
            silences_all: p("SELECT body FROM silences WHERE k = 0".into()).await?,
            event_body_set: p("UPDATE events SET body = ? WHERE day = ? AND time = ? AND id = ?".into()).await?,
            flow_ack_put: p("INSERT INTO flow_acks (k, country, lob, kind, name, body) VALUES (0, ?, ?, ?, ?, ?)".into()).await?,
            flow_ack_delete: p(format!("DELETE FROM flow_acks WHERE k = 0 AND {FLOW_KEY}")).await?,
            flow_acks_all: p("SELECT body FROM flow_acks WHERE k = 0".into()).await?,
            published_get: p("SELECT id FROM published_incidents WHERE id = ?".into()).await?,
            published_put: p("INSERT INTO published_incidents (id, at) VALUES (?, ?)".into()).await?,
            channels: channels::ChannelStatements::prepare(&p).await?,
        })
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
            (
                "scylla://h/ks?consistency=each_quorum",
                "EACH_QUORUM is refused by ScyllaDB for reads",
            ),
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
        assert_eq!(s.len(), 22);
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

    /// Regression: a keyspace of version 3 kept no band, so the adaptive detector's ticks
    /// lost theirs on ScyllaDB.
    #[test]
    fn a_keyspace_before_the_band_gets_its_columns_once() {
        let band = [
            "band_lower",
            "band_outage_below",
            "band_evidence",
            "band_spread",
        ];
        let none = |_: &str, _: &str| false;
        for found in [0, 3] {
            let all = pending_upgrades(found, none).unwrap();
            assert_eq!(all.len(), 8, "{found}: {all:?}");
            for table in ["ticks", "flow_status"] {
                for column in band {
                    let added = format!("ALTER TABLE {table} ADD {column} double");
                    assert!(all.contains(&added), "{added} in {all:?}");
                }
            }
        }
        assert!(pending_upgrades(SCHEMA_VERSION, none).unwrap().is_empty());
        // An upgrade cut short: what was added is not added again (CQL would refuse it).
        let half = |t: &str, c: &str| t == "ticks" || c == "band_lower";
        let rest = pending_upgrades(3, half).unwrap();
        assert_eq!(
            rest,
            [
                "ALTER TABLE flow_status ADD band_outage_below double",
                "ALTER TABLE flow_status ADD band_evidence double",
                "ALTER TABLE flow_status ADD band_spread double",
            ]
        );
        assert_eq!(added_column("ALTER TABLE t ADD (a double, b double)"), None);
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

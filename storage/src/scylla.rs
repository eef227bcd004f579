//! The ScyllaDB backend (`scylla://host:9042,host2:9042/keyspace?consistency=LOCAL_QUORUM&rf=3&ttl_days=90`),
//! for large clusters: a million flows, sub-minute ticks.
//!
//! Schema: `storage/schema/scylla/0007_layout.cql`, applied at start; a keyspace marked with a
//! newer schema version is refused, and so is one of versions 1–6 (layouts that never ran on a
//! node). Time series are partitioned by `(flow, UTC day)` and clustered by time, compacted in
//! daily windows (TWCS); retention is the keyspace's TTL (`ttl_days`, kept in
//! `flowwatch_meta`: a process started without it keeps it). The days holding data are
//! indexed per flow ([`days`]): reads and retention touch only those, whatever the range
//! asked, and every `day` is clamped, never wrapped. Writes go in unlogged batches of at most
//! 256 statements, one partition's each, 16 in flight. Traffic is appended (a row per batch
//! and second, summed when read), so adding never reads and a batch delivered again counts
//! once. Writes that must not race (tick epochs, a flow's latest status, config versions,
//! event ids, first-seen times) are lightweight transactions; ingest positions only move
//! forward (the position is the write's timestamp).
//!
//! Every statement runs through [`cql::Cql`]: on a node, [`cql::Driver`] (the `scylla` driver,
//! prepared statements at the configured consistency, token-aware, paged). No node runs on the
//! project's machines: the conformance suite, statement budgets and crash injection run on
//! `model::CqlModel` (feature `testsuite`), a model of the CQL semantics the backend relies on
//! (`storage/tests/scylla_model.rs`); `storage/tests/scylla.rs` runs the suite on a node
//! whenever `FLOWWATCH_SCYLLA_URI` names one.
//!
//! Layout: this file parses the URI, connects, applies the schema and prepares the statements;
//! each concern's trait is implemented in its own file: [`traffic`] (and retention), [`days`]
//! (the day index, batched writes), [`ticks`] (statuses, events, outbox), [`registry`],
//! [`config`], [`access`] (users, keys, audit), [`operator`] (silences, acknowledgements),
//! [`channels`] (notification channels, their delivery queue).

mod access;
mod channels;
mod config;
pub mod cql;
mod days;
mod events;
#[cfg(any(test, feature = "testsuite"))]
pub mod model;
mod operator;
mod registry;
mod ticks;
mod traffic;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};
use futures_util::future::try_join_all;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency;

use crate::error::{Error, Result};
use crate::keys::{status_code, status_from};
use crate::model::*;
use crate::to_i64;
use cql::{Bind, Cql, CqlValue, Driver, FromRow, Prepared, Values};
use days::day;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 7;

/// The tables (`CREATE TABLE IF NOT EXISTS`: applying them again is safe).
const SCHEMA: &str = include_str!("../schema/scylla/0007_layout.cql");

/// The tables whose rows live as long as the keyspace's retention (`ttl_days`), and how much
/// longer than the data they index (a day's index entry is written with its first row).
const RETAINED: [(&str, u32); 5] = [
    ("traffic", 0),
    ("ticks", 0),
    ("flow_days", 1),
    ("day_flows", 1),
    ("series_days", 1),
];

/// The most statements one batch of writes holds (a partition's rows, or index entries):
/// ScyllaDB warns of batches over 128 KiB and the driver refuses more than
/// [`cql::BATCH_LIMIT`] statements.
const STATEMENTS_PER_BATCH: usize = 256;

/// Batches (or statements) one call has in flight at most.
const CONCURRENT_WRITES: usize = 16;

/// Buckets of each LoB in the `flow_status` and `flows` tables (and of each day in
/// `day_flows`).
const BUCKETS: i32 = 16;

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
    /// Retention of traffic and ticks, in days (0: none), kept in the keyspace: `None` keeps
    /// what the keyspace has (none on a new one).
    pub ttl_days: Option<u32>,
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
            ttl_days: None,
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
                "ttl_days" => parsed.ttl_days = Some(number()?),
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

/// A stable bucket of a flow (FNV-1a), for the bucketed tables.
fn bucket(flow: &FlowId) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [&flow.country, &flow.lob, flow.kind.as_str(), &flow.name] {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % BUCKETS as u64) as i32
}

/// A stored JSON body read back.
fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(corrupt)
}

/// A stored type as the JSON body it is kept as.
fn body(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("stored types serialize")
}

/// Whether a lightweight transaction was applied (`[applied]` is its first column).
fn applied(rows: Vec<Values>) -> Result<bool> {
    match rows
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
    {
        Some(Some(CqlValue::Boolean(b))) => Ok(b),
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
        let insert = |table: &str, key: &str, then: &str| {
            let columns = format!("{TICK_VALUES}, start, country, lob, kind, name, {key}");
            let markers = vec!["?"; columns.split(", ").count()].join(", ");
            format!("INSERT INTO {table} ({columns}) VALUES ({markers}) {then}")
        };
        let select = format!("SELECT country, lob, kind, name, start, {TICK_VALUES}");
        TickStatements {
            insert: insert("ticks", "day", "IF NOT EXISTS"),
            update: format!(
                "UPDATE ticks SET {set} WHERE start = ? AND {FLOW_KEY} AND day = ? IF epoch <= ?"
            ),
            // The tick's order is the write's timestamp: a flow's status only moves forward,
            // without a transaction or a read.
            status_insert: insert("flow_status", "bucket", "USING TIMESTAMP ?"),
            read: format!(
                "{select} FROM ticks WHERE {FLOW_KEY} AND day IN ? AND start >= ? AND start < ?"
            ),
            statuses: format!("{select} FROM flow_status"),
        }
    }
}

/// The registry's columns.
const FLOWS: &str = "SELECT country, lob, kind, name, first_seen, partition FROM flows";

/// The reads of a table partitioned by (country, LoB, bucket) and clustered by (kind, name):
/// every row (a scan), or one bucket of a LoB (a country's LoBs are listed in `lobs`).
struct Scoped {
    all: Prepared,
    bucket: Prepared,
}

impl Scoped {
    async fn prepare(cql: &dyn Cql, select: &str) -> Result<Scoped> {
        Ok(Scoped {
            all: cql.prepare(select).await?,
            bucket: cql
                .prepare(&format!(
                    "{select} WHERE country = ? AND lob = ? AND bucket = ?"
                ))
                .await?,
        })
    }
}

/// Prepared statements.
struct Statements {
    days: days::DayIndex,
    events: events::EventStatements,
    traffic: traffic::TrafficStatements,
    traffic_expiry: traffic::Expiry,
    tick_expiry: traffic::Expiry,
    tick_insert: Prepared,
    tick_update: Prepared,
    status_insert: Prepared,
    read_ticks: Prepared,
    statuses: Scoped,
    flow_insert: Prepared,
    flow_lower: Prepared,
    flows: Scoped,
    flow_get: Prepared,
    flow_count: Prepared,
    lob_put: Prepared,
    lobs_of: Prepared,
    config_latest: Prepared,
    config_version: Prepared,
    config_insert: Prepared,
    user_upsert: Prepared,
    user_get: Prepared,
    user_delete: Prepared,
    users_all: Prepared,
    key_insert: Prepared,
    key_get: Prepared,
    key_delete: Prepared,
    user_key_insert: Prepared,
    user_keys: Prepared,
    user_key_delete: Prepared,
    user_keys_delete: Prepared,
    audit_insert: Prepared,
    audit_page: Prepared,
    silence_put: Prepared,
    silence_get: Prepared,
    silences_all: Prepared,
    flow_ack_put: Prepared,
    flow_acks_all: Prepared,
    published_get: Prepared,
    published_put: Prepared,
    channels: channels::ChannelStatements,
}

/// A ScyllaDB store: the backend's statements, run by a [`Cql`] (the driver on a node).
pub struct ScyllaStore {
    cql: Arc<dyn Cql>,
    st: Statements,
    parts: traffic::PartIds,
    /// The LoBs of each country listed in `lobs` by this process.
    lobs_seen: std::sync::Mutex<HashMap<String, HashSet<String>>>,
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
        // Lightweight transactions need vnodes: ScyllaDB 6.0 and later make tablets the
        // default. A node that does not know the option (before 6.0) is asked without it.
        let create = format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
            cfg.keyspace, cfg.replication_factor
        );
        let without_tablets = format!("{create} AND tablets = {{'enabled': false}}");
        if let Err(e) = session.query_unpaged(without_tablets, ()).await {
            if !e.to_string().to_ascii_lowercase().contains("tablets") {
                return Err(scylla_err(e));
            }
            session
                .query_unpaged(create, ())
                .await
                .map_err(scylla_err)?;
        }
        session
            .use_keyspace(&cfg.keyspace, false)
            .await
            .map_err(scylla_err)?;
        let driver = Driver::new(session, cfg.consistency);
        ScyllaStore::open(Arc::new(driver), cfg).await
    }

    /// The store on `cql`, a keyspace in use: applies the schema (upgrading one marked older,
    /// refusing one marked newer) and prepares every statement.
    pub async fn open(cql: Arc<dyn Cql>, cfg: &ScyllaUri) -> Result<ScyllaStore> {
        cql.schema("CREATE TABLE IF NOT EXISTS flowwatch_meta (key text PRIMARY KEY, value text)")
            .await?;
        let read = cql
            .prepare("SELECT value FROM flowwatch_meta WHERE key = ?")
            .await?;
        let on = cql.as_ref();
        let meta = |key: &'static str| async move {
            let rows: Vec<(String,)> = rows_of(on.execute(read, (key,).bind()).await?)?;
            Ok::<_, Error>(rows.into_iter().next().map(|(v,)| v))
        };
        let found: u32 = match meta("schema_version").await? {
            None => 0,
            Some(v) => v
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
        if (1..SCHEMA_VERSION).contains(&found) {
            return Err(Error::Invalid {
                what: format!(
                    "keyspace {} has schema version {found}, a layout that never ran on a node (its reads do not end): create a new keyspace for this flowwatch (schema version {SCHEMA_VERSION})",
                    cfg.keyspace
                ),
            });
        }
        for statement in schema_statements(SCHEMA) {
            cql.schema(&statement).await?;
        }
        let write = cql
            .prepare("INSERT INTO flowwatch_meta (key, value) VALUES (?, ?)")
            .await?;
        // Retention is the keyspace's: a process started without `ttl_days` keeps it.
        let kept: Option<u32> = meta("ttl_days").await?.and_then(|v| v.parse().ok());
        if let Some(days) = cfg.ttl_days.filter(|d| Some(*d) != kept) {
            for (table, extra) in RETAINED {
                let ttl = if days == 0 {
                    0
                } else {
                    u64::from(days + extra) * 86_400
                };
                cql.schema(&format!(
                    "ALTER TABLE {table} WITH default_time_to_live = {ttl}"
                ))
                .await?;
            }
            cql.execute(write, ("ttl_days", days.to_string()).bind())
                .await?;
        }
        cql.execute(write, ("schema_version", SCHEMA_VERSION.to_string()).bind())
            .await?;
        let st = Statements::prepare(cql.as_ref()).await?;
        Ok(ScyllaStore {
            cql,
            st,
            parts: traffic::PartIds::new(),
            lobs_seen: std::sync::Mutex::default(),
        })
    }

    /// The rows of `table`: all (a scan), or those of `scope` (every bucket of its LoB, or
    /// of each LoB its country has), read in parallel.
    async fn scoped<R: FromRow>(&self, table: &Scoped, scope: Option<Scope<'_>>) -> Result<Vec<R>> {
        let Some(scope) = scope else {
            return self.rows(&table.all, ()).await;
        };
        let lobs: Vec<String> = match scope.lob {
            Some(lob) => vec![lob.to_owned()],
            None => {
                let rows: Vec<(String,)> = self.rows(&self.st.lobs_of, (scope.country,)).await?;
                rows.into_iter().map(|(l,)| l).collect()
            }
        };
        let reads = lobs.iter().flat_map(|lob| {
            (0..BUCKETS).map(move |b| self.rows(&table.bucket, (scope.country, lob, b)))
        });
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// Lists the LoBs of `flows` in `lobs` (once per process each), so that a country's flows
    /// are found by its LoBs.
    async fn note_lobs<'f>(&self, flows: impl IntoIterator<Item = &'f FlowId>) -> Result<()> {
        let new: BTreeSet<(String, String)> = {
            let seen = self.lobs_seen.lock().expect("LoB cache");
            flows
                .into_iter()
                .filter(|f| !seen.get(&f.country).is_some_and(|l| l.contains(&f.lob)))
                .map(|f| (f.country.clone(), f.lob.clone()))
                .collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        let writes = new.iter().map(|(c, l)| (self.st.lob_put, (c, l).bind()));
        self.cql.batch(writes.collect()).await?;
        let mut seen = self.lobs_seen.lock().expect("LoB cache");
        for (country, lob) in new {
            seen.entry(country).or_default().insert(lob);
        }
        Ok(())
    }

    /// Runs a statement; the rows it answers.
    async fn exec(&self, ps: &Prepared, values: impl Bind) -> Result<Vec<Values>> {
        self.cql.execute(*ps, values.bind()).await
    }

    /// Runs a read; its rows, as `R`.
    async fn rows<R: FromRow>(&self, ps: &Prepared, values: impl Bind) -> Result<Vec<R>> {
        rows_of(self.exec(ps, values).await?)
    }
}

/// Runs `tasks` [`CONCURRENT_WRITES`] at a time; their outputs, in no particular order (the
/// first error stops the rest).
async fn bounded<T, F>(tasks: Vec<F>) -> Result<Vec<T>>
where
    F: std::future::Future<Output = Result<T>>,
{
    use futures_util::{StreamExt, TryStreamExt};
    futures_util::stream::iter(tasks)
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect()
        .await
}

/// Rows as `R`.
fn rows_of<R: FromRow>(rows: Vec<Values>) -> Result<Vec<R>> {
    rows.into_iter().map(R::from_row).collect()
}

impl Statements {
    async fn prepare(cql: &dyn Cql) -> Result<Statements> {
        let p = |text: String| async move { cql.prepare(&text).await };
        let ticks = TickStatements::new();
        Ok(Statements {
            days: days::DayIndex::prepare(cql).await?,
            events: events::EventStatements::prepare(cql).await?,
            traffic: traffic::TrafficStatements::prepare(cql).await?,
            traffic_expiry: traffic::Expiry::prepare(cql, "traffic", "second").await?,
            tick_expiry: traffic::Expiry::prepare(cql, "ticks", "start").await?,
            tick_insert: p(ticks.insert).await?,
            tick_update: p(ticks.update).await?,
            status_insert: p(ticks.status_insert).await?,
            read_ticks: p(ticks.read).await?,
            statuses: Scoped::prepare(cql, &ticks.statuses).await?,
            flow_insert: p("INSERT INTO flows (country, lob, bucket, kind, name, first_seen, partition) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS".into()).await?,
            flow_lower: p(format!("UPDATE flows SET first_seen = ? WHERE {FLOW_KEY} AND bucket = ? IF first_seen > ?")).await?,
            flows: Scoped::prepare(cql, FLOWS).await?,
            flow_get: p(format!("{FLOWS} WHERE {FLOW_KEY} AND bucket = ?")).await?,
            flow_count: p("SELECT count(*) FROM flows".into()).await?,
            lob_put: p("INSERT INTO lobs (k, country, lob) VALUES (0, ?, ?)".into()).await?,
            lobs_of: p("SELECT lob FROM lobs WHERE k = 0 AND country = ?".into()).await?,
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
            silence_put: p("INSERT INTO silences (k, id, body) VALUES (0, ?, ?)".into()).await?,
            silence_get: p("SELECT body FROM silences WHERE k = 0 AND id = ?".into()).await?,
            silences_all: p("SELECT body FROM silences WHERE k = 0".into()).await?,
            flow_ack_put: p("INSERT INTO flow_acks (k, country, lob, kind, name, body) VALUES (0, ?, ?, ?, ?, ?)".into()).await?,
            flow_acks_all: p("SELECT body FROM flow_acks WHERE k = 0".into()).await?,
            published_get: p("SELECT id FROM published_incidents WHERE id = ?".into()).await?,
            published_put: p("INSERT INTO published_incidents (id, at) VALUES (?, ?)".into()).await?,
            channels: channels::ChannelStatements::prepare(cql).await?,
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
        assert_eq!((u.replication_factor, u.ttl_days), (3, Some(90)));
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
        let s = schema_statements(SCHEMA);
        assert_eq!(s.len(), 27);
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
        // Every retained table is one the schema creates.
        for (table, _) in RETAINED {
            let create = format!("CREATE TABLE IF NOT EXISTS {table} (");
            assert!(s.iter().any(|s| s.starts_with(&create)), "{table}");
        }
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        let f = |n: &str| FlowId::new("CZ", "GSM", FlowKind::Input, n).unwrap();
        assert_eq!(bucket(&f("A")), bucket(&f("A")));
        let used: std::collections::HashSet<i32> =
            (0..200).map(|i| bucket(&f(&format!("F{i}")))).collect();
        assert_eq!(used.len(), BUCKETS as usize);
    }
}

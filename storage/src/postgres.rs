//! The PostgreSQL backend (`postgres://…`): for mid-size operators and the shared store of the
//! cluster tests.
//!
//! The schema lives in `storage/schema/postgres/`; it is applied at start under an advisory
//! lock, and a database migrated by a newer flowwatch is refused. Flows get a compact numeric
//! id (`flow_ids`) that every time series is keyed by: `(flow_id, time)` primary keys make a
//! flow's range one index range scan. Batches go in as one `UNNEST` statement each; ticks carry
//! the writer's epoch and the upsert refuses a lower one in its `WHERE`. The reads of one
//! country or LoB go through the unique index of `flow_ids` on (country, lob, kind, name).
//!
//! Layout: this file connects, migrates and keeps the flow ids; each concern's trait is
//! implemented in its own file: [`traffic`] (and retention), [`ticks`] (statuses, events,
//! outbox), [`registry`], [`config`], [`access`] (users, keys, audit), [`operator`] (silences,
//! acknowledgements), [`channels`] (notification channels, their delivery queue).

mod access;
mod channels;
mod config;
mod operator;
mod registry;
mod ticks;
mod traffic;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};
use tokio::sync::Mutex;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls, Row};

use crate::error::{Error, Result};
use crate::keys::{decode_cursor, status_code, status_from};
use crate::model::*;
use crate::to_i64;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 6;

const MIGRATIONS: [&str; 6] = [
    include_str!("../schema/postgres/0001_init.sql"),
    include_str!("../schema/postgres/0002_outbox_ingest.sql"),
    include_str!("../schema/postgres/0003_keys_audit.sql"),
    include_str!("../schema/postgres/0004_band.sql"),
    include_str!("../schema/postgres/0005_operator.sql"),
    include_str!("../schema/postgres/0006_channels.sql"),
];

/// Connections kept open.
const CONNECTIONS: usize = 4;

/// How long a connection may take to open, unless the URI says (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL store.
pub struct PostgresStore {
    connections: Vec<Mutex<Client>>,
    next: AtomicUsize,
    ids: StdMutex<HashMap<FlowId, i64>>,
}

fn pg(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Backend {
            backend: "postgres",
            detail: format!("{}: {}", db.code().code(), db.message()),
            source: Box::new(e),
        },
        None => Error::backend("postgres", e),
    }
}

fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        place: "postgres".into(),
        detail: detail.to_string(),
    }
}

/// What a `postgres://` (or `postgresql://`) URI says: the driver's connection settings.
#[derive(Debug, Clone)]
pub struct PostgresUri {
    /// Boxed: it is large, and [`crate::Location`] holds it beside small ones.
    config: Box<tokio_postgres::Config>,
}

impl PostgresUri {
    /// Parses `postgres://user[:password]@host[:port][,host[:port]…]/db[?param=value…]` (the
    /// libpq URI form); a connection times out after 5 s unless `connect_timeout` says.
    pub fn parse(uri: &str) -> Result<PostgresUri> {
        let invalid = |why: String| Error::InvalidUri {
            uri: crate::redact_uri(uri),
            why,
        };
        let mut config: tokio_postgres::Config =
            uri.parse().map_err(|e| invalid(format!("{e}")))?;
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(invalid("no host".into()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(PostgresUri {
            config: Box::new(config),
        })
    }

    /// The servers it names as `host:port`, comma-separated (what a connection error names).
    pub fn servers(&self) -> String {
        let ports = self.config.get_ports();
        let hosts: Vec<String> = match self.config.get_hosts() {
            [] => self
                .config
                .get_hostaddrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
            hosts => hosts
                .iter()
                .map(|h| match h {
                    Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    Host::Unix(dir) => dir.display().to_string(),
                })
                .collect(),
        };
        hosts
            .iter()
            .enumerate()
            .map(|(n, host)| {
                let port = ports.get(n).or(ports.first()).copied().unwrap_or(5432);
                format!("{host}:{port}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The database (the user's name when the URI names none, as libpq does).
    fn database(&self) -> &str {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres")
    }
}

impl PostgresStore {
    /// Connects to `uri` (`postgres://user@host:port/db`) and migrates the schema.
    pub async fn connect(uri: &str) -> Result<PostgresStore> {
        PostgresStore::connect_to(&PostgresUri::parse(uri)?).await
    }

    /// Connects to the server `uri` names and migrates the schema. A server that cannot be
    /// reached is an [`Error::Connect`] naming it; one that answers with an error (an unknown
    /// database, a refused login) an [`Error::Backend`].
    pub async fn connect_to(uri: &PostgresUri) -> Result<PostgresStore> {
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let (client, connection) =
                uri.config
                    .connect(NoTls)
                    .await
                    .map_err(|e| match e.as_db_error() {
                        Some(_) => pg(e),
                        None => Error::connect("postgres", uri.servers(), e),
                    })?;
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
        store.migrate(uri.database()).await?;
        Ok(store)
    }

    async fn client(&self) -> tokio::sync::MutexGuard<'_, Client> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[i].lock().await
    }

    async fn migrate(&self, database: &str) -> Result<()> {
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
            let place = format!("database {database}");
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

const ORDER_BY_FLOW: &str = "ORDER BY f.country COLLATE \"C\", f.lob COLLATE \"C\", f.kind COLLATE \"C\", f.name COLLATE \"C\"";

/// Which flows a read joined with `flow_ids f` takes.
#[derive(Debug, Clone, Copy)]
enum Which<'a> {
    /// Every flow.
    All,
    /// A country's or a LoB's: a range of the unique index of `flow_ids`.
    In(Scope<'a>),
    /// One flow: a point of that index.
    One(&'a FlowId),
}

impl Which<'_> {
    /// `select` (joining `flow_ids f`) restricted to these flows, ordered by flow, and its
    /// parameters.
    fn sql(&self, select: &str) -> (String, Vec<&str>) {
        let (condition, params) = match *self {
            Which::All => ("", vec![]),
            Which::In(Scope { country, lob: None }) => ("WHERE f.country = $1", vec![country]),
            Which::In(Scope {
                country,
                lob: Some(lob),
            }) => ("WHERE f.country = $1 AND f.lob = $2", vec![country, lob]),
            Which::One(f) => (
                "WHERE f.country = $1 AND f.lob = $2 AND f.kind = $3 AND f.name = $4",
                vec![&*f.country, &*f.lob, f.kind.as_str(), &*f.name],
            ),
        };
        (format!("{select} {condition} {ORDER_BY_FLOW}"), params)
    }
}

impl PostgresStore {
    /// The rows of `select` (joining `flow_ids f`) of the flows `which` names, ordered by flow.
    async fn rows_of(&self, select: &str, which: Which<'_>) -> Result<Vec<Row>> {
        let (sql, params) = which.sql(select);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let c = self.client().await;
        c.query(&sql, &params).await.map_err(pg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsuite::TestDatabase;

    /// The plan of `sql` with sequential scans priced out.
    async fn plan(c: &Client, sql: &str, params: &[&str]) -> String {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        c.batch_execute("SET enable_seqscan = off").await.unwrap();
        let rows = c.query(&format!("EXPLAIN {sql}"), &params).await.unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether `plan` finds the flows by the country in an index of `flow_ids`, and every
    /// table through an index: its cost follows the flows read, not the flows stored.
    fn by_index(plan: &str) -> bool {
        let by_country = plan.lines().any(|l| {
            l.contains("Index Cond: (country = ") || l.contains("Index Cond: ((country = ")
        });
        by_country && !plan.contains("Seq Scan")
    }

    /// The reads of one flow, one country and one LoB find their rows through indexes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn point_reads_use_indexes() {
        let db = TestDatabase::new();
        let store = PostgresStore::connect(&db.uri()).await.unwrap();
        let flow = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
        let c = store.client().await;
        for select in [registry::REGISTRY.to_owned(), ticks::status_select()] {
            for which in [
                Which::One(&flow),
                Which::In(Scope::country("CZ")),
                Which::In(Scope::lob("CZ", "GSM")),
            ] {
                let (sql, params) = which.sql(&select);
                let plan = plan(&c, &sql, &params).await;
                assert!(by_index(&plan), "{which:?}: {sql}\n{plan}");
            }
            // The full reads (dashboard, tree) may walk everything: the check tells.
            let (sql, _) = Which::All.sql(&select);
            let plan = plan(&c, &sql, &[]).await;
            assert!(!by_index(&plan), "{sql}\n{plan}");
        }
    }
}

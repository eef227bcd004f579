//! [`CqlModel`]: the CQL semantics the ScyllaDB backend relies on, in memory, so the
//! conformance suite can run the backend where no node can run. It interprets the subset of
//! CQL the backend uses as a node would — last write wins by timestamp, tombstones, TTLs,
//! lightweight transactions, token order — and refuses what a node refuses to prepare or run,
//! so a statement that would fail on a cluster fails here too. It counts the work a node would
//! do (requests, statements, rows read, transactions) and can inject crashes. A test
//! instrument, never a backend a URI can select.
//!
//! Layout: this file holds the model, its [`Cql`] implementation and statement execution
//! (`State`); `model/parse.rs` the tokenizer and recursive-descent parser (`Parser`);
//! `model/check.rs` the checker that types a parsed statement against the schema (`Checker`)
//! into a prepared `Statement`; `model/statement.rs` prepared statements and how they run
//! (values bound, rows read, mutations planned, conditions of lightweight transactions);
//! `model/store.rs` the stored data (`Table`, `Partition`, `Row`, `Cell`), how writes and
//! tombstones merge, values and their order; `model/tests.rs` and `model/tests/writes.rs` the
//! tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::cql::{BATCH_LIMIT, Cql, Prepared, Values};
use crate::error::{Error, Result};

/// A node's refusal: `Invalid query: ` and what it says.
macro_rules! invalid {
    ($($arg:tt)*) => { format!("Invalid query: {}", format_args!($($arg)*)) };
}

mod check;
mod parse;
mod statement;
mod store;
#[cfg(test)]
mod tests;

use check::prepare;
use parse::{Ddl, Parser};
use statement::{Cond, Kind, Statement};
use store::{Mutation, Partition, Table};

/// What a statement fails with inside the model: the node's message, without the statement.
type Fallible<T> = std::result::Result<T, String>;

/// The longest TTL a node accepts (20 years).
const MAX_TTL: i64 = 630_720_000;

/// An in-memory model of one ScyllaDB keyspace that runs [`Cql`] statements as a node would.
/// Clone is a handle on the same data (Arc inside): a store "reopened" on a clone sees the
/// same keyspace.
#[derive(Clone, Default)]
pub struct CqlModel {
    state: Arc<Mutex<State>>,
}

impl CqlModel {
    /// An empty keyspace.
    pub fn new() -> CqlModel {
        CqlModel::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every statement is checked before it changes anything, so a panic elsewhere while
        // the lock was held left no half-applied statement behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests since the last `reset_counts` (each `execute` or `batch` call is one;
    /// `schema` and `prepare` are not counted).
    pub fn requests(&self) -> u64 {
        self.state().counts.requests
    }

    /// Statements since the last reset: an execute is one, a batch counts each of its
    /// statements.
    pub fn statements(&self) -> u64 {
        self.state().counts.statements
    }

    /// Rows read by SELECTs since the last reset: every live row a read visited (a LIMIT stops
    /// the visit; rows ALLOW FILTERING skipped count as read).
    pub fn rows_read(&self) -> u64 {
        self.state().counts.rows_read
    }

    /// Lightweight transactions (conditional statements) since the last reset.
    pub fn transactions(&self) -> u64 {
        self.state().counts.transactions
    }

    /// Sets every counter to zero.
    pub fn reset_counts(&self) {
        self.state().counts = Counts::default();
    }

    /// The clock TTLs expire by, in Unix seconds: the wall clock unless set.
    pub fn set_now(&self, unix_seconds: i64) {
        self.state().now = Some(unix_seconds);
    }

    /// Crash injection: after `n` more requests succeed, the next one fails with an error; it
    /// is applied first if `applied` (a write that landed but whose answer was lost: a
    /// timeout, or a crash after the write), not applied otherwise. Every later request fails
    /// too (the process is "dead") until [`CqlModel::recover`]. An applied-then-failed batch
    /// applies only the statements on the partition of its first statement (an unlogged
    /// batch is atomic per partition only).
    pub fn crash_after(&self, n: u64, applied: bool) {
        self.state().crash = Some(Crash { after: n, applied });
    }

    /// Requests succeed again (a restarted process on the same data).
    pub fn recover(&self) {
        let mut s = self.state();
        s.dead = false;
        s.crash = None;
    }

    /// Live rows of `table` now (expired and deleted ones excluded).
    pub fn live_rows(&self, table: &str) -> usize {
        self.inspect(table, |t, now| {
            t.data.values().map(|p| p.live_rows(now)).sum()
        })
    }

    /// Tombstones `table` holds now: each cell tombstone (a null written or a cell deleted),
    /// row tombstone, range tombstone and partition tombstone counts one. (Expired TTL cells
    /// are not tombstones here.)
    pub fn tombstones(&self, table: &str) -> usize {
        self.inspect(table, |t, _| {
            t.data.values().map(Partition::tombstones).sum()
        })
    }

    /// The columns `table` has now (none if there is no such table).
    pub fn columns(&self, table: &str) -> Vec<String> {
        let s = self.state();
        let table = s.tables.get(table);
        table.map_or_else(Vec::new, |t| t.columns.keys().cloned().collect())
    }

    /// The number of partitions of `table` with at least one live row, and the most live rows
    /// one partition holds.
    pub fn partitions(&self, table: &str) -> (usize, usize) {
        self.inspect(table, |t, now| {
            let sizes = t.data.values().map(|p| p.live_rows(now)).filter(|&n| n > 0);
            sizes.fold((0, 0), |(count, most), n| (count + 1, most.max(n)))
        })
    }

    fn inspect<T: Default>(&self, table: &str, look: impl FnOnce(&Table, i64) -> T) -> T {
        let s = self.state();
        let now = s.now_secs();
        s.tables
            .get(table)
            .map_or_else(T::default, |t| look(t, now))
    }
}

#[async_trait]
impl Cql for CqlModel {
    async fn schema(&self, cql: &str) -> Result<()> {
        self.state().schema(cql).map_err(|m| failure(m, cql))
    }

    async fn prepare(&self, cql: &str) -> Result<Prepared> {
        let mut s = self.state();
        let statement = prepare(&s.tables, cql).map_err(|m| failure(m, cql))?;
        s.statements.push(Arc::new(statement));
        Ok(Prepared(s.statements.len() - 1))
    }

    async fn execute(&self, statement: Prepared, values: Values) -> Result<Vec<Values>> {
        self.state().request(|s, _| {
            let st = s.statement(statement)?;
            s.run(&st, &values).map_err(|m| failure(m, &st.cql))
        })
    }

    async fn batch(&self, statements: Vec<(Prepared, Values)>) -> Result<()> {
        if statements.len() > BATCH_LIMIT {
            // The driver refuses it before sending: no request reaches the node.
            return Err(Error::backend(
                "scylla",
                format!(
                    "TooManyQueriesInBatchStatement: a batch holds at most {BATCH_LIMIT} statements, this one {}",
                    statements.len()
                ),
            ));
        }
        self.state().request(|s, lost| s.batch(&statements, lost))
    }
}

fn failure(message: String, cql: &str) -> Error {
    Error::backend("scylla", format!("{message} (statement: {cql})"))
}

fn crashed(what: &str) -> Error {
    Error::backend("scylla", format!("{what} (crash injected)"))
}

fn wall_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Counts {
    requests: u64,
    statements: u64,
    rows_read: u64,
    transactions: u64,
}

struct Crash {
    after: u64,
    applied: bool,
}

#[derive(Default)]
struct State {
    tables: BTreeMap<String, Table>,
    statements: Vec<Arc<Statement>>,
    counts: Counts,
    now: Option<i64>,
    last_timestamp: i64,
    crash: Option<Crash>,
    dead: bool,
}

impl State {
    fn now_secs(&self) -> i64 {
        self.now.unwrap_or_else(|| wall_micros() / 1_000_000)
    }

    /// A write timestamp in microseconds: the wall clock, strictly increasing per request so
    /// two writes never tie by accident.
    fn next_timestamp(&mut self) -> i64 {
        self.last_timestamp = wall_micros().max(self.last_timestamp.saturating_add(1));
        self.last_timestamp
    }

    fn table(&self, name: &str) -> Fallible<&Table> {
        self.tables.get(name).ok_or_else(|| unconfigured(name))
    }

    fn statement(&self, p: Prepared) -> Result<Arc<Statement>> {
        let unknown = || Error::backend("scylla", format!("unknown prepared statement {}", p.0));
        self.statements.get(p.0).cloned().ok_or_else(unknown)
    }

    /// One request to the node: counted, and where crash injection strikes. `run` is told
    /// whether the crash takes this request after it is applied (its answer lost).
    fn request<T>(&mut self, run: impl FnOnce(&mut State, bool) -> Result<T>) -> Result<T> {
        self.counts.requests += 1;
        if self.dead {
            return Err(crashed("no connection: the node is down"));
        }
        let lost = match self.crash {
            Some(Crash { after: 0, applied }) => {
                self.crash = None;
                self.dead = true;
                if !applied {
                    return Err(crashed(
                        "the connection broke before the request was applied",
                    ));
                }
                true
            }
            _ => false,
        };
        let result = run(self, lost);
        if lost {
            return Err(crashed(
                "timed out waiting for the answer; the request was applied",
            ));
        }
        if result.is_ok()
            && let Some(c) = &mut self.crash
        {
            c.after = c.after.saturating_sub(1);
        }
        result
    }

    fn schema(&mut self, cql: &str) -> Fallible<()> {
        match Parser::new(cql)?.schema()? {
            Ddl::Create(table, if_not_exists) => match self.tables.contains_key(&table.name) {
                true if if_not_exists => Ok(()),
                true => Err(invalid!("table {} already exists", table.name)),
                false => {
                    self.tables.insert(table.name.clone(), table);
                    Ok(())
                }
            },
            Ddl::Add(name, column, ty) => {
                let table = self
                    .tables
                    .get_mut(&name)
                    .ok_or_else(|| unconfigured(&name))?;
                if table.columns.contains_key(&column) {
                    return Err(invalid!("table {name} already has a column {column}"));
                }
                table.columns.insert(column, ty);
                Ok(())
            }
            Ddl::Options(name, options) => {
                let table = self
                    .tables
                    .get_mut(&name)
                    .ok_or_else(|| unconfigured(&name))?;
                if options.clustering_order.is_some() {
                    return Err(invalid!(
                        "the clustering order of a table cannot be altered"
                    ));
                }
                table.default_ttl = options.default_ttl.unwrap_or(table.default_ttl);
                Ok(())
            }
            Ddl::Drop(name, if_exists) => match self.tables.remove(&name) {
                None if !if_exists => Err(unconfigured(&name)),
                _ => Ok(()),
            },
            Ddl::Truncate(name) => {
                let table = self
                    .tables
                    .get_mut(&name)
                    .ok_or_else(|| unconfigured(&name))?;
                table.data.clear();
                Ok(())
            }
            Ddl::Ignored => Ok(()),
            Ddl::Dml => {
                // A write sent unprepared (the schema version mark): run, but not counted.
                let statement = prepare(&self.tables, cql)?;
                let counts = self.counts;
                let result = self.run(&statement, &Vec::new()).map(drop);
                self.counts = counts;
                result
            }
        }
    }

    fn run(&mut self, st: &Statement, values: &Values) -> Fallible<Vec<Values>> {
        let values = st.bind(values)?;
        let now = self.now_secs();
        match &st.kind {
            Kind::Select(q) => {
                let (rows, read) = q.run(self.table(&q.table)?, &values, now)?;
                self.counts.statements += 1;
                self.counts.rows_read += read;
                Ok(rows)
            }
            Kind::Write(w) => {
                let ts = self.next_timestamp();
                let table = self
                    .tables
                    .get_mut(&w.table)
                    .ok_or_else(|| unconfigured(&w.table))?;
                let mutations = w.plan(table, &values, ts, now)?;
                self.counts.statements += 1;
                if matches!(w.cond, Cond::None) {
                    mutations.into_iter().for_each(|m| table.apply(m));
                    return Ok(Vec::new());
                }
                // The mutex serialises transactions as Paxos would.
                let (applied, answer) = w.condition(table, &values, now)?;
                self.counts.transactions += 1;
                if applied {
                    mutations.into_iter().for_each(|m| table.apply(m));
                }
                Ok(vec![answer])
            }
        }
    }

    /// Runs a batch; if its answer will be `lost` to a crash, only the first statement's
    /// partition is applied (an unlogged batch is atomic per partition only).
    fn batch(&mut self, statements: &[(Prepared, Values)], lost: bool) -> Result<()> {
        let now = self.now_secs();
        let ts = self.next_timestamp();
        // A node checks the whole batch before applying any of it.
        let mut planned = Vec::new();
        for (p, values) in statements {
            let st = self.statement(*p)?;
            let mutations = self.batched(&st, values, ts, now);
            planned.extend(mutations.map_err(|m| failure(m, &st.cql))?);
        }
        let first = planned.first().map(|(t, m)| (t.clone(), m.pk.clone()));
        if lost && let Some((table, pk)) = first {
            planned.retain(|(t, m)| *t == table && m.pk == pk);
        }
        self.counts.statements += statements.len() as u64;
        for (table, m) in planned {
            if let Some(t) = self.tables.get_mut(&table) {
                t.apply(m);
            }
        }
        Ok(())
    }

    fn batched(
        &self,
        st: &Statement,
        values: &Values,
        ts: i64,
        now: i64,
    ) -> Fallible<Vec<(String, Mutation)>> {
        let Kind::Write(w) = &st.kind else {
            return Err(invalid!(
                "only INSERT, UPDATE and DELETE statements are allowed in a batch"
            ));
        };
        if !matches!(w.cond, Cond::None) {
            return Err(invalid!(
                "conditional statements are not allowed in an unlogged batch"
            ));
        }
        let values = st.bind(values)?;
        let mutations = w.plan(self.table(&w.table)?, &values, ts, now)?;
        Ok(mutations
            .into_iter()
            .map(|m| (w.table.clone(), m))
            .collect())
    }
}

fn unconfigured(table: &str) -> String {
    invalid!("unconfigured table {table}")
}

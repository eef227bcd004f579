//! [`CqlModel`]: the CQL semantics the ScyllaDB backend relies on, in memory, so the
//! conformance suite can run the backend where no node can run. It interprets the subset of
//! CQL the backend uses as a node would — last write wins by timestamp, tombstones, TTLs,
//! lightweight transactions, token order — and refuses what a node refuses to prepare or run,
//! so a statement that would fail on a cluster fails here too. It counts the work a node would
//! do (requests, statements, rows read, transactions) and can inject crashes. A test
//! instrument, never a backend a URI can select.
//!
//! Layout: the model and its [`Cql`] implementation; statement execution (`State`); the
//! stored data (`Table`, `Partition`, `Row`, `Cell`) and how writes and tombstones merge;
//! values and their order; the checker that types a parsed statement against the schema
//! (`Checker`); the tokenizer and recursive-descent parser (`Parser`); tests.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use scylla::value::CqlTimestamp;

use super::cql::{BATCH_LIMIT, Cql, CqlValue, Prepared, Values};
use crate::error::{Error, Result};

/// A node's refusal: `Invalid query: ` and what it says.
macro_rules! invalid {
    ($($arg:tt)*) => { format!("Invalid query: {}", format_args!($($arg)*)) };
}

/// What a statement fails with inside the model: the node's message, without the statement.
type Fallible<T> = std::result::Result<T, String>;

/// Bound values after the type check, normalised to their columns' types.
type Binds = [Option<CqlValue>];

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
    /// `schema`, `columns` and `prepare` are not counted).
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

    async fn columns(&self, table: &str) -> Result<Vec<String>> {
        let s = self.state();
        let table = s.tables.get(table);
        Ok(table.map_or_else(Vec::new, |t| t.columns.keys().cloned().collect()))
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

/// A prepared statement: its text, the type of each bind marker, what it does.
struct Statement {
    cql: String,
    markers: Vec<Marker>,
    kind: Kind,
}

/// What one bind marker takes.
#[derive(Clone)]
struct Marker {
    name: String,
    ty: Ty,
    list: bool,
}

enum Kind {
    Select(Select),
    Write(Write),
}

#[derive(Clone, Debug)]
enum Term {
    Marker(usize),
    Const(Option<CqlValue>),
}

/// The values of an `IN`.
#[derive(Clone, Debug)]
enum Many {
    Marker(usize),
    Terms(Vec<Term>),
}

#[derive(Clone, Debug)]
enum KeyPart {
    One(Term),
    In(Many),
}

/// One side of a clustering slice: from clustering column `start`, a tuple of values.
#[derive(Debug)]
struct TermBound {
    start: usize,
    terms: Vec<Term>,
    inclusive: bool,
}

#[derive(Clone, Debug)]
enum Rel {
    Cmp(Op, Term),
    In(Many),
}

/// A restriction applied to each row read (ALLOW FILTERING, or a key restriction a node
/// cannot use to find rows).
#[derive(Clone, Debug)]
struct Restriction {
    column: String,
    rel: Rel,
}

/// The rows a statement reaches: partitions (all of them if `None`), a clustering slice and
/// filters.
#[derive(Debug, Default)]
struct Where {
    partition: Option<Vec<KeyPart>>,
    eq: Vec<Term>,
    lower: Option<TermBound>,
    upper: Option<TermBound>,
    filters: Vec<Restriction>,
}

struct Select {
    table: String,
    count: bool,
    columns: Vec<String>,
    target: Where,
    reversed: bool,
    per_partition_limit: Option<Term>,
    limit: Option<Term>,
}

struct Write {
    table: String,
    target: Where,
    action: Action,
    ttl: Option<Term>,
    timestamp: Option<Term>,
    cond: Cond,
}

enum Action {
    /// INSERT (with a row marker), UPDATE, or DELETE of named cells (nulls, no marker).
    Upsert {
        marker: bool,
        cells: Vec<(String, Term)>,
    },
    /// DELETE of the rows `target` designates.
    Delete,
}

enum Cond {
    None,
    NotExists,
    Exists,
    Columns(Vec<(String, Op, Term)>),
}

impl Statement {
    /// The bound values, checked as the driver checks them against the prepared metadata.
    fn bind(&self, values: &Values) -> Fallible<Vec<Option<CqlValue>>> {
        if values.len() != self.markers.len() {
            return Err(invalid!(
                "the statement has {} bind markers but {} values were bound",
                self.markers.len(),
                values.len()
            ));
        }
        self.markers
            .iter()
            .zip(values)
            .map(|(m, v)| m.bind(v.clone()))
            .collect()
    }
}

impl Marker {
    fn bind(&self, value: Option<CqlValue>) -> Fallible<Option<CqlValue>> {
        let Some(value) = value else { return Ok(None) };
        if !self.list {
            return self.one(value).map(Some);
        }
        let CqlValue::List(items) = value else {
            return Err(self.mismatch(&value));
        };
        let items = items.into_iter().map(|v| self.one(v));
        Ok(Some(CqlValue::List(items.collect::<Fallible<_>>()?)))
    }

    fn one(&self, value: CqlValue) -> Fallible<CqlValue> {
        if !self.ty.accepts(&value) {
            return Err(self.mismatch(&value));
        }
        self.ty.normalize(value)
    }

    fn mismatch(&self, value: &CqlValue) -> String {
        let ty = self.ty.name();
        let ty = if self.list {
            format!("list<{ty}>")
        } else {
            ty.to_owned()
        };
        invalid!(
            "{} is of type {ty}, but the bound value is {value:?}",
            self.name
        )
    }
}

fn value(t: &Term, v: &Binds) -> Option<CqlValue> {
    match t {
        Term::Marker(i) => v.get(*i).cloned().flatten(),
        Term::Const(c) => c.clone(),
    }
}

fn required(t: &Term, v: &Binds, column: &str) -> Fallible<CqlValue> {
    value(t, v).ok_or_else(|| invalid!("Invalid null value in condition for column {column}"))
}

fn values_of(m: &Many, v: &Binds, column: &str) -> Fallible<Vec<CqlValue>> {
    match m {
        Many::Marker(i) => match v.get(*i) {
            Some(Some(CqlValue::List(items))) => Ok(items.clone()),
            _ => Err(invalid!(
                "Invalid null value for IN restriction on {column}"
            )),
        },
        Many::Terms(terms) => terms.iter().map(|t| required(t, v, column)).collect(),
    }
}

/// A `LIMIT` or `PER PARTITION LIMIT`: strictly positive.
fn positive_limit(t: &Option<Term>, v: &Binds, what: &str) -> Fallible<Option<usize>> {
    let Some(t) = t else { return Ok(None) };
    match value(t, v) {
        Some(CqlValue::Int(n)) if n > 0 => Ok(usize::try_from(n).ok()),
        Some(CqlValue::Int(_)) => Err(invalid!("{what} must be strictly positive")),
        _ => Err(invalid!("Invalid null value of {what}")),
    }
}

/// The rows, partitions and filters of a statement, its values bound.
struct Target {
    partitions: Option<Vec<Vec<CqlValue>>>,
    slice: Slice,
    filters: Vec<Filter>,
}

struct Filter {
    column: String,
    test: Test,
}

enum Test {
    Cmp(Op, CqlValue),
    In(Vec<CqlValue>),
}

impl Where {
    fn resolve(&self, table: &Table, v: &Binds) -> Fallible<Target> {
        let partitions = match &self.partition {
            Some(parts) => Some(partition_keys(table, parts, v)?),
            None => None,
        };
        let eq = self
            .eq
            .iter()
            .zip(&table.clustering)
            .map(|(t, c)| required(t, v, c));
        let bound = |b: &Option<TermBound>| match b {
            Some(b) => b.resolve(table, v).map(Some),
            None => Ok(None),
        };
        let slice = Slice {
            eq: eq.collect::<Fallible<_>>()?,
            lower: bound(&self.lower)?,
            upper: bound(&self.upper)?,
        };
        let filters = self
            .filters
            .iter()
            .map(|r| r.resolve(v))
            .collect::<Fallible<_>>()?;
        Ok(Target {
            partitions,
            slice,
            filters,
        })
    }
}

impl TermBound {
    fn resolve(&self, table: &Table, v: &Binds) -> Fallible<SliceBound> {
        let columns = table.clustering.iter().skip(self.start);
        let values = self
            .terms
            .iter()
            .zip(columns)
            .map(|(t, c)| required(t, v, c));
        Ok(SliceBound {
            start: self.start,
            values: values.collect::<Fallible<_>>()?,
            inclusive: self.inclusive,
        })
    }
}

impl Restriction {
    fn resolve(&self, v: &Binds) -> Fallible<Filter> {
        let test = match &self.rel {
            Rel::Cmp(op, t) => Test::Cmp(*op, required(t, v, &self.column)?),
            Rel::In(m) => Test::In(values_of(m, v, &self.column)?),
        };
        Ok(Filter {
            column: self.column.clone(),
            test,
        })
    }
}

impl Filter {
    /// A null never matches a filter.
    fn admits(&self, current: Option<CqlValue>) -> bool {
        let Some(current) = current else { return false };
        match &self.test {
            Test::Cmp(op, v) => op.holds(compare(&current, v)),
            Test::In(vs) => vs.iter().any(|v| compare(&current, v) == Ordering::Equal),
        }
    }
}

/// The most partition keys one statement may name (ScyllaDB's default).
const MAX_PARTITION_KEYS: usize = 100;

/// Every partition key the restrictions name (the cartesian product of their `IN`s).
fn partition_keys(table: &Table, parts: &[KeyPart], v: &Binds) -> Fallible<Vec<Vec<CqlValue>>> {
    let mut keys = vec![Vec::new()];
    for (part, column) in parts.iter().zip(&table.partition) {
        let choices = match part {
            KeyPart::One(t) => vec![required(t, v, column)?],
            KeyPart::In(m) => values_of(m, v, column)?,
        };
        keys = keys
            .iter()
            .flat_map(|k| {
                choices
                    .iter()
                    .map(move |c| [k.clone(), vec![c.clone()]].concat())
            })
            .collect();
    }
    // ScyllaDB refuses more keys than `max_partition_key_restrictions_per_query` (100 by
    // default).
    if keys.len() > MAX_PARTITION_KEYS {
        return Err(invalid!(
            "cartesian product of IN list {} is greater than max_partition_key_restrictions_per_query={}",
            keys.len(),
            MAX_PARTITION_KEYS
        ));
    }
    // A node refuses an empty partition key (a single-column key of '' or an empty blob).
    if table.partition.len() == 1 && keys.iter().any(|k| k.iter().all(|c| encode(c).is_empty())) {
        return Err(invalid!("Key may not be empty"));
    }
    Ok(keys)
}

impl Select {
    /// The answer and how many live rows the read visited.
    fn run(&self, table: &Table, v: &Binds, now: i64) -> Fallible<(Vec<Values>, u64)> {
        table.still_has(&self.columns)?;
        let target = self.target.resolve(table, v)?;
        let limit = positive_limit(&self.limit, v, "LIMIT")?;
        let per_partition = positive_limit(&self.per_partition_limit, v, "PER PARTITION LIMIT")?;
        let partitions: Vec<&Partition> = match &target.partitions {
            // Partitions come in token order, an IN's as a full scan's.
            Some(keys) => {
                let ids: BTreeSet<PartitionId> = keys.iter().map(|k| partition_id(k)).collect();
                ids.iter().filter_map(|id| table.data.get(id)).collect()
            }
            None => table.data.values().collect(),
        };
        let (mut rows, mut read, mut counted) = (Vec::new(), 0, 0);
        'partitions: for p in partitions {
            let mut taken = 0;
            for (ck, row) in p.slice(table, &target.slice, self.reversed) {
                if !row.is_live(now) {
                    continue;
                }
                read += 1;
                let cell = |c: &str| table.value_of(c, p, ck, row, now);
                if !target.filters.iter().all(|f| f.admits(cell(&f.column))) {
                    continue;
                }
                taken += 1;
                if self.count {
                    counted += 1;
                } else {
                    rows.push(self.columns.iter().map(|c| cell(c)).collect());
                }
                if limit.is_some_and(|l| rows.len() >= l) {
                    break 'partitions;
                }
                if per_partition.is_some_and(|l| taken >= l) {
                    break;
                }
            }
        }
        if self.count {
            rows = vec![vec![Some(CqlValue::BigInt(counted))]];
        }
        Ok((rows, read))
    }
}

impl Write {
    /// The mutations this write makes at timestamp `ts` (unless it says its own).
    fn plan(&self, table: &Table, v: &Binds, ts: i64, now: i64) -> Fallible<Vec<Mutation>> {
        if let Action::Upsert { cells, .. } = &self.action {
            table.still_has(cells.iter().map(|(c, _)| c))?;
        }
        let target = self.target.resolve(table, v)?;
        let ts = match &self.timestamp {
            None => ts,
            Some(t) => match value(t, v) {
                Some(CqlValue::BigInt(n)) if n != i64::MIN => n,
                Some(_) => return Err(invalid!("invalid timestamp")),
                None => return Err(invalid!("Invalid null value of timestamp")),
            },
        };
        let ttl = self.ttl(table, v)?;
        let expires = (ttl > 0).then(|| now.saturating_add(ttl));
        let change = match &self.action {
            Action::Upsert { marker, cells } => Change::Row {
                ck: table.clustering_key(&target.slice.eq),
                marker: marker.then_some(Stamp { ts, expires }),
                cells: cells
                    .iter()
                    .map(|(column, t)| {
                        let value = value(t, v);
                        // A null is a tombstone, and a tombstone does not expire.
                        let expires = value.as_ref().and(expires);
                        let cell = Cell {
                            stamp: Stamp { ts, expires },
                            value,
                        };
                        (column.clone(), cell)
                    })
                    .collect(),
            },
            Action::Delete => table.deletion(target.slice, ts),
        };
        let keys = target.partitions.unwrap_or_default();
        let mutations = keys.into_iter().map(|pk| Mutation {
            pk,
            change: change.clone(),
        });
        Ok(mutations.collect())
    }

    /// Seconds to live: `USING TTL` (0 meaning none), else the table's default.
    fn ttl(&self, table: &Table, v: &Binds) -> Fallible<i64> {
        let Some(t) = &self.ttl else {
            return Ok(table.default_ttl);
        };
        match value(t, v) {
            Some(CqlValue::Int(n)) if n < 0 => {
                Err(invalid!("A TTL must be greater or equal to 0, but was {n}"))
            }
            Some(CqlValue::Int(n)) if i64::from(n) > MAX_TTL => Err(invalid!(
                "ttl is too large. requested ({n}) maximum ({MAX_TTL})"
            )),
            Some(CqlValue::Int(n)) => Ok(i64::from(n)),
            _ => Err(invalid!("Invalid null value of TTL")),
        }
    }

    /// A lightweight transaction's condition on the current row: whether it holds, and the
    /// answer row (`[applied]` first).
    fn condition(&self, table: &Table, v: &Binds, now: i64) -> Fallible<(bool, Values)> {
        let target = self.target.resolve(table, v)?;
        let pk = target
            .partitions
            .into_iter()
            .flatten()
            .next()
            .unwrap_or_default();
        let ck = table.clustering_key(&target.slice.eq);
        let row = table.live_row(&pk, &ck, now);
        let answer = |applied: bool| vec![Some(CqlValue::Boolean(applied))];
        match &self.cond {
            Cond::None | Cond::Exists => Ok((row.is_some(), answer(row.is_some()))),
            Cond::NotExists => match row {
                None => Ok((true, answer(true))),
                Some((p, r)) => {
                    let star = table.star().into_iter();
                    let columns = star.map(|c| table.value_of(&c, p, &ck, r, now));
                    Ok((false, answer(false).into_iter().chain(columns).collect()))
                }
            },
            Cond::Columns(conditions) => {
                let current = |c: &str| row.and_then(|(p, r)| table.value_of(c, p, &ck, r, now));
                let mut holds = true;
                let mut named: Vec<&str> = Vec::new();
                for (column, op, t) in conditions {
                    holds &= condition_holds(current(column).as_ref(), *op, value(t, v).as_ref())?;
                    if !named.contains(&column.as_str()) {
                        named.push(column);
                    }
                }
                if holds {
                    return Ok((true, answer(true)));
                }
                let columns = named.into_iter().map(current);
                Ok((false, answer(false).into_iter().chain(columns).collect()))
            }
        }
    }
}

/// `current op expected` as an LWT condition: a null (or missing row) only equals null, and
/// differs from every value.
fn condition_holds(
    current: Option<&CqlValue>,
    op: Op,
    expected: Option<&CqlValue>,
) -> Fallible<bool> {
    match (current, expected) {
        (Some(c), Some(e)) => Ok(op.holds(compare(c, e))),
        (_, None) if !matches!(op, Op::Eq | Op::Ne) => Err(invalid!(
            "Invalid comparison with null for operator \"{}\"",
            op.symbol()
        )),
        (None, None) => Ok(op == Op::Eq),
        (Some(_), None) | (None, Some(_)) => Ok(op == Op::Ne),
    }
}

// ---------------------------------------------------------------------------------------------
// Stored data
// ---------------------------------------------------------------------------------------------

/// When a write happened (microseconds) and when it expires (Unix seconds).
#[derive(Clone, Copy, Debug)]
struct Stamp {
    ts: i64,
    expires: Option<i64>,
}

impl Stamp {
    fn live(&self, now: i64) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    /// Whether this expires later than `other` (never is latest).
    fn outlives(&self, other: &Stamp) -> bool {
        match (self.expires, other.expires) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a >= b,
        }
    }

    /// Whether a row marker with this stamp replaces one with `old`.
    fn beats(&self, old: &Stamp) -> bool {
        self.ts > old.ts || (self.ts == old.ts && self.outlives(old))
    }
}

/// A cell: a value, or a tombstone (`None`).
#[derive(Clone, Debug)]
struct Cell {
    stamp: Stamp,
    value: Option<CqlValue>,
}

impl Cell {
    fn live(&self, now: i64) -> Option<&CqlValue> {
        self.value.as_ref().filter(|_| self.stamp.live(now))
    }

    /// Whether this write replaces `old`: the newer timestamp; on a tie a tombstone, then
    /// the greater serialised value (Cassandra's rule, so replicas converge).
    fn beats(&self, old: &Cell) -> bool {
        match self.stamp.ts.cmp(&old.stamp.ts) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => match (&self.value, &old.value) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => match encode(a).cmp(&encode(b)) {
                    Ordering::Equal => self.stamp.outlives(&old.stamp),
                    order => order == Ordering::Greater,
                },
            },
        }
    }
}

#[derive(Default, Debug)]
struct Row {
    /// Written by INSERT: the row exists while it lives, whatever its cells.
    marker: Option<Stamp>,
    deleted: Option<i64>,
    cells: BTreeMap<String, Cell>,
}

impl Row {
    fn is_live(&self, now: i64) -> bool {
        self.marker.is_some_and(|m| m.live(now))
            || self.cells.values().any(|c| c.live(now).is_some())
    }

    fn is_empty(&self) -> bool {
        self.marker.is_none() && self.deleted.is_none() && self.cells.is_empty()
    }

    /// Drops what a tombstone at `ts` shadows (data and older tombstones alike).
    fn purge(&mut self, ts: i64) {
        self.marker = self.marker.filter(|m| m.ts > ts);
        self.deleted = self.deleted.filter(|&d| d > ts);
        self.cells.retain(|_, c| c.stamp.ts > ts);
    }

    fn tombstones(&self) -> usize {
        usize::from(self.deleted.is_some())
            + self.cells.values().filter(|c| c.value.is_none()).count()
    }
}

/// One clustering value, with its column's order: a partition's rows iterate in clustering
/// order.
#[derive(Clone, Debug)]
struct Ordered {
    value: CqlValue,
    desc: bool,
}

impl Ord for Ordered {
    fn cmp(&self, other: &Ordered) -> Ordering {
        let order = compare(&self.value, &other.value);
        if self.desc { order.reverse() } else { order }
    }
}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Ordered) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ordered {
    fn eq(&self, other: &Ordered) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ordered {}

/// A clustering key.
type Ck = Vec<Ordered>;

/// A clustering slice: equal on a prefix, then between bounds compared by value.
#[derive(Clone, Debug, Default, PartialEq)]
struct Slice {
    eq: Vec<CqlValue>,
    lower: Option<SliceBound>,
    upper: Option<SliceBound>,
}

#[derive(Clone, Debug, PartialEq)]
struct SliceBound {
    start: usize,
    values: Vec<CqlValue>,
    inclusive: bool,
}

impl Slice {
    fn contains(&self, ck: &[Ordered]) -> bool {
        let equal = |(i, v): (usize, &CqlValue)| {
            ck.get(i)
                .is_some_and(|o| compare(&o.value, v) == Ordering::Equal)
        };
        self.eq.iter().enumerate().all(equal) && self.within_bounds(ck)
    }

    fn within_bounds(&self, ck: &[Ordered]) -> bool {
        self.lower
            .as_ref()
            .is_none_or(|b| b.admits(ck, Ordering::Greater))
            && self
                .upper
                .as_ref()
                .is_none_or(|b| b.admits(ck, Ordering::Less))
    }
}

impl SliceBound {
    /// Whether `ck` is on the `inside` of this bound, comparing its tuple by value.
    fn admits(&self, ck: &[Ordered], inside: Ordering) -> bool {
        let mut order = Ordering::Equal;
        for (k, v) in self.values.iter().enumerate() {
            let Some(o) = ck.get(self.start + k) else {
                break;
            };
            order = compare(&o.value, v);
            if order != Ordering::Equal {
                break;
            }
        }
        order == inside || (order == Ordering::Equal && self.inclusive)
    }
}

#[derive(Debug)]
struct Partition {
    key: Vec<CqlValue>,
    deleted: Option<i64>,
    ranges: Vec<(Slice, i64)>,
    rows: BTreeMap<Ck, Row>,
}

impl Partition {
    /// The newest tombstone covering row `ck`: what was written at or before it is deleted.
    fn shadow(&self, ck: &[Ordered]) -> Option<i64> {
        let ranges = self
            .ranges
            .iter()
            .filter(|(s, _)| s.contains(ck))
            .map(|(_, ts)| *ts);
        let row = self.rows.get(ck).and_then(|r| r.deleted);
        self.deleted.into_iter().chain(ranges).chain(row).max()
    }

    fn write(&mut self, ck: Ck, marker: Option<Stamp>, cells: Vec<(String, Cell)>) {
        let shadow = self.shadow(&ck);
        let newer = |ts: i64| shadow.is_none_or(|s| ts > s);
        let marker = marker.filter(|m| newer(m.ts));
        let cells: Vec<_> = cells
            .into_iter()
            .filter(|(_, c)| newer(c.stamp.ts))
            .collect();
        if marker.is_none() && cells.is_empty() {
            return;
        }
        let row = self.rows.entry(ck).or_default();
        if let Some(m) = marker.filter(|m| row.marker.is_none_or(|old| m.beats(&old))) {
            row.marker = Some(m);
        }
        for (column, cell) in cells {
            if row.cells.get(&column).is_none_or(|old| cell.beats(old)) {
                row.cells.insert(column, cell);
            }
        }
    }

    fn delete_row(&mut self, ck: Ck, ts: i64) {
        if self.shadow(&ck).is_some_and(|s| s >= ts) {
            return;
        }
        let row = self.rows.entry(ck).or_default();
        row.purge(ts);
        row.deleted = Some(ts);
    }

    fn delete_range(&mut self, slice: Slice, ts: i64) {
        if self.deleted.is_some_and(|d| d >= ts) {
            return;
        }
        for (ck, row) in &mut self.rows {
            if slice.contains(ck) {
                row.purge(ts);
            }
        }
        self.rows.retain(|_, r| !r.is_empty());
        match self.ranges.iter_mut().find(|(s, _)| *s == slice) {
            Some((_, old)) => *old = (*old).max(ts),
            None => self.ranges.push((slice, ts)),
        }
    }

    fn delete_all(&mut self, ts: i64) {
        if self.deleted.is_some_and(|d| d >= ts) {
            return;
        }
        self.deleted = Some(ts);
        self.ranges.retain(|(_, t)| *t > ts);
        self.rows.values_mut().for_each(|r| r.purge(ts));
        self.rows.retain(|_, r| !r.is_empty());
    }

    fn is_empty(&self) -> bool {
        self.deleted.is_none() && self.ranges.is_empty() && self.rows.is_empty()
    }

    fn live_rows(&self, now: i64) -> usize {
        self.rows.values().filter(|r| r.is_live(now)).count()
    }

    fn tombstones(&self) -> usize {
        let rows: usize = self.rows.values().map(Row::tombstones).sum();
        usize::from(self.deleted.is_some()) + self.ranges.len() + rows
    }

    /// The rows of `slice`, in clustering order (reversed if asked): a seek to the equal
    /// prefix, then the bounds, as a node reads a slice without touching the rest.
    fn slice<'a>(
        &'a self,
        table: &Table,
        slice: &'a Slice,
        reversed: bool,
    ) -> Box<dyn Iterator<Item = (&'a Ck, &'a Row)> + 'a> {
        let prefix = table.clustering_key(&slice.eq);
        let from = std::ops::Bound::Included(prefix.as_slice());
        let rows = self
            .rows
            .range::<[Ordered], _>((from, std::ops::Bound::Unbounded))
            .take_while(move |(ck, _)| ck.starts_with(&prefix))
            .filter(move |(ck, _)| slice.within_bounds(ck));
        if reversed {
            Box::new(rows.collect::<Vec<_>>().into_iter().rev())
        } else {
            Box::new(rows)
        }
    }
}

/// A partition's token (a stable hash: deterministic, not sorted) and its key's encoding.
type PartitionId = (u64, Vec<u8>);

fn partition_id(key: &[CqlValue]) -> PartitionId {
    let mut bytes = Vec::new();
    for v in key {
        let e = encode(v);
        bytes.extend(u32::try_from(e.len()).unwrap_or(u32::MAX).to_be_bytes());
        bytes.extend(e);
    }
    // FNV-1a, 64 bits.
    let token = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    (token, bytes)
}

#[derive(Clone, Debug)]
struct Mutation {
    pk: Vec<CqlValue>,
    change: Change,
}

#[derive(Clone, Debug)]
enum Change {
    Row {
        ck: Ck,
        marker: Option<Stamp>,
        cells: Vec<(String, Cell)>,
    },
    DeleteRow(Ck, i64),
    DeleteRange(Slice, i64),
    DeletePartition(i64),
}

#[derive(Debug)]
struct Table {
    name: String,
    columns: BTreeMap<String, Ty>,
    partition: Vec<String>,
    clustering: Vec<String>,
    desc: Vec<bool>,
    default_ttl: i64,
    data: BTreeMap<PartitionId, Partition>,
}

impl Table {
    /// The columns of `SELECT *`: partition key, clustering key, then the rest by name.
    fn star(&self) -> Vec<String> {
        let regular = self.columns.keys().filter(|c| !self.is_key(c)).cloned();
        self.partition
            .iter()
            .chain(&self.clustering)
            .cloned()
            .chain(regular)
            .collect()
    }

    /// Refuses a statement prepared before its table was dropped and created again without
    /// these columns (a node would have invalidated it).
    fn still_has<'a>(&self, columns: impl IntoIterator<Item = &'a String>) -> Fallible<()> {
        match columns.into_iter().find(|c| !self.columns.contains_key(*c)) {
            Some(c) => Err(invalid!("table {} has no column \"{c}\"", self.name)),
            None => Ok(()),
        }
    }

    fn is_key(&self, column: &str) -> bool {
        self.partition
            .iter()
            .chain(&self.clustering)
            .any(|c| c == column)
    }

    fn clustering_key(&self, values: &[CqlValue]) -> Ck {
        let ordered = values.iter().zip(&self.desc).map(|(v, &desc)| Ordered {
            value: v.clone(),
            desc,
        });
        ordered.collect()
    }

    fn value_of(
        &self,
        column: &str,
        p: &Partition,
        ck: &[Ordered],
        row: &Row,
        now: i64,
    ) -> Option<CqlValue> {
        if let Some(i) = self.partition.iter().position(|c| c == column) {
            return p.key.get(i).cloned();
        }
        if let Some(i) = self.clustering.iter().position(|c| c == column) {
            return ck.get(i).map(|o| o.value.clone());
        }
        row.cells.get(column).and_then(|c| c.live(now)).cloned()
    }

    fn live_row(&self, pk: &[CqlValue], ck: &Ck, now: i64) -> Option<(&Partition, &Row)> {
        let p = self.data.get(&partition_id(pk))?;
        let row = p.rows.get(ck)?;
        row.is_live(now).then_some((p, row))
    }

    /// What a DELETE of `slice` writes: a partition, row or range tombstone.
    fn deletion(&self, slice: Slice, ts: i64) -> Change {
        let bounded = slice.lower.is_some() || slice.upper.is_some();
        if slice.eq.is_empty() && !bounded {
            Change::DeletePartition(ts)
        } else if slice.eq.len() == self.clustering.len() {
            Change::DeleteRow(self.clustering_key(&slice.eq), ts)
        } else {
            Change::DeleteRange(slice, ts)
        }
    }

    fn apply(&mut self, m: Mutation) {
        let id = partition_id(&m.pk);
        let p = self.data.entry(id.clone()).or_insert_with(|| Partition {
            key: m.pk,
            deleted: None,
            ranges: Vec::new(),
            rows: BTreeMap::new(),
        });
        match m.change {
            Change::Row { ck, marker, cells } => p.write(ck, marker, cells),
            Change::DeleteRow(ck, ts) => p.delete_row(ck, ts),
            Change::DeleteRange(slice, ts) => p.delete_range(slice, ts),
            Change::DeletePartition(ts) => p.delete_all(ts),
        }
        if p.is_empty() {
            self.data.remove(&id);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Types and values
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Text,
    Ascii,
    BigInt,
    Int,
    SmallInt,
    TinyInt,
    Double,
    Float,
    Boolean,
    Blob,
    Timestamp,
}

impl Ty {
    fn parse(name: &str) -> Option<Ty> {
        Some(match name {
            "text" | "varchar" => Ty::Text,
            "ascii" => Ty::Ascii,
            "bigint" => Ty::BigInt,
            "int" => Ty::Int,
            "smallint" => Ty::SmallInt,
            "tinyint" => Ty::TinyInt,
            "double" => Ty::Double,
            "float" => Ty::Float,
            "boolean" => Ty::Boolean,
            "blob" => Ty::Blob,
            "timestamp" => Ty::Timestamp,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Text => "text",
            Ty::Ascii => "ascii",
            Ty::BigInt => "bigint",
            Ty::Int => "int",
            Ty::SmallInt => "smallint",
            Ty::TinyInt => "tinyint",
            Ty::Double => "double",
            Ty::Float => "float",
            Ty::Boolean => "boolean",
            Ty::Blob => "blob",
            Ty::Timestamp => "timestamp",
        }
    }

    /// Whether the driver's type check lets `v` be bound to a column of this type.
    fn accepts(self, v: &CqlValue) -> bool {
        use CqlValue as V;
        matches!(
            (self, v),
            (Ty::Text | Ty::Ascii, V::Text(_) | V::Ascii(_))
                | (Ty::BigInt, V::BigInt(_))
                | (Ty::Int, V::Int(_))
                | (Ty::SmallInt, V::SmallInt(_))
                | (Ty::TinyInt, V::TinyInt(_))
                | (Ty::Double, V::Double(_))
                | (Ty::Float, V::Float(_))
                | (Ty::Boolean, V::Boolean(_))
                | (Ty::Blob, V::Blob(_))
                | (Ty::Timestamp, V::Timestamp(_))
        )
    }

    /// An accepted value as a column of this type holds it (and answers it).
    fn normalize(self, v: CqlValue) -> Fallible<CqlValue> {
        Ok(match (self, v) {
            (Ty::Text, CqlValue::Ascii(s)) => CqlValue::Text(s),
            (Ty::Ascii, CqlValue::Text(s) | CqlValue::Ascii(s)) if !s.is_ascii() => {
                return Err(invalid!("Invalid ASCII character in string literal {s:?}"));
            }
            (Ty::Ascii, CqlValue::Text(s)) => CqlValue::Ascii(s),
            (_, v) => v,
        })
    }

    /// A literal in a statement as a value of this type.
    fn literal(self, lit: &Lit, column: &str) -> Fallible<Option<CqlValue>> {
        let value = match (self, lit) {
            (_, Lit::Null) => return Ok(None),
            (Ty::Text | Ty::Ascii, Lit::Str(s)) => Some(CqlValue::Text(s.clone())),
            (Ty::Boolean, Lit::Bool(b)) => Some(CqlValue::Boolean(*b)),
            (_, Lit::Num(n)) => self.number(n),
            _ => None,
        };
        match value {
            Some(v) => self.normalize(v).map(Some),
            None => Err(invalid!(
                "Invalid constant {lit} for {column} of type {}",
                self.name()
            )),
        }
    }

    fn number(self, text: &str) -> Option<CqlValue> {
        let int = text.parse::<i64>().ok();
        let float = text.parse::<f64>().ok();
        match self {
            Ty::BigInt => int.map(CqlValue::BigInt),
            Ty::Int => int.and_then(|n| i32::try_from(n).ok()).map(CqlValue::Int),
            Ty::SmallInt => int
                .and_then(|n| i16::try_from(n).ok())
                .map(CqlValue::SmallInt),
            Ty::TinyInt => int
                .and_then(|n| i8::try_from(n).ok())
                .map(CqlValue::TinyInt),
            Ty::Timestamp => int.map(|n| CqlValue::Timestamp(CqlTimestamp(n))),
            Ty::Double => float.map(CqlValue::Double),
            Ty::Float => float.map(|f| CqlValue::Float(f as f32)),
            _ => None,
        }
    }
}

/// A value's CQL serialisation: what Cassandra compares when two cells tie on timestamp, and
/// what a partition's token hashes.
fn encode(v: &CqlValue) -> Vec<u8> {
    match v {
        CqlValue::Text(s) | CqlValue::Ascii(s) => s.as_bytes().to_vec(),
        CqlValue::BigInt(n) => n.to_be_bytes().to_vec(),
        CqlValue::Int(n) => n.to_be_bytes().to_vec(),
        CqlValue::SmallInt(n) => n.to_be_bytes().to_vec(),
        CqlValue::TinyInt(n) => n.to_be_bytes().to_vec(),
        CqlValue::Double(f) => f.to_be_bytes().to_vec(),
        CqlValue::Float(f) => f.to_be_bytes().to_vec(),
        CqlValue::Boolean(b) => vec![u8::from(*b)],
        CqlValue::Blob(b) => b.clone(),
        CqlValue::Timestamp(t) => t.0.to_be_bytes().to_vec(),
        // No column of the model holds another type.
        other => format!("{other:?}").into_bytes(),
    }
}

/// The order of two values of one column type: text and blobs bytewise, numbers by value,
/// false before true.
fn compare(a: &CqlValue, b: &CqlValue) -> Ordering {
    use CqlValue as V;
    match (a, b) {
        (V::Text(x) | V::Ascii(x), V::Text(y) | V::Ascii(y)) => x.as_bytes().cmp(y.as_bytes()),
        (V::BigInt(x), V::BigInt(y)) => x.cmp(y),
        (V::Int(x), V::Int(y)) => x.cmp(y),
        (V::SmallInt(x), V::SmallInt(y)) => x.cmp(y),
        (V::TinyInt(x), V::TinyInt(y)) => x.cmp(y),
        (V::Timestamp(x), V::Timestamp(y)) => x.0.cmp(&y.0),
        (V::Double(x), V::Double(y)) => x.total_cmp(y),
        (V::Float(x), V::Float(y)) => x.total_cmp(y),
        (V::Boolean(x), V::Boolean(y)) => x.cmp(y),
        (V::Blob(x), V::Blob(y)) => x.cmp(y),
        _ => encode(a).cmp(&encode(b)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// Whether `value op bound` holds, given how value compares to bound.
    fn holds(self, order: Ordering) -> bool {
        match self {
            Op::Eq => order == Ordering::Equal,
            Op::Ne => order != Ordering::Equal,
            Op::Lt => order == Ordering::Less,
            Op::Le => order != Ordering::Greater,
            Op::Gt => order == Ordering::Greater,
            Op::Ge => order != Ordering::Less,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checking a parsed statement against the schema
// ---------------------------------------------------------------------------------------------

fn prepare(tables: &BTreeMap<String, Table>, cql: &str) -> Fallible<Statement> {
    let (ast, markers) = Parser::new(cql)?.dml()?;
    let name = match &ast {
        Ast::Insert(a) => &a.table,
        Ast::Update(a) => &a.table,
        Ast::Delete(a) => &a.table,
        Ast::Select(a) => &a.table,
    };
    let table = tables.get(name).ok_or_else(|| unconfigured(name))?;
    let mut c = Checker {
        table,
        markers: vec![None; markers],
    };
    let kind = match ast {
        Ast::Insert(a) => Kind::Write(c.insert(a)?),
        Ast::Update(a) => Kind::Write(c.update(a)?),
        Ast::Delete(a) => Kind::Write(c.delete(a)?),
        Ast::Select(a) => Kind::Select(c.select(a)?),
    };
    let markers = c.markers.into_iter().collect::<Option<Vec<_>>>();
    let markers = markers.ok_or_else(|| invalid!("a bind marker where no value is expected"))?;
    Ok(Statement {
        cql: cql.to_owned(),
        markers,
        kind,
    })
}

/// Types a parsed statement against its table, and refuses what a node refuses.
struct Checker<'a> {
    table: &'a Table,
    markers: Vec<Option<Marker>>,
}

/// What a WHERE clause may do: a read may filter, a write must name its rows.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Read { filtering: bool },
    Write,
}

const FILTERING: &str = "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

impl Checker<'_> {
    fn ty(&self, column: &str) -> Fallible<Ty> {
        let t = self.table;
        let missing = || invalid!("table {} has no column \"{column}\"", t.name);
        t.columns.get(column).copied().ok_or_else(missing)
    }

    fn mark(&mut self, i: usize, name: &str, ty: Ty, list: bool) {
        if let Some(slot) = self.markers.get_mut(i) {
            let name = name.to_owned();
            *slot = Some(Marker { name, ty, list });
        }
    }

    fn term(&mut self, raw: Raw, name: &str, ty: Ty) -> Fallible<Term> {
        match raw {
            Raw::Marker(i) => {
                self.mark(i, name, ty, false);
                Ok(Term::Marker(i))
            }
            Raw::Lit(lit) => ty.literal(&lit, name).map(Term::Const),
        }
    }

    fn column_term(&mut self, column: &str, raw: Raw) -> Fallible<Term> {
        let ty = self.ty(column)?;
        self.term(raw, column, ty)
    }

    fn using(&mut self, using: Using) -> Fallible<(Option<Term>, Option<Term>)> {
        let ttl = using
            .ttl
            .map(|r| self.term(r, "[ttl]", Ty::Int))
            .transpose()?;
        let ts = using
            .timestamp
            .map(|r| self.term(r, "[timestamp]", Ty::BigInt))
            .transpose()?;
        Ok((ttl, ts))
    }

    fn insert(&mut self, a: InsertAst) -> Fallible<Write> {
        if a.columns.len() != a.values.len() {
            return Err(invalid!("Unmatched column names/values"));
        }
        let mut given: BTreeMap<String, Term> = BTreeMap::new();
        let mut cells = Vec::new();
        for (column, raw) in a.columns.into_iter().zip(a.values) {
            let term = self.column_term(&column, raw)?;
            if given.insert(column.clone(), term.clone()).is_some() {
                return Err(invalid!("Multiple definitions found for column {column}"));
            }
            if !self.table.is_key(&column) {
                cells.push((column, term));
            }
        }
        let t = self.table;
        let key = |c: &String| {
            given
                .get(c)
                .cloned()
                .ok_or_else(|| invalid!("primary key column {c} is missing"))
        };
        let partition = t
            .partition
            .iter()
            .map(|c| key(c).map(KeyPart::One))
            .collect::<Fallible<_>>()?;
        let eq = t.clustering.iter().map(key).collect::<Fallible<_>>()?;
        let (ttl, timestamp) = self.using(a.using)?;
        if a.if_not_exists && timestamp.is_some() {
            return Err(invalid!(
                "Cannot provide custom timestamp for conditional updates"
            ));
        }
        Ok(Write {
            table: t.name.clone(),
            target: Where {
                partition: Some(partition),
                eq,
                ..Where::default()
            },
            action: Action::Upsert {
                marker: true,
                cells,
            },
            ttl,
            timestamp,
            cond: if a.if_not_exists {
                Cond::NotExists
            } else {
                Cond::None
            },
        })
    }

    fn update(&mut self, a: UpdateAst) -> Fallible<Write> {
        let (ttl, timestamp) = self.using(a.using)?;
        let mut cells: Vec<(String, Term)> = Vec::new();
        for (column, raw) in a.set {
            let term = self.column_term(&column, raw)?;
            if self.table.is_key(&column) {
                return Err(invalid!("PRIMARY KEY part {column} found in SET part"));
            }
            if cells.iter().any(|(c, _)| *c == column) {
                return Err(invalid!("Multiple definitions found for column {column}"));
            }
            cells.push((column, term));
        }
        let target = self.write_target(a.relations)?;
        if let Some(missing) = self.missing_clustering(&target) {
            return Err(invalid!("Some clustering keys are missing: {missing}"));
        }
        let cond = self.cond(a.cond, &target, timestamp.is_some())?;
        Ok(Write {
            table: self.table.name.clone(),
            target,
            action: Action::Upsert {
                marker: false,
                cells,
            },
            ttl,
            timestamp,
            cond,
        })
    }

    fn delete(&mut self, a: DeleteAst) -> Fallible<Write> {
        let (_, timestamp) = self.using(a.using)?;
        for column in &a.columns {
            self.ty(column)?;
            if self.table.is_key(column) {
                return Err(invalid!(
                    "Invalid identifier {column} for deletion (should not be a PRIMARY KEY part)"
                ));
            }
        }
        let target = self.write_target(a.relations)?;
        if !a.columns.is_empty() && self.missing_clustering(&target).is_some() {
            return Err(invalid!(
                "Range deletions are not supported for specific columns"
            ));
        }
        let cond = self.cond(a.cond, &target, timestamp.is_some())?;
        let action = if a.columns.is_empty() {
            Action::Delete
        } else {
            let nulls = a.columns.into_iter().map(|c| (c, Term::Const(None)));
            Action::Upsert {
                marker: false,
                cells: nulls.collect(),
            }
        };
        Ok(Write {
            table: self.table.name.clone(),
            target,
            action,
            ttl: None,
            timestamp,
            cond,
        })
    }

    /// A write's WHERE: the whole partition key at least.
    fn write_target(&mut self, relations: Vec<RawRel>) -> Fallible<Where> {
        let target = self.restrictions(relations, Mode::Write)?;
        if target.partition.is_none() {
            let first = self.table.partition.first().map_or("", String::as_str);
            return Err(invalid!("partition key column {first} is not restricted"));
        }
        Ok(target)
    }

    /// The first clustering column a write does not restrict by `=`.
    fn missing_clustering(&self, target: &Where) -> Option<&str> {
        let bounded = target.lower.is_some() || target.upper.is_some();
        let missing = self
            .table
            .clustering
            .get(target.eq.len())
            .map(String::as_str);
        missing.or(bounded.then_some(""))
    }

    fn cond(&mut self, raw: RawCond, target: &Where, timestamp: bool) -> Fallible<Cond> {
        if matches!(raw, RawCond::None) {
            return Ok(Cond::None);
        }
        if timestamp {
            return Err(invalid!(
                "Cannot provide custom timestamp for conditional updates"
            ));
        }
        let single = target
            .partition
            .iter()
            .flatten()
            .all(|p| matches!(p, KeyPart::One(_)));
        if !single {
            return Err(invalid!(
                "IN on the partition key is not supported with conditional updates"
            ));
        }
        if self.missing_clustering(target).is_some() {
            return Err(invalid!(
                "conditional statements must restrict all PRIMARY KEY columns with equality relations"
            ));
        }
        Ok(match raw {
            RawCond::None => Cond::None,
            RawCond::Exists => Cond::Exists,
            RawCond::Columns(conditions) => {
                let mut typed = Vec::new();
                for (column, op, raw) in conditions {
                    let term = self.column_term(&column, raw)?;
                    if self.table.is_key(&column) {
                        return Err(invalid!(
                            "PRIMARY KEY column '{column}' cannot have IF conditions"
                        ));
                    }
                    typed.push((column, op, term));
                }
                Cond::Columns(typed)
            }
        })
    }

    fn select(&mut self, a: SelectAst) -> Fallible<Select> {
        let t = self.table;
        let (count, columns) = match a.projection {
            Projection::Count => (true, Vec::new()),
            Projection::Star => (false, t.star()),
            Projection::Columns(columns) => (false, columns),
        };
        for column in &columns {
            self.ty(column)?;
        }
        let target = self.restrictions(
            a.relations,
            Mode::Read {
                filtering: a.filtering,
            },
        )?;
        let reversed = match a.order {
            None => false,
            Some((column, desc)) => {
                if t.clustering.first() != Some(&column) {
                    return Err(invalid!(
                        "Order by is currently only supported on the first clustering column, got {column}"
                    ));
                }
                match &target.partition {
                    None => {
                        return Err(invalid!(
                            "ORDER BY is only supported when the partition key is restricted by an EQ or an IN."
                        ));
                    }
                    Some(parts) if parts.iter().any(|p| matches!(p, KeyPart::In(_))) => {
                        return Err(invalid!(
                            "Cannot page queries with both ORDER BY and a IN restriction on the partition key; you must either remove the ORDER BY or the IN and sort client side, or disable paging for this query"
                        ));
                    }
                    Some(_) => {}
                }
                t.desc.first() != Some(&desc)
            }
        };
        let per_partition_limit = a
            .per_partition_limit
            .map(|r| self.term(r, "[per_partition_limit]", Ty::Int));
        let limit = a.limit.map(|r| self.term(r, "[limit]", Ty::Int));
        Ok(Select {
            table: t.name.clone(),
            count,
            columns,
            target,
            reversed,
            per_partition_limit: per_partition_limit.transpose()?,
            limit: limit.transpose()?,
        })
    }

    /// A WHERE clause as a node plans it: the partitions, the clustering slice, and what is
    /// left to filter (only with ALLOW FILTERING).
    fn restrictions(&mut self, relations: Vec<RawRel>, mode: Mode) -> Fallible<Where> {
        let filtering = mode == Mode::Read { filtering: true };
        let mut singles = Vec::new();
        let mut tuples = Vec::new();
        for relation in relations {
            match relation {
                RawRel::Single(column, Op::Ne, _) => {
                    return Err(invalid!("Unsupported \"!=\" relation on {column}"));
                }
                RawRel::Single(column, op, raw) => {
                    let term = self.column_term(&column, raw)?;
                    singles.push(Restriction {
                        column,
                        rel: Rel::Cmp(op, term),
                    });
                }
                RawRel::In(column, many) => {
                    let ty = self.ty(&column)?;
                    let many = match many {
                        RawMany::Marker(i) => {
                            self.mark(i, &format!("in({column})"), ty, true);
                            Many::Marker(i)
                        }
                        RawMany::List(raws) => {
                            let terms = raws.into_iter().map(|r| self.term(r, &column, ty));
                            Many::Terms(terms.collect::<Fallible<_>>()?)
                        }
                    };
                    singles.push(Restriction {
                        column,
                        rel: Rel::In(many),
                    });
                }
                RawRel::Tuple(columns, op, raws) => {
                    if mode == Mode::Write {
                        return Err(invalid!(
                            "the model supports multi-column relations in SELECT only"
                        ));
                    }
                    if columns.len() != raws.len() {
                        return Err(invalid!(
                            "Expected {} elements in value tuple, but got {}",
                            columns.len(),
                            raws.len()
                        ));
                    }
                    let terms = columns
                        .iter()
                        .zip(raws)
                        .map(|(c, r)| self.column_term(c, r));
                    let terms = terms.collect::<Fallible<Vec<_>>>()?;
                    tuples.push((columns, op, terms));
                }
            }
        }
        let mut target = Where {
            partition: self.partition_key(&mut singles, filtering)?,
            ..Where::default()
        };
        if tuples.is_empty() {
            self.clustering(&mut singles, filtering, &mut target)?;
        } else {
            self.tuples(tuples, &singles, &mut target)?;
        }
        let sliced = !target.eq.is_empty() || target.lower.is_some() || target.upper.is_some();
        if !filtering {
            if let Some(r) = singles.first() {
                return Err(match mode {
                    Mode::Write => invalid!(
                        "Non PRIMARY KEY columns found in where clause: {}",
                        r.column
                    ),
                    Mode::Read { .. } => invalid!("{FILTERING}"),
                });
            }
            if target.partition.is_none() && sliced && mode != Mode::Write {
                return Err(invalid!("{FILTERING}"));
            }
        }
        target.filters = singles;
        Ok(target)
    }

    /// The partitions named by `=` (the last column maybe `IN`); `None` for every partition.
    /// Restrictions that cannot name partitions stay in `rest` to filter with.
    fn partition_key(
        &self,
        rest: &mut Vec<Restriction>,
        filtering: bool,
    ) -> Fallible<Option<Vec<KeyPart>>> {
        let t = self.table;
        if !rest.iter().any(|r| t.partition.contains(&r.column)) {
            return Ok(None);
        }
        let mut parts = Vec::new();
        for (i, column) in t.partition.iter().enumerate() {
            let on: Vec<&Restriction> = rest.iter().filter(|r| r.column == *column).collect();
            let last = i + 1 == t.partition.len();
            let refusal = match on.as_slice() {
                [Restriction { rel: Rel::Cmp(Op::Eq, term), .. }] => {
                    parts.push(KeyPart::One(term.clone()));
                    continue;
                }
                [Restriction { rel: Rel::In(many), .. }] if last => {
                    parts.push(KeyPart::In(many.clone()));
                    continue;
                }
                [] => format!("partition key column {column} is not restricted"),
                [Restriction { rel: Rel::In(_), .. }] => {
                    format!("partition key column {column} cannot be restricted by IN (only the last column of the partition key can)")
                }
                _ => "Only EQ and IN relation are supported on the partition key (unless you use the token() function or allow filtering)".to_owned(),
            };
            // With ALLOW FILTERING a node scans every partition and filters instead.
            return if filtering {
                Ok(None)
            } else {
                Err(invalid!("{refusal}"))
            };
        }
        rest.retain(|r| !t.partition.contains(&r.column));
        Ok(Some(parts))
    }

    /// A slice from single-column restrictions: `=` on a clustering prefix, then a range on
    /// the next column. What goes beyond stays in `rest` (filtering) or is refused.
    fn clustering(
        &self,
        rest: &mut Vec<Restriction>,
        filtering: bool,
        target: &mut Where,
    ) -> Fallible<()> {
        let t = self.table;
        let mut used = Vec::new();
        let mut stop: Option<String> = None;
        for (i, column) in t.clustering.iter().enumerate() {
            let on: Vec<&Restriction> = rest.iter().filter(|r| r.column == *column).collect();
            if on.is_empty() {
                stop.get_or_insert_with(|| format!("preceding column {column} is not restricted"));
                continue;
            }
            if let Some(why) = &stop {
                if filtering {
                    continue;
                }
                return Err(invalid!(
                    "clustering column {column} cannot be restricted: {why}"
                ));
            }
            match on.as_slice() {
                [
                    Restriction {
                        rel: Rel::Cmp(Op::Eq, term),
                        ..
                    },
                ] => target.eq.push(term.clone()),
                [
                    Restriction {
                        rel: Rel::In(_), ..
                    },
                ] if filtering => {
                    stop = Some(format!("preceding column {column} is restricted by IN"));
                    continue;
                }
                [
                    Restriction {
                        rel: Rel::In(_), ..
                    },
                ] => {
                    return Err(invalid!(
                        "the model does not support IN on clustering column {column}"
                    ));
                }
                ranges => {
                    for r in ranges {
                        let Rel::Cmp(op, term) = &r.rel else {
                            return Err(invalid!(
                                "{column} cannot be restricted by both IN and a range"
                            ));
                        };
                        let bound = TermBound {
                            start: i,
                            terms: vec![term.clone()],
                            inclusive: matches!(op, Op::Ge | Op::Le),
                        };
                        let side = match op {
                            Op::Gt | Op::Ge => &mut target.lower,
                            Op::Lt | Op::Le => &mut target.upper,
                            _ => {
                                return Err(invalid!(
                                    "{column} cannot be restricted by more than one relation if it includes an Equal"
                                ));
                            }
                        };
                        if side.replace(bound).is_some() {
                            return Err(invalid!(
                                "More than one restriction was found for the same bound on {column}"
                            ));
                        }
                    }
                    stop = Some(format!(
                        "preceding column {column} is restricted by a non-EQ relation"
                    ));
                }
            }
            used.push(column.clone());
        }
        rest.retain(|r| !used.contains(&r.column));
        Ok(())
    }

    /// A slice from multi-column relations `(c1, c2) op (v1, v2)` over a clustering prefix.
    fn tuples(
        &self,
        tuples: Vec<(Vec<String>, Op, Vec<Term>)>,
        rest: &[Restriction],
        target: &mut Where,
    ) -> Fallible<()> {
        let t = self.table;
        if rest.iter().any(|r| t.clustering.contains(&r.column)) {
            return Err(invalid!(
                "Mixing single column relations and multi column relations on clustering columns is not allowed"
            ));
        }
        let several = tuples.len() > 1;
        for (columns, op, terms) in tuples {
            if !t.clustering.starts_with(&columns) {
                return Err(invalid!(
                    "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: ({})",
                    columns.join(", ")
                ));
            }
            let bound = TermBound {
                start: 0,
                terms,
                inclusive: matches!(op, Op::Ge | Op::Le),
            };
            let side = match op {
                Op::Eq if !several => {
                    target.eq = bound.terms;
                    continue;
                }
                Op::Gt | Op::Ge => &mut target.lower,
                Op::Lt | Op::Le => &mut target.upper,
                _ => {
                    return Err(invalid!(
                        "invalid multi-column relation ({}) {}",
                        columns.join(", "),
                        op.symbol()
                    ));
                }
            };
            if side.replace(bound).is_some() {
                return Err(invalid!(
                    "More than one restriction was found for the same bound on ({})",
                    columns.join(", ")
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens and parsing
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// An unquoted identifier or keyword, lowercased.
    Word(String),
    /// A double-quoted identifier, as written.
    Name(String),
    Str(String),
    Num(String),
    Sym(&'static str),
    Marker,
}

/// Two-character symbols first, so `<=` is not read as `<` then `=`.
const SYMBOLS: [&str; 15] = [
    "<=", ">=", "!=", "(", ")", ",", ";", "=", "<", ">", "*", "{", "}", ":", ".",
];

/// Words a node refuses as unquoted identifiers.
const RESERVED: &[&str] = &[
    "add",
    "allow",
    "alter",
    "and",
    "apply",
    "asc",
    "authorize",
    "batch",
    "begin",
    "by",
    "columnfamily",
    "create",
    "delete",
    "desc",
    "describe",
    "drop",
    "entries",
    "execute",
    "from",
    "full",
    "grant",
    "if",
    "in",
    "index",
    "infinity",
    "insert",
    "into",
    "keyspace",
    "limit",
    "modify",
    "nan",
    "norecursive",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "primary",
    "rename",
    "revoke",
    "schema",
    "select",
    "set",
    "table",
    "to",
    "token",
    "truncate",
    "unlogged",
    "update",
    "use",
    "using",
    "where",
    "with",
    "is",
    "view",
];

fn tokenize(cql: &str) -> Fallible<Vec<Tok>> {
    let chars: Vec<char> = cql.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        let next = at(i + 1);
        if c.is_whitespace() {
            i += 1;
        } else if (c == '-' && next == Some('-')) || (c == '/' && next == Some('/')) {
            while at(i).is_some_and(|c| c != '\n') {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while !(at(i) == Some('*') && at(i + 1) == Some('/')) {
                at(i).ok_or_else(|| invalid!("unterminated comment"))?;
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' {
            let (text, after) = quoted(&chars, i)?;
            toks.push(if c == '\'' {
                Tok::Str(text)
            } else {
                Tok::Name(text)
            });
            i = after;
        } else if c == '?' {
            toks.push(Tok::Marker);
            i += 1;
        } else if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            i += 1;
            while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
                || (at(i) == Some('-') && matches!(at(i - 1), Some('e' | 'E')))
            {
                i += 1;
            }
            toks.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                i += 1;
            }
            toks.push(Tok::Word(
                chars[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else if let Some(s) = SYMBOLS
            .iter()
            .find(|s| s.chars().enumerate().all(|(k, sc)| at(i + k) == Some(sc)))
        {
            toks.push(Tok::Sym(s));
            i += s.len();
        } else {
            return Err(invalid!("syntax error: unexpected character '{c}'"));
        }
    }
    Ok(toks)
}

/// A quoted string or identifier from `start` (its opening quote), a doubled quote standing
/// for one: the text and where it ends.
fn quoted(chars: &[char], start: usize) -> Fallible<(String, usize)> {
    let quote = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(invalid!("syntax error: unterminated {quote}")),
            Some(&c) if c == quote && chars.get(i + 1) == Some(&quote) => {
                text.push(quote);
                i += 2;
            }
            Some(&c) if c == quote => return Ok((text, i + 1)),
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// A literal as written.
#[derive(Clone, Debug)]
enum Lit {
    Num(String),
    Str(String),
    Bool(bool),
    Null,
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Num(n) => f.write_str(n),
            Lit::Str(s) => write!(f, "'{s}'"),
            Lit::Bool(b) => write!(f, "{b}"),
            Lit::Null => f.write_str("null"),
        }
    }
}

#[derive(Clone, Debug)]
enum Raw {
    Marker(usize),
    Lit(Lit),
}

#[derive(Debug)]
enum RawMany {
    Marker(usize),
    List(Vec<Raw>),
}

#[derive(Debug)]
enum RawRel {
    Single(String, Op, Raw),
    In(String, RawMany),
    Tuple(Vec<String>, Op, Vec<Raw>),
}

#[derive(Debug)]
enum RawCond {
    None,
    Exists,
    Columns(Vec<(String, Op, Raw)>),
}

#[derive(Debug, Default)]
struct Using {
    ttl: Option<Raw>,
    timestamp: Option<Raw>,
}

#[derive(Debug)]
enum Projection {
    Star,
    Count,
    Columns(Vec<String>),
}

#[derive(Debug)]
struct InsertAst {
    table: String,
    columns: Vec<String>,
    values: Vec<Raw>,
    if_not_exists: bool,
    using: Using,
}

#[derive(Debug)]
struct UpdateAst {
    table: String,
    using: Using,
    set: Vec<(String, Raw)>,
    relations: Vec<RawRel>,
    cond: RawCond,
}

#[derive(Debug)]
struct DeleteAst {
    columns: Vec<String>,
    table: String,
    using: Using,
    relations: Vec<RawRel>,
    cond: RawCond,
}

#[derive(Debug)]
struct SelectAst {
    projection: Projection,
    table: String,
    relations: Vec<RawRel>,
    order: Option<(String, bool)>,
    per_partition_limit: Option<Raw>,
    limit: Option<Raw>,
    filtering: bool,
}

#[derive(Debug)]
enum Ast {
    Insert(InsertAst),
    Update(UpdateAst),
    Delete(DeleteAst),
    Select(SelectAst),
}

/// A schema statement.
enum Ddl {
    Create(Table, bool),
    Add(String, String, Ty),
    Options(String, TableOptions),
    Drop(String, bool),
    Truncate(String),
    /// `CREATE KEYSPACE`, `USE`: the model is one keyspace.
    Ignored,
    /// A data statement sent unprepared.
    Dml,
}

#[derive(Default)]
struct TableOptions {
    clustering_order: Option<Vec<(String, bool)>>,
    default_ttl: Option<i64>,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    markers: usize,
}

impl Parser {
    fn new(cql: &str) -> Fallible<Parser> {
        Ok(Parser {
            toks: tokenize(cql)?,
            pos: 0,
            markers: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn unexpected(&self) -> String {
        match self.peek() {
            None => invalid!("syntax error: unexpected end of statement"),
            Some(t) => invalid!("syntax error at {t:?}"),
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let found = self.is_kw(kw);
        self.pos += usize::from(found);
        found
    }

    fn kw(&mut self, kw: &str) -> Fallible<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat(&mut self, sym: &str) -> bool {
        let found = matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym);
        self.pos += usize::from(found);
        found
    }

    fn sym(&mut self, sym: &str) -> Fallible<()> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn ident(&mut self) -> Fallible<String> {
        let name = match self.peek() {
            Some(Tok::Word(w)) if RESERVED.contains(&w.as_str()) => {
                return Err(invalid!(
                    "syntax error: reserved word {w} used as an identifier (quote it)"
                ));
            }
            Some(Tok::Word(w) | Tok::Name(w)) => w.clone(),
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        Ok(name)
    }

    /// A table name; a keyspace before it is ignored (the model is one keyspace).
    fn table_name(&mut self) -> Fallible<String> {
        let name = self.ident()?;
        if self.eat(".") {
            self.ident()
        } else {
            Ok(name)
        }
    }

    fn raw(&mut self) -> Fallible<Raw> {
        let raw = match self.peek() {
            Some(Tok::Marker) => {
                self.markers += 1;
                Raw::Marker(self.markers - 1)
            }
            Some(Tok::Num(n)) => Raw::Lit(Lit::Num(n.clone())),
            Some(Tok::Str(s)) => Raw::Lit(Lit::Str(s.clone())),
            Some(Tok::Word(w)) if w == "true" || w == "false" => Raw::Lit(Lit::Bool(w == "true")),
            Some(Tok::Word(w)) if w == "null" => Raw::Lit(Lit::Null),
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        Ok(raw)
    }

    fn op(&mut self) -> Fallible<Op> {
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Op::Eq,
            Some(Tok::Sym("!=")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        Ok(op)
    }

    /// `item, item, ...` (at least one).
    fn commas<T>(&mut self, mut item: impl FnMut(&mut Parser) -> Fallible<T>) -> Fallible<Vec<T>> {
        let mut items = vec![item(self)?];
        while self.eat(",") {
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// `(item, item, ...)`.
    fn list<T>(&mut self, item: impl FnMut(&mut Parser) -> Fallible<T>) -> Fallible<Vec<T>> {
        self.sym("(")?;
        let items = self.commas(item)?;
        self.sym(")")?;
        Ok(items)
    }

    /// The end of the statement: an optional `;`, then nothing.
    fn end(&mut self) -> Fallible<()> {
        self.eat(";");
        if self.peek().is_some() {
            Err(self.unexpected())
        } else {
            Ok(())
        }
    }

    fn dml(mut self) -> Fallible<(Ast, usize)> {
        let ast = if self.eat_kw("insert") {
            Ast::Insert(self.insert()?)
        } else if self.eat_kw("update") {
            Ast::Update(self.update()?)
        } else if self.eat_kw("delete") {
            Ast::Delete(self.delete()?)
        } else if self.eat_kw("select") {
            Ast::Select(self.select()?)
        } else {
            return Err(self.unexpected());
        };
        self.end()?;
        Ok((ast, self.markers))
    }

    fn insert(&mut self) -> Fallible<InsertAst> {
        self.kw("into")?;
        let table = self.table_name()?;
        let columns = self.list(Parser::ident)?;
        self.kw("values")?;
        let values = self.list(Parser::raw)?;
        let if_not_exists = self.eat_kw("if");
        if if_not_exists {
            self.kw("not")?;
            self.kw("exists")?;
        }
        let using = self.using(true)?;
        Ok(InsertAst {
            table,
            columns,
            values,
            if_not_exists,
            using,
        })
    }

    fn using(&mut self, ttl_allowed: bool) -> Fallible<Using> {
        let mut using = Using::default();
        if !self.eat_kw("using") {
            return Ok(using);
        }
        loop {
            let slot = if ttl_allowed && self.eat_kw("ttl") {
                &mut using.ttl
            } else if self.eat_kw("timestamp") {
                &mut using.timestamp
            } else {
                return Err(self.unexpected());
            };
            if slot.replace(self.raw()?).is_some() {
                return Err(invalid!("a USING clause repeated"));
            }
            if !self.eat_kw("and") {
                return Ok(using);
            }
        }
    }

    fn update(&mut self) -> Fallible<UpdateAst> {
        let table = self.table_name()?;
        let using = self.using(true)?;
        self.kw("set")?;
        let set = self.commas(|p| {
            let column = p.ident()?;
            p.sym("=")?;
            Ok((column, p.raw()?))
        })?;
        self.kw("where")?;
        let relations = self.relations()?;
        let cond = self.condition()?;
        Ok(UpdateAst {
            table,
            using,
            set,
            relations,
            cond,
        })
    }

    fn delete(&mut self) -> Fallible<DeleteAst> {
        let columns = if self.is_kw("from") {
            Vec::new()
        } else {
            self.commas(Parser::ident)?
        };
        self.kw("from")?;
        let table = self.table_name()?;
        let using = self.using(false)?;
        self.kw("where")?;
        let relations = self.relations()?;
        let cond = self.condition()?;
        Ok(DeleteAst {
            columns,
            table,
            using,
            relations,
            cond,
        })
    }

    fn select(&mut self) -> Fallible<SelectAst> {
        let count = self.is_kw("count") && self.toks.get(self.pos + 1) == Some(&Tok::Sym("("));
        let projection = if self.eat("*") {
            Projection::Star
        } else if count {
            self.pos += 2;
            self.sym("*")?;
            self.sym(")")?;
            Projection::Count
        } else {
            Projection::Columns(self.commas(Parser::ident)?)
        };
        self.kw("from")?;
        let table = self.table_name()?;
        let relations = if self.eat_kw("where") {
            self.relations()?
        } else {
            Vec::new()
        };
        let mut order = None;
        if self.eat_kw("order") {
            self.kw("by")?;
            let column = self.ident()?;
            let desc = self.eat_kw("desc");
            if !desc {
                self.eat_kw("asc");
            }
            order = Some((column, desc));
        }
        let mut per_partition_limit = None;
        if self.eat_kw("per") {
            self.kw("partition")?;
            self.kw("limit")?;
            per_partition_limit = Some(self.raw()?);
        }
        let limit = if self.eat_kw("limit") {
            Some(self.raw()?)
        } else {
            None
        };
        let filtering = self.eat_kw("allow");
        if filtering {
            self.kw("filtering")?;
        }
        Ok(SelectAst {
            projection,
            table,
            relations,
            order,
            per_partition_limit,
            limit,
            filtering,
        })
    }

    fn relations(&mut self) -> Fallible<Vec<RawRel>> {
        let mut relations = vec![self.relation()?];
        while self.eat_kw("and") {
            relations.push(self.relation()?);
        }
        Ok(relations)
    }

    fn relation(&mut self) -> Fallible<RawRel> {
        if matches!(self.peek(), Some(Tok::Sym("("))) {
            let columns = self.list(Parser::ident)?;
            let op = self.op()?;
            return Ok(RawRel::Tuple(columns, op, self.list(Parser::raw)?));
        }
        let column = self.ident()?;
        if !self.eat_kw("in") {
            let op = self.op()?;
            return Ok(RawRel::Single(column, op, self.raw()?));
        }
        let many = match self.peek() {
            Some(Tok::Marker) => match self.raw()? {
                Raw::Marker(i) => RawMany::Marker(i),
                Raw::Lit(_) => return Err(self.unexpected()),
            },
            _ => RawMany::List(self.list(Parser::raw)?),
        };
        Ok(RawRel::In(column, many))
    }

    fn condition(&mut self) -> Fallible<RawCond> {
        if !self.eat_kw("if") {
            return Ok(RawCond::None);
        }
        if self.eat_kw("exists") {
            return Ok(RawCond::Exists);
        }
        let mut conditions = Vec::new();
        loop {
            let column = self.ident()?;
            let op = self.op()?;
            conditions.push((column, op, self.raw()?));
            if !self.eat_kw("and") {
                return Ok(RawCond::Columns(conditions));
            }
        }
    }

    fn schema(mut self) -> Fallible<Ddl> {
        let ddl = if self.eat_kw("create") {
            if self.eat_kw("keyspace") {
                return Ok(Ddl::Ignored);
            }
            self.kw("table")?;
            let if_not_exists = self.eat_kw("if");
            if if_not_exists {
                self.kw("not")?;
                self.kw("exists")?;
            }
            Ddl::Create(self.create_table()?, if_not_exists)
        } else if self.eat_kw("alter") {
            self.kw("table")?;
            let table = self.table_name()?;
            if self.eat_kw("add") {
                let column = self.ident()?;
                Ddl::Add(table, column, self.ty()?)
            } else {
                self.kw("with")?;
                Ddl::Options(table, self.options()?)
            }
        } else if self.eat_kw("drop") {
            self.kw("table")?;
            let if_exists = self.eat_kw("if");
            if if_exists {
                self.kw("exists")?;
            }
            Ddl::Drop(self.table_name()?, if_exists)
        } else if self.eat_kw("truncate") {
            self.eat_kw("table");
            Ddl::Truncate(self.table_name()?)
        } else if self.eat_kw("use") {
            self.ident()?;
            Ddl::Ignored
        } else if ["insert", "update", "delete", "select"]
            .iter()
            .any(|k| self.is_kw(k))
        {
            return Ok(Ddl::Dml);
        } else {
            return Err(self.unexpected());
        };
        self.end()?;
        Ok(ddl)
    }

    fn ty(&mut self) -> Fallible<Ty> {
        let name = match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        Ty::parse(&name).ok_or_else(|| invalid!("the model does not support type {name}"))
    }

    fn create_table(&mut self) -> Fallible<Table> {
        let name = self.table_name()?;
        let mut columns: Vec<(String, Ty)> = Vec::new();
        let mut keys: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        self.sym("(")?;
        loop {
            if self.eat_kw("primary") {
                self.kw("key")?;
                self.sym("(")?;
                let partition = if matches!(self.peek(), Some(Tok::Sym("("))) {
                    self.list(Parser::ident)?
                } else {
                    vec![self.ident()?]
                };
                let mut clustering = Vec::new();
                while self.eat(",") {
                    clustering.push(self.ident()?);
                }
                self.sym(")")?;
                keys.push((partition, clustering));
            } else {
                let column = self.ident()?;
                columns.push((column.clone(), self.ty()?));
                if self.eat_kw("primary") {
                    self.kw("key")?;
                    keys.push((vec![column], Vec::new()));
                }
            }
            if self.eat(")") {
                break;
            }
            self.sym(",")?;
        }
        let options = if self.eat_kw("with") {
            self.options()?
        } else {
            TableOptions::default()
        };
        define_table(name, columns, keys, options)
    }

    /// `WITH` options: the clustering order and the default TTL count; others are parsed and
    /// ignored.
    fn options(&mut self) -> Fallible<TableOptions> {
        let mut options = TableOptions::default();
        loop {
            if self.eat_kw("clustering") {
                self.kw("order")?;
                self.kw("by")?;
                let order = self.list(|p| {
                    let column = p.ident()?;
                    let desc = p.eat_kw("desc");
                    if !desc {
                        p.eat_kw("asc");
                    }
                    Ok((column, desc))
                })?;
                options.clustering_order = Some(order);
            } else {
                let name = self.ident()?;
                self.sym("=")?;
                let value = self.option_value()?;
                if name == "default_time_to_live" {
                    let ttl = value.filter(|n| (0..=MAX_TTL).contains(n));
                    let bad = || invalid!("default_time_to_live must be between 0 and {MAX_TTL}");
                    options.default_ttl = Some(ttl.ok_or_else(bad)?);
                }
            }
            if !self.eat_kw("and") {
                return Ok(options);
            }
        }
    }

    /// An option's value (a string, number, word or flat `{map}`); the integer, if it is one.
    fn option_value(&mut self) -> Fallible<Option<i64>> {
        if self.eat("{") {
            if !self.eat("}") {
                self.commas(|p| {
                    p.scalar()?;
                    p.sym(":")?;
                    p.scalar()
                })?;
                self.sym("}")?;
            }
            return Ok(None);
        }
        self.scalar()
    }

    /// A string, number or word; the integer, if it is one.
    fn scalar(&mut self) -> Fallible<Option<i64>> {
        let value = match self.peek() {
            Some(Tok::Num(n)) => n.parse().ok(),
            Some(Tok::Str(_) | Tok::Word(_)) => None,
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        Ok(value)
    }
}

/// A table from its definition, refused as a node refuses it.
fn define_table(
    name: String,
    columns: Vec<(String, Ty)>,
    keys: Vec<(Vec<String>, Vec<String>)>,
    options: TableOptions,
) -> Fallible<Table> {
    let mut by_name = BTreeMap::new();
    for (column, ty) in columns {
        if by_name.insert(column.clone(), ty).is_some() {
            return Err(invalid!("Multiple definition of identifier {column}"));
        }
    }
    let [(partition, clustering)] = <[_; 1]>::try_from(keys)
        .map_err(|_| invalid!("table {name} needs exactly one PRIMARY KEY"))?;
    let key: Vec<&String> = partition.iter().chain(&clustering).collect();
    for (i, column) in key.iter().enumerate() {
        if !by_name.contains_key(*column) {
            return Err(invalid!(
                "Unknown definition {column} referenced in PRIMARY KEY"
            ));
        }
        if key[..i].contains(column) {
            return Err(invalid!(
                "Multiple definition of identifier {column} in PRIMARY KEY"
            ));
        }
    }
    let order = options.clustering_order.unwrap_or_default();
    for (i, (column, _)) in order.iter().enumerate() {
        if clustering.get(i) != Some(column) {
            return Err(invalid!(
                "CLUSTERING ORDER must name the clustering columns in their order; {column} is not clustering column {}",
                i + 1
            ));
        }
    }
    let desc = (0..clustering.len())
        .map(|i| order.get(i).is_some_and(|(_, d)| *d))
        .collect();
    Ok(Table {
        name,
        columns: by_name,
        partition,
        clustering,
        desc,
        default_ttl: options.default_ttl.unwrap_or(0),
        data: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<CqlValue> {
        Some(CqlValue::Text(s.to_owned()))
    }

    fn big(n: i64) -> Option<CqlValue> {
        Some(CqlValue::BigInt(n))
    }

    fn int(n: i32) -> Option<CqlValue> {
        Some(CqlValue::Int(n))
    }

    fn applied(b: bool) -> Option<CqlValue> {
        Some(CqlValue::Boolean(b))
    }

    /// A model with `schema` applied.
    async fn model(schema: &[&str]) -> CqlModel {
        let m = CqlModel::new();
        for s in schema {
            m.schema(s).await.unwrap();
        }
        m
    }

    async fn run(m: &CqlModel, cql: &str, values: Values) -> Vec<Values> {
        let p = m
            .prepare(cql)
            .await
            .unwrap_or_else(|e| panic!("{cql}: {e}"));
        m.execute(p, values)
            .await
            .unwrap_or_else(|e| panic!("{cql}: {e}"))
    }

    /// The error preparing or running `cql`.
    async fn error(m: &CqlModel, cql: &str, values: Values) -> String {
        match m.prepare(cql).await {
            Err(e) => e.to_string(),
            Ok(p) => m.execute(p, values).await.expect_err(cql).to_string(),
        }
    }

    const KV: &str = "CREATE TABLE kv (k text PRIMARY KEY, v bigint, w text)";
    const SERIES: &str =
        "CREATE TABLE series (p text, day int, t bigint, v bigint, PRIMARY KEY ((p, day), t))";
    const EVENTS: &str = "CREATE TABLE events (day int, time bigint, id text, body text, PRIMARY KEY ((day), time, id)) WITH CLUSTERING ORDER BY (time DESC, id DESC)";

    #[tokio::test]
    async fn the_backend_schema_applies_and_end_is_a_quoted_column() {
        let m = CqlModel::new();
        let mut all = super::super::schema_statements(super::super::SCHEMA);
        all.insert(
            0,
            "CREATE TABLE flowwatch_meta (key text PRIMARY KEY, value text)".to_owned(),
        );
        for statement in &all {
            m.schema(statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        // Applying the schema again is a no-op.
        let again = m.schema(&all[1]).await;
        assert!(again.is_ok(), "{again:?}");
        let columns = m.columns("ticks").await.unwrap();
        assert!(columns.contains(&"end".to_owned()) && columns.contains(&"band_spread".to_owned()));
        assert!(m.columns("nope").await.unwrap().is_empty());
        m.schema("ALTER TABLE ticks WITH default_time_to_live = 86400 AND gc_grace_seconds = 10")
            .await
            .unwrap();
        let e = m
            .schema("ALTER TABLE ticks ADD band_lower double")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("already has a column band_lower"), "{e}");
        let e = m
            .schema(KV.replace("kv", "ticks").as_str())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("already exists"), "{e}");
        m.schema("INSERT INTO flowwatch_meta (key, value) VALUES ('schema_version', '6')")
            .await
            .unwrap();
        let rows = run(
            &m,
            "SELECT value FROM flowwatch_meta WHERE key = 'schema_version'",
            vec![],
        )
        .await;
        assert_eq!(rows, vec![vec![text("6")]]);
        let insert = "INSERT INTO ticks (country, lob, kind, name, day, start, \"end\") VALUES (?, ?, ?, ?, ?, ?, ?)";
        let key = vec![text("CZ"), text("SMS"), text("input"), text("a"), int(1)];
        let row = [key.clone(), vec![big(60), big(120)]].concat();
        run(&m, insert, row).await;
        let select = "SELECT \"end\", END FROM ticks WHERE country = ? AND lob = ? AND kind = ? AND name = ? AND day = ?";
        assert_eq!(run(&m, select, key).await, vec![vec![big(120), big(120)]]);
        let read = m.prepare(select).await.unwrap();
        m.schema("DROP TABLE ticks").await.unwrap();
        let key = vec![text("CZ"), text("SMS"), text("input"), text("a"), int(1)];
        let e = m.execute(read, key.clone()).await.unwrap_err().to_string();
        assert!(e.contains("unconfigured table ticks"), "{e}");
        m.schema("DROP TABLE IF EXISTS ticks").await.unwrap();
        assert!(m.schema("DROP TABLE ticks").await.is_err());
        let other = "CREATE TABLE ticks (country text, lob text, kind text, name text, day int, PRIMARY KEY ((country, lob, kind, name, day)))";
        m.schema(other).await.unwrap();
        let e = m.execute(read, key).await.unwrap_err().to_string();
        assert!(e.contains("table ticks has no column \"end\""), "{e}");
    }

    #[tokio::test]
    async fn schema_refusals() {
        let m = CqlModel::new();
        for (bad, why) in [
            ("CREATE TABLE t (a int, b int)", "exactly one PRIMARY KEY"),
            (
                "CREATE TABLE t (a int PRIMARY KEY, a text)",
                "Multiple definition",
            ),
            (
                "CREATE TABLE t (a int, PRIMARY KEY (b))",
                "Unknown definition b",
            ),
            (
                "CREATE TABLE t (a uuid PRIMARY KEY)",
                "does not support type uuid",
            ),
            (
                "CREATE TABLE t (a int, b int, c int, PRIMARY KEY (a, b, c)) WITH CLUSTERING ORDER BY (c DESC)",
                "CLUSTERING ORDER",
            ),
            (
                "CREATE TABLE t (a int PRIMARY KEY) WITH default_time_to_live = -1",
                "default_time_to_live",
            ),
            ("CREATE TABLE select (a int PRIMARY KEY)", "reserved word"),
            ("ALTER TABLE nope ADD x int", "unconfigured table nope"),
            ("CREATE TABLE t (a int PRIMARY KEY", "unexpected end"),
            (
                "CREATE TABLE t (a int PRIMARY KEY) WITH caching = {'keys': {'x': 1}}",
                "syntax error",
            ),
        ] {
            let e = m.schema(bad).await.unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        m.schema("create table if not exists \"T\" (a INT primary key, \"B\" text) with compaction = {'class': 'X', 'n': 1} and comment = 'c';").await.unwrap();
        assert_eq!(m.columns("T").await.unwrap(), ["B", "a"]);
        assert!(m.columns("t").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn clustering_order_and_order_by() {
        let m = model(&[EVENTS]).await;
        let insert = "INSERT INTO events (day, time, id, body) VALUES (1, ?, ?, 'x')";
        for (t, id) in [(1, "a"), (3, "a"), (2, "b"), (2, "a")] {
            run(&m, insert, vec![big(t), text(id)]).await;
        }
        let keys = |rows: Vec<Values>| {
            rows.into_iter()
                .map(|r| (r[0].clone(), r[1].clone()))
                .collect::<Vec<_>>()
        };
        let desc = keys(run(&m, "SELECT time, id FROM events WHERE day = 1", vec![]).await);
        let expected = [(3, "a"), (2, "b"), (2, "a"), (1, "a")].map(|(t, i)| (big(t), text(i)));
        assert_eq!(desc, expected);
        let asc = keys(
            run(
                &m,
                "SELECT time, id FROM events WHERE day = 1 ORDER BY time ASC",
                vec![],
            )
            .await,
        );
        assert_eq!(asc, expected.iter().rev().cloned().collect::<Vec<_>>());
        let same = keys(
            run(
                &m,
                "SELECT time, id FROM events WHERE day = 1 ORDER BY time DESC",
                vec![],
            )
            .await,
        );
        assert_eq!(same, expected);
        let star = run(&m, "SELECT * FROM events WHERE day = 1 LIMIT 1", vec![]).await;
        assert_eq!(star, vec![vec![int(1), big(3), text("a"), text("x")]]);
        for (bad, why) in [
            (
                "SELECT id FROM events ORDER BY time DESC",
                "ORDER BY is only supported",
            ),
            (
                "SELECT id FROM events WHERE day = 1 ORDER BY id DESC",
                "first clustering column",
            ),
            (
                "SELECT id FROM events WHERE day IN (1, 2) ORDER BY time DESC",
                "IN restriction",
            ),
        ] {
            let e = error(&m, bad, vec![]).await;
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn full_scans_and_in_come_in_token_order() {
        let m = model(&[SERIES]).await;
        let insert = "INSERT INTO series (p, day, t, v) VALUES (?, ?, 0, 0)";
        let keys: Vec<(String, i32)> = (0..12).map(|i| (format!("p{}", i / 3), i % 3)).collect();
        for (p, day) in &keys {
            run(&m, insert, vec![text(p), int(*day)]).await;
        }
        let scan: Vec<Values> = run(&m, "SELECT p, day FROM series", vec![]).await;
        let inserted: Vec<Values> = keys.iter().map(|(p, d)| vec![text(p), int(*d)]).collect();
        let mut sorted = inserted.clone();
        sorted.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        assert_eq!(scan.len(), 12);
        assert_ne!(scan, inserted);
        assert_ne!(scan, sorted);
        // Deterministic: the same order every time, and an IN reads in that order too.
        assert_eq!(run(&m, "SELECT p, day FROM series", vec![]).await, scan);
        let days = Some(CqlValue::List(vec![
            CqlValue::Int(2),
            CqlValue::Int(0),
            CqlValue::Int(1),
        ]));
        let p1 = run(
            &m,
            "SELECT p, day FROM series WHERE p = 'p1' AND day IN ?",
            vec![days],
        )
        .await;
        let expected: Vec<Values> = scan
            .iter()
            .filter(|r| r[0] == text("p1"))
            .cloned()
            .collect();
        assert_eq!((p1.len(), p1), (3, expected));
        let e = error(&m, "SELECT p FROM series WHERE p = 'p1'", vec![]).await;
        assert!(
            e.contains("partition key column day is not restricted"),
            "{e}"
        );
        let e = error(
            &m,
            "SELECT p FROM series WHERE p IN ('a') AND day = 1",
            vec![],
        )
        .await;
        assert!(e.contains("cannot be restricted by IN"), "{e}");
        let filtered = run(
            &m,
            "SELECT p FROM series WHERE p = 'p1' ALLOW FILTERING",
            vec![],
        )
        .await;
        assert_eq!(filtered, vec![vec![text("p1")]; 3]);
        // At most 100 partition keys a statement, as ScyllaDB's default.
        let many = |n: i32| Some(CqlValue::List((0..n).map(CqlValue::Int).collect()));
        let read = "SELECT p FROM series WHERE p = 'p1' AND day IN ?";
        assert_eq!(run(&m, read, vec![many(100)]).await.len(), 3);
        let e = error(&m, read, vec![many(101)]).await;
        assert!(
            e.contains("max_partition_key_restrictions_per_query=100"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn ranges_tuples_limits_and_rows_read() {
        let m = model(&[SERIES, EVENTS]).await;
        let insert = m
            .prepare("INSERT INTO series (p, day, t, v) VALUES ('a', 1, ?, ?)")
            .await
            .unwrap();
        for t in 0..1000 {
            m.execute(insert, vec![big(t), big(t * 2)]).await.unwrap();
        }
        m.reset_counts();
        let range = "SELECT t FROM series WHERE p = 'a' AND day = 1 AND t >= ? AND t < ?";
        assert_eq!(
            run(&m, range, vec![big(10), big(13)]).await,
            vec![vec![big(10)], vec![big(11)], vec![big(12)]]
        );
        assert_eq!(m.rows_read(), 3, "a slice reads only its rows");
        m.reset_counts();
        assert_eq!(
            run(
                &m,
                "SELECT t FROM series WHERE p = 'a' AND day = 1 LIMIT 10",
                vec![]
            )
            .await
            .len(),
            10
        );
        assert_eq!(m.rows_read(), 10);
        let count = run(
            &m,
            "SELECT COUNT(*) FROM series WHERE p = 'a' AND day = 1 AND t > 989",
            vec![],
        )
        .await;
        assert_eq!(count, vec![vec![big(10)]]);
        let none = run(
            &m,
            "SELECT count(*) FROM series WHERE p = 'b' AND day = 1",
            vec![],
        )
        .await;
        assert_eq!(none, vec![vec![big(0)]]);
        m.reset_counts();
        let filtered = run(
            &m,
            "SELECT t FROM series WHERE p = 'a' AND day = 1 AND v = 20 ALLOW FILTERING",
            vec![],
        )
        .await;
        assert_eq!(filtered, vec![vec![big(10)]]);
        assert_eq!(m.rows_read(), 1000, "rows filtered out were read");
        m.reset_counts();
        let first = run(
            &m,
            "SELECT t FROM series WHERE p = 'a' AND day = 1 AND v >= 20 LIMIT 1 ALLOW FILTERING",
            vec![],
        )
        .await;
        assert_eq!((first, m.rows_read()), (vec![vec![big(10)]], 11));

        for (t, id) in [(5, "a"), (5, "b"), (5, "c"), (4, "z"), (6, "a")] {
            run(
                &m,
                "INSERT INTO events (day, time, id) VALUES (1, ?, ?)",
                vec![big(t), text(id)],
            )
            .await;
        }
        // Tuples compare by value, whatever the clustering order; rows come in that order.
        let page = run(
            &m,
            "SELECT time, id FROM events WHERE day = 1 AND (time, id) < (?, ?) LIMIT ?",
            vec![big(5), text("c"), int(3)],
        )
        .await;
        assert_eq!(
            page,
            vec![
                vec![big(5), text("b")],
                vec![big(5), text("a")],
                vec![big(4), text("z")]
            ]
        );
        let both = run(
            &m,
            "SELECT id FROM events WHERE day = 1 AND (time) >= (5) AND (time, id) <= (5, 'b')",
            vec![],
        )
        .await;
        assert_eq!(both, vec![vec![text("b")], vec![text("a")]]);
        let prefix = run(
            &m,
            "SELECT id FROM events WHERE day = 1 AND time = 5 AND id > 'a'",
            vec![],
        )
        .await;
        assert_eq!(prefix, vec![vec![text("c")], vec![text("b")]]);
        run(
            &m,
            "INSERT INTO events (day, time, id) VALUES (2, 1, 'q')",
            vec![],
        )
        .await;
        let per = run(
            &m,
            "SELECT day, id FROM events WHERE day IN (1, 2) PER PARTITION LIMIT 1",
            vec![],
        )
        .await;
        assert_eq!(per.len(), 2);
        assert!(per.contains(&vec![int(1), text("a")]) && per.contains(&vec![int(2), text("q")]));
        let e = error(
            &m,
            "SELECT id FROM events WHERE day = 1 AND time = 5 AND (time, id) > (1, 'a')",
            vec![],
        )
        .await;
        assert!(e.contains("Mixing single column"), "{e}");
        let e = error(
            &m,
            "SELECT id FROM events WHERE day = 1 AND (id) > ('a')",
            vec![],
        )
        .await;
        assert!(e.contains("PRIMARY KEY order"), "{e}");
        let e = error(
            &m,
            "SELECT t FROM series WHERE p = 'a' AND day = 1 LIMIT 0",
            vec![],
        )
        .await;
        assert!(e.contains("LIMIT must be strictly positive"), "{e}");
    }

    #[tokio::test]
    async fn refusals() {
        let m = model(&[SERIES, EVENTS, KV]).await;
        for (bad, values, why) in [
            (
                "SELECT foo FROM series",
                vec![],
                "table series has no column \"foo\"",
            ),
            ("SELECT * FROM nope", vec![], "unconfigured table nope"),
            (
                "SELECT t FROM series WHERE day = 1",
                vec![],
                "partition key column p is not restricted",
            ),
            (
                "SELECT id FROM events WHERE day = 1 AND id = 'a'",
                vec![],
                "preceding column time is not restricted",
            ),
            (
                "SELECT id FROM events WHERE day = 1 AND time > 1 AND id = 'a'",
                vec![],
                "non-EQ relation",
            ),
            (
                "SELECT t FROM series WHERE p = 'a' AND day = 1 AND v = 1",
                vec![],
                "ALLOW FILTERING",
            ),
            (
                "SELECT id FROM events WHERE time = 1",
                vec![],
                "ALLOW FILTERING",
            ),
            (
                "SELECT t FROM series WHERE p = 'a' AND day = 1 AND t != 1",
                vec![],
                "Unsupported \"!=\"",
            ),
            (
                "SELECT t FROM series WHERE p = ? AND day = ?",
                vec![text("a"), big(1)],
                "day is of type int, but the bound value is BigInt(1)",
            ),
            (
                "SELECT t FROM series WHERE p = ? AND day = ?",
                vec![text("a")],
                "2 bind markers but 1 values",
            ),
            (
                "SELECT t FROM series WHERE p = ? AND day = 1",
                vec![None],
                "Invalid null value in condition for column p",
            ),
            (
                "SELECT t FROM series WHERE p = 'a' AND day = 'x'",
                vec![],
                "Invalid constant 'x' for day of type int",
            ),
            (
                "SELECT t FROM series WHERE p = 'a' AND day = 1 LIMIT ?",
                vec![big(1)],
                "[limit] is of type int",
            ),
            (
                "INSERT INTO series (p, day, v) VALUES ('a', 1, 2)",
                vec![],
                "primary key column t is missing",
            ),
            (
                "INSERT INTO series (p, day, t) VALUES ('a', 1)",
                vec![],
                "Unmatched column names/values",
            ),
            (
                "INSERT INTO series (p, day, t) VALUES ('a', 1, ?)",
                vec![None],
                "Invalid null value",
            ),
            (
                "INSERT INTO kv (k, v) VALUES ('', 1)",
                vec![],
                "Key may not be empty",
            ),
            (
                "INSERT INTO kv (k, v) VALUES ('a', 1) IF NOT EXISTS USING TIMESTAMP 5",
                vec![],
                "custom timestamp",
            ),
            (
                "INSERT INTO kv (k, v) VALUES ('a', 1) USING TTL ?",
                vec![int(-1)],
                "TTL must be greater or equal to 0",
            ),
            (
                "UPDATE kv SET k = 'b' WHERE k = 'a'",
                vec![],
                "PRIMARY KEY part k found in SET part",
            ),
            (
                "UPDATE kv USING TIMESTAMP 1 SET v = 1 WHERE k = 'a' IF v = 1",
                vec![],
                "custom timestamp",
            ),
            (
                "UPDATE series SET v = 1 WHERE p = 'a' AND day = 1",
                vec![],
                "clustering keys are missing: t",
            ),
            (
                "UPDATE kv SET v = 1 WHERE k = 'a' IF k = 'a'",
                vec![],
                "cannot have IF conditions",
            ),
            (
                "UPDATE kv SET v = 1 WHERE k = 'a' AND w = 'x'",
                vec![],
                "Non PRIMARY KEY columns",
            ),
            (
                "DELETE v FROM series WHERE p = 'a' AND day = 1",
                vec![],
                "Range deletions are not supported for specific columns",
            ),
            (
                "DELETE FROM series WHERE p = 'a' AND day = 1 IF EXISTS",
                vec![],
                "must restrict all PRIMARY KEY columns",
            ),
            (
                "DELETE FROM series WHERE p = 'a'",
                vec![],
                "partition key column day is not restricted",
            ),
            (
                "DELETE FROM kv USING TTL 1 WHERE k = 'a'",
                vec![],
                "syntax error",
            ),
            ("SELECT from FROM kv", vec![], "reserved word from"),
            (
                "SELECT v FROM kv WHERE k = 'a' garbage",
                vec![],
                "syntax error",
            ),
            ("SELECT v FROM kv WHERE k = 'a", vec![], "unterminated"),
            ("DROP TABLE kv", vec![], "syntax error"),
            ("", vec![], "unexpected end"),
        ] {
            let e = error(&m, bad, values).await;
            assert!(e.contains(why), "{bad}: {e}");
        }
        // Nothing panics on junk.
        for junk in [
            "(",
            "SELECT",
            "SELECT * FROM",
            "INSERT INTO kv () VALUES ()",
            "UPDATE kv SET",
            "SELECT * FROM kv WHERE (",
            "SELECT count( FROM kv",
            "\u{1F600}",
            "SELECT * FROM kv WHERE k IN ?;;",
            "SELECT _k FROM kv",
            "/* open",
        ] {
            assert!(m.prepare(junk).await.is_err(), "{junk}");
        }
    }

    /// A value of `marker`'s type (a list of one if it takes a list), varied by `r`.
    fn typed(marker: &Marker, r: usize) -> Option<CqlValue> {
        let n = i8::try_from(r).unwrap() - 3;
        let one = match marker.ty {
            Ty::Text | Ty::Ascii => CqlValue::Text(["a", "b", ""][r % 3].to_owned()),
            Ty::BigInt => CqlValue::BigInt(n.into()),
            Ty::Int => CqlValue::Int(n.into()),
            Ty::SmallInt => CqlValue::SmallInt(n.into()),
            Ty::TinyInt => CqlValue::TinyInt(n),
            Ty::Double => CqlValue::Double(n.into()),
            Ty::Float => CqlValue::Float(n.into()),
            Ty::Boolean => CqlValue::Boolean(r.is_multiple_of(2)),
            Ty::Blob => CqlValue::Blob(vec![n as u8]),
            Ty::Timestamp => CqlValue::Timestamp(CqlTimestamp(n.into())),
        };
        Some(if marker.list {
            CqlValue::List(vec![one])
        } else {
            one
        })
    }

    /// Valid statements, mutated at random (deterministically), prepared and run with random
    /// values: whatever the input, an error and never a panic.
    #[tokio::test]
    async fn mutated_statements_never_panic() {
        let m = model(&[SERIES, EVENTS, KV]).await;
        let templates = [
            "SELECT p , day , t FROM series WHERE p = ? AND day IN ? AND t >= ? AND t < 5 LIMIT ?",
            "SELECT count(*) FROM events WHERE day = 1 AND ( time , id ) < ( ? , ? ) ORDER BY time ASC",
            "SELECT * FROM events PER PARTITION LIMIT 2 LIMIT 3 ALLOW FILTERING",
            "INSERT INTO kv ( k , v , w ) VALUES ( ? , ? , 'x' ) IF NOT EXISTS USING TTL ?",
            "UPDATE kv USING TTL 5 AND TIMESTAMP ? SET v = ? , w = null WHERE k IN ( 'a' , ? )",
            "UPDATE series SET v = ? WHERE p = 'a' AND day = 1 AND t = ? IF v <= ? AND v != null",
            "DELETE v FROM series USING TIMESTAMP 3 WHERE p = ? AND day = ? AND t = ? IF EXISTS",
            "DELETE FROM events WHERE day = ? AND time > ? AND time <= 9 ;",
            "CREATE TABLE IF NOT EXISTS x ( a int , b text , PRIMARY KEY ( ( a ) , b ) ) WITH CLUSTERING ORDER BY ( b DESC ) AND c = { 'k' : 1 }",
            "ALTER TABLE x ADD \"end\" bigint",
        ];
        let tokens: Vec<&str> = templates.iter().flat_map(|t| t.split(' ')).collect();
        let values = [
            None,
            text("a"),
            text(""),
            big(-1),
            int(0),
            int(i32::MAX),
            Some(CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(2)])),
            Some(CqlValue::List(vec![CqlValue::Text("b".into())])),
            Some(CqlValue::Boolean(true)),
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        };
        for round in 0..4_000 {
            let mut words: Vec<&str> = templates[round % templates.len()].split(' ').collect();
            for _ in 0..next(4) {
                let at = next(words.len() + 1);
                match next(3) {
                    0 if at < words.len() => drop(words.remove(at)),
                    1 if at < words.len() => words[at] = tokens[next(tokens.len())],
                    _ => words.insert(at, tokens[next(tokens.len())]),
                }
            }
            let cql = words.join(" ");
            let _ = m.schema(&cql).await;
            if let Ok(p) = m.prepare(&cql).await {
                let markers = m.state().statements[p.0].markers.clone();
                let mut bound: Values = markers
                    .iter()
                    .map(|marker| match next(8) {
                        0 => values[next(values.len())].clone(),
                        r => typed(marker, r),
                    })
                    .collect();
                if next(10) == 0 {
                    bound.push(None);
                }
                let _ = m.execute(p, bound).await;
            }
        }
        assert!(
            m.live_rows("kv") + m.tombstones("kv") > 0,
            "some mutations ran"
        );
    }

    #[tokio::test]
    async fn rows_exist_by_marker_or_live_cell_and_nulls_are_tombstones() {
        let m = model(&[KV]).await;
        run(&m, "INSERT INTO kv (k) VALUES ('ins')", vec![]).await;
        run(&m, "UPDATE kv SET v = null WHERE k = 'upd'", vec![]).await;
        assert_eq!(
            run(&m, "SELECT k FROM kv WHERE k = 'ins'", vec![]).await,
            vec![vec![text("ins")]]
        );
        assert!(
            run(&m, "SELECT k FROM kv WHERE k = 'upd'", vec![])
                .await
                .is_empty()
        );
        assert_eq!(m.tombstones("kv"), 1);
        run(&m, "UPDATE kv SET v = 1 WHERE k = 'upd'", vec![]).await;
        assert_eq!((m.live_rows("kv"), m.tombstones("kv")), (2, 0));
        // Nulling the only cell of an UPDATE-made row makes it vanish; an INSERT-made row stays.
        run(&m, "UPDATE kv SET v = ? WHERE k = 'upd'", vec![None]).await;
        run(
            &m,
            "INSERT INTO kv (k, v, w) VALUES ('ins', null, ?)",
            vec![None],
        )
        .await;
        assert_eq!(m.live_rows("kv"), 1);
        assert_eq!(m.tombstones("kv"), 3);
        let star = run(&m, "SELECT * FROM kv", vec![]).await;
        assert_eq!(star, vec![vec![text("ins"), None, None]]);
        assert_eq!(m.partitions("kv"), (1, 1));
    }

    #[tokio::test]
    async fn last_write_wins_by_timestamp() {
        let m = model(&[KV]).await;
        let write = "INSERT INTO kv (k, v) VALUES ('a', ?) USING TIMESTAMP ?";
        run(&m, write, vec![big(2), big(200)]).await;
        run(&m, write, vec![big(1), big(100)]).await;
        let read = "SELECT v FROM kv WHERE k = 'a'";
        assert_eq!(run(&m, read, vec![]).await, vec![vec![big(2)]]);
        // A tie: the greater serialised value wins, and a tombstone beats any value.
        run(&m, write, vec![big(3), big(200)]).await;
        run(&m, write, vec![big(1), big(200)]).await;
        assert_eq!(run(&m, read, vec![]).await, vec![vec![big(3)]]);
        run(
            &m,
            "DELETE v FROM kv USING TIMESTAMP 200 WHERE k = 'a'",
            vec![],
        )
        .await;
        assert_eq!(run(&m, read, vec![]).await, vec![vec![None]]);
        // A write without a timestamp is newer than any of these.
        run(&m, "UPDATE kv SET v = 9 WHERE k = 'a'", vec![]).await;
        assert_eq!(run(&m, read, vec![]).await, vec![vec![big(9)]]);
        run(
            &m,
            "UPDATE kv USING TTL 0 AND TIMESTAMP 5 SET v = 10 WHERE k = 'a'",
            vec![],
        )
        .await;
        assert_eq!(run(&m, read, vec![]).await, vec![vec![big(9)]]);
    }

    #[tokio::test]
    async fn deletes_of_each_kind_and_their_tombstones() {
        let m = model(&[EVENTS]).await;
        let insert = m
            .prepare("INSERT INTO events (day, time, id, body) VALUES (?, ?, ?, 'b')")
            .await
            .unwrap();
        for day in [1, 2] {
            for t in 0..10 {
                m.execute(insert, vec![int(day), big(t), text("x")])
                    .await
                    .unwrap();
            }
        }
        assert_eq!(m.partitions("events"), (2, 10));
        run(
            &m,
            "DELETE body FROM events WHERE day = 1 AND time = 9 AND id = 'x'",
            vec![],
        )
        .await;
        assert_eq!((m.live_rows("events"), m.tombstones("events")), (20, 1));
        run(
            &m,
            "DELETE FROM events WHERE day = 1 AND time = 9 AND id = 'x'",
            vec![],
        )
        .await;
        // The row tombstone covers the older cell tombstone.
        assert_eq!((m.live_rows("events"), m.tombstones("events")), (19, 1));
        run(
            &m,
            "DELETE FROM events WHERE day = 1 AND time >= 2 AND time < 5",
            vec![],
        )
        .await;
        run(&m, "DELETE FROM events WHERE day = 1 AND time = 0", vec![]).await;
        assert_eq!((m.live_rows("events"), m.tombstones("events")), (15, 3));
        let left = run(&m, "SELECT time FROM events WHERE day = 1", vec![]).await;
        assert_eq!(left, [8, 7, 6, 5, 1].map(|t| vec![big(t)]));
        run(
            &m,
            "DELETE FROM events WHERE day IN ?",
            vec![Some(CqlValue::List(vec![CqlValue::Int(2)]))],
        )
        .await;
        assert_eq!((m.live_rows("events"), m.tombstones("events")), (5, 4));
        assert_eq!(m.partitions("events"), (1, 5));
        // A later write shows through a tombstone; an older one does not.
        m.execute(insert, vec![int(2), big(3), text("x")])
            .await
            .unwrap();
        run(
            &m,
            "INSERT INTO events (day, time, id) VALUES (1, 3, 'x') USING TIMESTAMP 1",
            vec![],
        )
        .await;
        assert_eq!(m.live_rows("events"), 6);
        run(&m, "DELETE FROM events WHERE day = 1", vec![]).await;
        assert_eq!((m.live_rows("events"), m.tombstones("events")), (1, 2));
        m.schema("TRUNCATE events").await.unwrap();
        assert_eq!((m.live_rows("events"), m.tombstones("events")), (0, 0));
    }

    #[tokio::test]
    async fn ttls_expire_by_the_model_clock() {
        let m =
            model(&["CREATE TABLE t (k int PRIMARY KEY, v int) WITH default_time_to_live = 100"])
                .await;
        m.set_now(1_000);
        run(&m, "INSERT INTO t (k, v) VALUES (1, 1)", vec![]).await;
        run(
            &m,
            "INSERT INTO t (k, v) VALUES (2, 2) USING TTL ?",
            vec![int(10)],
        )
        .await;
        run(&m, "INSERT INTO t (k, v) VALUES (3, 3) USING TTL 0", vec![]).await;
        run(&m, "UPDATE t USING TTL 50 SET v = 4 WHERE k = 4", vec![]).await;
        assert_eq!(m.live_rows("t"), 4);
        m.set_now(1_009);
        assert_eq!(m.live_rows("t"), 4);
        m.set_now(1_010);
        assert_eq!(m.live_rows("t"), 3);
        assert!(
            run(&m, "SELECT v FROM t WHERE k = 2", vec![])
                .await
                .is_empty()
        );
        m.set_now(1_050);
        assert_eq!(m.live_rows("t"), 2);
        m.set_now(1_100);
        let rows = run(&m, "SELECT k FROM t", vec![]).await;
        assert_eq!(rows, vec![vec![int(3)]]);
        assert_eq!(
            m.tombstones("t"),
            0,
            "expired cells are not tombstones here"
        );
        // An expired row is gone for a transaction too.
        let r = run(
            &m,
            "INSERT INTO t (k, v) VALUES (1, 5) IF NOT EXISTS",
            vec![],
        )
        .await;
        assert_eq!(r, vec![vec![applied(true)]]);
        m.schema("ALTER TABLE t WITH default_time_to_live = 0")
            .await
            .unwrap();
        run(&m, "INSERT INTO t (k) VALUES (9)", vec![]).await;
        m.set_now(1_000_000);
        assert_eq!(
            run(&m, "SELECT k FROM t WHERE k = 9", vec![]).await,
            vec![vec![int(9)]]
        );
    }

    #[tokio::test]
    async fn lightweight_transactions_answer_as_a_node() {
        let m = model(&[KV]).await;
        let insert = "INSERT INTO kv (k, v, w) VALUES (?, ?, ?) IF NOT EXISTS";
        assert_eq!(
            run(&m, insert, vec![text("a"), big(1), text("x")]).await,
            vec![vec![applied(true)]]
        );
        let again = run(&m, insert, vec![text("a"), big(2), None]).await;
        assert_eq!(
            again,
            vec![vec![applied(false), text("a"), big(1), text("x")]]
        );
        let update = "UPDATE kv SET v = ? WHERE k = ? IF v <= ? AND w = ?";
        let no = run(&m, update, vec![big(5), text("a"), big(0), text("x")]).await;
        assert_eq!(no, vec![vec![applied(false), big(1), text("x")]]);
        let yes = run(&m, update, vec![big(5), text("a"), big(1), text("x")]).await;
        assert_eq!(yes, vec![vec![applied(true)]]);
        // A missing row: only `= null` and `!= value` hold, and a failed update creates nothing.
        let missing = run(&m, "UPDATE kv SET v = 1 WHERE k = 'b' IF v = 3", vec![]).await;
        assert_eq!(missing, vec![vec![applied(false), None]]);
        assert!(
            run(&m, "SELECT k FROM kv WHERE k = 'b'", vec![])
                .await
                .is_empty()
        );
        let null = run(
            &m,
            "UPDATE kv SET v = 1 WHERE k = 'b' IF v = null AND w != 'q'",
            vec![],
        )
        .await;
        assert_eq!(null, vec![vec![applied(true)]]);
        let e = error(&m, "UPDATE kv SET v = 1 WHERE k = 'b' IF v > ?", vec![None]).await;
        assert!(e.contains("Invalid comparison with null"), "{e}");
        let exists = "UPDATE kv SET w = 'y' WHERE k = ? IF EXISTS";
        assert_eq!(
            run(&m, exists, vec![text("a")]).await,
            vec![vec![applied(true)]]
        );
        assert_eq!(
            run(&m, exists, vec![text("zz")]).await,
            vec![vec![applied(false)]]
        );
        let delete = "DELETE FROM kv WHERE k = ? IF w = 'y'";
        assert_eq!(
            run(&m, delete, vec![text("a")]).await,
            vec![vec![applied(true)]]
        );
        assert_eq!(
            run(&m, "DELETE FROM kv WHERE k = 'a' IF EXISTS", vec![]).await,
            vec![vec![applied(false)]]
        );
        assert_eq!(m.transactions(), 10);
        let rows = run(&m, "SELECT k, v FROM kv", vec![]).await;
        assert_eq!(rows, vec![vec![text("b"), big(1)]]);
    }

    #[tokio::test]
    async fn batches_and_their_limit() {
        let m = model(&[SERIES, KV]).await;
        let insert = m
            .prepare("INSERT INTO series (p, day, t, v) VALUES ('a', 1, ?, 0)")
            .await
            .unwrap();
        let statements = |n: i64| (0..n).map(|t| (insert, vec![big(t)])).collect::<Vec<_>>();
        let e = m.batch(statements(65_536)).await.unwrap_err().to_string();
        assert!(e.contains("TooManyQueriesInBatchStatement"), "{e}");
        assert_eq!((m.live_rows("series"), m.requests()), (0, 0));
        m.batch(statements(65_535)).await.unwrap();
        assert_eq!(m.live_rows("series"), 65_535);
        assert_eq!((m.requests(), m.statements()), (1, 65_535));
        let select = m.prepare("SELECT v FROM kv").await.unwrap();
        let e = m
            .batch(vec![(select, vec![])])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("only INSERT, UPDATE and DELETE"), "{e}");
        let lwt = m
            .prepare("INSERT INTO kv (k) VALUES ('a') IF NOT EXISTS")
            .await
            .unwrap();
        let plain = m
            .prepare("INSERT INTO kv (k, v) VALUES (?, ?)")
            .await
            .unwrap();
        let e = m
            .batch(vec![(plain, vec![text("b"), big(1)]), (lwt, vec![])])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("conditional statements"), "{e}");
        let e = m
            .batch(vec![
                (plain, vec![text("b"), big(1)]),
                (plain, vec![text("c"), int(1)]),
            ])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("v is of type bigint"), "{e}");
        assert_eq!(m.live_rows("kv"), 0, "a refused batch applies nothing");
        // One timestamp for the batch: an insert and a delete of one row tie, the delete wins.
        let delete = m.prepare("DELETE FROM kv WHERE k = ?").await.unwrap();
        m.batch(vec![
            (plain, vec![text("d"), big(1)]),
            (delete, vec![text("d")]),
        ])
        .await
        .unwrap();
        assert_eq!(m.live_rows("kv"), 0);
    }

    #[tokio::test]
    async fn crashes_lose_answers_or_requests_until_recovery() {
        let m = model(&[KV]).await;
        let write = m
            .prepare("INSERT INTO kv (k, v) VALUES (?, 1)")
            .await
            .unwrap();
        m.crash_after(1, false);
        m.execute(write, vec![text("a")]).await.unwrap();
        let e = m
            .execute(write, vec![text("b")])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("crash injected"), "{e}");
        assert!(
            m.execute(write, vec![text("c")]).await.is_err(),
            "dead until recovered"
        );
        assert!(
            m.prepare("SELECT k FROM kv").await.is_ok(),
            "prepare is never failed"
        );
        m.recover();
        assert_eq!(m.live_rows("kv"), 1);
        m.crash_after(0, true);
        assert!(m.execute(write, vec![text("b")]).await.is_err());
        m.recover();
        assert_eq!(m.live_rows("kv"), 2, "applied, then the answer was lost");
        // A failed request does not bring the crash nearer: only successes count.
        m.crash_after(1, false);
        let bad = m
            .execute(write, vec![big(1)])
            .await
            .unwrap_err()
            .to_string();
        assert!(!bad.contains("crash"), "{bad}");
        m.execute(write, vec![text("c")]).await.unwrap();
        assert!(m.execute(write, vec![text("d")]).await.is_err());
        m.recover();
        // A batch applied then lost keeps only its first statement's partition.
        let series = "CREATE TABLE s (p text, t int, PRIMARY KEY (p, t))";
        m.schema(series).await.unwrap();
        let insert = m
            .prepare("INSERT INTO s (p, t) VALUES (?, ?)")
            .await
            .unwrap();
        m.crash_after(0, true);
        let batch = vec![
            (insert, vec![text("x"), int(1)]),
            (insert, vec![text("y"), int(1)]),
            (insert, vec![text("x"), int(2)]),
        ];
        assert!(m.batch(batch).await.is_err());
        m.recover();
        let rows = run(&m, "SELECT p, t FROM s", vec![]).await;
        assert_eq!(rows, vec![vec![text("x"), int(1)], vec![text("x"), int(2)]]);
        // A clone is a handle on the same keyspace.
        assert_eq!(m.clone().live_rows("s"), 2);
    }

    #[tokio::test]
    async fn counters_count_requests_statements_reads_and_transactions() {
        let m = model(&[KV]).await;
        let write = m
            .prepare("INSERT INTO kv (k, v) VALUES (?, 1)")
            .await
            .unwrap();
        let read = m.prepare("SELECT k FROM kv").await.unwrap();
        let lwt = m
            .prepare("UPDATE kv SET v = 2 WHERE k = ? IF v = 1")
            .await
            .unwrap();
        assert_eq!((m.requests(), m.statements()), (0, 0));
        m.execute(write, vec![text("a")]).await.unwrap();
        m.batch(vec![(write, vec![text("b")]), (write, vec![text("c")])])
            .await
            .unwrap();
        m.execute(read, vec![]).await.unwrap();
        m.execute(lwt, vec![text("a")]).await.unwrap();
        m.execute(lwt, vec![text("a")]).await.unwrap();
        assert_eq!(m.requests(), 5);
        assert_eq!(m.statements(), 6);
        assert_eq!(m.rows_read(), 3);
        assert_eq!(m.transactions(), 2);
        m.schema("INSERT INTO kv (k) VALUES ('z')").await.unwrap();
        m.columns("kv").await.unwrap();
        assert_eq!(
            m.requests(),
            5,
            "schema, columns and prepare are not requests"
        );
        m.reset_counts();
        assert_eq!(
            (
                m.requests(),
                m.statements(),
                m.rows_read(),
                m.transactions()
            ),
            (0, 0, 0, 0)
        );
    }
}

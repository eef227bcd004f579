//! A prepared statement as the checker types it (`Statement`: its bind markers, the rows it
//! reaches, what it reads or writes) and how it runs: its values bound and checked as the
//! driver checks them, its WHERE resolved against a table, a read's rows, a write's mutations
//! and a lightweight transaction's condition.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::store::{
    Cell, Change, Mutation, Op, Partition, PartitionId, Slice, SliceBound, Stamp, Table, Ty,
    compare, encode, partition_id,
};
use super::{Fallible, MAX_TTL};
use crate::scylla::cql::{CqlValue, Values};

/// Bound values after the type check, normalised to their columns' types.
type Binds = [Option<CqlValue>];

/// A prepared statement: its text, the type of each bind marker, what it does.
pub(super) struct Statement {
    pub(super) cql: String,
    pub(super) markers: Vec<Marker>,
    pub(super) kind: Kind,
}

/// What one bind marker takes.
#[derive(Clone)]
pub(super) struct Marker {
    pub(super) name: String,
    pub(super) ty: Ty,
    pub(super) list: bool,
}

pub(super) enum Kind {
    Select(Select),
    Write(Write),
}

#[derive(Clone, Debug)]
pub(super) enum Term {
    Marker(usize),
    Const(Option<CqlValue>),
}

/// The values of an `IN`.
#[derive(Clone, Debug)]
pub(super) enum Many {
    Marker(usize),
    Terms(Vec<Term>),
}

#[derive(Clone, Debug)]
pub(super) enum KeyPart {
    One(Term),
    In(Many),
}

/// One side of a clustering slice: from clustering column `start`, a tuple of values.
#[derive(Debug)]
pub(super) struct TermBound {
    pub(super) start: usize,
    pub(super) terms: Vec<Term>,
    pub(super) inclusive: bool,
}

#[derive(Clone, Debug)]
pub(super) enum Rel {
    Cmp(Op, Term),
    In(Many),
}

/// A restriction applied to each row read (ALLOW FILTERING, or a key restriction a node
/// cannot use to find rows).
#[derive(Clone, Debug)]
pub(super) struct Restriction {
    pub(super) column: String,
    pub(super) rel: Rel,
}

/// The rows a statement reaches: partitions (all of them if `None`), a clustering slice and
/// filters.
#[derive(Debug, Default)]
pub(super) struct Where {
    pub(super) partition: Option<Vec<KeyPart>>,
    pub(super) eq: Vec<Term>,
    pub(super) lower: Option<TermBound>,
    pub(super) upper: Option<TermBound>,
    pub(super) filters: Vec<Restriction>,
}

pub(super) struct Select {
    pub(super) table: String,
    pub(super) count: bool,
    pub(super) columns: Vec<String>,
    pub(super) target: Where,
    pub(super) reversed: bool,
    pub(super) per_partition_limit: Option<Term>,
    pub(super) limit: Option<Term>,
}

pub(super) struct Write {
    pub(super) table: String,
    pub(super) target: Where,
    pub(super) action: Action,
    pub(super) ttl: Option<Term>,
    pub(super) timestamp: Option<Term>,
    pub(super) cond: Cond,
}

pub(super) enum Action {
    /// INSERT (with a row marker), UPDATE, or DELETE of named cells (nulls, no marker).
    Upsert {
        marker: bool,
        cells: Vec<(String, Term)>,
    },
    /// DELETE of the rows `target` designates.
    Delete,
}

pub(super) enum Cond {
    None,
    NotExists,
    Exists,
    Columns(Vec<(String, Op, Term)>),
}

impl Statement {
    /// The bound values, checked as the driver checks them against the prepared metadata.
    pub(super) fn bind(&self, values: &Values) -> Fallible<Vec<Option<CqlValue>>> {
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
    pub(super) fn run(&self, table: &Table, v: &Binds, now: i64) -> Fallible<(Vec<Values>, u64)> {
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
    pub(super) fn plan(
        &self,
        table: &Table,
        v: &Binds,
        ts: i64,
        now: i64,
    ) -> Fallible<Vec<Mutation>> {
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
    pub(super) fn condition(&self, table: &Table, v: &Binds, now: i64) -> Fallible<(bool, Values)> {
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

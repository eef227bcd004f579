//! The stored data: tables, partitions, rows and cells, with row markers, TTLs and cell, row,
//! range and partition tombstones, and how writes and deletes merge into it (last write wins
//! by timestamp). Then column types, values and their order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use scylla::value::CqlTimestamp;

use super::Fallible;
use super::parse::Lit;
use crate::scylla::cql::CqlValue;

// ---------------------------------------------------------------------------------------------
// Stored data
// ---------------------------------------------------------------------------------------------

/// When a write happened (microseconds) and when it expires (Unix seconds).
#[derive(Clone, Copy, Debug)]
pub(super) struct Stamp {
    pub(super) ts: i64,
    pub(super) expires: Option<i64>,
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
pub(super) struct Cell {
    pub(super) stamp: Stamp,
    pub(super) value: Option<CqlValue>,
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
pub(super) struct Row {
    /// Written by INSERT: the row exists while it lives, whatever its cells.
    marker: Option<Stamp>,
    deleted: Option<i64>,
    cells: BTreeMap<String, Cell>,
}

impl Row {
    pub(super) fn is_live(&self, now: i64) -> bool {
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
pub(super) struct Ordered {
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
pub(super) struct Slice {
    pub(super) eq: Vec<CqlValue>,
    pub(super) lower: Option<SliceBound>,
    pub(super) upper: Option<SliceBound>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct SliceBound {
    pub(super) start: usize,
    pub(super) values: Vec<CqlValue>,
    pub(super) inclusive: bool,
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
pub(super) struct Partition {
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

    pub(super) fn live_rows(&self, now: i64) -> usize {
        self.rows.values().filter(|r| r.is_live(now)).count()
    }

    pub(super) fn tombstones(&self) -> usize {
        let rows: usize = self.rows.values().map(Row::tombstones).sum();
        usize::from(self.deleted.is_some()) + self.ranges.len() + rows
    }

    /// The rows of `slice`, in clustering order (reversed if asked): a seek to the equal
    /// prefix, then the bounds, as a node reads a slice without touching the rest.
    pub(super) fn slice<'a>(
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
pub(super) type PartitionId = (u64, Vec<u8>);

pub(super) fn partition_id(key: &[CqlValue]) -> PartitionId {
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
pub(super) struct Mutation {
    pub(super) pk: Vec<CqlValue>,
    pub(super) change: Change,
}

#[derive(Clone, Debug)]
pub(super) enum Change {
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
pub(super) struct Table {
    pub(super) name: String,
    pub(super) columns: BTreeMap<String, Ty>,
    pub(super) partition: Vec<String>,
    pub(super) clustering: Vec<String>,
    pub(super) desc: Vec<bool>,
    pub(super) default_ttl: i64,
    pub(super) data: BTreeMap<PartitionId, Partition>,
}

impl Table {
    /// The columns of `SELECT *`: partition key, clustering key, then the rest by name.
    pub(super) fn star(&self) -> Vec<String> {
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
    pub(super) fn still_has<'a>(
        &self,
        columns: impl IntoIterator<Item = &'a String>,
    ) -> Fallible<()> {
        match columns.into_iter().find(|c| !self.columns.contains_key(*c)) {
            Some(c) => Err(invalid!("table {} has no column \"{c}\"", self.name)),
            None => Ok(()),
        }
    }

    pub(super) fn is_key(&self, column: &str) -> bool {
        self.partition
            .iter()
            .chain(&self.clustering)
            .any(|c| c == column)
    }

    pub(super) fn clustering_key(&self, values: &[CqlValue]) -> Ck {
        let ordered = values.iter().zip(&self.desc).map(|(v, &desc)| Ordered {
            value: v.clone(),
            desc,
        });
        ordered.collect()
    }

    pub(super) fn value_of(
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

    pub(super) fn live_row(
        &self,
        pk: &[CqlValue],
        ck: &Ck,
        now: i64,
    ) -> Option<(&Partition, &Row)> {
        let p = self.data.get(&partition_id(pk))?;
        let row = p.rows.get(ck)?;
        row.is_live(now).then_some((p, row))
    }

    /// What a DELETE of `slice` writes: a partition, row or range tombstone.
    pub(super) fn deletion(&self, slice: Slice, ts: i64) -> Change {
        let bounded = slice.lower.is_some() || slice.upper.is_some();
        if slice.eq.is_empty() && !bounded {
            Change::DeletePartition(ts)
        } else if slice.eq.len() == self.clustering.len() {
            Change::DeleteRow(self.clustering_key(&slice.eq), ts)
        } else {
            Change::DeleteRange(slice, ts)
        }
    }

    pub(super) fn apply(&mut self, m: Mutation) {
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
pub(super) enum Ty {
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
    pub(super) fn parse(name: &str) -> Option<Ty> {
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

    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn accepts(self, v: &CqlValue) -> bool {
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
    pub(super) fn normalize(self, v: CqlValue) -> Fallible<CqlValue> {
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
    pub(super) fn literal(self, lit: &Lit, column: &str) -> Fallible<Option<CqlValue>> {
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
pub(super) fn encode(v: &CqlValue) -> Vec<u8> {
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
pub(super) fn compare(a: &CqlValue, b: &CqlValue) -> Ordering {
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
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// Whether `value op bound` holds, given how value compares to bound.
    pub(super) fn holds(self, order: Ordering) -> bool {
        match self {
            Op::Eq => order == Ordering::Equal,
            Op::Ne => order != Ordering::Equal,
            Op::Lt => order == Ordering::Less,
            Op::Le => order != Ordering::Greater,
            Op::Gt => order == Ordering::Greater,
            Op::Ge => order != Ordering::Less,
        }
    }

    pub(super) fn symbol(self) -> &'static str {
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

//! The checker: types a parsed statement against its table's schema into a prepared
//! `Statement` (`prepare`, `Checker`), and refuses what a node refuses to prepare.

use std::collections::BTreeMap;

use super::parse::{
    Ast, DeleteAst, InsertAst, Parser, Projection, Raw, RawCond, RawMany, RawRel, SelectAst,
    UpdateAst, Using,
};
use super::statement::{
    Action, Cond, KeyPart, Kind, Many, Marker, Rel, Restriction, Select, Statement, Term,
    TermBound, Where, Write,
};
use super::store::{Op, Table, Ty};
use super::{Fallible, unconfigured};

pub(super) fn prepare(tables: &BTreeMap<String, Table>, cql: &str) -> Fallible<Statement> {
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

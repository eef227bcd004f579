//! The one seam between the ScyllaDB backend and a node: [`Cql`]. Statements are CQL text,
//! prepared once; values and rows are [`CqlValue`]s, null as `None`.
//!
//! [`Driver`] is the only path to a node: the `scylla` driver, every statement prepared at
//! the store's consistency, routed to a replica of its partition (token-aware), reads paged.
//! The conformance suite also runs the backend on `model::CqlModel` (feature `testsuite`), a
//! model of the CQL semantics the backend relies on; it is a test instrument, never a backend
//! a URI can select.

use std::sync::RwLock;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Row;

pub use scylla::value::CqlValue;

use crate::error::Result;

/// The most statements one batch may hold: the driver refuses more
/// (`TooManyQueriesInBatchStatement`; the protocol counts them in 16 bits).
pub const BATCH_LIMIT: usize = 65_535;

/// A row's columns, or a statement's bound values, in order; null as `None`.
pub type Values = Vec<Option<CqlValue>>;

/// A prepared statement: its place in the executor's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prepared(pub usize);

/// What runs the backend's statements.
#[async_trait]
pub trait Cql: Send + Sync + 'static {
    /// Runs a schema statement (`CREATE TABLE`, `ALTER TABLE`), unprepared.
    async fn schema(&self, cql: &str) -> Result<()>;

    /// Prepares a statement (what a node refuses to prepare is an error here).
    async fn prepare(&self, cql: &str) -> Result<Prepared>;

    /// Runs a prepared statement with its bound values: every row it answers, all pages read.
    /// A lightweight transaction answers one row, `[applied]` first; a plain write none.
    async fn execute(&self, statement: Prepared, values: Values) -> Result<Vec<Values>>;

    /// Runs an unlogged batch of prepared writes (at most [`BATCH_LIMIT`] statements).
    async fn batch(&self, statements: Vec<(Prepared, Values)>) -> Result<()>;
}

fn driver_err(e: impl Into<crate::error::Source>) -> crate::Error {
    crate::Error::backend("scylla", e)
}

/// [`Cql`] on a node, through the `scylla` driver.
pub struct Driver {
    session: Session,
    consistency: Consistency,
    prepared: RwLock<Vec<(PreparedStatement, bool)>>,
}

impl Driver {
    /// A driver on a session already using its keyspace; every statement runs at
    /// `consistency`.
    pub fn new(session: Session, consistency: Consistency) -> Driver {
        Driver {
            session,
            consistency,
            prepared: RwLock::new(Vec::new()),
        }
    }

    fn statement(&self, p: Prepared) -> (PreparedStatement, bool) {
        self.prepared.read().expect("statement table")[p.0].clone()
    }
}

#[async_trait]
impl Cql for Driver {
    async fn schema(&self, cql: &str) -> Result<()> {
        self.session
            .query_unpaged(cql, ())
            .await
            .map_err(driver_err)?;
        Ok(())
    }

    async fn prepare(&self, cql: &str) -> Result<Prepared> {
        let mut ps = self.session.prepare(cql).await.map_err(driver_err)?;
        ps.set_consistency(self.consistency);
        let select = cql.trim_start().starts_with("SELECT");
        // A plain write may be sent again after a timeout; a transaction may not.
        ps.set_is_idempotent(!cql.contains(" IF "));
        let mut table = self.prepared.write().expect("statement table");
        table.push((ps, select));
        Ok(Prepared(table.len() - 1))
    }

    async fn execute(&self, statement: Prepared, values: Values) -> Result<Vec<Values>> {
        let (ps, select) = self.statement(statement);
        if select {
            let pager = self
                .session
                .execute_iter(ps, values)
                .await
                .map_err(driver_err)?;
            let rows: Vec<Row> = pager
                .rows_stream::<Row>()
                .map_err(driver_err)?
                .try_collect()
                .await
                .map_err(driver_err)?;
            return Ok(rows.into_iter().map(|r| r.columns).collect());
        }
        let result = self
            .session
            .execute_unpaged(&ps, values)
            .await
            .map_err(driver_err)?;
        if !result.is_rows() {
            return Ok(Vec::new());
        }
        let rows = result.into_rows_result().map_err(driver_err)?;
        let rows: Vec<Row> = rows
            .rows::<Row>()
            .map_err(driver_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(driver_err)?;
        Ok(rows.into_iter().map(|r| r.columns).collect())
    }

    async fn batch(&self, statements: Vec<(Prepared, Values)>) -> Result<()> {
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_consistency(self.consistency);
        let mut values = Vec::with_capacity(statements.len());
        for (p, v) in statements {
            batch.append_statement(self.statement(p).0);
            values.push(v);
        }
        self.session
            .batch(&batch, values)
            .await
            .map_err(driver_err)?;
        Ok(())
    }
}

/// A Rust value as a bound CQL value.
pub(crate) trait IntoCql {
    fn into_cql(self) -> Option<CqlValue>;
}

macro_rules! into_cql {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl IntoCql for $t {
            fn into_cql(self) -> Option<CqlValue> {
                let $v = self;
                Some($e)
            }
        })*
    };
}

into_cql! {
    &str => |v| CqlValue::Text(v.to_owned()),
    &String => |v| CqlValue::Text(v.clone()),
    String => |v| CqlValue::Text(v),
    i64 => |v| CqlValue::BigInt(v),
    i32 => |v| CqlValue::Int(v),
    i8 => |v| CqlValue::TinyInt(v),
    f64 => |v| CqlValue::Double(v),
}

impl<T: IntoCql> IntoCql for Option<T> {
    fn into_cql(self) -> Option<CqlValue> {
        self.and_then(IntoCql::into_cql)
    }
}

impl IntoCql for &Option<String> {
    fn into_cql(self) -> Option<CqlValue> {
        self.as_ref().map(|s| CqlValue::Text(s.clone()))
    }
}

/// A statement's bound values: `()` or a tuple of [`IntoCql`]s, or [`Values`] as they are.
pub(crate) trait Bind {
    fn bind(self) -> Values;
}

impl Bind for Values {
    fn bind(self) -> Values {
        self
    }
}

/// A stored CQL value as a Rust value (a mismatch is corrupt data).
pub(crate) trait FromCql: Sized {
    fn from_cql(v: Option<CqlValue>) -> Result<Self>;
}

fn mismatch(want: &str, got: &Option<CqlValue>) -> crate::Error {
    crate::Error::Corrupt {
        place: "scylla".into(),
        detail: format!("expected a {want} column, read {got:?}"),
    }
}

macro_rules! from_cql {
    ($($t:ty, $want:literal: $($pat:pat => $e:expr),+;)*) => {
        $(impl FromCql for $t {
            fn from_cql(v: Option<CqlValue>) -> Result<Self> {
                match v {
                    $(Some($pat) => Ok($e),)+
                    other => Err(mismatch($want, &other)),
                }
            }
        })*
    };
}

from_cql! {
    String, "text": CqlValue::Text(s) => s, CqlValue::Ascii(s) => s;
    i64, "bigint": CqlValue::BigInt(v) => v;
    i32, "int": CqlValue::Int(v) => v;
    i8, "tinyint": CqlValue::TinyInt(v) => v;
    f64, "double": CqlValue::Double(v) => v;
}

impl<T: FromCql> FromCql for Option<T> {
    fn from_cql(v: Option<CqlValue>) -> Result<Self> {
        v.map(|v| T::from_cql(Some(v))).transpose()
    }
}

/// A row read as a Rust value: a tuple of [`FromCql`]s, column by column.
pub(crate) trait FromRow: Sized {
    fn from_row(row: Values) -> Result<Self>;
}

macro_rules! tuples {
    ($($n:literal: $($t:ident),+;)*) => {
        $(
            impl<$($t: IntoCql),+> Bind for ($($t,)+) {
                #[allow(non_snake_case)]
                fn bind(self) -> Values {
                    let ($($t,)+) = self;
                    vec![$($t.into_cql()),+]
                }
            }

            impl<$($t: FromCql),+> FromRow for ($($t,)+) {
                fn from_row(row: Values) -> Result<Self> {
                    if row.len() != $n {
                        return Err(crate::Error::Corrupt {
                            place: "scylla".into(),
                            detail: format!("expected {} columns, read {}", $n, row.len()),
                        });
                    }
                    let mut columns = row.into_iter();
                    Ok(($($t::from_cql(columns.next().flatten())?,)+))
                }
            }
        )*
    };
}

tuples! {
    1: A;
    2: A, B;
    3: A, B, C;
    4: A, B, C, D;
    5: A, B, C, D, E;
    6: A, B, C, D, E, F;
    7: A, B, C, D, E, F, G;
    8: A, B, C, D, E, F, G, H;
}

impl Bind for () {
    fn bind(self) -> Values {
        Vec::new()
    }
}

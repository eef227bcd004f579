//! The tokenizer and recursive-descent parser of the CQL subset the model understands: data
//! statements into syntax trees (`Ast`) for the checker, schema statements into `Ddl`, and a
//! table definition into a `Table`, refused as a node refuses it.

use std::collections::BTreeMap;
use std::fmt;

use super::store::{Op, Table, Ty};
use super::{Fallible, MAX_TTL};

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
pub(super) enum Lit {
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
pub(super) enum Raw {
    Marker(usize),
    Lit(Lit),
}

#[derive(Debug)]
pub(super) enum RawMany {
    Marker(usize),
    List(Vec<Raw>),
}

#[derive(Debug)]
pub(super) enum RawRel {
    Single(String, Op, Raw),
    In(String, RawMany),
    Tuple(Vec<String>, Op, Vec<Raw>),
}

#[derive(Debug)]
pub(super) enum RawCond {
    None,
    Exists,
    Columns(Vec<(String, Op, Raw)>),
}

#[derive(Debug, Default)]
pub(super) struct Using {
    pub(super) ttl: Option<Raw>,
    pub(super) timestamp: Option<Raw>,
}

#[derive(Debug)]
pub(super) enum Projection {
    Star,
    Count,
    Columns(Vec<String>),
}

#[derive(Debug)]
pub(super) struct InsertAst {
    pub(super) table: String,
    pub(super) columns: Vec<String>,
    pub(super) values: Vec<Raw>,
    pub(super) if_not_exists: bool,
    pub(super) using: Using,
}

#[derive(Debug)]
pub(super) struct UpdateAst {
    pub(super) table: String,
    pub(super) using: Using,
    pub(super) set: Vec<(String, Raw)>,
    pub(super) relations: Vec<RawRel>,
    pub(super) cond: RawCond,
}

#[derive(Debug)]
pub(super) struct DeleteAst {
    pub(super) columns: Vec<String>,
    pub(super) table: String,
    pub(super) using: Using,
    pub(super) relations: Vec<RawRel>,
    pub(super) cond: RawCond,
}

#[derive(Debug)]
pub(super) struct SelectAst {
    pub(super) projection: Projection,
    pub(super) table: String,
    pub(super) relations: Vec<RawRel>,
    pub(super) order: Option<(String, bool)>,
    pub(super) per_partition_limit: Option<Raw>,
    pub(super) limit: Option<Raw>,
    pub(super) filtering: bool,
}

#[derive(Debug)]
pub(super) enum Ast {
    Insert(InsertAst),
    Update(UpdateAst),
    Delete(DeleteAst),
    Select(SelectAst),
}

/// A schema statement.
pub(super) enum Ddl {
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
pub(super) struct TableOptions {
    pub(super) clustering_order: Option<Vec<(String, bool)>>,
    pub(super) default_ttl: Option<i64>,
}

pub(super) struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    markers: usize,
}

impl Parser {
    pub(super) fn new(cql: &str) -> Fallible<Parser> {
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

    pub(super) fn dml(mut self) -> Fallible<(Ast, usize)> {
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

    pub(super) fn schema(mut self) -> Fallible<Ddl> {
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

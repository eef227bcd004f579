//! Tests of the model: schema statements, reads (clustering and token order, slices, limits,
//! rows read), the statements a node refuses, and junk refused without a panic. What writes
//! leave behind is tested in `tests/writes.rs`.

use scylla::value::CqlTimestamp;

use super::statement::Marker;
use super::store::Ty;
use super::*;
use crate::scylla::cql::CqlValue;

mod writes;

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
    let columns = m.columns("ticks");
    assert!(columns.contains(&"end".to_owned()) && columns.contains(&"band_spread".to_owned()));
    assert!(m.columns("nope").is_empty());
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
    assert_eq!(m.columns("T"), ["B", "a"]);
    assert!(m.columns("t").is_empty());
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

//! Tests of what writes leave behind: row markers and tombstones, last write wins, deletes of
//! each kind, TTLs, lightweight transactions, batches, crash injection and the counters.

use super::*;

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
        model(&["CREATE TABLE t (k int PRIMARY KEY, v int) WITH default_time_to_live = 100"]).await;
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
    assert_eq!(m.requests(), 5, "schema and prepare are not requests");
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

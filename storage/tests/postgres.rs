//! The conformance suite and the failure modes of the PostgreSQL backend, against the real
//! server every machine of the project runs (`FLOWWATCH_TEST_POSTGRES`, default
//! `postgres://root@127.0.0.1:5432/test`). Each test gets its own fresh database, dropped after.

use std::sync::Arc;

use flowwatch_storage::postgres::PostgresStore;
use flowwatch_storage::testsuite::{Fixture, TestDatabase};
use flowwatch_storage::{Error, Store};

async fn fixture() -> Fixture {
    let db = TestDatabase::new();
    let uri = db.uri();
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&uri).await.unwrap());
    let reopen = Box::new(move || {
        let uri = uri.clone();
        Box::pin(
            async move { Arc::new(PostgresStore::connect(&uri).await.unwrap()) as Arc<dyn Store> },
        ) as _
    });
    Fixture::new(store, reopen, Box::new(db))
}

flowwatch_storage::conformance_tests!(fixture);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_version_is_refused() {
    let db = TestDatabase::new();
    let uri = db.uri();
    drop(PostgresStore::connect(&uri).await.unwrap());
    let (client, conn) = tokio_postgres::connect(&uri, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("UPDATE flowwatch_meta SET value = '7' WHERE key = 'schema_version'")
        .await
        .unwrap();
    drop(client);
    let err = PostgresStore::connect(&uri).await.err().expect("refused");
    assert!(
        matches!(
            err,
            Error::SchemaVersion {
                found: 7,
                supported: flowwatch_storage::postgres::SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!(
            "unknown schema version 7 in database {}",
            db.name()
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_migrating_at_once_both_succeed() {
    let db = TestDatabase::new();
    let uri = db.uri();
    let (a, b) = tokio::join!(PostgresStore::connect(&uri), PostgresStore::connect(&uri));
    a.unwrap();
    b.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let err = flowwatch_storage::open("postgres://root@127.0.0.1:1/test")
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(text.starts_with("postgres: "), "{text}");
    assert!(
        text.to_lowercase().contains("connect") || text.contains("refused"),
        "{text}"
    );
}

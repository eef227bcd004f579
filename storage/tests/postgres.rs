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
async fn an_unreachable_server_is_a_connection_error_keeping_the_drivers() {
    let err = flowwatch_storage::open("postgres://root@127.0.0.1:1/test")
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.starts_with("postgres: cannot connect to 127.0.0.1:1: "),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let source = std::error::Error::source(&err).expect("the driver's error");
    assert!(
        source.downcast_ref::<tokio_postgres::Error>().is_some(),
        "{source:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_keeps_the_drivers_error_as_its_source() {
    let db = TestDatabase::new();
    let missing = format!("{}_missing", db.uri());
    let err = PostgresStore::connect(&missing)
        .await
        .err()
        .expect("refused");
    // The server answered: not a connection failure, and its SQLSTATE is said.
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(err.to_string().starts_with("postgres: 3D000: "), "{err}");
    let source = std::error::Error::source(&err).expect("the driver's error");
    let db_error = source
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
        .expect("a server error");
    assert_eq!(db_error.code().code(), "3D000");
}

//! The conformance suite and the failure modes of the PostgreSQL backend, against the real
//! server every machine of the project runs (`FLOWWATCH_TEST_POSTGRES`, default
//! `postgres://root@127.0.0.1:5432/test`). Each test gets its own fresh database, dropped after.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use flowwatch_storage::postgres::PostgresStore;
use flowwatch_storage::testsuite::Fixture;
use flowwatch_storage::{Error, Store};

fn admin_uri() -> String {
    std::env::var("FLOWWATCH_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

fn uri_of(db: &str) -> String {
    let admin = admin_uri();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{db}")
}

async fn admin(sql: &str) {
    let (client, conn) = tokio_postgres::connect(&admin_uri(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL runs");
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

/// A database that is dropped when the test ends.
struct TestDb(String);

impl TestDb {
    async fn new() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "flowwatch_t{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        admin(&format!("CREATE DATABASE {name}")).await;
        TestDb(name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0);
        // Drop runs inside a test's runtime: do the async work on a thread of its own.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(admin(&sql))
        })
        .join()
        .unwrap();
    }
}

async fn fixture() -> Fixture {
    let db = TestDb::new().await;
    let uri = uri_of(&db.0);
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
    let db = TestDb::new().await;
    let uri = uri_of(&db.0);
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
        err.to_string()
            .contains(&format!("unknown schema version 7 in database {}", db.0)),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_migrating_at_once_both_succeed() {
    let db = TestDb::new().await;
    let uri = uri_of(&db.0);
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

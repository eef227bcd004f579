//! The conformance suite and the failure modes of the embedded backend.

use std::sync::Arc;

use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::testsuite::Fixture;
use flowwatch_storage::{Error, Store};

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).await.unwrap());
    let reopen = Box::new(move || {
        let path = path.clone();
        Box::pin(
            async move { Arc::new(EmbeddedStore::open(&path).await.unwrap()) as Arc<dyn Store> },
        ) as _
    });
    Fixture::new(store, reopen, Box::new(dir))
}

flowwatch_storage::conformance_tests!(fixture);

#[tokio::test]
async fn a_second_process_gets_a_clear_locked_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open(dir.path()).await.unwrap();
    match EmbeddedStore::open(dir.path()).await {
        Err(e @ Error::Locked { .. }) => {
            assert!(
                e.to_string()
                    .contains("is locked by another flowwatch process"),
                "{e}"
            );
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("opened a locked directory"),
    }
}

/// Sets the data directory's schema version, as another flowwatch would have written it.
fn set_schema_version(dir: &std::path::Path, version: u32) {
    let db = fjall::Database::builder(dir).open().unwrap();
    let meta = db
        .keyspace("meta", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    meta.insert("schema_version", version.to_be_bytes().to_vec())
        .unwrap();
    db.persist(fjall::PersistMode::SyncAll).unwrap();
}

#[tokio::test]
async fn an_older_schema_version_opens_and_moves_to_this_one() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).await.unwrap());
    set_schema_version(dir.path(), 1);
    drop(EmbeddedStore::open(dir.path()).await.unwrap());
    let db = fjall::Database::builder(dir.path()).open().unwrap();
    let meta = db
        .keyspace("meta", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    let v = meta.get("schema_version").unwrap().unwrap();
    assert_eq!(
        u32::from_be_bytes(v.as_ref().try_into().unwrap()),
        flowwatch_storage::embedded::SCHEMA_VERSION
    );
}

#[tokio::test]
async fn a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).await.unwrap());
    {
        // Written the way a newer flowwatch would.
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        meta.insert("schema_version", 99u32.to_be_bytes().to_vec())
            .unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let err = EmbeddedStore::open(dir.path())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            Error::SchemaVersion {
                found: 99,
                supported: flowwatch_storage::embedded::SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("unknown schema version 99"),
        "{err}"
    );
}

#[tokio::test]
async fn a_corrupt_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).await.unwrap());
    // Overwrite every file with garbage.
    for entry in walk(dir.path()) {
        std::fs::write(&entry, b"garbage, not an LSM tree").unwrap();
    }
    let err = EmbeddedStore::open(dir.path())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "names the directory: {err}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else if !p.ends_with("lock") {
            files.push(p);
        }
    }
    files
}

#[tokio::test]
async fn storage_uris() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("embedded://{}", dir.path().display());
    flowwatch_storage::open(&uri).await.unwrap();
    let bad = flowwatch_storage::open("mysql://x")
        .await
        .err()
        .expect("refused");
    assert!(
        bad.to_string()
            .contains("invalid storage URI \"mysql://x\": unknown scheme"),
        "{bad}"
    );
    let bad = flowwatch_storage::open("embedded://")
        .await
        .err()
        .expect("refused");
    assert!(
        bad.to_string().contains("expected embedded:///path"),
        "{bad}"
    );
}

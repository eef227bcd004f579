//! The conformance suite against a real ScyllaDB node. No node can run on the project's
//! machines, so these tests are ignored unless asked for (the connection failures below run
//! always):
//!
//! ```sh
//! FLOWWATCH_SCYLLA_URI=scylla://127.0.0.1:9042/flowwatch_test cargo test -p flowwatch-storage --test scylla -- --ignored
//! ```
//!
//! Each test gets its own keyspace (the URI's name plus a suffix), dropped afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use flowwatch_storage::Store;
use flowwatch_storage::scylla::{ScyllaStore, ScyllaUri};
use flowwatch_storage::testsuite::Fixture;

fn base_uri() -> String {
    std::env::var("FLOWWATCH_SCYLLA_URI")
        .expect("FLOWWATCH_SCYLLA_URI names a ScyllaDB node for these tests")
}

/// The base URI with the keyspace `name`.
fn with_keyspace(name: &str) -> String {
    let base = base_uri();
    let (head, tail) = base.split_once("//").expect("scylla://…");
    let (hosts, rest) = tail.split_once('/').expect("scylla://hosts/keyspace");
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{head}//{hosts}/{name}{query}")
}

struct TestKeyspace(String);

impl Drop for TestKeyspace {
    fn drop(&mut self) {
        let uri = ScyllaUri::parse(&with_keyspace(&self.0)).expect("valid URI");
        let keyspace = self.0.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let session = scylla::client::session_builder::SessionBuilder::new()
                        .known_nodes(&uri.nodes)
                        .build()
                        .await
                        .expect("connect");
                    session
                        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
                        .await
                        .expect("drop keyspace");
                })
        })
        .join()
        .unwrap();
    }
}

async fn fixture() -> Fixture {
    static N: AtomicU32 = AtomicU32::new(0);
    let base = ScyllaUri::parse(&base_uri()).expect("valid FLOWWATCH_SCYLLA_URI");
    let name = format!(
        "{}_{}_{}",
        &base.keyspace[..base.keyspace.len().min(24)],
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let uri = with_keyspace(&name);
    let store: Arc<dyn Store> = Arc::new(ScyllaStore::connect(&uri).await.unwrap());
    let reopen = Box::new(move || {
        let uri = uri.clone();
        Box::pin(
            async move { Arc::new(ScyllaStore::connect(&uri).await.unwrap()) as Arc<dyn Store> },
        ) as _
    });
    Fixture::new(store, reopen, Box::new(TestKeyspace(name)))
}

flowwatch_storage::conformance_tests!(fixture, #[ignore = "needs a ScyllaDB node: set FLOWWATCH_SCYLLA_URI and pass --ignored"]);

/// A node that does not listen, or a name that does not resolve, is a connection error naming
/// the nodes, soon, never an invalid URI (the deployment files name nodes no machine here runs).
#[tokio::test]
async fn an_unreachable_node_is_a_connection_error_naming_it() {
    for (uri, nodes) in [
        ("scylla://127.0.0.1:1/ks", "127.0.0.1:1"),
        (
            "scylla://no-such-node.invalid:9042,127.0.0.1:1/ks?rf=3",
            "no-such-node.invalid:9042,127.0.0.1:1",
        ),
    ] {
        let started = std::time::Instant::now();
        let err = flowwatch_storage::open(uri).await.err().expect("refused");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{uri}"
        );
        assert!(
            matches!(err, flowwatch_storage::Error::Connect { .. }),
            "{uri}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("scylla: cannot connect to {nodes}: ")),
            "{text}"
        );
        let source = std::error::Error::source(&err).expect("the driver's error");
        assert!(
            source
                .downcast_ref::<scylla::errors::NewSessionError>()
                .is_some(),
            "{source:?}"
        );
    }
}

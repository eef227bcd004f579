//! The conformance suite: every backend runs these, through [`crate::conformance_tests!`].
//!
//! Each test gets a [`Fixture`]: a fresh, empty store (its own directory or database) that it
//! can also close and reopen. The tests of each concern are in a file of their own
//! (`testsuite/traffic.rs`, `ticks.rs`, `registry.rs`, `config.rs`, `access.rs`, `operator.rs`,
//! `channels.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use flowwatch_core::detection::{Band, Status, TickValues};
use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};

use crate::{
    ApiKey, AuditEntry, Bucket, ConfigVersion, Error, Event, EventPage, EventQuery, FlowBuckets,
    FlowEntry, IngestMark, KeyKind, Role, Scope, Series, Store, StoredTick, User,
};

mod access;
mod channels;
mod config;
mod operator;
mod registry;
mod ticks;
mod traffic;

pub use access::*;
pub use channels::*;
pub use config::*;
pub use operator::*;
pub use registry::*;
pub use ticks::*;
pub use traffic::*;

/// The PostgreSQL server tests use: `FLOWWATCH_TEST_POSTGRES`, default
/// `postgres://root@127.0.0.1:5432/test` (every machine of the project runs it).
pub fn postgres_admin_uri() -> String {
    std::env::var("FLOWWATCH_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// Runs `sql` on the test server's admin database, on a thread of its own (so it works inside
/// and outside a runtime).
fn postgres_admin(sql: String) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async {
                let (client, conn) =
                    tokio_postgres::connect(&postgres_admin_uri(), tokio_postgres::NoTls)
                        .await
                        .expect("PostgreSQL runs (FLOWWATCH_TEST_POSTGRES)");
                let task = tokio::spawn(conn);
                client.batch_execute(&sql).await.expect("admin statement");
                drop(client);
                let _ = task.await;
            })
    })
    .join()
    .expect("the admin thread does not panic");
}

/// A fresh PostgreSQL database for one test, dropped when it goes.
pub struct TestDatabase(String);

impl TestDatabase {
    /// Creates one with a name no other test uses.
    pub fn new() -> TestDatabase {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "flowwatch_t{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        postgres_admin(format!("CREATE DATABASE {name}"));
        TestDatabase(name)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Its `postgres://` URI.
    pub fn uri(&self) -> String {
        let admin = postgres_admin_uri();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        format!("{base}/{}", self.0)
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        TestDatabase::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        postgres_admin(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

/// Reopens a fixture's store (after the old one is dropped).
pub type Reopen = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Arc<dyn Store>> + Send>> + Send>;

/// A fresh store for one test.
pub struct Fixture {
    store: Option<Arc<dyn Store>>,
    reopen: Reopen,
    _keep: Box<dyn std::any::Any + Send>,
}

impl Fixture {
    /// A fixture from a fresh store, a way to reopen it, and whatever must live as long
    /// (a temporary directory, a database guard).
    pub fn new(
        store: Arc<dyn Store>,
        reopen: Reopen,
        keep: Box<dyn std::any::Any + Send>,
    ) -> Fixture {
        Fixture {
            store: Some(store),
            reopen,
            _keep: keep,
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_deref().expect("store is open")
    }

    /// Closes the store (dropping it) and opens it again on the same data.
    pub async fn reopen(&mut self) {
        let old = self.store.take().expect("store is open");
        assert_eq!(Arc::strong_count(&old), 1, "the test holds no other handle");
        drop(old);
        self.store = Some((self.reopen)().await);
    }
}

/// Generates one `#[tokio::test]` per conformance test, each with `$fixture().await`; an
/// optional attribute (e.g. `#[ignore = "…"]`) goes on every test.
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path $(, #[$attr:meta])?) => {
        $crate::conformance_tests!(@tests $fixture; { $(#[$attr])? };
            buckets_add_up_and_marks_apply_once,
            outbox_queues_alarms_until_done,
            buckets_read_in_order_within_range_and_flow,
            large_batches_and_concurrent_writers,
            retention_expires_only_older_data,
            ticks_upsert_and_fence_by_epoch,
            latest_status_moves_forward_only,
            latest_statuses_of_a_country_or_a_lob,
            events_dedupe_filter_and_page_newest_first,
            actionable_events_are_changes_to_or_from_an_alarm,
            registry_keeps_first_seen,
            registry_reads_one_flow_a_country_or_a_lob,
            config_versions_compare_and_set,
            users_and_api_keys,
            audit_log_pages_newest_first,
            silences_are_kept_listed_and_ended,
            silenced_changes_are_stored_but_not_queued,
            acknowledgements_last_until_the_episode_ends,
            published_incident_messages_are_remembered,
            channels_are_kept_listed_and_deleted,
            deliveries_are_queued_once_claimed_and_settled,
            attempts_keep_the_latest_and_go_with_their_channel,
            data_survives_reopen,
        );
    };
    (@tests $fixture:path; $attrs:tt; $($name:ident),* $(,)?) => {
        $( $crate::conformance_tests!(@one $fixture; $attrs; $name); )*
    };
    (@one $fixture:path; { $(#[$attr:meta])? }; $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])?
        async fn $name() {
            $crate::testsuite::$name($fixture().await).await;
        }
    };
}

/// An input flow `name` of CZ/GSM.
pub fn flow(name: &str) -> FlowId {
    FlowId::new("CZ", "GSM", FlowKind::Input, name).expect("valid id")
}

/// Buckets of `flow_id` at `seconds`, of `bytes` plus a few (the second modulo 7), one record
/// each.
pub fn buckets(
    flow_id: &FlowId,
    seconds: impl IntoIterator<Item = Instant>,
    bytes: u64,
) -> FlowBuckets {
    FlowBuckets {
        flow: flow_id.clone(),
        buckets: seconds
            .into_iter()
            .map(|s| Bucket {
                second: s,
                bytes: bytes + s as u64 % 7,
                records: 1,
            })
            .collect(),
    }
}

/// An hour's tick of `flow_id` at `start`.
pub fn tick(flow_id: &FlowId, start: Instant, status: Status, epoch: u64) -> StoredTick {
    StoredTick {
        flow: flow_id.clone(),
        start,
        end: start + 3600,
        actual: 42,
        status,
        values: (status != Status::NotAvailable).then_some(TickValues {
            expected: 50.5,
            day_average: 49.0,
            tick_difference: 0.83,
            day_difference: 0.9,
            difference: 0.9,
            // The adaptive detector's band on ticks that are not OK (SPEC §10).
            band: (status != Status::Ok).then_some(Band {
                lower: 40.25,
                outage_below: 25.5,
                evidence: 2.75,
                spread: 0.125,
            }),
        }),
        evaluated_at: start + 3720,
        epoch,
    }
}

/// A change of `f` to `new` (from OK) at `time`.
pub fn event(id: &str, f: &FlowId, time: Instant, new: Status) -> Event {
    Event {
        id: id.into(),
        flow: f.clone(),
        tick_time: time - 3720,
        time,
        previous_status: Status::Ok,
        new_status: new,
        actual: 1,
        expected: Some(10.0),
        difference: Some(0.1),
        revision: false,
        silenced: false,
        flapping: false,
        acknowledged: None,
    }
}

/// Flows of countries and LoBs whose names extend each other (`CZ`, `CZE`; `GSM`, `GSMX`), of
/// both kinds, with names of different lengths: what a read of one country or LoB must
/// tell apart.
fn scattered_flows() -> Vec<FlowId> {
    let mut flows = Vec::new();
    for (country, lob) in [
        ("CZ", "GSM"),
        ("CZ", "GSMX"),
        ("CZ", "SMS"),
        ("CZE", "GSM"),
        ("C", "ZGSM"),
        ("DE", "GSM"),
    ] {
        for name in ["A", "B10", "LONGER_NAME"] {
            let id = |kind, name: &str| FlowId::new(country, lob, kind, name).expect("valid id");
            flows.push(id(FlowKind::Input, name));
            flows.push(id(FlowKind::Forward, &format!("{name}:T")));
        }
    }
    flows
}

/// The scopes [`scattered_flows`] are read by, an empty one included.
fn scopes() -> [Scope<'static>; 6] {
    [
        Scope::country("CZ"),
        Scope::country("CZE"),
        Scope::country("XX"),
        Scope::lob("CZ", "GSM"),
        Scope::lob("CZ", "GSMX"),
        Scope::lob("DE", "SMS"),
    ]
}

/// For each of [`scopes`], `read` answers the items of `all` (ordered by flow) in it.
async fn reads_each_scope<T: Clone + PartialEq + std::fmt::Debug>(
    all: &[T],
    flow: fn(&T) -> &FlowId,
    read: impl AsyncFn(Scope<'static>) -> Vec<T>,
) {
    for scope in scopes() {
        let expected: Vec<T> = all
            .iter()
            .filter(|x| scope.contains(flow(x)))
            .cloned()
            .collect();
        assert_eq!(read(scope).await, expected, "{scope:?}");
    }
}

/// A day in seconds.
pub const DAY: Instant = 86_400;
/// The time the suite's data starts at.
pub const T0: Instant = 1_485_900_000;

fn key(hash: &str, user: &str, created_at: Instant) -> ApiKey {
    ApiKey {
        hash: hash.into(),
        user: user.into(),
        kind: KeyKind::Login,
        created_at,
        expires_at: Some(created_at + 3600),
    }
}

/// Everything written is there after the store is closed and opened again.
pub async fn data_survives_reopen(mut fx: Fixture) {
    let a = flow("A");
    {
        let s = fx.store();
        s.add_buckets(vec![buckets(&a, [T0, T0 + 1], 3)], None)
            .await
            .unwrap();
        s.write_ticks(vec![tick(&a, T0, Status::Ok, 1)])
            .await
            .unwrap();
        s.append_events(vec![event("e", &a, T0, Status::Outage)])
            .await
            .unwrap();
        s.register_flows(vec![FlowEntry {
            flow: a.clone(),
            first_seen: T0,
            partition: 1,
        }])
        .await
        .unwrap();
        s.config_put(0, serde_json::json!({"defaults": {}}), "root")
            .await
            .unwrap();
        s.put_user(User {
            name: "u".into(),
            role: Role::ReadOnly,
            password_hash: None,
        })
        .await
        .unwrap();
        s.put_api_key(key("h", "u", T0)).await.unwrap();
        s.audit_append(AuditEntry {
            at: 1,
            id: "a".into(),
            user: "u".into(),
            action: "login".into(),
            target: "u".into(),
            detail: serde_json::Value::Null,
        })
        .await
        .unwrap();
    }
    fx.reopen().await;
    let s = fx.store();
    assert_eq!(s.read_buckets(&a, T0, T0 + 2).await.unwrap().len(), 2);
    assert_eq!(s.read_ticks(&a, T0, T0 + 1).await.unwrap().len(), 1);
    assert_eq!(s.latest_statuses().await.unwrap().len(), 1);
    assert_eq!(
        s.query_events(EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .events
        .len(),
        1
    );
    assert_eq!(s.flows().await.unwrap().len(), 1);
    assert_eq!(s.config_latest().await.unwrap().unwrap().version, 1);
    assert!(s.api_key("h").await.unwrap().is_some());
    assert_eq!(s.audit(None, 10).await.unwrap().len(), 1);
}

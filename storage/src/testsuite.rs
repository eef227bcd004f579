//! The conformance suite: every backend runs these, through [`crate::conformance_tests!`].
//!
//! Each test gets a [`Fixture`]: a fresh, empty store (its own directory or database) that it
//! can also close and reopen.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use flowwatch_core::detection::{Status, TickValues};
use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};

use crate::{
    ApiKey, AuditEntry, Bucket, ConfigVersion, Error, Event, EventQuery, FlowBuckets, FlowEntry,
    IngestMark, KeyKind, Role, Series, Store, StoredTick, User,
};

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
            events_dedupe_filter_and_page_newest_first,
            registry_keeps_first_seen,
            config_versions_compare_and_set,
            users_and_api_keys,
            audit_log_pages_newest_first,
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

fn flow(name: &str) -> FlowId {
    FlowId::new("CZ", "GSM", FlowKind::Input, name).expect("valid id")
}

fn buckets(
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

fn tick(flow_id: &FlowId, start: Instant, status: Status, epoch: u64) -> StoredTick {
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
        }),
        evaluated_at: start + 3720,
        epoch,
    }
}

fn event(id: &str, f: &FlowId, time: Instant, new: Status) -> Event {
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
    }
}

const DAY: Instant = 86_400;
const T0: Instant = 1_485_900_000;

/// Added traffic sums into the stored buckets; a marked batch is applied once per position
/// of its source, and the position only moves forward.
pub async fn buckets_add_up_and_marks_apply_once(fx: Fixture) {
    let s = fx.store();
    let a = flow("A");
    let batch = vec![buckets(&a, [T0, T0 + 1, T0 + 5], 100)];
    assert!(s.add_buckets(batch.clone(), None).await.unwrap());
    assert!(s.add_buckets(batch.clone(), None).await.unwrap());
    let read = s.read_buckets(&a, T0, T0 + 10).await.unwrap();
    let doubled: Vec<Bucket> = batch[0]
        .buckets
        .iter()
        .map(|b| Bucket {
            bytes: 2 * b.bytes,
            records: 2,
            ..*b
        })
        .collect();
    assert_eq!(read, doubled);
    // Two buckets of one second in one batch add up too.
    let same_second = |bytes| Bucket {
        second: T0 + 1,
        bytes,
        records: 1,
    };
    s.add_buckets(
        vec![FlowBuckets {
            flow: a.clone(),
            buckets: vec![same_second(7), same_second(3)],
        }],
        None,
    )
    .await
    .unwrap();
    let read = s.read_buckets(&a, T0, T0 + 10).await.unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(
        read[1],
        Bucket {
            second: T0 + 1,
            bytes: 2 * batch[0].buckets[1].bytes + 10,
            records: 4
        }
    );

    let m = flow("M");
    let mark = |position| {
        Some(IngestMark {
            source: "flowwatch.ingest.3".into(),
            position,
        })
    };
    assert_eq!(s.ingest_position("flowwatch.ingest.3").await.unwrap(), None);
    assert!(
        s.add_buckets(vec![buckets(&m, [T0], 10)], mark(5))
            .await
            .unwrap()
    );
    assert!(
        !s.add_buckets(vec![buckets(&m, [T0], 10)], mark(5))
            .await
            .unwrap(),
        "a repeat"
    );
    assert!(
        !s.add_buckets(vec![buckets(&m, [T0], 10)], mark(4))
            .await
            .unwrap(),
        "an older one"
    );
    assert!(
        s.add_buckets(vec![buckets(&m, [T0], 10)], mark(9))
            .await
            .unwrap()
    );
    assert_eq!(
        s.ingest_position("flowwatch.ingest.3").await.unwrap(),
        Some(9)
    );
    assert_eq!(s.ingest_position("flowwatch.ingest.4").await.unwrap(), None);
    let read = s.read_buckets(&m, T0, T0 + 1).await.unwrap();
    assert_eq!(read[0].records, 2, "applied twice: positions 5 and 9");
}

/// New alarms wait in the outbox, oldest first, until marked done; revisions and repeated ids
/// are never queued; an expired event leaves the outbox too.
pub async fn outbox_queues_alarms_until_done(fx: Fixture) {
    let s = fx.store();
    let a = flow("A");
    assert!(s.outbox_pending(10).await.unwrap().is_empty());
    let mut revision = event("r", &a, T0 + 50, Status::Ok);
    revision.revision = true;
    s.append_events(vec![
        event("e2", &a, T0 + 20, Status::Outage),
        event("e1", &a, T0 + 10, Status::Warning),
        revision,
    ])
    .await
    .unwrap();
    // A repeat of a stored id (a rebuild that found the same change) is not queued again.
    s.append_events(vec![event("e1", &a, T0 + 10, Status::Warning)])
        .await
        .unwrap();
    let ids = |v: Vec<Event>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(s.outbox_pending(10).await.unwrap()), ["e1", "e2"]);
    assert_eq!(ids(s.outbox_pending(1).await.unwrap()), ["e1"]);
    assert_eq!(s.outbox_len().await.unwrap(), 2);
    assert_eq!(
        s.outbox_pending(1).await.unwrap()[0],
        event("e1", &a, T0 + 10, Status::Warning),
        "the whole event comes back"
    );
    s.outbox_done(vec!["e1".into(), "unknown".into()])
        .await
        .unwrap();
    assert_eq!(ids(s.outbox_pending(10).await.unwrap()), ["e2"]);
    s.outbox_done(vec!["e1".into()]).await.unwrap();
    assert_eq!(s.outbox_len().await.unwrap(), 1);
    s.append_events(vec![event("e3", &a, T0 + 5 * DAY, Status::Ok)])
        .await
        .unwrap();
    s.expire(Series::Events, T0 + DAY).await.unwrap();
    assert_eq!(ids(s.outbox_pending(10).await.unwrap()), ["e3"]);
    s.outbox_done(vec!["e3".into()]).await.unwrap();
    assert!(s.outbox_pending(10).await.unwrap().is_empty());
    assert_eq!(s.outbox_len().await.unwrap(), 0);
}

/// Buckets come back in time order, within `[from, to)`, across days, never another flow's
/// (not even one whose name extends this one's).
pub async fn buckets_read_in_order_within_range_and_flow(fx: Fixture) {
    let s = fx.store();
    let (a, ab) = (flow("A"), flow("AB"));
    let seconds: Vec<Instant> = (0..40).rev().map(|i| T0 + i * DAY / 4).collect();
    s.add_buckets(
        vec![buckets(&a, seconds.clone(), 10), buckets(&ab, [T0 + 3], 99)],
        None,
    )
    .await
    .unwrap();
    let all = s.read_buckets(&a, T0 - DAY, T0 + 20 * DAY).await.unwrap();
    assert_eq!(all.len(), 40);
    assert!(all.windows(2).all(|w| w[0].second < w[1].second));
    let part = s.read_buckets(&a, T0 + DAY, T0 + 3 * DAY).await.unwrap();
    assert_eq!(part.first().unwrap().second, T0 + DAY, "from is inclusive");
    assert_eq!(
        part.last().unwrap().second,
        T0 + 3 * DAY - DAY / 4,
        "to is exclusive"
    );
    assert_eq!(part.len(), 8);
    assert_eq!(s.read_buckets(&ab, T0, T0 + DAY).await.unwrap().len(), 1);
    assert!(
        s.read_buckets(&flow("B"), T0, T0 + DAY)
            .await
            .unwrap()
            .is_empty()
    );
    // Ranges that cut through minutes.
    let c = flow("C");
    s.add_buckets(vec![buckets(&c, T0 + 50..T0 + 130, 1)], None)
        .await
        .unwrap();
    let cut = s.read_buckets(&c, T0 + 59, T0 + 121).await.unwrap();
    assert_eq!(cut.first().unwrap().second, T0 + 59);
    assert_eq!(cut.last().unwrap().second, T0 + 120);
    assert_eq!(cut.len(), 62);
    assert!(
        s.read_buckets(&a, T0 + DAY, T0).await.unwrap().is_empty(),
        "empty range"
    );
    // Times before 1970 sort before later ones.
    s.add_buckets(vec![buckets(&a, [-5, 5], 1)], None)
        .await
        .unwrap();
    let early = s.read_buckets(&a, -10, 10).await.unwrap();
    assert_eq!(
        early.iter().map(|b| b.second).collect::<Vec<_>>(),
        vec![-5, 5]
    );
}

/// A batch of 100 000 buckets, and eight writers on different flows at once.
pub async fn large_batches_and_concurrent_writers(fx: Fixture) {
    let s = fx.store.clone().expect("open");
    let big = flow("BIG");
    s.add_buckets(vec![buckets(&big, (0..100_000).map(|i| T0 + i), 5)], None)
        .await
        .unwrap();
    assert_eq!(
        s.read_buckets(&big, T0, T0 + 100_000).await.unwrap().len(),
        100_000
    );
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let f = flow(&format!("W{w}"));
            for round in 0..20 {
                let start = T0 + round * 100;
                s.add_buckets(vec![buckets(&f, start..start + 100, w)], None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for w in 0..8 {
        let read = s
            .read_buckets(&flow(&format!("W{w}")), T0, T0 + 2000)
            .await
            .unwrap();
        assert_eq!(read.len(), 2000, "writer {w}");
    }
}

/// `expire` removes exactly the rows older than the cut, in every series and every flow.
pub async fn retention_expires_only_older_data(fx: Fixture) {
    let s = fx.store();
    let flows: Vec<FlowId> = (0..5).map(|i| flow(&format!("F{i}"))).collect();
    for f in &flows {
        s.add_buckets(vec![buckets(f, (0..10).map(|d| T0 + d * DAY), 1)], None)
            .await
            .unwrap();
        s.write_ticks(
            (0..10)
                .map(|d| tick(f, T0 + d * DAY, Status::Ok, 1))
                .collect(),
        )
        .await
        .unwrap();
    }
    let events: Vec<Event> = (0..10)
        .map(|d| event(&format!("e{d}"), &flows[0], T0 + d * DAY, Status::Outage))
        .collect();
    s.append_events(events).await.unwrap();
    let cut = T0 + 4 * DAY;
    assert_eq!(s.expire(Series::Traffic, cut).await.unwrap(), 5 * 4);
    assert_eq!(s.expire(Series::Ticks, cut).await.unwrap(), 5 * 4);
    assert_eq!(s.expire(Series::Events, cut).await.unwrap(), 4);
    for f in &flows {
        let b = s.read_buckets(f, i64::MIN, i64::MAX).await.unwrap();
        assert_eq!(b.len(), 6);
        assert_eq!(b[0].second, cut);
        assert_eq!(s.read_ticks(f, i64::MIN, i64::MAX).await.unwrap().len(), 6);
    }
    // A cut inside a minute keeps that minute's later seconds.
    let g = flow("G");
    let mid = T0 + 20 * DAY + 30;
    s.add_buckets(vec![buckets(&g, mid - 5..mid + 5, 1)], None)
        .await
        .unwrap();
    assert_eq!(s.expire(Series::Traffic, mid).await.unwrap(), 5 + 5 * 6);
    let left = s.read_buckets(&g, i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(
        left.iter().map(|b| b.second).collect::<Vec<_>>(),
        (mid..mid + 5).collect::<Vec<_>>()
    );
    let page = s
        .query_events(EventQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.events.len(), 6);
    assert_eq!(
        s.expire(Series::Traffic, cut).await.unwrap(),
        0,
        "nothing left to expire"
    );
    // An expired event id may be appended again (it is gone).
    s.append_events(vec![event("e0", &flows[0], T0, Status::Outage)])
        .await
        .unwrap();
    assert_eq!(
        s.query_events(EventQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .events
        .len(),
        7
    );
}

/// Ticks are upserts by flow and start; a lower epoch than the stored one is refused.
pub async fn ticks_upsert_and_fence_by_epoch(fx: Fixture) {
    let s = fx.store();
    let a = flow("A");
    let out = s
        .write_ticks(vec![
            tick(&a, T0 + 3600, Status::Ok, 2),
            tick(&a, T0, Status::NotAvailable, 2),
        ])
        .await
        .unwrap();
    assert_eq!((out.written, out.stale), (2, 0));
    let read = s.read_ticks(&a, T0, T0 + 7200).await.unwrap();
    assert_eq!(
        read,
        vec![
            tick(&a, T0, Status::NotAvailable, 2),
            tick(&a, T0 + 3600, Status::Ok, 2)
        ]
    );
    // Re-evaluation by the same owner replaces.
    s.write_ticks(vec![tick(&a, T0, Status::Warning, 2)])
        .await
        .unwrap();
    assert_eq!(
        s.read_ticks(&a, T0, T0 + 1).await.unwrap()[0].status,
        Status::Warning
    );
    // An older owner is fenced off; a newer one is not.
    let out = s
        .write_ticks(vec![
            tick(&a, T0, Status::Outage, 1),
            tick(&a, T0 + 7200, Status::Ok, 1),
        ])
        .await
        .unwrap();
    assert_eq!((out.written, out.stale), (1, 1));
    assert_eq!(
        s.read_ticks(&a, T0, T0 + 1).await.unwrap()[0].status,
        Status::Warning
    );
    let out = s
        .write_ticks(vec![tick(&a, T0, Status::Outage, 3)])
        .await
        .unwrap();
    assert_eq!((out.written, out.stale), (1, 0));
    assert_eq!(
        s.read_ticks(&a, T0, T0 + 1).await.unwrap()[0].status,
        Status::Outage
    );
    assert_eq!(
        s.read_ticks(&a, T0 + 1, T0 + 3600).await.unwrap().len(),
        0,
        "start in [from, to)"
    );
}

/// The latest status of every flow in one call; a re-evaluated older tick does not move it back.
pub async fn latest_status_moves_forward_only(fx: Fixture) {
    let s = fx.store();
    // Names of different lengths, so the order by flow is not an accident of key layout.
    let flows: Vec<FlowId> = (0..300).map(|i| flow(&format!("F{i}"))).collect();
    let ticks: Vec<StoredTick> = flows
        .iter()
        .flat_map(|f| {
            [
                tick(f, T0, Status::Ok, 1),
                tick(f, T0 + 3600, Status::Outage, 1),
            ]
        })
        .collect();
    s.write_ticks(ticks).await.unwrap();
    s.write_ticks(vec![tick(&flows[0], T0, Status::Warning, 1)])
        .await
        .unwrap();
    let latest = s.latest_statuses().await.unwrap();
    assert_eq!(latest.len(), 300);
    assert!(
        latest
            .iter()
            .all(|t| t.start == T0 + 3600 && t.status == Status::Outage)
    );
    let names: Vec<&str> = latest.iter().map(|t| t.flow.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ordered by flow");
    s.write_ticks(vec![tick(&flows[7], T0 + 7200, Status::Ok, 1)])
        .await
        .unwrap();
    let latest = s.latest_statuses().await.unwrap();
    let f7 = latest.iter().find(|t| t.flow == flows[7]).unwrap();
    assert_eq!((f7.start, f7.status), (T0 + 7200, Status::Ok));
    // After a full read too, an older tick does not move it back; a new flow appears.
    s.write_ticks(vec![
        tick(&flows[7], T0, Status::Warning, 2),
        tick(&flow("New"), T0, Status::Ok, 1),
    ])
    .await
    .unwrap();
    let latest = s.latest_statuses().await.unwrap();
    let f7 = latest.iter().find(|t| t.flow == flows[7]).unwrap();
    assert_eq!((f7.start, f7.status), (T0 + 7200, Status::Ok));
    assert_eq!(latest.len(), 301);
}

/// Events: an id is stored once; queries filter and page newest first.
pub async fn events_dedupe_filter_and_page_newest_first(fx: Fixture) {
    let s = fx.store();
    let cz = flow("A");
    let de = FlowId::new("DE", "SMS", FlowKind::Input, "B").expect("valid id");
    let mut events = Vec::new();
    for i in 0..50 {
        let f = if i % 2 == 0 { &cz } else { &de };
        let status = if i % 5 == 0 {
            Status::Outage
        } else {
            Status::Warning
        };
        events.push(event(&format!("ev-{i:02}"), f, T0 + i * 60, status));
    }
    // Two events in the same second are both kept, ordered by id.
    events.push(event("ev-same", &cz, T0 + 49 * 60, Status::Ok));
    s.append_events(events.clone()).await.unwrap();
    s.append_events(events[..10].to_vec()).await.unwrap();
    let mut dup = events[3].clone();
    dup.actual = 999;
    s.append_events(vec![dup]).await.unwrap();

    let all = s
        .query_events(EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.events.len(), 51, "repeats dropped");
    assert!(all.next.is_none());
    assert!(
        all.events
            .windows(2)
            .all(|w| (w[0].time, &w[0].id) > (w[1].time, &w[1].id)),
        "newest first"
    );
    assert_eq!(
        all.events.iter().find(|e| e.id == "ev-03").unwrap().actual,
        1,
        "first write wins"
    );

    let outages = s
        .query_events(EventQuery {
            statuses: vec![Status::Outage],
            country: Some("CZ".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        outages
            .events
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["ev-40", "ev-30", "ev-20", "ev-10", "ev-00"]
    );
    let by_lob = s
        .query_events(EventQuery {
            lob: Some("SMS".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_lob.events.len(), 25);
    let window = s
        .query_events(EventQuery {
            from: Some(T0 + 600),
            to: Some(T0 + 1200),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window.events.len(), 10, "from inclusive, to exclusive");

    // Paging through everything with pages of 7 returns each event once, in order.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .query_events(EventQuery {
                limit: 7,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.events.len() <= 7);
        seen.extend(page.events.into_iter().map(|e| e.id));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(
        seen,
        all.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    let bad = s
        .query_events(EventQuery {
            limit: 7,
            cursor: Some("zz".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(bad, Err(Error::Invalid { .. })), "{bad:?}");
}

/// The registry keeps each flow once, with its earliest first-seen time.
pub async fn registry_keeps_first_seen(fx: Fixture) {
    let s = fx.store();
    let entry = |n: &str, t: Instant| FlowEntry {
        flow: flow(n),
        first_seen: t,
        partition: 3,
    };
    s.register_flows(vec![entry("B", T0), entry("A", T0 + 10), entry("AB", T0)])
        .await
        .unwrap();
    s.register_flows(vec![
        entry("A", T0 + 5),
        entry("B", T0 + 99),
        entry("A", T0 + 7),
    ])
    .await
    .unwrap();
    let flows = s.flows().await.unwrap();
    let expected = vec![entry("A", T0 + 5), entry("AB", T0), entry("B", T0)];
    assert_eq!(flows, expected, "ordered by flow");
    // Registered after a full read: there on the next, merged the same way.
    s.register_flows(vec![entry("AA", T0 + 1), entry("A", T0 + 1)])
        .await
        .unwrap();
    let flows = s.flows().await.unwrap();
    let expected = vec![
        entry("A", T0 + 1),
        entry("AA", T0 + 1),
        entry("AB", T0),
        entry("B", T0),
    ];
    assert_eq!(flows, expected);
    assert_eq!(s.flow_count().await.unwrap(), 4);
}

/// Configuration versions: compare-and-set, every version readable.
pub async fn config_versions_compare_and_set(fx: Fixture) {
    let s = fx.store();
    assert!(s.config_latest().await.unwrap().is_none());
    let v1 = s
        .config_put(
            0,
            serde_json::json!({"defaults": {"granularity": "1h"}}),
            "root",
        )
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let stale = s.config_put(0, serde_json::json!({}), "other").await;
    assert!(
        matches!(
            stale,
            Err(Error::Conflict {
                expected: 0,
                current: 1
            })
        ),
        "{stale:?}"
    );
    let ahead = s.config_put(5, serde_json::json!({}), "other").await;
    assert!(
        matches!(
            ahead,
            Err(Error::Conflict {
                expected: 5,
                current: 1
            })
        ),
        "{ahead:?}"
    );
    let v2 = s
        .config_put(1, serde_json::json!({"defaults": {}}), "ops")
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let latest: ConfigVersion = s.config_latest().await.unwrap().unwrap();
    assert_eq!(latest, v2);
    assert_eq!(
        s.config_version(1).await.unwrap().unwrap().document,
        v1.document
    );
    assert_eq!(s.config_version(1).await.unwrap().unwrap().author, "root");
    assert!(s.config_version(3).await.unwrap().is_none());
}

fn key(hash: &str, user: &str, created_at: Instant) -> ApiKey {
    ApiKey {
        hash: hash.into(),
        user: user.into(),
        kind: KeyKind::Login,
        created_at,
        expires_at: Some(created_at + 3600),
    }
}

/// Users, their API keys (several per user), and what deleting either takes with it.
pub async fn users_and_api_keys(fx: Fixture) {
    let s = fx.store();
    let mut root = User {
        name: "root".into(),
        role: Role::Root,
        password_hash: Some("$argon2id$x".into()),
    };
    s.put_user(root.clone()).await.unwrap();
    let viewer = User {
        name: "viewer".into(),
        role: Role::ReadOnly,
        password_hash: None,
    };
    s.put_user(viewer.clone()).await.unwrap();
    assert_eq!(s.user("root").await.unwrap(), Some(root.clone()));
    root.role = Role::ReadOnly;
    s.put_user(root.clone()).await.unwrap();
    assert_eq!(s.user("root").await.unwrap().unwrap().role, Role::ReadOnly);

    let issued = ApiKey {
        kind: KeyKind::Issued,
        expires_at: None,
        ..key("k1", "root", T0)
    };
    for k in [
        key("k2", "root", T0 + 5),
        issued.clone(),
        key("k3", "viewer", T0),
    ] {
        s.put_api_key(k).await.unwrap();
    }
    assert!(matches!(
        s.put_api_key(key("k4", "nobody", T0)).await,
        Err(Error::Invalid { .. })
    ));
    assert!(s.api_key("k4").await.unwrap().is_none());
    assert_eq!(s.api_key("k1").await.unwrap(), Some(issued.clone()));
    assert_eq!(
        s.api_keys("root").await.unwrap(),
        [issued, key("k2", "root", T0 + 5)]
    );
    assert!(s.delete_api_key("k2").await.unwrap());
    assert!(!s.delete_api_key("k2").await.unwrap());
    assert!(s.api_key("k2").await.unwrap().is_none());
    assert_eq!(s.api_keys("root").await.unwrap().len(), 1);

    assert_eq!(
        s.users()
            .await
            .unwrap()
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["root", "viewer"]
    );
    assert!(s.delete_user("viewer").await.unwrap());
    assert!(!s.delete_user("viewer").await.unwrap());
    assert!(s.api_key("k3").await.unwrap().is_none());
    assert!(s.api_keys("viewer").await.unwrap().is_empty());
    assert_eq!(s.api_keys("root").await.unwrap().len(), 1);
}

/// The audit log reads newest first, in pages.
pub async fn audit_log_pages_newest_first(fx: Fixture) {
    let s = fx.store();
    let entry = |at: i64, id: &str| AuditEntry {
        at,
        id: id.into(),
        user: "root".into(),
        action: "user.create".into(),
        target: format!("u{at}"),
        detail: serde_json::json!({"role": "readOnly", "n": [1, 2]}),
    };
    for (at, id) in [(2, "b"), (1, "a"), (2, "a"), (3, "a")] {
        s.audit_append(entry(at, id)).await.unwrap();
    }
    let page = s.audit(None, 2).await.unwrap();
    assert_eq!(page, [entry(3, "a"), entry(2, "b")]);
    let rest = s.audit(Some((2, "b".into())), 10).await.unwrap();
    assert_eq!(rest, [entry(2, "a"), entry(1, "a")]);
    assert!(s.audit(Some((1, "a".into())), 10).await.unwrap().is_empty());
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

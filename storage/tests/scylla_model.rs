//! The ScyllaDB backend on the CQL model (`flowwatch_storage::scylla::model`): the whole
//! conformance suite, the statement budgets of the reads and writes that scale with time, and
//! crash injection at every write boundary. No node runs here; `tests/scylla.rs` runs the same
//! suite on one when `FLOWWATCH_SCYLLA_URI` names it.

use std::future::Future;
use std::sync::Arc;

use flowwatch_core::detection::Status;
use flowwatch_core::event::Acknowledgement;
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::prelude::*;
use flowwatch_storage::scylla::model::CqlModel;
use flowwatch_storage::scylla::{ScyllaStore, ScyllaUri};
use flowwatch_storage::testsuite::{DAY, Fixture, T0, buckets, event, flow, tick};
use flowwatch_storage::{EventQuery, FlowEntry, IngestMark, Scope, Store};

fn settings() -> ScyllaUri {
    ScyllaUri::parse("scylla://model:9042/flowwatch").expect("a valid URI")
}

async fn open(model: &CqlModel) -> Arc<ScyllaStore> {
    open_with(model, settings()).await
}

async fn open_with(model: &CqlModel, settings: ScyllaUri) -> Arc<ScyllaStore> {
    let store = ScyllaStore::open(Arc::new(model.clone()), &settings).await;
    Arc::new(store.expect("the schema applies on the model"))
}

async fn fixture() -> Fixture {
    let model = CqlModel::new();
    let store: Arc<dyn Store> = open(&model).await;
    let reopen = Box::new(move || {
        let model = model.clone();
        Box::pin(async move { open(&model).await as Arc<dyn Store> }) as _
    });
    Fixture::new(store, reopen, Box::new(()))
}

flowwatch_storage::conformance_tests!(fixture);

/// Runs `op` on a fresh store that crashes at its n-th request (with that request landed, and
/// not), for every n until `op` runs whole; then `check` on the store restarted, told whether
/// `op` ran whole and which crash it was.
async fn at_every_crash<Op, OpFut, T, Check, CheckFut>(mut op: Op, mut check: Check)
where
    Op: FnMut(Arc<ScyllaStore>) -> OpFut,
    OpFut: Future<Output = flowwatch_storage::Result<T>>,
    Check: FnMut(Arc<ScyllaStore>, bool, String) -> CheckFut,
    CheckFut: Future<Output = ()>,
{
    for applied in [false, true] {
        for n in 0.. {
            let model = CqlModel::new();
            let s = open(&model).await;
            model.crash_after(n, applied);
            let whole = op(s).await.is_ok();
            model.recover();
            let at = format!("crash at request {n}, landed: {applied}");
            check(open(&model).await, whole, at).await;
            if whole {
                break;
            }
        }
    }
}

/// A read of a flow's traffic or ticks costs the same whatever the range asked: the day
/// index, then one read per 100 days that hold data (bound: 1 + ⌈days / 100⌉ requests).
#[tokio::test]
async fn reads_cost_the_same_whatever_the_range_asked() {
    let model = CqlModel::new();
    let s = open(&model).await;
    let a = flow("A");
    let days = [0, 3, 9];
    for d in days {
        s.add_buckets(vec![buckets(&a, T0 + d * DAY..T0 + d * DAY + 10, 1)], None)
            .await
            .unwrap();
        s.write_ticks(vec![tick(&a, T0 + d * DAY, Status::Ok, 1)])
            .await
            .unwrap();
    }
    for (from, to) in [
        (i64::MIN, i64::MAX),
        (0, i64::MAX),
        (T0, T0 + 10 * DAY),
        (i64::MIN, T0 + DAY),
    ] {
        model.reset_counts();
        let read = s.read_buckets(&a, from, to).await.unwrap();
        assert!(model.requests() <= 2, "{from}..{to}: {}", model.requests());
        assert!(read.windows(2).all(|w| w[0].second < w[1].second));
        model.reset_counts();
        let ticks = s.read_ticks(&a, from, to).await.unwrap();
        assert!(model.requests() <= 2, "{from}..{to}: {}", model.requests());
        assert!(ticks.windows(2).all(|w| w[0].start < w[1].start));
    }
    assert_eq!(
        s.read_buckets(&a, i64::MIN, i64::MAX).await.unwrap().len(),
        30
    );
    assert_eq!(s.read_ticks(&a, i64::MIN, i64::MAX).await.unwrap().len(), 3);
    // Nothing stored before: no read of the data at all.
    model.reset_counts();
    assert!(
        s.read_buckets(&flow("B"), 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(model.requests(), 1);
}

/// A flow with data on more days than one read may name (ScyllaDB refuses more than 100
/// partition keys a statement) is read in several: 1 + ⌈days / 100⌉ requests.
#[tokio::test]
async fn a_long_history_is_read_100_days_at_a_time() {
    let model = CqlModel::new();
    let s = open(&model).await;
    let a = flow("A");
    let seconds: Vec<i64> = (0..250).map(|d| T0 + d * DAY).collect();
    s.add_buckets(vec![buckets(&a, seconds.clone(), 1)], None)
        .await
        .unwrap();
    model.reset_counts();
    let read = s.read_buckets(&a, i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(read.iter().map(|b| b.second).collect::<Vec<_>>(), seconds);
    assert_eq!(model.requests(), 1 + 3);
}

/// Retention is the keyspace's: `ttl_days` sets it, a process started without it keeps it,
/// `ttl_days=0` turns it off; traffic, ticks and their day index expire by it.
#[tokio::test]
async fn retention_is_the_keyspaces_ttl_kept_across_processes() {
    let model = CqlModel::new();
    let with = |q: &str| ScyllaUri::parse(&format!("scylla://model:9042/flowwatch{q}")).unwrap();
    let written_at = T0 + 3600;
    let kept = |s: Arc<ScyllaStore>, f: FlowId| async move {
        let traffic = s.read_buckets(&f, i64::MIN, i64::MAX).await.unwrap();
        let ticks = s.read_ticks(&f, i64::MIN, i64::MAX).await.unwrap();
        (traffic.len(), ticks.len())
    };
    for (query, flow_name, lives) in [
        ("?ttl_days=30", "A", 30),
        // Started without it: the keyspace's 30 days stay.
        ("", "B", 30),
        ("?ttl_days=0", "C", 0),
    ] {
        model.set_now(written_at);
        let s = open_with(&model, with(query)).await;
        let f = flow(flow_name);
        s.add_buckets(vec![buckets(&f, [T0, T0 + 1], 1)], None)
            .await
            .unwrap();
        s.write_ticks(vec![tick(&f, T0, Status::Ok, 1)])
            .await
            .unwrap();
        model.set_now(written_at + 29 * DAY);
        assert_eq!(kept(s.clone(), f.clone()).await, (2, 1), "{query}");
        model.set_now(written_at + 31 * DAY);
        let left = if lives == 0 { (2, 1) } else { (0, 0) };
        assert_eq!(kept(s.clone(), f.clone()).await, left, "{query}");
    }
}

/// A day of one flow's traffic (86 400 seconds) goes in batches a node accepts: at most 256
/// statements each, the index written once per (flow, day) and process.
#[tokio::test]
async fn a_day_of_traffic_goes_in_bounded_batches_and_indexes_once() {
    let model = CqlModel::new();
    let s = open(&model).await;
    let a = flow("A");
    let midnight = T0 - T0 % DAY;
    model.reset_counts();
    s.add_buckets(vec![buckets(&a, midnight..midnight + DAY, 1)], None)
        .await
        .unwrap();
    // 86 400 rows in 338 batches, and one batch of index entries.
    assert_eq!(model.requests(), 86_400_u64.div_ceil(256) + 1);
    model.reset_counts();
    s.add_buckets(vec![buckets(&a, midnight..midnight + 10, 1)], None)
        .await
        .unwrap();
    assert_eq!(model.requests(), 1, "indexed already: the rows only");
}

/// Every other operation's requests, as docs/operations.md states them: none grows with the
/// time range asked or with the data outside what it answers.
#[tokio::test]
async fn every_operation_keeps_its_request_budget() {
    let model = CqlModel::new();
    let s = open(&model).await;
    let (a, b) = (
        flow("A"),
        FlowId::new("DE", "SMS", FlowKind::Input, "B").unwrap(),
    );
    s.register_flows(
        [&a, &b]
            .iter()
            .map(|f| FlowEntry {
                flow: (*f).clone(),
                first_seen: T0,
                partition: 0,
            })
            .collect(),
    )
    .await
    .unwrap();
    let events: Vec<_> = (0..30)
        .map(|i| {
            let f = if i % 2 == 0 { &a } else { &b };
            event(&format!("e{i:02}"), f, T0 + i * DAY / 10, Status::Outage)
        })
        .collect();
    let days_of_events = events
        .iter()
        .map(|e| e.time.div_euclid(DAY))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    s.append_events(events).await.unwrap();
    let budget = |what: &str, most: u64| {
        let used = model.requests();
        assert!(used <= most, "{what}: {used} requests, at most {most}");
        model.reset_counts();
    };
    model.reset_counts();
    for q in [
        EventQuery {
            limit: 5,
            ..Default::default()
        },
        EventQuery {
            limit: 100,
            country: Some("DE".into()),
            ..Default::default()
        },
        EventQuery {
            limit: 100,
            lob: Some("GSM".into()),
            from: Some(i64::MIN),
            to: Some(i64::MAX),
            ..Default::default()
        },
    ] {
        s.query_events(q).await.unwrap();
        budget("a page of events", 1 + days_of_events);
    }
    s.outbox_pending(100).await.unwrap();
    budget("the outbox", 1 + days_of_events);
    s.outbox_len().await.unwrap();
    budget("the outbox's length", 1 + days_of_events);
    s.latest_statuses().await.unwrap();
    budget("every status", 1);
    s.latest_statuses_in(Scope::country("CZ")).await.unwrap();
    budget("a country's statuses", 1 + 16);
    s.flows_in(Scope {
        country: "CZ",
        lob: Some("GSM"),
    })
    .await
    .unwrap();
    budget("a LoB's flows", 16);
    s.flows().await.unwrap();
    budget("every flow", 1);
    s.flow(&a).await.unwrap();
    budget("one flow", 1);
    assert_eq!(s.flow_count().await.unwrap(), 2);
    budget("the flow count", 1);
    let ticks: Vec<_> = (0..10)
        .map(|i| tick(&a, T0 + i * 60, Status::Ok, 1))
        .collect();
    s.write_ticks(ticks.clone()).await.unwrap();
    // A transaction a tick, the status, and the day's index entry the first time.
    budget("new ticks", 10 + 1 + 1);
    s.write_ticks(ticks).await.unwrap();
    budget("ticks written again", 2 * 10 + 1);
    s.append_events(vec![event("one", &a, T0, Status::Warning)])
        .await
        .unwrap();
    // The claim, the rows, the outbox's day, the acknowledgement dropped, stored.
    budget("an event", 5);
}

/// A marked batch cut short by a crash at any write, whether that write landed or not, and
/// delivered again to a restarted process, counts once.
#[tokio::test]
async fn a_marked_batch_cut_short_anywhere_counts_once() {
    let (a, b) = (flow("A"), flow("B"));
    let batch = vec![
        buckets(&a, T0 - 600..T0 + 600, 2),
        buckets(&b, T0 + DAY - 300..T0 + DAY + 300, 3),
    ];
    let mark = IngestMark {
        source: "p0".into(),
        position: 7,
    };
    let add = |s: Arc<ScyllaStore>| {
        let (batch, mark) = (batch.clone(), mark.clone());
        async move { s.add_buckets(batch, Some(mark)).await }
    };
    at_every_crash(add, |s, whole, at| {
        let (batch, mark) = (batch.clone(), mark.clone());
        async move {
            let again = s.add_buckets(batch.clone(), Some(mark)).await.unwrap();
            // Whole the first time: not applied again (after a crash, again unless the
            // position had moved).
            assert!(!(again && whole), "{at}");
            for fb in &batch {
                let read = s.read_buckets(&fb.flow, i64::MIN, i64::MAX).await.unwrap();
                assert_eq!(read, fb.buckets, "{at}");
            }
            assert_eq!(s.ingest_position("p0").await.unwrap(), Some(7));
        }
    })
    .await;
}

/// Ticks cut short by a crash at any write are all there, and the status is the latest,
/// once the writer writes them again.
#[tokio::test]
async fn ticks_cut_short_anywhere_are_whole_when_written_again() {
    let flows = [flow("A"), flow("B"), flow("C")];
    let ticks: Vec<_> = flows
        .iter()
        .flat_map(|f| (0..4).map(move |i| tick(f, T0 + i * DAY / 2, Status::Ok, 1)))
        .collect();
    let write = |s: Arc<ScyllaStore>| {
        let ticks = ticks.clone();
        async move { s.write_ticks(ticks).await }
    };
    at_every_crash(write, |s, _, at| {
        let (ticks, flows) = (ticks.clone(), flows.clone());
        async move {
            s.write_ticks(ticks).await.unwrap();
            for f in &flows {
                let read = s.read_ticks(f, i64::MIN, i64::MAX).await.unwrap();
                assert_eq!(read.len(), 4, "{at}");
            }
            let statuses = s.latest_statuses().await.unwrap();
            assert_eq!(statuses.len(), 3, "{at}");
            assert!(statuses.iter().all(|t| t.start == T0 + 3 * DAY / 2), "{at}");
        }
    })
    .await;
}

/// Events cut short by a crash at any write, appended again, are each stored once and each
/// alarm is queued once; what happened in between stays: an acknowledgement made of an event
/// found after the crash, an alarm published (marked done) after it.
#[tokio::test]
async fn events_cut_short_anywhere_are_whole_when_appended_again() {
    let (a, b) = (flow("A"), flow("B"));
    let mut back = event("back", &a, T0 + 120, Status::Ok);
    back.previous_status = Status::Outage;
    let events = vec![
        event("down", &a, T0 + 60, Status::Outage),
        event("warn", &b, T0 + DAY, Status::Warning),
        back,
    ];
    let ack = Acknowledgement {
        by: "ops".into(),
        at: T0 + 200,
        comment: "on it".into(),
    };
    let append = |s: Arc<ScyllaStore>| {
        let events = events.clone();
        async move { s.append_events(events).await }
    };
    at_every_crash(append, |s, _, at| {
        let (events, ack) = (events.clone(), ack.clone());
        async move {
            let mut acknowledged = Vec::new();
            for e in &events {
                if s.event(&e.id).await.unwrap().is_some() {
                    s.acknowledge(&e.id, ack.clone()).await.unwrap();
                    acknowledged.push(e.id.clone());
                }
            }
            let published = ids(&s.outbox_pending(10).await.unwrap());
            s.outbox_done(published.clone()).await.unwrap();
            s.append_events(events.clone()).await.unwrap();
            let all = EventQuery {
                limit: 10,
                ..Default::default()
            };
            let stored = s.query_events(all).await.unwrap().events;
            assert_eq!(ids(&stored), ["back", "down", "warn"], "{at}");
            for e in &stored {
                let kept = s.event(&e.id).await.unwrap().unwrap();
                let want = acknowledged.contains(&e.id).then(|| ack.clone());
                assert_eq!(kept.acknowledged, want, "{at}: {}", e.id);
                assert_eq!(e.acknowledged, want, "{at}: {} in a page", e.id);
            }
            let mut queued = ids(&s.outbox_pending(10).await.unwrap());
            queued.extend(published);
            queued.sort();
            assert_eq!(
                queued,
                ["back", "down", "warn"],
                "{at}: each alarm queued once"
            );
        }
    })
    .await;
}

/// The ids of `events`, sorted.
fn ids(events: &[flowwatch_storage::Event]) -> Vec<String> {
    let mut ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    ids
}

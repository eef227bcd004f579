//! Records through the JetStream ingest stream into a worker (a real `nats-server` per test):
//! every partition's consumer stores what was published, exactly once; a batch stored before a
//! crash but never acknowledged is delivered again and not counted twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flowwatch_core::config::Config;
use flowwatch_core::record::{Batch, Record};
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::{IngestMark, Store};
use flowwatch_worker::actors::flow_supervisor::{
    FlowSupervisor, SupervisorArgs, SupervisorMsg, fixed,
};
use flowwatch_worker::ingest::{JetStreamIngest, PartitionConsumer, partition_subject};
use flowwatch_worker::testkit::{NatsServer, eventually};
use flowwatch_worker::{Clock, WorkerSettings};
use ractor::{Actor, ActorRef};
use tokio::sync::broadcast;

const T0: i64 = 1_486_335_600; // 2017-02-05T23:00:00Z, midnight in Prague

struct Worker {
    store: Arc<dyn Store>,
    supervisor: ActorRef<SupervisorMsg>,
    _dir: tempfile::TempDir,
}

async fn worker() -> Worker {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).await.unwrap());
    let args = SupervisorArgs {
        config: fixed(Config::default()),
        store: store.clone(),
        clock: Clock::starting_at(T0 + 86_400),
        settings: Arc::new(WorkerSettings::default()),
        alarms: broadcast::channel(1024).0,
        ownership: None,
    };
    let (supervisor, _) = Actor::spawn(None, FlowSupervisor, args).await.unwrap();
    Worker {
        store,
        supervisor,
        _dir: dir,
    }
}

fn records(batch: i64, flows: usize) -> Batch {
    (0..flows)
        .flat_map(|f| {
            (0..50).map(move |i| Record {
                time: T0 + batch * 600 + i * 7,
                flow: FlowId::new("CZ", "GSM", FlowKind::Input, &format!("F{f}")).unwrap(),
                bytes: 1000 + f as u64,
            })
        })
        .collect()
}

/// Stored (bytes, records) per flow.
async fn stored(store: &dyn Store, flows: usize) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for f in 0..flows {
        let id = FlowId::new("CZ", "GSM", FlowKind::Input, &format!("F{f}")).unwrap();
        let b = store.read_buckets(&id, i64::MIN, i64::MAX).await.unwrap();
        out.insert(
            id.name.clone(),
            b.iter()
                .fold((0, 0), |a, b| (a.0 + b.bytes, a.1 + b.records)),
        );
    }
    out
}

fn totals(records: &Batch) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (flow, _, bytes) in records.records() {
        let e = out.entry(flow.name.clone()).or_default();
        e.0 += bytes;
        e.1 += 1;
    }
    out
}

async fn client(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.unwrap()
}

fn consumer(w: &Worker, js: &async_nats::jetstream::Context, partition: u32) -> PartitionConsumer {
    PartitionConsumer {
        js: js.clone(),
        partition,
        supervisor: w.supervisor.clone(),
        store: w.store.clone(),
        ack_wait: Duration::from_secs(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_partition_is_consumed_exactly_once() {
    let nats = NatsServer::start();
    let w = worker().await;
    let nc = client(&nats.url()).await;
    let publisher = JetStreamIngest::new(nc.clone(), 4).await.unwrap();
    let js = async_nats::jetstream::new(nc);
    let tasks: Vec<_> = (0..4)
        .map(|p| tokio::spawn(consumer(&w, &js, p).run(Default::default())))
        .collect();
    let mut all = Batch::default();
    for batch in 0..10 {
        let r = records(batch, 12);
        publisher.publish(&r).await.unwrap();
        all.extend(r);
    }
    let want = totals(&all);
    eventually("everything is stored", async || {
        stored(w.store.as_ref(), 12).await == want
    })
    .await;
    // Every partition got some flows, and each one's position moved.
    for p in 0..4 {
        assert!(
            w.store
                .ingest_position(&partition_subject(p))
                .await
                .unwrap()
                .is_some()
        );
    }
    // Nothing is delivered again after the acknowledgement wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(w.store.as_ref(), 12).await, want);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stored_but_not_acknowledged_counts_once() {
    let nats = NatsServer::start();
    let w = worker().await;
    let nc = client(&nats.url()).await;
    let publisher = JetStreamIngest::new(nc.clone(), 1).await.unwrap();
    let first = records(0, 3);
    publisher.publish(&first).await.unwrap(); // stream sequence 1
    // What a consumer does before it dies between storing and acknowledging.
    let outcome = w
        .supervisor
        .call(
            |r| {
                SupervisorMsg::Ingest(
                    first.clone(),
                    Some(IngestMark {
                        source: partition_subject(0),
                        position: 1,
                    }),
                    r,
                )
            },
            None,
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(outcome.accepted, first.len() as u64);
    // The restarted consumer gets sequence 1 again, and then new traffic.
    let js = async_nats::jetstream::new(nc);
    let task = tokio::spawn(consumer(&w, &js, 0).run(Default::default()));
    let second = records(1, 3);
    publisher.publish(&second).await.unwrap();
    let mut both = first.clone();
    both.extend(second);
    let want = totals(&both);
    eventually("the new batch is stored", async || {
        w.store
            .ingest_position(&partition_subject(0))
            .await
            .unwrap()
            == Some(2)
    })
    .await;
    assert_eq!(
        stored(w.store.as_ref(), 3).await,
        want,
        "the first batch counted once"
    );
    task.abort();
}

/// Regression: a consumer that died holding messages it had not stored (a worker killed, or a
/// partition moved) left them to be delivered again only after the acknowledgement wait,
/// after newer messages; the newer ones' position then made them look stored, and they were
/// lost. A consumer now starts afresh at the oldest message nobody acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_a_dead_consumer_held_are_stored_before_newer_ones() {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures_util::StreamExt;

    let nats = NatsServer::start();
    let w = worker().await;
    let nc = client(&nats.url()).await;
    let publisher = JetStreamIngest::new(nc.clone(), 1).await.unwrap();
    let first = records(0, 3);
    publisher.publish(&first).await.unwrap();
    // The dead consumer: it took the first message and never acknowledged it.
    let js = async_nats::jetstream::new(nc);
    let stream = js.get_stream("FLOWWATCH_INGEST").await.unwrap();
    let held: async_nats::jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("flowwatch-ingest-0".into()),
            filter_subject: partition_subject(0),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut taken = held.fetch().max_messages(1).messages().await.unwrap();
    assert!(taken.next().await.is_some());
    drop(taken);

    let second = records(1, 3);
    publisher.publish(&second).await.unwrap();
    let task = tokio::spawn(consumer(&w, &js, 0).run(Default::default()));
    let mut both = first.clone();
    both.extend(second);
    let want = totals(&both);
    eventually("both messages stored", async || {
        stored(w.store.as_ref(), 3).await == want
    })
    .await;
    task.abort();
}

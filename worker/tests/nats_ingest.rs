//! Records through the JetStream ingest stream into a worker (a real `nats-server` per test):
//! every partition's consumer stores what was published, exactly once; a batch stored before a
//! crash but never acknowledged is delivered again and not counted twice. And records from
//! Kafka (a real Kafka-protocol broker, `tansu`, per test), straight into the worker or through
//! the JetStream partitions: each counted once, however often and however cut they are read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flowwatch_core::config::Config;
use flowwatch_core::record::{Batch, Record};
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_ports::ingest::{SourceLag, SourcedBatch};
use flowwatch_ports::{InForce, Ingest};
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::{IngestMark, Store};
use flowwatch_worker::actors::flow_supervisor::{
    FlowSupervisor, SupervisorArgs, SupervisorMsg, fixed,
};
use flowwatch_worker::ingest::{
    JetStreamIngest, PartitionConsumer, SupervisorIngest, partition_subject,
};
use flowwatch_worker::kafka::{KafkaIngest, KafkaSource};
use flowwatch_worker::testkit::{KafkaBroker, NatsServer, eventually};
use flowwatch_worker::{Clock, WorkerSettings};
use ractor::{Actor, ActorRef};
use rskafka::client::partition::UnknownTopicHandling;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

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

async fn client_of(url: &str) -> async_nats::Client {
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
    let nc = client_of(&nats.url()).await;
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
    let nc = client_of(&nats.url()).await;
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
    let nc = client_of(&nats.url()).await;
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

/// A broker with topic `cdr` of `partitions` partitions, each holding `messages` messages:
/// seed messages and CSV lines (two records each) of flows F0..F11, alternating. Returns the
/// broker, its client and the records produced.
async fn kafka_topic(
    partitions: i32,
    messages: usize,
) -> (KafkaBroker, rskafka::client::Client, Batch) {
    let broker = KafkaBroker::start();
    broker.create_topic("cdr", partitions).await;
    let mut all = Batch::default();
    for p in 0..partitions {
        let mut values = Vec::new();
        for i in 0..messages {
            let flow = format!("F{}", (i + p as usize) % 12);
            let bytes = 1 + i as u64;
            let (value, records) = match i % 2 {
                0 => (
                    format!(
                        r#"{{"country":"CZ","lobName":"GSM","type":"inputs","flowName":"{flow}","dataSize":{bytes},"time":"06.02.2017 00:{:02}:{:02}"}}"#,
                        i / 60 % 60,
                        i % 60
                    ),
                    vec![bytes],
                ),
                _ => (
                    format!(
                        "2017-02-06T00:00:{:02}Z,CZ,GSM,input,{flow},{bytes}\n2017-02-06T00:00:{:02}Z,CZ,GSM,input,{flow},7",
                        i % 60,
                        i % 60
                    ),
                    vec![bytes, 7],
                ),
            };
            for b in records {
                let flow = FlowId::new("CZ", "GSM", FlowKind::Input, &flow).unwrap();
                all.add_record(
                    Record {
                        time: T0,
                        flow,
                        bytes: b,
                    },
                    |_| Ok(()),
                )
                .unwrap();
            }
            values.push(value.into_bytes());
        }
        broker.produce("cdr", p, values).await;
    }
    let client = broker.client().await;
    (broker, client, all)
}

fn kafka_reader(
    broker: &KafkaBroker,
    group: &str,
    ingest: Arc<dyn Ingest>,
) -> (KafkaIngest, Arc<SourceLag>) {
    let lag = Arc::new(SourceLag::default());
    let reader = KafkaIngest {
        source: KafkaSource {
            brokers: vec![broker.address()],
            topic: "cdr".into(),
            group: group.into(),
        },
        ingest,
        config: tokio::sync::watch::channel(InForce {
            version: 1,
            config: Arc::new(Config::default()),
        })
        .1,
        lag: lag.clone(),
    };
    (reader, lag)
}

/// What a reader that died after storing, before it moved on, reads at its next start: the
/// partition's records from offset 0 to `to`, cut where the first reader did not cut.
async fn read_again(client: &rskafka::client::Client, partition: i32, to: i64) -> SourcedBatch {
    let pc = client
        .partition_client("cdr", partition, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let mut records = Vec::new();
    let mut next = 0;
    while next < to {
        let (got, _) = pc.fetch_records(next, 1..1_000_000, 100).await.unwrap();
        next = got.last().unwrap().offset + 1;
        records.extend(got.into_iter().filter(|r| r.offset < to));
    }
    let source = format!("kafka/g/cdr/{partition}");
    SourcedBatch {
        records: flowwatch_worker::kafka::parse_records(&source, &records, &Config::default()),
        source,
        end: to as u64,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_records_are_stored_once_however_often_they_are_read() {
    let (broker, client, all) = kafka_topic(3, 3000).await;
    let want = totals(&all);
    let w = worker().await;
    let ingest: Arc<dyn Ingest> = Arc::new(SupervisorIngest {
        supervisor: w.supervisor.clone(),
        store: w.store.clone(),
    });
    // Two readers of one group met (a restart while the old process still ran): one stored
    // offsets 0..1000 of partition 0, the other read 0..2000 in one batch.
    ingest
        .submit_sourced(read_again(&client, 0, 1000).await)
        .await
        .unwrap();
    ingest
        .submit_sourced(read_again(&client, 0, 2000).await)
        .await
        .unwrap();
    let (reader, lag) = kafka_reader(&broker, "g", ingest.clone());
    let stop = CancellationToken::new();
    let task = tokio::spawn(reader.run(stop.clone()));
    eventually("every record is stored", async || {
        stored(w.store.as_ref(), 12).await == want
    })
    .await;
    eventually("no partition lags", async || {
        let l = lag.snapshot();
        l.len() == 3 && l.iter().all(|(_, _, l)| l.lag() == 0 && l.position == 3000)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    for p in 0..3 {
        let source = format!("kafka/g/cdr/{p}");
        assert_eq!(ingest.resume_at(&source).await.unwrap(), 3000);
    }

    // A reader of the same group starts where the store says: nothing is counted twice.
    let (reader, _) = kafka_reader(&broker, "g", ingest.clone());
    let stop = CancellationToken::new();
    let task = tokio::spawn(reader.run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(w.store.as_ref(), 12).await, want);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_through_the_jetstream_partitions_counts_each_record_once() {
    let nats = NatsServer::start();
    let (broker, client, all) = kafka_topic(2, 2500).await;
    let want = totals(&all);
    let w = worker().await;
    let nc = client_of(&nats.url()).await;
    let publisher = JetStreamIngest::new(nc.clone(), 4)
        .await
        .unwrap()
        .with_store(w.store.clone());
    let ingest: Arc<dyn Ingest> = Arc::new(publisher);
    let js = async_nats::jetstream::new(nc);
    let consumers: Vec<_> = (0..4)
        .map(|p| tokio::spawn(consumer(&w, &js, p).run(Default::default())))
        .collect();
    // A reader that stored offsets 0..1500 of partition 0 and died before moving on; at its
    // next start the lowest position among the ingest partitions may be lower, and it reads
    // 0..2000 again in one batch.
    ingest
        .submit_sourced(read_again(&client, 0, 1500).await)
        .await
        .unwrap();
    eventually("the first read is stored", async || {
        ingest.resume_at("kafka/g/cdr/0").await.unwrap() == 1500
    })
    .await;
    ingest
        .submit_sourced(read_again(&client, 0, 2000).await)
        .await
        .unwrap();
    let (reader, _) = kafka_reader(&broker, "g", ingest.clone());
    let stop = CancellationToken::new();
    let task = tokio::spawn(reader.run(stop.clone()));
    eventually("every record is stored", async || {
        stored(w.store.as_ref(), 12).await == want
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    eventually("every ingest partition moved on", async || {
        ingest.resume_at("kafka/g/cdr/0").await.unwrap() == 2500
    })
    .await;
    // Nothing arrives twice later either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(w.store.as_ref(), 12).await, want);
    assert_eq!(ingest.resume_at("kafka/g/cdr/1").await.unwrap(), 2500);
    for c in consumers {
        c.abort();
    }
}

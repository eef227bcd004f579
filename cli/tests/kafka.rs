//! Kafka ingest (SPEC §12) with `flowwatch` processes and a real Kafka-protocol broker
//! (`tansu`): a million seed messages into `flowwatch run`, killed with SIGKILL in the middle
//! and started again on the same store, the stored traffic exactly what was sent, per flow, and
//! the System page's lag per partition reaching 0; and a cluster (PostgreSQL, NATS) whose
//! worker and gateway both read the topic in one group: each record stored once.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Run;
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::prelude::*;
use flowwatch_storage::testsuite::TestDatabase;
use flowwatch_worker::testkit::KafkaBroker;
use flowwatch_worker::testkit::NatsServer;
use serde_json::Value;

const PARTITIONS: i32 = 4;
const MESSAGES: usize = 1_000_000;
const FLOWS: usize = 400;

/// Message `i` of a partition: a seed message of flow `F<n>` in February 2017, local time.
fn seed(partition: i32, i: usize) -> (String, u64, Vec<u8>) {
    let flow = format!("F{}", (i * 7 + partition as usize) % FLOWS);
    let bytes = 100 + (i % 997) as u64;
    let minute = i % (27 * 24 * 60);
    let (day, hour, min) = (1 + minute / 1440, minute / 60 % 24, minute % 60);
    let sec = i % 60;
    let value = format!(
        r#"{{"country":"CZ","lobName":"GSM","type":"inputs","flowName":"{flow}","dataSize":{bytes},"time":"{day:02}.02.2017 {hour:02}:{min:02}:{sec:02}"}}"#
    );
    (flow, bytes, value.into_bytes())
}

/// The partitions' positions and lags as the System page shows them.
fn kafka_state(run: &Run) -> Vec<(u64, u64)> {
    let status: Value = run.json("/api/v1/status");
    status["components"]["kafka"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["position"].as_u64().unwrap(), p["lag"].as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_messages_are_stored_exactly_once_across_a_kill() {
    let broker = KafkaBroker::start();
    broker.create_topic("cdr", PARTITIONS).await;
    let mut sent: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut producing = Vec::new();
    for p in 0..PARTITIONS {
        let mut values = Vec::with_capacity(MESSAGES / PARTITIONS as usize);
        for i in 0..MESSAGES / PARTITIONS as usize {
            let (flow, bytes, value) = seed(p, i);
            let e = sent.entry(flow).or_default();
            e.0 += bytes;
            e.1 += 1;
            values.push(value);
        }
        producing.push(broker.produce("cdr", p, values));
    }
    let produced = Instant::now();
    futures_util::future::join_all(producing).await;
    eprintln!("produced {MESSAGES} messages in {:?}", produced.elapsed());

    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--kafka-brokers",
        &broker.address(),
        "--kafka-topic",
        "cdr",
        "--kafka-group",
        "billing-feed",
        "--start-time",
        "2017-03-01T00:00:00Z",
    ];
    let mut run = Run::start(dir.path(), &args);
    // Killed once a third of the messages are stored and before the rest are.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let stored: u64 = kafka_state(&run).iter().map(|p| p.0).sum();
        assert!(
            stored < MESSAGES as u64,
            "everything was stored before the kill"
        );
        if stored >= MESSAGES as u64 / 3 {
            break;
        }
        assert!(Instant::now() < deadline, "only {stored} messages stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.child.kill().unwrap(); // SIGKILL
    run.child.wait().unwrap();
    drop(run);

    let run = Run::start(dir.path(), &args);
    loop {
        let state = kafka_state(&run);
        let done = state.len() == PARTITIONS as usize
            && state.iter().all(|&(_, lag)| lag == 0)
            && state.iter().map(|p| p.0).sum::<u64>() == MESSAGES as u64;
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "not caught up: {state:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    run.terminate();

    let store = EmbeddedStore::open(dir.path()).await.unwrap();
    let stored = stored(&store, sent.keys().cloned()).await;
    // The positions are the group's (`--kafka-group`): every message of each partition.
    for p in 0..PARTITIONS {
        let source = format!("kafka/billing-feed/cdr/{p}");
        let position = store.ingest_position(&source).await.unwrap();
        assert_eq!(
            position,
            Some((MESSAGES / PARTITIONS as usize) as u64),
            "{source}"
        );
    }
    assert_eq!(stored, sent, "each message stored once, none lost");
}

/// Stored (bytes, records) of the input flows `names` of CZ/GSM.
async fn stored(
    store: &dyn Store,
    names: impl Iterator<Item = String>,
) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for name in names {
        let flow = FlowId::new("CZ", "GSM", FlowKind::Input, &name).unwrap();
        let buckets = store.read_buckets(&flow, i64::MIN, i64::MAX).await.unwrap();
        let sum = buckets
            .iter()
            .fold((0, 0), |a, b| (a.0 + b.bytes, a.1 + b.records));
        out.insert(name, sum);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusters_worker_and_gateway_reading_one_group_store_each_record_once() {
    let broker = KafkaBroker::start();
    broker.create_topic("cdr", 2).await;
    let mut sent: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in 0..2 {
        let values = (0..20_000)
            .map(|i| {
                let (flow, bytes, value) = seed(p, i);
                let e = sent.entry(flow).or_default();
                e.0 += bytes;
                e.1 += 1;
                value
            })
            .collect();
        broker.produce("cdr", p, values).await;
    }
    let db = TestDatabase::new();
    let nats = NatsServer::start();
    let (uri, url, brokers) = (db.uri(), nats.url(), broker.address());
    let kafka = ["--kafka-brokers", &brokers, "--kafka-topic", "cdr"];
    let gateway =
        Run::start_gateway(&[&["--storage", &uri, "--nats-url", &url][..], &kafka].concat());
    let coordinator = Server::start("coordinator", &["--nats-url", &url]);
    let coordinator_url = format!("http://{}", coordinator.addr);
    let worker = Server::start(
        "worker",
        &[
            &[
                "--storage",
                &uri,
                "--nats-url",
                &url,
                "--coordinator",
                &coordinator_url,
            ][..],
            &kafka,
        ]
        .concat(),
    );
    let store = flowwatch_storage::open(&uri).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored(store.as_ref(), sent.keys().cloned()).await != sent {
        assert!(Instant::now() < deadline, "not everything was stored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both readers caught up, and nothing arrives a second time.
    let caught_up = |state: Vec<(u64, u64)>| state.len() == 2 && state.iter().all(|p| p.1 == 0);
    while !caught_up(kafka_state(&gateway)) {
        assert!(Instant::now() < deadline, "{:?}", kafka_state(&gateway));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let worker_lag = || common::http(&worker.addr, "GET", "/metrics", &[], "").1;
    while !(0..2).all(|p| {
        worker_lag().contains(&format!(
            "flowwatch_kafka_lag{{topic=\"cdr\",partition=\"{p}\"}} 0\n"
        ))
    }) {
        assert!(Instant::now() < deadline, "{}", worker_lag());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stored(store.as_ref(), sent.keys().cloned()).await, sent);
}

/// A `flowwatch coordinator` or `worker` process (`--grpc 127.0.0.1:0`) and the address it
/// printed.
struct Server {
    child: std::process::Child,
    addr: String,
}

impl Server {
    fn start(subcommand: &str, args: &[&str]) -> Server {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flowwatch"))
            .args([subcommand, "--grpc", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let addr = common::listening_address(&mut child);
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

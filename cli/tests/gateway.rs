//! `flowwatch gateway` as its own process, on the real PostgreSQL server every machine of the
//! project runs (`FLOWWATCH_TEST_POSTGRES`, default `postgres://root@127.0.0.1:5432/test`; a
//! fresh database per test, dropped after) and a real `nats-server` per test: gateways on one
//! store share users, keys and the configuration; ingest goes through JetStream to the workers'
//! consumers; the workers' alarms reach the live stream; a bad `--storage` is refused; the
//! cluster view without coordinators, and with none answering.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use common::Run;
use flowwatch_core::config::Config;
use flowwatch_core::time::utc_string;
use flowwatch_storage::Store;
use flowwatch_storage::testsuite::TestDatabase;
use flowwatch_worker::actors::flow_supervisor::{FlowSupervisor, SupervisorArgs, fixed};
use flowwatch_worker::ingest::{INGEST_STREAM, PartitionConsumer};
use flowwatch_worker::testkit::{NatsServer, eventually, free_port};
use flowwatch_worker::{Clock, WorkerSettings};
use serde_json::{Value, json};

/// 2017-02-06T00:00:00Z (01:00 in Prague).
const T0: i64 = 1_486_339_200;
const JSON: &str = "application/json";

/// A gateway on `db` and `nats` with `extra` flags.
fn gateway(db: &TestDatabase, nats: &NatsServer, extra: &[&str]) -> Run {
    let (uri, url) = (db.uri(), nats.url());
    let mut args = vec!["--storage", &uri, "--nats-url", &url];
    args.extend(extra);
    Run::start_gateway(&args)
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn gateways_on_one_store_share_users_keys_and_the_configuration() {
    let db = TestDatabase::new();
    let nats = NatsServer::start();
    let one = gateway(&db, &nats, &[]);
    let dead: Vec<String> = (0..2)
        .map(|_| format!("http://127.0.0.1:{}", free_port()))
        .collect();
    let two = gateway(&db, &nats, &["--coordinator", &dead.join(",")]);

    // Without `--coordinator` a gateway knows no cluster; with coordinators of which none
    // answers, the cluster view is unavailable, naming every address asked.
    assert_eq!(
        one.json("/api/v1/cluster"),
        json!({"clustered": false, "inProcess": false, "members": []})
    );
    let (status, body) = two.request("GET", "/api/v1/cluster", JSON, "");
    assert_eq!(status, 503, "{body}");
    let error = &parse(&body)["error"];
    assert_eq!(error["code"], "coordinator_unavailable");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("no leading coordinator found: "),
        "{message}"
    );
    for address in &dead {
        assert!(
            message.contains(&format!("{address}: does not answer: ")),
            "{message}"
        );
    }
    // A gateway alone runs no worker: the workers' health is unknown, and says why, rather
    // than zeros that look like an idle cluster.
    let worker = &one.json("/api/v1/status")["components"]["worker"];
    assert_eq!(worker["source"], "unknown", "{worker}");
    let why = worker["error"].as_str().unwrap();
    assert!(why.contains("--coordinator"), "{why}");
    let worker = &two.json("/api/v1/status")["components"]["worker"];
    assert_eq!(worker["source"], "unknown", "{worker}");
    let why = worker["error"].as_str().unwrap();
    assert!(why.starts_with("no leading coordinator found: "), "{why}");

    // A key issued by one gateway works on the other, and so does a user made on one.
    let (status, me) = two.request_as(Some(&one.key), "GET", "/api/v1/me", "", "");
    assert_eq!(status, 200, "{me}");
    assert_eq!(parse(&me)["user"], "root");
    let user = json!({"name": "ops", "role": "readOnly", "password": "ops password 1"});
    let (status, body) = one.request("POST", "/api/v1/users", JSON, &user.to_string());
    assert_eq!(status, 201, "{body}");
    let issued = parse(&body)["apiKey"].as_str().unwrap().to_owned();
    let (status, body) = two.request_as(Some(&issued), "GET", "/api/v1/dashboard", "", "");
    assert_eq!(status, 200, "{body}");
    let ops = two.login("ops", "ops password 1");
    let (status, body) = one.request_as(Some(&ops), "GET", "/api/v1/dashboard", "", "");
    assert_eq!(status, 200, "{body}");

    // A configuration saved through one gateway is in force on the other within a few
    // seconds (it reads the store every 2 s).
    assert_eq!(two.json("/api/v1/config")["version"], 0);
    let document = json!({"defaults": {"softAlarmLevel": 0.75}});
    let put = json!({"version": 0, "document": document});
    let (status, body) = one.request("PUT", "/api/v1/config", JSON, &put.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["version"], 1);
    let followed = wait_for_version(&two, 1);
    assert_eq!(followed["document"]["defaults"]["softAlarmLevel"], 0.75);
    assert_eq!(followed["document"], one.json("/api/v1/config")["document"]);
    // ... and the other saves on top of it.
    let put = json!({"version": 1, "document": {"defaults": {"softAlarmLevel": 0.7}}});
    let (status, body) = two.request("PUT", "/api/v1/config", JSON, &put.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        wait_for_version(&one, 2)["document"]["defaults"]["softAlarmLevel"],
        0.7
    );

    // A stored version that does not validate is not put in force; a valid one after it is.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(flowwatch_storage::open(&db.uri())).unwrap();
    rt.block_on(store.config_put(2, json!({"colour": "red"}), "test"))
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        two.json("/api/v1/config")["version"],
        2,
        "invalid version 3 refused"
    );
    let valid = json!({"defaults": {"softAlarmLevel": 0.6}});
    rt.block_on(store.config_put(3, valid, "test")).unwrap();
    assert_eq!(
        wait_for_version(&two, 4)["document"]["defaults"]["softAlarmLevel"],
        0.6
    );
}

/// `GET /api/v1/config` of `run` once its version is `version` (at most 10 s).
fn wait_for_version(run: &Run, version: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let config = run.json("/api/v1/config");
        if config["version"] == version {
            return config;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "version {version} not in force within 10 s: {config}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_goes_through_jetstream_to_the_workers() {
    let db = TestDatabase::new();
    let mut nats = NatsServer::start();
    let gw = gateway(&db, &nats, &["--partitions", "2"]);
    let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
    for i in 0..24 {
        let t = utc_string(T0 + i * 300);
        csv.push_str(&format!("{t},CZ,GSM,input,A,{}\n", 100 + i));
        csv.push_str(&format!("{t},CZ,GSM,input,B,7\n"));
    }
    assert_eq!(gw.ingest(&csv)["accepted"], 48);

    // Answered once JetStream has the records: they wait in the ingest stream, none stored.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(INGEST_STREAM).await.unwrap();
    let waiting = stream.info().await.unwrap().state.messages;
    assert!(waiting >= 1, "nothing in {INGEST_STREAM}");
    let traffic = "/api/v1/flows/CZ/GSM/input/A/traffic?from=2017-02-06&to=2017-02-07&bucket=3600";
    assert_eq!(
        gw.json(traffic)["traffic"],
        json!([]),
        "stored before any worker"
    );

    // A worker on the same store consumes both partitions with its real code.
    let store: Arc<dyn Store> = flowwatch_storage::open(&db.uri()).await.unwrap();
    let (supervisor, _) = ractor::Actor::spawn(
        None,
        FlowSupervisor,
        SupervisorArgs {
            config: fixed(Config::default()),
            store: store.clone(),
            clock: Clock::starting_at(T0 + 86_400),
            settings: Arc::new(WorkerSettings::default()),
            alarms: tokio::sync::broadcast::channel(1024).0,
            ownership: None,
        },
    )
    .await
    .unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|partition| {
            tokio::spawn(
                PartitionConsumer {
                    js: js.clone(),
                    partition,
                    supervisor: supervisor.clone(),
                    store: store.clone(),
                    ack_wait: Duration::from_secs(5),
                }
                .run(Default::default()),
            )
        })
        .collect();
    // Flow A's 24 records: 12 in each of the first two hours, read back through the gateway.
    let a_bytes = |from: i64, to: i64| (from..to).map(|i| 100 + i).sum::<i64>();
    let want = json!([
        {"time": utc_string(T0), "bytes": a_bytes(0, 12), "records": 12},
        {"time": utc_string(T0 + 3600), "bytes": a_bytes(12, 24), "records": 12},
    ]);
    eventually("flow A's traffic is stored", async || {
        gw.json(traffic)["traffic"] == want
    })
    .await;
    let b = gw.json(&traffic.replace("/A/", "/B/"));
    let b_bytes: u64 = b["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(b_bytes, 24 * 7);
    for c in consumers {
        c.abort();
    }
    supervisor.stop(None);

    // Without JetStream there is no acknowledgement, so no 200.
    nats.stop();
    let (status, body) = gw.request("POST", "/api/v1/ingest", "text/csv", &csv);
    assert_eq!(status, 503, "{body}");
}

/// The next `status` event of the stream (components, every 5 s, are skipped), at most 20 s
/// away.
fn next_status(events: &mpsc::Receiver<Option<(String, String)>>) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (name, data) = events
            .recv_timeout(left)
            .expect("a status event within 20 s")
            .expect("the stream is open");
        match name.as_str() {
            "status" => return parse(&data),
            "components" => continue,
            other => panic!("unexpected event {other}: {data}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_alarms_on_nats_reach_the_live_stream() {
    let db = TestDatabase::new();
    let nats = NatsServer::start();
    let gw = gateway(&db, &nats, &[]);
    let events = gw.subscribe("");
    let (name, _) = events
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(name, "components", "subscribed");

    let client = async_nats::connect(nats.url()).await.unwrap();
    let subject = "flowwatch.alarms.CZ.GSM.input.A";
    let alarm = |id: &str, previous: &str, new: &str| {
        json!({
            "id": id, "system": "mediation", "country": "CZ", "lobName": "GSM",
            "kind": "input", "flowName": "A", "tickTime": "2017-02-06T10:00:00Z",
            "time": "2017-02-06T11:02:00Z", "previousStatus": previous, "newStatus": new,
            "actual": 10, "expected": 1200.5, "difference": 0.25
        })
    };
    let mut bad = alarm("bad", "OK", "OUTAGE");
    bad["newStatus"] = json!("BROKEN");
    for payload in [
        "{not json".to_owned(),
        bad.to_string(),
        alarm("first", "OK", "OUTAGE").to_string(),
    ] {
        client.publish(subject, payload.into()).await.unwrap();
    }
    client.flush().await.unwrap();
    let first = next_status(&events);
    assert_eq!(first, alarm("first", "OK", "OUTAGE"), "the SPEC §8 message");

    // The malformed messages broke nothing: the next alarm arrives too.
    let second = alarm("second", "OUTAGE", "OK");
    client
        .publish(subject, second.to_string().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    assert_eq!(next_status(&events), second);
}

#[test]
fn a_missing_or_invalid_storage_is_refused() {
    let nats = ["--nats-url", "nats://127.0.0.1:1"];
    let refused = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
            .arg("gateway")
            .args(args)
            .env_remove("FLOWWATCH_GATEWAY__STORAGE")
            .env_remove("FLOWWATCH_SETTINGS")
            .output()
            .unwrap();
        assert!(!o.status.success(), "accepted {args:?}");
        assert!(o.stdout.is_empty(), "never listened");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = refused(&nats);
    assert!(err.contains("--storage <STORAGE>"), "{err}");
    let err = refused(&[&nats[..], &["--storage", "bogus://x"]].concat());
    assert!(
        err.contains("cannot open the store bogus://x (--storage): invalid storage URI"),
        "{err}"
    );
    let err = refused(
        &[
            &nats[..],
            &["--storage", "postgres://root:pw@127.0.0.1:1/x"],
        ]
        .concat(),
    );
    assert!(
        err.contains(
            "cannot open the store postgres://root:***@127.0.0.1:1/x (--storage): postgres: "
        ),
        "{err}"
    );
}

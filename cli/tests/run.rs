//! `flowwatch run` as a process: ingest over HTTP (good and bad lines), the status view, the
//! cluster view of one process and metrics, alarms on a real `nats-server` with the SPEC §8 schema, and `kill -9` in the middle
//! of ingest: every acknowledged record is stored once after a restart.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Run, api_rows, replay_rows};

use flowwatch_core::time::utc_string;
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::TrafficStore;
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_worker::testkit::{NatsServer, eventually};
use futures_util::StreamExt;

/// 2017-02-06T00:00:00Z.
const T0: i64 = 1_486_339_200;

fn csv(rows: impl IntoIterator<Item = (i64, String, u64)>) -> String {
    let mut out = String::from("time,country,lob,kind,flow,bytes\n");
    for (t, flow, bytes) in rows {
        let time = utc_string(t);
        out.push_str(&format!("{time},CZ,GSM,input,{flow},{bytes}\n"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_status_metrics_and_alarms_on_nats() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let nc = async_nats::connect(nats.url()).await.unwrap();
    let mut alarms = nc.subscribe("flowwatch.alarms.>").await.unwrap();
    nc.flush().await.unwrap();
    // The clock stands 3 hours after the history ends: those hours were silent.
    let days = 15;
    let now = T0 + days * 86_400 + 3 * 3600;
    let run = Run::start(
        dir.path(),
        &["--start-time", &utc_string(now), "--nats-url", &nats.url()],
    );
    assert_eq!(run.json("/api/v1/health")["status"], "serving");

    let history = csv((0..days * 24 * 12).map(|i| (T0 + i * 300, "A".to_owned(), 1000)));
    let bad = "2017-02-06T00:00:00Z,CZ,GSM,input,A\n2017-02-06T00:00:00Z,XX,GSM,input,A,5\n";
    let r = run.ingest(&format!("{history}{bad}"));
    let taken = days * 24 * 12;
    assert_eq!(r["accepted"], taken);
    assert_eq!(r["refused"], 2);
    assert_eq!(r["errors"][0]["line"], taken + 2);
    assert_eq!(r["errors"][0]["message"], "expected 6 fields, found 5");
    assert!(
        r["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("unknown country")
    );
    let (status, body) = run.request("POST", "/api/v1/ingest", "text/plain", "x");
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("\"code\":\"unsupported_media_type\""));

    // The silence is caught up at once: the flow goes down and NATS hears of it.
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|v: &serde_json::Value| v["newStatus"] == "OUTAGE")
    {
        let m = tokio::time::timeout(Duration::from_secs(30), alarms.next())
            .await
            .expect("an alarm on NATS")
            .unwrap();
        assert_eq!(m.subject.as_str(), "flowwatch.alarms.CZ.GSM.input.A");
        seen.push(serde_json::from_slice(&m.payload).unwrap());
    }
    let outage = seen.last().unwrap();
    assert_eq!(outage["system"], "mediation");
    assert_eq!(outage["actual"], 0);
    assert!(outage["expected"].as_f64().unwrap() > 0.0);

    // The alarm may come from the new actor's first evaluation, before it counts as started.
    eventually("the flow's actor counts", async || {
        run.json("/api/v1/status")["components"]["worker"]["flows"] == 1
    })
    .await;
    let status = run.json("/api/v1/status");
    let c = &status["components"];
    assert_eq!(c["ingest"]["records"], taken);
    let newest = T0 + (taken - 1) * 300;
    assert_eq!(c["ingest"]["newestRecord"], utc_string(newest));
    let lag = c["ingest"]["lagSeconds"].as_i64().unwrap();
    assert!((now - newest..now - newest + 60).contains(&lag), "{lag}");
    assert_eq!(c["nats"], "connected");
    // One process: no coordinator, and the flows are evaluated here.
    assert_eq!(
        run.json("/api/v1/cluster"),
        serde_json::json!({"clustered": false, "inProcess": true, "members": []})
    );
    assert_eq!(
        status["time"].as_str().unwrap()[..13],
        utc_string(now)[..13]
    );
    eventually("the outbox drains", async || {
        run.json("/api/v1/status")["components"]["alarms"]["outbox"] == 0
    })
    .await;
    let (code, metrics) = run.request("GET", "/metrics", "text/plain", "");
    assert_eq!(code, 200);
    assert!(metrics.contains(&format!("\nflowwatch_ingest_records_total {taken}\n")));
    assert!(metrics.contains("\nflowwatch_nats_connected 1\n"));
    run.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_ingest_loses_and_doubles_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let flows = 20;
    let batch = |n: i64| {
        csv((0..flows).flat_map(move |f| {
            (0..50).map(move |i| (T0 + n * 3600 + i * 60, format!("F{f}"), (n as u64 + 1) * 10))
        }))
    };
    let mut acked: Vec<i64> = Vec::new();
    let mut next = 0;
    for round in 0..3u64 {
        let run = Run::start(dir.path(), &["--start-time", "2017-03-01T00:00:00Z"]);
        let (addr, key) = (run.addr.clone(), run.key.clone());
        // Ingest in a thread; kill -9 at some moment while it is going.
        let (tx, rx) = std::sync::mpsc::channel();
        let batches: Vec<(i64, String)> = (next..next + 200).map(|n| (n, batch(n))).collect();
        let writer = std::thread::spawn(move || {
            let headers = [("Content-Type", "text/csv"), ("X-API-Key", key.as_str())];
            for (n, body) in batches {
                match common::try_http(&addr, "POST", "/api/v1/ingest", &headers, &body) {
                    Some((200, _)) => {
                        let _ = tx.send(n);
                    }
                    _ => return,
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300 + 250 * round));
        let mut run = run;
        run.child.kill().unwrap(); // SIGKILL
        run.child.wait().unwrap();
        writer.join().unwrap();
        acked.extend(rx.try_iter());
        next += 200;
    }
    assert!(!acked.is_empty(), "some batches were acknowledged");
    let store = EmbeddedStore::open(dir.path()).await.unwrap();
    for f in 0..flows {
        let flow = FlowId::new("CZ", "GSM", FlowKind::Input, &format!("F{f}")).unwrap();
        let mut per_batch: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        for b in store.read_buckets(&flow, i64::MIN, i64::MAX).await.unwrap() {
            let e = per_batch
                .entry((b.second - T0).div_euclid(3600))
                .or_default();
            e.0 += b.bytes;
            e.1 += b.records;
        }
        for n in &acked {
            assert_eq!(
                per_batch.get(n),
                Some(&(50 * (*n as u64 + 1) * 10, 50)),
                "flow F{f}, acknowledged batch {n}: stored exactly once"
            );
        }
        // A batch in flight at the kill is all there or not there at all.
        for (n, (bytes, records)) in &per_batch {
            assert_eq!(
                (*bytes, *records),
                (50 * (*n as u64 + 1) * 10, 50),
                "batch {n}"
            );
        }
    }
}

#[test]
fn a_configuration_saved_over_http_is_in_force_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(dir.path(), &["--start-time", &utc_string(T0 + 3600)]);
    let current = run.json("/api/v1/config");
    assert_eq!(current["version"], 0, "nothing saved yet");
    let r = run.ingest(&csv([(T0, "A".to_owned(), 10), (T0, "B".to_owned(), 10)]));
    assert_eq!(r["accepted"], 2);
    let flows = || run.json("/api/v1/status")["components"]["worker"]["flows"].clone();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while flows() != 2 {
        assert!(std::time::Instant::now() < until, "two flow actors");
        std::thread::sleep(Duration::from_millis(20));
    }
    let put = |body: &str| {
        let (status, body) = run.request("PUT", "/api/v1/config", "application/json", body);
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
    };

    // An invalid document names the field; an unknown member of the request too.
    let (status, e) = put(r#"{"version": 0, "document": {"defaults": {"granularity": "7m"}}}"#);
    assert_eq!(status, 400);
    assert_eq!(e["error"]["code"], "invalid_config");
    assert_eq!(e["error"]["path"], "document.defaults.granularity");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must divide one day"),
        "{e}"
    );
    let (status, e) = put(r#"{"version": 0, "document": {}, "author": "x"}"#);
    assert_eq!(status, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `author`"),
        "{e}"
    );

    // Disabling B: saved as version 1 and its actor stops within a second.
    let disable_b = r#"{"version": 0, "document": {"countries": {"CZ": {"lobs": {"GSM":
        {"inputs": {"B": {"config": {"enabled": false}}}}}}}}}"#;
    let (status, saved) = put(disable_b);
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["version"], 1);
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while flows() != 1 {
        assert!(std::time::Instant::now() < until, "B stopped within 1 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(run.json("/api/v1/config"), saved);

    // A change based on version 0 again: somebody saved in between.
    let (status, e) = put(disable_b);
    assert_eq!(status, 409);
    assert_eq!(e["error"]["code"], "version_conflict");
    assert_eq!(e["error"]["path"], "version");
    assert_eq!(run.json("/api/v1/config")["version"], 1);

    // Ingest parses with the configuration in force: a country added is taken at once.
    let pl = "time,country,lob,kind,flow,bytes\n2017-02-06T00:00:00Z,PL,GSM,input,A,5\n";
    assert_eq!(run.ingest(pl)["refused"], 1);
    let (status, _) =
        put(r#"{"version": 1, "document": {"countries": {"PL": {"timezone": "Europe/Warsaw"}}}}"#);
    assert_eq!(status, 200);
    assert_eq!(run.ingest(pl)["accepted"], 1);

    // One flow's own settings: merged, replaced, removed; each a new version in force.
    let a = "/api/v1/config/flows/CZ/GSM/input/A";
    let edit = |method: &str, body: &str| {
        let (status, body) = run.request(method, a, "application/json", body);
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
    };
    let (status, saved) = edit("PATCH", r#"{"version": 2, "settings": {"medianDays": 3}}"#);
    assert_eq!(
        (status, saved["version"].clone()),
        (200, 3.into()),
        "{saved}"
    );
    let own = run.json("/api/v1/flows/CZ/GSM/input/A/config");
    assert_eq!(
        (
            own["config"]["medianDays"].clone(),
            own["sources"]["medianDays"].clone()
        ),
        (3.into(), "own".into())
    );
    let (status, e) = edit("PATCH", r#"{"version": 2, "settings": {"medianDays": 4}}"#);
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (409, "version_conflict".into())
    );
    let (status, e) = edit("PATCH", r#"{"version": 3, "settings": {"medianDays": 0}}"#);
    assert_eq!(
        (status, e["error"]["path"].clone()),
        (400, "settings.medianDays".into()),
        "{e}"
    );
    let (status, _) = edit("PUT", r#"{"version": 3, "settings": {"enabled": false}}"#);
    assert_eq!(status, 200);
    let own = run.json("/api/v1/flows/CZ/GSM/input/A/config");
    assert_eq!(
        own["sources"]["medianDays"], "builtIn",
        "replaced, not merged"
    );
    // B is enabled again (version 2 replaced the whole document), and PL/A runs: 3 flows.
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while flows() != 2 {
        assert!(std::time::Instant::now() < until, "A stopped within 1 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, saved) = run.request("DELETE", &format!("{a}?version=4"), "text/plain", "");
    assert_eq!(status, 200, "{saved}");
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while flows() != 3 {
        assert!(
            std::time::Instant::now() < until,
            "A enabled again within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, _) = run.request("DELETE", &format!("{a}?version=5"), "text/plain", "");
    assert_eq!(status, 404, "nothing of its own left");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_counts_and_events_pages() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"countries": {"CZ": {"lobs": {"GSM": {"inputs": {"C": {"config": {"enabled": false}},
            "D": {}}}}}, "DE": {}}}"#,
    )
    .unwrap();
    // A has two weeks of history and then 3 silent hours; B one record; C is disabled; D is
    // configured and silent; forwards A:BILL and Z:X (whose input sends nothing) one record.
    let days = 15;
    let now = T0 + days * 86_400 + 3 * 3600;
    let run = Run::start(
        dir.path(),
        &[
            "--start-time",
            &utc_string(now),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let last = T0 + days * 86_400 - 300;
    let mut rows: Vec<_> = (0..days * 24 * 12)
        .map(|i| (T0 + i * 300, "A".to_owned(), 1000))
        .collect();
    rows.extend([(last, "B".to_owned(), 5), (last, "C".to_owned(), 5)]);
    assert_eq!(run.ingest(&csv(rows))["refused"], 0);
    let t = utc_string(last);
    let forwards = format!(
        "time,country,lob,kind,flow,bytes\n{t},CZ,GSM,forward,A:BILL,5\n{t},CZ,GSM,forward,Z:X,5\n"
    );
    assert_eq!(run.ingest(&forwards)["accepted"], 2);

    let counts = |c: &str| run.json("/api/v1/dashboard")["countries"][c].clone();
    eventually("A is down, B unknown, C disabled", async || {
        counts("CZ")
            == serde_json::json!({"OK": 0, "WARNING": 0, "OUTAGE": 1, "N_A": 4, "DISABLED": 1})
    })
    .await;

    // The tree: inputs with their forwards, counts per LoB, statuses when asked.
    let tree = run.json("/api/v1/flows?includeStatus=true");
    let cz = &tree["countries"][0];
    assert_eq!(cz["code"], "CZ");
    assert_eq!(cz["counts"], counts("CZ"));
    let gsm = &cz["lobs"][0];
    assert_eq!(gsm["counts"], counts("CZ"));
    let inputs: Vec<_> = gsm["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let forwards: Vec<_> = i["forwards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    format!(
                        "{}={}",
                        f["name"].as_str().unwrap(),
                        f["status"].as_str().unwrap()
                    )
                })
                .collect();
            format!(
                "{}={} [{}]",
                i["name"].as_str().unwrap(),
                i["status"],
                forwards.join(" ")
            )
        })
        .collect();
    assert_eq!(
        inputs,
        [
            "A=\"OUTAGE\" [A:BILL=N_A]",
            "B=\"N_A\" []",
            "C=\"DISABLED\" []",
            "D=\"N_A\" []",
            "Z=null [Z:X=N_A]"
        ]
    );
    let found = run.json("/api/v1/flows?search=bill");
    let only = &found["countries"][0]["lobs"][0]["inputs"];
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["name"], "A");
    assert_eq!(only[0]["forwards"][0]["name"], "A:BILL");
    assert!(only[0].get("status").is_none(), "statuses only when asked");
    assert_eq!(
        counts("DE"),
        serde_json::json!({"OK": 0, "WARNING": 0, "OUTAGE": 0, "N_A": 0, "DISABLED": 0}),
        "every configured country is listed"
    );

    let events = |q: &str| run.json(&format!("/api/v1/events{q}"));
    let all = events("?country=CZ")["events"].as_array().unwrap().clone();
    assert!(all.len() >= 2, "A went OK and then down: {all:?}");
    let down = &events("?onlyOutages=true")["events"][0];
    assert_eq!(down["flowName"], "A");
    assert_eq!(down["newStatus"], "OUTAGE");
    assert_eq!(down["lobName"], "GSM");
    assert_eq!(down["revision"], false);
    assert_eq!(events("?country=DE")["events"], serde_json::json!([]));
    assert_eq!(events("?from=2099-01-01")["events"], serde_json::json!([]));

    // Paged: one at a time, newest first, every event once.
    let mut paged = Vec::new();
    let mut q = "?country=CZ&limit=1".to_owned();
    loop {
        let page = events(&q);
        paged.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match page["next"].as_str() {
            Some(next) => q = format!("?country=CZ&limit=1&cursor={next}"),
            None => break,
        }
    }
    let ids: Vec<_> = all.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(paged, ids);

    for (q, path) in [
        ("?status=DOWN", "status"),
        ("?limit=0", "limit"),
        ("?from=yesterday", "from"),
    ] {
        let (code, body) = run.request("GET", &format!("/api/v1/events{q}"), "text/plain", "");
        assert_eq!(code, 400, "{q}: {body}");
        let e: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["error"]["code"], "invalid_query");
        assert_eq!(e["error"]["path"], path, "{body}");
    }
    let (code, body) = run.request("GET", "/api/v1/events?colour=red", "text/plain", "");
    assert_eq!(code, 400);
    assert!(body.contains("unknown field `colour`"), "{body}");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_ticks_as_stored_and_at_another_granularity_equal_replay() {
    let dir = tempfile::tempdir().unwrap();
    // Two weeks of 5-minute records whose size follows the hour, and a quiet afternoon.
    let days = 14;
    let rows = common::quiet_afternoon(T0, days);
    let traffic = csv(rows);
    let traffic_file = dir.path().join("traffic.csv");
    std::fs::write(&traffic_file, &traffic).unwrap();
    let now = T0 + days * 86_400 + 3600;
    let data = dir.path().join("data");
    let run = Run::start(&data, &["--start-time", &utc_string(now)]);
    assert_eq!(run.ingest(&traffic)["accepted"], days * 24 * 12);

    let a = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
    let (from, to) = ("2017-02-18", "2017-02-20");
    let path = |q: &str| format!("/api/v1/flows/CZ/GSM/input/A/ticks?from={from}&to={to}{q}");
    let config = |granularity: &str| {
        let file = dir.path().join(format!("config-{granularity}.json"));
        let doc = format!(r#"{{"defaults": {{"granularity": "{granularity}"}}}}"#);
        std::fs::write(&file, doc).unwrap();
        file
    };
    // As stored (the flow's own hour), once the import is evaluated.
    let replayed = replay_rows(&traffic_file, &config("1h"), from, to);
    let stored = || api_rows(&a, &run.json(&path("")));
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while stored() != replayed && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::assert_same_ticks("ticks as stored", &stored(), &replayed);
    assert_eq!(replayed.len(), 48);
    // At 30 minutes, computed from stored traffic: what replay gives at 30 minutes.
    let ours = api_rows(&a, &run.json(&path("&granularity=30m")));
    let replayed = replay_rows(&traffic_file, &config("30m"), from, to);
    assert_eq!(replayed.len(), 96);
    common::assert_same_ticks("ticks at 30m", &ours, &replayed);
    assert!(
        ours.values().any(|r| r.ends_with(",OUTAGE")),
        "the quiet afternoon"
    );

    // A simulation with candidate settings: what replay gives with them; nothing is saved.
    let settings = r#""medianDays": 3, "minHistoryDays": 2, "softAlarmLevel": 0.95"#;
    let body = format!(r#"{{"from": "{from}", "to": "{to}", "settings": {{{settings}}}}}"#);
    let sim = "/api/v1/flows/CZ/GSM/input/A/simulate";
    let (status, answer) = run.request("POST", sim, "application/json", &body);
    assert_eq!(status, 200, "{answer}");
    let ours = api_rows(&a, &serde_json::from_str(&answer).unwrap());
    let file = dir.path().join("config-candidate.json");
    std::fs::write(&file, format!(r#"{{"defaults": {{{settings}}}}}"#)).unwrap();
    let replayed = replay_rows(&traffic_file, &file, from, to);
    common::assert_same_ticks("simulation", &ours, &replayed);
    let flow_config = run.json("/api/v1/flows/CZ/GSM/input/A/config");
    assert_eq!(
        flow_config["config"]["medianDays"], 5,
        "the simulation saved nothing"
    );
    assert_eq!(flow_config["sources"]["medianDays"], "builtIn");
    let bad = format!(r#"{{"from": "{from}", "to": "{to}", "settings": {{"hardAlarmLevel": 2}}}}"#);
    let (status, answer) = run.request("POST", sim, "application/json", &bad);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("levels must satisfy"), "{answer}");
    let bad = format!(r#"{{"from": "{from}", "to": "{to}", "settings": {{"medianDays": 0}}}}"#);
    let (status, answer) = run.request("POST", sim, "application/json", &bad);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains(r#""path":"settings.medianDays""#),
        "{answer}"
    );
    // Saved as the flow's own, the candidate settings are what a merge simulates over; with
    // `replace`, an empty set stands instead of them: the inherited detection again.
    let version = run.json("/api/v1/config")["version"].clone();
    let put = format!(r#"{{"version": {version}, "settings": {{{settings}}}}}"#);
    let own = "/api/v1/config/flows/CZ/GSM/input/A";
    let (status, answer) = run.request("PUT", own, "application/json", &put);
    assert_eq!(status, 200, "{answer}");
    let simulated = |replace: bool| {
        let body = format!(
            r#"{{"from": "{from}", "to": "{to}", "settings": {{}}, "replace": {replace}}}"#
        );
        let (status, answer) = run.request("POST", sim, "application/json", &body);
        assert_eq!(status, 200, "{answer}");
        api_rows(&a, &serde_json::from_str(&answer).unwrap())
    };
    common::assert_same_ticks("merged over own", &simulated(false), &replayed);
    let inherited = replay_rows(&traffic_file, &config("1h"), from, to);
    common::assert_same_ticks("replacing own", &simulated(true), &inherited);
    // Over days reaching past the clock: the ticks live evaluation has decided by now (ended,
    // and 120 s of grace passed: the clock stands at the end of the 00:00 hour), as stored.
    let (status, answer) = run.request(
        "POST",
        sim,
        "application/json",
        &format!(r#"{{"from": "{from}", "to": "2017-02-23", "settings": {{}}}}"#),
    );
    assert_eq!(status, 200, "{answer}");
    for (what, ticks, end) in [
        (
            "stored",
            run.json(&path("").replace(to, "2017-02-23")),
            now - 3600,
        ),
        (
            "computed at 30m",
            run.json(&path("&granularity=30m").replace(to, "2017-02-23")),
            now - 1800,
        ),
        (
            "simulated",
            serde_json::from_str(&answer).unwrap(),
            now - 3600,
        ),
    ] {
        let last = ticks["ticks"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["tickEnd"], utc_string(end), "{what}: {last}");
    }

    // The LoB's flows: effective settings, what the dashboard shows, the latest tick.
    let lob = run.json("/api/v1/flows/CZ/GSM");
    let flows = lob["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "{lob}");
    let f = &flows[0];
    assert_eq!(
        (&f["kind"], &f["name"], &f["input"]),
        (&"input".into(), &"A".into(), &serde_json::Value::Null)
    );
    assert_eq!(
        f["config"]["softAlarmLevel"], 0.95,
        "its own setting is in force"
    );
    assert_eq!(f["config"]["granularity"], "1h");
    let last = run.json(&format!(
        "/api/v1/flows/CZ/GSM/input/A/ticks?from={from}&to=2017-02-22"
    ));
    let last = last["ticks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        f["latest"], last,
        "the latest tick as the ticks route lists it"
    );
    assert_eq!(f["shown"], last["status"]);
    let (status, body) = run.request("GET", "/api/v1/flows/CZ/NOPE", "text/plain", "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no LoB CZ/NOPE"), "{body}");

    // Raw traffic of a local day (CET) in hours: 12 records an hour, every byte counted.
    let day = run.json(&format!(
        "/api/v1/flows/CZ/GSM/input/A/traffic?from={from}&to=2017-02-19&bucket=3600"
    ));
    let hours = day["traffic"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    assert!(hours.iter().all(|h| h["records"] == 12));
    assert_eq!(hours[0]["time"], "2017-02-17T23:00:00Z");
    let want: u64 = (0..24 * 12)
        .map(|i| {
            let t = T0 + 11 * 86_400 + 23 * 3600 + i * 300;
            500 + 40 * (t / 3600 % 24) as u64
        })
        .sum();
    let got: u64 = hours.iter().map(|h| h["bytes"].as_u64().unwrap()).sum();
    assert_eq!(got, want);

    for (p, code, at) in [
        (path("&granularity=7m"), 400, "granularity"),
        (
            "/api/v1/flows/CZ/GSM/input/A/ticks?to=2017-02-20".to_owned(),
            400,
            "from",
        ),
        (path("&granularity=30m").replace("/A/", "/NOPE/"), 404, ""),
        (path("").replace("/input/", "/inputs/"), 404, ""),
    ] {
        let (status, body) = run.request("GET", &p, "text/plain", "");
        assert_eq!(status, code, "{p}: {body}");
        let e: serde_json::Value = serde_json::from_str(&body).unwrap();
        if !at.is_empty() {
            assert_eq!(e["error"]["path"], at, "{body}");
        }
    }
    run.terminate();
}

#[test]
fn every_error_is_json_naming_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let ui = dir.path().join("ui");
    std::fs::create_dir(&ui).unwrap();
    std::fs::write(ui.join("index.html"), "<p>the UI</p>").unwrap();
    let data = dir.path().join("data");
    let ui_dir = ui.to_str().unwrap();
    let run = Run::start(&data, &["--max-body", "1", "--ui-dir", ui_dir]);
    let error = |method: &str, path: &str, content_type: &str, body: &str| {
        let (status, body) = run.request(method, path, content_type, body);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        (
            status,
            v["error"]["code"].clone(),
            v["error"]["message"].clone(),
        )
    };
    let (status, code, message) = error("GET", "/api/v1/nothing", "text/plain", "");
    assert_eq!((status, code.as_str()), (404, Some("not_found")));
    assert_eq!(message, "no route GET /api/v1/nothing");
    let (status, code, _) = error("DELETE", "/api/v1/ingest", "text/plain", "");
    assert_eq!((status, code.as_str()), (405, Some("method_not_allowed")));
    // Any other page read is the web UI's; anything else that is no route is the API's 404.
    for page in [
        "/",
        "/flow/CZ/GSM/input/A%3AB?at=2017-02-18T10:00:00Z",
        "/settings",
    ] {
        assert_eq!(
            run.request("GET", page, "text/plain", ""),
            (200, "<p>the UI</p>".to_owned()),
            "{page}"
        );
    }
    let (status, code, _) = error("POST", "/settings", "text/plain", "");
    assert_eq!((status, code.as_str()), (404, Some("not_found")));
    // A body over --max-body (1 MiB) is refused whole, before anything is stored.
    let big = format!("time,country,lob,kind,flow,bytes\n{}", "x".repeat(1 << 20));
    let (status, code, message) = error("POST", "/api/v1/ingest", "text/csv", &big);
    assert_eq!((status, code.as_str()), (413, Some("invalid_body")));
    assert!(
        message.as_str().unwrap().contains("--max-body"),
        "{message}"
    );
    assert_eq!(
        run.json("/api/v1/status")["components"]["ingest"]["records"],
        0
    );
    run.terminate();
}

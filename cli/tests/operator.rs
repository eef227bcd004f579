//! The operator's actions (SPEC §11) with `flowwatch run` as a process and a real
//! `nats-server`: a silenced flow's outage publishes nothing on `flowwatch.alarms.>` and its
//! end while still failing publishes once; an input stopping with three forwards is four flow
//! alarms and one incident message on `flowwatch.incidents.<country>`; a restart keeps the
//! silences and the acknowledgements, and sends no incident message again.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Run;
use flowwatch_worker::testkit::NatsServer;
use futures_util::StreamExt;
use serde_json::{Value, json};

const JSON: &str = "application/json";

/// Hourly files of 1 000 bytes from 2017-02-01 to 2017-02-08 10:00 UTC of input A with its
/// forwards to X, Y and Z, and of inputs B and C; A (with its forwards) and B carry nothing at
/// 08:00 and 09:00 of the last day.
fn week() -> String {
    let flows = [
        ("input", "A"),
        ("forward", "A:X"),
        ("forward", "A:Y"),
        ("forward", "A:Z"),
        ("input", "B"),
        ("input", "C"),
    ];
    let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
    for day in 1..=8 {
        for hour in 0..24 {
            for (kind, flow) in flows {
                let gone = day == 8 && (hour == 8 || hour == 9) && flow != "C";
                if (day == 8 && hour >= 10) || gone {
                    continue;
                }
                csv.push_str(&format!(
                    "2017-02-{day:02}T{hour:02}:30:00Z,CZ,GSM,{kind},{flow},1000\n"
                ));
            }
        }
    }
    csv
}

/// Messages of `sub` until none comes for `quiet`.
async fn drain(sub: &mut async_nats::Subscriber, quiet: Duration) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(quiet, sub.next()).await {
        out.push((
            m.subject.to_string(),
            serde_json::from_slice(&m.payload).unwrap(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_incidents_and_acknowledgements_on_nats_and_across_a_restart() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let nc = async_nats::connect(nats.url()).await.unwrap();
    let mut alarms = nc.subscribe("flowwatch.alarms.>").await.unwrap();
    let mut incidents = nc.subscribe("flowwatch.incidents.>").await.unwrap();
    nc.flush().await.unwrap();
    let args = [
        "--start-time",
        "2017-02-08T10:05:00Z",
        "--nats-url",
        &nats.url(),
    ];
    let run = Run::start(dir.path(), &args);
    let document = json!({"defaults": {"granularity": "1h",
        "independentDays": [0, 1, 2, 3, 4, 5, 6], "lookbackDays": 7, "medianDays": 1,
        "minHistoryDays": 1},
        "countries": {"CZ": {"timezone": "Europe/Prague", "lobs": {"GSM": {
            "inputs": {"A": {}, "B": {}, "C": {}}}}}}});
    let body = json!({"version": 0, "document": document}).to_string();
    let (status, answer) = run.request("PUT", "/api/v1/config", JSON, &body);
    assert_eq!(status, 200, "{answer}");

    // B's maintenance: 07:00–10:00 UTC, created before its traffic arrives.
    let silence = json!({"scope": {"country": "CZ", "lob": "GSM", "kind": "input", "flow": "B"},
        "from": "2017-02-08T07:00:00Z", "to": "2017-02-08T10:00:00Z", "comment": "MSC upgrade"});
    let (status, answer) = run.request("POST", "/api/v1/silences", JSON, &silence.to_string());
    assert_eq!(status, 201, "{answer}");
    let silence_id = serde_json::from_str::<Value>(&answer).unwrap()["id"].clone();
    // Every worker holds it within 2 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(run.ingest(&week())["refused"], 0);

    // One incident message per cause: A with its three forwards, and B, still down when its
    // maintenance ended (decided once the tick after the first change ended).
    let first = tokio::time::timeout(Duration::from_secs(60), incidents.next())
        .await
        .expect("an incident message")
        .unwrap();
    let mut messages = vec![(
        first.subject.to_string(),
        serde_json::from_slice::<Value>(&first.payload).unwrap(),
    )];
    messages.extend(drain(&mut incidents, Duration::from_secs(5)).await);
    let input = |name: &str| json!({"country": "CZ", "lob": "GSM", "kind": "input", "flow": name});
    let roots: Vec<(&Value, usize)> = (messages.iter())
        .map(|(_, m)| {
            (
                &m["incident"]["root"],
                m["incident"]["flows"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(roots, [(&input("A"), 4), (&input("B"), 1)], "{messages:?}");
    for (subject, m) in &messages {
        assert_eq!(subject, "flowwatch.incidents.CZ");
        assert_eq!(
            (&m["event"], &m["system"]),
            (&json!("opened"), &json!("mediation")),
            "{m}"
        );
        assert_eq!(m["incident"]["worstStatus"], "OUTAGE");
        let id = m["incident"]["id"].as_str().unwrap();
        assert_eq!(m["id"], format!("{id}:opened"));
    }

    // The flow alarms: one per flow of A's family; for B only the end of its silence.
    let mut per_flow: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    // (The warm-up's N_A → OK of the last day are alarms too: not counted here.)
    let alarm = |s: &Value| s == "WARNING" || s == "OUTAGE";
    let published = drain(&mut alarms, Duration::from_secs(3)).await;
    for (subject, m) in published {
        if !alarm(&m["previousStatus"]) && !alarm(&m["newStatus"]) {
            continue;
        }
        let flow = subject.rsplit('.').next().unwrap().to_owned();
        per_flow.entry(flow).or_default().push(m);
    }
    let flows: Vec<&str> = per_flow.keys().map(String::as_str).collect();
    assert_eq!(flows, ["A", "A:X", "A:Y", "A:Z", "B"], "{per_flow:?}");
    for (flow, messages) in &per_flow {
        assert_eq!(messages.len(), 1, "{flow}: {messages:?}");
        assert_eq!(messages[0]["newStatus"], "OUTAGE", "{flow}");
    }
    let b = &per_flow["B"][0];
    assert!(b["id"].as_str().unwrap().ends_with(":silence-ended"), "{b}");
    assert_eq!(
        (&b["previousStatus"], &b["tickTime"]),
        (&json!("OK"), &json!("2017-02-08T09:00:00Z"))
    );
    // B's own changes are stored, marked.
    let events = run.json("/api/v1/events?limit=1000&actionable=true")["events"].clone();
    let silenced: Vec<&Value> = (events.as_array().unwrap().iter())
        .filter(|e| e["silenced"] == true)
        .collect();
    assert!(!silenced.is_empty(), "{events}");
    assert!(
        silenced.iter().all(|e| e["flowName"] == "B"),
        "{silenced:?}"
    );

    // Acknowledge A's outage, then restart.
    let a = (events.as_array().unwrap().iter())
        .find(|e| e["flowName"] == "A" && e["newStatus"] == "OUTAGE")
        .unwrap();
    let id: String = (a["id"].as_str().unwrap().bytes())
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let ack = json!({"comment": "switch replaced"}).to_string();
    let (status, answer) = run.request("POST", &format!("/api/v1/events/{id}/ack"), JSON, &ack);
    assert_eq!(status, 200, "{answer}");
    run.terminate();

    let run = Run::start(dir.path(), &args);
    let silences = run.json("/api/v1/silences")["silences"].clone();
    assert_eq!(silences[0]["id"], silence_id, "{silences}");
    let flows = run.json("/api/v1/flows/CZ/GSM")["flows"].clone();
    let acked = (flows.as_array().unwrap().iter())
        .find(|f| f["name"] == "A")
        .unwrap()["acknowledged"]
        .clone();
    assert_eq!(acked["comment"], "switch replaced", "{flows}");
    assert_eq!(
        run.json("/api/v1/dashboard")["acknowledged"],
        json!({"CZ": 1})
    );
    // The relay starts again from the stored changes: what it sent is not sent again.
    assert!(
        drain(&mut incidents, Duration::from_secs(8))
            .await
            .is_empty()
    );
    assert!(drain(&mut alarms, Duration::from_secs(1)).await.is_empty());
    run.terminate();
}

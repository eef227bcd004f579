//! What operators do about alarms (SPEC §11): silences keep a maintenance quiet (its changes
//! stored and marked, the flow alarmed once if it is still down when the silence ends), and an
//! acknowledgement marks a flow in alarm as being looked after until it is OK again.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, JSON, hourly_week, parse};
use crate::roles::create_user;

fn events(api: &Api, query: &str) -> Vec<Value> {
    api.json(&format!("/api/v1/events?limit=1000{query}"))["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the events of `query` hold one `check` accepts; they all.
fn events_until(api: &Api, query: &str, what: &str, check: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = events(api, query);
        if listed.iter().any(&check) {
            return listed;
        }
        assert!(Instant::now() < deadline, "{what}: {listed:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn post(api: &Api, path: &str, body: &Value) -> (u16, Value) {
    let (status, answer) = api.request("POST", path, JSON, &body.to_string());
    (status, parse(&answer))
}

/// `text` as one path segment (what `encodeURIComponent` makes).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asserts the audit log has an entry of `action` on `target`.
fn audited(api: &Api, action: &str, target: &str) {
    let audit = api.json("/api/v1/audit")["entries"].clone();
    let entries = audit.as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == action && e["target"] == target),
        "{action} {target}: {audit}"
    );
}

fn input(name: &str) -> Value {
    json!({"country": "CZ", "lob": "GSM", "kind": "input", "flow": name})
}

#[test]
fn a_maintenance_is_quiet_and_a_flow_still_down_after_it_is_alarmed_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::before_a_week(dir.path(), json!({}));
    // Input A and its forward stop at 08:00 for two hours; the maintenance covers 08:00–09:00.
    api.ingest("time,country,lob,kind,flow,bytes\n2017-02-01T00:30:00Z,CZ,GSM,input,A,1000\n");
    let (status, created) = post(
        &api,
        "/api/v1/silences",
        &json!({"scope": input("A"), "from": "2017-02-08T08:00:00Z",
                "to": "2017-02-08T09:00:00Z", "comment": "MSC upgrade"}),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["state"], "ended",
        "the clock is at 10:05: {created}"
    );
    assert_eq!(created["createdBy"], "root");
    // Within 2 s every worker holds it.
    std::thread::sleep(Duration::from_millis(2500));
    let csv = hourly_week(
        &[("input", "A"), ("forward", "A:BILL"), ("input", "B")],
        &["A", "A:BILL"],
    );
    assert_eq!(api.ingest(&csv)["refused"], 0);

    let listed = events_until(
        &api,
        "&actionable=true",
        "the end of the silence alarms",
        |e| {
            e["id"]
                .as_str()
                .is_some_and(|i| i.ends_with(":silence-ended"))
        },
    );
    let of = |flow: &str, silenced: bool| -> Vec<(String, String)> {
        listed
            .iter()
            .filter(|e| e["flowName"] == flow && e["silenced"] == silenced)
            .map(|e| {
                (
                    e["tickTime"].as_str().unwrap().to_owned(),
                    e["newStatus"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // The tick of 08:00 is covered for A and its forward: their changes are marked.
    assert!(
        of("A", true)
            .iter()
            .all(|(t, _)| t == "2017-02-08T08:00:00Z"),
        "{listed:?}"
    );
    assert!(
        !of("A", true).is_empty() && !of("A:BILL", true).is_empty(),
        "{listed:?}"
    );
    // Still down when it ends: alarmed once, at the last covered tick, from OK (what was
    // heard before it).
    for flow in ["A", "A:BILL"] {
        let ended: Vec<&Value> = (listed.iter())
            .filter(|e| {
                e["flowName"] == flow && e["id"].as_str().unwrap().ends_with(":silence-ended")
            })
            .collect();
        assert_eq!(ended.len(), 1, "{flow}: {listed:?}");
        assert_eq!(ended[0]["previousStatus"], "OK");
        assert_eq!(ended[0]["tickTime"], "2017-02-08T08:00:00Z");
        assert_eq!(ended[0]["silenced"], false);
    }
    // B was never covered.
    assert!(of("B", true).is_empty(), "{listed:?}");

    // Listed, ended early (already over: answered as it is), and in the audit log.
    let silences = api.json("/api/v1/silences")["silences"].clone();
    assert_eq!(silences[0]["id"], id.as_str());
    assert_eq!(silences[0]["scope"], input("A"));
    let (status, body) = api.request("DELETE", &format!("/api/v1/silences/{id}"), "", "");
    assert_eq!(
        (status, parse(&body)["state"].clone()),
        (200, json!("ended")),
        "{body}"
    );
    audited(&api, "silence.create", &id);
}

#[test]
fn silences_are_listed_by_state_ended_early_and_refused_when_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::before_a_week(dir.path(), json!({}));
    api.ingest("time,country,lob,kind,flow,bytes\n2017-02-08T07:30:00Z,CZ,GSM,input,A,1000\n");
    let create = |scope: Value, from: &str, to: &str, weekly: Option<Value>| {
        let mut body = json!({"scope": scope, "from": from, "to": to, "comment": "planned"});
        if let Some(w) = weekly {
            body["weekly"] = w;
        }
        post(&api, "/api/v1/silences", &body)
    };
    let weekly = json!({"days": [5, 6], "start": "22:00", "end": "02:00"});
    let (s1, active) = create(
        json!({"country": "CZ", "lob": "GSM"}),
        "2017-02-08T10:00:00Z",
        "2017-03-01T00:00:00Z",
        Some(weekly.clone()),
    );
    let (s2, scheduled) = create(
        json!({"country": "CZ"}),
        "2017-02-10T00:00:00Z",
        "2017-02-11T00:00:00Z",
        None,
    );
    assert_eq!((s1, s2), (201, 201), "{active} {scheduled}");
    assert_eq!(active["weekly"], weekly);
    let states: Vec<(Value, Value)> = (api.json("/api/v1/silences")["silences"]
        .as_array()
        .unwrap()
        .iter())
    .map(|s| (s["id"].clone(), s["state"].clone()))
    .collect();
    assert_eq!(
        states,
        [
            (active["id"].clone(), json!("active")),
            (scheduled["id"].clone(), json!("scheduled"))
        ]
    );

    // Ended early: from now on it covers nothing more.
    let (status, body) = api.request(
        "DELETE",
        &format!("/api/v1/silences/{}", active["id"].as_str().unwrap()),
        "",
        "",
    );
    assert_eq!(status, 200, "{body}");
    let ended = parse(&body);
    assert_eq!(
        (ended["state"].clone(), ended["endedAt"].clone()),
        (json!("ended"), json!("2017-02-08T10:05:00Z"))
    );
    let (status, _) = api.request("DELETE", "/api/v1/silences/s-nope", "", "");
    assert_eq!(status, 404);

    // Wrong bodies: 400 naming the field, nothing stored.
    for (body, field) in [
        (
            json!({"scope": {"country": "CZ", "kind": "input"}, "from": "2017-02-08T00:00:00Z", "to": "2017-02-09T00:00:00Z", "comment": "x"}),
            "scope.lob",
        ),
        (
            json!({"scope": {"country": "CZ", "lob": "GSM", "flow": "A"}, "from": "2017-02-08T00:00:00Z", "to": "2017-02-09T00:00:00Z", "comment": "x"}),
            "scope.kind",
        ),
        (
            json!({"scope": {"country": "XX"}, "from": "2017-02-08T00:00:00Z", "to": "2017-02-09T00:00:00Z", "comment": "x"}),
            "scope",
        ),
        (
            json!({"scope": {"country": "CZ"}, "from": "tomorrow", "to": "2017-02-09T00:00:00Z", "comment": "x"}),
            "from",
        ),
        (
            json!({"scope": {"country": "CZ"}, "from": "2017-02-09T00:00:00Z", "to": "2017-02-08T00:00:00Z", "comment": "x"}),
            "to",
        ),
        (
            json!({"scope": {"country": "CZ"}, "from": "2017-02-08T00:00:00Z", "to": "2017-02-09T00:00:00Z", "comment": " "}),
            "comment",
        ),
        (
            json!({"scope": {"country": "CZ"}, "from": "2017-02-08T00:00:00Z", "to": "2017-02-09T00:00:00Z", "comment": "x", "weekly": {"days": [7], "start": "01:00", "end": "02:00"}}),
            "weekly.days",
        ),
        (
            json!({"scope": {"country": "CZ"}, "from": "2017-02-08T00:00:00Z", "to": "2017-02-09T00:00:00Z", "comment": "x", "weekly": {"days": [1], "start": "25:00", "end": "02:00"}}),
            "weekly.start",
        ),
        (
            json!({"scope": {"country": "CZ"}, "from": "2017-02-08T00:00:00Z", "to": "2017-02-09T00:00:00Z", "comment": "x", "until": "later"}),
            "until",
        ),
    ] {
        let (status, answer) = post(&api, "/api/v1/silences", &body);
        assert_eq!(status, 400, "{body}: {answer}");
        let error = &answer["error"];
        assert!(
            error["path"] == field || error["message"].as_str().unwrap().contains(field),
            "{body}: {answer}"
        );
    }
    assert_eq!(
        api.json("/api/v1/silences")["silences"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn an_acknowledged_flow_is_shown_apart_until_it_is_ok_again() {
    let dir = tempfile::tempdir().unwrap();
    let csv = hourly_week(&[("input", "A"), ("input", "B")], &["A"]);
    let api = Api::after_a_week(dir.path(), json!({}), &csv);
    let listed = events_until(&api, "&actionable=true", "A's outage", |e| {
        e["flowName"] == "A" && e["newStatus"] == "OUTAGE"
    });
    let outage = listed
        .iter()
        .find(|e| e["flowName"] == "A" && e["newStatus"] == "OUTAGE")
        .unwrap();
    let id = outage["id"].as_str().unwrap();
    // The id holds '/' and ':': percent-encoded as one path segment.
    let path = format!("/api/v1/events/{}/ack", segment(id));

    let viewer = create_user(&api, "viewer", "readOnly", None);
    let comment = json!({"comment": "the MSC team is on it"}).to_string();
    let (status, answer) = api.request_as(Some(&viewer), "POST", &path, JSON, &comment);
    assert_eq!(status, 403, "{path}: {answer}");
    for (body, want) in [(json!({"comment": ""}), 400), (json!({"note": "x"}), 400)] {
        let (status, answer) = api.request("POST", &path, JSON, &body.to_string());
        assert_eq!(status, want, "{body}: {answer}");
    }
    let (status, _) = api.request("POST", "/api/v1/events/nope/ack", JSON, &comment);
    assert_eq!(status, 404);
    // A change that is not to WARNING or OUTAGE is not acknowledged.
    let all = events(&api, "");
    let calm = all
        .iter()
        .find(|e| e["flowName"] == "B" && e["newStatus"] == "OK")
        .unwrap();
    let calm_path = format!(
        "/api/v1/events/{}/ack",
        segment(calm["id"].as_str().unwrap())
    );
    let (status, answer) = api.request("POST", &calm_path, JSON, &comment);
    assert_eq!(status, 409, "{answer}");

    let (status, answer) = api.request("POST", &path, JSON, &comment);
    assert_eq!(status, 200, "{answer}");
    let acked = parse(&answer);
    assert_eq!(acked["id"], id);
    assert_eq!(acked["acknowledged"]["by"], "root");
    assert_eq!(acked["acknowledged"]["comment"], "the MSC team is on it");
    assert_eq!(acked["acknowledged"]["at"], "2017-02-08T10:05:00Z");
    // The event log, the LoB's flows and the dashboard show it.
    let again = events(&api, "&actionable=true");
    let listed = again.iter().find(|e| e["id"] == id).unwrap();
    assert_eq!(listed["acknowledged"], acked["acknowledged"]);
    let flows = api.json("/api/v1/flows/CZ/GSM")["flows"].clone();
    let ack_of = |name: &str| {
        flows
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["acknowledged"]
            .clone()
    };
    assert_eq!(ack_of("A")["eventId"], id);
    assert_eq!(ack_of("B"), Value::Null);
    assert_eq!(
        api.json("/api/v1/dashboard")["acknowledged"],
        json!({"CZ": 1})
    );
    audited(&api, "event.ack", id);

    // A's files arrive late: it is OK again, and no longer acknowledged.
    api.ingest("time,country,lob,kind,flow,bytes\n2017-02-08T08:30:00Z,CZ,GSM,input,A,1000\n2017-02-08T09:30:00Z,CZ,GSM,input,A,1000\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.json("/api/v1/dashboard")["acknowledged"] != json!({}) {
        assert!(Instant::now() < deadline, "A is still acknowledged");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_flapping_flow_is_listed_with_its_changes_and_its_changes_held() {
    let dir = tempfile::tempdir().unwrap();
    // A misses the files of 01:00, 03:00, 05:00 and 07:00 of the last day: eight changes,
    // after its N_A → OK at the start of the local day (23:00 UTC).
    let csv: String = hourly_week(&[("input", "A"), ("input", "B")], &[])
        .lines()
        .filter(|l| {
            !["01", "03", "05", "07"]
                .iter()
                .any(|h| l.starts_with(&format!("2017-02-08T{h}:")) && l.ends_with(",A,1000"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let api = Api::after_a_week(
        dir.path(),
        json!({"difference": "tick", "flappingChanges": 2}),
        &csv,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let flapping = loop {
        let flows = api.json("/api/v1/flapping")["flows"].clone();
        if flows[0]["changes24h"] == 9 {
            break flows;
        }
        assert!(
            Instant::now() < deadline,
            "A is not listed flapping: {flows}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        flapping,
        json!([{"country": "CZ", "lob": "GSM", "kind": "input", "flow": "A",
                "changes24h": 9, "flappingChanges": 2}])
    );
    let flows = api.json("/api/v1/flows/CZ/GSM")["flows"].clone();
    let of = |name: &str| {
        let f = flows
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap();
        (f["changes24h"].clone(), f["flapping"].clone())
    };
    assert_eq!(of("A"), (json!(9), json!(true)));
    assert_eq!(of("B"), (json!(1), json!(false)));
    // The first three changes were sent (the third, at 02:00, says it flaps); the rest are
    // held.
    let listed = events(&api, "&actionable=true");
    let mut held: Vec<&str> = (listed.iter())
        .filter(|e| e["flapping"] == true)
        .map(|e| e["tickTime"].as_str().unwrap())
        .collect();
    held.sort();
    assert_eq!(
        held,
        [
            "2017-02-08T03:00:00Z",
            "2017-02-08T04:00:00Z",
            "2017-02-08T05:00:00Z",
            "2017-02-08T06:00:00Z",
            "2017-02-08T07:00:00Z",
            "2017-02-08T08:00:00Z"
        ],
        "{listed:?}"
    );
}

//! `GET /api/v1/incidents` (SPEC §11): an input that stops with its forwards is one incident,
//! rooted at the input, from the stored status changes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, hourly_week};

#[test]
fn an_input_stopping_with_its_forwards_is_one_incident() {
    let dir = tempfile::tempdir().unwrap();
    // Input A and its forwards A:BILL and A:FOX stop for two hours; input B carries on.
    let flows = [
        ("input", "A"),
        ("forward", "A:BILL"),
        ("forward", "A:FOX"),
        ("input", "B"),
    ];
    let csv = hourly_week(&flows, &["A", "A:BILL", "A:FOX"]);
    let api = Api::after_a_week(dir.path(), json!({}), &csv);
    let path = "/api/v1/incidents?from=2017-02-08&to=2017-02-09";
    let deadline = Instant::now() + Duration::from_secs(60);
    let incidents = loop {
        let incidents = api.json(path)["incidents"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let flows = |i: &Value| i["flows"].as_array().map_or(0, Vec::len);
        if incidents.iter().any(|i| flows(i) == 3) {
            break incidents;
        }
        assert!(
            Instant::now() < deadline,
            "no incident of three flows: {incidents:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let i = &incidents[0];
    assert_eq!(
        i["root"],
        json!({"country": "CZ", "lob": "GSM", "kind": "input", "flow": "A"})
    );
    assert_eq!(i["start"], "2017-02-08T08:00:00Z");
    assert_eq!(i["worstStatus"], "OUTAGE");
    assert!(i.get("end").is_none(), "still open: {i}");
    assert_eq!(i["id"], "CZ/GSM/input/A@2017-02-08T08:00:00Z");

    // Acknowledged whole: each of its three flows' outage, in one call.
    let path = "/api/v1/incidents/CZ%2FGSM%2Finput%2FA%402017-02-08T08%3A00%3A00Z/ack";
    let (status, body) = api.request("POST", path, "application/json", r#"{"comment": "on it"}"#);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["acknowledged"].as_array().unwrap().len(),
        3,
        "{answer}"
    );
    assert_eq!(
        api.json("/api/v1/dashboard")["acknowledged"],
        json!({"CZ": 3})
    );
    let (status, _) = api.request(
        "POST",
        "/api/v1/incidents/nope/ack",
        "application/json",
        r#"{"comment": "x"}"#,
    );
    assert_eq!(status, 404);
    // Bad windows are refused naming the parameter.
    for (query, name) in [
        ("from=yesterday", "from"),
        ("from=2017-02-09&to=2017-02-08", "to"),
    ] {
        let (status, body) = api.request("GET", &format!("/api/v1/incidents?{query}"), "", "");
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(name), "{body}");
    }
}

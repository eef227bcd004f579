//! The event log's listing: `GET /api/v1/events?actionable=true` keeps the changes a person
//! acts on (to or from WARNING/OUTAGE, as they happened) and leaves the rest one query away.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, Options};

/// An hourly file of 1 000 bytes for CZ/GSM/input/A from 2017-02-01 to 2017-02-08 10:00 UTC,
/// none at 08:00 and 09:00 UTC of the last day.
fn traffic() -> String {
    let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
    for day in 1..=8 {
        for hour in 0..24 {
            if day == 8 && (hour >= 10 || hour == 8 || hour == 9) {
                continue;
            }
            csv.push_str(&format!(
                "2017-02-{day:02}T{hour:02}:30:00Z,CZ,GSM,input,A,1000\n"
            ));
        }
    }
    csv
}

fn events(api: &Api, query: &str) -> Vec<Value> {
    api.json(&format!("/api/v1/events?limit=1000{query}"))["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_changes_a_person_acts_on_are_listed_apart() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        Options {
            start_time: Some("2017-02-08T10:05:00Z"),
            ..Options::default()
        },
    );
    api.configure(&json!({"defaults": {"granularity": "1h",
        "independentDays": [0, 1, 2, 3, 4, 5, 6], "lookbackDays": 7, "medianDays": 1,
        "minHistoryDays": 1}}));
    assert_eq!(api.ingest(&traffic())["refused"], 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let acted = loop {
        let acted = events(&api, "&actionable=true");
        if acted.iter().any(|e| e["newStatus"] == "OUTAGE") {
            break acted;
        }
        assert!(Instant::now() < deadline, "no outage listed: {acted:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let alarm = |s: &Value| s == "WARNING" || s == "OUTAGE";
    for e in &acted {
        assert!(alarm(&e["previousStatus"]) || alarm(&e["newStatus"]), "{e}");
        assert_eq!(e["revision"], false, "{e}");
    }
    // Everything else (the flow's first N_A → OK, the warm-up's revisions) is still listed
    // without the filter.
    let all = events(&api, "");
    assert!(all.len() > acted.len(), "{all:?}");
    assert!(
        all.iter()
            .any(|e| !(alarm(&e["previousStatus"]) || alarm(&e["newStatus"]))
                || e["revision"] == true),
        "{all:?}"
    );
    // A bad value names the parameter.
    let (status, body) = api.request("GET", "/api/v1/events?actionable=maybe", "", "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("actionable"), "{body}");
}

//! The event log's listing: `GET /api/v1/events?actionable=true` keeps the changes a person
//! acts on (to or from WARNING/OUTAGE, as they happened) and leaves the rest one query away.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, hourly_week};

fn events(api: &Api, query: &str) -> Vec<Value> {
    api.json(&format!("/api/v1/events?limit=1000{query}"))["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_changes_a_person_acts_on_are_listed_apart() {
    let dir = tempfile::tempdir().unwrap();
    let csv = hourly_week(&[("input", "A")], &["A"]);
    let api = Api::after_a_week(dir.path(), json!({}), &csv);
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

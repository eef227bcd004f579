//! A flow under the adaptive detector (SPEC §10), from ingest to the ticks API: every tick
//! carries the band it was decided on, stored and simulated alike.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, hourly_week};

#[test]
fn an_adaptive_flows_ticks_carry_their_band() {
    let dir = tempfile::tempdir().unwrap();
    let csv = hourly_week(&[("input", "A")], &["A"]);
    let api = Api::after_a_week(dir.path(), json!({"detector": "adaptive"}), &csv);
    let path = "/api/v1/flows/CZ/GSM/input/A/ticks?from=2017-02-08&to=2017-02-09";
    // The ticks of the last day up to 09:00 UTC (10:00 local) are evaluated within the grace.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ticks = loop {
        let ticks = api.json(path)["ticks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let at = |start: &str| ticks.iter().find(|t| t["tickStart"] == start).cloned();
        if let Some(gone) = at("2017-02-08T09:00:00Z") {
            break (ticks.clone(), gone);
        }
        assert!(Instant::now() < deadline, "no tick of 09:00 UTC: {ticks:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (all, gone) = ticks;
    // Hours gone on a steady flow: an outage, and the band says why.
    assert_eq!(gone["status"], "OUTAGE", "{gone}");
    for field in ["lower", "outageBelow", "evidence", "spread"] {
        assert!(gone[field].is_number(), "{field} in {gone}");
    }
    assert!(gone["actual"].as_f64().unwrap() < gone["outageBelow"].as_f64().unwrap());
    let normal: Vec<&Value> = all.iter().filter(|t| t["status"] == "OK").collect();
    assert!(!normal.is_empty());
    for t in normal {
        assert!(
            t["actual"].as_f64().unwrap() >= t["lower"].as_f64().unwrap(),
            "{t}"
        );
    }
    // The same flow simulated at another granularity carries its band too.
    let simulated = api.json(&format!("{path}&granularity=2h"));
    let first = &simulated["ticks"][0];
    assert!(first["spread"].is_number(), "{simulated}");
}

//! A flow under the adaptive detector (SPEC §10), from ingest to the ticks API: every tick
//! carries the band it was decided on, stored and simulated alike.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, Options};

/// An hourly file of 1 000 bytes for CZ/GSM/input/A from 2017-02-01 to 2017-02-08 10:00 UTC,
/// but none at 08:00 and 09:00 UTC of the last day.
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

#[test]
fn an_adaptive_flows_ticks_carry_their_band() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        Options {
            start_time: Some("2017-02-08T10:05:00Z"),
            ..Options::default()
        },
    );
    let document = json!({"defaults": {"granularity": "1h", "detector": "adaptive",
        "independentDays": [0, 1, 2, 3, 4, 5, 6], "lookbackDays": 7, "medianDays": 1,
        "minHistoryDays": 1}});
    api.configure(&document);
    assert_eq!(api.ingest(&traffic())["refused"], 0);
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

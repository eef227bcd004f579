//! `flowwatch run --demo`: a fresh store fills with the generator's flows and history, and the
//! dashboard shows them evaluated (mostly OK) without anything else to do.

mod common;

use std::time::{Duration, Instant};

use common::Run;
use flowwatch_core::time::utc_string;

#[test]
fn the_demo_fills_the_dashboard_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = Run::start(dir.path(), &["--demo", "--demo-flows", "120"]);
    let config = run.json("/api/v1/config");
    assert_eq!(config["version"], 1, "the demo's configuration is saved");
    let countries = config["document"]["countries"].as_object().unwrap();
    assert_eq!(
        countries.keys().collect::<Vec<_>>(),
        ["AT", "CZ", "DE", "NL"]
    );
    // Within 30 s of the process start (debug build; `docs/benchmarks.md` has the release
    // figure for the default 4 500 flows).
    let deadline = started + Duration::from_secs(30);
    loop {
        let dashboard = run.json("/api/v1/dashboard");
        let count = |status: &str| -> u64 {
            dashboard["countries"]
                .as_object()
                .unwrap()
                .values()
                .map(|c| c[status].as_u64().unwrap())
                .sum()
        };
        let all: u64 = ["OK", "WARNING", "OUTAGE", "N_A", "DISABLED"]
            .iter()
            .map(|s| count(s))
            .sum();
        assert_eq!(all, 120, "every flow is counted once: {dashboard}");
        if count("N_A") == 0 && count("OK") * 2 > all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "evaluated, mostly OK, within 30 s: {dashboard}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A restart on the same store keeps its history and writes it no second time.
    let cz = &countries["CZ"]["lobs"];
    let (lob, entry) = cz.as_object().unwrap().iter().next().unwrap();
    let input = entry["inputs"].as_object().unwrap().keys().next().unwrap();
    let week = format!(
        "/api/v1/flows/CZ/{lob}/input/{input}/traffic?from={}&to={}&bucket=86400",
        utc_string(now() - 8 * 86_400).split('T').next().unwrap(),
        utc_string(now() - 86_400).split('T').next().unwrap()
    );
    let before = run.json(&week);
    assert!(
        before["traffic"].as_array().unwrap().len() >= 6,
        "a week of history: {before}"
    );
    let data = dir.path().to_owned();
    run.terminate();
    let run = Run::start(&data, &["--demo", "--demo-flows", "120"]);
    assert_eq!(run.json("/api/v1/config")["version"], 1);
    assert_eq!(run.json(&week), before);
    run.terminate();
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

//! The `flowwatch-loadtest` binary as a user runs it: `generate --realistic`, `quality` and
//! `incidents`.

use std::process::Command;

fn loadtest(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flowwatch-loadtest"))
        .args(args)
        .output()
        .expect("flowwatch-loadtest runs")
}

/// Runs a scenario of one small data set from 2016-11-01 (21 days of history) writing its
/// result to `json`; the JSON it prints.
fn scenario(args: &[&str], json: &std::path::Path) -> serde_json::Value {
    let more = ["--start", "2016-11-01", "--warm-up-days", "21", "--out"];
    let run = loadtest(&[args, &more[..], &[json.to_str().unwrap()]].concat());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).unwrap()
}

#[test]
fn generate_realistic_writes_the_unlisted_days_beside_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "generate",
        "--seed",
        "5",
        "--start",
        "2016-12-20",
        "--days",
        "10",
    ];
    let run = loadtest(&[&args[..], &["--flows", "12", "--realistic", "--out", out]].concat());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let days: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("unlisted-days.json")).unwrap())
            .unwrap();
    // Christmas is listed nowhere and low everywhere: each country has its three days.
    let dates: Vec<&str> = (days.as_array().unwrap().iter())
        .filter(|d| d["country"] == "CZ")
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    for date in ["2016-12-24", "2016-12-25", "2016-12-26"] {
        assert!(dates.contains(&date), "{date} in {days}");
    }
    for file in ["traffic.csv", "config.json", "outages.json"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
}

#[test]
fn quality_compares_both_detectors_and_refuses_a_warm_up_without_days_to_score() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("q.json");
    let args = ["quality", "--seeds", "3", "--flows", "16", "--days", "35"];
    let result = scenario(&args, &json);
    assert_eq!(result["seeds"][0]["seed"], 3);
    assert!(
        result["verdicts"]["recallWithinOnePoint"].is_boolean(),
        "{result}"
    );
    let markdown = std::fs::read_to_string(json.with_extension("md")).unwrap();
    assert!(markdown.contains("| seed 3 | adaptive |"), "{markdown}");
    let run = loadtest(&["quality", "--days", "30", "--warm-up-days", "30"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--warm-up-days 30"), "{stderr}");
}

#[test]
fn incidents_count_flow_alarms_and_incidents_per_kind_under_both_detectors() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("i.json");
    let args = ["incidents", "--seeds", "3", "--flows", "24", "--days", "40"];
    let result = scenario(&args, &json);
    for detector in ["seed", "adaptive"] {
        let d = &result["detectors"][detector];
        assert!(d["statusChanges"].as_u64().unwrap() > 0, "{result}");
        assert!(d["byKind"]["unlistedDay"]["events"].is_u64(), "{result}");
    }
    let markdown = std::fs::read_to_string(json.with_extension("md")).unwrap();
    assert!(markdown.contains("### adaptive"), "{markdown}");
    let run = loadtest(&["incidents", "--days", "30", "--warm-up-days", "30"]);
    assert!(!run.status.success());
}

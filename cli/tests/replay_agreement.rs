//! `flowwatch replay` against an independent implementation of SPEC §2–6
//! (`reference/spec_reference.py`, written from the SPEC alone) on a realistic generated data
//! set: seven months, dozens of flows in six zones (São Paulo's midnight DST and Lord Howe's
//! 30-minute DST included), holidays, lazy days, batchy and late arrivals, injected outages,
//! every granularity and setting the generator's document uses.
//!
//! Ticks must agree on ≥ 99.99 % (status, bounds and actual exactly; the numbers within 1e-6
//! relative). Needs `python3` (3.9+, standard library only).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use chrono::NaiveDate;
use flowwatch_generator::{Dataset, Realism, Spec};

type Row = Vec<String>;

fn read_ticks(path: &Path) -> (Row, HashMap<Row, Row>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Row = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut rows = HashMap::new();
    for line in lines {
        let row: Row = line.split(',').map(str::to_owned).collect();
        assert_eq!(row.len(), 13, "{line}");
        let key = row[..5].to_vec();
        assert!(rows.insert(key, row).is_none(), "duplicate tick {line}");
    }
    (header, rows)
}

fn agrees(ours: &Row, theirs: &Row) -> Result<(), String> {
    for i in [5, 6, 12] {
        if ours[i] != theirs[i] {
            return Err(format!("column {i}: {} vs {}", ours[i], theirs[i]));
        }
    }
    for i in 7..12 {
        match (ours[i].as_str(), theirs[i].as_str()) {
            ("", "") => {}
            (a, b) => {
                let (a, b): (f64, f64) = (
                    a.parse().map_err(|_| format!("column {i}: {a:?}"))?,
                    b.parse().map_err(|_| format!("column {i}: {b:?}"))?,
                );
                if (a - b).abs() > 1e-6 * b.abs().max(f64::MIN_POSITIVE) {
                    return Err(format!("column {i}: {a} vs {b}"));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn replay_agrees_with_the_independent_reference() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        seed: 2017,
        start: NaiveDate::from_ymd_opt(2016, 9, 1).unwrap(),
        days: 222,
        flows: 44,
        batch_minutes: None,
        min_batch_minutes: 0,
        unusual_zones: true,
        outages_per_flow_month: 0.7,
        realism: Realism::realistic(),
    };
    let data = Dataset::generate(&spec);
    let traffic = dir.path().join("traffic.csv");
    let config = dir.path().join("config.json");
    let records = data
        .write_csv(std::fs::File::create(&traffic).unwrap())
        .unwrap();
    std::fs::write(&config, data.config().to_string()).unwrap();
    assert!(records > 500_000, "a realistic volume: {records}");

    let args = |out: &Path| {
        [
            "--data".as_ref(),
            traffic.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--from".as_ref(),
            "2016-09-02".as_ref(),
            "--to".as_ref(),
            "2017-04-10".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ]
        .map(ToOwned::to_owned)
    };
    let ours_path = dir.path().join("ours.csv");
    let status = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .arg("replay")
        .args(args(&ours_path))
        .status()
        .unwrap();
    assert!(status.success());
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/spec_reference.py");
    let theirs_path = dir.path().join("theirs.csv");
    let out = Command::new("python3")
        .arg(&reference)
        .args(args(&theirs_path))
        .output()
        .expect("python3 runs the reference implementation");
    assert!(
        out.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (our_header, ours) = read_ticks(&ours_path);
    let (their_header, theirs) = read_ticks(&theirs_path);
    assert_eq!(our_header, their_header);
    let mut missing: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    missing.sort();
    let mut disagreements = Vec::new();
    for (key, theirs_row) in &theirs {
        if let Some(our_row) = ours.get(key)
            && let Err(why) = agrees(our_row, theirs_row)
        {
            disagreements.push(format!("{}: {why}", key.join(",")));
        }
    }
    disagreements.sort();
    let total = theirs.len();
    let bad = missing.len() + extra.len() + disagreements.len();
    let share = 1.0 - bad as f64 / total as f64;
    eprintln!(
        "{records} records, {} flows: {total} ticks, {} missing, {} extra, {} disagreeing: {:.5} % agree",
        data.flow_count(),
        missing.len(),
        extra.len(),
        disagreements.len(),
        share * 100.0
    );
    for d in disagreements.iter().take(20) {
        eprintln!("  {d}");
    }
    for m in missing.iter().take(5) {
        eprintln!("  missing {}", m.join(","));
    }
    assert!(total > 200_000, "a realistic tick count: {total}");
    // Every status occurs, so the comparison covers every branch of the rules.
    for status in ["OK", "WARNING", "OUTAGE", "N_A"] {
        assert!(
            theirs.values().any(|r| r[12] == status),
            "no {status} tick in the data set"
        );
    }
    assert!(
        share >= 0.9999,
        "agreement {:.5} % < 99.99 %",
        share * 100.0
    );
}

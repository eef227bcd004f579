//! `GET /api/v1/suggestions` (issue 21): from stored ticks, the day a country's calendar
//! misses and the weekday a LoB should compare only with itself, each applied with one call
//! through the configuration's compare-and-set.

use serde_json::{Value, json};

use crate::harness::{Api, JSON, Options, parse};

/// Six weeks from Monday 2017-01-02 of four GSM inputs, hourly: work days 1 000 bytes an
/// hour, Fridays 1 400, weekends 500; Wednesday 2017-01-25 at 450 (no calendar lists it).
fn six_weeks() -> String {
    let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
    for day in 0..42 {
        let date = chrono::NaiveDate::from_ymd_opt(2017, 1, 2).unwrap() + chrono::Days::new(day);
        let bytes = match (date.to_string().as_str(), day % 7) {
            ("2017-01-25", _) => 450,
            (_, 4) => 1400,
            (_, 5 | 6) => 500,
            _ => 1000,
        };
        for hour in 0..24 {
            for flow in ["A", "B", "C", "D"] {
                csv.push_str(&format!(
                    "{date}T{hour:02}:30:00Z,CZ,GSM,input,{flow},{bytes}\n"
                ));
            }
        }
    }
    csv
}

fn apply(api: &Api, apply: &Value) -> (u16, String) {
    api.request(
        apply["method"].as_str().unwrap(),
        apply["path"].as_str().unwrap(),
        JSON,
        &apply["body"].to_string(),
    )
}

#[test]
fn a_missing_holiday_and_an_independent_friday_are_suggested_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        Options {
            start_time: Some("2017-02-13T10:05:00Z"),
            ..Options::default()
        },
    );
    api.configure(&json!({"countries": {"CZ": {"lobs": {"GSM": {}}}}}));
    assert_eq!(api.ingest(&six_weeks())["refused"], 0);
    let path = "/api/v1/suggestions?country=CZ&from=2017-01-02&to=2017-02-13";
    // The flows evaluate their ticks once their traffic is stored.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let s = loop {
        let s = api.json(path);
        if !s["days"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let days = s["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{s}");
    let day = &days[0];
    assert_eq!(
        (&day["date"], &day["kind"]),
        (&json!("2017-01-25"), &json!("holiday"))
    );
    let evidence = &day["evidence"];
    assert_eq!(
        (&evidence["flows"], &evidence["low"]),
        (&json!(4), &json!(4))
    );
    assert!(evidence["ratio"].as_f64().unwrap() < 0.5, "{evidence}");
    assert!(
        evidence["compared"]
            .as_array()
            .unwrap()
            .contains(&json!("2017-01-26"))
    );
    let weekdays = s["weekdays"].as_array().unwrap();
    assert_eq!(weekdays.len(), 1, "{s}");
    let friday = &weekdays[0];
    assert_eq!(
        (&friday["lob"], &friday["weekday"]),
        (&json!("GSM"), &json!(4))
    );
    assert!(friday.get("flow").is_none(), "the whole LoB: {friday}");
    assert_eq!(friday["evidence"]["peers"], json!([0, 1, 2, 3]));
    assert_eq!(
        (&friday["evidence"]["flows"], &friday["evidence"]["of"]),
        (&json!(4), &json!(4))
    );

    // One call each; the second is based on a stale version and refused whole.
    let (status, answer) = apply(&api, &day["apply"]);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = apply(&api, &friday["apply"]);
    assert_eq!(status, 409, "{answer}");
    let s = api.json(path);
    assert_eq!(s["days"], json!([]), "listed now: {s}");
    let (status, answer) = apply(&api, &s["weekdays"][0]["apply"]);
    assert_eq!(status, 200, "{answer}");
    let config = api.json("/api/v1/config")["document"].clone();
    assert_eq!(config["countries"]["CZ"]["holidays"], json!(["2017-01-25"]));
    assert_eq!(
        config["countries"]["CZ"]["lobs"]["GSM"]["config"]["independentDays"],
        json!([4])
    );
    assert_eq!(api.json(path)["weekdays"], json!([]));

    // A bad query names the parameter.
    for (query, name) in [
        ("", "country"),
        ("country=CZ&from=2017-13-01", "from"),
        ("country=XX", "country"),
    ] {
        let (status, body) = api.request("GET", &format!("/api/v1/suggestions?{query}"), "", "");
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            parse(&body)["error"]["message"]
                .as_str()
                .unwrap()
                .contains(name)
                || body.contains(name),
            "{body}"
        );
    }
}

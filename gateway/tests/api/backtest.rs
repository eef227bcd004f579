//! `POST /api/v1/backtest`: candidate settings at a country, a LoB or one flow against the
//! configuration in force, over the stored traffic of the scope's flows.

use serde_json::{Value, json};

use crate::harness::{Api, JSON, Options, parse};

/// Hourly traffic of 1 000 bytes from 2017-02-01 to 2017-02-08 10:00 UTC for CZ/GSM/input/A,
/// CZ/GSM/input/B and CZ/SMS/input/C, except on the last day from 04:00 UTC: A 600 bytes
/// (60 %), C 750 (75 %: a shallow drop, between the levels).
fn traffic() -> String {
    let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
    for day in 1..=8 {
        for hour in 0..24 {
            if day == 8 && hour >= 10 {
                continue;
            }
            for (lob, flow) in [("GSM", "A"), ("GSM", "B"), ("SMS", "C")] {
                let bytes = match flow {
                    "A" if day == 8 && hour >= 4 => 600,
                    "C" if day == 8 && hour >= 4 => 750,
                    _ => 1000,
                };
                csv.push_str(&format!(
                    "2017-02-{day:02}T{hour:02}:30:00Z,CZ,{lob},input,{flow},{bytes}\n"
                ));
            }
        }
    }
    csv
}

/// An API with that traffic and a configuration comparing each hour with the day before.
fn api(dir: &std::path::Path) -> Api {
    let api = Api::start(
        dir,
        Options {
            start_time: Some("2017-02-08T10:05:00Z"),
            ..Options::default()
        },
    );
    let document = json!({
        "defaults": {"granularity": "1h", "difference": "tick",
            "independentDays": [0, 1, 2, 3, 4, 5, 6], "lookbackDays": 7, "medianDays": 1,
            "minHistoryDays": 1},
        "countries": {"CZ": {"lobs": {"GSM": {}, "SMS": {}}}}});
    api.configure(&document);
    assert_eq!(api.ingest(&traffic())["refused"], 0);
    api
}

fn body(scope: Value, candidate: Value) -> String {
    json!({"from": "2017-02-02", "to": "2017-02-09", "scope": scope, "candidate": candidate})
        .to_string()
}

/// A backtest answered 200.
fn backtest(api: &Api, key: Option<&str>, body: &str) -> Value {
    let key = key.unwrap_or(&api.key);
    let (status, answer) = api.request_as(Some(key), "POST", "/api/v1/backtest", JSON, body);
    assert_eq!(status, 200, "{body}: {answer}");
    parse(&answer)
}

fn gsm() -> Value {
    json!({"country": "CZ", "lob": "GSM"})
}

#[test]
fn a_candidate_that_changes_outcomes_counts_differently_and_lists_the_flows_that_differ() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path());
    // At 60 %, A's last hours are suspicious under the levels in force (0.8, 0.5): a WARNING
    // before the OUTAGE. With a hard level of 0.7 they are an OUTAGE at once: no warning, one
    // change fewer.
    let r = backtest(&api, None, &body(gsm(), json!({"hardAlarmLevel": 0.7})));
    assert_eq!(r["flowCount"], 2, "A and B, not SMS's C: {r}");
    assert_eq!(
        (&r["currentFlows"], &r["candidateFlows"]),
        (&json!(2), &json!(2))
    );
    let count = |side: &str, what: &str| r[side][what].as_u64().unwrap();
    assert!(count("current", "warning") >= 1, "{r}");
    assert_eq!(count("candidate", "warning"), 0, "{r}");
    assert!(count("candidate", "outage") >= 1, "{r}");
    assert!(
        count("candidate", "changes") < count("current", "changes"),
        "{r}"
    );
    let flows = r["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "only A differs: {r}");
    assert_eq!(
        (
            &flows[0]["country"],
            &flows[0]["lob"],
            &flows[0]["kind"],
            &flows[0]["flow"]
        ),
        (&json!("CZ"), &json!("GSM"), &json!("input"), &json!("A"))
    );
    // B's one change is its first evaluation, under both.
    for side in ["current", "candidate"] {
        let (a, all) = (&flows[0][side], &r[side]);
        assert_eq!(
            (&a["outage"], &a["warning"]),
            (&all["outage"], &all["warning"])
        );
        assert_eq!(
            a["changes"].as_u64().unwrap() + 1,
            all["changes"].as_u64().unwrap()
        );
    }

    // The same candidate at the whole country, and at A alone.
    let country = backtest(
        &api,
        None,
        &body(json!({"country": "CZ"}), json!({"hardAlarmLevel": 0.7})),
    );
    assert_eq!(country["flowCount"], 3);
    assert_eq!(country["flows"], r["flows"], "A alone differs: {country}");
    let a = json!({"country": "CZ", "lob": "GSM", "kind": "input", "flow": "A"});
    let one = backtest(&api, None, &body(a, json!({"hardAlarmLevel": 0.7})));
    assert_eq!(one["flowCount"], 1);
    assert_eq!(one["flows"], r["flows"]);
    assert_eq!(one["candidate"], flows[0]["candidate"]);

    // A lower soft level hides the warnings.
    let soft = backtest(&api, None, &body(gsm(), json!({"softAlarmLevel": 0.55})));
    assert_eq!(soft["candidate"]["warning"], 0, "{soft}");
    // The adaptive detector waits for a shallow drop to persist: C's six hours at 75 % raise
    // nothing, where the seed mode warns.
    let sms = json!({"country": "CZ", "lob": "SMS"});
    let adaptive = backtest(&api, None, &body(sms, json!({"detector": "adaptive"})));
    assert!(
        adaptive["current"]["warning"].as_u64().unwrap() >= 1,
        "{adaptive}"
    );
    assert_eq!(adaptive["candidate"]["warning"], 0, "{adaptive}");
    assert_eq!(adaptive["flows"][0]["flow"], "C", "{adaptive}");

    // A disabled candidate evaluates nothing; `limit` cuts the list; nothing was saved.
    let off = backtest(&api, None, &body(gsm(), json!({"enabled": false})));
    assert_eq!(
        (&off["currentFlows"], &off["candidateFlows"]),
        (&json!(2), &json!(0))
    );
    let mut limited: Value = serde_json::from_str(&body(gsm(), json!({"enabled": false}))).unwrap();
    limited["limit"] = 1.into();
    let limited = backtest(&api, None, &limited.to_string());
    assert_eq!(limited["flows"].as_array().unwrap().len(), 1, "{limited}");
    assert_eq!(off["flows"].as_array().unwrap().len(), 2, "{off}");
    let saved = api.json("/api/v1/config");
    assert_eq!(saved["version"], 1, "{saved}");
    api.stop();
}

#[test]
fn a_candidate_like_the_configuration_in_force_counts_the_same_for_a_read_only_key() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path());
    let (status, visitor) = api.request_as(None, "POST", "/api/v1/visitor-login", JSON, "");
    assert_eq!(status, 200, "{visitor}");
    let read_only = parse(&visitor)["apiKey"].as_str().unwrap().to_owned();
    for candidate in [
        json!({}),
        json!({"softAlarmLevel": 0.8, "detector": "seed"}),
    ] {
        let r = backtest(&api, Some(&read_only), &body(gsm(), candidate.clone()));
        assert_eq!(r["current"], r["candidate"], "{candidate}: {r}");
        assert!(r["current"]["changes"].as_u64().unwrap() >= 2, "{r}");
        assert_eq!(r["flows"], json!([]), "{r}");
    }
    // Replacing the LoB's settings (none) with nothing changes nothing either.
    let mut replace: Value = serde_json::from_str(&body(gsm(), json!({}))).unwrap();
    replace["replace"] = true.into();
    let r = backtest(&api, Some(&read_only), &replace.to_string());
    assert_eq!(r["current"], r["candidate"], "{r}");
    api.stop();
}

#[test]
fn bad_input_is_a_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path());
    let ok: Value = serde_json::from_str(&body(gsm(), json!({}))).unwrap();
    let with = |field: &str, value: Value| {
        let mut b = ok.clone();
        let (head, tail) = field.split_once('.').unwrap_or((field, ""));
        if tail.is_empty() {
            b[head] = value;
        } else {
            b[head][tail] = value;
        }
        b.to_string()
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (with("extra", json!(1)), "", "unknown field `extra`"),
        (
            with("candidate.nope", json!(1)),
            "candidate",
            "unknown field `nope`",
        ),
        (
            with("candidate.softAlarmLevel", json!("high")),
            "candidate.softAlarmLevel",
            "invalid type",
        ),
        (
            with("candidate.hardAlarmLevel", json!(0.95)),
            "candidate",
            "levels must satisfy",
        ),
        (
            with("scope.region", json!("EU")),
            "scope",
            "unknown field `region`",
        ),
        (with("from", json!("2017-13-01")), "from", "invalid date"),
        (with("to", json!("2017-02-01")), "to", "must be after from"),
        (
            with("to", json!("2017-05-06")),
            "to",
            "93 days from 2017-02-02, at most 92",
        ),
        (with("limit", json!(0)), "limit", "not within 1–1000"),
        (with("scope.country", json!("XX")), "scope.country", "XX"),
        (
            with("scope.lob", json!("NOPE")),
            "scope.lob",
            "neither configured nor seen",
        ),
        (
            with("scope.flow", json!("A")),
            "scope.kind",
            "required with scope.flow",
        ),
        (
            with("scope.kind", json!("input")),
            "scope.flow",
            "required with scope.kind",
        ),
        (
            with(
                "scope",
                json!({"country": "CZ", "lob": "GSM", "kind": "input", "flow": "Z"}),
            ),
            "scope.flow",
            "no traffic of flow",
        ),
        ("{".to_owned(), "", "invalid backtest"),
    ];
    for (body, path, says) in cases {
        let (status, answer) = api.request("POST", "/api/v1/backtest", JSON, &body);
        assert_eq!(status, 400, "{body}: {answer}");
        let error = &parse(&answer)["error"];
        let at = error["path"].as_str().unwrap_or("");
        assert!(
            at.starts_with(path),
            "{body}: at {at:?}, not {path:?}: {answer}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    // 92 days are taken.
    let (status, answer) = api.request(
        "POST",
        "/api/v1/backtest",
        JSON,
        &with("to", json!("2017-05-05")),
    );
    assert_eq!(status, 200, "{answer}");
    api.stop();
}

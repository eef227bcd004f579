//! The configuration's parts over HTTP: a country's calendar (and the built-in holidays), a
//! LoB's settings; each save compare-and-set, validated with the request's field named, in
//! force at once and audited.

use serde_json::Value;

use crate::harness::{Api, JSON, Options};

fn call(api: &Api, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, body) = api.request(method, path, JSON, body);
    let v = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    (status, v)
}

#[test]
fn countries_and_lobs_are_edited_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), Options::default());
    let pl = "/api/v1/config/countries/PL";
    let (status, e) = call(&api, "GET", pl, "");
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // A country without a built-in zone needs one; a bad zone and a bad date are named.
    let (status, e) = call(&api, "PUT", pl, r#"{"version": 0}"#);
    assert_eq!(
        (status, e["error"]["path"].as_str()),
        (400, Some("timezone")),
        "{e}"
    );
    let bad = r#"{"version": 0, "timezone": "Mars/Base", "holidays": ["2017-02-30"]}"#;
    let (status, e) = call(&api, "PUT", pl, bad);
    assert_eq!(status, 400);
    assert_eq!(e["error"]["path"], "timezone");
    assert_eq!(e["error"]["fields"][1]["path"], "holidays[0]", "{e}");
    let (status, e) = call(
        &api,
        "PUT",
        pl,
        r#"{"version": 0, "zone": "Europe/Warsaw"}"#,
    );
    assert_eq!(status, 400, "unknown field: {e}");
    assert_eq!(api.json("/api/v1/config")["version"], 0, "nothing saved");

    let (status, saved) = call(
        &api,
        "PUT",
        pl,
        r#"{"version": 0, "timezone": "Europe/Warsaw", "holidays": ["2017-05-03"]}"#,
    );
    assert_eq!(
        (status, saved["version"].as_u64()),
        (200, Some(1)),
        "{saved}"
    );
    // In force at once: ingest takes PL now.
    let csv = "time,country,lob,kind,flow,bytes\n2017-03-01T10:00:00Z,PL,GSM,input,A,5\n";
    assert_eq!(api.ingest(csv)["accepted"], 1);
    // PATCH changes only what it names; a stale version conflicts.
    let (status, _) = call(
        &api,
        "PATCH",
        pl,
        r#"{"version": 1, "lazyDays": ["2017-12-27"]}"#,
    );
    assert_eq!(status, 200);
    let (status, e) = call(&api, "PATCH", pl, r#"{"version": 1, "lazyDays": []}"#);
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("version_conflict"))
    );
    let country = api.json(pl);
    assert_eq!(country["timezone"], "Europe/Warsaw");
    assert_eq!(country["timezoneSource"], "own");
    assert_eq!(country["holidays"], serde_json::json!(["2017-05-03"]));
    assert_eq!(country["lazyDays"], serde_json::json!(["2017-12-27"]));

    // Built-in holidays join the country's own, sorted, once each.
    let cz = "/api/v1/config/countries/CZ";
    let (status, _) = call(
        &api,
        "PUT",
        cz,
        r#"{"version": 2, "holidays": ["2017-12-24", "2016-12-31"]}"#,
    );
    assert_eq!(status, 200);
    let fill = format!("{cz}/fill-holidays");
    let (status, _) = call(
        &api,
        "POST",
        &fill,
        r#"{"version": 3, "from": 2017, "to": 2018}"#,
    );
    assert_eq!(status, 200);
    let holidays = api.json(cz)["holidays"].clone();
    let holidays: Vec<&str> = holidays
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(holidays.len(), 1 + 13 + 13, "{holidays:?}");
    assert_eq!(holidays[0], "2016-12-31");
    assert!(holidays.is_sorted());
    assert!(holidays.contains(&"2017-10-28") && holidays.contains(&"2018-11-17"));
    assert_eq!(api.json(cz)["timezoneSource"], "builtIn");
    let (status, e) = call(
        &api,
        "POST",
        "/api/v1/config/countries/PL/fill-holidays",
        r#"{"version": 4, "from": 2017, "to": 2017}"#,
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("no_builtin_holidays"))
    );

    // A LoB: its settings, validated at settings.<field>; disabled, its flows are.
    let lob = "/api/v1/config/countries/CZ/lobs/GSM";
    let (status, e) = call(
        &api,
        "PUT",
        lob,
        r#"{"version": 4, "settings": {"granularity": "7m"}}"#,
    );
    assert_eq!(
        (status, e["error"]["path"].as_str()),
        (400, Some("settings.granularity")),
        "{e}"
    );
    let (status, _) = call(
        &api,
        "PUT",
        lob,
        r#"{"version": 4, "settings": {"medianDays": 3}}"#,
    );
    assert_eq!(status, 200);
    let (status, _) = call(
        &api,
        "PATCH",
        lob,
        r#"{"version": 5, "settings": {"enabled": false}}"#,
    );
    assert_eq!(status, 200);
    let l = api.json(lob);
    assert_eq!(
        l["settings"],
        serde_json::json!({"medianDays": 3, "enabled": false})
    );
    let flow = api.json("/api/v1/flows/CZ/GSM/input/X/config");
    assert_eq!(flow["config"]["enabled"], false);
    assert_eq!(flow["sources"]["enabled"], "lob");
    assert_eq!(flow["config"]["medianDays"], 3);
    // Removing the LoB removes its settings; the country stays.
    let (status, _) = call(&api, "DELETE", &format!("{lob}?version=6"), "");
    assert_eq!(status, 200);
    assert_eq!(
        api.json("/api/v1/flows/CZ/GSM/input/X/config")["config"]["enabled"],
        true
    );
    let (status, _) = call(&api, "DELETE", &format!("{lob}?version=7"), "");
    assert_eq!(status, 404);
    let (status, _) = call(&api, "DELETE", &format!("{pl}?version=7"), "");
    assert_eq!(status, 200);
    assert!(
        api.json("/api/v1/config")["document"]["countries"]
            .get("PL")
            .is_none()
    );

    // Each save is in the audit log with what it changed.
    let log = api.json("/api/v1/audit?limit=8");
    let changes: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "config.save")
        .map(|e| e["detail"]["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        [
            "country PL: removed",
            "LoB CZ/GSM: removed",
            "LoB CZ/GSM: settings set",
            "LoB CZ/GSM: settings set",
            "country CZ: built-in holidays 2017..2018 added",
            "country CZ: calendar set",
            "country PL: calendar set",
            "country PL: calendar set",
        ]
    );
    api.stop();
}

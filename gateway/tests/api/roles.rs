//! Who may call what: every documented operation for no key, a read-only key and a root key.

use serde_json::json;

use crate::harness::{Api, JSON, Options, ROOT_PASSWORD, parse};

/// Creates a user; its first key.
pub fn create_user(api: &Api, name: &str, role: &str, password: Option<&str>) -> String {
    let mut body = json!({"name": name, "role": role});
    if let Some(p) = password {
        body["password"] = p.into();
    }
    let (status, answer) = api.request("POST", "/api/v1/users", JSON, &body.to_string());
    assert_eq!(status, 201, "{answer}");
    parse(&answer)["apiKey"].as_str().unwrap().to_owned()
}

#[test]
fn every_operation_answers_each_role_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(
        dir.path(),
        Options {
            start_time: Some("2017-03-02T00:00:00Z"),
            ..Options::default()
        },
    );
    let read_only = create_user(&api, "viewer", "readOnly", Some("viewer password"));
    let csv = "time,country,lob,kind,flow,bytes\n2017-03-01T10:00:00Z,CZ,GSM,input,A,5\n";
    let login = json!({"username": "root", "password": ROOT_PASSWORD}).to_string();
    let a = "/api/v1/flows/CZ/GSM/input/A";
    let own = "/api/v1/config/flows/CZ/GSM/input/A";
    let country = "/api/v1/config/countries/CZ";
    let day = "from=2017-03-01&to=2017-03-02";
    let sim = r#"{"from": "2017-03-01", "to": "2017-03-02", "settings": {}}"#;
    let backtest = r#"{"from": "2017-03-01", "to": "2017-03-02", "scope": {"country": "CZ"}, "candidate": {}}"#;
    // A silence to end (its id is the store's), over a flow with traffic.
    api.ingest(csv);
    let silence = r#"{"scope": {"country": "CZ"}, "from": "2017-03-01T00:00:00Z", "to": "2017-03-03T00:00:00Z", "comment": "maintenance"}"#;
    let (status, created) = api.request("POST", "/api/v1/silences", JSON, silence);
    assert_eq!(status, 201, "{created}");
    let silence_id = parse(&created)["id"].as_str().unwrap().to_owned();
    let channel = r#"{"type": "webhook", "target": {"url": "http://127.0.0.1:9/hook", "secret": "s"}, "minStatus": "OUTAGE"}"#;
    // Expected status without a key, with the read-only key, with the root key. Changes are
    // made by root only, so each is made once and the next row builds on it.
    let matrix: Vec<(&str, String, &str, [u16; 3])> = vec![
        ("GET", "/api/v1/health".into(), "", [200, 200, 200]),
        ("POST", "/api/v1/login".into(), &login, [200, 200, 200]),
        ("POST", "/api/v1/visitor-login".into(), "", [200, 200, 200]),
        ("GET", "/api/v1/me".into(), "", [401, 200, 200]),
        ("GET", "/api/v1/time".into(), "", [401, 200, 200]),
        ("GET", "/api/v1/openapi.json".into(), "", [401, 200, 200]),
        ("GET", "/api/v1/status".into(), "", [401, 200, 200]),
        ("GET", "/metrics".into(), "", [401, 200, 200]),
        ("POST", "/api/v1/ingest".into(), csv, [401, 403, 200]),
        ("GET", "/api/v1/users".into(), "", [401, 403, 200]),
        (
            "POST",
            "/api/v1/users".into(),
            r#"{"name": "u2", "role": "readOnly"}"#,
            [401, 403, 201],
        ),
        ("GET", "/api/v1/users/u2".into(), "", [401, 403, 200]),
        (
            "PATCH",
            "/api/v1/users/u2".into(),
            r#"{"role": "root"}"#,
            [401, 403, 200],
        ),
        ("POST", "/api/v1/users/u2/key".into(), "", [401, 403, 200]),
        ("DELETE", "/api/v1/users/u2".into(), "", [401, 403, 204]),
        ("GET", "/api/v1/config".into(), "", [401, 200, 200]),
        (
            "PUT",
            "/api/v1/config".into(),
            r#"{"version": 0, "document": {}}"#,
            [401, 403, 200],
        ),
        (
            "PUT",
            own.into(),
            r#"{"version": 1, "settings": {"medianDays": 3}}"#,
            [401, 403, 200],
        ),
        (
            "PATCH",
            own.into(),
            r#"{"version": 2, "settings": {"medianDays": 4}}"#,
            [401, 403, 200],
        ),
        ("DELETE", format!("{own}?version=3"), "", [401, 403, 200]),
        (
            "PUT",
            country.to_owned(),
            r#"{"version": 4, "holidays": ["2017-12-31"]}"#,
            [401, 403, 200],
        ),
        (
            "PATCH",
            country.to_owned(),
            r#"{"version": 5, "lazyDays": ["2017-12-27"]}"#,
            [401, 403, 200],
        ),
        (
            "POST",
            format!("{country}/fill-holidays"),
            r#"{"version": 6, "from": 2017, "to": 2017}"#,
            [401, 403, 200],
        ),
        ("GET", country.to_owned(), "", [401, 200, 200]),
        (
            "PUT",
            format!("{country}/lobs/GSM"),
            r#"{"version": 7, "settings": {"medianDays": 3}}"#,
            [401, 403, 200],
        ),
        (
            "PATCH",
            format!("{country}/lobs/GSM"),
            r#"{"version": 8, "settings": {"enabled": false}}"#,
            [401, 403, 200],
        ),
        ("GET", format!("{country}/lobs/GSM"), "", [401, 200, 200]),
        (
            "DELETE",
            format!("{country}/lobs/GSM?version=9"),
            "",
            [401, 403, 200],
        ),
        (
            "DELETE",
            format!("{country}?version=10"),
            "",
            [401, 403, 200],
        ),
        ("GET", "/api/v1/dashboard".into(), "", [401, 200, 200]),
        ("GET", "/api/v1/cluster".into(), "", [401, 200, 200]),
        (
            "GET",
            "/api/v1/live?onlyOutages=nope".into(),
            "",
            [401, 400, 400],
        ),
        ("GET", "/api/v1/events".into(), "", [401, 200, 200]),
        ("GET", "/api/v1/incidents".into(), "", [401, 200, 200]),
        (
            "POST",
            "/api/v1/incidents/nope/ack".into(),
            r#"{"comment": "on it"}"#,
            [401, 403, 404],
        ),
        ("GET", "/api/v1/silences".into(), "", [401, 200, 200]),
        ("POST", "/api/v1/silences".into(), silence, [401, 403, 201]),
        (
            "DELETE",
            format!("/api/v1/silences/{silence_id}"),
            "",
            [401, 403, 200],
        ),
        // Root passes and is told there is no such event.
        (
            "POST",
            "/api/v1/events/nope/ack".into(),
            r#"{"comment": "on it"}"#,
            [401, 403, 404],
        ),
        // A channel named as the user above (the path names are filled alike).
        (
            "PUT",
            "/api/v1/channels/u2".into(),
            channel,
            [401, 403, 201],
        ),
        ("GET", "/api/v1/channels".into(), "", [401, 200, 200]),
        ("GET", "/api/v1/channels/u2".into(), "", [401, 200, 200]),
        // Root's test is answered whatever the receiver did (here: nobody listens).
        (
            "POST",
            "/api/v1/channels/u2/test".into(),
            "",
            [401, 403, 200],
        ),
        (
            "GET",
            "/api/v1/channels/u2/deliveries".into(),
            "",
            [401, 200, 200],
        ),
        ("DELETE", "/api/v1/channels/u2".into(), "", [401, 403, 204]),
        ("GET", "/api/v1/flows".into(), "", [401, 200, 200]),
        ("GET", "/api/v1/flapping".into(), "", [401, 200, 200]),
        (
            "GET",
            "/api/v1/suggestions?country=CZ".into(),
            "",
            [401, 200, 200],
        ),
        ("GET", "/api/v1/flows/CZ/GSM".into(), "", [401, 200, 200]),
        ("GET", format!("{a}/ticks?{day}"), "", [401, 200, 200]),
        ("GET", format!("{a}/traffic?{day}"), "", [401, 200, 200]),
        ("GET", format!("{a}/config"), "", [401, 200, 200]),
        ("POST", format!("{a}/simulate"), sim, [401, 200, 200]),
        ("POST", "/api/v1/backtest".into(), backtest, [401, 200, 200]),
        ("GET", "/api/v1/audit".into(), "", [401, 403, 200]),
        ("POST", "/api/v1/logout".into(), "", [401, 204, 204]),
    ];
    let mut covered = std::collections::BTreeSet::new();
    for (method, path, body, expected) in &matrix {
        for (who, want) in ["none", "readOnly", "root"].iter().zip(expected) {
            // Logging out revokes the key used: each role logs out with a key of its own.
            let key = match (*who, path.as_str()) {
                ("none", _) => None,
                ("readOnly", "/api/v1/logout") => Some(api.login("viewer", "viewer password")),
                ("root", "/api/v1/logout") => Some(api.login("root", ROOT_PASSWORD)),
                ("readOnly", _) => Some(read_only.clone()),
                _ => Some(api.key.clone()),
            };
            let content_type = if path.ends_with("/ingest") {
                "text/csv"
            } else {
                JSON
            };
            let (status, answer) = api.request_as(key.as_deref(), method, path, content_type, body);
            assert_eq!(status, *want, "{method} {path} as {who}: {answer}");
            if status == 401 || status == 403 {
                let code = &parse(&answer)["error"]["code"];
                let want_code = if status == 401 {
                    "unauthenticated"
                } else {
                    "forbidden"
                };
                assert_eq!(code, want_code, "{method} {path} as {who}");
            }
        }
        covered.insert((
            method.to_string(),
            path.split('?').next().unwrap().to_owned(),
        ));
    }
    // The matrix covers every operation the OpenAPI document lists.
    let doc = api.json("/api/v1/openapi.json");
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let path = path
            .replace("{country}", "CZ")
            .replace("{lob}", "GSM")
            .replace("{kind}", "input")
            .replace("{flow}", "A")
            .replace("{name}", "u2")
            .replace(
                "{id}",
                if path.starts_with("/api/v1/silences/") {
                    &silence_id
                } else {
                    "nope"
                },
            );
        for method in ops.as_object().unwrap().keys() {
            if method != "parameters" {
                let op = (method.to_uppercase(), path.clone());
                assert!(covered.contains(&op), "{op:?} is not in the matrix");
            }
        }
    }
    // Bearer is the same as X-API-Key; a made-up key is refused.
    let bearer = format!("Bearer {}", api.key);
    let headers = [("Authorization", bearer.as_str())];
    let (status, answer) = api.http("GET", "/api/v1/me", &headers, "");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = api.request_as(Some("fw_made_up"), "GET", "/api/v1/me", JSON, "");
    assert_eq!(status, 401);
    assert_eq!(
        parse(&answer)["error"]["message"],
        "unknown or revoked API key"
    );
    api.stop();
}

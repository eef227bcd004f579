//! Who may call what, over real HTTP on `flowwatch run`: every documented operation for no
//! key, a read-only key and a root key; login and its limit; visitor keys; users and their
//! keys; the audit log; the first root user's password.

mod common;

use std::process::{Command, Stdio};

use common::{ROOT_PASSWORD, Run};
use serde_json::{Value, json};

const JSON: &str = "application/json";

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

/// Creates a user; its first key.
fn create_user(run: &Run, name: &str, role: &str, password: Option<&str>) -> String {
    let mut body = json!({"name": name, "role": role});
    if let Some(p) = password {
        body["password"] = p.into();
    }
    let (status, answer) = run.request("POST", "/api/v1/users", JSON, &body.to_string());
    assert_eq!(status, 201, "{answer}");
    parse(&answer)["apiKey"].as_str().unwrap().to_owned()
}

#[test]
fn every_operation_answers_each_role_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(dir.path(), &["--start-time", "2017-03-02T00:00:00Z"]);
    let read_only = create_user(&run, "viewer", "readOnly", Some("viewer password"));
    let csv = "time,country,lob,kind,flow,bytes\n2017-03-01T10:00:00Z,CZ,GSM,input,A,5\n";
    let login = json!({"username": "root", "password": ROOT_PASSWORD}).to_string();
    let a = "/api/v1/flows/CZ/GSM/input/A";
    let own = "/api/v1/config/flows/CZ/GSM/input/A";
    let country = "/api/v1/config/countries/CZ";
    let day = "from=2017-03-01&to=2017-03-02";
    let sim = r#"{"from": "2017-03-01", "to": "2017-03-02", "settings": {}}"#;
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
        ("GET", "/api/v1/flows".into(), "", [401, 200, 200]),
        ("GET", "/api/v1/flows/CZ/GSM".into(), "", [401, 200, 200]),
        ("GET", format!("{a}/ticks?{day}"), "", [401, 200, 200]),
        ("GET", format!("{a}/traffic?{day}"), "", [401, 200, 200]),
        ("GET", format!("{a}/config"), "", [401, 200, 200]),
        ("POST", format!("{a}/simulate"), sim, [401, 200, 200]),
        ("GET", "/api/v1/audit".into(), "", [401, 403, 200]),
        ("POST", "/api/v1/logout".into(), "", [401, 204, 204]),
    ];
    let mut covered = std::collections::BTreeSet::new();
    for (method, path, body, expected) in &matrix {
        for (who, want) in ["none", "readOnly", "root"].iter().zip(expected) {
            // Logging out revokes the key used: each role logs out with a key of its own.
            let key = match (*who, path.as_str()) {
                ("none", _) => None,
                ("readOnly", "/api/v1/logout") => Some(run.login("viewer", "viewer password")),
                ("root", "/api/v1/logout") => Some(run.login("root", ROOT_PASSWORD)),
                ("readOnly", _) => Some(read_only.clone()),
                _ => Some(run.key.clone()),
            };
            let content_type = if path.ends_with("/ingest") {
                "text/csv"
            } else {
                JSON
            };
            let (status, answer) = run.request_as(key.as_deref(), method, path, content_type, body);
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
    let doc = run.json("/api/v1/openapi.json");
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let path = path
            .replace("{country}", "CZ")
            .replace("{lob}", "GSM")
            .replace("{kind}", "input")
            .replace("{flow}", "A")
            .replace("{name}", "u2");
        for method in ops.as_object().unwrap().keys() {
            if method != "parameters" {
                let op = (method.to_uppercase(), path.clone());
                assert!(covered.contains(&op), "{op:?} is not in the matrix");
            }
        }
    }
    // Bearer is the same as X-API-Key; a made-up key is refused.
    let bearer = format!("Bearer {}", run.key);
    let headers = [("Authorization", bearer.as_str())];
    let (status, answer) = common::http(&run.addr, "GET", "/api/v1/me", &headers, "");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = run.request_as(Some("fw_made_up"), "GET", "/api/v1/me", JSON, "");
    assert_eq!(status, 401);
    assert_eq!(
        parse(&answer)["error"]["message"],
        "unknown or revoked API key"
    );
    run.terminate();
}

#[test]
fn users_keys_logins_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(dir.path(), &[]);
    let me = |key: &str| {
        let (status, body) = run.request_as(Some(key), "GET", "/api/v1/me", JSON, "");
        (status, parse(&body))
    };
    let key = create_user(&run, "ops", "readOnly", Some("ops password"));
    assert!(key.starts_with("fw_") && key.len() >= 35, "{key}");
    assert_eq!(me(&key).1["role"], "readOnly");
    // A role change applies to the user's keys at once.
    let (status, _) = run.request("PATCH", "/api/v1/users/ops", JSON, r#"{"role": "root"}"#);
    assert_eq!(status, 200);
    assert_eq!(me(&key).1["role"], "root");
    // Logins: several keys live side by side, each expiring.
    let login = run.login("ops", "ops password");
    assert_eq!(me(&login).1["keyKind"], "login");
    assert!(me(&login).1["expiresAt"].is_string());
    assert_eq!(me(&key).0, 200, "a login does not revoke the other keys");
    let user = run.json("/api/v1/users/ops");
    assert_eq!(user["keys"].as_array().unwrap().len(), 2);
    assert_eq!(user["password"], true);
    assert!(
        !user.to_string().contains(&key),
        "keys are never shown again"
    );
    // Resetting revokes every key of the user and shows one new key once.
    let (status, body) = run.request("POST", "/api/v1/users/ops/key", JSON, "");
    assert_eq!(status, 200);
    let new = parse(&body)["apiKey"].as_str().unwrap().to_owned();
    assert_eq!(me(&key).0, 401);
    assert_eq!(me(&login).0, 401);
    assert_eq!(me(&new).0, 200);
    // Bad input names the field; no duplicate users; the visitor's name is reserved.
    for (body, status, path) in [
        (r#"{"name": "a b", "role": "root"}"#, 400, "name"),
        (r#"{"name": "ops", "role": "root"}"#, 409, "name"),
        (r#"{"name": "visitor", "role": "root"}"#, 400, "name"),
        (r#"{"name": "x", "role": "admin"}"#, 400, "role"),
        (
            r#"{"name": "x", "role": "root", "password": "short"}"#,
            400,
            "password",
        ),
        (r#"{"name": "x", "role": "root", "email": "x@y"}"#, 400, ""),
    ] {
        let (got, answer) = run.request("POST", "/api/v1/users", JSON, body);
        assert_eq!(got, status, "{body}: {answer}");
        if !path.is_empty() {
            assert_eq!(parse(&answer)["error"]["path"], path, "{body}");
        }
    }
    // The last root user cannot go, nor stop being root; with another root it can.
    let (status, _) = run.request(
        "PATCH",
        "/api/v1/users/ops",
        JSON,
        r#"{"role": "readOnly"}"#,
    );
    assert_eq!(status, 200);
    for (method, body) in [("PATCH", r#"{"role": "readOnly"}"#), ("DELETE", "")] {
        let (status, answer) = run.request(method, "/api/v1/users/root", JSON, body);
        assert_eq!(status, 409, "{answer}");
        assert_eq!(parse(&answer)["error"]["code"], "last_root");
    }
    let (status, _) = run.request("DELETE", "/api/v1/users/ops", JSON, "");
    assert_eq!(status, 204);
    assert_eq!(me(&new).0, 401, "a deleted user's keys stop working");
    let (status, _) = run.request("DELETE", "/api/v1/users/ops", JSON, "");
    assert_eq!(status, 404);

    // The audit log: who changed what, newest first, in pages.
    let (status, _) = run.request(
        "PUT",
        "/api/v1/config",
        JSON,
        r#"{"version": 0, "document": {}}"#,
    );
    assert_eq!(status, 200);
    let log = run.json("/api/v1/audit?limit=3");
    let entries = log["entries"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("user"), s("action"), s("target"))
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("root".into(), "config.save".into(), "version 1".into()),
            ("root".into(), "user.delete".into(), "ops".into()),
            ("root".into(), "user.change".into(), "ops".into()),
        ]
    );
    let next = log["next"].as_str().unwrap();
    let older = run.json(&format!("/api/v1/audit?limit=100&cursor={next}"));
    let actions: Vec<&str> = older["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.resetKey",
            "login",
            "user.change",
            "user.create",
            "login"
        ]
    );
    assert_eq!(older["next"], Value::Null);
    assert_eq!(run.json("/api/v1/config")["version"], 1);
    let saved_by = run.json("/api/v1/audit?limit=1")["entries"][0]["user"].clone();
    assert_eq!(saved_by, "root");
    run.terminate();
}

#[test]
fn failed_logins_are_limited_and_visitor_keys_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(dir.path(), &[]);
    let attempt = |password: &str| {
        let body = json!({"username": "root", "password": password}).to_string();
        run.request_as(None, "POST", "/api/v1/login", JSON, &body)
    };
    for _ in 0..5 {
        let (status, answer) = attempt("wrong password");
        assert_eq!(status, 401, "{answer}");
        assert_eq!(parse(&answer)["error"]["code"], "invalid_credentials");
    }
    // The sixth attempt in a minute is refused before the password is looked at.
    let (status, answer) = attempt(ROOT_PASSWORD);
    assert_eq!(status, 429, "{answer}");
    assert_eq!(parse(&answer)["error"]["code"], "rate_limited");
    // An unknown user gets the same answer as a wrong password.
    let body = r#"{"username": "nobody", "password": "whatever it is"}"#;
    let (status, answer) = run.request_as(None, "POST", "/api/v1/login", JSON, body);
    assert_eq!(
        (status, parse(&answer)["error"]["code"].clone()),
        (429, "rate_limited".into()),
        "the client address is limited too"
    );
    let (status, _) = run.request_as(
        None,
        "POST",
        "/api/v1/login",
        JSON,
        r#"{"username": "root"}"#,
    );
    assert_eq!(status, 400);

    let (status, answer) = run.request_as(None, "POST", "/api/v1/visitor-login", JSON, "");
    assert_eq!(status, 200);
    let visitor = parse(&answer)["apiKey"].as_str().unwrap().to_owned();
    assert_eq!(parse(&answer)["role"], "readOnly");
    let (status, _) = run.request_as(Some(&visitor), "GET", "/api/v1/dashboard", JSON, "");
    assert_eq!(status, 200);
    let (status, _) = run.request_as(
        Some(&visitor),
        "PUT",
        "/api/v1/config",
        JSON,
        r#"{"version": 0, "document": {}}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = run.request("DELETE", "/api/v1/users/visitor", JSON, "");
    assert_eq!(status, 403, "the visitor's user is not managed by hand");
    let data = dir.path().to_owned();
    run.terminate();

    // Switched off: no new visitor keys, and the old ones stop working.
    let run = Run::start(&data, &["--no-visitor"]);
    let (status, answer) = run.request_as(None, "POST", "/api/v1/visitor-login", JSON, "");
    assert_eq!(status, 403);
    assert_eq!(parse(&answer)["error"]["code"], "visitor_disabled");
    let (status, _) = run.request_as(Some(&visitor), "GET", "/api/v1/dashboard", JSON, "");
    assert_eq!(status, 401);
    run.terminate();
}

#[test]
fn the_first_root_password_is_random_and_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let (child, _) = Run::spawn(dir.path(), &[], None, Stdio::piped());
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stderr).unwrap()
    };
    let first = start();
    let password = first
        .lines()
        .find_map(|l| l.strip_prefix("flowwatch: created user \"root\" with password "))
        .unwrap_or_else(|| panic!("no password in {first}"))
        .to_owned();
    assert!(password.len() >= 16, "{password}");
    let second = start();
    assert!(!second.contains("created user"), "{second}");
    assert!(!second.contains(&password));
    // It is the root user's password.
    let run = Run::start_as_root(dir.path(), &[], &password);
    assert!(run.key.starts_with("fw_"));
    run.terminate();
}

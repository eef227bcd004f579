//! Users and their keys, logins and their limit, visitor keys, the audit log.

use serde_json::{Value, json};

use crate::harness::{Api, JSON, Options, ROOT_PASSWORD, parse};

use crate::roles::create_user;

#[test]
fn users_keys_logins_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), Options::default());
    let me = |key: &str| {
        let (status, body) = api.request_as(Some(key), "GET", "/api/v1/me", JSON, "");
        (status, parse(&body))
    };
    let key = create_user(&api, "ops", "readOnly", Some("ops password"));
    assert!(key.starts_with("fw_") && key.len() >= 35, "{key}");
    assert_eq!(me(&key).1["role"], "readOnly");
    // A role change applies to the user's keys at once.
    let (status, _) = api.request("PATCH", "/api/v1/users/ops", JSON, r#"{"role": "root"}"#);
    assert_eq!(status, 200);
    assert_eq!(me(&key).1["role"], "root");
    // Logins: several keys live side by side, each expiring.
    let login = api.login("ops", "ops password");
    assert_eq!(me(&login).1["keyKind"], "login");
    assert!(me(&login).1["expiresAt"].is_string());
    assert_eq!(me(&key).0, 200, "a login does not revoke the other keys");
    let user = api.json("/api/v1/users/ops");
    assert_eq!(user["keys"].as_array().unwrap().len(), 2);
    assert_eq!(user["password"], true);
    assert!(
        !user.to_string().contains(&key),
        "keys are never shown again"
    );
    // Resetting revokes every key of the user and shows one new key once.
    let (status, body) = api.request("POST", "/api/v1/users/ops/key", JSON, "");
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
        let (got, answer) = api.request("POST", "/api/v1/users", JSON, body);
        assert_eq!(got, status, "{body}: {answer}");
        if !path.is_empty() {
            assert_eq!(parse(&answer)["error"]["path"], path, "{body}");
        }
    }
    // The last root user cannot go, nor stop being root; with another root it can.
    let (status, _) = api.request(
        "PATCH",
        "/api/v1/users/ops",
        JSON,
        r#"{"role": "readOnly"}"#,
    );
    assert_eq!(status, 200);
    for (method, body) in [("PATCH", r#"{"role": "readOnly"}"#), ("DELETE", "")] {
        let (status, answer) = api.request(method, "/api/v1/users/root", JSON, body);
        assert_eq!(status, 409, "{answer}");
        assert_eq!(parse(&answer)["error"]["code"], "last_root");
    }
    let (status, _) = api.request("DELETE", "/api/v1/users/ops", JSON, "");
    assert_eq!(status, 204);
    assert_eq!(me(&new).0, 401, "a deleted user's keys stop working");
    let (status, _) = api.request("DELETE", "/api/v1/users/ops", JSON, "");
    assert_eq!(status, 404);

    // The audit log: who changed what, newest first, in pages.
    let (status, _) = api.request(
        "PUT",
        "/api/v1/config",
        JSON,
        r#"{"version": 0, "document": {}}"#,
    );
    assert_eq!(status, 200);
    let log = api.json("/api/v1/audit?limit=3");
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
    let older = api.json(&format!("/api/v1/audit?limit=100&cursor={next}"));
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
    assert_eq!(api.json("/api/v1/config")["version"], 1);
    let saved_by = api.json("/api/v1/audit?limit=1")["entries"][0]["user"].clone();
    assert_eq!(saved_by, "root");
    api.stop();
}

#[test]
fn failed_logins_are_limited_and_visitor_keys_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), Options::default());
    let attempt = |password: &str| {
        let body = json!({"username": "root", "password": password}).to_string();
        api.request_as(None, "POST", "/api/v1/login", JSON, &body)
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
    let (status, answer) = api.request_as(None, "POST", "/api/v1/login", JSON, body);
    assert_eq!(
        (status, parse(&answer)["error"]["code"].clone()),
        (429, "rate_limited".into()),
        "the client address is limited too"
    );
    let (status, _) = api.request_as(
        None,
        "POST",
        "/api/v1/login",
        JSON,
        r#"{"username": "root"}"#,
    );
    assert_eq!(status, 400);

    let (status, answer) = api.request_as(None, "POST", "/api/v1/visitor-login", JSON, "");
    assert_eq!(status, 200);
    let visitor = parse(&answer)["apiKey"].as_str().unwrap().to_owned();
    assert_eq!(parse(&answer)["role"], "readOnly");
    let (status, _) = api.request_as(Some(&visitor), "GET", "/api/v1/dashboard", JSON, "");
    assert_eq!(status, 200);
    let (status, _) = api.request_as(
        Some(&visitor),
        "PUT",
        "/api/v1/config",
        JSON,
        r#"{"version": 0, "document": {}}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = api.request("DELETE", "/api/v1/users/visitor", JSON, "");
    assert_eq!(status, 403, "the visitor's user is not managed by hand");
    let data = dir.path().to_owned();
    api.stop();

    // Switched off: no new visitor keys, and the old ones stop working.
    let api = Api::start(
        &data,
        Options {
            no_visitor: true,
            ..Options::default()
        },
    );
    let (status, answer) = api.request_as(None, "POST", "/api/v1/visitor-login", JSON, "");
    assert_eq!(status, 403);
    assert_eq!(parse(&answer)["error"]["code"], "visitor_disabled");
    let (status, _) = api.request_as(Some(&visitor), "GET", "/api/v1/dashboard", JSON, "");
    assert_eq!(status, 401);
    api.stop();
}

//! Notification channels (SPEC §12) through the API, with this process's worker sending: a
//! channel is checked field by field, its secrets never read back, an outage reaches its
//! webhook signed and once, and a test message says how it went.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use flowwatch_core::channel::webhook_signature;
use serde_json::{Value, json};

use crate::harness::{Api, JSON, hourly_week, parse};

/// A request's headers (names in lowercase) and body.
type Received = (Vec<(String, String)>, Vec<u8>);

/// A webhook receiver on a free port answering 200 to every POST: its URL, and what it got
/// (headers in lowercase, body).
fn receiver() -> (String, mpsc::Receiver<Received>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line.trim_end().is_empty() {
                    break;
                }
                let (k, v) = line.trim_end().split_once(':').unwrap();
                headers.push((k.to_lowercase(), v.trim().to_owned()));
            }
            let length: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nthank you",
                )
                .unwrap();
            if tx.send((headers, body)).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

fn put(api: &Api, name: &str, body: &Value) -> (u16, Value) {
    let path = format!("/api/v1/channels/{name}");
    let (status, answer) = api.request("PUT", &path, JSON, &body.to_string());
    (status, parse(&answer))
}

#[test]
fn a_channel_is_checked_field_by_field_and_its_secrets_never_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), Default::default());
    let hook = json!({"type": "webhook", "target": {"url": "http://127.0.0.1:9/x", "secret": "s3cret"},
                      "scope": {"country": "CZ"}, "minStatus": "OUTAGE"});
    for (name, body, path) in [
        (
            "ops",
            json!({"type": "pager", "target": {}, "minStatus": "OUTAGE"}),
            "type",
        ),
        (
            "ops",
            json!({"type": "webhook", "target": {"url": "ftp://x/", "secret": "s"}, "minStatus": "OUTAGE"}),
            "target.url",
        ),
        (
            "ops",
            json!({"type": "email", "target": {"smtp": "smtp://m:25", "from": "a@b", "to": ["x@y", "nobody"]}, "minStatus": "OUTAGE"}),
            "target.to[1]",
        ),
        (
            "ops",
            json!({"type": "slack", "target": {"url": "https://h/"}, "minStatus": "OK"}),
            "minStatus",
        ),
        (
            "ops",
            json!({"type": "slack", "target": {"url": "https://h/"}, "minStatus": "OUTAGE", "extra": 1}),
            "extra",
        ),
        ("a%20b", hook.clone(), "name"),
        ("..%2E", hook.clone(), "name"),
    ] {
        let (status, answer) = put(&api, name, &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["path"], path, "{body}: {answer}");
    }
    let (status, created) = put(&api, "ops", &hook);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["target"]["secret"], "…");
    assert_eq!(created["updatedBy"], "root");
    assert_eq!(
        (created["pending"].clone(), created["lastAttempt"].clone()),
        (json!(0), Value::Null)
    );
    let mail = json!({"type": "email", "target": {"smtp": "smtp://ops:p%40ss@127.0.0.1:1", "from": "fw@example.com", "to": ["ops@example.com"]},
                      "minStatus": "WARNING"});
    assert_eq!(put(&api, "mail", &mail).0, 201);
    let listed = api.json("/api/v1/channels")["channels"].clone();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mail", "ops"]);
    assert_eq!(listed[0]["target"]["smtp"], "smtp://ops:…@127.0.0.1:1");
    assert!(!listed.to_string().contains("s3cret") && !listed.to_string().contains("p%40ss"));
    // Sending back what was read keeps the secret; a new one replaces it.
    let mut edited = api.json("/api/v1/channels/ops");
    edited["minStatus"] = "WARNING".into();
    for key in ["name", "updatedAt", "updatedBy", "pending", "lastAttempt"] {
        edited.as_object_mut().unwrap().remove(key);
    }
    let (status, answer) = put(&api, "ops", &edited);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["minStatus"], "WARNING");
    let audit = api.json("/api/v1/audit")["entries"].to_string();
    assert!(
        audit.contains("channel.put") && !audit.contains("s3cret"),
        "{audit}"
    );
    let (status, _) = api.request("DELETE", "/api/v1/channels/mail", JSON, "");
    assert_eq!(status, 204);
    let (status, _) = api.request("DELETE", "/api/v1/channels/mail", JSON, "");
    assert_eq!(status, 404);
    // A query that does not parse is the API's JSON error, not axum's text.
    let bad = "/api/v1/channels/ops/deliveries?limit=many";
    let (status, answer) = api.request("GET", bad, JSON, "");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(parse(&answer)["error"]["code"], "invalid_query", "{answer}");
    assert_eq!(
        api.request("GET", "/api/v1/channels/mail/deliveries", JSON, "")
            .0,
        404
    );
    assert_eq!(
        api.request("POST", "/api/v1/channels/mail/test", JSON, "")
            .0,
        404
    );
    api.stop();
}

#[test]
fn an_outage_reaches_its_webhook_signed_and_once_and_a_test_says_how_it_went() {
    let dir = tempfile::tempdir().unwrap();
    let (url, received) = receiver();
    let api = Api::before_a_week(dir.path(), json!({}));
    let hook = json!({"type": "webhook", "target": {"url": url, "secret": "s3cret"},
                      "scope": {"country": "CZ", "lob": "GSM"}, "minStatus": "OUTAGE"});
    assert_eq!(put(&api, "ops", &hook).0, 201);
    let csv = hourly_week(&[("input", "A"), ("input", "B")], &["A"]);
    assert_eq!(api.ingest(&csv)["refused"], 0);

    let (headers, body) = received
        .recv_timeout(Duration::from_secs(60))
        .expect("the outage is delivered");
    let alarm: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (alarm["flowName"].as_str(), alarm["newStatus"].as_str()),
        (Some("A"), Some("OUTAGE")),
        "{alarm}"
    );
    assert!(alarm.get("test").is_none());
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("x-flowwatch-signature"),
        Some(webhook_signature("s3cret", &body))
    );
    assert_eq!(
        header("x-flowwatch-event-id").as_deref(),
        alarm["id"].as_str()
    );
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    // Nothing else comes: B stayed OK, A's change is delivered once.
    if let Ok((_, more)) = received.recv_timeout(Duration::from_secs(4)) {
        let more: Value = serde_json::from_slice(&more).unwrap();
        assert_ne!(more["id"], alarm["id"], "delivered twice");
        assert_eq!(more["flowName"], "A", "{more}");
    }
    let log = api.json("/api/v1/channels/ops/deliveries");
    assert_eq!(log["pending"], 0, "{log}");
    let first = &log["deliveries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (
            first["eventId"].clone(),
            first["outcome"].clone(),
            first["attempt"].clone()
        ),
        (alarm["id"].clone(), json!("delivered"), json!(1))
    );
    assert_eq!(first["response"], "HTTP 200 thank you");

    let (status, answer) = api.request("POST", "/api/v1/channels/ops/test", JSON, "");
    assert_eq!(status, 200, "{answer}");
    let attempt = parse(&answer);
    assert_eq!(
        (attempt["outcome"].as_str(), attempt["test"].as_bool()),
        (Some("delivered"), Some(true)),
        "{attempt}"
    );
    let (headers, body) = received.recv_timeout(Duration::from_secs(10)).unwrap();
    let test: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (
            test["test"].as_bool(),
            test["country"].as_str(),
            test["lobName"].as_str()
        ),
        (Some(true), Some("CZ"), Some("GSM"))
    );
    assert_eq!(
        headers
            .iter()
            .find(|(k, _)| k == "x-flowwatch-signature")
            .map(|(_, v)| v.clone()),
        Some(webhook_signature("s3cret", &body))
    );
    let log = api.json("/api/v1/channels/ops/deliveries?limit=1");
    assert_eq!(log["deliveries"][0]["eventId"], attempt["eventId"]);
    assert_eq!(
        api.json("/api/v1/channels/ops")["lastAttempt"]["test"],
        true
    );

    // A receiver nobody listens at: the test says so, and nothing is queued by it.
    let dead = json!({"type": "webhook", "target": {"url": "http://127.0.0.1:9/x", "secret": "s"}, "minStatus": "OUTAGE"});
    assert_eq!(put(&api, "dead", &dead).0, 201);
    let (status, answer) = api.request("POST", "/api/v1/channels/dead/test", JSON, "");
    assert_eq!(status, 200);
    let attempt = parse(&answer);
    assert_eq!(attempt["outcome"], "failed");
    assert!(
        attempt["response"]
            .as_str()
            .unwrap()
            .starts_with("cannot connect to 127.0.0.1:9"),
        "{attempt}"
    );
    assert_eq!(api.json("/api/v1/channels/dead")["pending"], 0);
    api.stop();
}

#[test]
fn a_silenced_outage_goes_to_no_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (url, received) = receiver();
    let api = Api::before_a_week(dir.path(), json!({}));
    // B first: the silence's LoB holds a flow seen in traffic.
    let b = hourly_week(&[("input", "B")], &[]);
    assert_eq!(api.ingest(&b)["refused"], 0);
    let silence = json!({"scope": {"country": "CZ", "lob": "GSM"},
        "from": "2017-02-08T00:00:00Z", "to": "2017-02-09T00:00:00Z", "comment": "MSC upgrade"});
    let (status, answer) = api.request("POST", "/api/v1/silences", JSON, &silence.to_string());
    assert_eq!(status, 201, "{answer}");
    let hook =
        json!({"type": "webhook", "target": {"url": url, "secret": "s"}, "minStatus": "WARNING"});
    assert_eq!(put(&api, "ops", &hook).0, 201);
    // Every worker holds the silence within 2 s.
    std::thread::sleep(Duration::from_millis(2500));
    let a = hourly_week(&[("input", "A")], &["A"]);
    assert_eq!(api.ingest(&a)["refused"], 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let silenced = loop {
        let events = api.json("/api/v1/events?limit=100")["events"].clone();
        let of_a: Vec<Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["flowName"] == "A" && e["newStatus"] == "OUTAGE")
            .cloned()
            .collect();
        if !of_a.is_empty() {
            break of_a;
        }
        assert!(std::time::Instant::now() < deadline, "A's outage stored");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        silenced.iter().all(|e| e["silenced"] == true),
        "{silenced:?}"
    );
    // The channel's sender looks every second: it would have sent by now.
    match received.recv_timeout(Duration::from_secs(4)) {
        Ok((_, body)) => panic!("sent: {}", String::from_utf8_lossy(&body)),
        Err(e) => assert_eq!(e, std::sync::mpsc::RecvTimeoutError::Timeout),
    }
    let log = api.json("/api/v1/channels/ops/deliveries");
    assert_eq!(
        (log["pending"].clone(), log["deliveries"].clone()),
        (json!(0), json!([]))
    );
    api.stop();
}

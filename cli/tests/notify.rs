//! Notification channels and the ops e-mail (SPEC §12) against real servers on loopback: a
//! Kafka-protocol broker (`tansu`), an SMTP server (`aiosmtpd`, STARTTLS and AUTH), and HTTP
//! receivers that check the webhook's signature. A flow's outage reaches every channel once
//! per id; a receiver away a minute, and a `kill -9` while deliveries wait, lose nothing; NATS
//! away for two minutes brings one ops e-mail, then one when alarms flow again.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Run;
use flowwatch_core::channel::webhook_signature;
use flowwatch_worker::testkit::{KafkaBroker, NatsServer, SmtpServer, free_port};
use serde_json::{Value, json};

/// Hourly defaults that learn from one day of history: a flow that stops is an OUTAGE at once.
fn config(dir: &Path) -> String {
    let path = dir.join("config.json");
    let document = json!({"defaults": {"granularity": "1h",
        "independentDays": [0, 1, 2, 3, 4, 5, 6], "lookbackDays": 7, "medianDays": 1,
        "minHistoryDays": 1}});
    std::fs::write(&path, document.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The clock: just after the week of [`week`].
const NOW: &str = "2017-02-08T10:05:00Z";

/// Hourly records of CZ/GSM inputs `flows` from 2017-02-01 to 2017-02-08 10:00 UTC; those in
/// `gone` carry nothing at 08:00 and 09:00 of the last day.
fn week(flows: &[&str], gone: &[&str]) -> String {
    let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
    for day in 1..=8 {
        for hour in 0..24 {
            if day == 8 && hour >= 10 {
                continue;
            }
            for flow in flows {
                if day == 8 && (hour == 8 || hour == 9) && gone.contains(flow) {
                    continue;
                }
                csv.push_str(&format!(
                    "2017-02-{day:02}T{hour:02}:30:00Z,CZ,GSM,input,{flow},1000\n"
                ));
            }
        }
    }
    csv
}

/// An HTTP receiver on a fixed loopback port that can be taken away (nothing listens) and
/// brought back; it answers 200 to every POST and keeps the JSON bodies whose
/// `X-Flowwatch-Signature` is right (with `secret`; any body without one).
struct Receiver {
    port: u16,
    secret: Option<&'static str>,
    got: Arc<Mutex<Vec<Value>>>,
    bad: Arc<Mutex<Vec<String>>>,
    up: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Receiver {
    fn new(secret: Option<&'static str>) -> Receiver {
        Receiver {
            port: free_port(),
            secret,
            got: Default::default(),
            bad: Default::default(),
            up: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn start(&mut self) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let running = Arc::new(AtomicBool::new(true));
        let (got, bad, secret, on) = (
            self.got.clone(),
            self.bad.clone(),
            self.secret,
            running.clone(),
        );
        let thread = std::thread::spawn(move || {
            while on.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let (headers, body) = read_request(&stream);
                let mut stream = stream;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                let signed = headers.get("x-flowwatch-signature");
                match secret {
                    Some(s) if signed != Some(&webhook_signature(s, &body)) => bad
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into()),
                    _ => got
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap()),
                }
            }
        });
        self.up = Some((running, thread));
    }

    fn stop(&mut self) {
        if let Some((running, thread)) = self.up.take() {
            running.store(false, Ordering::Relaxed);
            thread.join().unwrap();
        }
    }

    fn bodies(&self) -> Vec<Value> {
        assert!(
            self.bad.lock().unwrap().is_empty(),
            "bodies with a wrong signature: {:?}",
            self.bad.lock().unwrap()
        );
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A request's headers (names in lowercase) and body.
fn read_request(stream: &std::net::TcpStream) -> (BTreeMap<String, String>, Vec<u8>) {
    let mut reader = BufReader::new(stream);
    let mut headers = BTreeMap::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let Some((k, v)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.insert(k.to_lowercase(), v.trim().to_owned());
    }
    let length = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (headers, body)
}

/// Waits up to `seconds` for `check`; fails naming `what`.
fn wait_for(seconds: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn put_channel(run: &Run, name: &str, document: Value) {
    let path = format!("/api/v1/channels/{name}");
    let (status, answer) = run.request("PUT", &path, "application/json", &document.to_string());
    assert_eq!(status, 201, "{answer}");
}

/// The alarmed changes stored, by id.
fn alarms(run: &Run) -> BTreeMap<String, Value> {
    let events = run.json("/api/v1/events?from=2017-01-01&to=2018-01-01&limit=1000");
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["revision"] != true && e["silenced"] != true && e["flapping"] != true)
        .map(|e| (e["id"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

/// How often each id comes in `ids`.
fn counts<'a>(ids: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut n = BTreeMap::new();
    for id in ids {
        *n.entry(id).or_default() += 1;
    }
    n
}

/// A CA and a certificate for 127.0.0.1 it signed (for the SMTP server's STARTTLS): the CA's
/// file (what `SSL_CERT_FILE` names for flowwatch), the certificate's and its key's.
fn certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=flowwatch test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "smtp.key",
        "-out",
        "smtp.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "smtp.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "smtp.pem",
        "-extfile",
        "san.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("smtp.pem"),
        dir.join("smtp.key"),
    )
}

#[test]
fn an_outage_reaches_a_webhook_an_inbox_slack_and_kafka_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let smtp = SmtpServer::start_tls(&cert, &key, Some(("ops", "p@ss word")));
    let broker = KafkaBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(broker.create_topic("alarms", 3));
    let mut hook = Receiver::new(Some("s3cret"));
    hook.start();
    let mut slack = Receiver::new(None);
    slack.start();

    let data = dir.path().join("data");
    let config = config(dir.path());
    let run = Run::start_with_env(
        &data,
        &["--start-time", NOW, "--config", &config],
        &[("SSL_CERT_FILE", &ca)],
    );
    let scope = json!({"country": "CZ", "lob": "GSM"});
    put_channel(
        &run,
        "hook",
        json!({"type": "webhook", "scope": scope, "minStatus": "OUTAGE",
        "target": {"url": hook.url(), "secret": "s3cret"}}),
    );
    put_channel(
        &run,
        "mail",
        json!({"type": "email", "scope": scope, "minStatus": "OUTAGE",
        "target": {"smtp": format!("smtp://ops:p%40ss%20word@{}?starttls=required", smtp.address()),
                   "from": "flowwatch@example.com", "to": ["ops@example.com", "noc@example.com"]}}),
    );
    // A wrong password is refused for good (535), said in the channel's deliveries.
    put_channel(
        &run,
        "wrong",
        json!({"type": "email", "scope": scope, "minStatus": "OUTAGE",
        "target": {"smtp": format!("smtp://ops:guess@{}?starttls=required", smtp.address()),
                   "from": "flowwatch@example.com", "to": ["ops@example.com"]}}),
    );
    put_channel(
        &run,
        "chat",
        json!({"type": "slack", "minStatus": "OUTAGE",
        "target": {"url": slack.url()}}),
    );
    put_channel(
        &run,
        "seed",
        json!({"type": "kafka", "minStatus": "OUTAGE",
        "target": {"brokers": broker.address(), "topic": "alarms"}}),
    );
    // Elsewhere: B never goes down; another country's channel hears nothing.
    put_channel(
        &run,
        "other",
        json!({"type": "webhook", "scope": {"country": "DE"},
        "minStatus": "WARNING", "target": {"url": slack.url(), "secret": "x"}}),
    );
    assert_eq!(run.ingest(&week(&["A", "B"], &["A"]))["refused"], 0);

    let kafka_values = || -> Vec<Value> {
        let mut all = Vec::new();
        for p in 0..3 {
            let values = rt.block_on(broker.values("alarms", p));
            all.extend(
                values
                    .iter()
                    .map(|v| serde_json::from_slice::<Value>(v).unwrap()),
            );
        }
        all
    };
    wait_for(90, "the outage on every channel", || {
        !hook.bodies().is_empty()
            && !slack.bodies().is_empty()
            && !smtp.mails().is_empty()
            && !kafka_values().is_empty()
    });
    let outage = hook.bodies()[0].clone();
    assert_eq!(
        (&outage["flowName"], &outage["newStatus"], &outage["system"]),
        (&json!("A"), &json!("OUTAGE"), &json!("mediation")),
        "{outage}"
    );
    let id = outage["id"].as_str().unwrap().to_owned();
    // Whatever else comes (A's recovery is not in this data), give it time, then count.
    std::thread::sleep(Duration::from_secs(5));
    let stored = alarms(&run);
    assert!(stored.contains_key(&id), "{stored:?}");
    let outages: Vec<&String> = stored
        .iter()
        .filter(|(_, e)| e["newStatus"] == "OUTAGE" || e["previousStatus"] == "OUTAGE")
        .map(|(id, _)| id)
        .collect();

    let hooked: Vec<Value> = hook.bodies();
    let hook_ids = counts(hooked.iter().map(|b| b["id"].as_str().unwrap()));
    assert!(hook_ids.values().all(|&n| n == 1), "{hook_ids:?}");
    assert_eq!(
        hook_ids.keys().copied().collect::<Vec<_>>(),
        outages,
        "the webhook has every alarm of its scope"
    );

    let texts: Vec<String> = slack
        .bodies()
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts.len(), outages.len(), "{texts:?}");
    for id in &outages {
        assert_eq!(
            texts.iter().filter(|t| t.contains(id.as_str())).count(),
            1,
            "{id}: {texts:?}"
        );
    }
    assert!(
        texts[0].contains("OUTAGE") && texts[0].contains("CZ / GSM / input A"),
        "{}",
        texts[0]
    );

    let mails = smtp.mails();
    assert_eq!(mails.len(), outages.len(), "{mails:?}");
    let first = &mails[0];
    let subject = first
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap();
    for part in ["OUTAGE", "CZ", "GSM", " A"] {
        assert!(subject.contains(part), "{subject}");
    }
    assert!(
        first.contains("To: <ops@example.com>, <noc@example.com>"),
        "{first}"
    );
    assert!(first.contains(&format!("id: {id}")), "{first}");

    let seed = kafka_values();
    let kafka_ids = counts(seed.iter().map(|v| v["id"].as_str().unwrap()));
    assert_eq!(kafka_ids.keys().copied().collect::<Vec<_>>(), outages);
    assert!(kafka_ids.values().all(|&n| n == 1), "{kafka_ids:?}");
    let first = seed.iter().find(|v| v["id"] == id.as_str()).unwrap();
    assert_eq!(
        first, &outage,
        "the same SPEC §8 JSON on Kafka as on the webhook"
    );

    for name in ["hook", "mail", "chat", "seed"] {
        let log = run.json(&format!("/api/v1/channels/{name}/deliveries"));
        assert_eq!(log["pending"], 0, "{name}: {log}");
        assert!(
            log["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["outcome"] == "delivered"),
            "{name}: {log}"
        );
    }
    wait_for(30, "the wrong password's attempt", || {
        let log = run.json("/api/v1/channels/wrong/deliveries");
        log["deliveries"].as_array().is_some_and(|d| !d.is_empty())
    });
    let wrong = run.json("/api/v1/channels/wrong/deliveries");
    let refused = &wrong["deliveries"][0];
    assert_eq!(
        (refused["outcome"].as_str(), wrong["pending"].as_u64()),
        (Some("failed"), Some(0)),
        "{wrong}"
    );
    assert!(
        refused["response"].as_str().unwrap().contains("535"),
        "{wrong}"
    );
    let other = run.json("/api/v1/channels/other/deliveries");
    assert_eq!(
        other["deliveries"],
        json!([]),
        "another country's channel hears nothing"
    );
    run.terminate();
}

#[test]
fn a_receiver_away_a_minute_and_a_kill_while_deliveries_wait_lose_no_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(dir.path());
    let mut hook = Receiver::new(Some("s3cret"));
    let args = ["--start-time", NOW, "--config", config.as_str()];
    let run = Run::start(&data, &args);
    put_channel(
        &run,
        "hook",
        json!({"type": "webhook", "minStatus": "OUTAGE",
        "target": {"url": hook.url(), "secret": "s3cret"}}),
    );
    let away = Instant::now();
    assert_eq!(run.ingest(&week(&["A", "B"], &["A"]))["refused"], 0);
    wait_for(60, "an attempt that failed", || {
        let log = run.json("/api/v1/channels/hook/deliveries");
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["outcome"] == "retry")
    });
    let log = run.json("/api/v1/channels/hook/deliveries");
    assert!(log["pending"].as_u64().unwrap() >= 1, "{log}");
    assert!(
        log["deliveries"][0]["response"]
            .as_str()
            .unwrap()
            .starts_with("cannot connect"),
        "{log}"
    );
    drop(run); // SIGKILL

    let run = Run::start(&data, &args);
    // Another outage while the receiver is still away.
    assert_eq!(run.ingest(&week(&["C"], &["C"]))["refused"], 0);
    wait_for(60, "C's outage queued", || {
        alarms(&run)
            .values()
            .any(|e| e["flowName"] == "C" && e["newStatus"] == "OUTAGE")
            && run.json("/api/v1/channels/hook")["pending"]
                .as_u64()
                .unwrap()
                >= 2
    });
    let gone_for = Duration::from_secs(60).saturating_sub(away.elapsed());
    std::thread::sleep(gone_for);
    hook.start();
    let stored = alarms(&run);
    let outages: Vec<&str> = stored
        .iter()
        .filter(|(_, e)| e["newStatus"] == "OUTAGE" || e["previousStatus"] == "OUTAGE")
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(outages.len() >= 2, "{stored:?}");
    wait_for(90, "every alarm delivered", || {
        let got = hook.bodies();
        outages.iter().all(|id| got.iter().any(|b| b["id"] == *id))
    });
    std::thread::sleep(Duration::from_secs(3));
    let got = hook.bodies();
    let ids = counts(got.iter().map(|b| b["id"].as_str().unwrap()));
    assert_eq!(ids.keys().copied().collect::<Vec<_>>(), outages);
    assert!(ids.values().all(|&n| n == 1), "once per id: {ids:?}");
    let log = run.json("/api/v1/channels/hook/deliveries?limit=100");
    assert_eq!(log["pending"], 0, "{log}");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_away_two_minutes_sends_one_ops_mail_then_one_when_alarms_flow_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(dir.path());
    let mut nats = NatsServer::start();
    let smtp = SmtpServer::start();
    let ops = format!(
        "smtp://{}/ops@example.com?from=fw@example.com",
        smtp.address()
    );
    let url = nats.url();
    let args = [
        "--start-time",
        NOW,
        "--config",
        &config,
        "--nats-url",
        &url,
        "--ops-email",
        &ops,
    ];
    let run = Run::start(&data, &args);
    let outbox = |run: &Run| run.json("/api/v1/status")["components"]["alarms"]["outbox"].clone();
    assert_eq!(run.ingest(&week(&["A", "B"], &["A"]))["refused"], 0);
    let published_a = Instant::now();
    while alarms(&run).is_empty() || outbox(&run) != 0 {
        assert!(
            published_a.elapsed() < Duration::from_secs(60),
            "A's alarm published"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    nats.stop();
    let stopped = Instant::now();
    assert_eq!(run.ingest(&week(&["C"], &["C"]))["refused"], 0);
    let subjects = |smtp: &SmtpServer| -> Vec<String> {
        smtp.mails()
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .map(str::to_owned)
            })
            .collect()
    };
    while subjects(&smtp).is_empty() {
        assert!(
            stopped.elapsed() < Duration::from_secs(200),
            "an ops mail within 200 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        stopped.elapsed() >= Duration::from_secs(120),
        "not before two minutes: {:?}",
        stopped.elapsed()
    );
    let down = subjects(&smtp);
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(
        down[0].starts_with("[flowwatch] alarms cannot be published on NATS"),
        "{down:?}"
    );
    let mail = smtp.mails()[0].clone();
    assert!(
        mail.contains("From: <fw@example.com>") && mail.contains("To: <ops@example.com>"),
        "{mail}"
    );
    assert!(mail.contains("alarms wait in the outbox"), "{mail}");
    assert_ne!(outbox(&run), 0, "C's alarm waits");

    nats.resume();
    let resumed = Instant::now();
    while subjects(&smtp).len() < 2 {
        assert!(
            resumed.elapsed() < Duration::from_secs(90),
            "the recovered mail within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = subjects(&smtp);
    assert_eq!(all.len(), 2, "one mail each way: {all:?}");
    assert!(
        all[1].starts_with("[flowwatch] alarms are published on NATS again"),
        "{all:?}"
    );
    while outbox(&run) != 0 {
        assert!(
            resumed.elapsed() < Duration::from_secs(90),
            "the outbox drains"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every alarm raised while NATS was away is on the stream.
    let c_alarms: Vec<String> = alarms(&run)
        .into_iter()
        .filter(|(_, e)| e["flowName"] == "C")
        .map(|(id, _)| id)
        .collect();
    assert!(!c_alarms.is_empty());
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut stream = js.get_stream("FLOWWATCH_ALARMS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut on_stream = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = stream.get_raw_message(seq).await {
            let v: Value = serde_json::from_slice(&m.payload).unwrap();
            on_stream.push(v["id"].as_str().unwrap().to_owned());
        }
    }
    for id in &c_alarms {
        assert!(on_stream.contains(id), "{id} on the stream: {on_stream:?}");
    }
    run.terminate();
}

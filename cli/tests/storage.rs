//! A store that cannot be reached stops a service at start with a message naming its
//! `host:port` and the connection, never the URI's scheme: each role opens its `--storage`
//! before it talks to NATS or the coordinators (none of which run here either).
//!
//! Regression: `scylla://` URIs of the deployment files were refused as an unknown scheme.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `flowwatch <args>` to its end (it must end within `limit`); its exit status and
/// standard error.
fn run_to_end(args: &[&str], limit: Duration) -> (bool, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status.success(), stderr);
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("flowwatch {args:?} still runs after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each role, started on a store whose server does not listen, ends at once saying so.
#[test]
fn an_unreachable_store_is_a_connection_error_naming_its_address() {
    let nats = ["--nats-url", "nats://127.0.0.1:1"];
    let coordinator = ["--coordinator", "http://127.0.0.1:1"];
    for storage in [
        "scylla://127.0.0.1:1/ks",
        "postgres://root@127.0.0.1:1/test",
    ] {
        let roles: [Vec<&str>; 3] = [
            [
                &["worker", "--storage", storage, "--grpc", "127.0.0.1:0"][..],
                &nats,
                &coordinator,
            ]
            .concat(),
            [
                &["gateway", "--storage", storage, "--http", "127.0.0.1:0"][..],
                &nats,
            ]
            .concat(),
            [
                &["coordinator", "--storage", storage, "--grpc", "127.0.0.1:0"][..],
                &nats,
            ]
            .concat(),
        ];
        for args in roles {
            let (ok, stderr) = run_to_end(&args, Duration::from_secs(30));
            assert!(!ok, "{args:?}: {stderr}");
            let last = stderr.lines().last().unwrap_or_default();
            assert!(
                last.contains("cannot open the store")
                    && last.contains("cannot connect to 127.0.0.1:1"),
                "{args:?}: {stderr}"
            );
            assert!(
                !last.contains("scheme") && !last.contains("invalid storage URI"),
                "{args:?}: {stderr}"
            );
            assert_eq!(
                last.matches("Connection refused").count(),
                1,
                "each cause once: {last}"
            );
        }
    }
}

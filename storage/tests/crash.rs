//! Crash safety of the embedded backend: a child process writes batches and is killed with
//! SIGKILL at a random moment; after reopening, every batch whose write returned is complete and
//! no batch is half-visible.
//!
//! The child is this test binary run again with `FLOWWATCH_CRASH_DIR` set: `child_writer`
//! then writes until it is killed, printing `ok N` after batch N returned.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::{Bucket, FlowBuckets, TrafficStore};

const FLOWS: usize = 4;
const PER_FLOW: i64 = 250;

fn flow(k: usize) -> FlowId {
    FlowId::new("CZ", "GSM", FlowKind::Input, &format!("F{k}")).unwrap()
}

/// Batch `n`: 4 flows × 250 seconds, every value `n + 1`.
fn batch(n: i64) -> Vec<FlowBuckets> {
    (0..FLOWS)
        .map(|k| FlowBuckets {
            flow: flow(k),
            buckets: (0..PER_FLOW)
                .map(|s| Bucket {
                    second: n * PER_FLOW + s,
                    bytes: n as u64 + 1,
                    records: 1,
                })
                .collect(),
        })
        .collect()
}

#[tokio::test]
async fn child_writer() {
    let Ok(dir) = std::env::var("FLOWWATCH_CRASH_DIR") else {
        return; // Only does anything as the child of `killed_writers_lose_nothing_acknowledged`.
    };
    let start: i64 = std::env::var("FLOWWATCH_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    let store = EmbeddedStore::open(&dir).await.unwrap();
    let mut out = std::io::stdout();
    for n in start.. {
        store.add_buckets(batch(n), None).await.unwrap();
        writeln!(out, "ok {n}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writers_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut next = 0i64;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for round in 0..6u64 {
        let delay = 40
            + (seed
                .wrapping_mul(round + 1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                >> 33)
                % 400;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env("FLOWWATCH_CRASH_DIR", dir.path())
            .env("FLOWWATCH_CRASH_START", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("ok ") {
                    last = Some(n.parse::<i64>().unwrap());
                    let _ = tx.send(());
                }
            }
            last
        });
        // Kill at a random moment once the child is writing (start-up and recovery vary).
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the child writes");
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let last_acked = acked.unwrap_or(next - 1);
        // Batches up to the acknowledged one are complete; the one in flight is all or nothing;
        // none after it exists.
        let mut complete = next;
        for n in next..=last_acked + 1 {
            let mut found = 0;
            for k in 0..FLOWS {
                let b = store
                    .read_buckets(&flow(k), n * PER_FLOW, (n + 1) * PER_FLOW)
                    .await
                    .unwrap();
                assert!(
                    b.iter().all(|b| b.bytes == n as u64 + 1),
                    "batch {n} has foreign values"
                );
                found += b.len() as i64;
            }
            if n <= last_acked {
                assert_eq!(
                    found,
                    FLOWS as i64 * PER_FLOW,
                    "round {round}: acknowledged batch {n} incomplete"
                );
                complete = n + 1;
            } else {
                assert!(
                    found == 0 || found == FLOWS as i64 * PER_FLOW,
                    "round {round}: batch {n} half-visible ({found})"
                );
                if found > 0 {
                    complete = n + 1;
                }
            }
        }
        let beyond = store
            .read_buckets(&flow(0), (last_acked + 2) * PER_FLOW, i64::MAX)
            .await
            .unwrap();
        assert!(
            beyond.is_empty(),
            "round {round}: data after the batch in flight"
        );
        eprintln!(
            "round {round}: killed after {delay} ms, {} batches acknowledged in total",
            complete
        );
        assert!(
            complete > next,
            "round {round}: the child wrote nothing in {delay} ms"
        );
        next = complete;
        drop(store);
    }
}

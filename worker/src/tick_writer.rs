//! Group commit of ticks. Every flow evaluates at the end of its tick, so with 1-minute ticks
//! 100 000 actors want to store one tick each within the same second; each write alone is an
//! fsynced commit. The actors hand their ticks to one writer instead, which stores everything
//! that gathered while the previous write ran in one write, and answers each actor once its
//! ticks are durable: the same guarantee, a few hundred commits a minute instead of 100 000.

use std::sync::Arc;

use flowwatch_storage::{Store, StoredTick};
use tokio::sync::{mpsc, oneshot};

/// The most writes folded into one commit.
const MAX_JOBS: usize = 4096;

struct Job {
    ticks: Vec<StoredTick>,
    done: oneshot::Sender<Result<(), Arc<flowwatch_storage::Error>>>,
}

/// A handle to the writer (cheap to clone); the writer stops when the last handle is dropped.
#[derive(Clone)]
pub struct TickWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl TickWriter {
    /// Starts a writer storing into `store`.
    pub fn start(store: Arc<dyn Store>) -> TickWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(MAX_JOBS);
            while rx.recv_many(&mut jobs, MAX_JOBS).await > 0 {
                let ticks: Vec<StoredTick> = jobs
                    .iter_mut()
                    .flat_map(|j| std::mem::take(&mut j.ticks))
                    .collect();
                let result = store.write_ticks(ticks).await.map(|_| ()).map_err(Arc::new);
                for j in jobs.drain(..) {
                    // An actor that stopped meanwhile no longer waits.
                    let _ = j.done.send(result.clone());
                }
            }
        });
        TickWriter { jobs: tx }
    }

    /// Stores `ticks` (with whatever other actors are storing); returns once they are durable.
    pub async fn write(&self, ticks: Vec<StoredTick>) -> crate::Result<()> {
        let stopped = || crate::Error::Stopped("the tick writer");
        let (done, answer) = oneshot::channel();
        self.jobs.send(Job { ticks, done }).map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(crate::Error::TickWrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowwatch_core::FlowId;
    use flowwatch_core::detection::Status;
    use flowwatch_core::id::FlowKind;
    use flowwatch_storage::embedded::EmbeddedStore;

    fn tick(name: &str, start: i64) -> StoredTick {
        StoredTick {
            flow: FlowId::new("CZ", "SMS", FlowKind::Input, name).unwrap(),
            start,
            end: start + 60,
            actual: 1,
            status: Status::Ok,
            values: None,
            evaluated_at: start + 65,
            epoch: 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_stored_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).await.unwrap());
        let writer = TickWriter::start(store.clone());
        let writes: Vec<_> = (0..200)
            .map(|f| {
                let w = writer.clone();
                tokio::spawn(async move {
                    let ticks = (0..3).map(|k| tick(&format!("f{f}"), k * 60)).collect();
                    w.write(ticks).await
                })
            })
            .collect();
        for w in writes {
            w.await.unwrap().unwrap();
        }
        for f in [0, 99, 199] {
            let flow = FlowId::new("CZ", "SMS", FlowKind::Input, &format!("f{f}")).unwrap();
            let stored = store.read_ticks(&flow, 0, 1000).await.unwrap();
            assert_eq!(stored.len(), 3, "flow f{f}");
        }
    }
}

//! The in-process adapter of the status source port (`flowwatch run`): the status changes of
//! this process's flow actors and the health read from its own counters ([`METRICS`] and the
//! relay's).

use std::sync::Arc;

use async_trait::async_trait;
use flowwatch_core::event::Event;
use flowwatch_ports::StatusSource;
use flowwatch_ports::status::{Health, IngestHealth, Source, WorkersHealth};
use tokio::sync::broadcast;

use crate::alarms::RelayStatus;
use crate::metrics::{METRICS, WorkerMetrics};

/// The workers of this process, as a status source.
pub struct LocalStatus {
    /// Every status change the actors record.
    pub alarms: broadcast::Sender<Event>,
    /// The relay's counters.
    pub relay: Arc<RelayStatus>,
}

#[async_trait]
impl StatusSource for LocalStatus {
    fn changes(&self) -> broadcast::Receiver<Event> {
        self.alarms.subscribe()
    }

    async fn health(&self) -> Health {
        let (workers, ingest) = METRICS.health();
        Health {
            source: Source::InProcess,
            workers,
            ingest,
            relay: Some(self.relay.health()),
        }
    }

    fn in_process(&self) -> bool {
        true
    }

    fn render_metrics(&self, out: &mut String) {
        METRICS.render(out);
        self.relay.render(out);
    }
}

impl WorkerMetrics {
    /// Evaluation and ingest as the status port reports them.
    pub fn health(&self) -> (WorkersHealth, IngestHealth) {
        let time = |t: i64| (t > 0).then_some(t);
        (
            WorkersHealth {
                flows: self.flows.get().max(0) as u64,
                ticks: self.ticks.get(),
                last_evaluation: time(self.last_evaluation.get()),
                actor_failures: self.actor_failures.get(),
            },
            IngestHealth {
                records: self.ingest_records.get(),
                batches: self.ingest_batches.get(),
                refused: self.ingest_refused.get(),
                newest_record: time(self.newest_record.get()),
            },
        )
    }
}

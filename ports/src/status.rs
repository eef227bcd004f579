//! The status source port: the status changes the workers record, and the health of the
//! workers, their ingest and their alarm relay, as a gateway serves them. In one process the
//! worker answers from its own counters; a cluster's gateway asks the leading coordinator,
//! whose view holds what every worker said in its last heartbeat, and reads status changes from
//! the alarms on NATS.

use async_trait::async_trait;
use flowwatch_core::event::Event;
use flowwatch_core::time::Instant;
use tokio::sync::broadcast;

/// Where a gateway learns what the workers do.
#[async_trait]
pub trait StatusSource: Send + Sync {
    /// Every status change the workers record from now on.
    fn changes(&self) -> broadcast::Receiver<Event>;

    /// The health of the workers, their ingest and their alarm relay, now.
    async fn health(&self) -> Health;

    /// Whether the flows are evaluated in this process (`flowwatch run`).
    fn in_process(&self) -> bool;

    /// Appends the workers' metrics in the Prometheus text format when the workers are this
    /// process (a cluster's workers serve their own `/metrics`).
    fn render_metrics(&self, _out: &mut String) {}
}

/// What the workers report.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Where the figures come from.
    pub source: Source,
    /// Evaluation.
    pub workers: WorkersHealth,
    /// Ingest into the workers.
    pub ingest: IngestHealth,
    /// The alarm relay (none when nobody relays, or it is unknown).
    pub relay: Option<RelayHealth>,
}

impl Health {
    /// Nothing known, and why.
    pub fn unknown(why: impl Into<String>) -> Health {
        Health {
            source: Source::Unknown(why.into()),
            workers: WorkersHealth::default(),
            ingest: IngestHealth::default(),
            relay: None,
        }
    }
}

/// Where a [`Health`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The workers of this process.
    InProcess,
    /// The live workers of a cluster, as the leading coordinator last heard from them.
    Cluster {
        /// How many workers.
        workers: usize,
    },
    /// Not known, and why (no coordinator configured, none answered).
    Unknown(String),
}

/// Evaluation, summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkersHealth {
    /// Flow actors running.
    pub flows: u64,
    /// Ticks evaluated and stored since the workers started.
    pub ticks: u64,
    /// When a tick was last stored (the latest over the workers).
    pub last_evaluation: Option<Instant>,
    /// Flow actors that failed and were restarted.
    pub actor_failures: u64,
}

/// Ingest, summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestHealth {
    /// Records stored.
    pub records: u64,
    /// Batches stored.
    pub batches: u64,
    /// Records refused by the workers.
    pub refused: u64,
    /// The time of the newest record stored (the latest over the workers).
    pub newest_record: Option<Instant>,
}

/// The alarm relay, over the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayHealth {
    /// Whether the last attempt of every relay succeeded.
    pub healthy: bool,
    /// Alarms published.
    pub published: u64,
    /// Failed attempts.
    pub failures: u64,
}

impl WorkersHealth {
    /// The sum of `self` and `other` (the latest evaluation of both).
    pub fn plus(self, other: WorkersHealth) -> WorkersHealth {
        WorkersHealth {
            flows: self.flows + other.flows,
            ticks: self.ticks + other.ticks,
            last_evaluation: self.last_evaluation.max(other.last_evaluation),
            actor_failures: self.actor_failures + other.actor_failures,
        }
    }
}

impl IngestHealth {
    /// The sum of `self` and `other` (the newest record of both).
    pub fn plus(self, other: IngestHealth) -> IngestHealth {
        IngestHealth {
            records: self.records + other.records,
            batches: self.batches + other.batches,
            refused: self.refused + other.refused,
            newest_record: self.newest_record.max(other.newest_record),
        }
    }
}

impl RelayHealth {
    /// Both relays together: healthy when both are.
    pub fn plus(self, other: RelayHealth) -> RelayHealth {
        RelayHealth {
            healthy: self.healthy && other.healthy,
            published: self.published + other.published,
            failures: self.failures + other.failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_take_the_latest_times_and_need_every_relay_healthy() {
        let a = WorkersHealth {
            flows: 2,
            ticks: 10,
            last_evaluation: Some(100),
            actor_failures: 1,
        };
        let b = WorkersHealth {
            flows: 3,
            ticks: 5,
            last_evaluation: None,
            actor_failures: 0,
        };
        let sum = a.plus(b);
        assert_eq!((sum.flows, sum.ticks, sum.actor_failures), (5, 15, 1));
        assert_eq!(sum.last_evaluation, Some(100));
        let i = IngestHealth {
            newest_record: Some(7),
            records: 1,
            ..Default::default()
        }
        .plus(IngestHealth {
            newest_record: Some(9),
            records: 2,
            ..Default::default()
        });
        assert_eq!((i.records, i.newest_record), (3, Some(9)));
        let ok = RelayHealth {
            healthy: true,
            published: 4,
            failures: 0,
        };
        let failing = RelayHealth {
            healthy: false,
            published: 1,
            failures: 2,
        };
        assert_eq!(
            ok.plus(failing),
            RelayHealth {
                healthy: false,
                published: 5,
                failures: 2
            }
        );
        assert!(ok.plus(ok).healthy);
    }
}

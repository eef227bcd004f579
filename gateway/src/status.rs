//! The status source of a gateway run alone, in front of a cluster (`flowwatch gateway`): the
//! status changes are the alarms the workers publish on NATS (`flowwatch.alarms.>`, SPEC §8,
//! read back with `flowwatch_core::event::parse_message`), and the health of the workers,
//! their ingest and their relays is what each live worker said in its last heartbeat to the
//! leading coordinator (`--coordinator`), summed. Without coordinators, or with none leading,
//! the health says why it is unknown instead of showing zeros.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flowwatch_core::event::{Event, parse_message};
use flowwatch_ports::StatusSource;
use flowwatch_ports::status::{Health, IngestHealth, RelayHealth, Source, WorkersHealth};
use flowwatch_proto::cluster::Coordinators;
use flowwatch_proto::pb;
use futures_util::StreamExt;
use tokio::sync::broadcast;

/// How long an answer of the coordinator is reused (the live views ask every few seconds, per
/// client).
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The workers of a cluster, seen from a gateway.
pub struct ClusterStatus {
    coordinators: Option<Coordinators>,
    changes: broadcast::Sender<Event>,
    last: Mutex<Option<(Instant, Health)>>,
}

impl ClusterStatus {
    /// A source asking `coordinators` (none: the health is unknown); status changes are what
    /// [`ClusterStatus::follow_alarms`] reads.
    pub fn new(coordinators: Option<Coordinators>) -> ClusterStatus {
        ClusterStatus {
            coordinators,
            changes: broadcast::channel(4096).0,
            last: Mutex::new(None),
        }
    }

    /// Feeds the status changes with the alarms on `alarms` (a subscription to
    /// `flowwatch.alarms.>`). A message that is not an alarm is logged and skipped. Ends when
    /// the subscription does (async-nats resubscribes after a reconnect on its own).
    pub async fn follow_alarms(&self, mut alarms: async_nats::Subscriber) {
        while let Some(m) = alarms.next().await {
            match parse_message(&m.payload) {
                // No subscriber now is no error: nobody watches.
                Ok(e) => drop(self.changes.send(e)),
                Err(why) => tracing::warn!(subject = %m.subject, "alarm message skipped: {why}"),
            }
        }
    }

    async fn ask(&self) -> Health {
        let Some(coordinators) = &self.coordinators else {
            return Health::unknown("no coordinator configured (--coordinator)");
        };
        match coordinators.leader().await {
            Ok(leader) => summed(&leader.view),
            Err(e) => Health::unknown(e.to_string()),
        }
    }
}

#[async_trait]
impl StatusSource for ClusterStatus {
    fn changes(&self) -> broadcast::Receiver<Event> {
        self.changes.subscribe()
    }

    async fn health(&self) -> Health {
        if let Some((at, health)) = &*self.last.lock().expect("no panic holds the lock")
            && at.elapsed() < FRESH_FOR
        {
            return health.clone();
        }
        let health = self.ask().await;
        *self.last.lock().expect("no panic holds the lock") =
            Some((Instant::now(), health.clone()));
        health
    }

    fn in_process(&self) -> bool {
        false
    }
}

/// The health of the workers of `view`, each as its last heartbeat said.
fn summed(view: &pb::ClusterView) -> Health {
    let time = |t: i64| (t > 0).then_some(t);
    let mut health = Health {
        source: Source::Cluster {
            workers: view.members.len(),
        },
        workers: WorkersHealth::default(),
        ingest: IngestHealth::default(),
        relay: None,
    };
    for load in view.members.iter().map(|m| m.load.unwrap_or_default()) {
        health.workers = health.workers.plus(WorkersHealth {
            flows: load.flows,
            ticks: load.ticks,
            last_evaluation: time(load.last_evaluation),
            actor_failures: load.actor_failures,
        });
        health.ingest = health.ingest.plus(IngestHealth {
            records: load.ingest_records,
            batches: load.ingest_batches,
            refused: load.ingest_refused,
            newest_record: time(load.newest_record),
        });
        let relay = RelayHealth {
            healthy: load.relay_healthy,
            published: load.alarms_published,
            failures: load.alarm_failures,
        };
        health.relay = Some(health.relay.map_or(relay, |r| r.plus(relay)));
    }
    health
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, load: pb::WorkerLoad) -> pb::Member {
        pb::Member {
            worker: name.into(),
            load: Some(load),
            ..Default::default()
        }
    }

    #[test]
    fn the_workers_heartbeats_are_summed() {
        let view = pb::ClusterView {
            members: vec![
                member(
                    "w1",
                    pb::WorkerLoad {
                        flows: 10,
                        ticks: 100,
                        last_evaluation: 1_000,
                        ingest_records: 7,
                        newest_record: 990,
                        alarms_published: 3,
                        relay_healthy: true,
                        ..Default::default()
                    },
                ),
                member(
                    "w2",
                    pb::WorkerLoad {
                        flows: 5,
                        ticks: 50,
                        last_evaluation: 1_010,
                        actor_failures: 1,
                        ingest_records: 2,
                        alarm_failures: 4,
                        relay_healthy: false,
                        ..Default::default()
                    },
                ),
            ],
            ..Default::default()
        };
        let h = summed(&view);
        assert_eq!(h.source, Source::Cluster { workers: 2 });
        assert_eq!(
            h.workers,
            WorkersHealth {
                flows: 15,
                ticks: 150,
                last_evaluation: Some(1_010),
                actor_failures: 1
            }
        );
        assert_eq!((h.ingest.records, h.ingest.newest_record), (9, Some(990)));
        assert_eq!(
            h.relay,
            Some(RelayHealth {
                healthy: false,
                published: 3,
                failures: 4
            })
        );
    }

    #[tokio::test]
    async fn without_coordinators_the_health_is_unknown_and_says_why() {
        let h = ClusterStatus::new(None).health().await;
        match h.source {
            Source::Unknown(why) => assert!(why.contains("--coordinator"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(h.relay, None);
    }
}

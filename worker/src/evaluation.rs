//! The evaluating part of a worker, started and stopped as one by `flowwatch run` and
//! `flowwatch worker`: the supervisor and its flow actors, the configuration put in force in it,
//! the relay that publishes their alarms, the senders of the notification channels, the ops
//! e-mail watch, and the silences in force (followed in the store).

use std::sync::Arc;
use std::time::Duration;

use flowwatch_storage::{Event, Store};
use ractor::{Actor, ActorRef};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use flowwatch_notify::delivery::Notifier;
use flowwatch_notify::ops::{self, OpsEmail};
use flowwatch_ports::{AlarmSink, InForce, Ingest, StatusSource};
use tokio_util::sync::CancellationToken;

use crate::actors::flow_supervisor::{FlowSupervisor, SupervisorArgs, SupervisorMsg};
use crate::alarms::{Relay, RelayStatus};
use crate::ingest::SupervisorIngest;
use crate::settings::SilenceBook;
use crate::status::LocalStatus;
use crate::supervision::Ownership;
use crate::{Clock, WorkerSettings};
use flowwatch_core::silence::Silences;

/// What an evaluation starts from.
pub struct EvaluationArgs {
    /// The configuration in force; every version published here is put in force.
    pub config: watch::Receiver<InForce>,
    /// Where everything is kept.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Clock,
    /// The flow actors' settings.
    pub settings: WorkerSettings,
    /// Where alarms are published.
    pub sink: Arc<dyn AlarmSink>,
    /// The partitions run (`None`: every flow).
    pub ownership: Option<Ownership>,
    /// Where the operators are mailed when alarms cannot be published (`--ops-email`).
    pub ops_email: Option<OpsEmail>,
}

/// A running evaluation.
pub struct Evaluation {
    /// The supervisor (ingest goes to it).
    pub supervisor: ActorRef<SupervisorMsg>,
    /// Every status change the actors record.
    pub alarms: broadcast::Sender<Event>,
    /// The relay's counters.
    pub relay: Arc<RelayStatus>,
    store: Arc<dyn Store>,
    supervisor_task: JoinHandle<()>,
    relay_task: JoinHandle<()>,
    silences_task: JoinHandle<()>,
    /// Stops the notification channels' senders and the ops e-mail watch.
    notifying: CancellationToken,
    notify_tasks: Vec<JoinHandle<()>>,
}

/// How often the silences are read from the store: one created through any gateway holds on
/// every worker within this (and the read's time).
pub const SILENCES_EVERY: Duration = Duration::from_secs(1);

/// Silences that ended longer ago than this are not kept in force (ticks started inside them
/// are decided long before).
const SILENCES_KEPT: i64 = 35 * 86_400;

/// Puts the stored silences in force in `book`.
async fn read_silences(store: &dyn Store, book: &SilenceBook, now: i64) -> crate::Result<()> {
    let all = store
        .silences()
        .await
        .map_err(crate::Error::store("read the silences"))?;
    if book.set(Silences::in_force(all, now, SILENCES_KEPT)) {
        tracing::info!(silences = book.get().len(), "silences in force changed");
    }
    Ok(())
}

/// Keeps `book` on the stored silences, reading them every [`SILENCES_EVERY`].
async fn follow_silences(store: Arc<dyn Store>, book: SilenceBook, clock: Clock) {
    let mut failing = false;
    loop {
        tokio::time::sleep(SILENCES_EVERY).await;
        match read_silences(&*store, &book, clock.now()).await {
            Ok(()) => failing = false,
            Err(e) if !std::mem::replace(&mut failing, true) => {
                tracing::warn!("cannot read the silences, keeping those in force: {e}");
            }
            Err(_) => {}
        }
    }
}

impl Evaluation {
    /// Starts the supervisor (its actors catch up from storage; it follows the configuration)
    /// and the relay.
    pub async fn start(args: EvaluationArgs) -> crate::Result<Evaluation> {
        let book = args.settings.silences.clone();
        // In force before the first tick is evaluated.
        read_silences(&*args.store, &book, args.clock.now()).await?;
        let silences_task = tokio::spawn(follow_silences(args.store.clone(), book, args.clock));
        let (alarms, _) = broadcast::channel(4096);
        let (supervisor, supervisor_task) = Actor::spawn(
            None,
            FlowSupervisor,
            SupervisorArgs {
                config: args.config,
                store: args.store.clone(),
                clock: args.clock,
                settings: Arc::new(args.settings),
                alarms: alarms.clone(),
                ownership: args.ownership,
            },
        )
        .await
        .map_err(|e| crate::Error::actor("start the supervisor", e))?;
        let notifier = Notifier::new(args.store.clone(), args.clock);
        let relay = Relay::new(args.store.clone(), args.sink, notifier.clone(), &alarms);
        let status = relay.status();
        let relay_task = tokio::spawn(relay.run());
        let notifying = CancellationToken::new();
        let mut notify_tasks = vec![tokio::spawn(notifier.run(notifying.clone()))];
        if let Some(ops) = args.ops_email {
            let relay = status.clone();
            let healthy = move || relay.healthy.load(std::sync::atomic::Ordering::Relaxed);
            let store = args.store.clone();
            let watch = ops::watch(ops, healthy, store, args.clock, notifying.clone());
            notify_tasks.push(tokio::spawn(watch));
        }
        Ok(Evaluation {
            supervisor,
            alarms,
            relay: status,
            store: args.store,
            supervisor_task,
            relay_task,
            silences_task,
            notifying,
            notify_tasks,
        })
    }

    /// Lets the actors finish the batches already taken (draining, not stopping), then
    /// publishes what the outbox holds (for at most 5 s).
    pub async fn stop(self) -> crate::Result<()> {
        if self.supervisor.drain().is_err() {
            self.supervisor.stop(None);
        }
        let stopped = self.supervisor_task.await;
        self.silences_task.abort();
        drop(self.alarms); // the relay publishes what is left, then stops
        let _ = tokio::time::timeout(Duration::from_secs(5), self.relay_task).await;
        // Deliveries cut short are held a while, then sent by whichever process runs next.
        self.notifying.cancel();
        for task in self.notify_tasks {
            let _ = task.await;
        }
        stopped.map_err(|e| crate::Error::actor("stop the supervisor", e))
    }

    /// The ingest port of this evaluation: batches go to its supervisor.
    pub fn ingest(&self) -> Arc<dyn Ingest> {
        Arc::new(SupervisorIngest {
            supervisor: self.supervisor.clone(),
            store: self.store.clone(),
        })
    }

    /// The status source port of this evaluation: its actors' changes, its counters.
    pub fn status(&self) -> Arc<dyn StatusSource> {
        Arc::new(LocalStatus {
            alarms: self.alarms.clone(),
            relay: self.relay.clone(),
        })
    }
}

//! A worker of a cluster as a server (`flowwatch worker`): the supervisor runs the flows of
//! the partitions the coordinator placed here ([`crate::cluster`]), consuming them from
//! JetStream; the alarm relay publishes to NATS; the configuration in force follows the
//! store. Its address serves the gRPC `flowwatch.v1.Worker` service (plans), health,
//! reflection and `GET /metrics`.

use std::sync::Arc;

use flowwatch_proto::pb;
use flowwatch_proto::pb::worker_server::{Worker as WorkerApi, WorkerServer};
use flowwatch_proto::server::{metrics_route, route, standard, write_metric};
use flowwatch_storage::Store;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::alarms::NatsSink;
use crate::cluster::{Agent, AgentSettings};
use crate::evaluation::{Evaluation, EvaluationArgs};
use crate::ingest::JetStreamIngest;
use crate::kafka::{KafkaIngest, KafkaSource};
use crate::metrics::METRICS;
use crate::settings::Epoch;
use crate::supervision::Ownership;
use crate::{Clock, WorkerSettings};
use flowwatch_ports::in_force::{FOLLOW_EVERY, InForce, follow};
use flowwatch_ports::ingest::SourceLag;

/// What a worker of a cluster runs with.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Its part in the cluster.
    pub agent: AgentSettings,
    /// A status change of a tick older than this many seconds is a revision, never alarmed.
    pub alarm_window: i64,
    /// The clock.
    pub clock: Clock,
    /// A Kafka topic to read traffic from (bridged into the ingest partitions).
    pub kafka: Option<KafkaSource>,
    /// Where the operators are mailed when alarms cannot be published (`--ops-email`).
    pub ops_email: Option<flowwatch_notify::ops::OpsEmail>,
}

struct Service(Arc<Agent>);

#[tonic::async_trait]
impl WorkerApi for Service {
    async fn apply_plan(
        &self,
        request: Request<pb::Plan>,
    ) -> Result<Response<pb::PlanReply>, Status> {
        let span = tracing::info_span!("worker.apply_plan", epoch = tracing::field::Empty);
        let metadata = request.metadata();
        let header = |k: &str| {
            metadata
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        flowwatch_proto::trace::set_parent(&span, flowwatch_proto::trace::extract(header));
        let plan = request.into_inner();
        span.record("epoch", plan.epoch);
        Ok(Response::new(self.0.apply(plan).instrument(span).await))
    }
}

/// Runs a worker on `listener` until `shutdown`: then its partitions stop (each consumer after
/// its batch, each actor after its message), and the outbox is flushed.
pub async fn run(
    settings: ServiceSettings,
    store: Arc<dyn Store>,
    in_force: InForce,
    nats: async_nats::Client,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> crate::Result<()> {
    let epoch = Epoch::new(0);
    let (config, saved) = tokio::sync::watch::channel(in_force);
    let saved_config = saved.clone();
    let evaluation = Evaluation::start(EvaluationArgs {
        config: saved,
        store: store.clone(),
        clock: settings.clock,
        settings: WorkerSettings {
            alarm_window: settings.alarm_window,
            epoch: epoch.clone(),
            silences: Default::default(),
        },
        sink: Arc::new(NatsSink::new(nats.clone())),
        // Nothing until the coordinator says.
        ownership: Some(Ownership::default()),
        ops_email: settings.ops_email.clone(),
    })
    .await?;
    let (supervisor, relay_status) = (evaluation.supervisor.clone(), evaluation.relay.clone());
    let stop = shutdown.clone();
    tokio::spawn(follow(store.clone(), config, FOLLOW_EVERY, async move {
        stop.cancelled().await
    }));

    let agent = Agent::new(
        settings.agent.clone(),
        supervisor.clone(),
        store.clone(),
        nats.clone(),
        epoch,
        settings.clock,
        relay_status.clone(),
    );
    let reconciling = tokio::spawn(agent.clone().reconcile(shutdown.clone()));
    tokio::spawn(agent.clone().heartbeats(shutdown.clone()));

    let kafka_lag = Arc::new(SourceLag::default());
    if let Some(source) = settings.kafka.clone() {
        let reader = Reader {
            source,
            config: saved_config,
            lag: kafka_lag.clone(),
        };
        let (running, store, nats) = (agent.running(), store.clone(), nats.clone());
        tokio::spawn(bridge_kafka(reader, running, store, nats, shutdown.clone()));
    }
    let running = agent.running();
    let lag = kafka_lag.clone();
    let metrics = move || {
        let mut out = String::new();
        METRICS.render(&mut out);
        relay_status.render(&mut out);
        lag.render(&mut out);
        let r = running.borrow();
        write_metric(
            &mut out,
            "flowwatch_worker_epoch",
            "gauge",
            "The epoch of the plan this worker runs.",
            r.epoch,
        );
        write_metric(
            &mut out,
            "flowwatch_worker_partitions",
            "gauge",
            "Partitions this worker runs.",
            r.partitions.len(),
        );
        write_metric(
            &mut out,
            "flowwatch_nats_connected",
            "gauge",
            "1 when connected to NATS.",
            u8::from(nats.connection_state() == async_nats::connection::State::Connected),
        );
        out
    };
    let router = metrics_route(
        axum::Router::new(),
        Arc::new(move || {
            let text = metrics();
            Box::pin(async move { text })
        }),
    );
    let router = route(router, WorkerServer::new(Service(agent)));
    let router = standard(
        router,
        &[<WorkerServer<Service> as tonic::server::NamedService>::NAME],
    )
    .await;
    tracing::info!(
        worker = settings.agent.name,
        "worker serving on {}",
        listener.local_addr().map_err(|source| crate::Error::Io {
            what: "the listening address",
            source
        })?
    );
    let stop = shutdown.clone();
    flowwatch_proto::server::serve(listener, router, async move { stop.cancelled().await })
        .await
        .map_err(|source| crate::Error::Io {
            what: "serving",
            source,
        })?;

    tracing::info!("stopping: partitions stop, the outbox is flushed");
    let _ = reconciling.await;
    evaluation.stop().await
}

/// The Kafka reader of a worker: once the first plan says how many partitions the flows hash
/// into, it publishes the topic's records to the ingest partitions (whichever worker owns
/// each flow stores it).
async fn bridge_kafka(
    reader: Reader,
    mut running: tokio::sync::watch::Receiver<crate::cluster::Running>,
    store: Arc<dyn Store>,
    nats: async_nats::Client,
    stop: CancellationToken,
) {
    let count = tokio::select! {
        _ = stop.cancelled() => return,
        r = running.wait_for(|r| r.count > 0) => match r {
            Ok(r) => r.count,
            Err(_) => return,
        },
    };
    let ingest = loop {
        match JetStreamIngest::new(nats.clone(), count).await {
            Ok(i) => break i.with_store(store.clone()),
            Err(why) => {
                tracing::warn!("kafka ingest: {why}");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let Reader {
        source,
        config,
        lag,
    } = reader;
    KafkaIngest {
        source,
        ingest: Arc::new(ingest),
        config,
        lag,
    }
    .run(stop)
    .await
}

/// What a worker's Kafka reader needs besides its ingest port.
struct Reader {
    source: KafkaSource,
    config: tokio::sync::watch::Receiver<InForce>,
    lag: Arc<SourceLag>,
}

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
use crate::metrics::METRICS;
use crate::settings::Epoch;
use crate::supervision::Ownership;
use crate::{Clock, WorkerSettings};
use flowwatch_ports::in_force::{FOLLOW_EVERY, InForce, follow};

/// What a worker of a cluster runs with.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Its part in the cluster.
    pub agent: AgentSettings,
    /// A status change of a tick older than this many seconds is a revision, never alarmed.
    pub alarm_window: i64,
    /// The clock.
    pub clock: Clock,
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

    let running = agent.running();
    let metrics = move || {
        let mut out = String::new();
        METRICS.render(&mut out);
        relay_status.render(&mut out);
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

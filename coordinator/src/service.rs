//! The coordinator as a server: the gRPC service `flowwatch.v1.Coordinator`, the loop that
//! steps the cluster and sends each changed plan to its worker (`Worker.ApplyPlan`), and
//! `GET /metrics` on the same address.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use flowwatch_proto::client::Channels;
use flowwatch_proto::pb;
use flowwatch_proto::pb::coordinator_server::{Coordinator as CoordinatorApi, CoordinatorServer};
use flowwatch_proto::pb::worker_client::WorkerClient;
use flowwatch_proto::server::{metrics_route, route, standard, write_metric};
use flowwatch_proto::trace;
use flowwatch_storage::Store;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::leader::{Leader, Leadership, campaign};
use crate::membership::{Cluster, Millis, Plan, Report};
use crate::{Result, Settings};

/// How long a plan sent to a worker may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// A running coordinator: what the service, the stepping loop and `/metrics` share.
pub struct Coordinator {
    settings: Settings,
    origin: Instant,
    leadership: watch::Receiver<Leadership>,
    /// The leader's view (`None` while this coordinator does not lead).
    cluster: Mutex<Option<Cluster>>,
    workers: Channels,
    plans_sent: std::sync::atomic::AtomicU64,
    plans_failed: std::sync::atomic::AtomicU64,
    /// Flows registered in the shared store, as last counted while leading (`None`: no store
    /// given).
    registered: Option<std::sync::atomic::AtomicU64>,
}

/// How often the leader counts the registered flows.
const COUNT_EVERY: Duration = Duration::from_secs(30);

impl Coordinator {
    fn now(&self) -> Millis {
        self.origin.elapsed().as_millis() as Millis
    }

    /// Runs `f` on the leader's view, made or dropped to follow the leadership; `None` when
    /// this coordinator does not lead.
    fn leading<R>(&self, f: impl FnOnce(&mut Cluster, Millis) -> R) -> Option<R> {
        let term = self.leadership.borrow().term;
        let now = self.now();
        let mut cluster = self
            .cluster
            .lock()
            .expect("no panic holds the cluster lock");
        match term {
            None => {
                *cluster = None;
                None
            }
            Some(term) => {
                if cluster.as_ref().is_none_or(|c| c.term() != term) {
                    let s = &self.settings;
                    *cluster = Some(Cluster::new(s.partitions, s.timing, term, now));
                }
                let c = cluster.as_mut().expect("made above");
                Some(f(c, now))
            }
        }
    }

    fn leader_address(&self) -> String {
        let l = self.leadership.borrow();
        l.leader
            .as_ref()
            .map_or(String::new(), |l| l.address.clone())
    }

    fn plan_message(&self, plan: Plan) -> pb::Plan {
        pb::Plan {
            epoch: plan.epoch,
            partition_count: self.settings.partitions,
            partitions: plan.partitions,
            lease_millis: self.settings.timing.lease,
        }
    }

    /// Sends `worker` its plan; what it answers confirms the epoch it runs.
    async fn send(self: Arc<Self>, worker: String, address: String, plan: Plan) {
        use std::sync::atomic::Ordering::Relaxed;
        let span = tracing::info_span!("coordinator.send_plan", worker, epoch = plan.epoch);
        let mut request = Request::new(self.plan_message(plan));
        for (k, v) in trace::headers(&trace::context(&span)) {
            if let (Ok(k), Ok(v)) = (
                k.parse::<tonic::metadata::MetadataKey<_>>(),
                v.parse::<tonic::metadata::MetadataValue<_>>(),
            ) {
                request.metadata_mut().insert(k, v);
            }
        }
        let sent = match self.workers.get(&address) {
            Ok(channel) => WorkerClient::new(channel)
                .apply_plan(request)
                .instrument(span)
                .await
                .map_err(|s| s.message().to_owned()),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(reply) => {
                self.plans_sent.fetch_add(1, Relaxed);
                let reply = reply.into_inner();
                self.leading(|c, _| c.confirm(&worker, reply.epoch, reply.partitions));
            }
            Err(why) => {
                // The next heartbeat brings the plan too.
                self.plans_failed.fetch_add(1, Relaxed);
                tracing::warn!(worker, address, "plan not delivered: {why}");
            }
        }
    }

    /// Steps the cluster every `step_every` and sends the changed plans, until `shutdown`.
    async fn step_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(self.settings.step_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let plans = self.leading(|c, now| {
                c.step(now)
                    .into_iter()
                    .filter_map(|w| {
                        let address = c.members().get(&w)?.report.address.clone();
                        Some((c.plan(&w), w, address))
                    })
                    .collect::<Vec<_>>()
            });
            for (plan, worker, address) in plans.unwrap_or_default() {
                tracing::info!(
                    worker,
                    epoch = plan.epoch,
                    partitions = plan.partitions.len(),
                    "new plan"
                );
                tokio::spawn(self.clone().send(worker, address, plan));
            }
        }
    }

    fn view(&self) -> pb::ClusterView {
        let mut view = pb::ClusterView {
            coordinator: self.settings.name.clone(),
            leader: false,
            leader_address: self.leader_address(),
            partition_count: self.settings.partitions,
            ..Default::default()
        };
        self.leading(|c, now| {
            view.leader = true;
            view.epoch = c.epoch();
            let settling = c.settling(now);
            view.members = c
                .members()
                .iter()
                .map(|(name, m)| pb::Member {
                    worker: name.clone(),
                    address: m.report.address.clone(),
                    state: match (m.draining, settling) {
                        (true, _) => "draining",
                        (false, true) => "joining",
                        (false, false) => "live",
                    }
                    .into(),
                    plan_epoch: m.plan_epoch,
                    applied_epoch: m.report.epoch,
                    partitions: c.plan(name).partitions,
                    last_heartbeat_millis: now.saturating_sub(m.seen),
                    load: Some(m.report.load),
                })
                .collect();
            view.owners = c
                .owners()
                .iter()
                .map(|o| o.clone().unwrap_or_default())
                .collect();
            view.moving = c.moving();
        });
        view
    }

    /// While leading, counts the registered flows at once and then every [`COUNT_EVERY`].
    async fn count_loop(self: Arc<Self>, registry: Arc<dyn Store>, shutdown: CancellationToken) {
        let Some(registered) = &self.registered else {
            return;
        };
        let mut last: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            let leads = self.leadership.borrow().term.is_some();
            if !leads {
                last = None;
            } else if last.is_none_or(|t| t.elapsed() >= COUNT_EVERY) {
                match registry.flow_count().await {
                    Ok(n) => {
                        registered.store(n, std::sync::atomic::Ordering::Relaxed);
                        last = Some(Instant::now());
                    }
                    Err(e) => tracing::warn!("cannot count the registered flows: {e}"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn metrics(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let view = self.view();
        let mut out = String::new();
        let owned = view.owners.iter().filter(|o| !o.is_empty()).count();
        let gauges = [
            (
                "flowwatch_coordinator_leader",
                "1 when this coordinator leads.",
                u64::from(view.leader),
            ),
            (
                "flowwatch_coordinator_members",
                "Live workers (as the leader sees them; 0 on a standby).",
                view.members.len() as u64,
            ),
            (
                "flowwatch_coordinator_epoch",
                "The newest epoch planned.",
                view.epoch,
            ),
            (
                "flowwatch_coordinator_partitions_unowned",
                "Partitions in no worker's plan (moving, or no worker alive).",
                u64::from(view.leader) * (view.partition_count as u64 - owned as u64),
            ),
            (
                "flowwatch_coordinator_partitions_moving",
                "Partitions taken from a worker that has not confirmed yet.",
                view.moving.len() as u64,
            ),
        ];
        for (name, help, value) in gauges {
            write_metric(&mut out, name, "gauge", help, value);
        }
        if let Some(registered) = &self.registered {
            write_metric(
                &mut out,
                "flowwatch_coordinator_flows_registered",
                "gauge",
                "Flows registered in the shared store (counted by the leader every 30 s; 0 on a standby).",
                u64::from(view.leader) * registered.load(Relaxed),
            );
        }
        write_metric(
            &mut out,
            "flowwatch_coordinator_plans_sent_total",
            "counter",
            "Plans a worker took.",
            self.plans_sent.load(Relaxed),
        );
        write_metric(
            &mut out,
            "flowwatch_coordinator_plans_failed_total",
            "counter",
            "Plans that did not reach their worker (the next heartbeat carries them).",
            self.plans_failed.load(Relaxed),
        );
        out
    }
}

/// The gRPC service over a [`Coordinator`].
struct Service(Arc<Coordinator>);

fn not_leader(c: &Coordinator) -> Status {
    let leader = c.leader_address();
    Status::failed_precondition(match leader.is_empty() {
        true => "this coordinator does not lead, and no leader is known".to_owned(),
        false => format!("this coordinator does not lead: the leader is {leader}"),
    })
}

#[tonic::async_trait]
impl CoordinatorApi for Service {
    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> std::result::Result<Response<pb::HeartbeatReply>, Status> {
        let hb = request.into_inner();
        if hb.worker.is_empty() {
            return Err(Status::invalid_argument("worker: a worker needs a name"));
        }
        let report = Report {
            worker: hb.worker,
            address: hb.address,
            epoch: hb.epoch,
            partitions: hb.partitions,
            load: hb.load.unwrap_or_default(),
        };
        let c = &self.0;
        let plan = c.leading(|cluster, now| cluster.heartbeat(report, now));
        Ok(Response::new(pb::HeartbeatReply {
            leader: plan.is_some(),
            leader_address: c.leader_address(),
            plan: plan.map(|p| c.plan_message(p)),
        }))
    }

    async fn cluster(
        &self,
        _: Request<pb::ClusterRequest>,
    ) -> std::result::Result<Response<pb::ClusterView>, Status> {
        Ok(Response::new(self.0.view()))
    }

    async fn drain(
        &self,
        request: Request<pb::DrainRequest>,
    ) -> std::result::Result<Response<pb::ClusterView>, Status> {
        let r = request.into_inner();
        let c = &self.0;
        match c.leading(|cluster, _| cluster.drain(&r.worker, !r.undo)) {
            None => Err(not_leader(c)),
            Some(false) => Err(Status::not_found(format!(
                "worker: no member is named {:?}",
                r.worker
            ))),
            Some(true) => {
                tracing::info!(worker = r.worker, undo = r.undo, "drain");
                Ok(Response::new(c.view()))
            }
        }
    }
}

/// Serves the coordinator on `listener` (gRPC, health, reflection, `/metrics`) and campaigns
/// for the lead in `store` until `shutdown`.
pub async fn serve(
    settings: Settings,
    store: kv::Store,
    registry: Option<Arc<dyn Store>>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let (view, leadership) = watch::channel(Leadership::default());
    let me = Leader {
        name: settings.name.clone(),
        address: settings.address.clone(),
    };
    let campaigning = tokio::spawn(campaign(
        store,
        me,
        settings.leader_ttl,
        view,
        shutdown.clone(),
    ));
    let coordinator = Arc::new(Coordinator {
        settings,
        origin: Instant::now(),
        leadership,
        cluster: Mutex::new(None),
        workers: Channels::new("worker", SEND_TIMEOUT),
        plans_sent: Default::default(),
        plans_failed: Default::default(),
        registered: registry.as_ref().map(|_| Default::default()),
    });
    tokio::spawn(coordinator.clone().step_loop(shutdown.clone()));
    if let Some(registry) = registry {
        tokio::spawn(coordinator.clone().count_loop(registry, shutdown.clone()));
    }
    let metrics = coordinator.clone();
    let router = metrics_route(
        axum::Router::new(),
        Arc::new(move || {
            let m = metrics.clone();
            Box::pin(async move { m.metrics() })
        }),
    );
    let router = route(router, CoordinatorServer::new(Service(coordinator)));
    let router = standard(
        router,
        &[<CoordinatorServer<Service> as tonic::server::NamedService>::NAME],
    )
    .await;
    tracing::info!("coordinator serving on {}", listener.local_addr()?);
    let stop = shutdown.clone();
    flowwatch_proto::server::serve(listener, router, async move { stop.cancelled().await }).await?;
    // Gives the lease up: a standby leads at its next look.
    let _ = campaigning.await;
    Ok(())
}

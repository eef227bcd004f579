//! The cluster as its leading coordinator sees it, for those outside the cluster's own loop
//! (`flowwatch admin cluster | drain`, the gateway's `GET /api/v1/cluster`): finding the
//! leader among the configured coordinators, and its view as JSON (one shape for both).

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::client::Channels;
use crate::pb;
use crate::pb::coordinator_client::CoordinatorClient;

/// How long connecting to a coordinator, or one call to it, may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The coordinators of a cluster as configured (`--coordinator URL,URL…`), a channel to each
/// (reused), and which one led when last asked (asked first next time).
pub struct Coordinators {
    addresses: Vec<String>,
    channels: Channels,
    last_leader: Mutex<Option<String>>,
}

/// The leading coordinator: a client of it, and its view.
pub struct Leader {
    /// Where it answered.
    pub address: String,
    /// A client of it (for `Drain`, or to ask again).
    pub client: CoordinatorClient<Channel>,
    /// Its view of the cluster.
    pub view: pb::ClusterView,
}

/// No coordinator led: what each address asked answered, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoLeader {
    /// Each address asked and why it was not the leader.
    pub tried: Vec<(String, String)>,
}

impl fmt::Display for NoLeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tried.is_empty() {
            return f.write_str("no leading coordinator found: no coordinator given");
        }
        f.write_str("no leading coordinator found: ")?;
        for (i, (address, why)) in self.tried.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{address}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NoLeader {}

impl Coordinators {
    /// The coordinators at `addresses` (`http://host:port`), none asked yet.
    pub fn new(addresses: Vec<String>) -> Coordinators {
        Coordinators {
            addresses,
            channels: Channels::new("coordinator", TIMEOUT),
            last_leader: Mutex::new(None),
        }
    }

    /// The addresses as configured.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The leading coordinator and its view. Asks the last leader first, then each configured
    /// address in turn; a standby's answer names where the leader is, which is asked next.
    /// Only a coordinator that says it leads is taken.
    pub async fn leader(&self) -> Result<Leader, NoLeader> {
        let last = self
            .last_leader
            .lock()
            .expect("no panic holds the leader lock")
            .clone();
        let mut candidates: Vec<String> = last.into_iter().collect();
        candidates.extend(self.addresses.iter().cloned());
        let mut tried: Vec<(String, String)> = Vec::new();
        while !candidates.is_empty() {
            let address = candidates.remove(0);
            if tried.iter().any(|(a, _)| *a == address) {
                continue;
            }
            let mut client = match self.channels.get(&address) {
                Ok(channel) => CoordinatorClient::new(channel),
                Err(why) => {
                    tried.push((address, why.to_string()));
                    continue;
                }
            };
            let why = match client.cluster(pb::ClusterRequest {}).await {
                Ok(view) => {
                    let view = view.into_inner();
                    if view.leader {
                        *self
                            .last_leader
                            .lock()
                            .expect("no panic holds the leader lock") = Some(address.clone());
                        return Ok(Leader {
                            address,
                            client,
                            view,
                        });
                    }
                    match view.leader_address.is_empty() {
                        true => "does not lead and knows no leader".to_owned(),
                        false => {
                            candidates.insert(0, view.leader_address.clone());
                            format!("does not lead (the leader is at {})", view.leader_address)
                        }
                    }
                }
                Err(status) => format!("does not answer: {}", status_text(&status)),
            };
            tried.push((address, why));
        }
        Err(NoLeader { tried })
    }
}

/// What a failed call says: its message and its causes, each once (a refused connection's
/// message is `tcp connect error`; the reason is in its causes).
fn status_text(status: &tonic::Status) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut add = |part: String| {
        if !part.is_empty() && !parts.contains(&part) {
            parts.push(part);
        }
    };
    add(status.message().to_owned());
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        add(s.to_string());
        source = s.source();
    }
    match parts.is_empty() {
        true => format!("{:?}", status.code()),
        false => parts.join(": "),
    }
}

/// The view as JSON: what `flowwatch admin cluster --json` prints and `GET /api/v1/cluster`
/// answers (`"clustered": true`; a process with no coordinator answers `"clustered": false`).
pub fn view_json(v: &pb::ClusterView) -> Value {
    json!({
        "clustered": true,
        "coordinator": v.coordinator,
        "leader": v.leader,
        "leaderAddress": v.leader_address,
        "epoch": v.epoch,
        "partitionCount": v.partition_count,
        "moving": v.moving,
        "owners": v.owners,
        "members": v.members.iter().map(|m| {
            let load = m.load.unwrap_or_default();
            json!({
                "worker": m.worker,
                "address": m.address,
                "state": m.state,
                "planEpoch": m.plan_epoch,
                "appliedEpoch": m.applied_epoch,
                "partitions": m.partitions,
                "lastHeartbeatMillis": m.last_heartbeat_millis,
                "flows": load.flows,
                "ingestLagSeconds": load.ingest_lag_seconds,
                "memoryBytes": load.memory_bytes,
                "ticks": load.ticks,
                "actorFailures": load.actor_failures,
                "relayHealthy": load.relay_healthy,
            })
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::coordinator_server::{Coordinator, CoordinatorServer};

    /// A coordinator that answers `Cluster` with a fixed view.
    struct Fixed(pb::ClusterView);

    #[tonic::async_trait]
    impl Coordinator for Fixed {
        async fn heartbeat(
            &self,
            _: tonic::Request<pb::HeartbeatRequest>,
        ) -> Result<tonic::Response<pb::HeartbeatReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("heartbeat"))
        }
        async fn cluster(
            &self,
            _: tonic::Request<pb::ClusterRequest>,
        ) -> Result<tonic::Response<pb::ClusterView>, tonic::Status> {
            Ok(tonic::Response::new(self.0.clone()))
        }
        async fn drain(
            &self,
            _: tonic::Request<pb::DrainRequest>,
        ) -> Result<tonic::Response<pb::ClusterView>, tonic::Status> {
            Err(tonic::Status::unimplemented("drain"))
        }
    }

    /// Serves `view` on a free port; its address.
    async fn serve(view: pb::ClusterView) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let router = crate::server::route(axum::Router::new(), CoordinatorServer::new(Fixed(view)));
        tokio::spawn(crate::server::serve(
            listener,
            router,
            std::future::pending(),
        ));
        address
    }

    /// An address nothing listens on.
    async fn closed() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn standby(name: &str, leader_address: &str) -> pb::ClusterView {
        pb::ClusterView {
            coordinator: name.to_owned(),
            leader_address: leader_address.to_owned(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_leader_is_found_through_a_standby_past_a_dead_coordinator() {
        let dead = closed().await;
        let leader = serve(pb::ClusterView {
            coordinator: "c2".into(),
            leader: true,
            epoch: 7,
            ..Default::default()
        })
        .await;
        let standby = serve(standby("c1", &leader)).await;
        // The leader is not configured: the standby says where it is.
        let coordinators = Coordinators::new(vec![dead.clone(), standby.clone()]);
        let found = coordinators.leader().await.unwrap();
        assert_eq!((found.address.as_str(), found.view.epoch), (&*leader, 7));
        assert_eq!(found.view.coordinator, "c2");
        // Asked first next time.
        assert_eq!(
            coordinators.last_leader.lock().unwrap().as_deref(),
            Some(&*leader)
        );
        assert_eq!(coordinators.leader().await.unwrap().view.coordinator, "c2");
    }

    #[tokio::test]
    async fn without_a_leader_the_error_names_every_address_and_why() {
        let dead = closed().await;
        let lost = serve(standby("c1", "")).await;
        let points_to_dead = serve(standby("c3", &dead)).await;
        let coordinators = Coordinators::new(vec![
            lost.clone(),
            "not a url".into(),
            points_to_dead.clone(),
        ]);
        let e = coordinators.leader().await.err().unwrap();
        let addresses: Vec<&str> = e.tried.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            addresses,
            [&*lost, "not a url", &*points_to_dead, &*dead],
            "{e}"
        );
        assert_eq!(e.tried[0].1, "does not lead and knows no leader");
        assert!(
            e.tried[1].1.starts_with("invalid coordinator address"),
            "{e}"
        );
        assert_eq!(
            e.tried[2].1,
            format!("does not lead (the leader is at {dead})")
        );
        assert!(
            e.tried[3].1.starts_with("does not answer: ") && e.tried[3].1.contains("refused"),
            "{e}"
        );
        assert_eq!(
            e.tried[3].1.matches("tcp connect error").count(),
            1,
            "each cause once: {e}"
        );
        let text = e.to_string();
        assert!(text.starts_with("no leading coordinator found: "), "{text}");
        for a in addresses {
            assert!(text.contains(a), "{text}");
        }
        let none = Coordinators::new(vec![]).leader().await.err().unwrap();
        assert_eq!(
            none.to_string(),
            "no leading coordinator found: no coordinator given"
        );
    }

    #[test]
    fn the_view_as_json_names_every_members_load() {
        let view = pb::ClusterView {
            coordinator: "c1".into(),
            leader: true,
            leader_address: "http://c1:7070".into(),
            epoch: (3 << 32) + 5,
            partition_count: 4,
            members: vec![pb::Member {
                worker: "w1".into(),
                address: "http://w1:7171".into(),
                state: "live".into(),
                plan_epoch: (3 << 32) + 5,
                applied_epoch: (3 << 32) + 4,
                partitions: vec![0, 1, 3],
                last_heartbeat_millis: 120,
                load: Some(pb::WorkerLoad {
                    flows: 42,
                    ingest_lag_seconds: 2,
                    memory_bytes: 1 << 20,
                    ticks: 900,
                    actor_failures: 1,
                    relay_healthy: true,
                    ..Default::default()
                }),
            }],
            owners: vec!["w1".into(), "w1".into(), String::new(), "w1".into()],
            moving: vec![2],
        };
        assert_eq!(
            view_json(&view),
            json!({
                "clustered": true, "coordinator": "c1", "leader": true,
                "leaderAddress": "http://c1:7070", "epoch": (3u64 << 32) + 5,
                "partitionCount": 4, "moving": [2], "owners": ["w1", "w1", "", "w1"],
                "members": [{
                    "worker": "w1", "address": "http://w1:7171", "state": "live",
                    "planEpoch": (3u64 << 32) + 5, "appliedEpoch": (3u64 << 32) + 4,
                    "partitions": [0, 1, 3], "lastHeartbeatMillis": 120, "flows": 42,
                    "ingestLagSeconds": 2, "memoryBytes": 1 << 20, "ticks": 900,
                    "actorFailures": 1, "relayHealthy": true,
                }],
            })
        );
        // A member that sent no load yet shows zeros.
        let mut bare = view.clone();
        bare.members[0].load = None;
        let member = &view_json(&bare)["members"][0];
        assert_eq!(
            (&member["flows"], &member["memoryBytes"]),
            (&json!(0), &json!(0))
        );
    }
}

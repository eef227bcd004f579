//! `flowwatch-coordinator`: places the partitions of the flows on the live workers of a
//! cluster and sends each worker its whole plan, with an epoch that only grows.
//!
//! Layout:
//! - [`membership`]: the leader's view of the cluster and every decision it makes (who is
//!   alive, where partitions go, when one may move, epochs); pure, tested beside it.
//! - [`leader`]: which coordinator leads: a lease in NATS JetStream KV; the term of a
//!   leadership.
//! - [`service`]: the gRPC `flowwatch.v1.Coordinator` service (heartbeats, the cluster view,
//!   drain), the loop that steps the cluster and sends the plans (`Worker.ApplyPlan`), and
//!   `GET /metrics`.
//!
//! Several coordinators may run; one leads. A standby answers heartbeats with where the leader
//! is; when the leader dies its lease expires and a standby leads, rebuilding its view from the
//! workers' heartbeats (see [`membership`]). Workers keep their plans meanwhile.

pub mod leader;
pub mod membership;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use membership::Timing;

/// A coordinator's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// NATS (the leader lease) refused or is away.
    #[error("NATS: {0}")]
    Nats(String),
    /// The listener failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A coordinator's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a coordinator runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Its name, unique among the coordinators.
    pub name: String,
    /// The gRPC address workers and other coordinators reach it at (`http://host:port`).
    pub address: String,
    /// How many partitions flows are hashed into (the ingest's partitions).
    pub partitions: u32,
    /// When a worker is dead; how long a plan lasts without a heartbeat answered.
    pub timing: Timing,
    /// How long the leader lease lasts unrenewed: a standby leads within about this long
    /// after the leader died.
    pub leader_ttl: Duration,
    /// How often the leader steps the cluster.
    pub step_every: Duration,
}

impl Settings {
    /// Defaults for a coordinator named `name` at `address`: a worker silent for 5 s is dead,
    /// a plan runs 4 s without an answered heartbeat (workers beat every 500 ms), a standby
    /// leads within about 2.5 s of the leader's death.
    pub fn new(name: String, address: String, partitions: u32) -> Settings {
        Settings {
            name,
            address,
            partitions,
            timing: Timing {
                dead_after: 5_000,
                lease: 4_000,
            },
            leader_ttl: Duration::from_secs(2),
            step_every: Duration::from_millis(100),
        }
    }
}

/// Runs a coordinator on `listener` until `shutdown`, then gives up the leader lease.
pub async fn run(
    settings: Settings,
    nats: async_nats::Client,
    registry: Option<Arc<dyn flowwatch_storage::Store>>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    if settings.timing.lease >= settings.timing.dead_after {
        return Err(Error::Nats(
            "the plan lease must be shorter than the time after which a worker is dead".into(),
        ));
    }
    let store = leader::bucket(nats, settings.leader_ttl).await?;
    service::serve(settings, store, registry, listener, shutdown).await
}

//! `flowwatch-worker`: one long-lived actor per flow, evaluating its ticks as traffic and time
//! arrive, and storing ticks and status changes.
//!
//! Layout:
//! - [`clock`]: the wall clock, shiftable (`--start-time`) and pausable in tests.
//! - [`actors::flow_supervisor`]: owns the flow actors of this worker, routes records to them,
//!   spawns one on a flow's first record.
//! - [`actors::flow_actor`]: one flow: stores its traffic, keeps its `LiveFlow`, evaluates
//!   due ticks on its own timer, rebuilds from storage on late data, emits events.
//! - [`ingest`]: how records reach the supervisor: in process, or through JetStream partitions.
//! - [`in_force`]: the configuration in force, followed in the store, put in force in the
//!   supervisor.
//! - [`cluster`]: a worker in a cluster: its plan and lease, the partition consumers and flow
//!   actors that follow from them, its heartbeats to the coordinator.
//! - [`service`]: `flowwatch worker`: the supervisor, the relay, the cluster agent and the gRPC
//!   `Worker` service (plans), health and `/metrics` on one address.
//! - [`evaluation`]: the supervisor, the configuration put in force in it and the alarm relay,
//!   started and stopped as one (`flowwatch run`, `flowwatch worker`).
//! - [`metrics`]: the worker's Prometheus metrics.
//! - [`alarms`]: the outbox relay that publishes alarms (NATS JetStream, or the log).
//! - [`settings`]: the worker's tunables.
//! - [`tick_writer`]: group commit of the actors' ticks.
//! - `testkit` (feature `testkit`): a real `nats-server` for tests.
//!
//! Every decision is made by `flowwatch_core::live`; the actors only hold state and do I/O.

pub mod actors;
pub mod alarms;
pub mod clock;
pub mod cluster;
pub mod evaluation;
pub mod in_force;
pub mod ingest;
pub mod metrics;
pub mod service;
pub mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tick_writer;

pub use clock::Clock;
pub use settings::WorkerSettings;

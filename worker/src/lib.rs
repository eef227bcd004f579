//! `flowwatch-worker`: one long-lived actor per flow, evaluating its ticks as traffic and time
//! arrive, and storing ticks and status changes.
//!
//! Layout:
//! - [`supervision`]: the supervisor's protocol as a pure state machine (batches handed out
//!   while the next is stored, stale actors, rebuilds, starts and stops), property-tested over
//!   arbitrary interleavings.
//! - [`actors::flow_supervisor`]: the shell of that machine: owns the flow actors of this
//!   worker, stores batches, routes records to them, spawns one on a flow's first record,
//!   follows the configuration in force.
//! - [`actors::flow_actor`]: one flow: keeps its `LiveFlow` fed with the records handed to
//!   it, evaluates due ticks on its own timer, rebuilds from storage when told, emits events.
//! - [`ingest`]: how records reach the supervisor: in process, or through JetStream partitions
//!   (the adapters of the ingest port, [`flowwatch_ports::Ingest`]).
//! - [`kafka`]: Kafka ingest: each partition of a topic read into the ingest port, counted
//!   once by positions kept in the store.
//! - [`status`]: the in-process adapter of the status source port.
//! - [`error`]: [`Error`], every failure of a worker with its source.
//! - [`cluster`]: a worker in a cluster: its plan and lease, the partition consumers and flow
//!   actors that follow from them, its heartbeats to the coordinator.
//! - [`service`]: `flowwatch worker`: the supervisor, the relay, the cluster agent and the gRPC
//!   `Worker` service (plans), health and `/metrics` on one address.
//! - [`evaluation`]: the supervisor, the configuration put in force in it and the alarm relay,
//!   started and stopped as one (`flowwatch run`, `flowwatch worker`).
//! - [`metrics`]: the worker's Prometheus metrics.
//! - [`alarms`]: the outbox relay and the alarm sinks it publishes to (NATS JetStream, or the
//!   log; adapters of [`flowwatch_ports::AlarmSink`]).
//! - [`settings`]: the worker's tunables.
//! - [`tick_writer`]: group commit of the actors' ticks.
//! - `testkit` (feature `testkit`): a real `nats-server` for tests.
//!
//! Every decision is made by `flowwatch_core::live` (per flow) and [`supervision`] (between
//! flows); the actors only hold state and do I/O.

pub mod actors;
pub mod alarms;
pub mod cluster;
pub mod error;
pub mod evaluation;
pub mod ingest;
pub mod kafka;
pub mod metrics;
pub mod service;
pub mod settings;
pub mod status;
pub mod supervision;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tick_writer;

pub use error::{Error, Result};
pub use flowwatch_ports::Clock;
pub use settings::WorkerSettings;

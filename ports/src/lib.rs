//! `flowwatch-ports`: the contracts between flowwatch's services, low in the graph so that
//! each service sees the others only through them. The worker provides the in-process and
//! NATS adapters; the gateway holds the traits; `cli` wires one to the other.
//!
//! Layout:
//! - [`ingest`]: [`Ingest`], where a batch of records goes (answered once durable).
//! - [`status`]: [`StatusSource`], the status changes and the health of the workers, their
//!   ingest and their alarm relay, as a gateway serves them.
//! - [`alarms`]: [`AlarmSink`], where the outbox relay publishes status changes.
//! - [`in_force`]: the configuration in force, published to a process and followed in the store.
//! - [`clock`]: the system's clock, shiftable (`--start-time`) and pausable in tests.
//! - [`error`]: [`ErrorKind`], the kind of any failure, for one table of HTTP and gRPC codes.
//!
//! The domain event and its SPEC §8 message are `flowwatch_core::event`.

pub mod alarms;
pub mod clock;
pub mod error;
pub mod in_force;
pub mod ingest;
pub mod status;

pub use alarms::{AlarmError, AlarmSink};
pub use clock::Clock;
pub use error::{ErrorKind, HasKind};
pub use in_force::InForce;
pub use ingest::{Ingest, IngestError, IngestOutcome};
pub use status::{Health, StatusSource};

/// An error from below, kept as the source of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
